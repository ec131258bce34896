//! Shipments from the sending bench: what a dispatch does to each tube, what is refused (and
//! writes nothing), a box scanned for all its tubes, the manifest it prints.

mod common;

use common::{bench, register};
use kura_app::{AppError, Kura, ShipForm};

fn events(k: &Kura) -> i64 {
    k.stats().unwrap().events
}

fn to_site(scans: &[&str]) -> ShipForm {
    ShipForm {
        scans: scans.iter().map(|s| s.to_string()).collect(),
        to_site: Some("ncnp".into()),
        courier: Some("Yamato".into()),
        tracking: Some("1234-5678-9012".into()),
        temperature: "dry-ice".into(),
        dry_ice_kg: Some("5.5".into()),
        logger: Some("LOG-7".into()),
        ..Default::default()
    }
}

#[test]
fn a_dispatch_puts_every_tube_in_transit_and_frees_its_position() {
    let mut b = bench();
    let k = &mut b.kura;
    let r = register(k, 4);
    k.check_in_box("BX1", &r.aliquots).unwrap();
    let d = k
        .ship(&to_site(&[r.aliquots[0].as_str(), r.aliquots[1].as_str()]))
        .unwrap();
    assert!(d.shipment.starts_with("SHP-"), "{}", d.shipment);
    assert_eq!(d.destination, "site:NCNP");
    assert_eq!(d.tubes, r.aliquots[..2].to_vec());
    assert_eq!(d.boxes, ["BX1"]);
    assert!(!d.distributed);
    for t in &r.aliquots[..2] {
        let v = k.show(t).unwrap();
        assert_eq!(v.status, "in_transit", "{t}");
        assert_eq!(v.container, None, "{t}: position freed");
        let kinds: Vec<String> = k.history(t).unwrap().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds.last().map(String::as_str), Some("shipped"), "{t}");
    }
    // The freed position takes another tube; a tube in transit cannot be used.
    assert_eq!(k.box_map("BX1").unwrap().occupied, 2);
    let err = k.check_out(
        &[r.aliquots[0].clone()],
        &kura_app::CheckOut {
            to: "Dr. Sato".into(),
            purpose: "analysis".into(),
            ..Default::default()
        },
    );
    assert_eq!(err.unwrap_err().code(), "not_in_storage");
    // The manifest keeps where each tube was packed; the list counts them on the way.
    let s = k.shipment(&d.shipment).unwrap();
    assert_eq!(s.packed.len(), 2);
    assert_eq!(s.packed[0].position, "A1");
    assert_eq!(
        s.dry_ice_line().as_deref(),
        Some("UN 1845 Dry ice, 5.5 kg net")
    );
    let list = k.shipments().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].tubes, list[0].in_transit), (2, 2));
    assert_eq!(list[0].direction, "outgoing");
    // A second shipment from this bench gets the next number.
    let d2 = k.ship(&to_site(&[r.aliquots[2].as_str()])).unwrap();
    assert_eq!(
        d2.shipment.rsplit_once('-').unwrap().1,
        "2",
        "{} after {}",
        d2.shipment,
        d.shipment
    );
    assert!(k.verify(&mut |_, _| {}).unwrap().ok());
}

#[test]
fn a_box_scan_ships_every_tube_in_it() {
    let mut b = bench();
    let k = &mut b.kura;
    let r = register(k, 5);
    k.check_in_box("BX1", &r.aliquots[..3]).unwrap();
    k.check_in_box("BX2", &r.aliquots[3..]).unwrap();
    // The box, and one of its tubes scanned as well: each tube once.
    let d = k
        .ship(&to_site(&[
            "BX1",
            r.aliquots[0].as_str(),
            r.aliquots[3].as_str(),
        ]))
        .unwrap();
    assert_eq!(
        d.tubes,
        [
            r.aliquots[0].clone(),
            r.aliquots[1].clone(),
            r.aliquots[2].clone(),
            r.aliquots[3].clone()
        ]
    );
    assert_eq!(d.boxes, ["BX1", "BX2"]);
    assert_eq!(k.box_map("BX1").unwrap().occupied, 0);
}

