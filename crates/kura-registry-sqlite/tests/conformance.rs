//! The RegistryDb conformance suite on a real SQLite file.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    kura_registry_db::conformance::run(|| {
        let path = dir.path().join(format!(
            "registry-{}.sqlite",
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        async move { kura_registry_sqlite::SqliteDb::open(&path).unwrap() }
    })
    .await;
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite");
    drop(kura_registry_sqlite::SqliteDb::open(&path).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute("INSERT INTO schema_migrations (version) VALUES (99)", [])
        .unwrap();
    drop(c);
    let e = kura_registry_sqlite::SqliteDb::open(&path).err().unwrap();
    assert_eq!(e.code(), "database_not_migrated");
    assert!(e.to_string().contains("newer"), "{e}");
}

/// Going back one released registry schema: what undoes migration `n` (to schema `n - 1`).
const UNDO: &[(i64, &str)] = &[
    (5, "DROP TABLE workstation_keys; DROP TABLE parcels;"),
    (4, "DROP TABLE site_users;"),
    (
        3,
        "ALTER TABLE sites DROP COLUMN claim_cap; ALTER TABLE sites DROP COLUMN daily_serials;",
    ),
    (2, "ALTER TABLE enrollments DROP COLUMN replaces;"),
];

/// A database as text SQL (schema and rows) that `execute_batch` reads back. (The bench store's
/// schema test has its own: the registry never depends on the bench store.)
fn dump(c: &rusqlite::Connection) -> String {
    use rusqlite::types::ValueRef;
    let mut out = String::from("PRAGMA foreign_keys=OFF;\nBEGIN;\n");
    let objects: Vec<(String, String, String)> = c
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let tables: Vec<&str> = objects
        .iter()
        .filter(|o| o.0 == "table" && o.1 != "sqlite_sequence")
        .map(|o| o.1.as_str())
        .collect();
    for (ty, name, sql) in &objects {
        if ty == "table" && name != "sqlite_sequence" {
            out.push_str(&format!("{sql};\n"));
        }
    }
    for t in tables {
        let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let vals: Vec<String> = (0..n)
                .map(|i| match r.get_ref(i).unwrap() {
                    ValueRef::Null => "NULL".into(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => format!("{v:?}"),
                    ValueRef::Text(t) => {
                        format!("'{}'", String::from_utf8_lossy(t).replace('\'', "''"))
                    }
                    ValueRef::Blob(b) => {
                        format!(
                            "X'{}'",
                            b.iter().map(|x| format!("{x:02X}")).collect::<String>()
                        )
                    }
                })
                .collect();
            out.push_str(&format!(
                "INSERT INTO \"{t}\" VALUES({});\n",
                vals.join(",")
            ));
        }
    }
    for (ty, _, sql) in &objects {
        if ty != "table" {
            out.push_str(&format!("{sql};\n"));
        }
    }
    out + "COMMIT;\n"
}

fn fixture(version: i64) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/registry-{version:04}.sql"))
}

/// Every released registry schema has a committed fixture database (text SQL): the current
/// build opens it, migrates it, and serves it: the bench's token still works, its stream and the
/// site's order are as they were, and the stream goes on. (`KURA_BLESS=1` writes them: a
/// workload recorded now, with later migrations taken off one by one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_released_schema_migrates_and_serves() {
    use kura_registry_db::{RegistryDb, conformance, secret_hash, testkit};
    let dir = tempfile::tempdir().unwrap();
    let newest = kura_registry_sqlite::newest_schema();
    if std::env::var_os("KURA_BLESS").is_some() {
        let path = dir.path().join("workload.sqlite");
        let db = kura_registry_sqlite::SqliteDb::open(&path).unwrap();
        let (me, _) = conformance::enroll(&db, "NCGM", "G").await;
        let mut bench = testkit::Bench::new(me.workstation);
        let events = bench.events(&testkit::storage("A", &["BXA", "BXB"]));
        db.push(&me, conformance::batch(events)).await.unwrap();
        drop(db);
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA journal_mode=DELETE;").unwrap();
        std::fs::create_dir_all(fixture(1).parent().unwrap()).unwrap();
        for v in (1..=newest).rev() {
            std::fs::write(fixture(v), dump(&c)).unwrap();
            if let Some((_, undo)) = UNDO.iter().find(|u| u.0 == v) {
                c.execute_batch(undo).unwrap();
                c.execute("DELETE FROM schema_migrations WHERE version >= ?1", [v])
                    .unwrap();
            }
        }
    }
    for v in 1..=newest {
        let text = std::fs::read_to_string(fixture(v)).unwrap_or_else(|_| {
            panic!("registry schema {v} has no fixture: run this test once with KURA_BLESS=1")
        });
        let path = dir.path().join(format!("registry-{v}.sqlite"));
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(&text)
            .unwrap();
        let db = kura_registry_sqlite::SqliteDb::open(&path)
            .unwrap_or_else(|e| panic!("registry schema {v}: {e}"));
        db.ready().await.unwrap();
        let ws: Vec<_> = db.workstations().await.unwrap();
        assert_eq!(ws.len(), 1, "schema {v}");
        let token = format!("token-{}", ws[0].id);
        let me = db
            .authenticate(secret_hash(&token))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("schema {v}: the bench's token still works"));
        let status = db.status(&me).await.unwrap();
        let held = db.event_count().await.unwrap();
        assert!(
            held > 0 && status.head.seq == held,
            "schema {v}: {status:?}"
        );
        let page = db.pull(&me, 0, 1000, None).await.unwrap();
        assert_eq!(page.own.len() as u64, held, "schema {v}: the site's order");
        // The stream goes on: the next events chain to the stored head.
        let mut bench = testkit::Bench {
            seq: status.head.seq,
            prev: status.head.hash.unwrap(),
            at: 1_800_000_000_000_000,
            ..testkit::Bench::new(me.workstation)
        };
        let more = bench.events(&testkit::storage("B", &["BXC"]));
        let r = db
            .push(&me, conformance::batch(more.clone()))
            .await
            .unwrap();
        assert_eq!(
            conformance::words(&r.verdicts),
            vec!["accepted".to_string(); more.len()],
            "schema {v}"
        );
    }
}
