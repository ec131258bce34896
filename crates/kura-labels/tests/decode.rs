//! Every stock, a varied set of IDs, rendered to PDF, rasterised by poppler's `pdftoppm` at the
//! stock's resolution and at 600 dpi, and read back by zxing-cpp (an independent decoder): every
//! symbol that was drawn must decode to exactly its data, and nothing else may be read.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

mod common;

use common::{kura_id, varied};
use kura_labels::layout;

use kura_labels::{BoxMapCell, BoxMapData, LabelData, LabelStock, Template, stock};

fn tools() {
    for (tool, hint) in [
        ("pdftoppm", "apt-get install poppler-utils"),
        ("python3", "install Python 3"),
    ] {
        let ok = Command::new(tool).arg("-v").output().is_ok()
            || Command::new(tool).arg("--version").output().is_ok();
        assert!(ok, "{tool} is missing ({hint}); scripts/setup installs it");
    }
}

/// Rasterises `pdf` at `dpi` and decodes every page: (page, format, text) in any order.
fn decode(pdf: &Path, dpi: u32) -> Vec<(usize, String, String)> {
    let dir = pdf.parent().unwrap();
    let stem = format!("{}-{dpi}", pdf.file_stem().unwrap().to_str().unwrap());
    let o = Command::new("pdftoppm")
        .args(["-r", &dpi.to_string(), "-png"])
        .arg(pdf)
        .arg(dir.join(&stem))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pdftoppm: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut pngs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&format!("{stem}-"))
                && p.extension().is_some_and(|x| x == "png")
        })
        .collect();
    pngs.sort();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/decode.py");
    let o = Command::new("python3")
        .arg(&script)
        .args(&pngs)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "zxing-cpp decode failed (pip install zxing-cpp pillow): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut out = Vec::new();
    for (page, line) in String::from_utf8(o.stdout).unwrap().lines().enumerate() {
        let v: serde_like::Decoded = serde_like::parse(line);
        for (f, t) in v.symbols {
            out.push((page, f, t));
        }
    }
    out
}

/// A tiny reader for the script's one-line JSON (no serde dependency in this crate).
mod serde_like {
    pub struct Decoded {
        pub symbols: Vec<(String, String)>,
    }
    pub fn parse(line: &str) -> Decoded {
        // {"file": "...", "symbols": [["DataMatrix", "X"], ...]}
        let start = line.find("\"symbols\": [").expect("symbols") + "\"symbols\": [".len();
        let body = &line[start..line.len() - 2];
        let mut symbols = Vec::new();
        let mut strings = Vec::new();
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => s.push(chars.next().unwrap()),
                        '"' => break,
                        c => s.push(c),
                    }
                }
                strings.push(s);
                if strings.len() == 2 {
                    let t = strings.pop().unwrap();
                    symbols.push((strings.pop().unwrap(), t));
                }
            }
        }
        Decoded { symbols }
    }
}

/// The symbols each page should hold, from the labels themselves: every label's own code, in
/// every symbology its template promises (vial and dot: a DataMatrix; box: a Code128 and a
/// DataMatrix). A symbol may be missing only where the layout said, naming that code and
/// symbology, that it was left off; the typical ID is never left off.
fn expected(stock: &LabelStock, labels: &[LabelData]) -> Vec<(usize, String, String)> {
    let promised: &[&str] = match stock.template {
        Template::Box => &["Code128", "DataMatrix"],
        _ => &["DataMatrix"],
    };
    let mut out = Vec::new();
    for (i, d) in labels.iter().enumerate() {
        let page = i / stock.per_page();
        let warnings = layout::layout(stock, d).warnings;
        for sym in promised {
            let dropped = warnings.iter().any(|w| {
                w.starts_with(&format!("{}: the {sym}", d.code)) && w.contains("left off")
            });
            assert!(
                !(dropped && d.code == kura_id("NCC260001234")),
                "{}: a typical ID lost its {sym}: {warnings:?}",
                stock.id
            );
            if !dropped {
                out.push((page, sym.to_string(), d.code.clone()));
            }
        }
    }
    out
}

fn counts(v: &[(usize, String, String)]) -> BTreeMap<(usize, String, String), usize> {
    let mut m = BTreeMap::new();
    for k in v {
        *m.entry(k.clone()).or_insert(0) += 1;
    }
    m
}

