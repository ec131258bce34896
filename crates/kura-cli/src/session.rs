//! What every command shares: the database it opens and the session it signs in with, secrets
//! read from a terminal or standard input, and signatures for signed acts.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use kura_app::{AppError, Kura};
use serde_json::json;

use crate::output::out;

/// The global options a command runs with.
pub(crate) struct Ctx {
    pub db: Option<PathBuf>,
    pub actor: Option<String>,
    pub json: bool,
}

impl Ctx {
    /// Opens the database the command works on, signed in as the session saved beside it.
    /// `create`: the command may make a new database (init, demo, enroll, recover); any other
    /// says a missing file is missing, and creates nothing.
    pub(crate) fn open(&self, create: bool) -> Result<Kura, AppError> {
        let path = self.db.clone().unwrap_or_else(kura_app::default_db_path);
        // `--actor` (or KURA_USER, through clap), then USER: kura-app picks, as for the window.
        // On a database with users, the signed-in user acts instead (the session file).
        let user = std::env::var("USER").ok();
        let actor = kura_app::input::actor([self.actor.as_deref(), user.as_deref()])?;
        let mut k = if create {
            Kura::open(&path, &actor)?
        } else {
            Kura::open_existing(&path, &actor)?
        };
        if k.secured()? {
            let file = kura_app::users::session_file(&path);
            if let Ok(token) = std::fs::read_to_string(&file) {
                match k.resume_token(&token) {
                    // This command is activity: the session lives on from now.
                    Ok(()) => save_session(&mut k, &path)?,
                    Err(e) => {
                        tracing::info!(code = e.code(), "the saved session is over");
                        let _ = std::fs::remove_file(&file);
                    }
                }
            }
        }
        Ok(k)
    }
}

/// How a signed act (storage layout, conflict settlement, user administration, audit export) is
/// signed on a database with users; elsewhere nothing is asked.
#[derive(Args, Clone)]
pub(crate) struct SignArgs {
    /// What your signature means: performed, reviewed or approved (default: performed for a
    /// disposal, approved for the rest).
    #[arg(long)]
    pub meaning: Option<String>,
    /// Your user ID, needed at the first signature of a session (asked at a terminal).
    #[arg(long)]
    pub signer: Option<String>,
    /// Read your signing password from standard input (the line after any other secret the
    /// command reads there).
    #[arg(long)]
    pub sign_stdin: bool,
}

/// Keeps the session for the next command, owner-only.
pub(crate) fn save_session(k: &mut Kura, db: &std::path::Path) -> Result<(), AppError> {
    let file = kura_app::users::session_file(db);
    let Some(token) = k.session_token()? else {
        let _ = std::fs::remove_file(&file);
        return Ok(());
    };
    let err = |e: std::io::Error| AppError::File {
        path: file.display().to_string(),
        message: e.to_string(),
    };
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(&file).map_err(err)?;
    #[cfg(unix)]
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(err)?;
    std::io::Write::write_all(&mut f, token.as_bytes()).map_err(err)
}

/// A password or PIN: from the first line of standard input, or typed at the terminal unseen.
pub(crate) fn secret(what: &str, from_stdin: bool) -> Result<String, AppError> {
    secret_from(what, &format!("{what}-stdin"), from_stdin)
}

/// A new password or PIN: typed twice at a terminal (a typing slip would lock its owner out),
/// or the first line of standard input.
pub(crate) fn new_secret(what: &str, from_stdin: bool) -> Result<String, AppError> {
    let first = secret(what, from_stdin)?;
    if !from_stdin {
        let again = rpassword::prompt_password(format!("{what} again: "))
            .map_err(|e| AppError::input(what, e.to_string()))?;
        if again != first {
            return Err(AppError::input(
                what,
                format!("the two {what}s typed differ: nothing was changed; run the command again"),
            ));
        }
    }
    Ok(first)
}

/// The same, where the flag that reads it from standard input is `--{flag}`.
pub(crate) fn secret_from(what: &str, flag: &str, from_stdin: bool) -> Result<String, AppError> {
    secret_prompt(what, what, flag, from_stdin)
}

/// A secret from standard input (`--{flag}`), or typed at the terminal after `prompt`.
pub(crate) fn secret_prompt(
    what: &str,
    prompt: &str,
    flag: &str,
    from_stdin: bool,
) -> Result<String, AppError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| AppError::input(what, e.to_string()))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    if !std::io::stdin().is_terminal() {
        return Err(AppError::input(
            what,
            format!("no terminal to type the {what} at: give --{flag} and pipe it in"),
        ));
    }
    rpassword::prompt_password(format!("{prompt}: "))
        .map_err(|e| AppError::input(what, e.to_string()))
}

