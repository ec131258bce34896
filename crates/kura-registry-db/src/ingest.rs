//! What every backend does the same way, as pure functions a backend calls inside its push
//! transaction:
//!
//! 1. [`check_shape`] — before any IO: size, the caller's own stream, `seq` in order.
//!    [`prepare`] — also before the lock: each event's hash against the one before it in the
//!    batch, and its payload parsed.
//! 2. [`classify`] — given the workstation's head and the hashes already stored for the batch's
//!    `seq`s: a verdict per event (duplicate, fork, chain, payload, site), the events to store.
//! 3. [`assign`] — `server_seq`s from the site's counter, which the backend holds locked until
//!    commit: a site's events commit in `server_seq` order, so a pull never skips one.
//! 4. [`fold`] — the accepted events through `kura-domain`'s rules into the registry's own
//!    projection. It reads through what the backend [`Loaded`]; when it needed a row that was not
//!    loaded it answers the [`Keys`] to load, and the backend runs it again. Refusals by the rules
//!    become conflicts; the event stays stored.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::convert::Infallible;

use kura_domain::container::ContainerSpec;
use kura_domain::event::{EventBody, Placement};
use kura_domain::hash::GENESIS;
use kura_domain::id::{ContainerId, KuraId, SpecimenCode};
use kura_domain::position::Pos;
use kura_domain::rules::{self, ContainerInfo, Effect, RuleError, Settled, SpecimenState, View};
use kura_proto::{Conflict, Digest, Envelope, Head, Placed, RejectCode, Site, Verdict};
use uuid::Uuid;

use crate::{Caller, DbError, DbResult};

/// Refuses what no database is needed to refuse. An empty batch is allowed (it answers the head).
pub fn check_shape(caller: &Caller, events: &[Envelope]) -> DbResult<()> {
    if events.len() > kura_proto::MAX_BATCH_EVENTS {
        return Err(DbError::BadBatch(format!(
            "a batch holds at most {} events; this one has {}",
            kura_proto::MAX_BATCH_EVENTS,
            events.len()
        )));
    }
    for (i, e) in events.iter().enumerate() {
        if e.workstation != caller.workstation {
            return Err(DbError::NotYourStream {
                seq: e.seq,
                claimed: e.workstation,
            });
        }
        if e.seq == 0 {
            return Err(DbError::BadBatch("seq starts at 1".into()));
        }
        if i > 0 && e.seq != events[i - 1].seq + 1 {
            return Err(DbError::BadBatch(format!(
                "events must be in seq order without holes: seq {} follows seq {}",
                e.seq,
                events[i - 1].seq
            )));
        }
    }
    Ok(())
}

/// What the registry already holds under one `(workstation, seq)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub hash: Digest,
    /// Set when the event was kept as a rejection rather than a custody event.
    pub rejection: Option<(RejectCode, String)>,
    /// Where the site's order put it (a custody event).
    pub server_seq: Option<u64>,
}

/// An event to store as custody.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: Envelope,
    pub body: EventBody,
    pub server_seq: u64,
    verdict: usize,
}

