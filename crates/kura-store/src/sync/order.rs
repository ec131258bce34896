//! The canonical order: the registry's `server_seq`, then this bench's own events it has not
//! ordered yet. What this bench applied ahead of a pulled page and what it touches
//! (`AheadCache`, `Touched`), learning places, relearning the order after a registry restore,
//! the refold, and one specimen replayed alone (for settlements).

use std::collections::HashSet;

use kura_domain::EventBody;
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use super::pull::PullApplied;
use super::push::Answer;
use super::{parse_body, uuid_of};
use crate::verify::replay;
use crate::{StoreError, Tx};

/// The `meta` key of a refold left for the end of the pull: the number of conflicts open when
/// it was left.
pub(crate) const REFOLD_PENDING: &str = "refold_pending";

/// Names the events, containers and boxes a set of events touches, to tell whether two sets
/// can be applied in either order.
#[derive(Debug, Default)]
pub(super) struct Touched {
    /// Specimen codes (and printed label codes).
    pub(super) names: HashSet<String>,
    /// Containers named by positions, moves and creations.
    pub(super) boxes: HashSet<String>,
    pub(super) containers_changed: bool,
}

impl Touched {
    pub(super) fn add(&mut self, body: &EventBody) {
        let f = body.footprint();
        self.names.extend(f.specimens);
        // Not a code any specimen or container can have (codes have no colon).
        self.names
            .extend(f.users.into_iter().map(|u| format!("user:{u}")));
        self.boxes.extend(f.containers);
        self.containers_changed |= f.layout;
    }

    pub(super) fn extend(&mut self, other: Touched) {
        self.names.extend(other.names);
        self.boxes.extend(other.boxes);
        self.containers_changed |= other.containers_changed;
    }

    pub(super) fn meets(&self, other: &Touched) -> bool {
        (self.containers_changed && other.containers_changed)
            || !self.names.is_disjoint(&other.names)
            || !self.boxes.is_disjoint(&other.boxes)
    }
}

/// An event's place in the canonical order: (major, minor, local id); not ordered yet: major =
/// `i64::MAX`.
pub(super) type OrderKey = (i64, i64, i64);

/// The events applied here that the canonical order puts after a pulled page (the ones the
/// registry ordered after it, and this bench's it has not ordered yet), and what they touch.
/// Worked out once, then carried from one page of a pull to the next: the pages rise, so events
/// only leave the front (the cursor passed them) and this bench's new events join the back. A
/// bench with 100,000 events of its own waiting behind a million pulled ones would otherwise read
/// and parse all of its own at every page.
#[derive(Debug)]
pub(crate) struct AheadCache {
    /// Valid for pages whose lowest `server_seq` is at least this.
    pub(super) low: u64,
    /// (major, minor, local id) in the canonical order; not ordered yet: major = `i64::MAX`.
    pub(super) events: std::collections::VecDeque<OrderKey>,
    /// What they touch. Events that left the front stay counted until the next full count: a
    /// superset can only cause a rebase that was not needed, never miss one.
    pub(super) touched: Touched,
    /// Events that left since the last full count.
    pub(super) dropped: usize,
    /// The newest local event id and the high-water mark it was brought up to date with.
    pub(super) max_rowid: i64,
    pub(super) pushed_seq: i64,
}

