//! Bench backups: a consistent copy of the database taken while Kura runs, checked with
//! `verify` before it counts, named by time and workstation, with the registry token beside it;
//! and the restore of one onto a new file, which refuses a copy that fails `verify`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{AppError, Kura, create_private, sync::token_path};

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub path: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub events: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub specimens: u64,
    /// The registry token was copied beside it (an enrolled bench).
    pub token: bool,
    /// Older backups of this workstation removed by `--keep`.
    pub removed: Vec<String>,
    /// The backup folder is on the same disk as the database: it will not survive that disk.
    pub same_disk: bool,
}

/// The newest backup of this database, as Settings shows it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LastBackup {
    /// When it was taken (µs).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub at: i64,
    pub path: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub events: u64,
    /// On the same disk as the database: it will not survive that disk.
    pub same_disk: bool,
}

/// Where the window's daily backups go and how many it keeps; the newest one.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupSettings {
    pub dir: String,
    pub keep: u32,
    pub last: Option<LastBackup>,
    /// No backup in the last day (or never): the next check takes one.
    pub due: bool,
}

const META_LAST: &str = "backup:last";
const META_DIR: &str = "backup:dir";
/// How many daily backups the window keeps by default (two weeks).
pub const DEFAULT_KEEP: u32 = 14;
/// A day, in µs: the window takes a backup when the newest is older.
pub const DAILY_US: i64 = 24 * 3600 * 1_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub path: String,
    pub events: u64,
    pub specimens: u64,
    pub token: bool,
    /// Serials left in the copy's leases, burned: the bench may have issued them after the copy
    /// was taken, so its next IDs come from a new lease (asked at the next sync).
    pub burned: u64,
    /// The copy issues IDs from its own counter (never enrolled): IDs issued after the copy was
    /// taken cannot be known here and may be issued again.
    pub unenrolled: bool,
    /// Enrolled: nothing is recorded until the first sync has brought back what this
    /// workstation recorded after the copy.
    pub sync_first: bool,
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> AppError {
    AppError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Runs `verify` on `store` (no session needed: it reads the file, not a person's view of it);
/// an error naming the backup `named` unless it passes.
fn verified(
    store: &mut kura_store::Store,
    named: &Path,
) -> Result<kura_store::VerifyReport, AppError> {
    let report = store.verify(&mut |_, _| {})?;
    if !report.ok() {
        return Err(AppError::BackupInvalid {
            path: named.display().to_string(),
            problems: report.problems.len(),
            first: format!("{:?}", report.problems[0]),
        });
    }
    Ok(report)
}

fn copy_private(from: &Path, to: &Path) -> Result<(), AppError> {
    let mut src = std::fs::File::open(from).map_err(|e| file_err(from, e))?;
    let mut dst = create_private(to).map_err(|e| file_err(to, e))?;
    std::io::copy(&mut src, &mut dst).map_err(|e| file_err(to, e))?;
    dst.sync_all().map_err(|e| file_err(to, e))
}

/// Removes what SQLite keeps beside a database file (its WAL, shared memory, journal).
fn remove_sidecars(path: &Path) {
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::fs::remove_file(PathBuf::from(p)).ok();
    }
}

fn remove_db_files(path: &Path) {
    std::fs::remove_file(path).ok();
    remove_sidecars(path);
}

#[cfg(unix)]
fn same_disk(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_disk(_: &Path, _: &Path) -> bool {
    false
}

impl Kura {
    /// Writes a backup of this database into `dir` (created if missing) as
    /// `kura-<UTC time>-<workstation>.sqlite3`, checks it with `verify`, copies the registry token
    /// beside it and, with `keep`, removes this workstation's older backups beyond the newest
    /// `keep`. It records nothing: any signed-in person or none (a service) may take one.
    pub fn backup(&self, dir: &Path, keep: Option<usize>) -> Result<BackupReport, AppError> {
        std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
        let ws = self.workstation().simple().to_string();
        let ws = &ws[..8];
        let at = chrono::DateTime::from_timestamp_micros(self.now().0)
            .unwrap_or_default()
            .format("%Y%m%dT%H%M%S%.6fZ");
        let name = format!("kura-{at}-{ws}.sqlite3");
        let path = dir.join(&name);
        let partial = dir.join(format!("{name}.partial"));
        remove_db_files(&partial);
        self.store().backup_into(&partial)?;
        #[cfg(unix)]
        std::fs::set_permissions(
            &partial,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .map_err(|e| file_err(&partial, e))?;
        let checked =
            kura_store::Store::open_existing(&partial).map(|mut s| verified(&mut s, &partial));
        let report = match checked {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                remove_db_files(&partial);
                return Err(e);
            }
            Err(e) => {
                remove_db_files(&partial);
                return Err(e.into());
            }
        };
        // The check closed its connection (its WAL folded back): only the file itself is kept.
        remove_sidecars(&partial);
        std::fs::rename(&partial, &path).map_err(|e| file_err(&path, e))?;
        let token = token_path(self.path());
        let has_token = token.exists();
        if has_token {
            copy_private(&token, &token_path(&path))?;
        }
        let mut removed = Vec::new();
        if let Some(keep) = keep {
            let suffix = format!("-{ws}.sqlite3");
            let mut mine: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| file_err(dir, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("kura-") && n.ends_with(&suffix))
                })
                .collect();
            mine.sort();
            let extra = mine.len().saturating_sub(keep.max(1));
            for old in mine.into_iter().take(extra) {
                remove_db_files(&old);
                std::fs::remove_file(token_path(&old)).ok();
                removed.push(old.display().to_string());
            }
        }
        let db_dir = self.path().parent().unwrap_or(Path::new("."));
        Ok(BackupReport {
            path: path.display().to_string(),
            events: report.events,
            specimens: report.specimens,
            token: has_token,
            removed,
            same_disk: same_disk(dir, db_dir),
        })
    }

    /// Where daily backups go: the folder set in Settings, else `backups` beside the database.
    pub fn backup_settings(&self) -> Result<BackupSettings, AppError> {
        let dir = match self.store().meta(META_DIR)? {
            Some(d) => d,
            None => self
                .path()
                .parent()
                .unwrap_or(Path::new("."))
                .join("backups")
                .display()
                .to_string(),
        };
        let last: Option<LastBackup> = self
            .store()
            .meta(META_LAST)?
            .and_then(|j| serde_json::from_str(&j).ok());
        let due = last
            .as_ref()
            .is_none_or(|l| self.now().0 - l.at >= DAILY_US);
        Ok(BackupSettings {
            dir,
            keep: DEFAULT_KEEP,
            last,
            due,
        })
    }

    /// Sets the folder daily backups go to (another disk, ideally); blank for the default.
    pub fn set_backup_dir(&mut self, dir: &str) -> Result<BackupSettings, AppError> {
        self.authorize(crate::users::Act::Settings)?;
        let dir = dir.trim();
        if !dir.is_empty() && !Path::new(dir).is_absolute() {
            return Err(AppError::input(
                "dir",
                format!("{dir:?} is not a full path to a folder (e.g. /media/backup/kura)"),
            ));
        }
        self.store_mut().write(|tx| -> Result<(), AppError> {
            if dir.is_empty() {
                tx.delete_meta(META_DIR)?;
            } else {
                tx.set_meta(META_DIR, dir)?;
            }
            Ok(())
        })?;
        self.backup_settings()
    }

    /// Takes a backup into the Settings folder, keeping the newest [`DEFAULT_KEEP`], and
    /// remembers it as the newest.
    pub fn backup_now(&mut self) -> Result<BackupReport, AppError> {
        let s = self.backup_settings()?;
        let r = self.backup(Path::new(&s.dir), Some(s.keep as usize))?;
        self.remember_backup(&r)?;
        Ok(r)
    }

    /// A backup if none was taken in the last day (the window checks now and then).
    pub fn backup_if_due(&mut self) -> Result<Option<BackupReport>, AppError> {
        if !self.backup_settings()?.due {
            return Ok(None);
        }
        self.backup_now().map(Some)
    }

    /// Records `r` as this database's newest backup (Settings shows it).
    pub fn remember_backup(&mut self, r: &BackupReport) -> Result<(), AppError> {
        let last = LastBackup {
            at: self.now().0,
            path: r.path.clone(),
            events: r.events,
            same_disk: r.same_disk,
        };
        let json =
            serde_json::to_string(&last).map_err(|e| AppError::input("backup", e.to_string()))?;
        self.store_mut()
            .write(|tx| -> Result<(), AppError> { Ok(tx.set_meta(META_LAST, &json)?) })
    }

    /// Restores the backup `file` as the database `db` (a new file: a restore never overwrites
    /// one), with its registry token; a copy that fails `verify` is refused and nothing is left.
    pub fn restore(file: &Path, db: &Path) -> Result<RestoreReport, AppError> {
        if !file.exists() {
            return Err(AppError::StoreMissing {
                path: file.display().to_string(),
            });
        }
        if db.exists() {
            return Err(AppError::RestoreOver {
                path: db.display().to_string(),
            });
        }
        if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| file_err(parent, e))?;
        }
        copy_private(file, db)?;
        // One connection checks the copy and then burns its leases.
        let mut store = match kura_store::Store::open_existing(db) {
            Ok(s) => s,
            Err(e) => {
                remove_db_files(db);
                return Err(e.into());
            }
        };
        let report = match verified(&mut store, file) {
            Ok(r) => r,
            Err(e) => {
                drop(store);
                remove_db_files(db);
                return Err(e);
            }
        };
        let token = token_path(file);
        let has_token = token.exists();
        if has_token {
            copy_private(&token, &token_path(db))?;
        }
        let unenrolled = store.sync_state()?.registry_url.is_none();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let burned = store.write(|tx| {
            let burned = tx.burn_leases()?;
            // What this workstation recorded after the copy is at the registry: nothing new is
            // recorded here before a sync has brought it back (no seq written twice).
            if !unenrolled {
                tx.mark_restored(now)?;
            }
            Ok::<_, kura_store::StoreError>(burned)
        })?;
        Ok(RestoreReport {
            path: db.display().to_string(),
            events: report.events,
            specimens: report.specimens,
            token: has_token,
            burned,
            unenrolled,
            sync_first: !unenrolled,
        })
    }
}
