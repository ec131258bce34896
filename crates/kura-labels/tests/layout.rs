//! Layout rules as data: for every stock and a table of awkward inputs, nothing crosses the
//! label edge or another element, modules are whole dots (≥ 2) on the dot grid, and whatever
//! was left off or cut is reported.

use kura_labels::layout::{self, Element};
use kura_labels::{LabelData, Template, stock};

fn inputs() -> Vec<LabelData> {
    let long_study =
        "多施設共同前向きコホート研究（がんゲノム医療・認知症・小児希少疾患）第三期 2024–2030"
            .to_string();
    let long_type = "CEL Viable PBMC, cryopreserved in 10 % DMSO, 1.0e7 cells/vial".to_string();
    vec![
        LabelData {
            code: "AB1N".into(),
            check: Some('N'),
            lines: vec!["BLD".into()],
        },
        LabelData {
            code: "NCC2600012343".into(),
            check: Some('3'),
            lines: vec![
                long_type.clone(),
                long_study.clone(),
                "P-0001 · 2026-11-21".into(),
            ],
        },
        LabelData {
            code: "KYOTOBIOBANK26000000000123E".into(),
            check: Some('E'),
            lines: vec![
                long_type,
                long_study.clone(),
                "提供者 仮名ID 000123456789 · 2026-11-21".into(),
            ],
        },
        LabelData {
            code: "FS06551897".into(),
            check: None,
            lines: vec!["DNA".into(), long_study, String::new()],
        },
        LabelData {
            code: "F80-01-R01-B01".into(),
            check: None,
            lines: vec![
                "Box 1".into(),
                "Kura Demo Biobank › B1 フリーザー室 › −80 °C freezer F80-01 › Rack 1".into(),
            ],
        },
        LabelData {
            code: "12345678901234567890123456789012345".into(),
            check: None,
            lines: vec![],
        },
    ]
}

#[test]
fn no_element_crosses_an_edge_or_another() {
    for (id, _) in stock::BUILTIN {
        let stock = stock::builtin(id).unwrap();
        if stock.template == Template::BoxMap {
            continue;
        }
        for d in inputs() {
            let l = layout::layout(&stock, &d);
            assert_eq!(
                layout::check(&stock, &l),
                Vec::<String>::new(),
                "{id} / {}",
                d.code
            );
            let dot = stock.dot();
            let mut symbols = 0;
            for e in &l.elements {
                match e {
                    Element::Matrix {
                        x, y, module, dots, ..
                    }
                    | Element::Bars {
                        x, y, module, dots, ..
                    } => {
                        symbols += 1;
                        assert!(*dots >= 2, "{id}: {dots} dots per module");
                        assert!(
                            (module / dot - f64::from(*dots)).abs() < 1e-9,
                            "{id}: module is not whole dots"
                        );
                        assert!(
                            *module + 1e-9 >= stock.min_module.max(2.0 * dot),
                            "{id}: module below the stock's minimum"
                        );
                        for v in [x, y] {
                            assert!(
                                ((v / dot) - (v / dot).round()).abs() < 1e-6,
                                "{id}: symbol off the dot grid at {v}"
                            );
                        }
                    }
                    _ => {}
                }
            }
            let expected_symbols = if stock.template == Template::Box {
                2
            } else {
                1
            };
            if symbols < expected_symbols {
                assert!(
                    l.warnings.iter().any(|w| w.contains("left off")),
                    "{id} / {}: a dropped symbol must be reported",
                    d.code
                );
            }
            // The ID is printed whole: its data part as one text element and the check
            // character beside it. A tube-top dot has room for the last 7 characters only (the
            // DataMatrix carries the whole ID): exactly those, and said so here.
            let texts: Vec<&str> = l
                .elements
                .iter()
                .filter_map(|e| match e {
                    Element::Text { text, .. } => Some(text.as_str()),
                    _ => None,
                })
                .collect();
            let checks: Vec<char> = l
                .elements
                .iter()
                .filter_map(|e| match e {
                    Element::Check { ch, .. } => Some(*ch),
                    _ => None,
                })
                .collect();
            let data = d.data_part();
            let want = if stock.template == Template::Dot {
                &data[data.len().saturating_sub(7)..]
            } else {
                data
            };
            assert!(
                texts.contains(&want),
                "{id} / {}: {want:?} is not printed as one piece: {texts:?}",
                d.code
            );
            if stock.template != Template::Dot {
                assert_eq!(
                    checks,
                    d.check.into_iter().collect::<Vec<_>>(),
                    "{id} / {}: the check character",
                    d.code
                );
                assert_eq!(
                    format!("{data}{}", d.check.map(String::from).unwrap_or_default()),
                    d.code,
                    "{id}: data part and check character make the whole ID"
                );
            }
            if stock.template == Template::Vial && d.check.is_some() {
                assert!(
                    l.elements
                        .iter()
                        .any(|e| matches!(e, Element::Check { .. })),
                    "{id}: check character not set apart"
                );
            }
        }
    }
}

#[test]
fn cut_text_is_reported_and_ends_in_an_ellipsis() {
    let stock = stock::builtin("thermal-1.28x0.5").unwrap();
    let d = &inputs()[2];
    let l = layout::layout(&stock, d);
    assert!(
        l.warnings.iter().any(|w| w.contains("was cut")),
        "{:?}",
        l.warnings
    );
    assert!(
        l.elements
            .iter()
            .any(|e| matches!(e, Element::Text { text, .. } if text.ends_with("...")))
    );
}
