//! `Engine::round` as a table, against a scripted [`Remote`]: the registry's real storage
//! (`kura-registry-sqlite` on a temporary file, the same code the server runs behind its HTTP
//! layer) with faults put between it and the engine — an answer lost after the registry stored
//! the batch, a 5xx, an answer one verdict short, the registry restored from an older copy under
//! a round (a gap, then the order of the site's events changed), a history that is not this
//! bench's (a fork), a registry that cannot be reached. Each case says what the round answers and
//! which requests it made; every case but the fork then runs a clean round and checks that
//! nothing was lost or stored twice. The real processes and a faulty network are in `tests/it`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use kura_domain::time::SteppingClock;
use kura_domain::{Clock, EventBody, Timestamp};
use kura_proto::{
    ClaimResponse, Holding, Lease, PullResponse, PushRequest, PushResponse, StatusResponse,
};
use kura_registry_db::{Batch, Caller, DbError, RegistryDb};
use kura_registry_sqlite::SqliteDb;
use kura_store::Store;
use kura_sync::{Config, Engine, Remote, RemoteError, Report};
use kura_testkit as kit;
use uuid::Uuid;

/// The registry's clock and the bench's start (µs).
const NOW: i64 = 1_780_000_000_000_000;
const SITE: &str = "NCGM";

/// What goes wrong, at the next request of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// status: the network is down.
    Unreachable,
    /// push: the registry stores the batch; its answer is lost on the way back.
    LostAnswer,
    /// push: 503, nothing stored.
    Failed,
    /// push: stored, and answered one verdict short.
    VerdictShort,
    /// push: the registry is restored from its older copy just before this push arrives.
    RestoredBeforePush,
}

impl Fault {
    fn call(self) -> &'static str {
        match self {
            Fault::Unreachable => "status",
            _ => "push",
        }
    }
}

/// A registry's storage as the engine reaches it: the current one, and the older copy a
/// restore brings back.
struct Scripted {
    db: RefCell<Rc<SqliteDb>>,
    older: Rc<SqliteDb>,
    caller: Caller,
    faults: RefCell<VecDeque<Fault>>,
    /// The requests made, in order; a faulted one carries a `*`.
    calls: RefCell<Vec<String>>,
}

fn refused(e: DbError) -> RemoteError {
    RemoteError::Refused {
        status: 409,
        code: e.code().to_string(),
        message: e.to_string(),
    }
}

impl Scripted {
    /// The fault due at this request, if any; records the request.
    fn at(&self, call: &str) -> Option<Fault> {
        let mut faults = self.faults.borrow_mut();
        let fault = faults.front().copied().filter(|f| f.call() == call);
        if fault.is_some() {
            faults.pop_front();
        }
        let mark = if fault.is_some() { "*" } else { "" };
        self.calls.borrow_mut().push(format!("{call}{mark}"));
        fault
    }

    fn db(&self) -> Rc<SqliteDb> {
        self.db.borrow().clone()
    }

    fn restore(&self) {
        *self.db.borrow_mut() = self.older.clone();
    }

