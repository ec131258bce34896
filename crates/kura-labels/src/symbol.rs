//! Symbols as modules: DataMatrix ECC 200 (the `datamatrix` crate) and Code128 (`barcoders`,
//! with the code sets chosen here so that digit runs use set C where that is shorter).
//! Quiet zones are not part of a symbol; the layout adds them.

use datamatrix::{DataMatrix, SymbolList};

/// A 2D symbol: `dark[y * width + x]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    pub width: usize,
    pub height: usize,
    pub dark: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("{data:?} cannot be encoded as {symbology}: {reason}")]
    Encode {
        data: String,
        symbology: &'static str,
        reason: String,
    },
}

/// The bars of a Code128 as (first module, width in modules), left to right.
pub fn bar_runs(bars: &[bool]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bars.len() && !bars[i] {
            i += 1;
        }
        let start = i;
        while i < bars.len() && bars[i] {
            i += 1;
        }
        (i > start).then_some((start, i - start))
    })
}

fn matrix_of(dm: DataMatrix) -> Matrix {
    let bm = dm.bitmap();
    let (w, h) = (bm.width(), bm.height());
    let mut dark = vec![false; w * h];
    for (x, y) in bm.pixels() {
        dark[y * w + x] = true;
    }
    Matrix {
        width: w,
        height: h,
        dark,
    }
}

/// DataMatrix ECC 200 of `data` (smallest square symbol that holds it).
pub fn datamatrix(data: &str) -> Result<Matrix, SymbolError> {
    DataMatrix::encode_str(data, SymbolList::default().enforce_square())
        .map(matrix_of)
        .map_err(|e| SymbolError::Encode {
            data: data.into(),
            symbology: "DataMatrix",
            reason: format!("{e:?}"),
        })
}

/// GS1 DataMatrix (FNC1 first): `data` is the element string with GS (0x1D) between variable
/// length fields, e.g. `b"01095011010209171719050810ABCD1234\x1d2110"`.
pub fn datamatrix_gs1(data: &[u8]) -> Result<Matrix, SymbolError> {
    DataMatrix::encode_gs1(data, SymbolList::default().enforce_square())
        .map(matrix_of)
        .map_err(|e| SymbolError::Encode {
            data: String::from_utf8_lossy(data).into(),
            symbology: "GS1 DataMatrix",
            reason: format!("{e:?}"),
        })
}

/// GS1 Application Identifiers with a fixed data length (the rest are variable and end with GS
/// unless they come last).
const GS1_FIXED: &[(&str, usize)] = &[
    ("00", 18),
    ("01", 14),
    ("02", 14),
    ("03", 14),
    ("04", 16),
    ("11", 6),
    ("12", 6),
    ("13", 6),
    ("14", 6),
    ("15", 6),
    ("16", 6),
    ("17", 6),
    ("18", 6),
    ("19", 6),
    ("20", 2),
    ("31", 6),
    ("32", 6),
    ("33", 6),
    ("34", 6),
    ("35", 6),
    ("36", 6),
    ("41", 13),
];

