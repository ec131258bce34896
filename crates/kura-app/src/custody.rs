//! Check in, check out, return, move, thaw, consume, dispose, block: one transaction each.

use chrono::NaiveDate;
use kura_domain::id::{ContainerId, SpecimenCode};
use kura_domain::{EventBody, Location, Placement, Pos, Purpose};
use serde::Serialize;

use crate::ids::parse_pos;
use crate::{AppError, Emit, Kura, input};

/// Where a specimen was put.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placed {
    pub specimen: String,
    pub container: String,
    pub row: u16,
    pub col: u16,
    pub position: String,
    /// Two benches disagree about this specimen (the window adds a line saying so).
    pub in_conflict: bool,
    /// Why its donor withdrew consent (the window says so in red).
    pub consent_withdrawn: Option<String>,
}

impl Placed {
    /// Received without a position (not into a box yet).
    pub(crate) fn unplaced(specimen: &SpecimenCode) -> Placed {
        Placed {
            specimen: specimen.to_string(),
            container: String::new(),
            row: 0,
            col: 0,
            position: String::new(),
            in_conflict: false,
            consent_withdrawn: None,
        }
    }

    pub(crate) fn new(
        specimen: &SpecimenCode,
        container: &ContainerId,
        pos: Pos,
        position: String,
    ) -> Placed {
        Placed {
            specimen: specimen.to_string(),
            container: container.to_string(),
            row: pos.row,
            col: pos.col,
            position,
            in_conflict: false,
            consent_withdrawn: None,
        }
    }
}

/// A check-out as the technician typed it: to whom, why, until when. Parsed by
/// [`Kura::check_out`], the same for every face.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct CheckOut {
    pub to: String,
    /// analysis, qc, distribution, transfer or other.
    pub purpose: String,
    /// YYYY-MM-DD; blank or absent: open-ended.
    pub due: Option<String>,
    pub note: Option<String>,
}

/// A check-out, parsed.
pub(crate) struct CheckOutRequest {
    pub to: String,
    pub purpose: Purpose,
    pub due: Option<NaiveDate>,
    pub note: Option<String>,
}

impl CheckOut {
    pub(crate) fn parse(&self, today: NaiveDate) -> Result<CheckOutRequest, AppError> {
        let to = input::text("to", &self.to, 100)?;
        let purpose = input::purpose(&self.purpose)?;
        let due = input::date("due", self.due.as_deref())?;
        if let Some(due) = due
            && due < today
        {
            return Err(AppError::input(
                "due",
                format!("the due date {due} is in the past"),
            ));
        }
        let note = input::optional_text("note", self.note.as_deref(), 500)?;
        Ok(CheckOutRequest {
            to,
            purpose,
            due,
            note,
        })
    }
}

impl Emit<'_, '_> {
    /// The position to use in `container`: the given label, or the next free one by fill order.
    pub(crate) fn target(
        &mut self,
        container: &ContainerId,
        pos: Option<&str>,
    ) -> Result<(Pos, String), AppError> {
        let info = self.tx.require_container(container)?;
        let p = match pos {
            Some(label) => parse_pos(container, &info.geometry, label)?,
            None => self.tx.next_free(container)?,
        };
        Ok((p, info.geometry.label(p)))
    }

    pub(crate) fn check_in(
        &mut self,
        code: SpecimenCode,
        container: &ContainerId,
        pos: Option<&str>,
    ) -> Result<Placed, AppError> {
        let (p, label) = self.target(container, pos)?;
        self.emit(EventBody::CheckedIn {
            specimen: code.clone(),
            location: Location {
                container: container.clone(),
                pos: p,
            },
        })?;
        Ok(Placed::new(&code, container, p, label))
    }
}

/// What a consent withdrawal did.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, serde::Serialize)]
pub struct Withdrawal {
    pub donor: String,
    /// Every specimen of the donor and derived from them, now blocked and queued for destruction.
    pub blocked: Vec<String>,
    pub signature: Option<crate::users::SignatureView>,
}

