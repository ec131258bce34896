//! The projection: how an allowed event changes `specimens`, `containers` and `event_subjects`.
//! Used for new events and, unchanged, for a rebuild from the log.

use std::collections::HashMap;

use kura_domain::rules::{self, DecideError, Effect, Settled, View};
use kura_domain::{
    ContainerId, ContainerInfo, Custody, EventBody, Geometry, Location, Pos, Quantity, RuleError,
    SpecimenCode, SpecimenState, Status,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// A container as cached during a transaction: its row id and what the rules need.
#[derive(Debug, Clone)]
pub(crate) struct CachedContainer {
    pub rowid: i64,
    pub info: ContainerInfo,
    pub path: String,
}

pub(crate) type ContainerCache = HashMap<ContainerId, CachedContainer>;

/// A location as the projection's columns: container row id, row, col.
type LocationCols = (Option<i64>, Option<u16>, Option<u16>);

pub(crate) struct Projector<'c> {
    pub conn: &'c Connection,
    pub cache: &'c mut ContainerCache,
}

fn unit_of(s: Option<String>) -> Option<kura_domain::specimen::Unit> {
    s.and_then(|u| kura_domain::specimen::Unit::parse(&u).ok())
}

impl Projector<'_> {
    pub fn container_cached(
        &mut self,
        id: &ContainerId,
    ) -> Result<Option<CachedContainer>, rusqlite::Error> {
        if let Some(c) = self.cache.get(id) {
            return Ok(Some(c.clone()));
        }
        let row = self
            .conn
            .prepare_cached(
                "SELECT c.id, c.kind, c.geometry, (SELECT p.code FROM containers p WHERE p.id = c.parent), c.prow, c.pcol, c.path
                 FROM containers c WHERE c.code = ?1",
            )?
            .query_row([id.as_str()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<u16>>(4)?,
                    r.get::<_, Option<u16>>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .optional()?;
        let Some((rowid, kind, geometry, parent, prow, pcol, path)) = row else {
            return Ok(None);
        };
        let kind = kura_domain::ContainerKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(1, kind.clone(), rusqlite::types::Type::Text)
        })?;
        let geometry: Geometry = serde_json::from_str(&geometry).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
        })?;
        let info = ContainerInfo {
            id: id.clone(),
            kind,
            geometry,
            parent: parent.map(ContainerId::from_stored),
            pos: prow.zip(pcol).map(|(r, c)| Pos::new(r, c)),
        };
        let c = CachedContainer { rowid, info, path };
        self.cache.insert(id.clone(), c.clone());
        Ok(Some(c))
    }

    fn container_rowid(&mut self, id: &ContainerId) -> Result<i64, StoreError> {
        self.container_cached(id)?
            .map(|c| c.rowid)
            .ok_or_else(|| StoreError::NotFound {
                what: "container",
                code: id.to_string(),
            })
    }

    fn specimen_rowid(&self, code: &SpecimenCode) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached("SELECT id FROM specimens WHERE code = ?1")?
            .query_row([code.as_str()], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "specimen",
                code: code.to_string(),
            })
    }

    /// Writes what a recorded event does (another bench's, or any event replayed in the
    /// registry's order): its effect when the rules allow it, else the conflict it raises (the
    /// specimen flagged, the refusal kept in `conflicts`). Returns the refusal, if any.
    /// With `undo`, the rows it changes are kept as they were first (an event the registry's
    /// order may still put others before).
    pub fn settle(
        &mut self,
        event: i64,
        at: i64,
        body: &EventBody,
        undo: bool,
    ) -> Result<Option<RuleError>, StoreError> {
        match rules::settle(self, body)? {
            Settled::Applied(effect) => {
                if undo {
                    self.keep_undo(event, &effect)?;
                }
                self.write(event, at, effect)?;
                self.resolved(event, body)?;
                Ok(None)
            }
            Settled::Conflict { error, effect } => {
                let other = self.other_event(body, &error)?;
                if let Some(effect) = effect {
                    if undo {
                        self.keep_undo(event, &effect)?;
                    }
                    self.write(event, at, effect)?;
                } else if undo {
                    self.keep_undo(event, &Effect::Log { codes: vec![] })?;
                }
                self.conn
                    .prepare_cached(
                        "INSERT INTO conflicts (event, subject, code, message, other) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        event,
                        subject(body),
                        error.code(),
                        error.to_string(),
                        other
                    ])?;
                Ok(Some(error))
            }
            Settled::Nothing => {
                if undo {
                    self.keep_undo(event, &Effect::Log { codes: vec![] })?;
                }
                Ok(None)
            }
        }
    }

    /// Keeps the rows `effect` will change, as they are now, for [`Projector::undo`].
    pub fn keep_undo(&mut self, event: i64, effect: &Effect) -> Result<(), StoreError> {
        // The projection tables an undo image covers (each keyed by `code`), and which rows of
        // them this effect changes.
        const TABLES: [&str; 8] = [
            "specimens",
            "containers",
            "label_prints",
            "users",
            "signatures",
            "withdrawals",
            "shipments",
            "trusted_keys",
        ];
        let changes: Vec<(&str, Vec<String>)> = match effect {
            Effect::Register { state, .. } | Effect::Update(state) => {
                vec![("specimens", vec![state.code.to_string()])]
            }
            Effect::CreateContainer(spec) => vec![("containers", vec![spec.id.to_string()])],
            Effect::MoveContainer { id, .. } => vec![("containers", vec![id.to_string()])],
            Effect::Log { codes } => vec![("label_prints", codes.clone())],
            Effect::User { user, .. } => vec![("users", vec![user.clone()])],
            Effect::Sign { .. } => vec![("signatures", vec![event.to_string()])],
            Effect::Withdraw { donor, .. } => vec![("withdrawals", vec![donor.clone()])],
            Effect::Ship(shipment) => vec![("shipments", vec![shipment.id.clone()])],
            Effect::Arrive { shipment, tubes } => vec![
                (
                    "specimens",
                    tubes.iter().map(|(_, s)| s.code.to_string()).collect(),
                ),
                ("shipments", vec![shipment.id.clone()]),
            ],
            Effect::Trust { fingerprint, .. } => vec![("trusted_keys", vec![fingerprint.clone()])],
        };
        let mut image = serde_json::Map::new();
        for t in TABLES {
            let codes: &[String] = changes
                .iter()
                .find(|(table, _)| *table == t)
                .map_or(&[], |(_, c)| c.as_slice());
            let (table, key) = (t, "code");
            let rows: Vec<serde_json::Value> = codes
                .iter()
                .map(|c| Ok(serde_json::json!([c, row_image(self.conn, table, key, c)?])))
                .collect::<Result<_, StoreError>>()?;
            image.insert(table.to_string(), serde_json::Value::Array(rows));
        }
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO undo (event, image) VALUES (?1, ?2)")?
            .execute(params![event, serde_json::Value::Object(image).to_string()])?;
        Ok(())
    }

    /// Puts back what event `event` changed (its undo image), and forgets what it added: its
    /// subjects, the conflict it raised, the conflicts it resolved. Events are undone newest
    /// first, so every state passed through is one the projection held.
    pub fn undo(&mut self, event: i64) -> Result<(), StoreError> {
        let image: String = self
            .conn
            .prepare_cached("SELECT image FROM undo WHERE event = ?1")?
            .query_row([event], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::Corrupt(format!("no undo image for event {event}")))?;
        let image: serde_json::Value = serde_json::from_str(&image)
            .map_err(|e| StoreError::Corrupt(format!("undo image of event {event}: {e}")))?;
        for sql in [
            "DELETE FROM event_subjects WHERE event = ?1",
            "DELETE FROM conflicts WHERE event = ?1",
            "UPDATE conflicts SET resolved_by = NULL WHERE resolved_by = ?1",
        ] {
            self.conn.prepare_cached(sql)?.execute([event])?;
        }
        for table in [
            "specimens",
            "containers",
            "label_prints",
            "users",
            "signatures",
            "shipments",
            "trusted_keys",
        ] {
            for pair in image[table].as_array().into_iter().flatten() {
                let code = pair[0].as_str().unwrap_or_default();
                restore_row(self.conn, table, code, &pair[1])?;
                if table == "containers" {
                    self.repath(code)?;
                }
            }
        }
        self.cache.clear();
        Ok(())
    }

    /// A user event's change. A change to a user this bench has not heard of yet (their
    /// `user_added` is still on its way) is kept on a placeholder row that the addition fills in.
    fn write_user(
        &mut self,
        event: i64,
        at: i64,
        user: &str,
        change: kura_domain::UserChange,
    ) -> Result<(), StoreError> {
        use kura_domain::{Secret, UserChange};
        self.conn
            .prepare_cached(
                "INSERT INTO users (code, name, role, added_at, updated_at, last_event)
                 VALUES (?1, '', 'auditor', ?2, ?2, ?3) ON CONFLICT(code) DO NOTHING",
            )?
            .execute(params![user, at, event])?;
        let c = self.conn;
        match change {
            UserChange::Add { name, role, badge } => c
                .prepare_cached(
                    "UPDATE users SET name = ?2, role = ?3, badge = ?4, added_at = ?5 WHERE code = ?1",
                )?
                .execute(params![user, name, role.as_str(), badge, at])?,
            UserChange::Grant(role) => c
                .prepare_cached("UPDATE users SET role = ?2 WHERE code = ?1")?
                .execute(params![user, role.as_str()])?,
            UserChange::Disable => c
                .prepare_cached("UPDATE users SET disabled = 1 WHERE code = ?1")?
                .execute(params![user])?,
            UserChange::Credential {
                secret: Secret::Password,
                hash,
                key,
            } => c
                .prepare_cached(
                    "UPDATE users SET password = ?2, signing_key = ?3, key_salt = ?4 WHERE code = ?1",
                )?
                .execute(params![
                    user,
                    hash,
                    key.as_ref().map(|k| k.ed25519.as_str()),
                    key.as_ref().map(|k| k.salt.as_str())
                ])?,
            UserChange::Credential {
                secret: Secret::Pin,
                hash,
                ..
            } => c
                .prepare_cached("UPDATE users SET pin = ?2 WHERE code = ?1")?
                .execute(params![user, hash])?,
        };
        self.conn
            .prepare_cached("UPDATE users SET updated_at = ?2, last_event = ?3 WHERE code = ?1")?
            .execute(params![user, at, event])?;
        Ok(())
    }

    /// Re-derives the paths below container `code` from its own (after it was put back).
    fn repath(&mut self, code: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "WITH RECURSIVE sub(id, path) AS (
                     SELECT c.id, c.path FROM containers c WHERE c.code = ?1
                     UNION ALL
                     SELECT c.id, sub.path || ' › ' || c.name FROM containers c JOIN sub ON c.parent = sub.id)
                 UPDATE containers SET path = (SELECT path FROM sub WHERE sub.id = containers.id)
                 WHERE id IN (SELECT id FROM sub)",
            )?
            .execute([code])?;
        Ok(())
    }

    /// A resolution that took effect closes the open conflicts of its specimen.
    pub fn resolved(&mut self, event: i64, body: &EventBody) -> Result<(), StoreError> {
        if let EventBody::ConflictResolved { specimen, .. }
        | EventBody::ConflictSettled { specimen, .. } = body
        {
            self.conn
                .prepare_cached(
                    "UPDATE conflicts SET resolved_by = ?1 WHERE subject = ?2 AND resolved_by IS NULL",
                )?
                .execute(params![event, specimen.as_str()])?;
        }
        Ok(())
    }

    /// The event a refused one disagrees with: the last that changed what it concerns, or what
    /// holds the position it wanted.
    fn other_event(
        &mut self,
        body: &EventBody,
        error: &RuleError,
    ) -> Result<Option<i64>, StoreError> {
        let container_event = matches!(
            body,
            EventBody::ContainerCreated { .. } | EventBody::ContainerMoved { .. }
        );
        let who = match error {
            RuleError::PositionOccupied { by, .. } => by.clone(),
            _ => subject(body),
        };
        let sql = if container_event {
            "SELECT last_event FROM containers WHERE code = ?1"
        } else {
            "SELECT last_event FROM specimens WHERE code = ?1"
        };
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row([who], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten())
    }

    pub fn decide(&mut self, body: &EventBody) -> Result<Effect, StoreError> {
        rules::decide(self, body).map_err(|e| match e {
            DecideError::Rule(r) => StoreError::Rule(r),
            DecideError::View(e) => StoreError::Sqlite(e),
        })
    }

    /// A shipment's manifest: one dispatched here, or one that arrived (`incoming`).
    fn write_shipment(
        &mut self,
        event: i64,
        at: i64,
        shipment: &kura_domain::Shipment,
        incoming: bool,
    ) -> Result<(), StoreError> {
        let manifest = serde_json::to_string(shipment)
            .map_err(|e| StoreError::Corrupt(format!("shipment {}: {e}", shipment.id)))?;
        self.conn
            .prepare_cached(
                "INSERT INTO shipments (code, destination, manifest, tubes, dispatched_at, last_event, incoming)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                shipment.id,
                shipment.destination.label(),
                manifest,
                shipment.specimens.len() as i64,
                at,
                event,
                incoming
            ])?;
        Ok(())
    }

    pub fn write(&mut self, event: i64, at: i64, effect: Effect) -> Result<(), StoreError> {
        match effect {
            Effect::Register { record, state } => {
                let parent = record.parent.as_ref().map(|p| p.as_str());
                let (container, row, col) = self.location_cols(state.location())?;
                self.conn
                    .prepare_cached(
                        "INSERT INTO specimens (code, sample_type, primary_container, storage_code, material,
                            qty_milli, unit, study, donor, collected_at, registered_at, parent, freeze_thaw,
                            status, blocked, in_conflict, container, row, col, holder, due, updated_at, last_event)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0, ?18, ?15, ?16, ?17, NULL, NULL, ?11, ?19)",
                    )?
                    .execute(params![
                            record.code.as_str(),
                            record.sample_type.code(),
                            record.container,
                            record.storage,
                            material_str(record.sample_type.material()),
                            record.quantity.map(|q| q.milli),
                            record.quantity.map(|q| q.unit.as_str()),
                            record.study,
                            record.donor,
                            record.collected_at.map(|t| t.0),
                            at,
                            parent,
                            state.freeze_thaw,
                            state.status().as_str(),
                            container,
                            row,
                            col,
                            state.in_conflict,
                            event,
                        ])?;
                let id = self.conn.last_insert_rowid();
                self.subject(id, event)?;
            }
            Effect::Update(state) => {
                let (container, row, col) = self.location_cols(state.location())?;
                let id = self.specimen_rowid(&state.code)?;
                self.conn
                    .prepare_cached(
                        "UPDATE specimens SET status = ?2, blocked = ?3, in_conflict = ?4, container = ?5, row = ?6,
                            col = ?7, freeze_thaw = ?8, qty_milli = ?9, holder = ?10, due = ?11, updated_at = ?12,
                            last_event = ?13
                         WHERE id = ?1",
                    )?
                    .execute(params![
                            id,
                            state.status().as_str(),
                            state.blocked,
                            state.in_conflict,
                            container,
                            row,
                            col,
                            state.freeze_thaw,
                            state.quantity.map(|q| q.milli),
                            state.custody.holder(),
                            state.custody.due().map(|d| d.to_string()),
                            at,
                            event,
                        ])?;
                self.subject(id, event)?;
            }
            Effect::CreateContainer(spec) => {
                let (parent, path) = match &spec.parent {
                    Some(p) => {
                        let pc = self
                            .container_cached(p)?
                            .ok_or_else(|| StoreError::NotFound {
                                what: "container",
                                code: p.to_string(),
                            })?;
                        (Some(pc.rowid), format!("{} › {}", pc.path, spec.name))
                    }
                    None => (None, spec.name.clone()),
                };
                self.conn
                    .prepare_cached(
                        "INSERT INTO containers (code, kind, name, type_name, geometry, temperature, parent, prow, pcol, path, created_at, last_event)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    )?
                    .execute(params![
                        spec.id.as_str(),
                        spec.kind.as_str(),
                        spec.name,
                        spec.type_name,
                        serde_json::to_string(&spec.geometry).map_err(|e| StoreError::Corrupt(format!("geometry of {}: {e}", spec.id)))?,
                        spec.temperature.map(serde_name),
                        parent,
                        spec.pos.map(|p| p.row),
                        spec.pos.map(|p| p.col),
                        path,
                        at,
                        event,
                    ])?;
            }
            Effect::Log { codes } => {
                for code in codes {
                    self.conn
                        .prepare_cached(
                            "INSERT INTO label_prints (code, prints, last) VALUES (?1, 1, ?2)
                             ON CONFLICT(code) DO UPDATE SET prints = prints + 1, last = excluded.last",
                        )?
                        .execute(params![code, event])?;
                    let sid: Option<i64> = self
                        .conn
                        .prepare_cached("SELECT id FROM specimens WHERE code = ?1")?
                        .query_row([&code], |r| r.get(0))
                        .optional()?;
                    if let Some(sid) = sid {
                        self.subject(sid, event)?;
                    }
                }
            }
            Effect::User { user, change } => self.write_user(event, at, &user, change)?,
            Effect::Ship(shipment) => self.write_shipment(event, at, &shipment, false)?,
            Effect::Arrive { shipment, tubes } => {
                for (record, state) in tubes {
                    self.write(event, at, Effect::Register { record, state })?;
                }
                self.write_shipment(event, at, &shipment, true)?;
            }
            Effect::Trust { fingerprint, name } => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO trusted_keys (code, name, at, last_event) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(code) DO UPDATE SET name = excluded.name, at = excluded.at,
                             last_event = excluded.last_event",
                    )?
                    .execute(params![fingerprint, name, at, event])?;
            }
            Effect::Withdraw { donor, reason } => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO withdrawals (code, reason, at, last_event) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(code) DO UPDATE SET reason = excluded.reason, at = excluded.at,
                             last_event = excluded.last_event",
                    )?
                    .execute(params![donor, reason, at, event])?;
            }
            Effect::Sign {
                id,
                event_hash,
                signer,
                name,
                meaning,
            } => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO signatures (code, event, event_hash, signer, name, meaning, at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![
                        event.to_string(),
                        id.as_bytes().as_slice(),
                        event_hash,
                        signer,
                        name,
                        meaning.as_str(),
                        at
                    ])?;
            }
            Effect::MoveContainer { id, to } => {
                let rowid = self.container_rowid(&id)?;
                let parent = self.container_rowid(&to.parent)?;
                self.conn
                    .prepare_cached(
                        "UPDATE containers SET parent = ?2, prow = ?3, pcol = ?4, last_event = ?5 WHERE id = ?1",
                    )?
                    .execute(params![
                        rowid,
                        parent,
                        to.pos.map(|p| p.row),
                        to.pos.map(|p| p.col),
                        event
                    ])?;
                // Re-derive the paths of the moved subtree, top down.
                self.conn
                    .prepare_cached(
                        "WITH RECURSIVE sub(id, path) AS (
                             SELECT c.id, p.path || ' › ' || c.name FROM containers c JOIN containers p ON p.id = c.parent WHERE c.id = ?1
                             UNION ALL
                             SELECT c.id, sub.path || ' › ' || c.name FROM containers c JOIN sub ON c.parent = sub.id)
                         UPDATE containers SET path = (SELECT path FROM sub WHERE sub.id = containers.id)
                         WHERE id IN (SELECT id FROM sub)",
                    )?
                    .execute([rowid])?;
                // Every specimen that moved with it gets the event in its history.
                self.conn
                    .prepare_cached(
                        "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL SELECT c.id FROM containers c JOIN sub ON c.parent = sub.id)
                         INSERT OR IGNORE INTO event_subjects (specimen, event)
                         SELECT s.id, ?2 FROM specimens s WHERE s.container IN (SELECT id FROM sub)",
                    )?
                    .execute(params![rowid, event])?;
                self.cache.clear();
            }
        }
        Ok(())
    }

    fn location_cols(&mut self, loc: Option<&Location>) -> Result<LocationCols, StoreError> {
        Ok(match loc {
            Some(l) => (
                Some(self.container_rowid(&l.container)?),
                Some(l.pos.row),
                Some(l.pos.col),
            ),
            None => (None, None, None),
        })
    }

    fn subject(&self, specimen: i64, event: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO event_subjects (specimen, event) VALUES (?1, ?2)",
            )?
            .execute(params![specimen, event])?;
        Ok(())
    }
}