/// Runs `f`, expects error `code`, and checks that no event was written.
fn refused(k: &mut Kura, code: &str, f: impl FnOnce(&mut Kura) -> Result<(), AppError>) {
    let before = events(k);
    let err = f(k).expect_err(&format!("expected {code}"));
    assert_eq!(err.code(), code, "{err}");
    assert_eq!(events(k), before, "a refused dispatch wrote events: {err}");
}

#[test]
fn an_impossible_shipment_is_refused_and_writes_nothing() {
    let mut b = bench();
    let k = &mut b.kura;
    let r = register(k, 4);
    k.check_in_box("BX1", &r.aliquots[..3]).unwrap();
    k.block(&r.aliquots[1], "haemolysed").unwrap();
    let a = r.aliquots[0].as_str();
    type Case = (&'static str, fn(&mut ShipForm), &'static str);
    let cases: Vec<Case> = vec![
        ("no destination", |f| f.to_site = None, "bad_input"),
        (
            "both a site and a recipient",
            |f| f.to_recipient = Some("Dr. Tanaka".into()),
            "bad_input",
        ),
        (
            "an unknown temperature",
            |f| f.temperature = "frozen".into(),
            "bad_input",
        ),
        (
            "dry ice without its mass",
            |f| f.dry_ice_kg = None,
            "bad_input",
        ),
        (
            "a mass that is not one",
            |f| f.dry_ice_kg = Some("five".into()),
            "bad_input",
        ),
        (
            "a mass without dry ice",
            |f| f.temperature = "4C".into(),
            "bad_input",
        ),
        (
            "to a recipient without an MTA",
            |f| {
                f.to_site = None;
                f.to_recipient = Some("Dr. Tanaka".into());
            },
            "bad_input",
        ),
        ("nothing scanned", |f| f.scans.clear(), "bad_input"),
        (
            "a bad scan",
            |f| f.scans.push("NOT A CODE".into()),
            "scan_invalid_character",
        ),
        (
            "a blocked tube",
            |f| f.scans.push(String::new()), // replaced below
            "specimen_blocked",
        ),
        (
            "an unstored tube",
            |f| f.scans.push(String::new()),
            "not_in_storage",
        ),
    ];
    for (what, change, code) in cases {
        let mut f = to_site(&[a]);
        change(&mut f);
        if let Some(last) = f.scans.last_mut()
            && last.is_empty()
        {
            *last = match code {
                "specimen_blocked" => r.aliquots[1].clone(),
                _ => r.aliquots[3].clone(),
            };
        }
        refused(k, code, |k| k.ship(&f).map(|_| ()));
        assert_eq!(k.show(a).unwrap().status, "available", "{what}");
    }
    assert!(k.shipments().unwrap().is_empty());
}

