//! `verify` proves the local log was not edited and that the projection is what the log says;
//! `rebuild` recomputes the projection from the log.

use kura_domain::EventBody;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use uuid::Uuid;

use crate::project::{ContainerCache, Projector};
use crate::{Store, StoreError};
use kura_domain::hash::{Digest, GENESIS, event_hash};

/// One thing `verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyProblem {
    /// A stable code: `hash_mismatch`, `sequence_gap`, `bad_payload`, `replay_failed`,
    /// `projection_differs`, `append_only_guard_missing`.
    pub code: &'static str,
    pub event_id: Option<Uuid>,
    pub workstation: Option<Uuid>,
    pub seq: Option<i64>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub workstations: u64,
    pub specimens: u64,
    pub problems: Vec<VerifyProblem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    pub events: u64,
    pub specimens: u64,
    pub containers: u64,
}

const MAX_PROBLEMS: usize = 100;

fn problem(
    code: &'static str,
    event_id: Option<Uuid>,
    ws: Option<Uuid>,
    seq: Option<i64>,
    message: String,
) -> VerifyProblem {
    VerifyProblem {
        code,
        event_id,
        workstation: ws,
        seq,
        message,
    }
}

/// The order the projection folds the log in: the registry's order (`event_order`), then the
/// events it has not ordered yet, in local order. Without sync, that is the local order.
pub(crate) const CANONICAL_ORDER: &str =
    "SELECT e.id, e.event_id, e.seq, e.at, e.payload FROM events e
     LEFT JOIN event_order o ON o.event = e.id
     ORDER BY coalesce(o.major, 9223372036854775807), coalesce(o.minor, 0), e.id";

/// Re-applies every event, in the canonical order, to an emptied projection. An event the rules
/// refuse in that order raises its conflict, exactly as it did (or will) on every other bench
/// and on the registry.
/// With `own` (an enrolled workstation), its events that the registry's order has not settled
/// (not ordered yet, or past the pull cursor) keep undo images again.
pub(crate) fn replay(
    conn: &Connection,
    own: Option<Uuid>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, StoreError> {
    conn.execute_batch(
        "PRAGMA defer_foreign_keys = ON;
         DELETE FROM undo; DELETE FROM conflicts; DELETE FROM event_subjects; DELETE FROM specimens;
         DELETE FROM containers; DELETE FROM label_prints; DELETE FROM users; DELETE FROM signatures;
         DELETE FROM withdrawals; DELETE FROM shipments; DELETE FROM trusted_keys;",
    )?;
    let unsettled: std::collections::HashSet<i64> = match own {
        None => Default::default(),
        Some(ws) => conn
            .prepare(
                "SELECT e.id FROM events e LEFT JOIN event_order o ON o.event = e.id
                 WHERE e.workstation = ?1 AND (o.major IS NULL OR o.major > (SELECT pull_cursor FROM sync_state))",
            )?
            .query_map([ws.as_bytes().as_slice()], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
    };
    let total: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
    let mut cache = ContainerCache::new();
    let mut stmt = conn.prepare(CANONICAL_ORDER)?;
    let mut rows = stmt.query([])?;
    let mut n = 0u64;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let at: i64 = r.get(3)?;
        let payload: String = r.get(4)?;
        let describe = |r: &rusqlite::Row<'_>| -> String {
            let eid: Vec<u8> = r.get(1).unwrap_or_default();
            let seq: i64 = r.get(2).unwrap_or_default();
            format!(
                "event {} (seq {seq})",
                Uuid::from_slice(&eid).unwrap_or_default()
            )
        };
        let body: EventBody = serde_json::from_str(&payload).map_err(|e| {
            StoreError::Corrupt(format!("{}: payload does not parse: {e}", describe(r)))
        })?;
        let mut p = Projector {
            conn,
            cache: &mut cache,
        };
        p.settle(id, at, &body, unsettled.contains(&id))
            .map_err(|e| StoreError::Corrupt(format!("{} no longer applies: {e}", describe(r))))?;
        n += 1;
        if n.is_multiple_of(50_000) {
            progress(n, total as u64);
        }
    }
    progress(n, total as u64);
    Ok(n)
}

