//! Custody events: the append-only facts Kura records. An event's payload never changes once
//! released (rule 8 of the sync brief); new facts get new variants.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::container::ContainerSpec;
use crate::id::{ContainerId, SpecimenCode};
use crate::position::Pos;
use crate::rules::Custody;
use crate::shipment::Shipment;
use crate::specimen::{Quantity, SpecimenRecord};
use crate::time::Timestamp;
use crate::user::{Meaning, Role, Secret};

/// Where a specimen sits: a container that holds specimens, and a position in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    pub container: ContainerId,
    pub pos: Pos,
}

/// Where a container sits: in a parent, at a position when the parent has positions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Placement {
    pub parent: ContainerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<Pos>,
}

/// A specimen's custody as a settled conflict leaves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub custody: Custody,
    pub blocked: bool,
    pub freeze_thaw: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
}

/// Why a specimen leaves storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Analysis,
    Qc,
    Distribution,
    Transfer,
    Other,
}

impl Purpose {
    pub fn parse(s: &str) -> Option<Purpose> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "analysis" => Purpose::Analysis,
            "qc" => Purpose::Qc,
            "distribution" => Purpose::Distribution,
            "transfer" => Purpose::Transfer,
            "other" => Purpose::Other,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Analysis => "analysis",
            Purpose::Qc => "qc",
            Purpose::Distribution => "distribution",
            Purpose::Transfer => "transfer",
            Purpose::Other => "other",
        }
    }
}

