//! Shipments: tubes (scanned one by one, or a whole box at once) sent to another site of the
//! network, or out of it to a researcher under a material transfer agreement; the manifest that
//! travels with them; the list of shipments this bench knows.

use std::path::Path;

use kura_domain::bundle::Bundle;
use kura_domain::id::{ContainerId, SpecimenCode};
use kura_domain::shipment::{Coolant, Destination, Packed, Shipment, grams, kg};
use kura_domain::{EventBody, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{AppError, Kura, input};

/// A shipment as the technician fills it in (the CLI's flags, the window's Ship screen).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ShipForm {
    /// What was scanned: tubes, or boxes (each stands for every tube in it).
    pub scans: Vec<String>,
    /// Another site of the network (its code).
    pub to_site: Option<String>,
    /// A researcher outside the network (the tubes leave Kura's custody; needs `mta`).
    pub to_recipient: Option<String>,
    pub courier: Option<String>,
    pub tracking: Option<String>,
    /// dry-ice, ln2-dry-shipper, ambient or 4C.
    pub temperature: String,
    /// Net dry ice in kg (with dry ice).
    pub dry_ice_kg: Option<String>,
    /// The temperature logger travelling with the tubes.
    pub logger: Option<String>,
    /// The material transfer agreement's reference.
    pub mta: Option<String>,
}

/// A dispatched shipment.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct Dispatched {
    pub shipment: String,
    /// `site:CODE` or `recipient:NAME`.
    pub destination: String,
    pub tubes: Vec<String>,
    /// The boxes the tubes were packed from.
    pub boxes: Vec<String>,
    /// Out of the network: the tubes' custody ended (`distributed`).
    pub distributed: bool,
    /// The supervisor's signature of a distribution.
    pub signature: Option<crate::users::SignatureView>,
}

/// One shipment in a list.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct ShipmentSummary {
    pub shipment: String,
    /// `outgoing` (dispatched from this site) or `incoming`.
    pub direction: String,
    pub destination: String,
    /// YYYY-MM-DD HH:MM at the site: when it was dispatched from here, or arrived here.
    pub dispatched: String,
    pub coolant: String,
    pub courier: Option<String>,
    pub tracking: Option<String>,
    pub tubes: usize,
    /// Tubes still on the way.
    pub in_transit: usize,
    /// Outgoing: tubes the destination received, as the registry's receipts say (they are no
    /// longer counted on the way).
    pub received_there: usize,
}

impl ShipForm {
    fn destination(&self, own_site: Option<&str>) -> Result<Destination, AppError> {
        let site = input::optional_text("to", self.to_site.as_deref(), 32)?;
        let recipient = input::optional_text("to_recipient", self.to_recipient.as_deref(), 100)?;
        match (site, recipient) {
            (Some(code), None) => {
                let code = code.to_uppercase();
                if own_site == Some(code.as_str()) {
                    return Err(AppError::input(
                        "to",
                        format!("{code} is this site: a shipment goes to another site"),
                    ));
                }
                Ok(Destination::Site { code })
            }
            (None, Some(name)) => Ok(Destination::Recipient { name }),
            (Some(_), Some(_)) => Err(AppError::input(
                "to",
                "a shipment goes either to a site or to a recipient, not both",
            )),
            (None, None) => Err(AppError::input(
                "to",
                "say where the shipment goes: a site's code, or a recipient's name",
            )),
        }
    }

    fn coolant(&self) -> Result<(Coolant, Option<u32>), AppError> {
        let coolant = Coolant::parse(&self.temperature).ok_or_else(|| {
            AppError::input(
                "temperature",
                format!(
                    "{:?} is not a shipping temperature: use {}",
                    self.temperature,
                    Coolant::ALL.map(Coolant::as_str).join(", ")
                ),
            )
        })?;
        let grams = match self.dry_ice_kg.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) => Some(grams(v).filter(|g| *g > 0).ok_or_else(|| {
                AppError::input(
                    "dry_ice_kg",
                    format!("{v:?} is not a mass in kg (e.g. 5 or 5.5)"),
                )
            })?),
        };
        match (coolant, grams) {
            (Coolant::DryIce, None) => Err(AppError::input(
                "dry_ice_kg",
                "a dry-ice shipment declares its dry ice's net mass (UN 1845): give it in kg",
            )),
            (c, Some(_)) if c != Coolant::DryIce => Err(AppError::input(
                "dry_ice_kg",
                "a dry-ice mass is given, but the temperature is not dry-ice",
            )),
            _ => Ok((coolant, grams)),
        }
    }
}

