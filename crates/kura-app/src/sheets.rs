//! Workbooks both ways. Import reads a sheet (`calamine`) into the same rows and the same
//! all-or-nothing checks as CSV, naming sheet and cell (`Sheet1!C17`); export writes any table
//! (`rust_xlsxwriter`), codes as text cells so that `00012345` keeps its zeros and never turns
//! into a number or a date, times as date cells.

use std::io::Cursor;

use calamine::{Data, Reader as _, Sheets, open_workbook_auto_from_rs};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use kura_domain::Timestamp;

use crate::import::{At, Reader, Row};
use crate::{AppError, Kura};

/// The start of an encrypted Office file: an OLE compound file holding `EncryptedPackage`
/// (what "Encrypt with Password" writes, even for .xlsx).
const CFB_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

fn encrypted(bytes: &[u8]) -> bool {
    let name: Vec<u8> = "EncryptedPackage"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    bytes.starts_with(CFB_MAGIC) && bytes.windows(name.len()).any(|w| w == name.as_slice())
}

fn password_protected() -> AppError {
    AppError::input(
        "workbook",
        "the workbook is protected by a password, so Kura cannot read it. Open it in Excel, remove the password (File → Info → Protect Workbook → Encrypt with Password, leave it empty), save it, and import it again",
    )
}

