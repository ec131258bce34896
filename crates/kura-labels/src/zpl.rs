//! Layouts to ZPL II for Zebra thermal printers: `^BX` DataMatrix ECC 200, `^BC` Code128,
//! `^A0` text, `^CI28` UTF-8. Positions and module sizes are in printer dots.

use crate::layout::{Element, Layout};
use crate::stock::LabelStock;

fn dots(mm: f64, dot: f64) -> i64 {
    (mm / dot).round() as i64
}

/// Escapes a field for `^FH`: `^`, `~` and `_` become `_5E`, `_7E`, `_5F`.
fn field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '^' => out.push_str("_5E"),
            '~' => out.push_str("_7E"),
            '_' => out.push_str("_5F"),
            c => out.push(c),
        }
    }
    out
}

/// One label as a ZPL format (`^XA` … `^XZ`).
pub fn label(stock: &LabelStock, l: &Layout) -> String {
    let dot = stock.dot();
    let mut z = format!(
        "^XA\n^CI28\n^PW{}\n^LL{}\n^LH0,0\n",
        dots(stock.label.width, dot),
        dots(stock.label.height, dot)
    );
    for e in &l.elements {
        match e {
            Element::Matrix {
                x,
                y,
                dots: k,
                matrix,
                data,
                ..
            } => {
                z.push_str(&format!(
                    "^FO{},{}^BXN,{k},200,{},{}^FH^FD{}^FS\n",
                    dots(*x, dot),
                    dots(*y, dot),
                    matrix.width,
                    matrix.height,
                    field(data)
                ));
            }
            Element::Bars {
                x,
                y,
                dots: k,
                height,
                data,
                ..
            } => {
                z.push_str(&format!(
                    "^FO{},{}^BY{k}^BCN,{},N,N,N,A^FH^FD{}^FS\n",
                    dots(*x, dot),
                    dots(*y, dot),
                    dots(*height, dot),
                    field(data)
                ));
            }
            Element::Text {
                rect, size, text, ..
            } => {
                let h = dots(size * 25.4 / 72.0, dot).max(8);
                z.push_str(&format!(
                    "^FO{},{}^A0N,{h},{h}^FH^FD{}^FS\n",
                    dots(rect.x, dot),
                    dots(rect.y, dot),
                    field(text)
                ));
            }
            Element::Check {
                rect,
                size,
                ch,
                line,
                ..
            } => {
                let h = dots(size * 25.4 / 72.0, dot).max(8);
                let t = dots(*line, dot).max(1);
                z.push_str(&format!(
                    "^FO{},{}^GB{},{},{}^FS\n^FO{},{}^A0N,{h},{h}^FH^FD{}^FS\n",
                    dots(rect.x, dot),
                    dots(rect.y, dot),
                    dots(rect.w, dot),
                    dots(rect.h, dot),
                    t,
                    dots(rect.x, dot) + t,
                    dots(rect.y, dot),
                    field(&ch.to_string())
                ));
            }
            Element::Rule { rect } => {
                z.push_str(&format!(
                    "^FO{},{}^GB{},{},{}^FS\n",
                    dots(rect.x, dot),
                    dots(rect.y, dot),
                    dots(rect.w, dot),
                    dots(rect.h, dot),
                    dots(rect.w.min(rect.h), dot).max(1)
                ));
            }
        }
    }
    z.push_str("^PQ1\n^XZ\n");
    z
}
