use std::path::PathBuf;

use kura_domain::RuleError;

/// What can go wrong in the store. `code()` is stable for the UI to translate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration {version} failed: {source}")]
    Migration {
        version: i64,
        source: rusqlite::Error,
    },
    #[error(
        "this database was made by a newer Kura (schema {found}, this build knows up to {known}); update Kura"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the store is inconsistent: {0}")]
    Corrupt(String),
    #[error("{what} {code:?} is not in this store")]
    NotFound { what: &'static str, code: String },
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Rule(r) => r.code(),
            StoreError::Sqlite(e) if is_busy(e) => "store_busy",
            StoreError::Sqlite(e) if is_full(e) => "disk_full",
            StoreError::Sqlite(_) => "store_error",
            StoreError::Migration { .. } => "store_migration",
            StoreError::NewerSchema { .. } => "store_newer_schema",
            StoreError::Io { .. } => "store_io",
            StoreError::Corrupt(_) => "store_corrupt",
            StoreError::NotFound { .. } => "not_found",
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
fn is_full(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DiskFull))
}
