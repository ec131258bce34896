//! The registry on one SQLite file: the default, so that `kura-registry serve` runs with nothing
//! else installed. One writer connection (SQLite has one writer anyway; a push's transaction is
//! the site lock), a few reader connections, all work on tokio's blocking pool.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kura_domain::container::ContainerSpec;
use kura_domain::hash::{Digest, GENESIS};
use kura_domain::rules::SpecimenState;
use kura_proto::{
    Conflict, Envelope, Holding, Lease, OwnPosition, Parcel, ParcelPosted, ParcelsResponse, Placed,
    PlacedParcel, PullResponse, PushResponse, RefusedSeq, Site,
};
use kura_registry_db::ingest::{self, ContainerRow, FoldError, Keys, Loaded, SpecimenRow, Stored};
use kura_registry_db::parcels;
use kura_registry_db::{
    Batch, Caller, Claimed, DbError, DbResult, EnrollRefusal, Enrolled, Enrollment, OrderAt,
    RegistryDb, Replaced, SiteLimits, WorkstationInfo, WsStatus, next_lease, order_agrees,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use uuid::Uuid;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_registry.sql")),
    (2, include_str!("../migrations/0002_replacement.sql")),
    (3, include_str!("../migrations/0003_limits.sql")),
    (4, include_str!("../migrations/0004_site_users.sql")),
    (5, include_str!("../migrations/0005_parcels.sql")),
];

/// The newest registry schema this build knows.
pub fn newest_schema() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

#[derive(Clone)]
pub struct SqliteDb {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn backend(e: rusqlite::Error) -> DbError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            DbError::Unavailable(e.to_string())
        }
        e => DbError::Backend(e.to_string()),
    }
}

fn json_err(e: serde_json::Error) -> DbError {
    DbError::Backend(format!("a stored row does not read back: {e}"))
}

fn connect(path: &Path, flags: OpenFlags) -> DbResult<Connection> {
    let c = Connection::open_with_flags(path, flags).map_err(backend)?;
    c.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend)?;
    c.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
        .map_err(backend)?;
    Ok(c)
}

