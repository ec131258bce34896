//! The storage layout: sites, rooms, freezers, racks, boxes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use kura_app::AppError;
use serde_json::json;

use crate::output::out;
use crate::print;
use crate::session::{Ctx, SignArgs, signed};

#[derive(Subcommand)]
pub enum Cmd {
    /// Sites, rooms, freezers, racks and boxes.
    #[command(subcommand)]
    Storage(StorageCmd),
    /// Where N new tubes fit: free positions by container type, per site, freezer and rack, and
    /// the boxes that take them (open boxes first).
    Space {
        /// Only boxes of this type (e.g. box-9x9).
        #[arg(long = "type")]
        type_name: Option<String>,
        /// How many new tubes.
        #[arg(long)]
        need: Option<u64>,
        /// Only under this container (a freezer, a rack).
        #[arg(long)]
        under: Option<String>,
    },
    /// Rack-scanner files: reconcile a scan with a box.
    #[command(subcommand)]
    Rack(RackCmd),
}

#[derive(Subcommand)]
pub enum RackCmd {
    /// Compares a rack reader's file (CSV, TXT or XLSX; header or not; `A1`, `A01` or numbered
    /// positions) with what the database has in the box: matched, missing, moved, unreadable,
    /// unexpected, drawn as a grid. With --apply, records the moves, checks the missing tubes
    /// out as missing and (with --register-unknown) registers the unknown tubes, in one
    /// transaction.
    Reconcile {
        file: PathBuf,
        #[arg(long = "box")]
        container: String,
        /// How numbered positions count: row (A1, A2, …) or column (A1, B1, …).
        #[arg(long, default_value = "row")]
        order: String,
        /// A small TOML file describing a layout the detector cannot place.
        #[arg(long)]
        layout: Option<PathBuf>,
        #[arg(long)]
        apply: bool,
        /// With --apply: register the scan's unknown pre-barcoded tubes where they stand.
        #[arg(long, requires_all = ["sample_type", "primary", "storage", "study", "donor"])]
        register_unknown: bool,
        #[arg(long = "type")]
        sample_type: Option<String>,
        /// The SPREC primary container of the tubes to register.
        #[arg(long = "primary")]
        primary: Option<String>,
        #[arg(long)]
        storage: Option<String>,
        #[arg(long)]
        study: Option<String>,
        #[arg(long)]
        donor: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum StorageCmd {
    /// Create containers from a layout: a TOML file, or a sheet (.csv, .xlsx) with one
    /// container per row and the columns code, type, name, parent, position, temperature.
    /// Existing ones are kept; all rows or none.
    Apply {
        file: PathBuf,
        /// The workbook's sheet (default: the first).
        #[arg(long)]
        sheet: Option<String>,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Create one container.
    Add {
        code: String,
        #[arg(long = "type")]
        type_name: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        position: Option<String>,
        #[arg(long)]
        temperature: Option<String>,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// List containers under PARENT (or the sites).
    List { parent: Option<String> },
    /// The built-in container types.
    Types,
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<ExitCode, AppError> {
    let json = ctx.json;
    // Commands that need no database.
    if let Cmd::Storage(StorageCmd::Types) = &cmd {
        out(json, json!(kura_app::storage::builtin_types()), || {
            kura_app::storage::builtin_types()
                .iter()
                .map(|(n, d)| format!("{n:<18} {d}"))
                .collect::<Vec<_>>()
                .join("\n")
        });
        return Ok(ExitCode::SUCCESS);
    }
    let mut k = ctx.open(false)?;
    match cmd {
        Cmd::Rack(c) => return rack(&mut k, json, c),
        Cmd::Space {
            type_name,
            need,
            under,
        } => {
            let r = k.space(type_name.as_deref(), need, under.as_deref())?;
            out(json, json!(r), || print::space(&r));
        }
        Cmd::Storage(StorageCmd::Apply { file, sheet, sign }) => {
            let bytes = std::fs::read(&file).map_err(|e| AppError::File {
                path: file.display().to_string(),
                message: e.to_string(),
            })?;
            let name = file.display().to_string();
            let toml = !(kura_app::import::is_workbook(&name)
                || name.to_ascii_lowercase().ends_with(".csv"));
            let r = signed(&mut k, kura_app::users::Act::StorageLayout, &sign, |k| {
                if toml {
                    let text = String::from_utf8(bytes.clone()).map_err(|_| {
                        AppError::input("layout", format!("{name} is not UTF-8 text"))
                    })?;
                    k.apply_layout(&text)
                } else {
                    k.apply_layout_sheet(&bytes, &name, sheet.as_deref())
                }
            })?;
            out(json, json!(r), || {
                format!(
                    "created {}, already there {}",
                    r.created.len(),
                    r.existing.len()
                )
            });
        }
        Cmd::Storage(StorageCmd::Add {
            code,
            type_name,
            name,
            parent,
            position,
            temperature,
            sign,
        }) => {
            let created = signed(&mut k, kura_app::users::Act::StorageLayout, &sign, |k| {
                k.create_container(
                    &code,
                    &type_name,
                    name.as_deref(),
                    parent.as_deref(),
                    position.as_deref(),
                    temperature.as_deref(),
                )
            })?;
            out(json, json!({ "code": code, "created": created }), || {
                if created {
                    format!("created {code}")
                } else {
                    format!("{code} already exists; nothing changed")
                }
            });
        }
        Cmd::Storage(StorageCmd::List { parent }) => {
            let rows = k.containers(parent.as_deref())?;
            out(json, json!(rows), || print::containers(&rows));
        }
        _ => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

fn rack(k: &mut kura_app::Kura, json: bool, cmd: RackCmd) -> Result<ExitCode, AppError> {
    let RackCmd::Reconcile {
        file,
        container,
        order,
        layout,
        apply,
        register_unknown,
        sample_type,
        primary,
        storage,
        study,
        donor,
    } = cmd;
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| AppError::File {
            path: p.display().to_string(),
            message: e.to_string(),
        })
    };
    let bytes = read(&file)?;
    let layout = match &layout {
        Some(p) => Some(kura_app::rack::RackLayout::parse(
            &String::from_utf8_lossy(&read(p)?),
        )?),
        None => None,
    };
    let new = register_unknown.then(|| kura_app::rack::NewTubes {
        sample_type: sample_type.unwrap_or_default(),
        container: primary.unwrap_or_default(),
        storage: storage.unwrap_or_default(),
        study: study.unwrap_or_default(),
        donor: donor.unwrap_or_default(),
    });
    let r = k.reconcile_rack(
        &bytes,
        &file.to_string_lossy(),
        &container,
        order.parse()?,
        layout.as_ref(),
        apply,
        new.as_ref(),
    )?;
    out(json, json!(r), || print::reconciliation(&r));
    Ok(ExitCode::SUCCESS)
}
