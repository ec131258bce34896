//! CSV import and export of inventory. Import checks every row first and writes nothing if any
//! row is wrong; then writes all rows in one transaction.
//!
//! Columns (header row required, any order): `code` (empty: Kura issues an ID), `type`,
//! `container`, `storage`, `quantity`, `unit`, `study`, `donor`, `collected_at`, `parent`,
//! `box`, `position` (empty with a box: the next free one). Export writes the same columns plus
//! `material`, `status`, `blocked`, `freeze_thaw`, `path`, which import ignores.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{Read, Write};

use kura_domain::id::{ContainerId, KuraId, SpecimenCode};
use kura_domain::specimen::{
    Quantity, SampleType, SpecimenRecord, parse_primary_container, parse_storage_code,
};
use kura_domain::{EventBody, Geometry, Location, Pos, Timestamp};
use serde::Serialize;

use crate::register::text;
use crate::sheets::{Cell, SheetWriter};
use crate::{AppError, Kura, Progress};

/// Which specimens an export writes (all without a filter): a box, a study, or what a search
/// finds (the same comparisons as [`Kura::find`]); the parts given must all hold.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct ExportFilter {
    /// Only those in this box (rack, cane).
    pub container: Option<String>,
    /// Only those of this study.
    pub study: Option<String>,
    /// A specimen code (exact, or a prefix), a donor or a study, as the search box takes it.
    pub text: Option<String>,
    pub donor: Option<String>,
    pub sample_type: Option<String>,
    pub status: Option<String>,
}

impl ExportFilter {
    /// The search part, as [`kura_store::FindQuery`] compares it.
    fn search(&self) -> kura_store::FindQuery {
        kura_store::FindQuery {
            text: self.text.clone(),
            donor: self.donor.clone(),
            study: self.study.clone(),
            sample_type: self.sample_type.clone(),
            status: self.status.clone(),
            ..kura_store::FindQuery::default()
        }
    }
}

fn export_header() -> Vec<&'static str> {
    let mut header: Vec<&str> = COLUMNS.to_vec();
    header.extend_from_slice(EXPORT_ONLY);
    header
}

/// A quantity as the import reads it back: `0.5`, `10`.
fn quantity_text(f: f64) -> String {
    let s = format!("{f:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One specimen's row of an export, in [`export_header`]'s order.
fn export_cells(s: &kura_store::SpecimenView) -> Vec<Cell> {
    let opt = |v: &Option<String>| Cell::text(v.clone().unwrap_or_default());
    vec![
        Cell::text(s.code.clone()),
        Cell::text(s.sample_type.clone()),
        Cell::text(s.primary_container.clone()),
        Cell::text(s.storage_code.clone()),
        s.quantity_milli
            .map_or(Cell::Empty, |m| Cell::Number(m as f64 / 1000.0)),
        opt(&s.unit),
        Cell::text(s.study.clone()),
        Cell::text(s.donor.clone()),
        s.collected_at
            .map_or(Cell::Empty, |t| Cell::Time(Timestamp(t))),
        opt(&s.parent),
        opt(&s.container),
        opt(&s.position),
        Cell::text(s.material.clone()),
        Cell::text(s.status.clone()),
        Cell::text(s.blocked.to_string()),
        Cell::Number(f64::from(s.freeze_thaw)),
        opt(&s.path),
    ]
}

/// A written export: where, and how many specimens.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exported {
    pub path: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub rows: u64,
}

/// One thing wrong with one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// The line in the file (the header is line 1).
    pub line: u64,
    pub column: String,
    /// In a workbook: the sheet and cell, `Sheet1!C17`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cell {
            Some(cell) => write!(
                f,
                "cell {cell} (column {}): {} (value {:?})",
                self.column, self.reason, self.value
            ),
            None => write!(
                f,
                "line {}, column {}: {} (value {:?})",
                self.line, self.column, self.reason, self.value
            ),
        }
    }
}

