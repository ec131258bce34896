//! What sync needs of the store: this workstation's events past the high-water mark, the
//! registry's answers to them, other workstations' events applied through the same projection
//! in the registry's order, serial leases, and where this workstation stands.
//!
//! The projection is the log folded in the canonical order (the registry's `server_seq`, then
//! what it has not ordered yet, in local order). Pulled events usually come after everything
//! applied here; when some of this bench's own events already applied belong after them, the
//! page is applied at once only if the two touch nothing in common (then the order does not
//! matter); otherwise the projection is rebuilt in the canonical order, in the same transaction.

use std::collections::{HashMap, HashSet};

use kura_domain::EventBody;
use kura_domain::hash::{Digest, GENESIS};
use kura_domain::{Envelope, Placed};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::verify::replay;
use crate::{Store, StoreError, Tx};

/// The registry's answer for one of this workstation's events, as far as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Stored there (now, or already): its place in the site's order, when the registry said.
    Stored { seq: u64, server_seq: Option<u64> },
    /// Kept there as a rejection (not custody): shown to the user until someone acts.
    Kept {
        seq: u64,
        code: String,
        message: String,
    },
}

impl Answer {
    fn seq(&self) -> u64 {
        match self {
            Answer::Stored { seq, .. } | Answer::Kept { seq, .. } => *seq,
        }
    }
}

/// A block of serials the registry leased to this workstation; `next` is the first not issued.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseBlock {
    pub year: i32,
    pub first: u64,
    pub last: u64,
    pub next: u64,
}

impl LeaseBlock {
    pub fn left(&self) -> u64 {
        (self.last + 1).saturating_sub(self.next)
    }
}

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

/// What applying a pulled page did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PullApplied {
    /// Events new here.
    pub new: u64,
    /// Events already here (a page pulled again).
    pub known: u64,
    /// Of the new ones, how many the rules refused here (conflicts).
    pub conflicts: u64,
    /// The projection was rebuilt in the registry's order (own events and pulled ones
    /// touched the same specimens or boxes).
    pub reordered: bool,
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

/// A hash column: 32 bytes, or the database is damaged (`what` says where).
pub(crate) fn digest(bytes: &[u8], what: impl FnOnce() -> String) -> Result<Digest, StoreError> {
    Digest::from_slice(bytes).ok_or_else(|| StoreError::Corrupt(what()))
}

fn uuid_of(bytes: Vec<u8>) -> Uuid {
    Uuid::from_slice(&bytes).unwrap_or_default()
}

