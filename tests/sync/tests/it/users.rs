//! Users travel between benches the way custody does: added on one bench, they sign in on
//! another after a sync; a role granted or a user disabled on one bench holds on the other.

use kura_sync_tests::{Bench, Registry};
use serde_json::Value;

use crate::{register, site};

/// The site's first administrator, added on `b` (and signed in there).
fn first_admin(b: &Bench) {
    b.try_run_with(
        &[
            "user",
            "add",
            "admin",
            "--name",
            "管理者 太郎",
            "--role",
            "administrator",
            "--password-stdin",
        ],
        "admin-password",
    )
    .unwrap();
}

/// A user added on `b` by the administrator signed in there (a signed act), with the password
/// `{user}-password`; `extra` adds arguments (`--signer admin` at the session's first signature).
fn add_user(b: &Bench, user: &str, name: &str, role: &str, extra: &[&str]) -> Result<Value, Value> {
    let mut args = vec![
        "user",
        "add",
        user,
        "--name",
        name,
        "--role",
        role,
        "--password-stdin",
        "--sign-stdin",
    ];
    args.extend_from_slice(extra);
    // The new user's first password, then the administrator's signing password.
    b.try_run_with(&args, &format!("{user}-password\nadmin-password"))
}

#[test]
fn users_added_on_one_bench_sign_in_on_another() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    let benches = site(&reg, d.path(), &["a", "b"]);
    let (a, b) = (&benches[0], &benches[1]);
    // Bench a: the site's first administrator, and a technician (the administrator's first
    // signature of the session needs their ID).
    first_admin(a);
    let e = add_user(
        a,
        "sato",
        "佐藤 花子",
        "technician",
        &["--badge", "USR-0042"],
    )
    .unwrap_err();
    assert_eq!(e["code"], "signature_needs_id", "{e}");
    add_user(
        a,
        "sato",
        "佐藤 花子",
        "technician",
        &["--badge", "USR-0042", "--signer", "admin"],
    )
    .unwrap();
    a.sync_ok();
    // Bench b had no users; after the pull it records who acts, and knows sato.
    b.sync_ok();
    let e = b
        .try_run(&[
            "storage",
            "add",
            "X1",
            "--type",
            "box-9x9",
            "--parent",
            "F80-01-R01",
        ])
        .unwrap_err();
    assert_eq!(e["code"], "sign_in_required", "{e}");
    b.try_run_with(&["login", "sato", "--password-stdin"], "sato-password")
        .unwrap();
    let tubes = register(b, 2, "BOX-0001");
    let h = b.ok(&["history", &tubes[0]]);
    assert_eq!(h[0]["actor"], "sato", "{h}");
    b.sync_ok();
    // The administrator disables sato on bench a; once bench b has pulled it, sato is refused
    // there too.
    a.try_run_with(
        &[
            "user",
            "disable",
            "sato",
            "--reason",
            "moved to another site",
            "--sign-stdin",
        ],
        "admin-password",
    )
    .unwrap();
    a.sync_ok();
    b.try_run_with(&["login", "admin", "--password-stdin"], "admin-password")
        .unwrap();
    b.sync_ok();
    let e = b
        .try_run_with(&["login", "sato", "--password-stdin"], "sato-password")
        .unwrap_err();
    assert_eq!(e["code"], "user_disabled", "{e}");
    // Both benches hold the same users, and every event once at the registry.
    assert_eq!(a.ok(&["user", "list"]), b.ok(&["user", "list"]));
    a.sync_ok();
    assert_eq!(a.specimens(), b.specimens());
    a.verify_ok();
    b.verify_ok();
    let (events, _) = reg.counts();
    assert_eq!(events, a.events(), "the registry holds every event once");
}

#[test]
fn a_consent_withdrawal_on_one_bench_blocks_the_lineage_on_the_other() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    let benches = site(&reg, d.path(), &["a", "b"]);
    let (a, b) = (&benches[0], &benches[1]);
    let tubes = register(a, 3, "BOX-0001");
    first_admin(a);
    for (user, role) in [("sup", "supervisor"), ("tech", "technician")] {
        add_user(a, user, user, role, &["--signer", "admin"]).unwrap();
    }
    a.try_run_with(&["login", "sup", "--password-stdin"], "sup-password")
        .unwrap();
    let w = a
        .try_run_with(
            &[
                "consent",
                "withdraw",
                "P-0001",
                "--reason",
                "the donor withdrew",
                "--signer",
                "sup",
                "--sign-stdin",
            ],
            "sup-password",
        )
        .unwrap();
    assert_eq!(
        w["blocked"].as_array().unwrap().len(),
        4,
        "the parent and its three aliquots: {w}"
    );
    assert_eq!(w["signature"]["signer"], "sup");
    a.sync_ok();
    b.sync_ok();
    b.try_run_with(&["login", "tech", "--password-stdin"], "tech-password")
        .unwrap();
    let e = b
        .try_run(&[
            "check-out",
            &tubes[0],
            "--to",
            "Dr. Ito",
            "--purpose",
            "distribution",
        ])
        .unwrap_err();
    assert_eq!(e["code"], "specimen_blocked", "{e}");
    let q = b.ok(&["consent", "queue"]);
    assert_eq!(q.as_array().unwrap().len(), 4, "{q}");
    a.verify_ok();
    b.verify_ok();
}

