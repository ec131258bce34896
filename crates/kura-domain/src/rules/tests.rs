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
            Ok(Effect::Register { state, .. }) | Ok(Effect::Update(state)) => {
                self.specimens.insert(state.code.clone(), state);
            }
            Ok(Effect::CreateContainer(spec)) => {
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
            Ok(Effect::Log { .. }) => {}
            Ok(Effect::MoveContainer { id, to }) => {
                let c = self.containers.get_mut(&id).unwrap();
                c.parent = Some(to.parent);
                c.pos = to.pos;
            }
            Err(DecideError::Rule(e)) => return Err(e),
            Err(DecideError::View(never)) => match never {},
        }
        Ok(())
    }
}

fn cid(s: &str) -> ContainerId {
    ContainerId::parse(s).unwrap()
}
fn sid(n: u32) -> SpecimenCode {
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
fn record(n: u32, parent: Option<u32>) -> SpecimenRecord {
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
fn at(c: &str, r: u16, col: u16) -> Location {
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
            (blocked, ""),
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
    ];
    for steps in &cases {
        check(steps);
    }
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
