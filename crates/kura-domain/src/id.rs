//! Identifiers: Kura-issued specimen IDs with their ISO/IEC 7064 MOD 37-2 check character,
//! external (pre-barcoded) tube codes, container codes and the scan normaliser in front of them.
//!
//! Everything that arrives from a scanner or a keyboard goes through [`normalize_scan`] first, so
//! the rest of Kura only ever sees upper-case ASCII.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// The MOD 37-2 alphabet: `0-9` → 0–9, `A-Z` → 10–35, `*` → 36.
const ALPHABET: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*";

fn value_of(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        b'*' => Some(36),
        _ => None,
    }
}

/// Runs the MOD 37-2 loop over `s` (every character must be in the alphabet).
fn mod37_2_residue(s: &str) -> Option<u32> {
    let mut p = 0u32;
    for c in s.bytes() {
        p = (2 * p + value_of(c)?) % 37;
    }
    Some(p)
}

/// The ISO/IEC 7064 MOD 37-2 check character for `data` (which must be `0-9A-Z`).
///
/// ```
/// assert_eq!(kura_domain::id::check_char("G123498654321"), Some('H'));
/// ```
pub fn check_char(data: &str) -> Option<char> {
    if data.is_empty()
        || !data
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        return None;
    }
    let p = mod37_2_residue(data)?;
    // c = (1 - 2p) mod 37, kept non-negative.
    let c = (1 + 37 * 2 - 2 * p) % 37;
    Some(char::from(ALPHABET[c as usize]))
}

/// Why a scanned or typed code was refused. Every variant says what was scanned and, where it
/// applies, what was expected, so the UI can tell the technician what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ScanError {
    #[error("nothing was scanned: the scan was empty")]
    Empty,
    #[error(
        "the scan {scanned:?} contains a control character (U+{codepoint:04X}) at position {position}; scan again"
    )]
    ControlCharacter {
        scanned: String,
        position: usize,
        codepoint: u32,
    },
    #[error(
        "the scan {scanned:?} contains kana ({kana:?}): the Japanese IME is on; switch to half-width alphanumeric input and scan again"
    )]
    ImeOn { scanned: String, kana: String },
    #[error(
        "the scan {scanned:?} contains {character:?} at position {position}; only 0-9 and A-Z are allowed (and in a tube's own code - . _ after the first character)"
    )]
    InvalidCharacter {
        scanned: String,
        position: usize,
        character: char,
    },
    #[error("the code {scanned:?} is too short: at least {min} characters are needed")]
    TooShort { scanned: String, min: usize },
    #[error("the code {scanned:?} is too long: at most {max} characters")]
    TooLong { scanned: String, max: usize },
    #[error("the check character of {scanned:?} is wrong: the data {data:?} needs check character {expected:?}, the scan ends in {found:?}{}", transposition_hint(*.swapped_at))]
    WrongCheckCharacter {
        scanned: String,
        data: String,
        expected: char,
        found: char,
        /// If swapping the characters at `i` and `i + 1` (0-based) makes the code valid, `Some(i)`:
        /// most likely two characters were typed in the wrong order.
        swapped_at: Option<usize>,
    },
}

fn transposition_hint(swapped_at: Option<usize>) -> String {
    match swapped_at {
        Some(i) => format!(" (characters {} and {} look swapped)", i + 1, i + 2),
        None => String::new(),
    }
}

impl ScanError {
    /// A stable code the UI translates.
    pub fn code(&self) -> &'static str {
        match self {
            ScanError::Empty => "scan_empty",
            ScanError::ControlCharacter { .. } => "scan_control_character",
            ScanError::ImeOn { .. } => "scan_ime_on",
            ScanError::InvalidCharacter { .. } => "scan_invalid_character",
            ScanError::TooShort { .. } => "scan_too_short",
            ScanError::TooLong { .. } => "scan_too_long",
            ScanError::WrongCheckCharacter { .. } => "scan_wrong_check_character",
        }
    }
}

fn is_kana(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x309F   // hiragana
        | 0x30A0..=0x30FF // katakana
        | 0x31F0..=0x31FF // katakana phonetic extensions
        | 0xFF66..=0xFF9F // half-width katakana
    )
}

