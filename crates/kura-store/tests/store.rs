//! The store's own net, as tables: `Tx::append` (what is written, what a refusal leaves),
//! the projector (the custody state each step leaves), `verify` (each kind of tampering found)
//! and `rebuild` (the projection restored). Real SQLite files.

use std::path::Path;

use kura_domain::{Custody, EventBody, SpecimenCode, Timestamp};
use kura_store::{Store, StoreError};
use kura_testkit::{self as kit, at, create};
use uuid::Uuid;

// The tests' own numbering over the shared builders: specimen n is TST26000000n, checked out
// to Dr. Sato.
fn sid(n: u32) -> SpecimenCode {
    kit::specimen("TST", n.into())
}
fn register(n: u32) -> EventBody {
    kit::register(&sid(n), None)
}
fn check_in(n: u32, c: &str, r: u16, col: u16) -> EventBody {
    kit::check_in(&sid(n), at(c, r, col))
}
fn check_out(n: u32) -> EventBody {
    kit::check_out(&sid(n), "Dr. Sato")
}

const WORLD: fn() -> Vec<EventBody> = || kit::storage("1", &["BX1"]);

fn open(dir: &Path) -> Store {
    Store::open(dir.join("kura.sqlite3"), Uuid::now_v7).unwrap()
}

fn count(store_path: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(store_path).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Appends each event in its own transaction: "" for accepted, else the refusal's code.
fn steps(store: &mut Store, steps: &[(EventBody, &str)]) {
    let mut t = 0i64;
    for (i, (body, want)) in steps.iter().enumerate() {
        t += 1;
        let got = store.write(|tx| -> Result<(), StoreError> {
            tx.append(Uuid::now_v7(), "tester", Timestamp(t), body.clone())?;
            Ok(())
        });
        let code = got.err().map(|e| e.code()).unwrap_or("");
        assert_eq!(code, *want, "step {i}: {body:?}");
    }
}

#[test]
fn append_writes_event_and_projection_or_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut s = open(d.path());
    let db = d.path().join("kura.sqlite3");
    let mut table: Vec<(EventBody, &str)> = WORLD().into_iter().map(|e| (e, "")).collect();
    table.extend([
        (register(1), ""),
        (register(1), "already_registered"),
        (check_in(1, "BX1", 0, 0), ""),
        (register(2), ""),
        (check_in(2, "BX1", 0, 0), "position_occupied"),
        (check_in(2, "NOPE", 0, 0), "unknown_container"),
        (check_in(2, "BX1", 20, 0), "bad_position"),
        (check_in(2, "R1", 0, 1), "not_for_specimens"),
        (check_out(2), "not_in_storage"),
        (check_out(1), ""),
        (check_in(2, "BX1", 0, 0), "position_occupied"),
        (check_out(1), "already_checked_out"),
        (
            EventBody::Returned {
                specimen: sid(1),
                thawed: true,
            },
            "",
        ),
        (EventBody::Thawed { specimen: sid(9) }, "unknown_specimen"),
    ]);
    steps(&mut s, &table);
    let accepted = table.iter().filter(|(_, w)| w.is_empty()).count() as i64;
    assert_eq!(count(&db, "SELECT count(*) FROM events"), accepted);
    assert_eq!(
        s.stats().unwrap().to_sync,
        accepted,
        "every accepted event is past the high-water mark until it is pushed"
    );
    assert_eq!(
        count(&db, "SELECT max(seq) FROM events"),
        accepted,
        "seq is gapless: refusals take no number"
    );
    // A refusal inside a transaction leaves it usable: the next append still commits.
    s.write(|tx| -> Result<(), StoreError> {
        let refused = tx.append(Uuid::now_v7(), "t", Timestamp(99), register(1));
        assert_eq!(refused.err().map(|e| e.code()), Some("already_registered"));
        tx.append(Uuid::now_v7(), "t", Timestamp(99), register(3))?;
        Ok(())
    })
    .unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM events"), accepted + 1);
}

