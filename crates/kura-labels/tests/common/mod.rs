//! Labels the tests print: one table of inputs for the PDF and the ZPL tests.
#![allow(dead_code)]

use kura_labels::LabelData;

pub fn kura_id(data: &str) -> String {
    // MOD 37-2 (the same algorithm as kura-domain; kept here so this test stands alone).
    let v = |c: u8| match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'A'..=b'Z' => u32::from(c - b'A') + 10,
        _ => 36,
    };
    let p = data.bytes().fold(0u32, |p, c| (2 * p + v(c)) % 37);
    let c = (1 + 74 - 2 * p) % 37;
    format!(
        "{data}{}",
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"[c as usize] as char
    )
}

/// IDs of every shape (short, typical, long, all digits, the `*` check character), tube codes
/// and a container, with Japanese and long lines.
pub fn varied() -> Vec<LabelData> {
    let star = (0..10_000)
        .map(|n| kura_id(&format!("NCC26{n:07}")))
        .find(|id| id.ends_with('*'))
        .unwrap();
    let ids = [
        kura_id("AB1"),                        // short
        kura_id("NCC260001234"),               // typical
        kura_id("2600012345678901234567"),     // all digits, long
        kura_id("KYOTOBIOBANK26000000000123"), // long
        star,                                  // the * check character
    ];
    let mut out: Vec<LabelData> = ids
        .iter()
        .map(|c| LabelData {
            code: c.clone(),
            check: c.chars().last(),
            lines: vec![
                "PL2 Plasma, double spun 0.25 mL".into(),
                "認知症コホート研究（多施設共同）".into(),
                "D0009876 · 2026-11-21".into(),
            ],
        })
        .collect();
    for tube in ["FS06551897", "0012345678"] {
        out.push(LabelData {
            code: tube.into(),
            check: None,
            lines: vec![
                "DNA 50 ug".into(),
                "がんゲノム研究".into(),
                "D1 · 2026-01-02".into(),
            ],
        });
    }
    // All ASCII with a long type; a line with µ and ° (not Japanese, still not in ^A0).
    out.push(LabelData {
        code: kura_id("NCC260004321"),
        check: Some(kura_id("NCC260004321").chars().last().unwrap()),
        lines: vec![
            "CEL Peripheral blood mononuclear cells (PBMC), cryopreserved 1e7 cells".into(),
            "Prospective cohort ABC-2024".into(),
            "D0001234 · 2026-11-21".into(),
        ],
    });
    out.push(LabelData {
        code: "0098765432".into(),
        check: None,
        lines: vec!["DNA 50 µg, −80 °C".into(), "ゲノム".into()],
    });
    out.push(LabelData {
        code: "F80-01-R01-B01".into(),
        check: None,
        lines: vec!["Box 1".into(), "F80-01 › Rack 1".into()],
    });
    out
}
