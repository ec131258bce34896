//! Read models: what the use cases show. All reads go through indexes; none scans the log.

use kura_domain::hash::Digest;
use kura_domain::{Geometry, Pos, SpecimenCode};
use rusqlite::{OptionalExtension, Row};
use serde::Serialize;
use uuid::Uuid;

use crate::{Store, StoreError};

/// A shipment's manifest and when it was dispatched.
#[derive(Debug, Clone, PartialEq)]
pub struct ShipmentRow {
    pub shipment: kura_domain::Shipment,
    /// µs since the epoch: when it was dispatched here, or when it arrived here (`incoming`).
    pub dispatched_at: i64,
    /// It came from another site.
    pub incoming: bool,
}

fn shipment_row(r: &Row<'_>) -> rusqlite::Result<Result<ShipmentRow, StoreError>> {
    let manifest: String = r.get(0)?;
    let dispatched_at: i64 = r.get(1)?;
    let incoming: bool = r.get(2)?;
    Ok(serde_json::from_str(&manifest)
        .map(|shipment| ShipmentRow {
            shipment,
            dispatched_at,
            incoming,
        })
        .map_err(|e| StoreError::Corrupt(format!("shipment manifest: {e}"))))
}

/// One specimen with its full location, as the find screen and `kura show` present it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpecimenView {
    pub code: String,
    pub sample_type: String,
    pub material: String,
    pub primary_container: String,
    pub storage_code: String,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub quantity_milli: Option<i64>,
    pub unit: Option<String>,
    pub study: String,
    pub donor: String,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub collected_at: Option<i64>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub registered_at: i64,
    pub parent: Option<String>,
    pub freeze_thaw: u32,
    pub status: String,
    pub blocked: bool,
    pub in_conflict: bool,
    /// The container's code (box, tube rack, cane), when stored or reserved.
    pub container: Option<String>,
    pub row: Option<u16>,
    pub col: Option<u16>,
    /// The position label, e.g. `A1`.
    pub position: Option<String>,
    /// site › room › freezer › rack › box › A1
    pub path: Option<String>,
    pub holder: Option<String>,
    pub due: Option<String>,
    /// Why the donor (of this specimen or of one it derives from) withdrew consent; `None`:
    /// they did not.
    pub consent_withdrawn: Option<String>,
}

/// What the window says about a scanned specimen besides the answer to the scan: that two
/// benches disagree about it, and that its donor withdrew consent (why).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanFlags {
    pub in_conflict: bool,
    pub consent_withdrawn: Option<String>,
}

// No joins (see ARCHITECTURE.md): the container's code, geometry and path come from the
// store's container cache.
const SPECIMEN_COLS: &str =
    "s.code, s.sample_type, s.material, s.primary_container, s.storage_code, s.qty_milli, s.unit,
    s.study, s.donor, s.collected_at, s.registered_at, s.parent,
    s.freeze_thaw,
    CASE WHEN s.status = 'in_transit' AND EXISTS (SELECT 1 FROM delivered d WHERE d.code = s.code)
         THEN 'transferred' ELSE s.status END,
    (s.blocked OR EXISTS (SELECT 1 FROM held h WHERE h.code = s.code)),
    s.in_conflict, s.container, s.row, s.col, s.holder, s.due";
const SPECIMEN_FROM: &str = "specimens s";

/// Read with a specimen's row `s`, so that a lookup learns of a consent withdrawal without another
/// statement: its own donor's reason, whether any donor withdrew, whether it has a parent.
const WITHDRAWN_COLS: &str = "(SELECT w.reason FROM withdrawals w WHERE w.code = s.donor),
    EXISTS (SELECT 1 FROM withdrawals), s.parent IS NOT NULL";

struct Withdrawn {
    own: Option<String>,
    any: bool,
    derived: bool,
}

impl Withdrawn {
    fn read(r: &Row<'_>, at: usize) -> rusqlite::Result<Withdrawn> {
        Ok(Withdrawn {
            own: r.get(at)?,
            any: r.get(at + 1)?,
            derived: r.get(at + 2)?,
        })
    }
}

