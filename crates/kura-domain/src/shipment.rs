//! Shipments: tubes sent to another site of the network, or out of it to a researcher under a
//! material transfer agreement. A shipment is recorded as one `shipment_dispatched` event (what
//! a manifest says: where to, how, which tubes) followed, in the same transaction, by one event
//! per tube: `shipped` (in transit to a site) or `distributed` (Kura's custody ends).

use serde::{Deserialize, Serialize};

use crate::id::SpecimenCode;

/// Where a shipment goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Destination {
    /// Another site of the network (its code, e.g. `NCNP`): the tubes stay in Kura's custody.
    Site { code: String },
    /// A researcher outside the network: the tubes leave Kura's custody under an MTA.
    Recipient { name: String },
}

impl Destination {
    /// `site:CODE` or `recipient:NAME`: what each tube's `shipped` event names.
    pub fn label(&self) -> String {
        match self {
            Destination::Site { code } => format!("site:{code}"),
            Destination::Recipient { name } => format!("recipient:{name}"),
        }
    }

    /// Out of the network: Kura's custody ends.
    pub fn leaves_network(&self) -> bool {
        matches!(self, Destination::Recipient { .. })
    }
}

/// How a shipment is kept cold on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Coolant {
    /// Dry ice (UN 1845): its net mass must be declared.
    #[serde(rename = "dry-ice")]
    DryIce,
    /// A liquid-nitrogen dry shipper (vapour phase; not dangerous goods when charged properly).
    #[serde(rename = "ln2-dry-shipper")]
    Ln2DryShipper,
    #[serde(rename = "ambient")]
    Ambient,
    /// Refrigerated, 2–8 °C.
    #[serde(rename = "4C")]
    Cold4C,
}

impl Coolant {
    pub const ALL: [Coolant; 4] = [
        Coolant::DryIce,
        Coolant::Ln2DryShipper,
        Coolant::Ambient,
        Coolant::Cold4C,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Coolant::DryIce => "dry-ice",
            Coolant::Ln2DryShipper => "ln2-dry-shipper",
            Coolant::Ambient => "ambient",
            Coolant::Cold4C => "4C",
        }
    }

    /// As a person types it (either case).
    pub fn parse(s: &str) -> Option<Coolant> {
        let s = s.trim();
        Coolant::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

/// A shipment as its manifest states it. Free text is bounded and trimmed by the use case that
/// builds it; [`Shipment::check`] says what makes one impossible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// Unique in the network (the sending bench makes it: `SHP-` + its workstation + a count).
    pub id: String,
    pub destination: Destination,
    /// The tubes, in the order they were scanned.
    pub specimens: Vec<SpecimenCode>,
    pub coolant: Coolant,
    /// Net mass of dry ice in grams (required with dry ice, absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_ice_grams: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<String>,
    /// The temperature logger travelling with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logger: Option<String>,
    /// The material transfer agreement (required out of the network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mta: Option<String>,
    /// Where each tube sat when it was packed (its box and position at the sending bench):
    /// the receiver checks tubes in box by box against it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packed: Vec<Packed>,
    /// The hashes of the sending site's events the receiver needs to hold the tubes (their
    /// registrations and lineage, each tube's `shipped`), in the sender's order: what the
    /// shipment's bundle carries, sealed by this event's own hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carries: Vec<crate::hash::Digest>,
}

/// A tube's place in the box it travels in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packed {
    pub specimen: SpecimenCode,
    /// The box's code at the sending site.
    #[serde(rename = "box")]
    pub container: String,
    /// The position label, e.g. `A3`.
    pub position: String,
}

/// Why a shipment cannot be what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipmentProblem {
    NoId,
    NoTubes,
    TubeTwice(String),
    NoDestination,
    DryIceMass,
    DryIceMassWithout,
    NoMta,
    PackedNotShipped(String),
}

impl ShipmentProblem {
    pub fn message(&self) -> String {
        match self {
            ShipmentProblem::NoId => "a shipment needs an id".into(),
            ShipmentProblem::NoTubes => "a shipment holds at least one tube".into(),
            ShipmentProblem::TubeTwice(c) => format!("{c} is in the shipment twice"),
            ShipmentProblem::NoDestination => {
                "a shipment goes to a site (its code) or to a named recipient".into()
            }
            ShipmentProblem::DryIceMass => {
                "a dry-ice shipment declares the net mass of its dry ice (UN 1845), in kg".into()
            }
            ShipmentProblem::DryIceMassWithout => {
                "a dry-ice mass is given, but the shipment is not on dry ice".into()
            }
            ShipmentProblem::PackedNotShipped(c) => {
                format!("{c} is packed in a box but is not one of the shipment's tubes")
            }
            ShipmentProblem::NoMta => {
                "a shipment out of the network (to a recipient) names its material transfer agreement".into()
            }
        }
    }
}

