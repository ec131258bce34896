//! The state machine as data: an in-memory view, a sequence of events, and the code each
//! step is expected to give.

use std::collections::HashMap;
use std::convert::Infallible;

use super::*;
use crate::container::builtin_type;
use crate::event::Purpose;
use crate::id::KuraId;
use crate::specimen::SampleType;

#[derive(Default)]
struct Mem {
    specimens: HashMap<SpecimenCode, SpecimenState>,
    containers: HashMap<ContainerId, ContainerInfo>,
}

impl View for Mem {
    type Error = Infallible;
    fn specimen(&mut self, code: &SpecimenCode) -> Result<Option<SpecimenState>, Infallible> {
        Ok(self.specimens.get(code).cloned())
    }
    fn container(&mut self, id: &ContainerId) -> Result<Option<ContainerInfo>, Infallible> {
        Ok(self.containers.get(id).cloned())
    }
    fn specimen_at(
        &mut self,
        c: &ContainerId,
        pos: Pos,
    ) -> Result<Option<SpecimenCode>, Infallible> {
        Ok(self
            .specimens
            .values()
            .find(|s| {
                s.location()
                    .is_some_and(|l| &l.container == c && l.pos == pos)
            })
            .map(|s| s.code.clone()))
    }
    fn container_at(
        &mut self,
        parent: &ContainerId,
        pos: Pos,
    ) -> Result<Option<ContainerId>, Infallible> {
        Ok(self
            .containers
            .values()
            .find(|c| c.parent.as_ref() == Some(parent) && c.pos == Some(pos))
            .map(|c| c.id.clone()))
    }
}

impl Mem {
    fn apply(&mut self, body: &EventBody) -> Result<(), RuleError> {
        match decide(self, body) {
            Ok(effect) => {
                self.write(effect);
                Ok(())
            }
            Err(DecideError::Rule(e)) => Err(e),
            Err(DecideError::View(never)) => match never {},
        }
    }

    fn write(&mut self, effect: Effect) {
        match effect {
            Effect::Register { state, .. } | Effect::Update(state) => {
                self.specimens.insert(state.code.clone(), state);
            }
            Effect::CreateContainer(spec) => {
                self.containers.insert(
                    spec.id.clone(),
                    ContainerInfo {
                        id: spec.id,
                        kind: spec.kind,
                        geometry: spec.geometry,
                        parent: spec.parent,
                        pos: spec.pos,
                    },
                );
            }
            Effect::Arrive { tubes, .. } => {
                for (_, state) in tubes {
                    self.specimens.insert(state.code.clone(), state);
                }
            }
            Effect::Log { .. }
            | Effect::Ship(_)
            | Effect::Trust { .. }
            | Effect::User { .. }
            | Effect::Sign { .. }
            | Effect::Withdraw { .. } => {}
            Effect::MoveContainer { id, to } => {
                let c = self.containers.get_mut(&id).unwrap();
                c.parent = Some(to.parent);
                c.pos = to.pos;
            }
        }
    }
}

pub(crate) fn cid(s: &str) -> ContainerId {
    ContainerId::parse(s).unwrap()
}
pub(crate) fn sid(n: u32) -> SpecimenCode {
    SpecimenCode::kura(KuraId::from_data(&format!("TST26{n:07}")).unwrap())
}
fn create(id: &str, ty: &str, parent: Option<&str>, pos: Option<(u16, u16)>) -> EventBody {
    let (kind, geometry) = builtin_type(ty).unwrap();
    EventBody::ContainerCreated {
        container: ContainerSpec {
            id: cid(id),
            kind,
            name: id.into(),
            type_name: ty.into(),
            geometry,
            temperature: None,
            parent: parent.map(cid),
            pos: pos.map(|(r, c)| Pos::new(r, c)),
        },
    }
}
pub(crate) fn record(n: u32, parent: Option<u32>) -> SpecimenRecord {
    SpecimenRecord {
        code: sid(n),
        sample_type: SampleType::parse("PL1").unwrap(),
        container: "PED".into(),
        storage: "A".into(),
        quantity: Some(Quantity::parse("1", "mL").unwrap()),
        study: "S1".into(),
        donor: "D1".into(),
        collected_at: None,
        parent: parent.map(sid),
        freeze_thaw: 0,
    }
}
fn register(n: u32) -> EventBody {
    EventBody::Registered {
        specimen: record(n, None),
        location: None,
    }
}
pub(crate) fn at(c: &str, r: u16, col: u16) -> Location {
    Location {
        container: cid(c),
        pos: Pos::new(r, col),
    }
}
fn check_in(n: u32, c: &str, r: u16, col: u16) -> EventBody {
    EventBody::CheckedIn {
        specimen: sid(n),
        location: at(c, r, col),
    }
}
fn check_out(n: u32) -> EventBody {
    EventBody::CheckedOut {
        specimen: sid(n),
        to: "Dr. Sato".into(),
        purpose: Purpose::Analysis,
        due: None,
        note: None,
    }
}
fn ret(n: u32) -> EventBody {
    EventBody::Returned {
        specimen: sid(n),
        thawed: true,
    }
}

