//! `kura demo`: deterministic synthetic data for a realistic bank. The same seed and size give
//! the same specimens, containers, times and event ids.
//!
//! Layout: one site with a −80 °C freezer room (upright freezers of 20 racks × 20 boxes; 9 × 9
//! boxes for blood fractions and brain tissue, SBS 8 × 12 racks of pre-barcoded DNA tubes) and
//! a liquid-nitrogen room (tanks of 8 racks × 13 boxes of 10 × 10 for iPS cell vials).
//! Donors give blood (parent + 4 plasma + 2 serum + buffy coat + a DNA derivative), a few give
//! iPS lines or post-mortem brain. Some specimens are checked out, consumed, disposed; some
//! donors have withdrawn consent and their specimens are blocked.

use std::sync::Arc;

use kura_domain::container::{ContainerKind, ContainerSpec, Temperature};
use kura_domain::id::{ContainerId, SpecimenCode};
use kura_domain::position::{FillOrder, Geometry, Scheme};
use kura_domain::specimen::{Quantity, SampleType, SpecimenRecord};
use kura_domain::time::SteppingClock;
use kura_domain::{Clock, EventBody, Location, Pos, Purpose, Timestamp};
use serde::Serialize;

use crate::{AppError, Emit, EventIds, Kura, Progress};

/// SplitMix64: small, fast, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

struct DemoIds(Rng);

impl EventIds for DemoIds {
    fn next(&mut self, at: Timestamp) -> uuid::Uuid {
        let r = self.0.next_u64().to_le_bytes();
        let s = self.0.next_u64().to_le_bytes();
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&r);
        b[8..].copy_from_slice(&s[..2]);
        uuid::Builder::from_unix_timestamp_millis(at.millis(), &b).into_uuid()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    pub specimens: u64,
    pub containers: u64,
    pub events: u64,
    pub seconds: f64,
    pub specimens_per_second: f64,
}

const STUDIES: &[&str] = &[
    "がんゲノム研究 2024",
    "認知症コホート研究",
    "Diabetes prospective cohort",
    "小児希少疾患研究",
    "Cardiovascular registry",
    "感染症バイオバンク",
];
const IPS_STUDY: &str = "iPS細胞バンク";
const BRAIN_STUDY: &str = "Brain Bank 死後脳研究";
const HOLDERS: &[&str] = &[
    "佐藤 (Lab 3)",
    "Dr. Tanaka, Genomics Core",
    "鈴木 QC",
    "Proteomics Unit",
];

/// Fills boxes of one kind in order, creating freezers, racks and boxes as they are needed.
struct Shelf {
    prefix: &'static str,
    unit_kind: ContainerKind,
    unit_type: &'static str,
    unit_geometry: Geometry,
    unit_temp: Temperature,
    racks_per_unit: u16,
    rack_type: &'static str,
    rack_geometry: Geometry,
    box_type: &'static str,
    box_kind: ContainerKind,
    box_geometry: Geometry,
    room: &'static str,
    units: u32,
    racks_in_unit: u16,
    boxes_in_rack: u16,
    current: Option<(ContainerId, Vec<Pos>, usize)>,
}

fn grid(rows: u16, cols: u16, rs: Scheme) -> Geometry {
    Geometry::Grid {
        rows,
        cols,
        row_scheme: rs,
        col_scheme: Scheme::Numbers,
        fill: FillOrder::default(),
    }
}

impl Shelf {
    /// A −80 °C freezer room's shelf: freezers of 20 racks × 20 boxes of `box_type`.
    fn minus80(
        prefix: &'static str,
        box_type: &'static str,
        box_kind: ContainerKind,
        box_geometry: Geometry,
    ) -> Shelf {
        use kura_domain::position::Scheme::Numbers;
        Shelf {
            prefix,
            unit_kind: ContainerKind::Freezer,
            unit_type: "freezer-20-racks",
            unit_geometry: Geometry::Linear {
                slots: 20,
                scheme: Numbers,
            },
            unit_temp: Temperature::Minus80,
            racks_per_unit: 20,
            rack_type: "rack-5x4",
            rack_geometry: grid(5, 4, Numbers),
            box_type,
            box_kind,
            box_geometry,
            room: "DEMO-B1-FRZ",
            units: 0,
            racks_in_unit: 0,
            boxes_in_rack: 0,
            current: None,
        }
    }

