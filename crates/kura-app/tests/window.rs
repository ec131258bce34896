//! What the window asks of `kura-app`, on a database of realistic shape.
//!
//! The query-plan guard: every statement the window runs on a timer and for a scan starts where
//! the data is small. The window's 3-second poll once read all of `specimens` for the
//! destruction queue, and at a million specimens one scan in twelve waited behind it; no timing
//! test would have told. This one asks SQLite: each call the window makes (the same `Kura`
//! method its Tauri command calls) runs on a database of realistic shape — demo storage and
//! specimens, users signed in, a donor's consent withdrawn, enrolled, with events pulled from
//! another bench and an open conflict — with every statement it starts recorded, and
//! `EXPLAIN QUERY PLAN` of each must not scan a table that grows with the specimens or the log.
//!
//! What the window calls is listed in `WINDOW` below, by Tauri command: a screen or a poll that
//! starts calling something else adds it here (`ui/src/lib/app.svelte.ts` says so too).
//! `PLANS_SHOW=1` prints every statement with its plan.
//!
//! And a scan's answer says itself what the window must add to it (in conflict, consent
//! withdrawn), so that the window need not reload those lists to know.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kura_app::{CheckOut, Kura, Meaning, Signing};
use kura_domain::Placed;
use kura_domain::Role;
use kura_store::{Answer, Store};

/// Tables that grow with the specimens or with the log: a plan never scans them whole.
const BIG: &[&str] = &[
    "specimens",
    "events",
    "containers",
    "undo",
    "event_subjects",
    "event_order",
    "conflicts",
    "label_prints",
    "signatures",
];

const ADMIN_PW: &str = "admin-password-1";

/// The window's clock, moved on by the test (check-outs made due, then a month later).
struct Wall(std::sync::atomic::AtomicI64);

impl kura_domain::time::Clock for Wall {
    fn now(&self) -> kura_domain::Timestamp {
        kura_domain::Timestamp(self.0.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst))
    }
}

fn signing(user: &str, pw: &str) -> Signing {
    Signing {
        user: Some(user.into()),
        secret: pw.into(),
        meaning: Meaning::Approved,
    }
}

/// What the registry would do, in memory: places `from`'s events past its mark in the site's
/// order (answering them) and applies the others' events past `to`'s cursor.
struct Site {
    log: Vec<Placed>,
}

impl Site {
    fn push(&mut self, from: &mut Store) {
        loop {
            let mark = from.sync_state().unwrap().pushed_seq;
            let events = from.own_events(mark + 1, 500, 1 << 20).unwrap();
            if events.is_empty() {
                return;
            }
            let mut answers = Vec::new();
            for e in events {
                let server_seq = self.log.len() as u64 + 1;
                answers.push(Answer::Stored {
                    seq: e.seq,
                    server_seq: Some(server_seq),
                });
                self.log.push(Placed {
                    server_seq,
                    received_at: e.at,
                    event: e,
                });
            }
            from.write(|tx| tx.record_answers(&answers, 0)).unwrap();
        }
    }

    fn pull(&self, to: &mut Store) {
        let cursor = to.sync_state().unwrap().pull_cursor as usize;
        let ws = to.workstation();
        let page: Vec<_> = self.log[cursor..]
            .iter()
            .filter(|e| e.event.workstation != ws)
            .cloned()
            .collect();
        let next = self.log.len() as u64;
        to.write(|tx| tx.apply_remote(&page, next)).unwrap();
        to.write(|tx| tx.finish_pull()).unwrap();
    }
}

fn enroll(db: &Path) -> Store {
    let mut s = Store::open(db, uuid::Uuid::now_v7).unwrap();
    s.write(|tx| {
        tx.set_enrollment(
            "https://registry.test",
            "file:token",
            None,
            "{\"code\":\"S\"}",
        )
    })
    .unwrap();
    s
}

