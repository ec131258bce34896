//! People through `kura-app`: the first administrator, users added by them, sign-in by password
//! and by badge + PIN, idle sessions, and the authorisation table — every act × every role,
//! allowed or `forbidden` naming the role needed — decided here, whichever face calls.

mod common;

use common::{bench, register};
use kura_app::users::{Act, allowed};
use kura_app::{Kura, PrinterConfig};
use kura_domain::{Role, Secret};

const ADMIN_PW: &str = "admin-pass-1";

/// A bench with specimens made before it was secured, then secured with an administrator who
/// adds one user of each role.
fn secured() -> (common::Bench, Vec<String>) {
    let mut b = bench();
    let r = register(&mut b.kura, 48);
    b.kura.check_in_box("BX1", &r.aliquots).unwrap();
    assert!(!b.kura.secured().unwrap());
    b.kura
        .add_first_administrator("admin", "管理者 太郎", ADMIN_PW)
        .unwrap();
    assert!(b.kura.secured().unwrap());
    for (user, role, badge) in [
        ("tech", Role::Technician, "USR-0001"),
        ("sup", Role::Supervisor, "USR-0002"),
        ("aud", Role::Auditor, "USR-0003"),
        ("admin2", Role::Administrator, "USR-0004"),
    ] {
        // User administration is signed by the administrator.
        let s = signing_of(&b.kura);
        b.kura
            .with_signature(kura_app::users::Act::ManageUsers, Some(&s), |k| {
                k.add_user(
                    user,
                    &format!("{user} name"),
                    role,
                    Some(badge),
                    &format!("{user}-password"),
                )
            })
            .unwrap();
        b.kura
            .with_signature(kura_app::users::Act::ManageUsers, Some(&s), |k| {
                k.set_secret(user, Secret::Pin, "4321")
            })
            .unwrap();
    }
    b.kura.sign_out();
    (b, r.aliquots)
}

fn password_of(user: &str) -> String {
    if user == "admin" {
        ADMIN_PW.to_string()
    } else {
        format!("{user}-password")
    }
}

fn as_user(k: &mut Kura, user: &str) {
    k.sign_in(user, &password_of(user)).unwrap();
}

/// The signed-in user's signature (both components: it serves a first signature too).
fn signing_of(k: &Kura) -> kura_app::Signing {
    let user = k.session().unwrap().user.clone();
    kura_app::Signing {
        secret: password_of(&user),
        user: Some(user),
        meaning: kura_app::Meaning::Approved,
    }
}

/// One use case for each act; `n` makes each call work on its own specimen.
fn attempt(k: &mut Kura, act: Act, n: usize, codes: &[String]) -> Result<(), kura_app::AppError> {
    let spec = |_: &Kura, n: usize| -> String { codes[n].clone() };
    match act {
        Act::Register => register_one(k),
        Act::Handle => {
            let c = spec(k, n);
            k.thaw(&c)
        }
        Act::Print => {
            let c = spec(k, n);
            let out =
                std::env::temp_dir().join(format!("kura-users-{}-{n}.pdf", std::process::id()));
            k.print_labels(
                &[c],
                "cryo-38x13-a4",
                &kura_app::labels::PrintTarget::Pdf(out),
            )
            .map(|_| ())
        }
        Act::Dispose => {
            let c = spec(k, n);
            let s = signing_of(k);
            k.with_signature(kura_app::users::Act::Dispose, Some(&s), |k| {
                k.dispose(&c, "used up in QC")
            })
            .map(|s| s.expect("a signed act returns its signature"))
            .map(|_| ())
        }
        Act::Block => {
            let c = spec(k, n);
            k.block(&c, "quarantine")
        }
        Act::StorageLayout => {
            let s = signing_of(k);
            k.with_signature(kura_app::users::Act::StorageLayout, Some(&s), |k| {
                k.create_container(&format!("NEW{n}"), "box-9x9", None, Some("R1"), None, None)
            })
            .map(|_| ())
        }
        Act::ResolveConflict => {
            // Settling needs a conflict; the authorisation is asked before anything else.
            k.authorize(Act::ResolveConflict)
        }
        Act::Distribute => {
            let c = spec(k, n);
            let s = signing_of(k);
            k.with_signature(Act::Distribute, Some(&s), |k| {
                k.ship(&kura_app::ShipForm {
                    scans: vec![c],
                    to_recipient: Some("Dr. Tanaka".into()),
                    temperature: "dry-ice".into(),
                    dry_ice_kg: Some("2.5".into()),
                    mta: Some("MTA-2026-001".into()),
                    ..Default::default()
                })
            })
            .map(|d| assert!(d.signature.is_some(), "a distribution is signed"))
        }
        Act::ManageUsers => {
            let s = signing_of(k);
            k.with_signature(kura_app::users::Act::ManageUsers, Some(&s), |k| {
                k.add_user(
                    &format!("new{n}"),
                    "New person",
                    Role::Technician,
                    None,
                    "new-password",
                )
            })
            .map(|_| ())
        }
        Act::Settings => {
            k.set_printer(&format!("p{n}"), Some(PrinterConfig::tcp("127.0.0.1:9100")))
        }
        Act::Read => k.users().map(|_| ()),
    }
}

