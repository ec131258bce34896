//! Printing for real: ZPL checked element by element, a loopback "printer" that takes the job,
//! refuses, stalls or hangs up; the print log with reprints marked.

mod common;

use std::io::{Read, Write};
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
        status: Some(Duration::from_millis(300)),
    }
}

/// What a Zebra answers to `~HS`: string 1 carries paper out (field 2), paused (3) and buffer
/// full (6); string 2 head open (3) and ribbon out (4).
fn host_status(paper_out: u8, paused: u8, buffer_full: u8, head_up: u8, ribbon_out: u8) -> Vec<u8> {
    format!(
        "\x02030,{paper_out},{paused},1245,000,{buffer_full},0,0,000,0,0,0\x03\r\n\x02001,0,{head_up},{ribbon_out},1,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n"
    )
    .into_bytes()
}

/// A Zebra on loopback that answers `~HS` with `answer`, then takes what follows.
fn zebra(answer: Vec<u8>) -> (String, std::sync::mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (addr, _) = printer(move |mut s| {
        let mut hs = [0u8; 3];
        s.read_exact(&mut hs).unwrap();
        assert_eq!(&hs, b"~HS");
        s.write_all(&answer).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        tx.send(rest).unwrap();
    });
    (addr, rx)
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
            !f.contains("研究A") && lines.iter().any(|l| l.contains("^GFA,")),
            "the Japanese study name is a graphic field (^A0 has no Japanese glyphs)"
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
    // This printer does not answer the status request: it is printed to all the same.
    transport::send_tcp(&addr, &job, &quick()).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(2)).unwrap(),
        [b"~HS".as_slice(), &job].concat()
    );
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
    assert_eq!(buf, b"~HS^XA^FDonce^FS^XZ");
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
        .set_printer("zebra-1", Some(PrinterConfig::tcp(addr)))
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
    assert!(
        job.starts_with("~HS^XA") && job.contains(&codes[2]),
        "the status request, then the job"
    );
    let h = b.kura.history(&codes[0]).unwrap();
    let prints: Vec<_> = h.iter().filter(|e| e.kind == "labels_printed").collect();
    assert_eq!(prints.len(), 2);
    assert_eq!(prints[1].payload["reprints"][0], codes[0].as_str());
    assert_eq!(prints[0].actor, "tester");
    // A failed delivery logs nothing.
    b.kura
        .set_printer("gone", Some(PrinterConfig::tcp("127.0.0.1:9")))
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