#[test]
fn a_conflict_settled_on_a_secured_site_is_signed_and_the_signature_travels() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    let benches = site(&reg, d.path(), &["a", "b"]);
    let (a, b) = (&benches[0], &benches[1]);
    let tube = register(a, 1, "BOX-0001").remove(0);
    first_admin(a);
    add_user(
        a,
        "sup",
        "責任者 花子",
        "supervisor",
        &["--signer", "admin"],
    )
    .unwrap();
    a.try_run_with(&["login", "sup", "--password-stdin"], "sup-password")
        .unwrap();
    a.sync_ok();
    b.sync_ok();
    b.try_run_with(&["login", "sup", "--password-stdin"], "sup-password")
        .unwrap();
    // Both benches, offline, check the same tube out to different people.
    a.ok(&["check-out", &tube, "--to", "Dr. Ito"]);
    b.ok(&["check-out", &tube, "--to", "Dr. Sato"]);
    crate::settle(&[a, b]);
    let refused = b.ok(&["conflicts"])[0]["refused"]["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A settlement is signed: no password, nothing settled.
    let e = a
        .try_run(&[
            "resolve",
            &tube,
            "--keep",
            &refused,
            "--reason",
            "found with Dr. Sato",
        ])
        .unwrap_err();
    assert!(
        e["message"].as_str().unwrap().contains("--sign-stdin"),
        "{e}"
    );
    let e = a
        .try_run_with(
            &[
                "resolve",
                &tube,
                "--keep",
                &refused,
                "--reason",
                "found with Dr. Sato",
                "--sign-stdin",
            ],
            "sup-password",
        )
        .unwrap_err();
    assert_eq!(e["code"], "signature_needs_id", "{e}");
    a.try_run_with(
        &[
            "resolve",
            &tube,
            "--keep",
            &refused,
            "--reason",
            "found with Dr. Sato",
            "--sign-stdin",
            "--signer",
            "sup",
        ],
        "sup-password",
    )
    .unwrap();
    crate::settle(&[a, b]);
    assert_eq!(b.ok(&["show", &tube])["holder"], "Dr. Sato");
    // On the other bench, the audit trail shows the settlement with its signature.
    let out = d.path().join("b-trail.csv");
    b.try_run_with(
        &[
            "audit",
            "--specimen",
            &tube,
            "--out",
            out.to_str().unwrap(),
            "--sign-stdin",
            "--signer",
            "sup",
            "--meaning",
            "reviewed",
        ],
        "sup-password",
    )
    .unwrap();
    let csv = std::fs::read_to_string(&out).unwrap();
    let settled = csv
        .lines()
        .find(|l| l.contains("conflict_settled"))
        .unwrap_or_else(|| panic!("no settlement in\n{csv}"));
    assert!(
        settled.contains("責任者 花子 (sup) approved") && settled.contains("holder=Dr. Sato"),
        "{settled}"
    );
    a.verify_ok();
    b.verify_ok();
}

/// A workstation syncs with nobody signed in: after a reboot `kura sync --watch` runs as a
/// service on a database with users (a round records no custody act; the token is the
/// workstation's), and what people did on it reaches the other bench.
#[test]
fn sync_watch_runs_unattended_on_a_database_with_users() {
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    let benches = site(&reg, d.path(), &["a", "b"]);
    let (a, b) = (&benches[0], &benches[1]);
    first_admin(a);
    add_user(a, "sato", "佐藤 花子", "technician", &["--signer", "admin"]).unwrap();
    a.ok(&["logout"]);
    // Nobody is signed in: a person's act is refused, the workstation's round is not.
    let e = a
        .try_run(&["storage", "add", "S2", "--type", "site"])
        .unwrap_err();
    assert_eq!(e["code"], "sign_in_required", "{e}");
    let mut watch = a
        .cmd()
        .args(["sync", "--watch", "--interval", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(watch.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    watch.kill().ok();
    watch.wait().ok();
    let round: Value = serde_json::from_str(&first).unwrap_or_else(|_| panic!("{first}"));
    assert!(round.get("error").is_none(), "{round}");
    assert_eq!(a.status()["waiting"], 0, "{}", a.status());
    b.sync_ok();
    b.try_run_with(&["login", "sato", "--password-stdin"], "sato-password")
        .unwrap();
}

/// Issue 26: a bench cannot make itself the site's administrator. Bench b, which never pulled the
/// site's users, sets up a first administrator of its own and adds another administrator, signed
/// by it: the registry refuses all of it (`forbidden`), b shows the refusals, and bench a never
/// receives any of it; b's custody recorded by its own administrator is refused too.
#[test]
fn a_bench_that_sets_up_its_own_administrator_is_refused_by_the_registry() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    let benches = site(&reg, d.path(), &["a", "b"]);
    let (a, b) = (&benches[0], &benches[1]);
    first_admin(a);
    add_user(a, "sato", "佐藤 花子", "technician", &["--signer", "admin"]).unwrap();
    a.sync_ok();
    // Bench b pushes before it ever pulls: its own "first administrator" and a user it adds.
    b.try_run_with(
        &[
            "user",
            "add",
            "boss",
            "--name",
            "Boss",
            "--role",
            "administrator",
            "--password-stdin",
        ],
        "boss-password",
    )
    .unwrap();
    b.try_run_with(
        &[
            "user",
            "add",
            "mallory",
            "--name",
            "Mallory",
            "--role",
            "administrator",
            "--password-stdin",
            "--sign-stdin",
            "--signer",
            "boss",
        ],
        "mallory-password\nboss-password",
    )
    .unwrap();
    let r = b.sync_ok();
    assert!(r["rejected"].as_u64().unwrap() >= 4, "{r}");
    let list = b.ok(&["sync", "rejections"]);
    let kinds: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["kind"].as_str().unwrap(), x["code"].as_str().unwrap()))
        .collect();
    assert!(
        kinds.contains(&("user_added", "forbidden")) && kinds.iter().all(|k| k.1 == "forbidden"),
        "{list}"
    );
    a.sync_ok();
    let users: Vec<String> = a
        .ok(&["user", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        users,
        ["admin", "sato"],
        "bench a never received b's administrators"
    );
    a.verify_ok();
}
