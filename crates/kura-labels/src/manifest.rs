//! A shipment's manifest (A4): a cover page (sender, recipient, courier and tracking,
//! temperature, the dangerous-goods line for dry ice, the shipment's DataMatrix), one page per
//! packed box (its grid, headed by the box's Code128 and a DataMatrix of `SHIPMENT/BOX` that the
//! receiver scans), then the tube list.

use crate::boxmap::{self, BoxMapData, text_at};
use crate::layout::{self, Element, Layout, Rect};
use crate::stock::{LabelStock, Template};
use crate::{LabelError, Rendered, pdf, symbol};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManifestData {
    pub shipment: String,
    pub title: String,
    /// The cover's lines: what, and its value.
    pub cover: Vec<(String, String)>,
    /// For dry ice: `UN 1845 Dry ice, 5.5 kg net`, printed large on the cover.
    pub dangerous_goods: Option<String>,
    /// One page each; `matrix` carries `SHIPMENT/BOX`.
    pub boxes: Vec<BoxMapData>,
    /// The tube list's columns (name, width in mm) and rows.
    pub columns: Vec<(String, f64)>,
    pub tubes: Vec<Vec<String>>,
    /// "Printed … by …", on every page's foot.
    pub printed: String,
}

const MARGIN: f64 = 12.0;
const ROW_PT: f64 = 8.0;

fn foot(out: &mut Layout, stock: &LabelStock, m: &ManifestData, page: usize, pages: usize) {
    let y = stock.page.height - MARGIN;
    text_at(
        out,
        MARGIN,
        y,
        stock.page.width - 2.0 * MARGIN,
        7.0,
        &format!("{} · {} · {page}/{pages}", m.shipment, m.printed),
    );
}

fn rule(out: &mut Layout, x: f64, y: f64, w: f64) {
    out.elements.push(Element::Rule {
        rect: Rect { x, y, w, h: 0.2 },
    });
}

fn cover(stock: &LabelStock, m: &ManifestData) -> Layout {
    let mut out = Layout::default();
    let width = stock.page.width - 2.0 * MARGIN;
    let mut y = MARGIN;
    let mut text_w = width;
    match symbol::datamatrix(&m.shipment) {
        Ok(mx) => {
            let modules = mx.width + 2;
            if let Some((module, dots)) = layout::module_for(stock, modules, 22.0) {
                let side = modules as f64 * module;
                let x = MARGIN + width - side;
                out.elements.push(layout::matrix_el(
                    stock,
                    mx,
                    &m.shipment,
                    x,
                    y,
                    module,
                    dots,
                ));
                text_w = x - MARGIN - 3.0;
            }
        }
        Err(e) => out.warnings.push(e.to_string()),
    }
    y += text_at(&mut out, MARGIN, y, text_w, 16.0, &m.title) + 2.0;
    y += text_at(&mut out, MARGIN, y, text_w, 13.0, &m.shipment) + 4.0;
    y = y.max(MARGIN + 26.0);
    rule(&mut out, MARGIN, y, width);
    y += 3.0;
    let label_w = 55.0;
    for (k, v) in &m.cover {
        text_at(&mut out, MARGIN, y, label_w - 2.0, 10.0, k);
        y += text_at(&mut out, MARGIN + label_w, y, width - label_w, 11.0, v) + 2.5;
    }
    if let Some(dg) = &m.dangerous_goods {
        y += 4.0;
        rule(&mut out, MARGIN, y, width);
        y += 3.0;
        y += text_at(&mut out, MARGIN, y, width, 18.0, dg) + 2.0;
        text_at(
            &mut out,
            MARGIN,
            y,
            width,
            10.0,
            "Class 9 — Miscellaneous dangerous goods / 第9類 その他の有害性物質",
        );
    }
    out
}

/// The tube list in pages of rows under the column names.
fn tube_pages(stock: &LabelStock, m: &ManifestData) -> Vec<Layout> {
    let line = layout::line_mm(ROW_PT) + 1.6;
    let top = MARGIN + 12.0;
    let per_page = (((stock.page.height - MARGIN - 8.0) - top) / line)
        .floor()
        .max(1.0) as usize;
    let width = stock.page.width - 2.0 * MARGIN;
    let mut pages = Vec::new();
    for (n, chunk) in m.tubes.chunks(per_page).enumerate() {
        let mut out = Layout::default();
        text_at(
            &mut out,
            MARGIN,
            MARGIN,
            width,
            12.0,
            &format!(
                "{} — Tubes / 検体一覧 ({}–{} of {})",
                m.shipment,
                n * per_page + 1,
                n * per_page + chunk.len(),
                m.tubes.len()
            ),
        );
        let mut x = MARGIN;
        for (name, w) in &m.columns {
            text_at(&mut out, x, top - line, w - 1.5, ROW_PT, name);
            x += w;
        }
        rule(&mut out, MARGIN, top - 0.8, width);
        let mut y = top;
        for row in chunk {
            let mut x = MARGIN;
            for ((_, w), cell) in m.columns.iter().zip(row) {
                text_at(&mut out, x, y, w - 1.5, ROW_PT, cell);
                x += w;
            }
            y += line;
        }
        pages.push(out);
    }
    pages
}

/// A manifest to an A4 PDF on `stock` (the box-map stock).
pub fn render(stock: &LabelStock, m: &ManifestData) -> Result<Rendered, LabelError> {
    if stock.template != Template::BoxMap {
        return Err(LabelError::WrongTemplate {
            stock: stock.id.clone(),
            template: stock.template,
            wanted: "manifests",
        });
    }
    if m.tubes.is_empty() {
        return Err(LabelError::Empty);
    }
    let mut layouts = vec![cover(stock, m)];
    layouts.extend(m.boxes.iter().map(|b| boxmap::layout(stock, b)));
    layouts.extend(tube_pages(stock, m));
    let pages = layouts.len();
    let mut glyphs = pdf::Glyphs::default();
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for (i, mut l) in layouts.into_iter().enumerate() {
        foot(&mut l, stock, m, i + 1, pages);
        let mut page = pdf::PageBuilder::new(stock.page.width, stock.page.height, &mut glyphs);
        page.draw(&l, 0.0, 0.0);
        out.push(page.finish());
        warnings.extend(l.warnings);
    }
    Ok(Rendered {
        bytes: pdf::document("Kura shipment manifest", out, glyphs),
        pages,
        warnings,
    })
}
