//! Faults between bench and registry, each followed by counting the registry's rows: every event
//! exactly once, nothing left unsent.

use std::path::Path;
use std::time::{Duration, Instant};

use kura_sync_tests::{Bench, Fault, Proxy, Registry};

use crate::{agree, register, settle};

const PUSH: &str = "POST /api/v1/events";
const PULL: &str = "GET /api/v1/events";
const STATUS: &str = "GET /api/v1/status";

/// The registry holds exactly this bench's events, once each, seq 1..n.
fn exactly_once(reg: &Registry, b: &Bench) {
    let (n, gapless) = reg.stream(&b.workstation());
    assert_eq!(
        n,
        b.own_events(),
        "bench {}: every event at the registry",
        b.name
    );
    assert!(gapless, "seqs 1..n without a hole");
    let (total, distinct) = reg.counts();
    assert_eq!(total, distinct, "no event stored twice");
    assert_eq!(
        b.status()["waiting"],
        0,
        "nothing left unsent on {}",
        b.name
    );
}

pub fn faults_on_the_way(reg: &Registry, dir: &Path) {
    reg.site("NCGM", "NCG");
    let proxy = Proxy::start(reg.port);
    let (a, b) = (Bench::new(dir, "a"), Bench::new(dir, "b"));
    for x in [&a, &b] {
        x.enroll_at(&proxy.url(), &reg.code("NCGM")).unwrap();
    }
    a.ok(&["storage", "apply", crate::LAYOUT]);
    settle(&[&a, &b]);

    // (what, the faults for a's next round, whether that round still ends well)
    let cases: Vec<(&str, Vec<(&str, Fault)>, bool)> = vec![
        (
            "a push cut mid-request",
            vec![(PUSH, Fault::CutRequest(300))],
            true,
        ),
        (
            "a push cut mid-response (the acknowledgement lost)",
            vec![(PUSH, Fault::CutResponse(40))],
            true,
        ),
        (
            "a stalled push",
            vec![(PUSH, Fault::Stall(Duration::from_secs(4)))],
            true,
        ),
        (
            "slow answers",
            vec![
                (STATUS, Fault::Delay(Duration::from_millis(800))),
                (PUSH, Fault::Delay(Duration::from_millis(1500))),
            ],
            true,
        ),
        (
            "the same batch answered twice",
            vec![(PUSH, Fault::Twice)],
            true,
        ),
        (
            "5xx answers",
            vec![
                (STATUS, Fault::Unavailable),
                (PUSH, Fault::Unavailable),
                (PUSH, Fault::Unavailable),
            ],
            true,
        ),
        (
            "the registry gone for longer than a round tries",
            (0..6).map(|_| (STATUS, Fault::CutRequest(10))).collect(),
            false,
        ),
    ];
    for (what, faults, ends_well) in cases {
        let ids = register(&a, 3, "BOX-0001");
        a.ok(&["check-out", &ids[0], "--to", "Dr. Ito"]);
        let waiting = a.status()["waiting"].as_u64().unwrap();
        assert!(waiting >= 5, "{what}");
        for (on, f) in faults {
            proxy.plan(on, f);
        }
        let r = a.sync();
        assert_eq!(r.is_ok(), ends_well, "{what}: {r:?}");
        assert_eq!(proxy.pending(), 0, "{what}: every fault was met");
        if !ends_well {
            let st = a.status();
            assert_eq!(st["state"], "offline", "{what}: {st}");
            assert_eq!(
                st["waiting"].as_u64().unwrap(),
                waiting,
                "{what}: nothing lost"
            );
        }
        // Whatever happened, the next round finishes the job.
        a.sync_ok();
        exactly_once(reg, &a);
    }

    // A pull cut half-way, twice: the page is read again, applied once.
    register(&a, 2, "BOX-0002");
    a.sync_ok();
    proxy.plan(PULL, Fault::CutResponse(600));
    proxy.plan(PULL, Fault::CutRequest(20));
    b.sync_ok();
    assert_eq!(proxy.pending(), 0);

    // The bench killed between sending a batch and storing the answer.
    register(&a, 4, "BOX-0002");
    let out = a
        .cmd()
        .env("KURA_SYNC_CRASH", "after_push_response")
        .args(["sync", "--timeout", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the process died mid-round");
    let waiting = a.status()["waiting"].as_u64().unwrap();
    assert!(waiting >= 5, "the answer never reached the database");
    let (held, _) = reg.stream(&a.workstation());
    assert_eq!(held, a.own_events(), "… but the registry stored the batch");
    let again = a.sync_ok();
    assert_eq!(
        again["duplicates"].as_u64().unwrap(),
        waiting,
        "a re-send, nothing more"
    );
    assert_eq!(again["pushed"], 0);
    exactly_once(reg, &a);

    // A crash while applying a page: nothing of it stays, the next round applies it whole.
    let before = b.events();
    let cursor_before = b.status();
    let out = b
        .cmd()
        .env("KURA_SYNC_CRASH", "before_pull_commit")
        .args(["sync", "--timeout", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(b.events(), before, "the page's transaction rolled back");
    assert_eq!(b.status()["last_success"], cursor_before["last_success"]);
    let r = b.sync_ok();
    assert!(r["pulled"].as_u64().unwrap() >= 5, "{r}");

    // A crash between two transactions of one page (bench b applies two events in each): the
    // first stays with the cursor at its last event, the next round goes on from there.
    register(&a, 4, "BOX-0002");
    a.sync_ok();
    let before = b.events();
    let out = b
        .cmd()
        .env("KURA_SYNC_CRASH", "before_second_chunk_commit")
        .args(["sync", "--timeout", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        b.events(),
        before + 2,
        "the first transaction of the page stayed"
    );
    b.verify_ok();
    let r = b.sync_ok();
    assert_eq!(
        r["pulled"].as_u64().unwrap() + 2,
        a.own_events() as u64 - (before as u64 - b.own_events() as u64),
        "the rest of the page, once: {r}"
    );
    settle(&[&a, &b]);
    exactly_once(reg, &b);
    agree(reg, "NCGM", &[&a, &b]);
}

#[test]
fn faults_between_bench_and_registry_lose_nothing_and_duplicate_nothing() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    faults_on_the_way(&reg, d.path());
}

#[test]
fn the_registry_killed_mid_push_and_restarted() {
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::sqlite(d.path());
    reg.site("DEMO", "DEMO");
    let a = Bench::new(d.path(), "a");
    // A bench that worked alone for a while: thousands of events wait.
    a.ok(&["demo", "--specimens", "8000"]);
    a.enroll(&reg, "DEMO");
    let total = a.own_events();
    assert!(total > 8000);
    let mut child = a
        .cmd()
        .args(["sync", "--timeout", "3", "--attempts", "10"])
        .spawn()
        .unwrap();
    // Kill it once part of the push is stored.
    let t = Instant::now();
    loop {
        let (n, _) = reg.counts();
        if n > 0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the push never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    reg.kill();
    let (at_kill, distinct) = reg.counts();
    assert!(at_kill < total, "killed mid-push ({at_kill} of {total})");
    assert_eq!(at_kill, distinct);
    std::thread::sleep(Duration::from_millis(1500));
    reg.restart();
    let status = child.wait().unwrap();
    if !status.success() {
        a.sync_ok();
    }
    exactly_once(&reg, &a);
    a.verify_ok();
}
