//! The A4 box map for the freezer door (and for when the computers are down): the grid with
//! every position's specimen ID, type and date, the box's own barcode, its location path and the
//! print time.

use crate::layout::{self, Element, Layout, Rect};
use crate::stock::LabelStock;
use crate::symbol;
use crate::text;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxMapCell {
    pub row: u16,
    pub col: u16,
    /// The position label, e.g. `A1`.
    pub label: String,
    pub code: Option<String>,
    /// Sample type (and a status note when not simply stored), e.g. `PL1`, `PL1 OUT`.
    pub kind: String,
    /// YYYY-MM-DD.
    pub date: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxMapData {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub path: String,
    /// "printed 2026-11-21 10:30 +09:00 by …"
    pub printed: String,
    pub title: String,
    pub rows: u16,
    pub cols: u16,
    pub row_labels: Vec<String>,
    pub col_labels: Vec<String>,
    pub cells: Vec<BoxMapCell>,
    pub summary: String,
    /// A DataMatrix for the header beside the box's Code128 (a shipment's `SHIPMENT/BOX`).
    pub matrix: Option<String>,
}

const PT: f64 = 25.4 / 72.0;

pub(crate) fn text_at(out: &mut Layout, x: f64, top: f64, w: f64, max_pt: f64, s: &str) -> f64 {
    let (t, size) = text::fit(s, w, max_pt, 3.5);
    let h = layout::line_mm(size);
    if !t.is_empty() {
        out.elements.push(Element::Text {
            rect: Rect {
                x,
                y: top,
                w: text::width_mm(&t, size),
                h,
            },
            x,
            baseline: top + text::ASCENT * size * PT,
            size,
            text: t,
        });
    }
    h
}

/// Lays out a box map on the A4 `stock` (mm from the page's top-left).
pub fn layout(stock: &LabelStock, m: &BoxMapData) -> Layout {
    let mut out = Layout::default();
    let (pw, ph) = (stock.page.width, stock.page.height);
    let margin = 10.0;
    let width = pw - 2.0 * margin;
    let mut y = margin;
    // Header: barcode on the right, text on the left.
    let mut text_w = width;
    let mut header_h: f64 = 14.0;
    if let Ok(bars) = symbol::code128(&m.code) {
        let modules = bars.len() + 20;
        if let Some((module, dots)) = layout::module_for(stock, modules, width * 0.45) {
            let total = modules as f64 * module;
            let x0 = ((margin + width - total) / stock.dot()).floor() * stock.dot();
            let h = 12.0;
            out.elements.push(Element::Bars {
                rect: Rect {
                    x: x0,
                    y,
                    w: total,
                    h,
                },
                x: x0 + 10.0 * module,
                y,
                module,
                dots,
                height: h,
                bars,
                data: m.code.clone(),
            });
            text_w = x0 - margin - 2.0;
            if let Some(data) = &m.matrix {
                match symbol::datamatrix(data) {
                    Ok(mx) => {
                        let modules = mx.width + 2;
                        match layout::module_for(stock, modules, 18.0) {
                            Some((module, dots)) => {
                                let side = modules as f64 * module;
                                let x = x0 - 3.0 - side;
                                out.elements
                                    .push(layout::matrix_el(stock, mx, data, x, y, module, dots));
                                text_w = x - margin - 2.0;
                                header_h = header_h.max(side);
                            }
                            None => out
                                .warnings
                                .push(format!("{data}: the DataMatrix does not fit on the page")),
                        }
                    }
                    Err(e) => out.warnings.push(e.to_string()),
                }
            }
        } else {
            out.warnings.push(format!(
                "{}: the box's Code128 does not fit on the box map",
                m.code
            ));
        }
    }
    y += text_at(
        &mut out,
        margin,
        y,
        text_w,
        14.0,
        &format!("{} — {}", m.title, m.code),
    ) + 1.0;
    y += text_at(&mut out, margin, y, text_w, 8.0, &m.path) + 0.8;
    y += text_at(&mut out, margin, y, text_w, 7.0, &m.printed) + 0.8;
    y = y.max(margin + header_h) + 3.0;
    // The grid.
    let (rows, cols) = (f64::from(m.rows.max(1)), f64::from(m.cols.max(1)));
    let head = 7.0;
    let bottom_room = 10.0;
    let cell_w = (width - head) / cols;
    let cell_h = ((ph - margin - bottom_room - y - head) / rows)
        .min(cell_w * 0.9)
        .max(6.0);
    let gx = margin + head;
    let gy = y + head;
    let line = 0.2;
    for (c, l) in m.col_labels.iter().enumerate() {
        let x = gx + c as f64 * cell_w;
        let lw = text::width_mm(l, 8.0).min(cell_w - 1.0);
        text_at(
            &mut out,
            x + (cell_w - lw) / 2.0,
            y + 1.5,
            cell_w - 1.0,
            8.0,
            l,
        );
    }
    for (r, l) in m.row_labels.iter().enumerate() {
        let top = gy + r as f64 * cell_h + (cell_h - layout::line_mm(8.0)) / 2.0;
        text_at(&mut out, margin + 0.5, top, head - 1.5, 8.0, l);
    }
    for r in 0..=m.rows {
        out.elements.push(Element::Rule {
            rect: Rect {
                x: gx,
                y: gy + f64::from(r) * cell_h,
                w: cols * cell_w + line,
                h: line,
            },
        });
    }
    for c in 0..=m.cols {
        out.elements.push(Element::Rule {
            rect: Rect {
                x: gx + f64::from(c) * cell_w,
                y: gy,
                w: line,
                h: rows * cell_h + line,
            },
        });
    }
    let pad = 0.8;
    for cell in &m.cells {
        let x = gx + f64::from(cell.col) * cell_w + pad;
        let mut top = gy + f64::from(cell.row) * cell_h + pad;
        let w = cell_w - 2.0 * pad;
        top += text_at(&mut out, x, top, w, 5.0, &cell.label) + 0.3;
        if let Some(code) = &cell.code {
            top += text_at(&mut out, x, top, w, 6.5, code) + 0.3;
            top += text_at(&mut out, x, top, w, 5.5, &cell.kind) + 0.2;
            text_at(&mut out, x, top, w, 5.5, &cell.date);
        }
    }
    let foot = gy + rows * cell_h + 3.0;
    text_at(&mut out, margin, foot, width, 8.0, &m.summary);
    out
}