fn register_one(k: &mut Kura) -> Result<(), kura_app::AppError> {
    k.register(&kura_app::RegisterRequest {
        sample_type: "BLD".into(),
        container: "PED".into(),
        storage: "A".into(),
        quantity: Some("1".into()),
        unit: Some("mL".into()),
        study: "S".into(),
        donor: "D0002".into(),
        aliquots: 0,
        aliquot_quantity: None,
        ..Default::default()
    })
    .map(|_| ())
}

#[test]
fn every_act_by_every_role_is_allowed_or_forbidden_as_the_table_says() {
    let (mut b, codes) = secured();
    let mut n = 0;
    for (user, role) in [
        ("tech", Role::Technician),
        ("sup", Role::Supervisor),
        ("admin", Role::Administrator),
        ("aud", Role::Auditor),
    ] {
        as_user(&mut b.kura, user);
        for act in Act::ALL {
            let before = b.kura.stats().unwrap().events;
            let got = attempt(&mut b.kura, act, n, &codes);
            n += 1;
            if allowed(act, role) {
                assert!(got.is_ok(), "{user} {act:?}: {got:?}");
            } else {
                let e = got.expect_err(&format!("{user} {act:?} was allowed"));
                assert_eq!(e.code(), "forbidden", "{user} {act:?}: {e}");
                let w = e.to_wire();
                assert_eq!(w.details.as_ref().unwrap()["role"], role.as_str());
                assert!(e.to_string().contains("needs the role"), "{e}");
                assert_eq!(
                    b.kura.stats().unwrap().events,
                    before,
                    "{user} {act:?}: nothing written"
                );
            }
        }
        b.kura.sign_out();
    }
    // Every event written since securing names the signed-in user as its actor: the first
    // specimen was thawed by the technician (Handle was the second act). The auditor reads.
    as_user(&mut b.kura, "aud");
    let h = b.kura.history(&codes[1]).unwrap();
    let thawed: Vec<&str> = h
        .iter()
        .filter(|e| e.kind == "thawed")
        .map(|e| e.actor.as_str())
        .collect();
    assert_eq!(thawed, ["tech"]);
    assert!(b.kura.verify(&mut |_, _| {}).unwrap().ok());
}