impl Kura {
    /// This site's code, once enrolled with the registry.
    pub(crate) fn own_site(&self) -> Result<Option<String>, AppError> {
        Ok(crate::sync::site_code(&self.store().sync_state()?))
    }

    /// The tubes a list of scans names, each once, in scan order: a box's code stands for every
    /// specimen in it (stored or held for one checked out, which the rules then refuse by name).
    fn tubes_of(&self, scans: &[String]) -> Result<Vec<SpecimenCode>, AppError> {
        let mut out: Vec<SpecimenCode> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for raw in scans.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let as_box = ContainerId::parse(raw)
                .ok()
                .map(|c| self.store().box_map(c.as_str()))
                .transpose()?
                .flatten();
            let codes = match as_box {
                Some(m) => {
                    let codes: Vec<SpecimenCode> = m
                        .slots
                        .iter()
                        .filter_map(|s| s.specimen.as_deref())
                        .map(|c| self.specimen_code(c))
                        .collect::<Result<_, _>>()?;
                    if codes.is_empty() {
                        return Err(AppError::input(
                            "scans",
                            format!("box {} holds no specimen to ship", m.code),
                        ));
                    }
                    codes
                }
                // A code with a dash is no Kura ID: say the box is not known here.
                None if raw.contains('-') && self.specimen_code(raw).is_err() => {
                    return Err(AppError::NotFound {
                        what: "container",
                        code: raw.to_uppercase(),
                    });
                }
                None => vec![self.specimen_code(raw)?],
            };
            for c in codes {
                if seen.insert(c.clone()) {
                    out.push(c);
                }
            }
        }
        if out.is_empty() {
            return Err(AppError::input(
                "scans",
                "scan at least one tube or box to ship",
            ));
        }
        Ok(out)
    }

    /// Dispatches a shipment in one transaction: its manifest (`shipment_dispatched`), then each
    /// tube `shipped` (in transit: its position freed, any use refused until it is received) or,
    /// out of the network, `distributed` (Kura's custody ends). A distribution is a supervisor's
    /// signed act: on a database with users, run it in [`Kura::with_signature`] with
    /// [`crate::users::Act::Distribute`].
    pub fn ship(&mut self, form: &ShipForm) -> Result<Dispatched, AppError> {
        let own = self.own_site()?;
        let destination = form.destination(own.as_deref())?;
        let (coolant, dry_ice_grams) = form.coolant()?;
        let courier = input::optional_text("courier", form.courier.as_deref(), 100)?;
        let tracking = input::optional_text("tracking", form.tracking.as_deref(), 100)?;
        let logger = input::optional_text("logger", form.logger.as_deref(), 100)?;
        let mta = input::optional_text("mta", form.mta.as_deref(), 100)?;
        if destination.leaves_network() && mta.is_none() {
            return Err(AppError::input(
                "mta",
                "a shipment to a recipient outside the network names its material transfer agreement (--mta)",
            ));
        }
        let tubes = self.tubes_of(&form.scans)?;
        let mut packed = Vec::new();
        let mut boxes: Vec<String> = Vec::new();
        for t in &tubes {
            if let Some(v) = self.store().specimen(t)?
                && let (Some(container), Some(position)) = (v.container, v.position)
            {
                if !boxes.contains(&container) {
                    boxes.push(container.clone());
                }
                packed.push(Packed {
                    specimen: t.clone(),
                    container,
                    position,
                });
            }
        }
        // The workstation's random tail (a v7 id starts with its creation time, which two
        // benches set up the same minute share).
        let prefix = format!(
            "SHP-{}-",
            &self.workstation().simple().to_string()[24..].to_uppercase()
        );
        let n = self.store().shipments_numbered(&prefix)? + 1;
        let shipment = Shipment {
            id: format!("{prefix}{n}"),
            destination: destination.clone(),
            specimens: tubes.clone(),
            coolant,
            dry_ice_grams,
            courier,
            tracking,
            logger,
            mta: mta.clone(),
            packed,
            carries: vec![],
        };
        let id = shipment.id.clone();
        let signature = self.write(|e| {
            // Each tube's own event first, then the manifest naming by hash every event the
            // receiver needs (the tubes' registrations and lineage, their `shipped`): the
            // dispatch's own hash seals the bundle, which is made and kept here at once.
            let mut moved = Vec::new();
            for t in &tubes {
                let ev = e.emit(match &destination {
                    Destination::Site { .. } => EventBody::Shipped {
                        specimen: t.clone(),
                        shipment: id.clone(),
                        destination: destination.label(),
                    },
                    Destination::Recipient { name } => EventBody::Distributed {
                        specimen: t.clone(),
                        shipment: id.clone(),
                        recipient: name.clone(),
                        mta: mta.clone().unwrap_or_default(),
                    },
                })?;
                moved.push(ev.id);
            }
            let mut shipment = shipment.clone();
            let carried = match &destination {
                Destination::Site { .. } => e.tx.carried(&tubes, &moved)?,
                Destination::Recipient { .. } => Vec::new(),
            };
            shipment.carries = carried.iter().map(|c| c.event.hash).collect();
            let d = e.emit(EventBody::ShipmentDispatched { shipment })?;
            if !carried.is_empty() {
                let at = e.clock.now().0;
                let key = e.tx.workstation_key(new_seed, at)?;
                let dispatch = e.tx.carried_event(d.id)?;
                let signer =
                    kura_domain::sign::SigningKey::from_seed(&key.seed).ok_or_else(|| {
                        AppError::input("key", "this workstation's shipment key is unusable")
                    })?;
                let bundle = Bundle {
                    kura_bundle: kura_domain::bundle::FORMAT,
                    shipment: id.clone(),
                    site: own.clone(),
                    signature: signer.sign(&kura_domain::bundle::message(&dispatch.event.hash)),
                    key: key.public,
                    dispatch,
                    events: carried,
                };
                e.tx.keep_bundle(&bundle, at)?;
            }
            Ok(e.signed.iter().find(|v| v.event == d.id).cloned())
        })?;
        tracing::info!(shipment = %id, tubes = tubes.len(), to = %destination.label(), "dispatched");
        Ok(Dispatched {
            shipment: id,
            destination: destination.label(),
            tubes: tubes.iter().map(|t| t.to_string()).collect(),
            boxes,
            distributed: destination.leaves_network(),
            signature,
        })
    }

    /// The shipments this bench knows, newest first.
    /// Shipments the registry brought that no bench here has taken yet come first (incoming,
    /// every tube on the way; `dispatched` is when they left).
    pub fn shipments(&self) -> Result<Vec<ShipmentSummary>, AppError> {
        self.may_read()?;
        let mut out = Vec::new();
        for b in self.store().inbox()? {
            // One that does not check is refused when it is taken; it is listed all the same.
            let Ok(EventBody::ShipmentDispatched { shipment: s }) =
                serde_json::from_str::<EventBody>(&b.dispatch.event.payload)
            else {
                continue;
            };
            out.push(ShipmentSummary {
                direction: "incoming".into(),
                destination: s.destination.label(),
                dispatched: self
                    .calendar()
                    .wall_with_offset(Timestamp(b.dispatch.event.at)),
                coolant: s.coolant.as_str().into(),
                courier: s.courier.clone(),
                tracking: s.tracking.clone(),
                tubes: s.specimens.len(),
                in_transit: s.specimens.len(),
                received_there: 0,
                shipment: s.id,
            });
        }
        for r in self.store().shipments()? {
            out.push(self.summary(r)?);
        }
        Ok(out)
    }

    fn summary(&self, r: kura_store::ShipmentRow) -> Result<ShipmentSummary, AppError> {
        let s = r.shipment;
        let receipted: std::collections::HashSet<String> = if r.incoming {
            Default::default()
        } else {
            self.store()
                .receipts(Some(&s.id))?
                .iter()
                .filter_map(|x| {
                    serde_json::from_str::<EventBody>(&x.event.payload)
                        .ok()
                        .and_then(|b| b.specimen().map(|c| c.to_string()))
                })
                .collect()
        };
        let mut in_transit = 0;
        for t in &s.specimens {
            if !receipted.contains(t.as_str())
                && self
                    .store()
                    .specimen(t)?
                    .is_some_and(|v| v.status == "in_transit")
            {
                in_transit += 1;
            }
        }
        Ok(ShipmentSummary {
            direction: if r.incoming { "incoming" } else { "outgoing" }.into(),
            destination: s.destination.label(),
            dispatched: self.calendar().wall_with_offset(Timestamp(r.dispatched_at)),
            coolant: s.coolant.as_str().into(),
            courier: s.courier.clone(),
            tracking: s.tracking.clone(),
            tubes: s.specimens.len(),
            in_transit,
            received_there: receipted.len(),
            shipment: s.id,
        })
    }

    /// One shipment's manifest as stored.
    pub fn shipment(&self, id: &str) -> Result<Shipment, AppError> {
        self.may_read()?;
        let id = id.trim().to_uppercase();
        self.store()
            .shipment(&id)?
            .map(|r| r.shipment)
            .ok_or(AppError::NotFound {
                what: "shipment",
                code: id,
            })
    }

    /// What the manifest PDF shows: the cover (sender, recipient, courier, temperature, the
    /// dry-ice line), a page per box with its grid, the tube list.
    pub fn manifest_data(&self, id: &str) -> Result<kura_labels::ManifestData, AppError> {
        self.may_read()?;
        let id = id.trim().to_uppercase();
        let row = self
            .store()
            .shipment(&id)?
            .ok_or_else(|| AppError::NotFound {
                what: "shipment",
                code: id.clone(),
            })?;
        let s = &row.shipment;
        let sender = match (self.own_site()?, self.id_format()) {
            (Some(site), _) => format!("site {site}"),
            (None, Ok(f)) => format!("site {}…", f.prefix),
            (None, Err(_)) => "this bench".into(),
        };
        let to = match &s.destination {
            Destination::Site { code } => format!("site {code}"),
            Destination::Recipient { name } => format!("{name} (outside the network)"),
        };
        let mut cover = vec![
            ("Shipment / 発送番号".to_string(), s.id.clone()),
            ("From / 発送元".into(), sender),
            ("To / 発送先".into(), to),
            (
                "Dispatched / 発送日時".into(),
                self.calendar()
                    .wall_with_offset(Timestamp(row.dispatched_at)),
            ),
            (
                "Temperature / 温度".into(),
                match s.coolant {
                    Coolant::DryIce => "dry ice / ドライアイス".into(),
                    Coolant::Ln2DryShipper => "LN2 dry shipper / 液体窒素ドライシッパー".into(),
                    Coolant::Ambient => "ambient / 常温".into(),
                    Coolant::Cold4C => "2–8 °C / 冷蔵".into(),
                },
            ),
            (
                "Tubes / 検体数".into(),
                format!("{} in {} box(es)", s.specimens.len(), boxes_of(s).len()),
            ),
        ];
        for (label, v) in [
            ("Courier / 運送業者", &s.courier),
            ("Tracking / 追跡番号", &s.tracking),
            ("Logger / 温度ロガー", &s.logger),
            ("MTA / 試料提供契約", &s.mta),
        ] {
            if let Some(v) = v {
                cover.push((label.into(), v.clone()));
            }
        }
        let mut pages = Vec::new();
        for b in boxes_of(s) {
            pages.push(self.packed_box(s, &b)?);
        }
        let mut tubes = Vec::new();
        for t in &s.specimens {
            let v = self.store().specimen(t)?;
            let place = s
                .packed
                .iter()
                .find(|p| &p.specimen == t)
                .map(|p| format!("{} {}", p.container, p.position))
                .unwrap_or_default();
            tubes.push(match v {
                Some(v) => vec![
                    t.to_string(),
                    v.sample_type.clone(),
                    v.quantity_milli
                        .map(|q| format!("{} {}", kg_free(q), v.unit.clone().unwrap_or_default()))
                        .unwrap_or_default(),
                    v.donor.clone(),
                    place,
                ],
                None => vec![
                    t.to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    place,
                ],
            });
        }
        Ok(kura_labels::ManifestData {
            shipment: s.id.clone(),
            title: "Shipment manifest / 発送明細書".into(),
            cover,
            dangerous_goods: s.dry_ice_line(),
            boxes: pages,
            columns: vec![
                ("Kura ID".into(), 48.0),
                ("Type / 種別".into(), 30.0),
                ("Volume / 量".into(), 28.0),
                ("Donor / 提供者（仮名）".into(), 40.0),
                ("Packed / 梱包位置".into(), 44.0),
            ],
            tubes,
            printed: format!(
                "Printed {} by {} / 印刷",
                self.calendar().wall_with_offset(self.now()),
                self.actor()
            ),
        })
    }

    /// A packed box's page: its grid as it was packed.
    fn packed_box(&self, s: &Shipment, code: &str) -> Result<kura_labels::BoxMapData, AppError> {
        let in_box: Vec<&Packed> = s.packed.iter().filter(|p| p.container == code).collect();
        let geometry = self.store().container_geometry(code)?;
        // A box this bench does not know the shape of: one row per tube.
        let (rows, cols, row_labels, col_labels) = geometry
            .as_ref()
            .and_then(crate::labels::grid_of)
            .unwrap_or_else(|| {
                (
                    in_box.len() as u16,
                    1,
                    in_box.iter().map(|p| p.position.clone()).collect(),
                    vec![String::new()],
                )
            });
        let mut cells = Vec::new();
        for (i, p) in in_box.iter().enumerate() {
            let pos = match &geometry {
                Some(g) => g.parse(&p.position).ok(),
                None => None,
            }
            .unwrap_or(kura_domain::Pos {
                row: i as u16,
                col: 0,
            });
            let v = self.store().specimen(&p.specimen)?;
            cells.push(kura_labels::BoxMapCell {
                row: pos.row,
                col: pos.col,
                label: p.position.clone(),
                code: Some(p.specimen.to_string()),
                kind: v
                    .as_ref()
                    .map(|v| v.sample_type.clone())
                    .unwrap_or_default(),
                date: v
                    .map(|v| self.calendar().date(Timestamp(v.registered_at)).to_string())
                    .unwrap_or_default(),
            });
        }
        Ok(kura_labels::BoxMapData {
            code: code.to_string(),
            name: code.to_string(),
            kind: "box".into(),
            path: format!("{} → {}", s.id, s.destination.label()),
            printed: String::new(),
            title: "Packed box / 梱包ボックス".into(),
            rows,
            cols,
            row_labels,
            col_labels,
            summary: format!(
                "{} tube(s) in this box / 本数 {}",
                in_box.len(),
                in_box.len()
            ),
            cells,
            matrix: Some(format!("{}/{}", s.id, code)),
        })
    }

    /// Writes a shipment's manifest PDF.
    pub fn print_manifest(&self, id: &str, out: &Path) -> Result<usize, AppError> {
        let data = self.manifest_data(id)?;
        let stock = crate::labels::stock("boxmap-a4")?;
        let r = kura_labels::render_manifest(&stock, &data).map_err(crate::labels::label_error)?;
        std::fs::write(out, &r.bytes).map_err(|e| crate::labels::file_err(out, e))?;
        Ok(r.pages)
    }
}