#[test]
fn the_projector_leaves_exactly_the_state_of_each_step() {
    let d = tempfile::tempdir().unwrap();
    let mut s = open(d.path());
    let mut world: Vec<(EventBody, &str)> = WORLD().into_iter().map(|e| (e, "")).collect();
    world.push((register(1), ""));
    steps(&mut s, &world);
    let table: Vec<(EventBody, Custody)> = vec![
        (
            check_in(1, "BX1", 2, 3),
            Custody::Stored {
                at: at("BX1", 2, 3),
            },
        ),
        (
            EventBody::Moved {
                specimen: sid(1),
                from: at("BX1", 2, 3),
                to: at("BX1", 0, 1),
            },
            Custody::Stored {
                at: at("BX1", 0, 1),
            },
        ),
        (
            check_out(1),
            Custody::CheckedOut {
                held: at("BX1", 0, 1),
                holder: "Dr. Sato".into(),
                due: None,
            },
        ),
        (
            EventBody::Returned {
                specimen: sid(1),
                thawed: false,
            },
            Custody::Stored {
                at: at("BX1", 0, 1),
            },
        ),
        (
            EventBody::Shipped {
                specimen: sid(1),
                shipment: "SH1".into(),
                destination: "NCC".into(),
            },
            Custody::InTransit,
        ),
        (
            EventBody::Received {
                specimen: sid(1),
                shipment: "SH1".into(),
                location: None,
            },
            Custody::Received,
        ),
        (
            EventBody::Disposed {
                specimen: sid(1),
                reason: "end of study".into(),
            },
            Custody::Disposed,
        ),
    ];
    for (i, (body, want)) in table.into_iter().enumerate() {
        steps(&mut s, &[(body.clone(), "")]);
        let got = s
            .write(|tx| -> Result<_, StoreError> { tx.specimen(&sid(1)) })
            .unwrap()
            .unwrap();
        assert_eq!(got.custody, want, "step {i}: {body:?}");
    }
    assert!(s.verify(&mut |_, _| {}).unwrap().ok());
}

/// A store with some history, closed; returns its path.
fn history(dir: &Path) -> std::path::PathBuf {
    let mut s = open(dir);
    let mut t: Vec<(EventBody, &str)> = WORLD().into_iter().map(|e| (e, "")).collect();
    t.extend([
        (register(1), ""),
        (check_in(1, "BX1", 0, 0), ""),
        (register(2), ""),
        (check_in(2, "BX1", 0, 1), ""),
        (check_out(2), ""),
        (
            EventBody::UserAdded {
                user: "sato".into(),
                name: "佐藤 花子".into(),
                role: kura_domain::Role::Technician,
                badge: Some("USR-0042".into()),
            },
            "",
        ),
        (
            EventBody::CredentialSet {
                user: "sato".into(),
                secret: kura_domain::Secret::Password,
                hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                key: None,
            },
            "",
        ),
        (
            EventBody::RoleGranted {
                user: "sato".into(),
                role: kura_domain::Role::Supervisor,
            },
            "",
        ),
    ]);
    steps(&mut s, &t);
    assert!(s.verify(&mut |_, _| {}).unwrap().ok());
    dir.join("kura.sqlite3")
}

/// [`history`] in `dir`, then `sql` run on it behind Kura's back; the store opened again.
fn tampered(dir: &Path, sql: &str) -> Store {
    let db = history(dir);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
    Store::open(&db, Uuid::now_v7).unwrap()
}

