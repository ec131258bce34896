//! What shipments between sites need from the store: the sending site's events a bundle
//! carries (each with the hash before it in its chain), the bundles this bench took (kept apart,
//! as received), this workstation's bundle-signing key, the keys this site trusts.

use kura_domain::bundle::{Bundle, Carried};
use kura_domain::envelope::Envelope;
use kura_domain::hash::{Digest, GENESIS};
use kura_domain::{EventBody, SpecimenCode};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::sync::digest;
use crate::{Store, StoreError, Tx};

/// This workstation's key for signing bundles: its seed and public key (hex).
pub struct WorkstationKey {
    pub seed: [u8; 32],
    pub public: String,
}

fn carried_by_rowid(conn: &Connection, rowid: i64) -> Result<Carried, StoreError> {
    let (mut event, ws, hash): (Envelope, Vec<u8>, Vec<u8>) = conn
        .prepare_cached(
            "SELECT event_id, workstation, seq, actor, at, kind, payload, hash FROM events WHERE id = ?1",
        )?
        .query_row([rowid], |r| {
            let ws: Vec<u8> = r.get(1)?;
            Ok((
                Envelope {
                    id: Uuid::from_slice(&r.get::<_, Vec<u8>>(0)?).unwrap_or_default(),
                    workstation: Uuid::from_slice(&ws).unwrap_or_default(),
                    seq: r.get::<_, i64>(2)? as u64,
                    actor: r.get(3)?,
                    at: r.get(4)?,
                    kind: r.get(5)?,
                    payload: r.get(6)?,
                    hash: GENESIS,
                },
                ws,
                r.get(7)?,
            ))
        })?;
    event.hash = digest(&hash, || format!("event {rowid} has a malformed hash"))?;
    let seq = event.seq as i64;
    let prev = if seq <= 1 {
        GENESIS
    } else {
        let h: Option<Vec<u8>> = conn
            .prepare_cached("SELECT hash FROM events WHERE workstation = ?1 AND seq = ?2")?
            .query_row(params![ws, seq - 1], |r| r.get(0))
            .optional()?;
        let h = h.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "event {rowid}: the event before it in its workstation's chain is not here"
            ))
        })?;
        digest(&h, || {
            format!("event {rowid}'s predecessor has a malformed hash")
        })?
    };
    Ok(Carried { event, prev })
}

/// An event's row id by its id.
fn rowid_of(conn: &Connection, id: Uuid) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM events WHERE event_id = ?1")?
        .query_row([id.as_bytes().as_slice()], |r| r.get(0))?)
}

/// The event that created `code` here (its registration or derivation): its row id and parent.
fn creation(conn: &Connection, code: &str) -> Result<Option<(i64, Option<String>)>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT e.id, e.payload FROM event_subjects x JOIN events e ON e.id = x.event
         WHERE x.specimen = (SELECT id FROM specimens WHERE code = ?1)
           AND e.kind IN ('registered', 'derived')
         ORDER BY e.id",
    )?;
    let rows: Vec<(i64, String)> = st
        .query_map([code], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, payload) in rows {
        let rec = match serde_json::from_str::<EventBody>(&payload) {
            Ok(EventBody::Registered { specimen, .. } | EventBody::Derived { specimen, .. }) => {
                specimen
            }
            _ => continue,
        };
        if rec.code.as_str() == code {
            return Ok(Some((id, rec.parent.map(|p| p.to_string()))));
        }
    }
    Ok(None)
}

