//! The audit trail and its report: every event of a specimen, a user or a period, with the
//! values it changed (old → new), who, when, where, why and who signed it; as a PDF an inspector
//! can keep (its last page is the `verify` result and each workstation's head hash) or as CSV.
//! An export is itself recorded — an `audit_exported` event with the SHA-256 of the file,
//! signed on a database with users — so that a printout can be matched to the record.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use kura_domain::{EventBody, Geometry, Location, Placement, Pos};
use serde::{Deserialize, Serialize};

use crate::users::{Act, SignatureView};
use crate::{AppError, Kura, VerifyReport};

/// Which events a report lists (all of them when nothing is given; the filters combine).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditQuery {
    /// Events about this specimen.
    pub specimen: Option<String>,
    /// Events this user made, or that are about them (user administration).
    pub user: Option<String>,
    /// From this date at the site (inclusive), `YYYY-MM-DD`.
    pub from: Option<String>,
    /// To this date at the site (inclusive).
    pub to: Option<String>,
    /// Verify the whole log and the projection again (`kura verify --full`), not only what
    /// came after the last verified point.
    #[serde(default)]
    pub full: bool,
}

/// One event as the audit trail lists it. The CSV's columns, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub n: u64,
    pub time_utc: String,
    pub time_local: String,
    pub event: String,
    pub subject: String,
    /// The values the event changed, before it: `status=available; holder=`.
    pub old: String,
    /// The same values after it.
    pub new: String,
    pub reason: String,
    pub actor: String,
    /// Its signatures: `name (user) meaning time_utc`, one per line.
    pub signatures: String,
    pub workstation: String,
    pub seq: i64,
    pub event_id: String,
    pub hash: String,
}

/// A report: its rows and the verification of the chain they come from.
#[derive(Debug, Clone)]
pub struct AuditReport {
    pub scope: String,
    pub rows: Vec<AuditRow>,
    pub verify: VerifyReport,
    /// Each workstation's chain head: (workstation, last seq, hash).
    pub heads: Vec<(String, i64, String)>,
    /// Each signer of a listed signature, with the fingerprint of the key they signed with
    /// (None: signed before signing keys), so an inspector can check the signatures offline
    /// against the keys the exported events publish.
    pub keys: Vec<SignerKey>,
}

/// A signer and their key's fingerprint ([`kura_domain::sign::fingerprint`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignerKey {
    pub user: String,
    pub name: String,
    pub fingerprint: Option<String>,
}

/// What `kura audit --out` wrote.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct AuditExport {
    pub path: String,
    pub format: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub events: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub pages: usize,
    pub sha256: String,
    /// Whether `verify` found the chain intact.
    pub intact: bool,
    pub signature: Option<SignatureView>,
}

/// A report built and not yet written ([`Kura::build_audit`]): what [`Kura::record_audit`]
/// writes and records.
#[derive(Debug)]
pub struct AuditFile {
    out: PathBuf,
    format: &'static str,
    bytes: Vec<u8>,
    pages: usize,
    scope: String,
    events: u64,
    /// The hash of the last event listed.
    head: String,
    intact: bool,
}

/// The format a report's file name asks for (`pdf`, `csv`, `xlsx`, `jsonl`).
fn audit_format(out: &Path) -> Result<&'static str, AppError> {
    out.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
        .and_then(report_format)
        .ok_or_else(|| {
            AppError::input(
                "out",
                format!(
                    "{}: an audit report is a .pdf, .csv or .xlsx file (or .jsonl: every event of the log as stored)",
                    out.display()
                ),
            )
        })
}

type Attrs = BTreeMap<&'static str, String>;

/// Positions as the labels on the box say them (`A1`), from each container's geometry (read
/// once per container).
struct Labels<'a> {
    store: &'a kura_store::Store,
    geometry: std::cell::RefCell<HashMap<String, Option<Geometry>>>,
}

