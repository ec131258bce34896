//! The database itself: make one (init, demo), check and repair it (verify, rebuild), back it
//! up and restore it, its statistics and time zone, and the benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use kura_app::{AppError, Kura};
use serde_json::json;

use crate::output::{out, progress};
use crate::print;
use crate::session::{Ctx, new_secret, path_of, save_session};

#[derive(Subcommand)]
pub enum Cmd {
    /// Set up a new database: the site's ID prefix and serial width.
    Init {
        #[arg(long, default_value = "KURA")]
        prefix: String,
        #[arg(long, default_value_t = 7)]
        serial_width: usize,
        /// Create the database's first administrator with this user ID now (asks their
        /// password twice; there is no default). Without it the database has no users until
        /// `kura user add … --role administrator`.
        #[arg(long)]
        admin: Option<String>,
        /// The administrator's printed name (with --admin).
        #[arg(long, requires = "admin")]
        name: Option<String>,
        /// Read the administrator's password from standard input (with --admin).
        #[arg(long, requires = "admin")]
        password_stdin: bool,
    },
    /// Fill a new database with deterministic synthetic data.
    Demo {
        #[arg(long, default_value_t = 10_000)]
        specimens: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Check the hash chain and the projection. Without --full: the events after the last
    /// verified point, and that point's chain heads unchanged (the first time, as --full).
    Verify {
        /// Read the whole log again and compare the projection with a rebuild from it.
        #[arg(long)]
        full: bool,
    },
    /// A consistent copy of this database into DIR while Kura runs, checked with verify, named
    /// by time and workstation, with the registry token beside it. Put DIR on another disk.
    Backup {
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// Keep this workstation's newest N backups in DIR and remove older ones.
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
    },
    /// Restore a backup as the database (--db, or the default): a new file only, never over a
    /// database; a backup that fails verify is refused.
    Restore { file: PathBuf },
    /// Recompute the projection from the log.
    Rebuild,
    /// Counts.
    Stats,
    /// The site's time zone, in which due dates and "today" are dates: shows it, or sets it.
    TimeZone {
        /// An IANA name such as Asia/Tokyo.
        name: Option<String>,
        /// Follow this computer's zone again.
        #[arg(long, conflicts_with = "name")]
        system: bool,
    },
    /// Benchmarks on a large demo database, beside raw SQLite.
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        specimens: u64,
        #[arg(long, default_value = "target/bench")]
        dir: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        lookups: usize,
        #[arg(long, default_value_t = 2_000)]
        checkins: usize,
        #[arg(long, default_value_t = 10)]
        boxes: usize,
        /// Only the label benchmark: this many cryo-sheet labels to PDF, beside glabels-3-batch.
        #[arg(long)]
        labels: Option<usize>,
        /// Only the bulk benchmark: a CSV import of this many rows into a database of as many,
        /// an XLSX import beside calamine's read, a 96-tube rack file to the grid.
        #[arg(long)]
        bulk: Option<u64>,
    },
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<ExitCode, AppError> {
    let json = ctx.json;
    // Commands that need no database.
    match &cmd {
        Cmd::Bench {
            labels: Some(n),
            dir,
            ..
        } => {
            let exe = std::env::current_exe().map_err(|e| AppError::File {
                path: "kura".into(),
                message: e.to_string(),
            })?;
            let report = kura_app::bench::run_labels(dir, *n, &exe, &mut |s| eprintln!("{s}"))?;
            out(json, json!(report), || print::bench(&report));
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Bench {
            bulk: Some(n), dir, ..
        } => {
            let report = kura_app::bench::run_bulk(dir, *n, &mut |s| eprintln!("{s}"))?;
            out(json, json!(report), || print::bench(&report));
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Bench {
            specimens,
            dir,
            lookups,
            checkins,
            boxes,
            labels: None,
            bulk: None,
        } => {
            let opts = kura_app::bench::BenchOptions {
                dir: dir.clone(),
                specimens: *specimens,
                lookups: *lookups,
                checkins: *checkins,
                boxes: *boxes,
                kura_exe: std::env::current_exe().map_err(|e| kura_app::AppError::File {
                    path: "kura".into(),
                    message: e.to_string(),
                })?,
            };
            let report = kura_app::bench::run(&opts, &mut |s| eprintln!("{s}"))?;
            out(json, json!(report), || print::bench(&report));
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Restore { file } => {
            let db = ctx.db.clone().unwrap_or_else(kura_app::default_db_path);
            let r = Kura::restore(file, &db)?;
            out(json, json!(r), || {
                format!(
                    "restored {} as {}: {} events, {} specimens, verified{}",
                    file.display(),
                    r.path,
                    r.events,
                    r.specimens,
                    if r.token {
                        "; the registry token came with it"
                    } else {
                        ""
                    }
                ) + &if r.unenrolled {
                    "\nthis database issues Kura IDs from its own counter: IDs it issued after the backup was taken may be issued again; check the newest labels".to_string()
                } else {
                    format!(
                        "\n{} serials left in its leases burned (they may have been used after the backup); the next sync asks the registry for new ones\nsync before recording anything (kura sync): it brings back what this workstation recorded after the backup; until then nothing new is recorded here",
                        r.burned
                    )
                }
            });
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    // Only these make a database; any other command on a missing file says so.
    let mut k = ctx.open(matches!(cmd, Cmd::Init { .. } | Cmd::Demo { .. }))?;
    match cmd {
        Cmd::Init {
            prefix,
            serial_width,
            admin,
            name,
            password_stdin,
        } => {
            // Everything asked before anything is written.
            let admin = match admin {
                Some(user) => {
                    let name = name.ok_or_else(|| {
                        AppError::input(
                            "name",
                            "the first administrator needs a printed name: give --name \"…\"",
                        )
                    })?;
                    let pw = new_secret("password", password_stdin)?;
                    Some((user, name, pw))
                }
                None => None,
            };
            let f = k.init(&prefix, serial_width)?;
            let example = f.issue(chrono::Datelike::year(&k.today()), 1)?;
            let admin = match admin {
                Some((user, name, pw)) => {
                    k.add_first_administrator(&user, &name, &pw)?;
                    let db = path_of(&k);
                    save_session(&mut k, &db)?;
                    Some(user.to_ascii_lowercase())
                }
                None => None,
            };
            let secured = k.secured()?;
            out(
                json,
                json!({ "db": k.path(), "prefix": f.prefix, "serial_width": f.serial_width, "example": example.to_string(), "administrator": admin, "secured": secured }),
                || {
                    let mut t = format!(
                        "initialised {} — IDs look like {example}",
                        k.path().display()
                    );
                    match (&admin, secured) {
                        (Some(a), _) => t.push_str(&format!(
                            "\n{a} is its first administrator, and signed in; every act on this database now needs a signed-in user"
                        )),
                        (None, false) => t.push_str(
                            "\nno users yet: whoever uses this computer acts on it, unsigned. Create its administrator: kura user add ID --name \"NAME\" --role administrator",
                        ),
                        (None, true) => {}
                    }
                    t
                },
            );
        }
        Cmd::Demo { specimens, seed } => {
            let r = k.demo(specimens, seed, &mut progress("demo"))?;
            out(json, json!(r), || {
                format!(
                    "{} specimens, {} containers, {} events in {:.1} s ({:.0} specimens/s) → {}",
                    r.specimens,
                    r.containers,
                    r.events,
                    r.seconds,
                    r.specimens_per_second,
                    k.path().display()
                )
            });
        }
        Cmd::TimeZone { name, system } => {
            if name.is_some() || system {
                k.set_time_zone(name.as_deref())?;
            }
            let i = k.session_info()?;
            out(
                json,
                json!({ "time_zone": i.time_zone, "chosen": i.time_zone_set, "today": i.today }),
                || {
                    format!(
                        "{} ({}); today at the site is {}",
                        i.time_zone,
                        if i.time_zone_set {
                            "set for this database"
                        } else {
                            "this computer's"
                        },
                        i.today
                    )
                },
            );
        }
        Cmd::Verify { full } => {
            // SQLite's own check reads every page: with --full only, beside the verify.
            let (r, integrity) = k.verify_with_integrity(full, &mut progress("verify"))?;
            let integrity = integrity.unwrap_or_else(|| "not run (kura verify --full)".into());
            let ok = r.ok() && (!r.full || integrity == "ok");
            out(
                json,
                json!({ "ok": ok, "integrity": integrity, "report": r }),
                || print::verify(&r, &integrity),
            );
            if !ok {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::Backup { to, keep } => {
            let r = k.backup(&to, keep)?;
            k.remember_backup(&r)?;
            if r.same_disk {
                tracing::warn!(
                    "{} is on the same disk as the database: this backup will not survive that disk; back up to another disk",
                    to.display()
                );
            }
            out(json, json!(r), || {
                let mut s = format!(
                    "backup {}: {} events, {} specimens, verified{}",
                    r.path,
                    r.events,
                    r.specimens,
                    if r.token {
                        "; with the registry token"
                    } else {
                        ""
                    }
                );
                for old in &r.removed {
                    s.push_str(&format!("\nremoved the older backup {old}"));
                }
                s
            });
        }
        Cmd::Rebuild => {
            let r = k.rebuild(&mut progress("rebuild"))?;
            out(json, json!(r), || {
                format!(
                    "rebuilt from {} events: {} specimens, {} containers",
                    r.events, r.specimens, r.containers
                )
            });
        }
        Cmd::Stats => {
            let s = k.stats()?;
            out(json, json!(s), || print::stats(&s, k.path()));
        }
        _ => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}
