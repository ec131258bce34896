//! Kura's domain: identifiers, positions, containers, specimens, custody events and the rules
//! between them. This crate does no IO: no files, no database, no clock reads, no network.

// No panic on input: outside tests, no unwrap/expect/panic; the few that cannot fail say why.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod authz;
pub mod bundle;
pub mod container;
pub mod envelope;
pub mod era;
pub mod event;
pub mod footprint;
pub mod hash;
pub mod id;
pub mod position;
pub mod rules;
pub mod shipment;
pub mod sign;
pub mod specimen;
pub mod time;
pub mod user;

pub use container::{ContainerKind, ContainerSpec, Temperature};
pub use envelope::{Envelope, Placed};
pub use event::{Event, EventBody, Location, Outcome, Placement, Purpose};
pub use footprint::Footprint;
pub use hash::Digest;
pub use id::{ContainerId, IdFormat, KuraId, ScanError, SpecimenCode};
pub use position::{Geometry, Pos};
pub use rules::{ContainerInfo, Custody, RuleError, Settled, SpecimenState};
pub use shipment::{Coolant, Destination, Packed, Shipment};
pub use specimen::{Quantity, SampleType, SpecimenRecord, Status};
pub use time::{Clock, Timestamp};
pub use user::{Meaning, Role, Secret, UserChange};
