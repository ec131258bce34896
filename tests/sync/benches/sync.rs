//! Sync throughput through the real programs: a bench with ~100,000 waiting events (a demo
//! database, then enrolled) pushes them all with one `kura sync`; a second bench, just enrolled,
//! pulls and applies them all with one `kura sync`. Against a local registry on SQLite and on a
//! durable throwaway PostgreSQL (fsync on). Each figure is the wall time of the whole process
//! (status, plan, batches of 500 compressed with zstd, answers stored per batch; pages of 1,000
//! applied with their cursor per transaction); `KURA_BENCH_RUNS` (default 3) runs on fresh
//! databases after one warm-up run that is not counted, reported as median and slowest.
//!
//! Build the release binaries first: `cargo build --release --bins`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use kura_sync_tests::{Bench, Registry};

/// Demo specimens that make just over 100,000 events (about 1.08 events each).
const SPECIMENS: &str = "92700";

struct Run {
    events: i64,
    push_s: f64,
    pull_s: f64,
    pulled: i64,
    /// A bench with its own work waiting: pushes it, then pulls the site's events, which the
    /// registry ordered before its own (they are undone and applied again around each page that
    /// touches them; the others pass them by).
    behind_s: f64,
    /// The third bench's own events (the import's registrations and what came with them).
    own: i64,
}

/// What one `kura sync` of these events may take, pushing or pulling, on either backend.
const PUSH_PULL_TARGET_S: f64 = 3.0;

/// Pre-barcoded tubes the third bench registers offline before its first sync.
const OWN_WAITING: usize = 20_000;

fn once(db: &str, dir: &std::path::Path, base: &std::path::Path) -> Run {
    // Named so that none takes the tests' small apply chunks (bench "b" of the tests applies two
    // events per transaction): these run with the default, as a bench does.
    let reg = Registry::start(db, dir);
    reg.site("DEMO", "DEMO");
    let a = Bench::new(dir, "pushing");
    std::fs::copy(base, &a.db).unwrap();
    a.enroll(&reg, "DEMO");
    let events = a.own_events();
    let t = Instant::now();
    let r = a.ok(&["sync"]);
    let push_s = t.elapsed().as_secs_f64();
    assert_eq!(r["pushed"].as_i64().unwrap(), events, "{r}");
    let b = Bench::new(dir, "pulling");
    b.enroll(&reg, "DEMO");
    let t = Instant::now();
    let r = b.ok(&["sync"]);
    let pull_s = t.elapsed().as_secs_f64();
    let pulled = r["pulled"].as_i64().unwrap();
    assert_eq!(pulled, events);
    let c = Bench::new(dir, "behind");
    c.enroll(&reg, "DEMO");
    let csv = dir.join("own.csv");
    let mut rows = String::from("code,type,container,storage,study,donor\n");
    for i in 0..OWN_WAITING {
        rows.push_str(&format!("OWN{i:07},PL1,SCI,D,waiting,W1\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    c.ok(&["import", csv.to_str().unwrap()]);
    // The tubes' registrations, and whatever else the import records (a new box, say).
    let own = c.own_events();
    assert!(own >= OWN_WAITING as i64, "{own}");
    let t = Instant::now();
    let r = c.ok(&["sync"]);
    let behind_s = t.elapsed().as_secs_f64();
    assert_eq!(r["pushed"].as_i64().unwrap(), own, "{r}");
    assert_eq!(r["pulled"].as_i64().unwrap(), events, "{r}");
    Run {
        events,
        push_s,
        pull_s,
        pulled,
        behind_s,
        own,
    }
}

fn measure(name: &str, db: impl Fn(usize) -> String, base: &std::path::Path) {
    let runs: usize = std::env::var("KURA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut counted: Vec<Run> = Vec::new();
    for i in 0..=runs {
        let d = tempfile::Builder::new()
            .prefix("kura-sync-bench-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let r = once(&db(i), d.path(), base);
        eprintln!(
            "{name} run {i}{}: push {} events {:.2} s, pull {} events {:.2} s, push {} and pull behind them {:.2} s",
            if i == 0 {
                " (warm-up, not counted)"
            } else {
                ""
            },
            r.events,
            r.push_s,
            r.pulled,
            r.pull_s,
            r.own,
            r.behind_s
        );
        if i > 0 {
            counted.push(r);
        }
    }
    let events = counted[0].events;
    let own = counted[0].own;
    let line = |what: &str, moved: i64, target: Option<f64>, mut secs: Vec<f64>| {
        secs.sort_by(f64::total_cmp);
        let median = secs[secs.len() / 2];
        let worst = secs[secs.len() - 1];
        println!(
            "{name}: {what}, one `kura sync`: median {median:.2} s ({:.0} events/s), slowest {worst:.2} s of {} runs{}",
            moved as f64 / median,
            secs.len(),
            match target {
                Some(t) if worst <= t => format!("; target ≤ {t} s: met"),
                Some(t) => format!("; target ≤ {t} s: NOT met"),
                None => String::new(),
            }
        );
    };
    line(
        &format!("push {events} waiting events"),
        events,
        Some(PUSH_PULL_TARGET_S),
        counted.iter().map(|r| r.push_s).collect(),
    );
    line(
        &format!("pull and apply {events} events on a new bench"),
        events,
        Some(PUSH_PULL_TARGET_S),
        counted.iter().map(|r| r.pull_s).collect(),
    );
    line(
        &format!(
            "push {own} own events, then pull and apply {events} that the registry ordered before them"
        ),
        events + own,
        None,
        counted.iter().map(|r| r.behind_s).collect(),
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let base_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sync-bench");
    std::fs::create_dir_all(&base_dir).unwrap();
    let base = base_dir.join(format!("demo-{SPECIMENS}.sqlite3"));
    if !base.exists() {
        let maker = Bench::new(&base_dir, "maker");
        maker.ok(&["demo", "--specimens", SPECIMENS]);
        std::fs::rename(&maker.db, &base).unwrap();
    }
    println!(
        "sync benchmark: {} runs after a warm-up; wall time of each whole `kura sync` process, release build, this machine",
        std::env::var("KURA_BENCH_RUNS").unwrap_or_else(|_| "3".into())
    );
    measure(
        "SQLite registry",
        |i| {
            let p = base_dir.join(format!("registry-{i}.sqlite3"));
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
            }
            format!("sqlite://{}", p.display())
        },
        &base,
    );
    let server =
        kura_registry_postgres::throwaway::Throwaway::start(true).expect("a throwaway PostgreSQL");
    let rt = tokio::runtime::Runtime::new().unwrap();
    measure(
        "PostgreSQL registry (durable)",
        |_| rt.block_on(server.fresh()).unwrap(),
        &base,
    );
}