#[test]
fn a_printer_that_is_not_ready_gets_nothing_and_nothing_is_logged() {
    let mut b = bench();
    b.kura.set_print_timeouts(quick());
    let r = register(&mut b.kura, 1);
    let codes = r.aliquots.clone();
    // (paper out, paused, buffer full, head up, ribbon out) → the code the window translates.
    let cases = [
        ((1, 0, 0, 0, 0), "printer_paper_out", "out of labels"),
        ((0, 0, 0, 0, 1), "printer_ribbon_out", "out of ribbon"),
        ((0, 0, 0, 1, 0), "printer_head_open", "head is open"),
        ((0, 1, 0, 0, 0), "printer_paused", "paused"),
        ((0, 0, 1, 0, 0), "printer_buffer_full", "buffer is full"),
        ((1, 0, 0, 1, 0), "printer_head_open", "out of labels"),
    ];
    for ((p, pa, bf, h, rb), code, says) in cases {
        let (addr, rx) = zebra(host_status(p, pa, bf, h, rb));
        b.kura
            .set_printer("zebra", Some(PrinterConfig::tcp(addr)))
            .unwrap();
        let before = b.kura.stats().unwrap().events;
        let e = b
            .kura
            .print_labels(
                &codes,
                "thermal-1.28x0.5",
                &PrintTarget::Printer("zebra".into()),
            )
            .unwrap_err();
        assert_eq!(e.code(), code, "{e}");
        assert!(
            e.to_string().contains(says) && e.to_string().contains("nothing was sent"),
            "{e}"
        );
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(2)).unwrap(),
            b"",
            "{code}: nothing after ~HS"
        );
        assert_eq!(
            b.kura.stats().unwrap().events,
            before,
            "{code}: nothing logged"
        );
    }
    // A healthy printer prints once, at its own resolution.
    let (addr, rx) = zebra(host_status(0, 0, 0, 0, 0));
    b.kura
        .set_printer(
            "zebra",
            Some(PrinterConfig::Tcp {
                address: addr,
                dpi: Some(203),
                zpl_font: None,
            }),
        )
        .unwrap();
    let before = b.kura.stats().unwrap().events;
    b.kura
        .print_labels(
            &codes,
            "thermal-1.28x0.5",
            &PrintTarget::Printer("zebra".into()),
        )
        .unwrap();
    let job = String::from_utf8(rx.recv_timeout(Duration::from_secs(2)).unwrap()).unwrap();
    assert_eq!(job.matches("^XA").count(), 1);
    assert!(job.contains("^PW260\n"), "32.5 mm at 203 dpi: {job}");
    assert_eq!(b.kura.stats().unwrap().events, before + 1);
    // `kura printer test` asks first, too.
    let (addr, rx) = zebra(host_status(1, 0, 0, 0, 0));
    b.kura
        .set_printer("zebra", Some(PrinterConfig::tcp(addr)))
        .unwrap();
    assert_eq!(
        b.kura.test_printer("zebra", "box-2x1").unwrap_err().code(),
        "printer_paper_out"
    );
    drop(rx);
    let (addr, rx) = zebra(host_status(0, 0, 0, 0, 0));
    b.kura
        .set_printer("zebra", Some(PrinterConfig::tcp(addr)))
        .unwrap();
    let t = b.kura.test_printer("zebra", "box-2x1").unwrap();
    assert_eq!((t.status.as_str(), t.dpi), ("ready", 203));
    // The status was asked on a connection of its own; the label came on the next.
    assert_eq!(rx.recv_timeout(Duration::from_secs(2)).unwrap(), b"");
    let label = String::from_utf8(rx.recv_timeout(Duration::from_secs(2)).unwrap()).unwrap();
    assert!(
        label.contains("^BCN,") && label.contains("^BXN,") && label.contains("^FDTEST203^FS"),
        "{label}"
    );
    assert_eq!(
        b.kura.stats().unwrap().events,
        before + 1,
        "a test label is not logged"
    );
}

#[test]
fn a_resident_font_is_used_instead_of_graphics() {
    let mut b = bench();
    b.kura.set_print_timeouts(quick());
    let r = register(&mut b.kura, 1);
    let (addr, rx) = zebra(host_status(0, 0, 0, 0, 0));
    let bad = b.kura.set_printer(
        "z",
        Some(PrinterConfig::Tcp {
            address: addr.clone(),
            dpi: Some(250),
            zpl_font: None,
        }),
    );
    assert_eq!(bad.unwrap_err().code(), "bad_input", "250 dpi is refused");
    let bad = b.kura.set_printer(
        "z",
        Some(PrinterConfig::Tcp {
            address: addr.clone(),
            dpi: None,
            zpl_font: Some("^XA".into()),
        }),
    );
    assert!(
        bad.is_err(),
        "a font name that would break the format is refused"
    );
    b.kura
        .set_printer(
            "z",
            Some(PrinterConfig::Tcp {
                address: addr,
                dpi: Some(300),
                zpl_font: Some("E:TT0003M_.TTF".into()),
            }),
        )
        .unwrap();
    b.kura
        .print_labels(
            &r.aliquots,
            "thermal-1.28x0.5",
            &PrintTarget::Printer("z".into()),
        )
        .unwrap();
    let job = String::from_utf8(rx.recv_timeout(Duration::from_secs(2)).unwrap()).unwrap();
    assert!(job.contains("^CWZ,E:TT0003M_.TTF\n"), "{job}");
    assert!(
        job.contains("^AZN,") && job.contains("研究A") && !job.contains("^GFA"),
        "{job}"
    );
}

#[test]
fn a_network_zebra_says_its_resolution() {
    let mut b = bench();
    b.kura.set_print_timeouts(quick());
    let (addr, _) = printer(|mut s| {
        let mut hi = [0u8; 3];
        s.read_exact(&mut hi).unwrap();
        assert_eq!(&hi, b"~HI");
        s.write_all(b"\x02ZT410-300dpi,V75.20.01Z,12,8176KB\x03\r\n")
            .unwrap();
    });
    assert_eq!(b.kura.detect_dpi(&addr), Some(300));
    // One that keeps quiet says nothing; nothing is guessed.
    let (quiet, _) = printer(|s| {
        std::thread::sleep(Duration::from_secs(1));
        drop(s);
    });
    assert_eq!(b.kura.detect_dpi(&quiet), None);
}
