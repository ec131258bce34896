//! The custody state machine: which event is allowed in which state, and what it changes.
//!
//! [`decide`] reads what it needs through a [`View`] (the store implements it over its open
//! transaction) and returns an [`Effect`] for the store to write, or a typed [`RuleError`].
//! The same function runs for a new command and for a rebuild from the log.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::container::{ContainerKind, ContainerSpec};
use crate::event::{EventBody, Location, Placement};

use crate::id::{ContainerId, SpecimenCode};
use crate::position::{Geometry, Pos, PositionError};
use crate::specimen::{Quantity, SpecimenRecord, Status};

/// Where a specimen is in its custody, with exactly the facts that state has: a stored specimen
/// always has a position, a checked-out one always has a holder and the position held for its
/// return, and a consumed or disposed one has neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Custody {
    /// Registered, not yet stored.
    Received,
    /// In storage.
    Stored { at: Location },
    /// Out with a person; `held` is kept for its return.
    CheckedOut {
        held: Location,
        holder: String,
        due: Option<NaiveDate>,
    },
    /// Shipped, not yet received.
    InTransit,
    /// Fully used up.
    Consumed,
    /// Destroyed.
    Disposed,
    /// Out of the network, to a researcher under an MTA.
    Distributed,
}

impl Custody {
    pub fn status(&self) -> Status {
        match self {
            Custody::Received => Status::Received,
            Custody::Stored { .. } => Status::Available,
            Custody::CheckedOut { .. } => Status::CheckedOut,
            Custody::InTransit => Status::InTransit,
            Custody::Consumed => Status::Consumed,
            Custody::Disposed => Status::Disposed,
            Custody::Distributed => Status::Distributed,
        }
    }

    /// The position it occupies: where it is stored, or the one held while it is checked out.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Custody::Stored { at } => Some(at),
            Custody::CheckedOut { held, .. } => Some(held),
            _ => None,
        }
    }

    /// Who holds it, while checked out.
    pub fn holder(&self) -> Option<&str> {
        match self {
            Custody::CheckedOut { holder, .. } => Some(holder),
            _ => None,
        }
    }

    pub fn due(&self) -> Option<NaiveDate> {
        match self {
            Custody::CheckedOut { due, .. } => *due,
            _ => None,
        }
    }

    /// Builds the state from its stored columns; `None` when they describe no possible state
    /// (a stored specimen without a position, a checked-out one without a holder …).
    pub fn from_parts(
        status: Status,
        location: Option<Location>,
        holder: Option<String>,
        due: Option<NaiveDate>,
    ) -> Option<Custody> {
        let plain =
            |c: Custody| (location.is_none() && holder.is_none() && due.is_none()).then_some(c);
        match status {
            Status::Received => plain(Custody::Received),
            Status::InTransit => plain(Custody::InTransit),
            Status::Consumed => plain(Custody::Consumed),
            Status::Disposed => plain(Custody::Disposed),
            Status::Distributed => plain(Custody::Distributed),
            Status::Available => match (location, holder, due) {
                (Some(at), None, None) => Some(Custody::Stored { at }),
                _ => None,
            },
            Status::CheckedOut => match (location, holder) {
                (Some(held), Some(holder)) => Some(Custody::CheckedOut { held, holder, due }),
                _ => None,
            },
        }
    }
}

/// A specimen's current custody state (the mutable part of the projection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecimenState {
    pub code: SpecimenCode,
    pub custody: Custody,
    pub blocked: bool,
    pub in_conflict: bool,
    pub freeze_thaw: u32,
    pub quantity: Option<Quantity>,
}

impl SpecimenState {
    pub fn status(&self) -> Status {
        self.custody.status()
    }
    pub fn location(&self) -> Option<&Location> {
        self.custody.location()
    }
}

/// What the rules need to know about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: ContainerId,
    pub kind: ContainerKind,
    pub geometry: Geometry,
    pub parent: Option<ContainerId>,
    pub pos: Option<Pos>,
}

/// Read access to the current state, as of the open transaction.
pub trait View {
    type Error;
    fn specimen(&mut self, code: &SpecimenCode) -> Result<Option<SpecimenState>, Self::Error>;
    fn container(&mut self, id: &ContainerId) -> Result<Option<ContainerInfo>, Self::Error>;
    /// The specimen in (or reserved for) a position.
    fn specimen_at(
        &mut self,
        container: &ContainerId,
        pos: Pos,
    ) -> Result<Option<SpecimenCode>, Self::Error>;
    /// The container in a position of a parent.
    fn container_at(
        &mut self,
        parent: &ContainerId,
        pos: Pos,
    ) -> Result<Option<ContainerId>, Self::Error>;
}

