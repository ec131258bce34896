//! People: users and roles, sign-in, sessions, and who may do what.
//!
//! **Where authorisation is decided**: in [`allowed`] — a table of act × role, in
//! `kura_domain::authz` so that the registry judges by the same table — and nowhere else. Every event a use case emits passes [`check`] inside its transaction
//! (`Emit::emit`), and the writes that are not events (printers, the time zone, enrollment) ask
//! [`Kura::authorize`] first; the CLI and the window only pass on what they were told. Events
//! pulled from the registry were authorised where they were made and are not judged again.
//!
//! A database becomes secured when its first user (an administrator, created with a password
//! and never a default one) is added: from then on every act needs a signed-in user, and the
//! actor of every event is that user. A database that never had a user keeps working as before,
//! acting as whoever the face names.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use kura_domain::{EventBody, Role, Secret, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{AppError, Kura};

pub use kura_domain::authz::{Act, act_of, allowed, is_signed, role_needed, signed_act_of};

/// A signer re-authenticated for one write, with the signing key their password derived
/// (None for a user whose password was set before signing keys: their signatures carry none).
#[derive(Debug, Clone)]
pub(crate) struct Signer {
    pub user: String,
    pub name: String,
    pub meaning: kura_domain::Meaning,
    pub key: Option<std::sync::Arc<kura_domain::sign::SigningKey>>,
}

/// What a signer gives to sign: their user ID (at the first signing of a session), their
/// password again, and what the signature means.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Deserialize)]
pub struct Signing {
    pub user: Option<String>,
    pub secret: String,
    #[cfg_attr(feature = "ts", ts(type = "'performed' | 'reviewed' | 'approved'"))]
    pub meaning: kura_domain::Meaning,
}

/// Never prints the secret (a `{:?}` in a log line must not carry a password).
impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing")
            .field("user", &self.user)
            .field("secret", &"<hidden>")
            .field("meaning", &self.meaning)
            .finish()
    }
}

/// A signature as it is shown wherever its event is shown.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SignatureView {
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub event: uuid::Uuid,
    pub event_hash: String,
    pub signer: String,
    pub name: String,
    pub meaning: String,
    /// UTC microseconds.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub at: i64,
}

/// Who is signed in, as the table sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub user: String,
    pub role: Role,
}

/// Refuses an event its author's role does not allow.
pub(crate) fn check(auth: &Auth, body: &EventBody) -> Result<(), AppError> {
    match act_of(body, &auth.user) {
        Some(act) if !allowed(act, auth.role) => Err(AppError::Forbidden {
            act,
            role: auth.role,
            needed: role_needed(act),
        }),
        _ => Ok(()),
    }
}

/// A signed-in person. Sessions end after `idle` without activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    pub name: String,
    pub signed_in: Timestamp,
    pub last_active: Timestamp,
    /// Idle time after which the session ends, in seconds.
    pub idle_secs: u64,
    /// Whether both components (ID and secret) were given at a signing of this session: after
    /// the first signature, only the secret is asked (21 CFR 11.200).
    #[serde(default)]
    pub signed_once: bool,
}

impl Session {
    pub fn expired(&self, now: Timestamp) -> bool {
        now.0.saturating_sub(self.last_active.0) > (self.idle_secs as i64) * 1_000_000
    }
}

/// The default idle time before the window locks and a CLI session ends.
pub const DEFAULT_IDLE_SECS: u64 = 5 * 60;

/// Where the site's idle time is kept (`meta`).
pub(crate) const IDLE_KEY: &str = "idle_secs";

/// Who the window is acting for: whether this database records who acts, who is signed in,
/// and how long the window waits idle before it locks.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Who {
    pub secured: bool,
    pub user: Option<String>,
    pub name: Option<String>,
    pub role: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub idle_secs: u64,
    /// Whether this session has signed once (then a signature asks only the password).
    pub signed_once: bool,
}