    fn next_slot(&mut self, e: &mut Emit<'_, '_>, counter: &mut u64) -> Result<Location, AppError> {
        if let Some((id, seq, i)) = &mut self.current
            && *i < seq.len()
        {
            let p = seq[*i];
            *i += 1;
            return Ok(Location {
                container: id.clone(),
                pos: p,
            });
        }
        // Need a new box; maybe a new rack; maybe a new freezer.
        let rack_capacity = self.rack_geometry.capacity().unwrap_or(1) as u16;
        if self.units == 0
            || (self.racks_in_unit >= self.racks_per_unit && self.boxes_in_rack >= rack_capacity)
        {
            self.units += 1;
            self.racks_in_unit = 0;
            self.boxes_in_rack = rack_capacity;
            let id = ContainerId::from_stored(format!("{}-{:02}", self.prefix, self.units));
            let name = match self.unit_kind {
                ContainerKind::Dewar => format!("LN2 tank {}-{:02}", self.prefix, self.units),
                _ => format!("−80 °C freezer {}-{:02}", self.prefix, self.units),
            };
            e.emit(EventBody::ContainerCreated {
                container: ContainerSpec {
                    id,
                    kind: self.unit_kind,
                    name,
                    type_name: self.unit_type.into(),
                    geometry: self.unit_geometry.clone(),
                    temperature: Some(self.unit_temp),
                    parent: Some(ContainerId::from_stored(self.room.into())),
                    pos: None,
                },
            })?;
            *counter += 1;
        }
        let unit = ContainerId::from_stored(format!("{}-{:02}", self.prefix, self.units));
        if self.boxes_in_rack >= rack_capacity {
            self.racks_in_unit += 1;
            self.boxes_in_rack = 0;
            let rack = ContainerId::from_stored(format!("{}-R{:02}", unit, self.racks_in_unit));
            e.emit(EventBody::ContainerCreated {
                container: ContainerSpec {
                    id: rack,
                    kind: ContainerKind::Rack,
                    name: format!("Rack {}", self.racks_in_unit),
                    type_name: self.rack_type.into(),
                    geometry: self.rack_geometry.clone(),
                    temperature: None,
                    parent: Some(unit.clone()),
                    pos: Some(
                        self.unit_geometry.fill_sequence()[usize::from(self.racks_in_unit - 1)],
                    ),
                },
            })?;
            *counter += 1;
        }
        let rack = ContainerId::from_stored(format!("{}-R{:02}", unit, self.racks_in_unit));
        self.boxes_in_rack += 1;
        let bx = ContainerId::from_stored(format!("{}-B{:02}", rack, self.boxes_in_rack));
        e.emit(EventBody::ContainerCreated {
            container: ContainerSpec {
                id: bx.clone(),
                kind: self.box_kind,
                name: format!("Box {}", self.boxes_in_rack),
                type_name: self.box_type.into(),
                geometry: self.box_geometry.clone(),
                temperature: None,
                parent: Some(rack),
                pos: Some(self.rack_geometry.fill_sequence()[usize::from(self.boxes_in_rack - 1)]),
            },
        })?;
        *counter += 1;
        let seq = self.box_geometry.fill_sequence();
        let p = seq[0];
        self.current = Some((bx.clone(), seq, 1));
        Ok(Location {
            container: bx,
            pos: p,
        })
    }
}

struct Demo {
    rng: Rng,
    freezer: Shelf,
    tubes: Shelf,
    ln2: Shelf,
    donor: u64,
    tube_serial: u64,
    containers: u64,
    specimens: u64,
}

