//! The `kura` binary end to end: real processes, a real SQLite file, the real sqlite3 shell.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn kura(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kura"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env("KURA_USER", "tester")
        .output()
        .expect("kura runs")
}

fn ok(db: &Path, args: &[&str]) -> String {
    let o = kura(db, args);
    assert!(
        o.status.success(),
        "kura {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn sqlite3(db: &Path, sql: &str) -> Output {
    Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("the sqlite3 shell is installed (scripts/setup installs it)")
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("kura.sqlite3");
    (d, db)
}

#[test]
fn id_check_exit_status_and_reasons() {
    let (_d, db) = temp();
    let cases: &[(&str, bool, &str)] = &[
        ("G123498654321H", true, "valid"),
        ("g123498654321h", true, "valid"),
        ("G123498654321X", false, "needs check character 'H'"),
        ("G123948654321H", false, "swapped"),
        ("あいう", false, "IME"),
        ("", false, "empty"),
    ];
    for (code, valid, says) in cases {
        let o = kura(&db, &["id", "check", code]);
        assert_eq!(o.status.success(), *valid, "{code}");
        assert_eq!(o.status.code(), Some(if *valid { 0 } else { 1 }));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains(says), "{code}: {text}");
    }
    assert_eq!(
        ok(&db, &["id", "check-char", "G123498654321"]).trim(),
        "G123498654321H"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&db, &["--json", "id", "check-char", "ncc260001234"])).unwrap();
    assert_eq!(json["id"].as_str().unwrap().len(), 13);
}

#[test]
fn errors_are_clear_and_json_has_codes() {
    let (_d, db) = temp();
    ok(&db, &["demo", "--specimens", "300"]);
    let o = kura(
        &db,
        &["--json", "check-in", "DEMO240000001X", "F80-01-R01-B01"],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["code"], "scan_wrong_check_character");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("DEMO240000001X")
    );
    let o = kura(
        &db,
        &[
            "check-in",
            "DEMO240000001L",
            "F80-01-R01-B01",
            "--position",
            "A1",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error[") && err.contains("DEMO240000001L"),
        "{err}"
    );
}

#[test]
fn tampering_with_the_sqlite3_shell_is_detected_and_named() {
    let (_d, db) = temp();
    ok(&db, &["demo", "--specimens", "500"]);
    assert!(ok(&db, &["verify"]).contains("OK"));
    // The append-only guard stops a plain edit.
    let o = sqlite3(&db, "UPDATE events SET actor = 'mallory' WHERE seq = 50;");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("append-only"));
    // A determined editor drops the guard first: verify names the event.
    let hex = String::from_utf8(
        sqlite3(
            &db,
            "SELECT lower(hex(event_id)) FROM events WHERE seq = 50;",
        )
        .stdout,
    )
    .unwrap();
    let hex = hex.trim();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    let o = sqlite3(
        &db,
        "DROP TRIGGER events_append_only_update; UPDATE events SET at = at - 86400000000 WHERE seq = 50; UPDATE events SET actor = 'mallory' WHERE seq = 60;",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Without --full, verify reads on from the point the first verify recorded: the edits are
    // older, but the dropped guard is found, and it says how to read the whole log.
    let o = kura(&db, &["verify"]);
    assert_eq!(o.status.code(), Some(1), "verify must fail");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("append_only_guard_missing") && text.contains("--full"),
        "{text}"
    );
    let o = kura(&db, &["verify", "--full"]);
    assert_eq!(o.status.code(), Some(1), "verify must fail");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("hash_mismatch") && text.contains(&id),
        "{text}"
    );
    assert!(text.contains("append_only_guard_missing"), "{text}");
}

