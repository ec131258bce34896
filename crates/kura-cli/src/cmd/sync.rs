//! The registry: enrolling this bench (or a replacement PC), syncing, the conflicts sync found.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use kura_app::AppError;
use serde_json::json;

use crate::output::{line, out, progress_phase};
use crate::print;
use crate::session::{Ctx, SignArgs, signed};

#[derive(Subcommand)]
pub enum Cmd {
    /// Enroll this workstation with the central registry (a one-time code from its administrator).
    Enroll {
        code: String,
        /// The registry's address, e.g. https://registry.example:8443
        #[arg(long)]
        registry: String,
        /// A CA certificate (PEM) to trust for the registry's HTTPS.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// The name the registry shows for this workstation (default: the host name).
        #[arg(long)]
        name: Option<String>,
        /// Allow http:// to another machine (the token and events travel unencrypted): only on
        /// a network you trust.
        #[arg(long)]
        insecure_http: bool,
    },
    /// A replacement PC takes over a dead bench: CODE comes from `kura-registry enroll --site S
    /// --replaces WORKSTATION`; into a new data directory. Brings back the bench's stream and the
    /// site's; the old PC's token stops working.
    Recover {
        code: String,
        /// The registry's address, e.g. https://registry.example:8443
        #[arg(long)]
        registry: String,
        /// A CA certificate (PEM) to trust for the registry's HTTPS.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// The name the registry shows for this workstation (default: the host name).
        #[arg(long)]
        name: Option<String>,
        /// Allow http:// to another machine (the token and events travel unencrypted): only on
        /// a network you trust.
        #[arg(long)]
        insecure_http: bool,
    },
    /// Sync with the registry: one round (push, then pull), or --watch; `kura sync status`.
    Sync {
        #[command(subcommand)]
        cmd: Option<SyncCmd>,
        /// Keep syncing on a timer until interrupted.
        #[arg(long)]
        watch: bool,
        /// Seconds between rounds with --watch.
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// Seconds to wait on one request.
        #[arg(long, env = "KURA_SYNC_TIMEOUT")]
        timeout: Option<u64>,
        /// Tries of one request before the round gives up.
        #[arg(long, env = "KURA_SYNC_ATTEMPTS")]
        attempts: Option<u32>,
    },
    /// Conflicts: events two benches recorded that cannot both be true.
    Conflicts {
        /// Only this specimen's.
        specimen: Option<String>,
        /// Resolved ones too.
        #[arg(long)]
        all: bool,
    },
    /// Settle a specimen's conflict: which event is true, and why.
    Resolve {
        specimen: String,
        /// The id of the event to keep (see `kura conflicts`).
        #[arg(long)]
        keep: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sign: SignArgs,
    },
}

#[derive(Subcommand)]
pub enum SyncCmd {
    /// Where this workstation stands: online, waiting, last success and error, rejections,
    /// conflicts, clock skew, IDs left.
    Status,
    /// This workstation's events the registry refused and keeps (they never block the others).
    Rejections,
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<ExitCode, AppError> {
    let json = ctx.json;
    // Only these make a database; any other command on a missing file says so.
    let mut k = ctx.open(matches!(cmd, Cmd::Enroll { .. } | Cmd::Recover { .. }))?;
    match cmd {
        Cmd::Enroll {
            code,
            registry,
            ca,
            name,
            insecure_http,
        } => {
            let r = k.enroll(
                &code,
                &registry,
                ca.as_deref(),
                name.as_deref(),
                insecure_http,
            )?;
            out(json, json!(r), || print::enrolled(&r));
        }
        Cmd::Recover {
            code,
            registry,
            ca,
            name,
            insecure_http,
        } => {
            let mut bar = progress_phase();
            let r = k.recover(
                &code,
                &registry,
                ca.as_deref(),
                name.as_deref(),
                insecure_http,
                &mut bar,
            )?;
            out(json, json!(r), || print::recovered(&r, k.calendar()));
        }
        Cmd::Sync {
            cmd: Some(SyncCmd::Status),
            ..
        } => {
            let s = k.sync_status()?;
            out(json, json!(s), || print::sync_status(&s, k.calendar()));
        }
        Cmd::Sync {
            cmd: Some(SyncCmd::Rejections),
            ..
        } => {
            let list = k.rejections()?;
            out(json, json!(list), || {
                if list.is_empty() {
                    return "no rejections".into();
                }
                list.iter()
                    .map(|r| {
                        format!(
                            "seq {} {} {} [{}] {}",
                            r.seq, r.kind, r.event, r.code, r.message
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Cmd::Sync {
            cmd: None,
            watch,
            interval,
            timeout,
            attempts,
        } => {
            let opts = kura_app::SyncOptions {
                timeout: timeout.map(std::time::Duration::from_secs),
                attempts,
                apply_chunk: None,
            };
            if watch {
                k.sync_watch(
                    opts,
                    std::time::Duration::from_secs(interval.max(1)),
                    &mut |r| {
                        match r {
                            Ok(rep) => out(json, json!(rep), || print::sync_report(rep)),
                            Err(e) if json => line(&json!({ "error": e.to_wire() }).to_string()),
                            Err(e) => eprintln!("error[{}]: {e}", e.code()),
                        }
                        true
                    },
                )?;
            } else {
                let mut bar = progress_phase();
                let rep = k.sync(opts, &mut bar)?;
                out(json, json!(rep), || print::sync_report(&rep));
            }
        }
        Cmd::Conflicts { specimen, all } => {
            let list = k.conflicts(specimen.as_deref(), all)?;
            out(json, json!(list), || print::conflicts(&list, k.calendar()));
        }
        Cmd::Resolve {
            specimen,
            keep,
            reason,
            sign,
        } => {
            let s = signed(&mut k, kura_app::users::Act::ResolveConflict, &sign, |k| {
                k.resolve_conflict(&specimen, &keep, &reason)
            })?;
            out(json, json!(s), || {
                format!(
                    "{}: conflict settled, {}{}",
                    s.code,
                    s.status,
                    s.path
                        .as_ref()
                        .map(|p| format!(" at {p}"))
                        .unwrap_or_default()
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