/// A scanned specimen and, when it is stored in a container, that container's map: what the
/// Find screen shows for one scan, in one call.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    pub specimen: kura_store::SpecimenView,
    pub box_map: Option<kura_store::BoxMap>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct QueuedForDestruction {
    pub code: String,
    pub donor: String,
    pub reason: String,
}

impl Kura {
    /// Checks a specimen into `container`, at `pos` or the next free position.
    pub fn check_in(
        &mut self,
        specimen: &str,
        container: &str,
        pos: Option<&str>,
    ) -> Result<Placed, AppError> {
        let code = self.specimen_code(specimen)?;
        let container = self.container_code(container)?;
        let placed = self.write(|e| e.check_in(code, &container, pos))?;
        self.flagged(placed)
    }

    /// What the window must say about a placed specimen besides where it went.
    fn flagged(&self, mut p: Placed) -> Result<Placed, AppError> {
        let flags = self.store().scan_flags(&p.specimen)?.unwrap_or_default();
        p.in_conflict = flags.in_conflict;
        p.consent_withdrawn = flags.consent_withdrawn;
        Ok(p)
    }

    /// What a scan of this specimen must say besides its answer: in conflict, consent
    /// withdrawn. The window asks when the screen's own answer did not say (a refusal, a
    /// screen that only lists what was scanned).
    pub fn scan_flags(&self, specimen: &str) -> Result<kura_store::ScanFlags, AppError> {
        self.may_read()?;
        let code = self.specimen_code(specimen)?;
        self.store()
            .scan_flags(code.as_str())?
            .ok_or_else(|| AppError::NotFound {
                what: "specimen",
                code: code.to_string(),
            })
    }

    /// Fills a box from a list of scans in one transaction: each goes to the next free position.
    /// If any one is refused, none is checked in.
    pub fn check_in_box(
        &mut self,
        container: &str,
        specimens: &[String],
    ) -> Result<Vec<Placed>, AppError> {
        let container = self.container_code(container)?;
        let codes = specimens
            .iter()
            .map(|s| self.specimen_code(s))
            .collect::<Result<Vec<_>, _>>()?;
        let placed: Vec<Placed> = self.write(|e| {
            codes
                .into_iter()
                .map(|c| e.check_in(c, &container, None))
                .collect()
        })?;
        placed.into_iter().map(|p| self.flagged(p)).collect()
    }

    /// Checks out one or many specimens in one transaction; their positions stay reserved.
    pub fn check_out(&mut self, specimens: &[String], out: &CheckOut) -> Result<usize, AppError> {
        let out = out.parse(self.today())?;
        let codes = specimens
            .iter()
            .map(|s| self.specimen_code(s))
            .collect::<Result<Vec<_>, _>>()?;
        if codes.is_empty() {
            return Err(AppError::input("specimens", "scan at least one specimen"));
        }
        let n = codes.len();
        self.write(|e| {
            for c in codes {
                e.emit(EventBody::CheckedOut {
                    specimen: c,
                    to: out.to.clone(),
                    purpose: out.purpose,
                    due: out.due,
                    note: out.note.clone(),
                })?;
            }
            Ok(n)
        })
    }

    /// Returns a checked-out specimen to its reserved position.
    pub fn return_specimen(&mut self, specimen: &str, thawed: bool) -> Result<Placed, AppError> {
        let code = self.specimen_code(specimen)?;
        self.write(|e| {
            e.emit(EventBody::Returned {
                specimen: code.clone(),
                thawed,
            })?;
            let s = e.tx.specimen(&code)?.ok_or_else(|| AppError::NotFound {
                what: "specimen",
                code: code.to_string(),
            })?;
            let loc = s.location().cloned().ok_or_else(|| {
                AppError::input("specimen", "returned specimen has no reserved position")
            })?;
            let info = e.tx.require_container(&loc.container)?;
            Ok(Placed::new(
                &code,
                &loc.container,
                loc.pos,
                info.geometry.label(loc.pos),
            ))
        })
        .and_then(|p| self.flagged(p))
    }

