//! Reading what the scanner typed: Kura IDs, pre-barcoded tube codes, container codes,
//! positions.

use kura_domain::id::{ContainerId, KuraId, ScanError, SpecimenCode, check_char};
use kura_domain::position::Geometry;
use kura_domain::Pos;
use serde::Serialize;

use crate::{AppError, Kura};

/// `kura id check`: is this a valid Kura ID, and if not, why not.
pub fn check(code: &str) -> Result<KuraId, ScanError> {
    KuraId::parse(code)
}

/// `kura id check-char`: the data with its check character appended.
pub fn with_check_char(data: &str) -> Result<KuraId, ScanError> {
    KuraId::from_data(data)
}

/// The bare check character of `data` (already normalised, `0-9A-Z`).
pub fn check_character(data: &str) -> Option<char> {
    check_char(data)
}

/// What a scan turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scanned {
    Specimen { code: String },
    Container { code: String },
    Unknown { code: String },
}

impl Kura {
    /// Reads a scanned specimen code. A valid Kura ID is accepted; a code that fails the check
    /// character is accepted only if a pre-barcoded tube with exactly that code is registered
    /// (tube codes have no check character). Otherwise the scan error says what was wrong.
    pub fn specimen_code(&self, raw: &str) -> Result<SpecimenCode, AppError> {
        match KuraId::parse(raw) {
            Ok(id) => Ok(SpecimenCode::kura(id)),
            Err(e @ (ScanError::WrongCheckCharacter { .. } | ScanError::InvalidCharacter { .. } | ScanError::TooShort { .. })) => {
                match SpecimenCode::parse_lookup(raw) {
                    Ok(code) if self.store().specimen(&code)?.is_some() => Ok(code),
                    _ => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a scan and looks it up in one go (one query for either kind of code).
    pub(crate) fn resolve(&self, raw: &str) -> Result<(SpecimenCode, Option<kura_store::SpecimenView>), AppError> {
        match KuraId::parse(raw) {
            Ok(id) => {
                let code = SpecimenCode::kura(id);
                let view = self.store().specimen(&code)?;
                Ok((code, view))
            }
            Err(e @ (ScanError::WrongCheckCharacter { .. } | ScanError::InvalidCharacter { .. } | ScanError::TooShort { .. })) => {
                match SpecimenCode::parse_lookup(raw) {
                    Ok(code) => match self.store().specimen(&code)? {
                        Some(v) => Ok((code, Some(v))),
                        None => Err(e.into()),
                    },
                    Err(_) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a scanned container code.
    pub fn container_code(&self, raw: &str) -> Result<ContainerId, AppError> {
        Ok(ContainerId::parse(raw)?)
    }

    /// Classifies a scan: a registered specimen, a known container, or neither.
    pub fn classify(&self, raw: &str) -> Result<Scanned, AppError> {
        let s = kura_domain::id::normalize_scan(raw)?;
        if let Ok(code) = SpecimenCode::parse_lookup(&s)
            && self.store().specimen(&code)?.is_some() {
                return Ok(Scanned::Specimen { code: s });
            }
        if self.store().box_map(&s)?.is_some() {
            return Ok(Scanned::Container { code: s });
        }
        // A well-formed Kura ID that is not registered yet is still a specimen scan.
        match KuraId::parse(&s) {
            Ok(_) => Ok(Scanned::Specimen { code: s }),
            Err(e @ ScanError::WrongCheckCharacter { .. }) => Err(e.into()),
            Err(_) => Ok(Scanned::Unknown { code: s }),
        }
    }
}

/// Parses a position label for a container's geometry.
pub(crate) fn parse_pos(container: &ContainerId, geometry: &Geometry, label: &str) -> Result<Pos, AppError> {
    geometry.parse(label).map_err(|source| AppError::Position { container: container.to_string(), source })
}
