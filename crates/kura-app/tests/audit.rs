//! The audit report through `kura-app`: what it lists (a specimen, a user, a period), the old
//! and new values of each event, signatures; the PDF rasterised (`pdftoppm`) and read back
//! (`pdftotext`, Japanese included), its last page the verification of the chain; the CSV parsed
//! back to the same rows; the export recorded with the file's SHA-256 and signed; a tampered
//! record shown as such on the last page.

mod common;

use std::path::Path;
use std::process::Command;

use common::{bench, register};
use kura_app::audit::{AuditQuery, read_audit_csv};
use kura_app::{Kura, Meaning, Signing};
use kura_domain::Role;

fn signing(user: &str, meaning: Meaning) -> Signing {
    Signing {
        user: Some(user.into()),
        secret: format!("{user}-password"),
        meaning,
    }
}

/// A secured bench: an administrator (admin), a supervisor (sup) and an auditor (aud); the
/// supervisor checked a tube out and disposed of another, signed.
fn site() -> (common::Bench, Vec<String>) {
    let mut b = bench();
    let r = register(&mut b.kura, 4);
    b.kura.check_in_box("BX1", &r.aliquots).unwrap();
    b.kura
        .add_first_administrator("admin", "管理者 太郎", "admin-password")
        .unwrap();
    for (u, name, role) in [
        ("sup", "責任者 花子", Role::Supervisor),
        ("aud", "監査 次郎", Role::Auditor),
    ] {
        let s = signing("admin", Meaning::Approved);
        b.kura
            .with_signature(kura_app::users::Act::ManageUsers, Some(&s), |k| {
                k.add_user(u, name, role, None, &format!("{u}-password"))
            })
            .unwrap();
    }
    b.kura.sign_in("sup", "sup-password").unwrap();
    b.kura
        .check_out(
            &[r.aliquots[0].clone()],
            &kura_app::CheckOut {
                to: "佐藤先生".into(),
                purpose: "analysis".into(),
                due: None,
                note: None,
            },
        )
        .unwrap();
    b.kura
        .with_signature(
            kura_app::users::Act::Dispose,
            Some(&signing("sup", Meaning::Performed)),
            |k| k.dispose(&r.aliquots[1], "溶血のため廃棄"),
        )
        .map(|s| s.expect("a signed act returns its signature"))
        .unwrap();
    (b, r.aliquots)
}

