//! One write transaction: events appended with their projection, atomically.

use kura_domain::rules::Effect;
use kura_domain::{
    ContainerId, ContainerInfo, Event, EventBody, Pos, RuleError, SpecimenCode, SpecimenState,
    Timestamp,
};
use rusqlite::{OptionalExtension, Transaction, params};
use uuid::Uuid;

use crate::StoreError;
use crate::project::{ContainerCache, Projector, read_state};
use crate::sync::AheadCache;
use kura_domain::hash::{Digest, GENESIS, event_hash};

/// An open write transaction. Dropping it without [`Store::write`](crate::Store::write)
/// committing rolls everything back.
pub struct Tx<'a> {
    tx: Transaction<'a>,
    workstation: Uuid,
    next_seq: i64,
    prev_hash: Digest,
    cache: &'a mut ContainerCache,
    ahead: &'a mut Option<AheadCache>,
    /// Set when a write failed half-way: the transaction must not commit.
    poisoned: bool,
    /// Set when a container was created or moved (read caches must forget them).
    containers_changed: bool,
    /// Enrolled: this workstation's events keep undo images until the registry's order settles
    /// them.
    undo: bool,
    /// Back from a copy and not synced since: nothing new is recorded (see 0011).
    restored: bool,
    /// Whether any tube is held by a sending site (rows are added only outside a write
    /// transaction): when none is, no event needs the per-event `held` probe.
    any_held: bool,
}

