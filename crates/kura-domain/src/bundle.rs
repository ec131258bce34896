//! A shipment's bundle: what travels with tubes to another site, through the registry or as a
//! sealed file. It holds the sending bench's `shipment_dispatched` event and the events it names
//! by hash (`Shipment::carries`: the tubes' registrations and lineage, each tube's `shipped`),
//! each with the hash of the event before it in its workstation's chain, and the sending
//! workstation's Ed25519 signature over the dispatch's hash.
//!
//! Checking a bundle needs nothing but the bundle: every event hashes to what it carries, the
//! dispatch names exactly the events carried, and the signature verifies. Whether the key is
//! trusted is the receiver's question ([`crate::sign::fingerprint`]). A forger who edits an
//! event and re-hashes it consistently changes the dispatch's hash, so the signature fails.

use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;
use crate::event::EventBody;
use crate::hash::Digest;
use crate::shipment::Shipment;

/// The bundle format this code writes and reads.
pub const FORMAT: u32 = 1;

/// An event with the hash of the one before it in its workstation's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    #[serde(flatten)]
    pub event: Envelope,
    pub prev: Digest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub kura_bundle: u32,
    pub shipment: String,
    /// The sending site's code, when it is enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    pub dispatch: Carried,
    pub events: Vec<Carried>,
    /// The sending workstation's public key (hex).
    pub key: String,
    /// Its signature (hex) of [`message`] over the dispatch's hash.
    pub signature: String,
}

/// What the sending workstation signs.
pub fn message(dispatch_hash: &Digest) -> Vec<u8> {
    format!("kura-shipment-bundle/1\n{dispatch_hash}").into_bytes()
}

/// Why a bundle cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleProblem {
    #[error("this is bundle format {0}; this Kura reads format {FORMAT}")]
    Format(u32),
    #[error("event {0} does not hash to what it carries: it was changed")]
    EventHash(uuid::Uuid),
    #[error("the bundle's first event is not a shipment's dispatch")]
    NotADispatch,
    #[error("a follow-up carries a tube's block, and this is something else")]
    NotAFollowUp,
    #[error("the dispatch is of shipment {dispatched}, the bundle says {bundle}")]
    WrongShipment { dispatched: String, bundle: String },
    #[error("event {0} is in the bundle but the dispatch does not name it")]
    NotNamed(uuid::Uuid),
    #[error("the dispatch names an event the bundle does not carry ({0})")]
    Missing(Digest),
    #[error(
        "the signature does not verify: the bundle was changed after it was signed, or signed by another key"
    )]
    Signature,
}

impl BundleProblem {
    pub fn code(&self) -> &'static str {
        match self {
            BundleProblem::Format(_) => "bundle_format",
            BundleProblem::Signature => "bundle_signature",
            _ => "bundle_tampered",
        }
    }
}

impl Bundle {
    /// Checks the bundle on its own (not whether its key is trusted); returns the shipment its
    /// dispatch states.
    pub fn check(&self) -> Result<Shipment, BundleProblem> {
        if self.kura_bundle != FORMAT {
            return Err(BundleProblem::Format(self.kura_bundle));
        }
        for c in std::iter::once(&self.dispatch).chain(&self.events) {
            if !c.event.links_to(&c.prev) {
                return Err(BundleProblem::EventHash(c.event.id));
            }
        }
        let shipment = match serde_json::from_str::<EventBody>(&self.dispatch.event.payload) {
            Ok(EventBody::ShipmentDispatched { shipment })
                if self.dispatch.event.kind == "shipment_dispatched" =>
            {
                shipment
            }
            _ => return Err(BundleProblem::NotADispatch),
        };
        if shipment.id != self.shipment {
            return Err(BundleProblem::WrongShipment {
                dispatched: shipment.id,
                bundle: self.shipment.clone(),
            });
        }
        if let Some(c) = self
            .events
            .iter()
            .find(|c| !shipment.carries.contains(&c.event.hash))
        {
            return Err(BundleProblem::NotNamed(c.event.id));
        }
        if let Some(h) = shipment
            .carries
            .iter()
            .find(|h| !self.events.iter().any(|c| &c.event.hash == *h))
        {
            return Err(BundleProblem::Missing(*h));
        }
        if !crate::sign::verify(
            &self.key,
            &message(&self.dispatch.event.hash),
            &self.signature,
        ) {
            return Err(BundleProblem::Signature);
        }
        Ok(shipment)
    }

