//! Rack-scanner reconciliation: a 2D rack reader's file (what is in each position of a 24-, 48-
//! or 96-tube rack) against what the database believes is in a box.
//!
//! The layout detector reads what rack readers export: with or without a header row; an
//! optional rack-barcode column; optional `key,value` preamble rows (rack id, tube count — the
//! count is a cross-check); `,` `;` or TAB; `A1`, `A01` or numeric positions (row or column
//! order); CRLF; a byte-order mark; CP932; and workbooks. `NO READ` (and its spellings) is a tube
//! that is there but unreadable, never an empty position; `NO TUBE`, `EMPTY`, an empty cell are
//! empty. A site whose reader writes something else adds a small layout file (`RackLayout`).

use std::collections::HashMap;

use kura_domain::position::Geometry;
use kura_domain::{EventBody, Location, Pos};
use serde::{Deserialize, Serialize};

use crate::{AppError, Kura};

/// What a scanner saw in one position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Tube(String),
    Unreadable,
    Empty,
}

/// The markers rack readers write for a tube whose code they could not read.
const NO_READ: &[&str] = &[
    "NOREAD",
    "NO READ",
    "NO_READ",
    "NOSCAN",
    "NO SCAN",
    "NO_SCAN",
    "ERROR",
    "NOCODE",
    "NO CODE",
    "UNREADABLE",
    "???",
    "FAIL",
    "FAILED",
];
/// … and for a position with no tube.
const EMPTY: &[&str] = &[
    "",
    "NOTUBE",
    "NO TUBE",
    "NO_TUBE",
    "EMPTY",
    "NO TRAKMATE",
    "NOTRAKMATE",
    "NONE",
    "-",
    "N/A",
];

fn classify(cell: &str) -> Seen {
    let u = cell.trim().to_ascii_uppercase();
    if NO_READ.contains(&u.as_str()) {
        Seen::Unreadable
    } else if EMPTY.contains(&u.as_str()) {
        Seen::Empty
    } else {
        Seen::Tube(cell.trim().to_string())
    }
}

/// How numeric positions count: along rows (A1, A2 … A12, B1) or down columns (A1, B1 … H1, A2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Row,
    Column,
}

impl std::str::FromStr for Order {
    type Err = AppError;
    fn from_str(s: &str) -> Result<Order, AppError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "row" | "rows" => Ok(Order::Row),
            "column" | "columns" | "col" => Ok(Order::Column),
            other => Err(AppError::input(
                "order",
                format!("{other:?}: numeric positions count by row or by column"),
            )),
        }
    }
}

/// A site's description of a layout the detector cannot place (TOML): columns counted from 1.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RackLayout {
    /// `,`, `;` or `\t` (default: detected).
    pub delimiter: Option<String>,
    /// Rows to skip before the table (preamble, header).
    #[serde(default)]
    pub skip: usize,
    pub position: usize,
    pub code: usize,
    #[serde(default)]
    pub order: Order,
}

impl RackLayout {
    /// Reads a layout file (TOML: `position`, `code`, optional `skip`, `delimiter`, `order`).
    pub fn parse(text: &str) -> Result<RackLayout, AppError> {
        let l: RackLayout = toml::from_str(text).map_err(|e| {
            AppError::input(
                "layout",
                format!("the layout file is not valid: {e}; it names the position and code columns (counted from 1), e.g. position = 2 and code = 3"),
            )
        })?;
        if l.position == 0 || l.code == 0 || l.position == l.code {
            return Err(AppError::input(
                "layout",
                "position and code are two different columns, counted from 1",
            ));
        }
        Ok(l)
    }
}

/// A scan, read: each position's tube as the file says, and what the file said about itself.
#[derive(Debug, Clone, Default)]
pub struct RackScan {
    /// Row, column (0-based) → what was seen.
    pub cells: HashMap<(u16, u16), Seen>,
    pub rack: Option<String>,
    /// The tube count a preamble stated.
    pub stated_count: Option<u64>,
}