    fn calls(&self) -> String {
        self.calls
            .borrow_mut()
            .drain(..)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Remote for &Scripted {
    async fn status(&self) -> Result<StatusResponse, RemoteError> {
        if let Some(Fault::Unreachable) = self.at("status") {
            return Err(RemoteError::Unreachable {
                url: "https://registry.test".into(),
                detail: "connection refused".into(),
            });
        }
        let st = self.db().status(&self.caller).await.map_err(refused)?;
        Ok(StatusResponse {
            v: kura_proto::VERSION,
            workstation: self.caller.workstation,
            site: self.caller.site.clone(),
            head: st.head,
            leases: st.leases,
            server_time: NOW,
            clock_skew_us: st.clock_skew_us,
            site_seq: st.site_seq,
            kinds: Vec::new(),
        })
    }

    async fn push(&self, req: &PushRequest) -> Result<PushResponse, RemoteError> {
        let fault = self.at("push");
        if fault == Some(Fault::Failed) {
            return Err(RemoteError::Server {
                status: 503,
                code: "unavailable".into(),
                message: "the registry's database is restarting".into(),
            });
        }
        if fault == Some(Fault::RestoredBeforePush) {
            self.restore();
        }
        let batch = Batch {
            events: req.events.clone(),
            sent_at: req.sent_at,
            received_at: NOW,
        };
        let mut res = self.db().push(&self.caller, batch).await.map_err(refused)?;
        match fault {
            Some(Fault::LostAnswer) => Err(RemoteError::Timeout { seconds: 30 }),
            Some(Fault::VerdictShort) => {
                res.verdicts.pop();
                Ok(res)
            }
            _ => Ok(res),
        }
    }

    async fn pull(
        &self,
        after: u64,
        limit: u32,
        holding: Holding,
    ) -> Result<PullResponse, RemoteError> {
        self.at("pull");
        self.db()
            .pull(&self.caller, after, limit, Some(holding))
            .await
            .map_err(refused)
    }

    // Parcels are not scripted: they go straight to the database, unrecorded.
    async fn post_parcel(
        &self,
        req: &kura_proto::ParcelPost,
    ) -> Result<kura_proto::ParcelPosted, RemoteError> {
        let kura_proto::Parcel::Bundle { bundle } = req.parcel.clone() else {
            return Err(RemoteError::Protocol("not a bundle".into()));
        };
        self.db()
            .post_bundle(&self.caller, bundle, NOW)
            .await
            .map_err(refused)
    }

    async fn parcels(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<kura_proto::ParcelsResponse, RemoteError> {
        self.db()
            .parcels(&self.caller, after, limit)
            .await
            .map_err(refused)
    }

    async fn lease(&self, year: i32, count: u64) -> Result<Lease, RemoteError> {
        self.at("lease");
        self.db()
            .lease(&self.caller, year, count, NOW)
            .await
            .map_err(refused)
    }

    async fn claim(&self, leases: Vec<Lease>) -> Result<ClaimResponse, RemoteError> {
        self.at("claim");
        let c = self
            .db()
            .claim(&self.caller, leases, NOW)
            .await
            .map_err(refused)?;
        Ok(ClaimResponse {
            v: kura_proto::VERSION,
            kept: c.kept,
            taken: c.taken,
        })
    }
}

/// Enrolls `ws` at the site (made when missing) and answers who it is.
async fn enroll(db: &SqliteDb, ws: Uuid) -> Caller {
    kura_registry_db::conformance::enroll_as(db, SITE, "TST", ws)
        .await
        .0
}

/// Another bench's stream, pushed straight into a registry's storage.
async fn push_stream(db: &SqliteDb, caller: &Caller, events: Vec<kura_domain::Envelope>) {
    let res = db
        .push(caller, kura_registry_db::conformance::batch(events))
        .await
        .unwrap();
    assert!(
        res.verdicts
            .iter()
            .all(|v| matches!(v, kura_proto::Verdict::Accepted { .. })),
        "{:?}",
        res.verdicts
    );
}

/// The bench the engine syncs (A), two other benches of the site (B, C) and the registry with
/// its older copy, each enrolled in both.
struct World {
    _dir: tempfile::TempDir,
    bench: PathBuf,
    remote: Scripted,
    b: (Caller, kit::Bench),
    c: (Caller, kit::Bench),
    clock: Arc<SteppingClock>,
    /// Events the bench recorded so far.
    recorded: u64,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let now = SqliteDb::open(&dir.path().join("registry.sqlite3")).unwrap();
        let older = SqliteDb::open(&dir.path().join("registry-older.sqlite3")).unwrap();
        let mut callers = Vec::new();
        for ws in [a, b, c] {
            let caller = enroll(&now, ws).await;
            assert_eq!(enroll(&older, ws).await, caller);
            callers.push(caller);
        }
        let bench = dir.path().join("bench.sqlite3");
        let mut store = Store::open(&bench, || a).unwrap();
        store
            .write(|tx| {
                tx.set_enrollment(
                    "https://registry.test",
                    "file:token",
                    None,
                    &serde_json::to_string(&callers[0].site).unwrap(),
                )
            })
            .unwrap();
        World {
            _dir: dir,
            bench,
            remote: Scripted {
                db: RefCell::new(Rc::new(now)),
                older: Rc::new(older),
                caller: callers[0].clone(),
                faults: RefCell::new(VecDeque::new()),
                calls: RefCell::new(Vec::new()),
            },
            b: (callers[1].clone(), kit::Bench::new(b)),
            c: (callers[2].clone(), kit::Bench::new(c)),
            clock: Arc::new(SteppingClock::new(Timestamp(NOW), 1_000)),
            recorded: 0,
        }
    }

    fn store(&self) -> Store {
        Store::open_existing(&self.bench).unwrap()
    }

    /// The bench records `n` more events (its site, then rooms in it).
    fn record(&mut self, n: u64) {
        let mut store = self.store();
        for _ in 0..n {
            self.recorded += 1;
            let i = self.recorded;
            let body = if i == 1 {
                kit::create("SA", "site", None, None)
            } else {
                kit::create(&format!("ROOMA{i}"), "room", Some("SA"), None)
            };
            let at = self.clock.now();
            store
                .write(|tx| tx.append(Uuid::now_v7(), "technician", at, body).map(drop))
                .unwrap();
        }
    }

    /// B's events, pushed into the registry now in use.
    async fn b_pushes(&mut self, bodies: &[EventBody]) -> Vec<kura_domain::Envelope> {
        let events = self.b.1.events(bodies);
        push_stream(&self.remote.db(), &self.b.0, events.clone()).await;
        events
    }

    async fn round(&self) -> Result<Report, String> {
        let cfg = Config {
            attempts: 3,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
            ..Config::default()
        };
        Engine::new(&self.bench, &self.remote, self.clock.clone(), cfg)
            .round(&mut |_| {})
            .await
            .map_err(|e| e.code().to_string())
    }

    fn count(&self, sql: &str) -> u64 {
        rusqlite::Connection::open(&self.bench)
            .unwrap()
            .query_row(sql, [], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    }
}

/// How a case's world stands before its round.
#[derive(Debug, Clone, Copy)]
enum Before {
    /// The bench recorded 5 events; B pushed 6.
    Fresh,
    /// The bench pushed 3 events in an earlier round and recorded 2 more.
    PushedThenMore,
    /// The registry holds 2 events as this bench's first two seqs that it never recorded; the
    /// bench recorded 5.
    AnotherHistory,
    /// The bench pulled B's 6 events; then the registry was restored from its older copy, in
    /// which C's 2 events came before B sent its 6 again.
    PulledThenReordered,
}

struct Case {
    name: &'static str,
    before: Before,
    faults: &'static [Fault],
    /// The round's error code; "" when it succeeds.
    code: &'static str,
    /// The report (when it succeeds): pushed, duplicates, pulled, relearned.
    report: (u64, u64, u64, bool),
    calls: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "a quiet round pushes the bench's events and pulls B's",
        before: Before::Fresh,
        faults: &[],
        code: "",
        report: (5, 0, 6, false),
        calls: "status push pull",
    },
    Case {
        name: "a lost answer costs a re-send, never an event",
        before: Before::Fresh,
        faults: &[Fault::LostAnswer],
        code: "",
        report: (0, 5, 6, false),
        calls: "status push* push pull",
    },
    Case {
        name: "a 5xx is tried again",
        before: Before::Fresh,
        faults: &[Fault::Failed],
        code: "",
        report: (5, 0, 6, false),
        calls: "status push* push pull",
    },
    Case {
        name: "an answer one verdict short records nothing",
        before: Before::Fresh,
        faults: &[Fault::VerdictShort],
        code: "registry_protocol",
        report: (0, 0, 0, false),
        calls: "status push*",
    },
    Case {
        name: "a registry restored under the round says gap; the round asks again once",
        before: Before::PushedThenMore,
        faults: &[Fault::RestoredBeforePush],
        code: "",
        report: (5, 0, 0, false),
        calls: "status push* status push pull",
    },
    Case {
        name: "another history under this bench's seqs stops pushing and overwrites nothing",
        before: Before::AnotherHistory,
        faults: &[],
        code: "sequence_fork",
        report: (0, 0, 0, false),
        calls: "status pull",
    },
    Case {
        name: "a changed order is learnt again from the last position both agree on",
        before: Before::PulledThenReordered,
        faults: &[],
        code: "",
        report: (0, 0, 2, true),
        // Refused at 6; probes at 5 and 3 (doubling down), then 1 (halving): none agrees, so
        // the order is learnt again from 0.
        calls: "status pull pull pull pull pull",
    },
    Case {
        name: "an unreachable registry: the tries are used up, the failure recorded",
        before: Before::Fresh,
        faults: &[Fault::Unreachable, Fault::Unreachable, Fault::Unreachable],
        code: "registry_unreachable",
        report: (0, 0, 0, false),
        calls: "status* status* status*",
    },
];

async fn prepare(w: &mut World, before: Before) {
    match before {
        Before::Fresh => {
            w.record(5);
            w.b_pushes(&kit::storage("B", &["BXB1", "BXB2"])).await;
        }
        Before::PushedThenMore => {
            w.record(3);
            let r = w.round().await.unwrap();
            assert_eq!(r.pushed, 3);
            w.record(2);
        }
        Before::AnotherHistory => {
            let mut other = kit::Bench::new(w.remote.caller.workstation);
            let events = other.events(&kit::storage("X", &[]))[..2].to_vec();
            push_stream(&w.remote.db(), &w.remote.caller, events).await;
            w.record(5);
        }
        Before::PulledThenReordered => {
            let sent = w.b_pushes(&kit::storage("B", &["BXB1", "BXB2"])).await;
            let r = w.round().await.unwrap();
            assert_eq!(r.pulled, 6);
            w.remote.restore();
            let c = w.c.1.events(&kit::storage("C", &[])[..2]);
            push_stream(&w.remote.db(), &w.c.0, c).await;
            // B, restored from the same copy, sends its events again: the same ids and hashes,
            // now after C's.
            push_stream(&w.remote.db(), &w.b.0, sent).await;
        }
    }
    w.remote.calls();
}

#[tokio::test]
async fn a_round_under_each_fault() {
    for case in CASES {
        let mut w = World::new().await;
        prepare(&mut w, case.before).await;
        w.remote.faults.borrow_mut().extend(case.faults);
        let got = w.round().await;
        let calls = w.remote.calls();
        let name = case.name;
        match (&got, case.code) {
            (Ok(r), "") => {
                let (pushed, duplicates, pulled, relearned) = case.report;
                assert_eq!(
                    (r.pushed, r.duplicates, r.pulled, r.relearned),
                    (pushed, duplicates, pulled, relearned),
                    "{name}: pushed, duplicates, pulled, relearned"
                );
            }
            (Err(code), want) => assert_eq!(code, want, "{name}"),
            (Ok(r), want) => panic!("{name}: wanted {want}, the round succeeded: {r:?}"),
        }
        assert_eq!(calls, case.calls, "{name}: the requests made");
        assert!(
            w.remote.faults.borrow().is_empty(),
            "{name}: a fault unused"
        );
        let state = w.store().sync_state().unwrap();
        assert_eq!(
            state.last_error_code.as_deref().unwrap_or(""),
            case.code,
            "{name}: the round recorded how it ended"
        );
        if case.code == "sequence_fork" {
            // Stopped: the next round pushes nothing either, and the registry keeps its own.
            assert!(state.stopped.is_some(), "{name}: not stopped");
            assert_eq!(w.round().await.unwrap_err(), "sequence_fork", "{name}");
            assert_eq!(w.remote.db().event_count().await.unwrap(), 2, "{name}");
            continue;
        }
        // Whatever happened, a clean round mends it: every event once at the registry, every
        // event of the site here, the mark at the head.
        w.round()
            .await
            .unwrap_or_else(|e| panic!("{name}: the next round: {e}"));
        let st = w.remote.db().status(&w.remote.caller).await.unwrap();
        let store = w.store();
        let (head, hash) = store.own_head().unwrap();
        assert_eq!(head, w.recorded, "{name}");
        assert_eq!(
            (st.head.seq, st.head.hash),
            (head, (head > 0).then_some(hash)),
            "{name}: the registry's head of this stream"
        );
        let state = store.sync_state().unwrap();
        assert_eq!(state.pushed_seq, head, "{name}: the mark");
        assert_eq!(state.pull_cursor, st.site_seq, "{name}: the cursor");
        assert_eq!(
            w.remote.db().event_count().await.unwrap(),
            st.site_seq,
            "{name}: no event twice at the registry"
        );
        assert_eq!(
            w.count("SELECT count(*) FROM events"),
            st.site_seq,
            "{name}: every event of the site here, once"
        );
        // And in the registry's order: it agrees with what the bench holds at its cursor.
        let (at, id, placed) = store
            .others_at_or_below(state.pull_cursor)
            .unwrap()
            .map_or((0, None, None), |(at, id, placed)| (at, Some(id), placed));
        let holding = Holding {
            at,
            id,
            own: Some(head),
            placed,
        };
        w.remote
            .db()
            .pull(&w.remote.caller, state.pull_cursor, 1, Some(holding))
            .await
            .unwrap_or_else(|e| panic!("{name}: the orders differ: {e}"));
    }
}