/// An event to keep as a rejection: it links into the chain (so the stream goes on after it) but
/// is not custody.
#[derive(Debug, Clone)]
pub struct NewRejection {
    pub event: Envelope,
    pub code: RejectCode,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Classified {
    pub verdicts: Vec<Verdict>,
    pub accept: Vec<NewEvent>,
    pub reject: Vec<NewRejection>,
    /// The workstation's head after this batch.
    pub head_seq: u64,
    pub head_hash: Digest,
}

impl Classified {
    pub fn head(&self) -> Head {
        head(self.head_seq, self.head_hash)
    }
}

/// Each workstation of a pulled page with the lowest and highest seq of its events there: the
/// page says which of that workstation's events the registry refused from its accepted event
/// before `low` up to `high`.
pub fn stream_spans(events: &[Placed]) -> std::collections::BTreeMap<Uuid, (u64, u64)> {
    let mut spans = std::collections::BTreeMap::new();
    for p in events {
        let e = &p.event;
        spans
            .entry(e.workstation)
            .and_modify(|(lo, hi): &mut (u64, u64)| {
                *lo = (*lo).min(e.seq);
                *hi = (*hi).max(e.seq);
            })
            .or_insert((e.seq, e.seq));
    }
    spans
}

pub fn head(seq: u64, hash: Digest) -> Head {
    Head {
        seq,
        hash: (seq > 0).then_some(hash),
    }
}

/// An event checked as far as it can be without the database: whether it links to the event
/// before it in the batch, its payload parsed. Done before the site is locked.
#[derive(Debug, Clone)]
pub struct Prepared {
    event: Envelope,
    /// Its hash is the one computed over the previous event of the batch.
    linked_to_previous: bool,
    body: Result<EventBody, (RejectCode, String)>,
}

impl Prepared {
    pub fn seq(&self) -> u64 {
        self.event.seq
    }
}

/// Hashes and parses a batch (the expensive, lock-free part of a push).
pub fn prepare(site: &Site, events: Vec<Envelope>) -> Vec<Prepared> {
    let mut prev: Option<Digest> = None;
    events
        .into_iter()
        .map(|e| {
            let linked_to_previous = prev.is_some_and(|p| e.links_to(&p));
            prev = Some(e.hash);
            let body = parse_body(site, &e);
            Prepared {
                event: e,
                linked_to_previous,
                body,
            }
        })
        .collect()
}

/// The ids of the batch's events the registry does not hold yet (past `head_seq`): the backend
/// asks which of them another stored event already carries, for [`classify`].
pub fn new_ids(head_seq: u64, events: &[Prepared]) -> Vec<Uuid> {
    events
        .iter()
        .filter(|p| p.event.seq > head_seq)
        .map(|p| p.event.id)
        .collect()
}

/// The verdict of every event. `head_seq`/`head_hash` is what the registry holds of the
/// workstation (0 and anything for none); `stored` has the events it holds among the batch's
/// `seq`s; `taken` the ids among [`new_ids`] that stored events already carry (such an event is
/// kept as a rejection, `id_taken`, rather than failing the batch). A batch that starts past
/// `head_seq + 1` is a gap: the bench must ask the status and re-send what the registry lacks.
pub fn classify(
    head_seq: u64,
    head_hash: Digest,
    stored: &HashMap<u64, Stored>,
    taken: &HashSet<Uuid>,
    events: Vec<Prepared>,
) -> DbResult<Classified> {
    if let Some(first) = events.first()
        && first.event.seq > head_seq + 1
    {
        return Err(DbError::Gap {
            holds: head_seq,
            first: first.event.seq,
        });
    }
    let mut out = Classified {
        verdicts: Vec::with_capacity(events.len()),
        accept: Vec::new(),
        reject: Vec::new(),
        head_seq,
        head_hash: if head_seq == 0 { GENESIS } else { head_hash },
    };
    let mut broken: Option<u64> = None;
    let mut prev_sent: Option<Digest> = None;
    let mut seen: HashSet<Uuid> = HashSet::new();
    for p in events {
        let Prepared {
            event: e,
            linked_to_previous,
            body,
        } = p;
        let (seq, id, hash) = (e.seq, e.id, e.hash);
        let before = prev_sent.replace(hash);
        if seq <= head_seq {
            let verdict = match stored.get(&seq) {
                Some(s) if s.hash == hash => match &s.rejection {
                    None => Verdict::Duplicate {
                        seq,
                        id,
                        server_seq: s.server_seq,
                    },
                    Some((code, message)) => Verdict::Rejected {
                        seq,
                        id,
                        code: *code,
                        message: message.clone(),
                    },
                },
                _ => Verdict::Rejected {
                    seq,
                    id,
                    code: RejectCode::SequenceFork,
                    message: format!(
                        "the registry already holds a different event as seq {seq} of this workstation: its history went backwards (restored from an old backup, or rebuilt). Nothing more is taken from it until an administrator looks"
                    ),
                },
            };
            out.verdicts.push(verdict);
            continue;
        }
        let chain = |message: String| Verdict::Rejected {
            seq,
            id,
            code: RejectCode::ChainBroken,
            message,
        };
        if let Some(at) = broken {
            out.verdicts.push(chain(format!(
                "not stored: it follows seq {at}, which was not stored; send again from there"
            )));
            continue;
        }
        // The link to the previous event was computed before the lock when that event is the
        // one the registry now holds as head; otherwise (the batch's first new event) it is
        // computed here.
        let links = match before {
            Some(b) if b == out.head_hash => linked_to_previous,
            _ => e.links_to(&out.head_hash),
        };
        if !links {
            broken = Some(seq);
            out.verdicts.push(chain(format!(
                "the hash of seq {seq} does not match its content and the previous event the registry holds (seq {}): the event was changed after it was written, or an earlier one is missing",
                out.head_seq
            )));
            continue;
        }
        out.head_seq = seq;
        out.head_hash = hash;
        let body = if taken.contains(&id) || !seen.insert(id) {
            Err((
                RejectCode::IdTaken,
                format!(
                    "another event already has the id {id}: an event id is never reused. Not stored as custody; the bench that wrote it should be checked"
                ),
            ))
        } else {
            body
        };
        match body {
            Ok(body) => {
                out.accept.push(NewEvent {
                    event: e,
                    body,
                    server_seq: 0,
                    verdict: out.verdicts.len(),
                });
                out.verdicts.push(Verdict::Accepted {
                    seq,
                    id,
                    server_seq: 0,
                });
            }
            Err((code, message)) => {
                out.verdicts.push(Verdict::Rejected {
                    seq,
                    id,
                    code,
                    message: message.clone(),
                });
                out.reject.push(NewRejection {
                    event: e,
                    code,
                    message,
                });
            }
        }
    }
    Ok(out)
}

/// The kinds this registry takes (it advertises them in `/api/v1/status`, so that a bench newer
/// than it holds back what it would refuse). A test hook, `KURA_REGISTRY_UNKNOWN_KINDS=a,b`, makes
/// it behave as a build that does not know those kinds yet; nothing else reads it.
pub fn known_kinds() -> &'static [String] {
    static KNOWN: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        let unknown = std::env::var("KURA_REGISTRY_UNKNOWN_KINDS").unwrap_or_default();
        let unknown: Vec<&str> = unknown.split(',').map(str::trim).collect();
        EventBody::KINDS
            .iter()
            .filter(|k| !unknown.contains(k))
            .map(|k| k.to_string())
            .collect()
    })
}

