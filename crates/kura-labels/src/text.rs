//! Text: measured before it is placed, never guessed. ASCII is set in the PDF's built-in
//! Helvetica (real text, a few bytes a glyph) with its standard widths; everything else
//! (Japanese study names, °, µ …) is drawn from the outlines of the bundled BIZ UDPGothic, so a
//! PDF carries exactly the glyphs it uses and nothing else of the 4.6 MB font.

use std::sync::OnceLock;

/// Helvetica advance widths (1/1000 em) for ASCII 32..=126, from the standard AFM metrics.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
    278, // space … /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0-9
    278, 278, 584, 584, 584, 556, 1015, // : ; < = > ? @
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667,
    611, 722, 667, 944, 667, 667, 611, // A-Z
    278, 278, 278, 469, 556, 333, // [ \ ] ^ _ `
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500,
    278, 556, 500, 722, 500, 500, 500, // a-z
    334, 260, 334, 584, // { | } ~
];

/// Helvetica's ascender and descender, em.
pub const ASCENT: f64 = 0.718;
pub const DESCENT: f64 = 0.207;

pub const FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/BIZUDPGothic-Regular.ttf");

// Cannot fail: the font is compiled in (`assets/fonts/`), and every label test measures with it.
#[allow(clippy::expect_used)]
pub fn face() -> &'static ttf_parser::Face<'static> {
    static FACE: OnceLock<ttf_parser::Face<'static>> = OnceLock::new();
    FACE.get_or_init(|| ttf_parser::Face::parse(FONT_BYTES, 0).expect("the bundled font parses"))
}

pub fn is_builtin(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// The advance of `c` in em.
pub fn advance(c: char) -> f64 {
    if is_builtin(c) {
        return f64::from(HELVETICA[c as usize - 32]) / 1000.0;
    }
    let f = face();
    f.glyph_index(c)
        .and_then(|g| f.glyph_hor_advance(g))
        .map(|a| f64::from(a) / f64::from(f.units_per_em()))
        .unwrap_or(1.0)
}

/// Width of `s` at `size_pt`, in mm.
pub fn width_mm(s: &str, size_pt: f64) -> f64 {
    s.chars().map(advance).sum::<f64>() * size_pt * 25.4 / 72.0
}

pub const ELLIPSIS: &str = "...";

/// Fits `s` into `max_w` mm: the largest size ≤ `max_pt` that fits, not below `min_pt`; if it
/// still does not fit at `min_pt`, it is cut and ends in an ellipsis. Returns (text, size).
pub fn fit(s: &str, max_w: f64, max_pt: f64, min_pt: f64) -> (String, f64) {
    let w = width_mm(s, max_pt);
    if w <= max_w {
        return (s.to_string(), max_pt);
    }
    let size = max_pt * max_w / w;
    if size >= min_pt {
        // Round down a little so that rounding in the viewer never pushes it over.
        return (s.to_string(), size * 0.999);
    }
    let mut chars: Vec<char> = s.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let t: String = chars.iter().collect::<String>().trim_end().to_string() + ELLIPSIS;
        if width_mm(&t, min_pt) <= max_w {
            return (t, min_pt);
        }
    }
    (String::new(), min_pt)
}

/// One outline: rings of points in em units (y up), each point flagged when it is a Bézier
/// control point (cubic: two controls then the end point).
pub type Outline = Vec<Vec<(f64, f64, bool)>>;

struct Builder {
    rings: Outline,
    cur: Vec<(f64, f64, bool)>,
    last: (f64, f64),
    scale: f64,
}

impl ttf_parser::OutlineBuilder for Builder {
    fn move_to(&mut self, x: f32, y: f32) {
        if !self.cur.is_empty() {
            self.rings.push(std::mem::take(&mut self.cur));
        }
        let p = (f64::from(x) * self.scale, f64::from(y) * self.scale);
        self.cur.push((p.0, p.1, false));
        self.last = p;
    }
    fn line_to(&mut self, x: f32, y: f32) {
        let p = (f64::from(x) * self.scale, f64::from(y) * self.scale);
        self.cur.push((p.0, p.1, false));
        self.last = p;
    }
    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        let (q, p) = (
            (f64::from(x1) * self.scale, f64::from(y1) * self.scale),
            (f64::from(x) * self.scale, f64::from(y) * self.scale),
        );
        let c1 = (
            self.last.0 + 2.0 / 3.0 * (q.0 - self.last.0),
            self.last.1 + 2.0 / 3.0 * (q.1 - self.last.1),
        );
        let c2 = (p.0 + 2.0 / 3.0 * (q.0 - p.0), p.1 + 2.0 / 3.0 * (q.1 - p.1));
        self.cur.push((c1.0, c1.1, true));
        self.cur.push((c2.0, c2.1, true));
        self.cur.push((p.0, p.1, false));
        self.last = p;
    }
    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        let s = self.scale;
        self.cur.push((f64::from(x1) * s, f64::from(y1) * s, true));
        self.cur.push((f64::from(x2) * s, f64::from(y2) * s, true));
        self.cur.push((f64::from(x) * s, f64::from(y) * s, false));
        self.last = (f64::from(x) * s, f64::from(y) * s);
    }
    fn close(&mut self) {
        if !self.cur.is_empty() {
            self.rings.push(std::mem::take(&mut self.cur));
        }
    }
}

/// The outline of `c` in em units, or None for a glyph the font lacks (it is drawn as nothing
/// but still advances).
pub fn outline(c: char) -> Option<Outline> {
    let f = face();
    let g = f.glyph_index(c)?;
    let mut b = Builder {
        rings: Vec::new(),
        cur: Vec::new(),
        last: (0.0, 0.0),
        scale: 1.0 / f64::from(f.units_per_em()),
    };
    f.outline_glyph(g, &mut b)?;
    if !b.cur.is_empty() {
        b.rings.push(b.cur);
    }
    Some(b.rings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measuring_and_fitting() {
        assert!((width_mm("0", 72.0) - 0.556 * 25.4).abs() < 1e-9);
        assert!(width_mm("認知症", 10.0) > width_mm("abc", 10.0));
        let cases = [
            ("short", 20.0, 8.0, "short", 8.0),
            ("a rather long study name", 20.0, 8.0, "", 0.0),
            (
                "がんゲノム研究 2024 前向きコホート 多施設共同",
                15.0,
                7.0,
                "...",
                4.0,
            ),
        ];
        for (s, w, max, want, size) in cases {
            let (t, got) = fit(s, w, max, 4.0);
            assert!(width_mm(&t, got) <= w + 1e-9, "{s}: {t} at {got}");
            if !want.is_empty() {
                assert!(t.ends_with(want) || t == want, "{s}: {t}");
            }
            if size > 0.0 {
                assert!((got - size).abs() < 1e-9, "{s}: size {got}");
            }
        }
        assert!(outline('検').is_some_and(|o| !o.is_empty()));
    }
}
