//! `kura-registry bench`: ingest end to end over HTTP, on each backend, beside the database's own
//! limit for the same rows, measured in one run with the same warm-up on both sides.

use std::time::{Duration, Instant};

use kura_proto::{EnrollResponse, Envelope, PushResponse};
use kura_registry_db::testkit::{self, Bench};
use kura_registry_db::{RegistryDb, secret_hash};

use crate::{AnyDb, api::now_us, secret};

pub struct Options {
    pub events: usize,
    pub workstations: usize,
    /// The workstations are spread over this many sites (pushes of one site are serialized by
    /// the site lock; sites proceed in parallel).
    pub sites: usize,
    pub batch: usize,
    pub warm: usize,
    pub sqlite: bool,
    /// `None`: a throwaway PostgreSQL started for the run (fsync on); `Some(url)`: a server of
    /// yours (the URL of any database on it), where the run creates two new databases.
    pub postgres: Option<Option<String>>,
}

struct Ws {
    token: String,
    bodies: Vec<Vec<u8>>,
    events: Vec<Envelope>,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn workstations(
    base: &str,
    db: &AnyDb,
    site: &str,
    prefix: &str,
    n: usize,
    per: usize,
    batch: usize,
) -> Result<Vec<Ws>, Error> {
    if !db.sites().await?.iter().any(|s| s.code == site) {
        db.add_site(testkit::site(site, prefix)).await?;
    }
    let http = crate::http_client();
    let mut out = vec![];
    for i in 0..n {
        let code = secret::new_enroll_code()?;
        db.add_enrollment(
            site,
            secret_hash(&secret::normalize_code(&code)),
            now_us() + 3_600_000_000,
            None,
        )
        .await?;
        let id = uuid::Uuid::now_v7();
        let req = serde_json::json!({"v": 1, "code": code, "workstation": id, "name": format!("bench {i}"), "year": 2026});
        let r: EnrollResponse = http
            .post(format!("{base}/api/v1/enroll"))
            .body(req.to_string())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut bench = Bench::new(id);
        let events = testkit::workload(
            &mut bench,
            &format!("{site}{i}"),
            prefix,
            1 + (i * per) as u64,
            per,
        );
        let mut bodies = vec![];
        for chunk in events.chunks(batch) {
            let json = serde_json::json!({"v": 1, "workstation": id, "events": chunk}).to_string();
            bodies.push(zstd::encode_all(json.as_bytes(), 1)?);
        }
        out.push(Ws {
            token: r.token,
            bodies,
            events,
        });
    }
    Ok(out)
}

/// Pushes every workstation's batches at once (one task each); the wall time until all are done.
async fn push_all(base: &str, ws: &[Ws]) -> Result<Duration, Error> {
    let t = Instant::now();
    let mut tasks = vec![];
    for w in ws {
        let (base, token, bodies) = (base.to_string(), w.token.clone(), w.bodies.clone());
        tasks.push(tokio::spawn(async move {
            let http = crate::http_client();
            for b in bodies {
                let r: PushResponse = http
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&token)
                    .header("Content-Encoding", "zstd")
                    .body(b)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                if !r
                    .verdicts
                    .iter()
                    .all(|v| matches!(v, kura_proto::Verdict::Accepted { .. }))
                {
                    return Err::<(), Error>("an event of the benchmark was not accepted".into());
                }
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(t.elapsed())
}

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{:>9.0}/s ({n} in {:.2} s)",
        n as f64 / d.as_secs_f64(),
        d.as_secs_f64()
    )
}

async fn one(
    name: &str,
    db: AnyDb,
    o: &Options,
    baseline: impl AsyncFnOnce(&[Envelope], &[Envelope]) -> Result<Duration, Error>,
) -> Result<(), Error> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", l.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(l, db.clone(), async {
        let _ = stopped.await;
    }));
    let per = o.events / o.workstations;
    let warm = workstations(
        &base,
        &db,
        "WARM",
        "W",
        o.workstations,
        o.warm / o.workstations,
        o.batch,
    )
    .await?;
    let mut measured = vec![];
    let sites = o.sites.clamp(1, o.workstations);
    for s in 0..sites {
        let n = o.workstations / sites + usize::from(s < o.workstations % sites);
        let (code, prefix) = (
            format!("SITE{s}"),
            ["G", "N", "C", "V", "H", "J", "K", "M"][s % 8],
        );
        let mut w = workstations(&base, &db, &code, prefix, n, per, o.batch).await?;
        measured.append(&mut w);
    }
    push_all(&base, &warm).await?;
    let d = push_all(&base, &measured).await?;
    let _ = stop.send(());
    let _ = server.await;
    let total = per * o.workstations;
    if db.event_count().await? as usize
        != total + warm.iter().map(|w| w.events.len()).sum::<usize>()
    {
        return Err("the registry does not hold every event exactly once".into());
    }
    let rows: Vec<Envelope> = measured
        .iter()
        .flat_map(|w| w.events.iter().cloned())
        .collect();
    let warm_rows: Vec<Envelope> = warm.iter().flat_map(|w| w.events.iter().cloned()).collect();
    let payload = rows.iter().map(|e| e.payload.len()).sum::<usize>() / rows.len().max(1);
    let b = baseline(&warm_rows, &rows).await?;
    let reg = total as f64 / d.as_secs_f64();
    let raw = total as f64 / b.as_secs_f64();
    println!(
        "{name}: registry ingest over HTTP  {}  — {} workstations at once in {} site(s), batches of {} (zstd), payloads {payload} B on average; hash, chain, rules and conflicts checked; events + projection written",
        rate(total, d),
        o.workstations,
        sites,
        o.batch
    );
    println!(
        "{name}: the database's own limit  {}  — the same rows into the same events table only",
        rate(total, b)
    );
    println!(
        "{name}: registry / database limit = {:.2} (both after {} warm-up rows, same server settings)",
        reg / raw,
        warm_rows.len()
    );
    Ok(())
}