fn parse_body(site: &Site, e: &Envelope) -> Result<EventBody, (RejectCode, String)> {
    if !known_kinds().contains(&e.kind) {
        return Err((
            RejectCode::BadPayload,
            format!(
                "{:?} is not a custody event this registry knows; update the registry or the bench",
                e.kind
            ),
        ));
    }
    let body: EventBody = serde_json::from_str(&e.payload).map_err(|err| {
        (
            RejectCode::BadPayload,
            format!(
                "the payload of a {:?} event is not a custody event this registry knows ({err}); update the registry or the bench",
                e.kind
            ),
        )
    })?;
    if body.kind() != e.kind {
        return Err((
            RejectCode::BadPayload,
            format!(
                "the event says kind {:?} but its payload is a {:?}",
                e.kind,
                body.kind()
            ),
        ));
    }
    if let EventBody::Registered { specimen, .. } | EventBody::Derived { specimen, .. } = &body
        && let Some(prefix) = foreign_prefix(site, &specimen.code)
    {
        return Err((
            RejectCode::WrongSite,
            format!(
                "specimen {} carries the prefix {prefix}, but this workstation belongs to site {} (prefix {}); IDs are issued only from the site's own leases",
                specimen.code, site.code, site.prefix
            ),
        ));
    }
    Ok(body)
}

