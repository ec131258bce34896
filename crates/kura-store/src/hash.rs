//! The tamper-evident chain: each event's hash covers the previous event's hash (of the same
//! workstation) and every stored field of this one.

use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const GENESIS: [u8; 32] = [0; 32];

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
