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
        b.kura
            .add_user(
                user,
                &format!("{user} name"),
                role,
                Some(badge),
                &format!("{user}-password"),
            )
            .unwrap();
        b.kura.set_secret(user, Secret::Pin, "4321").unwrap();
    }
    b.kura.sign_out();
    (b, r.aliquots)
}

fn as_user(k: &mut Kura, user: &str) {
    let pw = if user == "admin" {
        ADMIN_PW.to_string()
    } else {
        format!("{user}-password")
    };
    k.sign_in(user, &pw).unwrap();
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
            k.dispose(&c, "used up in QC")
        }
        Act::Block => {
            let c = spec(k, n);
            k.block(&c, "quarantine")
        }
        Act::StorageLayout => k
            .create_container(&format!("NEW{n}"), "box-9x9", None, Some("R1"), None, None)
            .map(|_| ()),
        Act::ResolveConflict => {
            // Settling needs a conflict; the authorisation is asked before anything else.
            k.authorize(Act::ResolveConflict)
        }
        Act::ManageUsers => k
            .add_user(
                &format!("new{n}"),
                "New person",
                Role::Technician,
                None,
                "new-password",
            )
            .map(|_| ()),
        Act::Settings => {
            k.set_printer(&format!("p{n}"), Some(PrinterConfig::tcp("127.0.0.1:9100")))
        }
        Act::Sync => k.authorize(Act::Sync),
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
    // specimen was thawed by the technician (Handle was the second act).
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
    other.disable_user("tech", "left the bank").unwrap();
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
    other.grant_role("aud", Role::Technician).unwrap();
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
