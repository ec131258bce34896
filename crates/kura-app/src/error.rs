use kura_domain::id::IdFormatError;
use kura_domain::position::PositionError;
use kura_domain::specimen::VocabularyError;
use kura_domain::{RuleError, ScanError};
use kura_store::StoreError;
use serde::Serialize;

use crate::import::RowError;

/// Everything a use case can refuse or fail with. [`AppError::code`] is stable: the desktop
/// window and `--json` output switch on it, never on the message.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Rule(RuleError),
    #[error(transparent)]
    Vocabulary(#[from] VocabularyError),
    #[error("{container}: {source}")]
    Position {
        container: String,
        source: PositionError,
    },
    #[error(transparent)]
    IdFormat(#[from] IdFormatError),
    #[error(transparent)]
    Store(StoreError),
    #[error("{total} problem(s) in the import file; nothing was imported. First: {}", .rows.first().map(|e| e.to_string()).unwrap_or_default())]
    Import { total: u64, rows: Vec<RowError> },
    #[error("{field}: {message}")]
    Input { field: String, message: String },
    #[error("{what} {code} was not found")]
    NotFound { what: &'static str, code: String },
    #[error("this database has not been set up; run `kura init` (or `kura demo`) first")]
    NotInitialised,
    #[error(
        "there is no Kura database at {path}: create one with `kura init --prefix …` (or `kura demo` for demo data), or give --db (KURA_DB) the file you meant"
    )]
    StoreMissing { path: String },
    #[error(
        "{path} already holds a Kura database ({why}): `kura init` sets up a new one only. Give --db a new file"
    )]
    StoreExists { path: String, why: String },
    #[error(
        "the backup {path} fails verify ({problems} problem(s); first: {first}): it is not restored. Take an older backup"
    )]
    BackupInvalid {
        path: String,
        problems: usize,
        first: String,
    },
    #[error(
        "{path} already holds a database: a restore never overwrites one. Move it aside first, or give --db a new file"
    )]
    RestoreOver { path: String },
    #[error("cannot read or write {path}: {message}")]
    File { path: String, message: String },
    #[error("{message}")]
    Print { code: &'static str, message: String },
    #[error(transparent)]
    Sync(#[from] kura_sync::SyncError),
    #[error("the user ID or the password (or the badge or the PIN) is wrong; try again")]
    SignIn,
    #[error(
        "too many wrong passwords or PINs for {who}: wait {seconds} s before trying again (or ask an administrator)"
    )]
    SignInThrottled { who: String, seconds: u64 },
    #[error("this database records who acts: sign in first (kura login, or scan your badge)")]
    SignInRequired,
    #[error("the session ended after a time without activity: sign in again (kura login)")]
    SessionExpired,
    #[error("{} is irreversible and is signed: give your password again and what your signature means", .act.as_str())]
    SignatureRequired { act: crate::users::Act },
    #[error(
        "the first signature of a session needs your user ID as well as your password (kura: --signer ID)"
    )]
    SignatureNeedsId,
    #[error("signatures are made by signed-in users; this database has none yet")]
    SignatureNeedsUsers,
    #[error(
        "the record changed after it was shown (or is not the one shown): nothing was signed; look at it again"
    )]
    SignatureStale,
    #[error("user {user} is disabled and can no longer act or sign; an administrator can tell why")]
    UserDisabled { user: String },
    #[error("{} needs the role {} (you are {}): ask someone who has it", .act.as_str(), .needed.as_str(), .role.as_str())]
    Forbidden {
        act: crate::users::Act,
        role: kura_domain::Role,
        needed: kura_domain::Role,
    },
    #[error(
        "this database already issued Kura IDs with the prefix {local}, but site {site} issues {site_prefix}…: its IDs would be refused as another site's. Enroll a new database for this workstation, or ask the registry administrator"
    )]
    PrefixMismatch {
        local: String,
        site: String,
        site_prefix: String,
    },
    #[error("shipment bundle refused: {0}")]
    Bundle(#[from] kura_domain::bundle::BundleProblem),
    #[error(
        "shipment {shipment} is signed by key {fingerprint}, which this site does not trust. Confirm the fingerprint with the sending site (by telephone, not by e-mail), then an administrator runs: kura trust add NAME \"{fingerprint}\""
    )]
    UntrustedKey {
        shipment: String,
        fingerprint: String,
    },
    #[error(
        "not enough Kura IDs for {year} on this workstation: {wanted} wanted, {left} left, {} missing, and the registry leased no more ({why}). Nothing was recorded; once the registry can be reached, try again or sync (Sync now, or kura sync)", .wanted - .left
    )]
    SerialsShort {
        year: i32,
        wanted: u64,
        left: u64,
        why: String,
    },
    #[error("shipment {shipment} goes to site {to}, not to this site ({here})")]
    WrongSite {
        shipment: String,
        to: String,
        here: String,
    },
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::Rule(r) => AppError::Rule(r),
            other => AppError::Store(other),
        }
    }
}