#[test]
fn verify_finds_each_kind_of_tampering_and_rebuild_repairs_the_projection() {
    // (what was done behind Kura's back, the problem verify must report, rebuild repairs it)
    let cases: &[(&str, &str, bool)] = &[
        (
            "DROP TRIGGER events_append_only_update",
            "append_only_guard_missing",
            false,
        ),
        (
            "DROP TRIGGER events_append_only_update; UPDATE events SET actor = 'mallory' WHERE seq = 3",
            "hash_mismatch",
            false,
        ),
        (
            "DROP TRIGGER events_append_only_delete; DELETE FROM events WHERE seq = 9",
            "sequence_gap",
            false,
        ),
        (
            "UPDATE specimens SET freeze_thaw = 7 WHERE id = 1",
            "projection_differs",
            true,
        ),
        ("DELETE FROM event_subjects", "projection_differs", true),
        (
            // An impossible state: checked out, with nobody holding it.
            "UPDATE specimens SET holder = NULL WHERE status = 'checked_out'",
            "projection_differs",
            true,
        ),
        // Users: a role or a password hash edited in the file, or the event that granted it.
        (
            "UPDATE users SET role = 'administrator' WHERE code = 'sato'",
            "projection_differs",
            true,
        ),
        (
            "UPDATE users SET password = '$argon2id$v=19$m=19456,t=2,p=1$bWluZQ$bWluZQ' WHERE code = 'sato'",
            "projection_differs",
            true,
        ),
        (
            "DROP TRIGGER events_append_only_update; UPDATE events SET payload = replace(payload, 'supervisor', 'administrator') WHERE payload LIKE '%role_granted%'",
            "hash_mismatch",
            false,
        ),
    ];
    for (sql, want, repairable) in cases {
        let d = tempfile::tempdir().unwrap();
        let mut s = tampered(d.path(), sql);
        let report = s.verify(&mut |_, _| {}).unwrap();
        let codes: Vec<&str> = report.problems.iter().map(|p| p.code).collect();
        assert!(codes.contains(want), "{sql}: {codes:?}");
        if *repairable {
            s.rebuild(&mut |_, _| {}).unwrap();
            let after = s.verify(&mut |_, _| {}).unwrap();
            assert!(after.ok(), "{sql}: after rebuild {:?}", after.problems);
        }
    }
}

/// `verify` compares the kept projection with a rebuild as two sorted streams: each change made
/// behind Kura's back is named by its table and the row's key, and an untouched database has
/// none.
#[test]
fn verify_names_the_table_and_row_that_differ() {
    // (what was done behind Kura's back, what one `projection_differs` problem must say)
    let cases: &[(&str, &[&str])] = &[
        (
            "UPDATE specimens SET donor = 'D-X' WHERE code = (SELECT min(code) FROM specimens)",
            &["table specimens", "TST"],
        ),
        (
            "DELETE FROM specimens WHERE code = (SELECT max(code) FROM specimens)",
            &["table specimens", "TST"],
        ),
        (
            "INSERT INTO specimens SELECT 999, 'ZZZ-EXTRA', sample_type, primary_container, storage_code,
                 material, qty_milli, unit, study, donor, collected_at, registered_at, parent, freeze_thaw,
                 status, blocked, in_conflict, NULL, NULL, NULL, holder, due, updated_at, last_event
             FROM specimens LIMIT 1",
            &["table specimens", "ZZZ-EXTRA"],
        ),
        (
            "UPDATE containers SET path = 'elsewhere' WHERE code = 'BX1'",
            &["table containers", "BX1"],
        ),
        (
            "INSERT INTO label_prints (code, prints, last) VALUES ('NEVER-PRINTED', 3, 1)",
            &["table label_prints", "NEVER-PRINTED"],
        ),
        // A history row whose specimen is not there.
        (
            "INSERT INTO event_subjects (specimen, event) VALUES (424242, 1)",
            &["table event_subjects", "424242"],
        ),
        (
            "DELETE FROM event_subjects WHERE event = (SELECT max(event) FROM event_subjects)",
            &["table event_subjects"],
        ),
        (
            "INSERT INTO conflicts (event, subject, code, message) VALUES (1, 'SUBJECT-X', 'x', 'x')",
            &["table conflicts", "SUBJECT-X"],
        ),
    ];
    for (sql, want) in cases {
        let d = tempfile::tempdir().unwrap();
        let s = tampered(d.path(), sql);
        let report = s.verify(&mut |_, _| {}).unwrap();
        let differs: Vec<&str> = report
            .problems
            .iter()
            .filter(|p| p.code == "projection_differs")
            .map(|p| p.message.as_str())
            .collect();
        assert!(
            differs.iter().any(|m| want.iter().all(|w| m.contains(w))),
            "{sql}: no problem says {want:?}: {:?}",
            report.problems
        );
        // Verify changed nothing and left no scratch database behind.
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".verify-"))
            .collect();
        assert!(left.is_empty(), "{sql}: left {left:?}");
    }
}

