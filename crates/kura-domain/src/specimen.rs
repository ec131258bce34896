//! The specimen model: SPREC codes (what the lab says), the derived MIABIS material type (what
//! catalogues report), quantity, study, pseudonymous donor, parent, freeze–thaw count, status.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::SpecimenCode;
use crate::time::Timestamp;

/// MIABIS material types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialType {
    Dna,
    Rna,
    WholeBlood,
    Plasma,
    Serum,
    BuffyCoat,
    PeripheralBloodCells,
    TissueFrozen,
    TissueParaffin,
    CellLines,
    PostMortemTissue,
    Urine,
    Saliva,
    CerebrospinalFluid,
    Other,
}

impl MaterialType {
    pub fn label(self) -> &'static str {
        match self {
            MaterialType::Dna => "DNA",
            MaterialType::Rna => "RNA",
            MaterialType::WholeBlood => "Whole blood",
            MaterialType::Plasma => "Plasma",
            MaterialType::Serum => "Serum",
            MaterialType::BuffyCoat => "Buffy coat",
            MaterialType::PeripheralBloodCells => "Peripheral blood cells",
            MaterialType::TissueFrozen => "Tissue (frozen)",
            MaterialType::TissueParaffin => "Tissue (paraffin)",
            MaterialType::CellLines => "Cell lines",
            MaterialType::PostMortemTissue => "Post-mortem tissue",
            MaterialType::Urine => "Urine",
            MaterialType::Saliva => "Saliva",
            MaterialType::CerebrospinalFluid => "Cerebrospinal fluid",
            MaterialType::Other => "Other",
        }
    }
}

/// A SPREC sample type code with its MIABIS material type and names in English and Japanese.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampleTypeInfo {
    pub code: &'static str,
    pub material: MaterialType,
    pub en: &'static str,
    pub ja: &'static str,
}

/// The SPREC fluid and solid type codes Kura knows (plus DNA/RNA/IPS as derivatives).
pub const SAMPLE_TYPES: &[SampleTypeInfo] = &[
    SampleTypeInfo {
        code: "BLD",
        material: MaterialType::WholeBlood,
        en: "Whole blood",
        ja: "全血",
    },
    SampleTypeInfo {
        code: "SER",
        material: MaterialType::Serum,
        en: "Serum",
        ja: "血清",
    },
    SampleTypeInfo {
        code: "PL1",
        material: MaterialType::Plasma,
        en: "Plasma, single spun",
        ja: "血漿",
    },
    SampleTypeInfo {
        code: "PL2",
        material: MaterialType::Plasma,
        en: "Plasma, double spun",
        ja: "血漿（二重遠心）",
    },
    SampleTypeInfo {
        code: "BUF",
        material: MaterialType::BuffyCoat,
        en: "Buffy coat",
        ja: "バフィーコート",
    },
    SampleTypeInfo {
        code: "CEL",
        material: MaterialType::PeripheralBloodCells,
        en: "Viable PBMC",
        ja: "末梢血単核球（PBMC）",
    },
    SampleTypeInfo {
        code: "CSF",
        material: MaterialType::CerebrospinalFluid,
        en: "Cerebrospinal fluid",
        ja: "脳脊髄液",
    },
    SampleTypeInfo {
        code: "SAL",
        material: MaterialType::Saliva,
        en: "Saliva",
        ja: "唾液",
    },
    SampleTypeInfo {
        code: "URN",
        material: MaterialType::Urine,
        en: "Urine",
        ja: "尿",
    },
    SampleTypeInfo {
        code: "DNA",
        material: MaterialType::Dna,
        en: "DNA",
        ja: "DNA",
    },
    SampleTypeInfo {
        code: "RNA",
        material: MaterialType::Rna,
        en: "RNA",
        ja: "RNA",
    },
    SampleTypeInfo {
        code: "TIS",
        material: MaterialType::TissueFrozen,
        en: "Tissue",
        ja: "組織",
    },
    SampleTypeInfo {
        code: "FFP",
        material: MaterialType::TissueParaffin,
        en: "Tissue, FFPE",
        ja: "組織（FFPE）",
    },
    SampleTypeInfo {
        code: "CLN",
        material: MaterialType::CellLines,
        en: "Viable non-blood cells",
        ja: "細胞",
    },
    SampleTypeInfo {
        code: "IPS",
        material: MaterialType::CellLines,
        en: "iPS cells",
        ja: "iPS細胞",
    },
    SampleTypeInfo {
        code: "PMB",
        material: MaterialType::PostMortemTissue,
        en: "Post-mortem brain",
        ja: "死後脳",
    },
];