fn world() -> Mem {
    let mut m = Mem::default();
    for e in [
        create("SITE", "site", None, None),
        create("ROOM1", "room", Some("SITE"), None),
        create("F1", "freezer-5-shelves", Some("ROOM1"), None),
        create("R1", "rack-5x4", Some("F1"), Some((0, 0))),
        create("BX1", "box-9x9", Some("R1"), Some((0, 0))),
        create("BX2", "box-5x5", Some("R1"), Some((0, 1))),
    ] {
        m.apply(&e).unwrap_or_else(|err| panic!("{e:?}: {err}"));
    }
    m
}

/// Runs `steps` in order; each is an event and the error code it must give (or "" for ok).
fn check(steps: &[(EventBody, &str)]) -> Mem {
    let mut m = world();
    for (i, (e, want)) in steps.iter().enumerate() {
        let got = m.apply(e).err().map(|e| e.code()).unwrap_or("");
        assert_eq!(got, *want, "step {i}: {e:?}");
    }
    m
}

#[test]
fn custody_sequences() {
    let blocked = EventBody::Blocked {
        specimen: sid(1),
        reason: "consent withdrawn".into(),
    };
    let disposed = EventBody::Disposed {
        specimen: sid(1),
        reason: "consent withdrawn".into(),
    };
    let cases: Vec<Vec<(EventBody, &str)>> = vec![
        // The happy path.
        vec![
            (register(1), ""),
            (check_in(1, "BX1", 0, 0), ""),
            (check_out(1), ""),
            (ret(1), ""),
        ],
        vec![(register(1), ""), (register(1), "already_registered")],
        vec![(check_in(9, "BX1", 0, 0), "unknown_specimen")],
        // Occupied, outside, wrong kind, unknown container.
        vec![
            (register(1), ""),
            (register(2), ""),
            (check_in(1, "BX1", 0, 0), ""),
            (check_in(2, "BX1", 0, 0), "position_occupied"),
        ],
        vec![
            (register(1), ""),
            (check_in(1, "BX1", 9, 0), "bad_position"),
        ],
        vec![
            (register(1), ""),
            (check_in(1, "R1", 0, 0), "not_for_specimens"),
        ],
        vec![
            (register(1), ""),
            (check_in(1, "NOPE", 0, 0), "unknown_container"),
        ],
        // Already in storage, already out, never left.
        vec![
            (register(1), ""),
            (check_in(1, "BX1", 0, 0), ""),
            (check_in(1, "BX1", 0, 1), "already_in_storage"),
        ],
        vec![
            (register(1), ""),
            (check_in(1, "BX1", 0, 0), ""),
            (check_out(1), ""),
            (check_out(1), "already_checked_out"),
        ],
        vec![
            (register(1), ""),
            (check_in(1, "BX1", 0, 0), ""),
            (ret(1), "not_checked_out"),
        ],
        vec![(register(1), ""), (check_out(1), "not_in_storage")],
        // A checked-out specimen's position stays reserved.
        vec![
            (register(1), ""),
            (register(2), ""),
            (check_in(1, "BX1", 0, 0), ""),
            (check_out(1), ""),
            (check_in(2, "BX1", 0, 0), "position_occupied"),
        ],
        // Blocked and disposed.
        vec![
            (register(1), ""),
            (check_in(1, "BX1", 0, 0), ""),
            (blocked.clone(), ""),
            (check_out(1), "specimen_blocked"),
        ],
        vec![
            (register(1), ""),
            (check_in(1, "BX1", 0, 0), ""),
            (blocked.clone(), ""),
            (disposed.clone(), ""),
            (check_out(1), "specimen_final"),
        ],
        vec![
            (register(1), ""),
            (disposed.clone(), ""),
            (check_in(1, "BX1", 0, 0), "specimen_final"),
        ],
        vec![
            (register(1), ""),
            (
                EventBody::Unblocked {
                    specimen: sid(1),
                    reason: "x".into(),
                },
                "not_blocked",
            ),
        ],
        // Aliquots need a live parent.
        vec![(
            EventBody::Derived {
                specimen: record(2, Some(1)),
                aliquot: true,
                location: None,
            },
            "unknown_parent",
        )],
        vec![
            (register(1), ""),
            (disposed, ""),
            (
                EventBody::Derived {
                    specimen: record(2, Some(1)),
                    aliquot: true,
                    location: None,
                },
                "specimen_final",
            ),
        ],
        // Containers.
        vec![(
            create("BX1", "box-9x9", Some("R1"), Some((1, 0))),
            "container_exists",
        )],
        vec![(
            create("BX3", "box-9x9", Some("R1"), Some((0, 0))),
            "position_occupied",
        )],
        vec![(
            create("BX3", "box-9x9", Some("ROOM1"), None),
            "wrong_container_kind",
        )],
        vec![(
            create("R2", "rack-5x4", Some("BX1"), None),
            "wrong_container_kind",
        )],
        vec![(
            EventBody::ContainerMoved {
                container: cid("R1"),
                from: None,
                to: Placement {
                    parent: cid("R1"),
                    pos: Some(Pos::new(0, 0)),
                },
            },
            "container_cycle",
        )],
        vec![(
            EventBody::ContainerMoved {
                container: cid("F1"),
                from: None,
                to: Placement {
                    parent: cid("BX1"),
                    pos: None,
                },
            },
            "container_cycle",
        )],
        vec![(
            EventBody::ContainerMoved {
                container: cid("BX2"),
                from: None,
                to: Placement {
                    parent: cid("R1"),
                    pos: Some(Pos::new(1, 0)),
                },
            },
            "",
        )],
        // A move names where it was taken from; someone who did not know refuses.
        vec![
            (register(1), ""),
            (check_in(1, "BX1", 0, 0), ""),
            (moved(1, ("BX1", 0, 0), ("BX1", 0, 1)), ""),
            (moved(1, ("BX1", 0, 0), ("BX2", 0, 0)), "not_there"),
            (moved(1, ("BX1", 0, 1), ("BX2", 0, 0)), ""),
        ],
        vec![(
            EventBody::ContainerMoved {
                container: cid("BX2"),
                from: Some(Placement {
                    parent: cid("R1"),
                    pos: Some(Pos::new(3, 3)),
                }),
                to: Placement {
                    parent: cid("R1"),
                    pos: Some(Pos::new(1, 0)),
                },
            },
            "container_not_there",
        )],
        vec![(
            EventBody::ContainerMoved {
                container: cid("BX2"),
                from: Some(Placement {
                    parent: cid("R1"),
                    pos: Some(Pos::new(0, 1)),
                }),
                to: Placement {
                    parent: cid("R1"),
                    pos: Some(Pos::new(1, 0)),
                },
            },
            "",
        )],
        // A settlement needs a conflict, and a free position for the custody it keeps.
        vec![
            (register(1), ""),
            (check_in(1, "BX1", 0, 0), ""),
            (settled(1, Some(("BX1", 0, 1))), "not_in_conflict"),
        ],
        // Shipping to a site: the manifest, then the tube in transit (its position freed, any
        // use refused) until it is received.
        vec![
            (register(1), ""),
            (check_in(1, "BX1", 0, 0), ""),
            (dispatched(&[1], None), ""),
            (shipped(1), ""),
            (check_out(1), "not_in_storage"),
            (register(2), ""),
            (check_in(2, "BX1", 0, 0), ""),
            (received(1, Some(("BX1", 0, 0))), "position_occupied"),
            (received(1, Some(("BX1", 0, 1))), ""),
            (received(1, None), "not_in_transit"),
        ],
        // Another site's tubes arrive in transit (a parent left behind is not held here) and are
        // received; a tube this site holds already, or one not on the manifest, cannot arrive.
        vec![
            (arrived(&[1, 2], &[1, 2]), ""),
            (check_in(1, "BX1", 0, 0), "not_in_storage"),
            (received(1, Some(("BX1", 0, 0))), ""),
            (received(2, None), ""),
            (arrived(&[1], &[1]), "already_registered"),
        ],
        vec![(arrived(&[1], &[1, 3]), "bad_shipment")],
        // A trusted key is named and is a fingerprint.
        vec![
            (
                trusted("NCC bench 1", "a1b2 c3d4 e5f6 a7b8 c9d0 e1f2 a3b4 c5d6"),
                "",
            ),
            (
                trusted(" ", "a1b2 c3d4 e5f6 a7b8 c9d0 e1f2 a3b4 c5d6"),
                "bad_fingerprint",
            ),
            (trusted("NCC", "a1b2 c3d4"), "bad_fingerprint"),
            (
                trusted("NCC", "A1B2 C3D4 E5F6 A7B8 C9D0 E1F2 A3B4 C5D6"),
                "bad_fingerprint",
            ),
        ],
        // A blocked tube, or one not in storage, is not shipped or distributed.
        vec![
            (register(1), ""),
            (shipped(1), "not_in_storage"),
            (distributed(1), "not_in_storage"),
            (check_in(1, "BX1", 0, 0), ""),
            (blocked.clone(), ""),
            (shipped(1), "specimen_blocked"),
            (distributed(1), "specimen_blocked"),
        ],
        // Distribution ends custody: nothing more is done with the tube.
        vec![
            (register(1), ""),
            (check_in(1, "BX1", 0, 0), ""),
            (dispatched(&[1], Some("MTA-2026-014")), ""),
            (distributed(1), ""),
            (check_in(1, "BX1", 0, 0), "specimen_final"),
            (received(1, None), "specimen_final"),
            (distributed(1), "specimen_final"),
        ],
        // A manifest that cannot be: no tubes, a tube twice, out of the network without an MTA.
        vec![(dispatched(&[], None), "bad_shipment")],
        vec![(dispatched(&[1, 1], None), "bad_shipment")],
        vec![
            (
                EventBody::ShipmentDispatched {
                    shipment: crate::shipment::Shipment {
                        destination: crate::shipment::Destination::Recipient {
                            name: "Dr. Tanaka".into(),
                        },
                        ..manifest(&[1], None)
                    },
                },
                "bad_shipment",
            ),
            (
                EventBody::Distributed {
                    specimen: sid(1),
                    shipment: "SHP-1".into(),
                    recipient: "Dr. Tanaka".into(),
                    mta: " ".into(),
                },
                "bad_shipment",
            ),
        ],
    ];
    for steps in &cases {
        check(steps);
    }
}

