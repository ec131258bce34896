//! Kura's local store: one SQLite file holding the append-only custody log (`events`), the
//! projection derived from it (`specimens`, `containers`, `event_subjects`) and `sync_state`,
//! whose high-water mark says which of this workstation's events wait for the central registry.
//!
//! Every write goes through [`Store::write`], which opens one IMMEDIATE transaction; inside it,
//! [`Tx::append`] checks an event against the domain rules, updates the projection, inserts the
//! event with its sequence number and hash (past the high-water mark until pushed). It commits
//! all of that or none of it.

// No panic on input: outside tests, no unwrap/expect/panic; the few that cannot fail say why.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod bundles;
mod error;
mod migrations;
/// The newest schema this build knows (migrations are numbered from 1).
pub use migrations::known as newest_schema;
mod project;
mod query;
pub mod raw;
mod sync;
mod tx;
mod verify;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kura_domain::Geometry;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

pub use bundles::{ReceiptRow, WorkstationKey};
pub use error::StoreError;
pub use migrations::MIGRATIONS;
pub use query::{
    BoxMap, BoxSlot, ContainerRow, EventRow, FindQuery, LineageNode, ScanFlags, ShipmentRow,
    SignatureRow, SpecimenView, Stats, UserRow,
};
pub use sync::{Answer, ConflictRow, LeaseBlock, PullApplied, RejectionRow, SyncState};
pub use tx::Tx;
pub use verify::{RebuildReport, VerifiedPoint, VerifyProblem, VerifyReport};

/// What [`Store::trace_statements`] hands each statement's text to.
pub type StatementSink = Box<dyn FnMut(&str) + Send>;

/// The open local store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    workstation: Uuid,
    /// Containers by row id, for reads (cleared whenever a write changes a container).
    containers: RefCell<HashMap<i64, Arc<ContainerMeta>>>,
    /// Geometries by their stored JSON (a handful of container types; never stale): a box read
    /// for the first time is not parsed again.
    geometries: RefCell<HashMap<String, Geometry>>,
    /// Containers by code, for the rules (kept across transactions, same invalidation).
    rule_cache: project::ContainerCache,
    /// What this bench's events ahead of a pulled page touch, kept from one page to the next
    /// (dropped with the other caches, and after a transaction that did not commit).
    ahead: Option<sync::AheadCache>,
    /// `PRAGMA data_version` when the caches were last known good: another process's commit
    /// changes it, and then the caches are dropped.
    data_version: std::cell::Cell<i64>,
    /// Sync's connection: its writes let this process's foreground writes go first.
    background: bool,
}

/// What reads need of a container: its code, geometry and location path.
#[derive(Debug)]
pub(crate) struct ContainerMeta {
    pub code: String,
    pub geometry: Geometry,
    pub path: String,
}

/// Opens for reading and writing: WAL, pragmas, migrations. Errors name the file.
fn open_rw(path: &Path) -> Result<Connection, StoreError> {
    let at = |e: rusqlite::Error| StoreError::from(e).at(path);
    let mut conn = Connection::open(path).map_err(at)?;
    conn.busy_handler(Some(busy_wait)).map_err(at)?;
    // The first read: a file that is not SQLite, or not Kura's, or newer, stops here unchanged.
    let current = migrations::current(&conn, path).map_err(|e| e.at(path))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(at)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "could not switch {} to WAL (got {mode})",
            path.display()
        )));
    }
    conn.execute_batch(PRAGMAS).map_err(at)?;
    // Every hot statement stays prepared (the default cache holds 16).
    conn.set_prepared_statement_cache_capacity(128);
    migrations::migrate(&mut conn, current).map_err(|e| e.at(path))?;
    // A load that dropped the search indexes and did not live to build them again.
    build_search_indexes(&conn).map_err(at)?;
    Ok(conn)
}