/// The problems found in a file: every one is counted, the first [`MAX_LISTED`] are kept.
#[derive(Default)]
pub(crate) struct Errors {
    listed: Vec<RowError>,
    pub(crate) total: u64,
}

/// How many row problems an import error lists (all are counted).
pub const MAX_LISTED: usize = 1000;

impl Errors {
    pub(crate) fn push(&mut self, e: RowError) {
        self.total += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push(e);
        }
    }
    pub(crate) fn into_error(self) -> AppError {
        AppError::Import {
            total: self.total,
            rows: self.listed,
        }
    }
}

/// How a CSV file's bytes are read: detected (the default), or as the user says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CsvEncoding {
    /// UTF-8 (with or without a byte-order mark) when the bytes are UTF-8, else CP932.
    #[default]
    Auto,
    Utf8,
    /// Shift_JIS as Windows writes it (CP932, Windows-31J): Excel's "CSV" on Japanese Windows.
    Cp932,
}

impl std::str::FromStr for CsvEncoding {
    type Err = AppError;
    fn from_str(s: &str) -> Result<CsvEncoding, AppError> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Ok(CsvEncoding::Auto),
            "utf-8" | "utf8" | "utf-8-bom" => Ok(CsvEncoding::Utf8),
            "cp932" | "shift-jis" | "sjis" | "windows-31j" | "ms932" => Ok(CsvEncoding::Cp932),
            other => Err(AppError::input(
                "encoding",
                format!("{other:?} is not an encoding Kura reads; use auto, utf-8 or cp932"),
            )),
        }
    }
}

/// The file's text: UTF-8 (a byte-order mark is dropped), or CP932 as Excel saves CSV on
/// Japanese Windows; detected unless `encoding` says which. Anything else is refused before a
/// row is read.
pub fn decode(bytes: &[u8], encoding: CsvEncoding) -> Result<std::borrow::Cow<'_, str>, AppError> {
    match encoding {
        CsvEncoding::Auto => utf8(bytes).ok().or_else(|| cp932(bytes)).ok_or_else(|| {
            let at = utf8(bytes).err().map(|e| e.valid_up_to()).unwrap_or(0);
            AppError::input(
                "csv",
                format!(
                    "the file is neither UTF-8 nor CP932 (Shift_JIS) text (first bad byte at offset {at}); save it as \"CSV UTF-8\" and import it again"
                ),
            )
        }),
        CsvEncoding::Utf8 => utf8(bytes).map_err(|e| {
            AppError::input(
                "csv",
                format!(
                    "the file is not UTF-8 text (first bad byte at offset {}); import it with --encoding cp932 if Excel saved it as plain \"CSV\"",
                    e.valid_up_to()
                ),
            )
        }),
        CsvEncoding::Cp932 if bytes.starts_with(BOM) => Err(AppError::input(
            "csv",
            "the file starts with a UTF-8 byte-order mark, so it is UTF-8, not CP932; import it with --encoding utf-8 (or auto)",
        )),
        CsvEncoding::Cp932 => cp932(bytes).ok_or_else(|| {
            AppError::input(
                "csv",
                "the file is not CP932 (Shift_JIS) text; import it with --encoding utf-8 if it was saved as \"CSV UTF-8\"",
            )
        }),
    }
}

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

fn utf8(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, std::str::Utf8Error> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    std::str::from_utf8(bytes).map(std::borrow::Cow::Borrowed)
}

fn cp932(bytes: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    let (text, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes);
    (!had_errors).then_some(text)
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub rows: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub issued: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub stored: u64,
    /// The file's name and the SHA-256 of its bytes, as the `imported` event records them.
    pub file: String,
    pub sha256: String,
    /// `--check`: every row was read and checked; nothing was written.
    pub checked_only: bool,
}