/// Days from an Excel serial to a date: the 1900 system counts from 1899-12-30 (Excel's
/// phantom 29 February 1900 makes serials before 61 wrong, so they are refused), the 1904
/// system from 1904-01-01.
pub fn serial_date(serial: f64, is_1904: bool) -> Result<NaiveDateTime, String> {
    if !serial.is_finite() || !(0.0..=2_958_465.0).contains(&serial) {
        return Err(format!("{serial} is not a date serial"));
    }
    if !is_1904 && serial < 61.0 {
        return Err(format!(
            "date serial {serial} falls before 1 March 1900, where Excel's 1900 calendar is wrong; write the date as text (YYYY-MM-DD)"
        ));
    }
    let epoch = if is_1904 {
        NaiveDate::from_ymd_opt(1904, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(1899, 12, 30)
    }
    .and_then(|d| d.and_hms_opt(0, 0, 0))
    .ok_or("no epoch")?;
    let ms = (serial * 86_400_000.0).round() as i64;
    Ok(epoch + chrono::Duration::milliseconds(ms))
}

/// A date (and time, when it has one) as text the calendar reads: `2024-04-01`,
/// `2024-04-01 09:30:00`.
fn date_text(dt: NaiveDateTime) -> String {
    if dt.hour() == 0 && dt.minute() == 0 && dt.second() == 0 {
        dt.format("%Y-%m-%d").to_string()
    } else {
        dt.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

/// A number as people typed it: `12` not `12.0`.
fn number_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// Reads and checks the rows of one sheet (the first unless `sheet` names one).
pub(crate) fn read_workbook(
    kura: &Kura,
    bytes: &[u8],
    sheet: Option<&str>,
) -> Result<Vec<Row>, AppError> {
    let (name, is_1904, range) = open_sheet(bytes, sheet)?;
    let (r0, c0) = range.start().unwrap_or((0, 0));
    let (r0, c0) = (u64::from(r0), c0 as usize);
    let mut rows = range.rows();
    let Some(header) = rows.next() else {
        return Err(AppError::input(
            "sheet",
            format!("sheet {name:?} is empty: the first row names the columns"),
        ));
    };
    let headers: Vec<String> = header.iter().map(cell_text_plain).collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let at = |row: u64| At::Cell {
        sheet: &name,
        row,
        col0: c0,
    };
    let mut reader = Reader::new(kura, &header_refs, at(r0 + 1));
    if !reader.header_ok() {
        return reader.finish();
    }
    let code_cols = [reader.column("code"), reader.column("parent")];
    let date_col = reader.column("collected_at");
    let mut cells: Vec<String> = Vec::new();
    for (i, row) in rows.enumerate() {
        let here = at(r0 + 2 + i as u64);
        if row.iter().all(|c| matches!(c, Data::Empty)) {
            continue;
        }
        cells.clear();
        for (c, d) in row.iter().enumerate() {
            let text = if Some(c) == date_col {
                date_cell(d, is_1904)
            } else if code_cols.contains(&Some(c)) {
                code_cell(d)
            } else {
                text_cell(d)
            };
            match text {
                Ok(t) => cells.push(t),
                Err(reason) => {
                    reader.bad_cell(here, c, cell_text_plain(d), reason);
                    cells.push(String::new());
                }
            }
        }
        let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
        reader.row(here, &refs)?;
    }
    reader.finish()
}

/// Opens `sheet` of a workbook (the first without a name): its name, whether the workbook counts
/// dates from 1904, and its cells.
fn open_sheet(
    bytes: &[u8],
    sheet: Option<&str>,
) -> Result<(String, bool, calamine::Range<Data>), AppError> {
    if encrypted(bytes) {
        return Err(password_protected());
    }
    let mut wb = open_workbook_auto_from_rs(Cursor::new(bytes.to_vec())).map_err(|e| {
        if e.to_string().contains("password") {
            password_protected()
        } else {
            AppError::input(
                "workbook",
                format!("the file is not a workbook Kura can read ({e}); save it as .xlsx (Excel Workbook) and import it again"),
            )
        }
    })?;
    let is_1904 = match &wb {
        Sheets::Xlsx(x) => x.has_1904_epoch(),
        _ => false,
    };
    let names = wb.sheet_names();
    let name = match sheet {
        Some(s) => names
            .iter()
            .find(|n| n.as_str() == s)
            .cloned()
            .ok_or_else(|| {
                AppError::input(
                    "sheet",
                    format!(
                        "the workbook has no sheet {s:?}; its sheets are {}",
                        names.join(", ")
                    ),
                )
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| AppError::input("workbook", "the workbook has no sheets"))?,
    };
    let range = wb
        .worksheet_range(&name)
        .map_err(|e| AppError::input("sheet", format!("cannot read sheet {name:?}: {e}")))?;
    Ok((name, is_1904, range))
}

/// A small table read as text from a CSV file or a workbook's sheet (a storage layout): the
/// header first; each row with where it is, so a problem names its line or cell.
pub(crate) struct Table {
    /// The sheet's name (a workbook), else none (CSV: rows are lines).
    sheet: Option<String>,
    /// The sheet column of the table's first column.
    col0: usize,
    /// (line or sheet row, cells), the header first; blank rows left out.
    pub rows: Vec<(u64, Vec<String>)>,
}

impl Table {
    /// Reads `bytes`: a workbook when `file` names one (`sheet`, else the first), else CSV
    /// (UTF-8 or CP932, as import detects it).
    pub(crate) fn read(bytes: &[u8], file: &str, sheet: Option<&str>) -> Result<Table, AppError> {
        if crate::import::is_workbook(file) {
            let (name, _, range) = open_sheet(bytes, sheet)?;
            let (r0, c0) = range.start().unwrap_or((0, 0));
            let rows = range
                .rows()
                .enumerate()
                .map(|(i, r)| {
                    (
                        u64::from(r0) + 1 + i as u64,
                        r.iter().map(cell_text_plain).collect::<Vec<_>>(),
                    )
                })
                .filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()))
                .collect();
            return Ok(Table {
                sheet: Some(name),
                col0: c0 as usize,
                rows,
            });
        }
        let text = crate::import::decode(bytes, crate::import::CsvEncoding::Auto)?;
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                AppError::input("csv", format!("line {line}: malformed CSV: {e}"))
            })?;
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            let cells: Vec<String> = rec.iter().map(str::to_string).collect();
            if cells.iter().any(|c| !c.is_empty()) {
                rows.push((line, cells));
            }
        }
        Ok(Table {
            sheet: None,
            col0: 0,
            rows,
        })
    }

    /// Where row `n` (a line, or a sheet row) is.
    pub(crate) fn at(&self, n: u64) -> At<'_> {
        match &self.sheet {
            Some(sheet) => At::Cell {
                sheet,
                row: n,
                col0: self.col0,
            },
            None => At::Line(n),
        }
    }
}

