//! The backend chosen by URL: `sqlite:///path/to/registry.sqlite` (the default) or
//! `postgres://user@host/db`.

use std::path::PathBuf;

use kura_proto::{Conflict, Holding, Lease, PullResponse, PushResponse, Site};
use kura_registry_db::{
    Batch, Caller, Claimed, DbError, DbResult, Enrolled, Enrollment, RegistryDb, SiteLimits,
    WorkstationInfo, WsStatus,
};
use kura_registry_postgres::PgDb;
use kura_registry_sqlite::SqliteDb;
use uuid::Uuid;

/// Any backend, so that the HTTP layer is written once and not generic.
#[derive(Clone)]
pub enum AnyDb {
    Sqlite(SqliteDb),
    Postgres(PgDb),
}

impl From<PgDb> for AnyDb {
    fn from(d: PgDb) -> AnyDb {
        AnyDb::Postgres(d)
    }
}

impl From<SqliteDb> for AnyDb {
    fn from(d: SqliteDb) -> AnyDb {
        AnyDb::Sqlite(d)
    }
}

/// Where the registry keeps its data when no URL is given.
pub fn default_url() -> String {
    let path = directories::ProjectDirs::from("jp", "Kura", "kura")
        .map(|d| d.data_dir().join("registry.sqlite3"))
        .unwrap_or_else(|| PathBuf::from("registry.sqlite3"));
    format!("sqlite://{}", path.display())
}

/// Opens the database a URL names, creating and migrating it as needed.
pub async fn open(url: &str) -> DbResult<AnyDb> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = PathBuf::from(path);
        return tokio::task::spawn_blocking(move || SqliteDb::open(&path))
            .await
            .map_err(|e| DbError::Backend(e.to_string()))?
            .map(AnyDb::Sqlite);
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return PgDb::open(url).await.map(AnyDb::Postgres);
    }
    Err(DbError::Unavailable(format!(
        "the database URL must start with sqlite:// or postgres:// (got {:?})",
        url.split("://").next().unwrap_or(url)
    )))
}

macro_rules! each {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            AnyDb::Sqlite($d) => $e,
            AnyDb::Postgres($d) => $e,
        }
    };
}

impl RegistryDb for AnyDb {
    async fn ready(&self) -> DbResult<()> {
        each!(self, d => d.ready().await)
    }
    async fn add_site(&self, site: Site) -> DbResult<()> {
        each!(self, d => d.add_site(site).await)
    }
    async fn sites(&self) -> DbResult<Vec<Site>> {
        each!(self, d => d.sites().await)
    }
    async fn add_enrollment(
        &self,
        site: &str,
        code_hash: [u8; 32],
        expires_at: i64,
        replaces: Option<Uuid>,
    ) -> DbResult<()> {
        each!(self, d => d.add_enrollment(site, code_hash, expires_at, replaces).await)
    }
    async fn enroll(&self, e: Enrollment) -> DbResult<Enrolled> {
        each!(self, d => d.enroll(e).await)
    }
    async fn authenticate(&self, token_hash: [u8; 32]) -> DbResult<Option<Caller>> {
        each!(self, d => d.authenticate(token_hash).await)
    }
    async fn workstations(&self) -> DbResult<Vec<WorkstationInfo>> {
        each!(self, d => d.workstations().await)
    }
    async fn revoke(&self, workstation: Uuid, now: i64) -> DbResult<()> {
        each!(self, d => d.revoke(workstation, now).await)
    }
    async fn restore(&self, workstation: Uuid, sealed: [u8; 32]) -> DbResult<()> {
        each!(self, d => d.restore(workstation, sealed).await)
    }
    async fn status(&self, caller: &Caller) -> DbResult<WsStatus> {
        each!(self, d => d.status(caller).await)
    }
    async fn push(&self, caller: &Caller, batch: Batch) -> DbResult<PushResponse> {
        each!(self, d => d.push(caller, batch).await)
    }
    async fn pull(
        &self,
        caller: &Caller,
        after: u64,
        limit: u32,
        holding: Option<Holding>,
    ) -> DbResult<PullResponse> {
        each!(self, d => d.pull(caller, after, limit, holding).await)
    }
    async fn conflicts(&self, site: &str, open_only: bool) -> DbResult<Vec<Conflict>> {
        each!(self, d => d.conflicts(site, open_only).await)
    }
    async fn lease(&self, caller: &Caller, year: i32, count: u64, now: i64) -> DbResult<Lease> {
        each!(self, d => d.lease(caller, year, count, now).await)
    }
    async fn claim(&self, caller: &Caller, leases: Vec<Lease>, now: i64) -> DbResult<Claimed> {
        each!(self, d => d.claim(caller, leases, now).await)
    }
    async fn site_limits(&self, site: &str) -> DbResult<SiteLimits> {
        each!(self, d => d.site_limits(site).await)
    }
    async fn set_site_limits(&self, site: &str, limits: SiteLimits) -> DbResult<()> {
        each!(self, d => d.set_site_limits(site, limits).await)
    }
    async fn post_bundle(
        &self,
        caller: &Caller,
        bundle: kura_domain::bundle::Bundle,
        now: i64,
    ) -> DbResult<kura_proto::ParcelPosted> {
        each!(self, d => d.post_bundle(caller, bundle, now).await)
    }
    async fn post_follow_up(
        &self,
        caller: &Caller,
        follow_up: kura_domain::bundle::FollowUp,
        now: i64,
    ) -> DbResult<kura_proto::ParcelPosted> {
        each!(self, d => d.post_follow_up(caller, follow_up, now).await)
    }
    async fn parcels(
        &self,
        caller: &Caller,
        after: u64,
        limit: u32,
    ) -> DbResult<kura_proto::ParcelsResponse> {
        each!(self, d => d.parcels(caller, after, limit).await)
    }
    async fn event_count(&self) -> DbResult<u64> {
        each!(self, d => d.event_count().await)
    }
}
