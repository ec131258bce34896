//! Printing for real: ZPL checked element by element, a loopback "printer" that takes the job,
//! refuses, stalls or hangs up; the print log with reprints marked.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{bench, register};
use kura_app::labels::PrintTarget;
use kura_app::transport::{self, PrinterConfig, Timeouts};

fn quick() -> Timeouts {
    Timeouts {
        connect: Duration::from_millis(500),
        write: Duration::from_millis(700),
        linger: Duration::from_millis(300),
        retries: 2,
        backoff: Duration::from_millis(300),
    }
}

/// A printer on loopback. `behaviour` gets each accepted connection.
fn printer(behaviour: impl Fn(std::net::TcpStream) + Send + 'static) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
            behaviour(s);
        }
    });
    (addr, count)
}

#[test]
fn zpl_is_what_a_zebra_expects_element_by_element() {
    let mut b = bench();
    let r = register(&mut b.kura, 2);
    let codes = vec![r.aliquots[0].clone(), r.aliquots[1].clone()];
    let z = String::from_utf8(
        b.kura
            .render_labels(&codes, "thermal-1.28x0.5", true)
            .unwrap()
            .bytes,
    )
    .unwrap();
    let formats: Vec<&str> = z.split("^XZ").filter(|f| !f.trim().is_empty()).collect();
    assert_eq!(formats.len(), 2, "one format per label");
    for (f, code) in formats.iter().zip(&codes) {
        let lines: Vec<&str> = f.trim().lines().collect();
        assert_eq!(lines[0], "^XA");
        assert_eq!(lines[1], "^CI28", "UTF-8");
        assert_eq!(lines[2], "^PW384", "1.28 in at 300 dpi");
        assert_eq!(lines[3], "^LL150", "0.5 in at 300 dpi");
        let dm: Vec<&&str> = lines.iter().filter(|l| l.contains("^BX")).collect();
        assert_eq!(dm.len(), 1);
        assert!(
            dm[0].contains("^BXN,")
                && dm[0].contains(",200,")
                && dm[0].ends_with(&format!("^FD{code}^FS")),
            "{}",
            dm[0]
        );
        let (data, check) = code.split_at(code.len() - 1);
        assert!(lines.iter().any(|l| l.starts_with("^FO")
            && l.contains("^A0N,")
            && l.ends_with(&format!("^FD{data}^FS"))));
        assert!(
            lines.iter().any(|l| l.contains("^GB")),
            "the check character's frame"
        );
        assert!(lines.iter().any(|l| l.ends_with(&format!("^FD{check}^FS"))));
        assert!(
            lines.iter().any(|l| l.contains("研究A")),
            "Japanese study name, UTF-8"
        );
        assert_eq!(lines.last().unwrap().trim(), "^PQ1");
    }
    // A box label has a ^BC Code128 where it fits.
    b.kura
        .create_container("BX42", "box-9x9", None, Some("R1"), Some("2-1"), None)
        .unwrap();
    let z = String::from_utf8(
        b.kura
            .render_labels(&["BX42".into()], "box-2x1", true)
            .unwrap()
            .bytes,
    )
    .unwrap();
    assert!(
        z.lines()
            .any(|l| l.contains("^BCN,") && l.ends_with("^FDBX42^FS")),
        "{z}"
    );
}

#[test]
fn a_printer_that_takes_the_job_gets_it_once_and_whole() {
    let (tx, rx) = std::sync::mpsc::channel();
    let (addr, count) = printer(move |mut s| {
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        tx.send(buf).unwrap();
    });
    let job = b"^XA^FDhello^FS^XZ".repeat(1000);
    transport::send_tcp(&addr, &job, &quick()).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(2)).unwrap(), job);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn a_refused_connection_is_retried_then_reported() {
    // Nothing listens on this port.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = transport::send_tcp(&format!("127.0.0.1:{port}"), b"^XA^XZ", &quick()).unwrap_err();
    assert_eq!(e.code(), "printer_unreachable");
    assert!(e.to_string().contains("3 attempts"), "{e}");
}

#[test]
fn a_printer_busy_at_first_gets_exactly_one_job() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let received = Arc::new(AtomicUsize::new(0));
    let r = received.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        l.set_nonblocking(false).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        r.fetch_add(1, Ordering::SeqCst);
        // Nobody else connects.
        l.set_nonblocking(true).unwrap();
        std::thread::sleep(Duration::from_millis(800));
        assert!(
            l.accept().is_err(),
            "a second connection means a duplicate print"
        );
        buf
    });
    transport::send_tcp(&format!("127.0.0.1:{port}"), b"^XA^FDonce^FS^XZ", &quick()).unwrap();
    let buf = t.join().unwrap();
    assert_eq!(buf, b"^XA^FDonce^FS^XZ");
    assert_eq!(received.load(Ordering::SeqCst), 1);
}

