//! ZPL verified the way the PDF is: every label stock × the table of inputs, rendered to ZPL for
//! printers of 203 and 300 dpi, drawn by an independent renderer (Zebrash, from npm's
//! `zpl-renderer-js`, in Node), decoded by zxing-cpp — every symbol drawn reads back exactly —
//! and compared with the PDF raster of the same label at the same dpi: no element missing, and
//! text that is not ASCII drawn as the PDF draws it (no empty boxes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::varied;
use kura_labels::layout::{self, Element};
use kura_labels::{LabelData, LabelStock, Template, ZplOptions, stock, text};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(cmd: &mut Command, what: &str) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (scripts/setup installs it)"));
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The symbols a label should carry at this stock and dpi (those the layout did not leave off).
fn expected(stock: &LabelStock, d: &LabelData) -> Vec<(String, String)> {
    let promised: &[&str] = match stock.template {
        Template::Box => &["Code128", "DataMatrix"],
        _ => &["DataMatrix"],
    };
    let warnings = layout::layout(stock, d).warnings;
    promised
        .iter()
        .filter(|sym| {
            !warnings
                .iter()
                .any(|w| w.starts_with(&format!("{}: the {sym}", d.code)) && w.contains("left off"))
        })
        .map(|sym| (sym.to_string(), d.code.clone()))
        .collect()
}

fn dots(mm: f64, dpi: u32) -> i64 {
    (mm * f64::from(dpi) / 25.4).round() as i64
}