const COLUMNS: &[&str] = &[
    "code",
    "type",
    "container",
    "storage",
    "quantity",
    "unit",
    "study",
    "donor",
    "collected_at",
    "parent",
    "box",
    "position",
];
const EXPORT_ONLY: &[&str] = &["material", "status", "blocked", "freeze_thaw", "path"];
const REQUIRED: &[&str] = &["type", "container", "storage", "study", "donor"];

pub(crate) struct Row {
    code: Option<SpecimenCode>,
    record: SpecimenRecord,
    location: Option<Location>,
}

struct BoxState {
    geometry: Geometry,
    taken: HashSet<Pos>,
}

/// How to import a file.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The file's name (recorded in the `imported` event; `.xlsx`/`.xlsm` is read as a workbook,
    /// anything else as CSV).
    pub file: String,
    pub encoding: CsvEncoding,
    /// Check every row and report, writing nothing.
    pub check: bool,
    /// The workbook's sheet (default: the first).
    pub sheet: Option<String>,
}

/// Where a row is in the file: its line (CSV; the header is line 1), or its sheet and row
/// (a workbook; cells are named `C17`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum At<'a> {
    Line(u64),
    /// `row` counts from 1 as Excel does; `col0` is the sheet column of the table's first one.
    Cell {
        sheet: &'a str,
        row: u64,
        col0: usize,
    },
}

impl At<'_> {
    pub(crate) fn line(&self) -> u64 {
        match self {
            At::Line(l) => *l,
            At::Cell { row, .. } => *row,
        }
    }
}

/// The spreadsheet name of the `i`th column (0: `A`, 26: `AA`).
pub fn column_letters(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// Reads rows one by one, checking each; keeps the good ones and every problem.
pub(crate) struct Reader<'k> {
    kura: &'k Kura,
    calendar: crate::Calendar,
    col: HashMap<String, usize>,
    rows: Vec<Row>,
    seen: HashSet<String>,
    boxes: HashMap<String, Option<BoxState>>,
    errors: Errors,
}