/// The signature a signed act needs on a database with users (None elsewhere): whether this
/// person may do `act` at all (asked before any password), what the signature means (`--meaning`,
/// else `default_meaning`), the signer's user ID at the first signature of a session (`--signer`,
/// or asked at a terminal) and their password (`--sign-stdin`, or asked at a terminal with a
/// prompt that says whose and what for).
pub(crate) fn sign_for_meaning(
    k: &mut Kura,
    act: kura_app::users::Act,
    a: &SignArgs,
    default_meaning: &str,
) -> Result<Option<kura_app::Signing>, AppError> {
    if !k.secured()? {
        return Ok(None);
    }
    k.authorize(act)?;
    let meaning = kura_app::users::meaning(a.meaning.as_deref().unwrap_or(default_meaning))?;
    let who = k.who()?;
    let mut user = a.signer.clone();
    let needs_id = user.is_none() && !who.signed_once;
    if !a.sign_stdin && !std::io::stdin().is_terminal() {
        return Err(AppError::input(
            "sign-stdin",
            format!(
                "{} is signed and there is no terminal to ask at: give --sign-stdin and pipe the signer's password in{}",
                act.as_str(),
                if needs_id {
                    ", with --signer ID (the first signature of a session names its signer)"
                } else {
                    ""
                }
            ),
        ));
    }
    if needs_id {
        // The first signature of a session names the signer, who then gives their password.
        if a.sign_stdin {
            return Err(AppError::SignatureNeedsId);
        }
        eprint!(
            "your user ID, to sign {} (first signature of this session): ",
            act.as_str()
        );
        std::io::stderr().flush().ok();
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| AppError::input("signer", e.to_string()))?;
        user = Some(line.trim().to_string());
    }
    let whose = user.clone().or(who.user).unwrap_or_default();
    let secret = secret_prompt(
        "password",
        &format!(
            "password of {whose}, signing {} ({})",
            act.as_str(),
            meaning.as_str()
        ),
        "sign-stdin",
        a.sign_stdin,
    )?;
    Ok(Some(kura_app::Signing {
        user,
        secret,
        meaning,
    }))
}

/// Runs a signed act with the signature `a` gives, and keeps the session (a first signature
/// changes what the next one asks).
pub(crate) fn signed<T>(
    k: &mut Kura,
    act: kura_app::users::Act,
    a: &SignArgs,
    f: impl FnOnce(&mut Kura) -> Result<T, AppError>,
) -> Result<T, AppError> {
    signed_meaning(k, act, a, "approved", f)
}

/// The same, for an act whose signature means `default_meaning` unless --meaning says otherwise.
pub(crate) fn signed_meaning<T>(
    k: &mut Kura,
    act: kura_app::users::Act,
    a: &SignArgs,
    default_meaning: &str,
    f: impl FnOnce(&mut Kura) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let s = sign_for_meaning(k, act, a, default_meaning)?;
    let r = k.with_signature(act, s.as_ref(), f)?;
    if s.is_some() {
        let db = path_of(k);
        save_session(k, &db)?;
    }
    Ok(r)
}

/// A donor withdrew consent: their specimens and everything derived from them blocked and
/// queued for destruction, signed on a database with users.
pub(crate) fn withdraw_consent(
    k: &mut Kura,
    donor: &str,
    reason: &str,
    sign: &SignArgs,
    json: bool,
) -> Result<(), AppError> {
    let w = signed(k, kura_app::users::Act::Block, sign, |k| {
        k.withdraw_consent(donor, reason)
    })?;
    out(json, json!(w), || {
        format!(
            "consent of {} withdrawn: {} specimen(s) blocked and queued for destruction{}",
            w.donor,
            w.blocked.len(),
            w.signature
                .as_ref()
                .map(|s| format!("; signed by {} ({}) — {}", s.name, s.signer, s.meaning))
                .unwrap_or_default()
        )
    });
    Ok(())
}

/// Sets a password or PIN: one's own needs no signature; another user's is user
/// administration, signed.
pub(crate) fn set_secret(
    k: &mut Kura,
    who: &str,
    secret: kura_app::Secret,
    value: &str,
    a: &SignArgs,
) -> Result<(), AppError> {
    if !k.secret_needs_signature(who)? {
        return k.set_secret(who, secret, value);
    }
    signed(k, kura_app::users::Act::ManageUsers, a, |k| {
        k.set_secret(who, secret, value)
    })
}

pub(crate) fn path_of(k: &Kura) -> std::path::PathBuf {
    k.path().to_path_buf()
}

/// Scans typed (or piped) one per line on standard input, up to its end or a line `done`.
pub(crate) fn stdin_scans() -> Result<Vec<String>, AppError> {
    let mut scans = Vec::new();
    for line in std::io::stdin().lines() {
        let line = line.map_err(|e| AppError::File {
            path: "stdin".into(),
            message: e.to_string(),
        })?;
        let line = line.trim();
        if line.eq_ignore_ascii_case("done") {
            break;
        }
        if !line.is_empty() {
            scans.push(line.to_string());
        }
    }
    Ok(scans)
}