impl SqliteDb {
    /// Opens (creating when missing) the registry file and brings its schema up to date.
    pub fn open(path: &Path) -> DbResult<SqliteDb> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                DbError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        // A new file is the owner's only (SQLite gives its WAL and shared memory the same mode):
        // it holds every site's custody log and the workstations' token hashes.
        #[cfg(unix)]
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(DbError::Unavailable(format!(
                        "cannot create {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        let mut w = connect(path, OpenFlags::default())?;
        w.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        migrate(&mut w)?;
        Ok(SqliteDb {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(w),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A consistent copy of the whole registry in the new file `to` while it serves
    /// (`VACUUM INTO` on a read-only connection: one snapshot; pushes go on meanwhile), owner-only.
    pub async fn backup_into(&self, to: &Path) -> DbResult<()> {
        let from = self.inner.path.clone();
        let to = to.to_path_buf();
        blocking(move || {
            if to.exists() {
                return Err(DbError::Backend(format!(
                    "{} exists: a backup is written to a new file",
                    to.display()
                )));
            }
            let c = connect(&from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            c.execute("VACUUM INTO ?1", [to.to_string_lossy().as_ref()])
                .map_err(backend)?;
            #[cfg(unix)]
            std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(|e| DbError::Backend(format!("{}: {e}", to.display())))?;
            Ok(())
        })
        .await
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> DbResult<T> + Send + 'static,
    ) -> DbResult<T> {
        let inner = self.inner.clone();
        blocking(move || {
            let mut c = inner
                .writer
                .lock()
                .map_err(|_| DbError::Backend("the writer connection was poisoned".into()))?;
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let out = f(&tx)?;
            tx.commit().map_err(backend)?;
            Ok(out)
        })
        .await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> DbResult<T> + Send + 'static,
    ) -> DbResult<T> {
        let inner = self.inner.clone();
        blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut r| r.pop());
            let mut c = match pooled {
                Some(c) => c,
                None => connect(&inner.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
            };
            let out = {
                let tx = c.transaction().map_err(backend)?;
                f(&tx)
            };
            if let Ok(mut r) = inner.readers.lock()
                && r.len() < 8
            {
                r.push(c);
            }
            out
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> DbResult<T> + Send + 'static,
) -> DbResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DbError::Backend(format!("a database task failed: {e}")))?
}

fn migrate(c: &mut Connection) -> DbResult<()> {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL DEFAULT (unixepoch()))",
    )
    .map_err(backend)?;
    let have: i64 = c
        .query_row(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if have > latest {
        return Err(DbError::NotMigrated(format!(
            "the registry database has schema version {have}, newer than this kura-registry ({latest}); run a newer kura-registry"
        )));
    }
    for (v, sql) in MIGRATIONS.iter().filter(|m| m.0 > have) {
        let tx = c.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        if *v == 4 {
            backfill_site_users(&tx)?;
        }
        tx.execute("INSERT INTO schema_migrations (version) VALUES (?1)", [v])
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        tracing::info!(version = v, "registry migration applied");
    }
    Ok(())
}

/// Fills `site_users` from the user events a registry took before it kept them.
fn backfill_site_users(tx: &rusqlite::Transaction<'_>) -> DbResult<()> {
    let sites: Vec<String> = tx
        .prepare("SELECT code FROM sites")
        .map_err(backend)?
        .query_map([], |r| r.get(0))
        .map_err(backend)?
        .collect::<Result<_, _>>()
        .map_err(backend)?;
    for site in sites {
        let rows: Vec<(String, String)> = tx
            .prepare(
                "SELECT actor, payload FROM events WHERE site = ?1
                 AND kind IN ('user_added', 'role_granted', 'user_disabled', 'credential_set')
                 ORDER BY server_seq",
            )
            .map_err(backend)?
            .query_map([&site], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        let a = ingest::authority_from(rows.iter().map(|(a, p)| (a.as_str(), p.as_str())));
        save_authority(tx, &site, &Default::default(), &a)?;
    }
    Ok(())
}

fn load_authority(
    tx: &rusqlite::Transaction<'_>,
    site: &str,
) -> DbResult<kura_domain::authz::Authority> {
    let mut st = tx
        .prepare_cached(
            "SELECT code, role, disabled, signing_key, key_salt FROM site_users WHERE site = ?1",
        )
        .map_err(backend)?;
    let rows = st
        .query_map([site], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .map_err(backend)?;
    let mut a = kura_domain::authz::Authority::default();
    for row in rows {
        let (code, role, disabled, key, salt) = row.map_err(backend)?;
        a.members.insert(
            code,
            kura_domain::authz::Member {
                role: kura_domain::Role::parse(&role).unwrap_or(kura_domain::Role::Auditor),
                disabled,
                key: key
                    .zip(salt)
                    .map(|(ed25519, salt)| kura_domain::sign::PublicKey { ed25519, salt }),
            },
        );
    }
    Ok(a)
}

/// Writes the members that changed between `before` and `after`.
fn save_authority(
    tx: &rusqlite::Transaction<'_>,
    site: &str,
    before: &kura_domain::authz::Authority,
    after: &kura_domain::authz::Authority,
) -> DbResult<()> {
    let mut st = tx
        .prepare_cached(
            "INSERT INTO site_users (site, code, role, disabled, signing_key, key_salt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (site, code) DO UPDATE SET role = excluded.role,
               disabled = excluded.disabled, signing_key = excluded.signing_key,
               key_salt = excluded.key_salt",
        )
        .map_err(backend)?;
    for (code, m) in &after.members {
        if before.members.get(code) == Some(m) {
            continue;
        }
        st.execute(params![
            site,
            code,
            m.role.as_str(),
            m.disabled,
            m.key.as_ref().map(|k| k.ed25519.as_str()),
            m.key.as_ref().map(|k| k.salt.as_str())
        ])
        .map_err(backend)?;
    }
    Ok(())
}

fn uuid_of(b: Vec<u8>) -> DbResult<Uuid> {
    Uuid::from_slice(&b).map_err(|e| DbError::Backend(format!("a stored id is not a UUID: {e}")))
}

fn hash_of(b: Vec<u8>) -> DbResult<Digest> {
    Digest::from_slice(&b).ok_or_else(|| DbError::Backend("a stored hash is not 32 bytes".into()))
}

fn site_row(tx: &rusqlite::Transaction<'_>, code: &str) -> DbResult<(Site, u64)> {
    tx.query_row(
        "SELECT code, name, prefix, serial_width, last_seq FROM sites WHERE code = ?1",
        [code],
        |r| {
            Ok((
                Site {
                    code: r.get(0)?,
                    name: r.get(1)?,
                    prefix: r.get(2)?,
                    serial_width: r.get(3)?,
                },
                r.get::<_, i64>(4)? as u64,
            ))
        },
    )
    .optional()
    .map_err(backend)?
    .ok_or_else(|| DbError::NotFound(format!("site {code}")))
}

fn grant(
    tx: &rusqlite::Transaction<'_>,
    site: &Site,
    ws: Uuid,
    year: i32,
    count: u64,
    now: i64,
) -> DbResult<Lease> {
    let last: i64 = tx
        .query_row(
            "SELECT coalesce(max(last), 0) FROM leases WHERE site = ?1 AND year = ?2",
            params![site.code, year],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let lease = next_lease(site, year, last as u64, count)?;
    tx.execute(
        "INSERT INTO leases (site, year, first, last, workstation, granted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![site.code, year, lease.first as i64, lease.last as i64, ws.as_bytes(), now],
    )
    .map_err(backend)?;
    Ok(lease)
}

fn limits_of(tx: &rusqlite::Transaction<'_>, site: &str) -> DbResult<SiteLimits> {
    tx.query_row(
        "SELECT claim_cap, daily_serials FROM sites WHERE code = ?1",
        [site],
        |r| {
            Ok(SiteLimits {
                claim_cap: r.get::<_, i64>(0)? as u64,
                daily_serials: r.get::<_, i64>(1)? as u64,
            })
        },
    )
    .optional()
    .map_err(backend)?
    .ok_or_else(|| DbError::NotFound(format!("site {site}")))
}

/// `ws` is enrolled and not revoked: else [`EnrollRefusal::Revoked`].
fn live(tx: &rusqlite::Transaction<'_>, ws: Uuid) -> DbResult<()> {
    let revoked: Option<Option<i64>> = tx
        .query_row(
            "SELECT revoked_at FROM workstations WHERE id = ?1",
            [ws.as_bytes()],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    match revoked {
        Some(None) => Ok(()),
        _ => Err(DbError::Enroll(EnrollRefusal::Revoked)),
    }
}

/// Another workstation of `site` holds serials of `block`.
fn leased_to_others(
    tx: &rusqlite::Transaction<'_>,
    site: &str,
    block: &Lease,
    ws: Uuid,
) -> DbResult<bool> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM leases WHERE site = ?1 AND year = ?2 AND first <= ?4 AND last >= ?3 AND workstation != ?5)",
        params![site, block.year, block.first as i64, block.last as i64, ws.as_bytes()],
        |r| r.get(0),
    )
    .map_err(backend)
}

/// Serials leased to or claimed by `ws` in the day before `now`.
fn granted_today(tx: &rusqlite::Transaction<'_>, ws: Uuid, now: i64) -> DbResult<u64> {
    tx.query_row(
        "SELECT coalesce(sum(last - first + 1), 0) FROM leases WHERE workstation = ?1 AND granted_at > ?2",
        params![ws.as_bytes(), now - kura_registry_db::DAY_US],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .map_err(backend)
}

fn leases_of(tx: &rusqlite::Transaction<'_>, ws: Uuid) -> DbResult<Vec<Lease>> {
    let mut st = tx
        .prepare_cached(
            "SELECT year, first, last FROM leases WHERE workstation = ?1 ORDER BY year, first",
        )
        .map_err(backend)?;
    let rows = st
        .query_map([ws.as_bytes()], |r| {
            Ok(Lease {
                year: r.get(0)?,
                first: r.get::<_, i64>(1)? as u64,
                last: r.get::<_, i64>(2)? as u64,
            })
        })
        .map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}

fn conflict_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Conflict, String, Option<Vec<u8>>)> {
    Ok((
        Conflict {
            server_seq: r.get::<_, i64>(0)? as u64,
            subject: r.get(1)?,
            code: r.get(2)?,
            message: r.get(3)?,
            events: vec![],
            resolved_by: None,
        },
        r.get(4)?,
        r.get(5)?,
    ))
}

fn finish_conflict(row: (Conflict, String, Option<Vec<u8>>)) -> DbResult<Conflict> {
    let (mut c, events, resolved) = row;
    c.events = serde_json::from_str(&events).map_err(json_err)?;
    c.resolved_by = resolved.map(uuid_of).transpose()?;
    Ok(c)
}

/// Reads the rows the fold asked for.
fn load(
    tx: &rusqlite::Transaction<'_>,
    site: &str,
    keys: &Keys,
    loaded: &mut Loaded,
) -> DbResult<()> {
    let mut specimens = Vec::new();
    {
        let mut st = tx
            .prepare_cached("SELECT state, last_event FROM specimens WHERE site = ?1 AND code = ?2")
            .map_err(backend)?;
        for code in &keys.specimens {
            if let Some((state, last)) = st
                .query_row(params![site, code], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .optional()
                .map_err(backend)?
            {
                let state: SpecimenState = serde_json::from_str(&state).map_err(json_err)?;
                specimens.push(SpecimenRow {
                    state,
                    last_event: uuid_of(last)?,
                });
            }
        }
    }
    let mut containers = Vec::new();
    {
        let mut st = tx
            .prepare_cached("SELECT spec, last_event FROM containers WHERE site = ?1 AND id = ?2")
            .map_err(backend)?;
        for id in &keys.containers {
            if let Some((spec, last)) = st
                .query_row(params![site, id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .optional()
                .map_err(backend)?
            {
                let spec: ContainerSpec = serde_json::from_str(&spec).map_err(json_err)?;
                containers.push(ContainerRow {
                    spec,
                    last_event: uuid_of(last)?,
                });
            }
        }
    }
    let slots = |sql: &str,
                 keys: &std::collections::BTreeSet<ingest::Slot>|
     -> DbResult<Vec<(ingest::Slot, String)>> {
        let mut st = tx.prepare_cached(sql).map_err(backend)?;
        let mut out = Vec::new();
        for k in keys {
            if let Some(code) = st
                .query_row(params![site, k.0, k.1, k.2], |r| r.get::<_, String>(0))
                .optional()
                .map_err(backend)?
            {
                out.push((k.clone(), code));
            }
        }
        Ok(out)
    };
    let sslots = slots(
        "SELECT code FROM specimens WHERE site = ?1 AND container = ?2 AND pos_row = ?3 AND pos_col = ?4",
        &keys.specimen_slots,
    )?;
    let cslots = slots(
        "SELECT id FROM containers WHERE site = ?1 AND parent = ?2 AND pos_row = ?3 AND pos_col = ?4",
        &keys.container_slots,
    )?;
    loaded.absorb(keys, specimens, containers, sslots, cslots);
    Ok(())
}

/// Keeps a parcel once, by its hash: its seq, and whether it was already kept.
fn keep_parcel(
    tx: &rusqlite::Transaction<'_>,
    to_site: &str,
    from_site: &str,
    parcel: &Parcel,
    now: i64,
) -> DbResult<(u64, bool)> {
    let hash = parcel.hash();
    if let Some(seq) = tx
        .query_row(
            "SELECT seq FROM parcels WHERE hash = ?1",
            [hash.as_bytes().as_slice()],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map_err(backend)?
    {
        return Ok((seq as u64, true));
    }
    let body = serde_json::to_string(parcel).map_err(json_err)?;
    tx.execute(
        "INSERT INTO parcels (to_site, from_site, kind, shipment, hash, body, stored_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            to_site,
            from_site,
            parcel.kind(),
            parcel.shipment(),
            hash.as_bytes().as_slice(),
            body,
            now
        ],
    )
    .map_err(backend)?;
    Ok((tx.last_insert_rowid() as u64, false))
}

/// The receipt of `event` (`received`, of `site`) goes back to the site that sent its shipment,
/// when the registry holds that shipment's bundle for `site`.
fn receipt_back(
    tx: &rusqlite::Transaction<'_>,
    site: &str,
    event: &Envelope,
    now: i64,
) -> DbResult<()> {
    let Some(shipment) = parcels::received_shipment(&event.kind, &event.payload) else {
        return Ok(());
    };
    let from: Option<String> = tx
        .query_row(
            "SELECT from_site FROM parcels WHERE kind = 'bundle' AND shipment = ?1 AND to_site = ?2",
            params![shipment, site],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    if let Some(from) = from {
        keep_parcel(
            tx,
            &from,
            site,
            &parcels::receipt(&shipment, site, event),
            now,
        )?;
    }
    Ok(())
}

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Envelope, Vec<u8>)> {
    Ok((
        Envelope {
            id: Uuid::from_slice(&r.get::<_, Vec<u8>>(0)?).unwrap_or_default(),
            workstation: Uuid::from_slice(&r.get::<_, Vec<u8>>(1)?).unwrap_or_default(),
            seq: r.get::<_, i64>(2)? as u64,
            actor: r.get(3)?,
            at: r.get(4)?,
            kind: r.get(5)?,
            payload: r.get(6)?,
            hash: GENESIS,
        },
        r.get(7)?,
    ))
}

fn post_bundle_tx(
    tx: &rusqlite::Transaction<'_>,
    caller: &Caller,
    a: parcels::Addressed,
    bundle: kura_domain::bundle::Bundle,
    now: i64,
) -> DbResult<ParcelPosted> {
    site_row(tx, &a.to_site).map_err(|_| DbError::Parcel {
        code: "unknown_site",
        message: format!(
            "shipment {} goes to site {}, which this registry does not know; check the site's code",
            a.shipment, a.to_site
        ),
    })?;
    parcels::dispatch_held(&a, held_hash(tx, caller.workstation, a.seq)?)?;
    bind_key(tx, caller.workstation, &a.key, now)?;
    let (seq, duplicate) = keep_parcel(
        tx,
        &a.to_site,
        &caller.site.code,
        &Parcel::Bundle { bundle },
        now,
    )?;
    // Tubes the destination received before the registry held the bundle (it was put back from
    // an older copy, or the bundle came late): their receipts now.
    let received = {
        let mut st = tx
            .prepare_cached(
                "SELECT id, workstation, seq, actor, at, kind, payload, hash FROM events
                 WHERE site = ?1 AND kind = 'received' AND instr(payload, ?2) > 0",
            )
            .map_err(backend)?;
        let rows = st
            .query_map(params![a.to_site, a.shipment], event_row)
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut e, hash) = row.map_err(backend)?;
            e.hash = hash_of(hash)?;
            out.push(e);
        }
        out
    };
    for e in &received {
        receipt_back(tx, &a.to_site, e, now)?;
    }
    Ok(ParcelPosted {
        v: kura_proto::VERSION,
        seq,
        duplicate,
    })
}

/// The caller's key is bound by its first parcel; a later one must carry the same.
fn bind_key(tx: &rusqlite::Transaction<'_>, ws: Uuid, key: &str, now: i64) -> DbResult<()> {
    let bound: Option<String> = tx
        .query_row(
            "SELECT key FROM workstation_keys WHERE workstation = ?1",
            [ws.as_bytes()],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    if parcels::key_bound(bound.as_deref(), key)? {
        tx.execute(
            "INSERT INTO workstation_keys (workstation, key, bound_at) VALUES (?1, ?2, ?3)",
            params![ws.as_bytes(), key, now],
        )
        .map_err(backend)?;
    }
    Ok(())
}

/// The hash the registry holds at `seq` of `ws`'s stream.
fn held_hash(tx: &rusqlite::Transaction<'_>, ws: Uuid, seq: u64) -> DbResult<Option<Digest>> {
    let held: Option<Vec<u8>> = tx
        .query_row(
            "SELECT hash FROM events WHERE workstation = ?1 AND seq = ?2",
            params![ws.as_bytes(), seq as i64],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    held.map(hash_of).transpose()
}

fn post_follow_up_tx(
    tx: &rusqlite::Transaction<'_>,
    caller: &Caller,
    follow_up: kura_domain::bundle::FollowUp,
    now: i64,
) -> DbResult<ParcelPosted> {
    let f = parcels::check_follow_up(caller, &follow_up)?;
    parcels::block_held(&f, held_hash(tx, caller.workstation, f.seq)?)?;
    bind_key(tx, caller.workstation, &f.key, now)?;
    let bundle: Option<(String, String)> = tx
        .query_row(
            "SELECT to_site, body FROM parcels WHERE kind = 'bundle' AND shipment = ?1 AND from_site = ?2",
            params![f.shipment, caller.site.code],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    let bundle = match bundle {
        Some((to, body)) => match serde_json::from_str::<Parcel>(&body).map_err(json_err)? {
            Parcel::Bundle { bundle } => Some((to, bundle)),
            _ => None,
        },
        None => None,
    };
    let to_site = parcels::follow_up_to(&f, bundle)?;
    let (seq, duplicate) = keep_parcel(
        tx,
        &to_site,
        &caller.site.code,
        &Parcel::FollowUp { follow_up },
        now,
    )?;
    Ok(ParcelPosted {
        v: kura_proto::VERSION,
        seq,
        duplicate,
    })
}

fn parcels_tx(
    tx: &rusqlite::Transaction<'_>,
    site: &str,
    after: u64,
    limit: u32,
) -> DbResult<ParcelsResponse> {
    let at: Option<Vec<u8>> = tx
        .query_row(
            "SELECT hash FROM parcels WHERE seq = ?1 AND to_site = ?2",
            params![after as i64, site],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    let mut st = tx
        .prepare_cached(
            "SELECT seq, body FROM parcels WHERE to_site = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .map_err(backend)?;
    let rows = st
        .query_map(params![site, after as i64, limit as i64 + 1], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
        })
        .map_err(backend)?;
    let mut parcels = Vec::new();
    for row in rows {
        let (seq, body) = row.map_err(backend)?;
        parcels.push(PlacedParcel {
            seq,
            parcel: serde_json::from_str(&body).map_err(json_err)?,
        });
    }
    let more = parcels.len() > limit as usize;
    parcels.truncate(limit as usize);
    Ok(ParcelsResponse {
        v: kura_proto::VERSION,
        next: parcels.last().map_or(after, |p| p.seq),
        more,
        at: at.map(hash_of).transpose()?,
        parcels,
    })
}

fn push_tx(
    tx: &rusqlite::Transaction<'_>,
    caller: &Caller,
    events: Vec<ingest::Prepared>,
    batch: Batch,
) -> DbResult<PushResponse> {
    let (site, site_seq) = site_row(tx, &caller.site.code)?;
    let ws = caller.workstation;
    let (head_seq, head_hash): (i64, Option<Vec<u8>>) = tx
        .query_row(
            "SELECT head_seq, head_hash FROM workstations WHERE id = ?1 AND revoked_at IS NULL",
            [ws.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?
        .ok_or(DbError::Enroll(EnrollRefusal::Revoked))?;
    let head_seq = head_seq as u64;
    let head_hash = head_hash.map(hash_of).transpose()?.unwrap_or(GENESIS);
    let mut stored = HashMap::new();
    if let (Some(first), Some(last)) = (events.first(), events.last())
        && first.seq() <= head_seq
    {
        let hi = last.seq().min(head_seq) as i64;
        let mut st = tx
            .prepare_cached(
                "SELECT seq, hash, NULL, NULL, server_seq FROM events WHERE workstation = ?1 AND seq BETWEEN ?2 AND ?3
                 UNION ALL SELECT seq, hash, code, message, NULL FROM rejections WHERE workstation = ?1 AND seq BETWEEN ?2 AND ?3",
            )
            .map_err(backend)?;
        let rows = st
            .query_map(params![ws.as_bytes(), first.seq() as i64, hi], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            })
            .map_err(backend)?;
        for row in rows {
            let (seq, hash, code, message, server_seq) = row.map_err(backend)?;
            let rejection = match code {
                Some(c) => Some((
                    serde_json::from_value(serde_json::Value::String(c)).map_err(json_err)?,
                    message.unwrap_or_default(),
                )),
                None => None,
            };
            stored.insert(
                seq,
                Stored {
                    hash: hash_of(hash)?,
                    rejection,
                    server_seq: server_seq.map(|s| s as u64),
                },
            );
        }
    }
    let mut taken = std::collections::HashSet::new();
    {
        let mut st = tx
            .prepare_cached("SELECT 1 FROM events WHERE id = ?1")
            .map_err(backend)?;
        for id in ingest::new_ids(head_seq, &events) {
            if st.exists([id.as_bytes()]).map_err(backend)? {
                taken.insert(id);
            }
        }
    }
    let mut c = ingest::classify(head_seq, head_hash, &stored, &taken, events)?;
    let before = load_authority(tx, &site.code)?;
    let mut authority = before.clone();
    ingest::authorize(&mut c, &mut authority);
    save_authority(tx, &site.code, &before, &authority)?;
    let new_site_seq = ingest::assign(&mut c, site_seq);
    {
        let mut st = tx
            .prepare_cached(
                "INSERT INTO events (site, server_seq, id, workstation, seq, actor, at, kind, payload, hash, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .map_err(backend)?;
        for e in &c.accept {
            let w = &e.event;
            st.execute(params![
                site.code,
                e.server_seq as i64,
                w.id.as_bytes(),
                ws.as_bytes(),
                w.seq as i64,
                w.actor,
                w.at,
                w.kind,
                w.payload,
                e.event.hash.as_bytes().as_slice(),
                batch.received_at
            ])
            .map_err(backend)?;
        }
        let mut st = tx
            .prepare_cached(
                "INSERT INTO rejections (workstation, seq, id, hash, code, message, kind, payload, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(backend)?;
        for r in &c.reject {
            st.execute(params![
                ws.as_bytes(),
                r.event.seq as i64,
                r.event.id.as_bytes(),
                r.event.hash.as_bytes().as_slice(),
                r.code.as_str(),
                r.message,
                r.event.kind,
                r.event.payload,
                batch.received_at
            ])
            .map_err(backend)?;
        }
    }
    if !c.accept.is_empty() {
        let out = ingest::fold_with(&c.accept, |keys, loaded| load(tx, &site.code, keys, loaded))
            .map_err(|e| match e {
            FoldError::Load(e) => e,
            FoldError::Rounds => DbError::Backend("the fold did not settle".into()),
        })?;
        let mut st = tx
            .prepare_cached(
                "INSERT INTO specimens (site, code, state, container, pos_row, pos_col, last_event)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (site, code) DO UPDATE SET state = excluded.state, container = excluded.container,
                   pos_row = excluded.pos_row, pos_col = excluded.pos_col, last_event = excluded.last_event",
            )
            .map_err(backend)?;
        for s in &out.specimens {
            let slot = ingest::occupied(&s.state);
            let state = serde_json::to_string(&s.state).map_err(json_err)?;
            st.execute(params![
                site.code,
                s.state.code.to_string(),
                state,
                slot.as_ref().map(|s| s.0.clone()),
                slot.as_ref().map(|s| s.1),
                slot.as_ref().map(|s| s.2),
                s.last_event.as_bytes()
            ])
            .map_err(backend)?;
        }
        let mut st = tx
            .prepare_cached(
                "INSERT INTO containers (site, id, spec, parent, pos_row, pos_col, last_event)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (site, id) DO UPDATE SET spec = excluded.spec, parent = excluded.parent,
                   pos_row = excluded.pos_row, pos_col = excluded.pos_col, last_event = excluded.last_event",
            )
            .map_err(backend)?;
        for k in &out.containers {
            let spec = serde_json::to_string(&k.spec).map_err(json_err)?;
            st.execute(params![
                site.code,
                k.spec.id.to_string(),
                spec,
                k.spec.parent.as_ref().map(|p| p.to_string()),
                k.spec.pos.map(|p| p.row),
                k.spec.pos.map(|p| p.col),
                k.last_event.as_bytes()
            ])
            .map_err(backend)?;
        }
        // Resolutions reach the conflicts stored before this batch; the batch's own were marked
        // by the fold in order.
        for (subject, by) in &out.resolved {
            tx.execute(
                "UPDATE conflicts SET resolved_by = ?3 WHERE site = ?1 AND subject = ?2 AND resolved_by IS NULL",
                params![site.code, subject, by.as_bytes()],
            )
            .map_err(backend)?;
        }
        for k in &out.conflicts {
            let events = serde_json::to_string(&k.events).map_err(json_err)?;
            tx.execute(
                "INSERT INTO conflicts (site, server_seq, subject, code, message, events, resolved_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    site.code,
                    k.server_seq as i64,
                    k.subject,
                    k.code,
                    k.message,
                    events,
                    k.resolved_by.as_ref().map(|u| u.as_bytes().to_vec())
                ],
            )
            .map_err(backend)?;
        }
    }
    for e in &c.accept {
        receipt_back(tx, &site.code, &e.event, batch.received_at)?;
    }
    tx.execute(
        "UPDATE workstations SET head_seq = ?2, head_hash = ?3, last_seen = ?4,
           clock_skew_us = coalesce(?5, clock_skew_us) WHERE id = ?1",
        params![
            ws.as_bytes(),
            c.head_seq as i64,
            (c.head_seq > 0).then_some(c.head_hash.as_bytes().as_slice()),
            batch.received_at,
            batch.sent_at.map(|s| s - batch.received_at)
        ],
    )
    .map_err(backend)?;
    if new_site_seq != site_seq {
        tx.execute(
            "UPDATE sites SET last_seq = ?2 WHERE code = ?1",
            params![site.code, new_site_seq as i64],
        )
        .map_err(backend)?;
    }
    Ok(PushResponse {
        v: kura_proto::VERSION,
        head: c.head(),
        verdicts: c.verdicts,
    })
}

impl RegistryDb for SqliteDb {
    async fn ready(&self) -> DbResult<()> {
        self.read(|tx| {
            let v: i64 = tx
                .query_row(
                    "SELECT coalesce(max(version), 0) FROM schema_migrations",
                    [],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            let latest = MIGRATIONS.last().map_or(0, |m| m.0);
            if v != latest {
                return Err(DbError::NotMigrated(format!(
                    "schema {v}, expected {latest}"
                )));
            }
            Ok(())
        })
        .await
    }

    async fn add_site(&self, site: Site) -> DbResult<()> {
        self.write(move |tx| {
            let n = tx
                .execute(
                    "INSERT INTO sites (code, name, prefix, serial_width) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    params![site.code, site.name, site.prefix, site.serial_width],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(DbError::Exists(format!("site {}", site.code)));
            }
            Ok(())
        })
        .await
    }

    async fn sites(&self) -> DbResult<Vec<Site>> {
        self.read(|tx| {
            let mut st = tx
                .prepare("SELECT code, name, prefix, serial_width FROM sites ORDER BY code")
                .map_err(backend)?;
            let rows = st
                .query_map([], |r| {
                    Ok(Site {
                        code: r.get(0)?,
                        name: r.get(1)?,
                        prefix: r.get(2)?,
                        serial_width: r.get(3)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn add_enrollment(
        &self,
        site: &str,
        code_hash: [u8; 32],
        expires_at: i64,
        replaces: Option<Uuid>,
    ) -> DbResult<()> {
        let site = site.to_string();
        self.write(move |tx| {
            site_row(tx, &site)?;
            if let Some(w) = replaces {
                let live: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM workstations WHERE id = ?1 AND site = ?2 AND revoked_at IS NULL)",
                        params![w.as_bytes(), site],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                if !live {
                    return Err(DbError::NotFound(format!(
                        "workstation {w} (enrolled at {site}, not revoked)"
                    )));
                }
            }
            tx.execute(
                "INSERT INTO enrollments (code_hash, site, expires_at, replaces) VALUES (?1, ?2, ?3, ?4)",
                params![
                    code_hash.as_slice(),
                    site,
                    expires_at,
                    replaces.map(|w| w.as_bytes().to_vec())
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn enroll(&self, e: Enrollment) -> DbResult<Enrolled> {
        self.write(move |tx| {
            // (site, expires_at, used_at, replaces)
            type Code = (String, i64, Option<i64>, Option<Vec<u8>>);
            let code: Option<Code> = tx
                .query_row(
                    "SELECT site, expires_at, used_at, replaces FROM enrollments WHERE code_hash = ?1",
                    [e.code_hash.as_slice()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(backend)?;
            let refuse = |r| Err(DbError::Enroll(r));
            let (site_code, replaces) = match code {
                None => return refuse(EnrollRefusal::UnknownCode),
                Some((_, _, Some(_), _)) => return refuse(EnrollRefusal::UsedCode),
                Some((_, exp, None, _)) if exp < e.now => {
                    return refuse(EnrollRefusal::ExpiredCode);
                }
                Some((s, _, None, r)) => (s, r.map(uuid_of).transpose()?),
            };
            let ws = match (replaces, e.recover) {
                (Some(w), true) => w,
                // The workstation itself, again (a lost token, a re-admission).
                (Some(w), false) if w == e.workstation => w,
                (None, false) => e.workstation,
                (Some(_), false) => return refuse(EnrollRefusal::ForReplacement),
                (None, true) => return refuse(EnrollRefusal::NotForReplacement),
            };
            if let Some(f) = &e.id_format {
                let (site, _) = site_row(tx, &site_code)?;
                if f.prefix != site.prefix || f.serial_width != site.serial_width {
                    return refuse(EnrollRefusal::PrefixMismatch);
                }
            }
            let known: Option<(String, Option<i64>, i64, Option<i64>)> = tx
                .query_row(
                    "SELECT site, revoked_at, head_seq, last_seen FROM workstations WHERE id = ?1",
                    [ws.as_bytes()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(backend)?;
            let mut replaced = None;
            match known {
                Some((_, Some(_), _, _)) => return refuse(EnrollRefusal::Revoked),
                Some((s, None, _, _)) if s != site_code => return refuse(EnrollRefusal::OtherSite),
                Some(_) if replaces.is_none() => return refuse(EnrollRefusal::WorkstationExists),
                Some((_, None, head, last_seen)) => {
                    if replaces.is_some() {
                        replaced = Some(Replaced {
                            head: head as u64,
                            last_seen,
                        });
                    }
                    tx.execute(
                        "UPDATE workstations SET token_hash = ?2, name = ?3 WHERE id = ?1",
                        params![ws.as_bytes(), e.token_hash.as_slice(), e.name],
                    )
                    .map_err(backend)?;
                }
                // (A replacement code names a workstation that existed when it was made.)
                None if replaces.is_some() => return refuse(EnrollRefusal::UnknownCode),
                None => {
                    tx.execute(
                        "INSERT INTO workstations (id, site, name, token_hash, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![ws.as_bytes(), site_code, e.name, e.token_hash.as_slice(), e.now],
                    )
                    .map_err(backend)?;
                }
            }
            tx.execute(
                "UPDATE enrollments SET used_at = ?2, used_by = ?3 WHERE code_hash = ?1",
                params![e.code_hash.as_slice(), e.now, ws.as_bytes()],
            )
            .map_err(backend)?;
            let (site, _) = site_row(tx, &site_code)?;
            let claimed: u64 = e.issued.iter().map(|c| c.last + 1 - c.first).sum();
            if claimed > limits_of(tx, &site.code)?.claim_cap {
                return refuse(EnrollRefusal::ClaimTooLarge);
            }
            for c in &e.issued {
                if leased_to_others(tx, &site.code, c, ws)? {
                    return refuse(EnrollRefusal::SerialsTaken);
                }
                tx.execute(
                    "INSERT OR IGNORE INTO leases (site, year, first, last, workstation, granted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![site.code, c.year, c.first as i64, c.last as i64, ws.as_bytes(), e.now],
                )
                .map_err(backend)?;
            }
            let lease = grant(tx, &site, ws, e.year, e.lease, e.now)?;
            Ok(Enrolled {
                workstation: ws,
                site,
                lease,
                replaced,
            })
        })
        .await
    }

    async fn authenticate(&self, token_hash: [u8; 32]) -> DbResult<Option<Caller>> {
        self.read(move |tx| {
            let row = tx
                .prepare_cached(
                    "SELECT w.id, s.code, s.name, s.prefix, s.serial_width FROM workstations w
                     JOIN sites s ON s.code = w.site WHERE w.token_hash = ?1 AND w.revoked_at IS NULL",
                )
                .map_err(backend)?
                .query_row([token_hash.as_slice()], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        Site {
                            code: r.get(1)?,
                            name: r.get(2)?,
                            prefix: r.get(3)?,
                            serial_width: r.get(4)?,
                        },
                    ))
                })
                .optional()
                .map_err(backend)?;
            row.map(|(id, site)| {
                Ok(Caller {
                    workstation: uuid_of(id)?,
                    site,
                })
            })
            .transpose()
        })
        .await
    }

    async fn workstations(&self) -> DbResult<Vec<WorkstationInfo>> {
        self.read(|tx| {
            let mut st = tx
                .prepare(
                    "SELECT id, site, name, enrolled_at, revoked_at, head_seq, clock_skew_us, last_seen
                     FROM workstations ORDER BY site, enrolled_at, id",
                )
                .map_err(backend)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                        r.get::<_, Option<i64>>(7)?,
                    ))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, site, name, enrolled_at, revoked_at, head, skew, seen) =
                    row.map_err(backend)?;
                out.push(WorkstationInfo {
                    id: uuid_of(id)?,
                    site,
                    name,
                    enrolled_at,
                    revoked_at,
                    head: head as u64,
                    clock_skew_us: skew,
                    last_seen: seen,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn revoke(&self, workstation: Uuid, now: i64) -> DbResult<()> {
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE workstations SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
                    params![workstation.as_bytes(), now],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(DbError::NotFound(format!("workstation {workstation}")));
            }
            Ok(())
        })
        .await
    }

    async fn restore(&self, workstation: Uuid, sealed: [u8; 32]) -> DbResult<()> {
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE workstations SET revoked_at = NULL, token_hash = ?2 WHERE id = ?1",
                    params![workstation.as_bytes(), sealed.as_slice()],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(DbError::NotFound(format!("workstation {workstation}")));
            }
            Ok(())
        })
        .await
    }

    async fn status(&self, caller: &Caller) -> DbResult<WsStatus> {
        let caller = caller.clone();
        self.read(move |tx| {
            let (seq, hash, skew): (i64, Option<Vec<u8>>, Option<i64>) = tx
                .query_row(
                    "SELECT head_seq, head_hash, clock_skew_us FROM workstations WHERE id = ?1",
                    [caller.workstation.as_bytes()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(backend)?;
            let (_, site_seq) = site_row(tx, &caller.site.code)?;
            Ok(WsStatus {
                head: ingest::head(
                    seq as u64,
                    hash.map(hash_of).transpose()?.unwrap_or(GENESIS),
                ),
                leases: leases_of(tx, caller.workstation)?,
                clock_skew_us: skew,
                site_seq,
            })
        })
        .await
    }

    async fn push(&self, caller: &Caller, mut batch: Batch) -> DbResult<PushResponse> {
        ingest::check_shape(caller, &batch.events)?;
        let caller = caller.clone();
        let (site, events) = (caller.site.clone(), std::mem::take(&mut batch.events));
        // Hashing and parsing happen before the writer is taken.
        let events = blocking(move || Ok(ingest::prepare(&site, events))).await?;
        self.write(move |tx| push_tx(tx, &caller, events, batch))
            .await
    }

    async fn pull(
        &self,
        caller: &Caller,
        after: u64,
        limit: u32,
        holding: Option<Holding>,
    ) -> DbResult<PullResponse> {
        let caller = caller.clone();
        let limit = limit.clamp(1, kura_proto::MAX_PAGE);
        self.read(move |tx| {
            let (_, site_seq) = site_row(tx, &caller.site.code)?;
            if let Some(h) = holding {
                let (event_at, placed_at) = match h.at {
                    0 => (None, None),
                    at => match tx
                        .prepare_cached(
                            "SELECT id, received_at FROM events WHERE site = ?1 AND server_seq = ?2",
                        )
                        .map_err(backend)?
                        .query_row(params![caller.site.code, at as i64], |r| {
                            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
                        })
                        .optional()
                        .map_err(backend)?
                    {
                        Some((id, placed)) => (Some(uuid_of(id)?), Some(placed)),
                        None => (None, None),
                    },
                };
                let others_between: bool = tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM events WHERE site = ?1 AND server_seq > ?2
                           AND server_seq <= ?3 AND workstation <> ?4)",
                    )
                    .map_err(backend)?
                    .query_row(
                        params![
                            caller.site.code,
                            h.at as i64,
                            after as i64,
                            caller.workstation.as_bytes()
                        ],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                order_agrees(
                    after,
                    &h,
                    &OrderAt {
                        site_seq,
                        event_at,
                        placed_at,
                        others_between,
                    },
                )?;
            }
            let mut st = tx
                .prepare_cached(
                    "SELECT server_seq, received_at, id, workstation, seq, actor, at, kind, payload, hash
                     FROM events WHERE site = ?1 AND server_seq > ?2 AND server_seq <= ?3
                     ORDER BY server_seq LIMIT ?4",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(
                    params![caller.site.code, after as i64, site_seq as i64, limit],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Vec<u8>>(2)?,
                            r.get::<_, Vec<u8>>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, i64>(6)?,
                            r.get::<_, String>(7)?,
                            r.get::<_, String>(8)?,
                            r.get::<_, Vec<u8>>(9)?,
                        ))
                    },
                )
                .map_err(backend)?;
            let mut next = after;
            let mut events = Vec::new();
            let mut own = Vec::new();
            for row in rows {
                let (ss, received_at, id, ws, seq, actor, at, kind, payload, hash) =
                    row.map_err(backend)?;
                next = ss as u64;
                let ws = uuid_of(ws)?;
                // The caller's own events come as positions, unless it lacks them (back from a
                // backup, or a replacement PC): then in full.
                let lacks = holding.and_then(|h| h.own).is_some_and(|o| seq as u64 > o);
                if ws == caller.workstation && !lacks {
                    own.push(OwnPosition {
                        server_seq: ss as u64,
                        seq: seq as u64,
                    });
                    continue;
                }
                events.push(Placed {
                    server_seq: ss as u64,
                    received_at,
                    event: Envelope {
                        id: uuid_of(id)?,
                        workstation: ws,
                        seq: seq as u64,
                        actor,
                        at,
                        kind,
                        payload,
                        hash: hash_of(hash)?,
                    },
                });
            }
            let mut refused = Vec::new();
            {
                let mut st = tx
                    .prepare_cached(
                        "SELECT seq FROM rejections WHERE workstation = ?1 AND seq < ?3 AND seq > coalesce(
                           (SELECT max(seq) FROM events WHERE workstation = ?1 AND seq < ?2), 0)
                         ORDER BY seq",
                    )
                    .map_err(backend)?;
                for (ws, (low, high)) in ingest::stream_spans(&events) {
                    let seqs = st
                        .query_map(params![ws.as_bytes(), low as i64, high as i64], |r| {
                            r.get::<_, i64>(0)
                        })
                        .map_err(backend)?;
                    for seq in seqs {
                        refused.push(RefusedSeq {
                            workstation: ws,
                            seq: seq.map_err(backend)? as u64,
                        });
                    }
                }
            }
            Ok(PullResponse {
                v: kura_proto::VERSION,
                events,
                conflicts: vec![],
                next,
                more: next < site_seq,
                own,
                refused,
            })
        })
        .await
    }

    async fn conflicts(&self, site: &str, open_only: bool) -> DbResult<Vec<Conflict>> {
        let site = site.to_string();
        self.read(move |tx| {
            let mut st = tx
                .prepare_cached(
                    "SELECT server_seq, subject, code, message, events, resolved_by FROM conflicts
                     WHERE site = ?1 AND (?2 = 0 OR resolved_by IS NULL) ORDER BY server_seq",
                )
                .map_err(backend)?;
            st.query_map(params![site, open_only as i64], conflict_row)
                .map_err(backend)?
                .map(|r| r.map_err(backend).and_then(finish_conflict))
                .collect()
        })
        .await
    }

    async fn lease(&self, caller: &Caller, year: i32, count: u64, now: i64) -> DbResult<Lease> {
        let caller = caller.clone();
        self.write(move |tx| {
            live(tx, caller.workstation)?;
            let (site, _) = site_row(tx, &caller.site.code)?;
            kura_registry_db::within_quota(
                granted_today(tx, caller.workstation, now)?,
                count,
                limits_of(tx, &site.code)?.daily_serials,
            )?;
            grant(tx, &site, caller.workstation, year, count, now)
        })
        .await
    }

    async fn claim(&self, caller: &Caller, leases: Vec<Lease>, now: i64) -> DbResult<Claimed> {
        let caller = caller.clone();
        self.write(move |tx| {
            live(tx, caller.workstation)?;
            let mut out = Claimed::default();
            for l in leases {
                if leased_to_others(tx, &caller.site.code, &l, caller.workstation)? {
                    out.taken.push(l);
                    continue;
                }
                let mine: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM leases WHERE site = ?1 AND year = ?2 AND first <= ?3 AND last >= ?4 AND workstation = ?5)",
                        params![caller.site.code, l.year, l.first as i64, l.last as i64, caller.workstation.as_bytes()],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                if !mine {
                    // A claim counts like a lease: a stolen token cannot claim a year away.
                    kura_registry_db::within_quota(
                        granted_today(tx, caller.workstation, now)?,
                        l.last + 1 - l.first,
                        limits_of(tx, &caller.site.code)?.daily_serials,
                    )?;
                    tx.execute(
                        "INSERT OR IGNORE INTO leases (site, year, first, last, workstation, granted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![caller.site.code, l.year, l.first as i64, l.last as i64, caller.workstation.as_bytes(), now],
                    )
                    .map_err(backend)?;
                }
                out.kept.push(l);
            }
            Ok(out)
        })
        .await
    }

    async fn site_limits(&self, site: &str) -> DbResult<SiteLimits> {
        let site = site.to_string();
        self.read(move |tx| limits_of(tx, &site)).await
    }

    async fn set_site_limits(&self, site: &str, limits: SiteLimits) -> DbResult<()> {
        let site = site.to_string();
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE sites SET claim_cap = ?2, daily_serials = ?3 WHERE code = ?1",
                    params![site, limits.claim_cap as i64, limits.daily_serials as i64],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(DbError::NotFound(format!("site {site}")));
            }
            Ok(())
        })
        .await
    }

    async fn post_bundle(
        &self,
        caller: &Caller,
        bundle: kura_domain::bundle::Bundle,
        now: i64,
    ) -> DbResult<ParcelPosted> {
        let a = parcels::check_bundle(caller, &bundle)?;
        let caller = caller.clone();
        self.write(move |tx| post_bundle_tx(tx, &caller, a, bundle, now))
            .await
    }

    async fn post_follow_up(
        &self,
        caller: &Caller,
        follow_up: kura_domain::bundle::FollowUp,
        now: i64,
    ) -> DbResult<ParcelPosted> {
        let caller = caller.clone();
        self.write(move |tx| post_follow_up_tx(tx, &caller, follow_up, now))
            .await
    }

    async fn parcels(&self, caller: &Caller, after: u64, limit: u32) -> DbResult<ParcelsResponse> {
        let site = caller.site.code.clone();
        self.read(move |tx| parcels_tx(tx, &site, after, limit))
            .await
    }

    async fn event_count(&self) -> DbResult<u64> {
        self.read(|tx| {
            tx.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }
}

/// The database's own limit, for the benchmark: the same event rows inserted straight into the
/// registry's `events` table (same indexes, same pragmas), `batch` rows per transaction, after
/// `warm` rows of warm-up. Returns the time of the measured part.
pub fn baseline_insert(
    path: &Path,
    warm: &[Envelope],
    rows: &[Envelope],
    batch: usize,
) -> DbResult<std::time::Duration> {
    drop(SqliteDb::open(path)?);
    let mut c = connect(path, OpenFlags::default())?;
    let mut n = 0i64;
    let mut insert = |c: &mut Connection, events: &[Envelope]| -> DbResult<()> {
        for chunk in events.chunks(batch.max(1)) {
            let tx = c.transaction().map_err(backend)?;
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO events (site, server_seq, id, workstation, seq, actor, at, kind, payload, hash, received_at)
                         VALUES ('BASE', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0)",
                    )
                    .map_err(backend)?;
                for e in chunk {
                    n += 1;
                    st.execute(params![
                        n,
                        e.id.as_bytes(),
                        e.workstation.as_bytes(),
                        e.seq as i64,
                        e.actor,
                        e.at,
                        e.kind,
                        e.payload,
                        e.hash.as_bytes().as_slice()
                    ])
                    .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)?;
        }
        Ok(())
    };
    insert(&mut c, warm)?;
    let t = std::time::Instant::now();
    insert(&mut c, rows)?;
    Ok(t.elapsed())
}