/// The prefix of a Kura ID issued by another site's format (letters, two year digits, a serial of
/// the site's width, a check character), or `None` (own prefix, or a tube's external code).
fn foreign_prefix(site: &Site, code: &SpecimenCode) -> Option<String> {
    let id = KuraId::parse(&code.to_string()).ok()?;
    let data = id.data();
    let letters = data.bytes().take_while(|b| b.is_ascii_uppercase()).count();
    let rest = &data[letters..];
    let shaped = (1..=6).contains(&letters)
        && rest.len() == 2 + site.serial_width as usize
        && rest.bytes().all(|b| b.is_ascii_digit());
    (shaped && data[..letters] != *site.prefix).then(|| data[..letters].to_string())
}

/// Gives the accepted events the site's next `server_seq`s (the site's counter is locked by the
/// caller until commit) and returns the new counter.
/// Judges the batch's accepted events by the site's users (`authority`, updated as they are
/// taken): a refused one becomes a rejection, `forbidden`, kept in the chain and never folded.
/// Runs after [`classify`] and before [`assign`].
pub fn authorize(c: &mut Classified, authority: &mut kura_domain::authz::Authority) {
    let judged: Vec<kura_domain::authz::Judged<'_>> = c
        .accept
        .iter()
        .map(|e| kura_domain::authz::Judged {
            actor: &e.event.actor,
            at: e.event.at,
            id: e.event.id,
            hash: e.event.hash,
            body: &e.body,
        })
        .collect();
    let verdicts = authority.judge(&judged);
    if verdicts.iter().all(Option::is_none) {
        return;
    }
    let accept = std::mem::take(&mut c.accept);
    for (e, v) in accept.into_iter().zip(verdicts) {
        match v {
            None => c.accept.push(e),
            Some(message) => {
                c.verdicts[e.verdict] = Verdict::Rejected {
                    seq: e.event.seq,
                    id: e.event.id,
                    code: RejectCode::Forbidden,
                    message: message.clone(),
                };
                c.reject.push(NewRejection {
                    event: e.event,
                    code: RejectCode::Forbidden,
                    message,
                });
            }
        }
    }
    c.reject.sort_by_key(|r| r.event.seq);
}

/// The site's users as the registry projects them, rebuilt from its stored user events in the
/// site's order (`(actor, kind, payload)`): for a registry upgraded from before it kept them.
pub fn authority_from<'a>(
    events: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> kura_domain::authz::Authority {
    let mut a = kura_domain::authz::Authority::default();
    for (actor, payload) in events {
        if let Ok(body) = serde_json::from_str::<EventBody>(payload) {
            a.apply(&kura_domain::authz::Judged {
                actor,
                at: 0,
                id: Uuid::nil(),
                hash: kura_domain::hash::GENESIS,
                body: &body,
            });
        }
    }
    a
}

pub fn assign(c: &mut Classified, site_seq: u64) -> u64 {
    let mut next = site_seq;
    for e in &mut c.accept {
        next += 1;
        e.server_seq = next;
        if let Some(Verdict::Accepted { server_seq, .. }) = c.verdicts.get_mut(e.verdict) {
            *server_seq = next;
        }
    }
    next
}

/// A position in a container, as a key.
pub type Slot = (String, u16, u16);

fn slot(container: &ContainerId, pos: Pos) -> Slot {
    (container.to_string(), pos.row, pos.col)
}

/// Rows the fold needs that were not loaded yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    pub specimens: BTreeSet<String>,
    pub containers: BTreeSet<String>,
    /// Which specimen is in (or held for) a position.
    pub specimen_slots: BTreeSet<Slot>,
    /// Which container is in a position of a parent.
    pub container_slots: BTreeSet<Slot>,
}

impl Keys {
    pub fn is_empty(&self) -> bool {
        self.specimens.is_empty()
            && self.containers.is_empty()
            && self.specimen_slots.is_empty()
            && self.container_slots.is_empty()
    }

