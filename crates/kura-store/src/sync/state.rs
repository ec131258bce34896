//! Where this workstation stands with the registry (`sync_state`: enrollment, the last
//! attempt, clock skew, why pushing stopped, a restore waiting to catch up), and the conflicts
//! and rejections it shows.

use rusqlite::params;
use serde::Serialize;

use super::leases::LeaseBlock;
use super::uuid_of;
use crate::{Store, StoreError, Tx};

/// Where this workstation stands with the registry (`sync_state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncState {
    /// This workstation's events up to here are answered.
    pub pushed_seq: u64,
    /// The site's `server_seq` pulled up to.
    pub pull_cursor: u64,
    /// `None`: never enrolled; the database works alone.
    pub registry_url: Option<String>,
    /// Where the token is kept (a file next to the database), never the token itself.
    pub token_ref: Option<String>,
    pub registry_ca: Option<String>,
    /// The site (JSON of the registry's `Site`).
    pub site: Option<String>,
    pub leases: Vec<LeaseBlock>,
    pub last_success: Option<i64>,
    pub last_attempt: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_code: Option<String>,
    pub clock_skew_us: Option<i64>,
    /// Why pushing stopped (a sequence fork), until someone looks.
    pub stopped: Option<String>,
    /// When this database came back from a copy (`kura restore`, `kura recover`), until a sync
    /// round has brought back what the registry holds of this workstation: nothing new is
    /// recorded meanwhile.
    pub restored_at: Option<i64>,
}

/// A conflict as the bench's projection holds it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictRow {
    /// The refused event.
    pub event: String,
    /// The earlier event it disagrees with.
    pub other: Option<String>,
    pub subject: String,
    pub code: String,
    pub message: String,
    pub resolved_by: Option<String>,
}

/// One of this workstation's events the registry kept as a rejection.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectionRow {
    pub event: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: u64,
    pub kind: String,
    pub code: String,
    pub message: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub at: i64,
}

pub(super) fn read_state(conn: &rusqlite::Connection) -> Result<SyncState, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT pushed_seq, pull_cursor, registry_url, token_ref, registry_ca, site, leases,
                last_success, last_attempt, last_error, last_error_code, clock_skew_us, stopped,
                restored_at
             FROM sync_state WHERE id = 1",
        )?
        .query_row([], |r| {
            Ok((
                SyncState {
                    pushed_seq: r.get::<_, i64>(0)? as u64,
                    pull_cursor: r.get::<_, i64>(1)? as u64,
                    registry_url: r.get(2)?,
                    token_ref: r.get(3)?,
                    registry_ca: r.get(4)?,
                    site: r.get(5)?,
                    leases: Vec::new(),
                    last_success: r.get(7)?,
                    last_attempt: r.get(8)?,
                    last_error: r.get(9)?,
                    last_error_code: r.get(10)?,
                    clock_skew_us: r.get(11)?,
                    stopped: r.get(12)?,
                    restored_at: r.get(13)?,
                },
                r.get::<_, String>(6)?,
            ))
        })?;
    let (mut state, leases) = row;
    state.leases = serde_json::from_str(&leases)
        .map_err(|e| StoreError::Corrupt(format!("sync_state.leases: {e}")))?;
    Ok(state)
}

impl Tx<'_> {
    pub fn sync_state(&self) -> Result<SyncState, StoreError> {
        read_state(self.conn())
    }

    /// Records an enrollment: where the registry is, where the token is kept, the site, and
    /// the first lease.
    pub fn set_enrollment(
        &mut self,
        registry_url: &str,
        token_ref: &str,
        registry_ca: Option<&str>,
        site: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE sync_state SET registry_url = ?1, token_ref = ?2, registry_ca = ?3, site = ?4,
                last_error = NULL, last_error_code = NULL, stopped = NULL WHERE id = 1",
            params![registry_url, token_ref, registry_ca, site],
        )?;
        Ok(())
    }

    /// Records a round's outcome: when, and the error if it failed.
    pub fn record_attempt(
        &mut self,
        now: i64,
        error: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        match error {
            None => self.conn().execute(
                "UPDATE sync_state SET last_attempt = ?1, last_success = ?1, last_error = NULL,
                    last_error_code = NULL WHERE id = 1",
                [now],
            )?,
            Some((code, message)) => self.conn().execute(
                "UPDATE sync_state SET last_attempt = ?1, last_error = ?2, last_error_code = ?3
                 WHERE id = 1",
                params![now, message, code],
            )?,
        };
        Ok(())
    }

    pub fn set_clock_skew(&mut self, skew_us: Option<i64>) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE sync_state SET clock_skew_us = ?1 WHERE id = 1",
            [skew_us],
        )?;
        Ok(())
    }

    /// Stops pushing (a sequence fork), or lets it go on (`None`).
    pub fn set_stopped(&mut self, why: Option<&str>) -> Result<(), StoreError> {
        self.conn()
            .execute("UPDATE sync_state SET stopped = ?1 WHERE id = 1", [why])?;
        Ok(())
    }

    /// This database came back from a copy at `now`: nothing new is recorded until
    /// [`Tx::caught_up`].
    pub fn mark_restored(&mut self, now: i64) -> Result<(), StoreError> {
        self.conn()
            .execute("UPDATE sync_state SET restored_at = ?1 WHERE id = 1", [now])?;
        Ok(())
    }

    /// A sync round brought back everything the registry holds of this workstation's stream:
    /// recording may go on.
    pub fn caught_up(&mut self) -> Result<(), StoreError> {
        self.conn()
            .execute("UPDATE sync_state SET restored_at = NULL WHERE id = 1", [])?;
        Ok(())
    }

    pub(super) fn count_conflicts(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT count(*) FROM conflicts", [], |r| r.get(0))?)
    }
}

