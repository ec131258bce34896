//! Other workstations' events, pulled in the registry's order: each page is checked (read only),
//! the way it goes into the projection decided (a pure function, [`decide`]), then written.

use std::collections::HashMap;

use kura_domain::EventBody;
use kura_domain::Placed;
use kura_domain::hash::{Digest, GENESIS};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use uuid::Uuid;

use super::order::Touched;
use super::{digest, parse_body, uuid_of};
use crate::{Store, StoreError, Tx};

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

impl Tx<'_> {
    /// The pull cursor says every event of the site up to it is here. Events the registry placed
    /// right after it that are here already (this workstation's own, just acknowledged) extend
    /// that: the cursor moves over them, so a bench that pushed a million events does not read
    /// a million places back. Undo images of events at or below the cursor are dropped: nothing
    /// can come before them any more.
    pub(super) fn advance_cursor(&mut self, before: i64) -> Result<(), StoreError> {
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

    pub(super) fn pull_cursor(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT pull_cursor FROM sync_state WHERE id = 1")?
            .query_row([], |r| r.get(0))?)
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
    pub(super) fn insert_remote(
        &mut self,
        placed: &Placed,
        body: &EventBody,
    ) -> Result<i64, StoreError> {
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
    pub(super) fn refused_between(
        &self,
        ws: Uuid,
        after: u64,
        next: u64,
    ) -> Result<bool, StoreError> {
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

    pub(super) fn stream_head(&self, ws: Uuid) -> Result<Option<(u64, Digest)>, StoreError> {
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
}

impl Store {
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
}
