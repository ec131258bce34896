//! Enrollment, and the errors a person at the bench can act on.

use kura_sync_tests::{Bench, Registry, free_port};

#[test]
fn enrollment_errors_say_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let (reg, cert) = Registry::sqlite_https(d.path());
    reg.site("NCGM", "NCG");
    let b = Bench::new(d.path(), "a");
    let expired = reg.admin(&["enroll", "--site", "NCGM", "--expires", "0m"]);
    let expired = expired.lines().next().unwrap().trim().to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let good = reg.code("NCGM");
    let ca = cert.to_str().unwrap();
    let nowhere = format!("https://127.0.0.1:{}", free_port());
    let url = reg.url();
    // (what, registry address, code, CA to trust, the code of the refusal)
    let cases: Vec<(&str, &str, &str, Option<&str>, &str)> = vec![
        (
            "a mistyped code",
            &url,
            "ABCD-EFGH-JKMN-PQRS-TVWX",
            Some(ca),
            "enroll_code_unknown",
        ),
        (
            "an expired code",
            &url,
            &expired,
            Some(ca),
            "enroll_code_expired",
        ),
        (
            "nothing listens there",
            &nowhere,
            &good,
            Some(ca),
            "registry_unreachable",
        ),
        (
            "a certificate nobody trusts",
            &url,
            &good,
            None,
            "registry_certificate",
        ),
        (
            "not an address",
            "registry.local",
            &good,
            None,
            "sync_config",
        ),
    ];
    for (what, url, code, ca, want) in cases {
        let mut args = vec!["enroll", code, "--registry", url];
        if let Some(ca) = ca {
            args.extend(["--ca", ca]);
        }
        let e = b.try_run(&args).unwrap_err();
        assert_eq!(e["code"], want, "{what}: {e}");
        assert!(
            e["message"].as_str().unwrap().len() > 20,
            "{what}: a sentence"
        );
        assert_eq!(b.status()["enrolled"], false, "{what}: nothing recorded");
    }
    // The CA given, the same code enrolls, and sync works over HTTPS.
    let ok = b.ok(&["enroll", &good, "--registry", &reg.url(), "--ca", ca]);
    assert_eq!(ok["prefix"], "NCG");
    b.ok(&["storage", "add", "SITE", "--type", "site"]);
    b.sync_ok();
    assert_eq!(reg.stream(&b.workstation()), (1, true));
    // A used code is refused too.
    let again = Bench::new(d.path(), "b");
    let e = again
        .try_run(&["enroll", &good, "--registry", &reg.url(), "--ca", ca])
        .unwrap_err();
    assert_eq!(e["code"], "enroll_code_used");
    // The token file is the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(format!("{}.token", b.db.display()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A bench that issued Kura IDs before it was enrolled claims them at enrollment: the other
/// benches are never leased them; a claim over serials already leased is refused.
#[test]
fn ids_issued_before_enrollment_are_claimed_and_never_collide() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    reg.site("NCGM", "NCG");
    let alone = Bench::new(d.path(), "alone");
    alone.ok(&["init", "--prefix", "NCG", "--serial-width", "7"]);
    let before = alone.ok(&[
        "register",
        "--type",
        "BLD",
        "--study",
        "S",
        "--donor",
        "P",
        "--aliquots",
        "9",
    ]);
    let mut ids: Vec<String> = vec![before["parent"].as_str().unwrap().to_string()];
    ids.extend(
        before["aliquots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string()),
    );
    let r = alone.enroll(&reg, "NCGM");
    assert_eq!(
        (r["lease_first"].as_u64(), r["issued_before"].as_u64()),
        (Some(11), Some(10)),
        "{r}"
    );
    let other = Bench::new(d.path(), "other");
    other.enroll(&reg, "NCGM");
    for x in [&alone, &other] {
        let r = x.ok(&[
            "register",
            "--type",
            "BLD",
            "--study",
            "S",
            "--donor",
            "P",
            "--aliquots",
            "4",
        ]);
        ids.push(r["parent"].as_str().unwrap().to_string());
        ids.extend(
            r["aliquots"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no ID twice: {ids:?}");
    // A second bench that also worked alone, with serials the first was leased: refused.
    let late = Bench::new(d.path(), "late");
    late.ok(&["init", "--prefix", "NCG", "--serial-width", "7"]);
    for _ in 0..3 {
        late.ok(&[
            "register",
            "--type",
            "BLD",
            "--study",
            "S",
            "--donor",
            "P",
            "--aliquots",
            "9",
        ]);
    }
    let e = late.enroll_at(&reg.url(), &reg.code("NCGM")).unwrap_err();
    assert_eq!(e["code"], "enroll_serials_taken", "{e}");
    assert_eq!(late.status()["enrolled"], false);
}