/// A GS1 human-readable string, `(01)09501101020917(10)ABC(21)10`, as the element string a
/// GS1 DataMatrix encodes (GS after every variable-length field but the last). None if `hri`
/// is not in that form.
pub fn gs1_element_string(hri: &str) -> Option<Vec<u8>> {
    if !hri.starts_with('(') {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = hri;
    while !rest.is_empty() {
        let close = rest.find(')')?;
        let ai = &rest[1..close];
        if !(2..=4).contains(&ai.len()) || !ai.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let after = &rest[close + 1..];
        let end = after.find('(').unwrap_or(after.len());
        let data = &after[..end];
        if data.is_empty() {
            return None;
        }
        out.extend_from_slice(ai.as_bytes());
        out.extend_from_slice(data.as_bytes());
        let fixed = GS1_FIXED
            .iter()
            .find(|(p, _)| ai.starts_with(p))
            .map(|(_, n)| *n);
        rest = &after[end..];
        match fixed {
            Some(n) if data.len() != n => return None,
            Some(_) => {}
            None if !rest.is_empty() => out.push(0x1d),
            None => {}
        }
    }
    Some(out)
}

/// The DataMatrix a label carries: GS1 (FNC1 first) for a GS1 human-readable string, plain
/// ECC 200 otherwise.
pub fn label_matrix(code: &str) -> Result<Matrix, SymbolError> {
    match gs1_element_string(code) {
        Some(es) => datamatrix_gs1(&es),
        None => datamatrix(code),
    }
}

/// The code-set plan for Code128 as `barcoders` reads it: a start character (`Ɓ` set B, `Ć`
/// set C) and switch characters where the set changes. Minimises the number of symbols.
pub fn code128_plan(data: &str) -> Result<String, SymbolError> {
    let b = data.as_bytes();
    if b.is_empty() || !b.iter().all(|c| (32..=126).contains(c)) {
        return Err(SymbolError::Encode {
            data: data.into(),
            symbology: "Code128",
            reason: "only printable ASCII".into(),
        });
    }
    let n = b.len();
    const INF: usize = usize::MAX / 4;
    // cost[i][s]: symbols needed for b[i..] when the current set is s (0 = B, 1 = C).
    let mut cost = vec![[INF; 2]; n + 1];
    cost[n] = [0, 0];
    let digits2 = |i: usize| i + 1 < n && b[i].is_ascii_digit() && b[i + 1].is_ascii_digit();
    for i in (0..n).rev() {
        // In B: one character, or switch to C.
        let stay_b = 1 + cost[i + 1][0];
        let to_c = if digits2(i) {
            1 + 1 + cost[i + 2][1]
        } else {
            INF
        };
        // In C: a digit pair, or switch to B.
        let stay_c = if digits2(i) { 1 + cost[i + 2][1] } else { INF };
        let to_b = 1 + stay_b;
        cost[i][0] = stay_b.min(to_c);
        cost[i][1] = stay_c.min(to_b);
    }
    let mut set = if cost[0][1] < cost[0][0] { 1 } else { 0 };
    let mut out = String::from(if set == 1 { "Ć" } else { "Ɓ" });
    let mut i = 0;
    while i < n {
        if set == 0 {
            let stay = 1 + cost[i + 1][0];
            if digits2(i) && 2 + cost[i + 2][1] < stay {
                out.push('Ć');
                set = 1;
                continue;
            }
            out.push(b[i] as char);
            i += 1;
        } else if digits2(i) && cost[i + 2][1] < 1 + (1 + cost[i + 1][0]) {
            out.push(b[i] as char);
            out.push(b[i + 1] as char);
            i += 2;
        } else {
            out.push('Ɓ');
            set = 0;
        }
    }
    Ok(out)
}

/// Code128 modules (true = bar), start to stop, no quiet zone.
pub fn code128(data: &str) -> Result<Vec<bool>, SymbolError> {
    let plan = code128_plan(data)?;
    let c = barcoders::sym::code128::Code128::new(&plan).map_err(|e| SymbolError::Encode {
        data: data.into(),
        symbology: "Code128",
        reason: format!("{e:?}"),
    })?;
    Ok(c.encode().into_iter().map(|m| m == 1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_sets_are_optimal() {
        let cases = [
            ("12345678", "Ć12345678"),
            ("NCC2600012343", "ƁNCCĆ2600012343"),
            ("AB12", "ƁAB12"),
            ("1234567A", "Ć123456Ɓ7A"),
            ("123", "Ɓ123"),
            ("F80-01-R01-B01", "ƁF80-01-R01-B01"),
        ];
        for (data, plan) in cases {
            assert_eq!(code128_plan(data).unwrap(), plan, "{data}");
        }
        // Every plan encodes.
        for (data, _) in cases {
            assert!(code128(data).is_ok(), "{data}");
        }
    }

    #[test]
    fn code128_widths() {
        let m = code128("12345678").unwrap();
        // start + 4 pairs + check = 6 symbols × 11 modules + stop 13.
        assert_eq!(m.len(), 6 * 11 + 13);
        assert!(m[0] && *m.last().unwrap(), "starts and ends with a bar");
    }

    #[test]
    fn gs1_element_strings() {
        let cases: &[(&str, Option<&[u8]>)] = &[
            (
                "(01)09501101020917(17)190508(10)ABCD1234(21)10",
                Some(b"010950110102091717190508" as &[u8]),
            ),
            ("(00)123456789012345675", Some(b"00123456789012345675")),
            ("(01)123", None),
            ("NCC2600012343", None),
        ];
        for (hri, want) in cases {
            let got = gs1_element_string(hri);
            match want {
                Some(prefix) => {
                    assert!(got.as_ref().unwrap().starts_with(prefix), "{hri}: {got:?}")
                }
                None => assert_eq!(got, None, "{hri}"),
            }
        }
        assert_eq!(
            gs1_element_string("(01)09501101020917(10)AB(21)10").unwrap(),
            b"0109501101020917"
                .iter()
                .chain(b"10AB\x1d2110")
                .copied()
                .collect::<Vec<u8>>()
        );
    }

    #[test]
    fn datamatrix_sizes() {
        assert_eq!(
            datamatrix("NCC260001234X").unwrap().width,
            16,
            "14 chars → 16 × 16"
        );
        assert!(datamatrix_gs1(b"0104912345678904\x1d10ABC").is_ok());
    }
}

#[cfg(test)]
mod bar_run_tests {
    #[test]
    fn bar_runs_are_the_dark_stretches() {
        let check = |bars: &str, want: &[(usize, usize)]| {
            let b: Vec<bool> = bars.chars().map(|c| c == '1').collect();
            assert_eq!(super::bar_runs(&b).collect::<Vec<_>>(), want, "{bars}");
        };
        check("", &[]);
        check("000", &[]);
        check("1", &[(0, 1)]);
        check("11011100", &[(0, 2), (3, 3)]);
        check("0101", &[(1, 1), (3, 1)]);
    }
}