fn read_state(conn: &rusqlite::Connection) -> Result<SyncState, StoreError> {
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

/// Names the events, containers and boxes a set of events touches, to tell whether two sets
/// can be applied in either order.
#[derive(Debug, Default)]
struct Touched {
    /// Specimen codes (and printed label codes).
    names: HashSet<String>,
    /// Containers named by positions, moves and creations.
    boxes: HashSet<String>,
    containers_changed: bool,
}

impl Touched {
    fn add(&mut self, body: &EventBody) {
        let f = body.footprint();
        self.names.extend(f.specimens);
        // Not a code any specimen or container can have (codes have no colon).
        self.names
            .extend(f.users.into_iter().map(|u| format!("user:{u}")));
        self.boxes.extend(f.containers);
        self.containers_changed |= f.layout;
    }

    fn extend(&mut self, other: Touched) {
        self.names.extend(other.names);
        self.boxes.extend(other.boxes);
        self.containers_changed |= other.containers_changed;
    }

    fn meets(&self, other: &Touched) -> bool {
        (self.containers_changed && other.containers_changed)
            || !self.names.is_disjoint(&other.names)
            || !self.boxes.is_disjoint(&other.boxes)
    }
}

/// The events applied here that the canonical order puts after a pulled page (the ones the
/// registry ordered after it, and this bench's it has not ordered yet), and what they touch.
/// Worked out once, then carried from one page of a pull to the next: the pages rise, so events
/// only leave the front (the cursor passed them) and this bench's new events join the back. A
/// bench with 100,000 events of its own waiting behind a million pulled ones would otherwise read
/// and parse all of its own at every page.
#[derive(Debug)]
pub(crate) struct AheadCache {
    /// Valid for pages whose lowest `server_seq` is at least this.
    low: u64,
    /// (major, minor, local id) in the canonical order; not ordered yet: major = `i64::MAX`.
    events: std::collections::VecDeque<(i64, i64, i64)>,
    /// What they touch. Events that left the front stay counted until the next full count: a
    /// superset can only cause a rebase that was not needed, never miss one.
    touched: Touched,
    /// Events that left since the last full count.
    dropped: usize,
    /// The newest local event id and the high-water mark it was brought up to date with.
    max_rowid: i64,
    pushed_seq: i64,
}

fn parse_body(payload: &str, what: impl Fn() -> String) -> Result<EventBody, StoreError> {
    serde_json::from_str(payload).map_err(|e| StoreError::Corrupt(format!("{}: {e}", what())))
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

    /// Adds a leased block; serials this database issued itself before (its own counter) are
    /// skipped, so that no ID is issued twice here.
    pub fn add_lease(
        &mut self,
        year: i32,
        first: u64,
        last: u64,
    ) -> Result<LeaseBlock, StoreError> {
        let mut state = self.sync_state()?;
        if let Some(b) = state
            .leases
            .iter()
            .find(|b| b.year == year && b.first == first)
        {
            return Ok(*b);
        }
        let own_next = self.local_serial(year)?;
        let block = LeaseBlock {
            year,
            first,
            last,
            next: first.max(own_next),
        };
        state.leases.push(block);
        self.write_leases(&state.leases)?;
        Ok(block)
    }

    fn local_serial(&self, year: i32) -> Result<u64, StoreError> {
        let key = format!("serial:{year}");
        self.meta(&key)?
            .map(|v| {
                v.parse()
                    .map_err(|_| StoreError::Corrupt(format!("meta {key} = {v:?}")))
            })
            .transpose()
            .map(|n| n.unwrap_or(1))
    }

    fn write_leases(&self, leases: &[LeaseBlock]) -> Result<(), StoreError> {
        let json = serde_json::to_string(leases)
            .map_err(|e| StoreError::Corrupt(format!("leases: {e}")))?;
        self.conn()
            .prepare_cached("UPDATE sync_state SET leases = ?1 WHERE id = 1")?
            .execute([json])?;
        Ok(())
    }

    /// Stops issuing from a block another bench was leased too (the registry forgot it had
    /// granted it to this one): what is left of it is burned. Returns how many serials.
    pub fn drop_lease(&mut self, year: i32, first: u64) -> Result<u64, StoreError> {
        let mut leases = self.sync_state()?.leases;
        let mut burned = 0;
        for b in leases
            .iter_mut()
            .filter(|b| b.year == year && b.first == first)
        {
            burned += b.left();
            b.next = b.last + 1;
        }
        self.write_leases(&leases)?;
        Ok(burned)
    }

    /// Burns what is left of every leased block (a database restored from a backup may have
    /// issued those serials after the copy was taken): the next IDs come from a new lease.
    /// Returns how many serials were burned.
    pub fn burn_leases(&mut self) -> Result<u64, StoreError> {
        let mut leases = self.sync_state()?.leases;
        let mut burned = 0;
        for b in &mut leases {
            burned += b.left();
            b.next = b.last + 1;
        }
        self.write_leases(&leases)?;
        Ok(burned)
    }

    /// Takes `count` serials for Kura IDs of `year`: from the registry's leases once enrolled
    /// (refused, never a collision, when they are used up), else from this database's counter.
    pub fn take_serials(&mut self, year: i32, count: u64) -> Result<Vec<u64>, StoreError> {
        let state = self.sync_state()?;
        if state.restored_at.is_some() {
            return Err(StoreError::RestoredUnsynced);
        }
        if state.registry_url.is_none() {
            let next = self.local_serial(year)?;
            self.set_meta(&format!("serial:{year}"), &(next + count).to_string())?;
            return Ok((next..next + count).collect());
        }
        let mut leases = state.leases;
        let left: u64 = leases
            .iter()
            .filter(|b| b.year == year)
            .map(LeaseBlock::left)
            .sum();
        if left < count {
            return Err(StoreError::NoSerials {
                year,
                wanted: count,
                left,
            });
        }
        let mut out = Vec::with_capacity(count as usize);
        for b in leases.iter_mut().filter(|b| b.year == year) {
            while out.len() < count as usize && b.next <= b.last {
                out.push(b.next);
                b.next += 1;
            }
        }
        self.write_leases(&leases)?;
        Ok(out)
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

    /// Moves the high-water mark back: the registry lost events (restored from an older copy)
    /// and will be sent them again.
    pub fn rewind_push(&mut self, to: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE sync_state SET pushed_seq = min(pushed_seq, ?1) WHERE id = 1",
            [to as i64],
        )?;
        Ok(())
    }

    /// Stores the registry's answers to pushed events (idempotent) and moves the high-water
    /// mark past them. The caller stops at an answer that is neither (a fork, a broken chain).
    pub fn record_answers(&mut self, answers: &[Answer], now: i64) -> Result<(), StoreError> {
        if answers.is_empty() {
            return Ok(());
        }
        let me = self.workstation();
        let before = self.pull_cursor()?;
        let mut lowest_new: Option<u64> = None;
        for a in answers {
            let rowid: i64 = self
                .conn()
                .prepare_cached("SELECT id FROM events WHERE workstation = ?1 AND seq = ?2")?
                .query_row(params![me.as_bytes().as_slice(), a.seq() as i64], |r| {
                    r.get(0)
                })
                .optional()?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "the registry answered seq {}, which this workstation never wrote",
                        a.seq()
                    ))
                })?;
            let (major, minor) = match a {
                Answer::Stored {
                    server_seq: Some(s),
                    ..
                } => (*s as i64, 0),
                // Not in the site's order: after everything known now, in local order.
                Answer::Stored { .. } | Answer::Kept { .. } => (self.newest_major()?, rowid),
            };
            let n = self
                .conn()
                .prepare_cached(
                    "INSERT OR IGNORE INTO event_order (event, major, minor) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![rowid, major, minor])?;
            if n > 0 {
                lowest_new = Some(lowest_new.map_or(major as u64, |l: u64| l.min(major as u64)));
            }
            if let Answer::Kept { code, message, .. } = a {
                self.conn()
                    .prepare_cached(
                        "INSERT OR IGNORE INTO sync_rejections (event, code, message, at) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![rowid, code, message, now])?;
            }
        }
        let last = answers.iter().map(Answer::seq).max().unwrap_or(0);
        self.conn().execute(
            "UPDATE sync_state SET pushed_seq = max(pushed_seq, ?1) WHERE id = 1",
            [last as i64],
        )?;
        // An event kept as a rejection is ordered at the newest place known, which may lie at or
        // below the cursor already: its undo image goes now.
        self.advance_cursor(lowest_new.map_or(before, |l| before.min(l as i64)))?;
        // Normally the registry orders a push after everything pulled before it. If pulled
        // events sit after these in its order (an acknowledgement learnt late), the projection
        // must follow that order.
        if let Some(low) = lowest_new {
            let mine: Vec<i64> = answers.iter().map(|a| a.seq() as i64).collect::<Vec<_>>();
            let later_remote = self.ordered_after(low, Some(&mine))?;
            if !later_remote.is_empty() {
                let own = self.events_touched(&self.own_rowids(&mine)?)?;
                let theirs = self.events_touched(&later_remote)?;
                if own.meets(&theirs) {
                    self.reorder()?;
                }
            }
        }
        Ok(())
    }

    /// The pull cursor says every event of the site up to it is here. Events the registry placed
    /// right after it that are here already (this workstation's own, just acknowledged) extend
    /// that: the cursor moves over them, so a bench that pushed a million events does not read
    /// a million places back. Undo images of events at or below the cursor are dropped: nothing
    /// can come before them any more.
    fn advance_cursor(&mut self, before: i64) -> Result<(), StoreError> {
        let mut cursor: i64 = self.pull_cursor()?;
        let start = cursor;
        {
            let mut next = self.conn().prepare_cached(
                "SELECT 1 FROM event_order WHERE major = ?1 AND minor = 0 LIMIT 1",
            )?;
            while next.exists([cursor + 1])? {
                cursor += 1;
            }
        }
        if cursor != start {
            self.conn()
                .prepare_cached("UPDATE sync_state SET pull_cursor = ?1 WHERE id = 1")?
                .execute([cursor])?;
        }
        // Only the events the cursor passed now (by the index on major): this bench's events
        // are ordered above the cursor they were pushed at, so none with an undo image lies
        // below `before`.
        self.conn()
            .prepare_cached(
                "DELETE FROM undo WHERE event IN (SELECT event FROM event_order WHERE major BETWEEN ?1 AND ?2)",
            )?
            .execute([before.min(cursor), cursor])?;
        Ok(())
    }

    fn pull_cursor(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT pull_cursor FROM sync_state WHERE id = 1")?
            .query_row([], |r| r.get(0))?)
    }

    fn newest_major(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT coalesce(max(major), 0) FROM event_order")?
            .query_row([], |r| r.get(0))?)
    }

    fn own_rowids(&self, seqs: &[i64]) -> Result<Vec<i64>, StoreError> {
        let me = self.workstation();
        let mut st = self
            .conn()
            .prepare_cached("SELECT id FROM events WHERE workstation = ?1 AND seq = ?2")?;
        let mut out = Vec::new();
        for s in seqs {
            if let Some(id) = st
                .query_row(params![me.as_bytes().as_slice(), s], |r| r.get(0))
                .optional()?
            {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Local ids of events the registry placed after `major`, except this workstation's
    /// `except` seqs.
    fn ordered_after(&self, major: u64, except: Option<&[i64]>) -> Result<Vec<i64>, StoreError> {
        let me = self.workstation();
        let mut st = self.conn().prepare_cached(
            "SELECT o.event, (SELECT e.workstation FROM events e WHERE e.id = o.event),
                (SELECT e.seq FROM events e WHERE e.id = o.event)
             FROM event_order o WHERE o.major > ?1 ORDER BY o.major, o.minor, o.event",
        )?;
        let rows = st.query_map([major as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, ws, seq) = row?;
            let own = uuid_of(ws) == me;
            if own && except.is_some_and(|x| x.contains(&seq)) {
                continue;
            }
            out.push(id);
        }
        Ok(out)
    }

    /// What a set of applied events touches, including the boxes their specimens are in now or
    /// were in before (a disposal frees a position without naming it).
    fn events_touched(&self, rowids: &[i64]) -> Result<Touched, StoreError> {
        let mut t = Touched::default();
        let mut st = self
            .conn()
            .prepare_cached("SELECT payload FROM events WHERE id = ?1")?;
        for id in rowids {
            let payload: String = st.query_row([id], |r| r.get(0))?;
            t.add(&parse_body(&payload, || format!("event {id}"))?);
        }
        self.add_history_boxes(&mut t)?;
        Ok(t)
    }

    /// Adds the boxes every named specimen is in, or was ever placed in.
    fn add_history_boxes(&self, t: &mut Touched) -> Result<(), StoreError> {
        let mut current = self.conn().prepare_cached(
            "SELECT id, (SELECT c.code FROM containers c WHERE c.id = s.container) FROM specimens s WHERE code = ?1",
        )?;
        let mut history = self.conn().prepare_cached(
            "SELECT (SELECT e.payload FROM events e WHERE e.id = es.event) FROM event_subjects es WHERE es.specimen = ?1",
        )?;
        let mut more = HashSet::new();
        for name in &t.names {
            let Some((rowid, container)) = current
                .query_row([name], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
                })
                .optional()?
            else {
                continue;
            };
            if let Some(c) = container {
                more.insert(c);
            }
            let payloads: Vec<String> = history
                .query_map([rowid], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut h = Touched::default();
            for p in payloads {
                h.add(&parse_body(&p, || format!("an event of {name}"))?);
            }
            more.extend(h.boxes);
        }
        t.boxes.extend(more);
        Ok(())
    }

    /// Rebuilds the projection in the canonical order, inside this transaction.
    fn reorder(&mut self) -> Result<(), StoreError> {
        tracing::info!(
            "pulled events belong before events applied here: rebuilding in the registry's order"
        );
        self.cache_mut().clear();
        self.mark_containers_changed();
        let own = self.undo_enabled().then(|| self.workstation());
        replay(self.conn(), own, &mut |_, _| {})?;
        Ok(())
    }

    /// Applies a pulled page (in `server_seq` order) and stores the new cursor, in this
    /// transaction. Each event's hash is checked against the one before it of its workstation
    /// (as the registry did); an event already here is skipped.
    pub fn apply_remote(
        &mut self,
        events: &[Placed],
        cursor: u64,
    ) -> Result<PullApplied, StoreError> {
        let me = self.workstation();
        let mut out = PullApplied::default();
        let mut heads: HashMap<Uuid, Option<(u64, Digest)>> = HashMap::new();
        let mut fresh: Vec<(&Placed, EventBody)> = Vec::new();
        for placed in events {
            let e = &placed.event;
            let stored: Option<(i64, Vec<u8>)> = self
                .conn()
                .prepare_cached("SELECT id, hash FROM events WHERE event_id = ?1")?
                .query_row([e.id.as_bytes().as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((rowid, h)) = stored {
                if h[..] != e.hash.as_bytes()[..] {
                    return Err(StoreError::Corrupt(format!(
                        "the registry sent event {} with another hash than the copy here",
                        e.id
                    )));
                }
                out.known += 1;
                self.learn_place(rowid, placed.server_seq)?;
                self.conn()
                    .prepare_cached("UPDATE event_order SET placed_at = ?2 WHERE event = ?1")?
                    .execute(params![rowid, placed.received_at])?;
                continue;
            }
            // This workstation's own events come only when this database lacks them (it came
            // back from a copy, or is a replacement PC): they continue its stream like anyone's.
            let own = e.workstation == me;
            let head = match heads.get(&e.workstation) {
                Some(h) => *h,
                None => {
                    let h = self.stream_head(e.workstation)?;
                    heads.insert(e.workstation, h);
                    h
                }
            };
            let (last_seq, prev) = head.unwrap_or((0, GENESIS));
            if own && e.seq <= last_seq {
                return Err(StoreError::OwnFork { seq: e.seq });
            }
            if e.seq <= last_seq {
                return Err(StoreError::Corrupt(format!(
                    "the registry sent seq {} of workstation {} as event {}, but another event holds that seq here",
                    e.seq, e.workstation, e.id
                )));
            }
            if e.seq == last_seq + 1 {
                let links = e.links_to(&prev);
                if !links && own {
                    // The registry's seq `last_seq` of this workstation is another event.
                    return Err(StoreError::OwnFork { seq: last_seq });
                }
                if !links {
                    return Err(StoreError::Corrupt(format!(
                        "event {} (workstation {}, seq {}) does not chain to the event before it: its content or hash was changed",
                        e.id, e.workstation, e.seq
                    )));
                }
            } else if !self.refused_between(e.workstation, last_seq, e.seq)? {
                return Err(StoreError::StreamGap {
                    workstation: e.workstation,
                    after: last_seq,
                    next: e.seq,
                });
            }
            let body: EventBody =
                serde_json::from_str(&e.payload).map_err(|err| StoreError::UnknownEvent {
                    kind: e.kind.clone(),
                    message: err.to_string(),
                })?;
            if body.kind() != e.kind {
                return Err(StoreError::Corrupt(format!(
                    "event {} says kind {} but its payload is a {}",
                    e.id,
                    e.kind,
                    body.kind()
                )));
            }
            heads.insert(e.workstation, Some((e.seq, e.hash)));
            fresh.push((placed, body));
        }
        // Own events brought back are answered: the registry holds them where it said.
        if let Some(Some((seq, _))) = heads.get(&me) {
            self.conn().execute(
                "UPDATE sync_state SET pushed_seq = max(pushed_seq, ?1) WHERE id = 1",
                [*seq as i64],
            )?;
        }
        let cursor_before = self.pull_cursor()?;
        if self.relearning()? > 0 {
            // The order is being learnt again: the projection is refolded once the pull has caught
            // up, so the page's events are only recorded now.
            for (e, body) in &fresh {
                self.insert_remote(e, body)?;
                out.new += 1;
            }
            if !fresh.is_empty() {
                self.set_relearn(2)?;
            }
            self.conn().execute(
                "UPDATE sync_state SET pull_cursor = max(pull_cursor, ?1) WHERE id = 1",
                [cursor as i64],
            )?;
            self.advance_cursor(cursor_before)?;
            return Ok(out);
        }
        // Does any event applied here belong after this page in the registry's order, and touch
        // what the page touches? (If not, the order makes no difference.)
        let mut ahead: Vec<(i64, i64, i64)> = Vec::new();
        let reorder = match fresh.iter().map(|(e, _)| e.server_seq).min() {
            None => false,
            Some(low) => {
                let cache = self.ahead_of(low)?;
                let meets = !cache.events.is_empty() && {
                    let mut theirs = Touched::default();
                    for (_, b) in &fresh {
                        theirs.add(b);
                    }
                    self.add_history_boxes(&mut theirs)?;
                    cache.touched.meets(&theirs)
                };
                if meets {
                    ahead = cache.events.iter().copied().collect();
                } else {
                    *self.ahead_cache() = Some(cache);
                }
                meets
            }
        };
        // This bench's events that belong after the page: undone, the page applied, then applied
        // again in the registry's order. Without their undo images (written before enrollment,
        // or another bench's), the whole projection is refolded instead.
        let before = self.count_conflicts()?;
        let rebase = reorder && self.can_rebase(&ahead)?;
        if rebase {
            for (_, _, id) in ahead.iter().rev() {
                self.projector().undo(*id)?;
            }
            self.mark_containers_changed();
        }
        let mut inserted = Vec::with_capacity(fresh.len());
        for (e, body) in &fresh {
            inserted.push(self.insert_remote(e, body)?);
            out.new += 1;
        }
        if !reorder {
            for (rowid, (e, body)) in inserted.iter().zip(&fresh) {
                if self
                    .projector()
                    .settle(*rowid, e.event.at, body, false)?
                    .is_some()
                {
                    out.conflicts += 1;
                }
            }
        } else if rebase {
            // The page's events and this bench's, merged in the registry's order (a page may
            // hold events from before and from after this bench's).
            let mut merged: Vec<((i64, i64, i64), Option<usize>)> = Vec::new();
            for (i, (rowid, (e, _))) in inserted.iter().zip(&fresh).enumerate() {
                merged.push(((e.server_seq as i64, 0, *rowid), Some(i)));
            }
            for key in &ahead {
                merged.push((*key, None));
            }
            merged.sort_by_key(|m| m.0);
            for (key, page) in merged {
                match page {
                    Some(i) => {
                        let (e, body) = &fresh[i];
                        self.projector()
                            .settle(inserted[i], e.event.at, body, false)?;
                    }
                    None => {
                        let id = key.2;
                        let (at, payload): (i64, String) = self
                            .conn()
                            .prepare_cached("SELECT at, payload FROM events WHERE id = ?1")?
                            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                        let body = parse_body(&payload, || format!("event {id}"))?;
                        self.projector().settle(id, at, &body, true)?;
                    }
                }
            }
            tracing::debug!(
                undone = ahead.len(),
                "rebased own events around a pulled page"
            );
        } else {
            self.reorder()?;
        }
        if reorder {
            out.conflicts = (self.count_conflicts()? - before).max(0) as u64;
            out.reordered = true;
        }
        self.conn().execute(
            "UPDATE sync_state SET pull_cursor = max(pull_cursor, ?1) WHERE id = 1",
            [cursor as i64],
        )?;
        self.advance_cursor(cursor_before)?;
        // The page's events are below the next page: the cache stays valid past them.
        let newest = self.newest_rowid()?;
        if let Some(c) = self.ahead_cache().as_mut() {
            c.max_rowid = newest;
        }
        Ok(out)
    }

    /// Appends a pulled event to the log at its place in the site's order (not folded).
    fn insert_remote(&mut self, placed: &Placed, body: &EventBody) -> Result<i64, StoreError> {
        let e = &placed.event;
        self.conn()
            .prepare_cached(
                "INSERT INTO events (event_id, workstation, seq, actor, at, kind, payload, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                e.id.as_bytes().as_slice(),
                e.workstation.as_bytes().as_slice(),
                e.seq as i64,
                e.actor,
                e.at,
                e.kind,
                e.payload,
                e.hash.as_bytes().as_slice()
            ])?;
        let rowid = self.conn().last_insert_rowid();
        self.conn()
            .prepare_cached(
                "INSERT INTO event_order (event, major, minor, placed_at) VALUES (?1, ?2, 0, ?3)",
            )?
            .execute(params![rowid, placed.server_seq as i64, placed.received_at])?;
        if matches!(
            body,
            EventBody::ContainerCreated { .. } | EventBody::ContainerMoved { .. }
        ) {
            self.mark_containers_changed();
        }
        Ok(rowid)
    }

    /// An event held here sits at `major` in the site's order. Learnt at another place than it
    /// had before the order was dropped (or with none, outside a relearning), the projection is
    /// refolded when the pull has caught up.
    fn learn_place(&mut self, rowid: i64, major: u64) -> Result<(), StoreError> {
        let had: Option<(i64, i64)> = self
            .conn()
            .prepare_cached("SELECT major, minor FROM event_order WHERE event = ?1")?
            .query_row([rowid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if had == Some((major as i64, 0)) {
            return Ok(());
        }
        let before: Option<i64> = self
            .conn()
            .prepare_cached("DELETE FROM order_relearn WHERE event = ?1 RETURNING major")?
            .query_row([rowid], |r| r.get(0))
            .optional()?;
        self.conn()
            .prepare_cached(
                "INSERT INTO event_order (event, major, minor) VALUES (?1, ?2, 0)
                 ON CONFLICT (event) DO UPDATE SET major = excluded.major, minor = 0",
            )?
            .execute(params![rowid, major as i64])?;
        if had.is_some() || before != Some(major as i64) {
            self.set_relearn(2)?;
        }
        Ok(())
    }

    /// Where the registry put this workstation's own events (told with a pulled page). Events
    /// this database does not hold (it came back from an older copy) are left to the fork check.
    pub fn learn_own_places(&mut self, places: &[(u64, u64)]) -> Result<(), StoreError> {
        if places.is_empty() {
            return Ok(());
        }
        if self.relearning()? == 0 {
            // This workstation's stream is gapless: it holds every seq up to its head.
            let head = self.stream_head(self.workstation())?.map_or(0, |h| h.0);
            let answers: Vec<Answer> = places
                .iter()
                .filter(|&&(seq, _)| seq <= head)
                .map(|&(seq, server_seq)| Answer::Stored {
                    seq,
                    server_seq: Some(server_seq),
                })
                .collect();
            // Already answered when pushed (the usual case): nothing changes.
            return self.record_answers(&answers, 0);
        }
        let before = self.pull_cursor()?;
        for &(seq, server_seq) in places {
            if let Some(&rowid) = self.own_rowids(&[seq as i64])?.first() {
                self.learn_place(rowid, server_seq)?;
            }
        }
        self.advance_cursor(before)
    }

    /// Records what the registry said it refused of other workstations' streams.
    pub fn record_refused(&mut self, refused: &[(Uuid, u64)]) -> Result<(), StoreError> {
        let mut st = self.conn().prepare_cached(
            "INSERT OR IGNORE INTO stream_refused (workstation, seq) VALUES (?1, ?2)",
        )?;
        for (ws, seq) in refused {
            st.execute(params![ws.as_bytes().as_slice(), *seq as i64])?;
        }
        Ok(())
    }

    /// Every seq strictly between `after` and `next` of `ws` was refused by the registry.
    fn refused_between(&self, ws: Uuid, after: u64, next: u64) -> Result<bool, StoreError> {
        let n: i64 = self
            .conn()
            .prepare_cached(
                "SELECT count(*) FROM stream_refused WHERE workstation = ?1 AND seq > ?2 AND seq < ?3",
            )?
            .query_row(
                params![ws.as_bytes().as_slice(), after as i64, next as i64],
                |r| r.get(0),
            )?;
        Ok(n as u64 == next - after - 1)
    }

    fn relearning(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT relearn FROM sync_state WHERE id = 1")?
            .query_row([], |r| r.get(0))?)
    }

    fn set_relearn(&mut self, to: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE sync_state SET relearn = max(relearn, ?1) WHERE id = 1")?
            .execute([to])?;
        Ok(())
    }

    /// The registry's order differs from what this bench learnt above `agreed` (the registry
    /// was restored from an older copy and ordered the events sent again anew): the places
    /// above it are dropped, to be learnt again from the pull, which starts again at `agreed`.
    /// Returns how many places were dropped.
    pub fn relearn_order_above(&mut self, agreed: u64) -> Result<u64, StoreError> {
        let n = self.conn().execute(
            "INSERT OR REPLACE INTO order_relearn (event, major)
             SELECT event, major FROM event_order WHERE major > ?1 AND minor = 0",
            [agreed as i64],
        )?;
        self.conn().execute(
            "DELETE FROM event_order WHERE major > ?1 AND minor = 0",
            [agreed as i64],
        )?;
        self.conn().execute(
            "UPDATE sync_state SET pull_cursor = min(pull_cursor, ?1) WHERE id = 1",
            [agreed as i64],
        )?;
        self.set_relearn(1)?;
        *self.ahead_cache() = None;
        tracing::warn!(
            agreed,
            dropped = n,
            "the registry's order changed above the last position both agree on: learning it again"
        );
        Ok(n as u64)
    }

    /// The pull has caught up: a relearnt order that moved anything (or left events the
    /// registry no longer holds without a place) is folded again, once. Returns whether it was.
    pub fn finish_relearn(&mut self) -> Result<bool, StoreError> {
        let state = self.relearning()?;
        if state == 0 {
            return Ok(false);
        }
        let left: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM order_relearn", [], |r| r.get(0))?;
        let refold = state == 2 || left > 0;
        self.conn().execute("DELETE FROM order_relearn", [])?;
        self.conn()
            .execute("UPDATE sync_state SET relearn = 0 WHERE id = 1", [])?;
        *self.ahead_cache() = None;
        if refold {
            self.reorder()?;
        }
        Ok(refold)
    }

    /// Every one of these is this workstation's and has its undo image.
    fn can_rebase(&self, ahead: &[(i64, i64, i64)]) -> Result<bool, StoreError> {
        let me = self.workstation();
        let mut st = self.conn().prepare_cached(
            "SELECT (SELECT workstation FROM events e WHERE e.id = ?1), EXISTS (SELECT 1 FROM undo WHERE event = ?1)",
        )?;
        for (_, _, id) in ahead {
            let (ws, has): (Vec<u8>, bool) = st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if uuid_of(ws) != me || !has {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn count_conflicts(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT count(*) FROM conflicts", [], |r| r.get(0))?)
    }

    fn stream_head(&self, ws: Uuid) -> Result<Option<(u64, Digest)>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn()
            .prepare_cached(
                "SELECT seq, hash FROM events WHERE workstation = ?1 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([ws.as_bytes().as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(seq, h)| {
            Ok((
                seq as u64,
                digest(&h, || format!("seq {seq} of {ws} has a malformed hash"))?,
            ))
        })
        .transpose()
    }

    fn newest_rowid(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT coalesce(max(id), 0) FROM events")?
            .query_row([], |r| r.get(0))?)
    }

    fn pushed_seq(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT pushed_seq FROM sync_state WHERE id = 1")?
            .query_row([], |r| r.get(0))?)
    }

    /// The events ahead of a page whose lowest `server_seq` is `low`, and what they touch: the
    /// cache brought forward from the page before when it can be (the caller puts it back), or
    /// worked out anew.
    fn ahead_of(&mut self, low: u64) -> Result<AheadCache, StoreError> {
        let newest = self.newest_rowid()?;
        let pushed = self.pushed_seq()?;
        let kept = self
            .ahead_cache()
            .take()
            .filter(|c| c.low <= low && c.pushed_seq == pushed && c.max_rowid <= newest);
        let Some(mut c) = kept else {
            return self.count_ahead(low, newest, pushed);
        };
        // The cursor passed these.
        while c.events.front().is_some_and(|e| e.0 <= low as i64) {
            c.events.pop_front();
            c.dropped += 1;
        }
        c.low = low;
        if c.max_rowid < newest {
            // Written here since: this bench's new events join the back (not ordered yet);
            // anything else (another bench's, an ordered one) means counting again.
            let me = self.workstation();
            let mut st = self.conn().prepare_cached(
                "SELECT id, workstation, seq, EXISTS (SELECT 1 FROM event_order o WHERE o.event = events.id)
                 FROM events WHERE id > ?1 ORDER BY id",
            )?;
            let rows: Vec<(i64, Vec<u8>, i64, bool)> = st
                .query_map([c.max_rowid], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            if rows.iter().any(|(_, ws, seq, ordered)| {
                uuid_of(ws.clone()) != me || *seq <= pushed || *ordered
            }) {
                return self.count_ahead(low, newest, pushed);
            }
            let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
            c.touched.extend(self.events_touched(&ids)?);
            c.events.extend(ids.into_iter().map(|id| (i64::MAX, 0, id)));
            c.max_rowid = newest;
        }
        // Most of what was counted has left: count again rather than carry a stale superset.
        if c.dropped > 1_000 && c.dropped > c.events.len() {
            return self.count_ahead(low, newest, pushed);
        }
        Ok(c)
    }

    /// Works out anew which events are ahead of `low` and what they touch.
    fn count_ahead(&self, low: u64, newest: i64, pushed: i64) -> Result<AheadCache, StoreError> {
        let mut events = std::collections::VecDeque::new();
        {
            let mut st = self.conn().prepare_cached(
                "SELECT major, minor, event FROM event_order WHERE major > ?1 ORDER BY major, minor, event",
            )?;
            let rows = st.query_map([low as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            for row in rows {
                events.push_back(row?);
            }
        }
        for id in self.unpushed_rowids()? {
            events.push_back((i64::MAX, 0, id));
        }
        let ids: Vec<i64> = events.iter().map(|e| e.2).collect();
        let touched = self.events_touched(&ids)?;
        Ok(AheadCache {
            low,
            events,
            touched,
            dropped: 0,
            max_rowid: newest,
            pushed_seq: pushed,
        })
    }

    /// Local ids of this workstation's events past the high-water mark.
    fn unpushed_rowids(&self) -> Result<Vec<i64>, StoreError> {
        let me = self.workstation();
        let mut st = self.conn().prepare_cached(
            "SELECT id FROM events WHERE workstation = ?1 AND seq > (SELECT pushed_seq FROM sync_state)
               AND NOT EXISTS (SELECT 1 FROM event_order o WHERE o.event = events.id) ORDER BY id",
        )?;
        let rows = st.query_map([me.as_bytes().as_slice()], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A view for replaying one specimen alone: its own state from scratch, everything else as the
/// projection holds it, and every position free (where it was in between does not matter; where
/// it ends is checked when the settlement is recorded).
struct Alone<'p, 'c> {
    p: crate::project::Projector<'c>,
    code: &'p kura_domain::SpecimenCode,
    state: Option<kura_domain::SpecimenState>,
}

impl kura_domain::rules::View for Alone<'_, '_> {
    type Error = rusqlite::Error;
    fn specimen(
        &mut self,
        code: &kura_domain::SpecimenCode,
    ) -> Result<Option<kura_domain::SpecimenState>, rusqlite::Error> {
        if code == self.code {
            return Ok(self.state.clone());
        }
        self.p.specimen(code)
    }
    fn container(
        &mut self,
        id: &kura_domain::ContainerId,
    ) -> Result<Option<kura_domain::ContainerInfo>, rusqlite::Error> {
        self.p.container(id)
    }
    fn specimen_at(
        &mut self,
        _: &kura_domain::ContainerId,
        _: kura_domain::Pos,
    ) -> Result<Option<kura_domain::SpecimenCode>, rusqlite::Error> {
        Ok(None)
    }
    fn container_at(
        &mut self,
        parent: &kura_domain::ContainerId,
        pos: kura_domain::Pos,
    ) -> Result<Option<kura_domain::ContainerId>, rusqlite::Error> {
        self.p.container_at(parent, pos)
    }
}

impl Tx<'_> {
    /// The state a specimen would have if the events `without` had never happened: its own
    /// events folded alone in the canonical order. What a settlement that keeps another event
    /// than the one in effect records.
    pub fn replay_specimen(
        &mut self,
        code: &kura_domain::SpecimenCode,
        without: &[Uuid],
    ) -> Result<Option<kura_domain::SpecimenState>, StoreError> {
        use kura_domain::rules::{Effect, Settled, settle};
        let rows: Vec<(Vec<u8>, String)> = {
            let mut st = self.conn().prepare(
                "SELECT e.event_id, e.payload FROM event_subjects x JOIN events e ON e.id = x.event
                 LEFT JOIN event_order o ON o.event = e.id
                 WHERE x.specimen = (SELECT id FROM specimens WHERE code = ?1)
                 ORDER BY coalesce(o.major, 9223372036854775807), coalesce(o.minor, 0), e.id",
            )?;
            let rows = st.query_map([code.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut view = Alone {
            p: self.projector(),
            code,
            state: None,
        };
        for (id, payload) in rows {
            if without.contains(&uuid_of(id)) {
                continue;
            }
            let body = parse_body(&payload, || format!("an event of {code}"))?;
            if body.specimen() != Some(code) {
                continue;
            }
            let state = match settle(&mut view, &body)? {
                Settled::Applied(Effect::Register { state, .. } | Effect::Update(state))
                | Settled::Conflict {
                    effect: Some(Effect::Register { state, .. } | Effect::Update(state)),
                    ..
                } => state,
                _ => continue,
            };
            view.state = Some(state);
        }
        Ok(view.state.map(|mut s| {
            s.in_conflict = false;
            s
        }))
    }
}

impl Store {
    pub fn sync_state(&self) -> Result<SyncState, StoreError> {
        read_state(self.conn())
    }

    /// The highest place at or below `at` that holds another workstation's event, and that
    /// event's id. This bench's own events do not count: after a registry restore it sends them
    /// again itself, and they may land where they were before while the places below changed.
    /// With it, when the registry stored it there, if the page said.
    pub fn others_at_or_below(
        &self,
        at: u64,
    ) -> Result<Option<(u64, Uuid, Option<i64>)>, StoreError> {
        let row: Option<(i64, Vec<u8>, Option<i64>)> = self
            .conn()
            .prepare_cached(
                "SELECT o.major, e.event_id, o.placed_at FROM event_order o JOIN events e ON e.id = o.event
                 WHERE o.minor = 0 AND o.major <= ?1 AND e.workstation <> ?2
                 ORDER BY o.major DESC LIMIT 1",
            )?
            .query_row(
                params![at as i64, self.workstation().as_bytes().as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(row.map(|(major, id, placed)| (major as u64, uuid_of(id), placed)))
    }

    /// The lowest place above `at` that holds another workstation's event.
    pub fn others_above(&self, at: u64) -> Result<Option<u64>, StoreError> {
        let major: Option<i64> = self
            .conn()
            .prepare_cached(
                "SELECT min(o.major) FROM event_order o JOIN events e ON e.id = o.event
                 WHERE o.minor = 0 AND o.major > ?1 AND e.workstation <> ?2",
            )?
            .query_row(
                params![at as i64, self.workstation().as_bytes().as_slice()],
                |r| r.get(0),
            )?;
        Ok(major.map(|m| m as u64))
    }

    /// This workstation's newest event: (seq, hash); (0, zeros) when it wrote none.
    pub fn own_head(&self) -> Result<(u64, Digest), StoreError> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn()
            .prepare_cached(
                "SELECT seq, hash FROM events WHERE workstation = ?1 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([self.workstation().as_bytes().as_slice()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        match row {
            None => Ok((0, GENESIS)),
            Some((seq, h)) => Ok((
                seq as u64,
                digest(&h, || format!("seq {seq} has a malformed hash"))?,
            )),
        }
    }

    /// The hash of this workstation's event `seq`, if it wrote one.
    pub fn own_hash(&self, seq: u64) -> Result<Option<Digest>, StoreError> {
        let h: Option<Vec<u8>> = self
            .conn()
            .prepare_cached("SELECT hash FROM events WHERE workstation = ?1 AND seq = ?2")?
            .query_row(
                params![self.workstation().as_bytes().as_slice(), seq as i64],
                |r| r.get(0),
            )
            .optional()?;
        Ok(h.and_then(|h| Digest::from_slice(&h)))
    }

    /// This workstation's events from `from_seq` on: at most `max_events`, and no more than
    /// `max_bytes` of payload (at least one).
    pub fn own_events(
        &self,
        from_seq: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let me = self.workstation();
        let mut st = self.conn().prepare_cached(
            "SELECT event_id, seq, actor, at, kind, payload, hash FROM events
             WHERE workstation = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = st.query_map(
            params![
                self.workstation().as_bytes().as_slice(),
                from_seq as i64,
                max_events as i64 + 1
            ],
            |r| {
                Ok(Envelope {
                    id: uuid_of(r.get(0)?),
                    workstation: me,
                    seq: r.get::<_, i64>(1)? as u64,
                    actor: r.get(2)?,
                    at: r.get(3)?,
                    kind: r.get(4)?,
                    payload: r.get(5)?,
                    hash: Digest::from_slice(&r.get::<_, Vec<u8>>(6)?).unwrap_or(GENESIS),
                })
            },
        )?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut next = None;
        for e in rows {
            let e = e?;
            // What one event costs on the wire besides its payload (ids, hash, field names).
            let size = e.payload.len() + e.actor.len() + e.kind.len() + 260;
            if !out.is_empty() && (out.len() >= max_events || bytes + size > max_bytes) {
                next = Some(e);
                break;
            }
            bytes += size;
            out.push(e);
        }
        // A signed act travels with its signature: the registry judges them together, so a
        // batch never ends right before a `signed` event (unless it is all there is).
        while next.as_ref().is_some_and(|n| n.kind == "signed") && out.len() > 1 {
            next = out.pop();
        }
        Ok(out)
    }

    /// How many of this workstation's events wait for the registry.
    pub fn waiting(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn()
            // `seq` is gapless per workstation: the newest one less the mark, read off the
            // (workstation, seq) index instead of counting (the window asks every 3 s).
            .prepare_cached(
                "SELECT max(0, coalesce((SELECT max(seq) FROM events WHERE workstation = ?1), 0) - (SELECT pushed_seq FROM sync_state))",
            )?
            .query_row([self.workstation().as_bytes().as_slice()], |r| {
                r.get::<_, i64>(0)
            })? as u64)
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

    fn conflicts_where(
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

    /// How many Kura IDs this workstation issued since `since` (µs): a day's worth, for the
    /// lease warning.
    pub fn ids_issued_since(&self, since: i64) -> Result<u64, StoreError> {
        // Newest first along the (workstation, seq) index, stopping at the first older event.
        let mut st = self.conn().prepare_cached(
            "SELECT at, kind FROM events WHERE workstation = ?1 ORDER BY seq DESC",
        )?;
        let mut rows = st.query([self.workstation().as_bytes().as_slice()])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            if r.get::<_, i64>(0)? < since {
                break;
            }
            let kind: String = r.get(1)?;
            if kind == "registered" || kind == "derived" {
                n += 1;
            }
        }
        Ok(n)
    }
}
