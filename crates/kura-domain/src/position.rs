//! Positions inside containers: stored as 0-based integer (row, col); rendered and parsed through
//! a container type's labelling schemes; "next free" decided by its fill order.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A position inside a container, 0-based. Linear containers use row 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pos {
    pub row: u16,
    pub col: u16,
}

impl Pos {
    pub const fn new(row: u16, col: u16) -> Pos {
        Pos { row, col }
    }
}

/// How one axis (rows or columns) is labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// 1, 2, 3, …
    Numbers,
    /// A, B, … Z, AA, AB, …
    Letters,
    /// As `Letters` but skipping I (common on 9 × 9 boxes).
    LettersSkipI,
    /// I, II, III, IV, …
    Roman,
}

const LETTERS_SKIP_I: &[u8] = b"ABCDEFGHJKLMNOPQRSTUVWXYZ";

impl Scheme {
    pub fn label(self, index: u16) -> String {
        match self {
            Scheme::Numbers => (u32::from(index) + 1).to_string(),
            Scheme::Letters => letters(index as usize, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            Scheme::LettersSkipI => letters(index as usize, LETTERS_SKIP_I),
            Scheme::Roman => roman(u32::from(index) + 1),
        }
    }

    /// Parses one axis label back to its 0-based index.
    pub fn parse(self, s: &str) -> Option<u16> {
        let s = s.trim().to_ascii_uppercase();
        if s.is_empty() {
            return None;
        }
        match self {
            Scheme::Numbers => s.parse::<u16>().ok().filter(|n| *n >= 1).map(|n| n - 1),
            Scheme::Letters => unletters(&s, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            Scheme::LettersSkipI => unletters(&s, LETTERS_SKIP_I),
            Scheme::Roman => (1..=3999u32)
                .find(|n| roman(*n) == s)
                .map(|n| (n - 1) as u16),
        }
    }

    fn is_numeric(self) -> bool {
        matches!(self, Scheme::Numbers)
    }
}

/// Whether two axis labels can be written next to each other without a separator (`A1`).
fn adjoins(a: Scheme, b: Scheme) -> bool {
    let letters = |s| matches!(s, Scheme::Letters | Scheme::LettersSkipI);
    (letters(a) && b.is_numeric()) || (a.is_numeric() && letters(b))
}

fn letters(mut i: usize, alphabet: &[u8]) -> String {
    let n = alphabet.len();
    let mut out = Vec::new();
    loop {
        out.push(alphabet[i % n]);
        if i < n {
            break;
        }
        i = i / n - 1;
    }
    out.reverse();
    out.into_iter().map(char::from).collect()
}

fn unletters(s: &str, alphabet: &[u8]) -> Option<u16> {
    let n = alphabet.len();
    let mut v: usize = 0;
    for b in s.bytes() {
        let d = alphabet.iter().position(|a| *a == b)?;
        v = v * n + d + 1;
        if v > usize::from(u16::MAX) {
            return None;
        }
    }
    u16::try_from(v - 1).ok()
}

fn roman(mut n: u32) -> String {
    const TABLE: &[(u32, &str)] = &[
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    let mut s = String::new();
    for (v, r) in TABLE {
        while n >= *v {
            s.push_str(r);
            n -= v;
        }
    }
    s
}

/// The corner the fill starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corner {
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

/// Which position is "next free": along rows or down columns, from a corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FillOrder {
    pub column_major: bool,
    pub from: Corner,
}

impl Default for FillOrder {
    fn default() -> Self {
        FillOrder {
            column_major: false,
            from: Corner::TopLeft,
        }
    }
}

/// A container type's positions: a grid, a line (canes, tubes), or none at all (rooms, shelves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "layout", rename_all = "snake_case")]
pub enum Geometry {
    Grid {
        rows: u16,
        cols: u16,
        row_scheme: Scheme,
        col_scheme: Scheme,
        fill: FillOrder,
    },
    Linear {
        slots: u16,
        scheme: Scheme,
    },
    Unpositioned,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum PositionError {
    #[error("{label:?} is not a position in a {shape} container")]
    BadLabel { label: String, shape: String },
    #[error("position {row},{col} (0-based) is outside a {shape} container")]
    Outside { row: u16, col: u16, shape: String },
    #[error("this container has no positions")]
    NoPositions,
}

impl Geometry {
    /// The common 9 × 9 cryobox: rows A–I, columns 1–9, row-major from the top left.
    pub fn grid(rows: u16, cols: u16) -> Geometry {
        Geometry::Grid {
            rows,
            cols,
            row_scheme: Scheme::Letters,
            col_scheme: Scheme::Numbers,
            fill: FillOrder::default(),
        }
    }

    pub fn capacity(&self) -> Option<usize> {
        match self {
            Geometry::Grid { rows, cols, .. } => Some(usize::from(*rows) * usize::from(*cols)),
            Geometry::Linear { slots, .. } => Some(usize::from(*slots)),
            Geometry::Unpositioned => None,
        }
    }

    pub fn shape(&self) -> String {
        match self {
            Geometry::Grid { rows, cols, .. } => format!("{rows}×{cols}"),
            Geometry::Linear { slots, .. } => format!("{slots}-slot"),
            Geometry::Unpositioned => "position-less".into(),
        }
    }

    pub fn contains(&self, p: Pos) -> bool {
        match self {
            Geometry::Grid { rows, cols, .. } => p.row < *rows && p.col < *cols,
            Geometry::Linear { slots, .. } => p.row == 0 && p.col < *slots,
            Geometry::Unpositioned => false,
        }
    }

    pub fn check(&self, p: Pos) -> Result<Pos, PositionError> {
        match self {
            Geometry::Unpositioned => Err(PositionError::NoPositions),
            g if g.contains(p) => Ok(p),
            g => Err(PositionError::Outside {
                row: p.row,
                col: p.col,
                shape: g.shape(),
            }),
        }
    }

    /// The human label of a position, e.g. `A1`, `I-9`, `III-2`, `12`.
    pub fn label(&self, p: Pos) -> String {
        match self {
            Geometry::Grid {
                row_scheme,
                col_scheme,
                ..
            } => {
                let r = row_scheme.label(p.row);
                let c = col_scheme.label(p.col);
                // Letters next to numbers read unambiguously; otherwise separate with '-'.
                if adjoins(*row_scheme, *col_scheme) {
                    format!("{r}{c}")
                } else {
                    format!("{r}-{c}")
                }
            }
            Geometry::Linear { scheme, .. } => scheme.label(p.col),
            Geometry::Unpositioned => String::new(),
        }
    }

    /// Parses a position label (`A1`, `a01`, `3-4`, `II-3`) for this geometry.
    pub fn parse(&self, label: &str) -> Result<Pos, PositionError> {
        let s = label.trim().to_ascii_uppercase();
        let bad = || PositionError::BadLabel {
            label: label.to_string(),
            shape: self.shape(),
        };
        let p = match self {
            Geometry::Unpositioned => return Err(PositionError::NoPositions),
            Geometry::Linear { scheme, .. } => Pos::new(0, scheme.parse(&s).ok_or_else(bad)?),
            Geometry::Grid {
                row_scheme,
                col_scheme,
                ..
            } => {
                let (r, c) = if let Some((r, c)) = s.split_once(['-', ',', ' ']) {
                    (r.to_string(), c.to_string())
                } else if adjoins(*row_scheme, *col_scheme) {
                    // Split where letters meet digits.
                    let cut = s
                        .char_indices()
                        .skip(1)
                        .find(|(i, ch)| ch.is_ascii_digit() != s.as_bytes()[i - 1].is_ascii_digit())
                        .map(|(i, _)| i)
                        .ok_or_else(bad)?;
                    (s[..cut].to_string(), s[cut..].to_string())
                } else {
                    return Err(bad());
                };
                let c = c.trim_start_matches('0');
                let c = if c.is_empty() { "0" } else { c };
                let r = r.trim_start_matches(|ch| ch == '0' && row_scheme.is_numeric());
                Pos::new(
                    row_scheme.parse(r).ok_or_else(bad)?,
                    col_scheme.parse(c).ok_or_else(bad)?,
                )
            }
        };
        self.check(p).map_err(|_| bad())
    }

    /// Every position in fill order.
    pub fn fill_sequence(&self) -> Vec<Pos> {
        match self {
            Geometry::Unpositioned => Vec::new(),
            Geometry::Linear { slots, .. } => (0..*slots).map(|c| Pos::new(0, c)).collect(),
            Geometry::Grid {
                rows, cols, fill, ..
            } => {
                let (rows, cols) = (*rows, *cols);
                let mut out = Vec::with_capacity(usize::from(rows) * usize::from(cols));
                let row_at = |i: u16| match fill.from {
                    Corner::TopLeft | Corner::TopRight => i,
                    Corner::BottomLeft | Corner::BottomRight => rows - 1 - i,
                };
                let col_at = |j: u16| match fill.from {
                    Corner::TopLeft | Corner::BottomLeft => j,
                    Corner::TopRight | Corner::BottomRight => cols - 1 - j,
                };
                if fill.column_major {
                    for j in 0..cols {
                        for i in 0..rows {
                            out.push(Pos::new(row_at(i), col_at(j)));
                        }
                    }
                } else {
                    for i in 0..rows {
                        for j in 0..cols {
                            out.push(Pos::new(row_at(i), col_at(j)));
                        }
                    }
                }
                out
            }
        }
    }

    /// The first position in fill order that `occupied` does not report as taken.
    pub fn next_free(&self, occupied: impl Fn(Pos) -> bool) -> Option<Pos> {
        self.fill_sequence().into_iter().find(|p| !occupied(*p))
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({},{})", self.row, self.col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: u16, cols: u16, rs: Scheme, cs: Scheme) -> Geometry {
        Geometry::Grid {
            rows,
            cols,
            row_scheme: rs,
            col_scheme: cs,
            fill: FillOrder::default(),
        }
    }

    #[test]
    fn labels_round_trip() {
        use Scheme::*;
        let cases = [
            (grid(9, 9, Letters, Numbers), Pos::new(0, 0), "A1"),
            (grid(9, 9, Letters, Numbers), Pos::new(8, 8), "I9"),
            (grid(9, 9, LettersSkipI, Numbers), Pos::new(8, 8), "J9"),
            (grid(8, 12, Letters, Numbers), Pos::new(7, 11), "H12"),
            (grid(10, 10, Numbers, Numbers), Pos::new(9, 2), "10-3"),
            (grid(5, 4, Roman, Numbers), Pos::new(3, 1), "IV-2"),
            (grid(30, 2, Letters, Letters), Pos::new(27, 1), "AB-B"),
            (
                Geometry::Linear {
                    slots: 6,
                    scheme: Numbers,
                },
                Pos::new(0, 5),
                "6",
            ),
        ];
        for (g, p, label) in cases {
            assert_eq!(g.label(p), label, "{g:?}");
            assert_eq!(g.parse(label), Ok(p), "{g:?} {label}");
            assert_eq!(g.parse(&label.to_lowercase()), Ok(p), "{g:?} {label}");
        }
    }

    #[test]
    fn lenient_parsing_and_errors() {
        let g = Geometry::grid(9, 9);
        assert_eq!(g.parse("a01"), Ok(Pos::new(0, 0)));
        assert_eq!(g.parse("B-3"), Ok(Pos::new(1, 2)));
        for bad in ["J1", "A10", "A0", "", "11", "AA"] {
            assert!(
                matches!(g.parse(bad), Err(PositionError::BadLabel { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            Geometry::Unpositioned.parse("A1"),
            Err(PositionError::NoPositions)
        );
        assert!(matches!(
            g.check(Pos::new(9, 0)),
            Err(PositionError::Outside { .. })
        ));
    }

    #[test]
    fn fill_orders() {
        let mk = |column_major, from| Geometry::Grid {
            rows: 2,
            cols: 3,
            row_scheme: Scheme::Letters,
            col_scheme: Scheme::Numbers,
            fill: FillOrder { column_major, from },
        };
        let seq = |g: Geometry| {
            g.fill_sequence()
                .iter()
                .map(|p| g.label(*p))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(seq(mk(false, Corner::TopLeft)), "A1 A2 A3 B1 B2 B3");
        assert_eq!(seq(mk(true, Corner::TopLeft)), "A1 B1 A2 B2 A3 B3");
        assert_eq!(seq(mk(false, Corner::BottomRight)), "B3 B2 B1 A3 A2 A1");
        assert_eq!(seq(mk(true, Corner::TopRight)), "A3 B3 A2 B2 A1 B1");
        let g = mk(false, Corner::TopLeft);
        assert_eq!(
            g.next_free(|p| p.row == 0 && p.col < 2),
            Some(Pos::new(0, 2))
        );
        assert_eq!(g.next_free(|_| true), None);
    }

    #[test]
    fn roman_and_letters() {
        assert_eq!(Scheme::Roman.label(8), "IX");
        assert_eq!(Scheme::Roman.parse("xiv"), Some(13));
        assert_eq!(Scheme::Letters.label(26), "AA");
        assert_eq!(Scheme::Letters.parse("AA"), Some(26));
        assert_eq!(Scheme::LettersSkipI.parse("I"), None);
    }
}
