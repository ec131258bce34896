//! One custody event as it is stored and as it travels: the bench store writes it, the wire
//! carries it, the registry keeps it. The payload is the exact canonical JSON that was hashed;
//! the hash links it to the workstation's previous event ([`crate::hash::event_hash`]).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::hash::{Digest, event_hash};

/// A custody event as a bench recorded it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: Uuid,
    pub workstation: Uuid,
    /// Gapless per workstation, from 1.
    pub seq: u64,
    pub actor: String,
    /// The bench's clock, µs since the Unix epoch (UTC). Never used for ordering.
    pub at: i64,
    pub kind: String,
    pub payload: String,
    /// 64 lower-case hex digits on the wire.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub hash: Digest,
}

impl Envelope {
    /// The hash this event should carry after `prev`.
    pub fn expected_hash(&self, prev: &Digest) -> Digest {
        event_hash(
            prev,
            self.id,
            self.workstation,
            self.seq as i64,
            &self.actor,
            self.at,
            &self.kind,
            &self.payload,
        )
    }

    /// Whether the hash it carries is the one computed over `prev` and its own fields.
    pub fn links_to(&self, prev: &Digest) -> bool {
        self.expected_hash(prev) == self.hash
    }
}

/// An event the registry ordered: its place in the site's order and when it was stored there.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    pub server_seq: u64,
    /// The registry's clock when it stored the event (µs).
    pub received_at: i64,
    pub event: Envelope,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::GENESIS;

    #[test]
    fn links_only_to_its_own_previous_and_content() {
        let mut e = Envelope {
            id: Uuid::from_u128(1),
            workstation: Uuid::from_u128(2),
            seq: 1,
            actor: "tester".into(),
            at: 5,
            kind: "thawed".into(),
            payload: "{}".into(),
            hash: GENESIS,
        };
        e.hash = e.expected_hash(&GENESIS);
        assert!(e.links_to(&GENESIS));
        assert!(!e.links_to(&Digest::from_bytes([1; 32])));
        let mut changed = e.clone();
        changed.payload = "{ }".into();
        assert!(!changed.links_to(&GENESIS));
    }
}