#[test]
fn a_distribution_ends_custody_and_a_check_in_afterwards_is_refused() {
    let mut b = bench();
    let k = &mut b.kura;
    let r = register(k, 2);
    k.check_in_box("BX1", &r.aliquots).unwrap();
    let d = k
        .ship(&ShipForm {
            scans: vec![r.aliquots[0].clone()],
            to_recipient: Some("Dr. Tanaka, Kyoto Univ.".into()),
            temperature: "ambient".into(),
            mta: Some("MTA-2026-014".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(d.distributed);
    assert_eq!(d.destination, "recipient:Dr. Tanaka, Kyoto Univ.");
    assert_eq!(k.show(&r.aliquots[0]).unwrap().status, "distributed");
    refused(k, "specimen_final", |k| {
        k.check_in(&r.aliquots[0], "BX1", None).map(|_| ())
    });
}

#[test]
fn the_manifest_has_a_cover_a_page_per_box_and_the_tube_list() {
    let mut b = bench();
    let k = &mut b.kura;
    let r = register(k, 3);
    k.check_in_box("BX1", &r.aliquots[..2]).unwrap();
    k.check_in_box("BX2", &r.aliquots[2..]).unwrap();
    let d = k.ship(&to_site(&["BX1", "BX2"])).unwrap();
    let m = k.manifest_data(&d.shipment).unwrap();
    let cover: Vec<&str> = m.cover.iter().map(|(k, _)| k.as_str()).collect();
    for want in ["From", "To", "Temperature", "Courier", "Tracking", "Logger"] {
        assert!(
            cover.iter().any(|c| c.starts_with(want)),
            "{want} in {cover:?}"
        );
    }
    assert_eq!(
        m.dangerous_goods.as_deref(),
        Some("UN 1845 Dry ice, 5.5 kg net")
    );
    let boxes: Vec<Option<&str>> = m.boxes.iter().map(|b| b.matrix.as_deref()).collect();
    let want = [format!("{}/BX1", d.shipment), format!("{}/BX2", d.shipment)];
    assert_eq!(boxes, [Some(want[0].as_str()), Some(want[1].as_str())]);
    assert_eq!(m.boxes[0].cells.len(), 2);
    assert_eq!(m.tubes.len(), 3);
    assert_eq!(m.tubes[0][0], r.aliquots[0]);
    assert_eq!(m.tubes[0][4], "BX1 A1");
    let pdf = b.dir.path().join("manifest.pdf");
    let pages = b.kura.print_manifest(&d.shipment, &pdf).unwrap();
    assert_eq!(pages, 4, "cover, two boxes, one page of tubes");
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));
}

/// A sender (site NCC) and a receiver (site NCN) with no registry between them.
fn two_sites() -> (common::Bench, common::Bench, Vec<String>) {
    let mut a = common::bench_with("NCC");
    let r = register(&mut a.kura, 10);
    a.kura.check_in_box("BX1", &r.aliquots).unwrap();
    let b = common::bench_with("NCN");
    (a, b, r.aliquots)
}

fn sealed(a: &mut common::Bench, tubes: &[String]) -> (String, std::path::PathBuf) {
    let mut f = to_site(&[]);
    f.scans = tubes.to_vec();
    f.to_site = Some("NCN".into());
    let d = a.kura.ship(&f).unwrap();
    let file = a.dir.path().join(format!("{}.kura-shipment", d.shipment));
    a.kura.write_sealed(&d.shipment, &file).unwrap();
    (d.shipment, file)
}

fn trust_sender(a: &mut common::Bench, b: &mut common::Bench) {
    let key = a.kura.workstation_key().unwrap();
    b.kura.trust_key("NCC bench 1", &key.fingerprint).unwrap();
}

#[test]
fn a_sealed_manifest_travels_without_a_registry_and_the_receipt_reconciles_it() {
    let (mut a, mut b, tubes) = two_sites();
    let (shipment, file) = sealed(&mut a, &tubes);
    // B does not trust A's key yet: refused, nothing recorded.
    let bundle = Kura::read_sealed(&file).unwrap();
    let before = events(&b.kura);
    let err = b.kura.take_bundle(bundle.clone()).unwrap_err();
    assert_eq!(err.code(), "untrusted_key", "{err}");
    assert!(err.to_string().contains("kura trust add"), "{err}");
    assert_eq!(events(&b.kura), before);
    trust_sender(&mut a, &mut b);
    let taken = b.kura.take_bundle(bundle.clone()).unwrap();
    assert_eq!((taken.tubes, taken.again), (10, false));
    assert_eq!(taken.from.as_deref(), Some("NCC bench 1"));
    // Taken again: nothing new.
    let n = events(&b.kura);
    assert!(b.kura.take_bundle(bundle).unwrap().again);
    assert_eq!(events(&b.kura), n);
    let list = b.kura.shipments().unwrap();
    assert_eq!(list[0].direction, "incoming");
    assert_eq!((list[0].tubes, list[0].in_transit), (10, 10));
    assert_eq!(b.kura.show(&tubes[0]).unwrap().status, "in_transit");
    assert_eq!(
        b.kura.sync_status().unwrap().incoming,
        1,
        "the header counts it"
    );
    // Nine of the ten arrive, with a tube nobody shipped (one of B's own) and one damaged.
    let stranger = register(&mut b.kura, 0).parent;
    let mut scans: Vec<String> = tubes[..9].to_vec();
    scans[8] = format!("{} damaged", tubes[8]);
    scans.push(stranger.clone());
    let r = b
        .kura
        .receive(&shipment, Some("BX1"), &scans, None)
        .unwrap();
    assert_eq!(r.received.len(), 9);
    assert_eq!(r.missing, [tubes[9].clone()]);
    assert_eq!(r.unexpected, [stranger.clone()]);
    assert_eq!(r.damaged, [tubes[8].clone()]);
    assert_eq!(r.received[0].position, "A1");
    assert_eq!(b.kura.show(&tubes[0]).unwrap().status, "available");
    assert!(b.kura.show(&tubes[8]).unwrap().blocked);
    // The stranger was reported, never received into the shipment.
    assert_eq!(b.kura.show(&stranger).unwrap().container, None);
    // The straggler a day later.
    let r = b
        .kura
        .receive(&shipment, Some("BX1"), &[format!("{} C5", tubes[9])], None)
        .unwrap();
    assert_eq!(r.received.len(), 1);
    assert_eq!(r.received[0].position, "C5");
    assert!(r.missing.is_empty());
    assert_eq!(
        b.kura.sync_status().unwrap().incoming,
        0,
        "nothing left on the way"
    );
    // Both benches' records hold; B's history of a tube shows where it came from.
    assert!(a.kura.verify(&mut |_, _| {}).unwrap().ok());
    let v = b.kura.verify(&mut |_, _| {}).unwrap();
    assert!(v.ok(), "{:?}", v.problems);
    let kinds: Vec<String> = b
        .kura
        .history(&tubes[0])
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["derived", "shipped", "shipment_arrived", "received"]
    );
}