impl<'k> Reader<'k> {
    /// Checks the header row; `None` when it is wrong (the problems are kept).
    pub(crate) fn new(kura: &'k Kura, headers: &[&str], at: At<'_>) -> Reader<'k> {
        let mut r = Reader {
            kura,
            calendar: kura.calendar().clone(),
            col: HashMap::new(),
            rows: Vec::new(),
            seen: HashSet::new(),
            boxes: HashMap::new(),
            errors: Errors::default(),
        };
        for (i, h) in headers.iter().enumerate() {
            let h = h.trim();
            r.col.entry(h.to_string()).or_insert(i);
            if !COLUMNS.contains(&h) && !EXPORT_ONLY.contains(&h) {
                r.errors.push(RowError {
                    line: at.line(),
                    column: h.to_string(),
                    cell: cell_name(at, Some(i)),
                    value: h.to_string(),
                    reason: format!("unknown column; the columns are {}", COLUMNS.join(", ")),
                });
            }
        }
        for c in REQUIRED {
            if !r.col.contains_key(*c) {
                r.errors.push(RowError {
                    line: at.line(),
                    column: c.to_string(),
                    cell: cell_name(at, None),
                    value: String::new(),
                    reason: "required column is missing".into(),
                });
            }
        }
        r
    }

    pub(crate) fn header_ok(&self) -> bool {
        self.errors.total == 0
    }

    /// A problem with the file as a whole at `at` (a malformed line).
    pub(crate) fn malformed(&mut self, at: At<'_>, reason: String) {
        self.errors.push(RowError {
            line: at.line(),
            column: "*".into(),
            cell: cell_name(at, None),
            value: String::new(),
            reason,
        });
    }

    /// Checks one row (its cells in the header's order).
    pub(crate) fn row(&mut self, at: At<'_>, cells: &[&str]) -> Result<(), AppError> {
        let col = &self.col;
        let get = |name: &str| {
            col.get(name)
                .and_then(|i| cells.get(*i))
                .map(|v| v.trim())
                .unwrap_or("")
        };
        // This row's problems; the row is kept only when it has none.
        let mut wrong: Vec<RowError> = Vec::new();
        let mut check = |column: &str, r: Result<(), String>| {
            if let Err(reason) = r {
                wrong.push(RowError {
                    line: at.line(),
                    column: column.to_string(),
                    cell: cell_name(at, col.get(column).copied()),
                    value: get(column).to_string(),
                    reason,
                });
            }
        };
        let kura = self.kura;

        let code_s = get("code");
        let mut code = None;
        if !code_s.is_empty() {
            let parsed = match KuraId::parse(code_s) {
                Ok(id) => Ok(SpecimenCode::kura(id)),
                Err(e @ kura_domain::ScanError::WrongCheckCharacter { .. }) => {
                    // A code that fails the check may still be a pre-barcoded tube's own code
                    // (those have none); only an ID of this site's format must check.
                    let prefix = kura.id_format().map(|f| f.prefix).unwrap_or_default();
                    if !prefix.is_empty() && code_s.to_ascii_uppercase().starts_with(&prefix) {
                        Err(e.to_string())
                    } else {
                        SpecimenCode::external(code_s).map_err(|e| e.to_string())
                    }
                }
                Err(_) => SpecimenCode::external(code_s).map_err(|e| e.to_string()),
            };
            match parsed {
                Ok(c) => {
                    if !self.seen.insert(c.to_string()) {
                        check("code", Err(format!("{c} appears twice in this file")));
                    } else if kura.store().is_registered(c.as_str())? {
                        check("code", Err(format!("{c} is already registered")));
                    }
                    code = Some(c);
                }
                Err(reason) => check("code", Err(reason)),
            }
        }
        let sample_type = SampleType::parse(get("type")).map_err(|e| e.to_string());
        check(
            "type",
            sample_type.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let container = parse_primary_container(get("container")).map_err(|e| e.to_string());
        check(
            "container",
            container.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let storage = parse_storage_code(get("storage")).map_err(|e| e.to_string());
        check(
            "storage",
            storage.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let quantity = match (get("quantity"), get("unit")) {
            ("", "") => Ok(None),
            ("", _) => Err(("quantity", "a unit without a quantity".to_string())),
            (_, "") => Err(("unit", "a quantity needs a unit".to_string())),
            (v, u) => Quantity::parse(v, u).map(Some).map_err(|e| {
                (
                    if e.to_string().contains("unit") {
                        "unit"
                    } else {
                        "quantity"
                    },
                    e.to_string(),
                )
            }),
        };
        if let Err((c, reason)) = &quantity {
            check(c, Err(reason.clone()));
        }
        let study = text("study", get("study"), 100).map_err(|e| e.to_string());
        check("study", study.as_ref().map(|_| ()).map_err(Clone::clone));
        let donor = text("donor", get("donor"), 64).map_err(|e| e.to_string());
        check("donor", donor.as_ref().map(|_| ()).map_err(Clone::clone));
        let collected_at = match get("collected_at") {
            "" => Ok(None),
            s => self.calendar.read(s).map(Some),
        };
        check(
            "collected_at",
            collected_at.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let parent = match get("parent") {
            "" => Ok(None),
            p => match SpecimenCode::parse_lookup(p) {
                Ok(pc)
                    if self.seen.contains(pc.as_str())
                        || kura.store().is_registered(pc.as_str())? =>
                {
                    Ok(Some(pc))
                }
                Ok(pc) => Err(format!(
                    "parent {pc} is neither registered nor on an earlier row"
                )),
                Err(e) => Err(e.to_string()),
            },
        };
        check("parent", parent.as_ref().map(|_| ()).map_err(Clone::clone));
        let location = match (get("box"), get("position")) {
            ("", "") => Ok(None),
            ("", _) => Err(("box", "a position needs a box".to_string())),
            (b, p) => kura.place(&mut self.boxes, b, p).map(Some),
        };
        if let Err((c, reason)) = &location {
            check(c, Err(reason.clone()));
        }
        match (
            sample_type,
            container,
            storage,
            quantity,
            study,
            donor,
            collected_at,
            parent,
            location,
        ) {
            (
                Ok(sample_type),
                Ok(container),
                Ok(storage),
                Ok(quantity),
                Ok(study),
                Ok(donor),
                Ok(collected_at),
                Ok(parent),
                Ok(location),
            ) if wrong.is_empty() => self.rows.push(Row {
                code,
                record: SpecimenRecord {
                    code: SpecimenCode::from_stored(String::new()),
                    sample_type,
                    container: container.to_string(),
                    storage: storage.to_string(),
                    quantity,
                    study,
                    donor,
                    collected_at,
                    parent,
                    freeze_thaw: 0,
                },
                location,
            }),
            _ => wrong.into_iter().for_each(|e| self.errors.push(e)),
        }
        Ok(())
    }

    /// The column the header names `name`, if any.
    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.col.get(name).copied()
    }

    /// A cell that cannot be read as text (an Excel error, a date where a code goes).
    pub(crate) fn bad_cell(&mut self, at: At<'_>, col: usize, value: String, reason: String) {
        let column = self
            .col
            .iter()
            .find(|(_, i)| **i == col)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| column_letters(col));
        self.errors.push(RowError {
            line: at.line(),
            column,
            cell: cell_name(at, Some(col)),
            value,
            reason,
        });
    }

    pub(crate) fn finish(self) -> Result<Vec<Row>, AppError> {
        if self.errors.total > 0 {
            return Err(self.errors.into_error());
        }
        Ok(self.rows)
    }
}

/// The name of the cell at `at` in column `col` (a workbook only).
pub(crate) fn cell_name(at: At<'_>, col: Option<usize>) -> Option<String> {
    match at {
        At::Line(_) => None,
        At::Cell { sheet, row, col0 } => Some(match col {
            Some(c) => format!("{sheet}!{}{row}", column_letters(col0 + c)),
            None => format!("{sheet}!{row}:{row}"),
        }),
    }
}

/// Whether `file` names a workbook.
pub fn is_workbook(file: &str) -> bool {
    let f = file.to_ascii_lowercase();
    [".xlsx", ".xlsm", ".xls"].iter().any(|e| f.ends_with(e))
}

impl Kura {
    /// Imports inventory from CSV. Every row is checked before anything is written; if any row
    /// is wrong, the error lists every bad row (line, column, reason) and nothing is imported.
    pub fn import_csv(
        &mut self,
        input: impl Read,
        progress: Progress<'_>,
    ) -> Result<ImportReport, AppError> {
        self.import_csv_as(input, CsvEncoding::Auto, progress)
    }

    /// The same, reading the bytes as `encoding` says.
    pub fn import_csv_as(
        &mut self,
        mut input: impl Read,
        encoding: CsvEncoding,
        progress: Progress<'_>,
    ) -> Result<ImportReport, AppError> {
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes).map_err(|e| AppError::File {
            path: "import".into(),
            message: e.to_string(),
        })?;
        let opts = ImportOptions {
            file: "import.csv".into(),
            encoding,
            ..ImportOptions::default()
        };
        self.import_bytes(&bytes, &opts, progress)
    }

    /// Imports a file's bytes (CSV or a workbook, by its name): every row checked first, all
    /// written in one transaction behind an `imported` event with the file's SHA-256 — or, with
    /// `check`, nothing written and the same report.
    pub fn import_bytes(
        &mut self,
        bytes: &[u8],
        opts: &ImportOptions,
        progress: Progress<'_>,
    ) -> Result<ImportReport, AppError> {
        use sha2::Digest;
        let sha256 = hex::encode(sha2::Sha256::digest(bytes));
        let workbook = is_workbook(&opts.file);
        // A large cache for the check's lookups and the write after it; every row checked in
        // one read transaction.
        self.store_mut().set_cache_mib(256)?;
        let started = std::time::Instant::now();
        let rows = self.store().reading(|| {
            if workbook {
                crate::sheets::read_workbook(self, bytes, opts.sheet.as_deref())
            } else {
                self.read_csv(bytes, opts.encoding)
            }
        })?;
        let total = rows.len() as u64;
        let issued = rows.iter().filter(|r| r.code.is_none()).count() as u64;
        let stored = rows.iter().filter(|r| r.location.is_some()).count() as u64;
        let file = std::path::Path::new(&opts.file)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| opts.file.clone());
        let report = ImportReport {
            rows: total,
            issued,
            stored,
            file: file.clone(),
            sha256: sha256.clone(),
            checked_only: opts.check,
        };
        if opts.check {
            return Ok(report);
        }
        let checked = started.elapsed();
        self.serials_for(issued)?;
        progress(0, total);
        self.store_mut().set_bulk(true)?;
        self.store().drop_search_indexes_for(total)?;
        let result = self.write(|e| {
            e.emit(EventBody::Imported {
                file,
                format: if workbook { "xlsx" } else { "csv" }.into(),
                sha256,
                rows: total,
                issued,
            })?;
            let mut ids = e.issue_ids(issued)?.into_iter();
            for (i, mut r) in rows.into_iter().enumerate() {
                r.record.code = match r.code.or_else(|| ids.next()) {
                    Some(code) => code,
                    None => {
                        return Err(AppError::input(
                            "code",
                            "fewer IDs were issued than rows need one",
                        ));
                    }
                };
                e.emit(EventBody::Registered {
                    specimen: r.record,
                    location: r.location,
                })?;
                if (i + 1) % 10_000 == 0 {
                    progress(i as u64 + 1, total);
                }
            }
            progress(total, total);
            Ok(report)
        });
        let written = started.elapsed();
        // Built again whether the import was kept or not.
        self.store().build_search_indexes()?;
        self.store_mut().set_bulk(false)?;
        tracing::info!(
            rows = total,
            read_and_check_ms = checked.as_millis() as u64,
            write_ms = (written - checked).as_millis() as u64,
            indexes_and_checkpoint_ms = (started.elapsed() - written).as_millis() as u64,
            "import"
        );
        result
    }

    /// Reads and checks every row of a CSV file.
    fn read_csv(&self, bytes: &[u8], encoding: CsvEncoding) -> Result<Vec<Row>, AppError> {
        let content = decode(bytes, encoding)?;
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(content.as_bytes());
        let headers = rdr
            .headers()
            .map_err(|e| AppError::input("csv", format!("cannot read the header row: {e}")))?
            .clone();
        let mut reader = Reader::new(self, &headers.iter().collect::<Vec<_>>(), At::Line(1));
        if !reader.header_ok() {
            return reader.finish();
        }
        let mut record = csv::StringRecord::new();
        let mut line = 1u64;
        loop {
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    line += 1;
                    let at = e.position().map(|p| p.line()).unwrap_or(line);
                    reader.malformed(At::Line(at), format!("malformed CSV: {e}"));
                    continue;
                }
            }
            line = record.position().map(|p| p.line()).unwrap_or(line + 1);
            let cells: Vec<&str> = record.iter().collect();
            reader.row(At::Line(line), &cells)?;
        }
        reader.finish()
    }

    fn place(
        &self,
        boxes: &mut HashMap<String, Option<BoxState>>,
        b: &str,
        p: &str,
    ) -> Result<Location, (&'static str, String)> {
        let id = ContainerId::parse(b).map_err(|e| ("box", e.to_string()))?;
        if !boxes.contains_key(id.as_str()) {
            let map = self
                .store()
                .box_map(id.as_str())
                .map_err(|e| ("box", e.to_string()))?;
            if let Some(m) = &map
                && !["box", "tube_rack", "cane"].contains(&m.kind.as_str())
            {
                return Err((
                    "box",
                    format!(
                        "{id} is a {}; specimens go into boxes, tube racks or canes",
                        m.kind
                    ),
                ));
            }
            let state = map.map(|m| BoxState {
                taken: m
                    .slots
                    .iter()
                    .filter(|s| s.specimen.is_some())
                    .map(|s| Pos::new(s.row, s.col))
                    .collect(),
                geometry: m.geometry,
            });
            boxes.insert(id.to_string(), state);
        }
        let Some(state) = boxes.get_mut(id.as_str()).and_then(Option::as_mut) else {
            return Err((
                "box",
                format!("container {id} does not exist; create it first (kura storage)"),
            ));
        };
        let pos = if p.is_empty() {
            state
                .geometry
                .next_free(|q| state.taken.contains(&q))
                .ok_or(("box", format!("{id} is full")))?
        } else {
            let pos = state
                .geometry
                .parse(p)
                .map_err(|e| ("position", e.to_string()))?;
            if state.taken.contains(&pos) {
                return Err((
                    "position",
                    format!("{} of {id} is already occupied", state.geometry.label(pos)),
                ));
            }
            pos
        };
        state.taken.insert(pos);
        Ok(Location { container: id, pos })
    }

    /// Calls `row` for every specimen `filter` keeps, in the order an export writes them: by
    /// registration time, the same on every bench; a row whose parent has not been written yet
    /// (clocks of two benches disagreeing) waits for it, so that the file imports again (a parent
    /// on an earlier row); children of parents not in the export come last.
    fn each_exported(
        &self,
        filter: &ExportFilter,
        progress: Progress<'_>,
        mut row: impl FnMut(kura_store::SpecimenView) -> Result<(), AppError>,
    ) -> Result<u64, AppError> {
        self.may_read()?;
        // Progress counts the specimens read (a filter keeps fewer than it reads).
        let total = self.store().specimens_held()?;
        let mut read = 0u64;
        progress(0, total);
        let want_box = filter
            .container
            .as_deref()
            .map(ContainerId::parse)
            .transpose()?;
        let search = filter.search();
        let matches = search.matcher();
        let keep = |s: &kura_store::SpecimenView| {
            want_box
                .as_ref()
                .is_none_or(|b| s.container.as_deref() == Some(b.as_str()))
                && matches(s)
        };
        let mut n = 0u64;
        let mut failure = None;
        let mut written: HashSet<String> = HashSet::new();
        let mut waiting: HashMap<String, Vec<kura_store::SpecimenView>> = HashMap::new();
        let mut emit = |s: kura_store::SpecimenView, n: &mut u64| {
            if failure.is_none() {
                *n += 1;
                if let Err(e) = row(s) {
                    failure = Some(e);
                }
            }
        };
        self.store().for_each_specimen(|s| {
            read += 1;
            if read.is_multiple_of(10_000) {
                progress(read, total);
            }
            if !keep(&s) {
                return Ok(());
            }
            if let Some(p) = s.parent.as_ref().filter(|p| !written.contains(*p)) {
                waiting.entry(p.clone()).or_default().push(s);
                return Ok(());
            }
            let mut ready = vec![s];
            while let Some(s) = ready.pop() {
                if let Some(children) = waiting.remove(&s.code) {
                    ready.extend(children.into_iter().rev());
                }
                written.insert(s.code.clone());
                emit(s, &mut n);
            }
            Ok(())
        })?;
        let mut orphans: Vec<_> = waiting.into_values().flatten().collect();
        orphans.sort_by(|a, b| (a.registered_at, &a.code).cmp(&(b.registered_at, &b.code)));
        for s in orphans {
            emit(s, &mut n);
        }
        progress(total, total);
        match failure {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Writes every specimen as CSV (the import columns plus status columns), in UTF-8; with
    /// `bom`, behind a byte-order mark, which is how Excel on Japanese Windows knows it is UTF-8
    /// (without one it reads the file as CP932 and the Japanese comes out garbled).
    pub fn export_csv(&self, out: impl Write, bom: bool) -> Result<u64, AppError> {
        self.export_csv_of(out, bom, &ExportFilter::default())
    }

    /// The same for the specimens `filter` keeps.
    pub fn export_csv_of(
        &self,
        out: impl Write,
        bom: bool,
        filter: &ExportFilter,
    ) -> Result<u64, AppError> {
        self.export_csv_with(out, bom, filter, &mut |_, _| {})
    }

    fn export_csv_with(
        &self,
        mut out: impl Write,
        bom: bool,
        filter: &ExportFilter,
        progress: Progress<'_>,
    ) -> Result<u64, AppError> {
        let file_err = |e: csv::Error| AppError::File {
            path: "export".into(),
            message: e.to_string(),
        };
        if bom {
            out.write_all(BOM).map_err(|e| file_err(e.into()))?;
        }
        let mut w = csv::Writer::from_writer(out);
        w.write_record(export_header()).map_err(file_err)?;
        let n = self.each_exported(filter, progress, |s| {
            let rec: Vec<String> = export_cells(&s)
                .into_iter()
                .map(|c| match c {
                    Cell::Text(t) => t,
                    Cell::Number(f) => quantity_text(f),
                    Cell::Time(t) => t.to_string(),
                    Cell::Empty => String::new(),
                })
                .collect();
            w.write_record(&rec).map_err(file_err)
        })?;
        w.flush().map_err(|e| AppError::File {
            path: "export".into(),
            message: e.to_string(),
        })?;
        Ok(n)
    }

    /// The specimens `filter` keeps as a workbook (one sheet, `specimens`): the same columns as
    /// CSV, codes as text cells, collection times as date cells.
    pub fn export_xlsx(&self, filter: &ExportFilter) -> Result<(Vec<u8>, u64), AppError> {
        self.export_xlsx_with(filter, &mut |_, _| {})
    }

    fn export_xlsx_with(
        &self,
        filter: &ExportFilter,
        progress: Progress<'_>,
    ) -> Result<(Vec<u8>, u64), AppError> {
        let mut sheet = SheetWriter::new(self.calendar(), "specimens", &export_header())?;
        self.each_exported(filter, progress, |s| sheet.row(&export_cells(&s)))?;
        sheet.finish()
    }

    /// Writes the specimens `filter` keeps to `path`: a workbook when it ends in `.xlsx`, CSV
    /// otherwise (`bom`: behind a byte-order mark, for Excel on Japanese Windows). The file is
    /// created readable by its owner only and synced before this returns.
    pub fn export_file(
        &self,
        path: &std::path::Path,
        bom: bool,
        filter: &ExportFilter,
        progress: Progress<'_>,
    ) -> Result<Exported, AppError> {
        let file_err = |e: std::io::Error| crate::labels::file_err(path, e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(file_err)?;
        }
        let workbook = is_workbook(&path.to_string_lossy());
        let rows = if workbook {
            let (bytes, n) = self.export_xlsx_with(filter, progress)?;
            let mut f = crate::create_private(path).map_err(file_err)?;
            f.write_all(&bytes)
                .and_then(|()| f.sync_all())
                .map_err(file_err)?;
            n
        } else {
            let f = crate::create_private(path).map_err(file_err)?;
            let mut w = std::io::BufWriter::new(f);
            let n = self.export_csv_with(&mut w, bom, filter, progress)?;
            let f = w.into_inner().map_err(|e| file_err(e.into_error()))?;
            f.sync_all().map_err(file_err)?;
            n
        };
        Ok(Exported {
            path: path.display().to_string(),
            rows,
        })
    }
}
