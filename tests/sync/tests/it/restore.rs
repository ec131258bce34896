//! Backups put back: a registry restored from an older copy is sent what it lost; a bench
//! restored from an older backup (or with its log cut) forks, says so, and overwrites nothing.

use std::path::Path;

use kura_sync_tests::Registry;

use crate::{agree, register, register_loose, settle, site};

#[test]
fn a_registry_restored_from_an_older_copy_gets_back_what_it_lost() {
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::sqlite(d.path());
    let v = site(&reg, d.path(), &["a", "b"]);
    let (a, b) = (&v[0], &v[1]);
    register(a, 3, "BOX-0001");
    settle(&[a, b]);
    let copy = d.path().join("registry-yesterday.sqlite3");
    reg.backup(&copy);
    let (kept, _) = reg.counts();
    // A day's work reaches the registry …
    register(a, 5, "BOX-0002");
    register(b, 2, "BOX-0003");
    settle(&[a, b]);
    let (full, _) = reg.counts();
    assert!(full > kept);
    // … whose disk dies; last night's copy is put back.
    reg.kill();
    reg.restore(&copy);
    reg.restart();
    assert_eq!(reg.counts().0, kept, "the registry lost the day");
    settle(&[a, b]);
    assert_eq!(
        reg.counts(),
        (full, full),
        "every lost event sent again, once"
    );
    for x in [a, b] {
        let (n, gapless) = reg.stream(&x.workstation());
        assert_eq!(n, x.own_events());
        assert!(gapless);
    }
    agree(&reg, "NCGM", &[a, b]);
}

#[test]
fn a_bench_restored_from_an_older_backup_forks_and_overwrites_nothing() {
    // (what happens on the bench after the old copy is back, whether the new events reach past
    // the registry's head)
    for (what, new_events) in [
        ("restored, a little new work", 1u32),
        ("restored, more new work than was lost", 12),
    ] {
        let d = tempfile::tempdir().unwrap();
        let reg = Registry::sqlite(d.path());
        let v = site(&reg, d.path(), &["a"]);
        let a = &v[0];
        register(a, 2, "BOX-0001");
        a.sync_ok();
        let backup = d.path().join("a-backup.sqlite3");
        a.backup(&backup);
        register(a, 4, "BOX-0002");
        a.sync_ok();
        let at_registry = reg.counts();
        let head = reg.stream(&a.workstation()).0;
        // The disk is replaced and the backup restored: the last events are gone here.
        a.restore(&backup);
        let restored = a.own_events();
        assert!(restored < head, "{what}");
        register(a, new_events, "BOX-0003");
        let before = a.own_events();
        let e = a.sync().unwrap_err();
        assert_eq!(e["code"], "sequence_fork", "{what}: {e}");
        let st = a.status();
        assert_eq!(st["state"], "stopped", "{what}: {st}");
        assert!(
            st["stopped"].as_str().unwrap().contains("registry"),
            "{what}: {st}"
        );
        assert_eq!(
            reg.counts(),
            at_registry,
            "{what}: nothing changed at the registry"
        );
        assert_eq!(a.own_events(), before, "{what}: nothing changed here");
        // It stays stopped: the next round does not fork again or push anything.
        assert_eq!(a.sync().unwrap_err()["code"], "sequence_fork");
        assert_eq!(reg.counts(), at_registry, "{what}");
        a.verify_ok();
    }
}

/// How a scenario copies the registry's database and puts the copy back: `kura-registry
/// backup` and a file copy for SQLite; `pg_dump` and `pg_restore --clean`, as the README says,
/// for PostgreSQL.
pub enum Copies<'a> {
    Sqlite,
    Postgres {
        server: &'a kura_registry_postgres::throwaway::Throwaway,
        url: String,
    },
}

