//! The engine: performs a plan against a [`Remote`] with its own connection to the store. A
//! round asks the registry's status, plans, pushes this workstation's events past the
//! high-water mark in bounded compressed batches (each batch's answers stored in one
//! transaction), pulls pages after the cursor (each page and the new cursor applied in one
//! transaction), and leases serials. Network errors, timeouts and 5xx are retried with
//! exponential backoff and jitter; a round cut anywhere is continued by the next one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kura_domain::Clock;
use kura_proto::{Holding, Parcel, ParcelPost, PushRequest, RejectCode, Verdict};
use kura_store::{Answer, PullApplied, Store, StoreError};
use serde::Serialize;

use crate::plan::{self, Op};
use crate::remote::{Remote, RemoteError};

/// Why a round did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "this workstation is not enrolled with a registry; enroll it first (kura enroll CODE --registry URL, or Settings)"
    )]
    NotEnrolled,
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "pushing stopped: {0}. Nothing was overwritten here or at the registry; ask the registry administrator"
    )]
    Fork(String),
    #[error(
        "another sync of this database is running (the window, or another kura sync); try again when it has finished"
    )]
    Busy,
    #[error("the registry's answer does not fit what was asked: {0}")]
    Protocol(String),
    #[error(
        "{waiting} events of this bench wait: the registry does not take {kind:?} events yet (it is older than this bench). Upgrade the registry (kura-registry) to this version of Kura; the events go through at the next sync after it. Nothing is lost or refused; everything else was synced"
    )]
    RegistryOutdated { kind: String, waiting: u64 },
}

impl SyncError {
    pub fn code(&self) -> &'static str {
        match self {
            SyncError::NotEnrolled => "not_enrolled",
            SyncError::Remote(e) => e.code(),
            SyncError::Store(e) => e.code(),
            SyncError::Fork(_) => "sequence_fork",
            SyncError::Busy => "sync_busy",
            SyncError::Protocol(_) => "registry_protocol",
            SyncError::RegistryOutdated { .. } => "registry_outdated",
        }
    }

    /// The network or the registry is down: the bench works offline.
    pub fn offline(&self) -> bool {
        matches!(self, SyncError::Remote(e) if e.offline() || e.retryable())
    }
}

/// How the engine works.
#[derive(Debug, Clone)]
pub struct Config {
    pub batch_events: usize,
    pub batch_bytes: usize,
    pub page: u32,
    /// A pulled page is applied in transactions of at most this many events, each with the
    /// cursor at its last event: the write lock is never held long enough to keep a scan
    /// waiting (about 5 ms for 250 events here).
    pub apply_chunk: usize,
    /// Tries of one request before the round gives up (network errors, timeouts, 5xx).
    pub attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The years whose IDs this bench must be able to issue (this year; next year in its last
    /// weeks), as the site's calendar says.
    pub lease_years: Vec<i32>,
    pub lease_low: u64,
    pub lease_size: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            batch_events: kura_proto::MAX_BATCH_EVENTS,
            // Room for the JSON around the payloads.
            batch_bytes: kura_proto::MAX_BATCH_BYTES * 9 / 10,
            page: kura_proto::MAX_PAGE,
            apply_chunk: 250,
            attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            lease_years: Vec::new(),
            lease_low: 500,
            lease_size: kura_proto::DEFAULT_LEASE,
        }
    }
}