/// The database the window works on, and a few codes to scan.
struct World {
    _dir: tempfile::TempDir,
    kura: Kura,
    stored: Vec<String>,
    out: String,
    conflicted: String,
    withdrawn: String,
    free_box: String,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let (db_a, db_b) = (dir.path().join("a.sqlite3"), dir.path().join("b.sqlite3"));
    let t0 = kura_domain::Timestamp::parse("2026-01-05T09:00:00Z").unwrap();
    let wall = Arc::new(Wall(t0.0.into()));
    let mut a = Kura::open_with_clock(&db_a, "tester", wall.clone()).unwrap();
    a.demo(3_000, 7, &mut |_, _| {}).unwrap();
    let stored: Vec<String> = a
        .find(&kura_store::FindQuery {
            status: Some("available".into()),
            limit: 400,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|v| v.container.is_some())
        .map(|v| v.code)
        .collect();
    // An empty box for the check-ins.
    let free_box = "GUARD-B1".to_string();
    a.apply_layout(
        r#"
[[container]]
code = "GUARD-F"
type = "freezer-5-shelves"
parent = "DEMO-B1-FRZ"
temperature = "-80"

[[container]]
code = "GUARD-R"
type = "rack-5x4"
parent = "GUARD-F"
position = "I"

[[container]]
code = "GUARD-B1"
type = "box-9x9"
parent = "GUARD-R"
"#,
    )
    .unwrap();
    // Enrolled, everything pushed, the other bench has it all.
    let (mut sa, mut sb) = (enroll(&db_a), enroll(&db_b));
    let mut site = Site { log: Vec::new() };
    site.push(&mut sa);
    site.pull(&mut sb);
    // Both benches check out one tube: the other bench's event is refused here, a conflict.
    let conflicted = stored[0].clone();
    let out = |to: &str, due: Option<&str>| CheckOut {
        to: to.into(),
        purpose: "analysis".into(),
        due: due.map(Into::into),
        note: None,
    };
    let mut b = Kura::open(&db_b, "other").unwrap();
    b.check_out(std::slice::from_ref(&conflicted), &out("Dr. B", None))
        .unwrap();
    a.check_out(std::slice::from_ref(&conflicted), &out("Dr. A", None))
        .unwrap();
    // One more out, due in a week; a month passes.
    a.check_out(
        std::slice::from_ref(&stored[1]),
        &out("Dr. A", Some("2026-01-12")),
    )
    .unwrap();
    wall.0
        .fetch_add(30 * 86_400_000_000, std::sync::atomic::Ordering::SeqCst);
    site.push(&mut sb);
    site.pull(&mut sa);
    site.push(&mut sa);
    assert!(a.show(&conflicted).unwrap().in_conflict, "a conflict");
    // People: an administrator, a supervisor who withdraws a donor's consent, a technician
    // with a badge who is signed in when the window polls.
    a.add_first_administrator("admin", "Admin", ADMIN_PW)
        .unwrap();
    let admin = signing("admin", ADMIN_PW);
    for (user, role, badge) in [
        ("sup", Role::Supervisor, "USR-0002"),
        ("tech", Role::Technician, "USR-0001"),
    ] {
        a.with_signature(kura_app::users::Act::ManageUsers, Some(&admin), |k| {
            k.add_user(user, user, role, Some(badge), &format!("{user}-password"))
        })
        .unwrap();
        a.with_signature(kura_app::users::Act::ManageUsers, Some(&admin), |k| {
            k.set_secret(user, kura_domain::Secret::Pin, "4321")
        })
        .unwrap();
    }
    a.sign_out();
    a.sign_in("sup", "sup-password").unwrap();
    // A donor none of the other tubes the test scans comes from.
    let others: Vec<String> = stored[..16]
        .iter()
        .map(|c| a.show(c).unwrap().donor)
        .collect();
    let (withdrawn, donor) = stored[16..]
        .iter()
        .map(|c| (c.clone(), a.show(c).unwrap().donor))
        .find(|(_, d)| !others.contains(d))
        .unwrap();
    a.with_signature(
        kura_app::users::Act::Block,
        Some(&signing("sup", "sup-password")),
        |k| k.withdraw_consent(&donor, "withdrawn by letter"),
    )
    .unwrap();
    a.sign_out();
    a.sign_in("tech", "tech-password").unwrap();
    World {
        _dir: dir,
        kura: a,
        stored,
        out: String::new(),
        conflicted,
        withdrawn,
        free_box,
    }
}

/// A call the window makes: the Tauri command's name and what it runs in `kura-app`.
type Call = (&'static str, &'static str, fn(&mut World));

/// What the window calls on a timer, for a scan, and when a screen opens on a scanned specimen.
const WINDOW: &[Call] = &[
    // Every 3 seconds (App.svelte): the header's status and who is signed in.
    ("timer", "sync_status", |w| {
        w.kura.sync_status().unwrap();
    }),
    ("timer", "who", |w| {
        w.kura.who_active(true).unwrap();
    }),
    // A box, then tubes (Check in).
    ("scan", "box_map", |w| {
        let b = w.free_box.clone();
        w.kura.box_map(&b).unwrap();
    }),
    ("scan", "check_in", |w| {
        // A tube taken out of its box and put into the empty one.
        let code = w.stored[10].clone();
        let b = w.free_box.clone();
        w.kura.move_specimen(&code, &b, None).unwrap();
        let fresh = w.stored[11].clone();
        w.kura
            .check_out(
                std::slice::from_ref(&fresh),
                &CheckOut {
                    to: "Dr. C".into(),
                    purpose: "analysis".into(),
                    due: None,
                    note: None,
                },
            )
            .unwrap();
        w.out = fresh;
        // A check-in of a stored tube is refused (it is somewhere); the statements still ran.
        let _ = w.kura.check_in(&w.stored[12].clone(), &b, None);
    }),
    // Check out, Move, Find: the scanned specimen with its path; Find adds its box.
    ("scan", "show", |w| {
        for c in [
            w.stored[3].clone(),
            w.conflicted.clone(),
            w.withdrawn.clone(),
        ] {
            w.kura.show(&c).unwrap();
        }
    }),
    ("scan", "locate", |w| {
        let c = w.stored[4].clone();
        assert!(w.kura.locate(&c).unwrap().box_map.is_some());
    }),
    ("scan", "scan_flags", |w| {
        for c in [
            w.stored[3].clone(),
            w.conflicted.clone(),
            w.withdrawn.clone(),
        ] {
            w.kura.scan_flags(&c).unwrap();
        }
    }),
    ("scan", "return_specimen", |w| {
        let c = w.out.clone();
        w.kura.return_specimen(&c, true).unwrap();
    }),
    ("scan", "move_specimen", |w| {
        let c = w.stored[13].clone();
        let b = w.free_box.clone();
        w.kura.move_specimen(&c, &b, Some("C4")).unwrap();
    }),
    // CMD-DONE on Check out, and the overdue list it reloads.
    ("scan", "check_out", |w| {
        let c = w.stored[14].clone();
        w.kura
            .check_out(
                &[c],
                &CheckOut {
                    to: "Dr. D".into(),
                    purpose: "qc".into(),
                    due: Some("2030-01-01".into()),
                    note: None,
                },
            )
            .unwrap();
    }),
    ("scan", "overdue", |w| {
        assert!(!w.kura.overdue(100).unwrap().is_empty());
    }),
    // A badge and its PIN.
    ("scan", "sign_in_badge", |w| {
        w.kura.sign_in_badge("USR-0001", "4321").unwrap();
        w.kura.who().unwrap();
    }),
    // Labels: a scanned tube's live preview; a box adds its tubes.
    ("scan", "label_preview", |w| {
        let c = w.stored[3].clone();
        w.kura.label_preview(&c, "cryo-38x13-a4").unwrap();
    }),
    ("scan", "codes_in_box", |w| {
        let b = w.free_box.clone();
        w.kura.codes_in_box(&b).unwrap();
    }),
    // A specimen's detail, opened by a scan (Storage, Sync, Detail): its history, lineage,
    // conflicts, the signatures of its events, its box.
    ("scan", "history", |w| {
        for c in [w.conflicted.clone(), w.withdrawn.clone()] {
            for e in w.kura.history(&c).unwrap() {
                w.kura.signatures(e.event_id).unwrap();
            }
        }
    }),
    ("scan", "lineage", |w| {
        let c = w.withdrawn.clone();
        w.kura.lineage(&c).unwrap();
    }),
    ("scan", "conflicts", |w| {
        let c = w.conflicted.clone();
        assert_eq!(w.kura.conflicts(Some(&c), false).unwrap().len(), 1);
    }),
    // The People screen's destruction queue (opened by hand; once polled every 3 s).
    ("screen", "destruction_queue", |w| {
        assert!(!w.kura.destruction_queue().unwrap().is_empty());
    }),
    // The Ship screen: a tube shipped to another site (its bundle made from its registration
    // and lineage), then the list of shipments.
    ("scan", "ship", |w| {
        let code = w.stored[20].clone();
        let d = w
            .kura
            .ship(&kura_app::ShipForm {
                scans: vec![code],
                to_site: Some("NCN".into()),
                temperature: "ambient".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(d.tubes.len(), 1);
    }),
    ("screen", "shipments", |w| {
        assert!(!w.kura.shipments().unwrap().is_empty());
    }),
];

/// The tables and aliases `sql` names after FROM or JOIN: alias → table.
fn aliases(sql: &str) -> Vec<(String, String)> {
    let words: Vec<String> = sql
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if (w == "from" || w == "join" || w == "update" || w == "into")
            && let Some(table) = words.get(i + 1)
        {
            out.push((table.clone(), table.clone()));
            let next = match words.get(i + 2).map(String::as_str) {
                Some("as") => words.get(i + 3),
                _ => words.get(i + 2),
            };
            if let Some(alias) = next {
                out.push((alias.clone(), table.clone()));
            }
        }
    }
    out
}

/// The steps of `sql`'s plan (parameters bound to NULL: without statistics, the plan does not
/// depend on their values).
fn plan(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut st = match conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")) {
        Ok(st) => st,
        // PRAGMAs, BEGIN/COMMIT and the like have no plan.
        Err(_) => return Vec::new(),
    };
    for i in 1..=st.parameter_count() {
        st.raw_bind_parameter(i, rusqlite::types::Null).unwrap();
    }
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next().unwrap() {
        out.push(r.get::<_, String>(3).unwrap());
    }
    out
}

/// The steps of `sql`'s plan that read a big table whole (`SCAN t`, with or without an index).
fn full_scans(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let details = plan(conn, sql);
    let names = aliases(sql);
    details
        .into_iter()
        .filter(|d| {
            let Some(rest) = d.strip_prefix("SCAN ") else {
                return false;
            };
            let name = rest
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            names
                .iter()
                .filter(|(alias, _)| *alias == name)
                .map(|(_, t)| t.as_str())
                .chain([name.as_str()])
                .any(|t| BIG.contains(&t))
        })
        .collect()
}

#[test]
fn what_the_window_runs_per_scan_and_on_a_timer_never_scans_a_big_table() {
    let mut w = world();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = seen.clone();
    w.kura
        .trace_statements(Some(Box::new(move |sql| {
            sink.lock().unwrap().push(sql.to_string())
        })))
        .unwrap();
    let conn = rusqlite::Connection::open(w.kura.path()).unwrap();
    let mut problems = Vec::new();
    let mut statements = 0;
    for (when, command, call) in WINDOW {
        seen.lock().unwrap().clear();
        call(&mut w);
        let ran: BTreeSet<String> = seen.lock().unwrap().drain(..).collect();
        assert!(!ran.is_empty(), "{command} ran no statement: is it traced?");
        statements += ran.len();
        for sql in ran {
            if std::env::var_os("PLANS_SHOW").is_some() {
                let d = plan(&conn, &sql);
                eprintln!(
                    "{command}: {}\n    {}",
                    sql.split_whitespace().collect::<Vec<_>>().join(" "),
                    d.join(" | ")
                );
            }
            let scans = full_scans(&conn, &sql);
            if !scans.is_empty() {
                problems.push(format!(
                    "{when} `{command}` scans {}:\n    {}",
                    scans.join(", "),
                    sql.split_whitespace().collect::<Vec<_>>().join(" ")
                ));
            }
        }
    }
    assert!(statements > 30, "only {statements} statements seen");
    assert!(
        problems.is_empty(),
        "statements the window runs read a table whole:\n{}",
        problems.join("\n")
    );
}

/// The guard sees what it must: a statement that reads `specimens` whole is named, one that
/// looks a row up by its key is not, and aliases lead back to their tables.
#[test]
fn the_guard_tells_a_scan_from_a_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.sqlite3");
    drop(Kura::open(&db, "tester").unwrap());
    let conn = rusqlite::Connection::open(&db).unwrap();
    for (sql, scans) in [
        ("SELECT count(*) FROM specimens", true),
        (
            "SELECT s.code FROM specimens s WHERE s.status = 'available'",
            true,
        ),
        ("SELECT code FROM specimens WHERE code = ?1", false),
        (
            "SELECT x.code FROM withdrawals w JOIN specimens x ON x.donor = w.code",
            true,
        ),
        (
            "SELECT x.code FROM withdrawals w CROSS JOIN specimens x ON x.donor = w.code",
            false,
        ),
        (
            "SELECT s.code FROM specimens s JOIN withdrawals w ON w.code = s.donor",
            true,
        ),
        ("SELECT e.kind FROM events e WHERE e.seq > 3", true),
        ("SELECT value FROM meta WHERE key = 'x'", false),
        (
            "SELECT code FROM specimens WHERE status = ?1 LIMIT ?2",
            true,
        ),
        ("SELECT max(seq) FROM events WHERE workstation = ?1", false),
        ("SELECT count(*) FROM users", false),
        ("PRAGMA data_version", false),
    ] {
        assert_eq!(!full_scans(&conn, sql).is_empty(), scans, "{sql}");
    }
}

