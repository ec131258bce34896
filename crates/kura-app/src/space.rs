//! Room at a glance: where N new tubes fit. Free positions of the boxes (tube racks, canes)
//! under a container, by container type and per freezer and rack, and the boxes that take N
//! tubes in the order a technician would fill them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{AppError, Kura};

/// Free room in one place (a freezer, a rack, …): its boxes' positions.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Room {
    pub code: String,
    pub kind: String,
    pub path: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub capacity: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub free: u64,
    /// Taken share, 0–1 (the heat map's colour).
    pub fill: f64,
}

/// Free room of one container type.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeRoom {
    pub type_name: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub boxes: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub free: u64,
}

/// A box and how many of the new tubes go into it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Take {
    pub code: String,
    pub path: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub tubes: u64,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Space {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub free: u64,
    pub by_type: Vec<TypeRoom>,
    /// Every container above the boxes (sites, rooms, freezers, racks …), with its boxes' room.
    pub places: Vec<Room>,
    /// With `need`: the boxes that take them, fullest first (fill what is open before a new box).
    pub takes: Vec<Take>,
    /// With `need`: whether they all fit.
    pub fits: Option<bool>,
}

impl Kura {
    /// Where `need` new tubes fit under `under` (everything without), in boxes of `type_name`
    /// (any without).
    pub fn space(
        &self,
        type_name: Option<&str>,
        need: Option<u64>,
        under: Option<&str>,
    ) -> Result<Space, AppError> {
        self.may_read()?;
        let start = under.map(|u| self.container_code(u)).transpose()?;
        // Walk the tree from `under` (or the roots); each box's free room counts for every
        // container above it.
        let mut stack: Vec<(kura_store::ContainerRow, Vec<usize>)> = Vec::new();
        let mut places: Vec<Room> = Vec::new();
        let mut boxes: Vec<(kura_store::ContainerRow, u64)> = Vec::new();
        let roots = match &start {
            Some(s) => vec![
                self.container_row(s.as_str())?
                    .ok_or_else(|| AppError::NotFound {
                        what: "container",
                        code: s.to_string(),
                    })?,
            ],
            None => self.store().containers(None)?,
        };
        for r in roots.into_iter().rev() {
            stack.push((r, Vec::new()));
        }
        while let Some((c, above)) = stack.pop() {
            let holds_tubes = ["box", "tube_rack", "cane"].contains(&c.kind.as_str());
            if holds_tubes {
                if type_name.is_none_or(|t| t == c.type_name) {
                    let cap = c.capacity.unwrap_or(0) as u64;
                    let free = cap.saturating_sub(c.specimens.max(0) as u64);
                    for &i in &above {
                        places[i].capacity += cap;
                        places[i].free += free;
                    }
                    boxes.push((c, free));
                }
                continue;
            }
            let i = places.len();
            places.push(Room {
                code: c.code.clone(),
                kind: c.kind.clone(),
                path: c.path.clone(),
                capacity: 0,
                free: 0,
                fill: 0.0,
            });
            let mut below = above.clone();
            below.push(i);
            for k in self.store().containers(Some(&c.code))?.into_iter().rev() {
                stack.push((k, below.clone()));
            }
        }
        for p in &mut places {
            p.fill = if p.capacity == 0 {
                0.0
            } else {
                1.0 - p.free as f64 / p.capacity as f64
            };
        }
        places.retain(|p| p.capacity > 0);
        let mut by_type: BTreeMap<String, TypeRoom> = BTreeMap::new();
        for (b, free) in &boxes {
            let t = by_type.entry(b.type_name.clone()).or_insert(TypeRoom {
                type_name: b.type_name.clone(),
                boxes: 0,
                free: 0,
            });
            t.boxes += 1;
            t.free += free;
        }
        let free: u64 = boxes.iter().map(|(_, f)| f).sum();
        let mut takes = Vec::new();
        let mut fits = None;
        if let Some(n) = need {
            let mut open: Vec<&(kura_store::ContainerRow, u64)> =
                boxes.iter().filter(|(_, f)| *f > 0).collect();
            // Fullest first: open boxes are filled before an empty one is started.
            open.sort_by_key(|(b, f)| (*f, b.path.clone()));
            let mut left = n;
            for (b, f) in open {
                if left == 0 {
                    break;
                }
                let t = left.min(*f);
                takes.push(Take {
                    code: b.code.clone(),
                    path: b.path.clone(),
                    tubes: t,
                });
                left -= t;
            }
            fits = Some(left == 0);
        }
        Ok(Space {
            free,
            by_type: by_type.into_values().collect(),
            places,
            takes,
            fits,
        })
    }

    /// One container's row, found by walking the tree (layouts are hundreds of containers).
    fn container_row(&self, code: &str) -> Result<Option<kura_store::ContainerRow>, AppError> {
        let mut stack = self.store().containers(None)?;
        while let Some(c) = stack.pop() {
            if c.code == code {
                return Ok(Some(c));
            }
            stack.extend(self.store().containers(Some(&c.code))?);
        }
        Ok(None)
    }
}
