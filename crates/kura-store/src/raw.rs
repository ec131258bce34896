//! Raw-SQLite baselines, measured in the same run as Kura's own figures so that the ratio is the
//! result: the same pragmas (WAL, synchronous=FULL), the plainest possible schema and statements.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use crate::StoreError;

/// Filler that gives each raw row the width of a real specimen row (type, container, storage,
/// quantity, study, donor, times, status: about 150 bytes), so that the raw table is as large as
/// a real one and does not sit wholly in SQLite's page cache.
const ROW_DATA: &str = "PL1|PED|A|500|mL|Diabetes prospective cohort|D0001234|1711966320000000|1711966320000000|available|0|0|holder-none|due-none|padding-padding-padding";

pub struct RawBaseline {
    conn: Connection,
    rows: i64,
    updates: i64,
}

impl RawBaseline {
    pub fn create(path: &Path) -> Result<RawBaseline, StoreError> {
        let _ = std::fs::remove_file(path);
        let conn = Connection::open(path)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA cache_size = -65536;
             CREATE TABLE raw (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, box INTEGER, pos INTEGER, data TEXT NOT NULL);
             CREATE TABLE raw_events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, payload TEXT NOT NULL);",
        )?;
        Ok(RawBaseline {
            conn,
            rows: 0,
            updates: 0,
        })
    }

    /// Inserts `n` rows in transactions of 50,000 and returns the elapsed time.
    pub fn batched_insert(&mut self, n: i64) -> Result<Duration, StoreError> {
        let start = Instant::now();
        let mut i = 0;
        while i < n {
            let tx = self.conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO raw (code, box, pos, data) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for _ in 0..50_000.min(n - i) {
                    stmt.execute(params![
                        format!("RAW{:010}", self.rows + i),
                        i / 81,
                        i % 81,
                        ROW_DATA
                    ])?;
                    i += 1;
                }
            }
            tx.commit()?;
        }
        self.rows += n;
        Ok(start.elapsed())
    }

    /// Looks up `samples` codes by their unique key, one at a time, reading the whole row.
    pub fn pk_lookups(&self, samples: &[i64]) -> Result<Vec<Duration>, StoreError> {
        let mut out = Vec::with_capacity(samples.len());
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, box, pos, data FROM raw WHERE code = ?1")?;
        for s in samples {
            let code = format!("RAW{:010}", s.rem_euclid(self.rows.max(1)));
            let t = Instant::now();
            let r: (i64, i64, i64, String) = stmt.query_row([&code], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            out.push(t.elapsed());
            std::hint::black_box(r);
        }
        Ok(out)
    }

    /// `n` transactions of one row update plus one event insert, each committed at FULL.
    pub fn update_and_event(&mut self, n: i64) -> Result<Duration, StoreError> {
        let start = Instant::now();
        for _ in 0..n {
            self.updates += 1;
            let i = self.updates;
            let tx = self.conn.transaction()?;
            tx.prepare_cached("UPDATE raw SET box = ?2, pos = ?3 WHERE id = ?1")?
                .execute(params![i, -1, i])?;
            tx.prepare_cached("INSERT INTO raw_events (at, payload) VALUES (?1, ?2)")?
                .execute(params![i, r#"{"kind":"checked_in","specimen":"RAW0000000001","location":{"container":"BX1","pos":{"row":0,"col":0}}}"#])?;
            tx.commit()?;
        }
        Ok(start.elapsed())
    }
}
