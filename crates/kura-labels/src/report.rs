//! Tabular reports to PDF (the audit report): A4 landscape, every page headed with the title and
//! the column names, cells wrapped to their column, a closing page of free lines. Text is set in
//! the bundled BIZ UDPGothic, embedded with its ToUnicode map, so that the Japanese in a report
//! can be searched, copied and extracted (`pdftotext`) — unlike labels, whose non-ASCII text is
//! drawn as outlines.

use printpdf::{
    Color, LinePoint, Mm, Op, PaintMode, ParsedFont, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Polygon, PolygonRing, Pt, Rgb, TextItem, WindingOrder,
};

use crate::Rendered;
use crate::text::{FONT_BYTES, face};

/// A report to print.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub title: String,
    /// Lines under the title on the first page (scope, who made it, when).
    pub preface: Vec<String>,
    /// Column names and widths (mm; they should add up to at most 277).
    pub columns: Vec<(String, f64)>,
    pub rows: Vec<Vec<String>>,
    /// The closing page: its heading and lines.
    pub closing_title: String,
    pub closing: Vec<String>,
    /// The footer of every page (e.g. the database and workstation), beside "page n / N".
    pub footer: String,
}

const PAGE_W: f64 = 297.0;
const PAGE_H: f64 = 210.0;
const MARGIN: f64 = 10.0;
const CELL_PT: f64 = 7.0;
const LINE: f64 = CELL_PT * 0.3528 * 1.3;
const PAD: f64 = 0.8;

/// The advance of `c` in em, in the bundled font (the one reports are set in).
fn advance(c: char) -> f64 {
    let f = face();
    f.glyph_index(c)
        .and_then(|g| f.glyph_hor_advance(g))
        .map(|a| f64::from(a) / f64::from(f.units_per_em()))
        .unwrap_or(1.0)
}

fn width(s: &str, pt: f64) -> f64 {
    s.chars().map(advance).sum::<f64>() * pt * 25.4 / 72.0
}

/// `s` broken into lines no wider than `w` mm at `pt`: at spaces where it can, anywhere in a
/// word too long for a line (Japanese has no spaces).
pub fn wrap(s: &str, w: f64, pt: f64) -> Vec<String> {
    let mut out = Vec::new();
    for para in s.split('\n') {
        let mut line = String::new();
        for word in para.split_inclusive(' ') {
            if width(&format!("{line}{word}"), pt) <= w {
                line.push_str(word);
                continue;
            }
            if !line.is_empty() && width(word, pt) <= w {
                out.push(line.trim_end().to_string());
                line = word.to_string();
                continue;
            }
            for c in word.chars() {
                if width(&format!("{line}{c}"), pt) > w && !line.is_empty() {
                    out.push(line.trim_end().to_string());
                    line.clear();
                }
                line.push(c);
            }
        }
        out.push(line.trim_end().to_string());
    }
    out
}

struct Pager {
    pages: Vec<Vec<Op>>,
    ops: Vec<Op>,
    y: f64,
}

fn text(ops: &mut Vec<Op>, font: &printpdf::FontId, s: &str, x: f64, y: f64, pt: f64) {
    if s.is_empty() {
        return;
    }
    ops.push(Op::StartTextSection);
    ops.push(Op::SetFont {
        font: PdfFontHandle::External(font.clone()),
        size: Pt(pt as f32),
    });
    ops.push(Op::SetTextCursor {
        pos: Point::new(Mm(x as f32), Mm(y as f32)),
    });
    ops.push(Op::ShowText {
        items: vec![TextItem::Text(s.to_string())],
    });
    ops.push(Op::EndTextSection);
}

fn rule(ops: &mut Vec<Op>, x0: f64, x1: f64, y: f64, shade: f32) {
    let p = |x: f64, y: f64| LinePoint {
        p: Point::new(Mm(x as f32), Mm(y as f32)),
        bezier: false,
    };
    ops.push(Op::SetFillColor {
        col: Color::Rgb(Rgb {
            r: shade,
            g: shade,
            b: shade,
            icc_profile: None,
        }),
    });
    ops.push(Op::DrawPolygon {
        polygon: Polygon {
            rings: vec![PolygonRing {
                points: vec![p(x0, y), p(x1, y), p(x1, y + 0.2), p(x0, y + 0.2)],
            }],
            mode: PaintMode::Fill,
            winding_order: WindingOrder::NonZero,
        },
    });
}