/// A specimen row and its container's row id; the location is filled in from the cache.
fn specimen_row(r: &Row<'_>) -> rusqlite::Result<(SpecimenView, Option<i64>)> {
    Ok((
        SpecimenView {
            code: r.get(0)?,
            sample_type: r.get(1)?,
            material: r.get(2)?,
            primary_container: r.get(3)?,
            storage_code: r.get(4)?,
            quantity_milli: r.get(5)?,
            unit: r.get(6)?,
            study: r.get(7)?,
            donor: r.get(8)?,
            collected_at: r.get(9)?,
            registered_at: r.get(10)?,
            parent: r.get(11)?,
            freeze_thaw: r.get(12)?,
            status: r.get(13)?,
            blocked: r.get(14)?,
            in_conflict: r.get(15)?,
            container: None,
            row: r.get(17)?,
            col: r.get(18)?,
            position: None,
            path: None,
            holder: r.get(19)?,
            due: r.get(20)?,
            consent_withdrawn: None,
        },
        r.get(16)?,
    ))
}

/// What to search for. Empty fields do not filter.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct FindQuery {
    /// A specimen code (exact, or a prefix), a donor or a study.
    pub text: Option<String>,
    pub donor: Option<String>,
    pub study: Option<String>,
    pub sample_type: Option<String>,
    pub status: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

impl FindQuery {
    /// Whether a specimen is one [`Store::find`] answers for this query (limit and offset
    /// aside): the same comparisons, for a face that walks every specimen (an export of search
    /// results). The text's bounds are worked out once, not per specimen.
    pub fn matcher(&self) -> impl Fn(&SpecimenView) -> bool + '_ {
        let text = self
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                let upper = t.to_ascii_uppercase();
                let below = format!("{upper}\u{7f}");
                (t, upper, below)
            });
        move |s: &SpecimenView| {
            if let Some((t, upper, below)) = &text {
                let by_code = s.code.as_str() >= upper.as_str() && s.code.as_str() < below.as_str();
                if !(by_code || s.donor == *t || s.study == *t) {
                    return false;
                }
            }
            [
                (&s.donor, &self.donor),
                (&s.study, &self.study),
                (&s.sample_type, &self.sample_type),
                (&s.status, &self.status),
            ]
            .into_iter()
            .all(|(have, want)| want.as_deref().is_none_or(|w| w.is_empty() || have == w))
        }
    }
}

/// One custody event as history shows it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub event_id: Uuid,
    pub workstation: Uuid,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    pub actor: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub at: i64,
    pub kind: String,
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown>"))]
    pub payload: serde_json::Value,
}

