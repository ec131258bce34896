//! Issue 28 — shipments through the registry, as real processes: a bench of site NCGM ships
//! to site NCNP; the registry takes the shipment's bundle from the sending bench and hands it to
//! the receiving site's benches with their next pull; the receipt of each tube comes back.

use std::path::Path;

use kura_sync_tests::{Bench, Registry};
use serde_json::Value;

use crate::{LAYOUT, register, settle, site};

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other["specimen"]
                .as_str()
                .or(other["code"].as_str())
                .unwrap_or_else(|| panic!("no code in {other}"))
                .to_string(),
        })
        .collect()
}

/// Site A (NCGM) ships 10 tubes to site B (NCNP); B receives 9 and one tube nobody shipped:
/// exactly 9 received, 1 missing, 1 unexpected; the missing one is received a day later. Both
/// benches' histories show the whole path, `verify` passes on both, and the registry's
/// projection has each tube at B.
pub fn ten_tubes_from_a_to_b(reg: &Registry, dir: &Path) {
    let v = site(reg, dir, &["a"]);
    let a = &v[0];
    reg.site("NCNP", "NCN");
    let b = Bench::new(dir, "b");
    b.enroll(reg, "NCNP");
    b.ok(&["storage", "apply", LAYOUT]);
    b.sync_ok();
    let tubes = register(a, 10, "BOX-0001");
    let stranger = register(a, 1, "BOX-0002").remove(0);
    // The manifest PDF goes to the test's directory, not the working one.
    let manifest = dir.join("manifest.pdf");
    let mut args = vec!["ship", "--manifest", manifest.to_str().unwrap()];
    args.extend(tubes.iter().map(String::as_str));
    args.extend([
        "--to",
        "NCNP",
        "--courier",
        "ヤマト運輸",
        "--temperature",
        "dry-ice",
        "--dry-ice-kg",
        "5.5",
    ]);
    let shipped = a.ok(&args);
    let shp = shipped["shipment"].as_str().unwrap().to_string();
    // Before A syncs, B has nothing to receive.
    b.sync_ok();
    let refused = b.try_run(&["receive", &shp]).unwrap_err();
    assert_eq!(refused["code"], "not_found", "{refused}");

    // A's sync sends its events, then the bundle; B's next sync brings it.
    let sent = a.sync_ok();
    assert_eq!(sent["bundles_sent"], 1, "{sent}");
    let pulled = b.sync_ok();
    assert_eq!(pulled["parcels"], 1, "{pulled}");
    let incoming = b.ok(&["shipments", "--incoming"]);
    let listed: Vec<&Value> = incoming
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["shipment"] == shp.as_str())
        .collect();
    assert_eq!(listed.len(), 1, "{incoming}");
    assert_eq!(listed[0]["in_transit"], 10);
    // Sent again (a lost answer), the bundle changes nothing at the registry.
    assert_eq!(
        reg.query("SELECT count(*) FROM parcels WHERE kind = 'bundle'")[0][0],
        "1"
    );

    // B receives 9 of them and a tube nobody shipped.
    let mut scans: Vec<String> = tubes[..9].to_vec();
    scans.push(stranger.clone());
    let r = b
        .try_run_with(&["receive", &shp, "--into", "BOX-0003"], &scans.join("\n"))
        .unwrap();
    assert_eq!(strs(&r["received"]).len(), 9, "{r}");
    assert_eq!(strs(&r["missing"]), vec![tubes[9].clone()], "{r}");
    assert_eq!(strs(&r["unexpected"]), vec![stranger.clone()], "{r}");

    // B's sync sends the receptions; the registry makes a receipt for A of each tube.
    b.sync_ok();
    let back = a.sync_ok();
    assert_eq!(back["parcels"], 9, "{back}");
    let history = a.ok(&["history", &tubes[0]]);
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.last(),
        Some(&"received"),
        "A sees B's receipt: {kinds:?}"
    );
    assert!(kinds.contains(&"shipped"), "{kinds:?}");
    let out = a.ok(&["shipments", "--outgoing"]);
    let mine = out
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["shipment"] == shp.as_str())
        .unwrap();
    assert_eq!(
        (&mine["received_there"], &mine["in_transit"]),
        (&Value::from(9), &Value::from(1)),
        "A counts what B received: {mine}"
    );
    assert_eq!(a.ok(&["show", &tubes[0]])["status"], "transferred");
    assert_eq!(a.ok(&["show", &tubes[9]])["status"], "in_transit");

    // A day later the straggler.
    let r = b
        .try_run_with(&["receive", &shp, "--into", "BOX-0003"], &tubes[9])
        .unwrap();
    assert_eq!(strs(&r["received"]), vec![tubes[9].clone()], "{r}");
    assert!(strs(&r["missing"]).is_empty(), "{r}");
    settle(&[a, &b]);

    // B's history: derived and shipped at A, arrived and received here.
    let history = b.ok(&["history", &tubes[9]]);
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in ["derived", "shipped", "shipment_arrived", "received"] {
        assert!(
            kinds.contains(&k),
            "B's history of the straggler: {kinds:?}"
        );
    }
    let history = a.ok(&["history", &tubes[9]]);
    assert_eq!(
        history.as_array().unwrap().last().unwrap()["kind"],
        "received",
        "A sees the straggler's receipt"
    );
    a.verify_ok();
    b.verify_ok();
    // The registry's projection has each tube at B, stored in BOX-0003.
    let at_b = reg.specimens("NCNP");
    for t in &tubes {
        let c = at_b
            .get(t)
            .unwrap_or_else(|| panic!("{t} is not at NCNP in the registry"));
        assert_eq!(c.status, "available", "{t}: {c:?}");
        assert!(
            c.place
                .as_deref()
                .is_some_and(|p| p.starts_with("BOX-0003")),
            "{t}: {c:?}"
        );
    }
    assert!(
        !at_b.contains_key(&stranger),
        "the stranger was never registered at B"
    );
    let (n, distinct) = reg.counts();
    assert_eq!(n, distinct, "no event twice in the registry");

    // The donor withdraws consent at A: after one sync round on each side, the tubes at B are
    // blocked there (a signed follow-up of the shipment, carried by the registry).
    let use_one = |t: &str| b.try_run(&["check-out", t, "--to", "Dr. Ito", "--purpose", "qc"]);
    assert!(
        use_one(&tubes[0]).is_ok(),
        "before the withdrawal B uses its tubes"
    );
    b.ok(&["return", &tubes[0]]);
    b.sync_ok();
    a.ok(&[
        "consent",
        "withdraw",
        "P-0001",
        "--reason",
        "the donor withdrew",
    ]);
    let sent = a.sync_ok();
    assert_eq!(sent["follow_ups_sent"], 10, "one per shipped tube: {sent}");
    b.sync_ok();
    for t in &tubes {
        assert_eq!(b.ok(&["show", t])["blocked"], true, "{t} is blocked at B");
    }
    let refused = use_one(&tubes[1]).unwrap_err();
    assert_eq!(refused["code"], "specimen_blocked", "{refused}");
    let history = b.ok(&["history", &tubes[1]]);
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!(last["kind"], "blocked", "B sees A's block: {history}");
    // Nothing was sent twice; both benches still verify.
    assert_eq!(a.sync_ok()["follow_ups_sent"], 0);
    b.sync_ok();
    a.verify_ok();
    b.verify_ok();
}