/// The projection as facts, without local row ids (which depend on the order rows were
/// written): what `verify` compares with a rebuild.
const PROJECTION: &[(&str, &str, &str)] = &[
    (
        "specimens",
        "SELECT s.code, s.sample_type, s.primary_container, s.storage_code, s.material, s.qty_milli, s.unit,
            s.study, s.donor, s.collected_at, s.registered_at, s.parent, s.freeze_thaw, s.status, s.blocked,
            s.in_conflict, (SELECT c.code FROM containers c WHERE c.id = s.container), s.row, s.col, s.holder,
            s.due, s.updated_at, s.last_event FROM specimens s",
        "code",
    ),
    (
        "containers",
        "SELECT c.code, c.kind, c.name, c.type_name, c.geometry, c.temperature,
            (SELECT p.code FROM containers p WHERE p.id = c.parent), c.prow, c.pcol, c.path, c.created_at,
            c.last_event FROM containers c",
        "code",
    ),
    (
        "event_subjects",
        "SELECT (SELECT s.code FROM specimens s WHERE s.id = es.specimen) AS code, es.event FROM event_subjects es",
        "code",
    ),
    ("label_prints", "SELECT code, prints, last FROM label_prints", "code"),
    (
        "users",
        "SELECT code, name, role, badge, disabled, password, pin, added_at, updated_at, last_event, signing_key, key_salt FROM users",
        "code",
    ),
    (
        "signatures",
        "SELECT code, hex(event), event_hash, signer, name, meaning, at FROM signatures",
        "code",
    ),
    (
        "withdrawals",
        "SELECT code, reason, at, last_event FROM withdrawals",
        "code",
    ),
    (
        "shipments",
        "SELECT code, destination, manifest, tubes, dispatched_at, last_event, incoming FROM shipments",
        "code",
    ),
    (
        "trusted_keys",
        "SELECT code, name, at, last_event FROM trusted_keys",
        "code",
    ),
    (
        "conflicts",
        "SELECT event, subject, code, message, other, resolved_by FROM conflicts",
        "subject",
    ),
];

