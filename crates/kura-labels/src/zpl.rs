//! Layouts to ZPL II for Zebra thermal printers: `^BX` DataMatrix ECC 200, `^BC` Code128,
//! `^A0` text, `^CI28` UTF-8. Positions and module sizes are in printer dots.
//!
//! `^A0` draws ASCII only; most lab Zebras have no Asian font. Text with anything else in it
//! (a Japanese study name, °, µ) goes as a graphic field drawn from the bundled font where the
//! PDF puts it, unless the printer has a resident font that can draw it ([`ZplOptions::font`]).

use crate::layout::{Element, Layout};
use crate::raster;
use crate::stock::LabelStock;
use crate::text;

/// What a printer can do beyond plain ZPL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZplOptions {
    /// A font on the printer that draws all of Unicode the labels use (e.g. `E:TT0003M_.TTF`),
    /// bound with `^CW` and used for non-ASCII text instead of graphic fields.
    pub font: Option<String>,
}

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
pub fn label(stock: &LabelStock, l: &Layout, o: &ZplOptions) -> String {
    let dot = stock.dot();
    let (pw, ll) = (dots(stock.label.width, dot), dots(stock.label.height, dot));
    let mut z = format!("^XA\n^CI28\n^PW{pw}\n^LL{ll}\n^LH0,0\n");
    if let Some(f) = &o.font {
        z.push_str(&format!("^CWZ,{f}\n"));
    }
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
                rect,
                size,
                text: s,
                x,
                baseline,
            } => {
                let h = dots(size * 25.4 / 72.0, dot).max(8);
                let font = match &o.font {
                    _ if s.chars().all(text::is_builtin) => "0",
                    Some(_) => "Z",
                    None => {
                        // A graphic field over the text's box, a dot of slack around it.
                        let left = ((rect.x / dot).floor() as i64 - 1).max(0);
                        let top = ((rect.y / dot).floor() as i64 - 1).max(0);
                        let right = ((rect.right() / dot).ceil() as i64 + 1).min(pw);
                        let bottom = ((rect.bottom() / dot).ceil() as i64 + 1).min(ll);
                        if right > left && bottom > top {
                            let (w, hh) = ((right - left) as usize, (bottom - top) as usize);
                            let bm = raster::text_bitmap(
                                s,
                                *x,
                                *baseline,
                                *size,
                                dot,
                                (left, top, w, hh),
                            );
                            let total = bm.bytes_per_row * bm.height;
                            z.push_str(&format!(
                                "^FO{left},{top}^GFA,{total},{total},{},{}^FS\n",
                                bm.bytes_per_row,
                                bm.zpl_ascii()
                            ));
                        }
                        continue;
                    }
                };
                z.push_str(&format!(
                    "^FO{},{}^A{font}N,{h},{h}^FH^FD{}^FS\n",
                    dots(rect.x, dot),
                    dots(rect.y, dot),
                    field(s)
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
