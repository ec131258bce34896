//! Storage layout: sites, rooms, freezers, racks and boxes, from a TOML file or one by one.
//!
//! ```toml
//! [types.box-9x9-cols]          # optional custom container types
//! kind = "box"
//! rows = 9
//! cols = 9
//! row_labels = "letters_skip_i" # numbers | letters | letters_skip_i | roman
//! col_labels = "numbers"
//! fill = "column_major"         # or row_major
//! from = "top_left"             # top_right | bottom_left | bottom_right
//!
//! [[container]]
//! code = "SITE1"
//! type = "site"
//! name = "Kura Biobank"
//!
//! [[container]]
//! code = "BX{n}"                # with count: BX1, BX2, … ({n} zero-padded to `pad` digits)
//! count = 20
//! pad = 3
//! type = "box-9x9"
//! parent = "R01"                # positions: `position`, or the next free slot
//! ```

use std::collections::BTreeMap;

use kura_domain::container::{ContainerKind, ContainerSpec, Temperature, builtin_type};
use kura_domain::id::ContainerId;
use kura_domain::position::{Corner, FillOrder, Scheme};
use kura_domain::{EventBody, Pos};
use serde::{Deserialize, Serialize};

use crate::ids::parse_pos;
use crate::{AppError, Emit, Kura};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeDef {
    pub kind: String,
    pub rows: Option<u16>,
    pub cols: Option<u16>,
    pub slots: Option<u16>,
    pub row_labels: Option<Scheme>,
    pub col_labels: Option<Scheme>,
    pub labels: Option<Scheme>,
    pub fill: Option<String>,
    pub from: Option<Corner>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ContainerDef {
    pub code: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub name: Option<String>,
    pub parent: Option<String>,
    pub position: Option<String>,
    pub temperature: Option<String>,
    pub count: Option<u32>,
    pub pad: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    #[serde(default)]
    pub types: BTreeMap<String, TypeDef>,
    #[serde(default)]
    pub container: Vec<ContainerDef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LayoutReport {
    pub created: Vec<String>,
    pub existing: Vec<String>,
}

fn resolve_type(
    layout_types: &BTreeMap<String, TypeDef>,
    name: &str,
) -> Result<(ContainerKind, Geometry), AppError> {
    if let Some(t) = layout_types.get(name) {
        let kind = ContainerKind::parse(&t.kind).ok_or_else(|| {
            AppError::input("kind", format!("type {name}: unknown kind {:?}", t.kind))
        })?;
        let geometry = match (t.rows, t.cols, t.slots) {
            (Some(rows), Some(cols), None) if rows > 0 && cols > 0 => Geometry::Grid {
                rows,
                cols,
                row_scheme: t.row_labels.unwrap_or(Scheme::Letters),
                col_scheme: t.col_labels.unwrap_or(Scheme::Numbers),
                fill: FillOrder {
                    column_major: match t.fill.as_deref() {
                        None | Some("row_major") => false,
                        Some("column_major") => true,
                        Some(other) => {
                            return Err(AppError::input(
                                "fill",
                                format!(
                                    "type {name}: fill {other:?} is not row_major or column_major"
                                ),
                            ));
                        }
                    },
                    from: t.from.unwrap_or(Corner::TopLeft),
                },
            },
            (None, None, Some(slots)) if slots > 0 => Geometry::Linear {
                slots,
                scheme: t.labels.unwrap_or(Scheme::Numbers),
            },
            (None, None, None) => Geometry::Unpositioned,
            _ => {
                return Err(AppError::input(
                    "rows",
                    format!("type {name}: give rows and cols (> 0), or slots, or neither"),
                ));
            }
        };
        return Ok((kind, geometry));
    }
    builtin_type(name).ok_or_else(|| {
        AppError::input(
            "type",
            format!(
                "unknown container type {name:?}; use one of {} or define it under [types]",
                kura_domain::container::BUILTIN_TYPES.join(", ")
            ),
        )
    })
}

impl Emit<'_, '_> {
    /// Where a container goes in `parent`: the position labelled `label`, else the next free
    /// slot when the parent has positions, else none (rooms, freezers without shelves).
    pub(crate) fn slot_in(
        &mut self,
        parent: &ContainerId,
        label: Option<&str>,
    ) -> Result<Option<Pos>, AppError> {
        let pinfo = self.tx.require_container(parent)?;
        match (label, pinfo.geometry.capacity()) {
            (Some(label), _) => Ok(Some(parse_pos(parent, &pinfo.geometry, label)?)),
            (None, Some(capacity)) => {
                let taken = self.tx.occupied_slots(parent)?;
                let free = pinfo
                    .geometry
                    .next_free(|q| taken.contains(&q))
                    .ok_or_else(|| {
                        AppError::Rule(kura_domain::RuleError::ContainerFull {
                            container: parent.to_string(),
                            capacity,
                        })
                    })?;
                Ok(Some(free))
            }
            (None, None) => Ok(None),
        }
    }

    pub(crate) fn create_container(
        &mut self,
        types: &BTreeMap<String, TypeDef>,
        code: &str,
        type_name: &str,
        name: Option<&str>,
        parent: Option<&str>,
        position: Option<&str>,
        temperature: Option<&str>,
    ) -> Result<bool, AppError> {
        let id = ContainerId::parse(code)?;
        if self.tx.container(&id)?.is_some() {
            return Ok(false);
        }
        let (kind, geometry) = resolve_type(types, type_name)?;
        let parent = parent.map(ContainerId::parse).transpose()?;
        let pos = match &parent {
            Some(p) => self.slot_in(p, position)?,
            None => None,
        };
        let temperature = temperature.map(temperature_tier).transpose()?;
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| id.to_string());
        self.emit(EventBody::ContainerCreated {
            container: ContainerSpec {
                id,
                kind,
                name,
                type_name: type_name.to_string(),
                geometry,
                temperature,
                parent,
                pos,
            },
        })?;
        Ok(true)
    }
}

/// A container's temperature tier, or what the tiers are.
fn temperature_tier(t: &str) -> Result<Temperature, AppError> {
    Temperature::parse(t).ok_or_else(|| {
        AppError::input(
            "temperature",
            format!(
                "{t:?} is not a temperature tier (room, fridge, -20, -80, ln_vapour, ln_liquid)"
            ),
        )
    })
}

pub use kura_domain::position::Geometry;

/// The built-in container types with a short description.
pub fn builtin_types() -> Vec<(String, String)> {
    kura_domain::container::BUILTIN_TYPES
        .iter()
        .filter_map(|n| {
            builtin_type(n).map(|(k, g)| (n.to_string(), format!("{} {}", g.shape(), k.as_str())))
        })
        .collect()
}

impl Kura {
    /// Creates one container. Returns false if a container with that code already exists.
    pub fn create_container(
        &mut self,
        code: &str,
        type_name: &str,
        name: Option<&str>,
        parent: Option<&str>,
        position: Option<&str>,
        temperature: Option<&str>,
    ) -> Result<bool, AppError> {
        let types = BTreeMap::new();
        self.write(|e| {
            e.create_container(&types, code, type_name, name, parent, position, temperature)
        })
    }

    /// Applies a TOML layout in one transaction. Containers that already exist are left alone,
    /// so a layout file can be applied again after it grows.
    pub fn apply_layout(&mut self, toml_text: &str) -> Result<LayoutReport, AppError> {
        let layout: Layout =
            toml::from_str(toml_text).map_err(|e| AppError::input("layout", e.to_string()))?;
        self.write(|e| {
            let mut report = LayoutReport::default();
            for (i, c) in layout.container.iter().enumerate() {
                let count = c.count.unwrap_or(1);
                if count > 10_000 {
                    return Err(AppError::input(
                        "count",
                        format!("container[{i}]: at most 10000 at once"),
                    ));
                }
                for n in 1..=count {
                    let code = if c.count.is_some() {
                        c.code
                            .replace("{n}", &format!("{n:0width$}", width = c.pad.unwrap_or(0)))
                    } else {
                        c.code.clone()
                    };
                    let created = e
                        .create_container(
                            &layout.types,
                            &code,
                            &c.type_name,
                            c.name.as_deref(),
                            c.parent.as_deref(),
                            if count == 1 {
                                c.position.as_deref()
                            } else {
                                None
                            },
                            c.temperature.as_deref(),
                        )
                        .map_err(|err| {
                            AppError::input(&format!("container[{i}]"), format!("{code}: {err}"))
                        })?;
                    if created {
                        report.created.push(code)
                    } else {
                        report.existing.push(code)
                    }
                }
            }
            Ok(report)
        })
    }
}

/// The columns of a storage layout sheet (a header row names them, in any order): `code` and
/// `type` required, the rest optional.
pub const LAYOUT_COLUMNS: [&str; 6] = ["code", "type", "name", "parent", "position", "temperature"];

impl Kura {
    /// Applies a storage layout from a sheet (CSV, or a workbook's `sheet`, else its first):
    /// one container per row, columns [`LAYOUT_COLUMNS`]; a parent is in the database or on an
    /// earlier row. Every row is checked first and every problem named by line or cell; then
    /// all rows are written in one transaction (a row that fails there, such as a taken
    /// position, is named and nothing is written). Containers that exist are left alone.
    pub fn apply_layout_sheet(
        &mut self,
        bytes: &[u8],
        file: &str,
        sheet: Option<&str>,
    ) -> Result<LayoutReport, AppError> {
        use crate::import::{Errors, RowError, cell_name};
        let table = crate::sheets::Table::read(bytes, file, sheet)?;
        let Some((header_line, header)) = table.rows.first() else {
            return Err(AppError::input(
                "layout",
                format!(
                    "{file} is empty: the first row names the columns ({})",
                    LAYOUT_COLUMNS.join(", ")
                ),
            ));
        };
        let mut errors = Errors::default();
        let hat = table.at(*header_line);
        let mut col: std::collections::HashMap<&str, usize> = Default::default();
        for (i, h) in header.iter().enumerate() {
            let h = h.trim();
            match LAYOUT_COLUMNS.iter().find(|c| c.eq_ignore_ascii_case(h)) {
                Some(c) => {
                    col.entry(c).or_insert(i);
                }
                None => errors.push(RowError {
                    line: hat.line(),
                    column: h.to_string(),
                    cell: cell_name(hat, Some(i)),
                    value: h.to_string(),
                    reason: format!(
                        "unknown column; a layout's columns are {}",
                        LAYOUT_COLUMNS.join(", ")
                    ),
                }),
            }
        }
        for c in ["code", "type"] {
            if !col.contains_key(c) {
                errors.push(RowError {
                    line: hat.line(),
                    column: c.to_string(),
                    cell: cell_name(hat, None),
                    value: String::new(),
                    reason: "required column is missing".into(),
                });
            }
        }
        if errors.total > 0 {
            return Err(errors.into_error());
        }
        // Every row checked on its own and against the rows above it.
        let types = BTreeMap::new();
        let mut seen: std::collections::HashSet<String> = Default::default();
        let mut rows: Vec<(u64, [Option<String>; 6])> = Vec::new();
        for (n, cells) in &table.rows[1..] {
            let at = table.at(*n);
            let get = |c: &str| {
                col.get(c)
                    .and_then(|i| cells.get(*i))
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            let mut wrong = |c: &str, reason: String| {
                errors.push(RowError {
                    line: at.line(),
                    column: c.to_string(),
                    cell: cell_name(at, col.get(c).copied()),
                    value: get(c).unwrap_or_default(),
                    reason,
                })
            };
            let vals = LAYOUT_COLUMNS.map(get);
            let [code, type_name, _, parent, position, temperature] = &vals;
            match code.as_deref().map(ContainerId::parse) {
                None => wrong("code", "a container needs a code".into()),
                Some(Err(e)) => wrong("code", e.to_string()),
                Some(Ok(id)) => {
                    if !seen.insert(id.to_string()) {
                        wrong("code", format!("{id} appears twice in this sheet"));
                    }
                }
            }
            match type_name.as_deref() {
                None => wrong(
                    "type",
                    "a container needs a type (kura storage types)".into(),
                ),
                Some(t) => {
                    if let Err(e) = resolve_type(&types, t) {
                        wrong("type", e.to_string());
                    }
                }
            }
            if let Some(Err(AppError::Input { message, .. })) =
                temperature.as_deref().map(temperature_tier)
            {
                wrong("temperature", message);
            }
            let parent_id = parent.as_deref().map(ContainerId::parse);
            let parent_known = match &parent_id {
                Some(Ok(p)) => {
                    seen.contains(p.as_str())
                        || self.store().container_geometry(p.as_str())?.is_some()
                }
                _ => true,
            };
            match parent_id {
                None if position.is_some() => wrong(
                    "position",
                    "a position is in a parent; give the parent too".into(),
                ),
                None => {}
                Some(Err(e)) => wrong("parent", e.to_string()),
                Some(Ok(p)) if !parent_known => wrong(
                    "parent",
                    format!("{p} is neither in the database nor on a row above this one"),
                ),
                Some(Ok(_)) => {}
            }
            rows.push((*n, vals));
        }
        if errors.total > 0 {
            return Err(errors.into_error());
        }
        self.write(|e| {
            let mut report = LayoutReport::default();
            for (n, [code, type_name, name, parent, position, temperature]) in &rows {
                let code = code.as_deref().unwrap_or_default();
                let created = e
                    .create_container(
                        &types,
                        code,
                        type_name.as_deref().unwrap_or_default(),
                        name.as_deref(),
                        parent.as_deref(),
                        position.as_deref(),
                        temperature.as_deref(),
                    )
                    .map_err(|err| {
                        let at = table.at(*n);
                        let c = if position.is_some() {
                            "position"
                        } else {
                            "code"
                        };
                        let mut one = Errors::default();
                        one.push(RowError {
                            line: at.line(),
                            column: c.into(),
                            cell: cell_name(at, col.get(c).copied()),
                            value: if position.is_some() {
                                position.clone().unwrap_or_default()
                            } else {
                                code.to_string()
                            },
                            reason: err.to_string(),
                        });
                        one.into_error()
                    })?;
                if created {
                    report.created.push(code.to_string());
                } else {
                    report.existing.push(code.to_string());
                }
            }
            Ok(report)
        })
    }
}
