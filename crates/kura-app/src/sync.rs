//! Sync with the central registry, as use cases: enroll this workstation, run a round, the
//! background worker the window keeps, the status every face shows, conflicts and how a person
//! settles one. The engine (`kura-sync`) opens its own connection to the database: network IO
//! never holds this `Kura`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kura_domain::{Clock, EventBody, Outcome, RuleError};
use kura_store::{EventRow, StoreError};
use kura_sync::{Config, Engine, Http, Phase, Report, SyncError, Timeouts};
use serde::Serialize;
use uuid::Uuid;

use crate::{AppError, Kura, SystemClock};

/// What an enrollment did.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct EnrollReport {
    pub registry: String,
    pub site: String,
    pub site_name: String,
    /// The prefix of the Kura IDs this workstation issues from now on.
    pub prefix: String,
    pub workstation: String,
    pub lease_year: i32,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub lease_first: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub lease_last: u64,
    /// Kura IDs this database issued before it was enrolled (outside the registry's leases).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub issued_before: u64,
    /// SHA-256 of the CA certificate given with --ca, to compare with what the registry's
    /// administrator read out (`kura-registry tls generate` prints it).
    pub ca_fingerprint: Option<String>,
}

/// An enrollment checked and ready to send.
pub struct Enrollment {
    base: String,
    ca: Option<PathBuf>,
    /// The CA's fingerprint, read before the code is spent.
    ca_fingerprint: Option<String>,
    req: kura_proto::EnrollRequest,
}

/// What `kura recover` did.
#[derive(Debug, Clone, Serialize)]
pub struct RecoverReport {
    #[serde(flatten)]
    pub enrolled: EnrollReport,
    /// The dead bench's events the registry had acknowledged (up to this seq of its stream):
    /// everything it recorded after its last sync is gone.
    pub acknowledged: u64,
    /// When the registry last heard from it (µs).
    pub last_seen: Option<i64>,
    /// Of its events, how many came back here.
    pub recovered: u64,
    /// Every event now here (its own and the site's).
    pub events: u64,
    /// The first sync did not finish (the network): run kura sync; nothing is recorded here
    /// until one has.
    pub sync_error: Option<String>,
}

/// The registry's answer to an enrollment (the token travels inside, never shown).
pub struct Enrolled(kura_proto::EnrollResponse);

impl Enrollment {
    /// Sends it (network IO; holds nothing of the database).
    pub fn send(&self) -> Result<Enrolled, AppError> {
        let r = run(kura_sync::enroll(
            &self.base,
            self.ca.as_deref(),
            Timeouts::default(),
            &self.req,
        ))?
        .map_err(SyncError::from)?;
        Ok(Enrolled(r))
    }
}

/// How patient one round is (tests shorten it).
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    pub timeout: Option<Duration>,
    pub attempts: Option<u32>,
    /// How many pulled events one transaction applies (default: the engine's). The window's
    /// worker takes fewer, so that a scan never waits long behind one.
    pub apply_chunk: Option<usize>,
}

/// Where this workstation stands with the registry: what the window's indicator and
/// `kura sync status` show.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    pub enrolled: bool,
    /// `not_enrolled`, `online`, `offline`, `error`, `stopped` (a fork), or `syncing`.
    pub state: String,
    pub registry: Option<String>,
    pub site: Option<String>,
    /// This workstation's events the registry has not answered yet.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub waiting: u64,
    /// UTC microseconds.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub last_success: Option<i64>,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub last_attempt: Option<i64>,
    pub last_error_code: Option<String>,
    pub last_error: Option<String>,
    /// Events of this workstation the registry kept as rejections.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub rejections: u64,
    /// Open conflicts.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub conflicts: u64,
    /// Incoming shipments with tubes still on the way (the header counts them).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub incoming: u64,
    /// This workstation's clock minus the registry's, at the last push (ms).
    pub clock_skew_ms: Option<f64>,
    /// Kura IDs left for this year in the leases (None: not enrolled, IDs from the local counter).
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub ids_left: Option<u64>,
    /// IDs issued here in the last 24 hours (at least 50): a day's worth.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub ids_per_day: u64,
    /// Fewer than a day's worth left.
    pub ids_low: bool,
    /// The size of the next lease this bench asks for: a week at its recent rate, at least a
    /// default lease.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub lease_size: u64,
    /// Below this many IDs left, a sync round asks for another lease.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub lease_low: u64,
    /// Why pushing stopped (a sequence fork), until an administrator looks.
    pub stopped: Option<String>,
    /// A round in flight (the window's worker): what it is doing.
    pub phase: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub phase_done: Option<u64>,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub phase_total: Option<u64>,
}

