//! Benches and the registry together, as real processes: `kura` on SQLite files, `kura-registry`
//! on SQLite (and once on a throwaway PostgreSQL), and a proxy between them that breaks the
//! network in the ways a hospital network breaks. After each scenario the registry's database
//! is read directly: every event exactly once, none left behind on a bench.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bulk;
mod enroll;
mod faults;
mod property;
mod restore;
mod shipments;
mod users;

use std::path::Path;

use kura_sync_tests::{Bench, Registry};

pub const LAYOUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/demo/layout.toml");

/// A site `NCGM` (prefix NCG) with `names` benches enrolled; the first applies the storage layout
/// and every bench has pulled it.
pub fn site(reg: &Registry, dir: &Path, names: &[&str]) -> Vec<Bench> {
    reg.site("NCGM", "NCG");
    let benches: Vec<Bench> = names.iter().map(|n| Bench::new(dir, n)).collect();
    for b in &benches {
        b.enroll(reg, "NCGM");
    }
    benches[0].ok(&["storage", "apply", LAYOUT]);
    for b in &benches {
        b.sync_ok();
    }
    benches
}

pub fn register(b: &Bench, aliquots: u32, into: &str) -> Vec<String> {
    let n = aliquots.to_string();
    let r = b.ok(&[
        "register",
        "--type",
        "BLD",
        "--study",
        "がんゲノム研究",
        "--donor",
        "P-0001",
        "--quantity",
        "10",
        "--unit",
        "mL",
        "--aliquots",
        &n,
        "--aliquot-type",
        "PL1",
        "--aliquot-quantity",
        "0.5",
        "--into",
        into,
    ]);
    r["aliquots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Registers a parent with `aliquots` aliquots, placed nowhere; their Kura IDs, parent first.
pub fn register_loose(b: &Bench, aliquots: u32) -> Vec<String> {
    let n = aliquots.to_string();
    let r = b.ok(&[
        "register",
        "--type",
        "BLD",
        "--study",
        "S",
        "--donor",
        "P-0002",
        "--aliquots",
        &n,
    ]);
    let mut ids = vec![r["parent"].as_str().unwrap().to_string()];
    ids.extend(
        r["aliquots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string()),
    );
    ids
}

/// Every bench and the registry agree: the same exports, the same custody as the registry's
/// projection, `verify` passes, nothing waits to be sent.
pub fn agree(reg: &Registry, site: &str, benches: &[&Bench]) {
    let want = reg.specimens(site);
    for b in benches {
        assert_eq!(b.specimens(), want, "bench {} against the registry", b.name);
        assert_eq!(b.export(), benches[0].export(), "export of {}", b.name);
        b.verify_ok();
        assert_eq!(b.status()["waiting"], 0, "bench {} sent everything", b.name);
    }
    let (n, distinct) = reg.counts();
    assert_eq!(n, distinct, "no event twice in the registry");
}

/// Every bench syncs, round after round, until a whole pass moves nothing either way.
pub fn settle(benches: &[&Bench]) {
    for _ in 0..5 {
        let mut moved = 0;
        for b in benches {
            let r = b.sync_ok();
            moved += ["pulled", "pushed", "duplicates", "rejected"]
                .iter()
                .map(|k| r[k].as_u64().unwrap())
                .sum::<u64>();
        }
        if moved == 0 {
            return;
        }
    }
    panic!("the benches kept pushing and pulling");
}

fn two_benches_offline_then_sync(reg: &Registry, dir: &Path) {
    let v = site(reg, dir, &["a", "b"]);
    let (a, b) = (&v[0], &v[1]);
    // Another site's bench sees none of it.
    reg.site("NCNP", "NCN");
    let c = Bench::new(dir, "c");
    c.enroll(reg, "NCNP");
    // Offline: the registry is not even asked.
    let mine = register(a, 4, "BOX-0001");
    let theirs = register(b, 3, "BOX-0002");
    a.ok(&[
        "check-out",
        &mine[0],
        &mine[1],
        "--to",
        "Dr. Ito",
        "--purpose",
        "qc",
    ]);
    a.ok(&["move", &mine[2], "BOX-0003", "--position", "C4"]);
    b.ok(&[
        "check-out",
        &theirs[0],
        "--to",
        "Dr. Sato",
        "--due",
        "2099-12-24",
    ]);
    b.ok(&["return", &theirs[0], "--thawed"]);
    b.ok(&["move", &theirs[1], "BOX-0001", "--position", "I9"]);
    a.ok(&["return", &mine[1]]);
    settle(&[b, a]);
    agree(reg, "NCGM", &[a, b]);
    assert!(reg.conflicts("NCGM").is_empty(), "nothing disagreed");
    assert_eq!(a.specimens().len(), 2 + 7);
    c.sync_ok();
    assert!(c.specimens().is_empty(), "another site sees nothing");
    assert_eq!(c.events(), 0);
    assert!(reg.specimens("NCNP").is_empty());
}

#[test]
fn two_benches_work_offline_and_end_the_same() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    two_benches_offline_then_sync(&reg, d.path());
}

fn one_specimen_checked_out_at_two_benches(reg: &Registry, dir: &Path) {
    let v = site(reg, dir, &["a", "b"]);
    let (a, b) = (&v[0], &v[1]);
    let s = register(a, 1, "BOX-0001").remove(0);
    settle(&[a, b]);
    // Both offline: each checks the same tube out to someone else.
    a.ok(&["check-out", &s, "--to", "Dr. Ito"]);
    b.ok(&["check-out", &s, "--to", "Dr. Sato"]);
    settle(&[a, b]);
    for x in [a, b] {
        let show = x.ok(&["show", &s]);
        assert_eq!(
            show["in_conflict"], true,
            "bench {} shows the conflict",
            x.name
        );
        assert_eq!(
            show["holder"], "Dr. Ito",
            "the first in the site's order holds"
        );
        let list = x.ok(&["conflicts"]);
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list[0]["code"], "already_checked_out");
        assert_eq!(list[0]["other"]["payload"]["to"], "Dr. Ito");
        assert_eq!(list[0]["refused"]["payload"]["to"], "Dr. Sato");
    }
    let on_registry = reg.conflicts("NCGM");
    assert_eq!(on_registry.len(), 1);
    let refused = b.ok(&["conflicts"])[0]["refused"]["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(on_registry[0].2.contains(&refused), "the same two events");
    agree(reg, "NCGM", &[a, b]);
    // At A the supervisor finds the tube with Dr. Sato: keep B's event.
    let bad = a.try_run(&[
        "resolve",
        &s,
        "--keep",
        "01890a5d-ac96-774b-bcce-b302099a8057",
        "--reason",
        "x",
    ]);
    assert_eq!(
        bad.unwrap_err()["code"],
        "bad_input",
        "an event of another conflict"
    );
    a.ok(&[
        "resolve",
        &s,
        "--keep",
        &refused,
        "--reason",
        "found with Dr. Sato",
    ]);
    settle(&[a, b]);
    for x in [a, b] {
        let show = x.ok(&["show", &s]);
        assert_eq!(show["in_conflict"], false, "cleared on {}", x.name);
        assert_eq!(show["holder"], "Dr. Sato");
        assert_eq!(x.ok(&["conflicts"]).as_array().unwrap().len(), 0);
    }
    assert!(reg.conflicts("NCGM").is_empty(), "resolved at the registry");
    agree(reg, "NCGM", &[a, b]);
}

#[test]
fn a_conflict_shows_on_both_benches_and_one_resolution_clears_both() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    one_specimen_checked_out_at_two_benches(&reg, d.path());
}

#[test]
fn leased_ids_never_collide_and_run_out_clearly() {
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::sqlite(d.path());
    leases(&mut reg, d.path());
}

fn leases(reg: &mut Registry, dir: &Path) {
    let v = site(reg, dir, &["a", "b"]);
    let (a, b) = (&v[0], &v[1]);
    // Offline (an online bench short of IDs leases more: see bulk.rs), 1,000 specimens each
    // (a parent and 499 aliquots, twice).
    reg.kill();
    let mut ids = Vec::new();
    for x in [a, b] {
        for _ in 0..2 {
            let r = x.ok(&[
                "register",
                "--type",
                "BLD",
                "--study",
                "S",
                "--donor",
                "P",
                "--aliquots",
                "499",
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
        // The lease is used up: the next ID is refused, clearly, and nothing is written.
        let before = x.events();
        let e = x
            .try_run(&["register", "--type", "BLD", "--study", "S", "--donor", "P"])
            .unwrap_err();
        assert_eq!(e["code"], "no_serials_left", "{e}");
        assert!(e["message"].as_str().unwrap().contains("sync"), "{e}");
        assert_eq!(x.events(), before);
        assert_eq!(x.status()["ids_left"], 0);
        assert_eq!(x.status()["ids_low"], true);
    }
    assert_eq!(ids.len(), 2000);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 2000, "no ID issued twice");
    reg.restart();
    settle(&[a, b]);
    // Online again, each leases another block and issues from it.
    for x in [a, b] {
        assert!(x.status()["ids_left"].as_u64().unwrap() >= 1000);
        x.ok(&["register", "--type", "BLD", "--study", "S", "--donor", "P"]);
    }
    settle(&[a, b]);
    let registered = reg.specimens("NCGM");
    assert_eq!(registered.len(), 2002, "every ID once at the registry");
    agree(reg, "NCGM", &[a, b]);
}

/// The same scenarios on the production store, one throwaway PostgreSQL for the whole run.
#[test]
fn on_postgresql() {
    let server = kura_registry_postgres::throwaway::Throwaway::start(false)
        .expect("a throwaway PostgreSQL (scripts/setup installs it)");
    let rt = tokio::runtime::Runtime::new().unwrap();
    for scenario in [
        two_benches_offline_then_sync as fn(&Registry, &Path),
        one_specimen_checked_out_at_two_benches,
        faults::faults_on_the_way,
        restore::bench_restored_from_its_backup,
        restore::dead_bench_recovered,
        shipments::ten_tubes_from_a_to_b,
    ] {
        let url = rt.block_on(server.fresh()).unwrap();
        let d = tempfile::tempdir().unwrap();
        let reg = Registry::start(&url, d.path());
        scenario(&reg, d.path());
    }
    for steps in [
        property::regression_steps,
        property::restore_steps,
        restore::registry_restored_forgets_leases_and_an_enrollment,
        restore::resent_event_lands_where_it_was,
        |reg: &mut Registry, dir: &Path, _: &restore::Copies| {
            restore::bench_ahead_of_its_registry(reg, dir)
        },
        shipments::shipment_survives_a_restored_registry,
        |reg: &mut Registry, dir: &Path, _: &restore::Copies| leases(reg, dir),
        |reg: &mut Registry, dir: &Path, _: &restore::Copies| bulk::intake(reg, dir),
    ] {
        let url = rt.block_on(server.fresh()).unwrap();
        let d = tempfile::tempdir().unwrap();
        let mut reg = Registry::start(&url, d.path());
        steps(
            &mut reg,
            d.path(),
            &restore::Copies::Postgres {
                server: &server,
                url,
            },
        );
    }
    restore::a_postgresql_registry_restored_from_a_dump_gets_back_what_it_lost(&server, &rt);
}

#[test]
fn a_rejected_event_is_kept_shown_and_does_not_block_the_stream() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    let v = site(&reg, d.path(), &["a"]);
    let a = &v[0];
    // A tube pre-labelled with another site's Kura ID: the registry refuses it as wrong_site.
    let foreign = a.ok(&["id", "check-char", "NCN260000001"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    a.ok(&[
        "register", "--type", "SER", "--study", "S", "--donor", "P", "--code", &foreign,
    ]);
    let after = register(a, 2, "BOX-0001");
    let r = a.sync_ok();
    assert_eq!(r["rejected"], 1, "{r}");
    let st = a.status();
    assert_eq!(
        (st["rejections"].clone(), st["waiting"].clone()),
        (1.into(), 0.into())
    );
    let list = a.ok(&["sync", "rejections"]);
    assert_eq!(list[0]["code"], "wrong_site", "{list}");
    assert_eq!(list[0]["kind"], "registered");
    // The events after it reached the registry.
    assert!(reg.specimens("NCGM").contains_key(&after[0]));
    assert!(!reg.specimens("NCGM").contains_key(&foreign));
    // Sent again, it is answered the same and still shown once.
    a.ok(&["register", "--type", "SER", "--study", "S", "--donor", "P"]);
    a.sync_ok();
    assert_eq!(a.status()["rejections"], 1);
}

/// Issue 26: a workstation at its site's daily limit of serials is refused a lease, and the round
/// still pushes and pulls (a lease refusal never stops sync); the next day's lease comes again.
#[test]
fn a_lease_refused_at_the_daily_limit_does_not_stop_sync() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    let v = site(&reg, d.path(), &["a"]);
    let a = &v[0];
    reg.admin(&["site", "limits", "NCGM", "--daily-serials", "1000"]);
    // Below the bench's low mark: the next round asks for more, over today's limit.
    for _ in 0..6 {
        register_loose(a, 99);
    }
    let r = a.sync_ok();
    assert_eq!(r["lease_refused"], "serials_quota", "{r}");
    assert!(r["pushed"].as_u64().unwrap() >= 600, "{r}");
    assert_eq!(a.status()["waiting"], 0);
    agree(&reg, "NCGM", &[a]);
}
