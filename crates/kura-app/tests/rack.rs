//! Rack-scanner reconciliation: every sample file of assets/samples/rack parses; a scan with
//! two missing, two moved, one unreadable and one unexpected tube answers exactly those;
//! `--apply` leaves the store equal to the scan; a rack scanned rotated is named.

mod common;

use std::collections::BTreeMap;

use common::bench;
use kura_app::Kura;
use kura_app::rack::{Order, RackLayout, Seen, read_rows, table};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/samples/rack");

#[test]
fn every_sample_file_parses() {
    // (file, rows, cols, order, tubes read, unreadable, empty, the rack's barcode)
    let cases: &[(&str, u16, u16, Order, usize, usize, usize, Option<&str>)] = &[
        ("header-comma-bom.csv", 8, 12, Order::Row, 94, 1, 1, None),
        (
            "noheader-rack-column.csv",
            8,
            12,
            Order::Row,
            95,
            1,
            0,
            Some("RK00012345"),
        ),
        (
            "preamble-semicolon.csv",
            8,
            12,
            Order::Row,
            95,
            0,
            1,
            Some("RK00012346"),
        ),
        (
            "numbered-tab-column-order.txt",
            8,
            12,
            Order::Column,
            95,
            1,
            0,
            None,
        ),
        (
            "cp932-japanese-header.csv",
            8,
            12,
            Order::Row,
            95,
            1,
            0,
            Some("RK00012347"),
        ),
        ("rack24.csv", 4, 6, Order::Row, 24, 0, 0, None),
        ("rack48.csv", 6, 8, Order::Row, 47, 0, 1, None),
        (
            "workbook.xlsx",
            8,
            12,
            Order::Row,
            95,
            1,
            0,
            Some("RK00012348"),
        ),
        ("custom-layout.csv", 8, 12, Order::Row, 96, 0, 0, None),
    ];
    for &(file, rows, cols, order, tubes, unreadable, empty, rack) in cases {
        let bytes = std::fs::read(format!("{SAMPLES}/{file}")).unwrap();
        let layout = file.starts_with("custom").then(|| {
            RackLayout::parse(
                &std::fs::read_to_string(format!("{SAMPLES}/custom-layout.toml")).unwrap(),
            )
            .unwrap()
        });
        let t = table(&bytes, file, layout.as_ref()).unwrap();
        let scan = read_rows(&t, rows, cols, order, layout.as_ref())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let count = |f: fn(&Seen) -> bool| scan.cells.values().filter(|s| f(s)).count();
        assert_eq!(
            (
                count(|s| matches!(s, Seen::Tube(_))),
                count(|s| matches!(s, Seen::Unreadable)),
                count(|s| matches!(s, Seen::Empty)),
            ),
            (tubes, unreadable, empty),
            "{file}"
        );
        assert_eq!(scan.rack.as_deref(), rack, "{file}");
        // Every tube where the sample put it: FRnnnnnnnn is the nth position in row order.
        for ((r, c), s) in &scan.cells {
            if let Seen::Tube(code) = s {
                assert_eq!(
                    *code,
                    format!(
                        "FR{:08}",
                        u32::from(*r) * u32::from(cols) + u32::from(*c) + 1
                    ),
                    "{file} at row {r} col {c}"
                );
            }
        }
    }
}

/// A 96-tube rack `RK1` holding `FR00000001` … `FR00000095` in row order (A1 … H11; H12 free).
fn full_rack() -> common::Bench {
    let mut b = bench();
    b.kura
        .apply_layout(
            r#"
[[container]]
code = "RK1"
type = "sbs-8x12"
parent = "R1"
"#,
        )
        .unwrap();
    let mut csv = String::from("code,type,container,storage,study,donor,box,position\n");
    for i in 0..95u32 {
        let (r, c) = (i / 12, i % 12);
        csv.push_str(&format!(
            "FR{:08},PL1,SCI,D,S,D-1,RK1,{}{}\n",
            i + 1,
            (b'A' + r as u8) as char,
            c + 1
        ));
    }
    b.kura.import_csv(csv.as_bytes(), &mut |_, _| {}).unwrap();
    b
}