    /// What a batch will obviously read: what its events touch ([`EventBody::footprint`]).
    pub fn of(events: &[NewEvent]) -> Keys {
        let mut k = Keys::default();
        for e in events {
            let f = e.body.footprint();
            k.specimens.extend(f.specimens);
            k.containers.extend(f.containers);
            k.specimen_slots
                .extend(f.specimen_slots.into_iter().map(|(c, p)| (c, p.row, p.col)));
            k.container_slots.extend(
                f.container_slots
                    .into_iter()
                    .map(|(c, p)| (c, p.row, p.col)),
            );
        }
        k
    }
}

/// A specimen in the registry's projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecimenRow {
    pub state: SpecimenState,
    /// The last event that changed it or was refused on it: the other half of a conflict.
    pub last_event: Uuid,
}

/// A container in the registry's projection (its spec, with where it is now).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRow {
    pub spec: ContainerSpec,
    pub last_event: Uuid,
}

/// The rows a backend has read for the fold; a key present with `None` was looked for and is
/// not there.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub specimens: HashMap<String, Option<SpecimenRow>>,
    pub containers: HashMap<String, Option<ContainerRow>>,
    pub specimen_slots: HashMap<Slot, Option<String>>,
    pub container_slots: HashMap<Slot, Option<String>>,
}

impl Loaded {
    /// Records what a backend found for `keys`: every key asked for becomes known.
    pub fn absorb(
        &mut self,
        keys: &Keys,
        specimens: Vec<SpecimenRow>,
        containers: Vec<ContainerRow>,
        specimen_slots: Vec<(Slot, String)>,
        container_slots: Vec<(Slot, String)>,
    ) {
        for k in &keys.specimens {
            self.specimens.entry(k.clone()).or_insert(None);
        }
        for r in specimens {
            self.specimens.insert(r.state.code.to_string(), Some(r));
        }
        for k in &keys.containers {
            self.containers.entry(k.clone()).or_insert(None);
        }
        for r in containers {
            self.containers.insert(r.spec.id.to_string(), Some(r));
        }
        for k in &keys.specimen_slots {
            self.specimen_slots.entry(k.clone()).or_insert(None);
        }
        for (k, v) in specimen_slots {
            self.specimen_slots.insert(k, Some(v));
        }
        for k in &keys.container_slots {
            self.container_slots.entry(k.clone()).or_insert(None);
        }
        for (k, v) in container_slots {
            self.container_slots.insert(k, Some(v));
        }
    }
}

/// What the fold writes.
#[derive(Debug, Clone, Default)]
pub struct FoldOut {
    pub specimens: Vec<SpecimenRow>,
    pub containers: Vec<ContainerRow>,
    pub conflicts: Vec<Conflict>,
    /// Open conflicts of these subjects are resolved by the event (subject, resolving event).
    pub resolved: Vec<(String, Uuid)>,
}

struct Work<'a> {
    w: &'a mut Loaded,
    misses: Keys,
}

impl Work<'_> {
    fn row(&mut self, code: &str) -> Option<SpecimenRow> {
        match self.w.specimens.get(code) {
            Some(r) => r.clone(),
            None => {
                self.misses.specimens.insert(code.to_string());
                None
            }
        }
    }
    fn crow(&mut self, id: &str) -> Option<ContainerRow> {
        match self.w.containers.get(id) {
            Some(r) => r.clone(),
            None => {
                self.misses.containers.insert(id.to_string());
                None
            }
        }
    }
}