impl Tx<'_> {
    /// The events a shipment of `tubes` carries besides their `shipped` events (`more`): each
    /// tube's registration and its ancestors', once each, in the order they were recorded here.
    pub fn carried(
        &self,
        tubes: &[SpecimenCode],
        more: &[Uuid],
    ) -> Result<Vec<Carried>, StoreError> {
        let conn = self.conn();
        let mut rows = std::collections::BTreeSet::new();
        let mut elsewhere = Vec::new();
        for t in tubes {
            let mut code = Some(t.to_string());
            while let Some(c) = code.take() {
                match creation(conn, &c)? {
                    Some((id, parent)) if rows.insert(id) => code = parent,
                    Some(_) => {}
                    // A tube that arrived here from another site: its registration travels on
                    // from the bundle it came in.
                    None => elsewhere.push(c),
                }
            }
        }
        for id in more {
            rows.insert(rowid_of(conn, *id)?);
        }
        let mut out: Vec<Carried> = rows
            .into_iter()
            .map(|r| carried_by_rowid(conn, r))
            .collect::<Result<_, _>>()?;
        if !elsewhere.is_empty() {
            out.extend(from_bundles(conn, &elsewhere)?);
        }
        Ok(out)
    }

    /// One event as a bundle carries it.
    pub fn carried_event(&self, id: Uuid) -> Result<Carried, StoreError> {
        carried_by_rowid(self.conn(), rowid_of(self.conn(), id)?)
    }

    /// This workstation's bundle-signing key, made from `seed` the first time it is asked for.
    pub fn workstation_key(
        &self,
        seed: impl FnOnce() -> [u8; 32],
        at: i64,
    ) -> Result<WorkstationKey, StoreError> {
        if let Some(k) = workstation_key(self.conn())? {
            return Ok(k);
        }
        let seed = seed();
        let public = kura_domain::sign::SigningKey::from_seed(&seed)
            .ok_or_else(|| StoreError::Corrupt("the new workstation key was refused".into()))?
            .public_hex();
        self.conn().execute(
            "INSERT INTO workstation_key (id, seed, public, created_at) VALUES (1, ?1, ?2, ?3)",
            params![seed.as_slice(), public, at],
        )?;
        Ok(WorkstationKey { seed, public })
    }

    /// Keeps a bundle as received, under its dispatch's hash (once: taking it again is refused).
    pub fn keep_bundle(&self, bundle: &Bundle, at: i64) -> Result<(), StoreError> {
        let json = serde_json::to_string(bundle)
            .map_err(|e| StoreError::Corrupt(format!("bundle {}: {e}", bundle.shipment)))?;
        self.conn().execute(
            "INSERT INTO bundles (dispatch, shipment, bundle, taken_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                bundle.dispatch.event.hash.as_bytes().as_slice(),
                bundle.shipment,
                json,
                at
            ],
        )?;
        Ok(())
    }
}

/// The registrations of `codes` as the bundles they arrived in carry them (once each).
fn from_bundles(conn: &Connection, codes: &[String]) -> Result<Vec<Carried>, StoreError> {
    let mut st = conn.prepare_cached("SELECT bundle FROM bundles ORDER BY taken_at")?;
    let jsons: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut out: Vec<Carried> = Vec::new();
    for j in jsons {
        let b: Bundle = serde_json::from_str(&j)
            .map_err(|e| StoreError::Corrupt(format!("a kept bundle does not parse: {e}")))?;
        for (c, body) in b.bodies() {
            if let Some(
                EventBody::Registered { specimen, .. } | EventBody::Derived { specimen, .. },
            ) = body
                && codes.iter().any(|x| x == specimen.code.as_str())
                && !out.iter().any(|o| o.event.hash == c.event.hash)
            {
                out.push(c.clone());
            }
        }
    }
    Ok(out)
}

fn workstation_key(conn: &Connection) -> Result<Option<WorkstationKey>, StoreError> {
    let row: Option<(Vec<u8>, String)> = conn
        .prepare_cached("SELECT seed, public FROM workstation_key WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(seed, public)| {
        let seed: [u8; 32] = seed.try_into().map_err(|_| {
            StoreError::Corrupt("the workstation key's seed is not 32 bytes".into())
        })?;
        Ok(WorkstationKey { seed, public })
    })
    .transpose()
}

impl Store {
    /// This workstation's bundle-signing key, once it has one.
    pub fn workstation_key(&self) -> Result<Option<WorkstationKey>, StoreError> {
        workstation_key(self.conn())
    }

    /// The name under which this site trusts the key with `fingerprint`.
    pub fn trusted_key(&self, fingerprint: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT name FROM trusted_keys WHERE code = ?1")?
            .query_row([fingerprint], |r| r.get(0))
            .optional()?)
    }

    /// Every trusted key: (fingerprint, name, when).
    pub fn trusted_keys(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT code, name, at FROM trusted_keys ORDER BY name, code")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?)
    }

    /// The bundle taken for a shipment, as received.
    pub fn bundle_of(&self, shipment: &str) -> Result<Option<Bundle>, StoreError> {
        let json: Option<String> = self
            .conn()
            .prepare_cached("SELECT bundle FROM bundles WHERE shipment = ?1")?
            .query_row([shipment], |r| r.get(0))
            .optional()?;
        json.map(|j| {
            serde_json::from_str(&j)
                .map_err(|e| StoreError::Corrupt(format!("the bundle of {shipment}: {e}")))
        })
        .transpose()
    }
}

/// A receipt the registry sent: another site received a tube of one of this site's shipments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRow {
    pub shipment: String,
    /// The receiving site's code.
    pub site: String,
    /// The receiving bench's `received` event, as the registry took it.
    pub event: Envelope,
}