/// The bundle's JSON with `edit` applied to it.
fn edited(
    file: &std::path::Path,
    name: &str,
    edit: impl FnOnce(&mut kura_domain::bundle::Bundle),
) -> std::path::PathBuf {
    let mut b = Kura::read_sealed(file).unwrap();
    edit(&mut b);
    let out = file.with_extension(name);
    std::fs::write(&out, serde_json::to_vec(&b).unwrap()).unwrap();
    out
}

#[test]
fn a_forged_or_foreign_sealed_manifest_is_refused() {
    let (mut a, mut b, tubes) = two_sites();
    let (_, file) = sealed(&mut a, &tubes[..2]);
    trust_sender(&mut a, &mut b);
    let donor = "D0001";
    let cases: Vec<(&str, std::path::PathBuf, &str)> = vec![
        (
            "a byte changed",
            edited(&file, "flipped", |b| {
                assert!(b.events[0].event.payload.contains(donor));
                b.events[0].event.payload = b.events[0].event.payload.replace(donor, "D9999");
            }),
            "bundle_tampered",
        ),
        (
            // A careful forger: the registration edited and re-hashed, the dispatch re-made
            // to name the new hash and re-hashed too; only the signature cannot follow.
            "edited and re-hashed consistently",
            edited(&file, "forged", |b| {
                let e = &mut b.events[0];
                e.event.payload = e.event.payload.replace(donor, "D9999");
                let old = e.event.hash;
                e.event.hash = e.event.expected_hash(&e.prev);
                let new = e.event.hash.to_string();
                let d = &mut b.dispatch;
                d.event.payload = d.event.payload.replace(&old.to_string(), &new);
                d.event.hash = d.event.expected_hash(&d.prev);
            }),
            "bundle_signature",
        ),
        (
            "signed by a key B does not trust",
            edited(&file, "foreign", |b| {
                let k = kura_domain::sign::SigningKey::from_seed(&[9; 32]).unwrap();
                b.key = k.public_hex();
                b.signature = k.sign(&kura_domain::bundle::message(&b.dispatch.event.hash));
            }),
            "untrusted_key",
        ),
    ];
    for (what, path, code) in cases {
        let before = events(&b.kura);
        let bundle = Kura::read_sealed(&path).unwrap();
        let err = b.kura.take_bundle(bundle).unwrap_err();
        assert_eq!(err.code(), code, "{what}: {err}");
        assert_eq!(events(&b.kura), before, "{what}");
        assert!(b.kura.show(&tubes[0]).is_err(), "{what}: nothing arrived");
    }
    // The true one is taken.
    assert_eq!(
        b.kura
            .take_bundle(Kura::read_sealed(&file).unwrap())
            .unwrap()
            .tubes,
        2
    );
}