fn rec(
    code: SpecimenCode,
    ty: &str,
    container: &str,
    storage: &str,
    qty: Option<(i64, kura_domain::specimen::Unit)>,
    study: &str,
    donor: &str,
    collected: Timestamp,
    parent: Option<&SpecimenCode>,
) -> SpecimenRecord {
    SpecimenRecord {
        code,
        // Cannot fail: the demo's types are constants from the SPREC table.
        #[allow(clippy::expect_used)]
        sample_type: SampleType::parse(ty).expect("demo types are known"),
        container: container.into(),
        storage: storage.into(),
        quantity: qty.map(|(milli, unit)| Quantity { milli, unit }),
        study: study.into(),
        donor: donor.into(),
        collected_at: Some(collected),
        parent: parent.cloned(),
        freeze_thaw: 0,
    }
}

impl Demo {
    fn new(seed: u64) -> Demo {
        use kura_domain::position::Scheme::*;
        Demo {
            rng: Rng::new(seed),
            freezer: Shelf::minus80("F80", "box-9x9", ContainerKind::Box, grid(9, 9, Letters)),
            tubes: Shelf::minus80(
                "F80T",
                "sbs-8x12",
                ContainerKind::TubeRack,
                grid(8, 12, Letters),
            ),
            ln2: Shelf {
                prefix: "LN2",
                unit_kind: ContainerKind::Dewar,
                unit_type: "dewar-8-racks",
                unit_geometry: Geometry::Linear {
                    slots: 8,
                    scheme: Numbers,
                },
                unit_temp: Temperature::LnVapour,
                racks_per_unit: 8,
                rack_type: "rack-13",
                rack_geometry: Geometry::Linear {
                    slots: 13,
                    scheme: Numbers,
                },
                box_type: "box-10x10",
                box_kind: ContainerKind::Box,
                box_geometry: grid(10, 10, Letters),
                room: "DEMO-B1-LN2",
                units: 0,
                racks_in_unit: 0,
                boxes_in_rack: 0,
                current: None,
            },
            donor: 0,
            tube_serial: 6_550_000,
            containers: 0,
            specimens: 0,
        }
    }

