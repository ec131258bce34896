//! Raw-SQLite baselines, measured in the same run as Kura's own figures so that the ratio is the
//! result: the same pragmas (WAL, synchronous=FULL), the plainest possible schema and statements.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use crate::StoreError;

pub struct RawBaseline {
    conn: Connection,
    rows: i64,
}

impl RawBaseline {
    pub fn create(path: &Path) -> Result<RawBaseline, StoreError> {
        let _ = std::fs::remove_file(path);
        let conn = Connection::open(path)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA cache_size = -65536;
             CREATE TABLE raw (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, box INTEGER, pos INTEGER);
             CREATE TABLE raw_events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, payload TEXT NOT NULL);",
        )?;
        Ok(RawBaseline { conn, rows: 0 })
    }

    /// Inserts `n` rows in transactions of 50,000 and returns the elapsed time.
    pub fn batched_insert(&mut self, n: i64) -> Result<Duration, StoreError> {
        let start = Instant::now();
        let mut i = 0;
        while i < n {
            let tx = self.conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached("INSERT INTO raw (code, box, pos) VALUES (?1, ?2, ?3)")?;
                for _ in 0..50_000.min(n - i) {
                    stmt.execute(params![format!("RAW{:010}", self.rows + i), i / 81, i % 81])?;
                    i += 1;
                }
            }
            tx.commit()?;
        }
        self.rows += n;
        Ok(start.elapsed())
    }

    /// Looks up `samples` codes by primary key (the text key's unique index), one at a time.
    pub fn pk_lookups(&self, samples: &[i64]) -> Result<Vec<Duration>, StoreError> {
        let mut out = Vec::with_capacity(samples.len());
        let mut stmt = self.conn.prepare_cached("SELECT id, box, pos FROM raw WHERE code = ?1")?;
        for s in samples {
            let code = format!("RAW{:010}", s.rem_euclid(self.rows.max(1)));
            let t = Instant::now();
            let r: (i64, i64, i64) = stmt.query_row([&code], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            out.push(t.elapsed());
            std::hint::black_box(r);
        }
        Ok(out)
    }

    /// `n` transactions of one row update plus one event insert, each committed at FULL.
    pub fn update_and_event(&mut self, n: i64) -> Result<Duration, StoreError> {
        let start = Instant::now();
        for i in 0..n {
            let tx = self.conn.transaction()?;
            tx.prepare_cached("UPDATE raw SET box = ?2, pos = ?3 WHERE id = ?1")?.execute(params![1 + i, -1, i])?;
            tx.prepare_cached("INSERT INTO raw_events (at, payload) VALUES (?1, ?2)")?
                .execute(params![i, r#"{"kind":"checked_in","specimen":"RAW0000000001","location":{"container":"BX1","pos":{"row":0,"col":0}}}"#])?;
            tx.commit()?;
        }
        Ok(start.elapsed())
    }
}