/// The custody events. Serialized with a `kind` tag; the tag names are a compatibility promise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    /// A specimen is registered; with `location`, it is stored there in the same act (inventory
    /// import, register-and-store).
    Registered {
        specimen: SpecimenRecord,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<Location>,
    },
    /// An aliquot (same material) or a derivative (DNA from blood …) is made from a parent.
    Derived {
        specimen: SpecimenRecord,
        aliquot: bool,
        /// Stored there in the same act.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<Location>,
    },
    CheckedIn {
        specimen: SpecimenCode,
        location: Location,
    },
    CheckedOut {
        specimen: SpecimenCode,
        to: String,
        purpose: Purpose,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<NaiveDate>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Returned {
        specimen: SpecimenCode,
        thawed: bool,
    },
    Moved {
        specimen: SpecimenCode,
        from: Location,
        to: Location,
    },
    Thawed {
        specimen: SpecimenCode,
    },
    Consumed {
        specimen: SpecimenCode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount: Option<Quantity>,
        used_up: bool,
    },
    Disposed {
        specimen: SpecimenCode,
        reason: String,
    },
    Blocked {
        specimen: SpecimenCode,
        reason: String,
    },
    Unblocked {
        specimen: SpecimenCode,
        reason: String,
    },
    Shipped {
        specimen: SpecimenCode,
        shipment: String,
        destination: String,
    },
    Received {
        specimen: SpecimenCode,
        shipment: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<Location>,
    },
    ContainerCreated {
        container: ContainerSpec,
    },
    ContainerMoved {
        container: ContainerId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Placement>,
        to: Placement,
    },
    ConflictResolved {
        specimen: SpecimenCode,
        events: Vec<Uuid>,
        resolution: String,
    },
    /// A person settled a conflict: which of the disagreeing events is true (`keep`), which are
    /// not (`discard`), why, and the specimen's custody from now on (`outcome`, computed where
    /// the person decided, so that every bench and the registry adopt the same state).
    ConflictSettled {
        specimen: SpecimenCode,
        keep: Uuid,
        discard: Vec<Uuid>,
        reason: String,
        outcome: Outcome,
    },
    /// Labels were printed (the print log): which codes, on which stock, to which printer or
    /// file; `reprints` lists the codes that had been printed before.
    LabelsPrinted {
        codes: Vec<String>,
        stock: String,
        target: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reprints: Vec<String>,
    },
    /// A person may act at this site from now on, in `role`. `name` is the printed name that
    /// signatures show; `badge` the `USR-…` code on their badge.
    UserAdded {
        user: String,
        name: String,
        role: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        badge: Option<String>,
    },
    /// A user's role from now on.
    RoleGranted {
        user: String,
        role: Role,
    },
    /// A user may no longer sign in or sign; what they did stays theirs.
    UserDisabled {
        user: String,
        reason: String,
    },
    /// A password or PIN, as an Argon2id hash (PHC string); the secret itself is never recorded.
    CredentialSet {
        user: String,
        secret: Secret,
        hash: String,
        /// With a password: the public half of the signing key it derives (absent for a PIN,
        /// which never signs, and in events made before signing keys).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<crate::sign::PublicKey>,
    },
    /// A donor withdrew consent: every specimen of theirs, and everything derived from them, is
    /// blocked from use and distribution (the `blocked` events that follow in the same
    /// transaction) and queued for destruction. Signed.
    ConsentWithdrawn {
        donor: String,
        reason: String,
    },
    /// An audit report was exported: what it covers (`scope`, e.g. `specimen JP-…` or
    /// `2026-01-01..2026-03-31`), its format (`pdf`, `csv`), how many events it lists, the head
    /// hash it ends at, and the SHA-256 of the file written, so that a printout can be matched
    /// to this record. Signed by whoever exported it.
    AuditExported {
        scope: String,
        format: String,
        events: u64,
        head: String,
        sha256: String,
    },
    /// A file of inventory was imported (`format`: `csv`, `xlsx`): its name, the SHA-256 of its
    /// bytes, how many rows it had and how many of them were issued Kura IDs. Written first in
    /// the transaction that registers its rows, so that every tube of an import can be traced to
    /// the file it came from.
    Imported {
        file: String,
        format: String,
        sha256: String,
        rows: u64,
        issued: u64,
    },
    /// A shipment leaves: its manifest (where to, how it is kept cold, the courier, which tubes).
    /// Each tube's own event follows in the same transaction: `shipped` to a site of the
    /// network, `distributed` out of it. Signed when it leaves the network.
    ShipmentDispatched {
        shipment: Shipment,
    },
    /// A tube leaves Kura's custody for a researcher outside the network, under a material
    /// transfer agreement (`mta`), in `shipment`. Final: nothing more is done with it here.
    /// Signed.
    Distributed {
        specimen: SpecimenCode,
        shipment: String,
        recipient: String,
        mta: String,
    },
    /// Another site's shipment arrives here: this bench took its bundle (checked, signed by a
    /// key the site trusts, kept apart under the dispatch's hash) and holds its tubes in transit
    /// until each is received. `tubes` are their records as the bundle's registrations state
    /// them; `key` is the sending workstation's key's fingerprint.
    ShipmentArrived {
        shipment: Shipment,
        dispatch: crate::hash::Digest,
        key: String,
        tubes: Vec<SpecimenRecord>,
    },
    /// This site trusts a sending workstation's key for sealed shipments: a name for it and the
    /// key's fingerprint, confirmed out of band. Signed by an administrator.
    KeyTrusted {
        name: String,
        fingerprint: String,
    },
    /// An electronic signature: the signer (user ID and printed name, as they were when signing),
    /// what it means, and the exact event signed — its id and its hash, so that the signature
    /// cannot be moved to another record. The time is this event's own.
    Signed {
        event: Uuid,
        event_hash: String,
        signer: String,
        name: String,
        meaning: Meaning,
        /// Ed25519 by the signer's key over the event hash, the meaning and this event's time
        /// ([`crate::sign::message`]); absent in signatures made before signing keys.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
}

impl EventBody {
    /// Every kind this build knows: what a registry advertises, so that a bench newer than it
    /// holds back the kinds it would refuse.
    pub const KINDS: &'static [&'static str] = &[
        "registered",
        "derived",
        "checked_in",
        "checked_out",
        "returned",
        "moved",
        "thawed",
        "consumed",
        "disposed",
        "blocked",
        "unblocked",
        "shipped",
        "received",
        "container_created",
        "container_moved",
        "conflict_resolved",
        "conflict_settled",
        "labels_printed",
        "user_added",
        "role_granted",
        "user_disabled",
        "credential_set",
        "signed",
        "consent_withdrawn",
        "audit_exported",
        "shipment_dispatched",
        "distributed",
        "shipment_arrived",
        "key_trusted",
        "imported",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Registered { .. } => "registered",
            EventBody::Derived { .. } => "derived",
            EventBody::CheckedIn { .. } => "checked_in",
            EventBody::CheckedOut { .. } => "checked_out",
            EventBody::Returned { .. } => "returned",
            EventBody::Moved { .. } => "moved",
            EventBody::Thawed { .. } => "thawed",
            EventBody::Consumed { .. } => "consumed",
            EventBody::Disposed { .. } => "disposed",
            EventBody::Blocked { .. } => "blocked",
            EventBody::Unblocked { .. } => "unblocked",
            EventBody::Shipped { .. } => "shipped",
            EventBody::Received { .. } => "received",
            EventBody::ContainerCreated { .. } => "container_created",
            EventBody::ContainerMoved { .. } => "container_moved",
            EventBody::ConflictResolved { .. } => "conflict_resolved",
            EventBody::ConflictSettled { .. } => "conflict_settled",
            EventBody::LabelsPrinted { .. } => "labels_printed",
            EventBody::UserAdded { .. } => "user_added",
            EventBody::RoleGranted { .. } => "role_granted",
            EventBody::UserDisabled { .. } => "user_disabled",
            EventBody::CredentialSet { .. } => "credential_set",
            EventBody::Signed { .. } => "signed",
            EventBody::ConsentWithdrawn { .. } => "consent_withdrawn",
            EventBody::AuditExported { .. } => "audit_exported",
            EventBody::ShipmentDispatched { .. } => "shipment_dispatched",
            EventBody::Distributed { .. } => "distributed",
            EventBody::ShipmentArrived { .. } => "shipment_arrived",
            EventBody::KeyTrusted { .. } => "key_trusted",
            EventBody::Imported { .. } => "imported",
        }
    }

    /// The specimen this event is about, if any.
    pub fn specimen(&self) -> Option<&SpecimenCode> {
        match self {
            EventBody::Registered { specimen, .. } | EventBody::Derived { specimen, .. } => {
                Some(&specimen.code)
            }
            EventBody::CheckedIn { specimen, .. }
            | EventBody::CheckedOut { specimen, .. }
            | EventBody::Returned { specimen, .. }
            | EventBody::Moved { specimen, .. }
            | EventBody::Thawed { specimen }
            | EventBody::Consumed { specimen, .. }
            | EventBody::Disposed { specimen, .. }
            | EventBody::Blocked { specimen, .. }
            | EventBody::Unblocked { specimen, .. }
            | EventBody::Shipped { specimen, .. }
            | EventBody::Received { specimen, .. }
            | EventBody::Distributed { specimen, .. }
            | EventBody::ConflictResolved { specimen, .. }
            | EventBody::ConflictSettled { specimen, .. } => Some(specimen),
            EventBody::ContainerCreated { .. }
            | EventBody::ContainerMoved { .. }
            | EventBody::LabelsPrinted { .. }
            | EventBody::UserAdded { .. }
            | EventBody::RoleGranted { .. }
            | EventBody::UserDisabled { .. }
            | EventBody::CredentialSet { .. }
            | EventBody::Signed { .. }
            | EventBody::ConsentWithdrawn { .. }
            | EventBody::AuditExported { .. }
            | EventBody::ShipmentDispatched { .. }
            | EventBody::ShipmentArrived { .. }
            | EventBody::KeyTrusted { .. }
            | EventBody::Imported { .. } => None,
        }
    }

    /// The user this event is about (user administration), if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            EventBody::UserAdded { user, .. }
            | EventBody::RoleGranted { user, .. }
            | EventBody::UserDisabled { user, .. }
            | EventBody::CredentialSet { user, .. } => Some(user),
            _ => None,
        }
    }

    /// The canonical payload bytes: compact JSON in declaration order. This is what is hashed.
    // Cannot fail: an event body is plain structs, strings and numbers (no map with non-string
    // keys, no custom serializer that errs).
    #[allow(clippy::expect_used)]
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).expect("event bodies always serialize")
    }
}

/// An event as the log holds it: who, when, where from, what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: Uuid,
    pub workstation: Uuid,
    /// Gapless per workstation, from 1.
    pub seq: u64,
    pub actor: String,
    pub at: Timestamp,
    pub body: EventBody,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::KuraId;

    #[test]
    fn payload_is_stable() {
        let e = EventBody::CheckedOut {
            specimen: SpecimenCode::kura(KuraId::parse("G123498654321H").unwrap()),
            to: "Dr. Sato".into(),
            purpose: Purpose::Analysis,
            due: NaiveDate::from_ymd_opt(2026, 12, 1),
            note: None,
        };
        // The wire and hash format: changing this breaks every existing log.
        assert_eq!(
            e.canonical(),
            r#"{"kind":"checked_out","specimen":"G123498654321H","to":"Dr. Sato","purpose":"analysis","due":"2026-12-01"}"#
        );
        let back: EventBody = serde_json::from_str(&e.canonical()).unwrap();
        assert_eq!(back, e);
    }
}