/// A new workstation key's seed, from the OS's random source.
fn new_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    crate::users::getrandom_fill(&mut seed);
    seed
}

/// The boxes a shipment was packed from, in packing order.
fn boxes_of(s: &Shipment) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in &s.packed {
        if !out.contains(&p.container) {
            out.push(p.container.clone());
        }
    }
    out
}

/// Thousandths as a plain number (`1500` → `1.5`).
fn kg_free(milli: i64) -> String {
    if milli < 0 {
        return format!("-{}", kg(milli.unsigned_abs() as u32));
    }
    kg(milli as u32)
}

/// How a tube arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Ok,
    /// Thawed on the way: a freeze–thaw cycle is counted.
    Thawed,
    /// Damaged or leaked: received, and blocked until someone looks at it.
    Damaged,
    Leaked,
}

impl Condition {
    pub fn parse(s: &str) -> Option<Condition> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "ok" => Condition::Ok,
            "thawed" => Condition::Thawed,
            "damaged" => Condition::Damaged,
            "leaked" => Condition::Leaked,
            _ => return None,
        })
    }
}

/// A reception reconciled against its manifest.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct Reconciled {
    pub shipment: String,
    /// Received now (into a box: with the position).
    pub received: Vec<crate::Placed>,
    /// On the manifest, not received yet: still in transit (a straggler can be received later).
    pub missing: Vec<String>,
    /// Scanned but not on the manifest: reported, never registered.
    pub unexpected: Vec<String>,
    /// Received damaged or leaked (and blocked).
    pub damaged: Vec<String>,
    /// Scanned again, received before.
    pub already: Vec<String>,
}

