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
        "{} was written by a newer Kura (schema {found}, this build knows up to {known}); update Kura to open it. The file was not changed", path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{} is not a SQLite database (is it the right file?); Kura did not change it", path.display())]
    NotSqlite { path: PathBuf },
    #[error("{} is a SQLite database but not a Kura database; Kura did not change it. Give another file with --db or KURA_DB", path.display())]
    NotKura { path: PathBuf },
    #[error("{} is in use by another Kura window or command, which has held it for more than {seconds} s; finish or close it and try again. Nothing was recorded", path.display())]
    Busy { path: PathBuf, seconds: u64 },
    #[error("the disk holding {} is full (or the file reached its size limit); free some space and try again. Nothing of this action was recorded; everything recorded before is intact", path.display())]
    DiskFull { path: PathBuf },
    #[error("{} is read-only (read-only media or no write permission): Kura can show what is in it but cannot record anything. Copy it to a writable disk, or fix its permissions", path.display())]
    ReadOnly { path: PathBuf },
    #[error("{} can be changed by other users of this computer (mode {mode:o}); it holds custody records, so Kura does not open it. Make it yours alone (chmod 600 {}), then open it again", path.display(), path.display())]
    Unprotected { path: PathBuf, mode: u32 },
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the store is inconsistent: {0}")]
    Corrupt(String),
    #[error("{what} {code:?} is not in this store")]
    NotFound { what: &'static str, code: String },
    #[error(
        "not enough Kura IDs for {year} on this workstation: {wanted} wanted, {left} left of the blocks leased by the registry, {} missing. Connect to the network and sync (Sync now, or kura sync) to lease more; nothing was recorded", .wanted - .left
    )]
    NoSerials { year: i32, wanted: u64, left: u64 },
    #[error(
        "another bench recorded a {kind:?} event that this version of Kura does not know ({message}); update Kura on this workstation to receive it. Nothing of that page was applied"
    )]
    UnknownEvent { kind: String, message: String },
    #[error(
        "the registry sent seq {next} of workstation {workstation} after seq {after} without saying the events between were refused; nothing of that page was applied. Sync again; if this comes back, tell the registry administrator"
    )]
    StreamGap {
        workstation: uuid::Uuid,
        after: u64,
        next: u64,
    },
    #[error(
        "this database came back from a copy and has not synced since: sync first (Sync now, or kura sync) so that it gets back what this workstation recorded after the copy; until then nothing new is recorded here, so no number is used twice. Nothing was recorded"
    )]
    RestoredUnsynced,
    #[error(
        "{} already holds {events} events: a replacement PC is recovered into a new data directory (give another with --db or KURA_DB); nothing was changed", path.display()
    )]
    NotEmpty { path: PathBuf, events: u64 },
    #[error(
        "the registry holds another event as seq {seq} of this workstation than this database does: its history differs from the registry's. Nothing was applied; ask the registry administrator"
    )]
    OwnFork { seq: u64 },
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
            StoreError::NotSqlite { .. } => "store_not_sqlite",
            StoreError::NotKura { .. } => "store_not_kura",
            StoreError::Busy { .. } => "store_busy",
            StoreError::DiskFull { .. } => "disk_full",
            StoreError::ReadOnly { .. } => "store_read_only",
            StoreError::Unprotected { .. } => "store_unprotected",
            StoreError::Io { .. } => "store_io",
            StoreError::Corrupt(_) => "store_corrupt",
            StoreError::NotFound { .. } => "not_found",
            StoreError::NoSerials { .. } => "no_serials_left",
            StoreError::UnknownEvent { .. } => "unknown_event_kind",
            StoreError::StreamGap { .. } => "stream_gap",
            StoreError::RestoredUnsynced => "restored_sync_first",
            StoreError::NotEmpty { .. } => "store_not_empty",
            StoreError::OwnFork { .. } => "sequence_fork",
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
    match e {
        // A file-size limit (EFBIG) comes back as a write I/O error.
        rusqlite::Error::SqliteFailure(f, _) => {
            f.code == rusqlite::ErrorCode::DiskFull
                || f.extended_code == rusqlite::ffi::SQLITE_IOERR_WRITE
        }
        _ => false,
    }
}

impl StoreError {
    /// Names the file in the errors a person can act on: busy, disk full, read-only, not a
    /// database. Other errors are returned as they are.
    pub fn at(self, path: &std::path::Path) -> StoreError {
        let path = path.to_path_buf();
        match self {
            StoreError::Sqlite(e) | StoreError::Migration { source: e, .. } if is_busy(&e) => {
                StoreError::Busy {
                    path,
                    seconds: BUSY_TIMEOUT_MS / 1000,
                }
            }
            StoreError::Sqlite(e) | StoreError::Migration { source: e, .. } if is_full(&e) => {
                StoreError::DiskFull { path }
            }
            StoreError::Sqlite(e) | StoreError::Migration { source: e, .. } if is_read_only(&e) => {
                StoreError::ReadOnly { path }
            }
            StoreError::Sqlite(e) | StoreError::Migration { source: e, .. }
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::NotADatabase)
                ) =>
            {
                StoreError::NotSqlite { path }
            }
            other => other,
        }
    }
}

/// How long a write waits for another connection's write to finish.
pub const BUSY_TIMEOUT_MS: u64 = 5000;

fn is_read_only(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
    )
}
