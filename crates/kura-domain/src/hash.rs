//! The tamper-evident chain: each event's hash covers the previous event's hash (of the same
//! workstation) and every stored field of this one. The bench store and the central registry
//! both compute it with this one function; its bytes are a compatibility promise.

use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const GENESIS: [u8; 32] = [0; 32];

#[allow(clippy::too_many_arguments)]
pub fn event_hash(
    prev: &[u8; 32],
    event_id: Uuid,
    workstation: Uuid,
    seq: i64,
    actor: &str,
    at: i64,
    kind: &str,
    payload: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kura-event-v1\0");
    h.update(prev);
    h.update(event_id.as_bytes());
    h.update(workstation.as_bytes());
    h.update(seq.to_be_bytes());
    h.update((actor.len() as u64).to_be_bytes());
    h.update(actor.as_bytes());
    h.update(at.to_be_bytes());
    h.update((kind.len() as u64).to_be_bytes());
    h.update(kind.as_bytes());
    h.update(payload.as_bytes());
    h.finalize().into()
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
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, GOLDEN);
        let next = event_hash(&h, id, ws, 2, "tester", 1, "thawed", "{}");
        assert_ne!(next, h, "the chain moves");
    }

    const GOLDEN: &str = "4e5c95de2730ec5c8240bf68c4577bfdad1876ad2f2d23509ed17ebb4cbfef1e";
}