/// A bundle taken: the shipment now known here as incoming.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct Taken {
    pub shipment: String,
    /// The trusted key's name (None: through the registry, which vouched for its site).
    pub from: Option<String>,
    pub tubes: usize,
    /// It had been taken before (nothing new was recorded).
    pub again: bool,
}

/// This workstation's key for shipments, as the receiving site confirms it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    pub fingerprint: String,
    pub public: String,
}

/// One scan at reception: a tube, and perhaps its position and its condition (`CODE`,
/// `CODE B3`, `CODE damaged`, `CODE B3 thawed`).
struct ReceiptScan {
    code: String,
    position: Option<String>,
    condition: Option<Condition>,
}

fn receipt_scan(raw: &str) -> ReceiptScan {
    let mut words = raw.split_whitespace();
    let code = words.next().unwrap_or_default().to_string();
    let (mut position, mut condition) = (None, None);
    for w in words {
        match Condition::parse(w) {
            Some(c) => condition = Some(c),
            None => position = Some(w.to_string()),
        }
    }
    ReceiptScan {
        code,
        position,
        condition,
    }
}

impl Kura {
    /// This workstation's shipment-signing key (made now if it has none yet).
    pub fn workstation_key(&mut self) -> Result<KeyView, AppError> {
        let at = self.now().0;
        let key = self.write(|e| Ok(e.tx.workstation_key(new_seed, at)?))?;
        Ok(KeyView {
            fingerprint: kura_domain::sign::fingerprint(&key.public),
            public: key.public,
        })
    }

