//! Shipments: dispatch tubes or boxes to another site or to a researcher, list shipments,
//! print a manifest.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use kura_app::{AppError, ShipForm};
use serde_json::json;

use crate::output::out;
use crate::session::{Ctx, SignArgs, signed, signed_meaning, stdin_scans};

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
        /// Also write the shipment's sealed manifest (its signed bundle) to FILE, for a site that
        /// shares no registry with this one.
        #[arg(long, value_name = "FILE")]
        sealed: Option<PathBuf>,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Receive an incoming shipment: scans (arguments, or one per line on stdin: `CODE`,
    /// `CODE B3`, `CODE damaged`) are received into --into BOX and reconciled against the
    /// manifest: received, missing (still in transit), unexpected, damaged.
    Receive {
        /// The shipment (with --sealed, the file names it, and every argument is a scan).
        #[arg(required_unless_present = "sealed")]
        shipment: Option<String>,
        /// Take a sealed manifest first (checked against the keys this site trusts).
        #[arg(long, value_name = "FILE")]
        sealed: Option<PathBuf>,
        /// The box the tubes go into (the next free position, unless a scan names one).
        #[arg(long, value_name = "BOX")]
        into: Option<String>,
        /// How the tubes arrived unless a scan says otherwise: ok, thawed, damaged, leaked.
        #[arg(long)]
        condition: Option<String>,
        /// Take the shipment only (its sealed manifest, or the bundle the registry brought);
        /// receive nothing yet.
        #[arg(long)]
        take_only: bool,
        /// Declare these missing tubes lost instead (a supervisor's signed disposal; needs
        /// --reason).
        #[arg(long, value_name = "TUBE", requires = "reason")]
        lost: Vec<String>,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        sign: SignArgs,
        scans: Vec<String>,
    },
    /// This workstation's key for shipments: tell its fingerprint to a receiving site.
    Key,
    /// The keys this site trusts for sealed shipments.
    #[command(subcommand)]
    Trust(TrustCmd),
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

#[derive(Subcommand)]
pub enum TrustCmd {
    /// Trust a sending workstation's key (its fingerprint, confirmed with the sender out of
    /// band). An administrator's signed act on a database with users.
    Add {
        name: String,
        fingerprint: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// The keys trusted here.
    List,
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
            sealed,
            sign,
        } => {
            if sealed.is_some() && to_recipient.is_some() {
                return Err(AppError::input(
                    "sealed",
                    "a shipment to a recipient outside the network has no sealed manifest: no site receives it",
                ));
            }
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
            if let Some(path) = &sealed {
                k.write_sealed(&d.shipment, path)?;
            }
            out(
                json,
                json!({
                    "sealed": sealed.as_ref().map(|p| p.display().to_string()),
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
                        "{}: {} tube(s) {} {}; manifest {} ({} page(s)){}{}",
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
                        sealed
                            .as_ref()
                            .map(|p| format!("; sealed manifest {}", p.display()))
                            .unwrap_or_default(),
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
                            "{}  {:8}  {}  {}  {} tube(s), {} in transit{}  {}{}",
                            s.shipment,
                            s.direction,
                            s.dispatched,
                            s.destination,
                            s.tubes,
                            s.in_transit,
                            if s.received_there > 0 {
                                format!(", {} received there", s.received_there)
                            } else {
                                String::new()
                            },
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
        Cmd::Receive {
            shipment,
            sealed,
            into,
            condition,
            take_only,
            lost,
            reason,
            sign,
            mut scans,
        } => {
            let mut taken = None;
            let mut shipment = shipment;
            if sealed.is_some()
                && let Some(first) = shipment.take()
            {
                scans.insert(0, first);
            }
            if let Some(path) = &sealed {
                let b = kura_app::Kura::read_sealed(path)?;
                taken = Some(k.take_bundle(b)?);
            }
            let id = match (&shipment, &taken) {
                (Some(s), _) => s.clone(),
                (None, Some(t)) => t.shipment.clone(),
                (None, None) => unreachable!("clap requires a shipment or --sealed"),
            };
            if take_only {
                let t = match taken {
                    Some(t) => t,
                    // A shipment the registry brought.
                    None => k
                        .take_sent(&id)?
                        .ok_or_else(|| kura_app::AppError::NotFound {
                            what: "shipment",
                            code: id.to_uppercase(),
                        })?,
                };
                out(json, json!(t), || {
                    format!(
                        "{}: {} tube(s) on the way here from {}{}",
                        t.shipment,
                        t.tubes,
                        t.from
                            .clone()
                            .unwrap_or_else(|| "another site, through the registry".into()),
                        if t.again { " (taken before)" } else { "" }
                    )
                });
                return Ok(ExitCode::SUCCESS);
            }
            if !lost.is_empty() {
                let reason = reason.unwrap_or_default();
                let mut done = Vec::new();
                for t in &lost {
                    let sig = signed_meaning(
                        &mut k,
                        kura_app::users::Act::Dispose,
                        &sign,
                        "performed",
                        |k| k.declare_lost(&id, t, &reason),
                    )?;
                    done.push(json!({ "lost": t, "signature": sig }));
                }
                out(json, json!({ "shipment": id, "lost": done }), || {
                    format!("{id}: declared lost: {}", lost.join(" "))
                });
                return Ok(ExitCode::SUCCESS);
            }
            if scans.is_empty() {
                scans = stdin_scans()?;
            }
            let r = k.receive(&id, into.as_deref(), &scans, condition.as_deref())?;
            out(json, json!(r), || {
                let mut lines: Vec<String> = r
                    .received
                    .iter()
                    .map(|p| {
                        if p.container.is_empty() {
                            format!("received {}", p.specimen)
                        } else {
                            format!("received {} → {} {}", p.specimen, p.container, p.position)
                        }
                    })
                    .collect();
                for (what, list) in [
                    ("damaged (blocked)", &r.damaged),
                    (
                        "unexpected (not on the manifest; not received)",
                        &r.unexpected,
                    ),
                    ("received before", &r.already),
                    ("missing (still in transit)", &r.missing),
                ] {
                    if !list.is_empty() {
                        lines.push(format!("{what}: {}", list.join(" ")));
                    }
                }
                lines.push(format!(
                    "{}: {} received now, {} missing, {} unexpected",
                    r.shipment,
                    r.received.len(),
                    r.missing.len(),
                    r.unexpected.len()
                ));
                lines.join("\n")
            });
        }
        Cmd::Key => {
            let key = k.workstation_key()?;
            out(json, json!(key), || {
                format!(
                    "this workstation's shipment key: {}\n(public key {})",
                    key.fingerprint, key.public
                )
            });
        }
        Cmd::Trust(TrustCmd::Add {
            name,
            fingerprint,
            sign,
        }) => {
            signed(&mut k, kura_app::users::Act::ManageUsers, &sign, |k| {
                k.trust_key(&name, &fingerprint)
            })?;
            out(json, json!({ "trusted": name }), || {
                format!("trusted {name}'s key for sealed shipments")
            });
        }
        Cmd::Trust(TrustCmd::List) => {
            let keys = k.trusted_keys()?;
            out(
                json,
                json!(
                    keys.iter()
                        .map(|(f, n)| json!({ "fingerprint": f, "name": n }))
                        .collect::<Vec<_>>()
                ),
                || {
                    if keys.is_empty() {
                        return "no trusted keys".into();
                    }
                    keys.iter()
                        .map(|(f, n)| format!("{f}  {n}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
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
