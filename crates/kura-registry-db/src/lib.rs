//! The central registry's storage, shaped like a database trait with one crate per backend.
//!
//! [`RegistryDb`] is what the HTTP layer needs; `kura-registry-sqlite` and
//! `kura-registry-postgres` implement it. What must be the same on every backend — which verdict
//! an event gets, how the chain is checked, how accepted events fold into the registry's own
//! projection and raise conflicts — is pure code in [`ingest`], which a backend calls between
//! its reads and writes inside one transaction. [`conformance`] is the suite every backend runs.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::future::Future;

use kura_proto::{
    Conflict, Envelope, Head, Holding, Lease, ParcelPosted, ParcelsResponse, PullResponse,
    PushResponse, Site,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub mod conformance;
pub mod ingest;
pub mod parcels;
pub mod testkit;

/// What went wrong in the registry's store. `code()` is stable and reaches the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error(
        "the registry holds this workstation's events up to seq {holds}; the batch starts at seq {first}. Ask /api/v1/status and send from seq {}",
        holds + 1
    )]
    Gap { holds: u64, first: u64 },
    #[error(
        "the registry's order of the site's events differs from this bench's at or below position {after} (it now ends at {head}): it was restored from an older copy. The bench learns the order again from the last position both agree on"
    )]
    OrderChanged { after: u64, head: u64 },
    #[error("{0}")]
    Enroll(EnrollRefusal),
    #[error("{0}")]
    BadBatch(String),
    #[error(
        "event seq {seq} claims workstation {claimed}; a workstation pushes only its own events"
    )]
    NotYourStream { seq: u64, claimed: Uuid },
    #[error(
        "no serials left for prefix {prefix} in {year}: the {width}-digit serial space is used up"
    )]
    SerialsExhausted {
        prefix: String,
        year: i32,
        width: u32,
    },
    #[error(
        "this workstation was leased or claimed {granted} serials in the last 24 hours; {asked} more would pass the site's limit of {limit} a day. If the work is real, the registry administrator can raise it (kura-registry site limits SITE --daily-serials N)"
    )]
    SerialsQuota {
        granted: u64,
        asked: u64,
        limit: u64,
    },
    /// A parcel the registry does not take (see [`parcels`]).
    #[error("{message}")]
    Parcel { code: &'static str, message: String },
    #[error("the database is not reachable: {0}")]
    Unavailable(String),
    #[error("the database has no schema yet or an older one: {0}")]
    NotMigrated(String),
    #[error("database error: {0}")]
    Backend(String),
}

impl DbError {
    pub fn code(&self) -> &'static str {
        match self {
            DbError::NotFound(_) => "not_found",
            DbError::Exists(_) => "exists",
            DbError::Gap { .. } => "gap",
            DbError::OrderChanged { .. } => "order_changed",
            DbError::Enroll(r) => r.code(),
            DbError::BadBatch(_) => "bad_batch",
            DbError::NotYourStream { .. } => "not_your_stream",
            DbError::SerialsExhausted { .. } => "serials_exhausted",
            DbError::SerialsQuota { .. } => "serials_quota",
            DbError::Parcel { code, .. } => code,
            DbError::Unavailable(_) => "database_unavailable",
            DbError::NotMigrated(_) => "database_not_migrated",
            DbError::Backend(_) => "database_error",
        }
    }
}