/// A conflict with both events, for showing side by side.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct ConflictView {
    pub subject: String,
    pub code: String,
    pub message: String,
    /// The event the rules refused (the later one in the site's order).
    pub refused: Option<EventRow>,
    /// The earlier event it disagrees with, whose effect stands.
    pub other: Option<EventRow>,
    pub resolved_by: Option<String>,
}

/// A day in microseconds.
const DAY_US: i64 = 86_400_000_000;

/// When a bench asks for serials and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeasePolicy {
    /// Below this many left, a round asks for another lease: two days at the recent rate, at
    /// least 500.
    pub low: u64,
    /// The size of a lease: a week at the recent rate, at least a default lease
    /// ([`kura_proto::DEFAULT_LEASE`]), at most what one request may ask
    /// ([`kura_proto::MAX_LEASE`]).
    pub size: u64,
}

/// The lease policy for a bench that issued `per_day` IDs in the last 24 hours.
pub fn lease_policy(per_day: u64) -> LeasePolicy {
    LeasePolicy {
        low: per_day.saturating_mul(2).max(500),
        size: per_day
            .saturating_mul(7)
            .clamp(kura_proto::DEFAULT_LEASE, kura_proto::MAX_LEASE),
    }
}

fn run<F: std::future::Future>(f: F) -> Result<F::Output, AppError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::File {
            path: "tokio runtime".into(),
            message: e.to_string(),
        })?;
    Ok(rt.block_on(f))
}

/// The token file next to the database, owner-only.
pub(crate) fn token_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".token");
    PathBuf::from(p)
}

fn write_secret(path: &Path, secret: &str) -> Result<(), AppError> {
    use std::io::Write;
    let err = |e: std::io::Error| AppError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
    }
    f.write_all(secret.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bench".to_string())
}

impl Kura {
    /// Enrolls this workstation with the registry at `url` using a one-time `code`: stores
    /// where the registry is, the token (in a file next to the database, owner-only), the
    /// site and the first lease of serials. The database takes the site's ID format.
    pub fn enroll(
        &mut self,
        code: &str,
        url: &str,
        ca: Option<&Path>,
        name: Option<&str>,
        insecure_http: bool,
    ) -> Result<EnrollReport, AppError> {
        let e = self.prepare_enrollment(code, url, ca, name, insecure_http)?;
        let answer = e.send()?;
        self.complete_enrollment(e, answer)
    }