/// The longest code Kura accepts from a scanner (IDs, tube codes, container codes).
pub const MAX_CODE_LEN: usize = 40;

/// Normalises what a keyboard-wedge scanner typed: trims surrounding white space, applies NFKC
/// (full-width `ＮＣＣ１２` becomes `NCC12`), upper-cases (Caps Lock inverts a scanner's case),
/// and refuses empty scans, control characters and kana (the IME is on).
///
/// The result contains only printable ASCII; which characters are allowed beyond that is up to
/// the parser that follows.
pub fn normalize_scan(raw: &str) -> Result<String, ScanError> {
    // Fast path: what a scanner usually sends (and a legacy code such as `FS-0012.A_1`) is
    // already printable ASCII without spaces, which the steps below leave as it is but for case.
    if !raw.is_empty() && raw.len() <= MAX_CODE_LEN && raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(raw.to_ascii_uppercase());
    }
    let trimmed = raw.trim_matches(|c: char| c == ' ' || c == '\u{3000}' || c == '\r' || c == '\n');
    if trimmed.is_empty() {
        return Err(ScanError::Empty);
    }
    if let Some((position, c)) = trimmed.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(ScanError::ControlCharacter {
            scanned: trimmed.chars().filter(|c| !c.is_control()).collect(),
            position: position + 1,
            codepoint: c as u32,
        });
    }
    let kana: String = trimmed.chars().filter(|c| is_kana(*c)).collect();
    if !kana.is_empty() {
        return Err(ScanError::ImeOn {
            scanned: trimmed.to_string(),
            kana,
        });
    }
    let normalized: String = trimmed.nfkc().collect::<String>().to_ascii_uppercase();
    if let Some((position, character)) = normalized
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_graphic())
    {
        return Err(ScanError::InvalidCharacter {
            scanned: normalized.clone(),
            position: position + 1,
            character,
        });
    }
    if normalized.chars().count() > MAX_CODE_LEN {
        return Err(ScanError::TooLong {
            scanned: normalized,
            max: MAX_CODE_LEN,
        });
    }
    Ok(normalized)
}

fn only_id_alphabet(scanned: &str, allow_star: bool) -> Result<(), ScanError> {
    if let Some((position, character)) = scanned.chars().enumerate().find(|(i, c)| {
        let last = *i + 1 == scanned.len();
        !(c.is_ascii_digit() || c.is_ascii_uppercase() || (allow_star && last && *c == '*'))
    }) {
        return Err(ScanError::InvalidCharacter {
            scanned: scanned.to_string(),
            position: position + 1,
            character,
        });
    }
    Ok(())
}

/// A tube's own code: letters and digits, and `-`, `.`, `_` after the first character; with
/// `allow_star`, a Kura ID's `*` check character last.
fn external_alphabet(scanned: &str, allow_star: bool) -> Result<(), ScanError> {
    if let Some((position, character)) = scanned.chars().enumerate().find(|(i, c)| {
        let last = *i + 1 == scanned.len();
        !(c.is_ascii_digit()
            || c.is_ascii_uppercase()
            || (*i > 0 && matches!(c, '-' | '.' | '_'))
            || (allow_star && last && *c == '*'))
    }) {
        return Err(ScanError::InvalidCharacter {
            scanned: scanned.to_string(),
            position: position + 1,
            character,
        });
    }
    Ok(())
}

/// A Kura-issued specimen ID: `0-9A-Z` data followed by its MOD 37-2 check character.
/// It can only be built through validation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KuraId(String);

impl KuraId {
    /// Shortest Kura ID: three data characters and the check.
    pub const MIN_LEN: usize = 4;

    /// Parses a (raw) scan as a Kura ID.
    pub fn parse(raw: &str) -> Result<KuraId, ScanError> {
        let s = normalize_scan(raw)?;
        Self::parse_normalized(s)
    }