#[test]
fn sign_in_by_password_and_by_badge_and_what_is_refused() {
    let (mut b, _) = secured();
    // Nobody signed in: a secured database records nothing.
    let e = register_one(&mut b.kura).unwrap_err();
    assert_eq!(e.code(), "sign_in_required");
    // (how, user or badge, secret, expected code)
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        ("password", "tech", "tech-password", None),
        ("password", "TECH", "tech-password", None),
        ("password", "tech", "wrong-password", Some("sign_in_failed")),
        (
            "password",
            "nobody",
            "tech-password",
            Some("sign_in_failed"),
        ),
        ("badge", "USR-0002", "4321", None),
        ("badge", "usr-0002", "4321", None),
        ("badge", "USR-0002", "1234", Some("sign_in_failed")),
        ("badge", "USR-9999", "4321", Some("sign_in_failed")),
    ];
    for (how, who, secret, want) in cases {
        b.kura.sign_out();
        let got = match *how {
            "password" => b.kura.sign_in(who, secret),
            _ => b.kura.sign_in_badge(who, secret),
        };
        match want {
            None => assert!(got.is_ok(), "{how} {who}: {got:?}"),
            Some(code) => assert_eq!(got.unwrap_err().code(), *code, "{how} {who}"),
        }
    }
    // A wrong password says the same as an unknown user: no hint which users exist.
    let a = b
        .kura
        .sign_in("tech", "wrong-password")
        .unwrap_err()
        .to_string();
    let c = b
        .kura
        .sign_in("nobody", "whatever-pw")
        .unwrap_err()
        .to_string();
    assert_eq!(a, c);
    // A disabled user can no longer sign in, and their open session ends with their next act.
    as_user(&mut b.kura, "tech");
    let mut other = Kura::open(b.db(), "x").unwrap();
    as_user(&mut other, "admin");
    // User administration without a signature is refused, and nothing changes.
    assert_eq!(
        other
            .disable_user("tech", "left the bank")
            .unwrap_err()
            .code(),
        "signature_required"
    );
    register_one(&mut b.kura).unwrap();
    let s = signing_of(&other);
    other
        .with_signature(kura_app::users::Act::ManageUsers, Some(&s), |k| {
            k.disable_user("tech", "left the bank")
        })
        .unwrap();
    assert_eq!(
        register_one(&mut b.kura).unwrap_err().code(),
        "user_disabled"
    );
    assert_eq!(
        b.kura.sign_in("tech", "tech-password").unwrap_err().code(),
        "user_disabled"
    );
    // A role granted elsewhere takes effect with the next act.
    as_user(&mut b.kura, "aud");
    assert_eq!(register_one(&mut b.kura).unwrap_err().code(), "forbidden");
    other
        .with_signature(kura_app::users::Act::ManageUsers, Some(&s), |k| {
            k.grant_role("aud", Role::Technician)
        })
        .unwrap();
    register_one(&mut b.kura).unwrap();
    // The first administrator is made once; demo data never goes into a secured database.
    assert!(
        b.kura
            .add_first_administrator("root", "Root", "root-password")
            .is_err()
    );
    assert!(b.kura.demo(10, 1, &mut |_, _| {}).is_err());
    // Secrets: too short a password, a PIN that is not digits.
    as_user(&mut b.kura, "admin");
    assert_eq!(
        b.kura
            .add_user("short", "S", Role::Technician, None, "1234567")
            .unwrap_err()
            .code(),
        "bad_input"
    );
    assert!(b.kura.set_secret("sup", Secret::Pin, "12ab").is_err());
    // A user sets their own PIN without the role to manage users.
    as_user(&mut b.kura, "sup");
    b.kura.set_secret("sup", Secret::Pin, "778899").unwrap();
    assert_eq!(
        b.kura
            .set_secret("aud", Secret::Pin, "778899")
            .unwrap_err()
            .code(),
        "forbidden"
    );
    b.kura.sign_out();
    b.kura.sign_in_badge("USR-0002", "778899").unwrap();
    assert!(b.kura.verify(&mut |_, _| {}).unwrap().ok());
}

#[test]
fn an_idle_session_ends() {
    let (mut b, _) = secured();
    b.kura.set_idle(60);
    as_user(&mut b.kura, "tech");
    register_one(&mut b.kura).unwrap();
    // The test clock steps a second per reading: 61 readings later the session is over.
    for _ in 0..61 {
        b.kura.now();
    }
    assert_eq!(
        register_one(&mut b.kura).unwrap_err().code(),
        "session_expired"
    );
    assert_eq!(
        register_one(&mut b.kura).unwrap_err().code(),
        "sign_in_required"
    );
}

fn signing(user: Option<&str>, secret: &str, meaning: kura_app::Meaning) -> kura_app::Signing {
    kura_app::Signing {
        user: user.map(str::to_string),
        secret: secret.to_string(),
        meaning,
    }
}

/// Whether a person may do a signed act is asked before their password: a technician's
/// disposal is forbidden whatever password comes with it, and a wrong one is not counted.
#[test]
fn a_signed_act_is_allowed_or_not_before_any_password_is_checked() {
    use kura_app::Meaning::Performed;
    let (mut b, codes) = secured();
    as_user(&mut b.kura, "tech");
    for secret in ["tech-password", "wrong-password"] {
        let got = b.kura.with_signature(
            kura_app::users::Act::Dispose,
            Some(&signing(Some("tech"), secret, Performed)),
            |k| k.dispose(&codes[0], "QC"),
        );
        assert_eq!(got.unwrap_err().code(), "forbidden", "{secret}");
    }
    // Nothing counted against the technician: their own password still signs what they may.
    b.kura
        .with_signature(
            kura_app::users::Act::Read,
            Some(&signing(Some("tech"), "tech-password", Performed)),
            |_| Ok(()),
        )
        .unwrap();
}

