//! What the sync tests share: the real `kura-registry` and `kura` binaries as processes, a
//! TCP proxy between them that cuts, stalls, delays, repeats and refuses requests, and what the
//! registry's and the benches' databases hold, read directly (not through the programs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A binary of this workspace (built by `cargo build --workspace --bins`, as the test command
/// does first).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap().to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins, as scripts/test does)",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, log: &Path) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the registry did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The central registry, a real process.
pub struct Registry {
    child: Option<Child>,
    pub port: u16,
    /// Its database: `sqlite:///…` or `postgres://…`.
    pub db: String,
    dir: PathBuf,
    starts: u32,
    /// `--tls-cert`, `--tls-key`: serve HTTPS.
    tls: Option<(PathBuf, PathBuf)>,
    /// Environment for the next (re)starts, e.g. `KURA_REGISTRY_UNKNOWN_KINDS` (a registry one
    /// build behind).
    pub env: Vec<(String, String)>,
}

impl Registry {
    /// A registry on a SQLite file in `dir`.
    pub fn sqlite(dir: &Path) -> Registry {
        Registry::start(
            &format!("sqlite://{}", dir.join("registry.sqlite3").display()),
            dir,
        )
    }

    pub fn start(db: &str, dir: &Path) -> Registry {
        let mut r = Registry {
            child: None,
            port: free_port(),
            db: db.to_string(),
            dir: dir.to_path_buf(),
            starts: 0,
            tls: None,
            env: Vec::new(),
        };
        r.restart();
        r
    }

