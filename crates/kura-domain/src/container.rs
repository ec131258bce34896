//! The storage hierarchy: site › room › freezer or dewar › shelf/rack/tower › box/cane › position.

use serde::{Deserialize, Serialize};

use crate::id::ContainerId;
use crate::position::{Geometry, Pos};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerKind {
    Site,
    Room,
    Freezer,
    Refrigerator,
    /// A liquid-nitrogen tank.
    Dewar,
    Shelf,
    /// A freezer rack, tower or drawer: holds boxes.
    Rack,
    /// A canister inside a dewar: holds canes or boxes.
    Canister,
    /// A cryobox: holds tubes.
    Box,
    /// An SBS 8 × 12 rack of 2D-barcoded tubes: holds tubes.
    TubeRack,
    /// A cane of straws or vials in a canister.
    Cane,
}

impl ContainerKind {
    pub const ALL: [ContainerKind; 11] = [
        ContainerKind::Site,
        ContainerKind::Room,
        ContainerKind::Freezer,
        ContainerKind::Refrigerator,
        ContainerKind::Dewar,
        ContainerKind::Shelf,
        ContainerKind::Rack,
        ContainerKind::Canister,
        ContainerKind::Box,
        ContainerKind::TubeRack,
        ContainerKind::Cane,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContainerKind::Site => "site",
            ContainerKind::Room => "room",
            ContainerKind::Freezer => "freezer",
            ContainerKind::Refrigerator => "refrigerator",
            ContainerKind::Dewar => "dewar",
            ContainerKind::Shelf => "shelf",
            ContainerKind::Rack => "rack",
            ContainerKind::Canister => "canister",
            ContainerKind::Box => "box",
            ContainerKind::TubeRack => "tube_rack",
            ContainerKind::Cane => "cane",
        }
    }

    pub fn parse(s: &str) -> Option<ContainerKind> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        ContainerKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether specimens (tubes) go directly into this kind of container.
    pub fn holds_specimens(self) -> bool {
        matches!(
            self,
            ContainerKind::Box | ContainerKind::TubeRack | ContainerKind::Cane
        )
    }

    /// Whether a container of kind `child` may be placed in one of this kind.
    pub fn can_hold(self, child: ContainerKind) -> bool {
        use ContainerKind::*;
        match self {
            Site => matches!(child, Room),
            Room => matches!(child, Freezer | Refrigerator | Dewar | Shelf),
            Freezer | Refrigerator => matches!(child, Shelf | Rack | Box | TubeRack),
            Dewar => matches!(child, Canister | Rack),
            Shelf => matches!(child, Rack | Box | TubeRack),
            Rack => matches!(child, Box | TubeRack),
            Canister => matches!(child, Cane | Box),
            Box | TubeRack | Cane => false,
        }
    }
}

/// Storage temperature tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Temperature {
    Room,
    Fridge,
    Minus20,
    Minus80,
    /// Liquid-nitrogen vapour phase, below −135 °C.
    LnVapour,
    /// Liquid nitrogen, −196 °C.
    LnLiquid,
}

impl Temperature {
    pub fn parse(s: &str) -> Option<Temperature> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "room" | "rt" => Temperature::Room,
            "fridge" | "4" | "2-10" => Temperature::Fridge,
            "-20" | "minus20" => Temperature::Minus20,
            "-80" | "minus80" => Temperature::Minus80,
            "ln_vapour" | "ln-vapour" | "vapour" | "-150" => Temperature::LnVapour,
            "ln_liquid" | "ln-liquid" | "ln2" | "-196" => Temperature::LnLiquid,
            _ => return None,
        })
    }
    pub fn label(self) -> &'static str {
        match self {
            Temperature::Room => "room temperature",
            Temperature::Fridge => "2–10 °C",
            Temperature::Minus20 => "−20 °C",
            Temperature::Minus80 => "−80 °C",
            Temperature::LnVapour => "LN2 vapour (< −135 °C)",
            Temperature::LnLiquid => "LN2 liquid (−196 °C)",
        }
    }
}

/// Everything recorded about a container when it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub id: ContainerId,
    pub kind: ContainerKind,
    pub name: String,
    /// The container type's name, e.g. `box-9x9`.
    #[serde(rename = "type")]
    pub type_name: String,
    pub geometry: Geometry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Temperature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ContainerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<Pos>,
}