#[test]
fn a_disposal_is_signed_and_the_signature_is_bound_to_it() {
    use kura_app::Meaning::*;
    let (mut b, codes) = secured();
    as_user(&mut b.kura, "sup");
    let events = |k: &Kura| k.stats().unwrap().events;
    let before = events(&b.kura);
    // (what is given, the refusal) — nothing is written by any of them.
    let refused: Vec<(Result<kura_app::SignatureView, kura_app::AppError>, &str)> = vec![
        (
            b.kura.dispose(&codes[0], "QC").map(|_| unreachable!()),
            "signature_required",
        ),
        (
            b.kura
                .with_signature(
                    kura_app::users::Act::Dispose,
                    Some(&signing(None, "sup-password", Performed)),
                    |k| k.dispose(&codes[0], "QC"),
                )
                .map(|s| s.expect("a signed act returns its signature")),
            "signature_needs_id",
        ),
        (
            b.kura
                .with_signature(
                    kura_app::users::Act::Dispose,
                    Some(&signing(Some("tech"), "tech-password", Performed)),
                    |k| k.dispose(&codes[0], "QC"),
                )
                .map(|s| s.expect("a signed act returns its signature")),
            "sign_in_failed",
        ),
        (
            b.kura
                .with_signature(
                    kura_app::users::Act::Dispose,
                    Some(&signing(Some("sup"), "wrong-password", Performed)),
                    |k| k.dispose(&codes[0], "QC"),
                )
                .map(|s| s.expect("a signed act returns its signature")),
            "sign_in_failed",
        ),
    ];
    for (got, code) in refused {
        assert_eq!(got.unwrap_err().code(), code);
    }
    assert_eq!(events(&b.kura), before, "nothing written");
    // Both components at the first signature of the session, then the password alone.
    let s1 = b
        .kura
        .with_signature(
            kura_app::users::Act::Dispose,
            Some(&signing(Some("SUP"), "sup-password", Performed)),
            |k| k.dispose(&codes[0], "QC"),
        )
        .map(|s| s.expect("a signed act returns its signature"))
        .unwrap();
    assert_eq!(
        (s1.signer.as_str(), s1.name.as_str(), s1.meaning.as_str()),
        ("sup", "sup name", "performed")
    );
    let s2 = b
        .kura
        .with_signature(
            kura_app::users::Act::Dispose,
            Some(&signing(None, "sup-password", Approved)),
            |k| k.dispose(&codes[1], "QC"),
        )
        .map(|s| s.expect("a signed act returns its signature"))
        .unwrap();
    assert_eq!(s2.meaning, "approved");
    let disposed = b
        .kura
        .history(&codes[0])
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "disposed")
        .unwrap();
    assert_eq!(disposed.actor, "sup");
    let shown = b.kura.signatures(disposed.event_id).unwrap();
    assert_eq!(shown, vec![s1.clone()]);
    // A review by another person signs the same event, as it was shown to them.
    as_user(&mut b.kura, "tech");
    let stale = b.kura.sign(
        disposed.event_id,
        &s2.event_hash,
        &signing(Some("tech"), "tech-password", Reviewed),
    );
    assert_eq!(
        stale.unwrap_err().code(),
        "signature_stale",
        "the hash of another event"
    );
    b.kura
        .sign(
            disposed.event_id,
            &s1.event_hash,
            &signing(Some("tech"), "tech-password", Reviewed),
        )
        .unwrap();
    assert_eq!(b.kura.signatures(disposed.event_id).unwrap().len(), 2);
    // A disabled user signs nothing; an idle session signs nothing.
    let mut admin = Kura::open(b.db(), "x").unwrap();
    as_user(&mut admin, "admin");
    let s = signing_of(&admin);
    admin
        .with_signature(kura_app::users::Act::ManageUsers, Some(&s), |k| {
            k.disable_user("tech", "left")
        })
        .unwrap();
    let e = b.kura.sign(
        disposed.event_id,
        &s1.event_hash,
        &signing(None, "tech-password", Reviewed),
    );
    assert_eq!(e.unwrap_err().code(), "user_disabled");
    as_user(&mut b.kura, "sup");
    b.kura.set_idle(10);
    for _ in 0..11 {
        b.kura.now();
    }
    let e = b
        .kura
        .with_signature(
            kura_app::users::Act::Dispose,
            Some(&signing(None, "sup-password", Performed)),
            |k| k.dispose(&codes[2], "QC"),
        )
        .map(|s| s.expect("a signed act returns its signature"));
    assert_eq!(e.unwrap_err().code(), "session_expired");
    // Nobody signed in reads nothing either.
    assert_eq!(
        b.kura.verify(&mut |_, _| {}).unwrap_err().code(),
        "sign_in_required"
    );
    assert_eq!(
        b.kura.history(&codes[2]).unwrap_err().code(),
        "sign_in_required"
    );
    as_user(&mut b.kura, "aud");
    assert!(b.kura.verify(&mut |_, _| {}).unwrap().ok());
    drop(admin);
    let db = b.db();
    // Close the database, keep its directory.
    let common::Bench { dir: _dir, kura } = b;
    drop(kura);
    // verify finds a signature moved to another record, and an edited signature.
    let cases: Vec<(String, &str)> = vec![
        (
            format!(
                "DROP TRIGGER events_append_only_update; UPDATE events SET payload = replace(payload, '{}', '{}') WHERE kind = 'signed' AND payload LIKE '%performed%' AND payload LIKE '%{}%'",
                disposed.event_id,
                uuid_of_other(&db, disposed.event_id),
                disposed.event_id
            ),
            "signature_mismatch",
        ),
        (
            "UPDATE signatures SET name = 'Someone Else'".into(),
            "projection_differs",
        ),
    ];
    for (sql, want) in cases {
        let d = tempfile::tempdir().unwrap();
        let copy = d.path().join("k.sqlite3");
        std::fs::copy(&db, &copy).unwrap();
        rusqlite_exec(&copy, &sql);
        let mut k = Kura::open(&copy, "x").unwrap();
        as_user(&mut k, "aud");
        let r = k.verify(&mut |_, _| {}).unwrap();
        let codes: Vec<&str> = r.problems.iter().map(|p| p.code).collect();
        assert!(codes.contains(&want), "{sql}: {codes:?}");
    }
}