fn manifest(tubes: &[u32], mta: Option<&str>) -> crate::shipment::Shipment {
    use crate::shipment::{Coolant, Destination, Shipment};
    Shipment {
        id: "SHP-1".into(),
        destination: match mta {
            Some(_) => Destination::Recipient {
                name: "Dr. Tanaka".into(),
            },
            None => Destination::Site {
                code: "NCNP".into(),
            },
        },
        specimens: tubes.iter().map(|&n| sid(n)).collect(),
        coolant: Coolant::DryIce,
        dry_ice_grams: Some(5_000),
        courier: None,
        tracking: None,
        logger: None,
        packed: vec![],
        carries: vec![],
        mta: mta.map(str::to_string),
    }
}
fn dispatched(tubes: &[u32], mta: Option<&str>) -> EventBody {
    EventBody::ShipmentDispatched {
        shipment: manifest(tubes, mta),
    }
}
fn arrived(manifest_tubes: &[u32], tubes: &[u32]) -> EventBody {
    EventBody::ShipmentArrived {
        shipment: manifest(manifest_tubes, None),
        dispatch: crate::hash::Digest::from_bytes([7; 32]),
        key: "a1b2".into(),
        // Each with a parent that stayed behind.
        tubes: tubes.iter().map(|&n| record(n, Some(90 + n))).collect(),
    }
}

