//! The registry on PostgreSQL: tokio-postgres with a deadpool pool (async end to end, no
//! compile-time database, and the bundled SQLite of the other backend stays the only SQLite in
//! the build). A push is one transaction: it reads and classifies the workstation's stream under
//! that workstation's row lock, then holds the site's row (`FOR UPDATE`) from assigning
//! `server_seq` to commit, writing in sets (binary `COPY` for the events and new specimens,
//! `UNNEST` for the rest), not row by row, with statements prepared once per connection.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::collections::HashMap;

use deadpool_postgres::{GenericClient, Pool, Runtime};
use kura_domain::container::ContainerSpec;
use kura_domain::hash::{Digest, GENESIS};
use kura_domain::rules::SpecimenState;
use kura_proto::{
    Conflict, Envelope, Holding, Lease, OwnPosition, Parcel, ParcelPosted, ParcelsResponse, Placed,
    PlacedParcel, PullResponse, PushResponse, RefusedSeq, Site,
};
use kura_registry_db::ingest::{self, ContainerRow, Keys, Loaded, SpecimenRow, Stored};
use kura_registry_db::parcels;
use kura_registry_db::{
    Batch, Caller, Claimed, DbError, DbResult, EnrollRefusal, Enrolled, Enrollment, OrderAt,
    RegistryDb, Replaced, SiteLimits, WorkstationInfo, WsStatus, next_lease, order_agrees,
};
use tokio_postgres::NoTls;
use uuid::Uuid;

pub mod throwaway;
mod tls;

/// Set on every session: a statement waits at most 10 s for a lock (the site's row is held only
/// while one push commits), and a session idle inside a transaction for a minute is ended, so a
/// stuck client cannot hold the site's lock.
pub const SESSION_LIMITS: &str =
    "-c lock_timeout=10000 -c idle_in_transaction_session_timeout=60000";

/// How long a request waits for a pooled connection before it is answered `unavailable`.
pub const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_registry.sql")),
    (2, include_str!("../migrations/0002_replacement.sql")),
    (3, include_str!("../migrations/0003_limits.sql")),
    (4, include_str!("../migrations/0004_site_users.sql")),
    (5, include_str!("../migrations/0005_parcels.sql")),
];

/// See [`PgDb::session`].
#[derive(Debug, Clone)]
pub struct Session {
    pub ssl: bool,
    pub lock_timeout: String,
    pub idle_in_transaction_session_timeout: String,
}

#[derive(Clone)]
pub struct PgDb {
    pool: Pool,
}

fn pg(e: tokio_postgres::Error) -> DbError {
    if e.is_closed() || e.as_db_error().is_none() {
        DbError::Unavailable(e.to_string())
    } else {
        DbError::Backend(e.to_string())
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> DbError {
    // The cause (a refused TLS certificate, a refused password) is in the source chain.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let more = s.to_string();
        if !message.contains(&more) {
            message.push_str(": ");
            message.push_str(&more);
        }
        source = s.source();
    }
    DbError::Unavailable(message)
}

fn json_err(e: serde_json::Error) -> DbError {
    DbError::Backend(format!("a stored row does not read back: {e}"))
}

fn hash_of(b: Vec<u8>) -> DbResult<Digest> {
    Digest::from_slice(&b).ok_or_else(|| DbError::Backend("a stored hash is not 32 bytes".into()))
}

impl PgDb {
    /// Connects a pool to `url` (`postgres://…`) and brings the schema up to date (several
    /// processes starting at once migrate once: an advisory lock orders them).
    ///
    /// TLS as libpq spells it: `sslmode=require` encrypts without checking the server's
    /// certificate; `sslmode=verify-full&sslrootcert=PATH` also checks it against the CA in PATH
    /// and the host name. Every session gets a `lock_timeout` and an
    /// `idle_in_transaction_session_timeout` (see [`SESSION_LIMITS`]), and a request waits at
    /// most [`POOL_WAIT`] for a connection.
    pub async fn open(url: &str) -> DbResult<PgDb> {
        let (url, tls) = tls::split(url)?;
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| DbError::Unavailable(format!("bad PostgreSQL URL: {e}")))?;
        let options = match pg.get_options() {
            Some(theirs) if !theirs.is_empty() => format!("{SESSION_LIMITS} {theirs}"),
            _ => SESSION_LIMITS.to_string(),
        };
        pg.options(&options);
        let manager_config = deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        };
        let manager = match tls {
            None => deadpool_postgres::Manager::from_config(pg, NoTls, manager_config),
            Some(config) => deadpool_postgres::Manager::from_config(
                pg,
                tokio_postgres_rustls::MakeRustlsConnect::new(config),
                manager_config,
            ),
        };
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| DbError::Unavailable(format!("cannot set up the connection pool: {e}")))?;
        let db = PgDb { pool };
        db.migrate().await?;
        Ok(db)
    }

    /// What a pooled session is: encrypted or not, and its limits (as PostgreSQL shows them).
    pub async fn session(&self) -> DbResult<Session> {
        let c = self.pool.get().await.map_err(pool_err)?;
        let r = c
            .query_one(
                "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false), current_setting('lock_timeout'), current_setting('idle_in_transaction_session_timeout')",
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(Session {
            ssl: r.get(0),
            lock_timeout: r.get(1),
            idle_in_transaction_session_timeout: r.get(2),
        })
    }

    async fn migrate(&self) -> DbResult<()> {
        let mut c = self.pool.get().await.map_err(pool_err)?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock(8470)", &[])
            .await
            .map_err(pg)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(pg)?;
        let have: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        let latest = MIGRATIONS.last().map_or(0, |m| m.0);
        if have > latest {
            return Err(DbError::NotMigrated(format!(
                "the registry database has schema version {have}, newer than this kura-registry ({latest}); run a newer kura-registry"
            )));
        }
        for (v, sql) in MIGRATIONS.iter().filter(|m| m.0 > have) {
            tx.batch_execute(sql).await.map_err(pg)?;
            if *v == 4 {
                backfill_site_users(&tx).await?;
            }
            tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[v])
                .await
                .map_err(pg)?;
            tracing::info!(version = v, "registry migration applied");
        }
        tx.commit().await.map_err(pg)
    }
}

/// Fills `site_users` from the user events a registry took before it kept them.
async fn backfill_site_users(tx: &impl GenericClient) -> DbResult<()> {
    let sites = tx.query("SELECT code FROM sites", &[]).await.map_err(pg)?;
    for s in sites {
        let site: String = s.get(0);
        let rows = tx
            .query(
                "SELECT actor, payload FROM events WHERE site = $1
                 AND kind IN ('user_added', 'role_granted', 'user_disabled', 'credential_set')
                 ORDER BY server_seq",
                &[&site],
            )
            .await
            .map_err(pg)?;
        let rows: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let a = ingest::authority_from(rows.iter().map(|(a, p)| (a.as_str(), p.as_str())));
        save_authority(tx, &site, &Default::default(), &a).await?;
    }
    Ok(())
}

async fn load_authority(
    tx: &impl GenericClient,
    site: &str,
) -> DbResult<kura_domain::authz::Authority> {
    let st = tx
        .prepare_cached(
            "SELECT code, role, disabled, signing_key, key_salt FROM site_users WHERE site = $1",
        )
        .await
        .map_err(pg)?;
    let rows = tx.query(&st, &[&site]).await.map_err(pg)?;
    let mut a = kura_domain::authz::Authority::default();
    for r in rows {
        let key: Option<String> = r.get(3);
        let salt: Option<String> = r.get(4);
        a.members.insert(
            r.get(0),
            kura_domain::authz::Member {
                role: kura_domain::Role::parse(r.get(1)).unwrap_or(kura_domain::Role::Auditor),
                disabled: r.get(2),
                key: key
                    .zip(salt)
                    .map(|(ed25519, salt)| kura_domain::sign::PublicKey { ed25519, salt }),
            },
        );
    }
    Ok(a)
}