impl Copies<'_> {
    pub fn take(&self, reg: &Registry, to: &Path) {
        // Tonight's copy replaces last night's.
        let _ = std::fs::remove_file(to);
        match self {
            Copies::Sqlite => reg.backup(to),
            Copies::Postgres { server, url } => {
                let o = server
                    .client("pg_dump")
                    .args(["--format=custom", "-f", to.to_str().unwrap(), "-d", url])
                    .output()
                    .unwrap();
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            }
        }
    }

    /// Stops the registry, puts the copy back, starts it again.
    pub fn put_back(&self, reg: &mut Registry, from: &Path) {
        reg.kill();
        match self {
            Copies::Sqlite => reg.restore(from),
            Copies::Postgres { server, url } => {
                let o = server
                    .client("pg_restore")
                    .args([
                        "--clean",
                        "--if-exists",
                        "--no-owner",
                        "-d",
                        url,
                        from.to_str().unwrap(),
                    ])
                    .output()
                    .unwrap();
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            }
        }
        reg.restart();
    }
}

/// Issue 25, item 1 — the reproduction, kept: a registry restored from a copy older than what a
/// lagging bench already pulled. B pulled A's and C's newest events, then the registry lost them;
/// A and C send them again and the registry orders them anew, so the positions B holds name other
/// events in the new order. Every bench must end with every event (before the fix B and C ended
/// short of four, and `verify` passed on both): the pull notices the order changed under its
/// cursor and learns it again.
pub fn registry_restored_behind_a_lagging_bench(reg: &mut Registry, dir: &Path, copies: &Copies) {
    let v = site(reg, dir, &["a", "b", "c"]);
    let (a, b, c) = (&v[0], &v[1], &v[2]);
    // 1. A registers 12 tubes and everyone syncs; the registry is copied (a nightly backup).
    register(a, 11, "BOX-0001");
    settle(&[a, b, c]);
    let copy = dir.join("registry-nightly.copy");
    copies.take(reg, &copy);
    // 2. A registers 4, C registers 4, B syncs (it now holds A's and C's new events), A
    //    registers 40.
    register(a, 3, "BOX-0002");
    a.sync_ok();
    register(c, 3, "BOX-0003");
    c.sync_ok();
    b.sync_ok();
    register(a, 39, "BOX-0004");
    // 3. The registry is restored from the copy.
    copies.put_back(reg, &copy);
    // 4. Everyone syncs three times.
    let mut relearned = Vec::new();
    for _ in 0..3 {
        for x in [a, b, c] {
            if x.sync_ok()["relearned"] == true {
                relearned.push(x.name.clone());
            }
        }
    }
    assert!(
        relearned.contains(&"b".to_string()),
        "B learnt the order again: {relearned:?}"
    );
    let counts: Vec<i64> = [a, b, c].iter().map(|x| x.events()).collect();
    assert_eq!(counts, vec![counts[0]; 3], "every bench holds every event");
    assert_eq!(reg.counts().0, counts[0], "and so does the registry");
    agree(reg, "NCGM", &[a, b, c]);
}