/// Why an enrollment code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnrollRefusal {
    #[error(
        "this enrollment code is not known; check it, or ask the registry administrator for a new one"
    )]
    UnknownCode,
    #[error("this enrollment code was already used; ask the registry administrator for a new one")]
    UsedCode,
    #[error("this enrollment code has expired; ask the registry administrator for a new one")]
    ExpiredCode,
    #[error("this workstation is enrolled at another site; its events cannot move to this one")]
    OtherSite,
    #[error(
        "this workstation was revoked; the registry administrator can re-admit it (kura-registry workstations --restore ID) and give it a code made with kura-registry enroll --replaces ID"
    )]
    Revoked,
    #[error(
        "this database issued Kura IDs of another format than the site's; they could never join it. Enroll a new database, or one initialised with the site's prefix (the code is still unused)"
    )]
    PrefixMismatch,
    #[error(
        "this database issued Kura IDs itself whose serials the registry already leased to another workstation of the site: they would collide. Enroll a new database for this workstation, or ask the registry administrator"
    )]
    SerialsTaken,
    #[error(
        "this code is for a replacement PC (it takes over an existing workstation's identity); use it with kura recover on a new data directory, or ask for a code for a new workstation"
    )]
    ForReplacement,
    #[error(
        "this workstation is already enrolled, and a new code does not take it over. If this PC is that workstation and lost its token, or replaces it, ask the registry administrator for a code made with kura-registry enroll --replaces WORKSTATION (the code is still unused)"
    )]
    WorkstationExists,
    #[error(
        "this database says it issued more Kura IDs before enrollment than the site lets one enrollment claim; enroll a new database, or ask the registry administrator (kura-registry site limits SITE --claim-cap N). The code is still unused"
    )]
    ClaimTooLarge,
    #[error(
        "kura recover needs a code made for the workstation it replaces (kura-registry enroll --site S --replaces WORKSTATION); this one enrolls a new workstation (the code is still unused)"
    )]
    NotForReplacement,
}

impl EnrollRefusal {
    pub fn code(self) -> &'static str {
        match self {
            EnrollRefusal::UnknownCode => "enroll_code_unknown",
            EnrollRefusal::UsedCode => "enroll_code_used",
            EnrollRefusal::ExpiredCode => "enroll_code_expired",
            EnrollRefusal::OtherSite => "enroll_other_site",
            EnrollRefusal::Revoked => "workstation_revoked",
            EnrollRefusal::SerialsTaken => "enroll_serials_taken",
            EnrollRefusal::PrefixMismatch => "enroll_prefix_refused",
            EnrollRefusal::ForReplacement => "enroll_code_for_replacement",
            EnrollRefusal::WorkstationExists => "workstation_exists",
            EnrollRefusal::ClaimTooLarge => "enroll_claim_too_large",
            EnrollRefusal::NotForReplacement => "enroll_code_not_for_replacement",
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// A secret's stored form: SHA-256. Tokens and codes are long random strings, so a fast hash is
/// enough; the registry never stores or logs the secret itself.
pub fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::new_with_prefix(b"kura-secret-v1\0")
        .chain_update(secret.trim().as_bytes())
        .finalize()
        .into()
}

/// An authenticated workstation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub workstation: Uuid,
    pub site: Site,
}

/// A workstation as the administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkstationInfo {
    pub id: Uuid,
    pub site: String,
    pub name: String,
    pub enrolled_at: i64,
    pub revoked_at: Option<i64>,
    pub head: u64,
    pub clock_skew_us: Option<i64>,
    pub last_seen: Option<i64>,
}

/// An enrollment to perform: the code's hash, the workstation, its token's hash.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub code_hash: [u8; 32],
    pub workstation: Uuid,
    pub name: String,
    pub token_hash: [u8; 32],
    pub now: i64,
    pub year: i32,
    pub lease: u64,
    /// Serials the bench issued before enrolling, recorded as its own.
    pub issued: Vec<Lease>,
    /// The ID format the bench's own IDs carry, if it issued any: a site with another is refused.
    pub id_format: Option<kura_proto::IdFormatClaim>,
    /// A replacement PC (`kura recover`): the code must name the workstation it replaces, whose
    /// identity it takes (`workstation` is then ignored).
    pub recover: bool,
}

/// What an enrollment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// The workstation now enrolled: the bench's own, or the one a replacement PC took over.
    pub workstation: Uuid,
    pub site: Site,
    pub lease: Lease,
    /// A replacement: where the old PC's stream stood.
    pub replaced: Option<Replaced>,
}

/// How many serials a site lets one enrollment claim as issued before it (`claim_cap`) and one
/// workstation be leased or claim in 24 hours (`daily_serials`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteLimits {
    pub claim_cap: u64,
    pub daily_serials: u64,
}

/// A day, in µs: the window of [`SiteLimits::daily_serials`].
pub const DAY_US: i64 = 24 * 3600 * 1_000_000;