/// SPREC primary container codes.
/// (code, English, Japanese)
pub const PRIMARY_CONTAINERS: &[(&str, &str, &str)] = &[
    ("SST", "Serum separator tube", "血清分離管"),
    ("PED", "K2/K3 EDTA", "EDTA-2K/3K 採血管"),
    ("HEP", "Lithium heparin", "ヘパリンリチウム採血管"),
    ("ACD", "Acid citrate dextrose", "ACD 採血管"),
    ("CIT", "Sodium citrate", "クエン酸ナトリウム採血管"),
    ("PAX", "PAXgene blood RNA", "PAXgene 血液 RNA 採血管"),
    (
        "SCI",
        "Screw-cap cryotube",
        "スクリューキャップ凍結保存チューブ",
    ),
    (
        "PPS",
        "Polypropylene tube, sterile",
        "滅菌ポリプロピレンチューブ",
    ),
    ("ZZZ", "Other", "その他"),
    ("XXX", "Not applicable / unknown", "該当なし・不明"),
];

/// SPREC long-term storage codes.
/// (code, English, Japanese)
pub const STORAGE_CODES: &[(&str, &str, &str)] = &[
    (
        "A",
        "PP tube ≥ 1 mL, −60…−85 °C",
        "PP チューブ 1 mL 以上、−60〜−85 ℃",
    ),
    (
        "B",
        "PP tube ≥ 1 mL, −35…−50 °C",
        "PP チューブ 1 mL 以上、−35〜−50 ℃",
    ),
    (
        "C",
        "Cryotube 1–2 mL in liquid nitrogen",
        "凍結保存チューブ 1〜2 mL、液体窒素",
    ),
    (
        "D",
        "Cryotube 1–2 mL, −60…−85 °C",
        "凍結保存チューブ 1〜2 mL、−60〜−85 ℃",
    ),
    (
        "E",
        "Cryotube 1–2 mL, LN2 vapour",
        "凍結保存チューブ 1〜2 mL、液体窒素気相",
    ),
    (
        "F",
        "Plastic tube < 0.5 mL, −60…−85 °C",
        "プラスチックチューブ 0.5 mL 未満、−60〜−85 ℃",
    ),
    ("V", "< −135 °C", "−135 ℃ 以下"),
    ("Z", "Other", "その他"),
    ("X", "Unknown", "不明"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum VocabularyError {
    #[error("{value:?} is not a known SPREC sample type; use one of {known}")]
    UnknownSampleType { value: String, known: String },
    #[error("{value:?} is not a known SPREC primary container; use one of {known}")]
    UnknownContainer { value: String, known: String },
    #[error("{value:?} is not a known SPREC long-term storage code; use one of {known}")]
    UnknownStorage { value: String, known: String },
    #[error("{value:?} is not a unit Kura knows; use mL, uL, mg, ug, cells or pieces")]
    UnknownUnit { value: String },
    #[error("the quantity {value:?} must be a number ≥ 0")]
    BadQuantity { value: String },
}

/// A validated SPREC sample type code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SampleType(&'static SampleTypeInfo);

impl SampleType {
    pub fn parse(s: &str) -> Result<SampleType, VocabularyError> {
        let u = s.trim().to_ascii_uppercase();
        SAMPLE_TYPES
            .iter()
            .find(|t| t.code == u)
            .map(SampleType)
            .ok_or_else(|| VocabularyError::UnknownSampleType {
                value: s.to_string(),
                known: SAMPLE_TYPES
                    .iter()
                    .map(|t| t.code)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
    pub fn info(self) -> &'static SampleTypeInfo {
        self.0
    }
    pub fn code(self) -> &'static str {
        self.0.code
    }
    pub fn material(self) -> MaterialType {
        self.0.material
    }
}
impl TryFrom<String> for SampleType {
    type Error = VocabularyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SampleType::parse(&s)
    }
}
impl From<SampleType> for String {
    fn from(t: SampleType) -> String {
        t.0.code.to_string()
    }
}

fn code_in(table: &[(&'static str, &str, &str)], s: &str) -> Option<&'static str> {
    let u = s.trim().to_ascii_uppercase();
    table.iter().find(|(c, _, _)| *c == u).map(|(c, _, _)| *c)
}

pub fn parse_primary_container(s: &str) -> Result<&'static str, VocabularyError> {
    code_in(PRIMARY_CONTAINERS, s).ok_or_else(|| VocabularyError::UnknownContainer {
        value: s.to_string(),
        known: PRIMARY_CONTAINERS
            .iter()
            .map(|c| c.0)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

pub fn parse_storage_code(s: &str) -> Result<&'static str, VocabularyError> {
    code_in(STORAGE_CODES, s).ok_or_else(|| VocabularyError::UnknownStorage {
        value: s.to_string(),
        known: STORAGE_CODES
            .iter()
            .map(|c| c.0)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Unit {
    #[serde(rename = "mL")]
    Ml,
    #[serde(rename = "uL")]
    Ul,
    #[serde(rename = "mg")]
    Mg,
    #[serde(rename = "ug")]
    Ug,
    #[serde(rename = "cells")]
    Cells,
    #[serde(rename = "pieces")]
    Pieces,
}

impl Unit {
    pub fn parse(s: &str) -> Result<Unit, VocabularyError> {
        Ok(match s.trim() {
            "mL" | "ml" | "ML" => Unit::Ml,
            "uL" | "ul" | "µL" | "μL" | "UL" => Unit::Ul,
            "mg" | "MG" => Unit::Mg,
            "ug" | "µg" | "μg" | "UG" => Unit::Ug,
            "cells" | "CELLS" => Unit::Cells,
            "pieces" | "pcs" | "PIECES" => Unit::Pieces,
            _ => {
                return Err(VocabularyError::UnknownUnit {
                    value: s.to_string(),
                });
            }
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Ml => "mL",
            Unit::Ul => "uL",
            Unit::Mg => "mg",
            Unit::Ug => "ug",
            Unit::Cells => "cells",
            Unit::Pieces => "pieces",
        }
    }
}

/// An amount with its unit. Kept as a decimal in thousandths to stay exact through consumption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quantity {
    /// Thousandths of `unit`.
    pub milli: i64,
    pub unit: Unit,
}

impl Quantity {
    pub fn parse(value: &str, unit: &str) -> Result<Quantity, VocabularyError> {
        let v: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0 && *v < 1e15)
            .ok_or_else(|| VocabularyError::BadQuantity {
                value: value.to_string(),
            })?;
        Ok(Quantity {
            milli: (v * 1000.0).round() as i64,
            unit: Unit::parse(unit)?,
        })
    }
    pub fn value(&self) -> f64 {
        self.milli as f64 / 1000.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.milli / 1000;
        let frac = self.milli % 1000;
        if frac == 0 {
            write!(f, "{whole} {}", self.unit.as_str())
        } else {
            let s = format!("{frac:03}");
            write!(
                f,
                "{whole}.{} {}",
                s.trim_end_matches('0'),
                self.unit.as_str()
            )
        }
    }
}

/// Everything recorded about a specimen when it is registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecimenRecord {
    pub code: SpecimenCode,
    /// SPREC sample type, e.g. `BLD`.
    #[serde(rename = "type")]
    pub sample_type: SampleType,
    /// SPREC primary container, e.g. `PED`.
    pub container: String,
    /// SPREC long-term storage, e.g. `A`.
    pub storage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    pub study: String,
    /// The pseudonymous donor ID (the table linking it to a person never leaves the hospital).
    pub donor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collected_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<SpecimenCode>,
    /// Freeze–thaw cycles already behind it (aliquots inherit their parent's count).
    #[serde(default)]
    pub freeze_thaw: u32,
}

/// Where a specimen is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Registered, not yet stored.
    Received,
    /// In storage.
    Available,
    /// Out of storage; its position is held for its return.
    CheckedOut,
    /// Shipped, not yet received.
    InTransit,
    /// Fully used up.
    Consumed,
    /// Destroyed.
    Disposed,
    /// Gone out of the network to a researcher (an MTA): no longer in Kura's custody.
    Distributed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Available => "available",
            Status::CheckedOut => "checked_out",
            Status::InTransit => "in_transit",
            Status::Consumed => "consumed",
            Status::Disposed => "disposed",
            Status::Distributed => "distributed",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Received,
            Status::Available,
            Status::CheckedOut,
            Status::InTransit,
            Status::Consumed,
            Status::Disposed,
            Status::Distributed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
    /// No custody act but viewing is possible any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Consumed | Status::Disposed | Status::Distributed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary() {
        assert_eq!(
            SampleType::parse("pl1").unwrap().material(),
            MaterialType::Plasma
        );
        assert_eq!(
            SampleType::parse("IPS").unwrap().material(),
            MaterialType::CellLines
        );
        assert!(
            SampleType::parse("XYZ")
                .unwrap_err()
                .to_string()
                .contains("BLD")
        );
        assert_eq!(parse_primary_container("ped"), Ok("PED"));
        assert_eq!(parse_storage_code("a"), Ok("A"));
        assert!(parse_storage_code("Q").is_err());
    }

    #[test]
    fn quantities() {
        let cases = [
            ("0.5", "mL", "0.5 mL"),
            ("10", "uL", "10 uL"),
            ("1.25", "µg", "1.25 ug"),
            ("3", "cells", "3 cells"),
        ];
        for (v, u, want) in cases {
            assert_eq!(Quantity::parse(v, u).unwrap().to_string(), want);
        }
        assert!(Quantity::parse("-1", "mL").is_err());
        assert!(Quantity::parse("x", "mL").is_err());
        assert!(Quantity::parse("1", "gallons").is_err());
    }
}