/// Writes the members that changed between `before` and `after`.
async fn save_authority(
    tx: &impl GenericClient,
    site: &str,
    before: &kura_domain::authz::Authority,
    after: &kura_domain::authz::Authority,
) -> DbResult<()> {
    for (code, m) in &after.members {
        if before.members.get(code) == Some(m) {
            continue;
        }
        tx.execute(
            "INSERT INTO site_users (site, code, role, disabled, signing_key, key_salt)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (site, code) DO UPDATE SET role = excluded.role,
               disabled = excluded.disabled, signing_key = excluded.signing_key,
               key_salt = excluded.key_salt",
            &[
                &site,
                code,
                &m.role.as_str(),
                &m.disabled,
                &m.key.as_ref().map(|k| k.ed25519.as_str()),
                &m.key.as_ref().map(|k| k.salt.as_str()),
            ],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

async fn site_row(c: &impl GenericClient, code: &str, lock: bool) -> DbResult<(Site, u64)> {
    let sql = if lock {
        sql::SITE_LOCK
    } else {
        "SELECT code, name, prefix, serial_width, last_seq FROM sites WHERE code = $1"
    };
    let st = c.prepare_cached(sql).await.map_err(pg)?;
    let row = c
        .query_opt(&st, &[&code])
        .await
        .map_err(pg)?
        .ok_or_else(|| DbError::NotFound(format!("site {code}")))?;
    Ok((
        Site {
            code: row.get(0),
            name: row.get(1),
            prefix: row.get(2),
            serial_width: row.get::<_, i32>(3) as u32,
        },
        row.get::<_, i64>(4) as u64,
    ))
}

async fn limits_of(c: &impl GenericClient, site: &str) -> DbResult<SiteLimits> {
    let r = c
        .query_opt(
            "SELECT claim_cap, daily_serials FROM sites WHERE code = $1",
            &[&site],
        )
        .await
        .map_err(pg)?
        .ok_or_else(|| DbError::NotFound(format!("site {site}")))?;
    Ok(SiteLimits {
        claim_cap: r.get::<_, i64>(0) as u64,
        daily_serials: r.get::<_, i64>(1) as u64,
    })
}

/// `ws` is enrolled and not revoked: else [`EnrollRefusal::Revoked`].
async fn live(c: &impl GenericClient, ws: Uuid) -> DbResult<()> {
    let revoked = c
        .query_opt("SELECT revoked_at FROM workstations WHERE id = $1", &[&ws])
        .await
        .map_err(pg)?;
    match revoked.map(|r| r.get::<_, Option<i64>>(0)) {
        Some(None) => Ok(()),
        _ => Err(DbError::Enroll(EnrollRefusal::Revoked)),
    }
}

/// Another workstation of `site` holds serials of `block`.
async fn leased_to_others(
    c: &impl GenericClient,
    site: &str,
    block: &Lease,
    ws: Uuid,
) -> DbResult<bool> {
    let (first, last) = (block.first as i64, block.last as i64);
    Ok(c.query_one(
        "SELECT EXISTS (SELECT 1 FROM leases WHERE site = $1 AND year = $2 AND first <= $4 AND last >= $3 AND workstation != $5)",
        &[&site, &block.year, &first, &last, &ws],
    )
    .await
    .map_err(pg)?
    .get(0))
}

/// Serials leased to or claimed by `ws` in the day before `now`.
async fn granted_today(c: &impl GenericClient, ws: Uuid, now: i64) -> DbResult<u64> {
    let since = now - kura_registry_db::DAY_US;
    let n: i64 = c
        .query_one(
            "SELECT coalesce(sum(last - first + 1), 0)::bigint FROM leases WHERE workstation = $1 AND granted_at > $2",
            &[&ws, &since],
        )
        .await
        .map_err(pg)?
        .get(0);
    Ok(n as u64)
}

async fn grant(
    c: &impl GenericClient,
    site: &Site,
    ws: Uuid,
    year: i32,
    count: u64,
    now: i64,
) -> DbResult<Lease> {
    let last: i64 = c
        .query_one(
            "SELECT coalesce(max(last), 0) FROM leases WHERE site = $1 AND year = $2",
            &[&site.code, &year],
        )
        .await
        .map_err(pg)?
        .get(0);
    let lease = next_lease(site, year, last as u64, count)?;
    c.execute(
        "INSERT INTO leases (site, year, first, last, workstation, granted_at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&site.code, &year, &(lease.first as i64), &(lease.last as i64), &ws, &now],
    )
    .await
    .map_err(pg)?;
    Ok(lease)
}

fn conflict_of(r: &tokio_postgres::Row) -> Conflict {
    Conflict {
        server_seq: r.get::<_, i64>(0) as u64,
        subject: r.get(1),
        code: r.get(2),
        message: r.get(3),
        events: r.get(4),
        resolved_by: r.get(5),
    }
}

async fn load(
    c: &impl GenericClient,
    site: &str,
    keys: &Keys,
    loaded: &mut Loaded,
) -> DbResult<()> {
    // The four reads are independent: sent together, they cost one round trip.
    let specimens = async {
        let codes: Vec<&str> = keys.specimens.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        if !codes.is_empty() {
            let st = c
                .prepare_cached(
                    "SELECT state, last_event FROM specimens WHERE site = $1 AND code = ANY($2)",
                )
                .await
                .map_err(pg)?;
            for r in c.query(&st, &[&site, &codes]).await.map_err(pg)? {
                let state: SpecimenState = serde_json::from_str(r.get(0)).map_err(json_err)?;
                out.push(SpecimenRow {
                    state,
                    last_event: r.get(1),
                });
            }
        }
        Ok::<_, DbError>(out)
    };
    let containers = async {
        let ids: Vec<&str> = keys.containers.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        if !ids.is_empty() {
            let st = c
                .prepare_cached(
                    "SELECT spec, last_event FROM containers WHERE site = $1 AND id = ANY($2)",
                )
                .await
                .map_err(pg)?;
            for r in c.query(&st, &[&site, &ids]).await.map_err(pg)? {
                let spec: ContainerSpec = serde_json::from_str(r.get(0)).map_err(json_err)?;
                out.push(ContainerRow {
                    spec,
                    last_event: r.get(1),
                });
            }
        }
        Ok::<_, DbError>(out)
    };
    async fn slots(
        c: &impl GenericClient,
        sql: &str,
        site: &str,
        keys: &std::collections::BTreeSet<ingest::Slot>,
    ) -> DbResult<Vec<(ingest::Slot, String)>> {
        if keys.is_empty() {
            return Ok(vec![]);
        }
        let cs: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let rs: Vec<i32> = keys.iter().map(|k| k.1 as i32).collect();
        let ks: Vec<i32> = keys.iter().map(|k| k.2 as i32).collect();
        let st = c.prepare_cached(sql).await.map_err(pg)?;
        Ok(c.query(&st, &[&site, &cs, &rs, &ks])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| {
                (
                    (
                        r.get::<_, String>(0),
                        r.get::<_, i32>(1) as u16,
                        r.get::<_, i32>(2) as u16,
                    ),
                    r.get::<_, String>(3),
                )
            })
            .collect())
    }
    let (boxes, probed) = by_box(&keys.specimen_slots);
    // Correlated subqueries, one index probe per key: a join against the unnested keys may be
    // planned as a scan of every specimen of the site.
    let sslots = slots(
        c,
        "SELECT * FROM (SELECT k.c, k.r, k.col,
           (SELECT s.code FROM specimens s WHERE s.site = $1 AND s.container = k.c
              AND s.pos_row = k.r AND s.pos_col = k.col LIMIT 1) AS code
         FROM UNNEST($2::text[], $3::int[], $4::int[]) AS k(c, r, col)) x WHERE code IS NOT NULL",
        site,
        &probed,
    );
    // A box that many of the batch's tubes go into is read whole: one range of the slot index
    // instead of a probe per position (a batch of 500 check-ins fills a few boxes).
    let box_slots = async {
        if boxes.is_empty() {
            return Ok(vec![]);
        }
        let st = c
            .prepare_cached(
                "SELECT container, pos_row, pos_col, code FROM specimens
                 WHERE site = $1 AND container = ANY($2) AND container IS NOT NULL AND pos_row IS NOT NULL",
            )
            .await
            .map_err(pg)?;
        let mut out = Vec::new();
        for r in c.query(&st, &[&site, &boxes]).await.map_err(pg)? {
            let (Some(row), Some(col)) = (r.get::<_, Option<i32>>(1), r.get::<_, Option<i32>>(2))
            else {
                continue;
            };
            let slot: ingest::Slot = (r.get(0), row as u16, col as u16);
            if keys.specimen_slots.contains(&slot) {
                out.push((slot, r.get::<_, String>(3)));
            }
        }
        Ok::<_, DbError>(out)
    };
    let cslots = slots(
        c,
        "SELECT * FROM (SELECT k.c, k.r, k.col,
           (SELECT x.id FROM containers x WHERE x.site = $1 AND x.parent = k.c
              AND x.pos_row = k.r AND x.pos_col = k.col LIMIT 1) AS id
         FROM UNNEST($2::text[], $3::int[], $4::int[]) AS k(c, r, col)) y WHERE id IS NOT NULL",
        site,
        &keys.container_slots,
    );
    let (specimens, containers, mut sslots, cslots, boxed) =
        tokio::try_join!(specimens, containers, sslots, cslots, box_slots)?;
    sslots.extend(boxed);
    loaded.absorb(keys, specimens, containers, sslots, cslots);
    Ok(())
}

