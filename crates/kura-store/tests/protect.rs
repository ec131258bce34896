//! Data protection: a database holds custody records, so it is created owner-only and a file
//! that other users can write is refused, unread and unchanged.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;

use kura_store::Store;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_new_database_is_owner_only_and_one_others_can_write_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("kura.sqlite3");
    drop(Store::open(&db, uuid::Uuid::now_v7).unwrap());
    assert_eq!(mode(&db), 0o600, "the database");
    let wal = d.path().join("kura.sqlite3-wal");
    if wal.exists() {
        assert_eq!(mode(&wal) & 0o077, 0, "its WAL");
    }
    // (mode given, opens?)
    let cases = [
        (0o600, true),
        (0o640, true),
        (0o644, true),
        (0o660, false),
        (0o666, false),
        (0o602, false),
    ];
    for (m, opens) in cases {
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(m)).unwrap();
        let before = std::fs::read(&db).unwrap();
        match Store::open(&db, uuid::Uuid::now_v7) {
            Ok(_) => assert!(opens, "{m:o} opened"),
            Err(e) => {
                assert!(!opens, "{m:o}: {e}");
                assert_eq!(e.code(), "store_unprotected");
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("{m:o}")) && msg.contains("chmod 600"),
                    "{msg}"
                );
                assert_eq!(std::fs::read(&db).unwrap(), before, "{m:o}: unchanged");
            }
        }
    }
}