    fn parse_normalized(s: String) -> Result<KuraId, ScanError> {
        only_id_alphabet(&s, true)?;
        if s.len() < Self::MIN_LEN {
            return Err(ScanError::TooShort {
                scanned: s,
                min: Self::MIN_LEN,
            });
        }
        if mod37_2_residue(&s) == Some(1) {
            return Ok(KuraId(s));
        }
        let (data, found) = s.split_at(s.len() - 1);
        let (Some(expected), Some(found)) = (check_char(data), found.chars().next()) else {
            return Err(ScanError::InvalidCharacter {
                scanned: s.clone(),
                position: 0,
                character: '?',
            });
        };
        let bytes = s.as_bytes();
        let swapped_at = (0..bytes.len() - 1).find(|&i| {
            if bytes[i] == bytes[i + 1] {
                return false;
            }
            let mut b = bytes.to_vec();
            b.swap(i, i + 1);
            let t: String = b.into_iter().map(char::from).collect();
            // The check character may only be the last one.
            !t[..t.len() - 1].contains('*') && mod37_2_residue(&t) == Some(1)
        });
        Err(ScanError::WrongCheckCharacter {
            scanned: s.clone(),
            data: data.to_string(),
            expected,
            found,
            swapped_at,
        })
    }

    /// Builds the ID from its data part by appending the check character.
    pub fn from_data(data: &str) -> Result<KuraId, ScanError> {
        let d = normalize_scan(data)?;
        only_id_alphabet(&d, false)?;
        if d.len() + 1 < Self::MIN_LEN {
            return Err(ScanError::TooShort {
                scanned: d,
                min: Self::MIN_LEN - 1,
            });
        }
        if d.len() + 1 > MAX_CODE_LEN {
            return Err(ScanError::TooLong {
                scanned: d,
                max: MAX_CODE_LEN - 1,
            });
        }
        let c = check_char(&d).ok_or_else(|| ScanError::InvalidCharacter {
            scanned: d.clone(),
            position: 0,
            character: '?',
        })?;
        Ok(KuraId(format!("{d}{c}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The data part (everything before the check character).
    pub fn data(&self) -> &str {
        &self.0[..self.0.len() - 1]
    }
    pub fn check(&self) -> char {
        self.0.as_bytes()[self.0.len() - 1] as char
    }
}

impl TryFrom<String> for KuraId {
    type Error = ScanError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        KuraId::parse(&s)
    }
}
impl From<KuraId> for String {
    fn from(id: KuraId) -> String {
        id.0
    }
}
impl fmt::Display for KuraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a site issues Kura IDs: site letters + 2-digit year + zero-padded serial + check,
/// e.g. `NCC` + `26` + `0001234` + check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdFormat {
    pub prefix: String,
    pub serial_width: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdFormatError {
    #[error("the site prefix {0:?} must be 1 to 6 letters A-Z")]
    BadPrefix(String),
    #[error("the serial width {0} must be between 3 and 12 digits")]
    BadWidth(usize),
    #[error(
        "serial {serial} does not fit in {width} digits; widen the serial in the site settings"
    )]
    SerialOverflow { serial: u64, width: usize },
    #[error(
        "the site's ID format gives an invalid ID ({0}); check the prefix in the site settings"
    )]
    Invalid(String),
}

impl IdFormat {
    pub fn new(prefix: &str, serial_width: usize) -> Result<IdFormat, IdFormatError> {
        let p = prefix.trim().to_ascii_uppercase();
        if p.is_empty() || p.len() > 6 || !p.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(IdFormatError::BadPrefix(prefix.to_string()));
        }
        if !(3..=12).contains(&serial_width) {
            return Err(IdFormatError::BadWidth(serial_width));
        }
        Ok(IdFormat {
            prefix: p,
            serial_width,
        })
    }

    /// The ID for `serial` issued in `year` (only its last two digits are used).
    pub fn issue(&self, year: i32, serial: u64) -> Result<KuraId, IdFormatError> {
        let s = serial.to_string();
        if s.len() > self.serial_width {
            return Err(IdFormatError::SerialOverflow {
                serial,
                width: self.serial_width,
            });
        }
        let data = format!(
            "{}{:02}{:0width$}",
            self.prefix,
            year.rem_euclid(100),
            serial,
            width = self.serial_width
        );
        KuraId::from_data(&data).map_err(|e| IdFormatError::Invalid(e.to_string()))
    }
}