#[test]
fn every_stock_decodes_exactly_at_its_dpi_and_at_600() {
    tools();
    let dir = tempfile_dir();
    let labels = varied();
    for (id, _) in stock::BUILTIN {
        let stock = stock::builtin(id).unwrap();
        if stock.template == Template::BoxMap {
            continue;
        }
        let r = kura_labels::render_pdf(&stock, &labels).unwrap();
        let pdf = dir.join(format!("{id}.pdf"));
        std::fs::write(&pdf, &r.bytes).unwrap();
        let want = expected(&stock, &labels);
        assert!(
            want.len() >= labels.len(),
            "{id}: every label carries at least one symbol"
        );
        for dpi in [stock.dpi, 600] {
            let got = decode(&pdf, dpi);
            assert_eq!(
                counts(&got),
                counts(&want),
                "{id} at {dpi} dpi: decoded symbols differ from those drawn\nwarnings: {:?}",
                r.warnings
            );
        }
    }
}

#[test]
fn a_box_map_carries_its_box_barcode() {
    tools();
    let dir = tempfile_dir();
    let stock = stock::builtin("boxmap-a4").unwrap();
    let cells = (0..81)
        .map(|i| BoxMapCell {
            row: i / 9,
            col: i % 9,
            label: format!("{}{}", (b'A' + (i / 9) as u8) as char, i % 9 + 1),
            code: (i % 7 != 3).then(|| kura_id(&format!("NCC26{:07}", 100 + i))),
            kind: "PL1".into(),
            date: "2026-11-21".into(),
        })
        .collect();
    let map = BoxMapData {
        code: "F80-01-R01-B01".into(),
        name: "Box 1".into(),
        kind: "box".into(),
        path: "Kura Biobank › B1 フリーザー室 › −80 °C freezer 1 › Rack 1 › Box 1".into(),
        printed: "Printed 2026-11-21 09:30 +09:00 by tester".into(),
        title: "Box map / ボックスマップ（配置図）".into(),
        rows: 9,
        cols: 9,
        row_labels: (0..9).map(|r| ((b'A' + r) as char).to_string()).collect(),
        col_labels: (1..=9).map(|c| c.to_string()).collect(),
        cells,
        summary: "70 of 81 positions used".into(),
        matrix: None,
    };
    let r = kura_labels::render_box_map(&stock, &map).unwrap();
    let pdf = dir.join("boxmap.pdf");
    std::fs::write(&pdf, &r.bytes).unwrap();
    let got = decode(&pdf, 300);
    assert_eq!(
        got,
        vec![(0, "Code128".to_string(), "F80-01-R01-B01".to_string())]
    );
    let l = kura_labels::boxmap::layout(&stock, &map);
    let page = LabelStock {
        label: kura_labels::stock::LabelSize {
            width: 210.0,
            height: 297.0,
            shape: Default::default(),
        },
        ..stock
    };
    assert_eq!(layout::check(&page, &l), Vec::<String>::new());
}

#[test]
fn a_sheet_of_thirty_with_japanese_text_stays_small() {
    let stock = stock::builtin("cryo-38x13-a4").unwrap();
    let labels: Vec<LabelData> = (0..30)
        .map(|i| LabelData {
            code: kura_id(&format!("NCC26{i:07}")),
            check: None,
            lines: vec![
                "CEL 末梢血単核球（PBMC）1e6 cells".into(),
                "小児希少疾患研究・iPS細胞バンク".into(),
                format!("提供者 P-{i:04} · 2026-11-21"),
            ],
        })
        .collect();
    let r = kura_labels::render_pdf(&stock, &labels).unwrap();
    assert!(r.bytes.len() < 500 * 1024, "{} bytes", r.bytes.len());
    assert!(r.bytes.len() > 10 * 1024, "the glyph outlines are in it");
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "kura-labels-{}-{}",
        std::process::id(),
        std::thread::current()
            .name()
            .unwrap_or("t")
            .replace("::", "-")
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_shipment_label_carries_a_gs1_datamatrix() {
    tools();
    let dir = tempfile_dir();
    let stock = stock::builtin("box-2x1").unwrap();
    let hri = "(00)123456789012345675(400)SHIP-2026-0042";
    let labels = vec![LabelData {
        code: hri.into(),
        check: None,
        lines: vec!["Shipment to Kyoto / 送付先 京都".into(), "12 boxes".into()],
    }];
    let r = kura_labels::render_pdf(&stock, &labels).unwrap();
    let pdf = dir.join("gs1.pdf");
    std::fs::write(&pdf, &r.bytes).unwrap();
    let got = decode(&pdf, 600);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "DataMatrix");
    // zxing-cpp reports GS1 content in its human-readable form: the FNC1 was read as GS1.
    assert_eq!(got[0].2, hri);
}