#[derive(serde::Deserialize)]
struct ReceiptBody {
    site: String,
    event: Envelope,
}

impl Tx<'_> {
    /// Keeps a parcel the registry sent (`body`: a bundle's JSON, or a receipt's `{site, event}`),
    /// once by its hash. Whether it is new here.
    pub fn keep_parcel(
        &self,
        hash: &Digest,
        kind: &str,
        shipment: &str,
        body: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO parcels (hash, kind, shipment, body, pulled_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![hash.as_bytes().as_slice(), kind, shipment, body, at],
        )?;
        Ok(n == 1)
    }

    /// Where the registry's parcels were read to, and the hash of the parcel there.
    pub fn set_parcel_cursor(&self, next: u64, at: Option<&Digest>) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE sync_state SET parcel_cursor = ?1, parcel_at = ?2 WHERE id = 1",
            params![next as i64, at.map(|d| d.as_bytes().to_vec())],
        )?;
        Ok(())
    }

    /// The registry took (or, with `refused`, refused for good) this workstation's bundle.
    pub fn bundle_posted(
        &self,
        dispatch: &Digest,
        at: i64,
        refused: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO bundles_posted (dispatch, posted_at, refused) VALUES (?1, ?2, ?3)",
            params![dispatch.as_bytes().as_slice(), at, refused],
        )?;
        Ok(())
    }

    /// The registry was put back from an older copy: every bundle and follow-up is sent again
    /// (it keeps each once), and its parcels are read again from the start (this bench keeps
    /// each once).
    pub fn registry_forgot(&self) -> Result<(), StoreError> {
        self.conn().execute("DELETE FROM bundles_posted", [])?;
        self.set_follow_up_seq(0)?;
        self.set_parcel_cursor(0, None)
    }

    /// The sending site held `code` (a follow-up of `shipment`, the block's hash `follow_up`):
    /// from now on no new act here uses it. Once per tube.
    pub fn hold(
        &self,
        code: &str,
        shipment: &str,
        reason: &str,
        follow_up: &Digest,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO held (code, shipment, reason, follow_up) VALUES (?1, ?2, ?3, ?4)",
            params![code, shipment, reason, follow_up.as_bytes().as_slice()],
        )?;
        Ok(())
    }

    /// Another site received `code` of this site's `shipment` (a receipt, the receiving
    /// event's hash `receipt`): it reads as `transferred` from now on.
    pub fn deliver(
        &self,
        code: &str,
        shipment: &str,
        site: &str,
        receipt: &Digest,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO delivered (code, shipment, site, receipt) VALUES (?1, ?2, ?3, ?4)",
            params![code, shipment, site, receipt.as_bytes().as_slice()],
        )?;
        Ok(())
    }

    /// This workstation's events up to `seq` had their follow-ups sent.
    pub fn set_follow_up_seq(&self, seq: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE sync_state SET follow_up_seq = ?1 WHERE id = 1",
            [seq as i64],
        )?;
        Ok(())
    }
}

impl Store {
    /// Where the registry's parcels were read to, and the hash of the parcel there.
    pub fn parcel_cursor(&self) -> Result<(u64, Option<Digest>), StoreError> {
        let (n, at): (i64, Option<Vec<u8>>) = self
            .conn()
            .query_row(
                "SELECT parcel_cursor, parcel_at FROM sync_state WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, None));
        let at = at
            .map(|h| digest(&h, || "the parcel cursor's hash is malformed".into()))
            .transpose()?;
        Ok((n as u64, at))
    }

    /// This workstation's bundles for another site the registry has not taken yet: the ones this
    /// bench made (its own site's outgoing shipments), oldest first.
    pub fn bundles_to_post(&self) -> Result<Vec<Bundle>, StoreError> {
        let mut st = self.conn().prepare_cached(
            "SELECT b.bundle FROM bundles b JOIN shipments s ON s.code = b.shipment
             WHERE s.incoming = 0 AND b.dispatch NOT IN (SELECT dispatch FROM bundles_posted)
             ORDER BY b.taken_at",
        )?;
        let jsons: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        jsons
            .iter()
            .map(|j| {
                serde_json::from_str(j)
                    .map_err(|e| StoreError::Corrupt(format!("a kept bundle does not parse: {e}")))
            })
            .collect()
    }

    /// Bundles the registry sent this site that no bench here has taken yet (no arrival of
    /// their shipment here), oldest first.
    pub fn inbox(&self) -> Result<Vec<Bundle>, StoreError> {
        let mut st = self.conn().prepare_cached(
            "SELECT body FROM parcels WHERE kind = 'bundle'
               AND shipment NOT IN (SELECT code FROM shipments)
             ORDER BY pulled_at, shipment",
        )?;
        let jsons: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        jsons
            .iter()
            .map(|j| {
                serde_json::from_str(j).map_err(|e| {
                    StoreError::Corrupt(format!("a bundle from the registry does not parse: {e}"))
                })
            })
            .collect()
    }

    /// This workstation's own events up to which follow-ups were sent.
    pub fn follow_up_seq(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT follow_up_seq FROM sync_state WHERE id = 1",
                [],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .unwrap_or(0) as u64)
    }