/// Boxes the batch puts at least [`BOX_READ`] tubes into (read whole), and the other slots (probed
/// one by one).
fn by_box(
    slots: &std::collections::BTreeSet<ingest::Slot>,
) -> (Vec<&str>, std::collections::BTreeSet<ingest::Slot>) {
    let mut per: HashMap<&str, usize> = HashMap::new();
    for s in slots {
        *per.entry(s.0.as_str()).or_default() += 1;
    }
    let boxes: Vec<&str> = per
        .into_iter()
        .filter(|(_, n)| *n >= BOX_READ)
        .map(|(b, _)| b)
        .collect();
    let probed = slots
        .iter()
        .filter(|s| !boxes.contains(&s.0.as_str()))
        .cloned()
        .collect();
    (boxes, probed)
}

/// From this many of a batch's slots in one box, the box's occupied positions are read at once.
const BOX_READ: usize = 8;

/// Appends the accepted events with binary `COPY`, the fastest way into a table (inside the push's
/// transaction: it commits or rolls back with the rest).
async fn insert_events(
    tx: &deadpool_postgres::Transaction<'_>,
    copy: &tokio_postgres::Statement,
    site: &str,
    ws: Uuid,
    received_at: i64,
    accept: &[ingest::NewEvent],
) -> DbResult<()> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;
    if accept.is_empty() {
        return Ok(());
    }
    let sink = tx.copy_in(copy).await.map_err(pg)?;
    let types = [
        Type::TEXT,
        Type::INT8,
        Type::UUID,
        Type::UUID,
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::BYTEA,
        Type::INT8,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    for e in accept {
        let (server_seq, seq) = (e.server_seq as i64, e.event.seq as i64);
        writer
            .as_mut()
            .write(&[
                &site,
                &server_seq,
                &e.event.id,
                &ws,
                &seq,
                &e.event.actor,
                &e.event.at,
                &e.event.kind,
                &e.event.payload,
                &e.event.hash.as_bytes().as_slice(),
                &received_at,
            ])
            .await
            .map_err(pg)?;
    }
    writer.finish().await.map_err(pg)?;
    Ok(())
}

/// The fold's specimen rows, column by column.
#[derive(Default)]
struct SpecimenCols {
    code: Vec<String>,
    state: Vec<String>,
    container: Vec<Option<String>>,
    row: Vec<Option<i32>>,
    col: Vec<Option<i32>>,
    last: Vec<Uuid>,
}

/// The fold's specimen rows as columns: those the database did not hold (`new`) and the others.
fn specimen_cols(rows: &[SpecimenRow], loaded: &Loaded) -> DbResult<(SpecimenCols, SpecimenCols)> {
    let (mut new, mut known) = (SpecimenCols::default(), SpecimenCols::default());
    for s in rows {
        let code = s.state.code.to_string();
        let c = match loaded.specimens.get(&code) {
            Some(Some(_)) => &mut known,
            _ => &mut new,
        };
        let slot = ingest::occupied(&s.state);
        c.state
            .push(serde_json::to_string(&s.state).map_err(json_err)?);
        c.code.push(code);
        c.container.push(slot.as_ref().map(|s| s.0.clone()));
        c.row.push(slot.as_ref().map(|s| s.1 as i32));
        c.col.push(slot.as_ref().map(|s| s.2 as i32));
        c.last.push(s.last_event);
    }
    Ok((new, known))
}

/// The fold of `accept` over `loaded` with its specimen rows as columns, or the keys it still
/// needs read.
fn fold_with_cols(
    accept: &[ingest::NewEvent],
    loaded: &Loaded,
) -> Result<(ingest::FoldOut, DbResult<(SpecimenCols, SpecimenCols)>), Keys> {
    ingest::fold(accept, loaded).map(|out| {
        let cols = specimen_cols(&out.specimens, loaded);
        (out, cols)
    })
}

/// Writes the fold's specimen rows: binary `COPY` for specimens the database did not hold (most
/// of an inventory import), `UPDATE … FROM UNNEST` for the others: both in sets, neither with the
/// speculative insertion of an upsert.
async fn write_specimens(
    tx: &deadpool_postgres::Transaction<'_>,
    copy: &tokio_postgres::Statement,
    site: &str,
    (new, known): &(SpecimenCols, SpecimenCols),
) -> DbResult<()> {
    // New rows by binary COPY (it holds the connection, so before the update is sent).
    if !new.code.is_empty() {
        use tokio_postgres::binary_copy::BinaryCopyInWriter;
        use tokio_postgres::types::Type;
        let sink = tx.copy_in(copy).await.map_err(pg)?;
        let types = [
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::INT4,
            Type::UUID,
        ];
        let writer = BinaryCopyInWriter::new(sink, &types);
        let mut writer = std::pin::pin!(writer);
        for i in 0..new.code.len() {
            writer
                .as_mut()
                .write(&[
                    &site,
                    &new.code[i],
                    &new.state[i],
                    &new.container[i],
                    &new.row[i],
                    &new.col[i],
                    &new.last[i],
                ])
                .await
                .map_err(pg)?;
        }
        writer.finish().await.map_err(pg)?;
    }
    let update = async {
        if known.code.is_empty() {
            return Ok(0);
        }
        let st = tx
            .prepare_cached(
                "UPDATE specimens AS t SET state = u.s, container = u.k, pos_row = u.r, pos_col = u.l, last_event = u.e
                 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::uuid[]) AS u(c, s, k, r, l, e)
                 WHERE t.site = $1 AND t.code = u.c",
            )
            .await
            .map_err(pg)?;
        tx.execute(
            &st,
            &[
                &site,
                &known.code,
                &known.state,
                &known.container,
                &known.row,
                &known.col,
                &known.last,
            ],
        )
        .await
        .map_err(pg)
    };
    update.await?;
    Ok(())
}

async fn upsert_containers(
    tx: &deadpool_postgres::Transaction<'_>,
    site: &str,
    rows: &[ContainerRow],
) -> DbResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut id = Vec::new();
    let mut spec = Vec::new();
    let mut parent: Vec<Option<String>> = Vec::new();
    let mut row: Vec<Option<i32>> = Vec::new();
    let mut col: Vec<Option<i32>> = Vec::new();
    let mut last = Vec::new();
    for k in rows {
        id.push(k.spec.id.to_string());
        spec.push(serde_json::to_string(&k.spec).map_err(json_err)?);
        parent.push(k.spec.parent.as_ref().map(|p| p.to_string()));
        row.push(k.spec.pos.map(|p| p.row as i32));
        col.push(k.spec.pos.map(|p| p.col as i32));
        last.push(k.last_event);
    }
    let st = tx
        .prepare_cached(
            "INSERT INTO containers (site, id, spec, parent, pos_row, pos_col, last_event)
             SELECT $1, i, s, p, r, c, e FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::uuid[])
               AS u(i, s, p, r, c, e)
             ON CONFLICT (site, id) DO UPDATE SET spec = excluded.spec, parent = excluded.parent,
               pos_row = excluded.pos_row, pos_col = excluded.pos_col, last_event = excluded.last_event",
        )
        .await
        .map_err(pg)?;
    tx.execute(&st, &[&site, &id, &spec, &parent, &row, &col, &last])
        .await
        .map_err(pg)?;
    Ok(())
}