/// The first sheet's rows as text (a rack scanner's workbook).
pub(crate) fn sheet_rows(bytes: &[u8]) -> Result<Vec<Vec<String>>, AppError> {
    if encrypted(bytes) {
        return Err(password_protected());
    }
    let mut wb = open_workbook_auto_from_rs(Cursor::new(bytes.to_vec())).map_err(|e| {
        AppError::input(
            "workbook",
            format!("the file is not a workbook Kura can read ({e})"),
        )
    })?;
    let range = wb
        .worksheet_range_at(0)
        .ok_or_else(|| AppError::input("workbook", "the workbook has no sheets"))?
        .map_err(|e| AppError::input("sheet", format!("cannot read the first sheet: {e}")))?;
    Ok(range
        .rows()
        .map(|r| r.iter().map(cell_text_plain).collect())
        .collect())
}

/// Any cell as plain text (headers, values shown in a report).
fn cell_text_plain(d: &Data) -> String {
    text_cell(d).unwrap_or_else(|_| d.to_string())
}

fn text_cell(d: &Data) -> Result<String, String> {
    match d {
        Data::Empty => Ok(String::new()),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Ok(s.clone()),
        Data::Int(i) => Ok(i.to_string()),
        Data::Float(f) => Ok(number_text(*f)),
        Data::Bool(b) => Ok(if *b { "TRUE" } else { "FALSE" }.to_string()),
        Data::DateTime(dt) => dt
            .as_datetime()
            .map(date_text)
            .ok_or_else(|| format!("date serial {} is out of range", dt.as_f64())),
        Data::Error(e) => Err(format!(
            "the cell holds an Excel error ({e}); correct the formula or type the value"
        )),
    }
}

/// A `code` or `parent` cell: text only. A number or a date there is a code Excel converted
/// (`00012345` becomes 12345, `3-4` a date): what the code was cannot be known, so it is refused.
fn code_cell(d: &Data) -> Result<String, String> {
    match d {
        Data::DateTime(_) | Data::DateTimeIso(_) => Err("a date, not a code: Excel turned the code into a date; format the column as text (@) and type the code again".to_string()),
        Data::Int(_) | Data::Float(_) => Err("a number, not a code: Excel may have dropped leading zeros; format the column as text (@) and type the code again".to_string()),
        other => text_cell(other),
    }
}

/// A `collected_at` cell: a date cell, text (read by the calendar later), or a bare serial.
fn date_cell(d: &Data, is_1904: bool) -> Result<String, String> {
    match d {
        Data::Int(i) => serial_date(*i as f64, is_1904).map(date_text),
        Data::Float(f) => serial_date(*f, is_1904).map(date_text),
        other => text_cell(other),
    }
}

/// One cell of an exported table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Written as a text cell whatever it looks like (codes, positions, names).
    Text(String),
    Number(f64),
    /// A time: a date cell at the site (date and time; a date alone at midnight).
    Time(Timestamp),
    Empty,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        let s = s.into();
        if s.is_empty() {
            Cell::Empty
        } else {
            Cell::Text(s)
        }
    }
}

/// Writes a table (a header row, then rows) as a workbook with one sheet: text cells formatted
/// as text (`@`), times as date cells in the site's calendar, the header frozen. Rows are
/// streamed to a temporary file (constant memory), so a million rows fit.
pub struct SheetWriter {
    wb: rust_xlsxwriter::Workbook,
    text: rust_xlsxwriter::Format,
    date: rust_xlsxwriter::Format,
    datetime: rust_xlsxwriter::Format,
    calendar: crate::Calendar,
    rows: u32,
}

fn xlsx_err(e: rust_xlsxwriter::XlsxError) -> AppError {
    AppError::File {
        path: "workbook".into(),
        message: e.to_string(),
    }
}

/// The most data rows a sheet holds (Excel's 1,048,576 rows less the header).
pub const MAX_SHEET_ROWS: u32 = 1_048_575;

