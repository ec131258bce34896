//! Custody use cases against a real SQLite file: what is allowed, what is refused with which
//! code, and that a refusal writes nothing.

mod common;

use common::{bench, register};
use kura_app::{AppError, CheckOut, FindQuery, Kura};

fn events(k: &Kura) -> i64 {
    k.stats().unwrap().events
}

/// Runs `f`, expects error `code`, and checks that no event was written.
fn refused(k: &mut Kura, code: &str, f: impl FnOnce(&mut Kura) -> Result<(), AppError>) {
    let before = events(k);
    let err = f(k).expect_err(&format!("expected {code}"));
    assert_eq!(err.code(), code, "{err}");
    assert_eq!(events(k), before, "a refused act wrote events: {err}");
}

fn out() -> CheckOut {
    CheckOut {
        to: "Dr. Sato".into(),
        purpose: "analysis".into(),
        due: None,
        note: None,
    }
}

#[test]
fn register_check_in_out_return_move() {
    let mut b = bench();
    let k = &mut b.kura;
    let r = register(k, 3);
    assert_eq!(r.aliquots.len(), 3);
    let a = &r.aliquots[0];
    let p = k.check_in(a, "BX1", None).unwrap();
    assert_eq!(p.position, "A1");
    let p2 = k.check_in(&r.aliquots[1], "BX1", None).unwrap();
    assert_eq!(p2.position, "A2", "next free by fill order");
    let v = k.show(a).unwrap();
    assert_eq!(
        v.path.as_deref(),
        Some("Test site › ROOM › F1 › R1 › BX1 › A1")
    );
    assert_eq!(v.status, "available");

    k.check_out(&[a.clone()], &out()).unwrap();
    assert_eq!(k.show(a).unwrap().status, "checked_out");
    // The position stays reserved.
    refused(k, "position_occupied", |k| {
        k.check_in(&r.aliquots[2], "BX1", Some("A1")).map(|_| ())
    });
    let back = k.return_specimen(a, true).unwrap();
    assert_eq!(back.position, "A1");
    assert_eq!(k.show(a).unwrap().freeze_thaw, 1);

    let m = k.move_specimen(a, "BX2", Some("C3")).unwrap();
    assert_eq!(m.position, "C3");
    assert_eq!(k.show(a).unwrap().container.as_deref(), Some("BX2"));
    // Box move: the specimen's path follows.
    k.move_container("BX2", "R1", Some("5-4")).unwrap();
    let h = k.history(a).unwrap();
    let kinds: Vec<&str> = h.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "derived",
            "checked_in",
            "checked_out",
            "returned",
            "moved",
            "container_moved"
        ]
    );
    assert!(k.verify(&mut |_, _| {}).unwrap().ok());
}

#[test]
fn refusals_are_typed_and_write_nothing() {
    let mut b = bench();
    let k = &mut b.kura;
    let r = register(k, 4);
    let (a, c, d) = (
        r.aliquots[0].clone(),
        r.aliquots[1].clone(),
        r.aliquots[2].clone(),
    );
    k.check_in(&a, "BX1", Some("A1")).unwrap();
    refused(k, "position_occupied", |k| {
        k.check_in(&c, "BX1", Some("A1")).map(|_| ())
    });
    refused(k, "bad_position", |k| {
        k.check_in(&c, "BX1", Some("J1")).map(|_| ())
    });
    refused(k, "bad_position", |k| {
        k.check_in(&c, "BX1", Some("A10")).map(|_| ())
    });
    refused(k, "not_for_specimens", |k| {
        k.check_in(&c, "R1", Some("1-1")).map(|_| ())
    });
    refused(k, "unknown_container", |k| {
        k.check_in(&c, "NOPE", None).map(|_| ())
    });
    refused(k, "already_in_storage", |k| {
        k.check_in(&a, "BX1", None).map(|_| ())
    });
    refused(k, "not_checked_out", |k| {
        k.return_specimen(&a, false).map(|_| ())
    });
    refused(k, "not_in_storage", |k| {
        k.check_out(&[c.clone()], &out()).map(|_| ())
    });
    k.check_out(&[a.clone()], &out()).unwrap();
    refused(k, "already_checked_out", |k| {
        k.check_out(&[a.clone()], &out()).map(|_| ())
    });
    // A batch with one bad member writes nothing at all.
    k.check_in(&c, "BX1", None).unwrap();
    refused(k, "already_checked_out", |k| {
        k.check_out(&[c.clone(), a.clone()], &out()).map(|_| ())
    });
    assert_eq!(k.show(&c).unwrap().status, "available");
    // Blocked and disposed.
    k.block(&c, "quarantine").unwrap();
    refused(k, "specimen_blocked", |k| {
        k.check_out(&[c.clone()], &out()).map(|_| ())
    });
    k.dispose(&c, "consent withdrawn").unwrap();
    refused(k, "specimen_final", |k| k.thaw(&c));
    refused(k, "specimen_final", |k| {
        k.check_in(&c, "BX1", None).map(|_| ())
    });
    // A full box.
    let many = register(k, 30);
    k.check_in_box("SMALL", &many.aliquots[..25]).unwrap();
    refused(k, "container_full", |k| {
        k.check_in(&many.aliquots[25], "SMALL", None).map(|_| ())
    });
    // A whole-box fill with one refused tube writes none of them.
    refused(k, "already_in_storage", |k| {
        k.check_in_box("BX3", &[d.clone(), many.aliquots[0].clone()])
            .map(|_| ())
    });
    assert_eq!(k.show(&d).unwrap().status, "received");
    assert!(k.verify(&mut |_, _| {}).unwrap().ok());
}

