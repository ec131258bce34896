//! Kura's bench sync. [`plan`] is the pure planner (what a round does, from what the bench and
//! the registry hold); [`engine`] performs it with its own connection to the store, against a
//! [`remote::Remote`] whose real implementation is HTTP ([`remote::Http`]). Network IO never
//! holds the window's `Kura`; the engine opens the database file itself.
//!
//! Layering: this crate uses `kura-store` and `kura-proto` (and the domain below them), never
//! `kura-app`; `kura-app` starts it.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod engine;
pub mod plan;
pub mod remote;

pub use engine::{Config, Engine, Phase, Report, SyncError, backoff};
pub use remote::{Http, Remote, RemoteError, Timeouts, enroll};