/// A position label as rack readers write it: `A1`, `A01`, `a1`; or a number (1-based, in
/// `order`) on a `rows` × `cols` rack.
fn parse_position(s: &str, rows: u16, cols: u16, order: Order) -> Option<(u16, u16)> {
    let s = s.trim().to_ascii_uppercase();
    let mut chars = s.chars();
    let first = chars.next()?;
    if first.is_ascii_uppercase() {
        let r = first as u16 - 'A' as u16;
        let c: u16 = chars.as_str().trim_start_matches('0').parse().ok()?;
        return (r < rows && (1..=cols).contains(&c)).then_some((r, c - 1));
    }
    let n: u16 = s.parse().ok()?;
    if n == 0 || n > rows * cols {
        return None;
    }
    let i = n - 1;
    Some(match order {
        Order::Row => (i / cols, i % cols),
        Order::Column => (i % rows, i / rows),
    })
}

fn split(line: &str, delim: char) -> Vec<String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delim as u8)
        .flexible(true)
        .from_reader(line.as_bytes());
    rdr.records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(|c| c.trim().to_string()).collect())
        .unwrap_or_default()
}

/// The header names of the position and code columns, as readers write them.
const POSITION_NAMES: &[&str] = &[
    "POSITION",
    "POS",
    "WELL",
    "LOCATION",
    "TUBE POSITION",
    "TUBEPOSITION",
    "LOCATIONCELL",
    "RACKPOSITION",
    "RACK POSITION",
    "COORDINATE",
    "位置",
    "ウェル",
    "ポジション",
];
const CODE_NAMES: &[&str] = &[
    "BARCODE",
    "TUBE BARCODE",
    "TUBEBARCODE",
    "TUBE",
    "TUBE ID",
    "TUBEID",
    "CODE",
    "SAMPLE",
    "SAMPLE ID",
    "TUBECODE",
    "TUBE CODE",
    "2D BARCODE",
    "2DBARCODE",
    "バーコード",
    "チューブ",
    "チューブID",
    "検体ID",
];
const RACK_KEYS: &[&str] = &[
    "RACK",
    "RACK ID",
    "RACKID",
    "RACK BARCODE",
    "RACKBARCODE",
    "PLATE",
    "ラック",
    "ラックID",
];
const COUNT_KEYS: &[&str] = &[
    "TUBE COUNT",
    "TUBECOUNT",
    "TUBES",
    "COUNT",
    "NUMBER OF TUBES",
];