/// A new database file is created owner-only (0600; SQLite gives its WAL and shared-memory files
/// the same mode); an existing one that others can write is refused before it is read.
#[cfg(unix)]
pub(crate) fn protect(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::metadata(path) {
        Ok(m) => {
            let mode = m.permissions().mode() & 0o777;
            if m.is_file() && mode & 0o022 != 0 {
                return Err(StoreError::Unprotected {
                    path: path.to_path_buf(),
                    mode,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(_) => Ok(()),
                // Another process made it first: it is checked like any existing file.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => protect(path),
                // Read-only directory and the like: SQLite's own open says what is wrong.
                Err(_) => Ok(()),
            }
        }
        Err(_) => Ok(()),
    }
}

#[cfg(not(unix))]
pub(crate) fn protect(_: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Waits for another connection's write to finish: looks again every millisecond, for up to
/// [`error::BUSY_TIMEOUT_MS`]. (SQLite's own handler backs off to sleeps of 10 to 100 ms, so a
/// scan arriving while a sync transaction runs would often wait 10 ms or more after the lock
/// came free.)
fn busy_wait(tries: i32) -> bool {
    if u64::try_from(tries).unwrap_or(u64::MAX) >= error::BUSY_TIMEOUT_MS {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_millis(1));
    true
}

/// Writes in this process that a person is waiting for (the window's commands, the CLI). A
/// background writer (sync) does not begin a transaction while one of them waits, so a scan
/// waits at most for the one sync transaction already under way, never for a queue of them.
static FOREGROUND_WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts one foreground write while it waits and runs.
struct Foreground;

impl Foreground {
    fn enter() -> Foreground {
        FOREGROUND_WRITES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Foreground
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        FOREGROUND_WRITES.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A background writer lets the foreground writes waiting now go first (for up to a second:
/// a long import does not stop sync).
fn yield_to_foreground() {
    let start = std::time::Instant::now();
    while FOREGROUND_WRITES.load(std::sync::atomic::Ordering::SeqCst) > 0
        && start.elapsed() < std::time::Duration::from_secs(1)
    {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// Opens a database Kura may not write (read-only media, no permission): `mode=ro`, or, when
/// the WAL index cannot be created there either, as immutable.
fn open_ro(path: &Path) -> Result<Connection, StoreError> {
    use rusqlite::OpenFlags;
    let at = |e: rusqlite::Error| StoreError::from(e).at(path);
    let enc: String = path
        .to_string_lossy()
        .chars()
        .map(|c| match c {
            '%' => "%25".to_string(),
            '?' => "%3f".to_string(),
            '#' => "%23".to_string(),
            c => c.to_string(),
        })
        .collect();
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
    let mut last = None;
    for uri in [
        format!("file:{enc}?mode=ro"),
        format!("file:{enc}?immutable=1"),
    ] {
        match Connection::open_with_flags(&uri, flags)
            .map_err(at)
            .and_then(|c| {
                let v = migrations::current(&c, path).map_err(|e| e.at(path))?;
                Ok((c, v))
            }) {
            Ok((c, v)) if v == migrations::known() => {
                c.execute_batch("PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;")
                    .map_err(at)?;
                return Ok(c);
            }
            // An older schema would need a migration, which is a write.
            Ok(_) => {
                return Err(StoreError::ReadOnly {
                    path: path.to_path_buf(),
                });
            }
            Err(e @ (StoreError::NotKura { .. } | StoreError::NotSqlite { .. })) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(StoreError::ReadOnly {
        path: path.to_path_buf(),
    }))
}

/// The indexes only searches use, as migrations 0001 and 0003 made them.
const SEARCH_INDEXES: &[(&str, &str)] = &[
    (
        "specimens_donor",
        "CREATE INDEX IF NOT EXISTS specimens_donor ON specimens(donor)",
    ),
    (
        "specimens_study",
        "CREATE INDEX IF NOT EXISTS specimens_study ON specimens(study)",
    ),
    (
        "specimens_parent",
        "CREATE INDEX IF NOT EXISTS specimens_parent ON specimens(parent)",
    ),
    (
        "specimens_due",
        "CREATE INDEX IF NOT EXISTS specimens_due ON specimens(due) WHERE due IS NOT NULL",
    ),
];

/// Builds those of [`SEARCH_INDEXES`] that are missing.
fn build_search_indexes(conn: &Connection) -> Result<(), rusqlite::Error> {
    for (_, sql) in SEARCH_INDEXES {
        conn.execute_batch(sql)?;
    }
    Ok(())
}

/// A read-only connection of its own for a long read of the whole database (`verify`,
/// `integrity_check`): its sorts and temporary tables on disk, a bounded page cache and no
/// memory map (every page read through the map would stay resident), so its memory stays
/// small at any size; it waits for a busy database as the store's own connection does.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = open_ro(path)?;
    conn.busy_handler(Some(busy_wait))?;
    conn.execute_batch(
        "PRAGMA temp_store = FILE; PRAGMA cache_size = -65536; PRAGMA mmap_size = 0;",
    )?;
    Ok(conn)
}

/// SQLite's own check of every page of the database at `path` (`PRAGMA integrity_check`),
/// through a read-only connection of its own: `ok`, or what it found. Needs no [`Store`], so it
/// can run on a thread of its own beside a `verify`.
pub fn integrity_check_at(path: &Path) -> Result<String, StoreError> {
    let conn = open_reader(path)?;
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows.join("\n"))
}

/// WAL pages (4 KiB each) between automatic checkpoints in bulk mode: 256 MiB.
pub const BULK_CHECKPOINT_PAGES: u32 = 65_536;

/// How hard the store works to keep each commit (the bulk paths may lower the cache pressure).
/// The raw baselines of `kura bench` open their connections with the same. The memory map
/// covers the whole file up to 64 GiB ([`MMAP_BYTES`]; SQLite is built to allow it, see
/// `.cargo/config.toml`): a scan's pages come from the page cache without a system call each.
pub(crate) const PRAGMAS: &str = "
    PRAGMA foreign_keys = ON;
    PRAGMA synchronous = FULL;
    PRAGMA cache_size = -65536;
    PRAGMA temp_store = MEMORY;
    PRAGMA mmap_size = 68719476736;
";

/// The memory map [`PRAGMAS`] asks for: 64 GiB.
pub const MMAP_BYTES: i64 = 68_719_476_736;

impl Store {
    /// Opens (creating if needed) the store at `path`, applies pending migrations and sets WAL
    /// with `synchronous=FULL`. A new store takes `new_workstation()` as its workstation id (the
    /// store mints no ids and reads no clock: `kura-app` gives a time-ordered v7 UUID).
    pub fn open(
        path: impl AsRef<Path>,
        new_workstation: impl FnOnce() -> Uuid,
    ) -> Result<Store, StoreError> {
        Store::open_inner(path.as_ref(), Some(new_workstation))
    }

    /// Opens a store that already has a workstation id (a backup, the database a sync round
    /// works on); creates nothing. A file that is not there, or a database without a workstation
    /// id, is refused.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "there is no database here; give the path of an existing Kura database",
                ),
            });
        }
        Store::open_inner(path, None::<fn() -> Uuid>)
    }

    fn open_inner(
        path: &Path,
        new_workstation: Option<impl FnOnce() -> Uuid>,
    ) -> Result<Store, StoreError> {
        let path = path.to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        protect(&path)?;
        let conn = match open_rw(&path) {
            Ok(c) => c,
            // Read-only media or no write permission: reads still work, writes say why.
            Err(e) if matches!(e.code(), "store_read_only") && path.exists() => {
                tracing::warn!(path = %path.display(), "opening read-only");
                open_ro(&path)?
            }
            Err(e) => return Err(e),
        };
        let workstation = match conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'workstation'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(|e| StoreError::from(e).at(&path))?
        {
            Some(s) => Uuid::parse_str(&s)
                .map_err(|e| StoreError::Corrupt(format!("workstation id {s:?}: {e}")))?,
            None => {
                let Some(new_workstation) = new_workstation else {
                    return Err(StoreError::Corrupt(format!(
                        "{} holds no workstation id: it is not a database this bench wrote",
                        path.display()
                    )));
                };
                let id = new_workstation();
                // Only a new database writes here (opening never waits on another writer).
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('workstation', ?1)",
                    [id.to_string()],
                )
                .map_err(|e| StoreError::from(e).at(&path))?;
                let stored: String = conn
                    .query_row(
                        "SELECT value FROM meta WHERE key = 'workstation'",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(|e| StoreError::from(e).at(&path))?;
                Uuid::parse_str(&stored)
                    .map_err(|e| StoreError::Corrupt(format!("workstation id {stored:?}: {e}")))?
            }
        };
        let data_version = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        Ok(Store {
            conn,
            path,
            workstation,
            containers: RefCell::new(HashMap::new()),
            geometries: RefCell::new(HashMap::new()),
            rule_cache: project::ContainerCache::new(),
            ahead: None,
            background: false,
            data_version: std::cell::Cell::new(data_version),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes over another workstation's identity (a replacement PC of a dead bench): only a
    /// database that holds no event yet, so that every event here stays of one stream.
    pub fn take_identity(&mut self, workstation: Uuid) -> Result<(), StoreError> {
        let events: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
        if events > 0 && workstation != self.workstation {
            return Err(StoreError::NotEmpty {
                path: self.path.clone(),
                events: events as u64,
            });
        }
        self.conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'workstation'",
            [workstation.to_string()],
        )?;
        self.workstation = workstation;
        Ok(())
    }

    /// This workstation's id: every event written here carries it.
    pub fn workstation(&self) -> Uuid {
        self.workstation
    }

    /// Hands `f` the text of every statement this connection starts (as written, parameters
    /// unbound; the bodies of triggers left out), or stops doing so (`None`): how the tests see
    /// what a use case asks of SQLite.
    pub fn trace_statements(&mut self, f: Option<StatementSink>) -> Result<(), StoreError> {
        use rusqlite::trace::{TraceEvent, TraceEventCodes};
        match f {
            Some(mut f) => self.conn.trace_v2(
                TraceEventCodes::SQLITE_TRACE_STMT,
                Some(move |e: TraceEvent<'_>| {
                    if let TraceEvent::Stmt(s, text) = e
                        && !text.starts_with("--")
                    {
                        f(&s.sql());
                    }
                }),
            )?,
            None => self
                .conn
                .trace_v2(TraceEventCodes::empty(), None::<fn(TraceEvent<'_>)>)?,
        }
        Ok(())
    }

    /// Marks this connection as a background writer (sync): before each transaction it lets
    /// the foreground writes of this process that are waiting go first.
    pub fn set_background(&mut self, background: bool) {
        self.background = background;
    }

    /// Runs `f` in one IMMEDIATE transaction. If `f` returns an error, nothing it did is kept.
    pub fn write<T, E>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let _foreground = if self.background {
            yield_to_foreground();
            None
        } else {
            Some(Foreground::enter())
        };
        if self.external_change()? {
            self.rule_cache.clear();
            self.ahead = None;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::from(e).at(&self.path))?;
        let mut t = Tx::begin(tx, self.workstation, &mut self.rule_cache, &mut self.ahead)?;
        let out = f(&mut t);
        let changed = t.containers_changed();
        let result = match out {
            Ok(v) => t.commit().map(|_| v).map_err(|e| E::from(e.at(&self.path))),
            Err(e) => {
                drop(t); // rolls back
                Err(e)
            }
        };
        if result.is_err() {
            // It may describe rows that were rolled back.
            self.ahead = None;
        }
        if changed {
            // Created or moved containers: drop both caches (a rolled-back transaction may have
            // cached containers that no longer exist).
            self.containers.borrow_mut().clear();
            self.rule_cache.clear();
        }
        result
    }

    /// A setting from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Makes the next bulk write cheaper to check: a larger page cache for the session.
    pub fn set_cache_mib(&self, mib: u32) -> Result<(), StoreError> {
        self.conn
            .execute_batch(&format!("PRAGMA cache_size = -{}", u64::from(mib) * 1024))?;
        Ok(())
    }

    /// Bulk mode: automatic checkpoints only every [`BULK_CHECKPOINT_PAGES`] pages of WAL
    /// (instead of every 1,000), so a large load checkpoints as it goes and its WAL stays
    /// bounded (a 10 M demo without them grew a WAL of over 7 GB). `false` restores the
    /// default and checkpoints once.
    pub fn set_bulk(&self, bulk: bool) -> Result<(), StoreError> {
        let pages = if bulk { BULK_CHECKPOINT_PAGES } else { 1000 };
        self.conn
            .query_row(&format!("PRAGMA wal_autocheckpoint = {pages}"), [], |_| {
                Ok(())
            })?;
        if !bulk {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Drops the indexes only searches use (by donor, study, parent, due date) before a load
    /// at least twice as large as what is here: built again by [`Store::build_search_indexes`]
    /// at its end, one sort each instead of a b-tree insert per row (a 300,000 demo: 14% less
    /// CPU time; for a load no larger than what is here, building them over all the rows again
    /// cost what it saved: 1 M rows into 1 M, 20.9 s against 19.8 s). Whether it dropped them.
    pub fn drop_search_indexes_for(&self, rows: u64) -> Result<bool, StoreError> {
        let here: i64 =
            self.conn
                .query_row("SELECT coalesce(max(id), 0) FROM specimens", [], |r| {
                    r.get(0)
                })?;
        if rows < 10_000 || (rows as i64) < 2 * here {
            return Ok(false);
        }
        for (name, _) in SEARCH_INDEXES {
            self.conn
                .execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
        }
        Ok(true)
    }

    /// Builds the search indexes that are missing (after a load, or one a crash interrupted).
    pub fn build_search_indexes(&self) -> Result<(), StoreError> {
        Ok(build_search_indexes(&self.conn)?)
    }

    /// Runs `f` in one read transaction (unless one is open): one consistent view, and one
    /// shared lock for all its statements instead of a lock and an unlock around each (a check
    /// of a million import rows made two million `fcntl` calls without it).
    pub fn reading<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        if !self.conn.is_autocommit() {
            return f();
        }
        // Prepared once (a scan lookup is one of these: parsing BEGIN and COMMIT each time
        // cost a tenth of it).
        let run = |sql: &str| self.conn.prepare_cached(sql)?.execute([]).map(|_| ());
        run("BEGIN").map_err(|e| E::from(e.into()))?;
        let r = f();
        let end = run(if r.is_ok() { "COMMIT" } else { "ROLLBACK" });
        match (r, end) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(E::from(e.into())),
        }
    }

    /// One pass over the whole events table reading every column into owned values (what
    /// `verify` reads at the least): the benchmark's baseline for it. Its time.
    pub fn read_whole_log(&self) -> Result<std::time::Duration, StoreError> {
        let t = std::time::Instant::now();
        let mut stmt = self.conn.prepare(
            "SELECT event_id, workstation, seq, actor, at, kind, payload, hash FROM events",
        )?;
        let mut rows = stmt.query([])?;
        let mut bytes = 0usize;
        while let Some(r) = rows.next()? {
            let (id, ws, seq): (Vec<u8>, Vec<u8>, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let (actor, at, kind): (String, i64, String) = (r.get(3)?, r.get(4)?, r.get(5)?);
            let (payload, hash): (String, Vec<u8>) = (r.get(6)?, r.get(7)?);
            bytes += id.len() + ws.len() + actor.len() + kind.len() + payload.len() + hash.len();
            bytes += (seq + at) as usize & 1;
        }
        std::hint::black_box(bytes);
        Ok(t.elapsed())
    }

    /// Writes the WAL back into the main file (used before measuring the file size).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The mean payload of a row of `table`, in bytes (each column's value as stored text or
    /// blob): what a baseline's rows are padded to.
    pub fn mean_row_bytes(&self, table: &str) -> Result<f64, StoreError> {
        let cols: Vec<String> = self
            .conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let sum = cols
            .iter()
            .map(|c| format!("coalesce(length(CAST(\"{c}\" AS BLOB)), 0)"))
            .collect::<Vec<_>>()
            .join(" + ");
        Ok(self.conn.query_row(
            &format!("SELECT coalesce(avg({sum}), 0) FROM \"{table}\""),
            [],
            |r| r.get(0),
        )?)
    }

    /// A consistent copy of the whole database in a new file `to` (`VACUUM INTO`: one read
    /// transaction, so other connections keep writing meanwhile and the copy is of one instant).
    pub fn backup_into(&self, to: &Path) -> Result<(), StoreError> {
        self.conn
            .execute("VACUUM INTO ?1", [to.to_string_lossy().as_ref()])?;
        Ok(())
    }

    /// `PRAGMA integrity_check`: "ok" or the problems SQLite found. It reads every page: on a
    /// connection of its own ([`open_reader`]).
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        integrity_check_at(&self.path)
    }

    /// Whether another connection committed since we last looked; if so, the read cache is
    /// dropped (the caller drops the rule cache).
    fn external_change(&self) -> Result<bool, StoreError> {
        let v: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if v != self.data_version.get() {
            self.data_version.set(v);
            self.containers.borrow_mut().clear();
            return Ok(true);
        }
        Ok(false)
    }

    pub(crate) fn container_meta(
        &self,
        rowid: i64,
    ) -> Result<Option<Arc<ContainerMeta>>, StoreError> {
        self.external_change()?;
        if let Some(m) = self.containers.borrow().get(&rowid) {
            return Ok(Some(m.clone()));
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT code, geometry, path FROM containers WHERE id = ?1")?;
        let mut rows = stmt.query([rowid])?;
        let Some(r) = rows.next()? else {
            return Ok(None);
        };
        let code: String = r.get(0)?;
        let json = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        let known = self.geometries.borrow().get(json).cloned();
        let geometry = match known {
            Some(g) => g,
            None => {
                let g: Geometry = serde_json::from_str(json)
                    .map_err(|e| StoreError::Corrupt(format!("geometry of {code}: {e}")))?;
                self.geometries
                    .borrow_mut()
                    .insert(json.to_string(), g.clone());
                g
            }
        };
        let m = Arc::new(ContainerMeta {
            code,
            geometry,
            path: r.get(2)?,
        });
        self.containers.borrow_mut().insert(rowid, m.clone());
        Ok(Some(m))
    }

    pub(crate) fn forget_containers(&self) {
        self.containers.borrow_mut().clear();
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}