fn label(i: u32) -> String {
    format!("{}{}", (b'A' + (i / 12) as u8) as char, i % 12 + 1)
}

/// What the database has in the rack (stored tubes only): position → code.
fn stored(k: &Kura) -> BTreeMap<String, String> {
    k.box_map("RK1")
        .unwrap()
        .slots
        .into_iter()
        .filter(|s| s.status.as_deref() == Some("available"))
        .filter_map(|s| s.specimen.map(|c| (s.label, c)))
        .collect()
}

#[test]
fn two_missing_two_moved_one_unreadable_one_unexpected() {
    let mut b = full_rack();
    // The scan: A1 and A2 gone (missing); C1 and C2 swapped (moved); D5 unreadable; the free
    // H12 holds a tube nobody registered (unexpected).
    let mut scan: BTreeMap<String, String> = (0..95u32)
        .map(|i| (label(i), format!("FR{:08}", i + 1)))
        .collect();
    scan.insert("A1".into(), "NO TUBE".into());
    scan.insert("A2".into(), String::new());
    scan.insert("C1".into(), "FR00000026".into());
    scan.insert("C2".into(), "FR00000025".into());
    scan.insert("D5".into(), "NOREAD".into());
    scan.insert("H12".into(), "LEGACY-0001".into());
    let file: String = std::iter::once("Position,Barcode\r\n".to_string())
        .chain(scan.iter().map(|(p, c)| format!("{p},{c}\r\n")))
        .collect();
    let r = b
        .kura
        .reconcile_rack(
            file.as_bytes(),
            "scan.csv",
            "RK1",
            Order::Row,
            None,
            false,
            None,
        )
        .unwrap();
    let codes = |v: &[kura_app::rack::AtPosition]| -> Vec<String> {
        v.iter()
            .map(|a| format!("{}@{}", a.code, a.position))
            .collect()
    };
    assert!(!r.rotated);
    assert_eq!(codes(&r.missing), ["FR00000001@A1", "FR00000002@A2"]);
    let moved: Vec<String> = r
        .moved
        .iter()
        .map(|m| format!("{} {}→{}", m.code, m.from, m.to))
        .collect();
    assert_eq!(moved, ["FR00000026 C2→C1", "FR00000025 C1→C2"]);
    assert_eq!(r.unreadable.len(), 1);
    assert_eq!(r.unreadable[0].position, "D5");
    assert_eq!(r.unreadable[0].expected.as_deref(), Some("FR00000041"));
    assert_eq!(codes(&r.unexpected), ["LEGACY-0001@H12"]);
    assert_eq!(r.matched.len(), 95 - 2 - 2 - 1);

    // Apply without saying how to register the unknown tube: refused, nothing written.
    let before = stored(&b.kura);
    let e = b
        .kura
        .reconcile_rack(
            file.as_bytes(),
            "scan.csv",
            "RK1",
            Order::Row,
            None,
            true,
            None,
        )
        .unwrap_err();
    assert!(e.to_string().contains("LEGACY-0001"), "{e}");
    assert_eq!(stored(&b.kura), before);
    // Apply: the store equals the scan (the unreadable tube stays where it was).
    let new = kura_app::rack::NewTubes {
        sample_type: "DNA".into(),
        container: "SCI".into(),
        storage: "D".into(),
        study: "Legacy".into(),
        donor: "L-1".into(),
    };
    let r = b
        .kura
        .reconcile_rack(
            file.as_bytes(),
            "scan.csv",
            "RK1",
            Order::Row,
            None,
            true,
            Some(&new),
        )
        .unwrap();
    let a = r.applied.unwrap();
    assert_eq!((a.moved, a.checked_out_missing, a.registered), (2, 2, 1));
    let mut want: BTreeMap<String, String> = scan
        .into_iter()
        .filter(|(_, c)| c.starts_with("FR") || c.starts_with("LEGACY"))
        .collect();
    want.insert("D5".into(), "FR00000041".into());
    assert_eq!(stored(&b.kura), want);
    for code in ["FR00000001", "FR00000002"] {
        let s = b.kura.show(code).unwrap();
        assert_eq!(
            s.status, "checked_out",
            "{code}: out as missing until found"
        );
    }
    // Scanned again, the rack matches.
    let again = b
        .kura
        .reconcile_rack(
            file.as_bytes(),
            "scan.csv",
            "RK1",
            Order::Row,
            None,
            false,
            None,
        )
        .unwrap();
    assert!(again.moved.is_empty() && again.missing.is_empty() && again.unexpected.is_empty());
}

