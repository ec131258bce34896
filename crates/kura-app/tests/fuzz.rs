//! No panic on input: every parser that takes outside input ends in a value or a typed error.
//! Property tests over random and random-but-plausible input: scans and codes, positions,
//! quantities, the faces' typed inputs, CSV import (random bytes, plausible rows, huge fields,
//! Shift_JIS, BOM), storage-layout TOML, label-stock TOML, printer settings, CLI-style argument
//! values into the use cases.
//!
//! `PROPTEST_CASES` sets how many cases each runs (the README test command uses the default
//! below; `scripts/fuzz` runs many more).

mod common;

use std::cell::RefCell;

use kura_app::transport::PrinterConfig;
use kura_domain::container::builtin_type;
use kura_domain::specimen::{Quantity, Unit};
use kura_domain::{ContainerId, KuraId, SpecimenCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Cases per property: `PROPTEST_CASES`, else `default`.
fn runner(default: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Text a scanner, a keyboard with the IME on, or a corrupted file could give.
fn scan_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Z0-9*]{0,24}",
        "[a-zA-Z0-9*/\\- ]{0,30}",
        "[Ａ-Ｚ０-９ぁ-んァ-ン一-龥]{0,12}",
        "[\\x00-\\x1f\\x7f\u{1d}]{0,4}[A-Z0-9]{0,14}",
        "[A-Z]{1,6}[0-9]{2}[0-9]{3,12}[0-9A-Z*]?",
    ]
}

#[test]
fn scans_codes_and_ids_never_panic() {
    runner(2_000)
        .run(&scan_text(), |s| {
            let _ = kura_domain::id::normalize_scan(&s);
            if let Ok(id) = KuraId::parse(&s) {
                // A valid ID round-trips and its data re-derives the same check character.
                prop_assert_eq!(KuraId::from_data(id.data()).ok(), Some(id.clone()));
            }
            let _ = KuraId::from_data(&s);
            let _ = SpecimenCode::external(&s);
            let _ = SpecimenCode::parse_lookup(&s);
            let _ = ContainerId::parse(&s);
            let _ = kura_app::ids::check(&s);
            Ok(())
        })
        .unwrap();
}