/// Issue 25, item 6: a registry put back from a copy older than a lease grant and an enrollment.
/// The bench whose block it forgot claims it back at its next round (so no other bench is
/// leased it); the bench it forgot altogether is refused until it enrolls again with a new code,
/// then sends its whole stream again and claims its block back; no Kura ID is issued twice.
pub fn registry_restored_forgets_leases_and_an_enrollment(
    reg: &mut Registry,
    dir: &Path,
    copies: &Copies,
) {
    let v = site(reg, dir, &["a", "b"]);
    let (a, b) = (&v[0], &v[1]);
    let mut issued = register_loose(a, 9);
    settle(&[a, b]);
    let copy = dir.join("registry-nightly.copy");
    copies.take(reg, &copy);
    // After the copy: A uses most of its first block and is leased a second; C is enrolled.
    for _ in 0..6 {
        issued.extend(register_loose(a, 99));
    }
    assert!(a.sync_ok()["leased"].as_u64().unwrap() > 0);
    let c = kura_sync_tests::Bench::new(dir, "c");
    c.enroll(reg, "NCGM");
    issued.extend(register_loose(&c, 3));
    c.sync_ok();
    let c_events = c.own_events();
    copies.put_back(reg, &copy);
    // A claims back the block the registry forgot it had granted.
    let r = a.sync_ok();
    assert_eq!(r["leases_reclaimed"], 1, "{r}");
    assert_eq!(r["leases_dropped"], 0, "{r}");
    assert_eq!(a.sync_ok()["leases_reclaimed"], 0, "once");
    // C is unknown to the registry: refused, with nothing lost here.
    let e = c.sync().unwrap_err();
    assert_eq!(e["code"], "unauthorized", "{e}");
    assert_eq!(c.own_events(), c_events);
    // With a new code it enrolls again and sends its stream again. (Its block is its own again:
    // claimed back, or granted to it anew by the enrollment, the next after A's.)
    c.enroll(reg, "NCGM");
    let r = c.sync_ok();
    assert_eq!(r["pushed"].as_i64().unwrap(), c_events, "{r}");
    assert_eq!(r["leases_dropped"], 0, "{r}");
    // B needs new serials now and uses them: they come after every block claimed back.
    for _ in 0..12 {
        issued.extend(register_loose(b, 99));
        b.sync_ok();
    }
    for x in [a, &c] {
        for _ in 0..5 {
            issued.extend(register_loose(x, 99));
            x.sync_ok();
        }
    }
    settle(&[a, b, &c]);
    let mut unique = issued.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), issued.len(), "no Kura ID twice");
    assert_eq!(reg.specimens("NCGM").len(), issued.len());
    // Nor can one be: every block a bench may still issue from is listed by the registry as
    // that bench's, and as no other's.
    let leases = reg.query("SELECT first, last, workstation FROM leases WHERE year = 2026");
    let listed: Vec<(u64, u64, String)> = leases
        .iter()
        .map(|r| {
            (
                r[0].parse().unwrap(),
                r[1].parse().unwrap(),
                r[2].replace('-', "").to_lowercase(),
            )
        })
        .collect();
    for x in [a, b, &c] {
        let me = x.workstation().replace('-', "");
        let json: String = x
            .conn()
            .query_row("SELECT leases FROM sync_state", [], |r| r.get(0))
            .unwrap();
        let held: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        for blk in held {
            let (first, last, next) = (
                blk["first"].as_u64().unwrap(),
                blk["last"].as_u64().unwrap(),
                blk["next"].as_u64().unwrap(),
            );
            if next > last {
                continue;
            }
            let overlapping: Vec<&(u64, u64, String)> = listed
                .iter()
                .filter(|(f, l, _)| *f <= last && *l >= next)
                .collect();
            assert!(
                !overlapping.is_empty() && overlapping.iter().all(|(_, _, w)| *w == me),
                "bench {}: serials {next}–{last} (of {first}–{last}) leased to {overlapping:?}",
                x.name
            );
        }
    }
    agree(reg, "NCGM", &[a, b, &c]);
}

#[test]
fn a_registry_restored_from_before_a_lease_and_an_enrollment_issues_no_id_twice() {
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::sqlite(d.path());
    registry_restored_forgets_leases_and_an_enrollment(&mut reg, d.path(), &Copies::Sqlite);
}

#[test]
fn a_registry_restored_behind_a_lagging_bench_leaves_no_bench_short() {
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::sqlite(d.path());
    registry_restored_behind_a_lagging_bench(&mut reg, d.path(), &Copies::Sqlite);
}

