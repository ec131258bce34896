//! The command line never changes a database by surprise: tables of what a new user types and
//! what must (and must not) happen, through the real `kura` binary.

use std::path::Path;
use std::process::{Command, Output};

fn kura(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kura"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env("KURA_USER", "tester")
        .output()
        .expect("kura runs")
}

/// The error code of a failed `--json` command (None: it succeeded).
fn code(db: &Path, args: &[&str]) -> Option<String> {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = kura(db, &a);
    if o.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
        panic!(
            "kura {args:?} failed without a JSON error: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    Some(v["error"]["code"].as_str().unwrap_or("?").to_string())
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

/// A mistyped `--db`: every command but those that make a database says `store_missing`, names
/// the path and what creates one, and leaves no file and no folder behind.
#[test]
fn a_missing_database_is_named_and_never_created() {
    let d = tempfile::tempdir().unwrap();
    let typo = d.path().join("typo").join("kura.sqlite3");
    let commands: &[&[&str]] = &[
        &["stats"],
        &["find", "--donor", "P-0001"],
        &["show", "DEMO240000014B"],
        &["history", "DEMO240000014B"],
        &["boxmap", "F80-01-R01-B01"],
        &["verify"],
        &["overdue"],
        &["export", "out.csv"],
        &["check-in", "DEMO240000014B", "F80-01-R01-B01"],
        &["storage", "add", "S1", "--type", "site"],
        &["sync", "status"],
        &["whoami"],
        &["user", "list"],
    ];
    for args in commands {
        assert_eq!(
            code(&typo, args).as_deref(),
            Some("store_missing"),
            "kura {args:?}"
        );
        assert!(
            !d.path().join("typo").exists(),
            "kura {args:?} made a folder"
        );
    }
    let o = kura(&typo, &["stats"]);
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains(&typo.display().to_string()) && said.contains("kura init"),
        "{said}"
    );
    // What makes a database does.
    ok(&typo, &["init", "--prefix", "ABC"]);
    assert!(typo.exists());
}

/// `kura init` sets up a new database only: once it holds a custody event it keeps its prefix.
#[test]
fn init_refuses_a_database_that_holds_events() {
    let d = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a str, &'a [&'a [&'a str]], Option<&'a str>);
    let cases: &[Case] = &[
        // A file made (empty) and then set up: init again may still change its mind.
        ("empty", &[&["init", "--prefix", "ABC"]], None),
        (
            "one container",
            &[
                &["init", "--prefix", "ABC"],
                &["storage", "add", "S1", "--type", "site"],
            ],
            Some("store_exists"),
        ),
        (
            "demo data",
            &[&["demo", "--specimens", "200"]],
            Some("store_exists"),
        ),
    ];
    for (name, setup, want) in cases {
        let db = d.path().join(format!("{name}.sqlite3"));
        for args in *setup {
            ok(&db, args);
        }
        let before = ok(&db, &["--json", "stats"]);
        assert_eq!(
            code(&db, &["init", "--prefix", "XYZ"]).as_deref(),
            *want,
            "{name}"
        );
        if want.is_some() {
            assert_eq!(ok(&db, &["--json", "stats"]), before, "{name}: unchanged");
        }
    }
    // The demo's IDs stay DEMO…, not XYZ….
    let db = d.path().join("demo data.sqlite3");
    let first: serde_json::Value =
        serde_json::from_str(&ok(&db, &["--json", "find", "--limit", "1"])).unwrap();
    let code = first[0]["code"].as_str().unwrap_or_default().to_string();
    assert!(code.starts_with("DEMO"), "{first}");
}