#[test]
fn a_stalled_printer_is_reported_and_not_retried() {
    let (addr, count) = printer(|s| {
        // Accept, never read, keep the socket open.
        std::thread::sleep(Duration::from_secs(5));
        drop(s);
    });
    let job = vec![b'A'; 64 * 1024 * 1024];
    let e = transport::send_tcp(&addr, &job, &quick()).unwrap_err();
    assert_eq!(e.code(), "printer_stalled", "{e}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "no retry once bytes went out"
    );
}

#[test]
fn a_printer_that_hangs_up_mid_job_is_reported_and_not_retried() {
    let (addr, count) = printer(|mut s| {
        let mut buf = [0u8; 1000];
        let _ = s.read_exact(&mut buf);
        // Hang up with unread data: the client sees a reset.
        drop(s);
    });
    let job = vec![b'Z'; 8 * 1024 * 1024];
    let e = transport::send_tcp(&addr, &job, &quick()).unwrap_err();
    assert_eq!(e.code(), "printer_closed", "{e}");
    assert!(e.to_string().contains("nothing was resent"));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn prints_are_logged_and_reprints_marked() {
    let mut b = bench();
    let r = register(&mut b.kura, 3);
    let dir = b.dir.path().to_path_buf();
    let codes = r.aliquots.clone();
    let first = b
        .kura
        .print_labels(
            &codes[..2],
            "cryo-38x13-a4",
            &PrintTarget::Pdf(dir.join("a.pdf")),
        )
        .unwrap();
    assert!(first.reprints.is_empty());
    assert!(
        std::fs::read(dir.join("a.pdf"))
            .unwrap()
            .starts_with(b"%PDF")
    );
    let second = b
        .kura
        .print_labels(&codes, "tube-top-9.5", &PrintTarget::Pdf(dir.join("b.pdf")))
        .unwrap();
    assert_eq!(second.reprints, codes[..2].to_vec());
    // To a configured loopback printer.
    let (tx, rx) = std::sync::mpsc::channel();
    let (addr, _) = printer(move |mut s| {
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        tx.send(buf).unwrap();
    });
    b.kura
        .set_printer("zebra-1", Some(PrinterConfig::Tcp { address: addr }))
        .unwrap();
    let third = b
        .kura
        .print_labels(
            &codes[2..],
            "thermal-1.28x0.5",
            &PrintTarget::Printer("zebra-1".into()),
        )
        .unwrap();
    assert_eq!(third.reprints, codes[2..].to_vec());
    let job = String::from_utf8(rx.recv_timeout(Duration::from_secs(2)).unwrap()).unwrap();
    assert!(job.starts_with("^XA") && job.contains(&codes[2]));
    let h = b.kura.history(&codes[0]).unwrap();
    let prints: Vec<_> = h.iter().filter(|e| e.kind == "labels_printed").collect();
    assert_eq!(prints.len(), 2);
    assert_eq!(prints[1].payload["reprints"][0], codes[0].as_str());
    assert_eq!(prints[0].actor, "tester");
    // A failed delivery logs nothing.
    b.kura
        .set_printer(
            "gone",
            Some(PrinterConfig::Tcp {
                address: "127.0.0.1:9".into(),
            }),
        )
        .unwrap();
    let before = b.kura.stats().unwrap().events;
    b.kura.set_print_timeouts(quick());
    assert!(
        b.kura
            .print_labels(
                &codes[..1],
                "thermal-1.28x0.5",
                &PrintTarget::Printer("gone".into())
            )
            .is_err()
    );
    assert_eq!(b.kura.stats().unwrap().events, before);
    assert!(b.kura.verify(&mut |_, _| {}).unwrap().ok());
}

#[test]
fn a_box_map_pdf_is_written_and_logged() {
    let mut b = bench();
    let r = register(&mut b.kura, 5);
    b.kura.check_in_box("BX1", &r.aliquots).unwrap();
    let out = b.dir.path().join("map.pdf");
    let rep = b.kura.print_box_map("BX1", &out).unwrap();
    assert!(rep.bytes > 1000 && std::fs::read(&out).unwrap().starts_with(b"%PDF"));
    let d = b.kura.box_map_data("BX1").unwrap();
    assert_eq!(d.cells.iter().filter(|c| c.code.is_some()).count(), 5);
    assert_eq!(d.row_labels[0], "A");
}
