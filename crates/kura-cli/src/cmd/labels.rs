//! Kura IDs and their labels: printing, label stocks, printers, check characters.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use kura_app::AppError;
use kura_app::labels::PrintTarget;
use kura_app::transport::PrinterConfig;
use serde_json::json;

use crate::output::out;
use crate::print;
use crate::session::Ctx;

#[derive(Subcommand)]
pub enum Cmd {
    /// Print labels for specimens or containers (IDs, a whole box, or a search).
    Labels {
        codes: Vec<String>,
        /// Every specimen in this box, in position order.
        #[arg(long = "box", value_name = "BOX")]
        in_box: Option<String>,
        /// Every specimen a search finds (ID prefix, donor or study).
        #[arg(long)]
        query: Option<String>,
        /// The label stock (see `kura stocks`).
        #[arg(long, default_value = "cryo-38x13-a4")]
        stock: String,
        /// Write a PDF.
        #[arg(long, conflicts_with_all = ["printer", "zpl"])]
        out: Option<PathBuf>,
        /// Send to a printer configured on this workstation (`kura printer add`).
        #[arg(long)]
        printer: Option<String>,
        /// Write ZPL for a Zebra printer to this file.
        #[arg(long, conflicts_with = "printer")]
        zpl: Option<PathBuf>,
    },
    /// The label stocks.
    Stocks,
    /// Printers of this workstation.
    #[command(subcommand)]
    Printer(PrinterCmd),
    /// Kura IDs and check characters.
    #[command(subcommand)]
    Id(IdCmd),
}

#[derive(Subcommand)]
pub enum PrinterCmd {
    /// Add (or replace) a printer: --tcp HOST:9100 for Zebra, --cups QUEUE (raw ZPL) or --cups-pdf QUEUE.
    Add {
        name: String,
        #[arg(long, conflicts_with_all = ["cups", "cups_pdf"])]
        tcp: Option<String>,
        #[arg(long, conflicts_with = "cups_pdf")]
        cups: Option<String>,
        #[arg(long)]
        cups_pdf: Option<String>,
        /// The printer's resolution (203, 300 or 600; its configuration label says): labels are
        /// laid out in its dots. Default: the stock's.
        #[arg(long)]
        dpi: Option<u32>,
        /// A font resident on the Zebra that draws Japanese (e.g. E:TT0003M_.TTF), used instead
        /// of sending such text as graphics.
        #[arg(long, conflicts_with = "cups_pdf")]
        zpl_font: Option<String>,
    },
    List,
    Remove {
        name: String,
    },
    /// Asks the printer's status, then prints a calibration label (name, dpi, date, a
    /// DataMatrix and a Code128). Nothing is logged.
    Test {
        name: String,
        #[arg(long, default_value = "box-2x1")]
        stock: String,
    },
}

