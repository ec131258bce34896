//! Finding specimens and reading their record (show, find, history, lineage, box map,
//! overdue).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use kura_app::{AppError, FindQuery};
use serde_json::json;

use crate::output::out;
use crate::print;
use crate::session::Ctx;

#[derive(Subcommand)]
pub enum Cmd {
    /// Show a specimen with its location path.
    Show { specimen: String },
    /// Find specimens by ID (or prefix), donor, study, type or status.
    Find {
        text: Option<String>,
        #[arg(long)]
        donor: Option<String>,
        #[arg(long)]
        study: Option<String>,
        #[arg(long = "type")]
        sample_type: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Every custody event of a specimen.
    History { specimen: String },
    /// Parent, aliquots and derivatives.
    Lineage { specimen: String },
    /// A box's grid; with --out, an A4 box map PDF for the freezer door.
    Boxmap {
        #[arg(value_name = "BOX")]
        container: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check-outs past their due date at the site.
    Overdue {
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<ExitCode, AppError> {
    let json = ctx.json;
    let mut k = ctx.open(false)?;
    match cmd {
        Cmd::Show { specimen } => {
            let v = k.show(&specimen)?;
            out(json, json!(v), || print::specimen(&v, k.calendar()));
        }
        Cmd::Find {
            text,
            donor,
            study,
            sample_type,
            status,
            limit,
        } => {
            let rows = k.find(&FindQuery {
                text,
                donor,
                study,
                sample_type,
                status,
                limit,
                offset: 0,
            })?;
            out(json, json!(rows), || {
                let mut t = print::specimens(&rows);
                if rows.len() == limit {
                    t.push_str(&format!(
                        "\n(the first {limit} shown; more may match: --limit N shows more)"
                    ));
                }
                t
            });
        }
        Cmd::History { specimen } => {
            let rows = k.history(&specimen)?;
            out(json, json!(rows), || print::history(&rows, k.calendar()));
        }
        Cmd::Lineage { specimen } => {
            let tree = k.lineage(&specimen)?;
            out(json, json!(tree), || print::lineage(&tree));
        }
        Cmd::Boxmap {
            container,
            out: None,
        } => {
            let m = k.box_map(&container)?;
            out(json, json!(m), || print::box_map(&m));
        }
        Cmd::Boxmap {
            container,
            out: Some(path),
        } => {
            let r = k.print_box_map(&container, &path)?;
            for w in &r.warnings {
                eprintln!("warning: {w}");
            }
            out(json, json!(r), || {
                format!(
                    "box map of {container} → {} ({} bytes)",
                    path.display(),
                    r.bytes
                )
            });
        }
        Cmd::Overdue { limit } => {
            let rows = k.overdue(limit)?;
            let today = k.today().to_string();
            out(
                json,
                json!({ "today": today, "time_zone": k.calendar().name(), "overdue": rows }),
                || {
                    let mut t = print::overdue(&rows, &today);
                    if rows.len() == limit {
                        t.push_str(&format!(
                            "\n(the first {limit} shown, the longest overdue first; --limit N shows more)"
                        ));
                    }
                    t
                },
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