#[test]
fn a_manifest_carries_its_shipment_and_each_box_as_the_receiver_scans_them() {
    tools();
    let dir = tempfile_dir();
    let stock = stock::builtin("boxmap-a4").unwrap();
    let shipment = "SHP-0193AB12-7";
    let boxes: Vec<BoxMapData> = ["F80-01-R01-B01", "F80-01-R01-B02"]
        .iter()
        .enumerate()
        .map(|(b, code)| BoxMapData {
            code: code.to_string(),
            name: code.to_string(),
            kind: "box".into(),
            path: format!("{shipment} → site:NCNP"),
            printed: String::new(),
            title: "Packed box / 梱包ボックス".into(),
            rows: 9,
            cols: 9,
            row_labels: (0..9).map(|r| ((b'A' + r) as char).to_string()).collect(),
            col_labels: (1..=9).map(|c| c.to_string()).collect(),
            cells: (0..5)
                .map(|i| BoxMapCell {
                    row: 0,
                    col: i,
                    label: format!("A{}", i + 1),
                    code: Some(kura_id(&format!("NCC26{:07}", 10 * b + i as usize))),
                    kind: "PL1".into(),
                    date: "2026-12-01".into(),
                })
                .collect(),
            summary: "5 tube(s)".into(),
            matrix: Some(format!("{shipment}/{code}")),
        })
        .collect();
    let m = kura_labels::ManifestData {
        shipment: shipment.into(),
        title: "Shipment manifest / 発送明細書".into(),
        cover: vec![
            ("From / 発送元".into(), "site NCC".into()),
            ("To / 発送先".into(), "site NCNP".into()),
            ("Courier / 運送業者".into(), "ヤマト運輸".into()),
        ],
        dangerous_goods: Some("UN 1845 Dry ice, 5.5 kg net".into()),
        boxes,
        columns: vec![("Kura ID".into(), 50.0), ("Type".into(), 30.0)],
        tubes: (0..90)
            .map(|i| vec![kura_id(&format!("NCC26{i:07}")), "PL1".into()])
            .collect(),
        printed: "Printed 2026-12-05 10:00 +09:00 by tester".into(),
    };
    let r = kura_labels::render_manifest(&stock, &m).unwrap();
    assert_eq!(r.warnings, Vec::<String>::new());
    assert_eq!(
        r.pages,
        1 + 2 + 2,
        "cover, two boxes, 90 tubes on two pages"
    );
    let pdf = dir.join("manifest.pdf");
    std::fs::write(&pdf, &r.bytes).unwrap();
    let mut got = decode(&pdf, 300);
    got.sort();
    let s = |p: usize, f: &str, t: &str| (p, f.to_string(), t.to_string());
    assert_eq!(
        got,
        vec![
            s(0, "DataMatrix", shipment),
            s(1, "Code128", "F80-01-R01-B01"),
            s(1, "DataMatrix", "SHP-0193AB12-7/F80-01-R01-B01"),
            s(2, "Code128", "F80-01-R01-B02"),
            s(2, "DataMatrix", "SHP-0193AB12-7/F80-01-R01-B02"),
        ]
    );
    // Every page's drawing stays on the page and nothing overlaps.
    let page = LabelStock {
        label: kura_labels::stock::LabelSize {
            width: 210.0,
            height: 297.0,
            shape: Default::default(),
        },
        ..stock.clone()
    };
    for b in &m.boxes {
        let l = kura_labels::boxmap::layout(&stock, b);
        assert_eq!(layout::check(&page, &l), Vec::<String>::new(), "{}", b.code);
    }
    let text = std::process::Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("UN 1845 Dry ice, 5.5 kg net"), "{text}");
}