impl From<RuleError> for AppError {
    fn from(e: RuleError) -> AppError {
        AppError::Rule(e)
    }
}

impl AppError {
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Scan(e) => e.code(),
            AppError::Rule(e) => e.code(),
            AppError::Vocabulary(_) => "bad_vocabulary",
            AppError::Position { .. } => "bad_position",
            AppError::IdFormat(_) => "bad_id_format",
            AppError::Store(e) => e.code(),
            AppError::Import { .. } => "import_rejected",
            AppError::Input { .. } => "bad_input",
            AppError::NotFound { .. } => "not_found",
            AppError::NotInitialised => "not_initialised",
            AppError::StoreMissing { .. } => "store_missing",
            AppError::StoreExists { .. } => "store_exists",
            AppError::BackupInvalid { .. } => "backup_invalid",
            AppError::RestoreOver { .. } => "restore_over_database",
            AppError::File { .. } => "file_error",
            AppError::Print { code, .. } => code,
            AppError::Sync(e) => e.code(),
            AppError::SignIn => "sign_in_failed",
            AppError::SignInThrottled { .. } => "sign_in_throttled",
            AppError::SignInRequired => "sign_in_required",
            AppError::SessionExpired => "session_expired",
            AppError::SignatureRequired { .. } => "signature_required",
            AppError::SignatureNeedsId => "signature_needs_id",
            AppError::SignatureNeedsUsers => "signature_needs_users",
            AppError::SignatureStale => "signature_stale",
            AppError::UserDisabled { .. } => "user_disabled",
            AppError::Forbidden { .. } => "forbidden",
            AppError::PrefixMismatch { .. } => "enroll_prefix_mismatch",
            AppError::Bundle(p) => p.code(),
            AppError::UntrustedKey { .. } => "untrusted_key",
            AppError::WrongSite { .. } => "wrong_site",
            AppError::SerialsShort { .. } => "no_serials_left",
        }
    }

    pub fn input(field: &str, message: impl Into<String>) -> AppError {
        AppError::Input {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The `{code, message, details}` shape errors take across IPC and in `--json` output.
    pub fn to_wire(&self) -> WireError {
        let details = match self {
            AppError::Scan(e) => serde_json::to_value(e).ok(),
            AppError::Rule(e) => serde_json::to_value(e).ok(),
            AppError::Import { rows, .. } => serde_json::to_value(rows).ok(),
            AppError::PrefixMismatch {
                local,
                site,
                site_prefix,
            } => Some(
                serde_json::json!({ "local": local, "site": site, "site_prefix": site_prefix }),
            ),
            AppError::Forbidden { act, role, needed } => Some(serde_json::json!({
                "act": act.as_str(), "role": role.as_str(), "needed": needed.as_str()
            })),
            AppError::UserDisabled { user } => Some(serde_json::json!({ "user": user })),
            AppError::StoreMissing { path } => Some(serde_json::json!({ "path": path })),
            AppError::StoreExists { path, why } => {
                Some(serde_json::json!({ "path": path, "why": why }))
            }
            AppError::Store(StoreError::NoSerials { year, wanted, left })
            | AppError::SerialsShort {
                year, wanted, left, ..
            } => Some(serde_json::json!({
                "year": year, "wanted": wanted, "left": left, "missing": wanted - left
            })),
            _ => None,
        };
        WireError {
            code: self.code().to_string(),
            message: self.to_string(),
            details,
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct WireError {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown>", optional))]
    pub details: Option<serde_json::Value>,
}
