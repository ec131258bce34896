//! `verify` proves the local log was not edited and that the projection is what the log says;
//! `rebuild` recomputes the projection from the log.

use kura_domain::EventBody;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
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
    /// Events checked (with `since`, those after that point).
    pub events: u64,
    pub workstations: u64,
    pub specimens: u64,
    pub problems: Vec<VerifyProblem>,
    /// Whether the whole log was read (`--full`); the projection was compared with a rebuild
    /// from it too, unless `awaiting_refold`.
    pub full: bool,
    /// The last verified point this check went on from (`None`: from the first event).
    pub since: Option<VerifiedPoint>,
    /// A pull left the projection to be folded again in the registry's order when it has caught
    /// up (the bench closed mid-pull, or the registry's order is being learnt again): until a
    /// sync finishes it, the projection is not the site's fold, and `--full` does not compare it.
    pub awaiting_refold: bool,
}

/// Where a verify that found nothing wrong got to: the log up to `event` (local order) is
/// known good, and each stream's last event then, with its hash. A check from here reads only
/// the events after it, and that these heads are still as they were (`verify --full` reads the
/// whole log again; the point lives in the database, so it is only as good as the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct VerifiedPoint {
    pub event: i64,
    /// The time of that event (UTC, µs).
    pub at: i64,
    pub heads: Vec<(Uuid, i64, String)>,
    /// Whether that check compared the projection too.
    pub full: bool,
}

