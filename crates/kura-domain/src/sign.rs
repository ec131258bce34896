//! Electronic signatures that verify without trusting the bench that made them: Ed25519 over
//! the signed event's hash, the meaning and the time. A user's key is derived from their
//! password (Argon2id with a salt of their own, in `kura-app`) and its public half is published
//! in their `credential_set` event, so every bench, the registry and an inspector with the
//! exported events can check a signature; a badge PIN never makes one.

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::user::Meaning;

/// The public half of a user's signing key and the salt the key was derived with, as a
/// `credential_set` event publishes them (both hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKey {
    /// Ed25519 public key, 32 bytes.
    pub ed25519: String,
    /// The Argon2id salt the key's seed was derived with, 16 bytes.
    pub salt: String,
}

/// What a signature covers: the exact event signed (its hash), what the signature means and
/// when it was made (the `signed` event's own time, µs).
pub fn message(event_hash: &str, meaning: Meaning, at: i64) -> Vec<u8> {
    format!(
        "kura-signature/1\n{}\n{}\n{at}",
        event_hash.trim().to_ascii_lowercase(),
        meaning.as_str()
    )
    .into_bytes()
}

/// A signing key in memory, for one signature (made from the seed the password derives).
pub struct SigningKey(Ed25519KeyPair);

impl SigningKey {
    pub fn from_seed(seed: &[u8; 32]) -> Option<SigningKey> {
        Ed25519KeyPair::from_seed_unchecked(seed)
            .ok()
            .map(SigningKey)
    }

    /// The public key, hex.
    pub fn public_hex(&self) -> String {
        hex(self.0.public_key().as_ref())
    }

    /// The signature of `msg`, hex (64 bytes).
    pub fn sign(&self, msg: &[u8]) -> String {
        hex(self.0.sign(msg).as_ref())
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public_hex())
    }
}

/// Whether `signature` (hex) is `public` (hex)'s signature of `msg`.
pub fn verify(public: &str, msg: &[u8], signature: &str) -> bool {
    match (unhex(public), unhex(signature)) {
        (Some(k), Some(s)) if k.len() == 32 && s.len() == 64 => {
            UnparsedPublicKey::new(&ED25519, k).verify(msg, &s).is_ok()
        }
        _ => false,
    }
}

/// A public key's fingerprint as the audit report prints it: the first 16 bytes of its SHA-256,
/// in groups of four hex digits (`a1b2 c3d4 …`).
pub fn fingerprint(public: &str) -> String {
    let d = Sha256::digest(unhex(public).unwrap_or_default());
    grouped(&hex(&d[..16]))
}

/// Hex digits in groups of four, as fingerprints are shown and typed (`a1b2 c3d4 …`).
pub fn grouped(hex: &str) -> String {
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Each user's signing key at a point of the log, as its events are read in the order they
/// are folded: what a signature at that point is checked against.
#[derive(Debug, Clone, Default)]
pub struct KeyBook {
    keys: std::collections::HashMap<String, PublicKey>,
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("{signer} had published no signing key when this signature was made")]
    NoKey { signer: String },
    #[error("the signature carries no Ed25519 signature, but {signer} has a signing key")]
    Missing { signer: String },
    #[error(
        "the Ed25519 signature does not verify against {signer}'s key (fingerprint {fingerprint}) for this event hash, meaning and time: it was made with another key, or the record was changed"
    )]
    Invalid { signer: String, fingerprint: String },
}

impl KeyBook {
    /// Takes in an event: a password credential with a key replaces its user's key.
    pub fn apply(&mut self, body: &crate::EventBody) {
        if let crate::EventBody::CredentialSet {
            user,
            secret: crate::Secret::Password,
            key: Some(k),
            ..
        } = body
        {
            self.keys.insert(user.clone(), k.clone());
        }
    }

    pub fn key(&self, user: &str) -> Option<&PublicKey> {
        self.keys.get(user)
    }

    /// Checks a `signed` event made at `at` (µs) against its signer's key at this point. A
    /// signer who never published a key (a signature made before signing keys) passes only
    /// when the signature carries none: `strict` refuses that too (the registry, on a site whose
    /// signers all have keys).
    pub fn check(
        &self,
        body: &crate::EventBody,
        at: i64,
        strict: bool,
    ) -> Result<(), SignatureError> {
        let crate::EventBody::Signed {
            event_hash,
            signer,
            meaning,
            signature,
            ..
        } = body
        else {
            return Ok(());
        };
        match (self.keys.get(signer), signature) {
            (None, None) if !strict => Ok(()),
            (None, _) => Err(SignatureError::NoKey {
                signer: signer.clone(),
            }),
            (Some(_), None) => Err(SignatureError::Missing {
                signer: signer.clone(),
            }),
            (Some(k), Some(sig)) => {
                if verify(&k.ed25519, &message(event_hash, *meaning, at), sig) {
                    Ok(())
                } else {
                    Err(SignatureError::Invalid {
                        signer: signer.clone(),
                        fingerprint: fingerprint(&k.ed25519),
                    })
                }
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_key_message_and_bytes() {
        let k = SigningKey::from_seed(&[7; 32]).unwrap();
        let other = SigningKey::from_seed(&[8; 32]).unwrap();
        let m = message("ab".repeat(32).as_str(), Meaning::Approved, 42);
        let s = k.sign(&m);
        assert!(verify(&k.public_hex(), &m, &s));
        // (what, public key, message, signature)
        let mut flipped = s.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        let cases = [
            ("another key", other.public_hex(), m.clone(), s.clone()),
            (
                "another meaning",
                k.public_hex(),
                message("ab".repeat(32).as_str(), Meaning::Reviewed, 42),
                s.clone(),
            ),
            (
                "another time",
                k.public_hex(),
                message("ab".repeat(32).as_str(), Meaning::Approved, 43),
                s.clone(),
            ),
            ("a changed byte", k.public_hex(), m.clone(), flipped),
            ("not hex", k.public_hex(), m.clone(), "zz".into()),
        ];
        for (what, key, msg, sig) in cases {
            assert!(!verify(&key, &msg, &sig), "{what}");
        }
        assert_eq!(fingerprint(&k.public_hex()).len(), 39);
        assert_ne!(
            fingerprint(&k.public_hex()),
            fingerprint(&other.public_hex())
        );
    }
}