    /// The shipment's tubes as the carried registrations state them, in manifest order (a tube
    /// without one is left out: it came to the sender in another shipment).
    pub fn tubes(&self, shipment: &Shipment) -> Vec<crate::specimen::SpecimenRecord> {
        let mut records = std::collections::HashMap::new();
        for (_, body) in self.bodies() {
            if let Some(
                EventBody::Registered { specimen, .. } | EventBody::Derived { specimen, .. },
            ) = body
            {
                records.insert(specimen.code.clone(), specimen);
            }
        }
        shipment
            .specimens
            .iter()
            .filter_map(|c| records.remove(c))
            .collect()
    }

    /// The carried events' bodies, in the sender's order.
    pub fn bodies(&self) -> impl Iterator<Item = (&Carried, Option<EventBody>)> {
        self.events
            .iter()
            .map(|c| (c, serde_json::from_str(&c.event.payload).ok()))
    }
}

/// A signed follow-up to a shipment's bundle: a tube blocked at the sending site after it left
/// (its donor withdrew consent, or it was quarantined), carried to the site that holds it now.
/// The sending workstation signs [`follow_up_message`] over the shipment and the event's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    pub shipment: String,
    pub event: Carried,
    /// The signing workstation's public key (hex).
    pub key: String,
    pub signature: String,
}

/// What a follow-up's signature covers.
pub fn follow_up_message(shipment: &str, event_hash: &Digest) -> Vec<u8> {
    format!("kura-shipment-follow-up/1\n{shipment}\n{event_hash}").into_bytes()
}