    /// This workstation's blocks, after seq `after` up to `to`, of tubes this site shipped to
    /// another site: each block as a follow-up carries it, with the shipment.
    pub fn blocks_to_follow(
        &self,
        after: u64,
        to: u64,
    ) -> Result<Vec<(Carried, String)>, StoreError> {
        let ws = self.workstation();
        let rows: Vec<(i64, String)> = self
            .conn()
            .prepare_cached(
                "SELECT id, payload FROM events WHERE workstation = ?1 AND seq > ?2 AND seq <= ?3
                   AND kind = 'blocked' ORDER BY seq",
            )?
            .query_map(params![ws.as_bytes(), after as i64, to as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for (rowid, payload) in rows {
            let Ok(EventBody::Blocked { specimen, .. }) = serde_json::from_str(&payload) else {
                continue;
            };
            let shipments: Vec<(String, String)> = self
                .conn()
                .prepare_cached(
                    "SELECT code, manifest FROM shipments WHERE incoming = 0
                       AND destination LIKE 'site:%' AND instr(manifest, ?1) > 0",
                )?
                .query_map([specimen.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (code, manifest) in shipments {
                let s: kura_domain::Shipment = serde_json::from_str(&manifest)
                    .map_err(|e| StoreError::Corrupt(format!("shipment {code}: {e}")))?;
                if s.specimens.contains(&specimen) {
                    out.push((carried_by_rowid(self.conn(), rowid)?, code));
                }
            }
        }
        Ok(out)
    }

    /// The blocks the sending site placed on `code` after it left, as their follow-ups carry
    /// them.
    pub fn follow_ups_of(&self, code: &str) -> Result<Vec<Envelope>, StoreError> {
        let hashes: Vec<Vec<u8>> = self
            .conn()
            .prepare_cached("SELECT follow_up FROM held WHERE code = ?1")?
            .query_map([code], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for h in hashes {
            let body: Option<String> = self
                .conn()
                .prepare_cached("SELECT body FROM parcels WHERE hash = ?1")?
                .query_row([&h], |r| r.get(0))
                .optional()?;
            if let Some(body) = body {
                let f: kura_domain::bundle::FollowUp = serde_json::from_str(&body)
                    .map_err(|e| StoreError::Corrupt(format!("a follow-up does not parse: {e}")))?;
                out.push(f.event.event);
            }
        }
        Ok(out)
    }

    /// The bundle of `shipment` the registry sent, if it did.
    pub fn sent_bundle(&self, shipment: &str) -> Result<Option<Bundle>, StoreError> {
        let json: Option<String> = self
            .conn()
            .prepare_cached("SELECT body FROM parcels WHERE kind = 'bundle' AND shipment = ?1")?
            .query_row([shipment], |r| r.get(0))
            .optional()?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| {
                StoreError::Corrupt(format!("the bundle of {shipment} from the registry: {e}"))
            })
        })
        .transpose()
    }

    /// The receipts the registry sent for `shipment` (every one with `None`), in the order the
    /// receiving site recorded them.
    pub fn receipts(&self, shipment: Option<&str>) -> Result<Vec<ReceiptRow>, StoreError> {
        let mut st = self.conn().prepare_cached(
            "SELECT shipment, body FROM parcels WHERE kind = 'receipt' AND (?1 IS NULL OR shipment = ?1)",
        )?;
        let rows: Vec<(String, String)> = st
            .query_map([shipment], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for (shipment, body) in rows {
            let b: ReceiptBody = serde_json::from_str(&body).map_err(|e| {
                StoreError::Corrupt(format!("a receipt of {shipment} does not parse: {e}"))
            })?;
            out.push(ReceiptRow {
                shipment,
                site: b.site,
                event: b.event,
            });
        }
        out.sort_by_key(|r| (r.event.at, r.event.seq));
        Ok(out)
    }
}
