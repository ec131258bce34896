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
    Encode { data: String, symbology: &'static str, reason: String },
}

fn matrix_of(dm: DataMatrix) -> Matrix {
    let bm = dm.bitmap();
    let (w, h) = (bm.width(), bm.height());
    let mut dark = vec![false; w * h];
    for (x, y) in bm.pixels() {
        dark[y * w + x] = true;
    }
    Matrix { width: w, height: h, dark }
}

/// DataMatrix ECC 200 of `data` (smallest square symbol that holds it).
pub fn datamatrix(data: &str) -> Result<Matrix, SymbolError> {
    DataMatrix::encode_str(data, SymbolList::default().enforce_square())
        .map(matrix_of)
        .map_err(|e| SymbolError::Encode { data: data.into(), symbology: "DataMatrix", reason: format!("{e:?}") })
}

/// GS1 DataMatrix (FNC1 first): `data` is the element string with GS (0x1D) between variable
/// length fields, e.g. `b"01095011010209171719050810ABCD1234\x1d2110"`.
pub fn datamatrix_gs1(data: &[u8]) -> Result<Matrix, SymbolError> {
    DataMatrix::encode_gs1(data, SymbolList::default().enforce_square()).map(matrix_of).map_err(|e| SymbolError::Encode {
        data: String::from_utf8_lossy(data).into(),
        symbology: "GS1 DataMatrix",
        reason: format!("{e:?}"),
    })
}

/// The code-set plan for Code128 as `barcoders` reads it: a start character (`Ɓ` set B, `Ć`
/// set C) and switch characters where the set changes. Minimises the number of symbols.
pub fn code128_plan(data: &str) -> Result<String, SymbolError> {
    let b = data.as_bytes();
    if b.is_empty() || !b.iter().all(|c| (32..=126).contains(c)) {
        return Err(SymbolError::Encode { data: data.into(), symbology: "Code128", reason: "only printable ASCII".into() });
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
        let to_c = if digits2(i) { 1 + 1 + cost[i + 2][1] } else { INF };
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
        } else if digits2(i) && 1 + cost[i + 2][1] <= 1 + (1 + cost[i + 1][0]) {
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
    let c = barcoders::sym::code128::Code128::new(&plan)
        .map_err(|e| SymbolError::Encode { data: data.into(), symbology: "Code128", reason: format!("{e:?}") })?;
    Ok(c.encode().into_iter().map(|m| m == 1).collect())
}

/// How many symbols (characters, start, switches, check, stop) a plan makes; for tests.
pub fn code128_symbols(plan: &str) -> usize {
    let mut n = 0;
    let mut chars = plan.chars().peekable();
    let mut set_c = false;
    while let Some(ch) = chars.next() {
        match ch {
            'Ć' => {
                set_c = true;
                n += 1;
            }
            'Ɓ' | 'À' => {
                set_c = false;
                n += 1;
            }
            _ if set_c => {
                chars.next();
                n += 1;
            }
            _ => n += 1,
        }
    }
    n + 2 // check and stop
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
    fn datamatrix_sizes() {
        assert_eq!(datamatrix("NCC260001234X").unwrap().width, 16, "14 chars → 16 × 16");
        assert!(datamatrix_gs1(b"0104912345678904\x1d10ABC").is_ok());
    }
}
