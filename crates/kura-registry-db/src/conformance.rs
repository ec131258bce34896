//! The conformance suite: what every [`RegistryDb`] backend must do, run by each backend's
//! tests against a real database (`run(|| fresh_database())`). Each case gets an empty database.
// Test support: assertions panic by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;

use kura_proto::{Digest, Envelope, Lease, RejectCode, Verdict};
use uuid::Uuid;

use crate::testkit::{self, Bench};
use crate::{
    Batch, Caller, DAY_US, DbError, DbResult, EnrollRefusal, Enrolled, Enrollment, RegistryDb,
    SiteLimits, secret_hash,
};

const NOW: i64 = 1_764_000_000_000_000;

/// Runs every case, each on a database `fresh()` makes.
pub async fn run<D, F, Fut>(fresh: F)
where
    D: RegistryDb,
    F: Fn() -> Fut,
    Fut: Future<Output = D>,
{
    macro_rules! case {
        ($name:ident) => {
            eprintln!("conformance: {}", stringify!($name));
            $name(fresh().await).await;
        };
    }
    case!(sites);
    case!(enrollment);
    case!(replacement);
    case!(verdicts);
    case!(resend_stores_once);
    case!(occupied_positions_of_earlier_batches);
    case!(id_taken);
    case!(authorization);
    case!(gap_and_restore);
    case!(rejection_does_not_block);
    case!(pull_pages);
    case!(order_check);
    case!(own_events_back);
    case!(conflicts);
    case!(leases);
    case!(claims);
    case!(limits);
    case!(status);
    case!(parcels);
    case!(workload_is_clean);
}

/// Enrolls a new workstation at `site` (the site is created when missing).
pub async fn enroll<D: RegistryDb>(db: &D, site: &str, prefix: &str) -> (Caller, String) {
    enroll_as(db, site, prefix, Uuid::now_v7()).await
}

/// The same, for the workstation `ws` (a bench database that already has its id).
pub async fn enroll_as<D: RegistryDb>(
    db: &D,
    site: &str,
    prefix: &str,
    ws: Uuid,
) -> (Caller, String) {
    if !db.sites().await.unwrap().iter().any(|s| s.code == site) {
        db.add_site(testkit::site(site, prefix)).await.unwrap();
    }
    let code = format!("code-{ws}");
    let token = format!("token-{ws}");
    db.add_enrollment(site, secret_hash(&code), NOW + 3_600_000_000, None)
        .await
        .unwrap();
    db.enroll(Enrollment {
        code_hash: secret_hash(&code),
        workstation: ws,
        name: format!("bench {ws}"),
        token_hash: secret_hash(&token),
        now: NOW,
        year: 2026,
        lease: 100,
        issued: vec![],
        id_format: None,
        recover: false,
    })
    .await
    .unwrap();
    let caller = db.authenticate(secret_hash(&token)).await.unwrap().unwrap();
    assert_eq!(caller.workstation, ws);
    (caller, token)
}

pub fn batch(events: Vec<Envelope>) -> Batch {
    Batch {
        events,
        sent_at: None,
        received_at: NOW,
    }
}

/// The verdicts as short words, for tables.
pub fn words(vs: &[Verdict]) -> Vec<String> {
    vs.iter()
        .map(|v| match v {
            Verdict::Accepted { .. } => "accepted".to_string(),
            Verdict::Duplicate { .. } => "duplicate".to_string(),
            Verdict::Rejected { code, .. } => code.as_str().to_string(),
        })
        .collect()
}

async fn sites<D: RegistryDb>(db: D) {
    db.ready().await.unwrap();
    db.add_site(testkit::site("NCGM", "G")).await.unwrap();
    let again = db.add_site(testkit::site("NCGM", "G")).await.unwrap_err();
    assert_eq!(again.code(), "exists", "{again}");
    db.add_site(testkit::site("NCNP", "N")).await.unwrap();
    let codes: Vec<String> = db
        .sites()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.code)
        .collect();
    assert_eq!(codes, ["NCGM", "NCNP"]);
    assert_eq!(
        db.add_enrollment("NOPE", [1; 32], NOW, None)
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
}

async fn enrollment<D: RegistryDb>(db: D) {
    db.add_site(testkit::site("NCGM", "G")).await.unwrap();
    db.add_site(testkit::site("NCNP", "N")).await.unwrap();
    db.add_enrollment("NCGM", secret_hash("good"), NOW + 10, None)
        .await
        .unwrap();
    db.add_enrollment("NCGM", secret_hash("old"), NOW - 10, None)
        .await
        .unwrap();
    db.add_enrollment("NCNP", secret_hash("other"), NOW + 10, None)
        .await
        .unwrap();
    let ws = Uuid::now_v7();
    let e = |code: &str, token: &str| Enrollment {
        code_hash: secret_hash(code),
        workstation: ws,
        name: "bench 1".into(),
        token_hash: secret_hash(token),
        now: NOW,
        year: 2026,
        lease: 50,
        issued: vec![],
        id_format: None,
        recover: false,
    };
    let Enrolled { site, lease, .. } = db.enroll(e("good", "t1")).await.unwrap();
    assert_eq!(site.code, "NCGM");
    assert_eq!((lease.year, lease.first, lease.last), (2026, 1, 50));
    let refusal = |r: Result<_, DbError>| match r {
        Err(DbError::Enroll(x)) => x,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refusal(db.enroll(e("good", "t2")).await),
        EnrollRefusal::UsedCode
    );
    assert_eq!(
        refusal(db.enroll(e("nope", "t2")).await),
        EnrollRefusal::UnknownCode
    );
    assert_eq!(
        refusal(db.enroll(e("old", "t2")).await),
        EnrollRefusal::ExpiredCode
    );
    assert_eq!(
        refusal(db.enroll(e("other", "t2")).await),
        EnrollRefusal::OtherSite
    );
    let me = db.authenticate(secret_hash("t1")).await.unwrap().unwrap();
    assert_eq!((me.workstation, me.site.code.as_str()), (ws, "NCGM"));
    assert_eq!(db.authenticate(secret_hash("t2")).await.unwrap(), None);
    assert_eq!(db.authenticate(secret_hash("nope")).await.unwrap(), None);
    let list = db.workstations().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].id, list[0].revoked_at), (ws, None));
    db.revoke(ws, NOW + 5).await.unwrap();
    assert_eq!(
        db.authenticate(secret_hash("t1")).await.unwrap(),
        None,
        "revoked"
    );
    assert_eq!(
        db.workstations().await.unwrap()[0].revoked_at,
        Some(NOW + 5)
    );
    assert_eq!(
        db.revoke(Uuid::now_v7(), NOW).await.unwrap_err().code(),
        "not_found"
    );
    db.add_enrollment("NCGM", secret_hash("again"), NOW + 10, None)
        .await
        .unwrap();
    assert_eq!(
        refusal(db.enroll(e("again", "t3")).await),
        EnrollRefusal::Revoked
    );
    assert_eq!(
        db.lease(&me, 2026, 10, NOW).await.unwrap_err().code(),
        "workstation_revoked"
    );
    // Re-admitted: the old token stays dead, the refused code was not spent, a new enrollment
    // works and keeps the workstation's serials.
    assert_eq!(
        db.restore(Uuid::now_v7(), [7; 32])
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    db.restore(ws, [7; 32]).await.unwrap();
    assert_eq!(db.workstations().await.unwrap()[0].revoked_at, None);
    assert_eq!(db.authenticate(secret_hash("t1")).await.unwrap(), None);
    // An ordinary code does not give a known workstation a token: only a code made for it.
    assert_eq!(
        refusal(db.enroll(e("again", "t3")).await),
        EnrollRefusal::WorkstationExists
    );
    db.add_enrollment("NCGM", secret_hash("for-ws"), NOW + 10, Some(ws))
        .await
        .unwrap();
    let lease = db.enroll(e("for-ws", "t3")).await.unwrap().lease;
    assert!(
        lease.first > 50,
        "serials 1–50 stay this bench's: {lease:?}"
    );
    let me = db.authenticate(secret_hash("t3")).await.unwrap().unwrap();
    assert_eq!(me.workstation, ws);
    assert_eq!(db.authenticate(secret_hash("t1")).await.unwrap(), None);

    // A bench whose own IDs carry another format is refused, and its code stays unused.
    db.add_enrollment("NCGM", secret_hash("fresh"), NOW + 10, None)
        .await
        .unwrap();
    let other = Uuid::now_v7();
    let claim = |prefix: &str, serial_width: u32| Enrollment {
        workstation: other,
        id_format: Some(kura_proto::IdFormatClaim {
            prefix: prefix.into(),
            serial_width,
        }),
        ..e("fresh", "t4")
    };
    let site = db
        .sites()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.code == "NCGM")
        .unwrap();
    for (prefix, width) in [("XYZ", site.serial_width), ("G", site.serial_width + 1)] {
        assert_eq!(
            refusal(db.enroll(claim(prefix, width)).await),
            EnrollRefusal::PrefixMismatch,
            "{prefix} {width}"
        );
    }
    assert_eq!(
        db.workstations().await.unwrap().len(),
        1,
        "no half-enrolled bench"
    );
    assert_eq!(db.authenticate(secret_hash("t4")).await.unwrap(), None);
    db.enroll(claim("G", site.serial_width)).await.unwrap();
    assert_eq!(
        db.authenticate(secret_hash("t4"))
            .await
            .unwrap()
            .map(|c| c.workstation),
        Some(other)
    );
}