/// What a round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Events the registry stored now.
    pub pushed: u64,
    /// Events it already had (a resent batch).
    pub duplicates: u64,
    /// Events it kept as rejections (shown to the user).
    pub rejected: u64,
    /// Other workstations' events applied here.
    pub pulled: u64,
    /// Of those, refused here by the rules: conflicts.
    pub conflicts: u64,
    /// The projection was refolded in the registry's order.
    pub reordered: bool,
    /// The registry's order had changed under this bench's cursor (it was restored from an
    /// older copy): the order above the last position both agree on was learnt again.
    pub relearned: bool,
    /// This workstation's own events brought back from the registry (the database came back
    /// from a copy, or is a replacement PC).
    pub recovered: u64,
    /// Serials leased.
    pub leased: u64,
    /// The registry refused a lease this round (`serials_quota`, `serials_exhausted`); the rest
    /// of the round went on.
    pub lease_refused: Option<String>,
    /// Blocks of serials the registry did not list as this bench's (it was restored from an
    /// older copy), claimed back …
    pub leases_reclaimed: u64,
    /// … or dropped here, another bench having been leased them meanwhile.
    pub leases_dropped: u64,
    /// This bench's events waiting for an upgraded registry, from the first of a kind the
    /// registry does not take (`held_kind`) on.
    pub held_back: u64,
    pub held_kind: Option<String>,
    pub clock_skew_us: Option<i64>,
    /// This workstation's shipment bundles the registry took this round …
    pub bundles_sent: u64,
    /// … and refused (each with its code; not sent again).
    pub bundles_refused: Vec<String>,
    /// Blocks of tubes this site shipped, sent to the site that holds them now.
    pub follow_ups_sent: u64,
    /// Parcels the registry sent this site that are new here (bundles of incoming shipments,
    /// receipts of tubes another site received).
    pub parcels: u64,
}

impl Report {
    /// Counts what a pull applied (pages, or a refold of them).
    fn count_pulled(&mut self, a: &PullApplied) {
        self.pulled += a.new;
        self.conflicts += a.conflicts;
        self.reordered |= a.reordered;
    }
}

/// Where a round is, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Phase {
    Push { done: u64, total: u64 },
    Pull { done: u64, total: u64 },
}

pub struct Engine<R> {
    path: PathBuf,
    remote: R,
    clock: Arc<dyn Clock>,
    pub cfg: Config,
    crash_at: Option<String>,
}

/// A test hook: `KURA_SYNC_CRASH=after_push_response` ends the process between receiving an
/// acknowledgement and storing it, `before_pull_commit` inside a page's (first) transaction,
/// `before_second_chunk_commit` inside the second transaction of a page applied in several, as a
/// power cut or SIGKILL would. Nothing else reads it.
fn crash_hook() -> Option<String> {
    std::env::var("KURA_SYNC_CRASH")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A new workstation key's seed.
fn new_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        tracing::error!("no randomness for a workstation key");
    }
    seed
}

fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0
}

/// The pause before try `n` (from 0): exponential, capped, with jitter (half to all of it).
pub fn backoff(cfg: &Config, n: u32) -> Duration {
    let exp = cfg.backoff_base.saturating_mul(1u32 << n.min(16));
    exp.min(cfg.backoff_max).mul_f64(jitter())
}