/// Refuses `asked` more serials when `granted` in the last day already come near `limit`.
pub fn within_quota(granted: u64, asked: u64, limit: u64) -> DbResult<()> {
    if granted.saturating_add(asked) > limit {
        return Err(DbError::SerialsQuota {
            granted,
            asked,
            limit,
        });
    }
    Ok(())
}

/// What a claim of serials came to (see [`RegistryDb::claim`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimed {
    pub kept: Vec<Lease>,
    pub taken: Vec<Lease>,
}

/// Where a replaced workstation's stream stood when a new PC took it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replaced {
    /// Its events the registry holds (acknowledged), up to this seq.
    pub head: u64,
    /// When it was last heard from (µs).
    pub last_seen: Option<i64>,
}

/// Where a workstation's stream stands in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsStatus {
    pub head: Head,
    pub leases: Vec<Lease>,
    pub clock_skew_us: Option<i64>,
    pub site_seq: u64,
}

/// A push that passed the checks that need no database (size, order, own stream).
#[derive(Debug, Clone)]
pub struct Batch {
    pub events: Vec<Envelope>,
    pub sent_at: Option<i64>,
    pub received_at: i64,
}

/// The registry's store. Every method is one transaction; the registry keeps no state between
/// requests, so several processes may share one database.
pub trait RegistryDb: Clone + Send + Sync + 'static {
    /// The database answers and its schema is current.
    fn ready(&self) -> impl Future<Output = DbResult<()>> + Send;
    fn add_site(&self, site: Site) -> impl Future<Output = DbResult<()>> + Send;
    fn sites(&self) -> impl Future<Output = DbResult<Vec<Site>>> + Send;
    /// Stores a one-time enrollment code (its hash) for `site`, valid until `expires_at` (µs).
    /// With `replaces`, the code is for a replacement PC of that workstation (which must be of
    /// `site` and not revoked: else [`DbError::NotFound`]).
    fn add_enrollment(
        &self,
        site: &str,
        code_hash: [u8; 32],
        expires_at: i64,
        replaces: Option<Uuid>,
    ) -> impl Future<Output = DbResult<()>> + Send;
    /// Uses the code once: binds a new workstation to the code's site, stores its token's hash
    /// and grants its first lease. A known workstation is refused
    /// ([`EnrollRefusal::WorkstationExists`]): only a code made for it (`replaces`) gives its
    /// identity again, to itself (a lost token, a re-admission) or to a replacement PC
    /// (`recover`), and the new token takes the old one's place in the same transaction.
    fn enroll(&self, e: Enrollment) -> impl Future<Output = DbResult<Enrolled>> + Send;
    /// The workstation holding this token, unless revoked.
    fn authenticate(
        &self,
        token_hash: [u8; 32],
    ) -> impl Future<Output = DbResult<Option<Caller>>> + Send;
    fn workstations(&self) -> impl Future<Output = DbResult<Vec<WorkstationInfo>>> + Send;
    /// Revokes a workstation: its token stops working and it gets no more leases.
    fn revoke(&self, workstation: Uuid, now: i64) -> impl Future<Output = DbResult<()>> + Send;
    /// Re-admits a revoked workstation: it may enroll again with a new code. Its old token stays
    /// dead: `sealed` (a random hash no token has) takes its place until that enrollment.
    fn restore(
        &self,
        workstation: Uuid,
        sealed: [u8; 32],
    ) -> impl Future<Output = DbResult<()>> + Send;
    fn status(&self, caller: &Caller) -> impl Future<Output = DbResult<WsStatus>> + Send;
    /// Stores a batch of the caller's events in one transaction and answers each.
    fn push(
        &self,
        caller: &Caller,
        batch: Batch,
    ) -> impl Future<Output = DbResult<PushResponse>> + Send;
    /// The site's events after `after` from other workstations, where the caller's own events
    /// sit and which events of the page's workstations were refused (no conflicts: a bench folds
    /// its own; [`RegistryDb::conflicts`] lists the site's). With
    /// `holding`, first checks the site's order agrees with the bench's there
    /// ([`order_agrees`]); [`DbError::OrderChanged`] when it does not.
    fn pull(
        &self,
        caller: &Caller,
        after: u64,
        limit: u32,
        holding: Option<Holding>,
    ) -> impl Future<Output = DbResult<PullResponse>> + Send;
    fn conflicts(
        &self,
        site: &str,
        open_only: bool,
    ) -> impl Future<Output = DbResult<Vec<Conflict>>> + Send;
    /// A new block of `count` serials for the caller's prefix and `year`.
    fn lease(
        &self,
        caller: &Caller,
        year: i32,
        count: u64,
        now: i64,
    ) -> impl Future<Output = DbResult<Lease>> + Send;
    /// Serials the caller holds that this registry does not list as its own (it was restored
    /// from a copy older than their grant): each block becomes the caller's again unless it
    /// overlaps another workstation's lease (then it is `taken`).
    fn claim(
        &self,
        caller: &Caller,
        leases: Vec<Lease>,
        now: i64,
    ) -> impl Future<Output = DbResult<Claimed>> + Send;
    fn site_limits(&self, site: &str) -> impl Future<Output = DbResult<SiteLimits>> + Send;
    fn set_site_limits(
        &self,
        site: &str,
        limits: SiteLimits,
    ) -> impl Future<Output = DbResult<()>> + Send;
    /// Takes a shipment's bundle from the workstation that dispatched it ([`parcels::check_bundle`]):
    /// its dispatch must be the caller's event the registry holds with the same hash, its key
    /// the one the caller's first bundle bound ([`parcels::KeyChanged`]). Kept once, by the
    /// dispatch's hash, for the destination site; a receipt is made at once for each tube the
    /// destination already received.
    fn post_bundle(
        &self,
        caller: &Caller,
        bundle: kura_domain::bundle::Bundle,
        now: i64,
    ) -> impl Future<Output = DbResult<ParcelPosted>> + Send;
    /// Takes a follow-up from the workstation that recorded its block
    /// ([`parcels::check_follow_up`]): the registry must hold the block with the same hash, the
    /// key be the one the caller's first parcel bound, the shipment be the caller's site's and
    /// carry the tube. Kept once, by the block's hash, for the shipment's destination.
    fn post_follow_up(
        &self,
        caller: &Caller,
        follow_up: kura_domain::bundle::FollowUp,
        now: i64,
    ) -> impl Future<Output = DbResult<ParcelPosted>> + Send;
    /// The parcels addressed to the caller's site after `after`.
    fn parcels(
        &self,
        caller: &Caller,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = DbResult<ParcelsResponse>> + Send;
    /// How many custody events the registry holds (for operators and tests).
    fn event_count(&self) -> impl Future<Output = DbResult<u64>> + Send;
}

