//! People: who may act, in which role. Users are custody-log events (`user_added`,
//! `role_granted`, `user_disabled`, `credential_set`), so they reach every bench of a site the way
//! custody does and are covered by the hash chain. Donors are never users and never named: a donor
//! is a pseudonymous ID.

use serde::{Deserialize, Serialize};

/// What a person may do. The table of use case × role lives in `kura-app` (`authorize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Registers, checks in and out, moves, thaws, consumes, prints.
    Technician,
    /// A technician who may also dispose, resolve conflicts, change the storage layout, withdraw
    /// consent and grant exceptions.
    Supervisor,
    /// Manages users and the site's settings.
    Administrator,
    /// Reads everything, changes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Technician,
        Role::Supervisor,
        Role::Administrator,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Technician => "technician",
            Role::Supervisor => "supervisor",
            Role::Administrator => "administrator",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim().to_ascii_lowercase())
    }
}

/// Which secret a credential is: a password (sign-in with the user ID) or a PIN (with a badge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Secret {
    Password,
    Pin,
}

impl Secret {
    pub fn as_str(self) -> &'static str {
        match self {
            Secret::Password => "password",
            Secret::Pin => "pin",
        }
    }
}

/// What a signature means (21 CFR 11.50: the signer's name, the time, and the meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Meaning {
    /// I did this.
    Performed,
    /// I checked what was done.
    Reviewed,
    /// I approve it.
    Approved,
}

impl Meaning {
    pub const ALL: [Meaning; 3] = [Meaning::Performed, Meaning::Reviewed, Meaning::Approved];

    pub fn as_str(self) -> &'static str {
        match self {
            Meaning::Performed => "performed",
            Meaning::Reviewed => "reviewed",
            Meaning::Approved => "approved",
        }
    }

    pub fn parse(s: &str) -> Option<Meaning> {
        Meaning::ALL
            .into_iter()
            .find(|m| m.as_str() == s.trim().to_ascii_lowercase())
    }
}

/// A user ID as people type it: 2–32 of `a-z 0-9 . _ -`, starting with a letter; case folded.
pub fn parse_user_id(s: &str) -> Result<String, String> {
    let id = s.trim().to_ascii_lowercase();
    let ok = (2..=32).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(id)
    } else {
        Err(format!(
            "{s:?} is not a user ID: 2 to 32 letters, digits, '.', '_' or '-', starting with a letter"
        ))
    }
}

/// A badge as the scanner types it: `USR-` and 1–20 capital letters or digits.
pub fn parse_badge(s: &str) -> Result<String, String> {
    let b = s.trim().to_ascii_uppercase();
    let ok = b.strip_prefix("USR-").is_some_and(|rest| {
        (1..=20).contains(&rest.len())
            && rest
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    });
    if ok {
        Ok(b)
    } else {
        Err(format!(
            "{s:?} is not a badge code: USR- and up to 20 capital letters or digits"
        ))
    }
}

/// What a user event changes in the projection of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    Add {
        name: String,
        role: Role,
        badge: Option<String>,
    },
    Grant(Role),
    Disable,
    Credential {
        secret: Secret,
        hash: String,
        /// With a password: the signing key it derives (see [`crate::sign`]).
        key: Option<crate::sign::PublicKey>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_roles_and_badges() {
        for (s, ok) in [
            ("sato", true),
            ("Sato.K", true),
            ("k", false),
            ("1abc", false),
            ("a b", false),
            ("佐藤", false),
        ] {
            assert_eq!(parse_user_id(s).is_ok(), ok, "{s}");
        }
        assert_eq!(parse_user_id(" Sato.K ").unwrap(), "sato.k");
        for (s, ok) in [
            ("USR-0042", true),
            ("usr-ab12", true),
            ("USR-", false),
            ("BADGE-1", false),
            ("USR-12-3", false),
        ] {
            assert_eq!(parse_badge(s).is_ok(), ok, "{s}");
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Supervisor"), Some(Role::Supervisor));
        assert_eq!(Role::parse("root"), None);
    }
}
