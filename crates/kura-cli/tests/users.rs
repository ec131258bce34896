//! People through the `kura` binary: the first administrator, `kura login` with its session
//! file, and the role matrix — every act × every role through the CLI, with the same
//! `forbidden` the window gets. Real processes, a real SQLite file.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn kura_in(db: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kura"));
    c.arg("--db")
        .arg(db)
        .args(args)
        .env("KURA_USER", "mallory")
        .env("KURA_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("kura runs");
    if let Some(s) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{s}\n").as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn ok(db: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let o = kura_in(db, args, stdin);
    assert!(
        o.status.success(),
        "kura {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn login(db: &Path, user: &str) {
    ok(
        db,
        &["login", user, "--password-stdin"],
        Some(&format!("{user}-password")),
    );
}

#[test]
fn every_act_by_every_role_through_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("kura.sqlite3");
    ok(&db, &["demo", "--specimens", "40"], None);
    let found: serde_json::Value = serde_json::from_str(&ok(
        &db,
        &["--json", "find", "--status", "available", "--limit", "40"],
        None,
    ))
    .unwrap();
    let tubes: Vec<String> = found
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["container"].is_null())
        .map(|v| v["code"].as_str().unwrap().to_string())
        .collect();
    assert!(tubes.len() > 10);
    // The first user must be the administrator, with a password given, never a default.
    let o = kura_in(
        &db,
        &[
            "user",
            "add",
            "boss",
            "--name",
            "Boss",
            "--role",
            "technician",
            "--password-stdin",
        ],
        Some("boss-password"),
    );
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("administrator"));
    ok(
        &db,
        &[
            "user",
            "add",
            "admin",
            "--name",
            "管理者 太郎",
            "--role",
            "administrator",
            "--password-stdin",
        ],
        Some("admin-password"),
    );
    for (u, role) in [
        ("tech", "technician"),
        ("sup", "supervisor"),
        ("aud", "auditor"),
    ] {
        ok(
            &db,
            &[
                "user",
                "add",
                u,
                "--name",
                u,
                "--role",
                role,
                "--password-stdin",
                "--sign-stdin",
                "--signer",
                "admin",
            ],
            // Their first password, then the administrator's signature.
            Some(&format!("{u}-password\nadmin-password")),
        );
    }
    ok(&db, &["logout"], None);
    // Nobody signed in: nothing is recorded, whatever KURA_USER says.
    let o = kura_in(&db, &["thaw", &tubes[0]], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("sign_in_required"),
        "{err}"
    );
    // Nor does anything show the records to nobody.
    for read in [
        &["find", "TST"][..],
        &["history", &tubes[0]],
        &["export"],
        &["verify"],
    ] {
        let o = kura_in(&db, read, None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("sign_in_required"),
            "{read:?}: {err}"
        );
    }

    // (user, command, allowed?) — the act each command is, by the table of kura-app.
    let mut i = 0;
    let mut next = || {
        i += 1;
        tubes[i].clone()
    };
    let cases: Vec<(&str, Vec<String>, bool)> = vec![
        ("tech", vec!["thaw".into(), next()], true),
        (
            "tech",
            vec![
                "dispose".into(),
                next(),
                "--reason".into(),
                "QC".into(),
                "--signer".into(),
                "tech".into(),
                "--sign-stdin".into(),
            ],
            false,
        ),
        (
            "tech",
            vec![
                "storage".into(),
                "add".into(),
                "BX2".into(),
                "--type".into(),
                "box-9x9".into(),
                "--parent".into(),
                "F80-01-R01".into(),
                "--sign-stdin".into(),
                "--signer".into(),
                "tech".into(),
            ],
            false,
        ),
        (
            "tech",
            vec![
                "user".into(),
                "grant".into(),
                "aud".into(),
                "supervisor".into(),
            ],
            false,
        ),
        (
            "tech",
            vec![
                "printer".into(),
                "add".into(),
                "z".into(),
                "--tcp".into(),
                "127.0.0.1:9".into(),
                "--dpi".into(),
                "203".into(),
            ],
            false,
        ),
        (
            "sup",
            vec![
                "dispose".into(),
                next(),
                "--reason".into(),
                "QC".into(),
                "--signer".into(),
                "sup".into(),
                "--sign-stdin".into(),
            ],
            true,
        ),
        (
            "sup",
            vec![
                "storage".into(),
                "add".into(),
                "BX3".into(),
                "--type".into(),
                "box-9x9".into(),
                "--parent".into(),
                "F80-01-R01".into(),
                "--sign-stdin".into(),
                "--signer".into(),
                "sup".into(),
            ],
            true,
        ),
        (
            "sup",
            vec![
                "block".into(),
                next(),
                "--reason".into(),
                "quarantine".into(),
            ],
            true,
        ),
        (
            "sup",
            vec![
                "user".into(),
                "disable".into(),
                "tech".into(),
                "--reason".into(),
                "x".into(),
            ],
            false,
        ),
        ("admin", vec!["thaw".into(), next()], false),
        (
            "admin",
            vec![
                "printer".into(),
                "add".into(),
                "z".into(),
                "--tcp".into(),
                "127.0.0.1:9".into(),
                "--dpi".into(),
                "203".into(),
            ],
            true,
        ),
        (
            "admin",
            vec![
                "user".into(),
                "add".into(),
                "tech2".into(),
                "--name".into(),
                "T2".into(),
                "--password-stdin".into(),
                "--sign-stdin".into(),
                "--signer".into(),
                "admin".into(),
            ],
            true,
        ),
        ("aud", vec!["thaw".into(), next()], false),
        (
            "aud",
            vec![
                "register".into(),
                "--type".into(),
                "BLD".into(),
                "--container".into(),
                "PED".into(),
                "--storage".into(),
                "A".into(),
                "--study".into(),
                "S".into(),
                "--donor".into(),
                "D2".into(),
            ],
            false,
        ),
        ("aud", vec!["find".into(), "TST".into()], true),
        ("aud", vec!["verify".into()], true),
    ];
    for (user, args, allowed) in cases {
        login(&db, user);
        let events = |db: &Path| -> u64 {
            let v: serde_json::Value =
                serde_json::from_str(&ok(db, &["--json", "stats"], None)).unwrap();
            v["events"].as_u64().unwrap()
        };
        let before = events(&db);
        let mut full = vec!["--json".to_string()];
        full.extend(args.iter().cloned());
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        // What a command reads from stdin: a new user's first password, then the signing one.
        let signs = args
            .iter()
            .any(|a| a == "--sign-stdin" || a == "--password-stdin");
        let input = match (args.get(1).map(String::as_str), signs) {
            (Some("add"), true) if args[0] == "user" => format!("tech2-password\n{user}-password"),
            (_, true) => format!("{user}-password"),
            _ => String::new(),
        };
        let o = kura_in(&db, &refs, Some(&input));
        let stdout = String::from_utf8_lossy(&o.stdout);
        if allowed {
            assert!(
                o.status.success(),
                "{user} {args:?}: {stdout}{}",
                String::from_utf8_lossy(&o.stderr)
            );
        } else {
            assert_eq!(o.status.code(), Some(1), "{user} {args:?}: {stdout}");
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(v["error"]["code"], "forbidden", "{user} {args:?}: {v}");
            assert_eq!(events(&db), before, "{user} {args:?}: nothing recorded");
        }
    }
    // Events name the signed-in user, not KURA_USER (--actor is for databases without users).
    let h: serde_json::Value =
        serde_json::from_str(&ok(&db, &["--json", "history", &tubes[1]], None)).unwrap();
    let thawed: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "thawed")
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(thawed, ["tech"]);
    ok(&db, &["verify"], None);
}

