//! What an event touches: the one answer every projection asks. The bench's sync asks whether
//! two sets of events can be applied in either order (a rebase is skipped when they touch
//! nothing in common, so a variant forgotten here lets a bench drift from the registry's order);
//! the registry asks which rows to load before folding a batch; conflicts and the audit ask what
//! an event is about. Kept beside [`EventBody`] so a new variant is answered once, here, where
//! the compiler asks for it.

use std::collections::BTreeSet;

use crate::event::{EventBody, Location, Placement};
use crate::id::ContainerId;
use crate::position::Pos;

/// What one event touches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// The specimen or container a rule's refusal of this event is about (a conflict's
    /// subject): the container of a container event, else the specimen; none for other events.
    pub subject: Option<String>,
    /// What a person reads the event as being about (the audit's subject column): the subject,
    /// else the user, the donor, the event signed, the codes printed, the scope exported.
    pub about: String,
    /// Specimens it names: its own, the parent it was made from, the codes whose labels it
    /// printed. (The box a disposal leaves is not named: callers that need it add the boxes the
    /// specimen is in.)
    pub specimens: BTreeSet<String>,
    /// Containers it names: where it puts or takes a specimen, what it creates or moves, and
    /// their parents before and after.
    pub containers: BTreeSet<String>,
    /// Positions of specimens it fills or empties.
    pub specimen_slots: BTreeSet<(String, Pos)>,
    /// Positions of containers in their parents it fills or empties.
    pub container_slots: BTreeSet<(String, Pos)>,
    /// Users it adds or changes.
    pub users: BTreeSet<String>,
    /// It changes the storage layout (a container created or moved).
    pub layout: bool,
}

impl Footprint {
    fn location(&mut self, l: &Location) {
        self.containers.insert(l.container.to_string());
        self.specimen_slots.insert((l.container.to_string(), l.pos));
    }

    fn placement(&mut self, p: &Placement) {
        self.containers.insert(p.parent.to_string());
        if let Some(pos) = p.pos {
            self.container_slots.insert((p.parent.to_string(), pos));
        }
    }

    fn container(&mut self, c: &ContainerId) {
        self.containers.insert(c.to_string());
        self.layout = true;
    }
}

impl EventBody {
    /// [`Footprint::subject`] alone, without building the rest: the registry's fold asks it of
    /// every event it folds.
    pub fn subject(&self) -> Option<String> {
        match self {
            EventBody::ContainerCreated { container } => Some(container.id.to_string()),
            EventBody::ContainerMoved { container, .. } => Some(container.to_string()),
            b => b.specimen().map(|s| s.to_string()),
        }
    }

