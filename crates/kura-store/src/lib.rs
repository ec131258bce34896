//! Kura's local store: one SQLite file holding the append-only custody log (`events`), the
//! projection derived from it (`specimens`, `containers`, `event_subjects`) and the `outbox` of
//! events waiting for the central registry.
//!
//! Every write goes through [`Store::write`], which opens one IMMEDIATE transaction; inside it,
//! [`Tx::append`] checks an event against the domain rules, updates the projection, inserts the
//! event with its sequence number and hash, and queues it in the outbox. The transaction commits
//! all of that or none of it.

mod error;
mod hash;
mod migrations;
mod project;
mod query;
pub mod raw;
mod tx;
mod verify;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kura_domain::Geometry;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

pub use error::StoreError;
pub use migrations::MIGRATIONS;
pub use query::{
    BoxMap, BoxSlot, ContainerRow, EventRow, FindQuery, LineageNode, SpecimenView, Stats,
};
pub use tx::Tx;
pub use verify::{RebuildReport, VerifyProblem, VerifyReport};

/// The open local store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    workstation: Uuid,
    /// Containers by row id, for reads (cleared whenever a write changes a container).
    containers: RefCell<HashMap<i64, Arc<ContainerMeta>>>,
    /// Containers by code, for the rules (kept across transactions, same invalidation).
    rule_cache: project::ContainerCache,
    /// `PRAGMA data_version` when the caches were last known good: another process's commit
    /// changes it, and then the caches are dropped.
    data_version: std::cell::Cell<i64>,
}

/// What reads need of a container: its code, geometry and location path.
#[derive(Debug)]
pub(crate) struct ContainerMeta {
    pub code: String,
    pub geometry: Geometry,
    pub path: String,
}

/// How hard the store works to keep each commit (the bulk paths may lower the cache pressure).
const PRAGMAS: &str = "
    PRAGMA foreign_keys = ON;
    PRAGMA synchronous = FULL;
    PRAGMA busy_timeout = 5000;
    PRAGMA cache_size = -65536;
    PRAGMA temp_store = MEMORY;
    PRAGMA mmap_size = 4294967296;
";

impl Store {
    /// Opens (creating if needed) the store at `path`, applies pending migrations and sets WAL
    /// with `synchronous=FULL`. A new store gets a fresh workstation id.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        let mut conn = Connection::open(&path)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "could not switch {} to WAL (got {mode})",
                path.display()
            )));
        }
        conn.execute_batch(PRAGMAS)?;
        // Every hot statement stays prepared (the default cache holds 16).
        conn.set_prepared_statement_cache_capacity(128);
        migrations::migrate(&mut conn)?;
        let workstation = {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let ws: Option<String> = tx
                .query_row(
                    "SELECT value FROM meta WHERE key = 'workstation'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let ws = match ws {
                Some(s) => Uuid::parse_str(&s)
                    .map_err(|e| StoreError::Corrupt(format!("workstation id {s:?}: {e}")))?,
                None => {
                    let id = Uuid::now_v7();
                    tx.execute(
                        "INSERT INTO meta(key, value) VALUES ('workstation', ?1)",
                        [id.to_string()],
                    )?;
                    id
                }
            };
            tx.commit()?;
            ws
        };
        let data_version = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        Ok(Store {
            conn,
            path,
            workstation,
            containers: RefCell::new(HashMap::new()),
            rule_cache: project::ContainerCache::new(),
            data_version: std::cell::Cell::new(data_version),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This workstation's id: every event written here carries it.
    pub fn workstation(&self) -> Uuid {
        self.workstation
    }

    /// Runs `f` in one IMMEDIATE transaction. If `f` returns an error, nothing it did is kept.
    pub fn write<T, E>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        if self.external_change()? {
            self.rule_cache.clear();
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let mut t = Tx::begin(tx, self.workstation, &mut self.rule_cache)?;
        let out = f(&mut t);
        let changed = t.containers_changed();
        let result = match out {
            Ok(v) => t.commit().map(|_| v).map_err(E::from),
            Err(e) => {
                drop(t); // rolls back
                Err(e)
            }
        };
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

    /// Bulk mode: no automatic checkpoints while a large write runs (one checkpoint at the end
    /// instead of one every 1,000 pages). `false` restores the default.
    pub fn set_bulk(&self, bulk: bool) -> Result<(), StoreError> {
        let pages = if bulk { 0 } else { 1000 };
        self.conn
            .query_row(&format!("PRAGMA wal_autocheckpoint = {pages}"), [], |_| {
                Ok(())
            })?;
        if !bulk {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Writes the WAL back into the main file (used before measuring the file size).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// `PRAGMA integrity_check`: "ok" or the problems SQLite found.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(rows.join("\n"))
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
        let row = self
            .conn
            .prepare_cached("SELECT code, geometry, path FROM containers WHERE id = ?1")?
            .query_row([rowid], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()?;
        let Some((code, geometry, path)) = row else {
            return Ok(None);
        };
        let geometry = serde_json::from_str(&geometry)
            .map_err(|e| StoreError::Corrupt(format!("geometry of {code}: {e}")))?;
        let m = Arc::new(ContainerMeta {
            code,
            geometry,
            path,
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