pub async fn run(o: Options) -> Result<(), Error> {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "kura-registry bench: {} events, {} cores, load average {}",
        o.events,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let dir = tempfile::tempdir()?;
    if o.sqlite {
        let path = dir.path().join("registry.sqlite3");
        let db = AnyDb::from(kura_registry_sqlite::SqliteDb::open(&path)?);
        let base_path = dir.path().join("baseline.sqlite3");
        let batch = o.batch;
        one("sqlite  ", db, &o, async |warm, rows| {
            let (w, r) = (warm.to_vec(), rows.to_vec());
            Ok(tokio::task::spawn_blocking(move || {
                kura_registry_sqlite::baseline_insert(&base_path, &w, &r, batch)
            })
            .await??)
        })
        .await?;
        println!(
            "sqlite  : (the baseline inserts {} rows per transaction, WAL, synchronous=FULL, like the registry)",
            o.batch
        );
    }
    if let Some(url) = &o.postgres {
        let server;
        let (reg_url, base_url) = match url {
            Some(u) => {
                let tag = std::process::id();
                (
                    kura_registry_postgres::throwaway::create_database(
                        u,
                        &format!("kura_bench_{tag}_registry"),
                    )
                    .await?,
                    kura_registry_postgres::throwaway::create_database(
                        u,
                        &format!("kura_bench_{tag}_baseline"),
                    )
                    .await?,
                )
            }
            None => {
                server = kura_registry_postgres::throwaway::Throwaway::start(true)?;
                (server.fresh().await?, server.fresh().await?)
            }
        };
        let db = AnyDb::from(kura_registry_postgres::PgDb::open(&reg_url).await?);
        one("postgres", db, &o, async |warm, rows| {
            Ok(kura_registry_postgres::baseline_copy(&base_url, warm, rows).await?)
        })
        .await?;
        println!(
            "postgres: (the baseline is one binary COPY; the server runs with fsync and synchronous_commit on)"
        );
    }
    Ok(())
}
