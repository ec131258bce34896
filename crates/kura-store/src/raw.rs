//! Raw-SQLite baselines, measured in the same run as Kura's own figures so that the ratio is the
//! result. Fair by construction: the same connection settings as Kura's store ([`PRAGMAS`]: WAL,
//! synchronous=FULL, the same page cache and memory map), the same bulk mode while loading, the
//! same transaction sizes, rows as wide as Kura's, and the plainest possible schema and
//! statements.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use crate::{PRAGMAS, StoreError};

/// Specimens per transaction while loading: the demo generator's batch.
pub const LOAD_BATCH: i64 = 20_000;

pub struct RawBaseline {
    path: PathBuf,
    conn: Connection,
    rows: i64,
    updates: i64,
    /// Filler that makes a raw row as wide as a Kura specimen row.
    row_data: String,
    /// Filler that makes a raw event as wide as a Kura event row.
    event_data: String,
}

/// A connection with Kura's settings.
fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch(PRAGMAS)?;
    Ok(conn)
}

impl RawBaseline {
    /// A new raw database whose rows carry `row_bytes` (specimens) and `event_bytes` (events) of
    /// payload, the widths measured on Kura's own tables.
    pub fn create(
        path: &Path,
        row_bytes: usize,
        event_bytes: usize,
    ) -> Result<RawBaseline, StoreError> {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let conn = open(path)?;
        conn.execute_batch(
            "CREATE TABLE raw (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, box INTEGER, pos INTEGER, data TEXT NOT NULL);
             CREATE TABLE raw_events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, payload TEXT NOT NULL);",
        )?;
        // What the other columns hold: a 13-character code and two small integers; an event's
        // time.
        let row_data = "x".repeat(row_bytes.saturating_sub(13 + 4).max(1));
        let event_data = "x".repeat(event_bytes.saturating_sub(8).max(1));
        Ok(RawBaseline {
            path: path.to_path_buf(),
            conn,
            rows: 0,
            updates: 0,
            row_data,
            event_data,
        })
    }

    /// A fresh connection (an empty page cache), as Kura gets when it is reopened.
    pub fn reopen(&mut self) -> Result<(), StoreError> {
        self.conn = open(&self.path)?;
        Ok(())
    }

    pub fn code(i: i64) -> String {
        format!("RAW{i:010}")
    }

    /// Inserts `n` rows as Kura's demo generator writes: bulk mode (a 256 MiB page cache,
    /// automatic checkpoints every [`BULK_CHECKPOINT_PAGES`](crate::BULK_CHECKPOINT_PAGES)),
    /// transactions of [`LOAD_BATCH`], then back to the normal settings with one checkpoint,
    /// all inside the time returned.
    pub fn bulk_insert(&mut self, n: i64) -> Result<Duration, StoreError> {
        let start = Instant::now();
        self.conn.execute_batch("PRAGMA cache_size = -262144;")?;
        self.conn.query_row(
            &format!(
                "PRAGMA wal_autocheckpoint = {}",
                crate::BULK_CHECKPOINT_PAGES
            ),
            [],
            |_| Ok(()),
        )?;
        let mut i = 0;
        while i < n {
            let tx = self.conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO raw (code, box, pos, data) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for _ in 0..LOAD_BATCH.min(n - i) {
                    let k = self.rows + i;
                    stmt.execute(params![Self::code(k), k / 81, k % 81, self.row_data])?;
                    i += 1;
                }
            }
            tx.commit()?;
        }
        self.rows += n;
        self.conn
            .query_row("PRAGMA wal_autocheckpoint = 1000", [], |_| Ok(()))?;
        self.checkpoint()?;
        Ok(start.elapsed())
    }

    /// Writes the WAL back into the main file and empties it (as Kura's `checkpoint`).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The codes of these row ids, read from the table (as Kura's are read from its own).
    pub fn codes_by_rowid(&self, ids: &[i64]) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT code FROM raw WHERE id = ?1")?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(stmt.query_row([id], |r| r.get(0))?);
        }
        Ok(out)
    }

    /// Looks up each code by its unique key, reading the whole row; the time of each.
    pub fn lookups(&self, codes: &[String]) -> Result<Vec<Duration>, StoreError> {
        let mut out = Vec::with_capacity(codes.len());
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, box, pos, data FROM raw WHERE code = ?1")?;
        for code in codes {
            let t = Instant::now();
            let r: (i64, i64, i64, String) =
                stmt.query_row([code], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            out.push(t.elapsed());
            std::hint::black_box(r);
        }
        Ok(out)
    }

    /// `n` transactions of one row update plus one event insert, each committed at FULL.
    pub fn update_and_event(&mut self, n: i64) -> Result<Duration, StoreError> {
        let start = Instant::now();
        for _ in 0..n {
            self.updates_and_events_in_one(1)?;
        }
        Ok(start.elapsed())
    }

    /// One transaction of `n` row updates and `n` event inserts (a whole box at once).
    pub fn updates_and_events_in_one(&mut self, n: i64) -> Result<Duration, StoreError> {
        let start = Instant::now();
        let tx = self.conn.transaction()?;
        for _ in 0..n {
            self.updates += 1;
            let i = self.updates;
            tx.prepare_cached("UPDATE raw SET box = ?2, pos = ?3 WHERE id = ?1")?
                .execute(params![i, -1, i])?;
            tx.prepare_cached("INSERT INTO raw_events (at, payload) VALUES (?1, ?2)")?
                .execute(params![i, self.event_data])?;
        }
        tx.commit()?;
        Ok(start.elapsed())
    }
}
