//! Reading what the scanner typed: Kura IDs, pre-barcoded tube codes, container codes,
//! positions.

use kura_domain::Pos;
use kura_domain::id::{ContainerId, KuraId, ScanError, SpecimenCode};
use kura_domain::position::Geometry;

use crate::{AppError, Kura};

/// `kura id check`: is this a valid Kura ID, and if not, why not.
pub fn check(code: &str) -> Result<KuraId, ScanError> {
    KuraId::parse(code)
}

/// `kura id check-char`: the data with its check character appended.
pub fn with_check_char(data: &str) -> Result<KuraId, ScanError> {
    KuraId::from_data(data)
}

/// What a scan names: a valid Kura ID (not looked up yet), or a pre-barcoded tube's code that
/// is registered here (found, with its row).
enum Scanned {
    Kura(SpecimenCode),
    Tube(SpecimenCode, Box<kura_store::SpecimenView>),
}

impl Kura {
    /// A valid Kura ID is accepted as it is; a code that fails the check character is accepted
    /// only if a pre-barcoded tube with exactly that code is registered (tube codes have no check
    /// character). Otherwise the scan error says what was wrong.
    fn scanned(&self, raw: &str) -> Result<Scanned, AppError> {
        match KuraId::parse(raw) {
            Ok(id) => Ok(Scanned::Kura(SpecimenCode::kura(id))),
            Err(
                e @ (ScanError::WrongCheckCharacter { .. }
                | ScanError::InvalidCharacter { .. }
                | ScanError::TooShort { .. }),
            ) => match SpecimenCode::parse_lookup(raw) {
                Ok(code) => match self.store().specimen(&code)? {
                    Some(v) => Ok(Scanned::Tube(code, Box::new(v))),
                    None => Err(e.into()),
                },
                Err(_) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a scanned specimen code (a Kura ID is not looked up: the hot check-in path).
    pub fn specimen_code(&self, raw: &str) -> Result<SpecimenCode, AppError> {
        Ok(match self.scanned(raw)? {
            Scanned::Kura(code) | Scanned::Tube(code, _) => code,
        })
    }

    /// Reads a scan and looks it up in one go (one query for either kind of code).
    pub(crate) fn resolve(
        &self,
        raw: &str,
    ) -> Result<(SpecimenCode, Option<kura_store::SpecimenView>), AppError> {
        match self.scanned(raw)? {
            Scanned::Kura(code) => {
                let view = self.store().specimen(&code)?;
                Ok((code, view))
            }
            Scanned::Tube(code, view) => Ok((code, Some(*view))),
        }
    }

    /// Reads a scanned container code.
    pub fn container_code(&self, raw: &str) -> Result<ContainerId, AppError> {
        Ok(ContainerId::parse(raw)?)
    }
}

/// Parses a position label for a container's geometry.
pub(crate) fn parse_pos(
    container: &ContainerId,
    geometry: &Geometry,
    label: &str,
) -> Result<Pos, AppError> {
    geometry.parse(label).map_err(|source| AppError::Position {
        container: container.to_string(),
        source,
    })
}