impl EventRow {
    /// Another site's event as history shows it (from a bundle, a receipt, a follow-up).
    pub fn of(e: &kura_domain::Envelope) -> EventRow {
        EventRow {
            event_id: e.id,
            workstation: e.workstation,
            seq: e.seq as i64,
            actor: e.actor.clone(),
            at: e.at,
            kind: e.kind.clone(),
            payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LineageNode {
    pub code: String,
    pub sample_type: String,
    pub status: String,
    pub children: Vec<LineageNode>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoxSlot {
    pub row: u16,
    pub col: u16,
    pub label: String,
    pub specimen: Option<String>,
    pub sample_type: Option<String>,
    pub status: Option<String>,
    pub blocked: bool,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub registered_at: Option<i64>,
    /// A container in this slot (racks hold boxes).
    pub container: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoxMap {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub path: String,
    #[cfg_attr(feature = "ts", ts(type = "Geometry"))]
    pub geometry: Geometry,
    pub capacity: Option<usize>,
    pub occupied: usize,
    /// Every position in row-major order (empty ones included).
    pub slots: Vec<BoxSlot>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerRow {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub type_name: String,
    pub parent: Option<String>,
    pub position: Option<String>,
    pub path: String,
    pub temperature: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub children: i64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub specimens: i64,
    pub capacity: Option<usize>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub specimens: i64,
    #[cfg_attr(feature = "ts", ts(type = "Array<[string, number]>"))]
    pub by_status: Vec<(String, i64)>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub blocked: i64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub containers: i64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub events: i64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    /// This workstation's events the registry has not answered yet (past the high-water mark).
    pub to_sync: i64,
    pub workstation: Uuid,
}

impl Store {
    /// Whether a specimen with this code is registered here (an import's check of every row:
    /// one index probe, without the location path a scan needs).
    pub fn is_registered(&self, code: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT 1 FROM specimens WHERE code = ?1")?
            .query_row([code], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Looks up a scanned code with its full location path: one read transaction (one shared
    /// lock: the row, and whether the container cache still holds), one prepared statement.
    pub fn specimen(&self, code: &SpecimenCode) -> Result<Option<SpecimenView>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {SPECIMEN_COLS}, {WITHDRAWN_COLS} FROM {SPECIMEN_FROM} WHERE s.code = ?1"
            )
        });
        self.reading(|| {
            let row = self
                .conn()
                .prepare_cached(&SQL)?
                .query_row([code.as_str()], |r| {
                    Ok((specimen_row(r)?, Withdrawn::read(r, 21)?))
                })
                .optional()?;
            let Some((row, w)) = row else { return Ok(None) };
            let mut v = self.located(row)?;
            v.consent_withdrawn = self.withdrawal(code.as_str(), w)?;
            Ok(Some(v))
        })
    }

    /// What a scan of `code` must say besides its answer (`None`: no such specimen).
    pub fn scan_flags(&self, code: &str) -> Result<Option<ScanFlags>, StoreError> {
        let sql =
            format!("SELECT s.in_conflict, {WITHDRAWN_COLS} FROM specimens s WHERE s.code = ?1");
        let row = self
            .conn()
            .prepare_cached(&sql)?
            .query_row([code], |r| {
                Ok((r.get::<_, bool>(0)?, Withdrawn::read(r, 1)?))
            })
            .optional()?;
        let Some((in_conflict, w)) = row else {
            return Ok(None);
        };
        Ok(Some(ScanFlags {
            in_conflict,
            consent_withdrawn: self.withdrawal(code, w)?,
        }))
    }

    /// A specimen's consent withdrawal from what its own row said: its donor's, or none at all
    /// in the database, settle it in the same statement; only a derivative, where some donor did
    /// withdraw, has its lineage walked (a parent may come from another donor).
    fn withdrawal(&self, code: &str, w: Withdrawn) -> Result<Option<String>, StoreError> {
        match w {
            Withdrawn { own: Some(r), .. } => Ok(Some(r)),
            Withdrawn {
                any: true,
                derived: true,
                ..
            } => self.withdrawal_of(code),
            _ => Ok(None),
        }
    }

    /// Rows of a list with their consent withdrawals filled in (from one read of the few
    /// withdrawn specimens, not a lookup per row).
    fn with_withdrawals(
        &self,
        rows: Vec<(SpecimenView, Option<i64>)>,
    ) -> Result<Vec<SpecimenView>, StoreError> {
        let withdrawn = self.withdrawn()?;
        rows.into_iter()
            .map(|r| {
                let mut v = self.located(r)?;
                v.consent_withdrawn = withdrawn.get(&v.code).cloned();
                Ok(v)
            })
            .collect()
    }

    /// Fills in a specimen's container code, position label and location path.
    fn located(
        &self,
        (mut v, container): (SpecimenView, Option<i64>),
    ) -> Result<SpecimenView, StoreError> {
        if let Some(c) = container {
            let meta = self.container_meta(c)?;
            if let (Some(m), Some(row), Some(col)) = (meta, v.row, v.col) {
                let label = m.geometry.label(Pos::new(row, col));
                v.path = Some(format!("{} › {label}", m.path));
                v.position = Some(label);
                v.container = Some(m.code.clone());
            }
        }
        Ok(v)
    }

    pub fn find(&self, q: &FindQuery) -> Result<Vec<SpecimenView>, StoreError> {
        let mut wheres = Vec::new();
        let mut args: Vec<String> = Vec::new();
        if let Some(t) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let upper = t.to_ascii_uppercase();
            args.push(upper.clone());
            let a = args.len();
            args.push(format!("{upper}\u{7f}"));
            let b = args.len();
            args.push(t.to_string());
            let c = args.len();
            wheres.push(format!(
                "(s.code >= ?{a} AND s.code < ?{b}) OR s.donor = ?{c} OR s.study = ?{c}"
            ));
        }
        for (col, v) in [
            ("s.donor", &q.donor),
            ("s.study", &q.study),
            ("s.sample_type", &q.sample_type),
            ("s.status", &q.status),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                args.push(v.to_string());
                wheres.push(format!("{col} = ?{}", args.len()));
            }
        }
        let w = if wheres.is_empty() {
            String::new()
        } else {
            format!("WHERE ({})", wheres.join(") AND ("))
        };
        let limit = if q.limit == 0 { 100 } else { q.limit };
        let sql = format!(
            "SELECT {SPECIMEN_COLS} FROM {SPECIMEN_FROM} {w} ORDER BY s.code LIMIT {limit} OFFSET {}",
            q.offset
        );
        // One read transaction: the rows, the withdrawals and each row's container.
        self.reading(|| {
            let mut stmt = self.conn().prepare_cached(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), specimen_row)?
                .collect::<Result<Vec<_>, _>>()?;
            self.with_withdrawals(rows)
        })
    }

    /// Checked-out specimens due back before `today` (a site date), the longest overdue first.
    pub fn overdue(&self, today: &str, limit: usize) -> Result<Vec<SpecimenView>, StoreError> {
        let sql = format!(
            "SELECT {SPECIMEN_COLS} FROM {SPECIMEN_FROM}
             WHERE s.due IS NOT NULL AND s.due < ?1 AND s.status = 'checked_out'
             ORDER BY s.due, s.code LIMIT ?2"
        );
        self.reading(|| {
            let mut stmt = self.conn().prepare_cached(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params![today, limit as i64], specimen_row)?
                .collect::<Result<Vec<_>, _>>()?;
            self.with_withdrawals(rows)
        })
    }

    /// Every specimen, by the time of its registration (the registering event's, the same on
    /// every bench), then code, for export.
    pub fn for_each_specimen(
        &self,
        mut f: impl FnMut(SpecimenView) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql =
            format!("SELECT {SPECIMEN_COLS} FROM {SPECIMEN_FROM} ORDER BY s.registered_at, s.code");
        let mut stmt = self.conn().prepare(&sql)?;
        let withdrawn = self.withdrawn()?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let mut v = self.located(specimen_row(r)?)?;
            v.consent_withdrawn = withdrawn.get(&v.code).cloned();
            f(v)?;
        }
        Ok(())
    }

    /// Every custody event about a specimen, in the order the projection folds them (the
    /// registry's, then this bench's own not yet ordered).
    pub fn history(&self, code: &SpecimenCode) -> Result<Vec<EventRow>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT e.event_id, e.workstation, e.seq, e.actor, e.at, e.kind, e.payload
             FROM event_subjects x JOIN events e ON e.id = x.event
             WHERE x.specimen = (SELECT id FROM specimens WHERE code = ?1)
             ORDER BY coalesce((SELECT o.major FROM event_order o WHERE o.event = e.id), 9223372036854775807),
                coalesce((SELECT o.minor FROM event_order o WHERE o.event = e.id), 0), e.id",
        )?;
        let rows = stmt.query_map([code.as_str()], event_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One event by its id.
    pub fn event(&self, id: Uuid) -> Result<Option<EventRow>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT event_id, workstation, seq, actor, at, kind, payload FROM events WHERE event_id = ?1",
            )?
            .query_row([id.as_bytes().as_slice()], event_row)
            .optional()?)
    }

    /// The family of a specimen: from its oldest ancestor down to every aliquot and derivative.
    pub fn lineage(&self, code: &SpecimenCode) -> Result<Option<LineageNode>, StoreError> {
        let root: Option<String> = self
            .conn()
            .query_row(
                "WITH RECURSIVE up(code, parent) AS (
                     SELECT code, parent FROM specimens WHERE code = ?1
                     UNION ALL SELECT s.code, s.parent FROM specimens s JOIN up ON s.code = up.parent)
                 SELECT code FROM up WHERE parent IS NULL",
                [code.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(root) = root else { return Ok(None) };
        let mut stmt = self.conn().prepare(
            "WITH RECURSIVE down(code) AS (SELECT ?1 UNION ALL SELECT s.code FROM specimens s JOIN down ON s.parent = down.code)
             SELECT s.code, s.parent, s.code, s.sample_type, s.status FROM specimens s WHERE s.code IN (SELECT code FROM down) ORDER BY s.id",
        )?;
        let rows: Vec<(String, Option<String>, LineageNode)> = stmt
            .query_map([&root], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    LineageNode {
                        code: r.get(2)?,
                        sample_type: r.get(3)?,
                        status: r.get(4)?,
                        children: Vec::new(),
                    },
                ))
            })?
            .collect::<Result<_, _>>()?;
        fn build(code: &str, rows: &[(String, Option<String>, LineageNode)]) -> LineageNode {
            let mut node = match rows.iter().find(|r| r.0 == code) {
                Some(r) => r.2.clone(),
                None => LineageNode {
                    code: code.to_string(),
                    ..Default::default()
                },
            };
            node.children = rows
                .iter()
                .filter(|r| r.1.as_deref() == Some(code))
                .map(|r| build(&r.0, rows))
                .collect();
            node
        }
        Ok(Some(build(&root, &rows)))
    }

    /// A container's grid with every position, occupied or not.
    pub fn box_map(&self, code: &str) -> Result<Option<BoxMap>, StoreError> {
        let c = self
            .conn()
            .prepare_cached(
                "SELECT id, code, name, kind, path, geometry FROM containers WHERE code = ?1",
            )?
            .query_row([code], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .optional()?;
        let Some((id, code, name, kind, path, geometry)) = c else {
            return Ok(None);
        };
        let geometry: Geometry = serde_json::from_str(&geometry)
            .map_err(|e| StoreError::Corrupt(format!("geometry of {code}: {e}")))?;
        let mut slots: Vec<BoxSlot> = geometry
            .fill_sequence()
            .into_iter()
            .map(|p| BoxSlot {
                row: p.row,
                col: p.col,
                label: geometry.label(p),
                specimen: None,
                sample_type: None,
                status: None,
                blocked: false,
                registered_at: None,
                container: None,
            })
            .collect();
        slots.sort_by_key(|s| (s.row, s.col));
        let index = |slots: &Vec<BoxSlot>, row: u16, col: u16| {
            slots
                .binary_search_by_key(&(row, col), |s| (s.row, s.col))
                .ok()
        };
        let mut occupied = 0;
        {
            let mut stmt = self.conn().prepare_cached(
                "SELECT row, col, code, sample_type, status,
                   blocked OR EXISTS (SELECT 1 FROM held h WHERE h.code = specimens.code), registered_at
                 FROM specimens WHERE container = ?1",
            )?;
            let mut rows = stmt.query([id])?;
            while let Some(r) = rows.next()? {
                occupied += 1;
                if let Some(i) = index(&slots, r.get(0)?, r.get(1)?) {
                    let s = &mut slots[i];
                    s.specimen = Some(r.get(2)?);
                    s.sample_type = Some(r.get(3)?);
                    s.status = Some(r.get(4)?);
                    s.blocked = r.get(5)?;
                    s.registered_at = Some(r.get(6)?);
                }
            }
        }
        {
            let mut stmt = self.conn().prepare_cached(
                "SELECT prow, pcol, code FROM containers WHERE parent = ?1 AND prow IS NOT NULL",
            )?;
            let mut rows = stmt.query([id])?;
            while let Some(r) = rows.next()? {
                occupied += 1;
                if let Some(i) = index(&slots, r.get(0)?, r.get(1)?) {
                    slots[i].container = Some(r.get(2)?);
                }
            }
        }
        Ok(Some(BoxMap {
            code,
            name,
            kind,
            path,
            capacity: geometry.capacity(),
            geometry,
            occupied,
            slots,
        }))
    }

    /// Containers under `parent` (or the sites, for `None`), with occupancy counts.
    pub fn containers(&self, parent: Option<&str>) -> Result<Vec<ContainerRow>, StoreError> {
        let sql = "SELECT c.code, c.name, c.kind, c.type_name, p.code, c.prow, c.pcol, p.geometry, c.path, c.temperature,
                (SELECT count(*) FROM containers k WHERE k.parent = c.id),
                (SELECT count(*) FROM specimens s WHERE s.container = c.id), c.geometry
             FROM containers c LEFT JOIN containers p ON p.id = c.parent
             WHERE (?1 IS NULL AND c.parent IS NULL) OR p.code = ?1 ORDER BY c.prow, c.pcol, c.code";
        let mut stmt = self.conn().prepare_cached(sql)?;
        let rows = stmt.query_map([parent], |r| {
            let prow: Option<u16> = r.get(5)?;
            let pcol: Option<u16> = r.get(6)?;
            let pgeom: Option<String> = r.get(7)?;
            let geom: String = r.get(12)?;
            let position = match (prow, pcol, pgeom) {
                (Some(a), Some(b), Some(g)) => serde_json::from_str::<Geometry>(&g)
                    .ok()
                    .map(|g| g.label(Pos::new(a, b))),
                _ => None,
            };
            Ok(ContainerRow {
                code: r.get(0)?,
                name: r.get(1)?,
                kind: r.get(2)?,
                type_name: r.get(3)?,
                parent: r.get(4)?,
                position,
                path: r.get(8)?,
                temperature: r.get(9)?,
                children: r.get(10)?,
                specimens: r.get(11)?,
                capacity: serde_json::from_str::<Geometry>(&geom)
                    .ok()
                    .and_then(|g| g.capacity()),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A container's geometry by its code (how its positions are labelled).
    pub fn container_geometry(&self, code: &str) -> Result<Option<Geometry>, StoreError> {
        let g: Option<String> = self
            .conn()
            .prepare_cached("SELECT geometry FROM containers WHERE code = ?1")?
            .query_row([code], |r| r.get(0))
            .optional()?;
        g.map(|g| {
            serde_json::from_str(&g)
                .map_err(|e| StoreError::Corrupt(format!("geometry of {code}: {e}")))
        })
        .transpose()
    }

    /// The shipments this bench knows, newest first.
    pub fn shipments(&self) -> Result<Vec<ShipmentRow>, StoreError> {
        let mut st = self.conn().prepare_cached(
            "SELECT manifest, dispatched_at, incoming FROM shipments ORDER BY dispatched_at DESC, code",
        )?;
        let rows = st.query_map([], shipment_row)?;
        rows.map(|r| r?).collect()
    }

    /// One shipment by its id.
    pub fn shipment(&self, code: &str) -> Result<Option<ShipmentRow>, StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT manifest, dispatched_at, incoming FROM shipments WHERE code = ?1",
            )?
            .query_row([code], shipment_row)
            .optional()?
            .transpose()
    }

    /// How many incoming shipments still have a tube in transit here (each shipment's tubes
    /// looked up by code until one is found on the way).
    pub fn incoming_in_transit(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .prepare_cached(
                "SELECT (SELECT count(*) FROM shipments s WHERE s.incoming = 1 AND EXISTS (
                     SELECT 1 FROM json_each(s.manifest, '$.specimens') j
                     JOIN specimens p ON p.code = j.value WHERE p.status = 'in_transit'))
                  + (SELECT count(*) FROM parcels WHERE kind = 'bundle'
                       AND shipment NOT IN (SELECT code FROM shipments))",
            )?
            .query_row([], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// How many shipments have ids starting with `prefix` (a bench numbers its own).
    pub fn shipments_numbered(&self, prefix: &str) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .prepare_cached("SELECT count(*) FROM shipments WHERE code >= ?1 AND code < ?1 || '~'")?
            .query_row([prefix], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// How many specimens the projection holds (every status).
    pub fn specimens_held(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .prepare_cached("SELECT count(*) FROM specimens")?
            .query_row([], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// How many events the log holds (the newest local row id: events are never deleted).
    pub fn events_logged(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT coalesce(max(id), 0) FROM events")?
            .query_row([], |r| r.get(0))?)
    }

    /// How many events the log holds, read from its last row id (one probe): events are
    /// inserted with the next row id and never deleted, so the ids run from 1 without a gap.
    /// For a progress bar's total; `count(*)` walks a whole b-tree, and on a memory-mapped
    /// database at a million events paged in 480 MB to count them (as [`Store::stats`] does).
    pub fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .prepare_cached("SELECT coalesce(max(id), 0) FROM events")?
            .query_row([], |r| r.get(0))?;
        Ok(n as u64)
    }

    pub fn stats(&self) -> Result<Stats, StoreError> {
        let c = self.conn();
        let one =
            |sql: &str| -> Result<i64, StoreError> { Ok(c.query_row(sql, [], |r| r.get(0))?) };
        let mut stmt =
            c.prepare("SELECT status, count(*) FROM specimens GROUP BY status ORDER BY status")?;
        let by_status = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(Stats {
            specimens: one("SELECT count(*) FROM specimens")?,
            by_status,
            blocked: one("SELECT count(*) FROM specimens WHERE blocked")?,
            containers: one("SELECT count(*) FROM containers")?,
            events: one("SELECT count(*) FROM events")?,
            to_sync: c
                .prepare_cached(
                    "SELECT max(0, coalesce((SELECT max(seq) FROM events WHERE workstation = ?1), 0)
                     - (SELECT pushed_seq FROM sync_state))",
                )?
                .query_row([self.workstation().as_bytes().as_slice()], |r| r.get(0))?,
            workstation: self.workstation(),
        })
    }

    /// The destruction queue: specimens of donors who withdrew consent, and everything derived
    /// from them, not yet disposed (consumed ones are gone already): (code, donor, reason).
    pub fn destruction_queue(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                // From the withdrawals (a few rows) down: the donors' specimens by the index
                // on donor, their derivatives by the index on parent. CROSS JOIN keeps that
                // order: without statistics SQLite would rather read every specimen.
                "WITH RECURSIVE fam(code, donor, reason) AS (
                     SELECT s.code, w.code, w.reason FROM withdrawals w CROSS JOIN specimens s ON s.donor = w.code
                     UNION SELECT s.code, fam.donor, fam.reason FROM fam CROSS JOIN specimens s ON s.parent = fam.code)
                 SELECT fam.code, fam.donor, fam.reason FROM fam CROSS JOIN specimens s ON s.code = fam.code
                 WHERE s.status NOT IN ('disposed', 'consumed') GROUP BY fam.code ORDER BY s.id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?)
    }

    /// Whether any donor withdrew consent (most databases: none, and nothing more is asked).
    fn any_withdrawal(&self) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM withdrawals)")?
            .query_row([], |r| r.get(0))?)
    }

    /// Every specimen whose donor (or whose ancestor's donor) withdrew consent, disposed ones
    /// too, with the reason: read from the withdrawals down, like the destruction queue.
    fn withdrawn(&self) -> Result<std::collections::HashMap<String, String>, StoreError> {
        if !self.any_withdrawal()? {
            return Ok(Default::default());
        }
        Ok(self
            .conn()
            .prepare_cached(
                "WITH RECURSIVE fam(code, reason) AS (
                     SELECT s.code, w.reason FROM withdrawals w CROSS JOIN specimens s ON s.donor = w.code
                     UNION SELECT s.code, fam.reason FROM fam CROSS JOIN specimens s ON s.parent = fam.code)
                 SELECT code, reason FROM fam",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    /// Why a specimen's donor withdrew consent, if they did (its own donor or an ancestor's).
    pub fn withdrawal_of(&self, code: &str) -> Result<Option<String>, StoreError> {
        if !self.any_withdrawal()? {
            return Ok(None);
        }
        Ok(self
            .conn()
            .prepare_cached(
                "WITH RECURSIVE up(code, parent, donor) AS (
                     SELECT code, parent, donor FROM specimens WHERE code = ?1
                     UNION SELECT s.code, s.parent, s.donor FROM specimens s JOIN up ON s.code = up.parent)
                 SELECT w.reason FROM up JOIN withdrawals w ON w.code = up.donor LIMIT 1",
            )?
            .query_row([code], |r| r.get(0))
            .optional()?)
    }

    /// Every event, in the order the projection folds them (the registry's, then this bench's
    /// own not yet ordered), each with its stored hash: the audit trail. Read as `verify`
    /// reads: one snapshot through a connection of its own (committed events only; this
    /// store's connection and other processes keep writing meanwhile), its sort on disk and no
    /// memory map, so memory stays bounded at any size (on the store's own connection, whose
    /// temporary storage is in memory, a million events' sort held about 500 MiB).
    pub fn for_each_event(
        &self,
        mut f: impl FnMut(EventRow, Digest) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let conn = crate::open_reader(&self.path)?;
        conn.execute_batch("BEGIN")?;
        let mut stmt = conn.prepare(
            "SELECT e.event_id, e.workstation, e.seq, e.actor, e.at, e.kind, e.payload, e.hash
             FROM events e LEFT JOIN event_order o ON o.event = e.id
             ORDER BY coalesce(o.major, 9223372036854775807), coalesce(o.minor, 0), e.id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let row = event_row(r)?;
            let hash = crate::sync::digest(&r.get::<_, Vec<u8>>(7)?, || {
                format!("event {} has a malformed hash", row.event_id)
            })?;
            f(row, hash)?;
        }
        Ok(())
    }

    /// The head of each workstation's chain: its last sequence number and that event's hash.
    /// The workstations are found by hopping along the (workstation, seq) index, one probe
    /// each: a `GROUP BY` walked every event and paged in the whole table (at a million
    /// events, half a gigabyte for an audit report of one specimen).
    pub fn heads(&self) -> Result<Vec<(Uuid, i64, Digest)>, StoreError> {
        let c = self.conn();
        let mut next = c.prepare_cached(
            "SELECT workstation FROM events WHERE workstation > ?1 ORDER BY workstation LIMIT 1",
        )?;
        let mut head = c.prepare_cached(
            "SELECT seq, hash FROM events WHERE workstation = ?1 ORDER BY seq DESC LIMIT 1",
        )?;
        let mut out = Vec::new();
        let mut after: Vec<u8> = Vec::new();
        while let Some(w) = next
            .query_row([&after], |r| r.get::<_, Vec<u8>>(0))
            .optional()?
        {
            let ws = Uuid::from_slice(&w).unwrap_or_default();
            let (seq, hash): (i64, Vec<u8>) =
                head.query_row([&w], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let hash =
                crate::sync::digest(&hash, || format!("seq {seq} of {ws} has a malformed hash"))?;
            out.push((ws, seq, hash));
            after = w;
        }
        Ok(out)
    }

    /// The stored hash of an event: what a signature binds.
    pub fn event_hash(&self, id: uuid::Uuid) -> Result<Option<Digest>, StoreError> {
        event_hash(self.conn(), id)
    }

    /// The signatures on an event, oldest first.
    pub fn signatures(&self, id: uuid::Uuid) -> Result<Vec<SignatureRow>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT event_hash, signer, name, meaning, at FROM signatures WHERE event = ?1 ORDER BY at, code",
            )?
            .query_map([id.as_bytes().as_slice()], |r| {
                Ok(SignatureRow {
                    event: id,
                    event_hash: r.get(0)?,
                    signer: r.get(1)?,
                    name: r.get(2)?,
                    meaning: r.get(3)?,
                    at: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    /// One user as the projection has them (None: never added here).
    pub fn user(&self, code: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(&format!("{USER_COLS} WHERE code = ?1"))?
            .query_row([code], user_row)
            .optional()?)
    }

    /// The users whose badge this is (more than one: two benches gave it twice).
    pub fn users_with_badge(&self, badge: &str) -> Result<Vec<UserRow>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(&format!("{USER_COLS} WHERE badge = ?1 ORDER BY code"))?
            .query_map([badge], user_row)?
            .collect::<Result<_, _>>()?)
    }

    pub fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(&format!("{USER_COLS} ORDER BY code"))?
            .query_map([], user_row)?
            .collect::<Result<_, _>>()?)
    }

    /// Whether anyone was ever added: from then on every act needs a signed-in user.
    pub fn has_users(&self) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM users)")?
            .query_row([], |r| r.get(0))?)
    }

    /// How many times each code's label has been printed (absent: never).
    pub fn label_prints(&self, codes: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT prints FROM label_prints WHERE code = ?1")?;
        let mut out = Vec::new();
        for c in codes {
            if let Some(n) = stmt.query_row([c], |r| r.get::<_, i64>(0)).optional()? {
                out.push((c.clone(), n));
            }
        }
        Ok(out)
    }

    /// Codes of the specimens with the given row ids (ids that do not exist are skipped).
    pub fn codes_by_rowid(&self, ids: &[i64]) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT code FROM specimens WHERE id = ?1")?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(c) = stmt.query_row([id], |r| r.get(0)).optional()? {
                out.push(c);
            }
        }
        Ok(out)
    }
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    let id: Vec<u8> = r.get(0)?;
    let ws: Vec<u8> = r.get(1)?;
    let payload: String = r.get(6)?;
    Ok(EventRow {
        event_id: Uuid::from_slice(&id).unwrap_or_default(),
        workstation: Uuid::from_slice(&ws).unwrap_or_default(),
        seq: r.get(2)?,
        actor: r.get(3)?,
        at: r.get(4)?,
        kind: r.get(5)?,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
    })
}