/// A user as the screens and `kura user list` show them (never their hashes).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserView {
    pub user: String,
    pub name: String,
    pub role: String,
    pub badge: Option<String>,
    pub disabled: bool,
    pub has_password: bool,
    pub has_pin: bool,
}

fn argon2() -> Argon2<'static> {
    // OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A role as a person typed or picked it (either face): the error names the four.
pub fn role(text: &str) -> Result<Role, AppError> {
    Role::parse(text).ok_or_else(|| {
        AppError::input(
            "role",
            format!("{text:?} is not a role: technician, supervisor, administrator or auditor"),
        )
    })
}

/// What a signature means, as a person typed or picked it.
pub fn meaning(text: &str) -> Result<kura_domain::Meaning, AppError> {
    kura_domain::Meaning::parse(text).ok_or_else(|| {
        AppError::input(
            "meaning",
            "a signature means performed, reviewed or approved",
        )
    })
}

/// An Argon2id PHC string for `secret`, with a fresh salt.
pub fn hash_secret(secret: &str) -> Result<String, AppError> {
    let mut salt = [0u8; 16];
    getrandom_fill(&mut salt);
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| AppError::input("secret", e.to_string()))?;
    Ok(argon2()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| AppError::input("secret", e.to_string()))?
        .to_string())
}

fn keyed(key: &str, body: &str) -> String {
    use sha2::{Digest, Sha256};
    let inner = Sha256::new()
        .chain_update(key.as_bytes())
        .chain_update(b"|")
        .chain_update(body.as_bytes())
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(key.as_bytes())
            .chain_update(inner)
            .finalize(),
    )
}

/// Where the CLI keeps its session for the database at `db`: beside it, owner-only.
pub fn session_file(db: &std::path::Path) -> std::path::PathBuf {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kura.sqlite3".into());
    db.with_file_name(format!(".{name}.session"))
}

pub(crate) fn getrandom_fill(buf: &mut [u8]) {
    // UUIDv4 draws from the OS's random source (getrandom); 16 bytes at a time.
    for chunk in buf.chunks_mut(16) {
        let r = uuid::Uuid::new_v4();
        chunk.copy_from_slice(&r.as_bytes()[..chunk.len()]);
    }
}

/// The signing key `password` derives with `salt`: Argon2id (the credential's parameters) into
/// a 32-byte Ed25519 seed. Only the person who knows the password can make it; the public half
/// is published, the seed never leaves this process.
pub fn signing_key(password: &str, salt: &[u8]) -> Result<kura_domain::sign::SigningKey, AppError> {
    let mut seed = [0u8; 32];
    argon2()
        .hash_password_into(password.as_bytes(), salt, &mut seed)
        .map_err(|e| AppError::input("secret", e.to_string()))?;
    kura_domain::sign::SigningKey::from_seed(&seed)
        .ok_or_else(|| AppError::input("secret", "the signing key could not be made"))
}

/// A new signing key for `password` (a fresh salt): what its `credential_set` publishes.
pub fn new_public_key(password: &str) -> Result<kura_domain::sign::PublicKey, AppError> {
    let mut salt = [0u8; 16];
    getrandom_fill(&mut salt);
    Ok(kura_domain::sign::PublicKey {
        ed25519: signing_key(password, &salt)?.public_hex(),
        salt: hex::encode(salt),
    })
}