/// A built-in catalogue of container types; a layout file may use these names or spell out its own.
pub fn builtin_type(name: &str) -> Option<(ContainerKind, Geometry)> {
    use crate::position::{FillOrder, Scheme};
    let g = |rows, cols, rs| Geometry::Grid {
        rows,
        cols,
        row_scheme: rs,
        col_scheme: Scheme::Numbers,
        fill: FillOrder::default(),
    };
    Some(match name {
        "box-9x9" => (ContainerKind::Box, g(9, 9, Scheme::Letters)),
        "box-9x9-skip-i" => (ContainerKind::Box, g(9, 9, Scheme::LettersSkipI)),
        "box-10x10" => (ContainerKind::Box, g(10, 10, Scheme::Letters)),
        "box-5x5" => (ContainerKind::Box, g(5, 5, Scheme::Letters)),
        "sbs-8x12" => (ContainerKind::TubeRack, g(8, 12, Scheme::Letters)),
        "sbs-6x8" => (ContainerKind::TubeRack, g(6, 8, Scheme::Letters)),
        "sbs-4x6" => (ContainerKind::TubeRack, g(4, 6, Scheme::Letters)),
        "rack-5x4" => (ContainerKind::Rack, g(5, 4, Scheme::Numbers)),
        "rack-4x4" => (ContainerKind::Rack, g(4, 4, Scheme::Numbers)),
        "rack-13" => (
            ContainerKind::Rack,
            Geometry::Linear {
                slots: 13,
                scheme: Scheme::Numbers,
            },
        ),
        "canister-6" => (
            ContainerKind::Canister,
            Geometry::Linear {
                slots: 6,
                scheme: Scheme::Numbers,
            },
        ),
        "cane-6" => (
            ContainerKind::Cane,
            Geometry::Linear {
                slots: 6,
                scheme: Scheme::Numbers,
            },
        ),
        "freezer-5-shelves" => (
            ContainerKind::Freezer,
            Geometry::Linear {
                slots: 5,
                scheme: Scheme::Roman,
            },
        ),
        "dewar-6" => (
            ContainerKind::Dewar,
            Geometry::Linear {
                slots: 6,
                scheme: Scheme::Numbers,
            },
        ),
        "shelf" => (
            ContainerKind::Shelf,
            Geometry::Linear {
                slots: 6,
                scheme: Scheme::Numbers,
            },
        ),
        "site" => (ContainerKind::Site, Geometry::Unpositioned),
        "room" => (ContainerKind::Room, Geometry::Unpositioned),
        "freezer" => (ContainerKind::Freezer, Geometry::Unpositioned),
        "dewar" => (ContainerKind::Dewar, Geometry::Unpositioned),
        _ => return None,
    })
}

pub const BUILTIN_TYPES: &[&str] = &[
    "site",
    "room",
    "freezer",
    "freezer-5-shelves",
    "dewar",
    "dewar-6",
    "shelf",
    "rack-5x4",
    "rack-4x4",
    "rack-13",
    "canister-6",
    "cane-6",
    "box-9x9",
    "box-9x9-skip-i",
    "box-10x10",
    "box-5x5",
    "sbs-8x12",
    "sbs-6x8",
    "sbs-4x6",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_rules() {
        use ContainerKind::*;
        let cases = [
            (Site, Room, true),
            (Room, Freezer, true),
            (Freezer, Rack, true),
            (Rack, Box, true),
            (Box, Box, false),
            (Room, Box, false),
            (Dewar, Canister, true),
            (Canister, Cane, true),
            (Freezer, Room, false),
        ];
        for (p, c, ok) in cases {
            assert_eq!(p.can_hold(c), ok, "{p:?} holding {c:?}");
        }
        assert!(Box.holds_specimens() && TubeRack.holds_specimens() && !Rack.holds_specimens());
    }

    #[test]
    fn builtin_types_exist() {
        for name in BUILTIN_TYPES {
            assert!(builtin_type(name).is_some(), "{name}");
        }
        for k in ContainerKind::ALL {
            assert_eq!(ContainerKind::parse(k.as_str()), Some(k));
        }
    }
}
