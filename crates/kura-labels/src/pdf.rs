//! Layouts to PDF (printpdf, no default features): symbols as filled rectangles on the dot
//! grid, ASCII text in Helvetica, other text as glyph outlines.

use printpdf::{
    BuiltinFont, Color, LinePoint, Mm, Op, PaintMode, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point,
    Polygon, PolygonRing, Pt, Rgb, TextItem, WindingOrder,
};

use crate::layout::{Element, Layout};
use crate::text;

const MM: f64 = 72.0 / 25.4;

/// Draws layouts onto pages; (x, y) in mm from the page's top-left.
pub struct PageBuilder {
    page_w: f64,
    page_h: f64,
    ops: Vec<Op>,
    rings: Vec<PolygonRing>,
}

impl PageBuilder {
    pub fn new(page_w: f64, page_h: f64) -> PageBuilder {
        PageBuilder {
            page_w,
            page_h,
            ops: vec![Op::SetFillColor { col: Color::Rgb(Rgb { r: 0.0, g: 0.0, b: 0.0, icc_profile: None }) }],
            rings: Vec::new(),
        }
    }

    fn pt(&self, x: f64, y: f64) -> Point {
        Point { x: Pt((x * MM) as f32), y: Pt(((self.page_h - y) * MM) as f32) }
    }

    /// A filled rectangle, top-left (x, y), in mm.
    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64) {
        let p = |a: f64, b: f64| LinePoint { p: self.pt(a, b), bezier: false };
        self.rings.push(PolygonRing { points: vec![p(x, y), p(x + w, y), p(x + w, y + h), p(x, y + h)] });
    }

    fn flush(&mut self) {
        if !self.rings.is_empty() {
            self.ops.push(Op::DrawPolygon {
                polygon: Polygon { rings: std::mem::take(&mut self.rings), mode: PaintMode::Fill, winding_order: WindingOrder::NonZero },
            });
        }
    }

    fn text(&mut self, x: f64, baseline: f64, size: f64, s: &str) {
        let mut pen = x;
        let mut run = String::new();
        let mut run_x = x;
        let flush_run = |ops: &mut Vec<Op>, run: &mut String, rx: f64, page_h: f64| {
            if run.is_empty() {
                return;
            }
            ops.push(Op::StartTextSection);
            ops.push(Op::SetFont { font: PdfFontHandle::Builtin(BuiltinFont::Helvetica), size: Pt(size as f32) });
            ops.push(Op::SetTextCursor { pos: Point { x: Pt((rx * MM) as f32), y: Pt(((page_h - baseline) * MM) as f32) } });
            ops.push(Op::ShowText { items: vec![TextItem::Text(std::mem::take(run))] });
            ops.push(Op::EndTextSection);
        };
        for c in s.chars() {
            let adv = text::advance(c) * size / MM;
            if text::is_builtin(c) {
                if run.is_empty() {
                    run_x = pen;
                }
                run.push(c);
            } else {
                flush_run(&mut self.ops, &mut run, run_x, self.page_h);
                if let Some(outline) = text::outline(c) {
                    let em = size / MM; // mm per em
                    for ring in outline {
                        let points = ring
                            .iter()
                            .map(|&(gx, gy, bezier)| LinePoint { p: self.pt(pen + gx * em, baseline - gy * em), bezier })
                            .collect();
                        self.rings.push(PolygonRing { points });
                    }
                }
            }
            pen += adv;
        }
        flush_run(&mut self.ops, &mut run, run_x, self.page_h);
    }

    /// Draws a layout with its top-left corner at (ox, oy) mm.
    pub fn draw(&mut self, l: &Layout, ox: f64, oy: f64) {
        for e in &l.elements {
            match e {
                Element::Matrix { x, y, module, matrix, .. } => {
                    for row in 0..matrix.height {
                        let mut col = 0;
                        while col < matrix.width {
                            if matrix.dark[row * matrix.width + col] {
                                let start = col;
                                while col < matrix.width && matrix.dark[row * matrix.width + col] {
                                    col += 1;
                                }
                                self.rect(ox + x + start as f64 * module, oy + y + row as f64 * module, (col - start) as f64 * module, *module);
                            } else {
                                col += 1;
                            }
                        }
                    }
                    self.flush();
                }
                Element::Bars { x, y, module, dots, height, bars, .. } => {
                    // Bar width reduction: a tenth of a printer dot off each edge, so that a
                    // rasteriser painting every touched pixel does not widen the bars.
                    let bwr = 0.1 * module / f64::from(*dots);
                    let mut i = 0;
                    while i < bars.len() {
                        if bars[i] {
                            let start = i;
                            while i < bars.len() && bars[i] {
                                i += 1;
                            }
                            self.rect(ox + x + start as f64 * module + bwr, oy + y, (i - start) as f64 * module - 2.0 * bwr, *height);
                        } else {
                            i += 1;
                        }
                    }
                    self.flush();
                }
                Element::Text { x, baseline, size, text, .. } => {
                    self.text(ox + x, oy + baseline, *size, text);
                    self.flush();
                }
                Element::Check { rect, x, baseline, size, ch, line } => {
                    self.text(ox + x, oy + baseline, *size, &ch.to_string());
                    let (rx, ry, rw, rh) = (ox + rect.x, oy + rect.y, rect.w, rect.h);
                    self.rect(rx, ry, rw, *line);
                    self.rect(rx, ry + rh - line, rw, *line);
                    self.rect(rx, ry, *line, rh);
                    self.rect(rx + rw - line, ry, *line, rh);
                    self.flush();
                }
                Element::Rule { rect } => {
                    self.rect(ox + rect.x, oy + rect.y, rect.w, rect.h);
                }
            }
        }
        self.flush();
    }

    pub fn finish(mut self) -> PdfPage {
        self.flush();
        PdfPage::new(Mm(self.page_w as f32), Mm(self.page_h as f32), self.ops)
    }
}

/// Serializes pages into one PDF document.
pub fn document(title: &str, pages: Vec<PdfPage>) -> Vec<u8> {
    let mut doc = PdfDocument::new(title);
    let mut warnings = Vec::new();
    doc.with_pages(pages).save(&PdfSaveOptions::default(), &mut warnings)
}
