//! Label stocks as data: one TOML file per stock in `assets/label-stocks/` (the file name is the
//! stock's name); users add their own in the data directory.

use serde::Deserialize;

/// What goes on a label of this stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// Cryo vial: DataMatrix left, four lines of text right.
    Vial,
    /// Box or rack: Code128 across the top, DataMatrix and text below.
    Box,
    /// Tube-top dot: DataMatrix and a short text.
    Dot,
    /// A4 box map.
    BoxMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    #[default]
    Rect,
    Round,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    pub width: f64,
    pub height: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSize {
    pub width: f64,
    pub height: f64,
    #[serde(default)]
    pub shape: Shape,
}

/// Where the labels sit on a page: columns × rows from (left, top), pitch between origins.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    pub columns: u32,
    pub rows: u32,
    pub left: f64,
    pub top: f64,
    pub pitch_x: f64,
    pub pitch_y: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelStock {
    /// Set from the file name.
    #[serde(skip)]
    pub id: String,
    pub name: String,
    pub template: Template,
    /// Printer resolution: module sizes are whole numbers of these dots.
    pub dpi: u32,
    pub page: Size,
    pub label: LabelSize,
    /// Absent: one label per page (a roll).
    pub grid: Option<Grid>,
    /// Space kept clear inside the label edge, mm.
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// The smallest module (mm) a handheld scanner reads reliably; never less than 2 dots.
    #[serde(default = "default_min_module")]
    pub min_module: f64,
    /// The largest module worth using, mm.
    #[serde(default = "default_max_module")]
    pub max_module: f64,
    /// Whether the stock is fed to thermal printers (ZPL).
    #[serde(default)]
    pub thermal: bool,
}

fn default_margin() -> f64 {
    0.8
}
fn default_min_module() -> f64 {
    0.15
}
fn default_max_module() -> f64 {
    0.5
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    #[error("label stock {id}: {message}")]
    Invalid { id: String, message: String },
}

impl LabelStock {
    pub fn parse(id: &str, toml_text: &str) -> Result<LabelStock, StockError> {
        let mut s: LabelStock = toml::from_str(toml_text).map_err(|e| StockError::Invalid {
            id: id.into(),
            message: e.to_string(),
        })?;
        s.id = id.to_string();
        let bad = |m: &str| {
            Err(StockError::Invalid {
                id: id.into(),
                message: m.into(),
            })
        };
        if ![203, 300, 600].contains(&s.dpi) {
            return bad("dpi must be 203, 300 or 600");
        }
        if s.label.width <= 0.0
            || s.label.height <= 0.0
            || s.label.width > s.page.width
            || s.label.height > s.page.height
        {
            return bad("the label must be positive and fit on the page");
        }
        if let Some(g) = &s.grid {
            let right = g.left + g.pitch_x * f64::from(g.columns - 1) + s.label.width;
            let bottom = g.top + g.pitch_y * f64::from(g.rows - 1) + s.label.height;
            if g.columns == 0
                || g.rows == 0
                || right > s.page.width + 1e-6
                || bottom > s.page.height + 1e-6
            {
                return bad("the grid of labels does not fit on the page");
            }
            if g.pitch_x + 1e-9 < s.label.width || g.pitch_y + 1e-9 < s.label.height {
                return bad("labels of the grid overlap");
            }
        }
        Ok(s)
    }

    /// The same paper on a printer of `dpi` (203, 300 or 600): the layout's modules, bars and
    /// coordinates are then whole dots of that printer.
    pub fn at_dpi(&self, dpi: u32) -> Result<LabelStock, StockError> {
        if ![203, 300, 600].contains(&dpi) {
            return Err(StockError::Invalid {
                id: self.id.clone(),
                message: format!("a printer of {dpi} dpi: thermal printers have 203, 300 or 600"),
            });
        }
        Ok(LabelStock {
            dpi,
            ..self.clone()
        })
    }

    /// One printer dot, mm.
    pub fn dot(&self) -> f64 {
        25.4 / f64::from(self.dpi)
    }

    pub fn per_page(&self) -> usize {
        self.grid
            .as_ref()
            .map(|g| (g.columns * g.rows) as usize)
            .unwrap_or(1)
    }

    /// The top-left corner of label `i` on its page, mm from the page's top-left.
    pub fn origin(&self, i: usize) -> (f64, f64) {
        match &self.grid {
            Some(g) => {
                let i = i % self.per_page();
                let (c, r) = (
                    (i % g.columns as usize) as f64,
                    (i / g.columns as usize) as f64,
                );
                (g.left + c * g.pitch_x, g.top + r * g.pitch_y)
            }
            None => (
                (self.page.width - self.label.width) / 2.0,
                (self.page.height - self.label.height) / 2.0,
            ),
        }
    }
}

/// The stocks that ship with Kura (the `assets/label-stocks/` files, compiled in).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "cryo-38x13-a4",
        include_str!("../../../assets/label-stocks/cryo-38x13-a4.toml"),
    ),
    (
        "thermal-1.28x0.5",
        include_str!("../../../assets/label-stocks/thermal-1.28x0.5.toml"),
    ),
    (
        "box-2x1",
        include_str!("../../../assets/label-stocks/box-2x1.toml"),
    ),
    (
        "tube-top-9.5",
        include_str!("../../../assets/label-stocks/tube-top-9.5.toml"),
    ),
    (
        "boxmap-a4",
        include_str!("../../../assets/label-stocks/boxmap-a4.toml"),
    ),
];

// Cannot fail: the built-in stocks are compiled in, and the layout tests parse every one.
#[allow(clippy::expect_used)]
pub fn builtin(id: &str) -> Option<LabelStock> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == id)
        .map(|(n, t)| LabelStock::parse(n, t).expect("built-in stocks are valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_stocks_parse() {
        for (id, text) in BUILTIN {
            let s = LabelStock::parse(id, text).unwrap();
            assert_eq!(&s.id, id);
        }
        assert!(LabelStock::parse("x", "name = 1").is_err());
    }
}
