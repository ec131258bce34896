//! A throwaway PostgreSQL server for tests and benchmarks: `initdb` in a temporary directory, a
//! free port on loopback, run as the unprivileged `postgres` user when we are root (initdb refuses
//! root), stopped and removed on drop. Install Debian's `postgresql` for the binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Throwaway {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
    next_db: std::sync::atomic::AtomicU32,
}

fn bin_dir() -> std::io::Result<PathBuf> {
    if let Ok(dir) = std::env::var("KURA_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    found.retain(|p| p.join("initdb").exists());
    found.sort();
    found.pop().ok_or_else(|| {
        std::io::Error::other(
            "no PostgreSQL server binaries (initdb) in /usr/lib/postgresql/*/bin; install Debian's postgresql package (scripts/setup does)",
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Throwaway {
    /// Starts a server. `durable`: fsync and synchronous_commit on (benchmarks); off for tests.
    pub fn start(durable: bool) -> std::io::Result<Throwaway> {
        Throwaway::start_with(durable, None)
    }

    /// Starts a server that also accepts TLS (`ssl=on`) with this PEM certificate chain and key
    /// (plain connections are still accepted, so one server serves both kinds of test).
    pub fn start_tls(durable: bool, cert: &Path, key: &Path) -> std::io::Result<Throwaway> {
        Throwaway::start_with(durable, Some((cert, key)))
    }

    fn start_with(durable: bool, tls: Option<(&Path, &Path)>) -> std::io::Result<Throwaway> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new().prefix("kura-pg-").tempdir()?;
        let as_postgres = is_root();
        let data = dir.path().join("data");
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()))?;
        }
        let t = Throwaway {
            port: free_port()?,
            bin,
            dir,
            as_postgres,
            next_db: std::sync::atomic::AtomicU32::new(0),
        };
        run(t
            .cmd("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "-D",
            ])
            .arg(&data))?;
        let fsync = if durable { "on" } else { "off" };
        let mut ssl = String::new();
        if let Some((cert, key)) = tls {
            // The server reads its key only if the key is its own and owner-only.
            let (c, k) = (
                t.dir.path().join("server.crt"),
                t.dir.path().join("server.key"),
            );
            std::fs::copy(cert, &c)?;
            std::fs::copy(key, &k)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600))?;
            }
            if as_postgres {
                run(Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&c)
                    .arg(&k))?;
            }
            ssl = format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                c.display(),
                k.display()
            );
        }
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync={fsync} -c synchronous_commit={fsync} -c full_page_writes={fsync} -c max_connections=200 -c shared_buffers=256MB{ssl}",
            t.port,
            t.dir.path().display()
        );
        run(t
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-l"])
            .arg(t.dir.path().join("log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"]))?;
        Ok(t)
    }

    /// A client program of the same PostgreSQL (pg_dump, pg_restore, psql), run as the caller.
    pub fn client(&self, tool: &str) -> Command {
        Command::new(self.bin.join(tool))
    }

    fn cmd(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// The URL of the maintenance database.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Creates a new empty database and returns its URL.
    pub async fn fresh(&self) -> std::io::Result<String> {
        let n = self
            .next_db
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        create_database(
            &self.admin_url(),
            &format!("kura_{}_{n}", std::process::id()),
        )
        .await
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn run(c: &mut Command) -> std::io::Result<()> {
    let out = c.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{:?} failed: {}{}",
            c,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Creates database `name` on the server of `admin_url` (any database of it the user may connect
/// to) and returns the URL of the new one.
pub async fn create_database(admin_url: &str, name: &str) -> std::io::Result<String> {
    let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .map_err(std::io::Error::other)?;
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(std::io::Error::other)?;
    drop(client);
    let _ = task.await;
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let server = base
        .rsplit_once('/')
        .map(|(s, _)| s)
        .filter(|s| !s.ends_with('/'))
        .unwrap_or(base);
    Ok(format!("{server}/{name}{query}"))
}