/// A PostgreSQL registry backed up as the README says (`pg_dump --format=custom`), then more
/// pushes, then put back (`pg_restore --clean`): the benches send again what it lost, and every
/// event is there exactly once. Run by `on_postgresql`, on the suite's one server, with the
/// lagging-bench reproduction.
pub fn a_postgresql_registry_restored_from_a_dump_gets_back_what_it_lost(
    server: &kura_registry_postgres::throwaway::Throwaway,
    rt: &tokio::runtime::Runtime,
) {
    let url = rt.block_on(server.fresh()).unwrap();
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::start(&url, d.path());
    let copies = Copies::Postgres { server, url };
    let v = site(&reg, d.path(), &["a", "b"]);
    let (a, b) = (&v[0], &v[1]);
    register(a, 3, "BOX-0001");
    settle(&[a, b]);
    let dump = d.path().join("registry.dump");
    copies.take(&reg, &dump);
    let (kept, _) = reg.counts();
    register(a, 5, "BOX-0002");
    register(b, 2, "BOX-0003");
    settle(&[a, b]);
    let (full, _) = reg.counts();
    assert!(full > kept);
    copies.put_back(&mut reg, &dump);
    assert_eq!(reg.counts().0, kept, "the registry lost the day");
    settle(&[a, b]);
    assert_eq!(
        reg.counts(),
        (full, full),
        "every lost event sent again, once"
    );
    agree(&reg, "NCGM", &[a, b]);
    reg.kill();
    let url = rt.block_on(server.fresh()).unwrap();
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::start(&url, d.path());
    registry_restored_behind_a_lagging_bench(&mut reg, d.path(), &Copies::Postgres { server, url });
}

/// A bench's disk dies and its backup (`kura backup`, `kura restore`) goes onto a replacement.
/// The serials its leases still had at the copy are burned (the dead bench may have used them
/// after it); nothing is recorded before the first sync, which brings back what the dead bench
/// pushed after the copy; then its stream goes on from there (no `sequence_fork`), and across
/// 1,000 registrations there and 1,000 on another bench no Kura ID is issued twice.
#[test]
fn a_bench_restored_from_its_backup_continues_and_issues_no_id_twice() {
    let d = tempfile::tempdir().unwrap();
    bench_restored_from_its_backup(&Registry::sqlite(d.path()), d.path());
}

pub fn bench_restored_from_its_backup(reg: &Registry, dir: &Path) {
    let d = dir;
    let v = site(reg, d, &["a", "b"]);
    let (a, b) = (&v[0], &v[1]);
    register(a, 2, "BOX-0001");
    a.sync_ok();
    let taken = a.ok(&["backup", "--to", d.join("backups").to_str().unwrap()]);
    assert_eq!(taken["token"], true, "{taken}");
    // The day goes on after the backup (pushed), then the disk dies.
    let mut issued: Vec<String> = register(a, 9, "BOX-0002");
    a.sync_ok();
    issued.extend(register(b, 9, "BOX-0003"));
    let dead_head = reg.stream(&a.workstation()).0;
    let replacement = kura_sync_tests::Bench::new(d, "a-new");
    let r = replacement.ok(&["restore", taken["path"].as_str().unwrap()]);
    assert!(r["burned"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["unenrolled"], false, "{r}");
    assert_eq!(r["sync_first"], true, "{r}");
    let behind = replacement.own_events();
    assert!(behind < dead_head, "the copy is older than the registry");
    // Nothing is recorded before the first sync: it could reuse a seq the registry holds.
    let e = replacement
        .try_run(&["register", "--type", "BLD", "--study", "S", "--donor", "P"])
        .unwrap_err();
    assert_eq!(e["code"], "restored_sync_first", "{e}");
    assert!(e["message"].as_str().unwrap().contains("sync"), "{e}");
    let s = replacement.sync_ok();
    assert_eq!(
        s["recovered"].as_i64().unwrap(),
        dead_head - behind,
        "the first sync brings back what the dead bench pushed after the copy: {s}"
    );
    assert_eq!(replacement.own_events(), dead_head);
    replacement.verify_ok();
    // Its stream goes on; the other bench works at the same time.
    // (The window syncs every few seconds; here a sync after each batch brings new leases.)
    for _ in 0..20 {
        issued.extend(register_loose(&replacement, 49));
        issued.extend(register_loose(b, 49));
        replacement.sync_ok();
        b.sync_ok();
    }
    replacement.sync_ok();
    let (head, gapless) = reg.stream(&replacement.workstation());
    assert_eq!(
        head,
        replacement.own_events(),
        "every event of its stream at the registry"
    );
    assert!(gapless);
    let mut unique = issued.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), issued.len(), "no Kura ID twice");
    assert!(issued.len() > 2000, "{}", issued.len());
    assert_eq!(
        reg.specimens("NCGM").len(),
        replacement.specimens().len(),
        "the registry and the restored bench hold the same specimens"
    );
    agree(reg, "NCGM", &[&replacement, b]);
}