#[test]
fn ten_tubes_from_a_to_b_through_the_registry() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::sqlite(d.path());
    ten_tubes_from_a_to_b(&reg, d.path());
}

/// A shipment survives a registry put back from an older copy taken before it was dispatched:
/// the sending bench sends its events and the bundle again, the receiving bench its receptions;
/// the registry ends with one dispatch, one bundle and a receipt for every tube received (none
/// lost, none twice), and both benches go on (the rest received, `verify` passes).
pub fn shipment_survives_a_restored_registry(
    reg: &mut Registry,
    dir: &Path,
    copies: &crate::restore::Copies,
) {
    let v = site(reg, dir, &["a"]);
    let a = &v[0];
    reg.site("NCNP", "NCN");
    let b = Bench::new(dir, "b");
    b.enroll(reg, "NCNP");
    b.ok(&["storage", "apply", LAYOUT]);
    b.sync_ok();
    let tubes = register(a, 4, "BOX-0001");
    a.sync_ok();
    // Last night's copy: the tubes, no shipment yet.
    let copy = dir.join("registry-nightly.copy");
    copies.take(reg, &copy);
    let manifest = dir.join("manifest.pdf");
    let mut args = vec!["ship", "--manifest", manifest.to_str().unwrap()];
    args.extend(tubes.iter().map(String::as_str));
    args.extend(["--to", "NCNP", "--temperature", "ambient"]);
    let shp = a.ok(&args)["shipment"].as_str().unwrap().to_string();
    a.sync_ok();
    b.sync_ok();
    let r = b
        .try_run_with(
            &["receive", &shp, "--into", "BOX-0003"],
            &tubes[..2].join("\n"),
        )
        .unwrap();
    assert_eq!(strs(&r["received"]).len(), 2, "{r}");
    b.sync_ok();
    assert_eq!(a.sync_ok()["parcels"], 2);

    // The registry is put back: it forgets the dispatch, the bundle, the receptions, the receipts.
    copies.put_back(reg, &copy);
    assert_eq!(
        reg.query("SELECT count(*) FROM parcels")[0][0],
        "0",
        "the copy holds no parcel"
    );
    settle(&[a, &b]);
    let one = |sql: &str| reg.query(sql)[0][0].clone();
    assert_eq!(
        one("SELECT count(*) FROM events WHERE kind = 'shipment_dispatched'"),
        "1",
        "no dispatch twice"
    );
    assert_eq!(
        one("SELECT count(*) FROM parcels WHERE kind = 'bundle'"),
        "1"
    );
    assert_eq!(
        one("SELECT count(*) FROM parcels WHERE kind = 'receipt'"),
        "2",
        "no receipt lost"
    );
    // The rest arrives; its receipts come back too.
    let r = b
        .try_run_with(
            &["receive", &shp, "--into", "BOX-0003"],
            &tubes[2..].join("\n"),
        )
        .unwrap();
    assert_eq!(strs(&r["received"]).len(), 2, "{r}");
    assert!(strs(&r["missing"]).is_empty(), "{r}");
    settle(&[a, &b]);
    for t in &tubes {
        let h = a.ok(&["history", t]);
        let kinds: Vec<&str> = h
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "received").count(),
            1,
            "{t} at A: {kinds:?}"
        );
    }
    a.verify_ok();
    b.verify_ok();
    let (n, distinct) = reg.counts();
    assert_eq!(n, distinct, "no event twice in the registry");
}

#[test]
fn a_shipment_survives_a_registry_restored_from_an_older_copy() {
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::sqlite(d.path());
    shipment_survives_a_restored_registry(&mut reg, d.path(), &crate::restore::Copies::Sqlite);
}