#[test]
fn editing_the_projection_is_detected_and_rebuild_repairs_it() {
    let (_d, db) = temp();
    ok(&db, &["demo", "--specimens", "300"]);
    let o = sqlite3(
        &db,
        "UPDATE specimens SET status = 'disposed', container = NULL, row = NULL, col = NULL WHERE id = 7;",
    );
    assert!(o.status.success());
    let o = kura(&db, &["verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("projection_differs"));
    ok(&db, &["rebuild"]);
    assert!(ok(&db, &["verify"]).contains("OK"));
}

#[test]
fn sigkill_in_the_middle_of_a_bulk_import_leaves_all_or_nothing() {
    let (d, db) = temp();
    ok(&db, &["init", "--prefix", "TST"]);
    let layout = d.path().join("layout.toml");
    std::fs::write(&layout, "[[container]]\ncode = \"SITE\"\ntype = \"site\"\n\n[[container]]\ncode = \"ROOM\"\ntype = \"room\"\nparent = \"SITE\"\n\n[[container]]\ncode = \"FZ\"\ntype = \"freezer\"\nparent = \"ROOM\"\n\n[[container]]\ncode = \"B{n}\"\npad = 4\ncount = 1900\ntype = \"box-9x9\"\nparent = \"FZ\"\n").unwrap();
    ok(&db, &["storage", "apply", layout.to_str().unwrap()]);
    let rows = 150_000;
    let csv = d.path().join("big.csv");
    let mut s = String::from("code,type,container,storage,quantity,unit,study,donor,box\n");
    for i in 0..rows {
        s.push_str(&format!(
            "FS{:08},PL1,PED,A,0.5,mL,bulk,D{},B{:04}\n",
            i,
            i / 9,
            1 + i / 81
        ));
    }
    std::fs::write(&csv, s).unwrap();
    let events_before: i64 = String::from_utf8(sqlite3(&db, "SELECT count(*) FROM events;").stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_kura"))
        .args([
            "--db",
            db.to_str().unwrap(),
            "import",
            csv.to_str().unwrap(),
        ])
        .env("KURA_USER", "tester")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the write phase is under way (progress past 10,000 rows), then SIGKILL.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut killed_mid_write = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(done) = line
            .strip_prefix("import: ")
            .and_then(|r| r.split('/').next())
            .and_then(|n| n.parse::<u64>().ok())
            && done >= 10_000
            && done < rows as u64
        {
            child.kill().unwrap();
            killed_mid_write = true;
            break;
        }
    }
    child.wait().unwrap();
    assert!(
        killed_mid_write,
        "the import finished before it could be killed; make it bigger"
    );

    let integrity = String::from_utf8(sqlite3(&db, "PRAGMA integrity_check;").stdout).unwrap();
    assert_eq!(integrity.trim(), "ok");
    let specimens: i64 = String::from_utf8(sqlite3(&db, "SELECT count(*) FROM specimens;").stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let events: i64 = String::from_utf8(sqlite3(&db, "SELECT count(*) FROM events;").stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        specimens == 0 || specimens == rows as i64,
        "partially imported: {specimens}"
    );
    assert_eq!(
        events - events_before,
        specimens,
        "events and projection agree"
    );
    assert!(ok(&db, &["verify"]).contains("OK"));
    // And the same import then runs to completion.
    ok(&db, &["import", csv.to_str().unwrap()]);
    let specimens: i64 = String::from_utf8(sqlite3(&db, "SELECT count(*) FROM specimens;").stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(specimens, rows as i64);
}

#[test]
fn the_cli_covers_a_technicians_day() {
    let (d, db) = temp();
    ok(&db, &["init", "--prefix", "NCC"]);
    let layout = d.path().join("layout.toml");
    std::fs::write(&layout, include_str!("../../../assets/demo/layout.toml")).unwrap();
    ok(&db, &["storage", "apply", layout.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&ok(
        &db,
        &[
            "--json",
            "register",
            "--type",
            "BLD",
            "--study",
            "がんゲノム研究",
            "--donor",
            "P-0001",
            "--quantity",
            "10",
            "--unit",
            "mL",
            "--aliquots",
            "3",
            "--aliquot-type",
            "PL1",
            "--aliquot-quantity",
            "1",
            "--into",
            "BOX-0001",
        ],
    ))
    .unwrap();
    let a0 = v["aliquots"][0].as_str().unwrap().to_string();
    let a1 = v["aliquots"][1].as_str().unwrap().to_string();
    assert_eq!(v["placed"][0]["position"], "A1");
    ok(
        &db,
        &[
            "check-out",
            &a0,
            &a1,
            "--to",
            "Dr. Sato",
            "--purpose",
            "analysis",
            "--due",
            "2099-01-01",
        ],
    );
    assert!(ok(&db, &["show", &a0]).contains("held by:     Dr. Sato"));
    ok(&db, &["return", &a0, "--thawed"]);
    ok(&db, &["move", &a0, "BOX-0002", "--position", "B2"]);
    let show: serde_json::Value = serde_json::from_str(&ok(&db, &["--json", "show", &a0])).unwrap();
    assert_eq!(show["position"], "B2");
    assert_eq!(show["freeze_thaw"], 1);
    assert!(ok(&db, &["history", &a0]).contains("moved"));
    assert!(
        ok(&db, &["boxmap", "BOX-0001"]).contains("○"),
        "a checked-out tube shows as reserved"
    );
    let export = d.path().join("out.csv");
    ok(&db, &["export", export.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&export).unwrap().lines().count(), 5);
    assert!(ok(&db, &["verify"]).contains("OK"));
}

#[test]
fn excel_csv_through_the_cli_encoding_and_bom() {
    let (d, db) = temp();
    ok(&db, &["init", "--prefix", "NCC"]);
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../kura-app/tests/fixtures/excel-cp932.csv");
    // Said to be UTF-8, a CP932 file is refused with the flag that reads it.
    let o = kura(
        &db,
        &["import", "--encoding", "utf-8", file.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--encoding cp932"));
    let o = kura(
        &db,
        &["import", "--encoding", "ebcdic", file.to_str().unwrap()],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("auto, utf-8 or cp932"));
    ok(
        &db,
        &["import", "--encoding", "cp932", file.to_str().unwrap()],
    );
    let out = d.path().join("out.csv");
    ok(&db, &["export", "--bom", out.to_str().unwrap()]);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF");
    assert!(String::from_utf8_lossy(&bytes).contains("㈱協力-002"));
}