/// Another event's id (the one recorded just before `id`).
fn uuid_of_other(db: &std::path::Path, id: uuid::Uuid) -> uuid::Uuid {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(format!(
            "SELECT hex(event_id) FROM events WHERE id = (SELECT id - 1 FROM events WHERE hex(event_id) = '{}')",
            id.simple().to_string().to_uppercase()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    uuid::Uuid::parse_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: {text:?} {}", String::from_utf8_lossy(&out.stderr)))
}

fn rusqlite_exec(db: &std::path::Path, sql: &str) {
    let o = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn consent_withdrawal_blocks_the_lineage_queues_it_for_destruction_and_is_signed() {
    use kura_app::Meaning::*;
    let (mut b, codes) = secured();
    as_user(&mut b.kura, "tech");
    let parent = b.kura.lineage(&codes[0]).unwrap().code;
    let e = b
        .kura
        .with_signature(
            kura_app::users::Act::Block,
            Some(&signing(Some("tech"), "tech-password", Performed)),
            |k| k.withdraw_consent("D0001", "the donor withdrew"),
        )
        .unwrap_err();
    assert_eq!(
        e.code(),
        "forbidden",
        "a technician cannot withdraw consent"
    );
    as_user(&mut b.kura, "sup");
    assert_eq!(
        b.kura
            .withdraw_consent("D0001", "the donor withdrew")
            .unwrap_err()
            .code(),
        "signature_required"
    );
    let w = b
        .kura
        .with_signature(
            kura_app::users::Act::Block,
            Some(&signing(Some("sup"), "sup-password", Approved)),
            |k| k.withdraw_consent("D0001", "the donor withdrew"),
        )
        .unwrap();
    // The parent and every aliquot derived from it, in one act.
    assert_eq!(w.blocked.len(), codes.len() + 1, "{:?}", w.blocked);
    assert!(w.blocked.contains(&parent));
    assert_eq!(w.signature.as_ref().unwrap().meaning, "approved");
    assert!(b.kura.show(&codes[5]).unwrap().blocked);
    assert_eq!(
        b.kura.consent_withdrawn(&codes[5]).unwrap().as_deref(),
        Some("the donor withdrew")
    );
    // A check-out of one of them is refused, saying why.
    as_user(&mut b.kura, "tech");
    let e = b
        .kura
        .check_out(
            &[codes[5].clone()],
            &kura_app::CheckOut {
                to: "Dr. Ito".into(),
                purpose: "distribution".into(),
                due: None,
                note: None,
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("blocked"), "{e}");
    // The destruction queue: all of them; destruction is a signed disposal.
    let q = b.kura.destruction_queue().unwrap();
    assert_eq!(q.len(), codes.len() + 1);
    assert!(
        q.iter()
            .all(|x| x.donor == "D0001" && x.reason == "the donor withdrew")
    );
    as_user(&mut b.kura, "sup");
    b.kura
        .with_signature(
            kura_app::users::Act::Dispose,
            Some(&signing(Some("sup"), "sup-password", Performed)),
            |k| k.dispose(&codes[0], "destroyed after consent withdrawal"),
        )
        .map(|s| s.expect("a signed act returns its signature"))
        .unwrap();
    assert_eq!(b.kura.destruction_queue().unwrap().len(), codes.len());
    // An exception: a supervisor's signature and a reason.
    assert_eq!(
        b.kura.unblock(&codes[1], "exception").unwrap_err().code(),
        "signature_required"
    );
    b.kura
        .with_signature(
            kura_app::users::Act::Block,
            Some(&signing(None, "sup-password", Approved)),
            |k| k.unblock(&codes[1], "ethics committee exception 2026-12"),
        )
        .map(|s| s.expect("a signed act returns its signature"))
        .unwrap();
    assert!(!b.kura.show(&codes[1]).unwrap().blocked);
    as_user(&mut b.kura, "tech");
    assert_eq!(
        b.kura
            .with_signature(
                kura_app::users::Act::Block,
                Some(&signing(Some("tech"), "tech-password", Approved)),
                |k| k.unblock(&codes[2], "x")
            )
            .map(|s| s.expect("a signed act returns its signature"))
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert!(b.kura.verify(&mut |_, _| {}).unwrap().ok());
}

/// Wrong secrets slow sign-in down, per user ID and per badge: five are free, then each try is
/// refused unchecked until the wait (30 s, doubling) has passed, even with the right secret; a
/// success resets the count. A PIN found by searching a synced hash offline cannot be tried
/// here faster, and it never signs.
#[test]
fn wrong_secrets_slow_sign_in_down_and_a_pin_never_signs() {
    let (mut b, _) = secured();
    let k = &mut b.kura;
    // (what, attempt, code)
    for i in 0..5 {
        assert_eq!(
            k.sign_in_badge("USR-0001", "0000").unwrap_err().code(),
            "sign_in_failed",
            "wrong PIN {i}"
        );
    }
    let e = k.sign_in_badge("USR-0001", "4321").unwrap_err();
    assert_eq!(e.code(), "sign_in_throttled", "the right PIN, too soon");
    assert!(e.to_string().contains("USR-0001"), "{e}");
    // Another badge and the user ID are counted apart.
    k.sign_in_badge("USR-0002", "4321").unwrap();
    k.sign_out();
    // The test clock steps a second per reading.
    for _ in 0..31 {
        k.now();
    }
    k.sign_in_badge("USR-0001", "4321").unwrap();
    k.sign_out();
    for _ in 0..5 {
        assert_eq!(
            k.sign_in_badge("USR-0001", "0000").unwrap_err().code(),
            "sign_in_failed",
            "the count started again"
        );
    }
    for _ in 0..5 {
        assert_eq!(
            k.sign_in("tech", "wrong-password").unwrap_err().code(),
            "sign_in_failed"
        );
    }
    assert_eq!(
        k.sign_in("tech", "tech-password").unwrap_err().code(),
        "sign_in_throttled"
    );
    for _ in 0..31 {
        k.now();
    }
    // Signed in by PIN, the PIN signs nothing.
    k.sign_in_badge("USR-0002", "4321").unwrap();
    let pin = signing(Some("sup"), "4321", kura_app::Meaning::Performed);
    assert_eq!(
        k.with_signature(kura_app::users::Act::Read, Some(&pin), |_| Ok(()))
            .unwrap_err()
            .code(),
        "sign_in_failed"
    );
    let password = signing(Some("sup"), "sup-password", kura_app::Meaning::Performed);
    k.with_signature(kura_app::users::Act::Read, Some(&password), |_| Ok(()))
        .unwrap();
}