#[test]
fn a_scans_answer_says_in_conflict_and_consent_withdrawn() {
    let mut w = world();
    let reason = Some("withdrawn by letter".to_string());
    // A specimen's view, looked up alone and in a list.
    let c = w.kura.show(&w.conflicted).unwrap();
    assert!(c.in_conflict);
    assert_eq!(c.consent_withdrawn, None);
    let x = w.kura.show(&w.withdrawn).unwrap();
    assert_eq!(
        (x.in_conflict, x.consent_withdrawn.clone()),
        (false, reason.clone())
    );
    let listed = w
        .kura
        .find(&kura_store::FindQuery {
            donor: Some(x.donor.clone()),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert!(
        listed.iter().all(|v| v.consent_withdrawn == reason),
        "{listed:?}"
    );
    let plain = w.kura.show(&w.stored[3]).unwrap();
    assert_eq!((plain.in_conflict, plain.consent_withdrawn), (false, None));
    // A placement: moved (a withdrawn tube is blocked, not stuck), returned.
    let b = w.free_box.clone();
    let moved = w
        .kura
        .move_specimen(&w.withdrawn.clone(), &b, None)
        .unwrap();
    assert_eq!(moved.consent_withdrawn, reason);
    assert!(!moved.in_conflict);
    let back = w
        .kura
        .return_specimen(&w.conflicted.clone(), false)
        .unwrap();
    assert!(back.in_conflict, "{back:?}");
    // Asked by itself, for a screen whose answer did not say.
    let f = w.kura.scan_flags(&w.withdrawn).unwrap();
    assert_eq!(f.consent_withdrawn, reason);
    assert!(w.kura.scan_flags(&w.conflicted).unwrap().in_conflict);
    assert_eq!(
        w.kura.scan_flags(&w.stored[3]).unwrap(),
        kura_app::ScanFlags::default()
    );
    // The status counts; no list is read for it.
    let s = w.kura.sync_status().unwrap();
    assert_eq!((s.conflicts, s.rejections), (1, 0));
}
