//! Bench backups through the real `kura` binary: a copy taken while another process writes is
//! consistent and verified, `--keep` keeps the newest, and a restore makes a new database only,
//! from a copy that passes verify.

use std::path::Path;
use std::process::{Command, Output};

fn kura(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kura"))
        .arg("--db")
        .arg(db)
        .arg("--json")
        .args(args)
        .env("KURA_USER", "tester")
        .output()
        .expect("kura runs")
}

fn ok(db: &Path, args: &[&str]) -> serde_json::Value {
    let o = kura(db, args);
    assert!(
        o.status.success(),
        "kura {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn code(db: &Path, args: &[&str]) -> String {
    let o = kura(db, args);
    assert!(!o.status.success(), "kura {args:?} should fail");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["error"]["code"].as_str().unwrap().to_string()
}

#[test]
fn a_backup_taken_while_kura_writes_restores_to_the_same_record() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("bench.sqlite3");
    let dir = d.path().join("backups");
    ok(&db, &["demo", "--specimens", "2000"]);
    // Another process registers while the backups are taken.
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for _ in 0..20 {
                ok(
                    &db,
                    &[
                        "register",
                        "--type",
                        "BLD",
                        "--study",
                        "S",
                        "--donor",
                        "P-9",
                        "--aliquots",
                        "2",
                    ],
                );
            }
        })
    };
    let mut taken = Vec::new();
    for _ in 0..3 {
        let r = ok(
            &db,
            &["backup", "--to", dir.to_str().unwrap(), "--keep", "2"],
        );
        taken.push(r);
    }
    writer.join().unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "--keep 2: {files:?}");
    assert_eq!(
        taken[2]["removed"].as_array().unwrap().len(),
        1,
        "{}",
        taken[2]
    );
    assert_eq!(
        taken[2]["same_disk"], true,
        "a folder beside the database is the same disk"
    );
    let newest = Path::new(taken[2]["path"].as_str().unwrap()).to_path_buf();
    assert_eq!(
        std::fs::metadata(&newest).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // (what, the target, the error code or None)
    let restored = d.path().join("new").join("kura.sqlite3");
    let cases: [(&str, &Path, Option<&str>); 3] = [
        ("onto a new file", &restored, None),
        ("over the live database", &db, Some("restore_over_database")),
        (
            "over the one just restored",
            &restored,
            Some("restore_over_database"),
        ),
    ];
    let before = std::fs::read(&db).unwrap().len();
    for (what, target, want) in cases {
        let o = kura(target, &["restore", newest.to_str().unwrap()]);
        match want {
            None => assert!(
                o.status.success(),
                "{what}: {}",
                String::from_utf8_lossy(&o.stdout)
            ),
            Some(c) => assert_eq!(
                code(target, &["restore", newest.to_str().unwrap()]),
                c,
                "{what}"
            ),
        }
    }
    assert_eq!(
        std::fs::read(&db).unwrap().len(),
        before,
        "the live database untouched"
    );
    let v = ok(&restored, &["verify", "--full"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        v["report"]["events"], taken[2]["events"],
        "the restored database holds the events the backup counted"
    );

    // A backup edited after it was taken is refused, and nothing is left behind.
    let o = Command::new("sqlite3")
        .arg(&newest)
        .arg("DROP TRIGGER events_append_only_update; UPDATE events SET actor = 'mallory' WHERE seq = 5;")
        .output()
        .expect("the sqlite3 shell is installed (scripts/setup installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let other = d.path().join("other.sqlite3");
    assert_eq!(
        code(&other, &["restore", newest.to_str().unwrap()]),
        "backup_invalid"
    );
    assert!(!other.exists(), "nothing restored from a bad copy");
}