const POINT_KEY: &str = "verified_point";

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
/// The log is read from `src` and the projection written into `dst`: the same connection for a
/// rebuild; for `verify`, a read transaction on the database and a scratch database.
pub(crate) fn replay(
    src: &Connection,
    dst: &Connection,
    own: Option<Uuid>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, StoreError> {
    dst.execute_batch(
        "PRAGMA defer_foreign_keys = ON;
         DELETE FROM undo; DELETE FROM conflicts; DELETE FROM event_subjects; DELETE FROM specimens;
         DELETE FROM containers; DELETE FROM label_prints; DELETE FROM users; DELETE FROM signatures;
         DELETE FROM withdrawals; DELETE FROM shipments; DELETE FROM trusted_keys;",
    )?;
    let unsettled: std::collections::HashSet<i64> = match own {
        None => Default::default(),
        Some(ws) => src
            .prepare(
                "SELECT e.id FROM events e LEFT JOIN event_order o ON o.event = e.id
                 WHERE e.workstation = ?1 AND (o.major IS NULL OR o.major > (SELECT pull_cursor FROM sync_state))",
            )?
            .query_map([ws.as_bytes().as_slice()], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
    };
    let total: i64 = src.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
    let mut cache = ContainerCache::new();
    let mut stmt = src.prepare(CANONICAL_ORDER)?;
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
            conn: dst,
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
/// written): what `verify` compares with a rebuild. Each query lists its rows in one order on
/// both sides (the first `key` columns, unique within the query, through an index where the
/// table is large), so the two sides are compared as two sorted streams, row by row, in bounded
/// memory; `report` is the column that names a differing row.
struct Facts {
    table: &'static str,
    select: &'static str,
    key: usize,
    report: usize,
}

const PROJECTION: &[Facts] = &[
    Facts {
        table: "specimens",
        select: "SELECT s.code, s.sample_type, s.primary_container, s.storage_code, s.material, s.qty_milli, s.unit,
            s.study, s.donor, s.collected_at, s.registered_at, s.parent, s.freeze_thaw, s.status, s.blocked,
            s.in_conflict, (SELECT c.code FROM containers c WHERE c.id = s.container), s.row, s.col, s.holder,
            s.due, s.updated_at, s.last_event FROM specimens s ORDER BY s.code",
        key: 1,
        report: 0,
    },
    Facts {
        table: "containers",
        select: "SELECT c.code, c.kind, c.name, c.type_name, c.geometry, c.temperature,
            (SELECT p.code FROM containers p WHERE p.id = c.parent), c.prow, c.pcol, c.path, c.created_at,
            c.last_event FROM containers c ORDER BY c.code",
        key: 1,
        report: 0,
    },
    Facts {
        table: "event_subjects",
        select: "SELECT s.code, es.event FROM specimens s JOIN event_subjects es ON es.specimen = s.id
            ORDER BY s.code, es.event",
        key: 2,
        report: 0,
    },
    // Rows of a specimen that is not there (never in a rebuild).
    Facts {
        table: "event_subjects",
        select: "SELECT es.specimen, es.event FROM event_subjects es
            WHERE NOT EXISTS (SELECT 1 FROM specimens s WHERE s.id = es.specimen)
            ORDER BY es.specimen, es.event",
        key: 2,
        report: 0,
    },
    Facts {
        table: "label_prints",
        select: "SELECT code, prints, last FROM label_prints ORDER BY code",
        key: 1,
        report: 0,
    },
    Facts {
        table: "users",
        select: "SELECT code, name, role, badge, disabled, password, pin, added_at, updated_at, last_event, signing_key, key_salt FROM users ORDER BY code",
        key: 1,
        report: 0,
    },
    Facts {
        table: "signatures",
        select: "SELECT code, hex(event), event_hash, signer, name, meaning, at FROM signatures ORDER BY code",
        key: 1,
        report: 0,
    },
    Facts {
        table: "withdrawals",
        select: "SELECT code, reason, at, last_event FROM withdrawals ORDER BY code",
        key: 1,
        report: 0,
    },
    Facts {
        table: "shipments",
        select: "SELECT code, destination, manifest, tubes, dispatched_at, last_event, incoming FROM shipments ORDER BY code",
        key: 1,
        report: 0,
    },
    Facts {
        table: "trusted_keys",
        select: "SELECT code, name, at, last_event FROM trusted_keys ORDER BY code",
        key: 1,
        report: 0,
    },
    Facts {
        table: "conflicts",
        select: "SELECT event, subject, code, message, other, resolved_by FROM conflicts ORDER BY event",
        key: 1,
        report: 1,
    },
];

/// SQLite's order of two values of an `ORDER BY` column (BINARY collation): NULL, then numbers,
/// then text, then blobs.
fn sql_order(a: ValueRef<'_>, b: ValueRef<'_>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(v: ValueRef<'_>) -> u8 {
        match v {
            ValueRef::Null => 0,
            ValueRef::Integer(_) | ValueRef::Real(_) => 1,
            ValueRef::Text(_) => 2,
            ValueRef::Blob(_) => 3,
        }
    }
    match (a, b) {
        (ValueRef::Integer(x), ValueRef::Integer(y)) => x.cmp(&y),
        (ValueRef::Integer(x), ValueRef::Real(y)) => {
            (x as f64).partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (ValueRef::Real(x), ValueRef::Integer(y)) => {
            x.partial_cmp(&(y as f64)).unwrap_or(Ordering::Equal)
        }
        (ValueRef::Real(x), ValueRef::Real(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (ValueRef::Text(x), ValueRef::Text(y)) | (ValueRef::Blob(x), ValueRef::Blob(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Compares `facts` on both sides as two sorted streams, reading each value in place: the
/// keys (as `report` names them) of up to 10 rows that are on one side only or differ.
fn differences(
    facts: &Facts,
    kept: &Connection,
    rebuilt: &Connection,
) -> Result<Vec<String>, StoreError> {
    use std::cmp::Ordering;
    let mut a = kept.prepare(facts.select)?;
    let mut b = rebuilt.prepare(facts.select)?;
    let n = a.column_count();
    let (mut ra, mut rb) = (a.query([])?, b.query([])?);
    let mut out: Vec<String> = Vec::new();
    let note = |row: &rusqlite::Row<'_>, out: &mut Vec<String>| -> Result<(), StoreError> {
        let k = format!("{:?}", row.get::<_, Value>(facts.report)?);
        if out.last() != Some(&k) {
            out.push(k);
        }
        Ok(())
    };
    let mut x = ra.next()?;
    let mut y = rb.next()?;
    while out.len() < 10 {
        let order = match (x, y) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(p), Some(q)) => {
                let mut o = Ordering::Equal;
                for i in 0..facts.key {
                    o = sql_order(p.get_ref(i)?, q.get_ref(i)?);
                    if o.is_ne() {
                        break;
                    }
                }
                o
            }
        };
        match order {
            Ordering::Less => {
                if let Some(p) = x {
                    note(p, &mut out)?;
                }
                x = ra.next()?;
            }
            Ordering::Greater => {
                if let Some(q) = y {
                    note(q, &mut out)?;
                }
                y = rb.next()?;
            }
            Ordering::Equal => {
                if let (Some(p), Some(q)) = (x, y) {
                    let mut same = true;
                    for i in facts.key..n {
                        if p.get_ref(i)? != q.get_ref(i)? {
                            same = false;
                            break;
                        }
                    }
                    if !same {
                        note(p, &mut out)?;
                    }
                }
                x = ra.next()?;
                y = rb.next()?;
            }
        }
    }
    Ok(out)
}

/// A database of its own, beside the one verified, that a rebuild is written into and removed
/// afterwards: verify changes nothing and holds no lock on the database meanwhile.
struct Scratch {
    path: std::path::PathBuf,
    conn: Option<Connection>,
}

impl Scratch {
    fn new(beside: &std::path::Path) -> Result<Scratch, StoreError> {
        let name = format!(
            ".{}.verify-{}-{}",
            beside
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "kura".into()),
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        // Beside the database (same disk, same owner); where that is read-only, the temporary
        // directory.
        let dirs = [
            beside.parent().map(|d| d.to_path_buf()).unwrap_or_default(),
            std::env::temp_dir(),
        ];
        let mut last = None;
        for dir in dirs {
            let mut s = Scratch {
                path: dir.join(&name),
                conn: None,
            };
            match s.open() {
                Ok(()) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| StoreError::Corrupt("no place for verify's scratch copy".into())))
    }

    fn open(&mut self) -> Result<(), StoreError> {
        crate::protect(&self.path)?;
        let mut conn =
            Connection::open(&self.path).map_err(|e| StoreError::from(e).at(&self.path))?;
        // Thrown away afterwards: no journal, no syncs; a bounded cache, sorts on disk.
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE;
             PRAGMA cache_size = -65536; PRAGMA mmap_size = 0;",
        )?;
        crate::migrations::migrate(&mut conn, 0)?;
        // Only what the rules look up and the comparison reads in order: the indexes for
        // searches (donor, study, parent, due) would only cost a write per row.
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             DROP INDEX specimens_donor; DROP INDEX specimens_study; DROP INDEX specimens_parent;
             DROP INDEX specimens_due;",
        )?;
        conn.set_prepared_statement_cache_capacity(128);
        self.conn = Some(conn);
        Ok(())
    }

    fn conn(&self) -> &Connection {
        #[allow(clippy::expect_used)]
        self.conn.as_ref().expect("opened in new")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        drop(self.conn.take());
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

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
        let events = replay(&tx, &tx, enrolled.then_some(self.workstation), progress)?;
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
    /// rebuild from the log. Changes nothing, and holds no lock meanwhile: it reads one
    /// snapshot through a connection of its own (a read transaction; this store's connection
    /// and other processes keep writing), rebuilds into a scratch database beside it and
    /// compares the two table by table as sorted streams, so its memory stays bounded at any
    /// size (sorts and temporary tables on disk, no memory map).
    pub fn verify(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<VerifyReport, StoreError> {
        self.verify_from(true, progress)
    }

    /// The last verified point, if a verify recorded one.
    pub fn verified_point(&self) -> Result<Option<VerifiedPoint>, StoreError> {
        Ok(self
            .meta(POINT_KEY)?
            .and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// With `full`, [`Store::verify`]. Without, from the last verified point (if there is none,
    /// as with `full`): the recorded heads still as they were, and every event after them
    /// checked as `verify` checks each event (chain, sequence, payload, signatures, arrivals);
    /// the projection is not compared. Either way, a check that finds nothing wrong records
    /// the point it got to.
    pub fn verify_from(
        &self,
        full: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport, StoreError> {
        let started = std::time::Instant::now();
        let since = if full { None } else { self.verified_point()? };
        // Never verified: the whole log and the projection.
        let full = full || since.is_none();
        let after = since.as_ref().map(|p| p.event).unwrap_or(0);
        let mut problems = Vec::new();
        let tx = crate::open_reader(&self.path)?;
        tx.execute_batch("BEGIN")?;
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
        let mut events = 0u64;
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
        // The point's heads: each still there with the hash it had.
        let mut start: std::collections::HashMap<Uuid, (i64, Digest)> = Default::default();
        for (ws, seq, hash) in since.iter().flat_map(|p| &p.heads) {
            let have: Option<Vec<u8>> = tx
                .prepare_cached("SELECT hash FROM events WHERE workstation = ?1 AND seq = ?2")?
                .query_row(params![ws.as_bytes().as_slice(), seq], |r| r.get(0))
                .optional()?;
            match have {
                Some(h) if hex::encode(&h) == *hash => {
                    start.insert(*ws, (*seq, Digest::from_slice(&h).unwrap_or(GENESIS)));
                }
                found => problems.push(problem(
                    if found.is_some() { "hash_mismatch" } else { "sequence_gap" },
                    None,
                    Some(*ws),
                    Some(*seq),
                    format!(
                        "workstation {ws}: event seq {seq}, the last one verified, {} since: the log was changed before the last verified point. Run `kura verify --full`",
                        if found.is_some() { "has another hash" } else { "has gone" }
                    ),
                )),
            }
        }
        let (mut last_id, mut last_at) = (after, since.as_ref().map(|p| p.at).unwrap_or(0));
        let mut heads: std::collections::BTreeMap<Uuid, (i64, String)> = since
            .iter()
            .flat_map(|p| &p.heads)
            .map(|(w, s, h)| (*w, (*s, h.clone())))
            .collect();
        {
            // The whole log streams in the order of its (workstation, seq) index; the events
            // after a point are read by their row ids (NOT INDEXED: not a walk of that whole
            // index) and sorted.
            let mut stmt = tx.prepare(if after == 0 {
                "SELECT event_id, workstation, seq, actor, at, kind, payload, hash, id FROM events
                 WHERE id > ?1 ORDER BY workstation, seq"
            } else {
                "SELECT event_id, workstation, seq, actor, at, kind, payload, hash, id
                 FROM events NOT INDEXED WHERE id > ?1 ORDER BY workstation, seq"
            })?;
            let mut rows = stmt.query([after])?;
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
                let id: i64 = r.get(8)?;
                if id > last_id {
                    (last_id, last_at) = (id, at);
                }
                heads.insert(ws, (seq, hex::encode(&stored)));
                if current != Some(ws) {
                    current = Some(ws);
                    (expect_seq, prev) = match start.get(&ws) {
                        Some((s, h)) => (s + 1, *h),
                        None => (1, GENESIS),
                    };
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
        tracing::debug!(
            events,
            secs = started.elapsed().as_secs_f64(),
            "verify: chain checked"
        );
        // Every signature is bound to the exact event it signed: that event is in the log and
        // its hash is the one signed (a signature moved to another record, or a signed record
        // changed, is found here).
        {
            let mut signed = tx.prepare(
                "SELECT event_id, workstation, seq, payload FROM events WHERE kind = 'signed' AND id > ?1",
            )?;
            let mut target = tx.prepare_cached("SELECT hash FROM events WHERE event_id = ?1")?;
            let mut rows = signed.query([after])?;
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
        // (After a point with no signature since, there is nothing to check: the keys are
        // learnt from the whole log, a walk of every event.)
        let signed_since: bool = after == 0
            || tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM events WHERE id > ?1 AND kind = 'signed')",
                [after],
                |r| r.get(0),
            )?;
        if signed_since {
            let mut book = kura_domain::sign::KeyBook::default();
            // (Every key is learnt, in order; only the signatures after the point are checked.)
            let mut stmt = tx.prepare(
                "SELECT e.event_id, e.workstation, e.seq, e.at, e.payload, e.id FROM events e
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
                if r.get::<_, i64>(5)? > after
                    && let Err(e) = book.check(&body, r.get(3)?, false)
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
                "SELECT event_id, workstation, seq, payload FROM events WHERE kind = 'shipment_arrived' AND id > ?1",
            )?;
            let mut bundle = tx.prepare_cached("SELECT bundle FROM bundles WHERE dispatch = ?1")?;
            let mut rows = stmt.query([after])?;
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
        // The projection must equal a rebuild from the log: rebuilt into the scratch database
        // from this snapshot, then compared table by table.
        let specimens: i64 = tx.query_row("SELECT count(*) FROM specimens", [], |r| r.get(0))?;
        let awaiting_refold: bool = tx.query_row(
            "SELECT coalesce((SELECT relearn FROM sync_state WHERE id = 1), 0) > 0
                 OR EXISTS (SELECT 1 FROM meta WHERE key = ?1)",
            [crate::sync::REFOLD_PENDING],
            |r| r.get(0),
        )?;
        if full && !awaiting_refold {
            let scratch = Scratch::new(&self.path)?;
            let rebuilt = scratch.conn();
            rebuilt.execute_batch("BEGIN")?;
            tracing::debug!(
                secs = started.elapsed().as_secs_f64(),
                "verify: signatures and arrivals checked"
            );
            match replay(&tx, rebuilt, None, progress) {
                Ok(_) => {
                    tracing::debug!(secs = started.elapsed().as_secs_f64(), "verify: rebuilt");
                    for facts in PROJECTION {
                        let diffs = differences(facts, &tx, rebuilt)?;
                        tracing::debug!(
                            table = facts.table,
                            secs = started.elapsed().as_secs_f64(),
                            "verify: compared"
                        );
                        if !diffs.is_empty() {
                            problems.push(problem(
                                "projection_differs",
                                None,
                                None,
                                None,
                                format!(
                                    "table {} differs from a rebuild from the log at {}",
                                    facts.table,
                                    diffs.join(", ")
                                ),
                            ));
                        }
                    }
                }
                Err(e) => problems.push(problem("replay_failed", None, None, None, e.to_string())),
            }
            drop(scratch);
        }
        tx.execute_batch("COMMIT")?;
        let heads_len = heads.len();
        if problems.is_empty() && last_id > 0 {
            let point = VerifiedPoint {
                event: last_id,
                at: last_at,
                heads: heads.into_iter().map(|(w, (s, h))| (w, s, h)).collect(),
                full: full && !awaiting_refold,
            };
            // Through a connection of its own that does not wait: while another writes (or on
            // a read-only database) the old point stays, and the next check reads a little more.
            let record = |j: String| -> Result<(), rusqlite::Error> {
                let c = Connection::open(&self.path)?;
                c.busy_timeout(std::time::Duration::ZERO)?;
                c.execute(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![POINT_KEY, j],
                )?;
                Ok(())
            };
            if let Ok(j) = serde_json::to_string(&point)
                && let Err(e) = record(j)
            {
                tracing::warn!(error = %e, "could not record the verified point");
            }
        }
        Ok(VerifyReport {
            events,
            workstations: heads_len as u64,
            specimens: specimens as u64,
            problems,
            full,
            since,
            awaiting_refold,
        })
    }
}