/// One sync of a database at a time: a lock file next to it.
struct Lock(#[allow(dead_code)] std::fs::File);

fn lock(db: &Path) -> Result<Lock, SyncError> {
    let mut p = db.as_os_str().to_owned();
    p.push(".sync-lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PathBuf::from(p))
        .map_err(|e| {
            SyncError::Store(StoreError::Io {
                path: db.to_path_buf(),
                source: e,
            })
        })?;
    for _ in 0..100 {
        match f.try_lock() {
            Ok(()) => return Ok(Lock(f)),
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(SyncError::Store(StoreError::Io {
                    path: db.to_path_buf(),
                    source: e,
                }));
            }
        }
    }
    Err(SyncError::Busy)
}

impl<R: Remote> Engine<R> {
    pub fn new(path: impl AsRef<Path>, remote: R, clock: Arc<dyn Clock>, cfg: Config) -> Self {
        Engine {
            path: path.as_ref().to_path_buf(),
            remote,
            clock,
            cfg,
            crash_at: crash_hook(),
        }
    }

    fn crash(&self, at: &str) {
        if self.crash_at.as_deref() == Some(at) {
            tracing::warn!(at, "KURA_SYNC_CRASH: ending the process here");
            std::process::abort();
        }
    }

    /// Tries `f` until it answers, or fails in a way trying again will not mend, or the tries
    /// are used up.
    async fn retry<T, Fut>(&self, what: &str, mut f: impl FnMut() -> Fut) -> Result<T, RemoteError>
    where
        Fut: std::future::Future<Output = Result<T, RemoteError>>,
    {
        let mut n = 0;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.retryable() && n + 1 < self.cfg.attempts => {
                    let pause = backoff(&self.cfg, n);
                    tracing::warn!(what, error = %e, pause_ms = pause.as_millis() as u64, "retrying");
                    tokio::time::sleep(pause).await;
                    n += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One lease outside a round, for bulk intake short of serials: a single request for `count`
    /// serials of `year` (no retry: the person waits at the bench), the block recorded in the
    /// store. Returns how many came.
    pub async fn lease_now(&self, year: i32, count: u64) -> Result<u64, SyncError> {
        let _lock = lock(&self.path)?;
        let mut store = Store::open_existing(&self.path)?;
        if store.sync_state()?.registry_url.is_none() {
            return Err(SyncError::NotEnrolled);
        }
        let l = self.remote.lease(year, count).await?;
        store.write(|tx| tx.add_lease(l.year, l.first, l.last))?;
        tracing::info!(
            year,
            first = l.first,
            last = l.last,
            "leased for bulk intake"
        );
        Ok(l.last + 1 - l.first)
    }

    /// One round: status, plan, push, pull, leases. Records when it ran and how it ended.
    pub async fn round(&self, progress: &mut dyn FnMut(Phase)) -> Result<Report, SyncError> {
        let _lock = lock(&self.path)?;
        let mut store = Store::open_existing(&self.path)?;
        // A scan in the window goes before the next sync transaction.
        store.set_background(true);
        if store.sync_state()?.registry_url.is_none() {
            return Err(SyncError::NotEnrolled);
        }
        let mut result = self.inner(&mut store, progress).await;
        // The registry was restored while we were pushing: ask again, once.
        if let Err(SyncError::Remote(RemoteError::Refused { code, .. })) = &result
            && code == "gap"
        {
            result = self.inner(&mut store, progress).await;
        }
        let now = self.clock.now().0;
        let recorded = match &result {
            Ok(_) => store.write(|tx| tx.record_attempt(now, None)),
            Err(e) => {
                let (code, message) = (e.code().to_string(), e.to_string());
                store.write(|tx| tx.record_attempt(now, Some((&code, &message))))
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "could not record the sync round");
        }
        result
    }

    async fn inner(
        &self,
        store: &mut Store,
        progress: &mut dyn FnMut(Phase),
    ) -> Result<Report, SyncError> {
        let mut report = Report::default();
        let status = self.retry("status", || self.remote.status()).await?;
        if status.workstation != store.workstation() {
            return Err(SyncError::Protocol(format!(
                "the registry answered for workstation {}, this is {}",
                status.workstation,
                store.workstation()
            )));
        }
        report.clock_skew_us = status.clock_skew_us;
        store.write(|tx| tx.set_clock_skew(status.clock_skew_us))?;
        self.reconcile_leases(store, &status.leases, &mut report)
            .await?;
        let state = store.sync_state()?;
        let (head_seq, _) = store.own_head()?;
        let same_at_registry_head = match status.head.seq {
            0 => None,
            seq => store
                .own_hash(seq)?
                .map(|mine| status.head.hash == Some(mine)),
        };
        let local = plan::Local {
            head_seq,
            pushed_seq: state.pushed_seq,
            same_at_registry_head,
            pull_cursor: state.pull_cursor,
            stopped: state.stopped.is_some(),
            leases_left: self
                .cfg
                .lease_years
                .iter()
                .map(|&y| {
                    let left = state
                        .leases
                        .iter()
                        .filter(|b| b.year == y)
                        .map(|b| b.left())
                        .sum();
                    (y, left)
                })
                .collect(),
            lease_low: self.cfg.lease_low,
            lease_size: self.cfg.lease_size,
        };
        let registry = plan::Registry {
            head_seq: status.head.seq,
            site_seq: status.site_seq,
        };
        let mut fork = None;
        for op in plan::plan(&local, &registry) {
            tracing::debug!(?op, "sync");
            match op {
                Op::Lease { year, count } => {
                    match self.retry("lease", || self.remote.lease(year, count)).await {
                        Ok(l) => {
                            store.write(|tx| tx.add_lease(l.year, l.first, l.last))?;
                            report.leased += l.last + 1 - l.first;
                        }
                        // No more serials today (the site's limit) or at all: the round still
                        // pushes and pulls; the bench issues what it has left and says so.
                        Err(RemoteError::Refused { code, message, .. })
                            if code == "serials_quota" || code == "serials_exhausted" =>
                        {
                            tracing::warn!(%code, %message, "the registry leased no more serials");
                            report.lease_refused = Some(code);
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Op::Fork { registry, .. } => {
                    let why = format!(
                        "the registry holds another event as seq {registry} of this workstation than this database does: its history was rewritten"
                    );
                    store.write(|tx| tx.set_stopped(Some(&why)))?;
                    fork = Some(why);
                }
                Op::RewindPush { to } => store.write(|tx| {
                    tx.rewind_push(to)?;
                    // It lost events: it may have lost this bench's bundles too.
                    tx.registry_forgot()
                })?,
                Op::Push { from, to } => {
                    let known = (!status.kinds.is_empty()).then_some(&status.kinds[..]);
                    if let Err(e) = self
                        .push(store, from, to, known, &mut report, progress)
                        .await
                    {
                        if let SyncError::Fork(why) = &e {
                            store.write(|tx| tx.set_stopped(Some(why)))?;
                        }
                        return Err(e);
                    }
                }
                Op::Pull { after } => {
                    let pulled = self
                        .pull(store, after, status.site_seq, &mut report, progress)
                        .await;
                    if pulled.is_err() {
                        // The pages already applied go into the projection now, not when the
                        // next pull ends.
                        match store.write(|tx| tx.pull_cut_short()) {
                            Ok(f) => report.count_pulled(&f),
                            Err(e) => tracing::warn!(
                                error = %e,
                                "could not fold the pulled pages again after the pull stopped"
                            ),
                        }
                    }
                    match pulled {
                        Err(SyncError::Store(e @ StoreError::OwnFork { .. })) => {
                            let why = e.to_string();
                            store.write(|tx| tx.set_stopped(Some(&why)))?;
                            return Err(SyncError::Fork(why));
                        }
                        r => r?,
                    }
                }
            }
        }
        if let Some(why) = fork {
            return Err(SyncError::Fork(why));
        }
        self.parcels(store, &mut report).await?;
        // A bench back from a copy has all its stream again once the pull is through.
        let (now_head, _) = store.own_head()?;
        if status.head.seq > now_head {
            return Err(SyncError::Protocol(format!(
                "the registry holds this workstation's events up to seq {}, this database up to {now_head}, and it did not send the rest back: upgrade the registry, then sync again",
                status.head.seq
            )));
        }
        if head_seq < now_head {
            report.recovered = now_head - head_seq;
        }
        if state.restored_at.is_some() {
            store.write(|tx| tx.caught_up())?;
        }
        if let Some(kind) = report.held_kind.clone() {
            return Err(SyncError::RegistryOutdated {
                kind,
                waiting: report.held_back,
            });
        }
        Ok(report)
    }

    /// Pushes `from..=to`. With `known` (the kinds the registry takes), stops before the first
    /// event of another kind: it and everything after it wait for an upgraded registry
    /// (`report.held_back`), nothing is refused.
    async fn push(
        &self,
        store: &mut Store,
        from: u64,
        to: u64,
        known: Option<&[String]>,
        report: &mut Report,
        progress: &mut dyn FnMut(Phase),
    ) -> Result<(), SyncError> {
        let ws = store.workstation();
        let total = to + 1 - from;
        let mut next = from;
        loop {
            let mut batch = store.own_events(next, self.cfg.batch_events, self.cfg.batch_bytes)?;
            let mut held = false;
            if let Some(known) = known
                && let Some(i) = batch.iter().position(|e| !known.contains(&e.kind))
            {
                let first = &batch[i];
                report.held_back = to + 1 - first.seq;
                report.held_kind = Some(first.kind.clone());
                tracing::warn!(
                    kind = %first.kind,
                    seq = first.seq,
                    waiting = report.held_back,
                    "the registry does not take this kind of event yet: it and the events after it wait; upgrade the registry"
                );
                batch.truncate(i);
                held = true;
            }
            let Some(last) = batch.last().map(|e| e.seq) else {
                return Ok(());
            };
            let seqs: Vec<u64> = batch.iter().map(|e| e.seq).collect();
            let req = PushRequest {
                v: kura_proto::VERSION,
                workstation: ws,
                sent_at: Some(self.clock.now().0),
                events: batch,
            };
            let res = self.retry("push", || self.remote.push(&req)).await?;
            self.crash("after_push_response");
            if res.verdicts.len() != seqs.len()
                || res.verdicts.iter().zip(&seqs).any(|(v, s)| v.seq() != *s)
            {
                return Err(SyncError::Protocol(format!(
                    "{} verdicts for {} events sent",
                    res.verdicts.len(),
                    seqs.len()
                )));
            }
            let mut answers = Vec::with_capacity(seqs.len());
            let mut stop = None;
            for v in res.verdicts {
                match v {
                    Verdict::Accepted {
                        seq, server_seq, ..
                    } => {
                        report.pushed += 1;
                        answers.push(Answer::Stored {
                            seq,
                            server_seq: Some(server_seq),
                        });
                    }
                    Verdict::Duplicate {
                        seq, server_seq, ..
                    } => {
                        report.duplicates += 1;
                        answers.push(Answer::Stored { seq, server_seq });
                    }
                    Verdict::Rejected {
                        seq,
                        code:
                            code @ (RejectCode::BadPayload
                            | RejectCode::WrongSite
                            | RejectCode::IdTaken
                            | RejectCode::Forbidden),
                        message,
                        ..
                    } => {
                        report.rejected += 1;
                        answers.push(Answer::Kept {
                            seq,
                            code: code.as_str().to_string(),
                            message,
                        });
                    }
                    Verdict::Rejected {
                        seq, code, message, ..
                    } => {
                        stop = Some(format!(
                            "seq {seq} was refused ({}): {message}",
                            code.as_str()
                        ));
                        break;
                    }
                }
            }
            let now = self.clock.now().0;
            store.write(|tx| tx.record_answers(&answers, now))?;
            if let Some(why) = stop {
                return Err(SyncError::Fork(why));
            }
            progress(Phase::Push {
                done: (last + 1 - from).min(total),
                total,
            });
            if held {
                return Ok(());
            }
            next = last + 1;
        }
    }

    /// Sends this workstation's shipment bundles the registry has not taken (after the push:
    /// their dispatches are acknowledged), then takes the parcels addressed to this site. A
    /// registry older than parcels (no such route) is left alone: shipments through it wait for
    /// its upgrade, sealed manifests still travel, the rest of the round stands.
    async fn parcels(&self, store: &mut Store, report: &mut Report) -> Result<(), SyncError> {
        match self.parcels_inner(store, report).await {
            Err(SyncError::Remote(RemoteError::Refused {
                status: 404, code, ..
            })) if code == "http_404" => {
                tracing::warn!(
                    "the registry does not carry shipments yet (it is older than this bench); upgrade it (kura-registry)"
                );
                Ok(())
            }
            r => r,
        }
    }

    async fn parcels_inner(&self, store: &mut Store, report: &mut Report) -> Result<(), SyncError> {
        for bundle in store.bundles_to_post()? {
            let dispatch = bundle.dispatch.event.hash;
            let shipment = bundle.shipment.clone();
            let req = ParcelPost {
                v: kura_proto::VERSION,
                parcel: Parcel::Bundle { bundle },
            };
            let refused = match self.retry("bundle", || self.remote.post_parcel(&req)).await {
                Ok(r) => {
                    if !r.duplicate {
                        report.bundles_sent += 1;
                    }
                    None
                }
                // Its dispatch is not acknowledged yet (held back, or refused): next round.
                Err(RemoteError::Refused { code, .. }) if code == "not_acknowledged" => continue,
                Err(RemoteError::Refused {
                    status: 422 | 409 | 403,
                    code,
                    message,
                }) => {
                    tracing::warn!(%shipment, %code, %message, "the registry refused the shipment's bundle");
                    report.bundles_refused.push(format!("{shipment}: {code}"));
                    Some(code)
                }
                Err(e) => return Err(e.into()),
            };
            let now = self.clock.now().0;
            store.write(|tx| tx.bundle_posted(&dispatch, now, refused.as_deref()))?;
        }
        self.follow_ups(store, report).await?;
        let mut restarted = false;
        loop {
            let (cursor, at) = store.parcel_cursor()?;
            let page = self
                .retry("parcels", || self.remote.parcels(cursor, 100))
                .await?;
            if cursor > 0 && page.at != at {
                // The registry was put back from an older copy: read its parcels again (each is
                // kept here once, by its hash).
                if restarted {
                    return Err(SyncError::Protocol(
                        "the registry's parcels changed twice in one round".into(),
                    ));
                }
                restarted = true;
                store.write(|tx| tx.set_parcel_cursor(0, None))?;
                continue;
            }
            let now = self.clock.now().0;
            let mut new = 0;
            store.write(|tx| {
                for p in &page.parcels {
                    let body = match &p.parcel {
                        Parcel::Bundle { bundle } => serde_json::to_string(bundle),
                        Parcel::Receipt { site, event, .. } => serde_json::to_string(
                            &serde_json::json!({"site": site, "event": event}),
                        ),
                        Parcel::FollowUp { follow_up } => serde_json::to_string(follow_up),
                    }
                    .map_err(|e| StoreError::Corrupt(format!("a parcel: {e}")))?;
                    // The sending site blocked a tube of a shipment to here: it is held here
                    // (still checked: the registry vouched for the sender, the bench checks the
                    // signature).
                    // Another site received a tube of this site's shipment.
                    if let Parcel::Receipt {
                        shipment,
                        site,
                        event,
                    } = &p.parcel
                        && let Ok(kura_domain::EventBody::Received { specimen, .. }) =
                            serde_json::from_str(&event.payload)
                    {
                        tx.deliver(specimen.as_str(), shipment, site, &event.hash)?;
                    }
                    if let Parcel::FollowUp { follow_up } = &p.parcel {
                        match follow_up.check() {
                            Ok((code, reason)) => tx.hold(
                                code.as_str(),
                                &follow_up.shipment,
                                &reason,
                                &follow_up.event.event.hash,
                            )?,
                            Err(problem) => tracing::warn!(
                                shipment = %follow_up.shipment,
                                %problem,
                                "a follow-up from the registry does not check; the tube is not held"
                            ),
                        }
                    }
                    if tx.keep_parcel(
                        &p.parcel.hash(),
                        p.parcel.kind(),
                        p.parcel.shipment(),
                        &body,
                        now,
                    )? {
                        new += 1;
                    }
                }
                let last = page.parcels.last().map(|p| p.parcel.hash()).or(at);
                tx.set_parcel_cursor(page.next, last.as_ref())
            })?;
            report.parcels += new;
            if !page.more {
                return Ok(());
            }
        }
    }

    /// Sends this workstation's blocks of tubes its site shipped to another site (acknowledged:
    /// up to the high-water mark) as follow-ups, signed with the workstation's key.
    async fn follow_ups(&self, store: &mut Store, report: &mut Report) -> Result<(), SyncError> {
        let from = store.follow_up_seq()?;
        let to = store.sync_state()?.pushed_seq;
        if to <= from {
            return Ok(());
        }
        let due = store.blocks_to_follow(from, to)?;
        // Sent up to here; a shipment the registry does not hold yet (another bench of this site
        // dispatched it and has not synced) is tried again next round.
        let mut done = to;
        if !due.is_empty() {
            let now = self.clock.now().0;
            let key = store.write(|tx| tx.workstation_key(new_seed, now))?;
            let signer = kura_domain::sign::SigningKey::from_seed(&key.seed).ok_or_else(|| {
                SyncError::Store(StoreError::Corrupt(
                    "this workstation's key is not an Ed25519 seed".into(),
                ))
            })?;
            for (event, shipment) in due {
                let seq = event.event.seq;
                let follow_up = kura_domain::bundle::FollowUp {
                    signature: signer.sign(&kura_domain::bundle::follow_up_message(
                        &shipment,
                        &event.event.hash,
                    )),
                    key: key.public.clone(),
                    shipment: shipment.clone(),
                    event,
                };
                let req = ParcelPost {
                    v: kura_proto::VERSION,
                    parcel: Parcel::FollowUp { follow_up },
                };
                match self
                    .retry("follow-up", || self.remote.post_parcel(&req))
                    .await
                {
                    Ok(r) if !r.duplicate => report.follow_ups_sent += 1,
                    Ok(_) => {}
                    Err(RemoteError::Refused { code, .. }) if code == "unknown_shipment" => {
                        done = done.min(seq - 1);
                    }
                    // A block the registry refused (kept as a rejection) or cannot place: said,
                    // and not sent again.
                    Err(RemoteError::Refused {
                        status: 422 | 409 | 403,
                        code,
                        message,
                    }) => {
                        tracing::warn!(%shipment, %code, %message, "the registry refused a follow-up");
                        report.bundles_refused.push(format!("{shipment}: {code}"));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        store.write(|tx| tx.set_follow_up_seq(done))?;
        Ok(())
    }

    async fn pull(
        &self,
        store: &mut Store,
        after: u64,
        site_seq: u64,
        report: &mut Report,
        progress: &mut dyn FnMut(Phase),
    ) -> Result<(), SyncError> {
        // The push may have moved the cursor over this workstation's own events.
        let mut cursor = after.max(store.sync_state()?.pull_cursor);
        let mut after = cursor;
        let mut rewinds = 0;
        loop {
            let holding = holding(store, cursor)?;
            let page = match self
                .retry("pull", || self.remote.pull(cursor, self.cfg.page, holding))
                .await
            {
                Err(RemoteError::Refused { code, .. }) if code == "order_changed" => {
                    // The registry lost the tail of the site's order (restored from an older
                    // copy) and ordered the events sent again anew. Learn it again from the last
                    // position both agree on. (Twice in a round: it is still changing; the next
                    // round goes on.)
                    rewinds += 1;
                    if rewinds > 2 {
                        return Err(SyncError::Protocol(format!(
                            "the registry's order kept changing under position {cursor}"
                        )));
                    }
                    let agreed = self.agreement(store, cursor).await?;
                    store.write(|tx| tx.relearn_order_above(agreed))?;
                    report.relearned = true;
                    cursor = agreed;
                    after = agreed;
                    continue;
                }
                r => r?,
            };
            if page.next < cursor {
                return Err(SyncError::Protocol(format!(
                    "a page after {cursor} ends at {}",
                    page.next
                )));
            }
            let events = page.events;
            let next = page.next;
            let chunks: Vec<&[kura_domain::Placed]> = if events.is_empty() {
                vec![&events[..]]
            } else {
                events.chunks(self.cfg.apply_chunk.max(1)).collect()
            };
            let refused: Vec<(uuid::Uuid, u64)> = page
                .refused
                .iter()
                .map(|r| (r.workstation, r.seq))
                .collect();
            let own: Vec<(u64, u64)> = page.own.iter().map(|o| (o.seq, o.server_seq)).collect();
            let last_chunk = chunks.len() - 1;
            let mut applied = PullApplied::default();
            for (i, chunk) in chunks.iter().enumerate() {
                // Every event of the site up to a chunk's last one is here once it is applied
                // (the page holds them all, in order); the last chunk takes the page's cursor.
                let until = if i + 1 == chunks.len() {
                    next
                } else {
                    chunk.last().map_or(next, |e| e.server_seq)
                };
                let a = store.write(|tx| -> Result<_, StoreError> {
                    if i == 0 {
                        tx.record_refused(&refused)?;
                    }
                    let a = tx.apply_remote(chunk, until)?;
                    if i == last_chunk {
                        tx.learn_own_places(&own)?;
                    }
                    self.crash(if i == 1 {
                        "before_second_chunk_commit"
                    } else {
                        "before_pull_commit"
                    });
                    Ok(a)
                })?;
                applied.new += a.new;
                applied.conflicts += a.conflicts;
                applied.reordered |= a.reordered;
            }
            report.count_pulled(&applied);
            progress(Phase::Pull {
                done: next.saturating_sub(after),
                total: site_seq
                    .saturating_sub(after)
                    .max(next.saturating_sub(after)),
            });
            cursor = next;
            if !page.more {
                let refolded = store.write(|tx| tx.finish_pull())?;
                report.count_pulled(&refolded);
                return Ok(());
            }
        }
    }

    /// Every block of serials this bench holds must be listed as its own by the registry: one
    /// restored from a copy older than the grant would lease it again to another bench. Blocks
    /// it does not list are claimed back; those another bench was leased meanwhile are dropped
    /// here (what is left of them burned), so no ID is issued twice from now on.
    async fn reconcile_leases(
        &self,
        store: &mut Store,
        listed: &[kura_proto::Lease],
        report: &mut Report,
    ) -> Result<(), SyncError> {
        let held = store.sync_state()?.leases;
        let unlisted: Vec<kura_proto::Lease> = held
            .iter()
            .filter(|b| {
                !listed
                    .iter()
                    .any(|l| l.year == b.year && l.first <= b.first && l.last >= b.last)
            })
            .map(|b| kura_proto::Lease {
                year: b.year,
                first: b.first,
                last: b.last,
            })
            .collect();
        if unlisted.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            blocks = unlisted.len(),
            "the registry does not list serials this bench holds (restored from an older copy?): claiming them back"
        );
        let got = match self
            .retry("claim", || self.remote.claim(unlisted.clone()))
            .await
        {
            Ok(g) => g,
            // A registry from before claims: it cannot be told; nothing changes here.
            Err(RemoteError::Refused { status: 404, .. }) => {
                tracing::warn!("the registry does not take claims of serials; upgrade it");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        report.leases_reclaimed += got.kept.len() as u64;
        for l in &got.taken {
            let burned = store.write(|tx| tx.drop_lease(l.year, l.first))?;
            tracing::warn!(
                year = l.year,
                first = l.first,
                last = l.last,
                burned,
                "serials this bench held were leased to another bench meanwhile: no more IDs from them"
            );
            report.leases_dropped += 1;
        }
        Ok(())
    }

    /// The highest position at or below `cursor` (which the registry disputes) on which this
    /// bench and the registry agree: probes below it at doubling distances, then halves the
    /// span between the highest that agrees and the lowest that does not. The registry's order
    /// only ever loses a tail, so below an agreeing position everything agrees. Each probe is a
    /// one-event pull.
    async fn agreement(&self, store: &Store, cursor: u64) -> Result<u64, SyncError> {
        let agrees = |at: u64| async move {
            let h = holding(store, at)?;
            match self.retry("pull", || self.remote.pull(h.at, 1, h)).await {
                Ok(_) => Ok(true),
                Err(RemoteError::Refused { code, .. }) if code == "order_changed" => Ok(false),
                Err(e) => Err(SyncError::Remote(e)),
            }
        };
        let (mut lo, mut hi) = (0u64, cursor);
        let mut step = 1u64;
        loop {
            let probe = match store.others_at_or_below(hi.saturating_sub(step))? {
                Some((at, ..)) if at > 0 => at,
                _ => break,
            };
            if agrees(probe).await? {
                lo = probe;
                break;
            }
            hi = probe;
            step = step.saturating_mul(2);
        }
        loop {
            let mid = lo + (hi - lo) / 2;
            let probe = match store.others_at_or_below(mid)? {
                Some((at, ..)) if at > lo => at,
                _ => match store.others_above(lo)? {
                    Some(at) if at < hi => at,
                    _ => break,
                },
            };
            if agrees(probe).await? {
                lo = probe;
            } else {
                hi = probe;
            }
        }
        tracing::warn!(
            disputed = cursor,
            agreed = lo,
            "the registry's order changed: learning it again above the last position both agree on"
        );
        Ok(lo)
    }
}

/// What a pull after `cursor` names: another workstation's event at the highest position at or
/// below it (its own, which it may have sent again after a registry restore, prove nothing about
/// the places below them), and the newest seq of its own stream (the registry sends its own
/// events above it back).
fn holding(store: &Store, cursor: u64) -> Result<Holding, SyncError> {
    let own = Some(store.own_head()?.0);
    let (at, id, placed) = match store.others_at_or_below(cursor)? {
        Some((at, id, placed)) => (at, Some(id), placed),
        None => (0, None, None),
    };
    Ok(Holding {
        at,
        id,
        own,
        placed,
    })
}
