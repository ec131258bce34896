//! The tamper-evident chain: each event's hash covers the previous event's hash (of the same
//! workstation) and every stored field of this one. The bench store and the central registry
//! both compute it with this one function; its bytes are a compatibility promise.
//!
//! [`Digest`] is a SHA-256 as Kura passes it around: 32 bytes in memory and in the databases,
//! 64 lower-case hex digits in JSON and on screen (like a git object id). Parsing is the only
//! way to get one from text, so a value of the type is always well formed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// A SHA-256 digest: an event's hash, a file's checksum.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// The hash before a workstation's first event.
pub const GENESIS: Digest = Digest([0; 32]);

/// Text that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a SHA-256 written as 64 hex digits")]
pub struct DigestError(pub String);

impl Digest {
    pub const fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// From a database column: exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Digest> {
        <[u8; 32]>::try_from(bytes).ok().map(Digest)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// The SHA-256 of some bytes.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    pub fn is_genesis(&self) -> bool {
        *self == GENESIS
    }

    /// Upper-case hex pairs joined by colons, the way certificate tools print a SHA-256
    /// fingerprint (`AB:CD:…`): what an administrator reads out to compare a site's CA.
    pub fn colon_hex(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

impl From<[u8; 32]> for Digest {
    fn from(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        // Cannot fail: the buffer is exactly twice the bytes.
        #[allow(clippy::expect_used)]
        let s = hex::encode_to_slice(self.0, &mut buf)
            .ok()
            .and_then(|()| std::str::from_utf8(&buf).ok())
            .expect("64 ASCII hex digits");
        f.write_str(s)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    /// 64 hex digits, either case.
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let mut out = [0u8; 32];
        if s.len() != 64 {
            return Err(DigestError(s.to_owned()));
        }
        hex::decode_to_slice(s, &mut out).map_err(|_| DigestError(s.to_owned()))?;
        Ok(Digest(out))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[allow(clippy::too_many_arguments)]
pub fn event_hash(
    prev: &Digest,
    event_id: Uuid,
    workstation: Uuid,
    seq: i64,
    actor: &str,
    at: i64,
    kind: &str,
    payload: &str,
) -> Digest {
    let mut h = Sha256::new();
    h.update(b"kura-event-v1\0");
    h.update(prev.0);
    h.update(event_id.as_bytes());
    h.update(workstation.as_bytes());
    h.update(seq.to_be_bytes());
    h.update((actor.len() as u64).to_be_bytes());
    h.update(actor.as_bytes());
    h.update(at.to_be_bytes());
    h.update((kind.len() as u64).to_be_bytes());
    h.update(kind.as_bytes());
    h.update(payload.as_bytes());
    Digest(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash of a fixed event: a change here breaks every existing log and the registry.
    #[test]
    fn golden() {
        let id = Uuid::parse_str("01890a5d-ac96-774b-bcce-b302099a8057").unwrap();
        let ws = Uuid::parse_str("01890a5d-ac96-774b-bcce-b302099a8058").unwrap();
        let h = event_hash(
            &GENESIS,
            id,
            ws,
            1,
            "tester",
            1_764_000_000_000_000,
            "thawed",
            r#"{"kind":"thawed","specimen":"G123498654321H"}"#,
        );
        assert_eq!(h.to_string(), GOLDEN);
        let next = event_hash(&h, id, ws, 2, "tester", 1, "thawed", "{}");
        assert_ne!(next, h, "the chain moves");
    }

    /// Text in, text out: lower-case hex, either case read, anything else refused with the
    /// text it was given.
    #[test]
    fn digest_text() {
        let d: Digest = GOLDEN.parse().unwrap();
        assert_eq!(d.to_string(), GOLDEN);
        assert_eq!(GOLDEN.to_uppercase().parse::<Digest>(), Ok(d));
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{GOLDEN}\""));
        assert_eq!(
            serde_json::from_str::<Digest>(&format!("\"{GOLDEN}\"")).unwrap(),
            d
        );
        assert_eq!(Digest::from_slice(d.as_bytes()), Some(d));
        assert_eq!(Digest::from_slice(&[0; 31]), None);
        assert_eq!(GENESIS.to_string(), "0".repeat(64));
        for bad in [
            "",
            "zz",
            &"0".repeat(63),
            &"0".repeat(65),
            &"g".repeat(64),
            &format!("{}é", &GOLDEN[..62]),
        ] {
            assert_eq!(
                bad.parse::<Digest>(),
                Err(DigestError(bad.to_string())),
                "{bad:?}"
            );
            assert!(
                serde_json::from_str::<Digest>(&format!("{bad:?}")).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            Digest::of(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(Digest::of(b"abc").colon_hex().starts_with("BA:78:16:BF:"));
        assert_eq!(Digest::of(b"abc").colon_hex().len(), 32 * 3 - 1);
    }

    const GOLDEN: &str = "4e5c95de2730ec5c8240bf68c4577bfdad1876ad2f2d23509ed17ebb4cbfef1e";
}