/// `verify` takes no lock: it reads a snapshot while another connection is in the middle of a
/// write (the window recording a check-in), and sees that write once it is committed.
#[test]
fn verify_reads_a_snapshot_while_another_connection_writes() {
    let d = tempfile::tempdir().unwrap();
    let db = history(d.path());
    let s = Store::open(&db, Uuid::now_v7).unwrap();
    let writer = rusqlite::Connection::open(&db).unwrap();
    writer
        .execute_batch("BEGIN IMMEDIATE; UPDATE specimens SET donor = 'D-Y' WHERE id = 1")
        .unwrap();
    let during = s.verify(&mut |_, _| {}).unwrap();
    assert!(during.ok(), "{:?}", during.problems);
    writer.execute_batch("COMMIT").unwrap();
    let after = s.verify(&mut |_, _| {}).unwrap();
    assert!(
        after
            .problems
            .iter()
            .any(|p| p.code == "projection_differs"),
        "{:?}",
        after.problems
    );
}

/// `verify` without `--full` goes on from the last verified point: it finds an edit of an event
/// written after that point and an edit of the point's own last event; an edit of an older
/// event is left to `--full`, which finds it, as it finds a projection row changed.
#[test]
fn incremental_verify_checks_what_came_after_the_last_verified_point() {
    // Guards are put back after each edit: only the edit itself is to be found.
    const GUARD: &str = "CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'custody events are append-only: they are never updated'); END;";
    // (edit made behind Kura's back after more events were written, problem found without
    // --full (None: nothing found), problem found with --full)
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        ("", None, None),
        (
            "UPDATE events SET actor = 'mallory' WHERE id = (SELECT max(id) FROM events)",
            Some("hash_mismatch"),
            Some("hash_mismatch"),
        ),
        (
            "UPDATE events SET actor = 'mallory' WHERE seq = 3",
            None,
            Some("hash_mismatch"),
        ),
        (
            "UPDATE events SET hash = zeroblob(32) WHERE id = (SELECT event FROM point)",
            Some("hash_mismatch"),
            Some("hash_mismatch"),
        ),
        (
            "UPDATE specimens SET donor = 'D-X' WHERE id = 1",
            None,
            Some("projection_differs"),
        ),
    ];
    for (edit, incremental, full) in cases {
        let d = tempfile::tempdir().unwrap();
        let db = history(d.path()); // ends with a full verify: the point
        let mut s = Store::open(&db, Uuid::now_v7).unwrap();
        let point = s
            .verified_point()
            .unwrap()
            .expect("a clean verify records its point");
        assert!(point.full);
        steps(&mut s, &[(register(3), ""), (check_in(3, "BX1", 1, 0), "")]);
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(&format!(
            "CREATE TEMP TABLE point AS SELECT {} AS event;
             DROP TRIGGER events_append_only_update; {edit}; {GUARD}",
            point.event
        ))
        .unwrap();
        let r = s.verify_from(false, &mut |_, _| {}).unwrap();
        assert_eq!(
            r.since.as_ref().map(|p| p.event),
            Some(point.event),
            "{edit}"
        );
        assert!(!r.full);
        let codes: Vec<&str> = r.problems.iter().map(|p| p.code).collect();
        match incremental {
            None => {
                assert!(codes.is_empty(), "{edit}: {codes:?}");
                assert_eq!(
                    r.events, 2,
                    "{edit}: only the events after the point are read"
                );
            }
            Some(want) => assert!(codes.contains(want), "{edit}: {codes:?}"),
        }
        let r = s.verify_from(true, &mut |_, _| {}).unwrap();
        let codes: Vec<&str> = r.problems.iter().map(|p| p.code).collect();
        match full {
            None => assert!(codes.is_empty(), "{edit}: --full {codes:?}"),
            Some(want) => assert!(codes.contains(want), "{edit}: --full {codes:?}"),
        }
    }
}

#[test]
fn rebuild_reproduces_the_projection_exactly() {
    let d = tempfile::tempdir().unwrap();
    let db = history(d.path());
    let dump = |db: &Path| -> Vec<String> {
        let c = rusqlite::Connection::open(db).unwrap();
        let mut out = Vec::new();
        for t in [
            "specimens",
            "containers",
            "event_subjects",
            "label_prints",
            "users",
        ] {
            let mut st = c
                .prepare(&format!("SELECT * FROM {t} ORDER BY 1, 2"))
                .unwrap();
            let n = st.column_count();
            let rows = st
                .query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            r.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap();
            for r in rows {
                out.push(format!("{t}: {}", r.unwrap().join("|")));
            }
        }
        out
    };
    let before = dump(&db);
    let mut s = Store::open(&db, Uuid::now_v7).unwrap();
    let r = s.rebuild(&mut |_, _| {}).unwrap();
    assert_eq!(r.specimens, 2);
    drop(s);
    assert_eq!(dump(&db), before);
}