#[test]
fn every_stock_prints_from_zpl_as_from_pdf_at_203_and_300_dpi() {
    let node_dir = root().join("tests/zpl");
    assert!(
        node_dir.join("node_modules/zpl-renderer-js").is_dir(),
        "zpl-renderer-js is missing: `npm ci` in tests/zpl (scripts/test does it)"
    );
    let dir = std::env::temp_dir().join(format!("kura-zpl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let labels = varied();
    let mut renders = Vec::new();
    let mut compares = Vec::new();
    let mut wanted: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut japanese_as_graphics = 0;
    for (id, _) in stock::BUILTIN {
        let base = stock::builtin(id).unwrap();
        if base.template == Template::BoxMap {
            continue;
        }
        for dpi in [203, 300] {
            let st = base.at_dpi(dpi).unwrap();
            let (w, h) = (dots(st.label.width, dpi), dots(st.label.height, dpi));
            let dpmm = if dpi == 203 { 8 } else { 12 };
            for (i, d) in labels.iter().enumerate() {
                let name = format!("{id}-{dpi}-{i}");
                let z =
                    kura_labels::render_zpl(&st, std::slice::from_ref(d), &ZplOptions::default())
                        .unwrap();
                let z = String::from_utf8(z.bytes).unwrap();
                assert!(
                    z.contains(&format!("^PW{w}\n^LL{h}\n")),
                    "{name}: the label in the printer's dots"
                );
                let l = layout::layout(&st, d);
                assert_eq!(layout::check(&st, &l), Vec::<String>::new(), "{name}");
                let mut elements = Vec::new();
                for e in &l.elements {
                    let r = e.rect();
                    let (what, glyphs) = match e {
                        Element::Matrix { .. } => ("DataMatrix".to_string(), json!([])),
                        Element::Bars { .. } => ("Code128".to_string(), json!([])),
                        Element::Text {
                            text: t, x, size, ..
                        } => {
                            // The boxes of the characters drawn from outlines.
                            let mut g = Vec::new();
                            let mut pen = *x;
                            for c in t.chars() {
                                let adv = text::advance(c) * size * 25.4 / 72.0;
                                if !text::is_builtin(c)
                                    && text::outline(c).is_some_and(|o| !o.is_empty())
                                {
                                    let gx = (pen * f64::from(dpi) / 25.4).floor() as i64;
                                    let gw =
                                        ((pen + adv) * f64::from(dpi) / 25.4).ceil() as i64 - gx;
                                    g.push(json!([
                                        gx,
                                        (r.y * f64::from(dpi) / 25.4).floor() as i64,
                                        gw,
                                        (r.h * f64::from(dpi) / 25.4).ceil() as i64 + 1
                                    ]));
                                }
                                pen += adv;
                            }
                            if !g.is_empty() {
                                japanese_as_graphics += 1;
                                // Not printer text: the renderer's font would draw boxes.
                                assert!(!z.contains(t.as_str()), "{name}: {t:?} sent as text");
                            }
                            (format!("text {t:?}"), json!(g))
                        }
                        Element::Check { ch, .. } => (format!("check {ch}"), json!([])),
                        Element::Rule { .. } => ("rule".to_string(), json!([])),
                    };
                    let (x0, y0) = (
                        (r.x * f64::from(dpi) / 25.4).floor() as i64,
                        (r.y * f64::from(dpi) / 25.4).floor() as i64,
                    );
                    let (x1, y1) = (
                        (r.right() * f64::from(dpi) / 25.4).ceil() as i64,
                        (r.bottom() * f64::from(dpi) / 25.4).ceil() as i64,
                    );
                    elements.push(
                        json!({"what": what, "rect": [x0, y0, x1 - x0, y1 - y0], "glyphs": glyphs}),
                    );
                }
                // The same label alone in a PDF, rasterised at the printer's dpi.
                let pdf = dir.join(format!("{name}.pdf"));
                std::fs::write(
                    &pdf,
                    kura_labels::render_pdf(&st, std::slice::from_ref(d))
                        .unwrap()
                        .bytes,
                )
                .unwrap();
                run(
                    Command::new("pdftoppm")
                        .args(["-r", &dpi.to_string(), "-png", "-singlefile"])
                        .arg(&pdf)
                        .arg(dir.join(format!("{name}-pdf"))),
                    "pdftoppm (poppler-utils)",
                );
                let (ox, oy) = st.origin(0);
                let origin = [dots(ox, dpi), dots(oy, dpi)];
                let zpng = dir.join(format!("{name}-zpl.png"));
                renders.push(json!({
                    "zpl": z,
                    "width_mm": w as f64 / f64::from(dpmm),
                    "height_mm": h as f64 / f64::from(dpmm),
                    "dpmm": dpmm,
                    "out": zpng,
                }));
                compares.push(json!({
                    "name": name,
                    "zpl_png": zpng,
                    "pdf_png": dir.join(format!("{name}-pdf.png")),
                    "origin": origin,
                    "size": [w, h],
                    "elements": elements,
                }));
                wanted.insert(zpng.display().to_string(), expected(&st, d));
            }
        }
    }
    assert!(japanese_as_graphics > 20, "the inputs have Japanese lines");
    let jobs = dir.join("jobs.json");
    std::fs::write(&jobs, serde_json::to_string(&renders).unwrap()).unwrap();
    run(
        Command::new("node")
            .arg(node_dir.join("render.mjs"))
            .arg(&jobs)
            .current_dir(&node_dir),
        "node with zpl-renderer-js",
    );
    // Every symbol drawn reads back, exactly, and nothing else.
    let pngs: Vec<&String> = wanted.keys().collect();
    let out = run(
        Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/decode.py"))
            .args(&pngs),
        "zxing-cpp (pip install zxing-cpp pillow)",
    );
    let mut failures = Vec::new();
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let file = v["file"].as_str().unwrap();
        let mut got: Vec<(String, String)> = v["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s[0].as_str().unwrap().to_string(),
                    s[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let mut want = wanted[file].clone();
        got.sort();
        want.sort();
        if got != want {
            failures.push(format!("{file}: decoded {got:?}, drawn {want:?}"));
        }
    }
    // Element by element against the PDF.
    let cmp = dir.join("compare.json");
    std::fs::write(&cmp, serde_json::to_string(&compares).unwrap()).unwrap();
    let out = run(
        Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compare.py"))
            .arg(&cmp),
        "python3 with pillow",
    );
    let mut worst = 1.0f64;
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        for p in v["problems"].as_array().unwrap() {
            failures.push(format!(
                "{}: {}",
                v["name"].as_str().unwrap(),
                p.as_str().unwrap()
            ));
        }
        for a in v["agreement"].as_array().unwrap() {
            worst = worst
                .min(a[1].as_f64().unwrap())
                .min(a[2].as_f64().unwrap());
        }
    }
    eprintln!(
        "{} labels; the least agreement of graphic text with the PDF: {worst:.3}",
        compares.len()
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_same_stock_on_203_and_300_dpi_is_the_same_size_in_whole_dots() {
    let labels = varied();
    for (id, _) in stock::BUILTIN {
        let base = stock::builtin(id).unwrap();
        if base.template == Template::BoxMap {
            continue;
        }
        for dpi in [203, 300, 600] {
            let st = base.at_dpi(dpi).unwrap();
            let dot = 25.4 / f64::from(dpi);
            for d in &labels {
                for e in layout::layout(&st, d).elements {
                    if let Element::Matrix {
                        x, y, module, dots, ..
                    }
                    | Element::Bars {
                        x, y, module, dots, ..
                    } = e
                    {
                        assert!(
                            (module - f64::from(dots) * dot).abs() < 1e-9,
                            "{id}@{dpi}: module is {dots} dots"
                        );
                        for v in [x, y] {
                            assert!(
                                ((v / dot) - (v / dot).round()).abs() < 1e-6,
                                "{id}@{dpi}: {v} mm is off the dot grid"
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(stock::builtin("box-2x1").unwrap().at_dpi(250).is_err());
}