    /// Trusts a sending workstation's key for sealed shipments, by its fingerprint (as the
    /// sender's `kura key` shows it, confirmed out of band). An administrator's signed act on a
    /// database with users: run it in [`Kura::with_signature`] with `ManageUsers`.
    pub fn trust_key(&mut self, name: &str, fingerprint: &str) -> Result<(), AppError> {
        let name = input::text("name", name, 100)?;
        let hex: String = fingerprint
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        let fingerprint = kura_domain::sign::grouped(&hex);
        self.write(|e| {
            e.emit(EventBody::KeyTrusted { name, fingerprint })?;
            Ok(())
        })
    }

    /// The keys this site trusts: (fingerprint, name).
    pub fn trusted_keys(&self) -> Result<Vec<(String, String)>, AppError> {
        self.may_read()?;
        Ok(self
            .store()
            .trusted_keys()?
            .into_iter()
            .map(|(f, n, _)| (f, n))
            .collect())
    }

    /// A shipment's bundle as this bench made it at dispatch (for a sealed manifest).
    pub fn bundle(&self, shipment: &str) -> Result<Bundle, AppError> {
        self.may_read()?;
        let s = self.shipment(shipment)?;
        if let Destination::Recipient { .. } = s.destination {
            return Err(AppError::input(
                "shipment",
                format!(
                    "{} left the network: no site receives it, so it has no bundle",
                    s.id
                ),
            ));
        }
        self.store().bundle_of(&s.id)?.ok_or(AppError::NotFound {
            what: "shipment bundle",
            code: s.id,
        })
    }

