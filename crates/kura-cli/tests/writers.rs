//! Two `kura` processes writing one database at once for a minute (the window and the CLI are
//! the same situation, tested in the E2E suite): every write lands or is refused with a clear
//! `store_busy` after the busy timeout, none is lost or half-written, and `verify` passes. For
//! part of the minute the sqlite3 shell holds the write lock longer than the timeout, so the
//! refusal is seen, not only assumed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

fn kura(db: &Path, args: &[&str]) -> (bool, Value) {
    let o = Command::new(env!("CARGO_BIN_EXE_kura"))
        .arg("--db")
        .arg(db)
        .arg("--json")
        .args(args)
        .env("KURA_USER", "writer")
        .output()
        .expect("kura runs");
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.success(), v)
}

fn ok(db: &Path, args: &[&str]) -> Value {
    let (ok, v) = kura(db, args);
    assert!(ok, "kura {args:?}: {v}");
    v
}

fn sql(db: &Path, q: &str) -> String {
    let o = Command::new("sqlite3").arg(db).arg(q).output().unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[derive(Default)]
struct Tally {
    moves: u64,
    registered: Vec<String>,
    busy: u64,
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} moves, {} registered, {} busy",
            self.moves,
            self.registered.len(),
            self.busy
        )
    }
}

/// One writer: moves its own tube between two positions of the shared box, and every fifth
/// write registers a new specimen (both take the write lock; registration also takes serials).
fn writer(db: PathBuf, tube: String, positions: [&'static str; 2], stop: Arc<AtomicBool>) -> Tally {
    let mut t = Tally::default();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let (done, v) = if i % 5 == 0 {
            kura(
                &db,
                &[
                    "register", "--type", "PL1", "--study", "W", "--donor", &tube,
                ],
            )
        } else {
            let pos = positions[(t.moves % 2) as usize];
            kura(&db, &["move", &tube, "BOX-0001", "--position", pos])
        };
        match (done, v["error"]["code"].as_str()) {
            (true, _) if i % 5 == 0 => t.registered.push(v["parent"].as_str().unwrap().into()),
            (true, _) => t.moves += 1,
            (false, Some("store_busy")) => {
                let m = v["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    m.contains("more than 5 s") && m.contains("Nothing was recorded"),
                    "{m}"
                );
                t.busy += 1;
            }
            (false, _) => panic!("a write failed other than busy: {v}"),
        }
    }
    t
}

#[test]
fn two_cli_processes_writing_one_database_for_a_minute_lose_nothing() {
    let secs: u64 = std::env::var("KURA_WRITERS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("kura.sqlite3");
    ok(&db, &["init", "--prefix", "NCC"]);
    let layout = d.path().join("layout.toml");
    std::fs::write(&layout, include_str!("../../../assets/demo/layout.toml")).unwrap();
    ok(&db, &["storage", "apply", layout.to_str().unwrap()]);
    let tubes: Vec<String> = (0..2)
        .map(|_| {
            let r = ok(
                &db,
                &["register", "--type", "PL1", "--study", "W", "--donor", "D"],
            );
            r["parent"].as_str().unwrap().to_string()
        })
        .collect();
    ok(
        &db,
        &["check-in", &tubes[0], "BOX-0001", "--position", "A1"],
    );
    ok(
        &db,
        &["check-in", &tubes[1], "BOX-0001", "--position", "A2"],
    );
    let events_before: u64 = sql(&db, "SELECT count(*) FROM events").parse().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [(0, ["B1", "A1"]), (1, ["B2", "A2"])]
        .into_iter()
        .map(|(i, pos)| {
            let (db, tube, stop) = (db.clone(), tubes[i].clone(), stop.clone());
            std::thread::spawn(move || writer(db, tube, pos, stop))
        })
        .collect();
    // A third party holds the write lock past the busy timeout in the middle of the run.
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs / 3));
    let mut shell = Command::new("sqlite3")
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        shell.stdin.as_mut().unwrap(),
        b".timeout 5000\nBEGIN IMMEDIATE;\nINSERT INTO meta(key, value) VALUES ('held', '1');\n.shell sleep 7\nROLLBACK;\n",
    )
    .unwrap();
    let held = shell.wait_with_output().unwrap();
    assert!(
        held.status.success(),
        "{}",
        String::from_utf8_lossy(&held.stderr)
    );
    std::thread::sleep(Duration::from_secs(secs).saturating_sub(start.elapsed()));
    stop.store(true, Ordering::Relaxed);
    let tallies: Vec<Tally> = writers.into_iter().map(|w| w.join().unwrap()).collect();

    let busy: u64 = tallies.iter().map(|t| t.busy).sum();
    assert!(busy >= 1, "the held lock refused no write: {tallies:?}");
    for (tube, t) in tubes.iter().zip(&tallies) {
        assert!(
            t.moves > 10,
            "{tube}: too few writes landed to mean anything: {t:?}"
        );
        let moved: u64 = sql(
            &db,
            &format!(
                "SELECT count(*) FROM events e JOIN event_subjects x ON x.event = e.id
                 JOIN specimens s ON s.id = x.specimen WHERE s.code = '{tube}' AND e.kind = 'moved'"
            ),
        )
        .parse()
        .unwrap();
        assert_eq!(
            moved, t.moves,
            "{tube}: every move that said done is in the log, no other"
        );
        let v = ok(&db, &["show", tube]);
        let want = if t.moves % 2 == 1 { "B" } else { "A" };
        assert!(
            v["position"].as_str().unwrap().starts_with(want),
            "{tube} after {} moves: {v}",
            t.moves
        );
        for code in &t.registered {
            assert_eq!(ok(&db, &["show", code])["donor"], tube.as_str());
        }
    }
    let registered: u64 = tallies.iter().map(|t| t.registered.len() as u64).sum();
    let moves: u64 = tallies.iter().map(|t| t.moves).sum();
    let events_after: u64 = sql(&db, "SELECT count(*) FROM events").parse().unwrap();
    assert_eq!(
        events_after - events_before,
        moves + registered,
        "the log holds exactly the writes that said done"
    );
    assert_eq!(
        sql(&db, "SELECT count(*) FROM meta WHERE key = 'held'"),
        "0"
    );
    let v = ok(&db, &["verify"]);
    assert_eq!(v["ok"], true, "{v}");
    eprintln!(
        "two writers, {secs} s: {moves} moves and {registered} registrations landed, {busy} refused as busy"
    );
}