impl Shipment {
    pub fn check(&self) -> Result<(), ShipmentProblem> {
        if self.id.trim().is_empty() {
            return Err(ShipmentProblem::NoId);
        }
        if self.specimens.is_empty() {
            return Err(ShipmentProblem::NoTubes);
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.specimens {
            if !seen.insert(c) {
                return Err(ShipmentProblem::TubeTwice(c.to_string()));
            }
        }
        if let Some(p) = self.packed.iter().find(|p| !seen.contains(&p.specimen)) {
            return Err(ShipmentProblem::PackedNotShipped(p.specimen.to_string()));
        }
        match &self.destination {
            Destination::Site { code } if code.trim().is_empty() => {
                return Err(ShipmentProblem::NoDestination);
            }
            Destination::Recipient { name } if name.trim().is_empty() => {
                return Err(ShipmentProblem::NoDestination);
            }
            _ => {}
        }
        match (self.coolant, self.dry_ice_grams) {
            (Coolant::DryIce, None | Some(0)) => return Err(ShipmentProblem::DryIceMass),
            (c, Some(_)) if c != Coolant::DryIce => {
                return Err(ShipmentProblem::DryIceMassWithout);
            }
            _ => {}
        }
        if self.destination.leaves_network()
            && self.mta.as_deref().is_none_or(|m| m.trim().is_empty())
        {
            return Err(ShipmentProblem::NoMta);
        }
        Ok(())
    }

    /// The dangerous-goods line a dry-ice manifest carries, e.g. `UN 1845 Dry ice, 5.5 kg net`.
    pub fn dry_ice_line(&self) -> Option<String> {
        let g = self.dry_ice_grams?;
        (self.coolant == Coolant::DryIce).then(|| format!("UN 1845 Dry ice, {} kg net", kg(g)))
    }
}

/// Grams as kilograms, without trailing zeros (`5500` → `5.5`, `3000` → `3`).
pub fn kg(grams: u32) -> String {
    let s = format!("{}.{:03}", grams / 1000, grams % 1000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Kilograms as a person types them (`5`, `5.5`, `0.25`) to grams; None when it is not a mass
/// (negative, not a number, finer than a gram, absurdly large).
pub fn grams(kg: &str) -> Option<u32> {
    let kg = kg.trim();
    let (whole, frac) = kg.split_once('.').unwrap_or((kg, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 3
        || whole.len() > 4
    {
        return None;
    }
    let whole: u32 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: u32 = format!("{frac:0<3}").parse().ok()?;
    Some(whole * 1000 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::KuraId;

    fn code(n: u32) -> SpecimenCode {
        SpecimenCode::kura(KuraId::from_data(&format!("TST26{n:07}")).unwrap())
    }

    fn base() -> Shipment {
        Shipment {
            id: "SHP-0a1b2c3d-1".into(),
            destination: Destination::Site {
                code: "NCNP".into(),
            },
            specimens: vec![code(1), code(2)],
            coolant: Coolant::DryIce,
            dry_ice_grams: Some(5_500),
            courier: Some("Yamato".into()),
            tracking: None,
            logger: None,
            mta: None,
            packed: vec![],
            carries: vec![],
        }
    }

    #[test]
    fn a_shipment_is_possible_or_says_why_not() {
        type Change = fn(&mut Shipment);
        let cases: &[(&str, Change, Option<ShipmentProblem>)] = &[
            ("as it is", |_| {}, None),
            ("no id", |s| s.id = " ".into(), Some(ShipmentProblem::NoId)),
            (
                "no tubes",
                |s| s.specimens.clear(),
                Some(ShipmentProblem::NoTubes),
            ),
            (
                "a tube twice",
                |s| s.specimens.push(s.specimens[0].clone()),
                Some(ShipmentProblem::TubeTwice(code(1).to_string())),
            ),
            (
                "no site",
                |s| s.destination = Destination::Site { code: "".into() },
                Some(ShipmentProblem::NoDestination),
            ),
            (
                "a packed tube not shipped",
                |s| {
                    s.packed.push(Packed {
                        specimen: code(3),
                        container: "BOX-1".into(),
                        position: "A1".into(),
                    })
                },
                Some(ShipmentProblem::PackedNotShipped(code(3).to_string())),
            ),
            (
                "dry ice without its mass",
                |s| s.dry_ice_grams = None,
                Some(ShipmentProblem::DryIceMass),
            ),
            (
                "a mass without dry ice",
                |s| s.coolant = Coolant::Ln2DryShipper,
                Some(ShipmentProblem::DryIceMassWithout),
            ),
            (
                "ambient",
                |s| {
                    s.coolant = Coolant::Ambient;
                    s.dry_ice_grams = None;
                },
                None,
            ),
            (
                "to a recipient without an MTA",
                |s| {
                    s.destination = Destination::Recipient {
                        name: "Dr. Tanaka".into(),
                    }
                },
                Some(ShipmentProblem::NoMta),
            ),
            (
                "to a recipient under an MTA",
                |s| {
                    s.destination = Destination::Recipient {
                        name: "Dr. Tanaka".into(),
                    };
                    s.mta = Some("MTA-2026-014".into());
                },
                None,
            ),
        ];
        for (what, change, want) in cases {
            let mut s = base();
            change(&mut s);
            assert_eq!(s.check().err(), *want, "{what}");
        }
    }

    #[test]
    fn dry_ice_is_declared_in_kilograms() {
        for (typed, g, shown) in [
            ("5.5", Some(5_500), "5.5"),
            ("3", Some(3_000), "3"),
            ("0.25", Some(250), "0.25"),
            (".5", Some(500), "0.5"),
            ("12.125", Some(12_125), "12.125"),
        ] {
            assert_eq!(grams(typed), g, "{typed}");
            assert_eq!(kg(g.unwrap()), shown, "{typed}");
        }
        for bad in ["", "-1", "1.2345", "five", "1,5", "99999", "."] {
            assert_eq!(grams(bad), None, "{bad}");
        }
        assert_eq!(
            base().dry_ice_line().as_deref(),
            Some("UN 1845 Dry ice, 5.5 kg net")
        );
    }

    #[test]
    fn coolants_read_as_typed_and_travel_as_named() {
        for c in Coolant::ALL {
            assert_eq!(Coolant::parse(&c.as_str().to_uppercase()), Some(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert_eq!(Coolant::parse("liquid"), None);
    }
}
