//! The registry over real HTTP: a real client against a real server (in-process on port 0, or the
//! `kura-registry` binary as a process), on both backends: a SQLite file and a throwaway
//! PostgreSQL server started once for the whole suite.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kura_proto::{EnrollResponse, Envelope, PullResponse, PushResponse, StatusResponse};
use kura_registry::{AnyDb, secret};
use kura_registry_db::testkit::{self, Bench};
use kura_registry_db::{RegistryDb, secret_hash};
use kura_registry_postgres::{PgDb, throwaway::Throwaway};
use kura_registry_sqlite::SqliteDb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_kura-registry");

struct Reg {
    base: String,
    http: reqwest::Client,
    db: AnyDb,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Reg {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn in_process(db: AnyDb) -> Reg {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let d = db.clone();
    tokio::spawn(async move {
        kura_registry::serve(l, d, async {
            let _ = rx.await;
        })
        .await
        .unwrap()
    });
    Reg {
        base,
        http: kura_registry::http_client(),
        db,
        stop: Some(tx),
    }
}

struct Ws {
    id: Uuid,
    token: String,
    bench: Bench,
    enrolled: EnrollResponse,
}

async fn new_code(db: &AnyDb, site: &str, prefix: &str, valid_us: i64) -> String {
    if !db.sites().await.unwrap().iter().any(|s| s.code == site) {
        db.add_site(testkit::site(site, prefix)).await.unwrap();
    }
    let code = secret::new_enroll_code().unwrap();
    let h = secret_hash(&secret::normalize_code(&code));
    db.add_enrollment(site, h, kura_registry::api::now_us() + valid_us, None)
        .await
        .unwrap();
    code
}

async fn post(
    reg: &Reg,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
    encoding: Option<&str>,
) -> (StatusCode, Value) {
    let mut r = reg.http.post(format!("{}{path}", reg.base)).body(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(e) = encoding {
        r = r.header("Content-Encoding", e);
    }
    let res = r.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get(reg: &Reg, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut r = reg.http.get(format!("{}{path}", reg.base));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let res = r.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn enroll(reg: &Reg, site: &str, prefix: &str) -> Ws {
    let code = new_code(&reg.db, site, prefix, 3_600_000_000).await;
    let id = Uuid::now_v7();
    // Typed by a person: lower case, spaces instead of dashes.
    let typed = code.to_lowercase().replace('-', " ");
    let body = json!({"v": 1, "code": typed, "workstation": id, "name": "bench", "year": 2026});
    let (s, v) = post(
        reg,
        "/api/v1/enroll",
        None,
        body.to_string().into_bytes(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let enrolled: EnrollResponse = serde_json::from_value(v).unwrap();
    Ws {
        id,
        token: enrolled.token.clone(),
        bench: Bench::new(id),
        enrolled,
    }
}

fn body(ws: Uuid, events: &[Envelope]) -> Vec<u8> {
    json!({"v": 1, "workstation": ws, "sent_at": kura_registry::api::now_us(), "events": events})
        .to_string()
        .into_bytes()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

async fn push(reg: &Reg, ws: &Ws, events: &[Envelope]) -> PushResponse {
    let (s, v) = post(
        reg,
        "/api/v1/events",
        Some(&ws.token),
        zstd::encode_all(&body(ws.id, events)[..], 1).unwrap(),
        Some("zstd"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    serde_json::from_value(v).unwrap()
}

fn words(r: &PushResponse) -> Vec<String> {
    kura_registry_db::conformance::words(&r.verdicts)
}

async fn scenarios(fresh: impl AsyncFn() -> AnyDb) {
    for (name, f) in [
        ("protocol", 0),
        ("security", 1),
        ("conflicts and leases", 2),
        ("operations", 3),
        ("authorization", 4),
    ] {
        eprintln!("http: {name}");
        let reg = in_process(fresh().await).await;
        match f {
            0 => protocol(&reg).await,
            1 => security(&reg).await,
            2 => conflicts_and_leases(&reg).await,
            3 => operations(&reg).await,
            _ => authorization(&reg).await,
        }
    }
}

/// Over real HTTP: what a stolen token or a hand-edited bench sends on a site with users is
/// answered `forbidden` per event (the batch is not failed), and another bench never pulls it.
async fn authorization(reg: &Reg) {
    use kura_domain::Role;
    use kura_domain::sign::SigningKey;
    use testkit::{password, user_added};
    let mut a = enroll(reg, "NCGM", "G").await;
    let admin = SigningKey::from_seed(&[1; 32]).unwrap();
    let sup = SigningKey::from_seed(&[3; 32]).unwrap();
    let forged = SigningKey::from_seed(&[9; 32]).unwrap();
    let g1 = testkit::specimen("G", 1);
    let mut setup = a.bench.events(&testkit::storage("1", &["BX1"]));
    setup.push(
        a.bench
            .event(&testkit::register(&g1, Some(testkit::at("BX1", 0, 0)))),
    );
    setup.push(
        a.bench
            .by("admin", &user_added("admin", Role::Administrator)),
    );
    setup.push(a.bench.by("admin", &password("admin", &admin)));
    let e = a.bench.by("admin", &user_added("sup", Role::Supervisor));
    let s1 = a.bench.signature("admin", &e, Some(&admin));
    let c = a.bench.by("admin", &password("sup", &sup));
    let s2 = a.bench.signature("admin", &c, Some(&admin));
    setup.extend([e, s1, c, s2]);
    assert_eq!(
        words(&push(reg, &a, &setup).await),
        vec!["accepted"; setup.len()]
    );
    // (what, events, verdicts)
    let mut cases: Vec<(&str, Vec<Envelope>, Vec<&str>)> = Vec::new();
    let e = a
        .bench
        .by("sup", &user_added("mallory", Role::Administrator));
    let s = a.bench.signature("sup", &e, Some(&sup));
    cases.push((
        "user administration signed by a supervisor",
        vec![e, s],
        vec!["forbidden"; 2],
    ));
    let e = a
        .bench
        .by("admin", &user_added("nobody", Role::Administrator));
    cases.push((
        "user administration signed by nobody",
        vec![e],
        vec!["forbidden"],
    ));
    let e = a
        .bench
        .by("admin", &user_added("forged", Role::Administrator));
    let s = a.bench.signature("admin", &e, Some(&forged));
    cases.push((
        "user administration signed with a forged key",
        vec![e, s],
        vec!["forbidden"; 2],
    ));
    let disposal = kura_domain::EventBody::Disposed {
        specimen: g1.clone(),
        reason: "hemolysed".into(),
    };
    let e = a.bench.by("sup", &disposal);
    let s = a.bench.signature("sup", &e, Some(&forged));
    cases.push((
        "a disposal signed with another key",
        vec![e, s],
        vec!["forbidden"; 2],
    ));
    let e = a.bench.by("boss", &user_added("boss", Role::Administrator));
    cases.push(("a second first administrator", vec![e], vec!["forbidden"]));
    let e = a.bench.by("sup", &disposal);
    let s = a.bench.signature("sup", &e, Some(&sup));
    cases.push((
        "the disposal, signed by its supervisor",
        vec![e, s],
        vec!["accepted"; 2],
    ));
    let mut refused = 0;
    for (what, events, want) in cases {
        let r = push(reg, &a, &events).await;
        assert_eq!(words(&r), want, "{what}");
        refused += want.iter().filter(|w| **w == "forbidden").count();
    }
    let b = enroll(reg, "NCGM", "G").await;
    let (st, page) = get(reg, "/api/v1/events?after=0&limit=1000", Some(&b.token)).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let page: PullResponse = serde_json::from_value(page).unwrap();
    assert_eq!(page.refused.len(), refused, "the refusals are holes, named");
    assert!(
        page.events
            .iter()
            .all(|e| !e.event.payload.contains("mallory"))
    );
}

async fn protocol(reg: &Reg) {
    let mut a = enroll(reg, "NCGM", "G").await;
    let events = testkit::workload(&mut a.bench, "A", "G", 1, 120);
    // (what, batch, expected verdicts or status)
    let first = push(reg, &a, &events[..100]).await;
    assert_eq!(words(&first), vec!["accepted"; 100]);
    for _ in 0..3 {
        let again = push(reg, &a, &events[..100]).await;
        assert_eq!(
            words(&again),
            vec!["duplicate"; 100],
            "a re-sent batch changes nothing"
        );
    }
    let mut forked = events[99].clone();
    forked.payload = forked.payload.replace("D0000", "D9999");
    forked.hash = kura_proto::Digest::from_bytes([9; 32]);
    let mut tampered = events[100].clone();
    tampered.payload = tampered.payload.replace("PL1", "SER");
    let cases: Vec<(&str, Vec<Envelope>, Vec<&str>)> = vec![
        ("a fork", vec![forked], vec!["sequence_fork"]),
        (
            "changed after it was hashed",
            vec![tampered, events[101].clone()],
            vec!["chain_broken", "chain_broken"],
        ),
        (
            "overlap and new",
            events[98..110].to_vec(),
            [vec!["duplicate"; 2], vec!["accepted"; 10]].concat(),
        ),
    ];
    for (what, batch, want) in cases {
        assert_eq!(words(&push(reg, &a, &batch).await), want, "{what}");
    }
    // A gap: 409 with a message that says where to go on.
    let (s, v) = post(
        reg,
        "/api/v1/events",
        Some(&a.token),
        body(a.id, &events[115..]),
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("gap")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("send from seq 111"),
        "{v}"
    );
    // The status says what the registry holds; gzip works too.
    let (_, st) = get(reg, "/api/v1/status", Some(&a.token)).await;
    let st: StatusResponse = serde_json::from_value(st).unwrap();
    assert_eq!(st.head.seq, 110);
    let (s, v) = post(
        reg,
        "/api/v1/events",
        Some(&a.token),
        gzip(&body(a.id, &events[110..])),
        Some("gzip"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(reg.db.event_count().await.unwrap(), 120, "every event once");
    // Another bench of the site pulls them all, in order, in pages.
    let b = enroll(reg, "NCGM", "G").await;
    let (mut after, mut got) = (0u64, vec![]);
    loop {
        let (s, v) = get(
            reg,
            &format!("/api/v1/events?after={after}&limit=50"),
            Some(&b.token),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let p: PullResponse = serde_json::from_value(v).unwrap();
        got.extend(p.events.into_iter().map(|e| e.event));
        after = p.next;
        if !p.more {
            break;
        }
    }
    assert_eq!(got, events, "the same bytes, in order");
}

async fn security(reg: &Reg) {
    let mut a = enroll(reg, "NCGM", "G").await;
    let mut b = enroll(reg, "NCGM", "G").await;
    let mut x = enroll(reg, "NCNP", "N").await;
    let revoked = enroll(reg, "NCGM", "G").await;
    reg.db
        .revoke(revoked.id, kura_registry::api::now_us())
        .await
        .unwrap();
    let ea = testkit::workload(&mut a.bench, "A", "G", 1, 5);
    let eb = testkit::workload(&mut b.bench, "B", "G", 1000, 5);
    let _ = testkit::workload(&mut x.bench, "X", "N", 1, 5);
    let used = new_code(&reg.db, "NCGM", "G", 3_600_000_000).await;
    let enroll_body = |code: &str| {
        json!({"v": 1, "code": code, "workstation": Uuid::now_v7(), "name": "n", "year": 2026})
            .to_string()
            .into_bytes()
    };
    let (s, _) = post(reg, "/api/v1/enroll", None, enroll_body(&used), None).await;
    assert_eq!(s, StatusCode::OK);
    let expired = new_code(&reg.db, "NCGM", "G", -1).await;
    let fresh = new_code(&reg.db, "NCGM", "G", 3_600_000_000).await;
    let fresh2 = new_code(&reg.db, "NCGM", "G", 3_600_000_000).await;
    let takeover =
        json!({"v": 1, "code": fresh, "workstation": a.id, "name": "thief", "year": 2026})
            .to_string()
            .into_bytes();
    let greedy = json!({"v": 1, "code": fresh2, "workstation": Uuid::now_v7(), "name": "greedy",
        "year": 2026, "issued": [{"year": 2026, "first": 5_000_000, "last": 5_100_000}]})
    .to_string()
    .into_bytes();
    let big = vec![b' '; kura_registry::MAX_BODY + 1];
    let bomb = zstd::encode_all(&vec![b' '; kura_proto::MAX_BATCH_BYTES + 10][..], 3).unwrap();
    let mut future = json!({"v": 2, "workstation": a.id, "events": ea});
    let too_many: Vec<Envelope> = (0..501).map(|_| ea[0].clone()).collect();
    future["events"] = json!(ea);
    let none: Option<&str> = None;
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        Option<&'a str>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "a fresh code sent with a live workstation's id: a takeover",
            "/api/v1/enroll",
            None,
            takeover,
            none,
            StatusCode::FORBIDDEN,
            "workstation_exists",
        ),
        (
            "a claim of more serials than the site lets one enrollment claim",
            "/api/v1/enroll",
            None,
            greedy,
            none,
            StatusCode::FORBIDDEN,
            "enroll_claim_too_large",
        ),
        (
            "no token",
            "/api/v1/events",
            None,
            body(a.id, &ea),
            none,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "a wrong token",
            "/api/v1/events",
            Some("kura_0000"),
            body(a.id, &ea),
            none,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "a revoked token",
            "/api/v1/events",
            Some(&revoked.token),
            body(revoked.id, &[]),
            none,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "another site's workstation pushing A's stream",
            "/api/v1/events",
            Some(&x.token),
            body(a.id, &ea),
            none,
            StatusCode::FORBIDDEN,
            "not_your_stream",
        ),
        (
            "events claiming another workstation",
            "/api/v1/events",
            Some(&a.token),
            body(a.id, &eb),
            none,
            StatusCode::FORBIDDEN,
            "not_your_stream",
        ),
        (
            "a replayed enrollment code",
            "/api/v1/enroll",
            None,
            enroll_body(&used),
            none,
            StatusCode::FORBIDDEN,
            "enroll_code_used",
        ),
        (
            "an expired enrollment code",
            "/api/v1/enroll",
            None,
            enroll_body(&expired),
            none,
            StatusCode::FORBIDDEN,
            "enroll_code_expired",
        ),
        (
            "an unknown enrollment code",
            "/api/v1/enroll",
            None,
            enroll_body("AAAA-BBBB"),
            none,
            StatusCode::FORBIDDEN,
            "enroll_code_unknown",
        ),
        (
            "an oversized body",
            "/api/v1/events",
            Some(&a.token),
            big,
            none,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "a small body that decompresses past the limit",
            "/api/v1/events",
            Some(&a.token),
            bomb,
            Some("zstd"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "501 events",
            "/api/v1/events",
            Some(&a.token),
            body(a.id, &too_many),
            none,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "an unknown encoding",
            "/api/v1/events",
            Some(&a.token),
            body(a.id, &ea),
            Some("br"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
        ),
        (
            "not gzip at all",
            "/api/v1/events",
            Some(&a.token),
            body(a.id, &ea),
            Some("gzip"),
            StatusCode::BAD_REQUEST,
            "bad_encoding",
        ),
        (
            "malformed JSON",
            "/api/v1/events",
            Some(&a.token),
            b"{\"v\": 1, \"events\": [".to_vec(),
            none,
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "a payload of an unknown version",
            "/api/v1/events",
            Some(&a.token),
            future.to_string().into_bytes(),
            none,
            StatusCode::BAD_REQUEST,
            "unsupported_version",
        ),
        (
            "no version at all",
            "/api/v1/events",
            Some(&a.token),
            json!({"workstation": a.id, "events": []})
                .to_string()
                .into_bytes(),
            none,
            StatusCode::BAD_REQUEST,
            "unsupported_version",
        ),
        (
            "a lease for the year 1999",
            "/api/v1/serials",
            Some(&a.token),
            json!({"v": 1, "year": 1999}).to_string().into_bytes(),
            none,
            StatusCode::BAD_REQUEST,
            "bad_year",
        ),
        (
            "serials for a revoked workstation",
            "/api/v1/serials",
            Some(&revoked.token),
            json!({"v": 1, "year": 2026}).to_string().into_bytes(),
            none,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
    ];
    let workstations = reg.db.workstations().await.unwrap().len();
    for (what, path, token, payload, enc, status, code) in cases {
        let (s, v) = post(reg, path, token, payload, enc).await;
        assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{what}: {v}");
        assert!(
            !v["message"].as_str().unwrap_or("").is_empty(),
            "{what}: a sentence for people"
        );
        assert_eq!(
            reg.db.event_count().await.unwrap(),
            0,
            "{what}: nothing stored"
        );
    }
    assert_eq!(
        reg.db.workstations().await.unwrap().len(),
        workstations,
        "no workstation was enrolled by a refused code"
    );
    for path in [
        "/api/v1/status",
        "/api/v1/events?after=0",
        "/api/v1/conflicts",
    ] {
        let (s, _) = get(reg, path, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path} without a token");
    }
    // And the right request still works: A kept its token.
    assert_eq!(words(&push(reg, &a, &ea).await), vec!["accepted"; 5]);
    // One workstation is leased at most the site's daily limit (300,000 by default).
    let ask = json!({"v": 1, "year": 2026, "count": 100_000}).to_string();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let (s, v) = post(
            reg,
            "/api/v1/serials",
            Some(&b.token),
            ask.clone().into_bytes(),
            None,
        )
        .await;
        answers.push((s, v["code"].as_str().map(str::to_string)));
    }
    assert_eq!(
        answers.iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "{answers:?}"
    );
    assert_eq!(answers[2].1.as_deref(), Some("serials_quota"));
}

async fn conflicts_and_leases(reg: &Reg) {
    let mut a = enroll(reg, "NCGM", "G").await;
    let mut b = enroll(reg, "NCGM", "G").await;
    let g1 = testkit::specimen("G", 1);
    let mut setup = a.bench.events(&testkit::storage("1", &["BX1"]));
    setup.push(
        a.bench
            .event(&testkit::register(&g1, Some(testkit::at("BX1", 0, 0)))),
    );
    push(reg, &a, &setup).await;
    let out_a = a.bench.event(&testkit::check_out(&g1, "Dr. Sato"));
    let out_b = b.bench.event(&testkit::check_out(&g1, "Dr. Tanaka"));
    assert_eq!(
        words(&push(reg, &a, std::slice::from_ref(&out_a)).await),
        ["accepted"]
    );
    assert_eq!(
        words(&push(reg, &b, std::slice::from_ref(&out_b)).await),
        ["accepted"]
    );
    let (_, v) = get(reg, "/api/v1/conflicts", Some(&b.token)).await;
    let c = &v["conflicts"];
    assert_eq!(c.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(c[0]["subject"], json!(g1.to_string()));
    assert_eq!(c[0]["events"], json!([out_a.id, out_b.id]));
    // The other bench pulls the events it folds the conflict from; the page stays readable by
    // benches of earlier versions (its conflicts field is there, empty).
    let (_, p) = get(reg, "/api/v1/events?after=0", Some(&b.token)).await;
    let pulled: Vec<&serde_json::Value> = p["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["event"]["id"])
        .collect();
    assert!(pulled.contains(&&json!(out_a.id)), "{p}");
    assert_eq!(p["conflicts"], json!([]));
    let fix = a
        .bench
        .event(&testkit::resolve(&g1, vec![out_a.id, out_b.id]));
    push(reg, &a, &[fix]).await;
    let (_, v) = get(reg, "/api/v1/conflicts", Some(&b.token)).await;
    assert_eq!(v["conflicts"], json!([]), "resolved");
    let (_, v) = get(reg, "/api/v1/conflicts?open=false", Some(&b.token)).await;
    assert_eq!(v["conflicts"].as_array().unwrap().len(), 1);

    // Leases: enrollment gave each a block; more on request; never overlapping.
    let mut blocks = vec![
        (a.enrolled.lease.first, a.enrolled.lease.last),
        (b.enrolled.lease.first, b.enrolled.lease.last),
    ];
    for ws in [&a, &b, &a] {
        let (s, v) = post(
            reg,
            "/api/v1/serials",
            Some(&ws.token),
            json!({"v": 1, "year": 2026, "count": 500})
                .to_string()
                .into_bytes(),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        blocks.push((v["first"].as_u64().unwrap(), v["last"].as_u64().unwrap()));
    }
    blocks.sort();
    assert!(blocks.windows(2).all(|w| w[0].1 < w[1].0), "{blocks:?}");
    let (s, v) = post(
        reg,
        "/api/v1/serials",
        Some(&a.token),
        json!({"v": 1, "year": 2026, "count": 0})
            .to_string()
            .into_bytes(),
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_count"))
    );
    let (_, st) = get(reg, "/api/v1/status", Some(&a.token)).await;
    assert_eq!(st["leases"].as_array().unwrap().len(), 3);
    reg.db.revoke(b.id, 0).await.unwrap();
    let (s, _) = post(
        reg,
        "/api/v1/serials",
        Some(&b.token),
        json!({"v": 1, "year": 2026}).to_string().into_bytes(),
        None,
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a revoked workstation gets no serials"
    );
}

async fn operations(reg: &Reg) {
    assert_eq!(
        get(reg, "/health", None).await,
        (StatusCode::OK, Value::String("ok".into()))
    );
    assert_eq!(get(reg, "/ready", None).await.0, StatusCode::OK);
    let (_, caps) = get(reg, "/api/v1", None).await;
    assert_eq!(caps["versions"], json!([1]));
    let (s, doc) = get(reg, "/api/v1/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    for p in [
        "/api/v1/events",
        "/api/v1/enroll",
        "/api/v1/status",
        "/api/v1/serials",
        "/api/v1/conflicts",
        "/ready",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} in the OpenAPI document");
    }
    assert!(doc["components"]["schemas"]["PushRequest"].is_object());
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `kura-registry` binary serving `url`; stopped (SIGKILL) on drop if still running.
struct Proc {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Proc {
    fn start(url: &str, extra: &[&str], dir: &std::path::Path) -> Proc {
        let port = free_port();
        let log = dir.join(format!("registry-{port}.log"));
        let child = Command::new(BIN)
            .args([
                "--db",
                url,
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let scheme = if extra.is_empty() { "http" } else { "https" };
        let p = Proc {
            child,
            base: format!("{scheme}://127.0.0.1:{port}"),
            log,
        };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the registry did not start: {}",
                std::fs::read_to_string(&p.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }
    fn reg(&self, db: &AnyDb) -> Reg {
        Reg {
            base: self.base.clone(),
            http: kura_registry::http_client(),
            db: db.clone(),
            stop: None,
        }
    }
    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGKILL in the middle of pushes, restart, push everything again: every event exactly once,
/// counted in the database itself. Then SIGTERM: in-flight requests finish, the process exits 0.
async fn crash(url: &str, db: &AnyDb, count: impl AsyncFn() -> (i64, i64), dir: &std::path::Path) {
    let p = Proc::start(url, &[], dir);
    let reg = p.reg(db);
    let mut a = enroll(&reg, "NCGM", "G").await;
    let events = testkit::workload(&mut a.bench, "A", "G", 1, 6000);
    let pusher = {
        let (base, token, id, events) = (reg.base.clone(), a.token.clone(), a.id, events.clone());
        tokio::spawn(async move {
            let http = kura_registry::http_client();
            for chunk in events.chunks(200) {
                let r = http
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&token)
                    .body(body(id, chunk))
                    .send()
                    .await;
                if r.is_err() {
                    return; // the server died under us, as planned
                }
            }
        })
    };
    // Kill once a few batches are in.
    let t = Instant::now();
    while count().await.0 < 600 {
        assert!(t.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut p = p;
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let _ = pusher.await;
    let before = count().await.0;
    assert!(
        before < events.len() as i64,
        "killed mid-way ({before} stored)"
    );
    drop(p);
    let p = Proc::start(url, &[], dir);
    let reg = p.reg(db);
    // The bench re-sends from the start (as if its acknowledgements were lost).
    let mut verdicts = std::collections::HashMap::new();
    for chunk in events.chunks(500) {
        for w in words(&push(&reg, &a, chunk).await) {
            *verdicts.entry(w).or_insert(0) += 1;
        }
    }
    assert_eq!(
        verdicts.get("duplicate").copied().unwrap_or(0),
        before,
        "{verdicts:?}"
    );
    assert_eq!(
        verdicts.get("accepted").copied().unwrap_or(0) + before,
        events.len() as i64
    );
    assert_eq!(
        count().await,
        (events.len() as i64, events.len() as i64),
        "rows and distinct ids"
    );
    // SIGTERM: graceful.
    let mut p = p;
    p.signal("-TERM");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(&p.log).unwrap();
    assert!(log.contains("shutting down"));
    assert!(
        log.contains("path=\"/api/v1/events\""),
        "one line per request"
    );
    assert!(
        !log.contains(&a.token),
        "the request log never holds a token"
    );
    assert!(
        log.contains(&format!("workstation={}", a.id)),
        "the log names the workstation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    scenarios(async || {
        let p = dir.path().join(format!(
            "r{}.sqlite3",
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        AnyDb::from(SqliteDb::open(&p).unwrap())
    })
    .await;
    eprintln!("http: crash");
    let path = dir.path().join("crash.sqlite3");
    let db = AnyDb::from(SqliteDb::open(&path).unwrap());
    crash(
        &format!("sqlite://{}", path.display()),
        &db,
        async || {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.query_row("SELECT count(*), count(DISTINCT id) FROM events", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
        },
        dir.path(),
    )
    .await;
    // Concurrent pushers on one file: pushes that queue for the writer share a commit.
    eprintln!("http: holes");
    let path = dir.path().join("holes.sqlite3");
    let db = AnyDb::from(SqliteDb::open(&path).unwrap());
    holes(&format!("sqlite://{}", path.display()), db, dir.path()).await;
}

async fn pg_count(url: &str) -> (i64, i64) {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let t = tokio::spawn(conn);
    let r = c
        .query_one("SELECT count(*), count(DISTINCT id) FROM events", &[])
        .await
        .unwrap();
    drop(c);
    let _ = t.await;
    (r.get(0), r.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    // One server for the whole suite; it also speaks TLS, with a certificate from the registry's
    // own `tls generate` (a site CA and a server certificate for 127.0.0.1).
    let certs = tempfile::tempdir().unwrap();
    let tls = kura_registry::tls::generate(&["127.0.0.1".into()], certs.path(), 2).unwrap();
    let server = Throwaway::start_tls(false, &tls.cert, &tls.key).expect("a throwaway PostgreSQL");
    eprintln!("http: postgres over TLS");
    postgres_tls(&server, &tls.ca_cert, certs.path()).await;
    scenarios(async || AnyDb::from(PgDb::open(&server.fresh().await.unwrap()).await.unwrap()))
        .await;
    eprintln!("http: crash");
    let url = server.fresh().await.unwrap();
    let db = AnyDb::from(PgDb::open(&url).await.unwrap());
    crash(&url, &db, async || pg_count(&url).await, server.dir()).await;
    eprintln!("http: holes");
    let url = server.fresh().await.unwrap();
    let db = AnyDb::from(PgDb::open(&url).await.unwrap());
    holes(&url, db, server.dir()).await;
}

/// The registry reaches PostgreSQL over TLS when the URL says so: `require` encrypts,
/// `verify-full` also checks the server against the CA given; a wrong CA, a name the certificate
/// does not carry, or verify-full without a CA are refused with a sentence; and every session
/// carries the lock and idle-transaction limits.
async fn postgres_tls(server: &Throwaway, ca: &std::path::Path, dir: &std::path::Path) {
    let plain = server.fresh().await.unwrap();
    let url = |q: &str| format!("{plain}?{q}");
    // (what, query, encrypted)
    let cases = [
        ("no sslmode", String::new(), false),
        ("sslmode=disable", "sslmode=disable".to_string(), false),
        ("sslmode=require", "sslmode=require".to_string(), true),
        (
            "sslmode=verify-full with the site CA",
            format!("sslmode=verify-full&sslrootcert={}", ca.display()),
            true,
        ),
    ];
    for (what, q, want) in cases {
        let u = if q.is_empty() { plain.clone() } else { url(&q) };
        let db = PgDb::open(&u)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let facts = db.session().await.unwrap();
        assert_eq!(facts.ssl, want, "{what}");
        assert_eq!(facts.lock_timeout, "10s", "{what}");
        assert_eq!(facts.idle_in_transaction_session_timeout, "1min", "{what}");
    }
    // A CA that did not sign the server's certificate, and a name it does not carry.
    let other = dir.join("other");
    let other = kura_registry::tls::generate(&["127.0.0.1".into()], &other, 2).unwrap();
    let localhost = plain.replace("127.0.0.1", "localhost");
    let refused = [
        (
            "another CA",
            url(&format!(
                "sslmode=verify-full&sslrootcert={}",
                other.ca_cert.display()
            )),
            "certificate",
        ),
        (
            "a name the certificate does not carry",
            format!(
                "{localhost}?sslmode=verify-full&sslrootcert={}",
                ca.display()
            ),
            "certificate",
        ),
        (
            "verify-full without a CA",
            url("sslmode=verify-full"),
            "sslrootcert",
        ),
        ("verify-ca", url("sslmode=verify-ca"), "not supported"),
    ];
    for (what, u, says) in refused {
        let e = PgDb::open(&u)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: opened"));
        assert!(e.to_string().to_lowercase().contains(says), "{what}: {e}");
    }
}

/// Two registry processes on one database, four benches pushing at once, a fifth pulling all the
/// while: it ends with every event exactly once, no workstation's `seq` skipped. (On SQLite the
/// two processes share the file's write lock.)
async fn holes(url: &str, db: AnyDb, dir: &std::path::Path) {
    let procs = [Proc::start(url, &[], dir), Proc::start(url, &[], dir)];
    let regs: Vec<Reg> = procs.iter().map(|p| p.reg(&db)).collect();
    let per = 3000;
    let mut pushers = vec![];
    let mut ids = vec![];
    for i in 0..4 {
        let mut ws = enroll(&regs[i % 2], "NCGM", "G").await;
        let events = testkit::workload(
            &mut ws.bench,
            &format!("W{i}"),
            "G",
            1 + 100_000 * i as u64,
            per,
        );
        ids.push(ws.id);
        let bases = [regs[0].base.clone(), regs[1].base.clone()];
        pushers.push(tokio::spawn(async move {
            let http = kura_registry::http_client();
            for (k, chunk) in events.chunks(100).enumerate() {
                let r = http
                    .post(format!("{}/api/v1/events", bases[k % 2]))
                    .bearer_auth(&ws.token)
                    .body(body(ws.id, chunk))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
            }
        }));
    }
    let puller = enroll(&regs[0], "NCGM", "G").await;
    let bases = [regs[0].base.clone(), regs[1].base.clone()];
    let pull = tokio::spawn(async move {
        let http = kura_registry::http_client();
        let (mut after, mut got, mut k) = (0u64, Vec::<(u64, Uuid, u64, Uuid)>::new(), 0usize);
        while got.len() < 4 * per {
            let p: PullResponse = http
                .get(format!(
                    "{}/api/v1/events?after={after}&limit=137",
                    bases[k % 2]
                ))
                .bearer_auth(&puller.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            k += 1;
            got.extend(
                p.events
                    .iter()
                    .map(|e| (e.server_seq, e.event.workstation, e.event.seq, e.event.id)),
            );
            after = p.next;
            if !p.more {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        (got, k)
    });
    for p in pushers {
        p.await.unwrap();
    }
    let (got, pages) = tokio::time::timeout(Duration::from_secs(120), pull)
        .await
        .unwrap()
        .unwrap();
    eprintln!(
        "http: holes: {} events pulled in {pages} pages while 4 benches pushed",
        got.len()
    );
    assert_eq!(got.len(), 4 * per);
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "server_seq strictly rising"
    );
    let distinct: std::collections::HashSet<Uuid> = got.iter().map(|g| g.3).collect();
    assert_eq!(distinct.len(), got.len(), "no duplicate");
    for ws in ids {
        let seqs: Vec<u64> = got.iter().filter(|g| g.1 == ws).map(|g| g.2).collect();
        assert_eq!(
            seqs,
            (1..=per as u64).collect::<Vec<_>>(),
            "no gap in {ws}'s seq"
        );
    }
}

/// HTTPS with rustls: a self-signed certificate made by openssl, checked by curl.
#[tokio::test]
async fn tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let url = format!("sqlite://{}", dir.path().join("r.sqlite3").display());
    let p = Proc::start(
        &url,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        dir.path(),
    );
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .arg(format!("{}/health", p.base))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Plain HTTP to the TLS port is not answered as HTTP.
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(p.base.replace("https", "http") + "/health")
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "ok");
    // Without trusting the certificate, the client refuses.
    let untrusted = Command::new("curl")
        .args(["-sS"])
        .arg(format!("{}/health", p.base))
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
}

/// `kura-registry tls generate` makes a site CA and a server certificate that curl trusts through
/// the CA alone; the printed fingerprint is the CA certificate's (as openssl computes it); it
/// overwrites nothing. Plain HTTP off loopback is refused at start, and starts (logged) only with
/// --insecure-http.
#[tokio::test]
async fn generated_tls_and_plain_http_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tls");
    let generate = || {
        Command::new(BIN)
            .args([
                "tls",
                "generate",
                "--host",
                "127.0.0.1",
                "--host",
                "registry.example",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap()
    };
    let made = generate();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let printed = String::from_utf8_lossy(&made.stdout);
    let printed = printed
        .trim()
        .strip_prefix("CA fingerprint (SHA-256): ")
        .unwrap_or_else(|| panic!("{printed}"))
        .to_string();
    let openssl = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(out.join("ca.pem"))
        .output()
        .unwrap();
    let theirs = String::from_utf8_lossy(&openssl.stdout);
    assert_eq!(
        theirs.trim().rsplit('=').next().unwrap(),
        printed,
        "the printed fingerprint is the CA certificate's"
    );
    #[cfg(unix)]
    for key in ["ca.key", "key.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{key} is owner-only");
    }
    let again = generate();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let url = format!("sqlite://{}", dir.path().join("r.sqlite3").display());
    let (cert, key) = (out.join("cert.pem"), out.join("key.pem"));
    let p = Proc::start(
        &url,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        dir.path(),
    );
    let curl = |ca: &std::path::Path| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(ca)
            .arg(format!("{}/health", p.base))
            .output()
            .unwrap()
    };
    let ok = curl(&out.join("ca.pem"));
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "ok",
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Another site's CA does not vouch for this registry.
    let other = dir.path().join("other");
    let o = Command::new(BIN)
        .args(["tls", "generate", "--host", "127.0.0.1", "--out"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(!curl(&other.join("ca.pem")).status.success());
    drop(p);

    // Plain HTTP on every address: refused before it listens.
    let port = free_port();
    let refused = Command::new(BIN)
        .args([
            "--db",
            &url,
            "serve",
            "--listen",
            &format!("0.0.0.0:{port}"),
        ])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("refusing to serve plain HTTP"), "{err}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    // With --insecure-http it serves, and says so in its log.
    let log = dir.path().join("insecure.log");
    let mut child = Command::new(BIN)
        .args([
            "--db",
            &url,
            "serve",
            "--insecure-http",
            "--listen",
            &format!("0.0.0.0:{port}"),
        ])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("insecure-http"), "{log}");
}

/// A client on `from` (a loopback address of its own: the rate limits key on it).
fn client_from(from: &str) -> reqwest::Client {
    let _ = kura_registry::http_client();
    reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Slow and flooding clients are answered in bounded time and cost the others nothing: a body
/// that trickles gets 408 `body_timeout` when its deadline passes; an address past its rate gets
/// 429 `rate_limited` with Retry-After, and past its enrollment rate likewise, while a bench on
/// another address keeps pushing throughout. Every refusal is `{code, message}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_and_flooding_clients_are_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let db = AnyDb::from(SqliteDb::open(&dir.path().join("r.sqlite3")).unwrap());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let limits = kura_registry::Limits {
        body_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(20),
        per_ip_per_second: 2,
        per_ip_burst: 30,
        enroll_every: Duration::from_secs(600),
        enroll_burst: 3,
        ..kura_registry::Limits::default()
    };
    tokio::spawn(kura_registry::serve_with(l, db.clone(), limits, async {
        let _ = rx.await;
    }));
    let reg = Reg {
        base: format!("http://{addr}"),
        http: client_from("127.0.0.1"),
        db,
        stop: Some(tx),
    };
    let mut a = enroll(&reg, "NCGM", "G").await;
    let first = a.bench.events(&testkit::storage("1", &["BX1"]));
    assert_eq!(
        words(&push(&reg, &a, &first).await),
        vec!["accepted"; first.len()]
    );

    // A body that stops after one byte, from its own address, while A pushes.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut slow = socket.connect(addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /api/v1/events HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
            a.token
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let more = a.bench.events(&testkit::storage("2", &["BX2"]));
    assert_eq!(
        words(&push(&reg, &a, &more).await),
        vec!["accepted"; more.len()]
    );
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), slow.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(15));

    // A flood of unauthenticated requests from another address: refused once past its burst.
    let flood = client_from("127.0.0.2");
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..60 {
        let r = flood
            .get(format!("{}/api/v1/status", reg.base))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == StatusCode::TOO_MANY_REQUESTS && limited.is_none() {
            let retry = r.headers().get("retry-after").cloned();
            limited = Some((retry, r.json::<Value>().await.unwrap()));
        }
    }
    assert!(statuses.iter().take(25).all(|s| *s == 401), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 20,
        "{statuses:?}"
    );
    let (retry, body) = limited.unwrap();
    assert!(retry.is_some(), "Retry-After");
    assert_eq!(body["code"], "rate_limited", "{body}");
    // A's pushes are still served.
    let third = a.bench.events(&testkit::storage("3", &["BX3"]));
    assert_eq!(
        words(&push(&reg, &a, &third).await),
        vec!["accepted"; third.len()]
    );

    // Enrollment from a fourth address: three tries, then 429 (A enrolled from the first).
    let guesser = client_from("127.0.0.4");
    let mut codes = Vec::new();
    for _ in 0..5 {
        let r = guesser
            .post(format!("{}/api/v1/enroll", reg.base))
            .json(&json!({"v": 1, "code": "ABCD-EFGH-JKMN-PQRS-TVWX", "workstation": Uuid::now_v7(), "name": "x", "year": 2026}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        codes.push(v["code"].as_str().unwrap().to_string());
    }
    assert_eq!(
        codes,
        vec![
            "enroll_code_unknown",
            "enroll_code_unknown",
            "enroll_code_unknown",
            "rate_limited",
            "rate_limited"
        ]
    );
}