/// A code made for a replacement PC gives it the replaced workstation's identity and says where
/// that one's stream stood; the old token stops working. Such a code does not enroll a new
/// workstation, and an ordinary code does not replace one.
async fn replacement<D: RegistryDb>(db: D) {
    let (old, old_token) = enroll(&db, "NCGM", "G").await;
    let (other, _) = enroll(&db, "NCGM", "G").await;
    let mut bench = Bench::new(old.workstation);
    let events = bench.events(&testkit::storage("A", &["BXA"]));
    db.push(&old, batch(events.clone())).await.unwrap();
    let e = |code: &str, token: &str, recover: bool| Enrollment {
        code_hash: secret_hash(code),
        workstation: Uuid::now_v7(),
        name: "replacement".into(),
        token_hash: secret_hash(token),
        now: NOW,
        year: 2026,
        lease: 50,
        issued: vec![],
        id_format: None,
        recover,
    };
    // (what, the workstation the code replaces, the site, the code error)
    let made: Vec<(&str, Option<Uuid>, &str, Option<&str>)> = vec![
        (
            "a workstation that does not exist",
            Some(Uuid::now_v7()),
            "NCGM",
            Some("not_found"),
        ),
        (
            "another site's workstation",
            Some(old.workstation),
            "NCNP",
            Some("not_found"),
        ),
        ("the dead bench", Some(old.workstation), "NCGM", None),
        ("an ordinary code", None, "NCGM", None),
    ];
    db.add_site(testkit::site("NCNP", "N")).await.unwrap();
    for (i, (what, replaces, site, want)) in made.into_iter().enumerate() {
        let r = db
            .add_enrollment(site, secret_hash(&format!("r{i}")), NOW + 10, replaces)
            .await;
        assert_eq!(r.err().map(|e| e.code()), want, "{what}");
    }
    let refusal = |r: DbResult<Enrolled>| match r {
        Err(DbError::Enroll(x)) => x,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refusal(db.enroll(e("r2", "t-new", false)).await),
        EnrollRefusal::ForReplacement,
        "a replacement code used to enroll a new workstation"
    );
    // A takeover: an ordinary code sent with the live workstation's id (every pulled event
    // carries it) is refused, the code stays unused, and the workstation keeps its token.
    let takeover = Enrollment {
        workstation: old.workstation,
        ..e("r3", "t-thief", false)
    };
    assert_eq!(
        refusal(db.enroll(takeover).await),
        EnrollRefusal::WorkstationExists
    );
    assert!(
        db.authenticate(secret_hash(&old_token))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(db.authenticate(secret_hash("t-thief")).await.unwrap(), None);
    assert_eq!(
        refusal(db.enroll(e("r3", "t-new", true)).await),
        EnrollRefusal::NotForReplacement,
        "an ordinary code used to recover"
    );
    let got = db.enroll(e("r2", "t-new", true)).await.unwrap();
    assert_eq!(got.workstation, old.workstation, "the replaced identity");
    assert_eq!(
        got.replaced.map(|r| r.head),
        Some(events.len() as u64),
        "where its stream stood"
    );
    assert!(got.replaced.unwrap().last_seen.is_some());
    assert_eq!(
        db.authenticate(secret_hash(&old_token)).await.unwrap(),
        None,
        "the old token is refused"
    );
    let me = db
        .authenticate(secret_hash("t-new"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(me.workstation, old.workstation);
    assert_eq!(db.status(&me).await.unwrap().head.seq, events.len() as u64);
    assert!(
        got.lease.first > 100,
        "a new lease after the old PC's: {:?}",
        got.lease
    );
    assert!(
        db.authenticate(secret_hash(&format!("token-{}", other.workstation)))
            .await
            .unwrap()
            .is_some(),
        "the other bench is untouched"
    );
    // The used code replaces nothing twice.
    assert_eq!(
        refusal(db.enroll(e("r2", "t-again", true)).await),
        EnrollRefusal::UsedCode
    );
}

async fn verdicts<D: RegistryDb>(db: D) {
    let (me, _) = enroll(&db, "NCGM", "G").await;
    let mut bench = Bench::new(me.workstation);
    let g1 = testkit::specimen("G", 1);
    let mut events = bench.events(&testkit::storage("1", &["BX1"]));
    events.push(bench.event(&testkit::register(&g1, Some(testkit::at("BX1", 0, 0)))));
    let n = events.len();
    let r = db.push(&me, batch(events.clone())).await.unwrap();
    assert_eq!(words(&r.verdicts), vec!["accepted"; n]);
    assert_eq!(r.head.seq, n as u64);
    let server: Vec<u64> = r
        .verdicts
        .iter()
        .map(|v| match v {
            Verdict::Accepted { server_seq, .. } => *server_seq,
            _ => 0,
        })
        .collect();
    assert_eq!(
        server,
        (1..=n as u64).collect::<Vec<_>>(),
        "server_seq from 1, gapless"
    );
    // Sent again, every event says where the site's order put it (a bench that lost the
    // acknowledgement orders its projection by it).
    let again = db.push(&me, batch(events.clone())).await.unwrap();
    let placed: Vec<Option<u64>> = again
        .verdicts
        .iter()
        .map(|v| match v {
            Verdict::Duplicate { server_seq, .. } => *server_seq,
            _ => None,
        })
        .collect();
    assert_eq!(placed, server.iter().map(|s| Some(*s)).collect::<Vec<_>>());

    // A table of what can come next: (what, batch, verdicts).
    let mut forked = events[n - 1].clone();
    forked.payload = forked.payload.replace("PL1", "SER");
    forked.hash = Digest::from_bytes([7; 32]);
    let mut next = bench.clone();
    let good = next.event(&testkit::thawed(&g1));
    let mut tampered = good.clone();
    tampered.actor = "someone else".into();
    let mut after = next.clone();
    let follows = after.event(&testkit::thawed(&g1));
    let cases: Vec<(&str, Vec<Envelope>, Vec<&str>)> = vec![
        (
            "the last one again",
            vec![events[n - 1].clone()],
            vec!["duplicate"],
        ),
        ("same seq, other hash", vec![forked], vec!["sequence_fork"]),
        (
            "changed after hashing, and what follows it",
            vec![tampered, follows.clone()],
            vec!["chain_broken", "chain_broken"],
        ),
        (
            "an old one, then new ones",
            vec![events[n - 1].clone(), good.clone(), follows.clone()],
            vec!["duplicate", "accepted", "accepted"],
        ),
        (
            "all of it again",
            vec![good, follows],
            vec!["duplicate", "duplicate"],
        ),
    ];
    for (what, b, want) in cases {
        let r = db.push(&me, batch(b)).await.unwrap();
        assert_eq!(words(&r.verdicts), want, "{what}");
    }
    assert_eq!(db.event_count().await.unwrap(), n as u64 + 2);

    // Another workstation's event in my batch: refused whole, nothing stored.
    let mut other = Bench::new(Uuid::now_v7());
    let e = db
        .push(&me, batch(vec![other.event(&testkit::thawed(&g1))]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_your_stream");
    // Out of order.
    let mut b2 = after.clone();
    let x = b2.event(&testkit::thawed(&g1));
    let y = b2.event(&testkit::thawed(&g1));
    let e = db.push(&me, batch(vec![y, x])).await.unwrap_err();
    assert_eq!(e.code(), "bad_batch");
    assert_eq!(db.event_count().await.unwrap(), n as u64 + 2);
}

/// An event whose id another event already carries (stored earlier, by any workstation, or
/// earlier in the same batch) is kept as a rejection, `id_taken`; the rest of the batch is
/// stored, the stream goes on, and a re-send says the same.
async fn id_taken<D: RegistryDb>(db: D) {
    let (a, _) = enroll(&db, "NCGM", "G").await;
    let (b, _) = enroll(&db, "NCGM", "G").await;
    let mut bench_a = Bench::new(a.workstation);
    let g1 = testkit::specimen("G", 1);
    let mut events = bench_a.events(&testkit::storage("1", &["BX1"]));
    events.push(bench_a.event(&testkit::register(&g1, Some(testkit::at("BX1", 0, 0)))));
    let stored = events.len() as u64;
    db.push(&a, batch(events.clone())).await.unwrap();
    let used = events[0].id;
    let mut bench_b = Bench::new(b.workstation);
    let fresh = Uuid::now_v7();
    let sent = vec![
        bench_b.event(&testkit::thawed(&g1)),
        bench_b.with_id(used, &testkit::thawed(&g1)),
        bench_b.with_id(fresh, &testkit::thawed(&g1)),
        bench_b.with_id(fresh, &testkit::thawed(&g1)),
        bench_b.event(&testkit::thawed(&g1)),
    ];
    let want = vec!["accepted", "id_taken", "accepted", "id_taken", "accepted"];
    let r = db.push(&b, batch(sent.clone())).await.unwrap();
    assert_eq!(words(&r.verdicts), want);
    assert_eq!(r.head.seq, 5, "the stream goes on past them");
    assert_eq!(db.event_count().await.unwrap(), stored + 3);
    let again = db.push(&b, batch(sent)).await.unwrap();
    assert_eq!(
        words(&again.verdicts),
        vec![
            "duplicate",
            "id_taken",
            "duplicate",
            "id_taken",
            "duplicate"
        ]
    );
    assert_eq!(db.event_count().await.unwrap(), stored + 3);
}

/// The registry judges every event by its own projection of the site's users: a table of what a
/// stolen token or a hand-edited bench might send, each refused `forbidden` (kept in the chain,
/// never folded, never pulled), beside what is allowed.
async fn authorization<D: RegistryDb>(db: D) {
    use kura_domain::Role;
    use kura_domain::sign::SigningKey;
    use testkit::{create, password, user_added};
    let (a, _) = enroll(&db, "NCGM", "G").await;
    let mut bench = Bench::new(a.workstation);
    let admin = SigningKey::from_seed(&[1; 32]).unwrap();
    let tech = SigningKey::from_seed(&[2; 32]).unwrap();
    let sup = SigningKey::from_seed(&[3; 32]).unwrap();
    let forged = SigningKey::from_seed(&[9; 32]).unwrap();
    // Before any user, anything goes; the first administrator sets the site up.
    let mut setup = vec![bench.event(&create("S1", "site", None, None))];
    setup.push(bench.by("admin", &user_added("admin", Role::Administrator)));
    setup.push(bench.by("admin", &password("admin", &admin)));
    for (user, role, key) in [
        ("tech", Role::Technician, &tech),
        ("sup", Role::Supervisor, &sup),
    ] {
        let added = bench.by("admin", &user_added(user, role));
        let signed = bench.signature("admin", &added, Some(&admin));
        let cred = bench.by("admin", &password(user, key));
        let signed2 = bench.signature("admin", &cred, Some(&admin));
        setup.extend([added, signed, cred, signed2]);
    }
    let r = db.push(&a, batch(setup.clone())).await.unwrap();
    assert_eq!(words(&r.verdicts), vec!["accepted"; setup.len()]);
    let mut stored = setup.len() as u64;

    // (what, events, verdicts)
    let mut cases: Vec<(&str, Vec<Envelope>, Vec<&str>)> = Vec::new();
    let e = bench.by("tech", &user_added("mallory", Role::Administrator));
    let s = bench.signature("tech", &e, Some(&tech));
    cases.push((
        "a technician adds an administrator, signing it",
        vec![e, s],
        vec!["forbidden"; 2],
    ));
    let e = bench.by("admin", &user_added("nosig", Role::Technician));
    cases.push((
        "user administration with no signature",
        vec![e],
        vec!["forbidden"],
    ));
    let e = bench.by("admin", &user_added("forged", Role::Administrator));
    let s = bench.signature("admin", &e, Some(&forged));
    cases.push((
        "user administration signed with a forged key",
        vec![e, s],
        vec!["forbidden"; 2],
    ));
    let e = bench.by("admin", &user_added("keyless", Role::Technician));
    let s = bench.signature("admin", &e, None);
    cases.push((
        "user administration with a signature that carries none",
        vec![e, s],
        vec!["forbidden"; 2],
    ));
    let e = bench.by("boss", &user_added("boss", Role::Administrator));
    let c = bench.by("boss", &password("boss", &forged));
    cases.push((
        "a second first administrator",
        vec![e, c],
        vec!["forbidden"; 2],
    ));
    let e = bench.by("nobody", &create("S2", "site", None, None));
    cases.push((
        "custody by someone who is not a user",
        vec![e],
        vec!["forbidden"],
    ));
    let e = bench.by("tech", &create("S3", "site", None, None));
    cases.push((
        "a storage change by a technician",
        vec![e],
        vec!["forbidden"],
    ));
    let e = bench.by("sup", &create("S4", "site", None, None));
    let s = bench.signature("sup", &e, Some(&forged));
    cases.push((
        "a supervisor's signed act signed with another key",
        vec![e, s],
        vec!["forbidden"; 2],
    ));
    let e = bench.by("sup", &create("S5", "site", None, None));
    let s = bench.signature("tech", &e, Some(&tech));
    cases.push((
        "a supervisor's act signed by a technician",
        vec![e, s],
        vec!["forbidden"; 2],
    ));
    let e = bench.by("sup", &create("S6", "site", None, None));
    let s = bench.signature("sup", &e, Some(&sup));
    cases.push((
        "a supervisor's act, signed",
        vec![e, s],
        vec!["accepted"; 2],
    ));
    let e = bench.by("tech", &testkit::register(&testkit::specimen("G", 1), None));
    cases.push((
        "a technician registers a specimen",
        vec![e],
        vec!["accepted"],
    ));
    let e = bench.by("tech", &password("tech", &tech));
    cases.push(("a user sets their own password", vec![e], vec!["accepted"]));
    let mut forbidden = Vec::new();
    for (what, events, want) in cases {
        let r = db.push(&a, batch(events.clone())).await.unwrap();
        assert_eq!(words(&r.verdicts), want, "{what}");
        for (e, v) in events.iter().zip(&r.verdicts) {
            match v {
                Verdict::Accepted { .. } => stored += 1,
                Verdict::Rejected { message, .. } => {
                    assert!(message.len() > 20, "{what}: a sentence");
                    forbidden.push(e.id);
                }
                Verdict::Duplicate { .. } => panic!("{what}: duplicate"),
            }
        }
        // Sent again: the same verdicts, nothing more stored.
        let again = db.push(&a, batch(events)).await.unwrap();
        let repeat: Vec<String> = words(&again.verdicts)
            .into_iter()
            .map(|w| {
                if w == "duplicate" {
                    "accepted".to_string()
                } else {
                    w
                }
            })
            .collect();
        assert_eq!(repeat, want, "{what}, sent again");
    }
    assert_eq!(db.event_count().await.unwrap(), stored);
    // Another bench of the site never receives a refused event.
    let (b, _) = enroll(&db, "NCGM", "G").await;
    let p = db.pull(&b, 0, 1000, None).await.unwrap();
    assert_eq!(p.events.len() as u64, stored);
    assert!(p.events.iter().all(|e| !forbidden.contains(&e.event.id)));
    assert_eq!(p.refused.len(), forbidden.len());
}

async fn resend_stores_once<D: RegistryDb>(db: D) {
    let (me, _) = enroll(&db, "NCGM", "G").await;
    let mut bench = Bench::new(me.workstation);
    let mut events = bench.events(&testkit::storage("1", &["BX1"]));
    for i in 0..20 {
        let g = testkit::specimen("G", i + 1);
        events.push(bench.event(&testkit::register(
            &g,
            Some(testkit::at("BX1", 0, i as u16 % 9)),
        )));
    }
    // Positions collide after 9: those become conflicts, still stored.
    let first = db.push(&me, batch(events.clone())).await.unwrap();
    for _ in 0..3 {
        let r = db.push(&me, batch(events.clone())).await.unwrap();
        assert!(words(&r.verdicts).iter().all(|w| w == "duplicate"));
        assert_eq!(r.head, first.head);
    }
    assert_eq!(db.event_count().await.unwrap(), events.len() as u64);
    let open = db.conflicts("NCGM", true).await.unwrap();
    assert_eq!(
        open.len(),
        11,
        "registrations into occupied positions are conflicts"
    );
    assert!(
        open.iter()
            .all(|c| c.code == "position_occupied" && c.events.len() == 2)
    );
}

/// Positions taken by earlier batches, met by a batch that fills much of a box (a backend may read
/// such a box whole) and by one that puts a single tube in it (probed alone): the same conflicts.
async fn occupied_positions_of_earlier_batches<D: RegistryDb>(db: D) {
    let (a, _) = enroll(&db, "NCGM", "G").await;
    let (b, _) = enroll(&db, "NCGM", "G").await;
    let mut ba = Bench::new(a.workstation);
    let mut bb = Bench::new(b.workstation);
    let mut first = ba.events(&testkit::storage("1", &["BX1"]));
    for i in 0..4u16 {
        let g = testkit::specimen("G", u64::from(i) + 1);
        first.push(ba.event(&testkit::register(&g, Some(testkit::at("BX1", 0, i * 2)))));
    }
    let r = db.push(&a, batch(first)).await.unwrap();
    assert!(words(&r.verdicts).iter().all(|w| w == "accepted"));
    assert!(db.conflicts("NCGM", true).await.unwrap().is_empty());
    // B fills row 0 of A's box (nine positions, four of them taken by A).
    let mut fill = vec![];
    for i in 0..9u16 {
        let g = testkit::specimen("G", 100 + u64::from(i));
        fill.push(bb.event(&testkit::register(&g, Some(testkit::at("BX1", 0, i)))));
    }
    let r = db.push(&b, batch(fill.clone())).await.unwrap();
    assert!(words(&r.verdicts).iter().all(|w| w == "accepted"));
    let open = db.conflicts("NCGM", true).await.unwrap();
    let mut clashed: Vec<Uuid> = open.iter().map(|c| c.events[1]).collect();
    clashed.sort();
    let mut want: Vec<Uuid> = [0, 2, 4, 6].iter().map(|&i| fill[i].id).collect();
    want.sort();
    assert_eq!(clashed, want, "the four positions A filled first");
    assert!(open.iter().all(|c| c.code == "position_occupied"));
    // One more tube, alone, into a position B's batch took.
    let g = testkit::specimen("G", 200);
    let one = ba.event(&testkit::register(&g, Some(testkit::at("BX1", 0, 1))));
    db.push(&a, batch(vec![one.clone()])).await.unwrap();
    let open = db.conflicts("NCGM", true).await.unwrap();
    assert_eq!(open.len(), 5);
    assert!(
        open.iter()
            .any(|c| c.events == vec![fill[1].id, one.id] && c.code == "position_occupied"),
        "{open:?}"
    );
}

async fn gap_and_restore<D: RegistryDb>(db: D) {
    let (me, _) = enroll(&db, "NCGM", "G").await;
    let mut bench = Bench::new(me.workstation);
    let events = bench.events(&testkit::storage("1", &["BX1", "BX2"]));
    let e = db.push(&me, batch(events[2..].to_vec())).await.unwrap_err();
    assert_eq!(e, DbError::Gap { holds: 0, first: 3 });
    assert_eq!(db.event_count().await.unwrap(), 0);
    db.push(&me, batch(events[..2].to_vec())).await.unwrap();
    // The status says where to go on; the rest is taken.
    assert_eq!(db.status(&me).await.unwrap().head.seq, 2);
    let r = db.push(&me, batch(events[2..].to_vec())).await.unwrap();
    assert!(words(&r.verdicts).iter().all(|w| w == "accepted"));
    // An empty batch answers the head.
    let r = db.push(&me, batch(vec![])).await.unwrap();
    assert_eq!(r.head.seq, events.len() as u64);
    assert_eq!(r.head.hash, Some(events.last().unwrap().hash));
}

async fn rejection_does_not_block<D: RegistryDb>(db: D) {
    let (me, _) = enroll(&db, "NCGM", "G").await;
    let mut bench = Bench::new(me.workstation);
    let mut events = bench.events(&testkit::storage("1", &["BX1"]));
    events.push(bench.raw("teleported", r#"{"kind":"teleported"}"#));
    events.push(bench.raw("thawed", r#"{"kind":"checked_in"}"#));
    events.push(bench.event(&testkit::register(&testkit::specimen("Q", 1), None)));
    events.push(bench.event(&testkit::register(&testkit::specimen("G", 1), None)));
    let r = db.push(&me, batch(events.clone())).await.unwrap();
    let w = words(&r.verdicts);
    let k = w.len();
    assert_eq!(
        &w[k - 4..],
        ["bad_payload", "bad_payload", "wrong_site", "accepted"],
        "a rejection never blocks the stream"
    );
    assert_eq!(r.head.seq, events.len() as u64);
    // Re-sent, a rejection is answered the same way, and nothing is stored twice.
    let again = db.push(&me, batch(events.clone())).await.unwrap();
    let w2 = words(&again.verdicts);
    assert_eq!(
        &w2[k - 4..],
        ["bad_payload", "bad_payload", "wrong_site", "duplicate"]
    );
    assert_eq!(db.event_count().await.unwrap(), (events.len() - 3) as u64);
    // Another bench of the site pulls the stream with its holes, and is told they are refusals.
    let (other, _) = enroll(&db, "NCGM", "G").await;
    let p = db.pull(&other, 0, 100, None).await.unwrap();
    let refused: Vec<(Uuid, u64)> = p.refused.iter().map(|r| (r.workstation, r.seq)).collect();
    let n = events.len() as u64;
    assert_eq!(
        refused,
        vec![
            (me.workstation, n - 3),
            (me.workstation, n - 2),
            (me.workstation, n - 1)
        ]
    );
    // A page holding only the event after the hole still says what the hole is.
    let tail = db.pull(&other, p.next - 1, 100, None).await.unwrap();
    assert_eq!(tail.events.len(), 1);
    assert_eq!(tail.refused.len(), 3);
    match &r.verdicts[k - 4] {
        Verdict::Rejected { code, message, .. } => {
            assert_eq!(*code, RejectCode::BadPayload);
            assert!(message.contains("teleported"), "{message}");
        }
        v => panic!("{v:?}"),
    }
}

async fn pull_pages<D: RegistryDb>(db: D) {
    let (a, _) = enroll(&db, "NCGM", "G").await;
    let (b, _) = enroll(&db, "NCGM", "G").await;
    let (x, _) = enroll(&db, "NCNP", "N").await;
    let mut ba = Bench::new(a.workstation);
    let mut bb = Bench::new(b.workstation);
    let mut bx = Bench::new(x.workstation);
    let ea = ba.events(&testkit::storage("A", &["BXA"]));
    let eb = bb.events(&testkit::storage("B", &["BXB"]));
    let ex = bx.events(&testkit::storage("X", &["BXX"]));
    db.push(&a, batch(ea[..2].to_vec())).await.unwrap();
    db.push(&x, batch(ex.clone())).await.unwrap();
    db.push(&b, batch(eb.clone())).await.unwrap();
    db.push(&a, batch(ea[2..].to_vec())).await.unwrap();
    // B pages through the site: A's events in server_seq order, none of its own, none of X's.
    let mut cursor = 0;
    let mut got = vec![];
    let mut pages = 0;
    loop {
        let p = db.pull(&b, cursor, 2, None).await.unwrap();
        pages += 1;
        assert!(p.next >= cursor);
        got.extend(p.events.iter().map(|e| (e.server_seq, e.event.id)));
        cursor = p.next;
        if !p.more {
            break;
        }
    }
    let ids: Vec<Uuid> = got.iter().map(|g| g.1).collect();
    assert_eq!(ids, ea.iter().map(|e| e.id).collect::<Vec<_>>());
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(
        cursor,
        (ea.len() + eb.len()) as u64,
        "the cursor passes B's own events"
    );
    assert!(pages >= 3);
    let done = db.pull(&b, cursor, 100, None).await.unwrap();
    assert!(done.events.is_empty() && !done.more && done.next == cursor);
    let xs = db.pull(&x, 0, 100, None).await.unwrap();
    assert!(xs.events.is_empty(), "another site sees nothing of NCGM");
}

/// A pull names the event the bench holds at its cursor; a registry whose order differs there,
/// holds another bench's event the bench lacks below the cursor, or ends before it, answers
/// `order_changed`. Positions of the caller's own events come with the page.
async fn order_check<D: RegistryDb>(db: D) {
    let (a, _) = enroll(&db, "NCGM", "G").await;
    let (b, _) = enroll(&db, "NCGM", "G").await;
    let mut ba = Bench::new(a.workstation);
    let mut bb = Bench::new(b.workstation);
    let ea = ba.events(&testkit::storage("A", &["BXA"]));
    db.push(&a, batch(ea.clone())).await.unwrap();
    let n = ea.len() as u64;
    let last = ea.last().unwrap().id;
    let eb = bb.events(&testkit::storage("B", &["BXB"]));
    db.push(&b, batch(eb[..1].to_vec())).await.unwrap();
    let holds = |at: u64, id: Option<Uuid>| {
        Some(kura_proto::Holding {
            at,
            id,
            own: None,
            placed: None,
        })
    };
    let placed_last = db
        .pull(&b, n - 1, 1, None)
        .await
        .unwrap()
        .events
        .first()
        .map(|e| e.received_at);
    let changed = |r: DbResult<kura_proto::PullResponse>| match r {
        Err(DbError::OrderChanged { head, .. }) => Some(head),
        Err(e) => panic!("{e}"),
        Ok(_) => None,
    };
    // (what, after, holding, the registry's head when it refuses)
    let cases: Vec<(&str, u64, Option<kura_proto::Holding>, Option<u64>)> = vec![
        ("a bench that holds nothing yet", 0, holds(0, None), None),
        (
            "the same event at the cursor",
            n,
            holds(n, Some(last)),
            None,
        ),
        (
            "the cursor on its own event, the event below it the same",
            n + 1,
            holds(n, Some(last)),
            None,
        ),
        (
            "another event at the cursor",
            n,
            holds(n, Some(ea[0].id)),
            Some(n + 1),
        ),
        (
            "a cursor past the registry's end",
            n + 5,
            holds(n, Some(last)),
            Some(n + 1),
        ),
        (
            "another bench's event between what it holds and its cursor",
            n,
            holds(n - 1, Some(ea[n as usize - 2].id)),
            Some(n + 1),
        ),
        ("an old bench that names nothing", n + 5, None, None),
        (
            "the same event at the cursor, placed when the page said",
            n,
            Some(kura_proto::Holding {
                placed: placed_last,
                ..holds(n, Some(last)).unwrap()
            }),
            None,
        ),
        (
            "the same event at the cursor, placed at another time (sent again after a restore)",
            n,
            Some(kura_proto::Holding {
                placed: placed_last.map(|t| t - 1),
                ..holds(n, Some(last)).unwrap()
            }),
            Some(n + 1),
        ),
    ];
    for (what, after, holding, want) in cases {
        let got = changed(db.pull(&b, after, 10, holding).await);
        assert_eq!(got, want, "{what}");
    }
    // B's own event: its place comes with the page that passes it.
    let p = db.pull(&b, n - 1, 10, holds(0, None)).await;
    assert!(
        changed(p).is_some(),
        "a bench holding nothing below a cursor with others' events"
    );
    let p = db.pull(&b, 0, 100, holds(0, None)).await.unwrap();
    let own: Vec<(u64, u64)> = p.own.iter().map(|o| (o.server_seq, o.seq)).collect();
    assert_eq!(own, vec![(n + 1, 1)]);
    assert_eq!(p.events.len(), ea.len());
    assert_eq!(p.next, n + 1);
}

/// A bench that lacks part of its own stream (back from a copy, or a replacement PC) names the
/// newest seq it holds: its own events above it come in full, in their places among the others';
/// those at or below it come as positions only.
async fn own_events_back<D: RegistryDb>(db: D) {
    let (a, _) = enroll(&db, "NCGM", "G").await;
    let (b, _) = enroll(&db, "NCGM", "G").await;
    let mut ba = Bench::new(a.workstation);
    let mut bb = Bench::new(b.workstation);
    let ea = ba.events(&testkit::storage("A", &["BXA"]));
    let eb = bb.events(&testkit::storage("B", &["BXB"]));
    // B, A, B, A: the site's order interleaves them.
    db.push(&b, batch(eb[..1].to_vec())).await.unwrap();
    db.push(&a, batch(ea[..1].to_vec())).await.unwrap();
    db.push(&b, batch(eb[1..].to_vec())).await.unwrap();
    db.push(&a, batch(ea[1..].to_vec())).await.unwrap();
    let nb = eb.len() as u64;
    // (what, the newest own seq the bench holds, B's own seqs that come in full)
    let cases: Vec<(&str, Option<u64>, Vec<u64>)> = vec![
        ("a bench that names nothing", None, vec![]),
        ("a bench holding all of its stream", Some(nb), vec![]),
        ("a bench back from a copy", Some(1), (2..=nb).collect()),
        ("a replacement PC", Some(0), (1..=nb).collect()),
    ];
    for (what, own, want) in cases {
        let holding = Some(kura_proto::Holding {
            at: 0,
            id: None,
            own,
            placed: None,
        });
        let p = db.pull(&b, 0, 1000, holding).await.unwrap();
        let full: Vec<u64> = p
            .events
            .iter()
            .filter(|e| e.event.workstation == b.workstation)
            .map(|e| e.event.seq)
            .collect();
        assert_eq!(full, want, "{what}");
        let told: Vec<u64> = p.own.iter().map(|o| o.seq).collect();
        let rest: Vec<u64> = (1..=nb).filter(|s| !want.contains(s)).collect();
        assert_eq!(told, rest, "{what}: the others as positions");
        // In the site's order, with A's events between.
        let order: Vec<u64> = p.events.iter().map(|e| e.server_seq).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{what}");
        assert_eq!(
            p.events.len() + p.own.len(),
            ea.len() + eb.len(),
            "{what}: every event of the site, once"
        );
        let got: Vec<Digest> = p.events.iter().map(|e| e.event.hash).collect();
        for e in eb.iter().filter(|e| want.contains(&e.seq)) {
            assert!(got.contains(&e.hash), "{what}: as it was pushed");
        }
    }
}

async fn conflicts<D: RegistryDb>(db: D) {
    let (a, _) = enroll(&db, "NCGM", "G").await;
    let (b, _) = enroll(&db, "NCGM", "G").await;
    let mut ba = Bench::new(a.workstation);
    let mut bb = Bench::new(b.workstation);
    let g1 = testkit::specimen("G", 1);
    let mut setup = ba.events(&testkit::storage("1", &["BX1"]));
    setup.push(ba.event(&testkit::register(&g1, Some(testkit::at("BX1", 0, 0)))));
    db.push(&a, batch(setup)).await.unwrap();
    // B learns it by pull (its stream stays its own), then both check it out offline.
    let out_a = ba.event(&testkit::check_out(&g1, "Dr. Sato"));
    let out_b = bb.event(&testkit::check_out(&g1, "Dr. Tanaka"));
    let ra = db.push(&a, batch(vec![out_a.clone()])).await.unwrap();
    let rb = db.push(&b, batch(vec![out_b.clone()])).await.unwrap();
    assert_eq!(words(&ra.verdicts), ["accepted"]);
    assert_eq!(
        words(&rb.verdicts),
        ["accepted"],
        "a conflict is stored, not rejected"
    );
    let open = db.conflicts("NCGM", true).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].subject, g1.to_string());
    assert_eq!(open[0].code, "already_checked_out");
    assert_eq!(open[0].events, vec![out_a.id, out_b.id]);
    // A bench of the site finds it by folding the events it pulls (the other's check-out comes
    // in full); the page does not carry the registry's list, which is asked for on its own.
    let p = db.pull(&a, 0, 100, None).await.unwrap();
    assert!(p.events.iter().any(|e| e.event.id == out_b.id));
    assert!(p.conflicts.is_empty());
    // A resolution referencing both clears it.
    let fix = ba.event(&testkit::resolve(&g1, vec![out_a.id, out_b.id]));
    let r = db.push(&a, batch(vec![fix.clone()])).await.unwrap();
    assert_eq!(words(&r.verdicts), ["accepted"]);
    assert!(db.conflicts("NCGM", true).await.unwrap().is_empty());
    let all = db.conflicts("NCGM", false).await.unwrap();
    assert_eq!(all[0].resolved_by, Some(fix.id));
    // A second resolution of the same conflict (from the other bench) adds none.
    let fix_b = bb.event(&testkit::resolve(&g1, vec![out_a.id, out_b.id]));
    db.push(&b, batch(vec![fix_b])).await.unwrap();
    assert_eq!(db.conflicts("NCGM", false).await.unwrap().len(), 1);
    // Two specimens registered into one position by two benches.
    let g2 = testkit::specimen("G", 2);
    let g3 = testkit::specimen("G", 3);
    let ra = ba.event(&testkit::register(&g2, Some(testkit::at("BX1", 4, 4))));
    let rb = bb.event(&testkit::register(&g3, Some(testkit::at("BX1", 4, 4))));
    db.push(&a, batch(vec![ra.clone()])).await.unwrap();
    db.push(&b, batch(vec![rb.clone()])).await.unwrap();
    let open = db.conflicts("NCGM", true).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].code.as_str(), open[0].events.clone()),
        ("position_occupied", vec![ra.id, rb.id])
    );
}

async fn leases<D: RegistryDb>(db: D) {
    let (a, _) = enroll(&db, "NCGM", "G").await;
    let (b, _) = enroll(&db, "NCGM", "G").await;
    let (x, _) = enroll(&db, "NCNP", "N").await;
    let la = db.lease(&a, 2026, 1000, NOW).await.unwrap();
    let lb = db.lease(&b, 2026, 1000, NOW).await.unwrap();
    let lx = db.lease(&x, 2026, 1000, NOW).await.unwrap();
    let mut blocks: Vec<(u64, u64)> = vec![
        (1, 100),
        (101, 200),
        (la.first, la.last),
        (lb.first, lb.last),
    ];
    blocks.sort();
    for w in blocks.windows(2) {
        assert!(
            w[0].1 < w[1].0,
            "blocks of one site never overlap: {blocks:?}"
        );
    }
    assert_eq!(
        (lx.first, lx.last),
        (101, 1100),
        "another site counts on its own"
    );
    let next_year = db.lease(&a, 2027, 10, NOW).await.unwrap();
    assert_eq!(
        (next_year.first, next_year.last),
        (1, 10),
        "serials restart each year"
    );
    let status = db.status(&a).await.unwrap();
    assert_eq!(status.leases.len(), 3);
    // The 7-digit space runs out: the last block is cut short, then nothing. (With the site's
    // daily limit raised out of the way.)
    let site = a.site.code.clone();
    db.set_site_limits(
        &site,
        SiteLimits {
            claim_cap: 100_000,
            daily_serials: 100_000_000,
        },
    )
    .await
    .unwrap();
    let big = db.lease(&a, 2028, 9_999_999, NOW).await.unwrap();
    assert_eq!((big.first, big.last), (1, 9_999_999));
    assert_eq!(
        db.lease(&b, 2028, 1, NOW).await.unwrap_err().code(),
        "serials_exhausted"
    );

    // A bench that issued IDs itself before enrolling claims them: its first lease starts
    // after them, and nobody is leased them; a claim over another's serials is refused.
    db.add_site(testkit::site("NCCH", "C")).await.unwrap();
    let claim = |code: &str, issued: Vec<Lease>| {
        let ws = Uuid::now_v7();
        (
            ws,
            Enrollment {
                code_hash: secret_hash(code),
                workstation: ws,
                name: "bench that worked alone".into(),
                token_hash: secret_hash(&format!("tok-{code}")),
                now: NOW,
                year: 2026,
                lease: 100,
                issued,
                id_format: None,
                recover: false,
            },
        )
    };
    for c in ["alone-1", "alone-2"] {
        db.add_enrollment("NCCH", secret_hash(c), NOW + 10, None)
            .await
            .unwrap();
    }
    let (w1, e1) = claim(
        "alone-1",
        vec![Lease {
            year: 2026,
            first: 1,
            last: 250,
        }],
    );
    let first = db.enroll(e1).await.unwrap().lease;
    assert_eq!(
        (first.first, first.last),
        (251, 350),
        "after what it issued"
    );
    let me = db
        .authenticate(secret_hash("tok-alone-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(me.workstation, w1);
    assert_eq!(
        db.status(&me).await.unwrap().leases.len(),
        2,
        "the claim is its own"
    );
    let (_, e2) = claim(
        "alone-2",
        vec![Lease {
            year: 2026,
            first: 1,
            last: 10,
        }],
    );
    assert_eq!(
        db.enroll(e2).await.unwrap_err(),
        DbError::Enroll(EnrollRefusal::SerialsTaken)
    );
}

/// A bench holds serials the registry does not list (it was restored from a copy older than
/// their grant): a claim makes them the bench's again, so no other bench is leased them, unless
/// another workstation's lease overlaps them already.
async fn claims<D: RegistryDb>(db: D) {
    let (a, _) = enroll(&db, "NCGM", "G").await;
    let (b, _) = enroll(&db, "NCGM", "G").await;
    let l = |first: u64, last: u64| Lease {
        year: 2026,
        first,
        last,
    };
    let mine = db.status(&a).await.unwrap().leases;
    // (what, blocks claimed, kept, taken)
    type Case<'a> = (&'a str, Vec<Lease>, Vec<Lease>, Vec<Lease>);
    let cases: Vec<Case> = vec![
        ("a block it already has", mine.clone(), mine.clone(), vec![]),
        (
            "a block the registry forgot",
            vec![l(5001, 6000)],
            vec![l(5001, 6000)],
            vec![],
        ),
        (
            "claimed again",
            vec![l(5001, 6000)],
            vec![l(5001, 6000)],
            vec![],
        ),
        (
            "another bench's block",
            vec![l(101, 150)],
            vec![],
            vec![l(101, 150)],
        ),
        (
            "one of each",
            vec![l(7001, 7100), l(150, 160)],
            vec![l(7001, 7100)],
            vec![l(150, 160)],
        ),
    ];
    for (what, claim, kept, taken) in cases {
        let got = db.claim(&a, claim, NOW).await.unwrap();
        assert_eq!((got.kept, got.taken), (kept, taken), "{what}");
    }
    let leases = db.status(&a).await.unwrap().leases;
    assert!(leases.contains(&l(5001, 6000)) && leases.contains(&l(7001, 7100)));
    // The next lease of any bench comes after what was claimed.
    let next = db.lease(&b, 2026, 10, NOW).await.unwrap();
    assert_eq!(next.first, 7101, "{next:?}");
    db.revoke(a.workstation, NOW).await.unwrap();
    assert_eq!(
        db.claim(&a, vec![l(9001, 9010)], NOW)
            .await
            .unwrap_err()
            .code(),
        "workstation_revoked"
    );
}

/// One enrollment claims at most the site's `claim_cap` serials as issued before it; one
/// workstation is leased or claims at most `daily_serials` in 24 hours.
async fn limits<D: RegistryDb>(db: D) {
    let (a, _) = enroll(&db, "NCGM", "G").await;
    assert_eq!(
        db.site_limits("NCGM").await.unwrap(),
        SiteLimits {
            claim_cap: 100_000,
            daily_serials: 300_000
        },
        "the defaults"
    );
    assert_eq!(
        db.site_limits("NOPE").await.unwrap_err().code(),
        "not_found"
    );
    db.set_site_limits(
        "NCGM",
        SiteLimits {
            claim_cap: 500,
            daily_serials: 1_000,
        },
    )
    .await
    .unwrap();
    // (what, serials claimed at enrollment, refused)
    let cases = [
        ("a claim within the cap", 500u64, false),
        ("a claim over it", 501, true),
    ];
    for (i, (what, n, refused)) in cases.into_iter().enumerate() {
        let code = format!("limit-{i}");
        db.add_enrollment("NCGM", secret_hash(&code), NOW + 10, None)
            .await
            .unwrap();
        let r = db
            .enroll(Enrollment {
                code_hash: secret_hash(&code),
                workstation: Uuid::now_v7(),
                name: what.into(),
                token_hash: secret_hash(&format!("tok-{code}")),
                now: NOW,
                year: 2027,
                lease: 10,
                issued: vec![Lease {
                    year: 2025,
                    first: 1 + 1000 * i as u64,
                    last: n + 1000 * i as u64,
                }],
                id_format: None,
                recover: false,
            })
            .await;
        match r {
            Err(DbError::Enroll(EnrollRefusal::ClaimTooLarge)) => assert!(refused, "{what}"),
            Ok(_) => assert!(!refused, "{what}"),
            Err(e) => panic!("{what}: {e}"),
        }
    }
    // A's first lease (100) counts; 900 more fit in the day, 901 do not.
    let e = db.lease(&a, 2026, 901, NOW).await.unwrap_err();
    assert_eq!(e.code(), "serials_quota", "{e}");
    db.lease(&a, 2026, 900, NOW).await.unwrap();
    assert_eq!(
        db.lease(&a, 2026, 1, NOW).await.unwrap_err().code(),
        "serials_quota"
    );
    assert_eq!(
        db.claim(
            &a,
            vec![Lease {
                year: 2026,
                first: 90_001,
                last: 90_010
            }],
            NOW
        )
        .await
        .unwrap_err()
        .code(),
        "serials_quota",
        "a claim counts like a lease"
    );
    // A day later the quota is whole again.
    db.lease(&a, 2026, 900, NOW + DAY_US + 1).await.unwrap();
}

async fn status<D: RegistryDb>(db: D) {
    let (me, _) = enroll(&db, "NCGM", "G").await;
    let s = db.status(&me).await.unwrap();
    assert_eq!((s.head.seq, s.head.hash, s.site_seq), (0, None, 0));
    assert_eq!(s.leases.len(), 1);
    let mut bench = Bench::new(me.workstation);
    let events = bench.events(&testkit::storage("1", &[]));
    let mut b = batch(events.clone());
    b.sent_at = Some(NOW - 90_000_000);
    db.push(&me, b).await.unwrap();
    let s = db.status(&me).await.unwrap();
    assert_eq!(s.head.seq, events.len() as u64);
    assert_eq!(s.head.hash, Some(events.last().unwrap().hash));
    assert_eq!(
        s.clock_skew_us,
        Some(-90_000_000),
        "the bench runs 90 s slow"
    );
    assert_eq!(s.site_seq, events.len() as u64);
    let w = db.workstations().await.unwrap();
    assert_eq!(
        (w[0].head, w[0].clock_skew_us),
        (events.len() as u64, Some(-90_000_000))
    );
}

/// The workload the benchmark pushes folds without a single conflict (a check of the generator).
pub async fn workload_is_clean<D: RegistryDb>(db: D) {
    let (me, _) = enroll(&db, "NCGM", "G").await;
    let mut bench = Bench::new(me.workstation);
    let events = testkit::workload(&mut bench, "W", "G", 1, 2000);
    for chunk in events.chunks(500) {
        let r = db.push(&me, batch(chunk.to_vec())).await.unwrap();
        assert!(words(&r.verdicts).iter().all(|w| w == "accepted"));
    }
    assert!(db.conflicts("NCGM", true).await.unwrap().is_empty());
    let avg = events.iter().map(|e| e.payload.len()).sum::<usize>() / events.len();
    assert!((250..=350).contains(&avg), "payloads average {avg} bytes");
}

/// Shipments through the registry: a bundle is taken only from the workstation that dispatched
/// it, once the registry holds that dispatch, with the key its first bundle bound; kept once; read
/// by the destination site alone; a tube received there makes a receipt for the sending site,
/// whether the bundle came before the reception or after it; a block of a shipped tube goes to
/// the destination as a follow-up.
async fn parcels<D: RegistryDb>(db: D) {
    use kura_domain::sign::SigningKey;
    use kura_proto::Parcel;
    let (a, _) = enroll(&db, "NCGM", "G").await;
    let (a2, _) = enroll(&db, "NCGM", "G").await;
    let (b, _) = enroll(&db, "NCNP", "N").await;
    let key = SigningKey::from_seed(&[3; 32]).unwrap();
    let mut bench = Bench::new(a.workstation);
    let tubes: Vec<_> = (1..=3).map(|n| testkit::specimen("G", n)).collect();
    let mut stream = bench.events(&testkit::storage("1", &["BX1"]));
    for t in &tubes {
        let e = bench.event(&testkit::register(t, None));
        stream.push(e);
    }
    let regs: Vec<Envelope> = stream[stream.len() - 3..].to_vec();
    let (shipped, bundle) = testkit::ship(
        &mut bench,
        &stream,
        &[&regs[0], &regs[1]],
        &tubes[..2],
        "SHP-1",
        "NCNP",
        &key,
    );
    stream.extend(shipped.clone());
    db.push(&a, batch(stream.clone())).await.unwrap();
    // Before the registry holds the dispatch: not yet.
    let (held_back, unheld, after_held) = {
        let mut b2 = bench.clone();
        let mut s2 = stream.clone();
        let (more, later) = testkit::ship(
            &mut b2,
            &s2,
            &[&regs[2]],
            &tubes[2..],
            "SHP-2",
            "NCNP",
            &key,
        );
        s2.extend(more.clone());
        (more, later, b2)
    };
    let refused = |r: DbResult<kura_proto::ParcelPosted>| match r {
        Err(e) => e.code().to_string(),
        Ok(p) => format!("taken as {}", p.seq),
    };
    assert_eq!(
        refused(db.post_bundle(&a, unheld.clone(), NOW).await),
        "not_acknowledged"
    );
    // Refusals, as a table: (what, who sends, the bundle).
    let mut forged = bundle.clone();
    forged.events[0].event.payload = forged.events[0].event.payload.replace("D0001", "D9999");
    forged.events[0].event.hash = forged.events[0].event.expected_hash(&forged.events[0].prev);
    let mut other_key = bundle.clone();
    let key2 = SigningKey::from_seed(&[4; 32]).unwrap();
    other_key.key = key2.public_hex();
    other_key.signature = key2.sign(&kura_domain::bundle::message(&bundle.dispatch.event.hash));
    let cases: Vec<(&str, &Caller, kura_domain::bundle::Bundle, &str)> = vec![
        ("an edited event", &a, forged, "bundle_tampered"),
        (
            "another workstation's dispatch",
            &a2,
            bundle.clone(),
            "not_your_stream",
        ),
    ];
    for (what, who, b, want) in cases {
        assert_eq!(refused(db.post_bundle(who, b, NOW).await), want, "{what}");
    }
    let first = db.post_bundle(&a, bundle.clone(), NOW).await.unwrap();
    assert!(!first.duplicate);
    let again = db.post_bundle(&a, bundle.clone(), NOW).await.unwrap();
    assert_eq!((again.seq, again.duplicate), (first.seq, true), "kept once");
    // The key is bound by the first bundle: the same dispatch signed by another key is refused.
    assert_eq!(
        refused(db.post_bundle(&a, other_key, NOW).await),
        "key_changed"
    );
    // The destination reads it; the sender's site does not.
    let feed = db.parcels(&b, 0, 10).await.unwrap();
    assert_eq!(feed.parcels.len(), 1);
    assert_eq!(feed.parcels[0].seq, first.seq);
    assert_eq!(
        feed.parcels[0].parcel,
        Parcel::Bundle {
            bundle: bundle.clone()
        }
    );
    assert_eq!(feed.next, first.seq);
    assert_eq!(feed.at, None);
    assert!(db.parcels(&a, 0, 10).await.unwrap().parcels.is_empty());
    let past = db.parcels(&b, first.seq, 10).await.unwrap();
    assert!(past.parcels.is_empty());
    assert_eq!(
        past.at,
        Some(bundle.dispatch.event.hash),
        "the hash at the cursor"
    );

    // B receives the first tube: a receipt for A.
    let mut bb = Bench::new(b.workstation);
    let mut at_b = bb.events(&testkit::storage("2", &["BX2"]));
    let got = bb.event(&testkit::received(&tubes[0], "SHP-1"));
    at_b.push(got.clone());
    db.push(&b, batch(at_b.clone())).await.unwrap();
    let back = db.parcels(&a, 0, 10).await.unwrap();
    assert_eq!(
        back.parcels
            .iter()
            .map(|p| p.parcel.clone())
            .collect::<Vec<_>>(),
        vec![Parcel::Receipt {
            shipment: "SHP-1".into(),
            site: "NCNP".into(),
            event: got.clone()
        }]
    );
    // B sent again: no second receipt.
    db.push(&b, batch(at_b.clone())).await.unwrap();
    assert_eq!(db.parcels(&a, 0, 10).await.unwrap().parcels.len(), 1);

    // A tube received before the registry held its bundle (a sealed manifest, or a registry put
    // back from an older copy): the receipt is made when the bundle comes.
    let late = bb.event(&testkit::received(&tubes[2], "SHP-2"));
    db.push(&b, batch(vec![late.clone()])).await.unwrap();
    assert_eq!(db.parcels(&a, 0, 10).await.unwrap().parcels.len(), 1);
    db.push(&a, batch(held_back)).await.unwrap();
    bench = after_held;
    db.post_bundle(&a, unheld, NOW).await.unwrap();
    let back = db.parcels(&a, 0, 10).await.unwrap();
    assert_eq!(back.parcels.len(), 2);
    assert_eq!(
        back.parcels[1].parcel,
        Parcel::Receipt {
            shipment: "SHP-2".into(),
            site: "NCNP".into(),
            event: late
        }
    );
    // A tube blocked at A after it left: the follow-up goes to B, once.
    let follow = |bench: &mut Bench, code: &kura_domain::SpecimenCode, shipment: &str| {
        let prev = bench.prev;
        let e = bench.event(&kura_domain::EventBody::Blocked {
            specimen: code.clone(),
            reason: "consent withdrawn: the donor asked".into(),
        });
        let f = kura_domain::bundle::FollowUp {
            shipment: shipment.into(),
            signature: key.sign(&kura_domain::bundle::follow_up_message(shipment, &e.hash)),
            key: key.public_hex(),
            event: kura_domain::bundle::Carried {
                event: e.clone(),
                prev,
            },
        };
        (e, f)
    };
    let (blocked, f) = follow(&mut bench, &tubes[0], "SHP-1");
    assert_eq!(
        refused(db.post_follow_up(&a, f.clone(), NOW).await),
        "not_acknowledged"
    );
    db.push(&a, batch(vec![blocked])).await.unwrap();
    let (blocked2, not_carried) = follow(&mut bench, &tubes[2], "SHP-1");
    let (blocked3, mut unknown) = follow(&mut bench, &tubes[1], "SHP-1");
    unknown.shipment = "SHP-404".into();
    unknown.signature = key.sign(&kura_domain::bundle::follow_up_message(
        "SHP-404",
        &unknown.event.event.hash,
    ));
    db.push(&a, batch(vec![blocked2, blocked3])).await.unwrap();
    let cases: Vec<(&str, &Caller, kura_domain::bundle::FollowUp, &str)> = vec![
        (
            "a tube the shipment did not carry",
            &a,
            not_carried,
            "not_in_shipment",
        ),
        (
            "a shipment the registry does not hold",
            &a,
            unknown,
            "unknown_shipment",
        ),
        (
            "another workstation's block",
            &a2,
            f.clone(),
            "not_your_stream",
        ),
    ];
    for (what, who, f, want) in cases {
        assert_eq!(
            refused(db.post_follow_up(who, f, NOW).await),
            want,
            "{what}"
        );
    }
    let sent = db.post_follow_up(&a, f.clone(), NOW).await.unwrap();
    assert!(!sent.duplicate);
    assert!(
        db.post_follow_up(&a, f.clone(), NOW)
            .await
            .unwrap()
            .duplicate
    );
    let at_b = db.parcels(&b, first.seq, 10).await.unwrap();
    assert_eq!(
        at_b.parcels
            .iter()
            .filter(|p| p.parcel.kind() == "follow_up")
            .map(|p| p.parcel.clone())
            .collect::<Vec<_>>(),
        vec![Parcel::FollowUp { follow_up: f }]
    );

    // Pages.
    let one = db.parcels(&a, 0, 1).await.unwrap();
    assert!(one.more);
    assert_eq!(one.parcels.len(), 1);
    let two = db.parcels(&a, one.next, 1).await.unwrap();
    assert!(!two.more);
    assert_eq!(two.parcels[0].seq, back.parcels[1].seq);
}
