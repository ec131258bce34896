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
    (
        3,
        "due_index",
        include_str!("migrations/0003_due_index.sql"),
    ),
    (
        4,
        "sync_state",
        include_str!("migrations/0004_sync_state.sql"),
    ),
    (
        5,
        "registry_order",
        include_str!("migrations/0005_registry_order.sql"),
    ),
    (6, "users", include_str!("migrations/0006_users.sql")),
    (
        7,
        "signatures",
        include_str!("migrations/0007_signatures.sql"),
    ),
    (
        8,
        "withdrawals",
        include_str!("migrations/0008_withdrawals.sql"),
    ),
    (
        9,
        "open_conflicts",
        include_str!("migrations/0009_open_conflicts.sql"),
    ),
    (
        10,
        "order_relearn",
        include_str!("migrations/0010_order_relearn.sql"),
    ),
    (11, "restored", include_str!("migrations/0011_restored.sql")),
    (
        12,
        "placed_at",
        include_str!("migrations/0012_placed_at.sql"),
    ),
    (
        13,
        "signing_keys",
        include_str!("migrations/0013_signing_keys.sql"),
    ),
    (
        14,
        "shipments",
        include_str!("migrations/0014_shipments.sql"),
    ),
    (15, "bundles", include_str!("migrations/0015_bundles.sql")),
    (16, "parcels", include_str!("migrations/0016_parcels.sql")),
];

/// The newest migration this build knows.
pub fn known() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// The schema version of the open database (0: new), refusing foreign and newer files: a file
/// with tables but no `schema_migrations` is SQLite but not Kura's.
pub fn current(conn: &Connection, path: &std::path::Path) -> Result<i64, StoreError> {
    let (tables, has): (i64, i64) = conn.query_row(
        "SELECT count(*), count(*) FILTER (WHERE name = 'schema_migrations')
         FROM sqlite_master WHERE type = 'table'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if tables > 0 && has == 0 {
        return Err(StoreError::NotKura {
            path: path.to_path_buf(),
        });
    }
    let current: i64 = if has == 0 {
        0
    } else {
        conn.query_row(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?
    };
    if current > known() {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: current,
            known: known(),
        });
    }
    Ok(current)
}

/// Applies the migrations after `current` (as [`current`] read it).
pub fn migrate(conn: &mut Connection, current: i64) -> Result<usize, StoreError> {
    if current == known() {
        return Ok(0);
    }
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        )",
    )?;
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