impl View for Work<'_> {
    type Error = Infallible;
    fn specimen(&mut self, code: &SpecimenCode) -> Result<Option<SpecimenState>, Infallible> {
        Ok(self.row(&code.to_string()).map(|r| r.state))
    }
    fn container(&mut self, id: &ContainerId) -> Result<Option<ContainerInfo>, Infallible> {
        Ok(self.crow(&id.to_string()).map(|r| ContainerInfo {
            id: r.spec.id,
            kind: r.spec.kind,
            geometry: r.spec.geometry,
            parent: r.spec.parent,
            pos: r.spec.pos,
        }))
    }
    fn specimen_at(
        &mut self,
        container: &ContainerId,
        pos: Pos,
    ) -> Result<Option<SpecimenCode>, Infallible> {
        let k = slot(container, pos);
        Ok(match self.w.specimen_slots.get(&k) {
            Some(v) => v.clone().map(SpecimenCode::from_stored),
            None => {
                self.misses.specimen_slots.insert(k);
                None
            }
        })
    }
    fn container_at(
        &mut self,
        parent: &ContainerId,
        pos: Pos,
    ) -> Result<Option<ContainerId>, Infallible> {
        let k = slot(parent, pos);
        Ok(match self.w.container_slots.get(&k) {
            Some(v) => v.clone().map(ContainerId::from_stored),
            None => {
                self.misses.container_slots.insert(k);
                None
            }
        })
    }
}

fn subject(body: &EventBody) -> String {
    body.subject().unwrap_or_default()
}

/// Folds `events` (in `server_seq` order) over what was loaded. `Err(keys)`: load those and call
/// again with the same events (the fold starts over; nothing was written).
pub fn fold(events: &[NewEvent], loaded: &Loaded) -> Result<FoldOut, Keys> {
    let mut w = loaded.clone();
    let mut work = Work {
        w: &mut w,
        misses: Keys::default(),
    };
    let mut out = FoldOut::default();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let mut ctouched: BTreeSet<String> = BTreeSet::new();
    for e in events {
        let id = e.event.id;
        let subj = subject(&e.body);
        let (effect, refused) = match rules::settle(&mut work, &e.body) {
            Ok(Settled::Applied(effect)) => (Some(effect), None),
            Ok(Settled::Conflict { error, effect }) => (effect, Some(error)),
            // Already resolved (by another bench, or twice): nothing to add.
            Ok(Settled::Nothing) => continue,
            Err(never) => match never {},
        };
        if let Some(err) = refused {
            let container_event = matches!(
                e.body,
                EventBody::ContainerCreated { .. } | EventBody::ContainerMoved { .. }
            );
            let other = match &err {
                RuleError::PositionOccupied { by, .. } if container_event => {
                    work.crow(by).map(|r| r.last_event)
                }
                RuleError::PositionOccupied { by, .. } => work.row(by).map(|r| r.last_event),
                _ if container_event => work.crow(&subj).map(|r| r.last_event),
                _ => work.row(&subj).map(|r| r.last_event),
            };
            out.conflicts.push(Conflict {
                server_seq: e.server_seq,
                subject: subj.clone(),
                code: err.code().to_string(),
                message: err.to_string(),
                events: other.into_iter().chain([id]).collect(),
                resolved_by: None,
            });
        }
        // An arrival from another site registers its tubes here, one by one.
        let effects: Vec<Option<Effect>> = match effect {
            Some(Effect::Arrive { tubes, .. }) => tubes
                .into_iter()
                .map(|(record, state)| Some(Effect::Register { record, state }))
                .collect(),
            other => vec![other],
        };
        for effect in effects {
            match effect {
                Some(Effect::Register { state, .. }) | Some(Effect::Update(state)) => {
                    let code = state.code.to_string();
                    let before = work.row(&code).and_then(|r| r.state.location().cloned());
                    let after = state.location().cloned();
                    if before != after {
                        if let Some(l) = before {
                            work.w
                                .specimen_slots
                                .insert(slot(&l.container, l.pos), None);
                        }
                        if let Some(l) = after {
                            work.w
                                .specimen_slots
                                .insert(slot(&l.container, l.pos), Some(code.clone()));
                        }
                    }
                    if let EventBody::ConflictResolved { .. } | EventBody::ConflictSettled { .. } =
                        e.body
                        && !state.in_conflict
                    {
                        out.resolved.push((code.clone(), id));
                        for c in out.conflicts.iter_mut() {
                            if c.subject == code && c.resolved_by.is_none() {
                                c.resolved_by = Some(id);
                            }
                        }
                    }
                    work.w.specimens.insert(
                        code.clone(),
                        Some(SpecimenRow {
                            state,
                            last_event: id,
                        }),
                    );
                    touched.insert(code);
                }
                Some(Effect::CreateContainer(spec)) => {
                    let cid = spec.id.to_string();
                    if let (Some(p), Some(pos)) = (&spec.parent, spec.pos) {
                        work.w
                            .container_slots
                            .insert(slot(p, pos), Some(cid.clone()));
                    }
                    work.w.containers.insert(
                        cid.clone(),
                        Some(ContainerRow {
                            spec,
                            last_event: id,
                        }),
                    );
                    ctouched.insert(cid);
                }
                Some(Effect::MoveContainer { id: cid, to }) => {
                    let key = cid.to_string();
                    if let Some(mut row) = work.crow(&key) {
                        if let (Some(p), Some(pos)) = (&row.spec.parent, row.spec.pos) {
                            work.w.container_slots.insert(slot(p, pos), None);
                        }
                        let Placement { parent, pos } = to;
                        if let Some(pos) = pos {
                            work.w
                                .container_slots
                                .insert(slot(&parent, pos), Some(key.clone()));
                        }
                        row.spec.parent = Some(parent);
                        row.spec.pos = pos;
                        row.last_event = id;
                        work.w.containers.insert(key.clone(), Some(row));
                        ctouched.insert(key);
                    }
                }
                // The registry keeps user events in the site's log for every bench to pull; it signs
                // nobody in and destroys nothing, so it keeps no projection of users, signatures or
                // withdrawals.
                Some(Effect::Log { .. })
                | Some(Effect::Ship(_))
                | Some(Effect::Trust { .. })
                | Some(Effect::User { .. })
                | Some(Effect::Sign { .. })
                | Some(Effect::Withdraw { .. })
                | Some(Effect::Arrive { .. })
                | None => {}
            }
        }
    }
    if !work.misses.is_empty() {
        return Err(work.misses);
    }
    out.specimens = touched
        .into_iter()
        .filter_map(|k| w.specimens.get(&k).cloned().flatten())
        .collect();
    out.containers = ctouched
        .into_iter()
        .filter_map(|k| w.containers.get(&k).cloned().flatten())
        .collect();
    Ok(out)
}