fn trusted(name: &str, fingerprint: &str) -> EventBody {
    EventBody::KeyTrusted {
        name: name.into(),
        fingerprint: fingerprint.into(),
    }
}

fn shipped(n: u32) -> EventBody {
    EventBody::Shipped {
        specimen: sid(n),
        shipment: "SHP-1".into(),
        destination: "site:NCNP".into(),
    }
}
fn received(n: u32, at: Option<(&str, u16, u16)>) -> EventBody {
    EventBody::Received {
        specimen: sid(n),
        shipment: "SHP-1".into(),
        location: at.map(|(c, r, col)| self::at(c, r, col)),
    }
}
fn distributed(n: u32) -> EventBody {
    EventBody::Distributed {
        specimen: sid(n),
        shipment: "SHP-1".into(),
        recipient: "Dr. Tanaka".into(),
        mta: "MTA-2026-014".into(),
    }
}

fn moved(n: u32, from: (&str, u16, u16), to: (&str, u16, u16)) -> EventBody {
    EventBody::Moved {
        specimen: sid(n),
        from: at(from.0, from.1, from.2),
        to: at(to.0, to.1, to.2),
    }
}

fn settled(n: u32, stored_at: Option<(&str, u16, u16)>) -> EventBody {
    EventBody::ConflictSettled {
        specimen: sid(n),
        keep: uuid::Uuid::nil(),
        discard: vec![],
        reason: "checked the freezer".into(),
        outcome: crate::event::Outcome {
            custody: match stored_at {
                Some((c, r, col)) => Custody::Stored { at: at(c, r, col) },
                None => Custody::Received,
            },
            blocked: false,
            freeze_thaw: 3,
            quantity: None,
        },
    }
}

