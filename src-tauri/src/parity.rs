//! Parse once: the same input through the `kura` CLI (a real process) and through the window's
//! commands (the real handler list, on Tauri's mock runtime) gives the same result or the same
//! error code. Both act on copies of one database; after every step the specimen reads the
//! same on both sides.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use kura_app::Kura;
use serde_json::{Value, json};
use tauri::test::{INVOKE_KEY, MockRuntime, mock_builder, mock_context, noop_assets};
use tauri::webview::InvokeRequest;
use tauri::{App as TauriApp, WebviewWindow, WebviewWindowBuilder};

use super::{App, handler};

/// The `kura` binary of this build (`scripts/test` builds it before the tests run).
fn kura_bin() -> PathBuf {
    let target = option_env!("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/kura");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p kura-cli` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// Runs the CLI with `--json`: the printed value, or the error's code.
fn cli(db: &Path, env: &[(&str, Option<&str>)], args: &[&str]) -> Result<Value, String> {
    let mut c = Command::new(kura_bin());
    c.arg("--db").arg(db).arg("--json").args(args);
    c.env("KURA_USER", "tester");
    for (k, v) in env {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let o = c.output().expect("kura runs");
    let out: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    match out.get("error") {
        Some(e) => Err(e["code"].as_str().unwrap_or("?").to_string()),
        None if o.status.success() => Ok(out),
        None => panic!(
            "kura {args:?} failed without a JSON error: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

fn ok(db: &Path, args: &[&str]) -> Value {
    cli(db, &[], args).unwrap_or_else(|e| panic!("kura {args:?}: {e}"))
}

struct Window {
    _app: TauriApp<MockRuntime>,
    webview: WebviewWindow<MockRuntime>,
}

impl Window {
    fn open(db: &Path) -> Window {
        let kura = Kura::open(db, "tester").expect("opens");
        let app = mock_builder()
            .manage(App(Mutex::new(kura)))
            .invoke_handler(handler())
            .build(mock_context(noop_assets()))
            .expect("mock app");
        let webview = WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .expect("mock window");
        Window { _app: app, webview }
    }

    /// Invokes a command as the page does: the value, or the error's code.
    fn call(&self, cmd: &str, args: Value) -> Result<Value, String> {
        let req = InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            url: "tauri://localhost".parse().expect("url"),
            body: tauri::ipc::InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        match tauri::test::get_ipc_response(&self.webview, req) {
            Ok(body) => Ok(body.deserialize::<Value>().expect("json")),
            Err(e) => Err(e["code"].as_str().unwrap_or("?").to_string()),
        }
    }
}

const TUBES: &[&str] = &["FS00000001", "FS00000002", "FS00000003", "FS00000004"];

/// A database with a layout and four 1 mL tubes registered (not stored), made by the CLI.
fn template(dir: &Path) -> PathBuf {
    let db = dir.join("template.sqlite3");
    let layout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo/layout.toml");
    ok(&db, &["init", "--prefix", "PAR"]);
    ok(
        &db,
        &["storage", "apply", layout.to_str().expect("utf-8 path")],
    );
    for t in TUBES {
        ok(
            &db,
            &[
                "register",
                "--code",
                t,
                "--type",
                "PL1",
                "--study",
                "S",
                "--donor",
                "D1",
                "--quantity",
                "1",
                "--unit",
                "mL",
            ],
        );
    }
    db
}

/// Two copies of the template: one for the CLI, one for the window.
fn two_copies(dir: &Path) -> (PathBuf, PathBuf) {
    let template = template(dir);
    let cli_db = dir.join("cli.sqlite3");
    let window_db = dir.join("window.sqlite3");
    std::fs::copy(&template, &cli_db).expect("copy");
    std::fs::copy(&template, &window_db).expect("copy");
    (cli_db, window_db)
}

/// One input, as each face takes it.
struct Case {
    what: &'static str,
    cli: &'static [&'static str],
    cmd: &'static str,
    args: fn() -> Value,
    /// `None`: succeeds on both sides; `Some(code)`: refused with that code on both.
    refused: Option<&'static str>,
    /// The specimen to compare afterwards.
    specimen: &'static str,
}

fn out(to: &str, purpose: &str, due: Option<&str>) -> Value {
    json!({ "to": to, "purpose": purpose, "due": due, "note": null })
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { what: "a lower-case position label", cli: &["check-in", "FS00000001", "BOX-0001", "--position", "a1"],
        cmd: "check_in", args: || json!({"specimen": "FS00000001", "container": "BOX-0001", "position": "a1"}), refused: None, specimen: "FS00000001" },
    Case { what: "a position outside the box", cli: &["check-in", "FS00000002", "BOX-0001", "--position", "Z99"],
        cmd: "check_in", args: || json!({"specimen": "FS00000002", "container": "BOX-0001", "position": "Z99"}), refused: Some("bad_position"), specimen: "FS00000002" },
    Case { what: "an occupied position", cli: &["check-in", "FS00000002", "BOX-0001", "--position", "A1"],
        cmd: "check_in", args: || json!({"specimen": "FS00000002", "container": "BOX-0001", "position": "A1"}), refused: Some("position_occupied"), specimen: "FS00000002" },
    Case { what: "a full-width scan (IME on, no kana)", cli: &["check-in", "ＦＳ０００００００２", "BOX-0001"],
        cmd: "check_in", args: || json!({"specimen": "ＦＳ０００００００２", "container": "BOX-0001", "position": null}), refused: None, specimen: "FS00000002" },
    Case { what: "kana: the IME is on", cli: &["check-in", "ふぁ", "BOX-0001"],
        cmd: "check_in", args: || json!({"specimen": "ふぁ", "container": "BOX-0001", "position": null}), refused: Some("scan_ime_on"), specimen: "FS00000003" },
    // The window used to send an empty unit with an amount; the CLI refused an amount alone.
    Case { what: "an amount without a unit: the specimen's own", cli: &["consume", "FS00000001", "--amount", "0.25"],
        cmd: "consume", args: || json!({"specimen": "FS00000001", "amount": "0.25", "unit": "", "usedUp": false}), refused: None, specimen: "FS00000001" },
    Case { what: "a unit without an amount", cli: &["consume", "FS00000001", "--unit", "mL"],
        cmd: "consume", args: || json!({"specimen": "FS00000001", "amount": null, "unit": "mL", "usedUp": false}), refused: Some("bad_input"), specimen: "FS00000001" },
    Case { what: "an unknown unit", cli: &["consume", "FS00000001", "--amount", "0.1", "--unit", "gallons"],
        cmd: "consume", args: || json!({"specimen": "FS00000001", "amount": "0.1", "unit": "gallons", "usedUp": false}), refused: Some("bad_vocabulary"), specimen: "FS00000001" },
    Case { what: "the wrong unit for the specimen", cli: &["consume", "FS00000001", "--amount", "1", "--unit", "mg"],
        cmd: "consume", args: || json!({"specimen": "FS00000001", "amount": "1", "unit": "mg", "usedUp": false}), refused: Some("unit_mismatch"), specimen: "FS00000001" },
    Case { what: "a check-out to nobody", cli: &["check-out", "FS00000001", "--to", " "],
        cmd: "check_out", args: || json!({"specimens": ["FS00000001"], "out": out(" ", "analysis", None)}), refused: Some("bad_input"), specimen: "FS00000001" },
    Case { what: "an unknown purpose", cli: &["check-out", "FS00000001", "--to", "Dr. Sato", "--purpose", "lunch"],
        cmd: "check_out", args: || json!({"specimens": ["FS00000001"], "out": out("Dr. Sato", "lunch", None)}), refused: Some("bad_input"), specimen: "FS00000001" },
    Case { what: "a date that does not exist", cli: &["check-out", "FS00000001", "--to", "Dr. Sato", "--due", "2099-02-30"],
        cmd: "check_out", args: || json!({"specimens": ["FS00000001"], "out": out("Dr. Sato", "qc", Some("2099-02-30"))}), refused: Some("bad_input"), specimen: "FS00000001" },
    Case { what: "a due date in the past", cli: &["check-out", "FS00000001", "--to", "Dr. Sato", "--due", "2000-01-01"],
        cmd: "check_out", args: || json!({"specimens": ["FS00000001"], "out": out("Dr. Sato", "qc", Some("2000-01-01"))}), refused: Some("bad_input"), specimen: "FS00000001" },
    Case { what: "a purpose in capitals and a due date", cli: &["check-out", "FS00000001", "--to", " Dr. Sato ", "--purpose", "QC", "--due", "2099-01-31"],
        cmd: "check_out", args: || json!({"specimens": ["FS00000001"], "out": out(" Dr. Sato ", "QC", Some("2099-01-31"))}), refused: None, specimen: "FS00000001" },
    Case { what: "a return with a thaw", cli: &["return", "FS00000001", "--thawed"],
        cmd: "return_specimen", args: || json!({"specimen": "FS00000001", "thawed": true}), refused: None, specimen: "FS00000001" },
    Case { what: "a blank reason", cli: &["dispose", "FS00000003", "--reason", "   "],
        cmd: "dispose", args: || json!({"specimen": "FS00000003", "reason": "   "}), refused: Some("bad_input"), specimen: "FS00000003" },
    Case { what: "a block with a reason", cli: &["block", "FS00000003", "--reason", "同意撤回"],
        cmd: "block", args: || json!({"specimen": "FS00000003", "reason": "同意撤回"}), refused: None, specimen: "FS00000003" },
    Case { what: "a quantity without its unit", cli: &["register", "--type", "PL1", "--study", "S", "--donor", "D2", "--quantity", "5"],
        cmd: "register", args: || json!({"request": {"sample_type": "PL1", "container": "PED", "storage": "A", "quantity": "5", "study": "S", "donor": "D2"}}), refused: Some("bad_input"), specimen: "FS00000004" },
    Case { what: "a Kura ID with a wrong check character", cli: &["check-in", "PAR260000001X", "BOX-0001"],
        cmd: "check_in", args: || json!({"specimen": "PAR260000001X", "container": "BOX-0001", "position": null}), refused: Some("scan_wrong_check_character"), specimen: "FS00000004" },
];

#[test]
fn same_input_same_outcome_through_cli_and_window() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cli_db, window_db) = two_copies(dir.path());
    let window = Window::open(&window_db);
    for c in CASES {
        let by_cli = cli(&cli_db, &[], c.cli).map(|_| ());
        let by_window = window.call(c.cmd, (c.args)()).map(|_| ());
        let want = c.refused.map_or(Ok(()), |code| Err(code.to_string()));
        assert_eq!(by_cli, want, "CLI: {}", c.what);
        assert_eq!(by_window, want, "window: {}", c.what);
        let shown_cli = ok(&cli_db, &["show", c.specimen]);
        let shown_window = window
            .call("show", json!({ "scan": c.specimen }))
            .expect("show");
        assert_eq!(shown_cli, shown_window, "after {}", c.what);
    }
    // The amount without a unit was taken in mL, then 0.75 mL were left.
    let shown = ok(&cli_db, &["show", "FS00000001"]);
    assert_eq!(shown["quantity_milli"], 750);
    assert_eq!(shown["freeze_thaw"], 1);
}

/// Who is acting, from the same environment: the CLI records the name on the event, the window
/// resolves it with `actor` at start-up. (Once the window exited when USER was empty.)
#[test]
fn regression_actor_with_empty_user_is_the_same_for_cli_and_window() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = template(dir.path());
    let cases: &[(Option<&str>, Option<&str>, &str)] = &[
        (None, Some(""), "technician"),
        (None, None, "technician"),
        (Some(""), Some("sato"), "sato"),
        (Some("  "), Some(" "), "technician"),
        (Some("tanaka"), Some("sato"), "tanaka"),
    ];
    for (kura_user, user, want) in cases {
        let env = [("KURA_USER", *kura_user), ("USER", *user)];
        cli(&db, &env, &["thaw", "FS00000004"]).expect("thaw");
        let history = ok(&db, &["history", "FS00000004"]);
        let by_cli = history
            .as_array()
            .and_then(|h| h.last())
            .map(|e| e["actor"].clone())
            .expect("an event");
        let by_window =
            super::actor(kura_user.map(String::from), user.map(String::from)).expect("an actor");
        assert_eq!(by_cli, json!(want), "CLI with {kura_user:?}/{user:?}");
        assert_eq!(by_window, *want, "window with {kura_user:?}/{user:?}");
    }
}

/// The window sent an empty unit with an amount (`unit: ""`) while the CLI refused an amount
/// without `--unit`: now both take the amount in the specimen's own unit, and agree.
#[test]
fn regression_amount_with_empty_unit_is_the_same_for_cli_and_window() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cli_db, window_db) = two_copies(dir.path());
    let window = Window::open(&window_db);
    ok(&cli_db, &["check-in", "FS00000004", "BOX-0002"]);
    ok(&window_db, &["check-in", "FS00000004", "BOX-0002"]);
    let by_cli = cli(&cli_db, &[], &["consume", "FS00000004", "--amount", "0.4"]);
    let by_window = window.call(
        "consume",
        json!({"specimen": "FS00000004", "amount": "0.4", "unit": "", "usedUp": false}),
    );
    assert!(by_cli.is_ok(), "CLI: {by_cli:?}");
    assert!(by_window.is_ok(), "window: {by_window:?}");
    let left_cli = ok(&cli_db, &["show", "FS00000004"])["quantity_milli"].clone();
    let left_window = window
        .call("show", json!({"scan": "FS00000004"}))
        .expect("show")["quantity_milli"]
        .clone();
    assert_eq!(left_cli, json!(600));
    assert_eq!(left_window, json!(600));
}
