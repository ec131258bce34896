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