impl Store {
    pub fn sync_state(&self) -> Result<SyncState, StoreError> {
        read_state(self.conn())
    }

    /// The conflicts the rules raised here (open ones only, unless `all`).
    pub fn conflicts(&self, all: bool) -> Result<Vec<ConflictRow>, StoreError> {
        self.conflicts_where(None, all)
    }

    /// The conflicts about one specimen or container (open ones only, unless `all`), found by
    /// its code: a scan's detail does not read the others.
    pub fn conflicts_of(&self, subject: &str, all: bool) -> Result<Vec<ConflictRow>, StoreError> {
        self.conflicts_where(Some(subject), all)
    }

    /// How many conflicts are open (the open ones by the index on `resolved_by`).
    pub fn open_conflicts(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT count(*) FROM conflicts WHERE resolved_by IS NULL")?
            .query_row([], |r| r.get::<_, i64>(0))? as u64)
    }

    /// How many of this workstation's events the registry kept as rejections.
    pub fn rejection_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT count(*) FROM sync_rejections")?
            .query_row([], |r| r.get::<_, i64>(0))? as u64)
    }

    pub(super) fn conflicts_where(
        &self,
        subject: Option<&str>,
        all: bool,
    ) -> Result<Vec<ConflictRow>, StoreError> {
        let filter = match (subject.is_some(), all) {
            (false, true) => "",
            (false, false) => "WHERE c.resolved_by IS NULL",
            (true, true) => "WHERE c.subject = ?1",
            (true, false) => "WHERE c.subject = ?1 AND c.resolved_by IS NULL",
        };
        let sql = format!(
            "SELECT (SELECT event_id FROM events e WHERE e.id = c.event),
                (SELECT event_id FROM events e WHERE e.id = c.other),
                c.subject, c.code, c.message,
                (SELECT event_id FROM events e WHERE e.id = c.resolved_by)
             FROM conflicts c {filter} ORDER BY c.event"
        );
        let mut st = self.conn().prepare_cached(&sql)?;
        let row = |r: &rusqlite::Row<'_>| {
            Ok(ConflictRow {
                event: uuid_of(r.get(0)?).to_string(),
                other: r
                    .get::<_, Option<Vec<u8>>>(1)?
                    .map(|b| uuid_of(b).to_string()),
                subject: r.get(2)?,
                code: r.get(3)?,
                message: r.get(4)?,
                resolved_by: r
                    .get::<_, Option<Vec<u8>>>(5)?
                    .map(|b| uuid_of(b).to_string()),
            })
        };
        let rows = match subject {
            Some(s) => st.query_map([s], row)?.collect::<Result<_, _>>()?,
            None => st.query_map([], row)?.collect::<Result<_, _>>()?,
        };
        Ok(rows)
    }

    /// This workstation's events the registry kept as rejections.
    pub fn rejections(&self) -> Result<Vec<RejectionRow>, StoreError> {
        let mut st = self.conn().prepare(
            "SELECT (SELECT event_id FROM events e WHERE e.id = r.event), (SELECT seq FROM events e WHERE e.id = r.event),
                (SELECT kind FROM events e WHERE e.id = r.event), r.code, r.message, r.at
             FROM sync_rejections r ORDER BY r.event",
        )?;
        let rows = st.query_map([], |r| {
            Ok(RejectionRow {
                event: uuid_of(r.get(0)?).to_string(),
                seq: r.get::<_, i64>(1)? as u64,
                kind: r.get(2)?,
                code: r.get(3)?,
                message: r.get(4)?,
                at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