impl<'a> Labels<'a> {
    fn new(store: &'a kura_store::Store) -> Labels<'a> {
        Labels {
            store,
            geometry: Default::default(),
        }
    }

    fn of(&self, container: &str, pos: Pos) -> String {
        let mut g = self.geometry.borrow_mut();
        let geometry = g
            .entry(container.to_string())
            .or_insert_with(|| self.store.container_geometry(container).ok().flatten());
        match geometry {
            Some(geo) => format!("{container} {}", geo.label(pos)),
            None => format!("{container} {pos}"),
        }
    }

    fn at(&self, l: &Location) -> String {
        self.of(l.container.as_str(), l.pos)
    }

    fn placed(&self, p: &Placement) -> String {
        match p.pos {
            Some(pos) => self.of(p.parent.as_str(), pos),
            None => p.parent.to_string(),
        }
    }
}

/// What an event is about: a specimen, a container, a user, a donor, another event.
fn subject(body: &EventBody) -> String {
    body.footprint().about
}

/// The status of a specimen that arrives (registered, received): stored if it was placed.
fn arrived(placed: bool) -> String {
    if placed { "available" } else { "received" }.to_string()
}

/// The values `body` sets on its subject ("" clears one). `before` is what the subject had.
fn sets(body: &EventBody, before: &Attrs, labels: &Labels<'_>) -> Vec<(&'static str, String)> {
    let s = |v: &str| v.to_string();
    let count = |k: &str| -> String {
        let n: u64 = before.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        (n + 1).to_string()
    };
    match body {
        EventBody::Registered { specimen, location }
        | EventBody::Derived {
            specimen, location, ..
        } => {
            let mut v = vec![
                ("status", arrived(location.is_some())),
                ("type", s(specimen.sample_type.info().code)),
                ("donor", specimen.donor.clone()),
                ("study", specimen.study.clone()),
                ("freeze_thaw", specimen.freeze_thaw.to_string()),
            ];
            if let Some(l) = location {
                v.push(("location", labels.at(l)));
            }
            if let Some(q) = &specimen.quantity {
                v.push(("quantity", q.to_string()));
            }
            if let Some(p) = &specimen.parent {
                v.push(("parent", p.to_string()));
            }
            v
        }
        EventBody::CheckedIn { location, .. } => vec![
            ("status", s("available")),
            ("location", labels.at(location)),
            ("holder", String::new()),
            ("due", String::new()),
        ],
        EventBody::CheckedOut {
            to, purpose, due, ..
        } => vec![
            ("status", s("checked_out")),
            ("holder", to.clone()),
            ("purpose", s(purpose.as_str())),
            ("due", due.map(|d| d.to_string()).unwrap_or_default()),
        ],
        EventBody::Returned { thawed, .. } => {
            let mut v = vec![
                ("status", s("available")),
                ("holder", String::new()),
                ("purpose", String::new()),
                ("due", String::new()),
            ];
            if *thawed {
                v.push(("freeze_thaw", count("freeze_thaw")));
            }
            v
        }
        EventBody::Moved { to, .. } => vec![("location", labels.at(to))],
        EventBody::Thawed { .. } => vec![("freeze_thaw", count("freeze_thaw"))],
        EventBody::Consumed {
            amount, used_up, ..
        } => {
            let mut v = Vec::new();
            if let Some(a) = amount {
                v.push(("used", a.to_string()));
            }
            if *used_up {
                v.push(("status", s("consumed")));
            }
            v
        }
        EventBody::Disposed { .. } => vec![("status", s("disposed"))],
        EventBody::Blocked { .. } => vec![("blocked", s("yes"))],
        EventBody::Unblocked { .. } => vec![("blocked", s("no"))],
        EventBody::Shipped {
            shipment,
            destination,
            ..
        } => vec![
            ("status", s("in_transit")),
            ("location", String::new()),
            ("holder", destination.clone()),
            ("shipment", shipment.clone()),
        ],
        EventBody::Distributed {
            shipment,
            recipient,
            mta,
            ..
        } => vec![
            ("status", s("distributed")),
            ("location", String::new()),
            ("holder", recipient.clone()),
            ("shipment", shipment.clone()),
            ("mta", mta.clone()),
        ],
        EventBody::ShipmentDispatched { shipment: m } => {
            let mut v = vec![
                ("destination", m.destination.label()),
                ("tubes", m.specimens.len().to_string()),
                ("coolant", s(m.coolant.as_str())),
            ];
            if let Some(line) = m.dry_ice_line() {
                v.push(("dangerous_goods", line));
            }
            for (k, x) in [
                ("courier", &m.courier),
                ("tracking", &m.tracking),
                ("logger", &m.logger),
                ("mta", &m.mta),
            ] {
                if let Some(x) = x {
                    v.push((k, x.clone()));
                }
            }
            v
        }
        EventBody::ShipmentArrived {
            shipment: m,
            dispatch,
            key,
            tubes,
        } => vec![
            ("shipment", m.id.clone()),
            ("status", s("in_transit")),
            ("tubes", tubes.len().to_string()),
            ("dispatch", dispatch.to_string()),
            ("key", key.clone()),
        ],
        EventBody::KeyTrusted { name, fingerprint } => {
            vec![("name", name.clone()), ("fingerprint", fingerprint.clone())]
        }
        EventBody::Received { location, .. } => {
            let mut v = vec![
                ("status", arrived(location.is_some())),
                ("holder", String::new()),
            ];
            if let Some(l) = location {
                v.push(("location", labels.at(l)));
            }
            v
        }
        EventBody::ConflictSettled { outcome, .. } => {
            use kura_domain::rules::Custody;
            let mut v = vec![("status", s(outcome.custody.status().as_str()))];
            match &outcome.custody {
                Custody::Stored { at: l } => {
                    v.push(("location", labels.at(l)));
                    v.push(("holder", String::new()));
                    v.push(("due", String::new()));
                }
                Custody::CheckedOut { held, holder, due } => {
                    v.push(("location", labels.at(held)));
                    v.push(("holder", holder.clone()));
                    v.push(("due", due.map(|d| d.to_string()).unwrap_or_default()));
                }
                _ => v.push(("holder", String::new())),
            }
            if outcome.blocked || before.contains_key("blocked") {
                v.push(("blocked", s(if outcome.blocked { "yes" } else { "no" })));
            }
            v.push(("freeze_thaw", outcome.freeze_thaw.to_string()));
            v
        }
        EventBody::ContainerCreated { container } => {
            let mut v = vec![("type", s(container.kind.as_str()))];
            if let Some(p) = &container.parent {
                v.push((
                    "location",
                    match container.pos {
                        Some(pos) => labels.of(p.as_str(), pos),
                        None => p.to_string(),
                    },
                ));
            }
            v
        }
        EventBody::ContainerMoved { to, .. } => vec![("location", labels.placed(to))],
        EventBody::UserAdded {
            name, role, badge, ..
        } => vec![
            ("name", name.clone()),
            ("role", s(role.as_str())),
            ("badge", badge.clone().unwrap_or_default()),
            ("disabled", s("no")),
        ],
        EventBody::RoleGranted { role, .. } => vec![("role", s(role.as_str()))],
        EventBody::UserDisabled { .. } => vec![("disabled", s("yes"))],
        EventBody::CredentialSet { secret, .. } => {
            let k = match secret {
                kura_domain::Secret::Password => "password",
                kura_domain::Secret::Pin => "pin",
            };
            // The hash is never shown: that it was set, or set again.
            let v = if before.contains_key(k) {
                "changed"
            } else {
                "set"
            };
            vec![(k, s(v))]
        }
        EventBody::ConsentWithdrawn { .. } => vec![("consent", s("withdrawn"))],
        EventBody::ConflictResolved { .. }
        | EventBody::LabelsPrinted { .. }
        | EventBody::Signed { .. }
        | EventBody::AuditExported { .. }
        | EventBody::Imported { .. } => Vec::new(),
    }
}

fn reason(body: &EventBody) -> String {
    match body {
        EventBody::Disposed { reason, .. }
        | EventBody::Blocked { reason, .. }
        | EventBody::Unblocked { reason, .. }
        | EventBody::UserDisabled { reason, .. }
        | EventBody::ConsentWithdrawn { reason, .. }
        | EventBody::ConflictSettled { reason, .. } => reason.clone(),
        EventBody::ConflictResolved { resolution, .. } => resolution.clone(),
        EventBody::CheckedOut { note, .. } => note.clone().unwrap_or_default(),
        EventBody::Signed { meaning, name, .. } => format!("{} — {name}", meaning.as_str()),
        EventBody::AuditExported {
            format,
            events,
            sha256,
            ..
        } => format!("{format}, {events} events, SHA-256 {sha256}"),
        EventBody::Imported {
            file,
            format,
            sha256,
            rows,
            issued,
        } => format!("{file} ({format}), {rows} rows, {issued} IDs issued, SHA-256 {sha256}"),
        _ => String::new(),
    }
}

fn pairs(v: &[(&'static str, String)]) -> String {
    v.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Kura {
    /// The audit trail for `q`: every event it selects, in the log's order, with the values
    /// each changed, its signatures, and the verification of the chain from the last verified
    /// point (with `q.full`, of the whole log and the projection).
    pub fn audit(
        &mut self,
        q: &AuditQuery,
        progress: crate::Progress<'_>,
    ) -> Result<AuditReport, AppError> {
        self.authorize(Act::Read)?;
        let specimen_code = q
            .specimen
            .as_deref()
            .map(|s| self.specimen_code(s))
            .transpose()?;
        let specimen = specimen_code.as_ref().map(|c| c.to_string());
        // A specimen's trail is its history: the events about it and those that moved it with
        // its box, rack or freezer (container moves, evacuations), as `kura history` lists them.
        let about_it: Option<std::collections::HashSet<uuid::Uuid>> = match &specimen_code {
            Some(c) => Some(
                self.store()
                    .history(c)?
                    .into_iter()
                    .map(|e| e.event_id)
                    .collect(),
            ),
            None => None,
        };
        let user = q
            .user
            .as_deref()
            .map(|u| kura_domain::user::parse_user_id(u).map_err(|m| AppError::input("user", m)))
            .transpose()?;
        let from = crate::input::date("from", q.from.as_deref())?;
        let to = crate::input::date("to", q.to.as_deref())?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(AppError::input(
                "to",
                format!("the period ends ({t}) before it begins ({f})"),
            ));
        }
        let mut scope = Vec::new();
        if let Some(s) = &specimen {
            scope.push(format!("specimen {s}"));
        }
        if let Some(u) = &user {
            scope.push(format!("user {u}"));
        }
        if from.is_some() || to.is_some() {
            scope.push(format!(
                "{}..{}",
                from.map(|d| d.to_string()).unwrap_or_default(),
                to.map(|d| d.to_string()).unwrap_or_default()
            ));
        }
        let scope = if scope.is_empty() {
            "all".to_string()
        } else {
            scope.join(", ")
        };
        let calendar = self.calendar().clone();
        // Events refused as conflicts changed nothing (until a settlement kept one): they are
        // listed, but not folded into the values that follow.
        let refused: std::collections::HashSet<String> = self
            .store()
            .conflicts(true)?
            .into_iter()
            .map(|c| c.event)
            .collect();
        let mut state: HashMap<String, Attrs> = HashMap::new();
        let mut rows: Vec<AuditRow> = Vec::new();
        let mut listed: HashMap<String, usize> = HashMap::new();
        let mut signatures: HashMap<String, Vec<String>> = HashMap::new();
        let mut book = kura_domain::sign::KeyBook::default();
        let mut keys: std::collections::BTreeSet<SignerKey> = Default::default();
        let total = self.store().event_count()?;
        let mut seen = 0u64;
        let labels = Labels::new(self.store());
        self.store().for_each_event(|e, hash| {
            seen += 1;
            if seen.is_multiple_of(10_000) {
                progress(seen, total);
            }
            // With a specimen asked for, only its events and the signatures of those listed
            // matter: the others are passed over before they are parsed, and nothing of theirs
            // is kept.
            let signs_listed = e.kind == "signed"
                && e.payload
                    .get("event")
                    .and_then(|v| v.as_str())
                    .is_some_and(|id| listed.contains_key(id));
            // Every key, whatever is listed: a listed signature is checked against the key its
            // signer had then.
            if e.kind == "credential_set"
                && let Ok(b) = EventBody::deserialize(&e.payload)
            {
                book.apply(&b);
            }
            if let Some(ids) = &about_it
                && !ids.contains(&e.event_id)
                && !signs_listed
            {
                return Ok(());
            }
            let Ok(body) = EventBody::deserialize(&e.payload) else {
                // `verify` reports an event that does not parse; the trail lists it as stored.
                return Ok(());
            };
            let subj = subject(&body);
            let before = state.entry(subj.clone()).or_default();
            let was_refused = refused.contains(&e.event_id.to_string());
            let set = if was_refused {
                Vec::new()
            } else {
                sets(&body, before, &labels)
            };
            let mut old = Vec::new();
            let mut new = Vec::new();
            for (k, v) in set {
                let was = before.get(k).cloned().unwrap_or_default();
                if was != v || matches!(k, "password" | "pin" | "used") {
                    old.push((k, was));
                    new.push((k, v.clone()));
                }
                if v.is_empty() {
                    before.remove(k);
                } else {
                    before.insert(k, v);
                }
            }
            if let EventBody::Signed {
                event,
                signer,
                name,
                meaning,
                ..
            } = &body
            {
                keys.insert(SignerKey {
                    user: signer.clone(),
                    name: name.clone(),
                    fingerprint: book
                        .key(signer)
                        .map(|k| kura_domain::sign::fingerprint(&k.ed25519)),
                });
                signatures
                    .entry(event.to_string())
                    .or_default()
                    .push(format!(
                        "{name} ({signer}) {} {}",
                        meaning.as_str(),
                        kura_domain::Timestamp(e.at)
                    ));
            }
            let ts = kura_domain::Timestamp(e.at);
            let date = calendar.date(ts);
            // (A specimen's trail was selected above, before the event was parsed.)
            let wanted = user
                .as_ref()
                .is_none_or(|u| *u == e.actor || body.user() == Some(u.as_str()))
                && from.is_none_or(|f| date >= f)
                && to.is_none_or(|t| date <= t);
            if wanted {
                listed.insert(e.event_id.to_string(), rows.len());
                rows.push(AuditRow {
                    n: rows.len() as u64 + 1,
                    time_utc: ts.to_string(),
                    time_local: calendar.wall_with_offset(ts),
                    event: e.kind.clone(),
                    subject: subj,
                    old: pairs(&old),
                    new: pairs(&new),
                    reason: if was_refused {
                        let r = reason(&body);
                        format!(
                            "(refused: conflict){}",
                            if r.is_empty() {
                                String::new()
                            } else {
                                format!(" {r}")
                            }
                        )
                    } else {
                        reason(&body)
                    },
                    actor: e.actor.clone(),
                    signatures: String::new(),
                    workstation: e.workstation.to_string(),
                    seq: e.seq,
                    event_id: e.event_id.to_string(),
                    hash: hash.to_string(),
                });
            }
            Ok(())
        })?;
        progress(total, total);
        for (event, sigs) in signatures {
            if let Some(&i) = listed.get(&event) {
                rows[i].signatures = sigs.join("\n");
            }
        }
        // The fold's values are not needed any more: not held while `verify` builds its own.
        drop(state);
        // From the last verified point (the report says which), or with `full` the whole log
        // and the projection again; `verify` reads on a connection of its own and holds no
        // lock meanwhile.
        let verify = self.verify_from(q.full, &mut |_, _| {})?;
        let heads = self
            .store()
            .heads()?
            .into_iter()
            .map(|(w, s, h)| (w.to_string(), s, h.to_string()))
            .collect();
        // Only the signers of listed events.
        let signers: std::collections::HashSet<&str> = rows
            .iter()
            .flat_map(|r| r.signatures.lines())
            .filter_map(|l| {
                l.split_once(" (")
                    .and_then(|(_, rest)| rest.split_once(')'))
            })
            .map(|(user, _)| user)
            .collect();
        let keys = keys
            .iter()
            .filter(|k| signers.contains(k.user.as_str()))
            .cloned()
            .collect();
        Ok(AuditReport {
            scope,
            rows,
            verify,
            heads,
            keys,
        })
    }

    /// Where a face without a file picker (the window) writes an audit report: a new file
    /// `audit-<UTC time>.pdf|csv` in `reports/` beside the database (made if missing; a second
    /// export in the same second gets `-2`, `-3`, … rather than overwriting the first).
    pub fn audit_report_path(&self, format: &str) -> Result<PathBuf, AppError> {
        let ext = report_format(format).ok_or_else(|| {
            AppError::input(
                "format",
                format!("{format:?}: an audit report is a pdf, csv or xlsx file"),
            )
        })?;
        let dir = self
            .path()
            .parent()
            .map(|p| p.join("reports"))
            .unwrap_or_else(|| PathBuf::from("reports"));
        std::fs::create_dir_all(&dir).map_err(|e| AppError::File {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        let stamp: String = self
            .now()
            .to_string()
            .chars()
            .filter(char::is_ascii_digit)
            .take(14)
            .collect();
        let mut out = dir.join(format!("audit-{stamp}.{ext}"));
        let mut n = 1;
        while out.exists() {
            n += 1;
            out = dir.join(format!("audit-{stamp}-{n}.{ext}"));
        }
        Ok(out)
    }

    /// Writes the audit report for `q` to `out` (`.pdf` or `.csv`, in `lang` — `en` or `ja`),
    /// and records the export, signed on a database with users: run it in
    /// [`Kura::with_signature`], whose signer is checked before anything is read; a file whose
    /// export could not be recorded is removed. [`Kura::audit_reader`], [`Kura::build_audit`]
    /// and [`Kura::record_audit`] are its three steps, for a face that must not hold its own
    /// handle while the report is read.
    pub fn export_audit(
        &mut self,
        q: &AuditQuery,
        out: &Path,
        lang: &str,
        progress: crate::Progress<'_>,
    ) -> Result<AuditExport, AppError> {
        audit_format(out)?;
        self.may_export_audit()?;
        let file = self.build_audit(q, out, lang, progress)?;
        self.record_audit(file)
    }

    /// Whether this person may export an audit report now: they may read, and on a database
    /// with users a signer is armed ([`Kura::with_signature`]), so that a wrong password is
    /// told before the log is read rather than after.
    fn may_export_audit(&mut self) -> Result<(), AppError> {
        self.authorize(Act::Read)?;
        if self.secured()? && self.armed.is_none() {
            return Err(AppError::SignatureRequired { act: Act::Read });
        }
        Ok(())
    }

    /// A handle of its own on this database, acting as the same person, for building an audit
    /// report ([`Kura::build_audit`]) while this one goes on: the window builds the report
    /// without holding its lock on its own handle, so scans and check-ins go on meanwhile. The
    /// same checks as [`Kura::export_audit`] come first (run it in [`Kura::with_signature`]).
    pub fn audit_reader(&mut self) -> Result<Kura, AppError> {
        self.may_export_audit()?;
        let mut k = Kura::open_existing(self.path(), &self.actor)?;
        k.clock = self.clock.clone();
        k.session = self.session.clone();
        k.idle_secs = self.idle_secs;
        k.idle_fixed = true;
        Ok(k)
    }

    /// Reads the log and renders the report for `q` in the format `out` names; writes nothing
    /// but the verified point (see [`Kura::verify_from`]). [`Kura::record_audit`] writes it.
    pub fn build_audit(
        &mut self,
        q: &AuditQuery,
        out: &Path,
        lang: &str,
        progress: crate::Progress<'_>,
    ) -> Result<AuditFile, AppError> {
        let format = audit_format(out)?;
        self.authorize(Act::Read)?;
        let k = self;
        let report = k.audit(q, progress)?;
        let (bytes, pages) = match format {
            "pdf" => {
                let r = kura_labels::report::render_report(&k.audit_document(&report, lang)?);
                (r.bytes, r.pages)
            }
            "jsonl" => (k.events_jsonl()?, 0),
            "xlsx" => (k.audit_xlsx(&report.rows)?, 0),
            _ => (audit_csv(&report.rows)?, 0),
        };
        Ok(AuditFile {
            out: out.to_path_buf(),
            format,
            bytes,
            pages,
            scope: report.scope,
            events: report.rows.len() as u64,
            head: report
                .rows
                .last()
                .map(|r| r.hash.clone())
                .unwrap_or_default(),
            intact: report.verify.ok(),
        })
    }

    /// Writes a built report to its file (never over another) and records the export, signed
    /// on a database with users (run it in [`Kura::with_signature`]); a file whose export could
    /// not be recorded is removed.
    pub fn record_audit(&mut self, file: AuditFile) -> Result<AuditExport, AppError> {
        let AuditFile {
            out,
            format,
            bytes,
            pages,
            scope,
            events,
            head,
            intact,
        } = file;
        let sha256 = {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(&bytes))
        };
        write_new(&out, &bytes)?;
        let recorded = self.write(|e| {
            let ev = e.emit(EventBody::AuditExported {
                scope,
                format: format.to_string(),
                events,
                head,
                sha256: sha256.clone(),
            })?;
            Ok(e.signed.iter().find(|v| v.event == ev.id).cloned())
        });
        let signature = match recorded {
            Ok(s) => s,
            Err(err) => {
                let _ = std::fs::remove_file(&out);
                return Err(err);
            }
        };
        Ok(AuditExport {
            path: out.display().to_string(),
            format: format.to_string(),
            events,
            pages,
            sha256,
            intact,
            signature,
        })
    }

    /// Every event of the log, one JSON object per line in the order the log is folded, as
    /// stored (id, workstation, seq, actor, time, kind, payload, hash): what an inspector's own
    /// tools check the signatures against, with the key fingerprints a PDF report prints.
    fn events_jsonl(&self) -> Result<Vec<u8>, AppError> {
        let mut out = Vec::new();
        self.store().for_each_event(|e, hash| {
            let line = serde_json::json!({
                "event_id": e.event_id,
                "workstation": e.workstation,
                "seq": e.seq,
                "actor": e.actor,
                "at": e.at,
                "kind": e.kind,
                "payload": e.payload,
                "hash": hash,
            });
            out.extend_from_slice(line.to_string().as_bytes());
            out.push(b'\n');
            Ok(())
        })?;
        Ok(out)
    }

    /// The report as a document to print, its words from the catalogue in `lang`.
    fn audit_document(
        &mut self,
        r: &AuditReport,
        lang: &str,
    ) -> Result<kura_labels::report::Report, AppError> {
        let t = |k: &str| crate::catalogue::text(lang, k);
        let value = |k: &str, v: &str| -> String {
            let key = match k {
                "status" => format!("status.{v}"),
                "role" => format!("role.{v}"),
                "purpose" => format!("purpose.{v}"),
                _ => format!("audit.value.{v}"),
            };
            crate::catalogue::lookup(lang, &key).unwrap_or_else(|| v.to_string())
        };
        let show = |s: &str| -> String {
            s.split("; ")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    let name = crate::catalogue::lookup(lang, &format!("audit.attr.{k}"))
                        .unwrap_or_else(|| k.to_string());
                    format!(
                        "{name}: {}",
                        if v.is_empty() {
                            "—".into()
                        } else {
                            value(k, v)
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let who = self
            .session()
            .map(|s| format!("{} ({})", s.name, s.user))
            .unwrap_or_else(|| self.actor().to_string());
        let now = self.now();
        let preface = vec![
            format!("{}: {}", t("audit.scope"), r.scope),
            format!(
                "{}: {} · {}",
                t("audit.made"),
                self.calendar().wall_with_offset(now),
                who
            ),
            format!(
                "{}: {} · {}: {}",
                t("audit.database"),
                self.path().display(),
                t("audit.workstation"),
                self.workstation()
            ),
            format!("{}: {}", t("audit.events"), r.rows.len()),
        ];
        let columns = vec![
            (t("audit.col.n"), 9.0),
            (t("audit.col.time"), 27.0),
            (t("audit.col.event"), 24.0),
            (t("audit.col.subject"), 30.0),
            (t("audit.col.old"), 36.0),
            (t("audit.col.new"), 36.0),
            (t("audit.col.reason"), 32.0),
            (t("audit.col.actor"), 18.0),
            (t("audit.col.signatures"), 40.0),
            (t("audit.col.where"), 25.0),
        ];
        let rows = r
            .rows
            .iter()
            .map(|row| {
                vec![
                    row.n.to_string(),
                    row.time_local.clone(),
                    crate::catalogue::lookup(lang, &format!("event.{}", row.event))
                        .unwrap_or_else(|| row.event.clone()),
                    row.subject.clone(),
                    show(&row.old),
                    show(&row.new),
                    row.reason.clone(),
                    row.actor.clone(),
                    row.signatures
                        .lines()
                        .map(|l| {
                            // "name (user) meaning time": the meaning in the report's
                            // language, the time to the second on its own line.
                            let mut parts: Vec<String> = l.split(' ').map(str::to_string).collect();
                            let n = parts.len();
                            if n >= 2 {
                                parts[n - 2] = crate::catalogue::lookup(
                                    lang,
                                    &format!("meaning.{}", parts[n - 2]),
                                )
                                .unwrap_or_else(|| parts[n - 2].clone());
                                let t = parts[n - 1].replace('T', " ");
                                parts[n - 1] = format!("\n{}Z", t.get(..19).unwrap_or(&t));
                            }
                            parts.join(" ")
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                    format!(
                        "{} #{}\n{}",
                        row.workstation.get(..8).unwrap_or(&row.workstation),
                        row.seq,
                        row.hash.get(..16).unwrap_or(&row.hash)
                    ),
                ]
            })
            .collect();
        let v = &r.verify;
        let mut closing = vec![
            match (v.ok(), v.full) {
                (true, true) => t("audit.verify_ok"),
                (true, false) => t("audit.verify_ok_since"),
                (false, _) => format!("{} ({})", t("audit.verify_bad"), v.problems.len()),
            },
            format!(
                "{}: {} · {}: {} · {}: {}",
                t("audit.events_verified"),
                v.events,
                t("audit.workstations"),
                v.workstations,
                t("audit.specimens"),
                v.specimens
            ),
        ];
        // Which check this is: the whole log, or from which point on.
        match &v.since {
            Some(p) if !v.full => {
                closing.push(format!(
                    "{}: #{} · {} · {}",
                    t("audit.verified_point"),
                    p.event,
                    kura_domain::Timestamp(p.at),
                    t(if p.full {
                        "audit.point_full"
                    } else {
                        "audit.point_log"
                    })
                ));
                closing.push(t("audit.verify_full_hint"));
            }
            _ => closing.push(t("audit.verified_whole")),
        }
        if let (Some(first), Some(last)) = (r.rows.first(), r.rows.last()) {
            closing.push(format!(
                "{}: {} — {}",
                t("audit.listed"),
                first.time_utc,
                last.time_utc
            ));
        }
        for p in v.problems.iter().take(20) {
            closing.push(format!("✗ {}: {}", p.code, p.message));
        }
        closing.push(String::new());
        closing.push(t("audit.heads"));
        for (w, seq, hash) in &r.heads {
            closing.push(format!("{w} #{seq}  {hash}"));
        }
        if !r.keys.is_empty() {
            closing.push(String::new());
            closing.push(t("audit.keys"));
            for k in &r.keys {
                closing.push(format!(
                    "{} ({}): {}",
                    k.name,
                    k.user,
                    k.fingerprint.clone().unwrap_or_else(|| t("audit.no_key"))
                ));
            }
        }
        closing.push(String::new());
        closing.push(t("audit.recorded"));
        Ok(kura_labels::report::Report {
            title: t("audit.title"),
            preface,
            columns,
            rows,
            closing_title: t("audit.verify_title"),
            closing,
            footer: format!("Kura · {}", self.workstation()),
        })
    }
}

/// The rows as CSV (UTF-8 with a byte-order mark, so that Excel on Japanese Windows shows the
/// Japanese); the header is the field names of [`AuditRow`].
pub fn audit_csv(rows: &[AuditRow]) -> Result<Vec<u8>, AppError> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    for r in rows {
        w.serialize(r)
            .map_err(|e| AppError::input("out", e.to_string()))?;
    }
    if rows.is_empty() {
        w.write_record(AUDIT_COLUMNS)
            .map_err(|e| AppError::input("out", e.to_string()))?;
    }
    w.into_inner()
        .map_err(|e| AppError::input("out", e.to_string()))
}

/// The columns of an audit report's CSV and workbook, in order.
const AUDIT_COLUMNS: [&str; 14] = [
    "n",
    "time_utc",
    "time_local",
    "event",
    "subject",
    "old",
    "new",
    "reason",
    "actor",
    "signatures",
    "workstation",
    "seq",
    "event_id",
    "hash",
];

impl Kura {
    /// The report's rows as a workbook (one sheet, `audit`): the CSV's columns, every value a
    /// text cell but the row number and sequence number.
    fn audit_xlsx(&self, rows: &[AuditRow]) -> Result<Vec<u8>, AppError> {
        use crate::sheets::{Cell, SheetWriter};
        let mut sheet = SheetWriter::new(self.calendar(), "audit", &AUDIT_COLUMNS)?;
        for r in rows {
            sheet.row(&[
                Cell::Number(r.n as f64),
                Cell::text(&r.time_utc),
                Cell::text(&r.time_local),
                Cell::text(&r.event),
                Cell::text(&r.subject),
                Cell::text(&r.old),
                Cell::text(&r.new),
                Cell::text(&r.reason),
                Cell::text(&r.actor),
                Cell::text(&r.signatures),
                Cell::text(&r.workstation),
                Cell::Number(r.seq as f64),
                Cell::text(&r.event_id),
                Cell::text(&r.hash),
            ])?;
        }
        Ok(sheet.finish()?.0)
    }
}

/// Reads an audit CSV back (what an auditor's script does): its rows.
pub fn read_audit_csv(bytes: &[u8]) -> Result<Vec<AuditRow>, AppError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    csv::Reader::from_reader(bytes)
        .deserialize()
        .collect::<Result<_, _>>()
        .map_err(|e| AppError::input("csv", e.to_string()))
}

/// The formats an audit report is written in.
fn report_format(name: &str) -> Option<&'static str> {
    match name {
        "pdf" => Some("pdf"),
        "csv" => Some("csv"),
        "jsonl" => Some("jsonl"),
        "xlsx" => Some("xlsx"),
        _ => None,
    }
}

fn write_new(out: &Path, bytes: &[u8]) -> Result<(), AppError> {
    let err = |e: std::io::Error| AppError::File {
        path: out.display().to_string(),
        message: e.to_string(),
    };
    let tmp: PathBuf = out.with_extension("part");
    let mut f = crate::create_private(&tmp).map_err(err)?;
    std::io::Write::write_all(&mut f, bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, out).map_err(err)
}