#[test]
fn a_rack_scanned_rotated_is_named_not_ninety_six_moves() {
    let mut b = full_rack();
    // The reader saw H12 first: position p holds what the database has at the opposite corner.
    let mut file = String::from("Position,Barcode\n");
    for i in 0..96u32 {
        let code = match i {
            0 => "NO TUBE".to_string(),
            95 => "NO READ".to_string(),
            _ => format!("FR{:08}", 96 - i),
        };
        file.push_str(&format!("{},{code}\n", label(i)));
    }
    let r = b
        .kura
        .reconcile_rack(
            file.as_bytes(),
            "scan.csv",
            "RK1",
            Order::Row,
            None,
            false,
            None,
        )
        .unwrap();
    assert!(r.rotated, "named rotated");
    assert!(r.moved.is_empty(), "{} moves", r.moved.len());
    assert_eq!(r.matched.len(), 94);
    assert_eq!(r.unreadable[0].position, "A1");
    assert_eq!(r.unreadable[0].expected.as_deref(), Some("FR00000001"));
}

#[test]
fn space_says_where_new_tubes_fit() {
    let mut b = bench();
    let mut csv = String::from("code,type,container,storage,study,donor,box\n");
    for i in 0..80 {
        csv.push_str(&format!("SP{i:06},PL1,SCI,D,S,D-1,BX1\n"));
    }
    b.kura.import_csv(csv.as_bytes(), &mut |_, _| {}).unwrap();
    // (type, need, under, free, the boxes taking them, fits)
    let cases: &[(
        Option<&str>,
        Option<u64>,
        Option<&str>,
        u64,
        &[(&str, u64)],
        Option<bool>,
    )] = &[
        (
            Some("box-9x9"),
            Some(100),
            None,
            1 + 81 + 81,
            &[("BX1", 1), ("BX2", 81), ("BX3", 18)],
            Some(true),
        ),
        (
            Some("box-9x9"),
            Some(200),
            None,
            163,
            &[("BX1", 1), ("BX2", 81), ("BX3", 81)],
            Some(false),
        ),
        (
            None,
            Some(3),
            Some("R1"),
            163 + 25,
            &[("BX1", 1), ("SMALL", 2)],
            Some(true),
        ),
        (Some("box-5x5"), None, Some("F1"), 25, &[], None),
    ];
    for &(ty, need, under, free, takes, fits) in cases {
        let s = b.kura.space(ty, need, under).unwrap();
        assert_eq!(s.free, free, "{ty:?} {need:?} {under:?}");
        let got: Vec<(&str, u64)> = s.takes.iter().map(|t| (t.code.as_str(), t.tubes)).collect();
        assert_eq!(got, takes, "{ty:?} {need:?} {under:?}");
        assert_eq!(s.fits, fits);
    }
    let s = b.kura.space(Some("box-9x9"), None, None).unwrap();
    let f1 = s.places.iter().find(|p| p.code == "F1").unwrap();
    assert_eq!((f1.capacity, f1.free), (243, 163));
    assert!((f1.fill - 80.0 / 243.0).abs() < 1e-9);
    assert_eq!(
        b.kura.space(None, None, Some("NOPE")).unwrap_err().code(),
        "not_found"
    );
}