impl Default for IdFormat {
    fn default() -> Self {
        IdFormat {
            prefix: "KURA".into(),
            serial_width: 7,
        }
    }
}

/// A specimen's code: either a Kura-issued ID (with check character) or the code printed on a
/// pre-barcoded tube (no check character; `0-9A-Z` only).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SpecimenCode(String);

impl SpecimenCode {
    /// A Kura ID (validated, check character included).
    pub fn kura(id: KuraId) -> SpecimenCode {
        SpecimenCode(id.0)
    }
    /// An external tube code: normalised, 4 to 40 characters, no check character: `0-9A-Z` and,
    /// as legacy systems wrote them, `-`, `.` and `_` after the first character (`/` stays the
    /// position separator).
    pub fn external(raw: &str) -> Result<SpecimenCode, ScanError> {
        let s = normalize_scan(raw)?;
        external_alphabet(&s, false)?;
        if s.len() < 4 {
            return Err(ScanError::TooShort { scanned: s, min: 4 });
        }
        Ok(SpecimenCode(s))
    }
    /// Any code that is already stored (the store only holds validated codes).
    pub fn from_stored(s: String) -> SpecimenCode {
        SpecimenCode(s)
    }
    /// Normalises a scan into a code to look up: a valid Kura ID, or else a well-formed
    /// external code. Used where either may arrive (find, check-in of a pre-barcoded tube).
    pub fn parse_lookup(raw: &str) -> Result<SpecimenCode, ScanError> {
        let s = normalize_scan(raw)?;
        external_alphabet(&s, true)?;
        Ok(SpecimenCode(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SpecimenCode {
    type Error = ScanError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SpecimenCode::parse_lookup(&s)
    }
}
impl From<SpecimenCode> for String {
    fn from(c: SpecimenCode) -> String {
        c.0
    }
}
impl fmt::Display for SpecimenCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A container's barcode: `0-9A-Z` and `-`, 2 to 40 characters, e.g. `F80-01`, `BX000123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    pub fn parse(raw: &str) -> Result<ContainerId, ScanError> {
        let s = normalize_scan(raw)?;
        if let Some((position, character)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_digit() || c.is_ascii_uppercase() || *c == '-'))
        {
            return Err(ScanError::InvalidCharacter {
                scanned: s,
                position: position + 1,
                character,
            });
        }
        if s.len() < 2 {
            return Err(ScanError::TooShort { scanned: s, min: 2 });
        }
        Ok(ContainerId(s))
    }
    pub fn from_stored(s: String) -> ContainerId {
        ContainerId(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for ContainerId {
    type Error = ScanError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ContainerId::parse(&s)
    }
}
impl From<ContainerId> for String {
    fn from(c: ContainerId) -> String {
        c.0
    }
}
impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Result<&str, &str>) {
        let got = KuraId::parse(raw);
        match (got, expected) {
            (Ok(id), Ok(want)) => assert_eq!(id.as_str(), want, "scan {raw:?}"),
            (Err(e), Err(code)) => assert_eq!(e.code(), code, "scan {raw:?}: {e}"),
            (got, want) => panic!("scan {raw:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn published_example() {
        assert_eq!(check_char("G123498654321"), Some('H'));
    }

    #[test]
    fn scans_as_data() {
        let valid = KuraId::from_data("NCC260001234").unwrap();
        let v = valid.as_str().to_string();
        let lower = v.to_ascii_lowercase();
        let fullwidth: String = v
            .chars()
            .map(|c| char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap())
            .collect();
        let mut transposed = v.clone().into_bytes();
        transposed.swap(4, 5);
        let transposed = String::from_utf8(transposed).unwrap();
        let wrong_check = format!(
            "{}{}",
            valid.data(),
            if valid.check() == '0' { '1' } else { '0' }
        );
        let cases: Vec<(String, Result<&str, &str>)> = vec![
            (v.clone(), Ok(&v)),
            ("G123498654321H".into(), Ok("G123498654321H")),
            (format!("  {v}\r"), Ok(&v)),
            (lower, Ok(&v)),
            (fullwidth, Ok(&v)),
            (transposed, Err("scan_wrong_check_character")),
            (wrong_check, Err("scan_wrong_check_character")),
            ("ＮＣＣにいろく".into(), Err("scan_ime_on")),
            ("ｱｲｳ".into(), Err("scan_ime_on")),
            ("".into(), Err("scan_empty")),
            ("   ".into(), Err("scan_empty")),
            ("NCC\u{1d}2600".into(), Err("scan_control_character")),
            ("NCC-2600".into(), Err("scan_invalid_character")),
            ("N*CC".into(), Err("scan_invalid_character")),
            ("AB".into(), Err("scan_too_short")),
            ("A".repeat(41), Err("scan_too_long")),
        ];
        for (raw, want) in &cases {
            check(raw, *want);
        }
    }

    #[test]
    fn transposition_is_named() {
        let v = KuraId::from_data("NCC260001234").unwrap().to_string();
        let mut t = v.clone().into_bytes();
        t.swap(8, 9);
        let e = KuraId::parse(std::str::from_utf8(&t).unwrap()).unwrap_err();
        match &e {
            ScanError::WrongCheckCharacter {
                swapped_at,
                expected,
                ..
            } => {
                assert!(swapped_at.is_some(), "{e}");
                assert_ne!(*expected, t[t.len() - 1] as char);
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("swapped"), "{e}");
    }

    #[test]
    fn every_single_substitution_and_transposition_is_caught() {
        let id = KuraId::from_data("NCC260009876").unwrap().to_string();
        let bytes = id.as_bytes();
        for i in 0..bytes.len() {
            for &c in ALPHABET.iter() {
                if c == bytes[i] || (c == b'*' && i + 1 != bytes.len()) {
                    continue;
                }
                let mut b = bytes.to_vec();
                b[i] = c;
                assert!(KuraId::parse(std::str::from_utf8(&b).unwrap()).is_err());
            }
            if i + 1 < bytes.len() && bytes[i] != bytes[i + 1] {
                let mut b = bytes.to_vec();
                b.swap(i, i + 1);
                assert!(KuraId::parse(std::str::from_utf8(&b).unwrap()).is_err());
            }
        }
    }

    #[test]
    fn star_check_character_roundtrips() {
        // Find a data part whose check character is '*'.
        let id = (0..10_000u32)
            .map(|n| KuraId::from_data(&format!("NCC26{n:07}")).unwrap())
            .find(|id| id.check() == '*')
            .expect("some serial has '*' as its check character");
        assert_eq!(KuraId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn format_issues_valid_ids() {
        let f = IdFormat::new("ncc", 7).unwrap();
        let id = f.issue(2026, 1234).unwrap();
        assert_eq!(id.data(), "NCC260001234");
        assert!(KuraId::parse(id.as_str()).is_ok());
        assert!(matches!(
            f.issue(2026, 100_000_000),
            Err(IdFormatError::SerialOverflow { .. })
        ));
        assert!(IdFormat::new("N1", 7).is_err());
        assert!(IdFormat::new("NCC", 2).is_err());
    }

    #[test]
    fn external_and_container_codes() {
        assert_eq!(
            SpecimenCode::external("fs06551897").unwrap().as_str(),
            "FS06551897"
        );
        // (what a legacy system wrote, the code kept or the refusal's code)
        let cases = [
            ("F-1", Err("scan_too_short")),
            ("FS-1", Ok("FS-1")),
            ("fs-0012.a_1", Ok("FS-0012.A_1")),
            ("00012345", Ok("00012345")),
            ("ＡＢ－１２．３", Ok("AB-12.3")),
            ("-AB12", Err("scan_invalid_character")),
            ("AB/12", Err("scan_invalid_character")),
            ("AB 12", Err("scan_invalid_character")),
            ("AB12*", Err("scan_invalid_character")),
        ];
        for (raw, want) in cases {
            let got = SpecimenCode::external(raw);
            assert_eq!(
                got.as_ref().map(SpecimenCode::as_str).map_err(|e| e.code()),
                want,
                "{raw}"
            );
        }
        assert_eq!(ContainerId::parse("ｂｘ-０１").unwrap().as_str(), "BX-01");
        assert_eq!(
            ContainerId::parse("B").unwrap_err().code(),
            "scan_too_short"
        );
    }
}