/// A signature verifies against its signer's key at its point of the log, or `verify` says
/// `signature_invalid`: another key, another meaning or time than signed, no signature from a
/// signer who has a key. A bench that writes its own events (a hand-edited database) cannot
/// make a signature that passes without the signer's password-derived key.
#[test]
fn verify_checks_every_signature_against_its_signers_key() {
    use kura_domain::sign::{PublicKey, SigningKey, message};
    let sato = SigningKey::from_seed(&[1; 32]).unwrap();
    let mallory = SigningKey::from_seed(&[2; 32]).unwrap();
    let published = |k: &SigningKey| PublicKey {
        ed25519: k.public_hex(),
        salt: "00".repeat(16),
    };
    // (what, key that signs (None: no signature), meaning signed, time signed, problem)
    type Case<'a> = (
        &'a str,
        Option<&'a SigningKey>,
        Meaning,
        i64,
        Option<&'a str>,
    );
    use kura_domain::Meaning;
    let cases: Vec<Case> = vec![
        (
            "signed with the signer's key",
            Some(&sato),
            Meaning::Approved,
            0,
            None,
        ),
        (
            "signed with another key",
            Some(&mallory),
            Meaning::Approved,
            0,
            Some("signature_invalid"),
        ),
        (
            "signed for another meaning",
            Some(&sato),
            Meaning::Reviewed,
            0,
            Some("signature_invalid"),
        ),
        (
            "signed at another time",
            Some(&sato),
            Meaning::Approved,
            1,
            Some("signature_invalid"),
        ),
        (
            "no signature from a signer with a key",
            None,
            Meaning::Approved,
            0,
            Some("signature_invalid"),
        ),
    ];
    for (what, key, meaning, shift, want) in cases {
        let d = tempfile::tempdir().unwrap();
        let mut s = open(d.path());
        steps(
            &mut s,
            &[
                (
                    EventBody::UserAdded {
                        user: "sato".into(),
                        name: "Sato".into(),
                        role: kura_domain::Role::Supervisor,
                        badge: None,
                    },
                    "",
                ),
                (
                    EventBody::CredentialSet {
                        user: "sato".into(),
                        secret: kura_domain::Secret::Password,
                        hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                        key: Some(published(&sato)),
                    },
                    "",
                ),
            ],
        );
        // A point between the key's publication and the signature: the incremental verify
        // below learns the key from before it.
        assert!(s.verify(&mut |_, _| {}).unwrap().ok());
        let target = Uuid::now_v7();
        s.write(|tx| -> Result<(), StoreError> {
            tx.append(
                target,
                "sato",
                Timestamp(100),
                create("SITE9", "site", None, None),
            )?;
            let hash = tx.event_hash(target)?.unwrap().to_string();
            let at = 200;
            let signature = key.map(|k| k.sign(&message(&hash, meaning, at + shift)));
            tx.append(
                Uuid::now_v7(),
                "sato",
                Timestamp(at),
                EventBody::Signed {
                    event: target,
                    event_hash: hash,
                    signer: "sato".into(),
                    name: "Sato".into(),
                    meaning: Meaning::Approved,
                    signature,
                },
            )?;
            Ok(())
        })
        .unwrap();
        let report = s.verify_from(false, &mut |_, _| {}).unwrap();
        assert!(report.since.is_some(), "{what}");
        let codes: Vec<&str> = report.problems.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            want.into_iter().collect::<Vec<_>>(),
            "{what}: incremental"
        );
        let report = s.verify(&mut |_, _| {}).unwrap();
        let codes: Vec<&str> = report.problems.iter().map(|p| p.code).collect();
        assert_eq!(codes, want.into_iter().collect::<Vec<_>>(), "{what}");
    }
}