impl FollowUp {
    /// The tube it blocks and why, once the event hashes to what it carries, is a `blocked`,
    /// and the signature verifies.
    pub fn check(&self) -> Result<(crate::id::SpecimenCode, String), BundleProblem> {
        if !self.event.event.links_to(&self.event.prev) {
            return Err(BundleProblem::EventHash(self.event.event.id));
        }
        let (specimen, reason) = match serde_json::from_str::<EventBody>(&self.event.event.payload)
        {
            Ok(EventBody::Blocked { specimen, reason }) if self.event.event.kind == "blocked" => {
                (specimen, reason)
            }
            _ => return Err(BundleProblem::NotAFollowUp),
        };
        if !crate::sign::verify(
            &self.key,
            &follow_up_message(&self.shipment, &self.event.event.hash),
            &self.signature,
        ) {
            return Err(BundleProblem::Signature);
        }
        Ok((specimen, reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::GENESIS;
    use crate::rules::tests::{record, sid};
    use crate::shipment::{Coolant, Destination};
    use crate::sign::SigningKey;

    /// A workstation's chain: each body becomes the next event; returns them carried.
    fn chain(bodies: Vec<EventBody>) -> Vec<Carried> {
        let mut prev = GENESIS;
        let mut out = Vec::new();
        for (i, b) in bodies.into_iter().enumerate() {
            let mut e = Envelope {
                id: uuid::Uuid::from_u128(100 + i as u128),
                workstation: uuid::Uuid::from_u128(7),
                seq: i as u64 + 1,
                actor: "tech".into(),
                at: 1_000 + i as i64,
                kind: b.kind().into(),
                payload: serde_json::to_string(&b).unwrap(),
                hash: GENESIS,
            };
            e.hash = e.expected_hash(&prev);
            out.push(Carried { event: e, prev });
            prev = out.last().unwrap().event.hash;
        }
        out
    }

    fn shipment(carries: Vec<Digest>) -> Shipment {
        Shipment {
            id: "SHP-1".into(),
            destination: Destination::Site {
                code: "NCNP".into(),
            },
            specimens: vec![sid(1)],
            coolant: Coolant::Ambient,
            dry_ice_grams: None,
            courier: None,
            tracking: None,
            logger: None,
            mta: None,
            packed: vec![],
            carries,
        }
    }

    /// Re-makes the dispatch over `events` (hashes recomputed, chain kept) and signs it.
    fn seal(events: Vec<Carried>, key: &SigningKey) -> Bundle {
        let mut bodies: Vec<EventBody> = events
            .iter()
            .map(|c| serde_json::from_str(&c.event.payload).unwrap())
            .collect();
        let carried = chain(bodies.clone());
        bodies.push(EventBody::ShipmentDispatched {
            shipment: shipment(carried.iter().map(|c| c.event.hash).collect()),
        });
        let mut all = chain(bodies);
        let dispatch = all.pop().unwrap();
        Bundle {
            kura_bundle: FORMAT,
            shipment: "SHP-1".into(),
            site: Some("NCC".into()),
            signature: key.sign(&message(&dispatch.event.hash)),
            key: key.public_hex(),
            dispatch,
            events: all,
        }
    }

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed(&[n; 32]).unwrap()
    }

    fn bundle() -> Bundle {
        let events = chain(vec![
            EventBody::Registered {
                specimen: record(1, None),
                location: None,
            },
            EventBody::Shipped {
                specimen: sid(1),
                shipment: "SHP-1".into(),
                destination: "site:NCNP".into(),
            },
        ]);
        seal(events, &key(1))
    }

    /// A registration that says another donor, hashed as it would be.
    fn forged_payload(b: &mut Bundle) {
        let mut e = b.events[0].event.clone();
        e.payload = e.payload.replace(&record(1, None).donor, "D-FORGED");
        assert_ne!(e.payload, b.events[0].event.payload);
        e.hash = e.expected_hash(&b.events[0].prev);
        b.events[0].event = e;
    }

    #[test]
    fn a_bundle_is_taken_only_as_its_sender_signed_it() {
        type Change = fn(&mut Bundle);
        let cases: Vec<(&str, Change, Option<BundleProblem>)> = vec![
            ("as signed", |_| {}, None),
            (
                "another format",
                |b| b.kura_bundle = 2,
                Some(BundleProblem::Format(2)),
            ),
            (
                "a flipped byte in an event",
                |b| {
                    let e = &mut b.events[0].event;
                    e.payload = e.payload.replace(&record(1, None).donor, "D-FORGED");
                },
                Some(BundleProblem::EventHash(uuid::Uuid::from_u128(100))),
            ),
            (
                "an event edited and re-hashed",
                forged_payload,
                Some(BundleProblem::NotNamed(uuid::Uuid::from_u128(100))),
            ),
            (
                "edited, re-hashed, the dispatch re-made (a careful forger)",
                |b| {
                    forged_payload(b);
                    let (signature, public) = (b.signature.clone(), b.key.clone());
                    *b = seal(b.events.clone(), &key(9));
                    (b.signature, b.key) = (signature, public);
                },
                Some(BundleProblem::Signature),
            ),
            (
                "an event left out",
                |b| {
                    b.events.pop();
                },
                Some(BundleProblem::Missing(bundle().events[1].event.hash)),
            ),
            (
                "another shipment's id",
                |b| b.shipment = "SHP-2".into(),
                Some(BundleProblem::WrongShipment {
                    dispatched: "SHP-1".into(),
                    bundle: "SHP-2".into(),
                }),
            ),
            (
                "another key's signature",
                |b| b.signature = key(2).sign(&message(&b.dispatch.event.hash)),
                Some(BundleProblem::Signature),
            ),
        ];
        for (what, change, want) in cases {
            let mut b = bundle();
            change(&mut b);
            assert_eq!(b.check().err(), want, "{what}");
        }
        // Re-signed whole by another key, it checks: whether that key is trusted is the
        // receiver's question.
        let b = seal(bundle().events, &key(3));
        assert_eq!(b.check().unwrap().carries.len(), 2);
        assert_ne!(
            crate::sign::fingerprint(&b.key),
            crate::sign::fingerprint(&bundle().key)
        );
    }

    #[test]
    fn a_follow_up_is_taken_only_as_its_sender_signed_it() {
        let blocked = chain(vec![EventBody::Blocked {
            specimen: sid(1),
            reason: "consent withdrawn: donor's request".into(),
        }])
        .remove(0);
        let signed = |c: &Carried, k: &SigningKey, shipment: &str| FollowUp {
            shipment: shipment.into(),
            event: c.clone(),
            key: k.public_hex(),
            signature: k.sign(&follow_up_message(shipment, &c.event.hash)),
        };
        let good = signed(&blocked, &key(1), "SHP-1");
        assert_eq!(
            good.check(),
            Ok((sid(1), "consent withdrawn: donor's request".into()))
        );
        let mut edited = blocked.clone();
        edited.event.payload = edited.event.payload.replace("request", "wish");
        let mut rehashed = edited.clone();
        rehashed.event.hash = rehashed.event.expected_hash(&rehashed.prev);
        let thawed = chain(vec![EventBody::Thawed { specimen: sid(1) }]).remove(0);
        let mut other_shipment = good.clone();
        other_shipment.shipment = "SHP-2".into();
        let cases: Vec<(&str, FollowUp, Option<&str>)> = vec![
            ("as signed", good.clone(), None),
            (
                "an edited block",
                signed(&edited, &key(1), "SHP-1"),
                Some("bundle_tampered"),
            ),
            (
                "edited and re-hashed after signing",
                FollowUp {
                    event: rehashed,
                    ..good.clone()
                },
                Some("bundle_signature"),
            ),
            (
                "not a block",
                signed(&thawed, &key(1), "SHP-1"),
                Some("bundle_tampered"),
            ),
            (
                "moved to another shipment",
                other_shipment,
                Some("bundle_signature"),
            ),
        ];
        for (what, f, want) in cases {
            assert_eq!(f.check().err().map(|p| p.code()), want, "{what}");
        }
    }
}
