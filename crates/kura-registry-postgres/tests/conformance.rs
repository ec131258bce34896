//! The RegistryDb conformance suite on a real PostgreSQL server (a throwaway one, started once
//! for the whole suite; each case gets its own database).

use kura_registry_postgres::{PgDb, throwaway::Throwaway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let server = Throwaway::start(false).expect("a throwaway PostgreSQL");
    kura_registry_db::conformance::run(|| async {
        PgDb::open(&server.fresh().await.unwrap()).await.unwrap()
    })
    .await;
    // Two processes' worth of pools opening one database at once migrate it once.
    let url = server.fresh().await.unwrap();
    let (a, b) = tokio::join!(PgDb::open(&url), PgDb::open(&url));
    a.unwrap();
    b.unwrap();
}