    /// Moves a stored specimen to another position (in the same or another container).
    pub fn move_specimen(
        &mut self,
        specimen: &str,
        container: &str,
        pos: Option<&str>,
    ) -> Result<Placed, AppError> {
        let code = self.specimen_code(specimen)?;
        let container = self.container_code(container)?;
        self.write(|e| {
            let s = e.tx.specimen(&code)?.ok_or_else(|| {
                AppError::Rule(kura_domain::RuleError::UnknownSpecimen {
                    specimen: code.to_string(),
                })
            })?;
            let from = s.location().cloned().ok_or_else(|| {
                AppError::Rule(kura_domain::RuleError::NotInStorage {
                    specimen: code.to_string(),
                    status: s.status().as_str().into(),
                })
            })?;
            let (p, label) = e.target(&container, pos)?;
            e.emit(EventBody::Moved {
                specimen: code.clone(),
                from,
                to: Location {
                    container: container.clone(),
                    pos: p,
                },
            })?;
            Ok(Placed::new(&code, &container, p, label))
        })
        .and_then(|p| self.flagged(p))
    }

    /// Moves a container (box, rack …) with everything in it.
    pub fn move_container(
        &mut self,
        container: &str,
        parent: &str,
        pos: Option<&str>,
    ) -> Result<(), AppError> {
        let id = self.container_code(container)?;
        let parent = self.container_code(parent)?;
        self.write(|e| {
            let info = e.tx.require_container(&id)?;
            let pos = e.slot_in(&parent, pos)?;
            let from = info.parent.clone().map(|p| Placement {
                parent: p,
                pos: info.pos,
            });
            e.emit(EventBody::ContainerMoved {
                container: id.clone(),
                from,
                to: Placement {
                    parent: parent.clone(),
                    pos,
                },
            })?;
            Ok(())
        })
    }

    /// Evacuates a failing freezer or tank: every container in it moves to the same position in
    /// `backup`, in one transaction. Returns the containers moved.
    pub fn evacuate(&mut self, source: &str, backup: &str) -> Result<Vec<String>, AppError> {
        let source = self.container_code(source)?;
        let backup = self.container_code(backup)?;
        let children = self.store().containers(Some(source.as_str()))?;
        self.write(|e| {
            e.tx.require_container(&source)?;
            e.tx.require_container(&backup)?;
            let mut moved = Vec::new();
            for c in &children {
                let id = ContainerId::from_stored(c.code.clone());
                let info = e.tx.require_container(&id)?;
                let from = info.parent.clone().map(|p| Placement {
                    parent: p,
                    pos: info.pos,
                });
                e.emit(EventBody::ContainerMoved {
                    container: id,
                    from,
                    to: Placement {
                        parent: backup.clone(),
                        pos: info.pos,
                    },
                })?;
                moved.push(c.code.clone());
            }
            Ok(moved)
        })
    }

    pub fn thaw(&mut self, specimen: &str) -> Result<(), AppError> {
        let code = self.specimen_code(specimen)?;
        self.write(|e| e.emit(EventBody::Thawed { specimen: code }).map(|_| ()))
    }

    /// Records use of a specimen: an amount (in the unit given, or the specimen's own when
    /// none is), or all of it.
    pub fn consume(
        &mut self,
        specimen: &str,
        amount: Option<&str>,
        unit: Option<&str>,
        used_up: bool,
    ) -> Result<(), AppError> {
        let code = self.specimen_code(specimen)?;
        self.write(|e| {
            let own_unit =
                e.tx.specimen(&code)?
                    .and_then(|s| s.quantity)
                    .map(|q| q.unit);
            let amount = input::amount(amount, unit, own_unit)?;
            if amount.is_none() && !used_up {
                return Err(AppError::input(
                    "amount",
                    "give an amount, or say the specimen is used up",
                ));
            }
            e.emit(EventBody::Consumed {
                specimen: code,
                amount,
                used_up,
            })
            .map(|_| ())
        })
    }

    /// Disposes of a specimen. Irreversible: on a database with users it is signed — run it in
    /// [`Kura::with_signature`], else it is refused with `signature_required` — and the
    /// signature, made in the same transaction as the `disposed` event, is returned.
    pub fn dispose(
        &mut self,
        specimen: &str,
        reason: &str,
    ) -> Result<Option<crate::users::SignatureView>, AppError> {
        let code = self.specimen_code(specimen)?;
        let reason = input::reason(reason)?;
        self.write(|e| {
            let ev = e.emit(EventBody::Disposed {
                specimen: code,
                reason,
            })?;
            Ok(e.signed.iter().find(|v| v.event == ev.id).cloned())
        })
    }