#[test]
fn bad_scans_name_what_was_scanned() {
    let mut b = bench();
    let k = &mut b.kura;
    let r = register(k, 1);
    let a = r.aliquots[0].clone();
    k.check_in(&a, "BX1", None).unwrap();
    // Lower case and full width are accepted.
    assert_eq!(k.show(&a.to_lowercase()).unwrap().code, a);
    let fw: String = a
        .chars()
        .map(|c| char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap())
        .collect();
    assert_eq!(k.show(&fw).unwrap().code, a);
    // A wrong check character is named with what was expected.
    let mut bad = a.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    let e = k.show(&bad).unwrap_err();
    assert_eq!(e.code(), "scan_wrong_check_character");
    assert!(
        e.to_string().contains(&bad) && e.to_string().contains(last),
        "{e}"
    );
    assert_eq!(k.show("ＴＳＴあ").unwrap_err().code(), "scan_ime_on");
    assert_eq!(k.show("").unwrap_err().code(), "scan_empty");
}

#[test]
fn donor_block_and_find() {
    let mut b = bench();
    let k = &mut b.kura;
    let r = register(k, 5);
    let w = k.withdraw_consent("D0001", "consent withdrawn").unwrap();
    assert_eq!(w.blocked.len(), 6);
    let found = k
        .find(&FindQuery {
            donor: Some("D0001".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(found.iter().all(|s| s.blocked));
    let by_prefix = k
        .find(&FindQuery {
            text: Some(r.parent[..8].to_lowercase()),
            ..Default::default()
        })
        .unwrap();
    assert!(by_prefix.len() >= 6);
    let lineage = k.lineage(&r.aliquots[2]).unwrap();
    assert_eq!(lineage.code, r.parent);
    assert_eq!(lineage.children.len(), 5);
    assert_eq!(
        k.withdraw_consent("NOBODY", "x").unwrap_err().code(),
        "not_found"
    );
}

#[test]
fn evacuation_keeps_positions() {
    let mut b = bench();
    let k = &mut b.kura;
    k.create_container(
        "F2",
        "freezer-5-shelves",
        Some("Backup"),
        Some("ROOM"),
        None,
        Some("-80"),
    )
    .unwrap();
    let r = register(k, 2);
    k.check_in(&r.aliquots[0], "BX1", Some("B2")).unwrap();
    let moved = k.evacuate("F1", "F2").unwrap();
    assert_eq!(moved, ["R1"]);
    let v = k.show(&r.aliquots[0]).unwrap();
    assert_eq!(
        v.path.as_deref(),
        Some("Test site › ROOM › Backup › R1 › BX1 › B2")
    );
    assert!(
        k.history(&r.aliquots[0])
            .unwrap()
            .iter()
            .any(|e| e.kind == "container_moved")
    );
    assert!(k.verify(&mut |_, _| {}).unwrap().ok());
}

#[test]
fn another_process_changing_containers_is_seen() {
    let mut b = bench();
    let r = register(&mut b.kura, 2);
    b.kura.check_in(&r.aliquots[0], "BX1", Some("A1")).unwrap();
    // Warm both caches in the first connection.
    assert!(
        b.kura
            .show(&r.aliquots[0])
            .unwrap()
            .path
            .unwrap()
            .contains("R1 › BX1")
    );
    // A second connection (as another process would) creates a box and moves BX1.
    let mut other = Kura::open(b.db(), "someone else").unwrap();
    other
        .create_container("BX9", "box-9x9", None, Some("R1"), Some("5-4"), None)
        .unwrap();
    other
        .create_container("R2", "rack-5x4", None, Some("F1"), Some("II"), None)
        .unwrap();
    other.move_container("BX1", "R2", Some("1-1")).unwrap();
    // The first connection sees both.
    assert!(
        b.kura
            .show(&r.aliquots[0])
            .unwrap()
            .path
            .unwrap()
            .contains("R2 › BX1 › A1")
    );
    b.kura.check_in(&r.aliquots[1], "BX9", None).unwrap();
    assert!(b.kura.verify(&mut |_, _| {}).unwrap().ok());
}

/// `kura verify`'s two checks: SQLite's page check runs beside a full verify (the first one is
/// full, having no verified point to go on from) and not beside one from the point; a file
/// whose page check fails says what SQLite found.
#[test]
fn the_page_check_runs_beside_a_full_verify_only() {
    let mut b = bench();
    let r = register(&mut b.kura, 3);
    b.kura.check_in_box("BX1", &r.aliquots).unwrap();
    let (first, pages) = b.kura.verify_with_integrity(false, &mut |_, _| {}).unwrap();
    assert!(first.full && first.ok(), "{first:?}");
    assert_eq!(pages.as_deref(), Some("ok"));
    let (again, pages) = b.kura.verify_with_integrity(false, &mut |_, _| {}).unwrap();
    assert!(!again.full && again.ok());
    assert_eq!(pages, None);
    // An index that no longer matches its table (written around SQLite's own checks): the
    // log and the projection still read, and the page check says what is wrong.
    let db = b.db();
    let o = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(
            "PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = 'CREATE INDEX specimens_study ON specimens(donor)'
              WHERE name = 'specimens_study';",
        )
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let k = Kura::open(&db, "x").unwrap();
    let (_, pages) = k.verify_with_integrity(true, &mut |_, _| {}).unwrap();
    let pages = pages.expect("a full check runs the page check");
    assert_ne!(pages, "ok");
    assert!(pages.contains("specimens_study"), "{pages}");
}