/// Keeps a parcel once, by its hash: its seq, and whether it was already kept.
async fn keep_parcel(
    tx: &impl GenericClient,
    to_site: &str,
    from_site: &str,
    parcel: &Parcel,
    now: i64,
) -> DbResult<(u64, bool)> {
    let hash = parcel.hash().as_bytes().to_vec();
    let body = serde_json::to_string(parcel).map_err(json_err)?;
    if let Some(r) = tx
        .query_opt(
            "INSERT INTO parcels (to_site, from_site, kind, shipment, hash, body, stored_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash) DO NOTHING RETURNING seq",
            &[
                &to_site,
                &from_site,
                &parcel.kind(),
                &parcel.shipment(),
                &hash,
                &body,
                &now,
            ],
        )
        .await
        .map_err(pg)?
    {
        return Ok((r.get::<_, i64>(0) as u64, false));
    }
    let r = tx
        .query_one("SELECT seq FROM parcels WHERE hash = $1", &[&hash])
        .await
        .map_err(pg)?;
    Ok((r.get::<_, i64>(0) as u64, true))
}

/// The receipt of `event` (`received`, of `site`) goes back to the site that sent its shipment,
/// when the registry holds that shipment's bundle for `site`.
async fn receipt_back(
    tx: &impl GenericClient,
    site: &str,
    event: &Envelope,
    now: i64,
) -> DbResult<()> {
    let Some(shipment) = parcels::received_shipment(&event.kind, &event.payload) else {
        return Ok(());
    };
    let from = tx
        .query_opt(
            "SELECT from_site FROM parcels WHERE kind = 'bundle' AND shipment = $1 AND to_site = $2",
            &[&shipment, &site],
        )
        .await
        .map_err(pg)?;
    if let Some(from) = from {
        let from: String = from.get(0);
        keep_parcel(
            tx,
            &from,
            site,
            &parcels::receipt(&shipment, site, event),
            now,
        )
        .await?;
    }
    Ok(())
}

