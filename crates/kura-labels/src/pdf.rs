//! Layouts to PDF (printpdf, no default features): symbols as filled rectangles on the dot
//! grid, ASCII text in Helvetica, other text as glyph outlines.

use std::collections::HashMap;

use printpdf::{
    BuiltinFont, Color, DictItem, ExternalStream, ExternalXObject, LinePoint, Mm, Op, PaintMode,
    PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Polygon, PolygonRing, Pt, Rgb,
    TextItem, WindingOrder, XObject, XObjectId, XObjectTransform,
};

use crate::layout::{Element, Layout};
use crate::text;

const MM: f64 = 72.0 / 25.4;

/// The glyphs a document draws from outlines, each defined once as a form XObject (in
/// 1/1000 em) and placed wherever it is used.
#[derive(Default)]
pub struct Glyphs {
    ids: HashMap<char, Option<XObjectId>>,
    objects: Vec<(XObjectId, XObject)>,
}

impl Glyphs {
    fn get(&mut self, c: char) -> Option<XObjectId> {
        if let Some(id) = self.ids.get(&c) {
            return id.clone();
        }
        let id = text::outline(c).filter(|o| !o.is_empty()).map(|outline| {
            let mut content = String::new();
            let f = |v: f64| format!("{:.1}", v * 1000.0);
            for ring in outline {
                let mut pts = ring.iter();
                if let Some(&(x, y, _)) = pts.next() {
                    content.push_str(&format!("{} {} m\n", f(x), f(y)));
                }
                let mut ctrl: Vec<(f64, f64)> = Vec::new();
                for &(x, y, bezier) in pts {
                    if bezier {
                        ctrl.push((x, y));
                    } else if ctrl.len() == 2 {
                        content.push_str(&format!(
                            "{} {} {} {} {} {} c\n",
                            f(ctrl[0].0),
                            f(ctrl[0].1),
                            f(ctrl[1].0),
                            f(ctrl[1].1),
                            f(x),
                            f(y)
                        ));
                        ctrl.clear();
                    } else {
                        content.push_str(&format!("{} {} l\n", f(x), f(y)));
                        ctrl.clear();
                    }
                }
                content.push_str("h\n");
            }
            content.push_str("f\n");
            let mut dict = std::collections::BTreeMap::new();
            dict.insert("Type".to_string(), DictItem::Name(b"XObject".to_vec()));
            dict.insert("Subtype".to_string(), DictItem::Name(b"Form".to_vec()));
            dict.insert(
                "BBox".to_string(),
                DictItem::Array(vec![
                    DictItem::Int(-300),
                    DictItem::Int(-400),
                    DictItem::Int(1300),
                    DictItem::Int(1200),
                ]),
            );
            let id = XObjectId(format!("G{:X}", c as u32));
            let x = ExternalXObject {
                stream: ExternalStream {
                    dict,
                    content: content.into_bytes(),
                    compress: true,
                },
                width: None,
                height: None,
                dpi: None,
            };
            self.objects.push((id.clone(), XObject::External(x)));
            id
        });
        self.ids.insert(c, id.clone());
        id
    }
}

/// Draws layouts onto pages; (x, y) in mm from the page's top-left.
pub struct PageBuilder<'g> {
    page_w: f64,
    page_h: f64,
    ops: Vec<Op>,
    rings: Vec<PolygonRing>,
    glyphs: &'g mut Glyphs,
}

impl<'g> PageBuilder<'g> {
    pub fn new(page_w: f64, page_h: f64, glyphs: &'g mut Glyphs) -> PageBuilder<'g> {
        PageBuilder {
            page_w,
            page_h,
            ops: vec![Op::SetFillColor {
                col: Color::Rgb(Rgb {
                    r: 0.0,
                    g: 0.0,
                    b: 0.0,
                    icc_profile: None,
                }),
            }],
            rings: Vec::new(),
            glyphs,
        }
    }

    /// Page coordinates in pt, rounded to 1/1000 pt (0.35 µm): short numbers keep the content
    /// streams small and quick to compress.
    fn pt(&self, x: f64, y: f64) -> Point {
        let r = |v: f64| ((v * 1000.0).round() / 1000.0) as f32;
        Point {
            x: Pt(r(x * MM)),
            y: Pt(r((self.page_h - y) * MM)),
        }
    }

    /// A filled rectangle, top-left (x, y), in mm.
    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64) {
        let p = |a: f64, b: f64| LinePoint {
            p: self.pt(a, b),
            bezier: false,
        };
        self.rings.push(PolygonRing {
            points: vec![p(x, y), p(x + w, y), p(x + w, y + h), p(x, y + h)],
        });
    }

