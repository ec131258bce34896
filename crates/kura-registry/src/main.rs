//! `kura-registry`: the central registry's command line. Argument parsing and printing only.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use kura_proto::Site;
use kura_registry::{api::now_us, db, secret};
use kura_registry_db::{RegistryDb, secret_hash};

#[derive(Parser)]
#[command(
    name = "kura-registry",
    version,
    about = "Kura's central registry of custody events"
)]
struct Cli {
    /// The database: sqlite:///path/registry.sqlite3 (default: in the data directory) or
    /// postgres://user@host:port/dbname.
    #[arg(long, global = true, env = "KURA_REGISTRY_DB")]
    db: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the API until SIGTERM or Ctrl-C.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8470", env = "KURA_REGISTRY_LISTEN")]
        listen: SocketAddr,
        /// PEM certificate chain; with --tls-key, serve HTTPS.
        #[arg(long, requires = "tls_key", env = "KURA_REGISTRY_TLS_CERT")]
        tls_cert: Option<PathBuf>,
        #[arg(long, requires = "tls_cert", env = "KURA_REGISTRY_TLS_KEY")]
        tls_key: Option<PathBuf>,
        /// Serve plain HTTP on an address other than loopback: only behind a proxy that ends TLS
        /// on the same machine or network segment (logged at every start).
        #[arg(long, conflicts_with = "tls_cert")]
        insecure_http: bool,
        /// Seconds a whole request may take (then 503 request_timeout).
        #[arg(long, default_value_t = 60)]
        request_timeout: u64,
        /// Seconds a request's body may take to arrive (then 408 body_timeout).
        #[arg(long, default_value_t = 30)]
        body_timeout: u64,
        /// Requests handled at once; more wait for a slot.
        #[arg(long, default_value_t = 256)]
        max_in_flight: usize,
        /// Requests per second one address may make after a burst of --per-ip-burst (then 429
        /// rate_limited; a proxy in front counts as one address).
        #[arg(long, default_value_t = 200)]
        per_ip_rate: u64,
        #[arg(long, default_value_t = 2000)]
        per_ip_burst: u32,
        /// Enrollments one address may try at once; then one per second.
        #[arg(long, default_value_t = 60)]
        enroll_burst: u32,
    },
    /// Certificates for the registry's HTTPS.
    Tls {
        #[command(subcommand)]
        cmd: TlsCmd,
    },
    /// Sites: the benches of one biobank, sharing an ID prefix.
    Site {
        #[command(subcommand)]
        cmd: SiteCmd,
    },
    /// Print a one-time code that enrolls one workstation at a site.
    Enroll {
        #[arg(long)]
        site: String,
        /// How long the code stays valid: 30m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        expires: String,
        /// A code for a replacement PC of this workstation (its disk died): `kura recover CODE`
        /// there takes over its identity and stream; its old token stops working.
        #[arg(long, value_name = "WORKSTATION_ID")]
        replaces: Option<uuid::Uuid>,
    },
    /// A consistent copy of an SQLite registry into a new FILE while it serves (a PostgreSQL
    /// registry is backed up with pg_dump; see the README).
    Backup {
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// List workstations, revoke one, or re-admit a revoked one.
    Workstations {
        /// Its token stops working at once and it gets no more serials.
        #[arg(long, value_name = "WORKSTATION_ID", conflicts_with = "restore")]
        revoke: Option<uuid::Uuid>,
        /// Re-admit a revoked workstation: its old token stays dead; it enrolls again with a code
        /// made for it (kura-registry enroll --replaces ID) and keeps its stream and serials.
        #[arg(long, value_name = "WORKSTATION_ID")]
        restore: Option<uuid::Uuid>,
    },
    /// Measure ingest over HTTP on each backend beside the database's own limit (build with
    /// --release for figures).
    Bench {
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 4)]
        workstations: usize,
        /// Sites the workstations belong to (one site's pushes are serialized by its lock).
        #[arg(long, default_value_t = 1)]
        sites: usize,
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Warm-up events pushed (and inserted into the baseline) before measuring.
        #[arg(long, default_value_t = 8_000)]
        warm: usize,
        /// sqlite, postgres or both.
        #[arg(long, default_value = "both")]
        backend: String,
        /// A PostgreSQL server of yours instead of a throwaway one: the URL of any database on
        /// it; the run creates two new databases there (and leaves them for you to inspect).
        #[arg(long)]
        postgres_url: Option<String>,
    },
    /// List a site's conflicts.
    Conflicts {
        #[arg(long)]
        site: String,
        /// Include resolved ones.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum TlsCmd {
    /// Make a site CA and a server certificate signed by it: ca.pem (for every bench: kura
    /// enroll --ca ca.pem), ca.key (keep offline), cert.pem and key.pem (for serve --tls-cert
    /// --tls-key). Prints the CA's SHA-256 fingerprint.
    Generate {
        /// A name or IP address the benches use to reach the registry (repeat for more).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// How long the server certificate stays valid, in days (the CA: 10 years).
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
}

#[derive(Subcommand)]
enum SiteCmd {
    Add {
        /// A short code, e.g. NCGM.
        code: String,
        #[arg(long)]
        name: String,
        /// The letters that start the site's Kura IDs (default: the code, if it is 1–6 letters).
        #[arg(long)]
        prefix: Option<String>,
        /// Digits in a serial.
        #[arg(long, default_value_t = 7)]
        serial_width: u32,
    },
    List,
    /// Show or set a site's limits on serials: how many one enrollment may claim as issued
    /// before it, and how many one workstation may be leased or claim in 24 hours.
    Limits {
        code: String,
        #[arg(long)]
        claim_cap: Option<u64>,
        #[arg(long)]
        daily_serials: Option<u64>,
    },
}

fn parse_duration(s: &str) -> Result<i64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .with_context(|| format!("{s:?} is not a duration like 30m, 24h or 7d"))?;
    let secs = match unit {
        "m" => 60,
        "h" | "" => 3600,
        "d" => 86_400,
        _ => bail!("{s:?} is not a duration like 30m, 24h or 7d"),
    };
    Ok(n * secs * 1_000_000)
}