#[test]
fn positions_never_panic_and_round_trip() {
    let types = [
        "box-9x9",
        "box-10x10",
        "box-5x5",
        "tube-rack-96",
        "cane-6",
        "rack-5x4",
        "freezer-5-shelves",
        "site",
    ];
    let geometries: Vec<_> = types.iter().filter_map(|t| builtin_type(t)).collect();
    assert!(
        geometries.len() >= 4,
        "the built-in types changed: {geometries:?}"
    );
    runner(2_000)
        .run(&(scan_text(), 0..geometries.len()), |(s, g)| {
            let geometry = &geometries[g].1;
            if let Ok(pos) = geometry.parse(&s) {
                prop_assert!(geometry.check(pos).is_ok());
                prop_assert_eq!(geometry.parse(&geometry.label(pos)).ok(), Some(pos));
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn quantities_and_typed_inputs_never_panic() {
    let strat = (
        prop_oneof![
            any::<String>(),
            "-?[0-9]{0,25}(\\.[0-9]{0,25})?(e[0-9]{1,4})?"
        ],
        prop_oneof![any::<String>(), "(mL|uL|µL|mg|ug|cells|pieces|gallon|)"],
        any::<Option<String>>(),
    );
    runner(2_000)
        .run(&strat, |(v, u, other)| {
            if let Ok(q) = Quantity::parse(&v, &u) {
                prop_assert!(q.milli >= 0);
                let _ = q.to_string();
            }
            let _ = Unit::parse(&u);
            let _ = kura_app::input::amount(Some(&v), Some(&u), Some(Unit::Ml));
            let _ = kura_app::input::amount(Some(&v), None, None);
            let _ = kura_app::input::date("due", Some(&v));
            let _ = kura_app::input::purpose(&u);
            let _ = kura_app::input::reason(&v);
            let _ = kura_app::input::actor([other.as_deref(), Some(v.as_str())]);
            let _ = kura_app::input::language([other.as_deref(), Some(u.as_str())]);
            Ok(())
        })
        .unwrap();
}

const HEADER: &str =
    "code,type,container,storage,quantity,unit,study,donor,collected_at,parent,box,position";

/// A CSV field that is often right and sometimes wrong in every way a file can be.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        3 => "(PL1|BLD|SER|DNA|XYZ|pl1)",
        2 => "(PED|SST|A|D|Q)",
        2 => "-?[0-9]{1,4}(\\.[0-9]{1,4})?",
        2 => "(mL|uL|gallon)",
        2 => "(BOX-000[1-3]|F1|R1|NOPE)",
        2 => "[A-I][1-9]|[0-9]{1,3}|Z99",
        2 => "(2026-10-01|31/12/2026|2026-02-30T00:00:00Z)",
        2 => "FS[0-9]{8}|TST26[0-9]{7}[0-9A-Z*]",
        1 => "\"[^\"]{0,20}\"",
        1 => any::<String>(),
        1 => "[A-Z]{2000,5000}",
    ]
}

#[test]
fn csv_import_never_panics() {
    let rows = prop::collection::vec(prop::collection::vec(field(), 0..14), 0..30);
    let bytes = prop_oneof![
        // Random bytes, with or without a header.
        prop::collection::vec(any::<u8>(), 0..400).prop_map(|b| {
            let mut v = HEADER.as_bytes().to_vec();
            v.push(b'\n');
            v.extend(b);
            v
        }),
        prop::collection::vec(any::<u8>(), 0..400),
        // Plausible rows, as UTF-8, UTF-8 with a BOM, or Shift_JIS.
        (rows, 0..3u8).prop_map(|(rows, enc)| {
            let mut text = format!("{HEADER}\n");
            for r in rows {
                text.push_str(&r.join(","));
                text.push('\n');
            }
            match enc {
                0 => text.into_bytes(),
                1 => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
                _ => encoding_rs::SHIFT_JIS.encode(&text).0.into_owned(),
            }
        }),
    ];
    let b = RefCell::new(common::bench());
    runner(300)
        .run(&bytes, |input| {
            let mut b = b.borrow_mut();
            let before = b.kura.stats().map(|s| s.specimens).unwrap_or(0);
            match b.kura.import_csv(&input[..], &mut |_, _| {}) {
                Ok(r) => prop_assert_eq!(
                    b.kura.stats().unwrap().specimens as u64,
                    before as u64 + r.rows
                ),
                Err(e) => {
                    prop_assert!(!e.code().is_empty());
                    prop_assert_eq!(b.kura.stats().unwrap().specimens, before, "{}", e);
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(b.borrow_mut().kura.verify(&mut |_, _| {}).unwrap().ok());
}

/// TOML that is random, or shaped like a layout or a stock with random values.
fn toml_text() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "\"[^\"\\\\]{0,12}\"",
        "-?[0-9]{1,6}(\\.[0-9]{1,3})?",
        "(true|false)",
        "\\[[0-9, ]{0,12}\\]",
    ];
    let key = "(code|type|name|parent|position|temperature|count|pad|kind|rows|cols|row_labels|col_labels|fill|from|width_mm|height_mm|dpi|min_module_mm|page|labels_x|labels_y|margin_left_mm|template)";
    prop_oneof![
        any::<String>(),
        prop::collection::vec((key, value), 0..14).prop_map(|kv| {
            let mut s = String::from("[[container]]\n");
            for (k, v) in kv {
                s.push_str(&format!("{k} = {v}\n"));
            }
            s
        }),
        prop::collection::vec((key, "[a-z0-9_\\-]{0,20}"), 0..14).prop_map(|kv| {
            let mut s = String::from("[types.t]\n");
            for (k, v) in kv {
                s.push_str(&format!("{k} = \"{v}\"\n"));
            }
            s
        }),
    ]
}

#[test]
fn storage_layouts_and_label_stocks_never_panic() {
    let b = RefCell::new(common::bench());
    runner(500)
        .run(&toml_text(), |t| {
            let _ = kura_labels::stock::LabelStock::parse("fuzz", &t);
            let mut b = b.borrow_mut();
            if let Err(e) = b.kura.apply_layout(&t) {
                prop_assert!(!e.code().is_empty());
            }
            Ok(())
        })
        .unwrap();
    assert!(b.borrow_mut().kura.verify(&mut |_, _| {}).unwrap().ok());
}

#[test]
fn printer_settings_never_panic() {
    let b = RefCell::new(common::bench());
    let strat = (scan_text(), scan_text(), 0..4u8);
    runner(300)
        .run(&strat, |(name, value, kind)| {
            let config = match kind {
                0 => Some(PrinterConfig::tcp(value)),
                1 => Some(PrinterConfig::Cups {
                    queue: value.clone(),
                    dpi: Some(value.len() as u32),
                    zpl_font: Some(value),
                }),
                2 => Some(PrinterConfig::cups_pdf(value)),
                _ => None,
            };
            let mut b = b.borrow_mut();
            let _ = b.kura.set_printer(&name, config);
            prop_assert!(b.kura.printers().is_ok());
            Ok(())
        })
        .unwrap();
}

/// What the CLI's arguments and the window's fields carry, straight into the use cases.
#[test]
fn argument_values_into_the_use_cases_never_panic() {
    let b = RefCell::new(common::bench());
    let strat = (
        scan_text(),
        scan_text(),
        any::<Option<String>>(),
        any::<bool>(),
    );
    runner(300)
        .run(&strat, |(a, c, p, flag)| {
            let mut b = b.borrow_mut();
            let k = &mut b.kura;
            let _ = k.check_in(&a, &c, p.as_deref());
            let _ = k.move_specimen(&a, &c, p.as_deref());
            let _ = k.move_container(&a, &c, p.as_deref());
            let _ = k.consume(&a, p.as_deref(), Some(&c), flag);
            let _ = k.check_out(
                std::slice::from_ref(&a),
                &kura_app::CheckOut {
                    to: c.clone(),
                    purpose: c.clone(),
                    due: p.clone(),
                    note: p.clone(),
                },
            );
            let _ = k.return_specimen(&a, flag);
            let _ = k.dispose(&a, &c);
            let _ = k.withdraw_consent(&a, &c);
            let _ = k.show(&a);
            let _ = k.history(&a);
            let _ = k.lineage(&a);
            let _ = k.box_map(&c);
            let _ = k.containers(Some(&c));
            let _ = k.register(&kura_app::RegisterRequest {
                code: Some(a.clone()),
                sample_type: c.clone(),
                container: "PED".into(),
                storage: "A".into(),
                quantity: p.clone(),
                unit: Some(c.clone()),
                study: a.clone(),
                donor: c.clone(),
                collected_at: p.clone(),
                aliquots: u32::from(flag) * 3,
                aliquot_quantity: p.clone(),
                aliquot_type: None,
                into: Some(c.clone()),
            });
            let _ = k.create_container(&a, &c, p.as_deref(), Some(&c), p.as_deref(), p.as_deref());
            let _ = kura_app::ids::with_check_char(&a);
            Ok(())
        })
        .unwrap();
    assert!(b.borrow_mut().kura.verify(&mut |_, _| {}).unwrap().ok());
}
