//! Shipments: dispatch tubes or boxes to another site or to a researcher, list shipments,
//! print a manifest.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use kura_app::{AppError, ShipForm};
use serde_json::json;

use crate::output::out;
use crate::session::{Ctx, SignArgs, signed, stdin_scans};

#[derive(Subcommand)]
pub enum Cmd {
    /// Ship tubes (or whole boxes) to another site, or out of the network to a researcher
    /// (signed by a supervisor; the tubes' custody ends). Every tube goes in transit; the
    /// manifest PDF is written. With no SCAN arguments, reads scans from stdin.
    Ship {
        #[arg(value_name = "SPECIMEN|BOX")]
        scans: Vec<String>,
        /// The site it goes to (its code).
        #[arg(long = "to", value_name = "SITE", conflicts_with = "to_recipient")]
        to_site: Option<String>,
        /// A researcher outside the network (needs --mta).
        #[arg(long, value_name = "NAME")]
        to_recipient: Option<String>,
        #[arg(long)]
        courier: Option<String>,
        #[arg(long)]
        tracking: Option<String>,
        /// dry-ice, ln2-dry-shipper, ambient or 4C.
        #[arg(long, default_value = "dry-ice")]
        temperature: String,
        /// Net dry ice in kg (UN 1845), with --temperature dry-ice.
        #[arg(long, value_name = "KG")]
        dry_ice_kg: Option<String>,
        /// The temperature logger's ID.
        #[arg(long)]
        logger: Option<String>,
        /// The material transfer agreement's reference.
        #[arg(long)]
        mta: Option<String>,
        /// Where to write the manifest PDF (default: SHIPMENT.pdf here).
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// The shipments this bench knows, newest first.
    Shipments {
        /// Only those coming here.
        #[arg(long, conflicts_with = "outgoing")]
        incoming: bool,
        /// Only those sent from here.
        #[arg(long)]
        outgoing: bool,
    },
    /// Write a shipment's manifest PDF again.
    Manifest {
        shipment: String,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<ExitCode, AppError> {
    let json = ctx.json;
    let mut k = ctx.open(false)?;
    match cmd {
        Cmd::Ship {
            mut scans,
            to_site,
            to_recipient,
            courier,
            tracking,
            temperature,
            dry_ice_kg,
            logger,
            mta,
            manifest,
            sign,
        } => {
            if scans.is_empty() {
                scans = stdin_scans()?;
            }
            let form = ShipForm {
                scans,
                to_site,
                to_recipient,
                courier,
                tracking,
                temperature,
                dry_ice_kg,
                logger,
                mta,
            };
            // Out of the network the dispatch is a supervisor's signed distribution.
            let d = if form.to_recipient.is_some() {
                signed(&mut k, kura_app::users::Act::Distribute, &sign, |k| {
                    k.ship(&form)
                })?
            } else {
                k.ship(&form)?
            };
            let file = manifest.unwrap_or_else(|| PathBuf::from(format!("{}.pdf", d.shipment)));
            let pages = k.print_manifest(&d.shipment, &file)?;
            out(
                json,
                json!({
                    "shipment": d.shipment,
                    "destination": d.destination,
                    "tubes": d.tubes,
                    "boxes": d.boxes,
                    "distributed": d.distributed,
                    "signature": d.signature,
                    "manifest": file.display().to_string(),
                    "manifest_pages": pages,
                }),
                || {
                    format!(
                        "{}: {} tube(s) {} {}; manifest {} ({} page(s)){}",
                        d.shipment,
                        d.tubes.len(),
                        if d.distributed {
                            "distributed to"
                        } else {
                            "in transit to"
                        },
                        d.destination,
                        file.display(),
                        pages,
                        d.signature
                            .as_ref()
                            .map(|s| format!(
                                "; signed by {} ({}) — {}",
                                s.name, s.signer, s.meaning
                            ))
                            .unwrap_or_default()
                    )
                },
            );
        }
        Cmd::Shipments { incoming, outgoing } => {
            let list: Vec<_> = k
                .shipments()?
                .into_iter()
                .filter(|s| match (incoming, outgoing) {
                    (true, _) => s.direction == "incoming",
                    (_, true) => s.direction == "outgoing",
                    _ => true,
                })
                .collect();
            out(json, json!(list), || {
                if list.is_empty() {
                    return "no shipments".into();
                }
                list.iter()
                    .map(|s| {
                        format!(
                            "{}  {:8}  {}  {}  {} tube(s), {} in transit  {}{}",
                            s.shipment,
                            s.direction,
                            s.dispatched,
                            s.destination,
                            s.tubes,
                            s.in_transit,
                            s.coolant,
                            s.tracking
                                .as_ref()
                                .map(|t| format!("  {} {t}", s.courier.clone().unwrap_or_default()))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Cmd::Manifest {
            shipment,
            out: file,
        } => {
            let s = k.shipment(&shipment)?;
            let file = file.unwrap_or_else(|| PathBuf::from(format!("{}.pdf", s.id)));
            let pages = k.print_manifest(&s.id, &file)?;
            out(
                json,
                json!({ "shipment": s.id, "manifest": file.display().to_string(), "pages": pages }),
                || format!("{}: manifest {} ({} page(s))", s.id, file.display(), pages),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