impl SheetWriter {
    pub fn new(
        calendar: &crate::Calendar,
        sheet: &str,
        header: &[&str],
    ) -> Result<SheetWriter, AppError> {
        use rust_xlsxwriter::{Format, Workbook};
        let mut wb = Workbook::new();
        let text = Format::new().set_num_format("@");
        let bold = Format::new().set_bold().set_num_format("@");
        let ws = wb.add_worksheet_with_constant_memory().map_err(xlsx_err)?;
        ws.set_name(sheet).map_err(xlsx_err)?;
        for c in 0..header.len() {
            ws.set_column_width(c as u16, 14).map_err(xlsx_err)?;
        }
        ws.set_freeze_panes(1, 0).map_err(xlsx_err)?;
        for (c, h) in header.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, *h, &bold)
                .map_err(xlsx_err)?;
        }
        Ok(SheetWriter {
            wb,
            text,
            date: Format::new().set_num_format("yyyy-mm-dd"),
            datetime: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            calendar: calendar.clone(),
            rows: 0,
        })
    }

    pub fn row(&mut self, cells: &[Cell]) -> Result<(), AppError> {
        use rust_xlsxwriter::ExcelDateTime;
        if self.rows >= MAX_SHEET_ROWS {
            return Err(AppError::input(
                "export",
                "more than 1,048,575 rows: a workbook cannot hold them; export CSV instead (or a part: --box, --study)",
            ));
        }
        self.rows += 1;
        let r = self.rows;
        let ws = self.wb.worksheet_from_index(0).map_err(xlsx_err)?;
        for (c, cell) in cells.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Text(s) => {
                    ws.write_string_with_format(r, c, s, &self.text)
                        .map_err(xlsx_err)?;
                }
                Cell::Number(f) => {
                    ws.write_number(r, c, *f).map_err(xlsx_err)?;
                }
                Cell::Time(t) => {
                    let wall = self.calendar.wall_seconds(*t);
                    let d = wall.date();
                    let x =
                        ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8)
                            .and_then(|x| {
                                x.and_hms(
                                    wall.hour() as u16,
                                    wall.minute() as u8,
                                    f64::from(wall.second()),
                                )
                            })
                            .map_err(xlsx_err)?;
                    let f = if wall.time() == chrono::NaiveTime::MIN {
                        &self.date
                    } else {
                        &self.datetime
                    };
                    ws.write_datetime_with_format(r, c, &x, f)
                        .map_err(xlsx_err)?;
                }
                Cell::Empty => {}
            }
        }
        Ok(())
    }

    /// The workbook's bytes and how many rows it holds.
    pub fn finish(mut self) -> Result<(Vec<u8>, u64), AppError> {
        let bytes = self.wb.save_to_buffer().map_err(xlsx_err)?;
        Ok((bytes, u64::from(self.rows)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_in_both_calendars() {
        // (serial, 1904 system, the date or the start of the refusal)
        let cases = [
            (45383.0, false, Ok("2024-04-01")),
            (43585.0, false, Ok("2019-04-30")),
            (61.0, false, Ok("1900-03-01")),
            (60.0, false, Err("date serial 60 falls before")),
            (43921.0, true, Ok("2024-04-01")),
            (0.0, true, Ok("1904-01-01")),
            (45383.375, false, Ok("2024-04-01 09:00:00")),
            (-1.0, false, Err("-1 is not a date serial")),
        ];
        for (serial, is_1904, want) in cases {
            let got = serial_date(serial, is_1904).map(date_text);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{serial} {is_1904}"),
                (Err(w), Err(e)) => assert!(e.starts_with(w), "{serial}: {e}"),
                _ => panic!("{serial} {is_1904}: {got:?}"),
            }
        }
    }

    #[test]
    fn column_names() {
        use crate::import::column_letters;
        for (i, want) in [
            (0, "A"),
            (2, "C"),
            (25, "Z"),
            (26, "AA"),
            (27, "AB"),
            (701, "ZZ"),
            (702, "AAA"),
        ] {
            assert_eq!(column_letters(i), want);
        }
    }
}
