//! Kura's labels: label stocks as data, layout by rules, DataMatrix and Code128 symbols, PDF
//! sheets and rolls, ZPL for Zebra printers, and A4 box maps. Data in, bytes out: this crate
//! does no IO (printing transports live in `kura-app`).

// No panic on input: outside tests, no unwrap/expect/panic; the few that cannot fail say why.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod boxmap;
pub mod layout;
pub mod manifest;
mod pdf;
mod raster;
pub mod report;
pub mod stock;
pub mod svg;
pub mod symbol;
pub mod text;
pub mod zpl;

pub use boxmap::{BoxMapCell, BoxMapData};
pub use layout::{Element, LabelData, Layout, Rect};
pub use manifest::ManifestData;
pub use stock::{LabelStock, StockError, Template};
pub use zpl::ZplOptions;

/// A rendered document and what the layout had to leave off or cut.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub pages: usize,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("label stock {stock} prints {template:?}, not {wanted}")]
    WrongTemplate {
        stock: String,
        template: Template,
        wanted: &'static str,
    },
    #[error("nothing to print")]
    Empty,
}

impl LabelError {
    pub fn code(&self) -> &'static str {
        match self {
            LabelError::WrongTemplate { .. } => "label_wrong_stock",
            LabelError::Empty => "label_nothing_to_print",
        }
    }
}

/// Snaps a label's origin on the page to the printer's dot grid.
fn snapped_origin(stock: &LabelStock, i: usize) -> (f64, f64) {
    let (x, y) = stock.origin(i);
    let d = stock.dot();
    ((x / d).round() * d, (y / d).round() * d)
}

/// Labels to a PDF: sheets fill row by row; rolls get one label per page.
pub fn render_pdf(stock: &LabelStock, labels: &[LabelData]) -> Result<Rendered, LabelError> {
    if stock.template == Template::BoxMap {
        return Err(LabelError::WrongTemplate {
            stock: stock.id.clone(),
            template: stock.template,
            wanted: "labels",
        });
    }
    if labels.is_empty() {
        return Err(LabelError::Empty);
    }
    let per = stock.per_page();
    let mut pages = Vec::new();
    let mut warnings = Vec::new();
    let mut glyphs = pdf::Glyphs::default();
    for chunk in labels.chunks(per) {
        let mut page = pdf::PageBuilder::new(stock.page.width, stock.page.height, &mut glyphs);
        for (i, d) in chunk.iter().enumerate() {
            let l = layout::layout(stock, d);
            let (ox, oy) = snapped_origin(stock, i);
            page.draw(&l, ox, oy);
            warnings.extend(l.warnings);
        }
        pages.push(page.finish());
    }
    let n = pages.len();
    Ok(Rendered {
        bytes: pdf::document("Kura labels", pages, glyphs),
        pages: n,
        warnings,
    })
}

/// Labels to ZPL, one `^XA … ^XZ` format per label.
pub fn render_zpl(
    stock: &LabelStock,
    labels: &[LabelData],
    options: &zpl::ZplOptions,
) -> Result<Rendered, LabelError> {
    if stock.template == Template::BoxMap {
        return Err(LabelError::WrongTemplate {
            stock: stock.id.clone(),
            template: stock.template,
            wanted: "labels",
        });
    }
    if labels.is_empty() {
        return Err(LabelError::Empty);
    }
    let mut out = String::new();
    let mut warnings = Vec::new();
    for d in labels {
        let l = layout::layout(stock, d);
        out.push_str(&zpl::label(stock, &l, options));
        warnings.extend(l.warnings);
    }
    Ok(Rendered {
        bytes: out.into_bytes(),
        pages: labels.len(),
        warnings,
    })
}

/// A box map to a one-page A4 PDF.
pub fn render_box_map(stock: &LabelStock, map: &BoxMapData) -> Result<Rendered, LabelError> {
    if stock.template != Template::BoxMap {
        return Err(LabelError::WrongTemplate {
            stock: stock.id.clone(),
            template: stock.template,
            wanted: "box maps",
        });
    }
    let l = boxmap::layout(stock, map);
    let mut glyphs = pdf::Glyphs::default();
    let mut page = pdf::PageBuilder::new(stock.page.width, stock.page.height, &mut glyphs);
    page.draw(&l, 0.0, 0.0);
    let page = page.finish();
    Ok(Rendered {
        bytes: pdf::document("Kura box map", vec![page], glyphs),
        pages: 1,
        warnings: l.warnings,
    })
}

/// A shipment's manifest to an A4 PDF (cover, a page per box, the tube list).
pub fn render_manifest(stock: &LabelStock, m: &ManifestData) -> Result<Rendered, LabelError> {
    manifest::render(stock, m)
}
