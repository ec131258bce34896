//! People: signing in, users and roles, and donors' consent.

use std::process::ExitCode;

use clap::Subcommand;
use kura_app::AppError;
use serde_json::json;

use crate::output::out;
use crate::session::{
    Ctx, SignArgs, new_secret, path_of, save_session, secret, set_secret, signed, withdraw_consent,
};

#[derive(Subcommand)]
pub enum Cmd {
    /// Sign in (a database with users records who acts): user ID and password, or --badge and
    /// its PIN. The session lasts until 5 minutes without a command, or `kura logout`.
    Login {
        user: Option<String>,
        #[arg(long, conflicts_with = "user")]
        badge: Option<String>,
        /// Read the password (or PIN) from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// End this session.
    Logout,
    /// Who is signed in.
    Whoami,
    /// Users and roles (technician, supervisor, administrator, auditor).
    #[command(subcommand)]
    User(UserCmd),
    /// Consent: a donor's withdrawal (blocks their specimens and everything derived from them),
    /// and the destruction queue.
    #[command(subcommand)]
    Consent(ConsentCmd),
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user (an administrator's act); on a new database, the first administrator.
    Add {
        user: String,
        /// The printed name signatures show.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "technician")]
        role: String,
        /// Their badge code (USR-…), for sign-in by badge and PIN.
        #[arg(long)]
        badge: Option<String>,
        /// Read the first password from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        sign: SignArgs,
    },
    List,
    /// Give a user another role.
    Grant {
        user: String,
        role: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Stop a user from acting and signing (what they did stays theirs).
    Disable {
        user: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Set a password (your own, or as an administrator anyone's).
    Passwd {
        user: Option<String>,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// How long a session may stay idle before the window locks and `kura login` is needed
    /// again (an administrator's setting for this database; default 300 seconds).
    Idle {
        seconds: u64,
    },
    /// Set a badge PIN (your own, or as an administrator anyone's).
    Pin {
        user: Option<String>,
        /// Read the new PIN from standard input (as every command reads the secret it sets or
        /// signs in with).
        #[arg(long, alias = "pin-stdin")]
        password_stdin: bool,
        #[command(flatten)]
        sign: SignArgs,
    },
}

#[derive(Subcommand)]
pub enum ConsentCmd {
    /// The donor withdrew consent: block every specimen of theirs and derived from them, and
    /// queue them for destruction (signed on a database with users).
    Withdraw {
        donor: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Specimens waiting to be destroyed after a consent withdrawal.
    Queue,
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<ExitCode, AppError> {
    let json = ctx.json;
    let mut k = ctx.open(false)?;
    match cmd {
        Cmd::Login {
            user,
            badge,
            password_stdin,
        } => {
            if !k.secured()? {
                return Err(AppError::input(
                    "user",
                    "this database has no users yet: add the first administrator with `kura user add ID --name NAME --role administrator`",
                ));
            }
            let s = match (user, badge) {
                (_, Some(b)) => {
                    let pin = secret("pin", password_stdin)?;
                    k.sign_in_badge(&b, &pin)?
                }
                (Some(u), None) => {
                    let pw = secret("password", password_stdin)?;
                    k.sign_in(&u, &pw)?
                }
                (None, None) => {
                    return Err(AppError::input(
                        "user",
                        "give your user ID, or --badge USR-…",
                    ));
                }
            };
            let db = path_of(&k);
            save_session(&mut k, &db)?;
            out(
                json,
                json!({ "user": s.user, "name": s.name, "idle_secs": s.idle_secs }),
                || {
                    format!(
                        "signed in as {} ({}); the session ends after {} minutes without a command",
                        s.user,
                        s.name,
                        s.idle_secs / 60
                    )
                },
            );
        }
        Cmd::Logout => {
            k.sign_out();
            let _ = std::fs::remove_file(kura_app::users::session_file(&path_of(&k)));
            out(json, json!({ "signed_out": true }), || "signed out".into());
        }
        Cmd::Whoami => {
            let s = k.session().cloned();
            let role = match &s {
                Some(s) => Some(k.user_view(&s.user)?.role),
                None => None,
            };
            out(
                json,
                json!({ "user": s.as_ref().map(|s| &s.user), "name": s.as_ref().map(|s| &s.name), "role": role }),
                || match &s {
                    Some(s) => format!(
                        "{} ({}), {}",
                        s.user,
                        s.name,
                        role.clone().unwrap_or_default()
                    ),
                    None => "nobody is signed in".into(),
                },
            );
        }
        Cmd::User(UserCmd::Add {
            user,
            name,
            role,
            badge,
            password_stdin,
            sign,
        }) => {
            let role = kura_app::users::role(&role)?;
            let first = !k.secured()?;
            if first && role != kura_app::Role::Administrator {
                return Err(AppError::input(
                    "role",
                    "this database has no users yet: the first one is its administrator (--role administrator)",
                ));
            }
            let pw = new_secret("password", password_stdin)?;
            let v = if first {
                k.add_first_administrator(&user, &name, &pw)?;
                let db = path_of(&k);
                save_session(&mut k, &db)?;
                k.user_view(&user.to_ascii_lowercase())?
            } else {
                signed(&mut k, kura_app::users::Act::ManageUsers, &sign, |k| {
                    k.add_user(&user, &name, role, badge.as_deref(), &pw)
                })?
            };
            out(json, json!(v), || {
                if first {
                    format!(
                        "{} added as the first administrator, and signed in; every act on this database now needs a signed-in user",
                        v.user
                    )
                } else {
                    format!("{} added ({})", v.user, v.role)
                }
            });
        }
        Cmd::User(UserCmd::List) => {
            let list = k.users()?;
            out(json, json!(list), || {
                list.iter()
                    .map(|u| {
                        format!(
                            "{:<16} {:<14} {:<24} {}{}",
                            u.user,
                            u.role,
                            u.name,
                            u.badge.clone().unwrap_or_default(),
                            if u.disabled { "  (disabled)" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Cmd::User(UserCmd::Grant { user, role, sign }) => {
            let role = kura_app::users::role(&role)?;
            let v = signed(&mut k, kura_app::users::Act::ManageUsers, &sign, |k| {
                k.grant_role(&user, role)
            })?;
            out(json, json!(v), || format!("{} is now {}", v.user, v.role));
        }
        Cmd::User(UserCmd::Disable { user, reason, sign }) => {
            let v = signed(&mut k, kura_app::users::Act::ManageUsers, &sign, |k| {
                k.disable_user(&user, &reason)
            })?;
            out(json, json!(v), || format!("{} is disabled", v.user));
        }
        Cmd::User(UserCmd::Passwd {
            user,
            password_stdin,
            sign,
        }) => {
            let who = user
                .or_else(|| k.session().map(|s| s.user.clone()))
                .ok_or(AppError::SignInRequired)?;
            let pw = new_secret("password", password_stdin)?;
            set_secret(&mut k, &who, kura_app::Secret::Password, &pw, &sign)?;
            out(json, json!({ "user": who, "set": "password" }), || {
                format!("password of {who} set")
            });
        }
        Cmd::Consent(ConsentCmd::Withdraw {
            donor,
            reason,
            sign,
        }) => {
            withdraw_consent(&mut k, &donor, &reason, &sign, json)?;
        }
        Cmd::Consent(ConsentCmd::Queue) => {
            let q = k.destruction_queue()?;
            out(json, json!(q), || {
                q.iter()
                    .map(|x| format!("{:<18} {:<12} {}", x.code, x.donor, x.reason))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Cmd::User(UserCmd::Idle { seconds }) => {
            let s = k.set_idle_lock(seconds)?;
            out(json, json!({ "idle_secs": s }), || {
                format!("sessions end after {s} s without activity")
            });
        }
        Cmd::User(UserCmd::Pin {
            user,
            password_stdin,
            sign,
        }) => {
            let who = user
                .or_else(|| k.session().map(|s| s.user.clone()))
                .ok_or(AppError::SignInRequired)?;
            let pin = new_secret("pin", password_stdin)?;
            set_secret(&mut k, &who, kura_app::Secret::Pin, &pin, &sign)?;
            out(json, json!({ "user": who, "set": "pin" }), || {
                format!("PIN of {who} set")
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