/// Reads a scanner's rows (already split into cells) for a `rows` × `cols` rack.
pub fn read_rows(
    table: &[Vec<String>],
    rows: u16,
    cols: u16,
    order: Order,
    layout: Option<&RackLayout>,
) -> Result<RackScan, AppError> {
    let mut scan = RackScan::default();
    let bad = |m: String| AppError::input("rack_file", m);
    let (start, pos_col, code_col) = if let Some(l) = layout {
        (
            l.skip,
            l.position.saturating_sub(1),
            l.code.saturating_sub(1),
        )
    } else {
        let mut start = None;
        let mut cols_found = None;
        for (i, row) in table.iter().enumerate() {
            let up: Vec<String> = row.iter().map(|c| c.to_ascii_uppercase()).collect();
            // A header row names a position column and a code column.
            let p = up.iter().position(|c| POSITION_NAMES.contains(&c.as_str()));
            let c = up.iter().position(|c| CODE_NAMES.contains(&c.as_str()));
            if let (Some(p), Some(c)) = (p, c) {
                start = Some(i + 1);
                cols_found = Some((p, c));
                break;
            }
            // A data row: one cell is a position, another a code or a marker.
            let p = row
                .iter()
                .position(|c| parse_position(c, rows, cols, order).is_some() && !c.is_empty());
            if let Some(p) = p
                && row.len() >= 2
                && !(row.len() == 2 && is_key(&up[0]))
            {
                // The code column: the last one that is not the position and varies (a rack
                // barcode column repeats one value on every row).
                let code = (0..row.len()).rev().find(|&j| {
                    j != p && {
                        let vals: std::collections::HashSet<&str> = table[i..]
                            .iter()
                            .filter_map(|r| r.get(j).map(String::as_str))
                            .collect();
                        vals.len() > 1 || table.len() - i == 1
                    }
                });
                if let Some(c) = code {
                    start = Some(i);
                    cols_found = Some((p, c));
                    break;
                }
            }
            // Otherwise a preamble row: `key,value`.
            if row.len() >= 2 {
                let key = up[0].trim_end_matches(':').trim().to_string();
                if RACK_KEYS.contains(&key.as_str()) {
                    scan.rack = Some(row[1].clone());
                } else if COUNT_KEYS.contains(&key.as_str()) {
                    scan.stated_count = row[1].parse().ok();
                }
            }
        }
        let (Some(start), Some((p, c))) = (start, cols_found) else {
            return Err(bad(
                "cannot find the positions and tube codes in this file: no header naming them and no row with a position (A1, A01 or a number) and a code. Describe the layout in a small file and pass it with --layout"
                    .into(),
            ));
        };
        (start, p, c)
    };
    for (n, row) in table.iter().enumerate().skip(start) {
        if row.iter().all(String::is_empty) {
            continue;
        }
        let line = n + 1;
        let pos_s = row.get(pos_col).map(String::as_str).unwrap_or("");
        let pos = parse_position(pos_s, rows, cols, order).ok_or_else(|| {
            bad(format!(
                "line {line}: {pos_s:?} is not a position of a {rows}×{cols} rack (A1, A01 or 1–{})",
                rows * cols
            ))
        })?;
        let seen = classify(row.get(code_col).map(String::as_str).unwrap_or(""));
        if scan.cells.insert(pos, seen).is_some() {
            return Err(bad(format!(
                "line {line}: position {pos_s} appears twice in the file"
            )));
        }
    }
    // A rack-barcode column: another column (no layout file) with one value on every row.
    if scan.rack.is_none() && layout.is_none() {
        let data: Vec<&Vec<String>> = table[start..]
            .iter()
            .filter(|r| !r.iter().all(String::is_empty))
            .collect();
        let width = data.iter().map(|r| r.len()).max().unwrap_or(0);
        scan.rack = (0..width)
            .filter(|j| *j != pos_col && *j != code_col)
            .find_map(|j| {
                let first = data.first()?.get(j)?;
                (!first.is_empty() && data.iter().all(|r| r.get(j) == Some(first)))
                    .then(|| first.clone())
            });
    }
    if let Some(n) = scan.stated_count {
        let tubes = scan
            .cells
            .values()
            .filter(|s| !matches!(s, Seen::Empty))
            .count() as u64;
        if tubes != n {
            return Err(bad(format!(
                "the file says {n} tubes but lists {tubes}: it may be cut short; scan the rack again"
            )));
        }
    }
    Ok(scan)
}

fn is_key(up: &str) -> bool {
    let k = up.trim_end_matches(':').trim();
    RACK_KEYS.contains(&k) || COUNT_KEYS.contains(&k) || k.contains("DATE") || k.contains("TIME")
}

/// Splits a scanner's file into rows of cells: text (UTF-8, a BOM, CP932; `,` `;` or TAB,
/// detected) or a workbook's first sheet.
pub fn table(
    bytes: &[u8],
    name: &str,
    layout: Option<&RackLayout>,
) -> Result<Vec<Vec<String>>, AppError> {
    if crate::import::is_workbook(name) {
        return crate::sheets::sheet_rows(bytes);
    }
    let text = crate::import::decode(bytes, crate::import::CsvEncoding::Auto)?;
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let delim = match layout.and_then(|l| l.delimiter.as_deref()) {
        Some("\\t") | Some("\t") | Some("tab") => '\t',
        Some(d) if d.chars().count() == 1 => d.chars().next().unwrap_or(','),
        Some(d) => {
            return Err(AppError::input(
                "layout",
                format!("delimiter {d:?}: one character, or \\t"),
            ));
        }
        None => {
            // The delimiter most lines have the same non-zero count of.
            ['\t', ';', ',']
                .into_iter()
                .max_by_key(|d| lines.iter().filter(|l| l.contains(*d)).count())
                .unwrap_or(',')
        }
    };
    Ok(lines.iter().map(|l| split(l, delim)).collect())
}

/// A file a rack scanner wrote into the folder the window watches.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanFile {
    pub name: String,
    pub path: String,
    /// Modification time, milliseconds since 1970 (a new scan has a newer one).
    pub modified_ms: f64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub bytes: u64,
}