    pub fn block(&mut self, specimen: &str, reason: &str) -> Result<(), AppError> {
        let code = self.specimen_code(specimen)?;
        let reason = input::reason(reason)?;
        self.write(|e| {
            e.emit(EventBody::Blocked {
                specimen: code,
                reason,
            })
            .map(|_| ())
        })
    }

    /// Lifts a block. An exception to a consent withdrawal, on a database with users, is a
    /// supervisor's signed act: run it in [`Kura::with_signature`] (else `signature_required`);
    /// the signature is returned.
    pub fn unblock(
        &mut self,
        specimen: &str,
        reason: &str,
    ) -> Result<Option<crate::users::SignatureView>, AppError> {
        let code = self.specimen_code(specimen)?;
        let exception = self.secured()? && self.store().withdrawal_of(code.as_str())?.is_some();
        if exception {
            self.authorize(crate::users::Act::Block)?;
        }
        let reason = input::reason(reason)?;
        self.write(|e| {
            if exception && e.signer.is_none() {
                return Err(AppError::SignatureRequired {
                    act: crate::users::Act::Block,
                });
            }
            let ev = e.emit(EventBody::Unblocked {
                specimen: code,
                reason,
            })?;
            if exception {
                return e.sign_armed(ev.id, crate::users::Act::Block).map(Some);
            }
            Ok(None)
        })
    }

    /// A donor withdrew consent: in one transaction, every specimen of theirs and everything
    /// derived from them through the lineage is blocked (the reason kept with each), the
    /// withdrawal recorded, and — on a database with users — signed (run it in
    /// [`Kura::with_signature`]). The specimens then wait in the destruction queue; destruction
    /// is a signed disposal.
    pub fn withdraw_consent(&mut self, donor: &str, reason: &str) -> Result<Withdrawal, AppError> {
        let donor = input::text("donor", donor, 64)?;
        let reason = input::reason(reason)?;
        self.authorize(crate::users::Act::Block)?;
        let block_reason = format!("consent withdrawn: {reason}");
        self.write(|e| {
            let codes = e.tx.donor_lineage(&donor)?;
            if codes.is_empty() && e.tx.donor_specimens(&donor)?.is_empty() {
                return Err(AppError::NotFound {
                    what: "donor",
                    code: donor.clone(),
                });
            }
            let w = e.emit(EventBody::ConsentWithdrawn {
                donor: donor.clone(),
                reason: reason.clone(),
            })?;
            let mut blocked = Vec::new();
            for c in &codes {
                if e.tx.specimen(c)?.is_some_and(|s| !s.blocked) {
                    e.emit(EventBody::Blocked {
                        specimen: c.clone(),
                        reason: block_reason.clone(),
                    })?;
                }
                blocked.push(c.to_string());
            }
            let signature = e.signed.iter().find(|v| v.event == w.id).cloned();
            Ok(Withdrawal {
                donor: donor.clone(),
                blocked,
                signature,
            })
        })
    }

    /// The destruction queue: specimens of donors who withdrew consent (and their derivatives)
    /// not yet disposed.
    pub fn destruction_queue(&self) -> Result<Vec<QueuedForDestruction>, AppError> {
        self.may_read()?;
        Ok(self
            .store()
            .destruction_queue()?
            .into_iter()
            .map(|(code, donor, reason)| QueuedForDestruction {
                code,
                donor,
                reason,
            })
            .collect())
    }

    /// Why this specimen may not be used: its donor withdrew consent (None: they did not).
    pub fn consent_withdrawn(&self, specimen: &str) -> Result<Option<String>, AppError> {
        self.may_read()?;
        let code = self.specimen_code(specimen)?;
        Ok(self.store().withdrawal_of(code.as_str())?)
    }

    // ---- reads ----