/// A bench's disk dies mid-day, with events it had not synced. The administrator makes a code for
/// a replacement PC; `kura recover` on a new data directory takes over the workstation: it says
/// how many events the registry had acknowledged, brings back its stream and the site's (its
/// history equals the registry's), goes on recording in the same stream, and the old PC's token
/// is refused from then on.
#[test]
fn a_dead_bench_is_recovered_from_the_registry_on_a_new_pc() {
    let d = tempfile::tempdir().unwrap();
    dead_bench_recovered(&Registry::sqlite(d.path()), d.path());
}

pub fn dead_bench_recovered(reg: &Registry, dir: &Path) {
    let d = dir;
    let v = site(reg, d, &["a", "b"]);
    let (a, b) = (&v[0], &v[1]);
    register(a, 5, "BOX-0001");
    register(b, 3, "BOX-0002");
    a.sync_ok();
    b.sync_ok();
    register(a, 2, "BOX-0001");
    a.sync_ok();
    // Recorded, never synced: gone with the disk.
    register(a, 1, "BOX-0003");
    let acknowledged = reg.stream(&a.workstation()).0;
    assert!(a.own_events() > acknowledged);
    let ws = a.workstation();
    // The old PC's files, as a thief or a forgotten spare would still have them.
    let ghost = kura_sync_tests::Bench::new(d, "ghost");
    std::fs::copy(&a.db, &ghost.db).unwrap();
    let token = |db: &std::path::Path| format!("{}.token", db.display());
    std::fs::copy(token(&a.db), token(&ghost.db)).unwrap();
    std::fs::remove_file(&a.db).unwrap();

    let code = reg.replacement_code("NCGM", &ws);
    let fresh = kura_sync_tests::Bench::new(&d.join("new-pc"), "a");
    // An ordinary code does not take over a workstation.
    let e = fresh
        .try_run(&["recover", &reg.code("NCGM"), "--registry", &reg.url()])
        .unwrap_err();
    assert_eq!(e["code"], "enroll_code_not_for_replacement", "{e}");
    let r = fresh
        .try_run(&[
            "recover",
            &code,
            "--registry",
            &reg.url(),
            "--name",
            "a-new",
        ])
        .unwrap();
    assert_eq!(r["workstation"], ws.as_str(), "{r}");
    assert_eq!(r["acknowledged"].as_i64().unwrap(), acknowledged, "{r}");
    assert_eq!(r["recovered"].as_i64().unwrap(), acknowledged, "{r}");
    assert!(r["sync_error"].is_null(), "{r}");
    assert!(r["last_seen"].is_i64(), "{r}");
    assert_eq!(fresh.workstation(), ws);
    assert_eq!(fresh.own_events(), acknowledged);
    fresh.verify_ok();
    b.sync_ok();
    agree(reg, "NCGM", &[&fresh, b]);
    // The old token is refused.
    let e = ghost.sync().unwrap_err();
    assert_eq!(e["code"], "unauthorized", "{e}");
    // The stream goes on from the new PC.
    register(&fresh, 4, "BOX-0004");
    fresh.sync_ok();
    b.sync_ok();
    let (head, gapless) = reg.stream(&ws);
    assert_eq!(head, fresh.own_events());
    assert!(gapless);
    agree(reg, "NCGM", &[&fresh, b]);
}