/// `settle` never refuses: what each refused event does to the state, as a table of
/// (steps before, the recorded event, the code it raises or "" when allowed, the status and
/// conflict flag of specimen 1 afterwards; None when specimen 1 is not registered).
#[test]
fn recorded_events_settle_into_conflicts() {
    type Case = (
        Vec<EventBody>,
        EventBody,
        &'static str,
        Option<(Status, bool)>,
    );
    let stored = |n| vec![register(n), check_in(n, "BX1", 0, 0)];
    let cases: Vec<Case> = vec![
        (
            stored(1),
            check_out(1),
            "",
            Some((Status::CheckedOut, false)),
        ),
        (
            [stored(1), vec![check_out(1)]].concat(),
            check_out(1),
            "already_checked_out",
            Some((Status::CheckedOut, true)),
        ),
        // Registered into a taken position: registered unstored, in conflict.
        (
            stored(2),
            EventBody::Registered {
                specimen: record(1, None),
                location: Some(at("BX1", 0, 0)),
            },
            "position_occupied",
            Some((Status::Received, true)),
        ),
        // Derived from a parent disposed meanwhile: the aliquot exists, in conflict.
        (
            vec![
                register(2),
                EventBody::Disposed {
                    specimen: sid(2),
                    reason: "x".into(),
                },
            ],
            EventBody::Derived {
                specimen: record(1, Some(2)),
                aliquot: true,
                location: None,
            },
            "specimen_final",
            Some((Status::Received, true)),
        ),
        // No parent at all: nothing can be recorded of it.
        (
            vec![],
            EventBody::Derived {
                specimen: record(1, Some(7)),
                aliquot: true,
                location: None,
            },
            "unknown_parent",
            None,
        ),
        // A second registration of the same code flags the first.
        (
            stored(1),
            register(1),
            "already_registered",
            Some((Status::Available, true)),
        ),
        (
            stored(1),
            moved(1, ("BX1", 0, 5), ("BX2", 0, 0)),
            "not_there",
            Some((Status::Available, true)),
        ),
    ];
    for (before, event, code, after) in cases {
        let mut m = world();
        for e in &before {
            m.apply(e).unwrap_or_else(|err| panic!("{e:?}: {err}"));
        }
        let got = match settle(&mut m, &event).unwrap() {
            Settled::Applied(effect) => {
                m.write(effect);
                ""
            }
            Settled::Conflict { error, effect } => {
                if let Some(effect) = effect {
                    m.write(effect);
                }
                error.code()
            }
            Settled::Nothing => "nothing",
        };
        assert_eq!(got, code, "{event:?}");
        let s = m.specimens.get(&sid(1));
        assert_eq!(s.map(|s| (s.status(), s.in_conflict)), after, "{event:?}");
    }
}

