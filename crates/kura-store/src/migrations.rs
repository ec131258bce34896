//! Embedded, append-only schema migrations. Each runs in one transaction together with the row
//! that records it, so a database is never left half-migrated.

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// (version, name, SQL). Released entries are never edited or reordered.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "custody", include_str!("migrations/0001_custody.sql")),
    (
        2,
        "print_log",
        include_str!("migrations/0002_print_log.sql"),
    ),
];

pub fn migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        )",
    )?;
    let current: i64 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > known {
        return Err(StoreError::NewerSchema {
            found: current,
            known,
        });
    }
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql).map_err(|e| StoreError::Migration {
            version: *version,
            source: e,
        })?;
        tx.execute(
            "INSERT INTO schema_migrations(version, name) VALUES (?1, ?2)",
            rusqlite::params![version, name],
        )?;
        tx.commit()?;
        tracing::info!(version, name, "applied migration");
        applied += 1;
    }
    Ok(applied)
}
