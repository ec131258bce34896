//! This workstation's side of a push: its events past the high-water mark, in batches, and the
//! registry's answers to them.

use kura_domain::Envelope;
use kura_domain::hash::{Digest, GENESIS};
use rusqlite::{OptionalExtension, params};

use super::{digest, uuid_of};
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

impl Tx<'_> {
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

    pub(super) fn pushed_seq(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT pushed_seq FROM sync_state WHERE id = 1")?
            .query_row([], |r| r.get(0))?)
    }

    /// Local ids of this workstation's events past the high-water mark.
    pub(super) fn unpushed_rowids(&self) -> Result<Vec<i64>, StoreError> {
        let me = self.workstation();
        let mut st = self.conn().prepare_cached(
            "SELECT id FROM events WHERE workstation = ?1 AND seq > (SELECT pushed_seq FROM sync_state)
               AND NOT EXISTS (SELECT 1 FROM event_order o WHERE o.event = events.id) ORDER BY id",
        )?;
        let rows = st.query_map([me.as_bytes().as_slice()], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Store {
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
}
