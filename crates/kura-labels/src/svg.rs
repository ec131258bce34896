//! One label as SVG, drawn from the same [`Layout`] the PDF and ZPL come from: the print
//! dialog's live preview shows the real label, module for module.

use std::fmt::Write;

use crate::layout::{self, Element, LabelData};
use crate::stock::{LabelStock, Shape};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The label at its real size in mm (the viewBox), for the window to scale.
pub fn label_svg(stock: &LabelStock, d: &LabelData) -> (String, Vec<String>) {
    let l = layout::layout(stock, d);
    let (w, h) = (stock.label.width, stock.label.height);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}mm" height="{h}mm">"#
    );
    match stock.label.shape {
        Shape::Round => {
            let _ = write!(
                s,
                r##"<circle cx="{}" cy="{}" r="{}" fill="#fff" stroke="#999" stroke-width="0.1"/>"##,
                w / 2.0,
                h / 2.0,
                w.min(h) / 2.0
            );
        }
        Shape::Rect => {
            let _ = write!(
                s,
                r##"<rect width="{w}" height="{h}" rx="0.8" fill="#fff" stroke="#999" stroke-width="0.1"/>"##
            );
        }
    }
    s.push_str(r##"<g fill="#000">"##);
    for e in &l.elements {
        match e {
            Element::Matrix {
                x,
                y,
                module,
                matrix,
                ..
            } => {
                // One path per symbol: a unit square per dark module.
                s.push_str(r#"<path shape-rendering="crispEdges" d=""#);
                for r in 0..matrix.height {
                    for c in 0..matrix.width {
                        if matrix.dark[r * matrix.width + c] {
                            let _ = write!(
                                s,
                                "M{:.3} {:.3}h{module:.3}v{module:.3}h-{module:.3}z",
                                x + c as f64 * module,
                                y + r as f64 * module
                            );
                        }
                    }
                }
                s.push_str(r#""/>"#);
            }
            Element::Bars {
                x,
                y,
                module,
                height,
                bars,
                ..
            } => {
                s.push_str(r#"<path shape-rendering="crispEdges" d=""#);
                for (start, n) in crate::symbol::bar_runs(bars) {
                    let bw = n as f64 * module;
                    let _ = write!(
                        s,
                        "M{:.3} {y:.3}h{bw:.3}v{height:.3}h-{bw:.3}z",
                        x + start as f64 * module
                    );
                }
                s.push_str(r#""/>"#);
            }
            Element::Text {
                x,
                baseline,
                size,
                text,
                ..
            } => {
                // pt → mm for the font size.
                let _ = write!(
                    s,
                    r#"<text x="{x:.3}" y="{baseline:.3}" font-size="{:.3}" font-family="Helvetica, Arial, 'BIZ UDPGothic', sans-serif">{}</text>"#,
                    size * 25.4 / 72.0,
                    esc(text)
                );
            }
            Element::Check {
                rect,
                x,
                baseline,
                size,
                ch,
                line,
            } => {
                let _ = write!(
                    s,
                    r##"<text x="{x:.3}" y="{baseline:.3}" font-size="{:.3}" font-family="Helvetica, Arial, sans-serif">{}</text><rect x="{:.3}" y="{:.3}" width="{:.3}" height="{:.3}" fill="none" stroke="#000" stroke-width="{line:.3}"/>"##,
                    size * 25.4 / 72.0,
                    esc(&ch.to_string()),
                    rect.x + line / 2.0,
                    rect.y + line / 2.0,
                    rect.w - line,
                    rect.h - line
                );
            }
            Element::Rule { rect } => {
                let _ = write!(
                    s,
                    r#"<rect x="{:.3}" y="{:.3}" width="{:.3}" height="{:.3}"/>"#,
                    rect.x, rect.y, rect.w, rect.h
                );
            }
        }
    }
    s.push_str("</g></svg>");
    (s, l.warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The preview draws every dark module of the layout's DataMatrix and every bar run.
    #[test]
    fn preview_draws_the_layouts_symbols() {
        let stock = crate::stock::builtin("cryo-38x13-a4").expect("built in");
        let d = LabelData {
            code: "DEMO240000014B".into(),
            check: Some('B'),
            lines: vec!["PL1 plasma".into(), "研究 <A&B>".into()],
        };
        let l = layout::layout(&stock, &d);
        let (svg, _) = label_svg(&stock, &d);
        let dark: usize = l
            .elements
            .iter()
            .map(|e| match e {
                Element::Matrix { matrix, .. } => matrix.dark.iter().filter(|b| **b).count(),
                Element::Bars { bars, .. } => {
                    bars.windows(2).filter(|w| w[1] && !w[0]).count()
                        + usize::from(bars.first() == Some(&true))
                }
                _ => 0,
            })
            .sum();
        assert!(dark > 50, "the layout has symbols");
        let squares: usize = svg
            .split(" d=\"")
            .skip(1)
            .map(|p| p.split('"').next().unwrap().matches('z').count())
            .sum();
        assert_eq!(squares, dark, "one closed square per module or bar run");
        assert!(
            svg.contains("研究 &lt;A&amp;B&gt;"),
            "text is escaped: {svg}"
        );
        assert!(
            svg.contains(">B</text>"),
            "the check character is drawn apart"
        );
    }
}