/// Runs [`fold`] to completion with a loader that reads rows for keys (inside the backend's
/// transaction), for backends whose reads are blocking.
pub fn fold_with<E>(
    events: &[NewEvent],
    mut load: impl FnMut(&Keys, &mut Loaded) -> Result<(), E>,
) -> Result<FoldOut, FoldError<E>> {
    let mut loaded = Loaded::default();
    let mut keys = Keys::of(events);
    for _ in 0..MAX_ROUNDS {
        load(&keys, &mut loaded).map_err(FoldError::Load)?;
        match fold(events, &loaded) {
            Ok(out) => return Ok(out),
            Err(more) => keys = more,
        }
    }
    Err(FoldError::Rounds)
}

/// More rounds than any batch needs (each round loads every key the last one missed).
pub const MAX_ROUNDS: usize = 64;

#[derive(Debug)]
pub enum FoldError<E> {
    Load(E),
    Rounds,
}

/// The location a specimen row occupies, as columns: `(container, row, col)`.
pub fn occupied(state: &SpecimenState) -> Option<Slot> {
    state.location().map(|l| slot(&l.container, l.pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::words;
    use crate::testkit::{self, Bench};

    /// `classify` on its own, as a table: what the registry holds of a workstation (head, the
    /// stored events among the batch's seqs, ids other events carry) and a batch, and the verdict
    /// of each event. The backends only load the rows and write what it decides.
    #[test]
    fn classify_decides_each_event_from_what_is_held() {
        let site = testkit::site("NCGM", "G");
        let mut bench = Bench::new(Uuid::now_v7());
        let g1 = testkit::specimen("G", 1);
        let first = bench.events(&testkit::storage("1", &["BX1"]));
        let n = first.len() as u64;
        let head_hash = first[first.len() - 1].hash;
        let mut next = bench.clone();
        let good = next.event(&testkit::thawed(&g1));
        let after = next.event(&testkit::thawed(&g1));
        let mut tampered = good.clone();
        tampered.actor = "someone else".into();
        let mut bad = bench.clone();
        let garbled = bad.raw("thawed", "{not json");
        let after_garbled = bad.event(&testkit::thawed(&g1));
        let stored: HashMap<u64, Stored> = first
            .iter()
            .map(|e| {
                (
                    e.seq,
                    Stored {
                        hash: e.hash,
                        rejection: None,
                        server_seq: Some(e.seq + 100),
                    },
                )
            })
            .collect();
        let mut rejected = stored.clone();
        rejected.get_mut(&n).unwrap().rejection =
            Some((RejectCode::BadPayload, "was refused".into()));
        let mut forked = first[first.len() - 1].clone();
        forked.hash = Digest::from_bytes([7; 32]);
        let mut twice = bench.clone();
        let twice_a = twice.event(&testkit::thawed(&g1));
        let twice_b = twice.with_id(twice_a.id, &testkit::thawed(&g1));
        let none = HashSet::new();
        let taken: HashSet<Uuid> = [good.id].into();
        // (what, head, stored, taken ids, batch, verdicts)
        type Case<'a> = (
            &'a str,
            u64,
            &'a HashMap<u64, Stored>,
            &'a HashSet<Uuid>,
            Vec<Envelope>,
            Vec<&'a str>,
        );
        let empty = HashMap::new();
        let cases: Vec<Case> = vec![
            (
                "a new stream",
                0,
                &empty,
                &none,
                first.clone(),
                vec!["accepted"; n as usize],
            ),
            (
                "what follows the head",
                n,
                &stored,
                &none,
                vec![good.clone(), after.clone()],
                vec!["accepted"; 2],
            ),
            (
                "the head again",
                n,
                &stored,
                &none,
                vec![first[first.len() - 1].clone()],
                vec!["duplicate"],
            ),
            (
                "the head again, kept as a rejection",
                n,
                &rejected,
                &none,
                vec![first[first.len() - 1].clone()],
                vec!["bad_payload"],
            ),
            (
                "another event under the head's seq",
                n,
                &stored,
                &none,
                vec![forked],
                vec!["sequence_fork"],
            ),
            (
                "changed after hashing, and what follows it",
                n,
                &stored,
                &none,
                vec![tampered, after.clone()],
                vec!["chain_broken"; 2],
            ),
            (
                "a payload no registry reads, and the stream goes on",
                n,
                &stored,
                &none,
                vec![garbled, after_garbled],
                vec!["bad_payload", "accepted"],
            ),
            (
                "an id another event carries",
                n,
                &stored,
                &taken,
                vec![good.clone(), after.clone()],
                vec!["id_taken", "accepted"],
            ),
            (
                "the same id twice in a batch",
                n,
                &stored,
                &none,
                vec![twice_a, twice_b],
                vec!["accepted", "id_taken"],
            ),
        ];
        for (what, head, stored, taken, batch, want) in cases {
            let hash = if head == 0 { GENESIS } else { head_hash };
            let c = classify(head, hash, stored, taken, prepare(&site, batch)).unwrap();
            assert_eq!(words(&c.verdicts), want, "{what}");
        }
        // A batch that starts past the head + 1 is a gap, not a verdict.
        let e = classify(0, GENESIS, &empty, &none, prepare(&site, vec![good])).unwrap_err();
        assert_eq!(e.code(), "gap");
    }
}
