//! Secrets the registry hands out. It stores only their hashes (`kura_registry_db::secret_hash`)
//! and never logs them.

/// N bytes from the operating system's random source.
pub fn random<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b)
}

/// A workstation's bearer token: `kura_` and 256 random bits in hex.
pub fn new_token() -> std::io::Result<String> {
    Ok(format!("kura_{}", hex::encode(random::<32>()?)))
}

/// Crockford's base32: no I, L, O, U, so that a code read aloud or typed is not misread.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A one-time enrollment code: 20 characters (100 random bits) in groups of four.
pub fn new_enroll_code() -> std::io::Result<String> {
    let bytes = random::<20>()?;
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[(b & 31) as usize] as char)
        .collect();
    Ok(chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// A code as typed: case, spaces and dashes do not matter; I/L read as 1, O as 0.
pub fn normalize_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'I' | 'L' => '1',
            'O' => '0',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let c = new_enroll_code().unwrap();
        assert_eq!(c.len(), 24);
        assert_ne!(c, new_enroll_code().unwrap());
        for (typed, want) in [
            ("abcd-efgh", "ABCDEFGH"),
            (" 0O1I-lL ", "001111"),
            ("KQ7M 2XPA", "KQ7M2XPA"),
        ] {
            assert_eq!(normalize_code(typed), want, "{typed:?}");
        }
        assert_eq!(normalize_code(&c.to_lowercase()), c.replace('-', ""));
        let t = new_token().unwrap();
        assert!(t.starts_with("kura_") && t.len() == 69);
    }
}
