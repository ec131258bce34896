//! Other workstations' events, pulled in the registry's order: each page is checked (read only),
//! the way it goes into the projection decided (a pure function, [`decide`]), then written.

use std::collections::HashMap;

use kura_domain::EventBody;
use kura_domain::Placed;
use kura_domain::hash::{Digest, GENESIS};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use uuid::Uuid;

use super::order::{OrderKey, Touched};
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

/// A pulled page as [`Tx::check_page`] found it.
#[derive(Default)]
struct CheckedPage<'p> {
    /// Events already here, with their local ids: only their places are learnt.
    known: Vec<(i64, &'p Placed)>,
    /// Events new here, in the page's order, with their payloads read.
    fresh: Vec<(&'p Placed, EventBody)>,
    /// The newest of this workstation's own events the page brings back (to a database that
    /// came back from a copy).
    own_head: Option<u64>,
}

/// How a checked page goes into the projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fold {
    /// The order is being learnt again (after a registry restore), or an earlier page of the
    /// pull left a refold for its end: the events are only recorded; the projection is refolded
    /// once the pull has caught up.
    Record,
    /// Nothing applied here belongs after the page, or nothing of it touches what the page
    /// touches: each event is settled as it comes.
    InOrder,
    /// This bench's own events after the page touch what it touches, and each has its undo
    /// image: they are undone, the page applied, and they are applied again in the registry's
    /// order.
    Rebase,
    /// As for a rebase, but some of them have no undo image (written before enrollment, or
    /// another bench's): the whole projection is rebuilt in the canonical order, once, when the
    /// pull has caught up (the page's events are recorded, and so are the pages after it).
    Refold,
}

/// What [`decide`] decides by.
#[derive(Debug, Clone, Copy)]
pub(super) struct PageFacts<'a> {
    /// The order is being learnt again.
    pub relearning: bool,
    /// An earlier page of this pull left the projection to be refolded at its end.
    pub refold_pending: bool,
    /// What the page's new events touch (with the boxes their specimens were in).
    pub page: &'a Touched,
    /// What the events applied here that belong after the page touch; `None` when there are
    /// none.
    pub ahead: Option<&'a Touched>,
    /// Every one of those is this workstation's and has its undo image (read only when the two
    /// meet).
    pub undo_images: bool,
}

