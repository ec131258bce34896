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

/// Runs `kura ARGS` with `input` on standard input.
fn kura_in(db: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_kura"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env("KURA_USER", "tester")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

/// Consent goes one way and secrets come one way: on a database with users `block --donor` is
/// the signed consent withdrawal (through the lineage), `unblock` of a consent block is a signed
/// exception with the same flags, and a signature without a terminal names what to give.
#[test]
fn consent_and_signatures_take_one_path() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("k.sqlite3");
    ok(&db, &["demo", "--specimens", "300"]);
    let admin = kura_in(
        &db,
        &[
            "user",
            "add",
            "admin",
            "--name",
            "A",
            "--role",
            "administrator",
            "--password-stdin",
        ],
        "admin-password\n",
    );
    assert!(admin.status.success(), "{admin:?}");
    let sup = kura_in(
        &db,
        &[
            "user",
            "add",
            "sup",
            "--name",
            "S",
            "--role",
            "supervisor",
            "--password-stdin",
            "--sign-stdin",
            "--signer",
            "admin",
        ],
        "sup-password\nadmin-password\n",
    );
    assert!(sup.status.success(), "{sup:?}");
    let login = kura_in(&db, &["login", "sup", "--password-stdin"], "sup-password\n");
    assert!(login.status.success(), "{login:?}");
    let donor: serde_json::Value =
        serde_json::from_str(&ok(&db, &["--json", "find", "--limit", "1"])).unwrap();
    let donor = donor[0]["donor"].as_str().unwrap().to_string();
    // (what, arguments, standard input, the error code or None for success)
    let cases: &[(&str, Vec<&str>, &str, Option<&str>)] = &[
        (
            "block --donor unsigned",
            vec!["block", "--donor", &donor, "--reason", "consent withdrawn"],
            "",
            Some("bad_input"),
        ),
        (
            "block --donor signed, first signature without an ID",
            vec![
                "block",
                "--donor",
                &donor,
                "--reason",
                "consent withdrawn",
                "--sign-stdin",
            ],
            "sup-password\n",
            Some("signature_needs_id"),
        ),
        (
            "block --donor signed",
            vec![
                "block",
                "--donor",
                &donor,
                "--reason",
                "consent withdrawn",
                "--sign-stdin",
                "--signer",
                "sup",
            ],
            "sup-password\n",
            None,
        ),
    ];
    for (what, args, input, want) in cases {
        let mut a = vec!["--json"];
        a.extend(args.iter().copied());
        let o = kura_in(&db, &a, input);
        let got = (!o.status.success()).then(|| {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            v["error"]["code"].as_str().unwrap_or("?").to_string()
        });
        assert_eq!(
            got.as_deref(),
            *want,
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Through the lineage, into the destruction queue.
    let queue: serde_json::Value =
        serde_json::from_str(&ok(&db, &["--json", "consent", "queue"])).unwrap();
    let queued = queue.as_array().unwrap();
    assert!(!queued.is_empty(), "{queue}");
    let one = queued[0]["code"].as_str().unwrap().to_string();
    // The exception: the same signing flags as every signed act.
    let o = kura_in(
        &db,
        &[
            "--json",
            "unblock",
            &one,
            "--reason",
            "ethics committee exception",
            "--sign-stdin",
        ],
        "sup-password\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&db, &["--json", "show", &one])).unwrap();
    assert_eq!(shown["blocked"], false, "{shown}");
}

/// The output is a good citizen of a shell: a closed pipe ends quietly, a limit is said, the
/// printer list is a table (or JSON), and what Kura writes is its owner's alone.
#[test]
fn output_behaves_in_a_shell() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("k.sqlite3");
    ok(&db, &["demo", "--specimens", "300"]);
    // A reader that stops reading: exit 0, no panic.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' --db '{}' find --limit 300 | head -n 1; exit ${{PIPESTATUS:-0}}",
            env!("CARGO_BIN_EXE_kura"),
            db.display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !said.contains("panicked"), "{said}");
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' --db '{}' find --limit 300 | head -n 1 >/dev/null",
            env!("CARGO_BIN_EXE_kura"),
            db.display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The limit is said, with how to see more.
    let o = kura(&db, &["find", "--limit", "5"]);
    let all = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(all.contains("--limit"), "{all}");
    // Printers: a table and JSON, never a debug structure.
    ok(
        &db,
        &[
            "printer",
            "add",
            "zebra-1",
            "--tcp",
            "192.0.2.10:9100",
            "--dpi",
            "300",
        ],
    );
    let table = ok(&db, &["printer", "list"]);
    assert!(
        table.contains("zebra-1") && !table.contains("Some(") && !table.contains('{'),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&db, &["--json", "printer", "list"])).unwrap();
    assert!(json.to_string().contains("zebra-1"), "{json}");
    // Files Kura makes are owner-only.
    let csv = d.path().join("out.csv");
    let pdf = d.path().join("trail.pdf");
    ok(&db, &["export", csv.to_str().unwrap()]);
    ok(&db, &["audit", "--out", pdf.to_str().unwrap()]);
    for f in [&db, &csv, &pdf] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    // No colour into a pipe.
    let o = kura(&db, &["show", "NOPE"]);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains('\u{1b}'),
        "{o:?}"
    );
}

/// A specimen's audit trail holds every event `kura history` shows, the moves of its box and the
/// evacuation of its freezer included, with positions as people write them (A1).
#[test]
fn the_audit_trail_lists_what_history_lists() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("k.sqlite3");
    let layout = d.path().join("layout.toml");
    std::fs::write(&layout, include_str!("../../../assets/demo/layout.toml")).unwrap();
    ok(&db, &["init", "--prefix", "NCG"]);
    ok(&db, &["storage", "apply", layout.to_str().unwrap()]);
    ok(
        &db,
        &[
            "storage",
            "add",
            "F80-02",
            "--type",
            "freezer-5-shelves",
            "--parent",
            "ROOM-B1",
        ],
    );
    let r: serde_json::Value = serde_json::from_str(&ok(
        &db,
        &[
            "--json",
            "register",
            "--type",
            "BLD",
            "--study",
            "S",
            "--donor",
            "P",
            "--aliquots",
            "1",
            "--into",
            "BOX-0001",
        ],
    ))
    .unwrap();
    let tube = r["aliquots"][0].as_str().unwrap().to_string();
    ok(
        &db,
        &[
            "move-container",
            "BOX-0001",
            "F80-01-R04",
            "--position",
            "1-1",
        ],
    );
    ok(&db, &["evacuate", "F80-01", "F80-02"]);
    let history: serde_json::Value =
        serde_json::from_str(&ok(&db, &["--json", "history", &tube])).unwrap();
    let history = history.as_array().unwrap();
    assert!(
        history.len() >= 3,
        "registered, box moved, evacuated: {history:?}"
    );
    let csv = d.path().join("trail.csv");
    ok(
        &db,
        &["audit", "--specimen", &tube, "--out", csv.to_str().unwrap()],
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows = text.lines().count() - 1;
    assert_eq!(rows, history.len(), "{text}");
    assert!(text.contains("A1") && !text.contains("(0,0)"), "{text}");
}