/// What an allowed event changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Register {
        record: SpecimenRecord,
        state: SpecimenState,
    },
    Update(SpecimenState),
    CreateContainer(ContainerSpec),
    MoveContainer {
        id: ContainerId,
        to: Placement,
    },
    /// Nothing in custody changes; the event is logged (labels printed).
    Log {
        codes: Vec<String>,
    },
    /// A donor's consent is withdrawn (the destruction queue).
    Withdraw {
        donor: String,
        reason: String,
    },
    /// A shipment's manifest is recorded (the tubes' own events change their custody).
    Ship(crate::shipment::Shipment),
    /// Another site's shipment arrives: its manifest, and its tubes, new here, in transit.
    Arrive {
        shipment: crate::shipment::Shipment,
        tubes: Vec<(SpecimenRecord, SpecimenState)>,
    },
    /// A sending workstation's key is trusted for sealed shipments.
    Trust {
        fingerprint: String,
        name: String,
    },
    /// A signature is added to an event.
    Sign {
        id: uuid::Uuid,
        event_hash: String,
        signer: String,
        name: String,
        meaning: crate::user::Meaning,
    },
    /// Who may act changes (user administration).
    User {
        user: String,
        change: crate::user::UserChange,
    },
}

/// Why a custody act was refused. Nothing is written when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum RuleError {
    #[error("specimen {specimen} is not registered here; check the code or register it first")]
    UnknownSpecimen { specimen: String },
    #[error("specimen {specimen} is already registered")]
    AlreadyRegistered { specimen: String },
    #[error("parent specimen {specimen} is not registered here")]
    UnknownParent { specimen: String },
    #[error(
        "specimen {specimen} is already in storage at {container} {pos}; use move to put it elsewhere"
    )]
    AlreadyInStorage {
        specimen: String,
        container: String,
        pos: String,
    },
    #[error("specimen {specimen} is already checked out to {holder}; return it first")]
    AlreadyCheckedOut { specimen: String, holder: String },
    #[error(
        "specimen {specimen} is not checked out (it is {status}); only a checked-out specimen can be returned"
    )]
    NotCheckedOut { specimen: String, status: String },
    #[error("specimen {specimen} is not in storage (it is {status})")]
    NotInStorage { specimen: String, status: String },
    #[error(
        "specimen {specimen} is blocked (consent withdrawn or quarantined); it cannot be used or distributed"
    )]
    Blocked { specimen: String },
    #[error("specimen {specimen} is not blocked")]
    NotBlocked { specimen: String },
    #[error("specimen {specimen} is {status}; no further custody act is possible")]
    Final { specimen: String, status: String },
    #[error("specimen {specimen} is not in transit")]
    NotInTransit { specimen: String },
    #[error("shipment {shipment}: {reason}")]
    BadShipment { shipment: String, reason: String },
    #[error(
        "{fingerprint:?} is not a key fingerprint: 32 hex digits, as `kura key` shows them (groups of four)"
    )]
    BadFingerprint { fingerprint: String },
    #[error("specimen {specimen} is not in conflict")]
    NotInConflict { specimen: String },
    #[error("position {pos} of {container} is occupied by {by}; choose a free position")]
    PositionOccupied {
        container: String,
        pos: String,
        by: String,
    },
    #[error("{container} is full ({capacity} positions); use another box")]
    ContainerFull { container: String, capacity: usize },
    #[error("{container}: {reason}")]
    BadPosition { container: String, reason: String },
    #[error("{container} is a {kind}; specimens go into boxes, tube racks or canes")]
    NotForSpecimens { container: String, kind: String },
    #[error("a {child} cannot be placed in {parent} (a {parent_kind})")]
    WrongContainerKind {
        child: String,
        parent: String,
        parent_kind: String,
    },
    #[error("container {container} does not exist; create it first (kura storage)")]
    UnknownContainer { container: String },
    #[error("container {container} already exists")]
    ContainerExists { container: String },
    #[error("{container} cannot be moved into itself or into {target}, which is inside it")]
    ContainerCycle { container: String, target: String },
    #[error("the quantity to consume ({amount}) is more than is left ({left})")]
    NotEnoughLeft { amount: String, left: String },
    #[error("the amount is in {given} but the specimen is measured in {unit}")]
    UnitMismatch { given: String, unit: String },
    #[error("a print must name at least one label")]
    NothingPrinted,
    #[error("user {user:?}: {reason}")]
    BadUser { user: String, reason: String },
    #[error(
        "specimen {specimen} was moved from {from}, but it is at {at}: whoever moved it did not know where it was"
    )]
    NotThere {
        specimen: String,
        from: String,
        at: String,
    },
    #[error(
        "{container} was moved from {from}, but it is in {at}: whoever moved it did not know where it was"
    )]
    ContainerNotThere {
        container: String,
        from: String,
        at: String,
    },
}