    /// A replacement PC takes over a dead bench's identity: `code` was made with
    /// `kura-registry enroll --replaces WORKSTATION`. Only into a database with no events; the
    /// old PC's token stops working. The first sync brings back the workstation's own stream and
    /// the site's, and the projection is built from them; nothing is recorded before it has.
    pub fn recover(
        &mut self,
        code: &str,
        url: &str,
        ca: Option<&Path>,
        name: Option<&str>,
        insecure_http: bool,
        progress: &mut dyn FnMut(&str, u64, u64),
    ) -> Result<RecoverReport, AppError> {
        let held = self.store().stats()?.events;
        if held > 0 {
            return Err(StoreError::NotEmpty {
                path: self.path().to_path_buf(),
                events: held as u64,
            }
            .into());
        }
        let mut e = self.prepare_enrollment(code, url, ca, name, insecure_http)?;
        e.req.recover = true;
        let answer = e.send()?;
        let replaced = answer.0.replaced.ok_or_else(|| {
            AppError::Sync(SyncError::Protocol(
                "the registry enrolled this PC as a new workstation instead of the one the code replaces; upgrade the registry".into(),
            ))
        })?;
        self.store_mut().take_identity(answer.0.workstation)?;
        let enrolled = self.complete_enrollment(e, answer)?;
        let now = self.now().0;
        self.store_mut().write(|tx| tx.mark_restored(now))?;
        tracing::warn!(
            workstation = %enrolled.workstation,
            acknowledged = replaced.head,
            "took over a workstation as its replacement PC"
        );
        let round = self.sync(SyncOptions::default(), progress);
        let (recovered, sync_error) = match round {
            Ok(r) => (r.recovered, None),
            Err(e) => (0, Some(e.to_string())),
        };
        Ok(RecoverReport {
            enrolled,
            acknowledged: replaced.head,
            last_seen: replaced.last_seen,
            recovered,
            events: self.store().stats()?.events as u64,
            sync_error,
        })
    }