/// Whether a file in a scanner's folder is a scan: a table or workbook, not hidden, not a
/// spreadsheet's lock file (`~$…`) or a file still being written (`.tmp`, `.part`).
fn is_scan_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.')
        && !name.starts_with("~$")
        && [".csv", ".txt", ".tsv", ".xlsx", ".xls"]
            .iter()
            .any(|e| lower.ends_with(e))
}

/// The newest scan in `folder` (none when it holds none).
pub fn newest_scan(folder: &std::path::Path) -> Result<Option<ScanFile>, AppError> {
    let file_err = |e: std::io::Error| crate::labels::file_err(folder, e);
    let mut newest: Option<ScanFile> = None;
    for entry in std::fs::read_dir(folder).map_err(file_err)? {
        let entry = entry.map_err(file_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || !is_scan_name(&name) {
            continue;
        }
        let modified_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let later = newest
            .as_ref()
            .is_none_or(|n| (modified_ms, name.as_str()) > (n.modified_ms, n.name.as_str()));
        if later {
            newest = Some(ScanFile {
                path: entry.path().display().to_string(),
                name,
                modified_ms,
                bytes: meta.len(),
            });
        }
    }
    Ok(newest)
}

/// A tube the database and the scan agree on.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtPosition {
    pub position: String,
    pub code: String,
}

/// A tube found somewhere else than where the database has it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MovedTube {
    pub code: String,
    /// Where the database has it (`BOX/A3`, or a status when it is not in storage).
    pub from: String,
    pub to: String,
}

/// An unreadable tube: the position, and which tube the database expects there.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub position: String,
    pub expected: Option<String>,
}

/// The answer of a reconciliation.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    #[serde(rename = "box")]
    pub container: String,
    pub rows: u16,
    pub cols: u16,
    pub rack: Option<String>,
    /// The scan was read rotated by 180° (the rack sat the wrong way round in the reader).
    pub rotated: bool,
    pub matched: Vec<AtPosition>,
    /// In the database here, not in the scan.
    pub missing: Vec<AtPosition>,
    pub moved: Vec<MovedTube>,
    pub unreadable: Vec<Unreadable>,
    /// In the scan, not registered at all.
    pub unexpected: Vec<AtPosition>,
    /// Set by `--apply`: what was recorded.
    pub applied: Option<Applied>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Applied {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub moved: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub checked_out_missing: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub registered: u64,
}

/// How to register the scan's unknown pre-barcoded tubes (`--apply --register-unknown`).
#[derive(Debug, Clone)]
pub struct NewTubes {
    pub sample_type: String,
    pub container: String,
    pub storage: String,
    pub study: String,
    pub donor: String,
}

fn compare(
    expected: &HashMap<(u16, u16), String>,
    scan: &HashMap<(u16, u16), Seen>,
    known_elsewhere: &dyn Fn(&str) -> Option<String>,
    label: &dyn Fn((u16, u16)) -> String,
) -> Lists {
    let where_expected: HashMap<&str, (u16, u16)> =
        expected.iter().map(|(p, c)| (c.as_str(), *p)).collect();
    let mut keys: Vec<_> = scan.keys().copied().collect();
    keys.sort();
    let (mut matched, mut moved, mut unreadable, mut unexpected) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut seen_codes = std::collections::HashSet::new();
    for p in keys {
        match &scan[&p] {
            Seen::Tube(code) => {
                seen_codes.insert(code.to_ascii_uppercase());
                let up = code.to_ascii_uppercase();
                match where_expected.get(up.as_str()) {
                    Some(q) if *q == p => matched.push(AtPosition {
                        position: label(p),
                        code: up,
                    }),
                    Some(q) => moved.push(MovedTube {
                        code: up,
                        from: label(*q),
                        to: label(p),
                    }),
                    None => match known_elsewhere(&up) {
                        Some(from) => moved.push(MovedTube {
                            code: up,
                            from,
                            to: label(p),
                        }),
                        None => unexpected.push(AtPosition {
                            position: label(p),
                            code: up,
                        }),
                    },
                }
            }
            Seen::Unreadable => unreadable.push(Unreadable {
                position: label(p),
                expected: expected.get(&p).cloned(),
            }),
            Seen::Empty => {}
        }
    }
    let unread_expected: std::collections::HashSet<&str> = unreadable
        .iter()
        .filter_map(|u| u.expected.as_deref())
        .collect();
    let mut missing: Vec<(&(u16, u16), &String)> = expected
        .iter()
        .filter(|(_, c)| !seen_codes.contains(c.as_str()) && !unread_expected.contains(c.as_str()))
        .collect();
    missing.sort();
    let missing: Vec<AtPosition> = missing
        .into_iter()
        .map(|(p, c)| AtPosition {
            position: label(*p),
            code: c.clone(),
        })
        .collect();
    Lists {
        matched,
        missing,
        moved,
        unreadable,
        unexpected,
    }
}