    /// A registry on SQLite serving HTTPS with a certificate for 127.0.0.1 signed by a CA of its
    /// own (made by openssl, as a site's IT would); returns it and the CA certificate's path.
    pub fn sqlite_https(dir: &Path) -> (Registry, PathBuf) {
        let p = |n: &str| dir.join(n);
        let openssl = |args: &[&str]| {
            let ok = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(ok.success(), "openssl {args:?}");
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Kura test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            p("ext.cnf"),
            "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ]);
        let (cert, key) = (p("cert.pem"), p("key.pem"));
        let mut r = Registry {
            child: None,
            port: free_port(),
            db: format!("sqlite://{}", dir.join("registry.sqlite3").display()),
            dir: dir.to_path_buf(),
            starts: 0,
            tls: Some((cert.clone(), key)),
            env: Vec::new(),
        };
        r.restart();
        (r, p("ca.pem"))
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port (after a kill).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.starts += 1;
        let log = self
            .dir
            .join(format!("registry-{}-{}.log", self.port, self.starts));
        let mut cmd = Command::new(bin("kura-registry"));
        cmd.env_remove("KURA_REGISTRY_UNKNOWN_KINDS")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.args(["--db", &self.db, "serve", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port));
        if let Some((cert, key)) = &self.tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_port(self.port, &log);
    }

    /// SIGKILL: no request finishes, nothing is flushed.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The registry's own command line on its database.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(bin("kura-registry"))
            .args(["--db", &self.db])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kura-registry {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn site(&self, code: &str, prefix: &str) {
        self.admin(&["site", "add", code, "--name", code, "--prefix", prefix]);
    }

    /// A one-time enrollment code for `site`.
    pub fn code(&self, site: &str) -> String {
        self.admin(&["enroll", "--site", site])
            .lines()
            .next()
            .unwrap()
            .trim()
            .to_string()
    }

    /// A one-time code for a replacement PC of `workstation` (`kura recover`).
    pub fn replacement_code(&self, site: &str, workstation: &str) -> String {
        self.admin(&["enroll", "--site", site, "--replaces", workstation])
            .lines()
            .next()
            .unwrap()
            .trim()
            .to_string()
    }

    /// Runs `sql` on the registry's database and returns the rows as text columns.
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        if let Some(path) = self.db.strip_prefix("sqlite://") {
            let c = rusqlite::Connection::open(path).unwrap();
            let mut st = c.prepare(sql).unwrap();
            let n = st.column_count();
            let rows = st
                .query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                                rusqlite::types::Value::Null => String::new(),
                                rusqlite::types::Value::Integer(v) => v.to_string(),
                                rusqlite::types::Value::Real(v) => v.to_string(),
                                rusqlite::types::Value::Text(v) => v,
                                rusqlite::types::Value::Blob(b) => hex(&b),
                            })
                        })
                        .collect::<rusqlite::Result<Vec<String>>>()
                })
                .unwrap();
            rows.map(Result::unwrap).collect()
        } else {
            let url = self.db.clone();
            let sql = sql.to_string();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                    tokio::spawn(conn);
                    // Text results for every column, whatever its type.
                    let msgs = client.simple_query(&sql).await.unwrap();
                    msgs.into_iter()
                        .filter_map(|m| match m {
                            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                                (0..r.len())
                                    .map(|i| r.get(i).unwrap_or("").to_string())
                                    .collect(),
                            ),
                            _ => None,
                        })
                        .collect()
                })
        }
    }

    fn one(&self, sql: &str) -> i64 {
        self.query(sql)[0][0].parse().unwrap()
    }

    /// (custody events stored, distinct event ids among them).
    pub fn counts(&self) -> (i64, i64) {
        (
            self.one("SELECT count(*) FROM events"),
            self.one("SELECT count(DISTINCT id) FROM events"),
        )
    }

    /// Events of one workstation the registry holds, and whether their seqs are 1..=n.
    pub fn stream(&self, workstation: &str) -> (i64, bool) {
        let hexid = workstation.replace('-', "");
        let cond = if self.db.starts_with("sqlite") {
            format!("hex(workstation) = upper('{hexid}')")
        } else {
            format!("workstation = '{workstation}'")
        };
        let n = self.one(&format!("SELECT count(*) FROM events WHERE {cond}"));
        let max = self.one(&format!(
            "SELECT coalesce(max(seq), 0) FROM events WHERE {cond}"
        ));
        (n, n == max)
    }

    /// The registry's projection: code → custody facts, in the benches' words.
    pub fn specimens(&self, site: &str) -> BTreeMap<String, Custody> {
        let rows = self.query(&format!(
            "SELECT code, state FROM specimens WHERE site = '{site}' ORDER BY code"
        ));
        rows.into_iter()
            .map(|r| {
                let s: Value = serde_json::from_str(&r[1]).unwrap();
                let c = &s["custody"];
                let status = match c["status"].as_str().unwrap() {
                    "stored" => "available",
                    other => other,
                }
                .to_string();
                let loc = if c["at"].is_object() {
                    &c["at"]
                } else {
                    &c["held"]
                };
                let place = loc.is_object().then(|| {
                    format!(
                        "{} {},{}",
                        loc["container"].as_str().unwrap(),
                        loc["pos"]["row"],
                        loc["pos"]["col"]
                    )
                });
                (
                    r[0].clone(),
                    Custody {
                        status,
                        place,
                        holder: c["holder"].as_str().map(str::to_string),
                        in_conflict: s["in_conflict"].as_bool().unwrap(),
                        blocked: s["blocked"].as_bool().unwrap(),
                    },
                )
            })
            .collect()
    }

    /// Open conflicts: (subject, code, event ids).
    pub fn conflicts(&self, site: &str) -> Vec<(String, String, String)> {
        self.query(&format!(
            "SELECT subject, code, events FROM conflicts WHERE site = '{site}' AND resolved_by IS NULL ORDER BY server_seq"
        ))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect()
    }

    /// A consistent copy of a SQLite registry's database, by its own command while it serves
    /// (`kura-registry backup --to FILE`).
    pub fn backup(&self, to: &Path) {
        let said = self.admin(&["backup", "--to", to.to_str().unwrap()]);
        assert!(said.starts_with("backup "), "{said}");
    }

    /// Restores a SQLite registry from a copy (it must be stopped).
    pub fn restore(&self, from: &Path) {
        assert!(self.child.is_none(), "stop the registry first");
        let path = self.db.strip_prefix("sqlite://").unwrap();
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{ext}"));
        }
        std::fs::copy(from, path).unwrap();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What a specimen's custody is, as both sides can say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Custody {
    pub status: String,
    /// `BOX row,col`
    pub place: Option<String>,
    pub holder: Option<String>,
    pub in_conflict: bool,
    pub blocked: bool,
}

/// A bench: a database file and the real `kura` binary.
pub struct Bench {
    pub db: PathBuf,
    pub name: String,
}