    /// Writes a shipment's bundle as a sealed manifest file.
    pub fn write_sealed(&self, shipment: &str, out: &Path) -> Result<Bundle, AppError> {
        let b = self.bundle(shipment)?;
        let json =
            serde_json::to_vec_pretty(&b).map_err(|e| AppError::input("bundle", e.to_string()))?;
        std::fs::write(out, json).map_err(|e| crate::labels::file_err(out, e))?;
        Ok(b)
    }

    /// Reads a sealed manifest file (not yet checked).
    pub fn read_sealed(path: &Path) -> Result<Bundle, AppError> {
        let bytes = std::fs::read(path).map_err(|e| crate::labels::file_err(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| AppError::File {
            path: path.display().to_string(),
            message: format!("this is not a Kura sealed manifest: {e}"),
        })
    }

    /// Takes a bundle from another site: checked (every event's hash, the dispatch naming what
    /// it carries, the signature) and signed by a key this site trusts; kept apart, as
    /// received; its tubes recorded here in transit (`shipment_arrived`). Taking it again changes
    /// nothing.
    pub fn take_bundle(&mut self, b: Bundle) -> Result<Taken, AppError> {
        let shipment = b.check()?;
        let fingerprint = kura_domain::sign::fingerprint(&b.key);
        let from =
            self.store()
                .trusted_key(&fingerprint)?
                .ok_or_else(|| AppError::UntrustedKey {
                    shipment: shipment.id.clone(),
                    fingerprint: fingerprint.clone(),
                })?;
        self.take_checked(b, shipment, fingerprint, Some(from))
    }

    /// Takes the bundle of `shipment` the registry sent this site, if it did. The registry
    /// vouched for the sender (the bundle's dispatch is that workstation's acknowledged event, its
    /// key the one that workstation's first bundle bound); the bundle is still checked here.
    pub fn take_sent(&mut self, shipment: &str) -> Result<Option<Taken>, AppError> {
        let Some(b) = self.store().sent_bundle(shipment)? else {
            return Ok(None);
        };
        let s = b.check()?;
        let fingerprint = kura_domain::sign::fingerprint(&b.key);
        self.take_checked(b, s, fingerprint, None).map(Some)
    }

    fn take_checked(
        &mut self,
        b: Bundle,
        shipment: Shipment,
        fingerprint: String,
        from: Option<String>,
    ) -> Result<Taken, AppError> {
        let tubes = b.tubes(&shipment);
        if let Some(kept) = self.store().bundle_of(&shipment.id)? {
            if kept.dispatch.event.hash == b.dispatch.event.hash {
                return Ok(Taken {
                    shipment: shipment.id,
                    from,
                    tubes: tubes.len(),
                    again: true,
                });
            }
            return Err(AppError::input(
                "bundle",
                format!(
                    "a different bundle of shipment {} was taken here before: ask the sending site",
                    shipment.id
                ),
            ));
        }
        let Destination::Site { code: to } = &shipment.destination else {
            return Err(AppError::input(
                "bundle",
                format!("{} went to a recipient outside the network", shipment.id),
            ));
        };
        if let Some(here) = self.own_site()?
            && &here != to
        {
            return Err(AppError::WrongSite {
                shipment: shipment.id.clone(),
                to: to.clone(),
                here,
            });
        }
        let n = tubes.len();
        let id = shipment.id.clone();
        let at = self.now().0;
        self.write(|e| {
            e.tx.keep_bundle(&b, at)?;
            e.emit(EventBody::ShipmentArrived {
                shipment: shipment.clone(),
                dispatch: b.dispatch.event.hash,
                key: fingerprint.clone(),
                tubes: tubes.clone(),
            })?;
            Ok(())
        })?;
        tracing::info!(shipment = %id, tubes = n, from = ?from, "shipment arrived");
        Ok(Taken {
            shipment: id,
            from,
            tubes: n,
            again: false,
        })
    }

    /// Receives scanned tubes of an incoming shipment, in one transaction: each on the manifest
    /// and in transit is received (into `into`, at its scanned position or the next free one;
    /// thawed ones count a cycle; damaged or leaked ones are blocked), the rest reported. The
    /// answer reconciles the manifest: what is still missing stays in transit.
    pub fn receive(
        &mut self,
        shipment: &str,
        into: Option<&str>,
        scans: &[String],
        condition: Option<&str>,
    ) -> Result<Reconciled, AppError> {
        // A shipment the registry brought that no bench here has taken yet: take it now.
        let wanted = shipment.trim().to_uppercase();
        if self.store().shipment(&wanted)?.is_none() {
            self.take_sent(&wanted)?;
        }
        let s = self.shipment(shipment)?;
        let default = match condition {
            None => Condition::Ok,
            Some(c) => Condition::parse(c).ok_or_else(|| {
                AppError::input(
                    "condition",
                    format!("{c:?} is not a condition: use ok, thawed, damaged or leaked"),
                )
            })?,
        };
        let into = into.map(|b| self.container_code(b)).transpose()?;
        let mut plan = Vec::new();
        let mut unexpected = Vec::new();
        let mut already = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for raw in scans.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let r = receipt_scan(raw);
            // A scan of the box's DataMatrix (SHIPMENT/BOX) says which box is opened.
            if r.code.contains('/') {
                continue;
            }
            let code = match self.specimen_code(&r.code) {
                Ok(c) => c,
                Err(_) => {
                    unexpected.push(r.code.clone());
                    continue;
                }
            };
            if !s.specimens.contains(&code) {
                unexpected.push(code.to_string());
                continue;
            }
            if !seen.insert(code.clone()) {
                continue;
            }
            match self.store().specimen(&code)? {
                Some(v) if v.status == "in_transit" => plan.push((code, r)),
                _ => already.push(code.to_string()),
            }
        }
        let id = s.id.clone();
        let (received, damaged) = self.write(|e| {
            let mut received = Vec::new();
            let mut damaged = Vec::new();
            for (code, r) in plan {
                let placed = match &into {
                    Some(b) => {
                        let (p, label) = e.target(b, r.position.as_deref())?;
                        e.emit(EventBody::Received {
                            specimen: code.clone(),
                            shipment: id.clone(),
                            location: Some(kura_domain::Location {
                                container: b.clone(),
                                pos: p,
                            }),
                        })?;
                        crate::Placed::new(&code, b, p, label)
                    }
                    None => {
                        e.emit(EventBody::Received {
                            specimen: code.clone(),
                            shipment: id.clone(),
                            location: None,
                        })?;
                        crate::Placed::unplaced(&code)
                    }
                };
                match r.condition.unwrap_or(default) {
                    Condition::Ok => {}
                    Condition::Thawed => {
                        e.emit(EventBody::Thawed {
                            specimen: code.clone(),
                        })?;
                    }
                    c @ (Condition::Damaged | Condition::Leaked) => {
                        e.emit(EventBody::Blocked {
                            specimen: code.clone(),
                            reason: format!(
                                "arrived {} in shipment {id}",
                                if c == Condition::Damaged {
                                    "damaged"
                                } else {
                                    "leaked"
                                }
                            ),
                        })?;
                        damaged.push(code.to_string());
                    }
                }
                received.push(placed);
            }
            Ok((received, damaged))
        })?;
        let mut missing = Vec::new();
        for t in &s.specimens {
            if self
                .store()
                .specimen(t)?
                .is_some_and(|v| v.status == "in_transit")
            {
                missing.push(t.to_string());
            }
        }
        Ok(Reconciled {
            shipment: id,
            received,
            missing,
            unexpected,
            damaged,
            already,
        })
    }
}