/// A scan compared with the box.
struct Lists {
    matched: Vec<AtPosition>,
    missing: Vec<AtPosition>,
    moved: Vec<MovedTube>,
    unreadable: Vec<Unreadable>,
    unexpected: Vec<AtPosition>,
}

impl Kura {
    /// [`Kura::reconcile_rack`] of a file on disk (the window's watched scanner folder), with
    /// the detected layout and without registering unknown tubes.
    pub fn reconcile_rack_file(
        &mut self,
        path: &std::path::Path,
        container: &str,
        order: Order,
        apply: bool,
    ) -> Result<Reconciliation, AppError> {
        let bytes = std::fs::read(path).map_err(|e| crate::labels::file_err(path, e))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        self.reconcile_rack(
            &bytes,
            name.as_deref().unwrap_or("scan.csv"),
            container,
            order,
            None,
            apply,
            None,
        )
    }

    /// Reconciles a rack scanner's file with box `container`; with `apply`, records what the
    /// scan shows in one transaction: the moves, the missing tubes checked out as missing (their
    /// positions stay reserved until they are found), and, with `register`, the unknown
    /// pre-barcoded tubes registered where they stand.
    pub fn reconcile_rack(
        &mut self,
        bytes: &[u8],
        file_name: &str,
        container: &str,
        order: Order,
        layout: Option<&RackLayout>,
        apply: bool,
        register: Option<&NewTubes>,
    ) -> Result<Reconciliation, AppError> {
        self.may_read()?;
        let id = self.container_code(container)?;
        let map = self.box_map(id.as_str())?;
        let Geometry::Grid { rows, cols, .. } = map.geometry else {
            return Err(AppError::input(
                "box",
                format!("{id} is not a grid: a rack scan needs a box or tube rack"),
            ));
        };
        let table = table(bytes, file_name, layout)?;
        let scan = read_rows(&table, rows, cols, order, layout)?;
        let expected: HashMap<(u16, u16), String> = map
            .slots
            .iter()
            .filter_map(|s| s.specimen.clone().map(|c| ((s.row, s.col), c)))
            .filter(|(_, c)| {
                // Only tubes in storage are expected in the rack (checked-out ones are away).
                map.slots
                    .iter()
                    .find(|s| s.specimen.as_deref() == Some(c.as_str()))
                    .and_then(|s| s.status.as_deref())
                    .is_none_or(|st| st == "available")
            })
            .collect();
        let geometry = map.geometry.clone();
        let label = |p: (u16, u16)| geometry.label(Pos::new(p.0, p.1));
        let store = self.store();
        let known_elsewhere = |code: &str| -> Option<String> {
            let c = kura_domain::id::SpecimenCode::parse_lookup(code).ok()?;
            let v = store.specimen(&c).ok()??;
            Some(match (&v.container, &v.position) {
                (Some(b), Some(p)) => format!("{b}/{p}"),
                _ => v.status.clone(),
            })
        };
        let straight = compare(&expected, &scan.cells, &known_elsewhere, &label);
        let rotated_cells: HashMap<(u16, u16), Seen> = scan
            .cells
            .iter()
            .map(|((r, c), s)| ((rows - 1 - r, cols - 1 - c), s.clone()))
            .collect();
        let turned = compare(&expected, &rotated_cells, &known_elsewhere, &label);
        // Rotated when turning it round matches most of the rack and more than as it is.
        let rotated = turned.matched.len() > straight.matched.len()
            && turned.matched.len() * 2 >= expected.len();
        let Lists {
            matched,
            missing,
            moved,
            unreadable,
            unexpected,
        } = if rotated { turned } else { straight };
        let cells = if rotated { rotated_cells } else { scan.cells };
        let mut answer = Reconciliation {
            container: id.to_string(),
            rows,
            cols,
            rack: scan.rack,
            rotated,
            matched,
            missing,
            moved,
            unreadable,
            unexpected,
            applied: None,
        };
        if apply {
            if !answer.unexpected.is_empty() && register.is_none() {
                return Err(AppError::input(
                    "apply",
                    format!(
                        "{} tube(s) in the scan are not registered ({}); register them with --register-unknown (and --type, --container, --storage, --study, --donor) or take them out of the rack, then apply again",
                        answer.unexpected.len(),
                        answer
                            .unexpected
                            .iter()
                            .map(|u| u.code.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            answer.applied = Some(self.apply_scan(&id, &geometry, &answer, &cells, register)?);
        }
        Ok(answer)
    }

    fn apply_scan(
        &mut self,
        id: &kura_domain::id::ContainerId,
        geometry: &Geometry,
        answer: &Reconciliation,
        _cells: &HashMap<(u16, u16), Seen>,
        register: Option<&NewTubes>,
    ) -> Result<Applied, AppError> {
        let pos = |label: &str| crate::ids::parse_pos(id, geometry, label);
        let today = self.today();
        let missing_out = crate::custody::CheckOut {
            to: "missing".into(),
            purpose: "other".into(),
            due: None,
            note: Some(format!(
                "not in {id} when its rack was scanned on {today}; check it in where it is found"
            )),
        };
        let out = missing_out.parse(today)?;
        let missing: Vec<_> = answer
            .missing
            .iter()
            .map(|m| self.specimen_code(&m.code))
            .collect::<Result<_, _>>()?;
        let mut moves = Vec::new();
        for m in &answer.moved {
            moves.push((self.specimen_code(&m.code)?, pos(&m.to)?));
        }
        let mut new = Vec::new();
        if let Some(t) = register {
            for u in &answer.unexpected {
                let req = crate::register::RegisterRequest {
                    code: Some(u.code.clone()),
                    sample_type: t.sample_type.clone(),
                    container: t.container.clone(),
                    storage: t.storage.clone(),
                    study: t.study.clone(),
                    donor: t.donor.clone(),
                    ..Default::default()
                }
                .validate(self.calendar())?;
                new.push((req, pos(&u.position)?));
            }
        }
        let id = id.clone();
        self.write(|e| {
            let mut applied = Applied::default();
            for c in missing {
                e.emit(EventBody::CheckedOut {
                    specimen: c,
                    to: out.to.clone(),
                    purpose: out.purpose,
                    due: out.due,
                    note: out.note.clone(),
                })?;
                applied.checked_out_missing += 1;
            }
            // Moves in an order that frees each target first; a cycle (two tubes swapped) goes
            // through a free position of the box.
            let mut pending = moves;
            while !pending.is_empty() {
                let before = pending.len();
                let mut rest = Vec::new();
                for (code, to) in pending {
                    if e.tx.occupied(&id)?.contains(&to) {
                        rest.push((code, to));
                        continue;
                    }
                    move_to(e, &code, &id, to)?;
                    applied.moved += 1;
                }
                if rest.len() == before {
                    let (code, _) = rest[0].clone();
                    let free = e.tx.next_free(&id).map_err(|_| {
                        AppError::input(
                            "apply",
                            format!("{id} is full: tubes swapped in the scan need one free position to be moved through"),
                        )
                    })?;
                    move_to(e, &code, &id, free)?;
                }
                pending = rest;
            }
            for (r, at) in new {
                e.emit(EventBody::Registered {
                    specimen: kura_domain::specimen::SpecimenRecord {
                        code: r.code.clone().ok_or_else(|| AppError::input("code", "a pre-barcoded tube has its code"))?,
                        sample_type: r.sample_type,
                        container: r.container.to_string(),
                        storage: r.storage.to_string(),
                        quantity: r.quantity,
                        study: r.study.clone(),
                        donor: r.donor.clone(),
                        collected_at: r.collected_at,
                        parent: None,
                        freeze_thaw: 0,
                    },
                    location: Some(Location {
                        container: id.clone(),
                        pos: at,
                    }),
                })?;
                applied.registered += 1;
            }
            Ok(applied)
        })
    }
}

/// Moves a tube to `to` in `id`, from wherever it is stored.
fn move_to(
    e: &mut crate::Emit<'_, '_>,
    code: &kura_domain::id::SpecimenCode,
    id: &kura_domain::id::ContainerId,
    to: Pos,
) -> Result<(), AppError> {
    let s = e.tx.specimen(code)?.ok_or_else(|| AppError::NotFound {
        what: "specimen",
        code: code.to_string(),
    })?;
    let to = Location {
        container: id.clone(),
        pos: to,
    };
    match s.location().cloned() {
        Some(from) if s.status().as_str() == "available" => e.emit(EventBody::Moved {
            specimen: code.clone(),
            from,
            to,
        })?,
        // Checked out (or not stored): it is back, here.
        Some(_) if s.status().as_str() == "checked_out" => {
            e.emit(EventBody::Returned {
                specimen: code.clone(),
                thawed: false,
            })?;
            return move_to(e, code, id, to.pos);
        }
        _ => e.emit(EventBody::CheckedIn {
            specimen: code.clone(),
            location: to,
        })?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_as_readers_write_them() {
        // (label, order, row and column on an 8 × 12 rack)
        let cases = [
            ("A1", Order::Row, Some((0, 0))),
            ("A01", Order::Row, Some((0, 0))),
            ("h12", Order::Row, Some((7, 11))),
            ("H13", Order::Row, None),
            ("I1", Order::Row, None),
            ("1", Order::Row, Some((0, 0))),
            ("13", Order::Row, Some((1, 0))),
            ("13", Order::Column, Some((4, 1))),
            ("96", Order::Column, Some((7, 11))),
            ("97", Order::Row, None),
            ("0", Order::Row, None),
        ];
        for (label, order, want) in cases {
            assert_eq!(
                parse_position(label, 8, 12, order),
                want,
                "{label} {order:?}"
            );
        }
    }

    #[test]
    fn scan_names() {
        for (name, want) in [
            ("rack-001.csv", true),
            ("RACK.XLSX", true),
            ("scan.txt", true),
            ("scan.tsv", true),
            (".hidden.csv", false),
            ("~$rack.xlsx", false),
            ("rack.csv.tmp", false),
            ("rack.csv.part", false),
            ("rack.pdf", false),
        ] {
            assert_eq!(is_scan_name(name), want, "{name}");
        }
    }

    #[test]
    fn the_newest_scan_of_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(newest_scan(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("a.csv"), "A1,X").unwrap();
        std::fs::write(dir.path().join("~$b.xlsx"), "lock").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        let f = std::fs::File::options()
            .write(true)
            .open(dir.path().join("a.csv"))
            .unwrap();
        f.set_modified(old).unwrap();
        assert_eq!(newest_scan(dir.path()).unwrap().unwrap().name, "a.csv");
        std::fs::write(dir.path().join("b.csv"), "A1,Y").unwrap();
        let n = newest_scan(dir.path()).unwrap().unwrap();
        assert_eq!((n.name.as_str(), n.bytes), ("b.csv", 4));
        let gone = newest_scan(&dir.path().join("nowhere")).unwrap_err();
        assert_eq!(gone.code(), "file_error", "{gone}");
    }

    #[test]
    fn markers() {
        for (cell, want) in [
            ("NO READ", Seen::Unreadable),
            ("noread", Seen::Unreadable),
            ("NOSCAN", Seen::Unreadable),
            ("No TrakMate", Seen::Empty),
            ("NO TUBE", Seen::Empty),
            ("", Seen::Empty),
            ("EMPTY", Seen::Empty),
            ("FR12345678", Seen::Tube("FR12345678".into())),
        ] {
            assert_eq!(classify(cell), want, "{cell:?}");
        }
    }
}