#[test]
fn a_missing_tube_can_be_declared_lost_and_only_a_missing_one() {
    let (mut a, mut b, tubes) = two_sites();
    let (shipment, file) = sealed(&mut a, &tubes[..3]);
    trust_sender(&mut a, &mut b);
    b.kura
        .take_bundle(Kura::read_sealed(&file).unwrap())
        .unwrap();
    b.kura
        .receive(&shipment, Some("BX1"), &tubes[..2], None)
        .unwrap();
    refused(&mut b.kura, "not_in_transit", |k| {
        k.declare_lost(&shipment, &tubes[0], "not found")
            .map(|_| ())
    });
    refused(&mut b.kura, "bad_input", |k| {
        k.declare_lost(&shipment, &tubes[5], "not found")
            .map(|_| ())
    });
    b.kura
        .declare_lost(&shipment, &tubes[2], "box arrived open, tube not in it")
        .unwrap();
    assert_eq!(b.kura.show(&tubes[2]).unwrap().status, "disposed");
    let r = b.kura.receive(&shipment, None, &[], None).unwrap();
    assert!(r.missing.is_empty(), "{:?}", r.missing);
}

/// A tube that came from NCC is shipped on from NCN to a third site: its registration travels on
/// from the bundle it came in, and the third site holds it as NCN's bundle says.
#[test]
fn a_tube_shipped_on_carries_its_registration_from_the_bundle_it_came_in() {
    let (mut a, mut b, tubes) = two_sites();
    let (shipment, file) = sealed(&mut a, &tubes[..1]);
    trust_sender(&mut a, &mut b);
    b.kura
        .take_bundle(Kura::read_sealed(&file).unwrap())
        .unwrap();
    b.kura
        .receive(&shipment, Some("BX1"), &tubes[..1], None)
        .unwrap();
    let mut f = to_site(&[tubes[0].as_str()]);
    f.to_site = Some("NCGM".into());
    let on = b.kura.ship(&f).unwrap();
    let bundle = b.kura.bundle(&on.shipment).unwrap();
    let m = bundle.check().unwrap();
    let records = bundle.tubes(&m);
    assert_eq!(records.len(), 1, "the registration came along");
    assert_eq!(records[0].code.to_string(), tubes[0]);
    let mut c = common::bench_with("NCG");
    let key = b.kura.workstation_key().unwrap();
    c.kura.trust_key("NCN bench", &key.fingerprint).unwrap();
    assert_eq!(c.kura.take_bundle(bundle).unwrap().tubes, 1);
    let r = c
        .kura
        .receive(&on.shipment, Some("BX1"), &tubes[..1], None)
        .unwrap();
    assert_eq!(r.received.len(), 1);
    assert!(c.kura.verify(&mut |_, _| {}).unwrap().ok());
    assert!(b.kura.verify(&mut |_, _| {}).unwrap().ok());
}
