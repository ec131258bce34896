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
}

#[derive(Subcommand)]
pub enum StorageCmd {
    /// Create containers from a TOML layout file (existing ones are kept).
    Apply {
        file: PathBuf,
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
        Cmd::Storage(StorageCmd::Apply { file, sign }) => {
            let text = std::fs::read_to_string(&file).map_err(|e| AppError::File {
                path: file.display().to_string(),
                message: e.to_string(),
            })?;
            let r = signed(&mut k, kura_app::users::Act::StorageLayout, &sign, |k| {
                k.apply_layout(&text)
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