#[derive(Subcommand)]
pub enum IdCmd {
    /// Is CODE a valid Kura ID? Exit status 0 if so, 1 if not (and why).
    Check { code: String },
    /// Print DATA with its check character appended.
    CheckChar { data: String },
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<ExitCode, AppError> {
    let json = ctx.json;
    // Commands that need no database.
    match &cmd {
        Cmd::Id(IdCmd::Check { code }) => {
            return Ok(match kura_app::ids::check(code) {
                Ok(id) => {
                    out(
                        json,
                        json!({ "valid": true, "id": id.to_string(), "data": id.data(), "check": id.check().to_string() }),
                        || {
                            format!(
                                "{id} is a valid Kura ID (data {}, check character {})",
                                id.data(),
                                id.check()
                            )
                        },
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    out(
                        json,
                        json!({ "valid": false, "error": AppError::from(e.clone()).to_wire() }),
                        || format!("not a valid Kura ID: {e}"),
                    );
                    ExitCode::from(1)
                }
            });
        }
        Cmd::Id(IdCmd::CheckChar { data }) => {
            let id = kura_app::ids::with_check_char(data)?;
            out(
                json,
                json!({ "id": id.to_string(), "check": id.check().to_string() }),
                || id.to_string(),
            );
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Stocks => {
            let list = kura_app::labels::stock_list()?;
            out(json, json!(list), || {
                list.iter()
                    .map(|s| format!("{:<18} {:>3} dpi  {}  ({})", s.id, s.dpi, s.name, s.source))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let mut k = ctx.open(false)?;
    match cmd {
        Cmd::Labels {
            codes,
            in_box,
            query,
            stock,
            out: pdf,
            printer,
            zpl,
        } => {
            let mut codes = codes;
            if let Some(b) = in_box {
                codes.extend(k.codes_in_box(&b)?);
            }
            if let Some(q) = query {
                codes.extend(k.codes_for_query(&q)?);
            }
            let target = match (pdf, printer, zpl) {
                (Some(p), None, None) => PrintTarget::Pdf(p),
                (None, Some(n), None) => PrintTarget::Printer(n),
                (None, None, Some(z)) => PrintTarget::Zpl(z),
                (None, None, None) => {
                    return Err(AppError::input(
                        "out",
                        "say where to print: --out FILE.pdf, --printer NAME or --zpl FILE",
                    ));
                }
                _ => {
                    return Err(AppError::input(
                        "out",
                        "give only one of --out, --printer, --zpl",
                    ));
                }
            };
            let r = k.print_labels(&codes, &stock, &target)?;
            for w in &r.warnings {
                eprintln!("warning: {w}");
            }
            out(json, json!(r), || {
                let re = if r.reprints.is_empty() {
                    String::new()
                } else {
                    format!(" ({} reprinted)", r.reprints.len())
                };
                format!(
                    "printed {} label(s) on {} → {} ({} page(s), {} bytes){re}",
                    r.labels, r.stock, r.target, r.pages, r.bytes
                )
            });
        }
        Cmd::Printer(PrinterCmd::Add {
            name,
            tcp,
            cups,
            cups_pdf,
            dpi,
            zpl_font,
        }) => {
            let mut detected = None;
            let config = match (tcp, cups, cups_pdf) {
                (Some(address), None, None) => {
                    // The printer says its resolution, where it can.
                    if dpi.is_none() {
                        detected = k.detect_dpi(&address);
                    }
                    PrinterConfig::Tcp {
                        address,
                        dpi: dpi.or(detected),
                        zpl_font,
                    }
                }
                (None, Some(queue), None) => PrinterConfig::Cups {
                    queue,
                    dpi,
                    zpl_font,
                },
                (None, None, Some(queue)) => PrinterConfig::CupsPdf { queue, dpi },
                _ => {
                    return Err(AppError::input(
                        "printer",
                        "give one of --tcp HOST:PORT, --cups QUEUE, --cups-pdf QUEUE",
                    ));
                }
            };
            let dpi = config.dpi();
            k.set_printer(&name, Some(config))?;
            out(
                json,
                json!({ "added": name, "dpi": dpi, "dpi_from_printer": detected.is_some() }),
                || match (dpi, detected) {
                    (Some(d), Some(_)) => format!("printer {name} added ({d} dpi, as it reports)"),
                    (Some(d), None) => format!("printer {name} added ({d} dpi)"),
                    (None, _) => format!(
                        "printer {name} added (labels at each stock's dpi; give --dpi if it differs)"
                    ),
                },
            );
        }
        Cmd::Printer(PrinterCmd::List) => {
            let all = k.printers()?;
            out(json, json!(all), || print::printers(&all));
        }
        Cmd::Printer(PrinterCmd::Test { name, stock }) => {
            let t = k.test_printer(&name, &stock)?;
            out(json, json!(t), || {
                let mut s = format!(
                    "printer {}: {}\ncalibration label sent: {} on {} at {} dpi ({} bytes); scan it: both symbols read {}",
                    t.printer, t.status, t.code, t.stock, t.dpi, t.bytes, t.code
                );
                for w in &t.warnings {
                    s.push_str(&format!("\nwarning: {w}"));
                }
                s
            });
        }
        Cmd::Printer(PrinterCmd::Remove { name }) => {
            k.set_printer(&name, None)?;
            out(json, json!({ "removed": name }), || {
                format!("printer {name} removed")
            });
        }
        _ => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}
