//! Records in and out: spreadsheet import and export, the audit report.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use kura_app::AppError;
use serde_json::json;

use crate::output::{out, progress};
use crate::session::{Ctx, SignArgs, signed};

#[derive(Subcommand)]
pub enum Cmd {
    /// Import inventory from CSV or a workbook (.xlsx): all rows or none, recorded with the
    /// file's SHA-256.
    Import {
        file: PathBuf,
        /// auto (UTF-8 with or without BOM, else CP932), utf-8, or cp932 (Excel's plain "CSV" on
        /// Japanese Windows).
        #[arg(long, default_value = "auto")]
        encoding: String,
        /// The workbook's sheet (default: the first).
        #[arg(long)]
        sheet: Option<String>,
        /// Check every row and report every problem; write nothing.
        #[arg(long)]
        check: bool,
    },
    /// Export inventory to CSV in UTF-8 (stdout without a file), or to a workbook when FILE ends
    /// in .xlsx (codes as text cells, dates as date cells): all of it, a box, a study, or what
    /// a search finds (the filters of `kura find`).
    Export {
        file: Option<PathBuf>,
        /// Start with a byte-order mark, so that Excel on Japanese Windows shows the Japanese.
        #[arg(long)]
        bom: bool,
        /// Only the specimens in this box (rack, cane).
        #[arg(long = "box")]
        container: Option<String>,
        /// Only the specimens of this study.
        #[arg(long)]
        study: Option<String>,
        /// Only what `kura find TEXT` finds: a code (or its beginning), a donor or a study.
        #[arg(long = "match", value_name = "TEXT")]
        text: Option<String>,
        #[arg(long)]
        donor: Option<String>,
        #[arg(long = "type")]
        sample_type: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    /// The audit trail of a specimen, a user or a period (all events without a filter): every
    /// event with the values it changed, who, when, where, why and its signatures, as a PDF
    /// whose last page is the verification of the chain, or as CSV or a workbook (.xlsx). The
    /// export is recorded
    /// (and signed on a database with users).
    Audit {
        #[arg(long)]
        specimen: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// First date at the site, YYYY-MM-DD (inclusive).
        #[arg(long)]
        from: Option<String>,
        /// Last date at the site (inclusive).
        #[arg(long)]
        to: Option<String>,
        /// The report: FILE.pdf, FILE.csv or FILE.xlsx (a workbook of the same rows).
        #[arg(long)]
        out: PathBuf,
        /// The report's language, en or ja (default: from LANG).
        #[arg(long)]
        lang: Option<String>,
        /// Verify the whole log and the projection again (as `kura verify --full`); without
        /// it, the report verifies from the last verified point and says which.
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        sign: SignArgs,
    },
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<ExitCode, AppError> {
    let json = ctx.json;
    let mut k = ctx.open(false)?;
    match cmd {
        Cmd::Import {
            file,
            encoding,
            sheet,
            check,
        } => {
            let bytes = std::fs::read(&file).map_err(|e| AppError::File {
                path: file.display().to_string(),
                message: e.to_string(),
            })?;
            let opts = kura_app::import::ImportOptions {
                file: file.display().to_string(),
                encoding: encoding.parse()?,
                check,
                sheet,
            };
            let r = k.import_bytes(&bytes, &opts, &mut progress("import"))?;
            out(json, json!(r), || {
                if r.checked_only {
                    format!(
                        "{}: all {} rows can be imported ({} new IDs to issue, {} to store); nothing was written",
                        r.file, r.rows, r.issued, r.stored
                    )
                } else {
                    format!(
                        "imported {} specimens ({} new IDs issued, {} stored) from {} (SHA-256 {})",
                        r.rows, r.issued, r.stored, r.file, r.sha256
                    )
                }
            });
        }
        Cmd::Export {
            file,
            bom,
            container,
            study,
            text,
            donor,
            sample_type,
            status,
        } => {
            let filter = kura_app::import::ExportFilter {
                container,
                study,
                text,
                donor,
                sample_type,
                status,
            };
            let n = match &file {
                Some(path) => {
                    k.export_file(path, bom, &filter, &mut progress("export"))?
                        .rows
                }
                None => k.export_csv_of(std::io::stdout().lock(), bom, &filter)?,
            };
            if file.is_some() {
                out(json, json!({ "exported": n }), || {
                    format!("exported {n} specimens")
                });
            }
        }
        Cmd::Audit {
            specimen,
            user,
            from,
            to,
            out: file,
            lang,
            full,
            sign,
        } => {
            let lang = match lang.as_deref() {
                Some(l @ ("en" | "ja")) => l.to_string(),
                Some(other) => {
                    return Err(AppError::input(
                        "lang",
                        format!("{other:?}: a report is in en or ja"),
                    ));
                }
                None => {
                    let env = |k: &str| std::env::var(k).ok();
                    let (a, b, c) = (env("LC_ALL"), env("LC_MESSAGES"), env("LANG"));
                    kura_app::input::language([a.as_deref(), b.as_deref(), c.as_deref()])
                        .to_string()
                }
            };
            let q = kura_app::audit::AuditQuery {
                specimen,
                user,
                from,
                to,
                full,
            };
            let x = signed(&mut k, kura_app::users::Act::Read, &sign, |k| {
                k.export_audit(&q, &file, &lang, &mut progress("audit"))
            });
            let x = x?;
            out(json, json!(x), || {
                format!(
                    "{} events to {} ({}{}); chain {}; SHA-256 {}{}",
                    x.events,
                    x.path,
                    x.format,
                    if x.pages > 0 {
                        format!(", {} pages", x.pages)
                    } else {
                        String::new()
                    },
                    if x.intact {
                        "intact"
                    } else {
                        "NOT intact: see the last page and kura verify"
                    },
                    x.sha256,
                    x.signature
                        .as_ref()
                        .map(|s| format!("; signed by {} ({}) — {}", s.name, s.signer, s.meaning))
                        .unwrap_or_default()
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
