//! Printing: labels for specimens and containers on a stock, to a PDF, a ZPL file or a
//! configured printer; box maps; the print log (a `labels_printed` event per print, reprints
//! marked).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kura_domain::id::{ContainerId, KuraId};
use kura_domain::{EventBody, Geometry, SampleType, Timestamp};
use kura_labels::{BoxMapCell, BoxMapData, LabelData, LabelStock};
use serde::Serialize;

use crate::transport::{self, PrinterConfig};
use crate::{AppError, FindQuery, Kura};

pub use kura_labels::Rendered;

/// Where a print goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrintTarget {
    Pdf(PathBuf),
    Zpl(PathBuf),
    /// A printer configured on this workstation.
    Printer(String),
}

impl PrintTarget {
    fn describe(&self) -> String {
        match self {
            PrintTarget::Pdf(p) => format!("pdf:{}", p.display()),
            PrintTarget::Zpl(p) => format!("zpl:{}", p.display()),
            PrintTarget::Printer(n) => format!("printer:{n}"),
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct PrintReport {
    pub labels: usize,
    pub pages: usize,
    pub bytes: usize,
    pub stock: String,
    pub target: String,
    pub warnings: Vec<String>,
    /// Codes printed before: this print is marked as their reprint.
    pub reprints: Vec<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct StockInfo {
    pub id: String,
    pub name: String,
    pub template: String,
    pub dpi: u32,
    pub source: String,
}

pub(crate) fn file_err(path: &Path, e: impl std::fmt::Display) -> AppError {
    AppError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Label stocks: the built-in ones, then any `*.toml` in the user's `label-stocks` directory
/// (a user file with a built-in's name replaces it).
pub fn stocks() -> Result<Vec<(LabelStock, String)>, AppError> {
    let mut map: BTreeMap<String, (LabelStock, String)> = kura_labels::stock::BUILTIN
        .iter()
        .map(|(id, _)| {
            (
                id.to_string(),
                (
                    // Cannot fail: `id` comes from the built-in list itself.
                    #[allow(clippy::expect_used)]
                    kura_labels::stock::builtin(id).expect("valid"),
                    "built-in".to_string(),
                ),
            )
        })
        .collect();
    if let Some(dir) = user_stock_dir().filter(|d| d.is_dir()) {
        for entry in std::fs::read_dir(&dir).map_err(|e| file_err(&dir, e))? {
            let p = entry.map_err(|e| file_err(&dir, e))?.path();
            if p.extension().is_some_and(|x| x == "toml") {
                let id = p
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_string();
                let text = std::fs::read_to_string(&p).map_err(|e| file_err(&p, e))?;
                let s = LabelStock::parse(&id, &text)
                    .map_err(|e| AppError::input("stock", e.to_string()))?;
                map.insert(id, (s, p.display().to_string()));
            }
        }
    }
    Ok(map.into_values().collect())
}

fn user_stock_dir() -> Option<PathBuf> {
    std::env::var_os("KURA_STOCKS")
        .map(PathBuf::from)
        .or_else(|| {
            directories::ProjectDirs::from("jp", "Kura", "kura")
                .map(|d| d.data_dir().join("label-stocks"))
        })
}

pub fn stock(id: &str) -> Result<LabelStock, AppError> {
    stocks()?
        .into_iter()
        .map(|(s, _)| s)
        .find(|s| s.id == id)
        .ok_or_else(|| {
            let known = stocks()
                .map(|v| {
                    v.iter()
                        .map(|(s, _)| s.id.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            AppError::input(
                "stock",
                format!("unknown label stock {id:?}; the stocks are {known}"),
            )
        })
}

pub fn stock_list() -> Result<Vec<StockInfo>, AppError> {
    Ok(stocks()?
        .into_iter()
        .map(|(s, source)| StockInfo {
            id: s.id.clone(),
            name: s.name.clone(),
            template: format!("{:?}", s.template),
            dpi: s.dpi,
            source,
        })
        .collect())
}

fn print_err(e: transport::PrintError) -> AppError {
    AppError::Print {
        code: e.code(),
        message: e.to_string(),
    }
}

/// What `kura printer test` did.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct PrinterTest {
    pub printer: String,
    pub dpi: u32,
    pub stock: String,
    /// `ready`, `no status answer` (a ZPL printer that does not answer `~HS`) or `queue running`.
    pub status: String,
    /// What the calibration label's symbols encode.
    pub code: String,
    pub bytes: usize,
    pub warnings: Vec<String>,
}

/// A map's rows and columns with their labels (a linear container is one unlabelled row);
/// None for a container without positions.
pub(crate) fn grid_of(g: &Geometry) -> Option<(u16, u16, Vec<String>, Vec<String>)> {
    match g {
        Geometry::Grid {
            rows,
            cols,
            row_scheme,
            col_scheme,
            ..
        } => Some((
            *rows,
            *cols,
            (0..*rows).map(|r| row_scheme.label(r)).collect(),
            (0..*cols).map(|c| col_scheme.label(c)).collect(),
        )),
        Geometry::Linear { slots, scheme } => Some((
            1,
            *slots,
            vec![String::new()],
            (0..*slots).map(|c| scheme.label(c)).collect(),
        )),
        Geometry::Unpositioned => None,
    }
}

pub(crate) fn label_error(e: kura_labels::LabelError) -> AppError {
    AppError::input("labels", e.to_string())
}

/// `E:NAME.TTF`: a drive letter, a colon, a file name the printer stores (no `^`, `~`, `,`).
fn valid_zpl_font(f: &str) -> bool {
    let b = f.as_bytes();
    b.len() > 2
        && b.len() <= 64
        && matches!(b[0], b'A' | b'B' | b'E' | b'R' | b'Z')
        && b[1] == b':'
        && f[2..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Renders for a file (the stock's own dpi) or for a printer (its dpi and resident font).
fn render(
    data: &[LabelData],
    stock_id: &str,
    zpl: bool,
    printer: Option<&PrinterConfig>,
) -> Result<Rendered, AppError> {
    let mut stock = stock(stock_id)?;
    if let Some(dpi) = printer.and_then(PrinterConfig::dpi) {
        stock = stock
            .at_dpi(dpi)
            .map_err(|e| AppError::input("dpi", e.to_string()))?;
    }
    if zpl {
        let options = kura_labels::ZplOptions {
            font: printer
                .and_then(PrinterConfig::zpl_font)
                .map(str::to_string),
        };
        kura_labels::render_zpl(&stock, data, &options)
    } else {
        kura_labels::render_pdf(&stock, data)
    }
    .map_err(label_error)
}

impl Kura {
    /// What a label for `code` (a specimen or a container) says.
    pub fn label_data(&self, raw: &str) -> Result<LabelData, AppError> {
        if let Ok((code, Some(v))) = self.resolve(raw) {
            let ty = SampleType::parse(&v.sample_type)
                .map(|t| t.info().en)
                .unwrap_or("");
            let qty = match (v.quantity_milli, &v.unit) {
                (Some(m), Some(u)) => format!(" {} {u}", m as f64 / 1000.0),
                _ => String::new(),
            };
            let date = v.collected_at.unwrap_or(v.registered_at);
            return Ok(LabelData {
                code: code.to_string(),
                check: KuraId::parse(code.as_str()).ok().map(|id| id.check()),
                lines: vec![
                    format!("{} {ty}{qty}", v.sample_type),
                    v.study.clone(),
                    format!("{} · {}", v.donor, self.calendar().date(Timestamp(date))),
                ],
            });
        }
        let id = ContainerId::parse(raw)?;
        let m = self
            .store()
            .box_map(id.as_str())?
            .ok_or_else(|| AppError::NotFound {
                what: "specimen or container",
                code: id.to_string(),
            })?;
        let tail: Vec<&str> = m.path.split(" › ").collect();
        Ok(LabelData {
            code: m.code.clone(),
            check: None,
            lines: vec![
                m.name.clone(),
                tail[tail.len().saturating_sub(3)..tail.len().saturating_sub(1)].join(" › "),
            ],
        })
    }

    /// Codes to print for `--box BOX`: its specimens in position order.
    pub fn codes_in_box(&self, container: &str) -> Result<Vec<String>, AppError> {
        self.may_read()?;
        let m = self.box_map(container)?;
        Ok(m.slots
            .iter()
            .filter_map(|s| s.specimen.clone().or(s.container.clone()))
            .collect())
    }

    /// Codes to print for `--query TEXT`.
    pub fn codes_for_query(&self, text: &str) -> Result<Vec<String>, AppError> {
        Ok(self
            .find(&FindQuery {
                text: Some(text.into()),
                limit: 10_000,
                ..Default::default()
            })?
            .into_iter()
            .map(|s| s.code)
            .collect())
    }

    /// Renders labels without printing or logging (the preview).
    pub fn render_labels(
        &self,
        codes: &[String],
        stock_id: &str,
        zpl: bool,
    ) -> Result<Rendered, AppError> {
        let data = codes
            .iter()
            .map(|c| self.label_data(c))
            .collect::<Result<Vec<_>, _>>()?;
        render(&data, stock_id, zpl, None)
    }

    /// Prints labels and records the print (reprints marked) once the output was delivered.
    pub fn print_labels(
        &mut self,
        codes: &[String],
        stock_id: &str,
        target: &PrintTarget,
    ) -> Result<PrintReport, AppError> {
        // Before anything comes out of a printer: a print that may not be logged is not made.
        self.authorize(crate::users::Act::Print)?;
        if codes.is_empty() {
            return Err(AppError::input(
                "labels",
                "nothing to print: give IDs, --box or --query",
            ));
        }
        let data = codes
            .iter()
            .map(|c| self.label_data(c))
            .collect::<Result<Vec<_>, _>>()?;
        let canonical: Vec<String> = data.iter().map(|d| d.code.clone()).collect();
        let printer = match target {
            PrintTarget::Printer(name) => Some(self.printer(name)?),
            _ => None,
        };
        let zpl = match target {
            PrintTarget::Zpl(_) => true,
            PrintTarget::Pdf(_) => false,
            PrintTarget::Printer(_) => printer.as_ref().is_some_and(PrinterConfig::takes_zpl),
        };
        let rendered = render(&data, stock_id, zpl, printer.as_ref())?;
        self.deliver(target, &rendered.bytes, zpl)?;
        let reprints: Vec<String> = self
            .store()
            .label_prints(&canonical)?
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        self.write(|e| {
            e.emit(EventBody::LabelsPrinted {
                codes: canonical.clone(),
                stock: stock_id.to_string(),
                target: target.describe(),
                reprints: reprints.clone(),
            })
        })?;
        Ok(PrintReport {
            labels: canonical.len(),
            pages: rendered.pages,
            bytes: rendered.bytes.len(),
            stock: stock_id.into(),
            target: target.describe(),
            warnings: rendered.warnings,
            reprints,
        })
    }

    fn deliver(&self, target: &PrintTarget, bytes: &[u8], zpl: bool) -> Result<(), AppError> {
        match target {
            PrintTarget::Pdf(p) | PrintTarget::Zpl(p) => {
                std::fs::write(p, bytes).map_err(|e| file_err(p, e))
            }
            PrintTarget::Printer(name) => {
                let r = match self.printer(name)? {
                    PrinterConfig::Tcp { address, .. } => {
                        transport::send_tcp(&address, bytes, &self.print_timeouts())
                    }
                    PrinterConfig::Cups { queue, .. } | PrinterConfig::CupsPdf { queue, .. } => {
                        transport::send_cups(&queue, bytes, zpl)
                    }
                };
                r.map_err(print_err)
            }
        }
    }

    // ---- printers, per workstation ----

    pub fn printers(&self) -> Result<BTreeMap<String, PrinterConfig>, AppError> {
        Ok(match self.store().meta("printers")? {
            Some(s) => {
                serde_json::from_str(&s).map_err(|e| AppError::input("printers", e.to_string()))?
            }
            None => BTreeMap::new(),
        })
    }

    pub fn printer(&self, name: &str) -> Result<PrinterConfig, AppError> {
        let all = self.printers()?;
        all.get(name).cloned().ok_or_else(|| {
            AppError::input(
                "printer",
                format!("no printer {name:?} on this workstation; add one with `kura printer add` (have: {})", all.keys().cloned().collect::<Vec<_>>().join(", ")),
            )
        })
    }

    pub fn set_printer(
        &mut self,
        name: &str,
        config: Option<PrinterConfig>,
    ) -> Result<(), AppError> {
        self.authorize(crate::users::Act::Settings)?;
        let mut all = self.printers()?;
        match config {
            Some(c) => {
                if let PrinterConfig::Tcp { address, .. } = &c
                    && !address.contains(':')
                {
                    return Err(AppError::input(
                        "address",
                        format!("{address:?} is not HOST:PORT (Zebra printers listen on 9100)"),
                    ));
                }
                if let Some(dpi) = c.dpi()
                    && ![203, 300, 600].contains(&dpi)
                {
                    return Err(AppError::input(
                        "dpi",
                        format!(
                            "{dpi} dpi: a label printer has 203, 300 or 600 (see its configuration label)"
                        ),
                    ));
                }
                if let Some(f) = c.zpl_font()
                    && !valid_zpl_font(f)
                {
                    return Err(AppError::input(
                        "zpl_font",
                        format!(
                            "{f:?} is not a font on a Zebra: give DRIVE:NAME.TTF, e.g. E:TT0003M_.TTF"
                        ),
                    ));
                }
                all.insert(name.to_string(), c);
            }
            None => {
                all.remove(name).ok_or_else(|| AppError::NotFound {
                    what: "printer",
                    code: name.into(),
                })?;
            }
        }
        let json =
            serde_json::to_string(&all).map_err(|e| AppError::input("printer", e.to_string()))?;
        self.write(|e| Ok(e.tx.set_meta("printers", &json)?))
    }

    /// The dpi a network Zebra reports (`~HI`), for adding it without `--dpi`.
    pub fn detect_dpi(&self, address: &str) -> Option<u32> {
        transport::query_dpi(address, &self.print_timeouts())
    }

    /// `kura printer test`: the printer's status (TCP), then a calibration label (its name,
    /// dpi and the date, a DataMatrix and a Code128) on `stock_id`. Not a specimen's label:
    /// nothing is logged.
    pub fn test_printer(&mut self, name: &str, stock_id: &str) -> Result<PrinterTest, AppError> {
        self.authorize(crate::users::Act::Print)?;
        let printer = self.printer(name)?;
        let st = stock(stock_id)?;
        let dpi = printer.dpi().unwrap_or(st.dpi);
        let status = match &printer {
            PrinterConfig::Tcp { address, .. } => {
                match transport::query_status(address, &self.print_timeouts()).map_err(print_err)? {
                    Some(s) if !s.faults.is_empty() => {
                        return Err(print_err(transport::PrintError::NotReady {
                            address: address.clone(),
                            faults: s.faults,
                        }));
                    }
                    Some(_) => "ready",
                    None => "no status answer",
                }
            }
            PrinterConfig::Cups { queue, .. } | PrinterConfig::CupsPdf { queue, .. } => {
                transport::cups_ready(queue).map_err(print_err)?;
                "queue running"
            }
        };
        let today = self.calendar().date(self.now());
        let data = LabelData {
            code: format!("TEST{dpi}"),
            check: None,
            lines: vec![format!("{name} · {dpi} dpi"), format!("{today} テスト印刷")],
        };
        let zpl = printer.takes_zpl();
        let rendered = render(std::slice::from_ref(&data), stock_id, zpl, Some(&printer))?;
        self.deliver(&PrintTarget::Printer(name.into()), &rendered.bytes, zpl)?;
        Ok(PrinterTest {
            printer: name.into(),
            dpi,
            stock: st.id,
            status: status.into(),
            code: data.code,
            bytes: rendered.bytes.len(),
            warnings: rendered.warnings,
        })
    }

    // ---- box maps ----

    /// What a box map shows, from the store.
    pub fn box_map_data(&self, container: &str) -> Result<BoxMapData, AppError> {
        let m = self.box_map(container)?;
        let Some((rows, cols, row_labels, col_labels)) = grid_of(&m.geometry) else {
            return Err(AppError::input(
                "box",
                format!("{} has no positions to map", m.code),
            ));
        };
        let now = self.calendar().wall_with_offset(self.now());
        let cells = m
            .slots
            .iter()
            .map(|s| {
                let mut kind = s.sample_type.clone().unwrap_or_default();
                match s.status.as_deref() {
                    Some("checked_out") => kind.push_str(" OUT 出庫中"),
                    _ if s.blocked => kind.push_str(" BLOCKED 利用停止"),
                    _ => {}
                }
                BoxMapCell {
                    row: s.row,
                    col: s.col,
                    label: s.label.clone(),
                    code: s.specimen.clone().or(s.container.clone()),
                    kind,
                    date: s
                        .registered_at
                        .map(|t| self.calendar().date(Timestamp(t)).to_string())
                        .unwrap_or_default(),
                }
            })
            .collect();
        Ok(BoxMapData {
            title: "Box map / ボックスマップ（配置図）".into(),
            code: m.code.clone(),
            name: m.name.clone(),
            kind: m.kind.clone(),
            path: m.path.clone(),
            printed: format!("Printed {} by {} / 印刷", now, self.actor()),
            rows,
            cols,
            row_labels,
            col_labels,
            cells,
            summary: format!(
                "{} of {} positions used / 使用状況 {}/{}",
                m.occupied,
                m.capacity.unwrap_or(0),
                m.occupied,
                m.capacity.unwrap_or(0)
            ),
            matrix: None,
        })
    }

    /// Writes a box map PDF and logs the print.
    pub fn print_box_map(&mut self, container: &str, out: &Path) -> Result<PrintReport, AppError> {
        self.authorize(crate::users::Act::Print)?;
        let data = self.box_map_data(container)?;
        let stock = stock("boxmap-a4")?;
        let r = kura_labels::render_box_map(&stock, &data).map_err(label_error)?;
        std::fs::write(out, &r.bytes).map_err(|e| file_err(out, e))?;
        let target = PrintTarget::Pdf(out.to_path_buf());
        let reprints: Vec<String> = self
            .store()
            .label_prints(std::slice::from_ref(&data.code))?
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        self.write(|e| {
            e.emit(EventBody::LabelsPrinted {
                codes: vec![data.code.clone()],
                stock: stock.id.clone(),
                target: target.describe(),
                reprints: reprints.clone(),
            })
        })?;
        Ok(PrintReport {
            labels: 1,
            pages: r.pages,
            bytes: r.bytes.len(),
            stock: stock.id,
            target: target.describe(),
            warnings: r.warnings,
            reprints,
        })
    }
}

/// One label drawn for the print dialog, from the same layout the printer gets.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct LabelPreview {
    pub code: String,
    pub stock: String,
    /// SVG, sized in mm.
    pub svg: String,
    pub warnings: Vec<String>,
    /// How often this code's label was printed before (a print now is a reprint when > 0).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub printed_before: i64,
}

impl Kura {
    /// The preview of `code`'s label on `stock_id`.
    pub fn label_preview(&self, code: &str, stock_id: &str) -> Result<LabelPreview, AppError> {
        self.may_read()?;
        let stock = stock(stock_id)?;
        if stock.template == kura_labels::Template::BoxMap {
            return Err(AppError::input(
                "stock",
                format!("{stock_id} prints box maps, not labels; choose a label stock"),
            ));
        }
        let data = self.label_data(code)?;
        let printed_before = self
            .store()
            .label_prints(std::slice::from_ref(&data.code))?
            .first()
            .map(|(_, n)| *n)
            .unwrap_or(0);
        let (svg, warnings) = kura_labels::svg::label_svg(&stock, &data);
        Ok(LabelPreview {
            code: data.code,
            stock: stock.id,
            svg,
            warnings,
            printed_before,
        })
    }

    /// Where the window saves label PDFs: a `labels` folder next to the database.
    pub fn labels_dir(&self) -> PathBuf {
        self.path()
            .parent()
            .map(|p| p.join("labels"))
            .unwrap_or_else(|| PathBuf::from("labels"))
    }

    /// Prints to a configured printer, or (`printer` = None) to a new PDF in [`Kura::labels_dir`].
    pub fn print_labels_to(
        &mut self,
        codes: &[String],
        stock_id: &str,
        printer: Option<&str>,
    ) -> Result<PrintReport, AppError> {
        let target = match printer.map(str::trim).filter(|p| !p.is_empty()) {
            Some(name) => PrintTarget::Printer(name.to_string()),
            None => {
                let dir = self.labels_dir();
                std::fs::create_dir_all(&dir).map_err(|e| file_err(&dir, e))?;
                let stamp = self.now().to_datetime().format("%Y%m%d-%H%M%S%.3f");
                PrintTarget::Pdf(dir.join(format!("labels-{stamp}.pdf")))
            }
        };
        self.print_labels(codes, stock_id, &target)
    }
}