    /// What this event touches. Every variant is named (no catch-all), so a new one must say.
    pub fn footprint(&self) -> Footprint {
        let mut f = Footprint {
            subject: self.subject(),
            ..Footprint::default()
        };
        if let Some(s) = self.specimen() {
            f.specimens.insert(s.to_string());
        }
        if let Some(u) = self.user() {
            f.users.insert(u.to_string());
        }
        match self {
            EventBody::Registered { specimen, location }
            | EventBody::Derived {
                specimen, location, ..
            } => {
                if let Some(p) = &specimen.parent {
                    f.specimens.insert(p.to_string());
                }
                if let Some(l) = location {
                    f.location(l);
                }
            }
            EventBody::CheckedIn { location, .. } => f.location(location),
            EventBody::Moved { from, to, .. } => {
                f.location(from);
                f.location(to);
            }
            EventBody::Received { location, .. } => {
                if let Some(l) = location {
                    f.location(l);
                }
            }
            EventBody::ConflictSettled { outcome, .. } => {
                if let Some(l) = outcome.custody.location() {
                    f.location(l);
                }
            }
            EventBody::ContainerCreated { container } => {
                f.container(&container.id);
                if let Some(parent) = &container.parent {
                    f.placement(&Placement {
                        parent: parent.clone(),
                        pos: container.pos,
                    });
                }
            }
            EventBody::ContainerMoved {
                container,
                from,
                to,
            } => {
                f.container(container);
                if let Some(from) = from {
                    f.placement(from);
                }
                f.placement(to);
            }
            EventBody::LabelsPrinted { codes, .. } => {
                f.specimens.extend(codes.iter().cloned());
                f.about = codes.join(" ");
            }
            EventBody::ShipmentDispatched { shipment } => {
                f.specimens
                    .extend(shipment.specimens.iter().map(|c| c.to_string()));
                f.about = shipment.id.clone();
            }
            EventBody::ShipmentArrived {
                shipment, tubes, ..
            } => {
                f.specimens.extend(tubes.iter().map(|t| t.code.to_string()));
                f.about = shipment.id.clone();
            }
            EventBody::KeyTrusted { fingerprint, .. } => f.about = fingerprint.clone(),
            EventBody::ConsentWithdrawn { donor, .. } => f.about = donor.clone(),
            EventBody::Signed { event, .. } => f.about = event.to_string(),
            EventBody::AuditExported { scope, .. } => f.about = scope.clone(),
            EventBody::Imported { file, .. } => f.about = file.clone(),
            // The specimen or user named above is all they touch.
            EventBody::CheckedOut { .. }
            | EventBody::Returned { .. }
            | EventBody::Thawed { .. }
            | EventBody::Consumed { .. }
            | EventBody::Disposed { .. }
            | EventBody::Blocked { .. }
            | EventBody::Unblocked { .. }
            | EventBody::Shipped { .. }
            | EventBody::Distributed { .. }
            | EventBody::ConflictResolved { .. }
            | EventBody::UserAdded { .. }
            | EventBody::RoleGranted { .. }
            | EventBody::UserDisabled { .. }
            | EventBody::CredentialSet { .. } => {}
        }
        if let Some(s) = self.specimen() {
            f.about = s.to_string();
        } else if let Some(u) = self.user() {
            f.about = u.to_string();
        } else if let Some(s) = &f.subject {
            f.about = s.clone();
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{ContainerSpec, builtin_type};
    use crate::event::{Outcome, Purpose};
    use crate::rules::Custody;
    use crate::rules::tests::{at, cid, record, sid};
    use crate::user::{Meaning, Role, Secret};

    fn spec(id: &str, parent: Option<&str>, pos: Option<(u16, u16)>) -> ContainerSpec {
        let (kind, geometry) = builtin_type("box-9x9").unwrap();
        ContainerSpec {
            id: cid(id),
            kind,
            name: id.into(),
            type_name: "box-9x9".into(),
            geometry,
            temperature: None,
            parent: parent.map(cid),
            pos: pos.map(|(r, c)| Pos::new(r, c)),
        }
    }

    /// A footprint in one line: `subject | about | specimens | containers | slots | container
    /// slots | users | layout`.
    fn line(f: &Footprint) -> String {
        let names = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(",");
        let slots = |s: &BTreeSet<(String, Pos)>| {
            s.iter()
                .map(|(c, p)| format!("{c}@{}.{}", p.row, p.col))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{} | {} | {} | {} | {} | {} | {} | {}",
            f.subject.as_deref().unwrap_or("-"),
            f.about,
            names(&f.specimens),
            names(&f.containers),
            slots(&f.specimen_slots),
            slots(&f.container_slots),
            names(&f.users),
            if f.layout { "layout" } else { "-" }
        )
    }

    #[test]
    fn every_variant_says_what_it_touches() {
        let (s1, s2) = (sid(1).to_string(), sid(2).to_string());
        let ev = uuid::Uuid::from_u128(7);
        let outcome = |custody| Outcome {
            custody,
            blocked: false,
            freeze_thaw: 0,
            quantity: None,
        };
        // (variant, event, footprint)
        let cases: Vec<(&str, EventBody, String)> = vec![
            (
                "registered, stored in the same act",
                EventBody::Registered {
                    specimen: record(1, None),
                    location: Some(at("BX1", 0, 1)),
                },
                format!("{s1} | {s1} | {s1} | BX1 | BX1@0.1 |  |  | -"),
            ),
            (
                "registered, not stored",
                EventBody::Registered {
                    specimen: record(1, None),
                    location: None,
                },
                format!("{s1} | {s1} | {s1} |  |  |  |  | -"),
            ),
            (
                "derived from a parent",
                EventBody::Derived {
                    specimen: record(2, Some(1)),
                    aliquot: true,
                    location: Some(at("BX1", 2, 2)),
                },
                format!("{s2} | {s2} | {s1},{s2} | BX1 | BX1@2.2 |  |  | -"),
            ),
            (
                "checked in",
                EventBody::CheckedIn {
                    specimen: sid(1),
                    location: at("BX1", 0, 0),
                },
                format!("{s1} | {s1} | {s1} | BX1 | BX1@0.0 |  |  | -"),
            ),
            (
                "checked out",
                EventBody::CheckedOut {
                    specimen: sid(1),
                    to: "Dr. Sato".into(),
                    purpose: Purpose::Analysis,
                    due: None,
                    note: None,
                },
                format!("{s1} | {s1} | {s1} |  |  |  |  | -"),
            ),
            (
                "returned",
                EventBody::Returned {
                    specimen: sid(1),
                    thawed: false,
                },
                format!("{s1} | {s1} | {s1} |  |  |  |  | -"),
            ),
            (
                "moved: both positions",
                EventBody::Moved {
                    specimen: sid(1),
                    from: at("BX1", 0, 0),
                    to: at("BX2", 1, 1),
                },
                format!("{s1} | {s1} | {s1} | BX1,BX2 | BX1@0.0,BX2@1.1 |  |  | -"),
            ),
            (
                "thawed",
                EventBody::Thawed { specimen: sid(1) },
                format!("{s1} | {s1} | {s1} |  |  |  |  | -"),
            ),
            (
                "consumed",
                EventBody::Consumed {
                    specimen: sid(1),
                    amount: None,
                    used_up: true,
                },
                format!("{s1} | {s1} | {s1} |  |  |  |  | -"),
            ),
            (
                "disposed",
                EventBody::Disposed {
                    specimen: sid(1),
                    reason: "expired".into(),
                },
                format!("{s1} | {s1} | {s1} |  |  |  |  | -"),
            ),
            (
                "blocked",
                EventBody::Blocked {
                    specimen: sid(1),
                    reason: "consent".into(),
                },
                format!("{s1} | {s1} | {s1} |  |  |  |  | -"),
            ),
            (
                "unblocked",
                EventBody::Unblocked {
                    specimen: sid(1),
                    reason: "cleared".into(),
                },
                format!("{s1} | {s1} | {s1} |  |  |  |  | -"),
            ),
            (
                "shipped",
                EventBody::Shipped {
                    specimen: sid(1),
                    shipment: "SHP-1".into(),
                    destination: "NCNP".into(),
                },
                format!("{s1} | {s1} | {s1} |  |  |  |  | -"),
            ),
            (
                "received into a box",
                EventBody::Received {
                    specimen: sid(1),
                    shipment: "SHP-1".into(),
                    location: Some(at("BX3", 4, 4)),
                },
                format!("{s1} | {s1} | {s1} | BX3 | BX3@4.4 |  |  | -"),
            ),
            (
                "container created in a parent's position",
                EventBody::ContainerCreated {
                    container: spec("BX1", Some("RK1"), Some((0, 2))),
                },
                "BX1 | BX1 |  | BX1,RK1 |  | RK1@0.2 |  | layout".to_string(),
            ),
            (
                "container moved: both places",
                EventBody::ContainerMoved {
                    container: cid("BX1"),
                    from: Some(Placement {
                        parent: cid("RK1"),
                        pos: Some(Pos::new(0, 2)),
                    }),
                    to: Placement {
                        parent: cid("RK2"),
                        pos: Some(Pos::new(1, 0)),
                    },
                },
                "BX1 | BX1 |  | BX1,RK1,RK2 |  | RK1@0.2,RK2@1.0 |  | layout".to_string(),
            ),
            (
                "conflict resolved",
                EventBody::ConflictResolved {
                    specimen: sid(1),
                    events: vec![ev],
                    resolution: "ok".into(),
                },
                format!("{s1} | {s1} | {s1} |  |  |  |  | -"),
            ),
            (
                "conflict settled back into a box",
                EventBody::ConflictSettled {
                    specimen: sid(1),
                    keep: ev,
                    discard: vec![],
                    reason: "ok".into(),
                    outcome: outcome(Custody::Stored {
                        at: at("BX1", 3, 3),
                    }),
                },
                format!("{s1} | {s1} | {s1} | BX1 | BX1@3.3 |  |  | -"),
            ),
            (
                "labels printed",
                EventBody::LabelsPrinted {
                    codes: vec![s1.clone(), s2.clone()],
                    stock: "cryo".into(),
                    target: "zebra".into(),
                    reprints: vec![],
                },
                format!("- | {s1} {s2} | {s1},{s2} |  |  |  |  | -"),
            ),
            (
                "user added",
                EventBody::UserAdded {
                    user: "sato".into(),
                    name: "Sato".into(),
                    role: Role::Technician,
                    badge: None,
                },
                "- | sato |  |  |  |  | sato | -".to_string(),
            ),
            (
                "role granted",
                EventBody::RoleGranted {
                    user: "sato".into(),
                    role: Role::Supervisor,
                },
                "- | sato |  |  |  |  | sato | -".to_string(),
            ),
            (
                "user disabled",
                EventBody::UserDisabled {
                    user: "sato".into(),
                    reason: "left".into(),
                },
                "- | sato |  |  |  |  | sato | -".to_string(),
            ),
            (
                "credential set",
                EventBody::CredentialSet {
                    user: "sato".into(),
                    secret: Secret::Pin,
                    hash: "$argon2id$…".into(),
                    key: None,
                },
                "- | sato |  |  |  |  | sato | -".to_string(),
            ),
            (
                "consent withdrawn",
                EventBody::ConsentWithdrawn {
                    donor: "P-0001".into(),
                    reason: "asked".into(),
                },
                "- | P-0001 |  |  |  |  |  | -".to_string(),
            ),
            (
                "audit exported",
                EventBody::AuditExported {
                    scope: "2026-01-01..2026-03-31".into(),
                    format: "pdf".into(),
                    events: 3,
                    head: "00".into(),
                    sha256: "00".into(),
                },
                "- | 2026-01-01..2026-03-31 |  |  |  |  |  | -".to_string(),
            ),
            (
                "imported",
                EventBody::Imported {
                    file: "cohort.xlsx".into(),
                    format: "xlsx".into(),
                    sha256: "00".into(),
                    rows: 5000,
                    issued: 5000,
                },
                "- | cohort.xlsx |  |  |  |  |  | -".to_string(),
            ),
            (
                "shipment dispatched",
                EventBody::ShipmentDispatched {
                    shipment: crate::shipment::Shipment {
                        id: "SHP-1".into(),
                        destination: crate::shipment::Destination::Site {
                            code: "NCNP".into(),
                        },
                        specimens: vec![sid(1), sid(2)],
                        coolant: crate::shipment::Coolant::Ambient,
                        dry_ice_grams: None,
                        courier: None,
                        tracking: None,
                        logger: None,
                        packed: vec![],
                        carries: vec![],
                        mta: None,
                    },
                },
                format!("- | SHP-1 | {s1},{} |  |  |  |  | -", sid(2)),
            ),
            (
                "distributed",
                EventBody::Distributed {
                    specimen: sid(1),
                    shipment: "SHP-1".into(),
                    recipient: "Dr. Tanaka".into(),
                    mta: "MTA-1".into(),
                },
                format!("{s1} | {s1} | {s1} |  |  |  |  | -"),
            ),
            (
                "shipment arrived",
                EventBody::ShipmentArrived {
                    shipment: crate::shipment::Shipment {
                        id: "SHP-1".into(),
                        destination: crate::shipment::Destination::Site {
                            code: "NCNP".into(),
                        },
                        specimens: vec![sid(1)],
                        coolant: crate::shipment::Coolant::Ambient,
                        dry_ice_grams: None,
                        courier: None,
                        tracking: None,
                        logger: None,
                        packed: vec![],
                        carries: vec![],
                        mta: None,
                    },
                    dispatch: crate::hash::GENESIS,
                    key: "a1b2".into(),
                    tubes: vec![crate::rules::tests::record(1, None)],
                },
                format!("- | SHP-1 | {s1} |  |  |  |  | -"),
            ),
            (
                "key trusted",
                EventBody::KeyTrusted {
                    name: "NCC bench".into(),
                    fingerprint: "a1b2 c3d4".into(),
                },
                "- | a1b2 c3d4 |  |  |  |  |  | -".to_string(),
            ),
            (
                "signed",
                EventBody::Signed {
                    event: ev,
                    event_hash: "00".into(),
                    signer: "sato".into(),
                    name: "Sato".into(),
                    meaning: Meaning::Approved,
                    signature: None,
                },
                format!("- | {ev} |  |  |  |  |  | -"),
            ),
        ];
        let mut kinds = BTreeSet::new();
        for (what, body, want) in &cases {
            kinds.insert(body.kind());
            assert_eq!(line(&body.footprint()), *want, "{what}");
        }
        assert_eq!(kinds.len(), 30, "one row at least per variant: {kinds:?}");
        let known: BTreeSet<&str> = EventBody::KINDS.iter().copied().collect();
        assert_eq!(kinds, known, "EventBody::KINDS names every variant's kind");
    }
}
