//! Custody commands: every step a specimen takes, each one an event (register, check in and
//! out, return, move, evacuate, thaw, consume, dispose, block, unblock).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use kura_app::{AppError, CheckOut, RegisterRequest};
use serde_json::json;

use crate::output::out;
use crate::session::{Ctx, SignArgs, signed, signed_meaning, stdin_scans, withdraw_consent};

#[derive(Subcommand)]
pub enum Cmd {
    /// Register a specimen (and N aliquots).
    Register(RegisterArgs),
    /// Check a specimen into a box (the next free position unless --position).
    CheckIn {
        specimen: String,
        #[arg(value_name = "BOX")]
        container: String,
        #[arg(long)]
        position: Option<String>,
    },
    /// Fill a box from scans, one transaction; with no SPECIMEN arguments, reads scans from stdin.
    CheckInBox {
        #[arg(value_name = "BOX")]
        container: String,
        specimens: Vec<String>,
    },
    /// Check out one or many specimens.
    CheckOut {
        #[arg(required = true)]
        specimens: Vec<String>,
        /// Who receives them.
        #[arg(long)]
        to: String,
        /// analysis, qc, distribution, transfer or other.
        #[arg(long, default_value = "analysis")]
        purpose: String,
        /// When they are due back (YYYY-MM-DD).
        #[arg(long)]
        due: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Return a checked-out specimen to its reserved position.
    Return {
        specimen: String,
        /// It was thawed while out (counts a freeze–thaw cycle).
        #[arg(long)]
        thawed: bool,
    },
    /// Move a stored specimen.
    Move {
        specimen: String,
        #[arg(value_name = "BOX")]
        container: String,
        #[arg(long)]
        position: Option<String>,
    },
    /// Move a box, rack or other container with everything in it.
    MoveContainer {
        container: String,
        parent: String,
        #[arg(long)]
        position: Option<String>,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Move everything in a failing freezer or tank to the same positions in a backup unit.
    Evacuate {
        source: String,
        backup: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Record a thaw.
    Thaw { specimen: String },
    /// Record consumption: an amount, or --all.
    Consume {
        specimen: String,
        #[arg(long)]
        amount: Option<String>,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Dispose of a specimen (signed on a database with users; the signature means "performed"
    /// unless --meaning says otherwise).
    Dispose {
        specimen: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Block a specimen. With --donor instead: the donor withdrew consent — the same as
    /// `kura consent withdraw` (signed, through the lineage, into the destruction queue).
    Block {
        specimen: Option<String>,
        #[arg(long, conflicts_with = "specimen")]
        donor: Option<String>,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Lift a block. Lifting a consent withdrawal's block is an exception, a supervisor's
    /// signed act on a database with users.
    Unblock {
        specimen: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sign: SignArgs,
    },
}

#[derive(Args)]
pub struct RegisterArgs {
    /// SPREC sample type (BLD, SER, PL1, DNA, IPS, …).
    #[arg(long = "type")]
    sample_type: String,
    /// SPREC primary container (PED, SST, …).
    #[arg(long, default_value = "PED")]
    container: String,
    /// SPREC long-term storage (A, C, D, …).
    #[arg(long, default_value = "A")]
    storage: String,
    #[arg(long)]
    quantity: Option<String>,
    #[arg(long)]
    unit: Option<String>,
    #[arg(long)]
    study: String,
    #[arg(long)]
    donor: String,
    #[arg(long)]
    collected: Option<String>,
    /// A pre-barcoded tube's own code.
    #[arg(long)]
    code: Option<String>,
    #[arg(long, default_value_t = 0)]
    aliquots: u32,
    #[arg(long)]
    aliquot_quantity: Option<String>,
    /// Makes the children derivatives of this type (e.g. DNA from BLD).
    #[arg(long)]
    aliquot_type: Option<String>,
    /// Store the aliquots in this box.
    #[arg(long)]
    into: Option<String>,
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<ExitCode, AppError> {
    let json = ctx.json;
    let mut k = ctx.open(false)?;
    match cmd {
        Cmd::Register(a) => {
            let r = k.register(&RegisterRequest {
                code: a.code,
                sample_type: a.sample_type,
                container: a.container,
                storage: a.storage,
                quantity: a.quantity,
                unit: a.unit,
                study: a.study,
                donor: a.donor,
                collected_at: a.collected,
                aliquots: a.aliquots,
                aliquot_quantity: a.aliquot_quantity,
                aliquot_type: a.aliquot_type,
                into: a.into,
            })?;
            out(json, json!(r), || {
                let mut s = format!("registered {}", r.parent);
                for (i, c) in r.aliquots.iter().enumerate() {
                    let at = r
                        .placed
                        .get(i)
                        .map(|p| format!(" → {} {}", p.container, p.position))
                        .unwrap_or_default();
                    s.push_str(&format!("\n  aliquot {c}{at}"));
                }
                s
            });
        }
        Cmd::CheckIn {
            specimen,
            container,
            position,
        } => {
            let p = k.check_in(&specimen, &container, position.as_deref())?;
            out(json, json!(p), || {
                format!("{} → {} {}", p.specimen, p.container, p.position)
            });
        }
        Cmd::CheckInBox {
            container,
            mut specimens,
        } => {
            if specimens.is_empty() {
                specimens = stdin_scans()?;
            }
            let placed = k.check_in_box(&container, &specimens)?;
            out(json, json!(placed), || {
                placed
                    .iter()
                    .map(|p| format!("{} → {} {}", p.specimen, p.container, p.position))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Cmd::CheckOut {
            specimens,
            to,
            purpose,
            due,
            note,
        } => {
            let n = k.check_out(
                &specimens,
                &CheckOut {
                    to: to.clone(),
                    purpose,
                    due,
                    note,
                },
            )?;
            out(json, json!({ "checked_out": n, "to": to }), || {
                format!("checked out {n} to {to}")
            });
        }
        Cmd::Return { specimen, thawed } => {
            let p = k.return_specimen(&specimen, thawed)?;
            out(json, json!(p), || {
                format!("{} returned → {} {}", p.specimen, p.container, p.position)
            });
        }
        Cmd::Move {
            specimen,
            container,
            position,
        } => {
            let p = k.move_specimen(&specimen, &container, position.as_deref())?;
            out(json, json!(p), || {
                format!("{} moved → {} {}", p.specimen, p.container, p.position)
            });
        }
        Cmd::MoveContainer {
            container,
            parent,
            position,
            sign,
        } => {
            signed(&mut k, kura_app::users::Act::StorageLayout, &sign, |k| {
                k.move_container(&container, &parent, position.as_deref())
            })?;
            out(json, json!({ "moved": container, "to": parent }), || {
                format!("{container} moved into {parent}")
            });
        }
        Cmd::Evacuate {
            source,
            backup,
            sign,
        } => {
            let moved = signed(&mut k, kura_app::users::Act::StorageLayout, &sign, |k| {
                k.evacuate(&source, &backup)
            })?;
            out(json, json!({ "moved": moved }), || {
                format!("moved {} containers from {source} to {backup}", moved.len())
            });
        }
        Cmd::Thaw { specimen } => {
            k.thaw(&specimen)?;
            out(json, json!({ "thawed": specimen }), || {
                format!("thaw recorded for {specimen}")
            });
        }
        Cmd::Consume {
            specimen,
            amount,
            unit,
            all,
        } => {
            k.consume(&specimen, amount.as_deref(), unit.as_deref(), all)?;
            out(json, json!({ "consumed": specimen }), || {
                format!("consumption recorded for {specimen}")
            });
        }
        Cmd::Dispose {
            specimen,
            reason,
            sign,
        } => {
            let act = kura_app::users::Act::Dispose;
            // The next signature of this session asks only the password.
            match signed_meaning(&mut k, act, &sign, "performed", |k| {
                k.dispose(&specimen, &reason)
            })? {
                Some(sig) => out(
                    json,
                    json!({ "disposed": specimen, "signature": sig }),
                    || {
                        format!(
                            "{specimen} disposed; signed by {} ({}) — {}",
                            sig.name, sig.signer, sig.meaning
                        )
                    },
                ),
                None => out(json, json!({ "disposed": specimen }), || {
                    format!("{specimen} disposed")
                }),
            }
        }
        Cmd::Block {
            specimen,
            donor,
            reason,
            sign,
        } => match (specimen, donor) {
            (Some(s), None) => {
                k.block(&s, &reason)?;
                out(json, json!({ "blocked": [s] }), || format!("{s} blocked"));
            }
            // A donor's specimens are blocked only as a consent withdrawal: signed, through the
            // lineage, into the destruction queue (one way, not two).
            (None, Some(d)) => withdraw_consent(&mut k, &d, &reason, &sign, json)?,
            _ => return Err(AppError::input("specimen", "give a specimen or --donor")),
        },
        Cmd::Unblock {
            specimen,
            reason,
            sign,
        } => {
            // Lifting a consent withdrawal's block on a database with users is an exception,
            // signed; any other block is lifted as before.
            let exception = k.secured()? && k.consent_withdrawn(&specimen)?.is_some();
            let sig = if exception {
                signed(&mut k, kura_app::users::Act::Block, &sign, |k| {
                    k.unblock(&specimen, &reason)
                })?
            } else {
                k.unblock(&specimen, &reason)?
            };
            match sig {
                Some(sig) => out(
                    json,
                    json!({ "unblocked": specimen, "signature": sig }),
                    || {
                        format!(
                            "{specimen} unblocked as an exception to the consent withdrawal; signed by {} ({}) — {}",
                            sig.name, sig.signer, sig.meaning
                        )
                    },
                ),
                None => out(json, json!({ "unblocked": specimen }), || {
                    format!("{specimen} unblocked")
                }),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