/// Issue 25, item 7: a bench one event kind ahead of its registry (the registry, started as a
/// build that does not know `thawed` yet, advertises the kinds it takes). The bench sends what
/// comes before the first thaw, holds the thaw and everything after it back (nothing refused,
/// nothing lost), says to upgrade the registry, and sends them after the registry's upgrade.
pub fn bench_ahead_of_its_registry(reg: &mut Registry, dir: &Path) {
    reg.kill();
    reg.env = vec![("KURA_REGISTRY_UNKNOWN_KINDS".into(), "thawed".into())];
    reg.restart();
    let v = site(reg, dir, &["a", "b"]);
    let (a, b) = (&v[0], &v[1]);
    let tubes = register(a, 3, "BOX-0001");
    let sent = a.own_events();
    a.ok(&["thaw", &tubes[0]]);
    register(a, 2, "BOX-0002");
    let e = a.sync().unwrap_err();
    assert_eq!(e["code"], "registry_outdated", "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("thawed") && msg.contains("Upgrade the registry"),
        "{msg}"
    );
    // What came before the thaw went through; the thaw and what follows wait, none refused.
    let waiting = a.status()["waiting"].as_i64().unwrap();
    assert_eq!(
        waiting,
        a.own_events() - sent,
        "the thaw and everything after it"
    );
    assert_eq!(reg.stream(&a.workstation()).0, sent, "up to the thaw");
    assert_eq!(a.status()["rejections"], 0);
    assert_eq!(
        a.sync().unwrap_err()["code"],
        "registry_outdated",
        "still waiting"
    );
    // The registry is upgraded.
    reg.kill();
    reg.env.clear();
    reg.restart();
    let r = a.sync_ok();
    assert_eq!(r["pushed"].as_i64().unwrap(), waiting, "{r}");
    b.sync_ok();
    assert_eq!(a.status()["waiting"], 0);
    agree(reg, "NCGM", &[a, b]);
}

#[test]
fn a_bench_one_event_kind_ahead_of_its_registry_holds_it_back_until_the_upgrade() {
    let d = tempfile::tempdir().unwrap();
    bench_ahead_of_its_registry(&mut Registry::sqlite(d.path()), d.path());
}

/// Issue 25: after a registry restore, another bench's event sent again lands exactly where it was
/// before, while the places below it now hold other events. A bench that had pulled past the copy
/// must not take that for agreement: the pull names the event's placement (when the registry
/// stored it), not only the event, and the bench learns the order again.
pub fn resent_event_lands_where_it_was(reg: &mut Registry, dir: &Path, copies: &Copies) {
    let v = site(reg, dir, &["a", "b", "c", "d"]);
    let (a, b, c, d) = (&v[0], &v[1], &v[2], &v[3]);
    let copy = dir.join("registry-copy");
    copies.take(reg, &copy);
    // C's three events, then D's one; B pulls all four.
    register(c, 1, "BOX-0003");
    c.sync_ok();
    register_loose(d, 0);
    d.sync_ok();
    b.sync_ok();
    // A works offline; the registry is put back.
    register(a, 1, "BOX-0001");
    copies.put_back(reg, &copy);
    // A's three events take the places C's had; D's one lands where it was.
    a.sync_ok();
    d.sync_ok();
    let r = b.sync_ok();
    assert_eq!(r["relearned"], true, "{r}");
    settle(&[a, b, c, d]);
    agree(reg, "NCGM", &[a, b, c, d]);
}

#[test]
fn an_event_sent_again_to_its_old_place_is_not_taken_for_agreement() {
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::sqlite(d.path());
    resent_event_lands_where_it_was(&mut reg, d.path(), &Copies::Sqlite);
}
