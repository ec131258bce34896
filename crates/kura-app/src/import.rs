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
use crate::{AppError, Kura, Progress};

/// One thing wrong with one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// The line in the file (the header is line 1).
    pub line: u64,
    pub column: String,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {} (value {:?})",
            self.line, self.column, self.reason, self.value
        )
    }
}

/// The problems found in a file: every one is counted, the first [`MAX_LISTED`] are kept.
#[derive(Default)]
struct Errors {
    listed: Vec<RowError>,
    total: u64,
}

/// How many row problems an import error lists (all are counted).
pub const MAX_LISTED: usize = 1000;

impl Errors {
    fn push(&mut self, e: RowError) {
        self.total += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push(e);
        }
    }
    fn into_error(self) -> AppError {
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub rows: u64,
    pub issued: u64,
    pub stored: u64,
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

struct Row {
    code: Option<SpecimenCode>,
    record: SpecimenRecord,
    location: Option<Location>,
}

struct BoxState {
    geometry: Geometry,
    taken: HashSet<Pos>,
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
        let calendar = self.calendar().clone();
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes).map_err(|e| AppError::File {
            path: "import".into(),
            message: e.to_string(),
        })?;
        let content = decode(&bytes, encoding)?;
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(content.as_bytes());
        let headers = rdr
            .headers()
            .map_err(|e| AppError::input("csv", format!("cannot read the header row: {e}")))?
            .clone();
        let mut errors = Errors::default();
        let col: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
        for h in headers.iter() {
            if !COLUMNS.contains(&h) && !EXPORT_ONLY.contains(&h) {
                errors.push(RowError {
                    line: 1,
                    column: h.to_string(),
                    value: h.to_string(),
                    reason: format!("unknown column; the columns are {}", COLUMNS.join(", ")),
                });
            }
        }
        for r in REQUIRED {
            if !col.contains_key(r) {
                errors.push(RowError {
                    line: 1,
                    column: r.to_string(),
                    value: String::new(),
                    reason: "required column is missing".into(),
                });
            }
        }
        if errors.total > 0 {
            return Err(errors.into_error());
        }

        let mut rows: Vec<Row> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut boxes: HashMap<String, Option<BoxState>> = HashMap::new();
        let mut record = csv::StringRecord::new();
        let mut line = 1u64;
        loop {
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    line += 1;
                    errors.push(RowError {
                        line: e.position().map(|p| p.line()).unwrap_or(line),
                        column: "*".into(),
                        value: String::new(),
                        reason: format!("malformed CSV: {e}"),
                    });
                    continue;
                }
            }
            line = record.position().map(|p| p.line()).unwrap_or(line + 1);
            let get = |name: &str| {
                col.get(name)
                    .and_then(|i| record.get(*i))
                    .unwrap_or("")
                    .to_string()
            };
            // This row's problems; the row is kept only when it has none.
            let mut wrong: Vec<RowError> = Vec::new();
            let mut check = |column: &str, r: Result<(), String>| {
                if let Err(reason) = r {
                    wrong.push(RowError {
                        line,
                        column: column.to_string(),
                        value: get(column),
                        reason,
                    });
                }
            };

            let code_s = get("code");
            let mut code = None;
            if !code_s.is_empty() {
                let parsed = match KuraId::parse(&code_s) {
                    Ok(id) => Ok(SpecimenCode::kura(id)),
                    Err(e @ kura_domain::ScanError::WrongCheckCharacter { .. }) => {
                        // A code that fails the check may still be a pre-barcoded tube's own code
                        // (those have none); only an ID of this site's format must check.
                        let prefix = self.id_format().map(|f| f.prefix).unwrap_or_default();
                        if !prefix.is_empty() && code_s.to_ascii_uppercase().starts_with(&prefix) {
                            Err(e.to_string())
                        } else {
                            SpecimenCode::external(&code_s).map_err(|e| e.to_string())
                        }
                    }
                    Err(_) => SpecimenCode::external(&code_s).map_err(|e| e.to_string()),
                };
                match parsed {
                    Ok(c) => {
                        if !seen.insert(c.to_string()) {
                            check("code", Err(format!("{c} appears twice in this file")));
                        } else if self.store().specimen(&c)?.is_some() {
                            check("code", Err(format!("{c} is already registered")));
                        }
                        code = Some(c);
                    }
                    Err(reason) => check("code", Err(reason)),
                }
            }
            let sample_type = SampleType::parse(&get("type")).map_err(|e| e.to_string());
            check(
                "type",
                sample_type.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            let container = parse_primary_container(&get("container")).map_err(|e| e.to_string());
            check(
                "container",
                container.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            let storage = parse_storage_code(&get("storage")).map_err(|e| e.to_string());
            check(
                "storage",
                storage.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            let quantity = match (get("quantity").as_str(), get("unit").as_str()) {
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
            let study = text("study", &get("study"), 100).map_err(|e| e.to_string());
            check("study", study.as_ref().map(|_| ()).map_err(Clone::clone));
            let donor = text("donor", &get("donor"), 64).map_err(|e| e.to_string());
            check("donor", donor.as_ref().map(|_| ()).map_err(Clone::clone));
            let collected_at = match get("collected_at").as_str() {
                "" => Ok(None),
                s => calendar
                    .parse(s)
                    .map(Some)
                    .ok_or_else(|| "not a date (YYYY-MM-DD or RFC 3339)".to_string()),
            };
            check(
                "collected_at",
                collected_at.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            let parent = match get("parent").as_str() {
                "" => Ok(None),
                p => match SpecimenCode::parse_lookup(p) {
                    Ok(pc)
                        if seen.contains(pc.as_str()) || self.store().specimen(&pc)?.is_some() =>
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
            let location = match (get("box").as_str(), get("position").as_str()) {
                ("", "") => Ok(None),
                ("", _) => Err(("box", "a position needs a box".to_string())),
                (b, p) => self.place(&mut boxes, b, p).map(Some),
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
                ) if wrong.is_empty() => rows.push(Row {
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
                _ => wrong.into_iter().for_each(|e| errors.push(e)),
            }
        }
        if errors.total > 0 {
            return Err(errors.into_error());
        }
        let total = rows.len() as u64;
        self.serials_for(rows.iter().filter(|r| r.code.is_none()).count() as u64)?;
        progress(0, total);
        self.store_mut().set_cache_mib(256)?;
        self.store_mut().set_bulk(true)?;
        let result = self.write(|e| {
            let issued = rows.iter().filter(|r| r.code.is_none()).count() as u64;
            let mut ids = e.issue_ids(issued)?.into_iter();
            let mut stored = 0;
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
                stored += u64::from(r.location.is_some());
                e.emit(EventBody::Registered {
                    specimen: r.record,
                    location: r.location,
                })?;
                if (i + 1) % 10_000 == 0 {
                    progress(i as u64 + 1, total);
                }
            }
            progress(total, total);
            Ok(ImportReport {
                rows: total,
                issued,
                stored,
            })
        });
        self.store_mut().set_bulk(false)?;
        result
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

    /// Writes every specimen as CSV (the import columns plus status columns), in UTF-8; with
    /// `bom`, behind a byte-order mark, which is how Excel on Japanese Windows knows it is UTF-8
    /// (without one it reads the file as CP932 and the Japanese comes out garbled).
    pub fn export_csv(&self, mut out: impl Write, bom: bool) -> Result<u64, AppError> {
        self.may_read()?;
        let file_err = |e: csv::Error| AppError::File {
            path: "export".into(),
            message: e.to_string(),
        };
        if bom {
            out.write_all(BOM).map_err(|e| file_err(e.into()))?;
        }
        let mut w = csv::Writer::from_writer(out);
        let mut header: Vec<&str> = COLUMNS.to_vec();
        header.extend_from_slice(EXPORT_ONLY);
        w.write_record(&header).map_err(file_err)?;
        let mut n = 0u64;
        let mut failure = None;
        // Rows come by registration time, the same on every bench; a row whose parent has not
        // been written yet (clocks of two benches disagreeing) waits for it, so that the file
        // imports again (a parent on an earlier row).
        let mut written: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut waiting: std::collections::HashMap<String, Vec<kura_store::SpecimenView>> =
            std::collections::HashMap::new();
        let mut row = |s: kura_store::SpecimenView| {
            let qty = s.quantity_milli.map(|m| {
                let q = Quantity {
                    milli: m,
                    unit: kura_domain::specimen::Unit::Ml,
                };
                q.to_string()
                    .split(' ')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            });
            let rec = [
                s.code.clone(),
                s.sample_type.clone(),
                s.primary_container.clone(),
                s.storage_code.clone(),
                qty.unwrap_or_default(),
                s.unit.clone().unwrap_or_default(),
                s.study.clone(),
                s.donor.clone(),
                s.collected_at
                    .map(|t| Timestamp(t).to_string())
                    .unwrap_or_default(),
                s.parent.clone().unwrap_or_default(),
                s.container.clone().unwrap_or_default(),
                s.position.clone().unwrap_or_default(),
                s.material.clone(),
                s.status.clone(),
                s.blocked.to_string(),
                s.freeze_thaw.to_string(),
                s.path.clone().unwrap_or_default(),
            ];
            if let Err(e) = w.write_record(&rec) {
                failure = Some(e);
            }
            n += 1;
        };
        self.store().for_each_specimen(|s| {
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
                row(s);
            }
            Ok(())
        })?;
        // Children of parents that are not in the file at all.
        let mut orphans: Vec<_> = waiting.into_values().flatten().collect();
        orphans.sort_by(|a, b| (a.registered_at, &a.code).cmp(&(b.registered_at, &b.code)));
        for s in orphans {
            row(s);
        }
        if let Some(e) = failure {
            return Err(file_err(e));
        }
        w.flush().map_err(|e| AppError::File {
            path: "export".into(),
            message: e.to_string(),
        })?;
        Ok(n)
    }
}