/// Every character `r` can draw: its texts, the empty cell's dash and the page numbers.
fn chars(r: &Report) -> std::collections::BTreeSet<char> {
    let texts = [&r.title, &r.closing_title, &r.footer]
        .into_iter()
        .chain(&r.preface)
        .chain(r.columns.iter().map(|(n, _)| n))
        .chain(r.rows.iter().flatten())
        .chain(&r.closing);
    texts
        .flat_map(|t| t.chars())
        .chain("—0123456789 /".chars())
        .collect()
}

/// The bundled font cut down to the glyphs `r` uses (with a Unicode cmap for them), so that a
/// report embeds kilobytes of font, not the whole 4.6 MB; None if the font cannot be cut.
fn subset(r: &Report) -> Option<Vec<u8>> {
    use allsorts::binary::read::ReadScope;
    use allsorts::font_data::FontData;
    use allsorts::subset::{CmapTarget, SubsetProfile};
    let f = face();
    let mut glyphs: Vec<u16> = std::iter::once(0)
        .chain(
            chars(r)
                .into_iter()
                .filter_map(|c| f.glyph_index(c))
                .map(|g| g.0),
        )
        .collect();
    glyphs.sort_unstable();
    glyphs.dedup();
    let data = ReadScope::new(FONT_BYTES).read::<FontData<'_>>().ok()?;
    let provider = data.table_provider(0).ok()?;
    allsorts::subset::subset(&provider, &glyphs, &SubsetProfile::Pdf, CmapTarget::Unicode).ok()
}