    /// A scanned specimen with its full location path.
    pub fn show(&self, specimen: &str) -> Result<kura_store::SpecimenView, AppError> {
        self.may_read()?;
        let (code, view) = self.resolve(specimen)?;
        view.ok_or_else(|| AppError::NotFound {
            what: "specimen",
            code: code.to_string(),
        })
    }

    /// A scanned specimen with its location path and the map of the box it is in.
    pub fn locate(&self, specimen: &str) -> Result<Located, AppError> {
        let specimen = self.show(specimen)?;
        let box_map = match &specimen.container {
            Some(c) => Some(self.box_map(c)?),
            None => None,
        };
        Ok(Located { specimen, box_map })
    }

    /// Check-outs whose due date has passed at the site, the longest overdue first.
    pub fn overdue(&self, limit: usize) -> Result<Vec<kura_store::SpecimenView>, AppError> {
        self.may_read()?;
        let limit = if limit == 0 { 100 } else { limit };
        Ok(self.store().overdue(&self.today().to_string(), limit)?)
    }

    pub fn find(
        &self,
        q: &kura_store::FindQuery,
    ) -> Result<Vec<kura_store::SpecimenView>, AppError> {
        self.may_read()?;
        Ok(self.store().find(q)?)
    }

    pub fn history(&self, specimen: &str) -> Result<Vec<kura_store::EventRow>, AppError> {
        self.may_read()?;
        let code = self.specimen_code(specimen)?;
        if self.store().specimen(&code)?.is_none() {
            return Err(AppError::NotFound {
                what: "specimen",
                code: code.to_string(),
            });
        }
        let mut rows = self.store().history(&code)?;
        // A tube that came from another site: its past there, from the bundle it came in.
        let mut before = Vec::new();
        for r in &rows {
            if r.kind != "shipment_arrived" {
                continue;
            }
            let Some(id) = r.payload["shipment"]["id"].as_str() else {
                continue;
            };
            if let Some(b) = self.store().bundle_of(id)? {
                for c in &b.events {
                    let Ok(body) = serde_json::from_str::<kura_domain::EventBody>(&c.event.payload)
                    else {
                        continue;
                    };
                    if body.footprint().specimens.contains(code.as_str()) {
                        before.push(kura_store::EventRow::of(&c.event));
                    }
                }
            }
        }
        // A tube this site shipped: where the receiving site received it, as the registry's
        // receipt says.
        let mut after = Vec::new();
        for r in &rows {
            if r.kind != "shipped" {
                continue;
            }
            let Some(id) = r.payload["shipment"].as_str() else {
                continue;
            };
            for receipt in self.store().receipts(Some(id))? {
                let row = kura_store::EventRow::of(&receipt.event);
                if row.payload["specimen"].as_str() == Some(code.as_str()) {
                    after.push(row);
                }
            }
        }
        // Blocks the sending site placed on it after it left (follow-ups to its shipment).
        for e in self.store().follow_ups_of(code.as_str())? {
            after.push(kura_store::EventRow::of(&e));
        }
        if !before.is_empty() {
            before.append(&mut rows);
            rows = before;
        }
        rows.append(&mut after);
        Ok(rows)
    }

    pub fn lineage(&self, specimen: &str) -> Result<kura_store::LineageNode, AppError> {
        self.may_read()?;
        let code = self.specimen_code(specimen)?;
        self.store()
            .lineage(&code)?
            .ok_or_else(|| AppError::NotFound {
                what: "specimen",
                code: code.to_string(),
            })
    }

    pub fn box_map(&self, container: &str) -> Result<kura_store::BoxMap, AppError> {
        self.may_read()?;
        let id = self.container_code(container)?;
        self.store()
            .box_map(id.as_str())?
            .ok_or_else(|| AppError::NotFound {
                what: "container",
                code: id.to_string(),
            })
    }

    pub fn containers(
        &self,
        parent: Option<&str>,
    ) -> Result<Vec<kura_store::ContainerRow>, AppError> {
        self.may_read()?;
        let parent = parent.map(|p| self.container_code(p)).transpose()?;
        Ok(self
            .store()
            .containers(parent.as_ref().map(|p| p.as_str()))?)
    }
}
