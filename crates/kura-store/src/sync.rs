//! What sync needs of the store: this workstation's events past the high-water mark, the
//! registry's answers to them, other workstations' events applied through the same projection
//! in the registry's order, serial leases, and where this workstation stands.
//!
//! The projection is the log folded in the canonical order (the registry's `server_seq`, then
//! what it has not ordered yet, in local order). Pulled events usually come after everything
//! applied here; when some of this bench's own events already applied belong after them, the
//! page is applied at once only if the two touch nothing in common (then the order does not
//! matter); otherwise the projection is rebuilt in the canonical order, in the same transaction.

//!
//! The rooms: `state` (where this workstation stands), `leases` (serials), `push` (own events
//! out, answers in), `pull` (others' events in: check, decide, write), `order` (the canonical
//! order, what is ahead of a page, relearning it, the refold).

mod leases;
mod order;
mod pull;
mod push;
mod state;

use kura_domain::EventBody;
use kura_domain::hash::Digest;
use uuid::Uuid;

use crate::StoreError;

pub use leases::LeaseBlock;
pub(crate) use order::{AheadCache, REFOLD_PENDING};
pub use pull::PullApplied;
pub use push::Answer;
pub use state::{ConflictRow, RejectionRow, SyncState};

/// A hash column: 32 bytes, or the database is damaged (`what` says where).
pub(crate) fn digest(bytes: &[u8], what: impl FnOnce() -> String) -> Result<Digest, StoreError> {
    Digest::from_slice(bytes).ok_or_else(|| StoreError::Corrupt(what()))
}

fn uuid_of(bytes: Vec<u8>) -> Uuid {
    Uuid::from_slice(&bytes).unwrap_or_default()
}

fn parse_body(payload: &str, what: impl Fn() -> String) -> Result<EventBody, StoreError> {
    serde_json::from_str(payload).map_err(|e| StoreError::Corrupt(format!("{}: {e}", what())))
}
