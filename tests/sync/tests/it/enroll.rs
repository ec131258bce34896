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
            "plain HTTP to another machine",
            "http://192.0.2.10:8470",
            &good,
            None,
            "registry_plain_http",
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
    // It shows the CA's fingerprint, as openssl computes it, to compare with the registry's.
    let openssl = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in", ca])
        .output()
        .unwrap();
    let theirs = String::from_utf8_lossy(&openssl.stdout);
    assert_eq!(
        ok["ca_fingerprint"].as_str(),
        theirs.trim().rsplit('=').next(),
        "{ok}"
    );
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

/// Enrollment is all or nothing: what the bench can check (its user's role, its own IDs'
/// prefix) is checked before the one-time code is spent, a refusal leaves no workstation at the
/// registry, and a revoked bench can be re-admitted by the administrator.
#[test]
fn a_failed_enrollment_spends_nothing_and_a_revoked_bench_can_come_back() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    reg.site("NCGM", "NCG");
    let workstations = |reg: &Registry| {
        reg.admin(&["workstations"])
            .lines()
            .skip(1)
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let code = reg.code("NCGM");

    // (what, how the bench is set up, the refusal)
    let other_prefix = Bench::new(d.path(), "xyz");
    other_prefix.ok(&["init", "--prefix", "XYZ"]);
    other_prefix.ok(&["register", "--type", "BLD", "--study", "S", "--donor", "P"]);
    let technician = Bench::new(d.path(), "tech");
    technician.ok(&["init", "--prefix", "NCG"]);
    technician
        .try_run_with(
            &[
                "user",
                "add",
                "admin",
                "--name",
                "管理者",
                "--role",
                "administrator",
                "--password-stdin",
            ],
            "admin-password",
        )
        .unwrap();
    technician
        .try_run_with(
            &[
                "user",
                "add",
                "sato",
                "--name",
                "佐藤",
                "--role",
                "technician",
                "--password-stdin",
                "--sign-stdin",
                "--signer",
                "admin",
            ],
            "sato-password\nadmin-password",
        )
        .unwrap();
    technician
        .try_run_with(&["login", "sato", "--password-stdin"], "sato-password")
        .unwrap();
    let cases: [(&str, &Bench, &str); 2] = [
        (
            "its own IDs carry another prefix",
            &other_prefix,
            "enroll_prefix_refused",
        ),
        (
            "the signed-in user is a technician",
            &technician,
            "forbidden",
        ),
    ];
    for (what, bench, want) in cases {
        let e = bench.enroll_at(&reg.url(), &code).unwrap_err();
        assert_eq!(e["code"], want, "{what}: {e}");
        assert_eq!(bench.status()["enrolled"], false, "{what}");
        assert!(workstations(&reg).is_empty(), "{what}: no workstation kept");
    }
    // The code was never spent.
    let b = Bench::new(d.path(), "a");
    b.enroll_at(&reg.url(), &code).unwrap();
    b.ok(&["storage", "add", "SITE", "--type", "site"]);
    b.sync_ok();
    assert_eq!(workstations(&reg), vec![b.workstation()]);

    // Revoked: its token stops working and a new code does not bring it back ...
    reg.admin(&["workstations", "--revoke", &b.workstation()]);
    assert_eq!(b.sync().unwrap_err()["code"], "unauthorized");
    let e = b.enroll_at(&reg.url(), &reg.code("NCGM")).unwrap_err();
    assert_eq!(e["code"], "workstation_revoked");
    assert!(
        e["message"].as_str().unwrap().contains("--restore"),
        "says how: {e}"
    );
    // ... until the administrator re-admits it: then a code made for it does (an ordinary one
    // takes over no known workstation), and its stream goes on.
    reg.admin(&["workstations", "--restore", &b.workstation()]);
    assert_eq!(
        b.sync().unwrap_err()["code"],
        "unauthorized",
        "the old token stays dead"
    );
    let e = b.enroll_at(&reg.url(), &reg.code("NCGM")).unwrap_err();
    assert_eq!(e["code"], "workstation_exists", "{e}");
    assert!(e["message"].as_str().unwrap().contains("--replaces"), "{e}");
    b.enroll_at(&reg.url(), &reg.replacement_code("NCGM", &b.workstation()))
        .unwrap();
    b.ok(&["storage", "add", "SITE2", "--type", "site"]);
    b.sync_ok();
    assert_eq!(reg.stream(&b.workstation()), (2, true));
}