/// A row as JSON (column name → value), or null when there is none.
fn row_image(
    conn: &Connection,
    table: &str,
    key: &str,
    code: &str,
) -> Result<serde_json::Value, StoreError> {
    let mut st = conn.prepare_cached(&format!("SELECT * FROM {table} WHERE {key} = ?1"))?;
    let names: Vec<String> = st.column_names().map(str::to_string).collect();
    let row = st
        .query_row([code], |r| {
            let mut m = serde_json::Map::new();
            for (i, n) in names.iter().enumerate() {
                let v = match r.get::<_, rusqlite::types::Value>(i)? {
                    rusqlite::types::Value::Null => serde_json::Value::Null,
                    rusqlite::types::Value::Integer(v) => v.into(),
                    rusqlite::types::Value::Real(v) => v.into(),
                    rusqlite::types::Value::Text(v) => v.into(),
                    rusqlite::types::Value::Blob(b) => serde_json::Value::Array(
                        b.into_iter().map(serde_json::Value::from).collect(),
                    ),
                };
                m.insert(n.clone(), v);
            }
            Ok(serde_json::Value::Object(m))
        })
        .optional()?;
    Ok(row.unwrap_or(serde_json::Value::Null))
}

/// Puts a row back as its image says: deleted when it did not exist, else every column.
fn restore_row(
    conn: &Connection,
    table: &str,
    code: &str,
    image: &serde_json::Value,
) -> Result<(), StoreError> {
    let Some(cols) = image.as_object() else {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE code = ?1"))?
            .execute([code])?;
        return Ok(());
    };
    let names: Vec<&String> = cols.keys().filter(|k| k.as_str() != "code").collect();
    let sets: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("\"{n}\" = ?{}", i + 2))
        .collect();
    let sql = format!("UPDATE {table} SET {} WHERE code = ?1", sets.join(", "));
    let mut values: Vec<rusqlite::types::Value> = vec![rusqlite::types::Value::Text(code.into())];
    for n in &names {
        values.push(match &cols[n.as_str()] {
            serde_json::Value::Null => rusqlite::types::Value::Null,
            serde_json::Value::Bool(b) => rusqlite::types::Value::Integer(i64::from(*b)),
            serde_json::Value::Number(x) => match x.as_i64() {
                Some(i) => rusqlite::types::Value::Integer(i),
                None => rusqlite::types::Value::Real(x.as_f64().unwrap_or_default()),
            },
            serde_json::Value::String(s) => rusqlite::types::Value::Text(s.clone()),
            other => rusqlite::types::Value::Text(other.to_string()),
        });
    }
    let n = conn
        .prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    if n == 0 {
        return Err(StoreError::Corrupt(format!(
            "undo: {table} {code} should exist and does not"
        )));
    }
    Ok(())
}