/// The caller's key is bound by its first parcel; a later one must carry the same.
async fn bind_key(tx: &impl GenericClient, ws: Uuid, key: &str, now: i64) -> DbResult<()> {
    let bound = tx
        .query_opt(
            "SELECT key FROM workstation_keys WHERE workstation = $1 FOR UPDATE",
            &[&ws],
        )
        .await
        .map_err(pg)?
        .map(|r| r.get::<_, String>(0));
    if parcels::key_bound(bound.as_deref(), key)? {
        tx.execute(
            "INSERT INTO workstation_keys (workstation, key, bound_at) VALUES ($1, $2, $3)",
            &[&ws, &key, &now],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

async fn post_follow_up_tx(
    tx: &deadpool_postgres::Transaction<'_>,
    caller: &Caller,
    follow_up: kura_domain::bundle::FollowUp,
    now: i64,
) -> DbResult<ParcelPosted> {
    let f = parcels::check_follow_up(caller, &follow_up)?;
    let held = tx
        .query_opt(
            "SELECT hash FROM events WHERE workstation = $1 AND seq = $2",
            &[&caller.workstation, &(f.seq as i64)],
        )
        .await
        .map_err(pg)?;
    parcels::block_held(
        &f,
        held.map(|r| hash_of(r.get::<_, Vec<u8>>(0))).transpose()?,
    )?;
    bind_key(tx, caller.workstation, &f.key, now).await?;
    let row = tx
        .query_opt(
            "SELECT to_site, body FROM parcels WHERE kind = 'bundle' AND shipment = $1 AND from_site = $2",
            &[&f.shipment, &caller.site.code],
        )
        .await
        .map_err(pg)?;
    let bundle = match row {
        Some(r) => match serde_json::from_str::<Parcel>(r.get::<_, &str>(1)).map_err(json_err)? {
            Parcel::Bundle { bundle } => Some((r.get::<_, String>(0), bundle)),
            _ => None,
        },
        None => None,
    };
    let to_site = parcels::follow_up_to(&f, bundle)?;
    // The destination's lock, as for a bundle.
    site_row(tx, &to_site, true).await?;
    let (seq, duplicate) = keep_parcel(
        tx,
        &to_site,
        &caller.site.code,
        &Parcel::FollowUp { follow_up },
        now,
    )
    .await?;
    Ok(ParcelPosted {
        v: kura_proto::VERSION,
        seq,
        duplicate,
    })
}

async fn post_bundle_tx(
    tx: &deadpool_postgres::Transaction<'_>,
    caller: &Caller,
    a: parcels::Addressed,
    bundle: kura_domain::bundle::Bundle,
    now: i64,
) -> DbResult<ParcelPosted> {
    // The destination's lock: its pushes (which make receipts) wait, or went before.
    site_row(tx, &a.to_site, true)
        .await
        .map_err(|_| DbError::Parcel {
            code: "unknown_site",
            message: format!(
                "shipment {} goes to site {}, which this registry does not know; check the site's code",
                a.shipment, a.to_site
            ),
        })?;
    let held = tx
        .query_opt(
            "SELECT hash FROM events WHERE workstation = $1 AND seq = $2",
            &[&caller.workstation, &(a.seq as i64)],
        )
        .await
        .map_err(pg)?;
    parcels::dispatch_held(
        &a,
        held.map(|r| hash_of(r.get::<_, Vec<u8>>(0))).transpose()?,
    )?;
    bind_key(tx, caller.workstation, &a.key, now).await?;
    let (seq, duplicate) = keep_parcel(
        tx,
        &a.to_site,
        &caller.site.code,
        &Parcel::Bundle { bundle },
        now,
    )
    .await?;
    // Tubes the destination received before the registry held the bundle (it was put back from
    // an older copy, or the bundle came late): their receipts now.
    let rows = tx
        .query(
            "SELECT id, workstation, seq, actor, at, kind, payload, hash FROM events
             WHERE site = $1 AND kind = 'received' AND strpos(payload, $2) > 0",
            &[&a.to_site, &a.shipment],
        )
        .await
        .map_err(pg)?;
    for r in rows {
        let e = Envelope {
            id: r.get(0),
            workstation: r.get(1),
            seq: r.get::<_, i64>(2) as u64,
            actor: r.get(3),
            at: r.get(4),
            kind: r.get(5),
            payload: r.get(6),
            hash: hash_of(r.get(7))?,
        };
        receipt_back(tx, &a.to_site, &e, now).await?;
    }
    Ok(ParcelPosted {
        v: kura_proto::VERSION,
        seq,
        duplicate,
    })
}

/// Statements a push sends, each prepared once per connection (the pool keeps them): parsing and
/// planning cost nothing after a connection's first push, and no statement costs a round trip of
/// its own to be described.
mod sql {
    pub const WS_LOCK: &str = "SELECT head_seq, head_hash FROM workstations WHERE id = $1 AND revoked_at IS NULL FOR NO KEY UPDATE";
    pub const STORED: &str =
        "SELECT seq, hash, NULL::text, NULL::text, server_seq FROM events WHERE workstation = $1 AND seq BETWEEN $2 AND $3
         UNION ALL SELECT seq, hash, code, message, NULL::bigint FROM rejections WHERE workstation = $1 AND seq BETWEEN $2 AND $3";
    pub const TAKEN: &str = "SELECT id FROM events WHERE id = ANY($1)";
    pub const SITE_LOCK: &str =
        "SELECT code, name, prefix, serial_width, last_seq FROM sites WHERE code = $1 FOR UPDATE";
    pub const COPY_EVENTS: &str = "COPY events (site, server_seq, id, workstation, seq, actor, at, kind, payload, hash, received_at) FROM STDIN BINARY";
    pub const COPY_SPECIMENS: &str = "COPY specimens (site, code, state, container, pos_row, pos_col, last_event) FROM STDIN BINARY";
    pub const REJECTIONS: &str =
        "INSERT INTO rejections (workstation, seq, id, hash, code, message, kind, payload, received_at)
         SELECT $1, s, i, h, c, m, k, p, $2
         FROM UNNEST($3::bigint[], $4::uuid[], $5::bytea[], $6::text[], $7::text[], $8::text[], $9::text[])
           AS u(s, i, h, c, m, k, p)";
    /// The workstation's head and the site's counter, in one statement.
    pub const HEADS: &str =
        "WITH w AS (UPDATE workstations SET head_seq = $2, head_hash = $3, last_seen = $4,
                      clock_skew_us = coalesce($5, clock_skew_us) WHERE id = $1)
         UPDATE sites SET last_seq = $7 WHERE code = $6 AND last_seq <> $7";
    /// Conflicts stored before the batch that its events resolve (the first resolving event of a
    /// subject is named: the caller sends one per subject).
    pub const RESOLVE: &str =
        "UPDATE conflicts AS c SET resolved_by = u.b FROM UNNEST($2::text[], $3::uuid[]) AS u(s, b)
         WHERE c.site = $1 AND c.subject = u.s AND c.resolved_by IS NULL";
    /// The events of each conflict go as one comma-separated text (arrays of arrays do not unnest
    /// into rows).
    pub const CONFLICTS: &str =
        "INSERT INTO conflicts (site, server_seq, subject, code, message, events, resolved_by)
         SELECT $1, q, s, c, m, string_to_array(e, ',')::uuid[], r
         FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[])
           AS u(q, s, c, m, e, r)";
}

/// One push inside its transaction, in two phases. First, under the workstation's own row lock,
/// its stream is read and the batch classified (chain, duplicates, ids taken): pushes of other
/// workstations of the site go on meanwhile. Then the site's row is locked for what must be
/// serialized across the site: the authority of its users, numbering, the fold over the
/// projection, and the writes. Statements that do not depend on each other are sent together
/// (tokio-postgres pipelines them on the connection), so the site lock is held for few round
/// trips: the lock with the reads behind it, the events' `COPY` (the fold runs on a blocking
/// thread meanwhile), the specimens' `COPY` with the set-based writes queued behind it, and the
/// commit.
async fn push_tx(
    tx: &deadpool_postgres::Transaction<'_>,
    caller: &Caller,
    events: Vec<ingest::Prepared>,
    batch: Batch,
) -> DbResult<PushResponse> {
    let ws = caller.workstation;
    let code = caller.site.code.as_str();
    let (lo, hi) = match (events.first(), events.last()) {
        (Some(f), Some(l)) => (f.seq() as i64, l.seq() as i64),
        _ => (0, -1),
    };
    // Phase 1, the workstation's row. Its lock is sent first and the reads after it (one
    // connection runs them in order, each with a snapshot taken when it starts), so they see
    // what an earlier push of this workstation committed.
    let (ws_lock, stored_st, taken_st) = tokio::try_join!(
        tx.prepare_cached(sql::WS_LOCK),
        tx.prepare_cached(sql::STORED),
        tx.prepare_cached(sql::TAKEN),
    )
    .map_err(pg)?;
    // Ids another stored event already carries (asked for the whole batch: only those of new
    // events count).
    let ids = ingest::new_ids(0, &events);
    let (head, rows, taken_rows) = tokio::try_join!(
        biased;
        async { tx.query_opt(&ws_lock, &[&ws]).await },
        async { tx.query(&stored_st, &[&ws, &lo, &hi]).await },
        async { tx.query(&taken_st, &[&ids]).await },
    )
    .map_err(pg)?;
    let taken: std::collections::HashSet<Uuid> =
        taken_rows.iter().map(|r| r.get::<_, Uuid>(0)).collect();
    let head = head.ok_or(DbError::Enroll(EnrollRefusal::Revoked))?;
    let head_seq = head.get::<_, i64>(0) as u64;
    let head_hash = head
        .get::<_, Option<Vec<u8>>>(1)
        .map(hash_of)
        .transpose()?
        .unwrap_or(GENESIS);
    let mut stored = HashMap::new();
    for r in rows {
        let rejection = match r.get::<_, Option<String>>(2) {
            Some(code) => Some((
                serde_json::from_value(serde_json::Value::String(code)).map_err(json_err)?,
                r.get::<_, Option<String>>(3).unwrap_or_default(),
            )),
            None => None,
        };
        stored.insert(
            r.get::<_, i64>(0) as u64,
            Stored {
                hash: hash_of(r.get(1))?,
                rejection,
                server_seq: r.get::<_, Option<i64>>(4).map(|s| s as u64),
            },
        );
    }
    let mut c = ingest::classify(head_seq, head_hash, &stored, &taken, events)?;
    // Phase 2, the site's row. Every statement from here is prepared before the lock is asked.
    let (_, copy_events, copy_specimens, rejections_st, heads_st, resolve_st, conflicts_st) =
        tokio::try_join!(
            tx.prepare_cached(sql::SITE_LOCK),
            tx.prepare_cached(sql::COPY_EVENTS),
            tx.prepare_cached(sql::COPY_SPECIMENS),
            tx.prepare_cached(sql::REJECTIONS),
            tx.prepare_cached(sql::HEADS),
            tx.prepare_cached(sql::RESOLVE),
            tx.prepare_cached(sql::CONFLICTS),
        )
        .map_err(pg)?;
    // The lock, then the site's users (the batch is judged by them) and the projection rows the
    // batch's events touch, sent together: the lock first (its statement is prepared, so it goes
    // out on the first poll), the reads queued behind it, run once it is held. The keys are those
    // of every event classified new: one the authority then refuses only makes a row read that
    // the fold does not use.
    let mut loaded = Loaded::default();
    let keys = Keys::of(&c.accept);
    let first_load = async {
        if c.accept.is_empty() {
            return Ok(());
        }
        load(tx, code, &keys, &mut loaded).await
    };
    let ((_, site_seq), before, ()) = tokio::try_join!(
        biased;
        site_row(tx, code, true),
        load_authority(tx, code),
        first_load
    )?;
    let mut authority = before.clone();
    ingest::authorize(&mut c, &mut authority);
    let new_site_seq = ingest::assign(&mut c, site_seq);
    // The fold and the columns of its specimen rows are worked out on a blocking thread while
    // the events stream in by COPY (they depend on nothing the COPY writes).
    let accept = std::sync::Arc::new(std::mem::take(&mut c.accept));
    let folding = {
        let (accept, loaded) = (accept.clone(), std::mem::take(&mut loaded));
        tokio::task::spawn_blocking(move || (fold_with_cols(&accept, &loaded), loaded))
    };
    let (copied, folded) = tokio::join!(
        biased;
        insert_events(tx, &copy_events, code, ws, batch.received_at, &accept),
        folding
    );
    copied?;
    let (mut folded, mut loaded) = folded.map_err(|e| DbError::Backend(e.to_string()))?;
    // Rows the fold found it needed beyond the first read (a container's parent, a position
    // freed by an earlier event of the batch): read them and fold again.
    for _ in 1..ingest::MAX_ROUNDS {
        let Err(more) = &folded else { break };
        load(tx, code, more, &mut loaded).await?;
        folded = fold_with_cols(&accept, &loaded);
    }
    let (out, cols) = folded.map_err(|_| DbError::Backend("the fold did not settle".into()))?;
    let cols = cols?;
    // The other writes. A COPY holds the connection while it runs: the new specimens go first,
    // and every other write is queued behind them (none depends on another).
    let specimens = write_specimens(tx, &copy_specimens, code, &cols);
    let rejections = async {
        if c.reject.is_empty() {
            return Ok(0);
        }
        let mut seq = Vec::with_capacity(c.reject.len());
        let (mut id, mut hash, mut rcode, mut message, mut kind, mut payload) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for r in &c.reject {
            seq.push(r.event.seq as i64);
            id.push(r.event.id);
            hash.push(r.event.hash.as_bytes().to_vec());
            rcode.push(r.code.as_str());
            message.push(r.message.as_str());
            kind.push(r.event.kind.as_str());
            payload.push(r.event.payload.as_str());
        }
        tx.execute(
            &rejections_st,
            &[
                &ws,
                &batch.received_at,
                &seq,
                &id,
                &hash,
                &rcode,
                &message,
                &kind,
                &payload,
            ],
        )
        .await
        .map_err(pg)
    };
    let head_hash = (c.head_seq > 0).then(|| c.head_hash.as_bytes().to_vec());
    let heads = async {
        tx.execute(
            &heads_st,
            &[
                &ws,
                &(c.head_seq as i64),
                &head_hash,
                &batch.received_at,
                &batch.sent_at.map(|s| s - batch.received_at),
                &code,
                &(new_site_seq as i64),
            ],
        )
        .await
        .map_err(pg)
    };
    let resolve = async {
        // The first resolving event of each subject, as the fold found them.
        let mut seen = std::collections::HashSet::new();
        let (subjects, by): (Vec<&str>, Vec<Uuid>) = out
            .resolved
            .iter()
            .filter(|(s, _)| seen.insert(s.as_str()))
            .map(|(s, b)| (s.as_str(), *b))
            .unzip();
        if subjects.is_empty() {
            return Ok(0);
        }
        tx.execute(&resolve_st, &[&code, &subjects, &by])
            .await
            .map_err(pg)
    };
    let conflicts = async {
        if out.conflicts.is_empty() {
            return Ok(0);
        }
        let (mut q, mut s, mut k, mut m, mut e, mut r) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for x in &out.conflicts {
            q.push(x.server_seq as i64);
            s.push(x.subject.as_str());
            k.push(x.code.as_str());
            m.push(x.message.as_str());
            e.push(
                x.events
                    .iter()
                    .map(Uuid::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
            r.push(x.resolved_by);
        }
        tx.execute(&conflicts_st, &[&code, &q, &s, &k, &m, &e, &r])
            .await
            .map_err(pg)
    };
    let receipts = async {
        for e in accept.iter() {
            receipt_back(tx, code, &e.event, batch.received_at).await?;
        }
        Ok::<_, DbError>(())
    };
    tokio::try_join!(
        biased;
        specimens,
        save_authority(tx, code, &before, &authority),
        rejections,
        heads,
        upsert_containers(tx, code, &out.containers),
        resolve,
        conflicts,
        receipts,
    )?;
    Ok(PushResponse {
        v: kura_proto::VERSION,
        head: c.head(),
        verdicts: c.verdicts,
    })
}

impl RegistryDb for PgDb {
    async fn ready(&self) -> DbResult<()> {
        let c = self.pool.get().await.map_err(pool_err)?;
        let v: i64 = c
            .query_one(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        let latest = MIGRATIONS.last().map_or(0, |m| m.0);
        if v != latest {
            return Err(DbError::NotMigrated(format!(
                "schema {v}, expected {latest}"
            )));
        }
        Ok(())
    }

    async fn add_site(&self, site: Site) -> DbResult<()> {
        let c = self.pool.get().await.map_err(pool_err)?;
        let n = c
            .execute(
                "INSERT INTO sites (code, name, prefix, serial_width) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&site.code, &site.name, &site.prefix, &(site.serial_width as i32)],
            )
            .await
            .map_err(pg)?;
        if n == 0 {
            return Err(DbError::Exists(format!("site {}", site.code)));
        }
        Ok(())
    }

    async fn sites(&self) -> DbResult<Vec<Site>> {
        let c = self.pool.get().await.map_err(pool_err)?;
        Ok(c.query(
            "SELECT code, name, prefix, serial_width FROM sites ORDER BY code",
            &[],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| Site {
            code: r.get(0),
            name: r.get(1),
            prefix: r.get(2),
            serial_width: r.get::<_, i32>(3) as u32,
        })
        .collect())
    }

    async fn add_enrollment(
        &self,
        site: &str,
        code_hash: [u8; 32],
        expires_at: i64,
        replaces: Option<Uuid>,
    ) -> DbResult<()> {
        let c = self.pool.get().await.map_err(pool_err)?;
        site_row(&c, site, false).await?;
        if let Some(w) = replaces {
            let live: bool = c
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM workstations WHERE id = $1 AND site = $2 AND revoked_at IS NULL)",
                    &[&w, &site],
                )
                .await
                .map_err(pg)?
                .get(0);
            if !live {
                return Err(DbError::NotFound(format!(
                    "workstation {w} (enrolled at {site}, not revoked)"
                )));
            }
        }
        c.execute(
            "INSERT INTO enrollments (code_hash, site, expires_at, replaces) VALUES ($1, $2, $3, $4)",
            &[&code_hash.as_slice(), &site, &expires_at, &replaces],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn enroll(&self, e: Enrollment) -> DbResult<Enrolled> {
        let mut c = self.pool.get().await.map_err(pool_err)?;
        let tx = c.transaction().await.map_err(pg)?;
        let code = tx
            .query_opt(
                "SELECT site, expires_at, used_at, replaces FROM enrollments WHERE code_hash = $1 FOR UPDATE",
                &[&e.code_hash.as_slice()],
            )
            .await
            .map_err(pg)?;
        let refuse = |r| Err(DbError::Enroll(r));
        let (site_code, replaces): (String, Option<Uuid>) = match code {
            None => return refuse(EnrollRefusal::UnknownCode),
            Some(r) if r.get::<_, Option<i64>>(2).is_some() => {
                return refuse(EnrollRefusal::UsedCode);
            }
            Some(r) if r.get::<_, i64>(1) < e.now => return refuse(EnrollRefusal::ExpiredCode),
            Some(r) => (r.get(0), r.get(3)),
        };
        let ws = match (replaces, e.recover) {
            (Some(w), true) => w,
            // The workstation itself, again (a lost token, a re-admission).
            (Some(w), false) if w == e.workstation => w,
            (None, false) => e.workstation,
            (Some(_), false) => return refuse(EnrollRefusal::ForReplacement),
            (None, true) => return refuse(EnrollRefusal::NotForReplacement),
        };
        let known = tx
            .query_opt(
                "SELECT site, revoked_at, head_seq, last_seen FROM workstations WHERE id = $1 FOR UPDATE",
                &[&ws],
            )
            .await
            .map_err(pg)?;
        let mut replaced = None;
        match known {
            Some(r) if r.get::<_, Option<i64>>(1).is_some() => {
                return refuse(EnrollRefusal::Revoked);
            }
            Some(r) if r.get::<_, String>(0) != site_code => {
                return refuse(EnrollRefusal::OtherSite);
            }
            Some(_) if replaces.is_none() => return refuse(EnrollRefusal::WorkstationExists),
            Some(r) => {
                if replaces.is_some() {
                    replaced = Some(Replaced {
                        head: r.get::<_, i64>(2) as u64,
                        last_seen: r.get(3),
                    });
                }
                tx.execute(
                    "UPDATE workstations SET token_hash = $2, name = $3 WHERE id = $1",
                    &[&ws, &e.token_hash.as_slice(), &e.name],
                )
                .await
                .map_err(pg)?;
            }
            // (A replacement code names a workstation that existed when it was made.)
            None if replaces.is_some() => return refuse(EnrollRefusal::UnknownCode),
            None => {
                tx.execute(
                    "INSERT INTO workstations (id, site, name, token_hash, enrolled_at) VALUES ($1, $2, $3, $4, $5)",
                    &[&ws, &site_code, &e.name, &e.token_hash.as_slice(), &e.now],
                )
                .await
                .map_err(pg)?;
            }
        }
        tx.execute(
            "UPDATE enrollments SET used_at = $2, used_by = $3 WHERE code_hash = $1",
            &[&e.code_hash.as_slice(), &e.now, &ws],
        )
        .await
        .map_err(pg)?;
        let (site, _) = site_row(&tx, &site_code, true).await?;
        if let Some(f) = &e.id_format
            && (f.prefix != site.prefix || f.serial_width != site.serial_width)
        {
            return refuse(EnrollRefusal::PrefixMismatch);
        }
        let claimed: u64 = e.issued.iter().map(|c| c.last + 1 - c.first).sum();
        if claimed > limits_of(&tx, &site.code).await?.claim_cap {
            return refuse(EnrollRefusal::ClaimTooLarge);
        }
        for c in &e.issued {
            let (first, last) = (c.first as i64, c.last as i64);
            if leased_to_others(&tx, &site.code, c, ws).await? {
                return refuse(EnrollRefusal::SerialsTaken);
            }
            tx.execute(
                "INSERT INTO leases (site, year, first, last, workstation, granted_at) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT DO NOTHING",
                &[&site.code, &c.year, &first, &last, &ws, &e.now],
            )
            .await
            .map_err(pg)?;
        }
        let lease = grant(&tx, &site, ws, e.year, e.lease, e.now).await?;
        tx.commit().await.map_err(pg)?;
        Ok(Enrolled {
            workstation: ws,
            site,
            lease,
            replaced,
        })
    }

    async fn authenticate(&self, token_hash: [u8; 32]) -> DbResult<Option<Caller>> {
        let c = self.pool.get().await.map_err(pool_err)?;
        let st = c
            .prepare_cached(
                "SELECT w.id, s.code, s.name, s.prefix, s.serial_width FROM workstations w
                 JOIN sites s ON s.code = w.site WHERE w.token_hash = $1 AND w.revoked_at IS NULL",
            )
            .await
            .map_err(pg)?;
        Ok(c.query_opt(&st, &[&token_hash.as_slice()])
            .await
            .map_err(pg)?
            .map(|r| Caller {
                workstation: r.get(0),
                site: Site {
                    code: r.get(1),
                    name: r.get(2),
                    prefix: r.get(3),
                    serial_width: r.get::<_, i32>(4) as u32,
                },
            }))
    }

    async fn workstations(&self) -> DbResult<Vec<WorkstationInfo>> {
        let c = self.pool.get().await.map_err(pool_err)?;
        Ok(c.query(
            "SELECT id, site, name, enrolled_at, revoked_at, head_seq, clock_skew_us, last_seen
             FROM workstations ORDER BY site, enrolled_at, id",
            &[],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| WorkstationInfo {
            id: r.get(0),
            site: r.get(1),
            name: r.get(2),
            enrolled_at: r.get(3),
            revoked_at: r.get(4),
            head: r.get::<_, i64>(5) as u64,
            clock_skew_us: r.get(6),
            last_seen: r.get(7),
        })
        .collect())
    }

    async fn revoke(&self, workstation: Uuid, now: i64) -> DbResult<()> {
        let c = self.pool.get().await.map_err(pool_err)?;
        let n = c
            .execute(
                "UPDATE workstations SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1",
                &[&workstation, &now],
            )
            .await
            .map_err(pg)?;
        if n == 0 {
            return Err(DbError::NotFound(format!("workstation {workstation}")));
        }
        Ok(())
    }

    async fn restore(&self, workstation: Uuid, sealed: [u8; 32]) -> DbResult<()> {
        let c = self.pool.get().await.map_err(pool_err)?;
        let n = c
            .execute(
                "UPDATE workstations SET revoked_at = NULL, token_hash = $2 WHERE id = $1",
                &[&workstation, &sealed.as_slice()],
            )
            .await
            .map_err(pg)?;
        if n == 0 {
            return Err(DbError::NotFound(format!("workstation {workstation}")));
        }
        Ok(())
    }

    async fn status(&self, caller: &Caller) -> DbResult<WsStatus> {
        let c = self.pool.get().await.map_err(pool_err)?;
        let r = c
            .query_one(
                "SELECT w.head_seq, w.head_hash, w.clock_skew_us, s.last_seq FROM workstations w
                 JOIN sites s ON s.code = w.site WHERE w.id = $1",
                &[&caller.workstation],
            )
            .await
            .map_err(pg)?;
        let leases = c
            .query(
                "SELECT year, first, last FROM leases WHERE workstation = $1 ORDER BY year, first",
                &[&caller.workstation],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|l| Lease {
                year: l.get(0),
                first: l.get::<_, i64>(1) as u64,
                last: l.get::<_, i64>(2) as u64,
            })
            .collect();
        Ok(WsStatus {
            head: ingest::head(
                r.get::<_, i64>(0) as u64,
                r.get::<_, Option<Vec<u8>>>(1)
                    .map(hash_of)
                    .transpose()?
                    .unwrap_or(GENESIS),
            ),
            leases,
            clock_skew_us: r.get(2),
            site_seq: r.get::<_, i64>(3) as u64,
        })
    }

    async fn push(&self, caller: &Caller, mut batch: Batch) -> DbResult<PushResponse> {
        ingest::check_shape(caller, &batch.events)?;
        let (site, events) = (caller.site.clone(), std::mem::take(&mut batch.events));
        // Hashing and parsing happen before the site is locked.
        let events = tokio::task::spawn_blocking(move || ingest::prepare(&site, events))
            .await
            .map_err(|e| DbError::Backend(e.to_string()))?;
        let mut c = self.pool.get().await.map_err(pool_err)?;
        let tx = c.transaction().await.map_err(pg)?;
        let out = push_tx(&tx, caller, events, batch).await?;
        tx.commit().await.map_err(pg)?;
        Ok(out)
    }

    async fn pull(
        &self,
        caller: &Caller,
        after: u64,
        limit: u32,
        holding: Option<Holding>,
    ) -> DbResult<PullResponse> {
        let limit = limit.clamp(1, kura_proto::MAX_PAGE) as i64;
        let mut c = self.pool.get().await.map_err(pool_err)?;
        // One snapshot for the site's counter, the order check, the events and the conflicts.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg)?;
        let (_, site_seq) = site_row(&tx, &caller.site.code, false).await?;
        if let Some(h) = holding {
            let (event_at, placed_at): (Option<Uuid>, Option<i64>) = match h.at {
                0 => (None, None),
                at => {
                    let st = tx
                        .prepare_cached(
                            "SELECT id, received_at FROM events WHERE site = $1 AND server_seq = $2",
                        )
                        .await
                        .map_err(pg)?;
                    tx.query_opt(&st, &[&caller.site.code, &(at as i64)])
                        .await
                        .map_err(pg)?
                        .map_or((None, None), |r| (Some(r.get(0)), Some(r.get(1))))
                }
            };
            let st = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM events WHERE site = $1 AND server_seq > $2
                       AND server_seq <= $3 AND workstation <> $4)",
                )
                .await
                .map_err(pg)?;
            let others_between: bool = tx
                .query_one(
                    &st,
                    &[
                        &caller.site.code,
                        &(h.at as i64),
                        &(after as i64),
                        &caller.workstation,
                    ],
                )
                .await
                .map_err(pg)?
                .get(0);
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
        let st = tx
            .prepare_cached(
                "SELECT server_seq, received_at, id, workstation, seq, actor, at, kind, payload, hash
                 FROM events WHERE site = $1 AND server_seq > $2 AND server_seq <= $3
                 ORDER BY server_seq LIMIT $4",
            )
            .await
            .map_err(pg)?;
        let rows = tx
            .query(
                &st,
                &[
                    &caller.site.code,
                    &(after as i64),
                    &(site_seq as i64),
                    &limit,
                ],
            )
            .await
            .map_err(pg)?;
        let mut next = after;
        let mut events = Vec::new();
        let mut own = Vec::new();
        for r in rows {
            let ss = r.get::<_, i64>(0) as u64;
            next = ss;
            let ws: Uuid = r.get(3);
            // The caller's own events come as positions, unless it lacks them (back from a
            // backup, or a replacement PC): then in full.
            let lacks = holding
                .and_then(|h| h.own)
                .is_some_and(|o| r.get::<_, i64>(4) as u64 > o);
            if ws == caller.workstation && !lacks {
                own.push(OwnPosition {
                    server_seq: ss,
                    seq: r.get::<_, i64>(4) as u64,
                });
                continue;
            }
            events.push(Placed {
                server_seq: ss,
                received_at: r.get(1),
                event: Envelope {
                    id: r.get(2),
                    workstation: ws,
                    seq: r.get::<_, i64>(4) as u64,
                    actor: r.get(5),
                    at: r.get(6),
                    kind: r.get(7),
                    payload: r.get(8),
                    hash: hash_of(r.get(9))?,
                },
            });
        }
        let mut refused = Vec::new();
        let st = tx
            .prepare_cached(
                "SELECT seq FROM rejections WHERE workstation = $1 AND seq < $3 AND seq > coalesce(
                   (SELECT max(seq) FROM events WHERE workstation = $1 AND seq < $2), 0)
                 ORDER BY seq",
            )
            .await
            .map_err(pg)?;
        for (ws, (low, high)) in ingest::stream_spans(&events) {
            for r in tx
                .query(&st, &[&ws, &(low as i64), &(high as i64)])
                .await
                .map_err(pg)?
            {
                refused.push(RefusedSeq {
                    workstation: ws,
                    seq: r.get::<_, i64>(0) as u64,
                });
            }
        }
        tx.commit().await.map_err(pg)?;
        Ok(PullResponse {
            v: kura_proto::VERSION,
            events,
            conflicts: vec![],
            next,
            more: next < site_seq,
            own,
            refused,
        })
    }

    async fn conflicts(&self, site: &str, open_only: bool) -> DbResult<Vec<Conflict>> {
        let c = self.pool.get().await.map_err(pool_err)?;
        Ok(c.query(
            "SELECT server_seq, subject, code, message, events, resolved_by FROM conflicts
             WHERE site = $1 AND (NOT $2 OR resolved_by IS NULL) ORDER BY server_seq",
            &[&site, &open_only],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(conflict_of)
        .collect())
    }

    async fn lease(&self, caller: &Caller, year: i32, count: u64, now: i64) -> DbResult<Lease> {
        let mut c = self.pool.get().await.map_err(pool_err)?;
        let tx = c.transaction().await.map_err(pg)?;
        live(&tx, caller.workstation).await?;
        let (site, _) = site_row(&tx, &caller.site.code, true).await?;
        kura_registry_db::within_quota(
            granted_today(&tx, caller.workstation, now).await?,
            count,
            limits_of(&tx, &site.code).await?.daily_serials,
        )?;
        let lease = grant(&tx, &site, caller.workstation, year, count, now).await?;
        tx.commit().await.map_err(pg)?;
        Ok(lease)
    }

    async fn claim(&self, caller: &Caller, leases: Vec<Lease>, now: i64) -> DbResult<Claimed> {
        let mut c = self.pool.get().await.map_err(pool_err)?;
        let tx = c.transaction().await.map_err(pg)?;
        live(&tx, caller.workstation).await?;
        // The site's row, held: no lease is granted meanwhile.
        site_row(&tx, &caller.site.code, true).await?;
        let mut out = Claimed::default();
        for l in leases {
            let (first, last) = (l.first as i64, l.last as i64);
            if leased_to_others(&tx, &caller.site.code, &l, caller.workstation).await? {
                out.taken.push(l);
                continue;
            }
            let mine: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM leases WHERE site = $1 AND year = $2 AND first <= $3 AND last >= $4 AND workstation = $5)",
                    &[&caller.site.code, &l.year, &first, &last, &caller.workstation],
                )
                .await
                .map_err(pg)?
                .get(0);
            if !mine {
                // A claim counts like a lease: a stolen token cannot claim a year away.
                kura_registry_db::within_quota(
                    granted_today(&tx, caller.workstation, now).await?,
                    l.last + 1 - l.first,
                    limits_of(&tx, &caller.site.code).await?.daily_serials,
                )?;
                tx.execute(
                    "INSERT INTO leases (site, year, first, last, workstation, granted_at) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT DO NOTHING",
                    &[&caller.site.code, &l.year, &first, &last, &caller.workstation, &now],
                )
                .await
                .map_err(pg)?;
            }
            out.kept.push(l);
        }
        tx.commit().await.map_err(pg)?;
        Ok(out)
    }

    async fn site_limits(&self, site: &str) -> DbResult<SiteLimits> {
        let c = self.pool.get().await.map_err(pool_err)?;
        limits_of(&c, site).await
    }

    async fn set_site_limits(&self, site: &str, limits: SiteLimits) -> DbResult<()> {
        let c = self.pool.get().await.map_err(pool_err)?;
        let n = c
            .execute(
                "UPDATE sites SET claim_cap = $2, daily_serials = $3 WHERE code = $1",
                &[
                    &site,
                    &(limits.claim_cap as i64),
                    &(limits.daily_serials as i64),
                ],
            )
            .await
            .map_err(pg)?;
        if n == 0 {
            return Err(DbError::NotFound(format!("site {site}")));
        }
        Ok(())
    }

    async fn post_bundle(
        &self,
        caller: &Caller,
        bundle: kura_domain::bundle::Bundle,
        now: i64,
    ) -> DbResult<ParcelPosted> {
        let a = parcels::check_bundle(caller, &bundle)?;
        let mut c = self.pool.get().await.map_err(pool_err)?;
        let tx = c.transaction().await.map_err(pg)?;
        let out = post_bundle_tx(&tx, caller, a, bundle, now).await?;
        tx.commit().await.map_err(pg)?;
        Ok(out)
    }

    async fn post_follow_up(
        &self,
        caller: &Caller,
        follow_up: kura_domain::bundle::FollowUp,
        now: i64,
    ) -> DbResult<ParcelPosted> {
        let mut c = self.pool.get().await.map_err(pool_err)?;
        let tx = c.transaction().await.map_err(pg)?;
        let out = post_follow_up_tx(&tx, caller, follow_up, now).await?;
        tx.commit().await.map_err(pg)?;
        Ok(out)
    }

    async fn parcels(&self, caller: &Caller, after: u64, limit: u32) -> DbResult<ParcelsResponse> {
        let c = self.pool.get().await.map_err(pool_err)?;
        let site = &caller.site.code;
        let at = c
            .query_opt(
                "SELECT hash FROM parcels WHERE seq = $1 AND to_site = $2",
                &[&(after as i64), site],
            )
            .await
            .map_err(pg)?
            .map(|r| hash_of(r.get(0)))
            .transpose()?;
        let rows = c
            .query(
                "SELECT seq, body FROM parcels WHERE to_site = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[site, &(after as i64), &(limit as i64 + 1)],
            )
            .await
            .map_err(pg)?;
        let mut parcels = Vec::new();
        for r in rows {
            parcels.push(PlacedParcel {
                seq: r.get::<_, i64>(0) as u64,
                parcel: serde_json::from_str(r.get::<_, &str>(1)).map_err(json_err)?,
            });
        }
        let more = parcels.len() > limit as usize;
        parcels.truncate(limit as usize);
        Ok(ParcelsResponse {
            v: kura_proto::VERSION,
            next: parcels.last().map_or(after, |p| p.seq),
            more,
            at,
            parcels,
        })
    }

    async fn event_count(&self) -> DbResult<u64> {
        let c = self.pool.get().await.map_err(pool_err)?;
        Ok(c.query_one("SELECT count(*) FROM events", &[])
            .await
            .map_err(pg)?
            .get::<_, i64>(0) as u64)
    }
}

/// The database's own limit, for the benchmark: the same event rows sent with binary `COPY`
/// straight into the registry's `events` table (same indexes) of the database at `url`, after
/// `warm` rows of warm-up. Returns the time of the measured part.
pub async fn baseline_copy(
    url: &str,
    warm: &[Envelope],
    rows: &[Envelope],
) -> DbResult<std::time::Duration> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;
    let db = PgDb::open(url).await?;
    let c = db.pool.get().await.map_err(pool_err)?;
    let mut n = 0i64;
    let types = [
        Type::TEXT,
        Type::INT8,
        Type::UUID,
        Type::UUID,
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::BYTEA,
        Type::INT8,
    ];
    let mut copy = async |events: &[Envelope]| -> DbResult<()> {
        let sink = c.copy_in(sql::COPY_EVENTS).await.map_err(pg)?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        let mut writer = std::pin::pin!(writer);
        for e in events {
            n += 1;
            let seq = e.seq as i64;
            let zero = 0i64;
            writer
                .as_mut()
                .write(&[
                    &"BASE",
                    &n,
                    &e.id,
                    &e.workstation,
                    &seq,
                    &e.actor,
                    &e.at,
                    &e.kind,
                    &e.payload,
                    &e.hash.as_bytes().as_slice(),
                    &zero,
                ])
                .await
                .map_err(pg)?;
        }
        writer.finish().await.map_err(pg)?;
        Ok(())
    };
    copy(warm).await?;
    let t = std::time::Instant::now();
    copy(rows).await?;
    Ok(t.elapsed())
}