/// How a page goes into the projection: the order of two sets of events matters only when
/// they touch something in common.
pub(super) fn decide(f: &PageFacts<'_>) -> Fold {
    if f.relearning || f.refold_pending {
        return Fold::Record;
    }
    match f.ahead {
        Some(ahead) if ahead.meets(f.page) => {
            if f.undo_images {
                Fold::Rebase
            } else {
                Fold::Refold
            }
        }
        _ => Fold::InOrder,
    }
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
    /// (as the registry did); an event already here is skipped. The steps: [`Tx::check_page`]
    /// reads and refuses; [`Tx::learn_known`] records where the events already here sit (what
    /// comes next reads it); [`decide`] says how the new ones go into the projection, from what
    /// [`Tx::plan_page`] reads; [`Tx::write_page`] writes them.
    pub fn apply_remote(
        &mut self,
        events: &[Placed],
        cursor: u64,
    ) -> Result<PullApplied, StoreError> {
        let page = self.check_page(events)?;
        self.learn_known(&page)?;
        let (fold, ahead) = self.plan_page(&page.fresh)?;
        let mut out = self.write_page(&page.fresh, fold, &ahead, cursor)?;
        out.known = page.known.len() as u64;
        Ok(out)
    }

    /// Checks a page against what is here, writing nothing: an event already here must carry
    /// the same hash; a new one must continue its workstation's chain (or follow a hole the
    /// registry said it refused), and its payload must be the kind it says.
    fn check_page<'p>(&self, events: &'p [Placed]) -> Result<CheckedPage<'p>, StoreError> {
        let me = self.workstation();
        let mut page = CheckedPage::default();
        let mut heads: HashMap<Uuid, Option<(u64, Digest)>> = HashMap::new();
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
                page.known.push((rowid, placed));
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
            if own {
                page.own_head = Some(e.seq);
            }
            page.fresh.push((placed, body));
        }
        Ok(page)
    }

    /// Reads what [`decide`] needs, and no more: whether the order is being learnt again; the
    /// events applied here that belong after the page (only when it has new events) and what
    /// they touch; what the page touches, with the boxes its specimens were in (only when there
    /// are such events); whether they all have undo images (only when the two meet). Returns the
    /// decision and, for a rebase or refold, the events ahead (their canonical keys); otherwise
    /// the ahead cache is kept for the next page.
    fn plan_page(
        &mut self,
        fresh: &[(&Placed, EventBody)],
    ) -> Result<(Fold, Vec<OrderKey>), StoreError> {
        let relearning = self.relearning()? > 0;
        let refold_pending = self.refold_pending()?;
        let mut page = Touched::default();
        let mut facts = PageFacts {
            relearning,
            refold_pending,
            page: &page,
            ahead: None,
            undo_images: false,
        };
        let Some(low) = fresh.iter().map(|(e, _)| e.server_seq).min() else {
            return Ok((decide(&facts), Vec::new()));
        };
        if relearning || refold_pending {
            return Ok((decide(&facts), Vec::new()));
        }
        let cache = self.ahead_of(low)?;
        if cache.events.is_empty() {
            *self.ahead_cache() = Some(cache);
            return Ok((decide(&facts), Vec::new()));
        }
        for (_, b) in fresh {
            page.add(b);
        }
        self.add_history_boxes(&mut page)?;
        let meets = cache.touched.meets(&page);
        let ahead: Vec<OrderKey> = if meets {
            cache.events.iter().copied().collect()
        } else {
            Vec::new()
        };
        let undo_images = meets && self.can_rebase(&ahead)?;
        facts = PageFacts {
            relearning,
            refold_pending,
            page: &page,
            ahead: Some(&cache.touched),
            undo_images,
        };
        let fold = decide(&facts);
        if fold == Fold::InOrder {
            *self.ahead_cache() = Some(cache);
        }
        Ok((fold, ahead))
    }

    /// The places of the page's events already here, and this workstation's own events it
    /// brings back answered: before the plan, which reads both (the order and the high-water
    /// mark).
    fn learn_known(&mut self, page: &CheckedPage<'_>) -> Result<(), StoreError> {
        for (rowid, placed) in &page.known {
            self.learn_place(*rowid, placed.server_seq)?;
            self.conn()
                .prepare_cached("UPDATE event_order SET placed_at = ?2 WHERE event = ?1")?
                .execute(params![rowid, placed.received_at])?;
        }
        // Own events brought back are answered: the registry holds them where it said.
        if let Some(seq) = page.own_head {
            self.conn().execute(
                "UPDATE sync_state SET pushed_seq = max(pushed_seq, ?1) WHERE id = 1",
                [seq as i64],
            )?;
        }
        Ok(())
    }

    /// Writes a checked page's new events the way [`decide`] said, and the new cursor.
    fn write_page(
        &mut self,
        fresh: &[(&Placed, EventBody)],
        fold: Fold,
        ahead: &[OrderKey],
        cursor: u64,
    ) -> Result<PullApplied, StoreError> {
        let mut out = PullApplied::default();
        let cursor_before = self.pull_cursor()?;
        let before = self.count_conflicts()?;
        if fold == Fold::Rebase {
            // This bench's events that belong after the page: undone, the page applied, then
            // applied again in the registry's order.
            for (_, _, id) in ahead.iter().rev() {
                self.projector().undo(*id)?;
            }
            self.mark_containers_changed();
        }
        let mut inserted = Vec::with_capacity(fresh.len());
        for (e, body) in fresh {
            inserted.push(self.insert_remote(e, body)?);
            out.new += 1;
        }
        match fold {
            Fold::Record => {
                // The projection is refolded once the pull has caught up.
                if !fresh.is_empty() && self.relearning()? > 0 {
                    self.set_relearn(2)?;
                }
            }
            Fold::InOrder => {
                for (rowid, (e, body)) in inserted.iter().zip(fresh) {
                    if self
                        .projector()
                        .settle(*rowid, e.event.at, body, false)?
                        .is_some()
                    {
                        out.conflicts += 1;
                    }
                }
            }
            Fold::Rebase => {
                // The page's events and this bench's, merged in the registry's order (a page
                // may hold events from before and from after this bench's).
                let mut merged: Vec<(OrderKey, Option<usize>)> = Vec::new();
                for (i, (rowid, (e, _))) in inserted.iter().zip(fresh).enumerate() {
                    merged.push(((e.server_seq as i64, 0, *rowid), Some(i)));
                }
                for key in ahead {
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
            }
            Fold::Refold => self.defer_refold()?,
        }
        if fold == Fold::Rebase {
            out.conflicts = (self.count_conflicts()? - before).max(0) as u64;
            out.reordered = true;
        }
        self.conn().execute(
            "UPDATE sync_state SET pull_cursor = max(pull_cursor, ?1) WHERE id = 1",
            [cursor as i64],
        )?;
        self.advance_cursor(cursor_before)?;
        if fold != Fold::Record {
            // The page's events are below the next page: the cache stays valid past them.
            let newest = self.newest_rowid()?;
            if let Some(c) = self.ahead_cache().as_mut() {
                c.max_rowid = newest;
            }
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

#[cfg(test)]
mod tests {
    use kura_domain::{ContainerId, Location, Placement, Pos, SpecimenCode};

    use super::*;

    fn tube(code: &str) -> SpecimenCode {
        SpecimenCode::from_stored(code.into())
    }

    fn boxed(code: &str) -> ContainerId {
        ContainerId::from_stored(code.into())
    }

    fn thawed(code: &str) -> EventBody {
        EventBody::Thawed {
            specimen: tube(code),
        }
    }

    /// `code` moved within `bx`, from A1 to A2.
    fn moved(code: &str, bx: &str) -> EventBody {
        let at = |col| Location {
            container: boxed(bx),
            pos: Pos { row: 0, col },
        };
        EventBody::Moved {
            specimen: tube(code),
            from: at(0),
            to: at(1),
        }
    }

    fn container_moved(bx: &str, rack: &str) -> EventBody {
        EventBody::ContainerMoved {
            container: boxed(bx),
            from: None,
            to: Placement {
                parent: boxed(rack),
                pos: None,
            },
        }
    }

    fn user_disabled(user: &str) -> EventBody {
        EventBody::UserDisabled {
            user: user.into(),
            reason: "left".into(),
        }
    }

    fn touched(bodies: &[EventBody]) -> Touched {
        let mut t = Touched::default();
        for b in bodies {
            t.add(b);
        }
        t
    }

    /// How a pulled page goes into the projection, as a table: what the page touches, what the
    /// events applied here after it touch (none, or a list), whether those all have undo images,
    /// whether the order is being learnt again, and whether an earlier page left a refold for
    /// the end of the pull.
    #[test]
    fn decide_folds_in_order_unless_the_events_ahead_touch_the_page() {
        use Fold::*;
        // (what, page, ahead, undo images, relearning, refold pending, fold)
        type Case = (
            &'static str,
            Vec<EventBody>,
            Option<Vec<EventBody>>,
            bool,
            bool,
            bool,
            Fold,
        );
        let cases: Vec<Case> = vec![
            (
                "nothing applied here after the page",
                vec![thawed("T1")],
                None,
                true,
                false,
                false,
                InOrder,
            ),
            (
                "an empty page",
                vec![],
                Some(vec![thawed("T1")]),
                true,
                false,
                false,
                InOrder,
            ),
            (
                "own events after it, on other specimens in other boxes",
                vec![thawed("T1"), moved("T2", "BX1")],
                Some(vec![thawed("T3"), moved("T4", "BX2")]),
                true,
                false,
                false,
                InOrder,
            ),
            (
                "the same specimen, undo images kept",
                vec![thawed("T1")],
                Some(vec![thawed("T1")]),
                true,
                false,
                false,
                Rebase,
            ),
            (
                "the same specimen, without undo images",
                vec![thawed("T1")],
                Some(vec![thawed("T1")]),
                false,
                false,
                false,
                Refold,
            ),
            (
                "other specimens in the same box",
                vec![moved("T1", "BX1")],
                Some(vec![moved("T2", "BX1")]),
                true,
                false,
                false,
                Rebase,
            ),
            (
                "both change the layout",
                vec![container_moved("BX1", "R1")],
                Some(vec![container_moved("BX2", "R2")]),
                true,
                false,
                false,
                Rebase,
            ),
            (
                "only one changes the layout",
                vec![container_moved("BX1", "R1")],
                Some(vec![thawed("T1")]),
                true,
                false,
                false,
                InOrder,
            ),
            (
                "the same user",
                vec![user_disabled("U0001")],
                Some(vec![user_disabled("U0001")]),
                true,
                false,
                false,
                Rebase,
            ),
            (
                "a user named like a specimen is not that specimen",
                vec![user_disabled("T1")],
                Some(vec![thawed("T1")]),
                true,
                false,
                false,
                InOrder,
            ),
            (
                "the order being learnt again",
                vec![thawed("T1")],
                Some(vec![thawed("T1")]),
                true,
                true,
                false,
                Record,
            ),
            (
                "an earlier page of the pull left a refold for its end",
                vec![thawed("T1")],
                Some(vec![thawed("T1")]),
                false,
                false,
                true,
                Record,
            ),
            (
                "a refold left for the end, on other specimens",
                vec![thawed("T2")],
                Some(vec![thawed("T1")]),
                false,
                false,
                true,
                Record,
            ),
        ];
        for (what, page, ahead, undo_images, relearning, refold_pending, want) in cases {
            let page = touched(&page);
            let ahead = ahead.map(|a| touched(&a));
            let facts = PageFacts {
                relearning,
                refold_pending,
                page: &page,
                ahead: ahead.as_ref(),
                undo_images,
            };
            assert_eq!(decide(&facts), want, "{what}");
        }
    }
}