fn pdftotext(pdf: &Path, page: Option<usize>) -> String {
    let mut c = Command::new("pdftotext");
    if let Some(p) = page {
        c.args(["-f", &p.to_string(), "-l", &p.to_string()]);
    }
    let o = c
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn sha256(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(o.stdout).unwrap()[..64].to_string()
}

#[test]
fn a_specimens_trail_as_pdf_and_csv_with_old_and_new_values_and_signatures() {
    let (mut b, tubes) = site();
    b.kura.sign_out();
    b.kura.sign_in("aud", "aud-password").unwrap();
    let q = AuditQuery {
        specimen: Some(tubes[1].clone()),
        ..Default::default()
    };
    let report = b.kura.audit(&q, &mut |_, _| {}).unwrap();
    let kinds: Vec<&str> = report.rows.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        kinds,
        ["derived", "checked_in", "disposed", "signed"],
        "{:#?}",
        report.rows
    );
    let disposed = &report.rows[2];
    assert_eq!(disposed.old, "status=available");
    assert_eq!(disposed.new, "status=disposed");
    assert_eq!(disposed.reason, "溶血のため廃棄");
    assert_eq!(disposed.actor, "sup");
    assert!(
        disposed
            .signatures
            .starts_with("責任者 花子 (sup) performed 20"),
        "{}",
        disposed.signatures
    );
    assert!(report.verify.ok());
    // The signer's key, as the log published it: its fingerprint is printed for an inspector.
    let published: String = rusqlite::Connection::open(b.db())
        .unwrap()
        .query_row(
            "SELECT signing_key FROM users WHERE code = 'sup'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let fingerprint = kura_domain::sign::fingerprint(&published);
    assert_eq!(
        report
            .keys
            .iter()
            .map(|k| (k.user.as_str(), k.fingerprint.as_deref()))
            .collect::<Vec<_>>(),
        vec![("sup", Some(fingerprint.as_str()))]
    );

    // The PDF, in Japanese: rasterised, and its text extracted.
    let pdf = b.dir.path().join("trail.pdf");
    let before = b.kura.stats().unwrap().events;
    // The auditor's export is signed: without a signature nothing is written.
    let e = b
        .kura
        .export_audit(&q, &pdf, "ja", &mut |_, _| {})
        .unwrap_err();
    assert_eq!(e.code(), "signature_required");
    assert!(!pdf.exists());
    let wrong = Signing {
        secret: "not-the-password".into(),
        ..signing("aud", Meaning::Reviewed)
    };
    let e = b
        .kura
        .with_signature(kura_app::users::Act::Read, Some(&wrong), |k| {
            k.export_audit(&q, &pdf, "ja", &mut |_, _| {})
        })
        .unwrap_err();
    assert_eq!(e.code(), "sign_in_failed");
    assert!(!pdf.exists());
    assert_eq!(b.kura.stats().unwrap().events, before, "nothing recorded");
    let x = b
        .kura
        .with_signature(
            kura_app::users::Act::Read,
            Some(&signing("aud", Meaning::Reviewed)),
            |k| k.export_audit(&q, &pdf, "ja", &mut |_, _| {}),
        )
        .unwrap();
    assert!(x.intact && x.pages >= 2, "{x:?}");
    let png = b.dir.path().join("page");
    let o = Command::new("pdftoppm")
        .args(["-r", "50", "-png"])
        .arg(&pdf)
        .arg(&png)
        .output()
        .expect("pdftoppm (poppler-utils)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pngs = std::fs::read_dir(b.dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("page")
        })
        .count();
    assert_eq!(pngs, x.pages, "every page renders");
    let text = pdftotext(&pdf, None);
    for want in [
        "Kura 監査証跡",
        tubes[1].as_str(),
        "廃棄",
        "溶血のため廃棄",
        "状態: 保管中",
        "状態: 廃棄済",
        "責任者 花子 (sup) 実施",
        "監査 次郎 (aud)",
    ] {
        assert!(
            text.contains(want),
            "{want:?} not in the PDF's text:\n{text}"
        );
    }
    let last = pdftotext(&pdf, Some(x.pages));
    assert!(last.contains("記録の検証"), "{last}");
    assert!(
        last.replace('\n', " ").contains(&fingerprint),
        "the signer's key fingerprint is printed:\n{last}"
    );
    assert!(
        last.contains("ハッシュチェーンは改ざんなし"),
        "the last page says the chain is intact:\n{last}"
    );
    let head = b
        .kura
        .audit(&AuditQuery::default(), &mut |_, _| {})
        .unwrap();
    let ws = b.kura.workstation().to_string();
    assert!(
        last.replace('\n', " ").contains(&ws),
        "the head of this workstation's chain:\n{last}"
    );
    // The export is in the trail: its file's SHA-256, signed by the auditor.
    assert_eq!(x.sha256, sha256(&pdf));
    let exported = head
        .rows
        .iter()
        .find(|r| r.event == "audit_exported")
        .expect("the export is recorded");
    assert_eq!(exported.actor, "aud");
    assert!(exported.reason.contains(&x.sha256), "{exported:?}");
    assert!(
        exported.signatures.starts_with("監査 次郎 (aud) reviewed"),
        "{exported:?}"
    );
    let sig = x.signature.expect("signed");
    assert_eq!(sig.signer, "aud");

    // The CSV (English) parses back to the rows of the report.
    let csv = b.dir.path().join("trail.csv");
    let x = b
        .kura
        .with_signature(
            kura_app::users::Act::Read,
            Some(&Signing {
                user: None,
                ..signing("aud", Meaning::Reviewed)
            }),
            |k| k.export_audit(&q, &csv, "en", &mut |_, _| {}),
        )
        .unwrap();
    assert_eq!(x.sha256, sha256(&csv));
    let back = read_audit_csv(&std::fs::read(&csv).unwrap()).unwrap();
    let now = b.kura.audit(&q, &mut |_, _| {}).unwrap();
    assert_eq!(back, now.rows);
    assert_eq!(back.len(), 4);

    // The events as stored, and a checker of its own (Python, another Ed25519) that reads only
    // them and the PDF: every signature verifies, and the key of each signature on a record
    // the PDF lists is printed there. A changed signature fails it.
    let events = b.dir.path().join("events.jsonl");
    b.kura
        .with_signature(
            kura_app::users::Act::Read,
            Some(&Signing {
                user: None,
                ..signing("aud", Meaning::Reviewed)
            }),
            |k| k.export_audit(&q, &events, "en", &mut |_, _| {}),
        )
        .unwrap();
    let check = |events: &Path| {
        let o = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/audit/check.py"))
            .arg("--pdf")
            .arg(&pdf)
            .arg("--events")
            .arg(events)
            .output()
            .expect("python3");
        let summary: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&o.stderr)));
        (o.status.success(), summary)
    };

    let (ok, summary) = check(&events);
    assert!(ok, "{summary}");
    assert!(summary["verified"].as_u64().unwrap() >= 5, "{summary}");
    assert_eq!(summary["printed"], 1, "the disposal's signature: {summary}");
    let text = std::fs::read_to_string(&events).unwrap();
    let at = text.find("\"signature\":\"").unwrap() + 13;
    let mut forged = text.into_bytes();
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    let bad = b.dir.path().join("forged.jsonl");
    std::fs::write(&bad, forged).unwrap();
    let (ok, summary) = check(&bad);
    assert!(!ok, "a changed signature fails: {summary}");
    assert_eq!(summary["failed"].as_array().unwrap().len(), 1, "{summary}");
    // The auditor changed nothing in custody.
    assert_eq!(
        b.kura.thaw(&tubes[2]).unwrap_err().code(),
        "forbidden",
        "the auditor reads and exports; they do not act"
    );
}