impl Store {
    /// Recomputes the projection from the log in one transaction.
    pub fn rebuild(
        &mut self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RebuildReport, StoreError> {
        self.forget_containers();
        self.rule_cache.clear();
        self.ahead = None;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let enrolled: bool = tx.query_row(
            "SELECT registry_url IS NOT NULL FROM sync_state WHERE id = 1",
            [],
            |r| r.get(0),
        )?;
        let events = replay(&tx, enrolled.then_some(self.workstation), progress)?;
        let specimens: i64 = tx.query_row("SELECT count(*) FROM specimens", [], |r| r.get(0))?;
        let containers: i64 = tx.query_row("SELECT count(*) FROM containers", [], |r| r.get(0))?;
        tx.commit()?;
        Ok(RebuildReport {
            events,
            specimens: specimens as u64,
            containers: containers as u64,
        })
    }

    /// Checks the hash chain of every workstation's stream and that the projection equals a
    /// rebuild from the log. Changes nothing.
    pub fn verify(
        &mut self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport, StoreError> {
        let mut problems = Vec::new();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for trigger in ["events_append_only_update", "events_append_only_delete"] {
            let n: i64 = tx.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
                [trigger],
                |r| r.get(0),
            )?;
            if n == 0 {
                problems.push(problem(
                    "append_only_guard_missing",
                    None,
                    None,
                    None,
                    format!("the guard trigger {trigger} was removed from the database"),
                ));
            }
        }
        let (mut events, mut workstations) = (0u64, 0u64);
        let own = self.workstation;
        // Events of other workstations the registry said it refused, told when their streams
        // were pulled: the only holes a stream may have.
        let refused: std::collections::HashSet<(Uuid, i64)> = tx
            .prepare("SELECT workstation, seq FROM stream_refused")?
            .query_map([], |r| {
                Ok((
                    Uuid::from_slice(&r.get::<_, Vec<u8>>(0)?).unwrap_or_default(),
                    r.get::<_, i64>(1)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        {
            let mut stmt = tx.prepare(
                "SELECT event_id, workstation, seq, actor, at, kind, payload, hash FROM events ORDER BY workstation, seq",
            )?;
            let mut rows = stmt.query([])?;
            let mut current: Option<Uuid> = None;
            let mut prev = GENESIS;
            let mut expect_seq = 1i64;
            while let Some(r) = rows.next()? {
                events += 1;
                let eid = Uuid::from_slice(&r.get::<_, Vec<u8>>(0)?).unwrap_or_default();
                let ws = Uuid::from_slice(&r.get::<_, Vec<u8>>(1)?).unwrap_or_default();
                let seq: i64 = r.get(2)?;
                let actor: String = r.get(3)?;
                let at: i64 = r.get(4)?;
                let kind: String = r.get(5)?;
                let payload: String = r.get(6)?;
                let stored: Vec<u8> = r.get(7)?;
                if current != Some(ws) {
                    current = Some(ws);
                    workstations += 1;
                    prev = GENESIS;
                    expect_seq = 1;
                }
                // Another workstation's stream may have holes where the registry refused events
                // (told when it was pulled); across one, the chain starts again from what came.
                let told_gap = seq > expect_seq
                    && ws != own
                    && (expect_seq..seq).all(|s| refused.contains(&(ws, s)));
                if seq != expect_seq && !told_gap && problems.len() < MAX_PROBLEMS {
                    problems.push(problem(
                        "sequence_gap",
                        Some(eid),
                        Some(ws),
                        Some(seq),
                        format!("workstation {ws}: expected seq {expect_seq}, found {seq}: the events between are missing here, and the registry never said it refused them. Tell the registry administrator"),
                    ));
                }
                expect_seq = seq + 1;
                let computed = event_hash(&prev, eid, ws, seq, &actor, at, &kind, &payload);
                if !told_gap
                    && computed.as_bytes()[..] != stored[..]
                    && problems.len() < MAX_PROBLEMS
                {
                    problems.push(problem(
                        "hash_mismatch",
                        Some(eid),
                        Some(ws),
                        Some(seq),
                        format!("event {eid} (workstation {ws}, seq {seq}, {kind}) was altered after it was written: its hash does not match its content"),
                    ));
                }
                match serde_json::from_str::<EventBody>(&payload) {
                    Ok(b) if b.kind() == kind => {}
                    Ok(b) if problems.len() < MAX_PROBLEMS => problems.push(problem(
                        "bad_payload",
                        Some(eid),
                        Some(ws),
                        Some(seq),
                        format!(
                            "event {eid}: kind column says {kind}, payload says {}",
                            b.kind()
                        ),
                    )),
                    Err(e) if problems.len() < MAX_PROBLEMS => problems.push(problem(
                        "bad_payload",
                        Some(eid),
                        Some(ws),
                        Some(seq),
                        format!("event {eid}: payload does not parse: {e}"),
                    )),
                    _ => {}
                }
                prev = Digest::from_slice(&stored).unwrap_or(GENESIS);
            }
        }
        // Every signature is bound to the exact event it signed: that event is in the log and
        // its hash is the one signed (a signature moved to another record, or a signed record
        // changed, is found here).
        {
            let mut signed = tx.prepare(
                "SELECT event_id, workstation, seq, payload FROM events WHERE kind = 'signed'",
            )?;
            let mut target = tx.prepare_cached("SELECT hash FROM events WHERE event_id = ?1")?;
            let mut rows = signed.query([])?;
            while let Some(r) = rows.next()? {
                let eid = Uuid::from_slice(&r.get::<_, Vec<u8>>(0)?).unwrap_or_default();
                let ws = Uuid::from_slice(&r.get::<_, Vec<u8>>(1)?).unwrap_or_default();
                let seq: i64 = r.get(2)?;
                let payload: String = r.get(3)?;
                let Ok(EventBody::Signed {
                    event, event_hash, ..
                }) = serde_json::from_str::<EventBody>(&payload)
                else {
                    continue;
                };
                let have: Option<Vec<u8>> = target
                    .query_row([event.as_bytes().as_slice()], |r| r.get(0))
                    .optional()?;
                let have = have.map(hex::encode);
                if have.as_deref() != Some(event_hash.as_str()) && problems.len() < MAX_PROBLEMS {
                    problems.push(problem(
                        "signature_mismatch",
                        Some(eid),
                        Some(ws),
                        Some(seq),
                        match have {
                            None => format!("signature {eid} signs event {event}, which is not in the log"),
                            Some(h) => format!(
                                "signature {eid} signed event {event} with hash {event_hash}, but that event's hash is {h}: the signature does not belong to this record"
                            ),
                        },
                    ));
                }
            }
        }
        // Every signature verifies against its signer's key at its point of the log (the key
        // their newest password credential before it published), in the order the log is folded.
        {
            let mut book = kura_domain::sign::KeyBook::default();
            let mut stmt = tx.prepare(
                "SELECT e.event_id, e.workstation, e.seq, e.at, e.payload FROM events e
                 LEFT JOIN event_order o ON o.event = e.id
                 WHERE e.kind IN ('credential_set', 'signed')
                 ORDER BY coalesce(o.major, 9223372036854775807), coalesce(o.minor, 0), e.id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let payload: String = r.get(4)?;
                let Ok(body) = serde_json::from_str::<EventBody>(&payload) else {
                    continue;
                };
                if let Err(e) = book.check(&body, r.get(3)?, false)
                    && problems.len() < MAX_PROBLEMS
                {
                    let eid = Uuid::from_slice(&r.get::<_, Vec<u8>>(0)?).unwrap_or_default();
                    let ws = Uuid::from_slice(&r.get::<_, Vec<u8>>(1)?).unwrap_or_default();
                    problems.push(problem(
                        "signature_invalid",
                        Some(eid),
                        Some(ws),
                        Some(r.get(2)?),
                        format!("signature {eid}: {e}"),
                    ));
                }
                book.apply(&body);
            }
        }
        // Every arrival from another site took a bundle that is here, as received, still checks
        // (hashes, the dispatch naming what it carries, the sender's signature) and says what
        // the arrival says: the same key, manifest and tubes.
        {
            let mut stmt = tx.prepare(
                "SELECT event_id, workstation, seq, payload FROM events WHERE kind = 'shipment_arrived'",
            )?;
            let mut bundle = tx.prepare_cached("SELECT bundle FROM bundles WHERE dispatch = ?1")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let eid = Uuid::from_slice(&r.get::<_, Vec<u8>>(0)?).unwrap_or_default();
                let ws = Uuid::from_slice(&r.get::<_, Vec<u8>>(1)?).unwrap_or_default();
                let seq: i64 = r.get(2)?;
                let Ok(EventBody::ShipmentArrived {
                    shipment,
                    dispatch,
                    key,
                    tubes,
                }) = serde_json::from_str::<EventBody>(&r.get::<_, String>(3)?)
                else {
                    continue;
                };
                let json: Option<String> = bundle
                    .query_row([dispatch.as_bytes().as_slice()], |r| r.get(0))
                    .optional()?;
                let found = match json {
                    None => Err(format!(
                        "the bundle of shipment {} (dispatch {dispatch}) is not here",
                        shipment.id
                    )),
                    Some(j) => match serde_json::from_str::<kura_domain::bundle::Bundle>(&j) {
                        Err(e) => Err(format!("the bundle of {} does not parse: {e}", shipment.id)),
                        Ok(b) => match b.check() {
                            Err(e) => Err(format!("the bundle of {}: {e}", shipment.id)),
                            Ok(m) if m != shipment => Err(format!(
                                "the arrival of {} states another manifest than its bundle",
                                shipment.id
                            )),
                            Ok(m) if b.tubes(&m) != tubes => Err(format!(
                                "the arrival of {} states other tubes than its bundle",
                                shipment.id
                            )),
                            Ok(_) if kura_domain::sign::fingerprint(&b.key) != key => Err(format!(
                                "the arrival of {} names another key than its bundle's",
                                shipment.id
                            )),
                            Ok(_) => Ok(()),
                        },
                    },
                };
                if let Err(message) = found
                    && problems.len() < MAX_PROBLEMS
                {
                    problems.push(problem(
                        "bundle_mismatch",
                        Some(eid),
                        Some(ws),
                        Some(seq),
                        message,
                    ));
                }
            }
        }
        // The projection must equal a rebuild: snapshot it, rebuild in this transaction, compare,
        // and roll everything back.
        for (i, (_, select, _)) in PROJECTION.iter().enumerate() {
            tx.execute_batch(&format!("CREATE TEMP TABLE snap_{i} AS {select}"))?;
        }
        let specimens: i64 = tx.query_row("SELECT count(*) FROM specimens", [], |r| r.get(0))?;
        match replay(&tx, None, progress) {
            Ok(_) => {
                for (i, (table, select, key)) in PROJECTION.iter().enumerate() {
                    tx.execute_batch(&format!("CREATE TEMP TABLE now_{i} AS {select}"))?;
                    let sql = format!(
                        "SELECT {key} FROM (SELECT * FROM now_{i} EXCEPT SELECT * FROM snap_{i})
                         UNION SELECT {key} FROM (SELECT * FROM snap_{i} EXCEPT SELECT * FROM now_{i}) LIMIT 10"
                    );
                    let mut stmt = tx.prepare(&sql)?;
                    let diffs: Vec<String> = stmt
                        .query_map([], |r| r.get::<_, rusqlite::types::Value>(0))?
                        .map(|v| v.map(|v| format!("{v:?}")))
                        .collect::<Result<_, _>>()?;
                    if !diffs.is_empty() {
                        problems.push(problem(
                            "projection_differs",
                            None,
                            None,
                            None,
                            format!(
                                "table {table} differs from a rebuild from the log at {}",
                                diffs.join(", ")
                            ),
                        ));
                    }
                }
            }
            Err(e) => problems.push(problem("replay_failed", None, None, None, e.to_string())),
        }
        tx.rollback()?;
        Ok(VerifyReport {
            events,
            workstations,
            specimens: specimens as u64,
            problems,
        })
    }
}
