//! `kura`: every Kura use case from the command line. Glue only: parse arguments, call
//! `kura-app`, print text or `--json`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kura_app::AppError;
use serde_json::json;

mod cmd;
mod output;
mod print;
mod session;

use output::line;
use session::Ctx;

#[derive(Parser)]
#[command(name = "kura", version, about = "Kura (蔵): chain of custody for biobank specimens", long_about = None)]
struct Cli {
    /// The database file (default: kura.sqlite3 in your data directory).
    #[arg(long, global = true, env = "KURA_DB")]
    db: Option<PathBuf>,
    /// Who is acting, on a database without users (recorded on every event). A database with
    /// users ignores it: its events name the user signed in with `kura login`.
    #[arg(long, global = true, env = "KURA_USER")]
    actor: Option<String>,
    /// Print JSON for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Every command, by group (one file each under `cmd/`); the groups are flattened, so each
/// command is a top-level word (`kura check-in`, `kura user add`).
#[derive(Subcommand)]
enum Cmd {
    #[command(flatten)]
    Database(cmd::database::Cmd),
    #[command(flatten)]
    Custody(cmd::custody::Cmd),
    #[command(flatten)]
    Find(cmd::find::Cmd),
    #[command(flatten)]
    Storage(cmd::storage::Cmd),
    #[command(flatten)]
    Labels(cmd::labels::Cmd),
    #[command(flatten)]
    People(cmd::people::Cmd),
    #[command(flatten)]
    Records(cmd::records::Cmd),
    #[command(flatten)]
    Shipping(cmd::shipping::Cmd),
    #[command(flatten)]
    Sync(cmd::sync::Cmd),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KURA_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour for a person at a terminal, plain text for a pipe or a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if json {
                line(&json!({ "error": e.to_wire() }).to_string());
            } else {
                eprintln!("error[{}]: {e}", e.code());
                if let AppError::Import { total, rows } = &e {
                    for r in rows.iter().take(50) {
                        eprintln!("  {r}");
                    }
                    if *total > 50 {
                        eprintln!("  … and {} more", total - 50);
                    }
                }
            }
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, AppError> {
    let ctx = Ctx {
        db: cli.db,
        actor: cli.actor,
        json: cli.json,
    };
    match cli.cmd {
        Cmd::Database(c) => cmd::database::run(c, &ctx),
        Cmd::Custody(c) => cmd::custody::run(c, &ctx),
        Cmd::Find(c) => cmd::find::run(c, &ctx),
        Cmd::Storage(c) => cmd::storage::run(c, &ctx),
        Cmd::Labels(c) => cmd::labels::run(c, &ctx),
        Cmd::People(c) => cmd::people::run(c, &ctx),
        Cmd::Records(c) => cmd::records::run(c, &ctx),
        Cmd::Shipping(c) => cmd::shipping::run(c, &ctx),
        Cmd::Sync(c) => cmd::sync::run(c, &ctx),
    }
}