    fn flush(&mut self) {
        if !self.rings.is_empty() {
            self.ops.push(Op::DrawPolygon {
                polygon: Polygon {
                    rings: std::mem::take(&mut self.rings),
                    mode: PaintMode::Fill,
                    winding_order: WindingOrder::NonZero,
                },
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
            ops.push(Op::SetFont {
                font: PdfFontHandle::Builtin(BuiltinFont::Helvetica),
                size: Pt(size as f32),
            });
            ops.push(Op::SetTextCursor {
                pos: Point {
                    x: Pt((rx * MM) as f32),
                    y: Pt(((page_h - baseline) * MM) as f32),
                },
            });
            ops.push(Op::ShowText {
                items: vec![TextItem::Text(std::mem::take(run))],
            });
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
                if let Some(id) = self.glyphs.get(c) {
                    let p = self.pt(pen, baseline);
                    self.ops.push(Op::UseXobject {
                        id,
                        transform: XObjectTransform {
                            translate_x: Some(p.x),
                            translate_y: Some(p.y),
                            scale_x: Some((size / 1000.0) as f32),
                            scale_y: Some((size / 1000.0) as f32),
                            no_auto_scale: true,
                            ..Default::default()
                        },
                    });
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
                Element::Matrix {
                    x,
                    y,
                    module,
                    matrix,
                    ..
                } => {
                    // One 1-bit image mask per symbol (a module per sample, no interpolation):
                    // a few dozen bytes instead of a rectangle per run.
                    let row_bytes = matrix.width.div_ceil(8);
                    let mut bits = vec![0xFFu8; row_bytes * matrix.height];
                    for r in 0..matrix.height {
                        for c in 0..matrix.width {
                            if matrix.dark[r * matrix.width + c] {
                                bits[r * row_bytes + c / 8] &= !(0x80 >> (c % 8));
                            }
                        }
                    }
                    let mut dict = std::collections::BTreeMap::new();
                    dict.insert("Type".to_string(), DictItem::Name(b"XObject".to_vec()));
                    dict.insert("Subtype".to_string(), DictItem::Name(b"Image".to_vec()));
                    dict.insert("Width".to_string(), DictItem::Int(matrix.width as i64));
                    dict.insert("Height".to_string(), DictItem::Int(matrix.height as i64));
                    dict.insert("ImageMask".to_string(), DictItem::Bool(true));
                    dict.insert("BitsPerComponent".to_string(), DictItem::Int(1));
                    dict.insert("Interpolate".to_string(), DictItem::Bool(false));
                    let id = XObjectId(format!("M{}", self.glyphs.objects.len()));
                    self.glyphs.objects.push((
                        id.clone(),
                        XObject::External(ExternalXObject {
                            stream: ExternalStream {
                                dict,
                                content: bits,
                                compress: false,
                            },
                            width: None,
                            height: None,
                            dpi: None,
                        }),
                    ));
                    let (w, h) = (matrix.width as f64 * module, matrix.height as f64 * module);
                    let p = self.pt(ox + x, oy + y + h);
                    self.ops.push(Op::UseXobject {
                        id,
                        transform: XObjectTransform {
                            translate_x: Some(p.x),
                            translate_y: Some(p.y),
                            scale_x: Some((w * MM) as f32),
                            scale_y: Some((h * MM) as f32),
                            no_auto_scale: true,
                            ..Default::default()
                        },
                    });
                }
                Element::Bars {
                    x,
                    y,
                    module,
                    dots,
                    height,
                    bars,
                    ..
                } => {
                    // Bar width reduction: a tenth of a printer dot off each edge, so that a
                    // rasteriser painting every touched pixel does not widen the bars.
                    let bwr = 0.1 * module / f64::from(*dots);
                    for (start, n) in crate::symbol::bar_runs(bars) {
                        self.rect(
                            ox + x + start as f64 * module + bwr,
                            oy + y,
                            n as f64 * module - 2.0 * bwr,
                            *height,
                        );
                    }
                    self.flush();
                }
                Element::Text {
                    x,
                    baseline,
                    size,
                    text,
                    ..
                } => {
                    self.text(ox + x, oy + baseline, *size, text);
                    self.flush();
                }
                Element::Check {
                    rect,
                    x,
                    baseline,
                    size,
                    ch,
                    line,
                } => {
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
pub fn document(title: &str, pages: Vec<PdfPage>, glyphs: Glyphs) -> Vec<u8> {
    let mut doc = PdfDocument::new(title);
    for (id, x) in glyphs.objects {
        doc.resources.xobjects.map.insert(id, x);
    }
    let mut warnings = Vec::new();
    doc.with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut warnings)
}