    /// Checks what was typed and who asks (an administrator where there are users) and makes
    /// the request; nothing is written (the window sends it without holding this `Kura`).
    /// `http://` to another machine is refused unless `insecure_http`.
    pub fn prepare_enrollment(
        &mut self,
        code: &str,
        url: &str,
        ca: Option<&Path>,
        name: Option<&str>,
        insecure_http: bool,
    ) -> Result<Enrollment, AppError> {
        // Everything that can be checked here is, before the one-time code is spent.
        self.authorize(crate::users::Act::Settings)?;
        let code = crate::input::text("code", code, 64)?;
        let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => crate::input::text("name", n, 100)?,
            None => host_name(),
        };
        let base = kura_sync::remote::base_url(url).map_err(SyncError::from)?;
        kura_sync::remote::check_transport(&base, insecure_http).map_err(SyncError::from)?;
        let ca = ca
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| {
                std::fs::canonicalize(p).map_err(|e| AppError::File {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })
            })
            .transpose()?;
        let year = chrono::Datelike::year(&self.today());
        // Serials this database issued itself: the registry records them as this workstation's
        // (and refuses if another bench was leased any of them), so no ID is issued twice.
        let mut issued = Vec::new();
        for y in 2000..=2099 {
            if let Some(next) = self
                .store()
                .meta(&format!("serial:{y}"))?
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|n| *n > 1)
            {
                issued.push(kura_proto::Lease {
                    year: y,
                    first: 1,
                    last: next - 1,
                });
            }
        }
        // A database that issued IDs itself can only join a site of its own format: the
        // registry refuses another (and keeps the code unused).
        let id_format = match self.id_format() {
            Ok(f) if self.issued_ids()? > 0 => Some(kura_proto::IdFormatClaim {
                prefix: f.prefix,
                serial_width: f.serial_width as u32,
            }),
            _ => None,
        };
        let ca_fingerprint = ca
            .as_deref()
            .map(kura_sync::remote::ca_fingerprint)
            .transpose()
            .map_err(SyncError::from)?;
        Ok(Enrollment {
            base,
            ca,
            ca_fingerprint,
            req: kura_proto::EnrollRequest {
                v: kura_proto::VERSION,
                code,
                workstation: self.workstation(),
                name,
                year,
                issued,
                id_format,
                recover: false,
            },
        })
    }

    /// Stores what the registry answered to an enrollment.
    pub fn complete_enrollment(
        &mut self,
        e: Enrollment,
        answer: Enrolled,
    ) -> Result<EnrollReport, AppError> {
        self.authorize(crate::users::Act::Settings)?;
        let res = answer.0;
        let base = e.base;
        let site = res.site;
        let width = site.serial_width as usize;
        // Kura IDs must carry the site's prefix: a database that issued IDs of another format
        // cannot join, or its IDs would be refused as another site's.
        let issued_before = self.issued_ids()?;
        if let Ok(f) = self.id_format()
            && (f.prefix != site.prefix || f.serial_width != width)
            && issued_before > 0
        {
            return Err(AppError::PrefixMismatch {
                local: f.prefix,
                site: site.code,
                site_prefix: site.prefix,
            });
        }
        self.set_id_format(&site.prefix, width)?;
        let token_file = token_path(self.path());
        write_secret(&token_file, &res.token)?;
        let token_ref = format!(
            "file:{}",
            token_file
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        );
        let site_json =
            serde_json::to_string(&site).map_err(|e| AppError::input("site", e.to_string()))?;
        let ca_text = e.ca.as_ref().map(|p| p.display().to_string());
        let ca_fingerprint = e.ca_fingerprint.clone();
        let lease = res.lease;
        self.store_mut().write(|tx| -> Result<(), StoreError> {
            tx.set_enrollment(&base, &token_ref, ca_text.as_deref(), &site_json)?;
            tx.add_lease(lease.year, lease.first, lease.last)?;
            Ok(())
        })?;
        tracing::info!(registry = %base, site = %site.code, "enrolled");
        Ok(EnrollReport {
            registry: base,
            site: site.code,
            site_name: site.name,
            prefix: site.prefix,
            workstation: self.workstation().to_string(),
            lease_year: lease.year,
            lease_first: lease.first,
            lease_last: lease.last,
            issued_before,
            ca_fingerprint,
        })
    }

    /// Kura IDs issued from this database's own counter (before enrollment).
    fn issued_ids(&self) -> Result<u64, AppError> {
        let mut n = 0;
        for year in 2000..=2099 {
            if let Some(v) = self.store().meta(&format!("serial:{year}"))? {
                n += v.parse::<u64>().unwrap_or(1).saturating_sub(1);
            }
        }
        Ok(n)
    }

    fn token(&self, token_ref: Option<&str>) -> Result<String, AppError> {
        let name = token_ref
            .and_then(|r| r.strip_prefix("file:"))
            .ok_or(SyncError::NotEnrolled)?;
        let dir = self
            .path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let path = dir.join(name);
        std::fs::read_to_string(&path)
            .map(|t| t.trim().to_string())
            .map_err(|e| AppError::File {
                path: path.display().to_string(),
                message: format!("{e}: the workstation's token is missing; enroll it again"),
            })
    }

    /// IDs issued here in the last day, at least 50.
    fn day_use(&self) -> Result<u64, AppError> {
        Ok(self
            .store()
            .ids_issued_since(self.now().0 - DAY_US)?
            .max(50))
    }

    /// The same, counted at most once a minute: the status is asked every few seconds, and
    /// counting walks every event this bench wrote in the last day (a day of bulk registration
    /// is thousands).
    fn day_use_recent(&self) -> Result<u64, AppError> {
        const FRESH: std::time::Duration = std::time::Duration::from_secs(60);
        let now = std::time::Instant::now();
        let mut seen = self.day_use_seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, n)) = *seen
            && now.duration_since(at) < FRESH
        {
            return Ok(n);
        }
        let n = self.day_use()?;
        *seen = Some((now, n));
        Ok(n)
    }

    /// The engine for one round, set up from the database: registry, token, CA, the years
    /// whose leases matter, and how many serials a day takes.
    pub fn sync_engine(&self, opts: SyncOptions) -> Result<Engine<Http>, AppError> {
        let st = self.store().sync_state()?;
        let url = st.registry_url.clone().ok_or(SyncError::NotEnrolled)?;
        let token = self.token(st.token_ref.as_deref())?;
        let mut t = Timeouts::default();
        if let Some(d) = opts.timeout {
            t.request = d;
            t.connect = t.connect.min(d);
        }
        let http = Http::new(&url, &token, st.registry_ca.as_deref().map(Path::new), t)
            .map_err(SyncError::from)?;
        let today = self.today();
        let year = chrono::Datelike::year(&today);
        let mut lease_years = vec![year];
        // In the last two weeks of the year, lease next year's too: New Year's morning may be
        // offline.
        if chrono::Datelike::ordinal(&today) + 14 > 365 {
            lease_years.push(year + 1);
        }
        let day = self.day_use()?;
        let cfg = Config {
            attempts: opts.attempts.unwrap_or(5).max(1),
            lease_years,
            lease_low: lease_policy(day).low,
            lease_size: lease_policy(day).size,
            // How many pulled events one transaction applies (the tests make pages split often).
            apply_chunk: std::env::var("KURA_SYNC_APPLY_CHUNK")
                .ok()
                .and_then(|v| v.parse().ok())
                .or(opts.apply_chunk)
                .filter(|n| *n > 0)
                .unwrap_or(Config::default().apply_chunk),
            ..Config::default()
        };
        Ok(Engine::new(self.path(), http, self.clock.clone(), cfg))
    }

    /// Before a write that issues `n` Kura IDs of this year: an enrolled bench holding fewer
    /// asks the registry for what is missing — one request for at least a lease's worth (more
    /// only past what one request may ask) — so that a cohort's intake is not refused while the
    /// network is up. When the registry cannot lease them (offline, the site's daily limit), the
    /// refusal names how many are missing; nothing is written either way.
    pub(crate) fn serials_for(&mut self, n: u64) -> Result<(), AppError> {
        if n == 0 {
            return Ok(());
        }
        let st = self.store().sync_state()?;
        if st.registry_url.is_none() || st.restored_at.is_some() {
            // The local counter, or the refusal to issue before a restored bench syncs.
            return Ok(());
        }
        let year = chrono::Datelike::year(&self.calendar().date(self.now()));
        let held = |st: &kura_store::SyncState| -> u64 {
            st.leases
                .iter()
                .filter(|b| b.year == year)
                .map(|b| b.left())
                .sum()
        };
        let left = held(&st);
        if left >= n {
            return Ok(());
        }
        let engine = self.sync_engine(SyncOptions {
            timeout: Some(Duration::from_secs(20)),
            attempts: Some(1),
            apply_chunk: None,
        })?;
        let size = lease_policy(self.day_use()?).size;
        let mut missing = n - left;
        let mut why = None;
        while missing > 0 {
            let ask = missing.max(size).min(kura_proto::MAX_LEASE);
            match run(engine.lease_now(year, ask))? {
                Ok(got) => missing = missing.saturating_sub(got),
                Err(e) => {
                    tracing::warn!(error = %e, missing, "no lease for bulk intake");
                    why = Some(e.to_string());
                    break;
                }
            }
        }
        match why {
            None => Ok(()),
            Some(why) => Err(AppError::SerialsShort {
                year,
                wanted: n,
                left: held(&self.store().sync_state()?),
                why,
            }),
        }
    }

    /// One sync round: push, then pull, then leases. Progress as (phase, done, total).
    ///
    /// A round is the workstation's, not a person's: it records no custody act (it carries
    /// events people already signed for, under the workstation's token), so it needs nobody
    /// signed in, and `kura sync --watch` runs as a service after a reboot.
    pub fn sync(
        &mut self,
        opts: SyncOptions,
        progress: &mut dyn FnMut(&str, u64, u64),
    ) -> Result<Report, AppError> {
        let engine = self.sync_engine(opts)?;
        let r = run(engine.round(&mut |p| match p {
            Phase::Push { done, total } => progress("push", done, total),
            Phase::Pull { done, total } => progress("pull", done, total),
        }))?;
        // Another connection wrote: this one's caches follow on the next read.
        Ok(r?)
    }

    /// Rounds on a timer until `on_round` says stop; while the registry cannot be reached, the
    /// next try comes sooner, with exponential backoff and jitter.
    pub fn sync_watch(
        &mut self,
        opts: SyncOptions,
        interval: Duration,
        on_round: &mut dyn FnMut(&Result<Report, AppError>) -> bool,
    ) -> Result<(), AppError> {
        let cfg = Config::default();
        let mut failures = 0;
        loop {
            let r = self.sync(opts, &mut |_, _, _| {});
            let wait = match &r {
                Ok(_) => {
                    failures = 0;
                    interval
                }
                Err(AppError::Sync(e)) if e.offline() => {
                    failures += 1;
                    kura_sync::backoff(&cfg, failures).min(interval)
                }
                Err(_) => interval,
            };
            if !on_round(&r) {
                return Ok(());
            }
            std::thread::sleep(wait);
        }
    }

    pub fn sync_status(&self) -> Result<SyncStatus, AppError> {
        let st = self.store().sync_state()?;
        let enrolled = st.registry_url.is_some();
        let year = chrono::Datelike::year(&self.today());
        let ids_left = enrolled.then(|| {
            st.leases
                .iter()
                .filter(|b| b.year == year)
                .map(|b| b.left())
                .sum::<u64>()
        });
        let ids_per_day = self.day_use_recent()?;
        let offline_codes = [
            "registry_unreachable",
            "registry_timeout",
            "registry_failed",
            "registry_protocol",
        ];
        let state = if !enrolled {
            "not_enrolled"
        } else if st.stopped.is_some() {
            "stopped"
        } else {
            match (&st.last_error_code, st.last_attempt) {
                (_, None) => "offline",
                (None, Some(_)) => "online",
                (Some(c), _) if offline_codes.contains(&c.as_str()) => "offline",
                (Some(_), _) => "error",
            }
        };
        let site = site_code(&st);
        Ok(SyncStatus {
            enrolled,
            state: state.to_string(),
            registry: st.registry_url,
            site,
            waiting: self.store().waiting()?,
            last_success: st.last_success,
            last_attempt: st.last_attempt,
            last_error_code: st.last_error_code,
            last_error: st.last_error,
            // Counters, never lists: the window asks every few seconds.
            rejections: self.store().rejection_count()?,
            conflicts: self.store().open_conflicts()?,
            incoming: self.store().incoming_in_transit()?,
            clock_skew_ms: st.clock_skew_us.map(|us| us as f64 / 1000.0),
            ids_left,
            ids_per_day,
            ids_low: ids_left.is_some_and(|l| l < ids_per_day),
            lease_size: lease_policy(ids_per_day).size,
            lease_low: lease_policy(ids_per_day).low,
            stopped: st.stopped,
            phase: None,
            phase_done: None,
            phase_total: None,
        })
    }

    /// This workstation's events the registry kept as rejections.
    pub fn rejections(&self) -> Result<Vec<kura_store::RejectionRow>, AppError> {
        self.may_read()?;
        Ok(self.store().rejections()?)
    }

    /// Open conflicts (all, with `all`), optionally of one specimen, with both events.
    pub fn conflicts(
        &self,
        specimen: Option<&str>,
        all: bool,
    ) -> Result<Vec<ConflictView>, AppError> {
        self.may_read()?;
        let code = specimen.map(|s| self.specimen_code(s)).transpose()?;
        let event = |id: Option<&str>| -> Result<Option<EventRow>, AppError> {
            match id.and_then(|i| Uuid::parse_str(i).ok()) {
                Some(u) => Ok(self.store().event(u)?),
                None => Ok(None),
            }
        };
        let rows = match &code {
            Some(k) => self.store().conflicts_of(k.as_str(), all)?,
            None => self.store().conflicts(all)?,
        };
        let mut out = Vec::new();
        for c in rows {
            out.push(ConflictView {
                refused: event(Some(&c.event))?,
                other: event(c.other.as_deref())?,
                subject: c.subject,
                code: c.code,
                message: c.message,
                resolved_by: c.resolved_by,
            });
        }
        Ok(out)
    }

    /// Settles the open conflicts of a specimen: `keep` is the event that is true; the other
    /// events of those conflicts are discarded, and the custody the specimen has without them is
    /// recorded with the reason, so that every bench and the registry adopt it.
    pub fn resolve_conflict(
        &mut self,
        specimen: &str,
        keep: &str,
        reason: &str,
    ) -> Result<kura_store::SpecimenView, AppError> {
        let code = self.specimen_code(specimen)?;
        let reason = crate::input::reason(reason)?;
        let keep = Uuid::parse_str(keep.trim())
            .map_err(|_| AppError::input("keep", format!("{keep:?} is not an event id")))?;
        let open = self.store().conflicts_of(code.as_str(), false)?;
        if open.is_empty() {
            return Err(AppError::Rule(RuleError::NotInConflict {
                specimen: code.to_string(),
            }));
        }
        let mut named: Vec<Uuid> = Vec::new();
        for c in &open {
            for id in std::iter::once(c.event.as_str()).chain(c.other.as_deref()) {
                if let Ok(u) = Uuid::parse_str(id)
                    && !named.contains(&u)
                {
                    named.push(u);
                }
            }
        }
        if !named.contains(&keep) {
            return Err(AppError::input(
                "keep",
                format!(
                    "event {keep} is not one of the events this conflict is about: {}",
                    named
                        .iter()
                        .map(Uuid::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let discard: Vec<Uuid> = named.into_iter().filter(|u| *u != keep).collect();
        self.write(|e| {
            let state = e.tx.replay_specimen(&code, &discard)?.ok_or_else(|| {
                AppError::Rule(RuleError::UnknownSpecimen {
                    specimen: code.to_string(),
                })
            })?;
            e.emit(EventBody::ConflictSettled {
                specimen: code.clone(),
                keep,
                discard,
                reason,
                outcome: Outcome {
                    custody: state.custody,
                    blocked: state.blocked,
                    freeze_thaw: state.freeze_thaw,
                    quantity: state.quantity,
                },
            })?;
            Ok(())
        })?;
        self.show(code.as_str())
    }
}

/// What the window's worker is doing right now.
#[derive(Debug, Default)]
struct Live {
    phase: Option<Phase>,
}

/// Pulled events the window's worker applies per transaction: a scan's write waits at most for
/// one of them (about 2 ms here; the command line's `kura sync` applies 250 at a time).
const WINDOW_APPLY_CHUNK: usize = 100;

/// Background work yields the processor to the window: this thread (and the threads it starts)
/// run at nice 19, so on a two-core bench applying a pulled page takes the processor only when
/// the window (its page, its painting, the X server) leaves it idle. (At nice 10 the scans made
/// during a 100,000-event pull waited 13 ms at the median before their handler ran.)
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // On Linux, PRIO_PROCESS with a thread id sets that thread's nice value only.
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
            tracing::warn!(error = %e, "sync worker keeps the window's priority");
        }
    }
}

/// The window's background sync: a thread of its own with its own connection, a round on a
/// timer and on demand, exponential backoff while the registry cannot be reached.
pub struct SyncWorker {
    wake: Arc<tokio::sync::Notify>,
    stop: Arc<AtomicBool>,
    live: Arc<Mutex<Live>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SyncWorker {
    /// Starts syncing the database at `path` every `interval` (and whenever
    /// [`SyncWorker::sync_now`] asks). A database that is not enrolled is left alone until it is.
    pub fn start(path: PathBuf, interval: Duration) -> SyncWorker {
        let wake = Arc::new(tokio::sync::Notify::new());
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Mutex::new(Live::default()));
        let (w, s, l) = (wake.clone(), stop.clone(), live.clone());
        let thread = std::thread::Builder::new()
            .name("kura-sync".into())
            .spawn(move || {
                lower_priority();
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "sync worker cannot start");
                        return;
                    }
                };
                rt.block_on(worker(path, interval, w, s, l));
            })
            .ok();
        SyncWorker {
            wake,
            stop,
            live,
            thread,
        }
    }

    /// Runs a round now (or right after the one in flight).
    pub fn sync_now(&self) {
        self.wake.notify_one();
    }

    /// Adds what the worker is doing now to a status.
    pub fn annotate(&self, s: &mut SyncStatus) {
        let phase = self.live.lock().ok().and_then(|l| l.phase);
        if let Some(p) = phase {
            let (name, done, total) = match p {
                Phase::Push { done, total } => ("push", done, total),
                Phase::Pull { done, total } => ("pull", done, total),
            };
            s.phase = Some(name.to_string());
            s.phase_done = Some(done);
            s.phase_total = Some(total);
            if s.enrolled && s.state != "stopped" {
                s.state = "syncing".into();
            }
        }
    }
}