/// Renders `r`: the table over as many pages as it needs, then the closing page.
// Cannot fail on the font: it is compiled in (`assets/fonts/`), and the report tests parse it.
#[allow(clippy::expect_used)]
pub fn render_report(r: &Report) -> Rendered {
    let mut warnings = Vec::new();
    let parsed = subset(r)
        .and_then(|bytes| ParsedFont::from_bytes(&bytes, 0, &mut Vec::new()))
        .unwrap_or_else(|| {
            warnings.push("the font could not be subset; the whole font is embedded".into());
            ParsedFont::from_bytes(FONT_BYTES, 0, &mut Vec::new()).expect("the bundled font parses")
        });
    let mut doc = PdfDocument::new(&r.title);
    let font = doc.add_font(&parsed);
    let top = PAGE_H - MARGIN;
    let bottom = MARGIN + 8.0;
    let mut pg = Pager {
        pages: Vec::new(),
        ops: Vec::new(),
        y: top,
    };
    let header = |pg: &mut Pager, first: bool| {
        let mut y = top;
        text(&mut pg.ops, &font, &r.title, MARGIN, y - 5.0, 13.0);
        y -= 9.0;
        if first {
            for l in &r.preface {
                text(&mut pg.ops, &font, l, MARGIN, y - 3.0, 8.5);
                y -= 4.5;
            }
            y -= 2.0;
        }
        let mut x = MARGIN;
        for (name, w) in &r.columns {
            text(&mut pg.ops, &font, name, x + PAD, y - 3.0, CELL_PT + 0.5);
            x += w;
        }
        y -= 4.5;
        rule(&mut pg.ops, MARGIN, PAGE_W - MARGIN, y, 0.0);
        pg.y = y - 0.5;
    };
    header(&mut pg, true);
    for row in &r.rows {
        let cells: Vec<Vec<String>> = r
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, w))| {
                wrap(
                    row.get(i).map(String::as_str).unwrap_or(""),
                    w - 2.0 * PAD,
                    CELL_PT,
                )
            })
            .collect();
        let lines = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let h = lines as f64 * LINE + 1.0;
        if pg.y - h < bottom {
            pg.pages.push(std::mem::take(&mut pg.ops));
            header(&mut pg, false);
        }
        let mut x = MARGIN;
        for (cell, (_, w)) in cells.iter().zip(&r.columns) {
            for (n, l) in cell.iter().enumerate() {
                text(
                    &mut pg.ops,
                    &font,
                    l,
                    x + PAD,
                    pg.y - (n as f64 + 1.0) * LINE + 0.6,
                    CELL_PT,
                );
            }
            x += w;
        }
        pg.y -= h;
        rule(&mut pg.ops, MARGIN, PAGE_W - MARGIN, pg.y, 0.75);
    }
    if r.rows.is_empty() {
        text(&mut pg.ops, &font, "—", MARGIN + PAD, pg.y - LINE, CELL_PT);
    }
    pg.pages.push(std::mem::take(&mut pg.ops));
    // The closing page.
    let mut ops = Vec::new();
    text(&mut ops, &font, &r.title, MARGIN, top - 5.0, 13.0);
    text(&mut ops, &font, &r.closing_title, MARGIN, top - 15.0, 11.0);
    let mut y = top - 22.0;
    for l in &r.closing {
        for part in wrap(l, PAGE_W - 2.0 * MARGIN, 9.0) {
            if y < bottom {
                warnings.push("the closing page is full; some lines were left off".to_string());
                break;
            }
            text(&mut ops, &font, &part, MARGIN, y, 9.0);
            y -= 5.0;
        }
    }
    pg.pages.push(ops);
    let n = pg.pages.len();
    let pages: Vec<PdfPage> = pg
        .pages
        .into_iter()
        .enumerate()
        .map(|(i, mut ops)| {
            let foot = format!("{}    {} / {n}", r.footer, i + 1);
            let w = width(&foot, 7.0);
            text(&mut ops, &font, &foot, PAGE_W - MARGIN - w, MARGIN, 7.0);
            PdfPage::new(Mm(PAGE_W as f32), Mm(PAGE_H as f32), ops)
        })
        .collect();
    let bytes = doc.with_pages(pages).save(
        &PdfSaveOptions {
            subset_fonts: true,
            ..Default::default()
        },
        &mut Vec::new(),
    );
    Rendered {
        bytes,
        pages: n,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report embeds the glyphs it draws, not the 4.6 MB font: two pages with Japanese stay
    /// small, and the cut font still maps every character the report holds.
    #[test]
    fn a_report_embeds_only_the_glyphs_it_uses() {
        let r = Report {
            title: "監査報告 / Audit report".into(),
            preface: vec!["範囲: 検体 NCG2600000017 の全記録".into()],
            columns: vec![("日時".into(), 60.0), ("内容".into(), 200.0)],
            rows: (0..60)
                .map(|i| {
                    vec![
                        format!("2026-12-{:02}", i % 28 + 1),
                        "同意撤回により廃棄".into(),
                    ]
                })
                .collect(),
            closing_title: "署名".into(),
            closing: vec!["責任者 佐藤 花子".into()],
            footer: "kura.sqlite3".into(),
        };
        let out = render_report(&r);
        assert!(out.pages >= 2, "{} pages", out.pages);
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        assert!(
            out.bytes.len() < 200_000,
            "{} bytes for {} pages",
            out.bytes.len(),
            out.pages
        );
        let cut = subset(&r).unwrap();
        let cut = ttf_parser::Face::parse(&cut, 0).unwrap();
        for c in chars(&r) {
            assert!(
                c == ' ' || cut.glyph_index(c).is_some(),
                "{c:?} is in the cut font"
            );
        }
        assert!(cut.number_of_glyphs() < 100, "{}", cut.number_of_glyphs());
    }

    #[test]
    fn wrapping_keeps_every_character_and_each_line_fits() {
        for (s, w) in [
            ("a short line", 100.0),
            (
                "consent withdrawn: donor letter of 2026-12-01 received by post",
                30.0,
            ),
            ("同意撤回により廃棄。責任者が承認した。", 20.0),
            ("JP-0000000001-ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10.0),
            ("", 10.0),
        ] {
            let lines = wrap(s, w, CELL_PT);
            for l in &lines {
                assert!(
                    width(l, CELL_PT) <= w || l.chars().count() == 1,
                    "{l:?} in {w} mm"
                );
            }
            let joined: String = lines.concat().chars().filter(|c| *c != ' ').collect();
            let want: String = s.chars().filter(|c| *c != ' ').collect();
            assert_eq!(joined, want, "{s:?}");
        }
    }
}
