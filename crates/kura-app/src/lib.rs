//! Kura's use cases. The `kura` CLI, the desktop window and the sync engine call this crate and
//! nothing below it: it composes the store (`kura-store`) and the rules (`kura-domain`).

// No panic on input: outside tests, no unwrap/expect/panic; the few that cannot fail say why.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audit;
pub mod backup;
pub mod bench;
pub mod calendar;
mod catalogue;
mod custody;
pub mod demo;
mod error;
pub mod ids;
pub mod import;
pub mod input;
pub mod labels;
pub mod rack;
pub mod register;
pub mod sheets;
pub mod shipping;
pub mod space;
pub mod storage;
pub mod sync;
pub mod transport;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kura_domain::{Clock, EventBody, IdFormat};
use kura_store::{Store, Tx};
use uuid::Uuid;

pub use calendar::Calendar;
pub use custody::{CheckOut, Located, Placed, QueuedForDestruction, Withdrawal};
pub use error::{AppError, WireError};
pub use kura_domain::{Meaning, Purpose, Role, Secret, Timestamp};
pub use kura_store::{
    BoxMap, BoxSlot, ContainerRow, EventRow, FindQuery, LineageNode, RebuildReport, ScanFlags,
    SpecimenView, Stats, VerifyProblem, VerifyReport,
};
pub use kura_store::{ConflictRow, RejectionRow};
pub use kura_sync::Report as SyncReport;
pub use labels::{LabelPreview, PrintReport, PrinterTest, StockInfo};
pub use register::{Choice, RegisterRequest, Registered, Vocabulary};
pub use shipping::{Dispatched, KeyView, Reconciled, ShipForm, ShipmentSummary, Shipped, Taken};
pub use storage::LayoutReport;
pub use sync::{ConflictView, EnrollReport, RecoverReport, SyncOptions, SyncStatus, SyncWorker};
pub use transport::PrinterConfig;
pub use users::{SignatureView, Signing, UserView, Who};

/// Who is working where: what the window's header and settings show.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionInfo {
    pub actor: String,
    pub workstation: String,
    pub database: String,
    /// The site's Kura ID prefix (None until the database is set up).
    pub id_prefix: Option<String>,
    /// The site's time zone (an IANA name), in which due dates and "today" are dates.
    pub time_zone: String,
    /// Whether that zone was chosen for the site (false: it follows this computer's).
    pub time_zone_set: bool,
    /// Today's date at the site, `YYYY-MM-DD`.
    pub today: String,
    /// This start created the database (there was no file): the window says where.
    pub created: bool,
}

/// Creates (or empties) a file only its owner can read: what Kura writes holds donors' IDs,
/// custody and signatures (reports, exports).
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o.open(path)?;
    // An existing file keeps its mode through open: make it the owner's too.
    #[cfg(unix)]
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(f)
}

/// The system clock: the only place Kura reads the time of day.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(chrono::Utc::now())
    }
}

/// Where the default database lives: the user's data directory.
pub fn default_db_path() -> PathBuf {
    directories::ProjectDirs::from("jp", "Kura", "kura")
        .map(|d| d.data_dir().join("kura.sqlite3"))
        .unwrap_or_else(|| PathBuf::from("kura.sqlite3"))
}

/// Progress of long work: (done, total).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// One step of long work as the window's progress bar receives it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Progressed {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub done: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub total: u64,
}

/// Where the window suggests writing an export: the user's documents folder (else home, else
/// beside the database).
pub fn default_export_dir() -> PathBuf {
    directories::UserDirs::new()
        .and_then(|u| {
            u.document_dir()
                .map(Path::to_path_buf)
                .or_else(|| Some(u.home_dir().to_path_buf()))
        })
        .unwrap_or_else(|| {
            default_db_path()
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        })
}

/// An open Kura database, acting for one person.
pub struct Kura {
    store: Store,
    clock: Arc<dyn Clock>,
    calendar: Calendar,
    actor: String,
    print_timeouts: transport::Timeouts,
    /// Who is signed in (a secured database: see `users`).
    session: Option<users::Session>,
    idle_secs: u64,
    /// Set by `set_idle` (tests): the site's idle setting is then not read.
    idle_fixed: bool,
    /// A signer re-authenticated for the next write only (`arm_signature`): the signed acts it
    /// makes are signed by them.
    pub(crate) armed: Option<users::Signer>,
    /// This database was seen to have users (it always will).
    pub(crate) secured_seen: std::sync::atomic::AtomicBool,
    /// When a read last found it without users (`users::may_read`).
    pub(crate) open_checked: std::sync::Mutex<Option<std::time::Instant>>,
    /// Opening created the database file (there was none).
    created: bool,
    /// A day's use of Kura IDs as the status last counted it, and when (`sync::day_use_recent`).
    pub(crate) day_use_seen: std::sync::Mutex<Option<(std::time::Instant, u64)>>,
}