/// The next lease after the highest serial already leased (`last_leased`, 0 for none).
pub fn next_lease(site: &Site, year: i32, last_leased: u64, count: u64) -> DbResult<Lease> {
    let max = 10u64.saturating_pow(site.serial_width).saturating_sub(1);
    let first = last_leased + 1;
    if first > max || count == 0 {
        return Err(DbError::SerialsExhausted {
            prefix: site.prefix.clone(),
            year,
            width: site.serial_width,
        });
    }
    Ok(Lease {
        year,
        first,
        last: (first + count - 1).min(max),
    })
}

/// What the registry's order holds where a bench says it holds `holding`, as a backend reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderAt {
    /// The site's newest position.
    pub site_seq: u64,
    /// The event at `holding.at` (none when `at` is 0 or past the end) …
    pub event_at: Option<Uuid>,
    /// … and when it was stored there (`received_at`).
    pub placed_at: Option<i64>,
    /// Another workstation's event lies after `holding.at`, at or below `after`: the bench
    /// would hold it.
    pub others_between: bool,
}

/// The bench's order agrees with the registry's up to `after`: the registry reaches `after`, holds
/// the bench's event at `holding.at`, and nothing of another workstation between (positions the
/// bench holds nothing at must be its own events, whose places it may not have learnt yet).
pub fn order_agrees(after: u64, holding: &Holding, seen: &OrderAt) -> DbResult<()> {
    let agrees = seen.site_seq >= after
        && holding.at <= after
        && seen.event_at == holding.id
        && (holding.placed.is_none() || holding.placed == seen.placed_at)
        && !seen.others_between;
    if agrees {
        Ok(())
    } else {
        Err(DbError::OrderChanged {
            after,
            head: seen.site_seq,
        })
    }
}