#[test]
fn a_settlement_sets_the_custody_it_names_everywhere() {
    let mut m = check(&[
        (register(1), ""),
        (check_in(1, "BX1", 0, 0), ""),
        (check_out(1), ""),
    ]);
    // Two benches checked it out; the second is refused here and flags it.
    match settle(&mut m, &check_out(1)).unwrap() {
        Settled::Conflict {
            effect: Some(e), ..
        } => m.write(e),
        other => panic!("{other:?}"),
    }
    assert!(m.specimens[&sid(1)].in_conflict);
    // The settlement says where it really is: back in storage, at BX1 A2.
    m.apply(&settled(1, Some(("BX1", 0, 1)))).unwrap();
    let s = &m.specimens[&sid(1)];
    assert!(!s.in_conflict);
    assert_eq!(s.location(), Some(&at("BX1", 0, 1)));
    assert_eq!(s.freeze_thaw, 3);
    // Settling again: nothing to do.
    assert_eq!(settle(&mut m, &settled(1, None)).unwrap(), Settled::Nothing);
}

#[test]
fn thaw_counts_and_inheritance() {
    let m = check(&[
        (register(1), ""),
        (check_in(1, "BX1", 0, 0), ""),
        (check_out(1), ""),
        (ret(1), ""),
        (EventBody::Thawed { specimen: sid(1) }, ""),
        (
            EventBody::Derived {
                specimen: record(2, Some(1)),
                aliquot: true,
                location: None,
            },
            "",
        ),
    ]);
    assert_eq!(m.specimens[&sid(1)].freeze_thaw, 2);
    assert_eq!(
        m.specimens[&sid(2)].freeze_thaw,
        2,
        "aliquots inherit the parent's count"
    );
}

#[test]
fn consumption() {
    let consume = |amount: &str, used_up| EventBody::Consumed {
        specimen: sid(1),
        amount: Some(Quantity::parse(amount, "mL").unwrap()),
        used_up,
    };
    let m = check(&[
        (register(1), ""),
        (check_in(1, "BX1", 0, 0), ""),
        (consume("2", false), "not_enough_left"),
        (consume("0.4", false), ""),
    ]);
    assert_eq!(m.specimens[&sid(1)].quantity.unwrap().milli, 600);
    let m = check(&[
        (register(1), ""),
        (check_in(1, "BX1", 0, 0), ""),
        (consume("1", false), ""),
    ]);
    assert_eq!(m.specimens[&sid(1)].status(), Status::Consumed);
    assert_eq!(
        m.specimens[&sid(1)].location(),
        None,
        "a used-up specimen frees its position"
    );
}

#[test]
fn user_events_are_checked_alone() {
    use crate::user::{Role, Secret, UserChange};
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_string();
    let add = |user: &str, name: &str, badge: Option<&str>| EventBody::UserAdded {
        user: user.into(),
        name: name.into(),
        role: Role::Technician,
        badge: badge.map(str::to_string),
    };
    // (event, allowed?)
    let cases: Vec<(EventBody, bool)> = vec![
        (add("sato", "佐藤 花子", Some("USR-0042")), true),
        (add("Sato", "佐藤 花子", None), false),
        (add("sato", " ", None), false),
        (add("sato", "佐藤", Some("0042")), false),
        (
            EventBody::RoleGranted {
                user: "sato".into(),
                role: Role::Supervisor,
            },
            true,
        ),
        (
            EventBody::UserDisabled {
                user: "sato".into(),
                reason: "left the bank".into(),
            },
            true,
        ),
        (
            EventBody::UserDisabled {
                user: "sato".into(),
                reason: "".into(),
            },
            false,
        ),
        (
            EventBody::CredentialSet {
                user: "sato".into(),
                secret: Secret::Pin,
                hash: hash.clone(),
                key: None,
            },
            true,
        ),
        (
            EventBody::CredentialSet {
                user: "sato".into(),
                secret: Secret::Password,
                hash: "hunter2".into(),
                key: None,
            },
            false,
        ),
    ];
    let mut w = Mem::default();
    for (body, allowed) in cases {
        let got = decide(&mut w, &body);
        match got {
            Ok(Effect::User { user, change }) => {
                assert!(allowed, "{body:?} was allowed");
                assert_eq!(user, "sato");
                if let EventBody::RoleGranted { .. } = body {
                    assert_eq!(change, UserChange::Grant(Role::Supervisor));
                }
            }
            Ok(other) => panic!("{body:?}: {other:?}"),
            Err(DecideError::Rule(e)) => {
                assert!(!allowed, "{body:?}: {e}");
                assert_eq!(e.code(), "bad_user");
            }
            Err(DecideError::View(never)) => match never {},
        }
    }
}