/// A view for replaying one specimen alone: its own state from scratch, everything else as the
/// projection holds it, and every position free (where it was in between does not matter; where
/// it ends is checked when the settlement is recorded).
pub(super) struct Alone<'p, 'c> {
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
    pub(super) fn newest_major(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT coalesce(max(major), 0) FROM event_order")?
            .query_row([], |r| r.get(0))?)
    }

    pub(super) fn own_rowids(&self, seqs: &[i64]) -> Result<Vec<i64>, StoreError> {
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
    pub(super) fn ordered_after(
        &self,
        major: u64,
        except: Option<&[i64]>,
    ) -> Result<Vec<i64>, StoreError> {
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
    pub(super) fn events_touched(&self, rowids: &[i64]) -> Result<Touched, StoreError> {
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
    pub(super) fn add_history_boxes(&self, t: &mut Touched) -> Result<(), StoreError> {
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
    pub(super) fn reorder(&mut self) -> Result<(), StoreError> {
        tracing::info!(
            "pulled events belong before events applied here: rebuilding in the registry's order"
        );
        self.cache_mut().clear();
        self.mark_containers_changed();
        let own = self.undo_enabled().then(|| self.workstation());
        replay(self.conn(), self.conn(), own, &mut |_, _| {})?;
        Ok(())
    }

    /// An event held here sits at `major` in the site's order. Learnt at another place than it
    /// had before the order was dropped (or with none, outside a relearning), the projection is
    /// refolded when the pull has caught up.
    pub(super) fn learn_place(&mut self, rowid: i64, major: u64) -> Result<(), StoreError> {
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

    pub(super) fn relearning(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT relearn FROM sync_state WHERE id = 1")?
            .query_row([], |r| r.get(0))?)
    }

    pub(super) fn set_relearn(&mut self, to: i64) -> Result<(), StoreError> {
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

    /// Pulled events belong before events applied here that have no undo image: the projection
    /// must be folded again in the registry's order. Not now but once, when the pull has caught
    /// up ([`Tx::finish_pull`]): a large site's pull may hold many such pages, and the pages after
    /// this one are only recorded. The conflicts open now are kept in `meta`, to tell how many the
    /// refold adds; a pull cut short leaves the refold to the next one.
    pub(super) fn defer_refold(&mut self) -> Result<(), StoreError> {
        if !self.refold_pending()? {
            let open = self.count_conflicts()?;
            self.set_meta(REFOLD_PENDING, &open.to_string())?;
        }
        Ok(())
    }

    /// Whether a page of the pull left the projection to be refolded at its end.
    pub(super) fn refold_pending(&self) -> Result<bool, StoreError> {
        Ok(self.meta(REFOLD_PENDING)?.is_some())
    }

    /// The pull has caught up: a relearnt order that moved anything (or left events the
    /// registry no longer holds without a place), or pages that had to go before events without
    /// undo images, are folded again, once. Says whether the projection was refolded and how
    /// many conflicts that opened.
    pub fn finish_pull(&mut self) -> Result<PullApplied, StoreError> {
        let state = self.relearning()?;
        let pending = self.meta(REFOLD_PENDING)?;
        if state == 0 && pending.is_none() {
            return Ok(PullApplied::default());
        }
        let left: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM order_relearn", [], |r| r.get(0))?;
        let refold = state == 2 || left > 0 || pending.is_some();
        self.conn().execute("DELETE FROM order_relearn", [])?;
        self.conn()
            .execute("UPDATE sync_state SET relearn = 0 WHERE id = 1", [])?;
        self.delete_meta(REFOLD_PENDING)?;
        *self.ahead_cache() = None;
        let before = match pending.and_then(|p| p.parse().ok()) {
            Some(open) => open,
            None => self.count_conflicts()?,
        };
        if refold {
            self.reorder()?;
        }
        Ok(PullApplied {
            conflicts: (self.count_conflicts()? - before).max(0) as u64,
            reordered: refold,
            ..PullApplied::default()
        })
    }

    /// A pull stopped before it caught up (the connection was cut, the registry went away): a
    /// refold its pages left is done now, so that what they brought is not left out of the
    /// projection until the next pull ends. While the order is being learnt again the refold
    /// waits for the end (the places are not all known yet).
    pub fn pull_cut_short(&mut self) -> Result<PullApplied, StoreError> {
        if self.relearning()? > 0 {
            return Ok(PullApplied::default());
        }
        self.finish_pull()
    }

    /// Every one of these is this workstation's and has its undo image.
    pub(super) fn can_rebase(&self, ahead: &[OrderKey]) -> Result<bool, StoreError> {
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

    pub(super) fn newest_rowid(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT coalesce(max(id), 0) FROM events")?
            .query_row([], |r| r.get(0))?)
    }

    /// The events ahead of a page whose lowest `server_seq` is `low`, and what they touch: the
    /// cache brought forward from the page before when it can be (the caller puts it back), or
    /// worked out anew.
    pub(super) fn ahead_of(&mut self, low: u64) -> Result<AheadCache, StoreError> {
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
    pub(super) fn count_ahead(
        &self,
        low: u64,
        newest: i64,
        pushed: i64,
    ) -> Result<AheadCache, StoreError> {
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