impl Kura {
    /// Declares a tube of a shipment lost on the way: it must be on the manifest and still in
    /// transit. Irreversible, a supervisor's signed disposal: run it in
    /// [`Kura::with_signature`] with `Dispose`; the signature is returned.
    pub fn declare_lost(
        &mut self,
        shipment: &str,
        specimen: &str,
        reason: &str,
    ) -> Result<Option<crate::users::SignatureView>, AppError> {
        let s = self.shipment(shipment)?;
        let code = self.specimen_code(specimen)?;
        if !s.specimens.contains(&code) {
            return Err(AppError::input(
                "specimen",
                format!("{code} is not on the manifest of {}", s.id),
            ));
        }
        if self
            .store()
            .specimen(&code)?
            .is_none_or(|v| v.status != "in_transit")
        {
            return Err(AppError::Rule(kura_domain::RuleError::NotInTransit {
                specimen: code.to_string(),
            }));
        }
        let reason = input::reason(reason)?;
        self.dispose(
            code.as_str(),
            &format!("lost in shipment {}: {reason}", s.id),
        )
    }
}

/// A dispatch from the window: the shipment, and where its manifest (and sealed manifest) went.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct Shipped {
    pub dispatched: Dispatched,
    /// The manifest PDF (in the labels folder next to the database).
    pub manifest: String,
    pub pages: usize,
    /// The sealed manifest file, when asked for.
    pub sealed: Option<String>,
}

impl Kura {
    /// Ships (see [`Kura::ship`]) and writes the manifest PDF, and with `sealed` the sealed
    /// manifest, into [`Kura::labels_dir`] as `SHIPMENT.pdf` and `SHIPMENT.kura-shipment`.
    pub fn ship_to_files(&mut self, form: &ShipForm, sealed: bool) -> Result<Shipped, AppError> {
        let dir = self.labels_dir();
        std::fs::create_dir_all(&dir).map_err(|e| crate::labels::file_err(&dir, e))?;
        let dispatched = self.ship(form)?;
        let manifest = dir.join(format!("{}.pdf", dispatched.shipment));
        let pages = self.print_manifest(&dispatched.shipment, &manifest)?;
        let sealed = if sealed && !dispatched.distributed {
            let path = dir.join(format!("{}.kura-shipment", dispatched.shipment));
            self.write_sealed(&dispatched.shipment, &path)?;
            Some(path.display().to_string())
        } else {
            None
        };
        Ok(Shipped {
            dispatched,
            manifest: manifest.display().to_string(),
            pages,
            sealed,
        })
    }
}