#[test]
fn the_session_file_is_owner_only_sealed_and_ends() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("kura.sqlite3");
    ok(&db, &["init", "--prefix", "TST"], None);
    let o = kura_in(
        &db,
        &[
            "user",
            "add",
            "admin",
            "--name",
            "Admin",
            "--role",
            "administrator",
            "--password-stdin",
        ],
        Some("admin-password"),
    );
    assert!(o.status.success());
    // Logs never carry the password (KURA_LOG=debug).
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!all.contains("admin-password"), "{all}");
    ok(
        &db,
        &[
            "user",
            "add",
            "tech",
            "--name",
            "Tech",
            "--password-stdin",
            "--sign-stdin",
            "--signer",
            "admin",
        ],
        Some("tech-password\nadmin-password"),
    );
    login(&db, "tech");
    let file = d.path().join(".kura.sqlite3.session");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let who: serde_json::Value =
        serde_json::from_str(&ok(&db, &["--json", "whoami"], None)).unwrap();
    assert_eq!(who["user"], "tech");
    // A session file edited into the administrator's is not taken up.
    let token = std::fs::read_to_string(&file).unwrap();
    let (body, mac) = token.split_once('.').unwrap();
    let json = String::from_utf8(hex_decode(body))
        .unwrap()
        .replace("\"tech\"", "\"admin\"");
    std::fs::write(&file, format!("{}.{mac}", hex_encode(json.as_bytes()))).unwrap();
    let who: serde_json::Value =
        serde_json::from_str(&ok(&db, &["--json", "whoami"], None)).unwrap();
    assert!(who["user"].is_null(), "{who}");
    assert!(!file.exists(), "a forged session file is removed");
    // A wrong password: refused, nothing saved.
    let o = kura_in(
        &db,
        &["login", "tech", "--password-stdin"],
        Some("nope-nope"),
    );
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("sign_in_failed"));
    assert!(!file.exists());
    ok(&db, &["logout"], None);
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `kura init` on a new database: with `--admin` the administrator exists and is signed in at
/// once (their password given, never a default); without it the database says it has no users
/// and how to make one.
#[test]
fn init_creates_the_first_administrator_or_says_there_is_none() {
    let d = tempfile::tempdir().unwrap();
    let open = d.path().join("open.sqlite3");
    let said = ok(&open, &["init", "--prefix", "TST"], None);
    assert!(said.contains("no users yet"), "{said}");
    assert!(said.contains("--role administrator"), "{said}");

    let db = d.path().join("kura.sqlite3");
    // A name is needed; nothing is asked or written without it.
    let o = kura_in(&db, &["init", "--admin", "boss"], Some("x"));
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("bad_input") && e.contains("--name"), "{e}");
    // No terminal and no --password-stdin: refused, saying which flag reads it.
    let o = kura_in(
        &db,
        &["init", "--admin", "boss", "--name", "管理者 太郎"],
        None,
    );
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("--password-stdin"), "{e}");
    let made: serde_json::Value = serde_json::from_str(&ok(
        &db,
        &[
            "--json",
            "init",
            "--prefix",
            "TST",
            "--admin",
            "Boss",
            "--name",
            "管理者 太郎",
            "--password-stdin",
        ],
        Some("boss-password"),
    ))
    .unwrap();
    assert_eq!(made["administrator"], "boss");
    assert_eq!(made["secured"], true);
    let who = ok(&db, &["whoami"], None);
    assert!(who.contains("boss (管理者 太郎), administrator"), "{who}");
    // Signed out, the database is closed to nobody: its password is the one given.
    ok(&db, &["logout"], None);
    let o = kura_in(&db, &["--json", "find", "--limit", "1"], None);
    assert!(!o.status.success());
    let o = kura_in(&db, &["login", "boss", "--password-stdin"], Some("wrong"));
    assert!(!o.status.success());
    login(&db, "boss");
}
