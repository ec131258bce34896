//! CUPS for real: a private `cupsd` (Debian's `cups`, its own configuration, spool and socket in
//! a temporary directory), a raw queue to a Zebra on loopback through CUPS's `socket` backend,
//! a PDF queue through `cups-pdf` (Debian's `printer-driver-cups-pdf`), both added to Kura with
//! `kura printer add --cups` / `--cups-pdf` and printed to with `kura labels --printer`. The
//! PDF that cups-pdf writes is rasterised and decoded back to the codes printed; a stopped queue
//! gives a clear error and no print is logged. One server for the whole test binary.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs as root, or through `sudo -n` (cupsd runs the cups-pdf backend as root).
fn as_root(program: &str) -> Command {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    if uid.trim_ascii() == b"0" {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", program]);
        c
    }
}

fn run(cmd: &mut Command, what: &str) -> String {
    let o = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: {e} (scripts/setup installs cups and printer-driver-cups-pdf)")
    });
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

struct Cups {
    dir: PathBuf,
    socket: PathBuf,
    child: Child,
    /// cups-pdf reads its configuration from /etc/cups only: one file per queue of this test.
    pdf_confs: Vec<PathBuf>,
}

impl Cups {
    fn start() -> Cups {
        let dir = std::env::temp_dir().join(format!("kura-cups-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["etc/ppd", "spool/tmp", "cache", "state", "log", "out"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        // cups-pdf writes as the job's user; the test reads it back.
        run(
            Command::new("chmod").args(["0777"]).arg(dir.join("out")),
            "chmod",
        );
        let socket = dir.join("cups.sock");
        std::fs::write(
            dir.join("etc/cupsd.conf"),
            format!(
                "Listen {}\nLogLevel info\nDefaultAuthType None\nWebInterface No\nBrowsing No\n\
                 <Location />\n  Order allow,deny\n  Allow all\n</Location>\n\
                 <Location /admin>\n  Order allow,deny\n  Allow all\n</Location>\n\
                 <Policy default>\n  <Limit All>\n    Order allow,deny\n    Allow all\n  </Limit>\n</Policy>\n",
                socket.display()
            ),
        )
        .unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("etc/cups-files.conf"),
            format!(
                "ServerRoot {d}/etc\nStateDir {d}/state\nCacheDir {d}/cache\nRequestRoot {d}/spool\n\
                 TempDir {d}/spool/tmp\nErrorLog {d}/log/error_log\nAccessLog {d}/log/access_log\n\
                 PageLog {d}/log/page_log\n"
            ),
        )
        .unwrap();
        let child = as_root("cupsd")
            .arg("-f")
            .arg("-c")
            .arg(dir.join("etc/cupsd.conf"))
            .arg("-s")
            .arg(dir.join("etc/cups-files.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cupsd runs (apt-get install cups; scripts/setup does it)");
        let c = Cups {
            dir,
            socket,
            child,
            pdf_confs: Vec::new(),
        };
        let t0 = Instant::now();
        while !c
            .lp("lpstat")
            .arg("-r")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("is running"))
        {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "cupsd did not start: see {}",
                c.dir.join("log/error_log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    /// A CUPS client command talking to this server.
    fn lp(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("CUPS_SERVER", &self.socket).env("LC_ALL", "C");
        cmd
    }

    fn admin(&self, program: &str, args: &[&str]) {
        let mut cmd = as_root(program);
        cmd.env("CUPS_SERVER", &self.socket).args(args);
        run(&mut cmd, program);
    }

    fn add_raw_queue(&self, name: &str, device: &str) {
        self.admin("lpadmin", &["-p", name, "-v", device, "-E"]);
    }

    fn add_pdf_queue(&mut self, name: &str) -> PathBuf {
        let out = self.dir.join("out").join(name);
        std::fs::create_dir_all(&out).unwrap();
        run(Command::new("chmod").args(["0777"]).arg(&out), "chmod");
        let conf = PathBuf::from(format!("/etc/cups/cups-pdf-{name}.conf"));
        let tmp = self.dir.join(format!("cups-pdf-{name}.conf"));
        std::fs::write(
            &tmp,
            format!(
                "Out {}\nLog {}\nSpool {}\nUserUMask 0022\n",
                out.display(),
                self.dir.join("log").display(),
                self.dir.join("spool/cups-pdf").display()
            ),
        )
        .unwrap();
        run(as_root("cp").arg(&tmp).arg(&conf), "cp cups-pdf.conf");
        self.pdf_confs.push(conf);
        self.admin(
            "lpadmin",
            &[
                "-p",
                name,
                "-v",
                &format!("cups-pdf:/{name}"),
                "-P",
                "/usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd",
                "-E",
            ],
        );
        out
    }
}

impl Drop for Cups {
    fn drop(&mut self) {
        for c in &self.pdf_confs {
            let _ = as_root("rm").arg("-f").arg(c).status();
        }
        let _ = as_root("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kura(db: &Path, cups: &Cups, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kura"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env("KURA_USER", "tester")
        .env("CUPS_SERVER", &cups.socket)
        .output()
        .expect("kura runs")
}

fn ok(db: &Path, cups: &Cups, args: &[&str]) -> String {
    let o = kura(db, cups, args);
    assert!(
        o.status.success(),
        "kura {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn events(db: &Path, cups: &Cups) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&ok(db, cups, &["--json", "stats"])).unwrap();
    v["events"].as_u64().unwrap()
}

/// PDFs that appear in `dir` within `wait`.
fn pdfs_in(dir: &Path, n: usize, wait: Duration) -> Vec<PathBuf> {
    let t0 = Instant::now();
    loop {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
            .collect();
        if v.len() >= n || t0.elapsed() > wait {
            v.sort();
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The DataMatrix codes zxing-cpp reads from every page of `pdf` at 300 dpi.
fn datamatrix_codes(pdf: &Path) -> Vec<String> {
    let stem = pdf.with_extension("");
    run(
        Command::new("pdftoppm")
            .args(["-r", "300", "-png"])
            .arg(pdf)
            .arg(&stem),
        "pdftoppm",
    );
    let dir = pdf.parent().unwrap();
    let name = stem.file_name().unwrap().to_str().unwrap().to_string();
    let pngs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "png")
                && p.file_name().unwrap().to_str().unwrap().starts_with(&name)
        })
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kura-labels/tests/decode.py");
    let out = run(
        Command::new("python3").arg(script).args(&pngs),
        "zxing-cpp decode",
    );
    let mut codes = Vec::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for s in v["symbols"].as_array().unwrap() {
            if s[0] == "DataMatrix" {
                codes.push(s[1].as_str().unwrap().to_string());
            }
        }
    }
    codes.sort();
    codes
}

#[test]
fn labels_go_through_a_real_cupsd_and_a_stopped_queue_is_refused() {
    let mut cups = Cups::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("kura.sqlite3");
    ok(&db, &cups, &["demo", "--specimens", "5"]);
    let found: serde_json::Value =
        serde_json::from_str(&ok(&db, &cups, &["--json", "find", "--limit", "3"])).unwrap();
    let codes: Vec<String> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 3);
    let pid = std::process::id();

    // A Zebra behind CUPS: raw ZPL through the socket backend to a printer on loopback.
    let zebra = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = zebra.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in zebra.incoming() {
            let mut buf = Vec::new();
            s.unwrap().read_to_end(&mut buf).unwrap();
            tx.send(buf).unwrap();
        }
    });
    let zq = format!("kura-zebra-{pid}");
    cups.add_raw_queue(&zq, &format!("socket://127.0.0.1:{port}"));
    ok(
        &db,
        &cups,
        &["printer", "add", "zebra", "--cups", &zq, "--dpi", "203"],
    );
    let before = events(&db, &cups);
    ok(
        &db,
        &cups,
        &[
            "labels",
            &codes[0],
            &codes[1],
            "--stock",
            "thermal-1.28x0.5",
            "--printer",
            "zebra",
        ],
    );
    let job = String::from_utf8(
        rx.recv_timeout(Duration::from_secs(30))
            .expect("CUPS delivered the ZPL job"),
    )
    .unwrap();
    assert_eq!(job.matches("^XA").count(), 2, "{job}");
    assert!(
        job.contains(&format!("^FD{}^FS", codes[0]))
            && job.contains(&format!("^FD{}^FS", codes[1])),
        "{job}"
    );
    assert!(
        job.contains("^PW260\n"),
        "laid out for the 203-dpi printer: {job}"
    );
    assert!(
        job.contains("^GFA,"),
        "the Japanese study name as a graphic field"
    );
    assert_eq!(events(&db, &cups), before + 1, "the print is logged once");
    // The calibration label through CUPS.
    let t = ok(&db, &cups, &["printer", "test", "zebra"]);
    assert!(t.contains("queue running") && t.contains("TEST203"), "{t}");
    let job = String::from_utf8(rx.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    assert!(
        job.contains("^BCN,") && job.contains("^BXN,") && job.contains("^FDTEST203^FS"),
        "{job}"
    );
    assert_eq!(events(&db, &cups), before + 1, "a test label is not logged");

    // A sheet printer: PDF through cups-pdf, which writes the PDF it would print.
    let sq = format!("kura-sheets-{pid}");
    let out = cups.add_pdf_queue(&sq);
    ok(&db, &cups, &["printer", "add", "sheets", "--cups-pdf", &sq]);
    let before = events(&db, &cups);
    ok(
        &db,
        &cups,
        &[
            "labels",
            &codes[0],
            &codes[1],
            &codes[2],
            "--stock",
            "cryo-38x13-a4",
            "--printer",
            "sheets",
        ],
    );
    let pdfs = pdfs_in(&out, 1, Duration::from_secs(60));
    assert_eq!(
        pdfs.len(),
        1,
        "cups-pdf wrote the job: see {}",
        cups.dir.join("log").display()
    );
    // cups-pdf closes the file when done: wait for it to stop growing.
    std::thread::sleep(Duration::from_millis(500));
    let mut want = codes.clone();
    want.sort();
    assert_eq!(
        datamatrix_codes(&pdfs[0]),
        want,
        "the PDF CUPS made decodes back to the codes printed"
    );
    assert_eq!(events(&db, &cups), before + 1);

    // A stopped queue: a clear error, nothing queued, nothing logged.
    cups.admin("cupsdisable", &["-r", "out of labels", &sq]);
    let o = kura(
        &db,
        &cups,
        &[
            "--json",
            "labels",
            &codes[0],
            "--stock",
            "cryo-38x13-a4",
            "--printer",
            "sheets",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["code"], "printer_queue_stopped", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&sq) && msg.contains("out of labels") && msg.contains("cupsenable"),
        "{msg}"
    );
    assert_eq!(events(&db, &cups), before + 1, "nothing logged");
    let jobs =
        String::from_utf8(cups.lp("lpstat").args(["-o", &sq]).output().unwrap().stdout).unwrap();
    assert!(jobs.trim().is_empty(), "nothing queued: {jobs}");
    let o = kura(
        &db,
        &cups,
        &["printer", "test", "sheets", "--stock", "cryo-38x13-a4"],
    );
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("is stopped"),
        "{o:?}"
    );
    assert_eq!(
        pdfs_in(&out, 2, Duration::from_secs(2)).len(),
        1,
        "nothing printed"
    );
}