    fn site(&mut self, e: &mut Emit<'_, '_>) -> Result<(), AppError> {
        let mk = |id: &str, kind, name: &str, parent: Option<&str>| EventBody::ContainerCreated {
            container: ContainerSpec {
                id: ContainerId::from_stored(id.into()),
                kind,
                name: name.into(),
                type_name: kind_type(kind).into(),
                geometry: Geometry::Unpositioned,
                temperature: None,
                parent: parent.map(|p| ContainerId::from_stored(p.into())),
                pos: None,
            },
        };
        fn kind_type(k: ContainerKind) -> &'static str {
            k.as_str()
        }
        e.emit(mk("DEMO", ContainerKind::Site, "Kura Demo Biobank", None))?;
        e.emit(mk(
            "DEMO-B1-FRZ",
            ContainerKind::Room,
            "B1 フリーザー室",
            Some("DEMO"),
        ))?;
        e.emit(mk(
            "DEMO-B1-LN2",
            ContainerKind::Room,
            "B1 液体窒素室",
            Some("DEMO"),
        ))?;
        e.emit(mk(
            "DEMO-1F-LAB",
            ContainerKind::Room,
            "1F Processing lab",
            Some("DEMO"),
        ))?;
        self.containers += 4;
        Ok(())
    }

    /// One donor's collection, stored. Returns the specimens made.
    fn family(&mut self, e: &mut Emit<'_, '_>, budget: u64) -> Result<Vec<SpecimenCode>, AppError> {
        use kura_domain::specimen::Unit;
        self.donor += 1;
        let donor = format!("D{:07}", self.donor);
        let now = e.clock.now();
        let collected = Timestamp(now.0 - 3_600_000_000 * (2 + self.rng.below(6) as i64));
        let roll = self.rng.below(100);
        let mut made = Vec::new();
        let mut emit = |e: &mut Emit<'_, '_>,
                        shelf: &mut Shelf,
                        record: SpecimenRecord,
                        derived: bool,
                        counter: &mut u64|
         -> Result<(), AppError> {
            let location = Some(shelf.next_slot(e, counter)?);
            made.push(record.code.clone());
            if derived {
                e.emit(EventBody::Derived {
                    aliquot: record.sample_type.code() != "DNA",
                    specimen: record,
                    location,
                })?;
            } else {
                e.emit(EventBody::Registered {
                    specimen: record,
                    location,
                })?;
            }
            Ok(())
        };
        if roll < 4 && budget >= 6 {
            // An iPS line: the parent and 5 vials in liquid nitrogen.
            let ids = e.issue_ids(6)?;
            let p = ids[0].clone();
            emit(
                e,
                &mut self.ln2,
                rec(
                    p.clone(),
                    "IPS",
                    "SCI",
                    "E",
                    Some((1_000_000, Unit::Cells)),
                    IPS_STUDY,
                    &donor,
                    collected,
                    None,
                ),
                false,
                &mut self.containers,
            )?;
            for c in &ids[1..] {
                emit(
                    e,
                    &mut self.ln2,
                    rec(
                        c.clone(),
                        "IPS",
                        "SCI",
                        "E",
                        Some((1_000_000, Unit::Cells)),
                        IPS_STUDY,
                        &donor,
                        collected,
                        Some(&p),
                    ),
                    true,
                    &mut self.containers,
                )?;
            }
        } else if roll < 6 && budget >= 5 {
            // Post-mortem brain: the block and 4 pieces.
            let ids = e.issue_ids(5)?;
            let p = ids[0].clone();
            emit(
                e,
                &mut self.freezer,
                rec(
                    p.clone(),
                    "PMB",
                    "ZZZ",
                    "A",
                    Some((2_000, Unit::Mg)),
                    BRAIN_STUDY,
                    &donor,
                    collected,
                    None,
                ),
                false,
                &mut self.containers,
            )?;
            for c in &ids[1..] {
                emit(
                    e,
                    &mut self.freezer,
                    rec(
                        c.clone(),
                        "PMB",
                        "ZZZ",
                        "A",
                        Some((200, Unit::Mg)),
                        BRAIN_STUDY,
                        &donor,
                        collected,
                        Some(&p),
                    ),
                    true,
                    &mut self.containers,
                )?;
            }
        } else {
            // Blood: whole blood, 4 plasma, 2 serum, buffy coat, and DNA in a pre-barcoded tube.
            let n = budget.min(9);
            let ids = e.issue_ids(n.min(8))?;
            let study = STUDIES[self.rng.below(STUDIES.len() as u64) as usize];
            let p = ids[0].clone();
            emit(
                e,
                &mut self.freezer,
                rec(
                    p.clone(),
                    "BLD",
                    "PED",
                    "A",
                    Some((2_000, Unit::Ml)),
                    study,
                    &donor,
                    collected,
                    None,
                ),
                false,
                &mut self.containers,
            )?;
            let kinds = ["PL1", "PL1", "PL1", "PL1", "SER", "SER", "BUF"];
            for (c, ty) in ids[1..].iter().zip(kinds) {
                let container = if ty == "SER" { "SST" } else { "PED" };
                emit(
                    e,
                    &mut self.freezer,
                    rec(
                        c.clone(),
                        ty,
                        container,
                        "A",
                        Some((500, Unit::Ml)),
                        study,
                        &donor,
                        collected,
                        Some(&p),
                    ),
                    true,
                    &mut self.containers,
                )?;
            }
            if n == 9 {
                self.tube_serial += 1;
                // Cannot fail: "FS" and eight digits is a valid tube code.
                #[allow(clippy::expect_used)]
                let tube = SpecimenCode::external(&format!("FS{:08}", self.tube_serial))
                    .expect("valid tube code");
                emit(
                    e,
                    &mut self.tubes,
                    rec(
                        tube,
                        "DNA",
                        "SCI",
                        "A",
                        Some((50, Unit::Ug)),
                        study,
                        &donor,
                        collected,
                        Some(&p),
                    ),
                    true,
                    &mut self.containers,
                )?;
            }
        }
        self.specimens += made.len() as u64;
        // What happened to them since.
        let withdrawn = self.donor.is_multiple_of(157);
        for code in &made {
            let r = self.rng.below(1000);
            if r < 30 {
                let due = (e.clock.now().to_datetime() + chrono::Duration::days(14)).date_naive();
                e.emit(EventBody::CheckedOut {
                    specimen: code.clone(),
                    to: HOLDERS[self.rng.below(HOLDERS.len() as u64) as usize].into(),
                    purpose: [Purpose::Analysis, Purpose::Qc, Purpose::Distribution]
                        [self.rng.below(3) as usize],
                    due: Some(due),
                    note: None,
                })?;
            } else if r < 40 {
                e.emit(EventBody::Consumed {
                    specimen: code.clone(),
                    amount: None,
                    used_up: true,
                })?;
            } else if r < 48 {
                e.emit(EventBody::Disposed {
                    specimen: code.clone(),
                    reason: "tube cracked at thaw / 融解時の破損".into(),
                })?;
            } else if r < 60 {
                e.emit(EventBody::Thawed {
                    specimen: code.clone(),
                })?;
            }
        }
        if withdrawn {
            for code in &made {
                if e.tx.specimen(code)?.is_some_and(|s| !s.status().is_final()) {
                    e.emit(EventBody::Blocked {
                        specimen: code.clone(),
                        reason: "consent withdrawn / 同意撤回".into(),
                    })?;
                }
            }
        }
        Ok(made)
    }
}