impl Kura {
    /// Opens (creating if needed) the database at `path`, acting as `actor`: for what creates a
    /// database (`kura init`, `kura demo`, the window's first start).
    pub fn open(path: impl AsRef<Path>, actor: &str) -> Result<Kura, AppError> {
        Kura::open_with_clock(path, actor, Arc::new(SystemClock))
    }

    /// Opens the database at `path`, which must exist: a mistyped path is `store_missing`, never
    /// a new empty database (nor its folders).
    pub fn open_existing(path: impl AsRef<Path>, actor: &str) -> Result<Kura, AppError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(AppError::StoreMissing {
                path: path.display().to_string(),
            });
        }
        Kura::open(path, actor)
    }

    pub fn open_with_clock(
        path: impl AsRef<Path>,
        actor: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Kura, AppError> {
        let actor = input::text("actor", actor, 64)?;
        let created = !path.as_ref().exists();
        let store = Store::open(path, Uuid::now_v7)?;
        let calendar = match store.meta(calendar::META_KEY)? {
            Some(name) => Calendar::named(&name).unwrap_or_else(|e| {
                tracing::warn!(
                    "the site's time zone setting is unusable ({e}); using the system's"
                );
                Calendar::system()
            }),
            None => Calendar::system(),
        };
        let idle_secs = store
            .meta(users::IDLE_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(users::DEFAULT_IDLE_SECS);
        Ok(Kura {
            store,
            clock,
            calendar,
            actor,
            print_timeouts: transport::Timeouts::default(),
            session: None,
            idle_secs,
            idle_fixed: false,
            armed: None,
            secured_seen: std::sync::atomic::AtomicBool::new(false),
            open_checked: std::sync::Mutex::new(None),
            day_use_seen: std::sync::Mutex::new(None),
            created,
        })
    }

    pub fn path(&self) -> &Path {
        self.store.path()
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// How long to wait on printers (tests shorten it).
    pub fn set_print_timeouts(&mut self, t: transport::Timeouts) {
        self.print_timeouts = t;
    }

    pub(crate) fn print_timeouts(&self) -> transport::Timeouts {
        self.print_timeouts
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The site's calendar: what dates instants fall on, and how typed times are read.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// Today's date at the site.
    pub fn today(&self) -> chrono::NaiveDate {
        self.calendar.date(self.now())
    }

    /// Sets the site's time zone (`None`: follow this computer's). Returns the zone now in use.
    pub fn set_time_zone(&mut self, name: Option<&str>) -> Result<String, AppError> {
        self.authorize(users::Act::Settings)?;
        // A blank name means the same as none: follow this computer's zone.
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        let calendar = match name {
            Some(n) => Calendar::named(n)?,
            None => Calendar::system(),
        };
        let stored = name.is_some().then(|| calendar.name().to_string());
        self.store.write(|tx| -> Result<(), AppError> {
            match &stored {
                Some(n) => tx.set_meta(calendar::META_KEY, n)?,
                None => tx.delete_meta(calendar::META_KEY)?,
            }
            Ok(())
        })?;
        self.calendar = calendar;
        Ok(self.calendar.name().to_string())
    }

    pub fn workstation(&self) -> Uuid {
        self.store.workstation()
    }

    /// Sets how this site issues Kura IDs. Run once on a new database: one that holds custody
    /// events, or is enrolled (its prefix is its site's), is refused (`store_exists`).
    pub fn init(&mut self, prefix: &str, serial_width: usize) -> Result<IdFormat, AppError> {
        self.authorize(users::Act::Settings)?;
        let path = self.path().display().to_string();
        if self.store.sync_state()?.registry_url.is_some() {
            let prefix = self.id_format().map(|f| f.prefix).unwrap_or_default();
            return Err(AppError::StoreExists {
                path,
                why: format!(
                    "enrolled with the central registry; its Kura IDs are its site's ({prefix}…)"
                ),
            });
        }
        let events = self.store.events_logged()?;
        if events > 0 {
            let prefix = self
                .id_format()
                .map(|f| format!(", IDs {}…", f.prefix))
                .unwrap_or_default();
            return Err(AppError::StoreExists {
                path,
                why: format!(
                    "{events} custody event{}{prefix}",
                    if events == 1 { "" } else { "s" }
                ),
            });
        }
        self.set_id_format(prefix, serial_width)
    }

    /// Writes the ID format (init, or the site's at enrollment).
    pub(crate) fn set_id_format(
        &mut self,
        prefix: &str,
        serial_width: usize,
    ) -> Result<IdFormat, AppError> {
        let f = IdFormat::new(prefix, serial_width)?;
        let json =
            serde_json::to_string(&f).map_err(|e| AppError::input("prefix", e.to_string()))?;
        self.store
            .write(|tx| -> Result<(), AppError> { Ok(tx.set_meta("id_format", &json)?) })?;
        Ok(f)
    }

    pub fn is_initialised(&self) -> Result<bool, AppError> {
        Ok(self.store.meta("id_format")?.is_some())
    }

    pub fn id_format(&self) -> Result<IdFormat, AppError> {
        let s = self
            .store
            .meta("id_format")?
            .ok_or(AppError::NotInitialised)?;
        serde_json::from_str(&s).map_err(|e| {
            AppError::Store(kura_store::StoreError::Corrupt(format!("id_format: {e}")))
        })
    }

    pub fn session_info(&self) -> Result<SessionInfo, AppError> {
        let id_prefix = if self.is_initialised()? {
            Some(self.id_format()?.prefix)
        } else {
            None
        };
        Ok(SessionInfo {
            actor: self.actor.clone(),
            workstation: self.workstation().to_string(),
            database: self.path().display().to_string(),
            id_prefix,
            time_zone: self.calendar.name().to_string(),
            time_zone_set: self.store.meta(calendar::META_KEY)?.is_some(),
            today: self.today().to_string(),
            created: self.created,
        })
    }

    pub fn stats(&self) -> Result<Stats, AppError> {
        Ok(self.store.stats()?)
    }

    /// The whole log and the projection (`kura verify --full`).
    pub fn verify(&self, progress: Progress<'_>) -> Result<VerifyReport, AppError> {
        self.verify_from(true, progress)
    }

    /// With `full`, [`Kura::verify`]; without, from the last verified point (see
    /// [`kura_store::Store::verify_from`]). Neither holds a lock on the database meanwhile.
    pub fn verify_from(
        &self,
        full: bool,
        progress: Progress<'_>,
    ) -> Result<VerifyReport, AppError> {
        self.may_read()?;
        Ok(self.store.verify_from(full, progress)?)
    }

    /// [`Kura::verify_from`], and with a full check SQLite's own check of every page
    /// ([`Kura::integrity_check`]) beside it on a thread of its own: the verify is one core's
    /// work, and the page check cost it another 18 % of its time at 10 M specimens when it ran
    /// after. The page check's answer is `None` when the check was not full.
    pub fn verify_with_integrity(
        &self,
        full: bool,
        progress: Progress<'_>,
    ) -> Result<(VerifyReport, Option<String>), AppError> {
        self.may_read()?;
        // Without a verified point the check is full anyway: say so before it starts.
        let full = full || self.store.verified_point()?.is_none();
        let pages = full.then(|| {
            let path = self.path().to_path_buf();
            std::thread::spawn(move || kura_store::integrity_check_at(&path))
        });
        let report = self.store.verify_from(full, progress);
        let integrity = match pages {
            Some(h) => Some(h.join().map_err(|_| {
                AppError::from(kura_store::StoreError::Corrupt(
                    "SQLite's page check stopped unexpectedly".into(),
                ))
            })??),
            None => None,
        };
        Ok((report?, integrity))
    }

    pub fn rebuild(&mut self, progress: Progress<'_>) -> Result<RebuildReport, AppError> {
        self.may_read()?;
        Ok(self.store.rebuild(progress)?)
    }

    pub fn integrity_check(&self) -> Result<String, AppError> {
        Ok(self.store.integrity_check()?)
    }

    /// Writes the WAL back into the main file.
    pub fn checkpoint(&self) -> Result<(), AppError> {
        Ok(self.store.checkpoint()?)
    }

    /// Hands `f` every statement this `Kura` starts on its database, or stops (`None`): the
    /// query-plan guard (`tests/plans.rs`) sees with it what the window's calls ask of SQLite.
    pub fn trace_statements(
        &mut self,
        f: Option<kura_store::StatementSink>,
    ) -> Result<(), AppError> {
        Ok(self.store.trace_statements(f)?)
    }

    /// Runs `f` in one transaction with an [`Emit`] that appends events as this actor.
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnOnce(&mut Emit<'_, '_>) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        // A secured database: only a signed-in user acts, as themselves, within their role.
        // The signature armed for this write, used by it or not at all.
        let signer = self.armed.take();
        let auth = self.auth()?;
        let clock = self.clock.clone();
        let calendar = self.calendar.clone();
        let actor = auth
            .as_ref()
            .map(|a| a.user.clone())
            .unwrap_or_else(|| self.actor.clone());
        let path = self.store.path().to_path_buf();
        self.store
            .write(|tx| {
                let mut e = Emit {
                    tx,
                    clock: &*clock,
                    calendar: &calendar,
                    actor: &actor,
                    auth: auth.as_ref(),
                    ids: &mut RandomIds,
                    id_format: None,
                    signer: signer.as_ref(),
                    signed: Vec::new(),
                };
                f(&mut e)
            })
            // A full disk, a lock held too long, read-only media: say which file.
            .map_err(|e| match e {
                AppError::Store(s) => AppError::Store(s.at(&path)),
                other => other,
            })
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}

/// Makes event ids: UUIDv7 from the clock's time plus random bits.
pub(crate) trait EventIds {
    fn next(&mut self, at: Timestamp) -> Uuid;
}

pub(crate) struct RandomIds;

impl EventIds for RandomIds {
    fn next(&mut self, at: Timestamp) -> Uuid {
        let r = Uuid::new_v4();
        let mut bytes = [0u8; 10];
        bytes.copy_from_slice(&r.as_bytes()[..10]);
        uuid::Builder::from_unix_timestamp_millis(at.millis(), &bytes).into_uuid()
    }
}

/// The write side handed to use cases: a transaction plus who and when.
pub(crate) struct Emit<'t, 'c> {
    pub tx: &'t mut Tx<'c>,
    pub clock: &'t dyn Clock,
    pub calendar: &'t Calendar,
    pub actor: &'t str,
    /// The signed-in user (None: a database without users).
    pub auth: Option<&'t users::Auth>,
    pub ids: &'t mut dyn EventIds,
    /// The site's ID format, read once per transaction.
    pub id_format: Option<IdFormat>,
    /// Who signs the signed acts of this transaction (armed before it began).
    pub signer: Option<&'t users::Signer>,
    /// The signatures made in this transaction, in order.
    pub signed: Vec<users::SignatureView>,
}

impl Emit<'_, '_> {
    /// Appends an event as the acting user, within their role; on a database with users, a
    /// signed act (disposal, storage layout, conflict resolution, user administration, consent
    /// withdrawal, audit export) is signed by the armed signer in the same transaction, or
    /// refused with `signature_required`.
    pub fn emit(&mut self, body: EventBody) -> Result<kura_domain::Event, AppError> {
        let at = self.clock.now();
        self.emit_at(body, at)
    }

    fn emit_at(&mut self, body: EventBody, at: Timestamp) -> Result<kura_domain::Event, AppError> {
        let mut sign = None;
        if let Some(a) = self.auth {
            users::check(a, &body)?;
            if let Some(act) = users::signed_act_of(&body, &a.user) {
                if self.signer.is_none() {
                    return Err(AppError::SignatureRequired { act });
                }
                sign = Some(act);
            }
        }
        let id = self.ids.next(at);
        let ev = self.tx.append(id, self.actor, at, body)?;
        if let Some(act) = sign {
            self.sign_armed(ev.id, act)?;
        }
        Ok(ev)
    }

    /// Signs `event` by the armed signer (`signature_required` without one), unless this
    /// transaction signed it already. Returns the signature.
    pub fn sign_armed(
        &mut self,
        event: uuid::Uuid,
        act: users::Act,
    ) -> Result<users::SignatureView, AppError> {
        if let Some(v) = self.signed.iter().find(|v| v.event == event) {
            return Ok(v.clone());
        }
        let s = self.signer.ok_or(AppError::SignatureRequired { act })?;
        let v = self.sign(event, s)?;
        self.signed.push(v.clone());
        Ok(v)
    }

    /// Signs the event `event` (recorded earlier in this transaction or before): a `signed`
    /// event bound to its hash, carrying the signer's Ed25519 signature over that hash, the
    /// meaning and the `signed` event's own time.
    pub fn sign(
        &mut self,
        event: uuid::Uuid,
        signer: &users::Signer,
    ) -> Result<users::SignatureView, AppError> {
        let event_hash = self
            .tx
            .event_hash(event)?
            .ok_or(AppError::NotFound {
                what: "event",
                code: event.to_string(),
            })?
            .to_string();
        let (name, meaning) = (signer.name.as_str(), signer.meaning);
        let at = self.clock.now();
        let signature = signer
            .key
            .as_ref()
            .map(|k| k.sign(&kura_domain::sign::message(&event_hash, meaning, at.0)));
        let signer = signer.user.as_str();
        let sig = self.emit_at(
            EventBody::Signed {
                event,
                event_hash: event_hash.clone(),
                signer: signer.to_string(),
                name: name.to_string(),
                meaning,
                signature,
            },
            at,
        )?;
        Ok(users::SignatureView {
            event,
            event_hash,
            signer: signer.to_string(),
            name: name.to_string(),
            meaning: meaning.as_str().to_string(),
            at: sig.at.0,
        })
    }
}

#[cfg(test)]
mod tests {
    /// The desktop shell keeps a `Kura` in its managed state, shared across threads.
    #[test]
    fn kura_can_move_between_threads() {
        fn is_send<T: Send>() {}
        is_send::<super::Kura>();
    }
}