/// What a conflict is about: the container of a container event, else the specimen (the same
/// subject the registry names).
pub(crate) fn subject(body: &EventBody) -> String {
    body.subject().unwrap_or_default()
}

/// A unit-like enum's serde name (material types, temperatures): what the projection stores.
pub(crate) fn serde_name<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(crate) fn material_str(m: kura_domain::specimen::MaterialType) -> String {
    serde_name(m)
}

/// Whether the sending site held `code` (a follow-up to its shipment).
pub(crate) fn is_held(conn: &Connection, code: &str) -> Result<bool, rusqlite::Error> {
    conn.prepare_cached("SELECT 1 FROM held WHERE code = ?1")?
        .exists([code])
}

/// The projector's view with the tubes the sending site held blocked: a new act is judged by it
/// too (a use of a held tube is refused as blocked); the projection is not.
struct HeldView<'p, 'c> {
    p: &'p mut Projector<'c>,
}

impl View for HeldView<'_, '_> {
    type Error = rusqlite::Error;

    fn specimen(&mut self, code: &SpecimenCode) -> Result<Option<SpecimenState>, rusqlite::Error> {
        let mut s = self.p.specimen(code)?;
        if let Some(s) = &mut s
            && is_held(self.p.conn, code.as_str())?
        {
            s.blocked = true;
        }
        Ok(s)
    }