#[test]
fn by_user_and_by_period_and_a_tampered_record_on_the_last_page() {
    let (mut b, tubes) = site();
    // By user: what sup did (a check-out, a disposal and its signature), and nothing else.
    let by_sup = b
        .kura
        .audit(
            &AuditQuery {
                user: Some("sup".into()),
                ..Default::default()
            },
            &mut |_, _| {},
        )
        .unwrap();
    let kinds: Vec<&str> = by_sup.rows.iter().map(|r| r.event.as_str()).collect();
    // sup's own events, and the user administration about sup (made by admin).
    assert_eq!(
        kinds,
        [
            "user_added",
            "credential_set",
            "checked_out",
            "disposed",
            "signed"
        ]
    );
    let out = &by_sup.rows[2];
    assert_eq!(out.subject, tubes[0]);
    assert_eq!(out.old, "status=available; holder=; purpose=");
    assert_eq!(
        out.new,
        "status=checked_out; holder=佐藤先生; purpose=analysis"
    );
    assert_eq!(
        by_sup.rows[0].new,
        "name=責任者 花子; role=supervisor; disabled=no"
    );
    assert!(
        by_sup.rows[0]
            .signatures
            .starts_with("管理者 太郎 (admin) approved"),
        "user administration is signed: {:?}",
        by_sup.rows[0]
    );
    // By period: the test clock starts on 2026-11-21; nothing before, everything on it.
    let none = b
        .kura
        .audit(
            &AuditQuery {
                to: Some("2026-11-20".into()),
                ..Default::default()
            },
            &mut |_, _| {},
        )
        .unwrap();
    assert!(none.rows.is_empty());
    let all = b
        .kura
        .audit(&AuditQuery::default(), &mut |_, _| {})
        .unwrap();
    let day = b
        .kura
        .audit(
            &AuditQuery {
                from: Some("2026-11-21".into()),
                to: Some("2026-11-21".into()),
                ..Default::default()
            },
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(day.rows, all.rows);
    let bad = b.kura.audit(
        &AuditQuery {
            from: Some("2026-11-22".into()),
            to: Some("2026-11-21".into()),
            ..Default::default()
        },
        &mut |_, _| {},
    );
    assert_eq!(bad.unwrap_err().code(), "bad_input");
    // Someone edits the check-out's holder in the file: the report's last page says so.
    let db = b.db();
    drop(b.kura);
    let o = Command::new("sqlite3")
        .arg(&db)
        .arg("DROP TRIGGER events_append_only_update; UPDATE events SET payload = replace(payload, '佐藤先生', '鈴木先生') WHERE kind = 'checked_out'")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut k = Kura::open(&db, "x").unwrap();
    k.sign_in("sup", "sup-password").unwrap();
    let export = |k: &mut Kura, name: &str, full: bool| {
        let pdf = b.dir.path().join(name);
        let x = k
            .with_signature(
                kura_app::users::Act::Read,
                Some(&signing("sup", Meaning::Reviewed)),
                |k| {
                    k.export_audit(
                        &AuditQuery {
                            full,
                            ..Default::default()
                        },
                        &pdf,
                        "en",
                        &mut |_, _| {},
                    )
                },
            )
            .unwrap();
        let last = pdftotext(&pdf, Some(x.pages));
        (x, last)
    };
    // The reports above verified the record and left a verified point after the check-out.
    // A report verifies from that point on and says so: the removed guard is found, the
    // edited event, before the point, is outside what it checked, and its last page says how
    // to check everything.
    let (x, last) = export(&mut k, "from-the-point.pdf", false);
    assert!(!x.intact, "{last}");
    assert!(last.contains("append_only_guard_missing"), "{last}");
    assert!(!last.contains("hash_mismatch"), "{last}");
    assert!(
        last.contains("Verified from the last verified point"),
        "{last}"
    );
    assert!(last.contains("kura audit --full"), "{last}");
    assert!(!last.contains("from the first event"), "{last}");
    // The whole log again: the edit is found and the last page says so.
    let (x, last) = export(&mut k, "tampered.pdf", true);
    assert!(!x.intact);
    assert!(last.contains("PROBLEMS FOUND"), "{last}");
    assert!(last.contains("hash_mismatch"), "{last}");
    assert!(
        last.contains("Verified: the whole log, from the first event"),
        "{last}"
    );
}

#[test]
fn reports_without_a_file_picker_go_beside_the_database_and_never_overwrite() {
    let (mut b, _) = site();
    let dir = b.db().parent().unwrap().join("reports");
    let first = b.kura.audit_report_path("pdf").unwrap();
    assert_eq!(first.parent().unwrap(), dir);
    assert!(dir.is_dir(), "reports/ is made");
    let x = b
        .kura
        .with_signature(
            kura_app::users::Act::Read,
            Some(&signing("sup", Meaning::Reviewed)),
            |k| k.export_audit(&AuditQuery::default(), &first, "ja", &mut |_, _| {}),
        )
        .unwrap();
    assert_eq!(x.sha256, sha256(&first));
    // A clock that stands still: the second report of the same second gets a new name.
    let db = b.db();
    let common::Bench { dir: _dir, kura } = b;
    drop(kura);
    let still = std::sync::Arc::new(kura_domain::time::SteppingClock::new(
        kura_domain::Timestamp::parse("2026-12-01T10:20:30Z").unwrap(),
        0,
    ));
    let mut k = Kura::open_with_clock(&db, "x", still).unwrap();
    k.sign_in("sup", "sup-password").unwrap();
    let one = k.audit_report_path("pdf").unwrap();
    assert_eq!(one.file_name().unwrap(), "audit-20261201102030.pdf");
    std::fs::write(&one, b"first").unwrap();
    let two = k.audit_report_path("pdf").unwrap();
    assert_eq!(two.file_name().unwrap(), "audit-20261201102030-2.pdf");
    assert_eq!(std::fs::read(&one).unwrap(), b"first");
    let csv = k.audit_report_path("csv").unwrap();
    assert_eq!(csv.extension().unwrap(), "csv");
    let bad = k.audit_report_path("docx").unwrap_err();
    assert_eq!(bad.code(), "bad_input");
}

/// What the window does: the signer is checked on its own handle, the report is read and built
/// on a handle of its own while the window's handle goes on writing, and the export is
/// recorded on the window's handle at the end.
#[test]
fn a_report_is_built_on_a_handle_of_its_own_while_the_bench_goes_on() {
    let (mut b, tubes) = site();
    // A secured database: no report without a signer, before anything is read.
    let refused = b.kura.audit_reader().map(|_| ()).unwrap_err();
    assert_eq!(refused.code(), "signature_required");
    let sup = signing("sup", Meaning::Reviewed);
    let mut reader = b
        .kura
        .with_signature(kura_app::users::Act::Read, Some(&sup), |k| k.audit_reader())
        .unwrap();
    let pdf = b.dir.path().join("while-working.pdf");
    let q = AuditQuery {
        specimen: Some(tubes[2].clone()),
        full: true,
        ..Default::default()
    };
    // The window's handle checks a tube out while the report is being built (at its
    // progress): nothing holds it back.
    let mut wrote = false;
    let file = reader
        .build_audit(&q, &pdf, "en", &mut |_, _| {
            if !wrote {
                b.kura
                    .check_out(
                        &[tubes[2].clone()],
                        &kura_app::CheckOut {
                            to: "田中先生".into(),
                            purpose: "analysis".into(),
                            due: None,
                            note: None,
                        },
                    )
                    .unwrap();
                wrote = true;
            }
        })
        .unwrap();
    assert!(wrote, "the build reported progress");
    assert!(
        !pdf.exists(),
        "nothing is written before the export is recorded"
    );
    drop(reader);
    let x = b
        .kura
        .with_signature(kura_app::users::Act::Read, Some(&sup), |k| {
            k.record_audit(file)
        })
        .unwrap();
    assert!(x.intact);
    assert_eq!(x.sha256, sha256(&pdf));
    let signed = x.signature.expect("the export is signed");
    assert_eq!(signed.signer, "sup");
    assert_eq!(b.kura.show(&tubes[2]).unwrap().status, "checked_out");
}