fn time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| us.to_string())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if let Cmd::Bench {
        events,
        workstations,
        sites,
        batch,
        warm,
        backend,
        postgres_url,
    } = cli.cmd
    {
        let (sqlite, postgres) = match backend.as_str() {
            "both" => (true, true),
            "sqlite" => (true, false),
            "postgres" => (false, true),
            other => bail!("--backend is sqlite, postgres or both, not {other:?}"),
        };
        let batch = batch.clamp(1, kura_proto::MAX_BATCH_EVENTS);
        return kura_registry::bench::run(kura_registry::bench::Options {
            events,
            workstations: workstations.max(1),
            sites,
            batch,
            warm,
            sqlite,
            postgres: postgres.then_some(postgres_url),
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"));
    }
    if let Cmd::Tls {
        cmd: TlsCmd::Generate { hosts, out, days },
    } = &cli.cmd
    {
        let g = kura_registry::tls::generate(hosts, out, *days)?;
        println!("CA fingerprint (SHA-256): {}", g.ca_fingerprint);
        eprintln!(
            "wrote {} (give it to every bench: kura enroll CODE --registry https://{}:8470 --ca ca.pem; it prints this fingerprint to compare), {} (keep it offline), {} and {} (kura-registry serve --tls-cert {} --tls-key {})",
            g.ca_cert.display(),
            hosts[0],
            g.ca_key.display(),
            g.cert.display(),
            g.key.display(),
            g.cert.display(),
            g.key.display(),
        );
        return Ok(());
    }
    if let Cmd::Serve {
        listen,
        tls_cert: None,
        insecure_http,
        ..
    } = &cli.cmd
    {
        if !kura_registry::tls::loopback(listen) {
            if !insecure_http {
                bail!(
                    "refusing to serve plain HTTP on {listen}: tokens, enrollment codes and custody events would cross the network in the clear. Give --tls-cert and --tls-key (kura-registry tls generate makes them), listen on 127.0.0.1, or, behind a proxy that ends TLS, add --insecure-http"
                );
            }
            tracing::warn!(
                %listen,
                "serving plain HTTP off loopback (--insecure-http): tokens and custody events cross the network in the clear unless a proxy in front ends TLS"
            );
        }
    }
    let url = cli.db.unwrap_or_else(db::default_url);
    let db = db::open(&url).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    match cli.cmd {
        Cmd::Bench { .. } | Cmd::Tls { .. } => unreachable!("handled above"),
        Cmd::Serve {
            listen,
            tls_cert,
            tls_key,
            insecure_http: _,
            request_timeout,
            body_timeout,
            max_in_flight,
            per_ip_rate,
            per_ip_burst,
            enroll_burst,
        } => {
            let limits = kura_registry::Limits {
                request_timeout: std::time::Duration::from_secs(request_timeout.max(1)),
                body_timeout: std::time::Duration::from_secs(body_timeout.max(1)),
                max_in_flight,
                per_ip_per_second: per_ip_rate,
                per_ip_burst,
                enroll_burst,
                ..kura_registry::Limits::default()
            };
            let scheme = if tls_cert.is_some() { "https" } else { "http" };
            match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => {
                    let l = std::net::TcpListener::bind(listen)
                        .with_context(|| format!("cannot listen on {listen}"))?;
                    eprintln!("kura-registry: serving {scheme}://{}", l.local_addr()?);
                    kura_registry::serve_tls(
                        l,
                        db,
                        limits,
                        &cert,
                        &key,
                        kura_registry::terminated(),
                    )
                    .await?;
                }
                _ => {
                    let l = tokio::net::TcpListener::bind(listen)
                        .await
                        .with_context(|| format!("cannot listen on {listen}"))?;
                    eprintln!("kura-registry: serving {scheme}://{}", l.local_addr()?);
                    kura_registry::serve_with(l, db, limits, kura_registry::terminated()).await?;
                }
            }
        }
        Cmd::Site {
            cmd:
                SiteCmd::Add {
                    code,
                    name,
                    prefix,
                    serial_width,
                },
        } => {
            let code = code.trim().to_ascii_uppercase();
            let prefix = prefix.unwrap_or_else(|| code.clone());
            let f = kura_domain::id::IdFormat::new(&prefix, serial_width as usize)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            db.add_site(Site {
                code: code.clone(),
                name,
                prefix: f.prefix.clone(),
                serial_width,
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "site {code} added (Kura IDs {}YY + {serial_width} digits)",
                f.prefix
            );
        }
        Cmd::Site {
            cmd:
                SiteCmd::Limits {
                    code,
                    claim_cap,
                    daily_serials,
                },
        } => {
            let code = code.trim().to_ascii_uppercase();
            let mut l = db
                .site_limits(&code)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if claim_cap.is_some() || daily_serials.is_some() {
                l.claim_cap = claim_cap.unwrap_or(l.claim_cap);
                l.daily_serials = daily_serials.unwrap_or(l.daily_serials);
                db.set_site_limits(&code, l)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            println!(
                "site {code}: an enrollment may claim up to {} serials issued before it; a workstation may be leased or claim up to {} serials in 24 hours",
                l.claim_cap, l.daily_serials
            );
        }
        Cmd::Site { cmd: SiteCmd::List } => {
            for s in db.sites().await.map_err(|e| anyhow::anyhow!("{e}"))? {
                println!(
                    "{}\t{}\tprefix {}\t{} digits",
                    s.code, s.name, s.prefix, s.serial_width
                );
            }
        }
        Cmd::Enroll {
            site,
            expires,
            replaces,
        } => {
            let valid = parse_duration(&expires)?;
            let code = secret::new_enroll_code()?;
            let site = site.trim().to_ascii_uppercase();
            db.add_enrollment(
                &site,
                secret_hash(&secret::normalize_code(&code)),
                now_us() + valid,
                replaces,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{code}");
            match replaces {
                Some(w) => eprintln!(
                    "one-time code for a replacement PC of workstation {w} (site {site}), valid until {}; on the new PC: kura recover CODE --registry URL. When it is used, the old PC's token stops working",
                    time(now_us() + valid)
                ),
                None => eprintln!(
                    "one-time enrollment code for site {site}, valid until {}; on the bench: kura enroll CODE --registry URL",
                    time(now_us() + valid)
                ),
            }
        }
        Cmd::Backup { to } => {
            let kura_registry::db::AnyDb::Sqlite(sq) = &db else {
                bail!(
                    "a PostgreSQL registry is backed up with pg_dump --format=custom and put back with pg_restore (see the README)"
                );
            };
            sq.backup_into(&to)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let copy =
                kura_registry_sqlite::SqliteDb::open(&to).map_err(|e| anyhow::anyhow!("{e}"))?;
            let events = copy
                .event_count()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("backup {}: {events} events", to.display());
        }
        Cmd::Workstations {
            restore: Some(id), ..
        } => {
            let sealed = secret::random::<32>()?;
            db.restore(id, sealed)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "workstation {id} re-admitted: its old token stays dead; give it a code made for it (kura-registry enroll --site SITE --replaces {id}) and run kura enroll with it on the bench"
            );
        }
        Cmd::Workstations {
            revoke: Some(id), ..
        } => {
            db.revoke(id, now_us())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("workstation {id} revoked: its token no longer works and it gets no serials");
        }
        Cmd::Workstations { .. } => {
            println!("ID\tSITE\tNAME\tENROLLED\tHEAD\tCLOCK SKEW\tLAST SEEN\tREVOKED");
            for w in db
                .workstations()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    w.id,
                    w.site,
                    w.name,
                    time(w.enrolled_at),
                    w.head,
                    w.clock_skew_us
                        .map_or("-".into(), |s| format!("{:+.1}s", s as f64 / 1e6)),
                    w.last_seen.map_or("-".into(), time),
                    w.revoked_at.map_or("-".into(), time),
                );
            }
        }
        Cmd::Conflicts { site, all } => {
            for c in db
                .conflicts(&site.to_ascii_uppercase(), !all)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                let events: Vec<String> = c.events.iter().map(|e| e.to_string()).collect();
                println!(
                    "#{}\t{}\t{}\t{}\t{}{}",
                    c.server_seq,
                    c.subject,
                    c.code,
                    events.join(" "),
                    c.message,
                    c.resolved_by
                        .map_or(String::new(), |r| format!("\tresolved by {r}"))
                );
            }
        }
    }
    Ok(())
}