/// Whether `secret` matches `hash` (a malformed hash matches nothing).
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| argon2().verify_password(secret.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A password: 8 to 128 characters. A PIN: 4 to 8 digits.
fn check_secret(secret: Secret, s: &str) -> Result<(), AppError> {
    let ok = match secret {
        Secret::Password => (8..=128).contains(&s.chars().count()),
        Secret::Pin => (4..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()),
    };
    if ok {
        Ok(())
    } else {
        Err(AppError::input(
            secret.as_str(),
            match secret {
                Secret::Password => "a password has 8 to 128 characters",
                Secret::Pin => "a PIN has 4 to 8 digits",
            },
        ))
    }
}

/// The one answer to a failed sign-in, whatever failed (no hint which users exist).
fn sign_in_failed() -> AppError {
    AppError::SignIn
}

/// Wrong secrets allowed in a row before sign-in slows down.
pub const FREE_ATTEMPTS: u64 = 5;

/// How long a user ID or badge must wait after `failures` wrong secrets in a row: nothing for
/// the first [`FREE_ATTEMPTS`], then 30 s doubling each time, at most 15 minutes. A 4–6 digit
/// PIN cannot be tried through Kura faster than this.
pub fn throttle_secs(failures: u64) -> u64 {
    if failures < FREE_ATTEMPTS {
        return 0;
    }
    let doublings = (failures - FREE_ATTEMPTS).min(10) as u32;
    (30u64 << doublings).min(15 * 60)
}

impl Kura {
    /// Whether this database has users (and so needs a signed-in user for every act). Once
    /// it has, it always will (users are disabled, never removed): that answer is kept.
    pub fn secured(&self) -> Result<bool, AppError> {
        use std::sync::atomic::Ordering;
        if self.secured_seen.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let yes = self.store().has_users()?;
        if yes {
            self.secured_seen.store(true, Ordering::Relaxed);
        }
        Ok(yes)
    }

    /// Refuses to show records on a database with users to nobody: a live session of a user
    /// who is not disabled may read (every role may; the auditor only reads).
    ///
    /// A database found without users is taken to have none for the next 250 ms of reads (a
    /// scan lookup is a few microseconds; asking SQLite each time cost a fifth of it). Writes
    /// always ask.
    pub(crate) fn may_read(&self) -> Result<(), AppError> {
        const FRESH: std::time::Duration = std::time::Duration::from_millis(250);
        let recent = !self.secured_seen.load(std::sync::atomic::Ordering::Relaxed)
            && self
                .open_checked
                .lock()
                .ok()
                .and_then(|t| *t)
                .is_some_and(|t| t.elapsed() < FRESH);
        if recent {
            return Ok(());
        }
        if !self.secured()? {
            if let Ok(mut t) = self.open_checked.lock() {
                *t = Some(std::time::Instant::now());
            }
            return Ok(());
        }
        let s = self.session.as_ref().ok_or(AppError::SignInRequired)?;
        if s.expired(self.now()) {
            return Err(AppError::SessionExpired);
        }
        match self.store().user(&s.user)? {
            Some(r) if !r.disabled => Ok(()),
            _ => Err(AppError::UserDisabled {
                user: s.user.clone(),
            }),
        }
    }

    /// Who is signed in, if anyone.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The signed-in user and their role now (read fresh: a role granted or a user disabled on
    /// another bench takes effect with the next act). None: the database is not secured.
    pub(crate) fn auth(&mut self) -> Result<Option<Auth>, AppError> {
        if !self.secured()? {
            return Ok(None);
        }
        self.reload_idle()?;
        let now = self.now();
        let Some(s) = self.session.clone() else {
            return Err(AppError::SignInRequired);
        };
        if s.expired(now) {
            self.session = None;
            return Err(AppError::SessionExpired);
        }
        let row = self.store().user(&s.user)?;
        let Some(row) = row.filter(|r| !r.disabled) else {
            self.session = None;
            return Err(AppError::UserDisabled { user: s.user });
        };
        let role = Role::parse(&row.role).unwrap_or(Role::Auditor);
        if let Some(s) = self.session.as_mut() {
            s.last_active = now;
        }
        Ok(Some(Auth {
            user: row.code,
            role,
        }))
    }

    /// Refuses `act` unless the signed-in user's role allows it (anything goes on a database
    /// that has no users yet).
    pub fn authorize(&mut self, act: Act) -> Result<(), AppError> {
        match self.auth()? {
            Some(a) if !allowed(act, a.role) => Err(AppError::Forbidden {
                act,
                role: a.role,
                needed: role_needed(act),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses at once while `who` (a user ID or a badge) must still wait after wrong secrets.
    fn throttled(&self, who: &str) -> Result<(), AppError> {
        let Some((failures, last)) = self.failures(who)? else {
            return Ok(());
        };
        let wait = throttle_secs(failures) as i64 * 1_000_000;
        let left = last + wait - self.now().0;
        if left > 0 {
            return Err(AppError::SignInThrottled {
                who: who.to_string(),
                seconds: (left as u64).div_ceil(1_000_000),
            });
        }
        Ok(())
    }

    fn failures(&self, who: &str) -> Result<Option<(u64, i64)>, AppError> {
        Ok(self
            .store()
            .meta(&format!("sign_in_failures:{who}"))?
            .and_then(|v| {
                let (n, at) = v.split_once(':')?;
                Some((n.parse().ok()?, at.parse().ok()?))
            }))
    }

    /// Counts a wrong secret for `who` (`ok`: resets the count). Kept in this database only.
    fn attempt(&mut self, who: &str, ok: bool) -> Result<(), AppError> {
        let key = format!("sign_in_failures:{who}");
        if ok {
            if self.failures(who)?.is_some() {
                self.store_mut()
                    .write(|tx| -> Result<(), AppError> { Ok(tx.set_meta(&key, "0:0")?) })?;
            }
            return Ok(());
        }
        let n = self.failures(who)?.map_or(0, |f| f.0) + 1;
        let v = format!("{n}:{}", self.now().0);
        self.store_mut()
            .write(|tx| -> Result<(), AppError> { Ok(tx.set_meta(&key, &v)?) })?;
        if n >= FREE_ATTEMPTS {
            tracing::warn!(who, failures = n, "sign-in slowed down after wrong secrets");
        }
        Ok(())
    }

    /// Signs in with user ID and password.
    pub fn sign_in(&mut self, user: &str, password: &str) -> Result<Session, AppError> {
        let id = kura_domain::user::parse_user_id(user).map_err(|_| sign_in_failed())?;
        self.throttled(&id)?;
        let row = self.store().user(&id)?.ok_or_else(sign_in_failed)?;
        let ok = row
            .password
            .as_deref()
            .is_some_and(|h| verify_secret(password, h));
        self.attempt(&id, ok)?;
        if !ok {
            tracing::info!(user = %id, "sign-in refused");
            return Err(sign_in_failed());
        }
        if row.disabled {
            return Err(AppError::UserDisabled { user: id });
        }
        Ok(self.start_session(row.code, row.name))
    }

    /// Signs in with a badge scan and the PIN.
    pub fn sign_in_badge(&mut self, badge: &str, pin: &str) -> Result<Session, AppError> {
        let b = kura_domain::user::parse_badge(badge).map_err(|_| sign_in_failed())?;
        self.throttled(&b)?;
        let rows: Vec<_> = self
            .store()
            .users_with_badge(&b)?
            .into_iter()
            .filter(|r| !r.disabled)
            .collect();
        let [row] = rows.as_slice() else {
            self.attempt(&b, false)?;
            return Err(sign_in_failed());
        };
        let ok = row.pin.as_deref().is_some_and(|h| verify_secret(pin, h));
        let row = row.clone();
        self.attempt(&b, ok)?;
        if !ok {
            tracing::info!(badge = %b, "badge sign-in refused");
            return Err(sign_in_failed());
        }
        let (code, name) = (row.code.clone(), row.name.clone());
        Ok(self.start_session(code, name))
    }

    fn start_session(&mut self, user: String, name: String) -> Session {
        let now = self.now();
        let s = Session {
            user: user.clone(),
            name,
            signed_in: now,
            last_active: now,
            idle_secs: self.idle_secs,
            signed_once: false,
        };
        self.actor = user;
        self.session = Some(s.clone());
        s
    }

    /// Takes up a session kept elsewhere (the CLI's session file), if it is still alive and
    /// its user may still act.
    pub fn resume(&mut self, s: Session) -> Result<(), AppError> {
        if s.expired(self.now()) {
            return Err(AppError::SessionExpired);
        }
        self.actor = s.user.clone();
        self.session = Some(s);
        self.auth().map(|_| ())
    }

    /// The signer, re-authenticated (21 CFR 11.200): the signed-in user only; at the first
    /// signing of a session both components (user ID and password), afterwards the password.
    pub(crate) fn signer(&mut self, s: &Signing) -> Result<Signer, AppError> {
        self.auth()?.ok_or(AppError::SignatureNeedsUsers)?;
        let session = self.session.clone().ok_or(AppError::SignInRequired)?;
        if !session.signed_once {
            let given = s
                .user
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .ok_or(AppError::SignatureNeedsId)?;
            if !given.eq_ignore_ascii_case(&session.user) {
                return Err(AppError::SignIn);
            }
        }
        let row = self
            .store()
            .user(&session.user)?
            .ok_or(AppError::SignInRequired)?;
        if row.disabled {
            return Err(AppError::UserDisabled { user: row.code });
        }
        self.throttled(&row.code)?;
        let ok = row
            .password
            .as_deref()
            .is_some_and(|h| verify_secret(&s.secret, h));
        self.attempt(&row.code, ok)?;
        if !ok {
            tracing::info!(user = %row.code, "signature refused: wrong password");
            return Err(AppError::SignIn);
        }
        // The key the password derives must be the one published: only then can anyone check
        // what it signs.
        let key = match (&row.key_salt, &row.signing_key) {
            (Some(salt), Some(public)) => {
                let salt = hex::decode(salt)
                    .map_err(|_| AppError::input("secret", "the stored key salt is not hex"))?;
                let key = signing_key(&s.secret, &salt)?;
                if key.public_hex() != *public {
                    tracing::warn!(user = %row.code, "the password derives another key than the one published");
                    return Err(AppError::SignIn);
                }
                Some(std::sync::Arc::new(key))
            }
            _ => None,
        };
        if let Some(sess) = self.session.as_mut() {
            sess.signed_once = true;
        }
        Ok(Signer {
            user: row.code,
            name: row.name,
            meaning: s.meaning,
            key,
        })
    }

    /// Re-authenticates the signer (see [`Kura::signer`]) for the next write only: the signed
    /// acts it makes carry their signature. Without it, a signed act on a database with users
    /// is refused with `signature_required`; a failed write leaves nothing armed.
    fn arm_signature(&mut self, signing: &Signing) -> Result<(), AppError> {
        self.armed = Some(self.signer(signing)?);
        Ok(())
    }

    /// Runs `f`, the signed act `act`, with `signing` armed (on a database with users;
    /// elsewhere there is nobody to sign and it is not asked): the signed acts of its first
    /// write carry the signature. Whether this person may do `act` at all is asked first, before
    /// any password is checked. Nothing stays armed after `f`, whatever it did. The one way a
    /// signed act is given its signature: the act's own method takes none.
    pub fn with_signature<T>(
        &mut self,
        act: Act,
        signing: Option<&Signing>,
        f: impl FnOnce(&mut Kura) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        self.authorize(act)?;
        if let Some(s) = signing
            && self.secured()?
        {
            self.arm_signature(s)?;
        }
        let r = f(self);
        self.armed = None;
        r
    }

    /// Signs an event already recorded, e.g. a supervisor's review. `shown_hash` is the hash of
    /// the event as the signer was shown it: if it is not that event's hash now, nothing is signed.
    pub fn sign(
        &mut self,
        event: uuid::Uuid,
        shown_hash: &str,
        signing: &Signing,
    ) -> Result<SignatureView, AppError> {
        let have = self.store().event_hash(event)?.ok_or(AppError::NotFound {
            what: "event",
            code: event.to_string(),
        })?;
        if shown_hash.trim().parse() != Ok(have) {
            return Err(AppError::SignatureStale);
        }
        let signer = self.signer(signing)?;
        self.write(|e| e.sign(event, &signer))
    }

    /// The signatures on the event with this id (as the window has it, text).
    pub fn signatures_of(&self, event: &str) -> Result<Vec<SignatureView>, AppError> {
        let id = uuid::Uuid::parse_str(event.trim())
            .map_err(|e| AppError::input("event", format!("{event:?} is not an event id: {e}")))?;
        self.signatures(id)
    }

    /// The signatures on an event.
    pub fn signatures(&self, event: uuid::Uuid) -> Result<Vec<SignatureView>, AppError> {
        self.may_read()?;
        Ok(self
            .store()
            .signatures(event)?
            .into_iter()
            .map(|r| SignatureView {
                event: r.event,
                event_hash: r.event_hash,
                signer: r.signer,
                name: r.name,
                meaning: r.meaning,
                at: r.at,
            })
            .collect())
    }

    pub fn sign_out(&mut self) {
        self.session = None;
    }

    /// The session as a token for a face that keeps it between processes (the CLI's session
    /// file): its JSON and a keyed SHA-256 with this database's session key, so that the file
    /// cannot be edited into another person's session or carried to another database.
    pub fn session_token(&mut self) -> Result<Option<String>, AppError> {
        let Some(s) = self.session.clone() else {
            return Ok(None);
        };
        let key = self.session_key()?;
        let json =
            serde_json::to_string(&s).map_err(|e| AppError::input("session", e.to_string()))?;
        let body = hex::encode(json.as_bytes());
        Ok(Some(format!("{body}.{}", keyed(&key, &body))))
    }

    /// Takes up the session a token carries, if its seal is this database's and it is alive.
    pub fn resume_token(&mut self, token: &str) -> Result<(), AppError> {
        let key = self.session_key()?;
        let (body, mac) = token
            .trim()
            .split_once('.')
            .ok_or(AppError::SignInRequired)?;
        if keyed(&key, body) != mac {
            tracing::warn!("a session file that this database did not seal was ignored");
            return Err(AppError::SignInRequired);
        }
        let json = hex::decode(body).map_err(|_| AppError::SignInRequired)?;
        let s: Session = serde_json::from_slice(&json).map_err(|_| AppError::SignInRequired)?;
        self.resume(s)
    }

    /// This database's key for sealing session tokens (made at first use; local, never synced).
    fn session_key(&mut self) -> Result<String, AppError> {
        if let Some(k) = self.store().meta("session_key")? {
            return Ok(k);
        }
        let mut b = [0u8; 32];
        getrandom_fill(&mut b);
        let k = hex::encode(b);
        self.store_mut().write(|tx| -> Result<(), AppError> {
            if tx.meta("session_key")?.is_none() {
                tx.set_meta("session_key", &k)?;
            }
            Ok(())
        })?;
        Ok(self.store().meta("session_key")?.unwrap_or(k))
    }

    /// Sets how long a session may stay idle, in this process (tests): the site's setting is
    /// not read again.
    pub fn set_idle(&mut self, secs: u64) {
        self.idle_fixed = true;
        self.idle_secs = secs;
        if let Some(s) = self.session.as_mut() {
            s.idle_secs = secs;
        }
    }

    /// The site's idle time before a session ends and the window locks (an administrator's
    /// setting, kept in this database; default 5 minutes).
    pub fn set_idle_lock(&mut self, secs: u64) -> Result<u64, AppError> {
        self.authorize(Act::Settings)?;
        if !(10..=8 * 3600).contains(&secs) {
            return Err(AppError::input(
                "idle",
                "the idle time before the window locks is 10 seconds to 8 hours",
            ));
        }
        self.write(|e| Ok(e.tx.set_meta(IDLE_KEY, &secs.to_string())?))?;
        self.reload_idle()?;
        Ok(secs)
    }

    /// The site's idle time, read again (an administrator may have changed it elsewhere).
    fn reload_idle(&mut self) -> Result<(), AppError> {
        if !self.idle_fixed {
            let secs = self
                .store()
                .meta(IDLE_KEY)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_IDLE_SECS);
            self.idle_secs = secs;
            if let Some(s) = self.session.as_mut() {
                s.idle_secs = secs;
            }
        }
        Ok(())
    }

    /// Who is signed in, as the window shows it (ending a session that has been idle too long).
    pub fn who(&mut self) -> Result<Who, AppError> {
        self.who_active(false)
    }

    /// The same, told by the window whether the person was active (keys, clicks) since it last
    /// asked: activity keeps the session alive even when it writes nothing.
    pub fn who_active(&mut self, active: bool) -> Result<Who, AppError> {
        self.reload_idle()?;
        if active {
            let now = self.now();
            if let Some(s) = self.session.as_mut()
                && !s.expired(now)
            {
                s.last_active = now;
            }
        }
        let secured = self.secured()?;
        let idle_secs = self.idle_secs;
        let mut who = Who {
            secured,
            user: None,
            name: None,
            role: None,
            idle_secs,
            signed_once: false,
        };
        if let Some(s) = self.session.clone() {
            if s.expired(self.now()) {
                self.session = None;
            } else if let Some(r) = self.store().user(&s.user)?.filter(|r| !r.disabled) {
                who.user = Some(r.code);
                who.name = Some(r.name);
                who.role = Some(r.role);
                who.signed_once = s.signed_once;
            } else {
                self.session = None;
            }
        }
        Ok(who)
    }

    /// The first administrator of a new database: allowed once, while no user exists. The
    /// password is given by the person; there is no default.
    pub fn add_first_administrator(
        &mut self,
        user: &str,
        name: &str,
        password: &str,
    ) -> Result<Session, AppError> {
        if self.secured()? {
            return Err(AppError::input(
                "user",
                "this database already has users; an administrator adds more (kura user add)",
            ));
        }
        let id = kura_domain::user::parse_user_id(user).map_err(|m| AppError::input("user", m))?;
        check_secret(Secret::Password, password)?;
        let hash = hash_secret(password)?;
        let key = new_public_key(password)?;
        self.actor = id.clone();
        let name = name.trim().to_string();
        self.write_new_user(&id, &name, Role::Administrator, None, &hash, key)?;
        self.secured_seen
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(self.start_session(id, name))
    }

    /// Adds a user with their first password (an administrator's act).
    pub fn add_user(
        &mut self,
        user: &str,
        name: &str,
        role: Role,
        badge: Option<&str>,
        password: &str,
    ) -> Result<UserView, AppError> {
        self.authorize(Act::ManageUsers)?;
        if !self.secured()? {
            return Err(AppError::input(
                "user",
                "add the first administrator first (kura user add … --role administrator on a new database)",
            ));
        }
        let id = kura_domain::user::parse_user_id(user).map_err(|m| AppError::input("user", m))?;
        if self.store().user(&id)?.is_some() {
            return Err(AppError::input("user", format!("user {id} already exists")));
        }
        let badge = badge
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(|b| kura_domain::user::parse_badge(b).map_err(|m| AppError::input("badge", m)))
            .transpose()?;
        if let Some(b) = &badge
            && !self.store().users_with_badge(b)?.is_empty()
        {
            return Err(AppError::input(
                "badge",
                format!("badge {b} is already someone's"),
            ));
        }
        check_secret(Secret::Password, password)?;
        let hash = hash_secret(password)?;
        let key = new_public_key(password)?;
        self.write_new_user(&id, name.trim(), role, badge, &hash, key)?;
        self.user_view(&id)
    }

    /// A new user and their first password, in one transaction.
    fn write_new_user(
        &mut self,
        id: &str,
        name: &str,
        role: Role,
        badge: Option<String>,
        password_hash: &str,
        key: kura_domain::sign::PublicKey,
    ) -> Result<(), AppError> {
        self.write(|e| {
            e.emit(EventBody::UserAdded {
                user: id.to_string(),
                name: name.to_string(),
                role,
                badge,
            })?;
            e.emit(EventBody::CredentialSet {
                user: id.to_string(),
                secret: Secret::Password,
                hash: password_hash.to_string(),
                key: Some(key),
            })?;
            Ok(())
        })
    }

    pub fn grant_role(&mut self, user: &str, role: Role) -> Result<UserView, AppError> {
        let id = self.existing_user(user)?;
        self.write(|e| {
            e.emit(EventBody::RoleGranted {
                user: id.clone(),
                role,
            })
        })?;
        self.user_view(&id)
    }

    pub fn disable_user(&mut self, user: &str, reason: &str) -> Result<UserView, AppError> {
        let id = self.existing_user(user)?;
        let reason = crate::input::reason(reason)?;
        self.write(|e| {
            e.emit(EventBody::UserDisabled {
                user: id.clone(),
                reason: reason.clone(),
            })
        })?;
        self.user_view(&id)
    }

    /// Whether setting `user`'s password or PIN is a signed act here: one's own never is (as
    /// the domain's `act_of` says of a `credential_set` by its own user); another user's is user
    /// administration, signed on a database with users. A face asks before it asks for a
    /// signature.
    pub fn secret_needs_signature(&self, user: &str) -> Result<bool, AppError> {
        if !self.secured()? {
            return Ok(false);
        }
        let own = self
            .session()
            .is_some_and(|s| s.user.eq_ignore_ascii_case(user.trim()));
        Ok(!own)
    }

    /// Sets a password or PIN: one's own, or (an administrator) anyone's.
    pub fn set_secret(&mut self, user: &str, secret: Secret, value: &str) -> Result<(), AppError> {
        let id = self.existing_user(user)?;
        check_secret(secret, value)?;
        let hash = hash_secret(value)?;
        // A password derives the user's signing key; a PIN signs nothing and publishes none.
        let key = match secret {
            Secret::Password => Some(new_public_key(value)?),
            Secret::Pin => None,
        };
        self.write(|e| {
            e.emit(EventBody::CredentialSet {
                user: id.clone(),
                secret,
                hash: hash.clone(),
                key: key.clone(),
            })
        })?;
        Ok(())
    }

    fn existing_user(&self, user: &str) -> Result<String, AppError> {
        let id = kura_domain::user::parse_user_id(user).map_err(|m| AppError::input("user", m))?;
        match self.store().user(&id)? {
            Some(_) => Ok(id),
            None => Err(AppError::NotFound {
                what: "user",
                code: id,
            }),
        }
    }

    pub fn user_view(&self, user: &str) -> Result<UserView, AppError> {
        let r = self.store().user(user)?.ok_or_else(|| AppError::NotFound {
            what: "user",
            code: user.to_string(),
        })?;
        Ok(view(r))
    }

    pub fn users(&mut self) -> Result<Vec<UserView>, AppError> {
        self.authorize(Act::Read)?;
        Ok(self.store().users()?.into_iter().map(view).collect())
    }
}

fn view(r: kura_store::UserRow) -> UserView {
    UserView {
        user: r.code,
        name: r.name,
        role: r.role,
        badge: r.badge,
        disabled: r.disabled,
        has_password: r.password.is_some(),
        has_pin: r.pin.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signing_never_prints_its_secret() {
        let s = Signing {
            user: Some("sato".into()),
            secret: "hunter2-hunter2".into(),
            meaning: kura_domain::Meaning::Approved,
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("sato"),
            "{shown}"
        );
    }

    #[test]
    fn secrets_hash_and_verify() {
        let h = hash_secret("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_secret("correct horse", &h));
        assert!(!verify_secret("correct horsE", &h));
        assert!(!verify_secret("correct horse", "$argon2id$garbage"));
        assert_ne!(h, hash_secret("correct horse").unwrap(), "salted");
    }

    #[test]
    fn every_act_has_a_role_and_the_auditor_only_reads() {
        for act in Act::ALL {
            assert!(Role::ALL.iter().any(|r| allowed(act, *r)), "{act:?}");
            assert_eq!(allowed(act, Role::Auditor), act == Act::Read, "{act:?}");
        }
        assert_eq!(role_needed(Act::Dispose), Role::Supervisor);
        assert_eq!(role_needed(Act::ManageUsers), Role::Administrator);
    }
}