impl Bench {
    pub fn new(dir: &Path, name: &str) -> Bench {
        Bench {
            db: dir.join(format!("{name}.sqlite3")),
            name: name.to_string(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin("kura"));
        c.env("KURA_DB", &self.db)
            .env("KURA_USER", format!("tech-{}", self.name))
            .env_remove("KURA_SYNC_CRASH")
            .env("KURA_LOG", "warn")
            .arg("--json")
            .stdin(Stdio::null());
        // Bench "b" applies pulled pages two events per transaction, so that the tests cross
        // the cursor set in the middle of a page (the others take the default, 250).
        if self.name == "b" {
            c.env("KURA_SYNC_APPLY_CHUNK", "2");
        } else {
            c.env_remove("KURA_SYNC_APPLY_CHUNK");
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs `kura --json ARGS` with `input` as the first line of standard input (a password
    /// or PIN for `--password-stdin`).
    pub fn try_run_with(&self, args: &[&str], input: &str) -> Result<Value, Value> {
        use std::io::Write;
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{input}\n").as_bytes()).unwrap();
        drop(stdin);
        parse(child.wait_with_output().unwrap())
    }

    /// Runs `kura --json ARGS`: the JSON answer, or the error's `{code, message}`.
    pub fn try_run(&self, args: &[&str]) -> Result<Value, Value> {
        parse(self.run(args))
    }

    pub fn ok(&self, args: &[&str]) -> Value {
        match self.try_run(args) {
            Ok(v) => v,
            Err(e) => panic!("bench {}: kura {args:?} failed: {e}", self.name),
        }
    }

    pub fn enroll(&self, reg: &Registry, site: &str) -> Value {
        let code = reg.code(site);
        self.ok(&[
            "enroll",
            &code,
            "--registry",
            &reg.url(),
            "--name",
            &self.name,
        ])
    }

    pub fn enroll_at(&self, url: &str, code: &str) -> Result<Value, Value> {
        self.try_run(&["enroll", code, "--registry", url, "--name", &self.name])
    }

    /// One sync round with short timeouts (a stalled request gives up in 2 s).
    pub fn sync(&self) -> Result<Value, Value> {
        self.try_run(&["sync", "--timeout", "2", "--attempts", "6"])
    }

    pub fn sync_ok(&self) -> Value {
        match self.sync() {
            Ok(v) => v,
            Err(e) => panic!("bench {}: sync failed: {e}", self.name),
        }
    }

    pub fn status(&self) -> Value {
        self.ok(&["sync", "status"])
    }

    pub fn workstation(&self) -> String {
        self.ok(&["stats"])["workstation"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn export(&self) -> String {
        let out = self.cmd().args(["export"]).output().unwrap();
        assert!(out.status.success());
        // --json is ignored by export: the CSV itself.
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn verify_ok(&self) {
        let out = self.run(&["verify"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert!(
            out.status.success() && v["ok"] == Value::Bool(true),
            "bench {}: verify: {v} {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).unwrap()
    }

    /// This workstation's own events in its log.
    pub fn own_events(&self) -> i64 {
        let ws = self.workstation().replace('-', "");
        self.conn()
            .query_row(
                &format!("SELECT count(*) FROM events WHERE hex(workstation) = upper('{ws}')"),
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    pub fn events(&self) -> i64 {
        self.conn()
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap()
    }

    /// The bench's projection in the registry's words.
    pub fn specimens(&self) -> BTreeMap<String, Custody> {
        let c = self.conn();
        let mut st = c
            .prepare(
                "SELECT code, status, (SELECT c.code FROM containers c WHERE c.id = s.container), row, col,
                    holder, in_conflict, blocked FROM specimens s ORDER BY code",
            )
            .unwrap();
        st.query_map([], |r| {
            let container: Option<String> = r.get(2)?;
            let place = match container {
                Some(c) => Some(format!(
                    "{c} {},{}",
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?
                )),
                None => None,
            };
            Ok((
                r.get::<_, String>(0)?,
                Custody {
                    status: r.get(1)?,
                    place,
                    holder: r.get(5)?,
                    in_conflict: r.get(6)?,
                    blocked: r.get(7)?,
                },
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// A consistent copy of the bench's database (its backup), with the token beside it.
    pub fn backup(&self, to: &Path) {
        self.conn()
            .execute("VACUUM INTO ?1", [to.to_str().unwrap()])
            .unwrap();
    }

    pub fn restore(&self, from: &Path) {
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", self.db.display()));
        }
        std::fs::copy(from, &self.db).unwrap();
    }
}

fn parse(out: Output) -> Result<Value, Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{') || l.starts_with('['));
    let v: Value = match last {
        Some(l) => serde_json::from_str(l).unwrap_or(Value::Null),
        None => Value::Null,
    };
    if out.status.success() {
        Ok(v)
    } else if v["error"].is_object() {
        Err(v["error"].clone())
    } else {
        Err(serde_json::json!({
            "code": "process",
            "message": format!("{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr)),
        }))
    }
}

/// What the proxy does to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward only the first bytes of the request, then close both sides.
    CutRequest(usize),
    /// Forward the request; give the client only the first bytes of the answer, then close.
    CutResponse(usize),
    /// Hold the request without forwarding it, then close (the client times out first).
    Stall(Duration),
    /// Wait, then forward as usual.
    Delay(Duration),
    /// Answer 503 without forwarding.
    Unavailable,
    /// Forward the request twice; the client gets the second answer.
    Twice,
}

/// A fault for the next request whose first line starts with `on` (e.g. `POST /api/v1/events`).
#[derive(Debug, Clone)]
pub struct Planned {
    pub on: String,
    pub fault: Fault,
}

/// A TCP proxy that frames HTTP/1.1 requests and answers (Content-Length bodies), so that a
/// fault hits one request, not a whole keep-alive connection.
pub struct Proxy {
    pub port: u16,
    faults: Arc<Mutex<VecDeque<Planned>>>,
    /// Requests forwarded, and faults applied.
    pub forwarded: Arc<AtomicU64>,
    pub applied: Arc<AtomicU64>,
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults: Arc<Mutex<VecDeque<Planned>>> = Arc::default();
        let forwarded = Arc::new(AtomicU64::new(0));
        let applied = Arc::new(AtomicU64::new(0));
        let (f, fw, ap) = (faults.clone(), forwarded.clone(), applied.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (f, fw, ap) = (f.clone(), fw.clone(), ap.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, upstream, &f, &fw, &ap);
                });
            }
        });
        Proxy {
            port,
            faults,
            forwarded,
            applied,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn plan(&self, on: &str, fault: Fault) {
        self.faults.lock().unwrap().push_back(Planned {
            on: on.to_string(),
            fault,
        });
    }

    pub fn pending(&self) -> usize {
        self.faults.lock().unwrap().len()
    }
}

/// Reads one HTTP message (head and a Content-Length body). `None` at a clean end of stream.
fn read_message(s: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(std::io::Error::other("cut in the head"))
            };
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap_or(0))
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    buf.extend(body);
    Ok(Some(buf))
}

fn exchange(upstream: u16, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.write_all(request)?;
    read_message(&mut up)?.ok_or_else(|| std::io::Error::other("no answer"))
}

fn serve(
    mut client: TcpStream,
    upstream: u16,
    faults: &Mutex<VecDeque<Planned>>,
    forwarded: &AtomicU64,
    applied: &AtomicU64,
) -> std::io::Result<()> {
    while let Some(req) = read_message(&mut client)? {
        let line = String::from_utf8_lossy(&req[..req.len().min(200)])
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let fault = {
            let mut q = faults.lock().unwrap();
            let at = q.iter().position(|p| line.starts_with(&p.on));
            at.and_then(|i| q.remove(i)).map(|p| p.fault)
        };
        if fault.is_some() {
            applied.fetch_add(1, Ordering::SeqCst);
        }
        match fault {
            None | Some(Fault::Delay(_)) => {
                if let Some(Fault::Delay(d)) = fault {
                    std::thread::sleep(d);
                }
                let res = exchange(upstream, &req)?;
                forwarded.fetch_add(1, Ordering::SeqCst);
                client.write_all(&res)?;
            }
            Some(Fault::CutRequest(n)) => {
                let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
                up.write_all(&req[..n.min(req.len())])?;
                let _ = up.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
            Some(Fault::CutResponse(n)) => {
                let res = exchange(upstream, &req)?;
                forwarded.fetch_add(1, Ordering::SeqCst);
                client.write_all(&res[..n.min(res.len())])?;
                return Ok(());
            }
            Some(Fault::Stall(d)) => {
                std::thread::sleep(d);
                return Ok(());
            }
            Some(Fault::Unavailable) => {
                let body = br#"{"code":"database_unavailable","message":"the database is not reachable (injected)"}"#;
                client.write_all(
                    format!(
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                )?;
                client.write_all(body)?;
            }
            Some(Fault::Twice) => {
                exchange(upstream, &req)?;
                let res = exchange(upstream, &req)?;
                forwarded.fetch_add(2, Ordering::SeqCst);
                client.write_all(&res)?;
            }
        }
    }
    Ok(())
}
