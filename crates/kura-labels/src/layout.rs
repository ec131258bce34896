//! Where everything goes on one label, in mm from the label's top-left corner (y down).
//!
//! Rules: a symbol's module is a whole number of printer dots, at least 2 and at least the
//! stock's `min_module`; a symbol that cannot fit at that size is dropped with a warning, never
//! shrunk below it. Symbols sit on the printer's dot grid. Text is measured, then shrunk or cut
//! with an ellipsis; the ID itself is only ever shrunk. Nothing crosses the label edge or
//! another element; a Kura ID's check character stands apart in a frame.

use crate::stock::{LabelStock, Shape, Template};
use crate::symbol::{self, Matrix};
use crate::text::{self, ASCENT, DESCENT};

/// What a label says. `code` is what the symbols encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelData {
    pub code: String,
    /// A Kura ID's check character, shown apart from the data (None for tube codes, boxes).
    pub check: Option<char>,
    /// Further lines: type and quantity, study, donor and date; or a container's name and path.
    pub lines: Vec<String>,
}

impl LabelData {
    /// The ID as printed: data, then the check character apart.
    pub fn data_part(&self) -> &str {
        match self.check {
            Some(_) => &self.code[..self.code.len() - 1],
            None => &self.code,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.w
    }
    pub fn bottom(&self) -> f64 {
        self.y + self.h
    }
    pub fn overlaps(&self, o: &Rect) -> bool {
        const EPS: f64 = 1e-6;
        self.x < o.right() - EPS
            && o.x < self.right() - EPS
            && self.y < o.bottom() - EPS
            && o.y < self.bottom() - EPS
    }
    pub fn inside(&self, o: &Rect) -> bool {
        const EPS: f64 = 1e-6;
        self.x >= o.x - EPS
            && self.y >= o.y - EPS
            && self.right() <= o.right() + EPS
            && self.bottom() <= o.bottom() + EPS
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    /// A DataMatrix; `rect` includes the quiet zone, (`x`, `y`) is the first module.
    Matrix {
        rect: Rect,
        x: f64,
        y: f64,
        module: f64,
        dots: u32,
        matrix: Matrix,
        data: String,
    },
    /// A Code128; `rect` includes the quiet zones.
    Bars {
        rect: Rect,
        x: f64,
        y: f64,
        module: f64,
        dots: u32,
        height: f64,
        bars: Vec<bool>,
        data: String,
    },
    /// A line of text at `size` pt; `rect` spans ascender to descender.
    Text {
        rect: Rect,
        x: f64,
        baseline: f64,
        size: f64,
        text: String,
    },
    /// The check character in its frame.
    Check {
        rect: Rect,
        x: f64,
        baseline: f64,
        size: f64,
        ch: char,
        line: f64,
    },
    /// A filled rectangle (grid lines of a box map).
    Rule { rect: Rect },
}

impl Element {
    pub fn rect(&self) -> &Rect {
        match self {
            Element::Matrix { rect, .. }
            | Element::Bars { rect, .. }
            | Element::Text { rect, .. }
            | Element::Check { rect, .. }
            | Element::Rule { rect } => rect,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    pub elements: Vec<Element>,
    pub warnings: Vec<String>,
}

/// The module size for a symbol `modules` wide that must fit in `avail` mm: (mm, dots).
pub fn module_for(stock: &LabelStock, modules: usize, avail: f64) -> Option<(f64, u32)> {
    let dot = stock.dot();
    let k_min = 2u32.max((stock.min_module / dot - 1e-9).ceil() as u32);
    let k_max = k_min.max((stock.max_module / dot + 1e-9).floor() as u32);
    let k_fit = (avail / (modules as f64 * dot) + 1e-9).floor() as u32;
    let k = k_fit.min(k_max);
    (k >= k_min).then(|| (f64::from(k) * dot, k))
}

/// Rounds up to the dot grid.
fn snap_up(v: f64, dot: f64) -> f64 {
    (v / dot - 1e-9).ceil() * dot
}

pub const MIN_PT: f64 = 4.0;
const PT: f64 = 25.4 / 72.0;

/// Text height in mm for a size in pt (ascender + descender).
pub fn line_mm(size: f64) -> f64 {
    (ASCENT + DESCENT) * size * PT
}

fn text_el(x: f64, top: f64, size: f64, s: String) -> Element {
    let w = text::width_mm(&s, size);
    let h = line_mm(size);
    Element::Text {
        rect: Rect { x, y: top, w, h },
        x,
        baseline: top + ASCENT * size * PT,
        size,
        text: s,
    }
}

/// The ID (data and framed check character) in `w` mm at up to `max_pt`. Never cut.
fn id_line(out: &mut Layout, d: &LabelData, x: f64, top: f64, w: f64, max_pt: f64) {
    let data = d.data_part().to_string();
    let check_w = |size: f64| {
        d.check
            .map(|c| text::width_mm(&c.to_string(), size) + 0.9 * size * PT)
            .unwrap_or(0.0)
    };
    let total = |size: f64| text::width_mm(&data, size) + check_w(size);
    let mut size = max_pt;
    if total(size) > w {
        size = max_pt * w / total(max_pt) * 0.999;
    }
    if size < MIN_PT {
        out.warnings.push(format!(
            "{}: the ID is printed at {size:.1} pt, below the legible {MIN_PT} pt",
            d.code
        ));
    }
    out.elements.push(text_el(x, top, size, data.clone()));
    if let Some(c) = d.check {
        let gap = 0.25 * size * PT;
        let cx = x + text::width_mm(&data, size) + gap;
        let cw = check_w(size) - gap;
        let h = line_mm(size);
        out.elements.push(Element::Check {
            rect: Rect {
                x: cx,
                y: top,
                w: cw,
                h,
            },
            x: cx + (cw - text::width_mm(&c.to_string(), size)) / 2.0,
            baseline: top + ASCENT * size * PT,
            size,
            ch: c,
            line: (0.06 * size * PT).max(0.08),
        });
    }
}

/// Further lines, each fitted (shrunk, then cut with an ellipsis).
fn lines(out: &mut Layout, ls: &[String], x: f64, mut top: f64, w: f64, line_h: f64, max_pt: f64) {
    for l in ls {
        let (t, size) = text::fit(l, w, max_pt, MIN_PT);
        if t != *l {
            out.warnings
                .push(format!("text {l:?} was cut to {t:?} to fit"));
        }
        if !t.is_empty() {
            out.elements.push(text_el(x, top, size, t));
        }
        top += line_h;
    }
}

pub(crate) fn matrix_el(
    stock: &LabelStock,
    m: Matrix,
    data: &str,
    x: f64,
    y: f64,
    module: f64,
    dots: u32,
) -> Element {
    let q = module; // 1-module quiet zone
    let x = snap_up(x + q, stock.dot());
    let y = snap_up(y + q, stock.dot());
    Element::Matrix {
        rect: Rect {
            x: x - q,
            y: y - q,
            w: (m.width + 2) as f64 * module,
            h: (m.height + 2) as f64 * module,
        },
        x,
        y,
        module,
        dots,
        matrix: m,
        data: data.to_string(),
    }
}

/// Lays out one label of `stock`.
pub fn layout(stock: &LabelStock, d: &LabelData) -> Layout {
    match stock.template {
        Template::Vial => vial(stock, d),
        Template::Box => box_label(stock, d),
        Template::Dot => dot(stock, d),
        Template::BoxMap => Layout {
            warnings: vec!["box-map stocks print box maps, not labels".into()],
            ..Default::default()
        },
    }
}

fn vial(stock: &LabelStock, d: &LabelData) -> Layout {
    let mut out = Layout::default();
    let m = stock.margin;
    let (w, h) = (stock.label.width, stock.label.height);
    let inner_h = h - 2.0 * m;
    let mut text_x = m;
    match symbol::label_matrix(&d.code) {
        Ok(mx) => {
            // The largest module that leaves the ID legible beside the symbol.
            let modules = mx.width + 2;
            let mut placed = false;
            let mut avail = inner_h.min((w - 2.0 * m) * 0.45);
            while let Some((module, dots)) = module_for(stock, modules, avail) {
                let side = modules as f64 * module;
                let tx = m + side + 0.6;
                let need = text::width_mm(d.data_part(), MIN_PT + 1.0) + 1.5;
                if w - m - tx >= need || module_for(stock, modules, side - stock.dot()).is_none() {
                    let y = m + (inner_h - side) / 2.0;
                    out.elements
                        .push(matrix_el(stock, mx.clone(), &d.code, m, y, module, dots));
                    text_x = out.elements.last().map(|e| e.rect().right()).unwrap_or(m) + 0.6;
                    placed = true;
                    break;
                }
                avail = side - stock.dot();
            }
            if !placed {
                out.warnings.push(format!(
                    "{}: the DataMatrix does not fit at a scannable size on {}; it was left off",
                    d.code, stock.id
                ));
            }
        }
        Err(e) => out.warnings.push(e.to_string()),
    }
    let tw = w - m - text_x;
    let n = 1 + d.lines.len().min(3);
    let line_h = inner_h / n as f64;
    // 85 % of the line pitch: a little leading between lines.
    let max_pt = (0.85 * line_h / (ASCENT + DESCENT) / PT).min(9.0);
    id_line(&mut out, d, text_x, m, tw, max_pt);
    lines(
        &mut out,
        &d.lines[..d.lines.len().min(3)],
        text_x,
        m + line_h,
        tw,
        line_h,
        max_pt * 0.9,
    );
    out
}

fn box_label(stock: &LabelStock, d: &LabelData) -> Layout {
    let mut out = Layout::default();
    let m = stock.margin;
    let (w, h) = (stock.label.width, stock.label.height);
    let inner_w = w - 2.0 * m;
    let mut top = m;
    // A GS1 string goes into the GS1 DataMatrix only (a GS1-128 would need FNC1 handling).
    let linear = if symbol::gs1_element_string(&d.code).is_some() {
        None
    } else {
        Some(symbol::code128(&d.code))
    };
    match linear.unwrap_or_else(|| {
        Err(symbol::SymbolError::Encode {
            data: d.code.clone(),
            symbology: "Code128",
            reason: "GS1 data is carried by the GS1 DataMatrix".into(),
        })
    }) {
        Ok(bars) => {
            let modules = bars.len() + 20;
            match module_for(stock, modules, inner_w) {
                Some((module, dots)) => {
                    let bar_h = ((h - 2.0 * m) * 0.4).max(5.0);
                    let total = modules as f64 * module;
                    let x0 = snap_up(m + (inner_w - total) / 2.0, stock.dot());
                    let x = x0 + 10.0 * module;
                    let y = snap_up(top, stock.dot());
                    out.elements.push(Element::Bars {
                        rect: Rect { x: x0, y, w: total, h: bar_h },
                        x,
                        y,
                        module,
                        dots,
                        height: bar_h,
                        bars,
                        data: d.code.clone(),
                    });
                    top = y + bar_h + 3.0 * module.max(0.3);
                }
                None => out.warnings.push(format!(
                    "{}: the Code128 needs {modules} modules, more than {inner_w:.1} mm holds at a scannable module on {}; it was left off (the DataMatrix remains)",
                    d.code, stock.id
                )),
            }
        }
        Err(e) => out.warnings.push(e.to_string()),
    }
    let rest_h = h - m - top;
    let mut text_x = m;
    if let Ok(mx) = symbol::label_matrix(&d.code) {
        let modules = mx.width + 2;
        match module_for(stock, modules, rest_h.min(inner_w * 0.4)) {
            Some((module, dots)) => {
                out.elements
                    .push(matrix_el(stock, mx, &d.code, m, top, module, dots));
                text_x = out.elements.last().map(|e| e.rect().right()).unwrap_or(m) + 1.0;
            }
            None => out.warnings.push(format!(
                "{}: the DataMatrix does not fit at a scannable size on {}; it was left off",
                d.code, stock.id
            )),
        }
    }
    let tw = w - m - text_x;
    let n = 1 + d.lines.len().min(2);
    let line_h = rest_h / n as f64;
    let max_pt = (0.85 * line_h / (ASCENT + DESCENT) / PT).min(12.0);
    id_line(&mut out, d, text_x, top, tw, max_pt);
    lines(
        &mut out,
        &d.lines[..d.lines.len().min(2)],
        text_x,
        top + line_h,
        tw,
        line_h,
        max_pt * 0.8,
    );
    out
}

fn dot(stock: &LabelStock, d: &LabelData) -> Layout {
    let mut out = Layout::default();
    let r = stock.label.width / 2.0 - stock.margin;
    let (cx, cy) = (stock.label.width / 2.0, stock.label.height / 2.0);
    let inside = |x: f64, y: f64| ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() <= r + 1e-9;
    let short: String = {
        let s = d.data_part();
        s[s.len().saturating_sub(7)..].to_string()
    };
    let text_pt = 4.5;
    let th = line_mm(text_pt);
    let Ok(mx) = symbol::label_matrix(&d.code) else {
        out.warnings.push(format!("{}: cannot be encoded", d.code));
        return out;
    };
    let modules = mx.width + 2;
    let mut avail = 2.0 * r;
    while let Some((module, dots)) = module_for(stock, modules, avail) {
        let side = modules as f64 * module;
        let top = cy - (side + 0.2 + th) / 2.0;
        let (x0, x1, y1) = (cx - side / 2.0, cx + side / 2.0, top + side + 0.2 + th);
        let tw = text::width_mm(&short, text_pt);
        if inside(x0, top)
            && inside(x1, top)
            && inside(x0, top + side)
            && inside(x1, top + side)
            && inside(cx - tw / 2.0, y1)
            && inside(cx + tw / 2.0, y1)
        {
            let el = matrix_el(stock, mx.clone(), &d.code, x0, top, module, dots);
            let bottom = el.rect().bottom();
            out.elements.push(el);
            out.elements
                .push(text_el(cx - tw / 2.0, bottom + 0.2, text_pt, short));
            return out;
        }
        avail = side - stock.dot();
    }
    out.warnings.push(format!(
        "{}: the DataMatrix does not fit at a scannable size on {}; it was left off",
        d.code, stock.id
    ));
    let tw = text::width_mm(&short, text_pt);
    out.elements
        .push(text_el(cx - tw / 2.0, cy - th / 2.0, text_pt, short));
    out
}

/// Checks the layout rules: every element inside the label (inside the circle of a round one),
/// no two elements overlapping. Returns what is wrong.
pub fn check(stock: &LabelStock, l: &Layout) -> Vec<String> {
    let mut problems = Vec::new();
    let label = Rect {
        x: 0.0,
        y: 0.0,
        w: stock.label.width,
        h: stock.label.height,
    };
    let (cx, cy, r) = (
        stock.label.width / 2.0,
        stock.label.height / 2.0,
        stock.label.width / 2.0,
    );
    for (i, e) in l.elements.iter().enumerate() {
        let rc = e.rect();
        if !rc.inside(&label) {
            problems.push(format!("element {i} {rc:?} crosses the label edge"));
        }
        if stock.label.shape == Shape::Round {
            for (x, y) in [
                (rc.x, rc.y),
                (rc.right(), rc.y),
                (rc.x, rc.bottom()),
                (rc.right(), rc.bottom()),
            ] {
                if ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() > r + 1e-6 {
                    problems.push(format!("element {i} {rc:?} crosses the round edge"));
                    break;
                }
            }
        }
        for (j, o) in l.elements.iter().enumerate().skip(i + 1) {
            if rc.overlaps(o.rect())
                && !matches!(
                    (e, o),
                    (Element::Rule { .. }, _) | (_, Element::Rule { .. })
                )
            {
                problems.push(format!(
                    "elements {i} and {j} overlap: {rc:?} / {:?}",
                    o.rect()
                ));
            }
        }
        if let Element::Matrix { dots, .. } | Element::Bars { dots, .. } = e
            && *dots < 2
        {
            problems.push(format!("element {i} has modules of {dots} dot(s)"));
        }
    }
    problems
}