/// A push batch never ends between an act and the signature that follows it: the registry
/// judges them together.
#[test]
fn a_push_batch_keeps_an_act_with_its_signature() {
    let d = tempfile::tempdir().unwrap();
    let mut s = open(d.path());
    let target = Uuid::now_v7();
    s.write(|tx| -> Result<(), StoreError> {
        tx.append(
            Uuid::now_v7(),
            "t",
            Timestamp(1),
            create("SITE8", "site", None, None),
        )?;
        tx.append(
            target,
            "t",
            Timestamp(2),
            create("SITE9", "site", None, None),
        )?;
        let hash = tx.event_hash(target)?.unwrap().to_string();
        tx.append(
            Uuid::now_v7(),
            "t",
            Timestamp(3),
            EventBody::Signed {
                event: target,
                event_hash: hash,
                signer: "sato".into(),
                name: "Sato".into(),
                meaning: kura_domain::Meaning::Approved,
                signature: None,
            },
        )?;
        Ok(())
    })
    .unwrap();
    // (at most this many events, the seqs sent)
    for (max, want) in [
        (1, vec![1]),
        (2, vec![1]),
        (3, vec![1, 2, 3]),
        (9, vec![1, 2, 3]),
    ] {
        let got: Vec<u64> = s
            .own_events(1, max, 1 << 20)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(got, want, "at most {max}");
    }
}

/// A sync round and a backup check open a database that is there; they never make one.
#[test]
fn open_existing_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kura.sqlite3");
    let err = Store::open_existing(&db).err().expect("no database yet");
    assert_eq!(err.code(), "store_io", "{err}");
    assert!(!db.exists(), "open_existing made {}", db.display());
    let ws = Uuid::now_v7();
    drop(Store::open(&db, || ws).unwrap());
    assert_eq!(Store::open_existing(&db).unwrap().workstation(), ws);
    // The id is taken once: opening again keeps the first.
    assert_eq!(Store::open(&db, Uuid::now_v7).unwrap().workstation(), ws);
}

/// A shipment's manifest is kept as one row, its tubes go in transit, and a rebuild from the log
/// gives the same (verify compares the shipments table too).
#[test]
fn a_dispatched_shipment_is_projected_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    let mut steps_: Vec<(EventBody, &str)> = WORLD().into_iter().map(|b| (b, "")).collect();
    let shipment = kura_domain::Shipment {
        id: "SHP-0a1b2c3d-1".into(),
        destination: kura_domain::Destination::Site {
            code: "NCNP".into(),
        },
        specimens: vec![sid(1), sid(2)],
        coolant: kura_domain::Coolant::DryIce,
        dry_ice_grams: Some(5_500),
        courier: Some("Yamato".into()),
        tracking: Some("1234-5678".into()),
        logger: None,
        packed: vec![],
        carries: vec![],
        mta: None,
    };
    let shipped = |n: u32| EventBody::Shipped {
        specimen: sid(n),
        shipment: "SHP-0a1b2c3d-1".into(),
        destination: "site:NCNP".into(),
    };
    steps_.extend([
        (register(1), ""),
        (check_in(1, "BX1", 0, 0), ""),
        (register(2), ""),
        (check_in(2, "BX1", 0, 1), ""),
        (
            EventBody::ShipmentDispatched {
                shipment: shipment.clone(),
            },
            "",
        ),
        (shipped(1), ""),
        (shipped(2), ""),
        (shipped(2), "not_in_storage"),
    ]);
    steps(&mut s, &steps_);
    let db = dir.path().join("kura.sqlite3");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM shipments WHERE code = 'SHP-0a1b2c3d-1' AND tubes = 2 AND destination = 'site:NCNP'"
        ),
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM specimens WHERE status = 'in_transit' AND row IS NULL"
        ),
        2
    );
    let r = s.verify(&mut |_, _| {}).unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    s.rebuild(&mut |_, _| {}).unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM shipments"), 1);
}

/// SQLite grants the memory map the store asks for: built with a cap above its default 2 GiB
/// (`.cargo/config.toml`), past which a large database's pages would each be read with a system
/// call. A build without that setting fails here.
#[test]
fn sqlite_grants_the_memory_map_the_store_asks_for() {
    let d = tempfile::tempdir().unwrap();
    let c = rusqlite::Connection::open(d.path().join("map.sqlite3")).unwrap();
    let granted: i64 = c
        .query_row(
            &format!("PRAGMA mmap_size = {}", kura_store::MMAP_BYTES),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(granted, kura_store::MMAP_BYTES);
}
