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