impl<'a> Tx<'a> {
    pub(crate) fn begin(
        tx: Transaction<'a>,
        workstation: Uuid,
        cache: &'a mut ContainerCache,
        ahead: &'a mut Option<AheadCache>,
    ) -> Result<Tx<'a>, StoreError> {
        let last: Option<(i64, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT seq, hash FROM events WHERE workstation = ?1 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([&workstation.as_bytes()[..]], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let (next_seq, prev_hash) = match last {
            Some((seq, hash)) => (
                seq + 1,
                crate::sync::digest(&hash, || format!("event seq {seq} has a malformed hash"))?,
            ),
            None => (1, GENESIS),
        };
        let (undo, restored): (bool, bool) = tx
            .prepare_cached(
                "SELECT registry_url IS NOT NULL, restored_at IS NOT NULL FROM sync_state WHERE id = 1",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((false, false));
        let any_held: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM held)")?
            .query_row([], |r| r.get(0))?;
        Ok(Tx {
            tx,
            workstation,
            next_seq,
            prev_hash,
            cache,
            ahead,
            poisoned: false,
            containers_changed: false,
            undo,
            restored,
            any_held,
        })
    }

    pub(crate) fn containers_changed(&self) -> bool {
        self.containers_changed
    }

    pub(crate) fn commit(self) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(StoreError::Corrupt(
                "a write failed part-way; the transaction was rolled back".into(),
            ));
        }
        self.tx.commit()?;
        Ok(())
    }

    pub(crate) fn projector(&mut self) -> Projector<'_> {
        Projector {
            conn: &self.tx,
            cache: &mut *self.cache,
        }
    }

    pub(crate) fn conn(&self) -> &rusqlite::Connection {
        &self.tx
    }

    pub(crate) fn cache_mut(&mut self) -> &mut ContainerCache {
        self.cache
    }

    pub(crate) fn ahead_cache(&mut self) -> &mut Option<AheadCache> {
        self.ahead
    }

    pub(crate) fn undo_enabled(&self) -> bool {
        self.undo
    }

    pub(crate) fn mark_containers_changed(&mut self) {
        self.containers_changed = true;
    }

    /// This workstation's id.
    pub fn workstation(&self) -> Uuid {
        self.workstation
    }

    /// Checks `body` against the rules; on success records it: projection, event row (next
    /// sequence number, hash chained to the previous event). On a rule error
    /// nothing is written and the transaction stays usable.
    pub fn append(
        &mut self,
        id: Uuid,
        actor: &str,
        at: Timestamp,
        body: EventBody,
    ) -> Result<Event, StoreError> {
        if self.poisoned {
            return Err(StoreError::Corrupt(
                "an earlier write in this transaction failed".into(),
            ));
        }
        if self.restored {
            return Err(StoreError::RestoredUnsynced);
        }
        if self.any_held {
            self.projector().held_refusal(&body)?;
        }
        let effect: Effect = self.projector().decide(&body)?;
        if matches!(
            effect,
            Effect::CreateContainer(_) | Effect::MoveContainer { .. }
        ) {
            self.containers_changed = true;
        }
        match self.record(id, actor, at, body, effect) {
            Ok(e) => Ok(e),
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    fn record(
        &mut self,
        id: Uuid,
        actor: &str,
        at: Timestamp,
        body: EventBody,
        effect: Effect,
    ) -> Result<Event, StoreError> {
        let seq = self.next_seq;
        let kind = body.kind();
        let payload = body.canonical();
        let hash = event_hash(
            &self.prev_hash,
            id,
            self.workstation,
            seq,
            actor,
            at.0,
            kind,
            &payload,
        );
        // (No RETURNING here: SQLite re-prepares RETURNING statements on every run.)
        self.tx
            .prepare_cached(
                "INSERT INTO events (event_id, workstation, seq, actor, at, kind, payload, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                &id.as_bytes()[..],
                &self.workstation.as_bytes()[..],
                seq,
                actor,
                at.0,
                kind,
                payload,
                &hash.as_bytes()[..]
            ])?;
        let rowid = self.tx.last_insert_rowid();
        if self.undo {
            self.projector().keep_undo(rowid, &effect)?;
        }
        self.projector().write(rowid, at.0, effect)?;
        self.projector().resolved(rowid, &body)?;
        self.next_seq += 1;
        self.prev_hash = hash;
        Ok(Event {
            id,
            workstation: self.workstation,
            seq: seq as u64,
            actor: actor.to_string(),
            at,
            body,
        })
    }

    /// The current state of a specimen, as of this transaction.
    pub fn specimen(&self, code: &SpecimenCode) -> Result<Option<SpecimenState>, StoreError> {
        Ok(read_state(&self.tx, code)?)
    }

    /// A container, as of this transaction.
    pub fn container(&mut self, id: &ContainerId) -> Result<Option<ContainerInfo>, StoreError> {
        Ok(self.projector().container_cached(id)?.map(|c| c.info))
    }

    /// A container, or the "does not exist" rule error.
    pub fn require_container(&mut self, id: &ContainerId) -> Result<ContainerInfo, StoreError> {
        self.container(id)?.ok_or_else(|| {
            RuleError::UnknownContainer {
                container: id.to_string(),
            }
            .into()
        })
    }

    /// The positions of `container` taken by specimens (including those held for checked-out ones).
    pub fn occupied(&mut self, container: &ContainerId) -> Result<Vec<Pos>, StoreError> {
        let Some(c) = self.projector().container_cached(container)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .tx
            .prepare_cached("SELECT row, col FROM specimens WHERE container = ?1")?;
        let rows = stmt.query_map([c.rowid], |r| Ok(Pos::new(r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The positions of `parent` taken by containers.
    pub fn occupied_slots(&mut self, parent: &ContainerId) -> Result<Vec<Pos>, StoreError> {
        let Some(c) = self.projector().container_cached(parent)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self.tx.prepare_cached(
            "SELECT prow, pcol FROM containers WHERE parent = ?1 AND prow IS NOT NULL",
        )?;
        let rows = stmt.query_map([c.rowid], |r| Ok(Pos::new(r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The next free position of a specimen container by its fill order.
    pub fn next_free(&mut self, container: &ContainerId) -> Result<Pos, StoreError> {
        let info = self.require_container(container)?;
        if !info.kind.holds_specimens() {
            return Err(RuleError::NotForSpecimens {
                container: container.to_string(),
                kind: info.kind.as_str().into(),
            }
            .into());
        }
        let taken: std::collections::HashSet<Pos> = self.occupied(container)?.into_iter().collect();
        info.geometry
            .next_free(|p| taken.contains(&p))
            .ok_or_else(|| {
                RuleError::ContainerFull {
                    container: container.to_string(),
                    capacity: info.geometry.capacity().unwrap_or(0),
                }
                .into()
            })
    }

    /// Specimens of a donor that are not disposed or consumed.
    pub fn donor_specimens(&self, donor: &str) -> Result<Vec<SpecimenCode>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT code FROM specimens WHERE donor = ?1 AND status NOT IN ('disposed', 'consumed') ORDER BY id",
        )?;
        let rows = stmt.query_map([donor], |r| r.get::<_, String>(0))?;
        Ok(rows
            .map(|r| r.map(SpecimenCode::from_stored))
            .collect::<Result<_, _>>()?)
    }

    /// A donor's specimens and everything derived from them through the lineage, not yet
    /// disposed or consumed, in registration order.
    pub fn donor_lineage(&self, donor: &str) -> Result<Vec<SpecimenCode>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "WITH RECURSIVE fam(code) AS (
                 SELECT code FROM specimens WHERE donor = ?1
                 UNION SELECT s.code FROM specimens s JOIN fam ON s.parent = fam.code)
             SELECT s.code FROM specimens s JOIN fam ON fam.code = s.code
             WHERE s.status NOT IN ('disposed', 'consumed') ORDER BY s.id",
        )?;
        let rows = stmt.query_map([donor], |r| r.get::<_, String>(0))?;
        Ok(rows
            .map(|r| r.map(SpecimenCode::from_stored))
            .collect::<Result<_, _>>()?)
    }

    /// The stored hash of an event, as a signature binds it.
    pub fn event_hash(&self, id: uuid::Uuid) -> Result<Option<Digest>, StoreError> {
        crate::query::event_hash(self.conn(), id)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    pub fn delete_meta(&self, key: &str) -> Result<(), StoreError> {
        self.tx.execute("DELETE FROM meta WHERE key = ?1", [key])?;
        Ok(())
    }
}