    fn container(&mut self, id: &ContainerId) -> Result<Option<ContainerInfo>, rusqlite::Error> {
        self.p.container(id)
    }

    fn specimen_at(
        &mut self,
        container: &ContainerId,
        pos: Pos,
    ) -> Result<Option<SpecimenCode>, rusqlite::Error> {
        self.p.specimen_at(container, pos)
    }

    fn container_at(
        &mut self,
        parent: &ContainerId,
        pos: Pos,
    ) -> Result<Option<ContainerId>, rusqlite::Error> {
        self.p.container_at(parent, pos)
    }
}

impl Projector<'_> {
    /// A new act on a tube the sending site held is refused when it would be refused for a
    /// blocked tube (`blocked`).
    pub fn held_refusal(&mut self, body: &EventBody) -> Result<(), StoreError> {
        let Some(code) = body.specimen() else {
            return Ok(());
        };
        if !is_held(self.conn, code.as_str())? {
            return Ok(());
        }
        match rules::decide(&mut HeldView { p: self }, body) {
            Err(DecideError::Rule(r @ RuleError::Blocked { .. })) => Err(StoreError::Rule(r)),
            Err(DecideError::View(e)) => Err(StoreError::Sqlite(e)),
            _ => Ok(()),
        }
    }
}

impl View for Projector<'_> {
    type Error = rusqlite::Error;

    fn specimen(&mut self, code: &SpecimenCode) -> Result<Option<SpecimenState>, rusqlite::Error> {
        read_state(self.conn, code)
    }

    fn container(&mut self, id: &ContainerId) -> Result<Option<ContainerInfo>, rusqlite::Error> {
        Ok(self.container_cached(id)?.map(|c| c.info))
    }

    fn specimen_at(
        &mut self,
        container: &ContainerId,
        pos: Pos,
    ) -> Result<Option<SpecimenCode>, rusqlite::Error> {
        let Some(c) = self.container_cached(container)? else {
            return Ok(None);
        };
        self.conn
            .prepare_cached(
                "SELECT code FROM specimens WHERE container = ?1 AND row = ?2 AND col = ?3",
            )?
            .query_row(params![c.rowid, pos.row, pos.col], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map(|o| o.map(SpecimenCode::from_stored))
    }

    fn container_at(
        &mut self,
        parent: &ContainerId,
        pos: Pos,
    ) -> Result<Option<ContainerId>, rusqlite::Error> {
        let Some(p) = self.container_cached(parent)? else {
            return Ok(None);
        };
        self.conn
            .prepare_cached(
                "SELECT code FROM containers WHERE parent = ?1 AND prow = ?2 AND pcol = ?3",
            )?
            .query_row(params![p.rowid, pos.row, pos.col], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map(|o| o.map(ContainerId::from_stored))
    }
}

pub(crate) fn read_state(
    conn: &Connection,
    code: &SpecimenCode,
) -> Result<Option<SpecimenState>, rusqlite::Error> {
    conn.prepare_cached(
        // No joins: with a join, SQLite re-prepares this statement on every run (STAT4 builds).
        "SELECT s.status, s.blocked, s.in_conflict, (SELECT c.code FROM containers c WHERE c.id = s.container), s.row, s.col,
            s.freeze_thaw, s.qty_milli, s.unit, s.holder, s.due
         FROM specimens s WHERE s.code = ?1",
    )?
    .query_row([code.as_str()], |r| {
        let status: String = r.get(0)?;
        let container: Option<String> = r.get(3)?;
        let row: Option<u16> = r.get(4)?;
        let col: Option<u16> = r.get(5)?;
        let milli: Option<i64> = r.get(7)?;
        let due: Option<String> = r.get(10)?;
        let location = match (container, row, col) {
            (Some(c), Some(row), Some(col)) => Some(Location {
                container: ContainerId::from_stored(c),
                pos: Pos::new(row, col),
            }),
            _ => None,
        };
        let due = match due {
            Some(d) => Some(d.parse().map_err(|_| impossible(code, format!("due date {d:?}")))?),
            None => None,
        };
        let status = Status::parse(&status)
            .ok_or_else(|| impossible(code, format!("status {status:?}")))?;
        let custody = Custody::from_parts(status, location, r.get(9)?, due).ok_or_else(|| {
            impossible(
                code,
                format!("{} with the wrong position, holder or due date", status.as_str()),
            )
        })?;
        Ok(SpecimenState {
            code: code.clone(),
            custody,
            blocked: r.get(1)?,
            in_conflict: r.get(2)?,
            freeze_thaw: r.get(6)?,
            quantity: milli.zip(unit_of(r.get(8)?)).map(|(milli, unit)| Quantity { milli, unit }),
        })
    })
    .optional()
}

/// A projection row that describes no possible custody state (edited behind Kura's back):
/// reported as a conversion failure, which `verify` and `rebuild` name.
fn impossible(code: &SpecimenCode, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!(
            "specimen {code}: the projection holds an impossible state ({what}); run `kura rebuild`"
        )
        .into(),
    )
}