/// A user as the projection holds them. `password` and `pin` are Argon2id hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub code: String,
    pub name: String,
    pub role: String,
    pub badge: Option<String>,
    pub disabled: bool,
    pub password: Option<String>,
    pub pin: Option<String>,
    pub added_at: i64,
    pub updated_at: i64,
    /// The public signing key and its salt, as the newest password credential published them.
    pub signing_key: Option<String>,
    pub key_salt: Option<String>,
}

const USER_COLS: &str = "SELECT code, name, role, badge, disabled, password, pin, added_at, updated_at, signing_key, key_salt FROM users";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        code: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        badge: r.get(3)?,
        disabled: r.get(4)?,
        password: r.get(5)?,
        pin: r.get(6)?,
        added_at: r.get(7)?,
        updated_at: r.get(8)?,
        signing_key: r.get(9)?,
        key_salt: r.get(10)?,
    })
}

pub(crate) fn event_hash(
    conn: &rusqlite::Connection,
    id: uuid::Uuid,
) -> Result<Option<Digest>, StoreError> {
    let h: Option<Vec<u8>> = conn
        .prepare_cached("SELECT hash FROM events WHERE event_id = ?1")?
        .query_row([id.as_bytes().as_slice()], |r| r.get(0))
        .optional()?;
    h.map(|h| crate::sync::digest(&h, || format!("event {id} has a malformed hash")))
        .transpose()
}

/// A signature as the projection holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignatureRow {
    pub event: uuid::Uuid,
    pub event_hash: String,
    pub signer: String,
    pub name: String,
    pub meaning: String,
    pub at: i64,
}