impl Drop for SyncWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn worker(
    path: PathBuf,
    interval: Duration,
    wake: Arc<tokio::sync::Notify>,
    stop: Arc<AtomicBool>,
    live: Arc<Mutex<Live>>,
) {
    let mut failures = 0u32;
    let backoff_cfg = Config::default();
    while !stop.load(Ordering::SeqCst) {
        let engine = Kura::open_with_clock(&path, "sync", Arc::new(SystemClock) as Arc<dyn Clock>)
            .and_then(|k| {
                k.sync_engine(SyncOptions {
                    apply_chunk: Some(WINDOW_APPLY_CHUNK),
                    ..SyncOptions::default()
                })
            });
        let wait = match engine {
            // Not enrolled (or the token is missing): look again later.
            Err(_) => interval,
            Ok(engine) => {
                let l = live.clone();
                let r = engine
                    .round(&mut |p| {
                        if let Ok(mut g) = l.lock() {
                            g.phase = Some(p);
                        }
                    })
                    .await;
                if let Ok(mut g) = live.lock() {
                    g.phase = None;
                }
                match r {
                    Ok(report) => {
                        failures = 0;
                        tracing::info!(?report, "sync round");
                        interval
                    }
                    Err(e) if e.offline() => {
                        failures += 1;
                        tracing::info!(error = %e, "registry not reachable; working offline");
                        kura_sync::backoff(&backoff_cfg, failures).min(interval)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, code = e.code(), "sync round failed");
                        interval
                    }
                }
            }
        };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
        }
    }
}

/// The code of the site this bench is enrolled with (None: not enrolled).
pub(crate) fn site_code(st: &kura_store::SyncState) -> Option<String> {
    st.site
        .as_deref()
        .and_then(|s| serde_json::from_str::<kura_proto::Site>(s).ok())
        .map(|s| s.code)
}

#[cfg(test)]
mod tests {
    use super::{LeasePolicy, lease_policy};

    #[test]
    fn leases_follow_the_bench_use() {
        // (IDs issued in the last day, the policy)
        let cases = [
            (0, (500, 1000), "a quiet bench: the floors"),
            (50, (500, 1000), "a few a day"),
            (200, (500, 1400), "a week at 200 a day"),
            (5_000, (10_000, 35_000), "a cohort's afternoon"),
            (
                20_000,
                (40_000, 100_000),
                "at most what one request may ask",
            ),
            (u64::MAX, (u64::MAX, 100_000), "no overflow"),
        ];
        for (day, (low, size), what) in cases {
            assert_eq!(lease_policy(day), LeasePolicy { low, size }, "{what}");
        }
    }
}