impl RuleError {
    pub fn code(&self) -> &'static str {
        match self {
            RuleError::UnknownSpecimen { .. } => "unknown_specimen",
            RuleError::AlreadyRegistered { .. } => "already_registered",
            RuleError::UnknownParent { .. } => "unknown_parent",
            RuleError::AlreadyInStorage { .. } => "already_in_storage",
            RuleError::AlreadyCheckedOut { .. } => "already_checked_out",
            RuleError::NotCheckedOut { .. } => "not_checked_out",
            RuleError::NotInStorage { .. } => "not_in_storage",
            RuleError::Blocked { .. } => "specimen_blocked",
            RuleError::NotBlocked { .. } => "not_blocked",
            RuleError::Final { .. } => "specimen_final",
            RuleError::NotInTransit { .. } => "not_in_transit",
            RuleError::BadShipment { .. } => "bad_shipment",
            RuleError::BadFingerprint { .. } => "bad_fingerprint",
            RuleError::NotInConflict { .. } => "not_in_conflict",
            RuleError::PositionOccupied { .. } => "position_occupied",
            RuleError::ContainerFull { .. } => "container_full",
            RuleError::BadPosition { .. } => "bad_position",
            RuleError::NotForSpecimens { .. } => "not_for_specimens",
            RuleError::WrongContainerKind { .. } => "wrong_container_kind",
            RuleError::UnknownContainer { .. } => "unknown_container",
            RuleError::ContainerExists { .. } => "container_exists",
            RuleError::ContainerCycle { .. } => "container_cycle",
            RuleError::NotEnoughLeft { .. } => "not_enough_left",
            RuleError::UnitMismatch { .. } => "unit_mismatch",
            RuleError::NothingPrinted => "nothing_printed",
            RuleError::BadUser { .. } => "bad_user",
            RuleError::NotThere { .. } => "not_there",
            RuleError::ContainerNotThere { .. } => "container_not_there",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError<E> {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("reading the current state failed")]
    View(#[source] E),
}

type R<T, E> = Result<T, DecideError<E>>;

fn rule<T, E>(e: RuleError) -> R<T, E> {
    Err(DecideError::Rule(e))
}

fn existing<V: View>(view: &mut V, code: &SpecimenCode) -> R<SpecimenState, V::Error> {
    match view.specimen(code).map_err(DecideError::View)? {
        Some(s) => Ok(s),
        None => rule(RuleError::UnknownSpecimen {
            specimen: code.to_string(),
        }),
    }
}

fn not_final<E>(s: &SpecimenState) -> R<(), E> {
    if s.status().is_final() {
        return rule(RuleError::Final {
            specimen: s.code.to_string(),
            status: s.status().as_str().into(),
        });
    }
    Ok(())
}

fn not_blocked<E>(s: &SpecimenState) -> R<(), E> {
    if s.blocked {
        return rule(RuleError::Blocked {
            specimen: s.code.to_string(),
        });
    }
    Ok(())
}

/// Where a specimen is stored; refused unless it is in storage now.
fn stored<E>(s: &SpecimenState) -> R<Location, E> {
    not_final(s)?;
    match &s.custody {
        Custody::Stored { at } => Ok(at.clone()),
        Custody::CheckedOut { holder, .. } => rule(RuleError::AlreadyCheckedOut {
            specimen: s.code.to_string(),
            holder: holder.clone(),
        }),
        other => rule(RuleError::NotInStorage {
            specimen: s.code.to_string(),
            status: other.status().as_str().into(),
        }),
    }
}

/// A location as people read it: `BOX-0001 C4`.
fn place<V: View>(view: &mut V, loc: &Location) -> R<String, V::Error> {
    let label = view
        .container(&loc.container)
        .map_err(DecideError::View)?
        .map(|c| c.geometry.label(loc.pos))
        .unwrap_or_else(|| loc.pos.to_string());
    Ok(format!("{} {label}", loc.container))
}

/// Checks that `loc` can take specimen `code`: the container exists, holds specimens, has that
/// position, and nobody else is (or is reserved) there.
pub fn check_specimen_slot<V: View>(
    view: &mut V,
    loc: &Location,
    code: &SpecimenCode,
) -> R<(), V::Error> {
    let c = match view.container(&loc.container).map_err(DecideError::View)? {
        Some(c) => c,
        None => {
            return rule(RuleError::UnknownContainer {
                container: loc.container.to_string(),
            });
        }
    };
    if !c.kind.holds_specimens() {
        return rule(RuleError::NotForSpecimens {
            container: c.id.to_string(),
            kind: c.kind.as_str().into(),
        });
    }
    if let Err(e) = c.geometry.check(loc.pos) {
        return rule(RuleError::BadPosition {
            container: c.id.to_string(),
            reason: e.to_string(),
        });
    }
    match view
        .specimen_at(&loc.container, loc.pos)
        .map_err(DecideError::View)?
    {
        Some(other) if &other != code => rule(RuleError::PositionOccupied {
            container: c.id.to_string(),
            pos: c.geometry.label(loc.pos),
            by: other.to_string(),
        }),
        _ => Ok(()),
    }
}

fn check_container_slot<V: View>(
    view: &mut V,
    child: &ContainerId,
    kind: ContainerKind,
    to: &Placement,
) -> R<(), V::Error> {
    let parent = match view.container(&to.parent).map_err(DecideError::View)? {
        Some(p) => p,
        None => {
            return rule(RuleError::UnknownContainer {
                container: to.parent.to_string(),
            });
        }
    };
    if !parent.kind.can_hold(kind) {
        return rule(RuleError::WrongContainerKind {
            child: kind.as_str().into(),
            parent: parent.id.to_string(),
            parent_kind: parent.kind.as_str().into(),
        });
    }
    match (&parent.geometry, to.pos) {
        (Geometry::Unpositioned, None) => Ok(()),
        (Geometry::Unpositioned, Some(_)) => rule(RuleError::BadPosition {
            container: parent.id.to_string(),
            reason: PositionError::NoPositions.to_string(),
        }),
        (_, None) => rule(RuleError::BadPosition {
            container: parent.id.to_string(),
            reason: format!("{} has positions; say which one", parent.id),
        }),
        (g, Some(pos)) => {
            if let Err(e) = g.check(pos) {
                return rule(RuleError::BadPosition {
                    container: parent.id.to_string(),
                    reason: e.to_string(),
                });
            }
            match view
                .container_at(&to.parent, pos)
                .map_err(DecideError::View)?
            {
                Some(other) if &other != child => rule(RuleError::PositionOccupied {
                    container: parent.id.to_string(),
                    pos: g.label(pos),
                    by: other.to_string(),
                }),
                _ => Ok(()),
            }
        }
    }
}

fn register<V: View>(
    view: &mut V,
    specimen: &SpecimenRecord,
    location: Option<&Location>,
    derived: bool,
) -> R<Effect, V::Error> {
    if view
        .specimen(&specimen.code)
        .map_err(DecideError::View)?
        .is_some()
    {
        return rule(RuleError::AlreadyRegistered {
            specimen: specimen.code.to_string(),
        });
    }
    let mut freeze_thaw = specimen.freeze_thaw;
    if let Some(parent) = &specimen.parent {
        let p = match view.specimen(parent).map_err(DecideError::View)? {
            Some(p) => p,
            None => {
                return rule(RuleError::UnknownParent {
                    specimen: parent.to_string(),
                });
            }
        };
        if derived {
            not_final(&p)?;
            not_blocked(&p)?;
        }
        // Aliquots inherit their parent's freeze–thaw history.
        freeze_thaw = freeze_thaw.max(p.freeze_thaw);
    }
    if let Some(loc) = location {
        check_specimen_slot(view, loc, &specimen.code)?;
    }
    let state = SpecimenState {
        code: specimen.code.clone(),
        custody: match location {
            Some(at) => Custody::Stored { at: at.clone() },
            None => Custody::Received,
        },
        blocked: false,
        in_conflict: false,
        freeze_thaw,
        quantity: specimen.quantity,
    };
    let mut record = specimen.clone();
    record.freeze_thaw = freeze_thaw;
    Ok(Effect::Register { record, state })
}

/// Decides whether `body` may happen now, and what it changes.
pub fn decide<V: View>(view: &mut V, body: &EventBody) -> R<Effect, V::Error> {
    use EventBody as E;
    match body {
        E::Registered { specimen, location } => register(view, specimen, location.as_ref(), false),
        E::Derived {
            specimen, location, ..
        } => register(view, specimen, location.as_ref(), true),
        E::CheckedIn { specimen, location } => {
            let mut s = existing(view, specimen)?;
            not_final(&s)?;
            match &s.custody {
                Custody::Received => {}
                Custody::Stored { at } => {
                    let pos = view
                        .container(&at.container)
                        .map_err(DecideError::View)?
                        .map(|c| c.geometry.label(at.pos))
                        .unwrap_or_default();
                    return rule(RuleError::AlreadyInStorage {
                        specimen: specimen.to_string(),
                        container: at.container.to_string(),
                        pos,
                    });
                }
                Custody::CheckedOut { holder, .. } => {
                    return rule(RuleError::AlreadyCheckedOut {
                        specimen: specimen.to_string(),
                        holder: holder.clone(),
                    });
                }
                other => {
                    return rule(RuleError::NotInStorage {
                        specimen: specimen.to_string(),
                        status: other.status().as_str().into(),
                    });
                }
            }
            check_specimen_slot(view, location, specimen)?;
            s.custody = Custody::Stored {
                at: location.clone(),
            };
            Ok(Effect::Update(s))
        }
        E::CheckedOut {
            specimen, to, due, ..
        } => {
            let mut s = existing(view, specimen)?;
            let held = stored(&s)?;
            not_blocked(&s)?;
            s.custody = Custody::CheckedOut {
                held,
                holder: to.clone(),
                due: *due,
            };
            Ok(Effect::Update(s))
        }
        E::Returned { specimen, thawed } => {
            let mut s = existing(view, specimen)?;
            not_final(&s)?;
            let Custody::CheckedOut { held, .. } = &s.custody else {
                return rule(RuleError::NotCheckedOut {
                    specimen: specimen.to_string(),
                    status: s.status().as_str().into(),
                });
            };
            s.custody = Custody::Stored { at: held.clone() };
            if *thawed {
                s.freeze_thaw += 1;
            }
            Ok(Effect::Update(s))
        }
        E::Moved { specimen, from, to } => {
            let mut s = existing(view, specimen)?;
            let at = stored(&s)?;
            if &at != from {
                return rule(RuleError::NotThere {
                    specimen: specimen.to_string(),
                    from: place(view, from)?,
                    at: place(view, &at)?,
                });
            }
            check_specimen_slot(view, to, specimen)?;
            s.custody = Custody::Stored { at: to.clone() };
            Ok(Effect::Update(s))
        }
        E::Thawed { specimen } => {
            let mut s = existing(view, specimen)?;
            not_final(&s)?;
            s.freeze_thaw += 1;
            Ok(Effect::Update(s))
        }
        E::Consumed {
            specimen,
            amount,
            used_up,
        } => {
            let mut s = existing(view, specimen)?;
            not_final(&s)?;
            not_blocked(&s)?;
            if !matches!(
                s.custody,
                Custody::Stored { .. } | Custody::CheckedOut { .. }
            ) {
                return rule(RuleError::NotInStorage {
                    specimen: specimen.to_string(),
                    status: s.status().as_str().into(),
                });
            }
            if let (Some(a), Some(left)) = (amount, s.quantity) {
                if a.unit != left.unit {
                    return rule(RuleError::UnitMismatch {
                        given: a.unit.as_str().into(),
                        unit: left.unit.as_str().into(),
                    });
                }
                if a.milli > left.milli {
                    return rule(RuleError::NotEnoughLeft {
                        amount: a.to_string(),
                        left: left.to_string(),
                    });
                }
                s.quantity = Some(Quantity {
                    milli: left.milli - a.milli,
                    unit: left.unit,
                });
            }
            if *used_up || s.quantity.is_some_and(|q| q.milli == 0) {
                s.custody = Custody::Consumed;
            }
            Ok(Effect::Update(s))
        }
        E::Disposed { specimen, .. } => {
            let mut s = existing(view, specimen)?;
            not_final(&s)?;
            s.custody = Custody::Disposed;
            Ok(Effect::Update(s))
        }
        E::Blocked { specimen, .. } => {
            let mut s = existing(view, specimen)?;
            not_final(&s)?;
            s.blocked = true;
            Ok(Effect::Update(s))
        }
        E::Unblocked { specimen, .. } => {
            let mut s = existing(view, specimen)?;
            not_final(&s)?;
            if !s.blocked {
                return rule(RuleError::NotBlocked {
                    specimen: specimen.to_string(),
                });
            }
            s.blocked = false;
            Ok(Effect::Update(s))
        }
        E::Shipped { specimen, .. } => {
            let mut s = existing(view, specimen)?;
            stored(&s)?;
            not_blocked(&s)?;
            s.custody = Custody::InTransit;
            Ok(Effect::Update(s))
        }
        E::ShipmentDispatched { shipment } => match shipment.check() {
            Ok(()) => Ok(Effect::Ship(shipment.clone())),
            Err(p) => rule(RuleError::BadShipment {
                shipment: shipment.id.clone(),
                reason: p.message(),
            }),
        },
        E::ShipmentArrived {
            shipment, tubes, ..
        } => {
            if let Err(p) = shipment.check() {
                return rule(RuleError::BadShipment {
                    shipment: shipment.id.clone(),
                    reason: p.message(),
                });
            }
            let mut out = Vec::new();
            for t in tubes {
                if !shipment.specimens.contains(&t.code) {
                    return rule(RuleError::BadShipment {
                        shipment: shipment.id.clone(),
                        reason: format!("{} arrives but is not on the manifest", t.code),
                    });
                }
                if view.specimen(&t.code).map_err(DecideError::View)?.is_some() {
                    return rule(RuleError::AlreadyRegistered {
                        specimen: t.code.to_string(),
                    });
                }
                let mut record = t.clone();
                // A parent that stayed at the sending site is not held here.
                if let Some(p) = &t.parent
                    && view.specimen(p).map_err(DecideError::View)?.is_none()
                {
                    record.parent = None;
                }
                let state = SpecimenState {
                    code: t.code.clone(),
                    custody: Custody::InTransit,
                    blocked: false,
                    in_conflict: false,
                    freeze_thaw: t.freeze_thaw,
                    quantity: t.quantity,
                };
                out.push((record, state));
            }
            Ok(Effect::Arrive {
                shipment: shipment.clone(),
                tubes: out,
            })
        }
        E::KeyTrusted { name, fingerprint } => {
            let hex: String = fingerprint.chars().filter(|c| !c.is_whitespace()).collect();
            if name.trim().is_empty()
                || hex.len() != 32
                || !hex
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            {
                return rule(RuleError::BadFingerprint {
                    fingerprint: fingerprint.clone(),
                });
            }
            Ok(Effect::Trust {
                fingerprint: fingerprint.clone(),
                name: name.clone(),
            })
        }
        E::Distributed {
            specimen,
            shipment,
            recipient,
            mta,
        } => {
            if [shipment, recipient, mta]
                .iter()
                .any(|t| t.trim().is_empty())
            {
                return rule(RuleError::BadShipment {
                    shipment: shipment.clone(),
                    reason: "a distribution names its shipment, its recipient and its MTA".into(),
                });
            }
            let mut s = existing(view, specimen)?;
            stored(&s)?;
            not_blocked(&s)?;
            s.custody = Custody::Distributed;
            Ok(Effect::Update(s))
        }
        E::Received {
            specimen, location, ..
        } => {
            let mut s = existing(view, specimen)?;
            not_final(&s)?;
            if s.custody != Custody::InTransit {
                return rule(RuleError::NotInTransit {
                    specimen: specimen.to_string(),
                });
            }
            s.custody = match location {
                Some(at) => {
                    check_specimen_slot(view, at, specimen)?;
                    Custody::Stored { at: at.clone() }
                }
                None => Custody::Received,
            };
            Ok(Effect::Update(s))
        }
        E::ConflictResolved { specimen, .. } => {
            let mut s = existing(view, specimen)?;
            if !s.in_conflict {
                return rule(RuleError::NotInConflict {
                    specimen: specimen.to_string(),
                });
            }
            s.in_conflict = false;
            Ok(Effect::Update(s))
        }
        E::ConflictSettled {
            specimen, outcome, ..
        } => {
            let s = existing(view, specimen)?;
            if !s.in_conflict {
                return rule(RuleError::NotInConflict {
                    specimen: specimen.to_string(),
                });
            }
            if let Some(at) = outcome.custody.location() {
                check_specimen_slot(view, at, specimen)?;
            }
            Ok(Effect::Update(SpecimenState {
                code: s.code,
                custody: outcome.custody.clone(),
                blocked: outcome.blocked,
                in_conflict: false,
                freeze_thaw: outcome.freeze_thaw,
                quantity: outcome.quantity,
            }))
        }
        E::ContainerCreated { container } => {
            if view
                .container(&container.id)
                .map_err(DecideError::View)?
                .is_some()
            {
                return rule(RuleError::ContainerExists {
                    container: container.id.to_string(),
                });
            }
            match &container.parent {
                Some(parent) => check_container_slot(
                    view,
                    &container.id,
                    container.kind,
                    &Placement {
                        parent: parent.clone(),
                        pos: container.pos,
                    },
                )?,
                None if container.kind == ContainerKind::Site => {}
                None => {
                    return rule(RuleError::BadPosition {
                        container: container.id.to_string(),
                        reason: format!("a {} needs a parent container", container.kind.as_str()),
                    });
                }
            }
            Ok(Effect::CreateContainer(container.clone()))
        }
        E::LabelsPrinted { codes, .. } => {
            if codes.is_empty() {
                return rule(RuleError::NothingPrinted);
            }
            Ok(Effect::Log {
                codes: codes.clone(),
            })
        }
        E::Imported { sha256, .. } => {
            if !is_sha256_hex(sha256) {
                return rule(RuleError::BadUser {
                    user: String::new(),
                    reason: "an import records the SHA-256 of the file read".into(),
                });
            }
            Ok(Effect::Log { codes: vec![] })
        }
        E::AuditExported { sha256, .. } => {
            if !is_sha256_hex(sha256) {
                return rule(RuleError::BadUser {
                    user: String::new(),
                    reason: "an audit export records the SHA-256 of the file written".into(),
                });
            }
            Ok(Effect::Log { codes: vec![] })
        }
        E::UserAdded { .. }
        | E::RoleGranted { .. }
        | E::UserDisabled { .. }
        | E::CredentialSet { .. } => user_effect(body).map_err(DecideError::Rule),
        E::ConsentWithdrawn { donor, reason } => {
            if donor.trim().is_empty() || reason.trim().is_empty() {
                return rule(RuleError::BadUser {
                    user: donor.clone(),
                    reason: "a consent withdrawal names the donor and why".into(),
                });
            }
            Ok(Effect::Withdraw {
                donor: donor.clone(),
                reason: reason.clone(),
            })
        }
        E::Signed {
            event,
            event_hash,
            signer,
            name,
            meaning,
            ..
        } => {
            if !is_sha256_hex(event_hash)
                || name.trim().is_empty()
                || crate::user::parse_user_id(signer).is_err()
            {
                return rule(RuleError::BadUser {
                    user: signer.clone(),
                    reason: "a signature names its signer, their printed name and the SHA-256 of the event signed".into(),
                });
            }
            Ok(Effect::Sign {
                id: *event,
                event_hash: event_hash.clone(),
                signer: signer.clone(),
                name: name.clone(),
                meaning: *meaning,
            })
        }
        E::ContainerMoved {
            container,
            from,
            to,
        } => {
            let c = match view.container(container).map_err(DecideError::View)? {
                Some(c) => c,
                None => {
                    return rule(RuleError::UnknownContainer {
                        container: container.to_string(),
                    });
                }
            };
            let now = c
                .parent
                .clone()
                .map(|parent| Placement { parent, pos: c.pos });
            if let Some(from) = from
                && now.as_ref() != Some(from)
            {
                let show = |p: Option<&Placement>| match p {
                    Some(Placement {
                        parent,
                        pos: Some(pos),
                    }) => format!("{parent} {pos}"),
                    Some(Placement { parent, pos: None }) => parent.to_string(),
                    None => "no parent".to_string(),
                };
                return rule(RuleError::ContainerNotThere {
                    container: container.to_string(),
                    from: show(Some(from)),
                    at: show(now.as_ref()),
                });
            }
            // Refuse moving a container into itself or anything below it.
            let mut cursor = Some(to.parent.clone());
            while let Some(id) = cursor {
                if &id == container {
                    return rule(RuleError::ContainerCycle {
                        container: container.to_string(),
                        target: to.parent.to_string(),
                    });
                }
                cursor = view
                    .container(&id)
                    .map_err(DecideError::View)?
                    .and_then(|p| p.parent);
            }
            check_container_slot(view, container, c.kind, to)?;
            Ok(Effect::MoveContainer {
                id: container.clone(),
                to: to.clone(),
            })
        }
    }
}

/// What a recorded event does to the state when it cannot be refused any more: an event from
/// another bench, or any event replayed in the registry's order. The rules decide as for a new
/// command; a refusal keeps the event and flags what it concerns.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// The rules allow it here: its effect.
    Applied(Effect),
    /// The rules refuse it here. `effect` flags the specimen in conflict (a specimen whose
    /// registration cannot be placed is registered unstored, in conflict: the tube exists);
    /// `None` for containers and prints, whose state stays as it is.
    Conflict {
        error: RuleError,
        effect: Option<Effect>,
    },
    /// A resolution of a conflict that was already resolved: nothing to do.
    Nothing,
}

/// Decides a recorded event: never a refusal, always what it does to the state.
pub fn settle<V: View>(view: &mut V, body: &EventBody) -> Result<Settled, V::Error> {
    match decide(view, body) {
        Ok(effect) => Ok(Settled::Applied(effect)),
        Err(DecideError::View(e)) => Err(e),
        Err(DecideError::Rule(RuleError::NotInConflict { .. }))
            if matches!(
                body,
                EventBody::ConflictResolved { .. } | EventBody::ConflictSettled { .. }
            ) =>
        {
            Ok(Settled::Nothing)
        }
        Err(DecideError::Rule(error)) => Ok(Settled::Conflict {
            error,
            effect: conflict_effect(view, body)?,
        }),
    }
}

/// A SHA-256 written out: 64 hex digits.
fn is_sha256_hex(s: &str) -> bool {
    s.parse::<crate::hash::Digest>().is_ok()
}

fn conflict_effect<V: View>(view: &mut V, body: &EventBody) -> Result<Option<Effect>, V::Error> {
    let flag = |s: Option<SpecimenState>| {
        s.map(|mut s| {
            s.in_conflict = true;
            Effect::Update(s)
        })
    };
    match body {
        EventBody::Registered { specimen, .. } | EventBody::Derived { specimen, .. } => {
            if let Some(s) = view.specimen(&specimen.code)? {
                return Ok(flag(Some(s)));
            }
            let mut freeze_thaw = specimen.freeze_thaw;
            if let Some(parent) = &specimen.parent {
                match view.specimen(parent)? {
                    Some(p) => freeze_thaw = freeze_thaw.max(p.freeze_thaw),
                    // No lineage to attach it to: nothing can be recorded of it.
                    None => return Ok(None),
                }
            }
            let mut record = specimen.clone();
            record.freeze_thaw = freeze_thaw;
            Ok(Some(Effect::Register {
                state: SpecimenState {
                    code: specimen.code.clone(),
                    custody: Custody::Received,
                    blocked: false,
                    in_conflict: true,
                    freeze_thaw,
                    quantity: specimen.quantity,
                },
                record,
            }))
        }
        EventBody::ContainerCreated { .. }
        | EventBody::ContainerMoved { .. }
        | EventBody::LabelsPrinted { .. } => Ok(None),
        // Events about no specimen (users, signatures, withdrawals) flag nothing.
        b => match b.specimen() {
            Some(code) => Ok(flag(view.specimen(code)?)),
            None => Ok(None),
        },
    }
}

/// A user event's effect. Whether the user exists is the use case's to check where the person
/// acts (`kura-app`); here only what every bench and the registry can check alone: well-formed
/// IDs and names, and credentials that are Argon2id hashes, never a secret in clear.
fn user_effect(body: &EventBody) -> Result<Effect, RuleError> {
    use crate::user::{UserChange, parse_badge, parse_user_id};
    let Some(user) = body.user() else {
        return Err(RuleError::BadUser {
            user: String::new(),
            reason: "not a user event".into(),
        });
    };
    let bad = |reason: String| RuleError::BadUser {
        user: user.to_string(),
        reason,
    };
    if parse_user_id(user).map_err(bad)? != user {
        return Err(bad("user IDs are recorded in lower case".into()));
    }
    let change = match body {
        EventBody::UserAdded {
            name, role, badge, ..
        } => {
            if name.trim().is_empty() || name.chars().count() > 80 {
                return Err(bad(
                    "a user needs a printed name of 1 to 80 characters".into()
                ));
            }
            if let Some(b) = badge {
                parse_badge(b).map_err(bad)?;
            }
            UserChange::Add {
                name: name.clone(),
                role: *role,
                badge: badge.clone(),
            }
        }
        EventBody::RoleGranted { role, .. } => UserChange::Grant(*role),
        EventBody::UserDisabled { reason, .. } => {
            if reason.trim().is_empty() {
                return Err(bad("disabling a user needs a reason".into()));
            }
            UserChange::Disable
        }
        EventBody::CredentialSet {
            secret, hash, key, ..
        } => {
            if !hash.starts_with("$argon2id$") {
                return Err(bad(
                    "a credential is recorded as an Argon2id hash, never in clear".into(),
                ));
            }
            if key.is_some() && *secret == crate::user::Secret::Pin {
                return Err(bad(
                    "a PIN never signs: a PIN credential publishes no signing key".into(),
                ));
            }
            UserChange::Credential {
                secret: *secret,
                hash: hash.clone(),
                key: key.clone(),
            }
        }
        _ => return Err(bad("not a user event".into())),
    };
    Ok(Effect::User {
        user: user.to_string(),
        change,
    })
}

#[cfg(test)]
pub(crate) mod tests;