impl Kura {
    /// Creates `n` synthetic specimens (and their storage) deterministically from `seed`.
    /// Refuses a database that already holds specimens.
    pub fn demo(
        &mut self,
        n: u64,
        seed: u64,
        progress: Progress<'_>,
    ) -> Result<DemoReport, AppError> {
        let start = std::time::Instant::now();
        let before = self.stats()?;
        if before.specimens > 0 || before.containers > 0 {
            return Err(AppError::input(
                "db",
                format!(
                    "{} already holds data; give `--db` a new file for the demo",
                    self.path().display()
                ),
            ));
        }
        if !self.is_initialised()? {
            self.init("DEMO", 7)?;
        }
        if self.secured()? {
            return Err(AppError::input(
                "demo",
                "this database has users: demo data goes only into a new database",
            ));
        }
        self.store_mut().set_cache_mib(256)?;
        self.store_mut().set_bulk(true)?;
        self.store().drop_search_indexes_for(n)?;
        // Demo time runs from 2024-04-01 across about 900 days, the same on every run.
        // Cannot fail: a constant RFC 3339 time.
        #[allow(clippy::expect_used)]
        let t0 = Timestamp::parse("2024-04-01T00:00:00Z").expect("valid");
        let step = (900 * 86_400_000_000i64 / (n.max(1) as i64 * 2)).max(1);
        let clock: Arc<dyn Clock> = Arc::new(SteppingClock::new(t0, step));
        let actor = "demo".to_string();
        // Demo dates are UTC dates, so that a seed makes the same database in every zone.
        let calendar = crate::Calendar::utc();
        let mut ids = DemoIds(Rng::new(seed.wrapping_add(1)));
        let mut demo = Demo::new(seed);
        let events_before = before.events as u64;
        let mut first = true;
        progress(0, n);
        while demo.specimens < n {
            self.store_mut().write(|tx| -> Result<(), AppError> {
                let mut e = Emit {
                    tx,
                    clock: &*clock,
                    calendar: &calendar,
                    actor: &actor,
                    // Demo data goes only into a database without users (checked above).
                    auth: None,
                    ids: &mut ids,
                    id_format: None,
                    signer: None,
                    signed: Vec::new(),
                };
                if first {
                    demo.site(&mut e)?;
                    first = false;
                }
                let batch_end = (demo.specimens + 20_000).min(n);
                while demo.specimens < batch_end {
                    demo.family(&mut e, batch_end - demo.specimens)?;
                }
                Ok(())
            })?;
            progress(demo.specimens, n);
        }
        self.store().build_search_indexes()?;
        self.store_mut().set_bulk(false)?;
        let secs = start.elapsed().as_secs_f64();
        let stats = self.stats()?;
        Ok(DemoReport {
            specimens: demo.specimens,
            containers: demo.containers,
            events: stats.events as u64 - events_before,
            seconds: secs,
            specimens_per_second: demo.specimens as f64 / secs.max(1e-9),
        })
    }
}
