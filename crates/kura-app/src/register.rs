//! Receive and register: a parent specimen and, in the same act, N aliquots or derivatives.

use kura_domain::id::{ContainerId, SpecimenCode};
use kura_domain::specimen::{
    Quantity, SampleType, SpecimenRecord, parse_primary_container, parse_storage_code,
};
use kura_domain::{EventBody, Timestamp};
use serde::Serialize;

use crate::{AppError, Emit, Kura, Placed};

/// What the technician enters at reception.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct RegisterRequest {
    /// A pre-barcoded tube's own code; when absent Kura issues an ID.
    pub code: Option<String>,
    /// SPREC sample type (BLD, PL1, …).
    pub sample_type: String,
    /// SPREC primary container (PED, SST, …).
    pub container: String,
    /// SPREC long-term storage (A, C, D, …).
    pub storage: String,
    /// The amount, e.g. "10" (with `unit`).
    pub quantity: Option<String>,
    /// The amount's unit, e.g. "mL".
    pub unit: Option<String>,
    pub study: String,
    pub donor: String,
    /// RFC 3339 or YYYY-MM-DD.
    pub collected_at: Option<String>,
    /// How many aliquots to split off in the same act.
    pub aliquots: u32,
    /// Each aliquot's quantity (same unit as the parent).
    pub aliquot_quantity: Option<String>,
    /// A different SPREC type makes the children derivatives (DNA from blood …).
    pub aliquot_type: Option<String>,
    /// Store the aliquots in this box, each at the next free position.
    pub into: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registered {
    pub parent: String,
    pub aliquots: Vec<String>,
    pub placed: Vec<Placed>,
}

/// A request checked field by field before anything is written.
pub(crate) struct ValidRequest {
    pub code: Option<SpecimenCode>,
    pub sample_type: SampleType,
    pub container: &'static str,
    pub storage: &'static str,
    pub quantity: Option<Quantity>,
    pub study: String,
    pub donor: String,
    pub collected_at: Option<Timestamp>,
    pub aliquots: u32,
    pub aliquot_quantity: Option<Quantity>,
    pub aliquot_type: Option<SampleType>,
    pub into: Option<ContainerId>,
}

pub(crate) use crate::input::text;

impl RegisterRequest {
    pub(crate) fn validate(&self, calendar: &crate::Calendar) -> Result<ValidRequest, AppError> {
        let quantity =
            match crate::input::amount(self.quantity.as_deref(), self.unit.as_deref(), None) {
                Err(e) if e.code() == "bad_input" => {
                    return Err(AppError::input(
                        "quantity",
                        "give the quantity and its unit together",
                    ));
                }
                other => other?,
            };
        let aliquot_quantity = match (
            self.aliquot_quantity
                .as_deref()
                .filter(|v| !v.trim().is_empty()),
            quantity,
        ) {
            (Some(v), Some(q)) => Some(Quantity::parse(v, q.unit.as_str())?),
            (Some(_), None) => {
                return Err(AppError::input(
                    "aliquot_quantity",
                    "give the parent's quantity and unit too",
                ));
            }
            (None, _) => None,
        };
        if let (Some(a), Some(q)) = (aliquot_quantity, quantity)
            && self.aliquot_type.is_none()
            && a.milli.saturating_mul(i64::from(self.aliquots)) > q.milli
        {
            return Err(AppError::input(
                "aliquot_quantity",
                format!(
                    "{} aliquots of {a} need more than the {q} registered",
                    self.aliquots
                ),
            ));
        }
        if self.aliquots > 500 {
            return Err(AppError::input(
                "aliquots",
                "at most 500 aliquots in one registration",
            ));
        }
        let collected_at = self
            .collected_at
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                calendar.parse(s).ok_or_else(|| {
                    AppError::input(
                        "collected_at",
                        format!("{s:?} is not a date (YYYY-MM-DD or RFC 3339)"),
                    )
                })
            })
            .transpose()?;
        Ok(ValidRequest {
            code: self
                .code
                .as_deref()
                .filter(|c| !c.trim().is_empty())
                .map(SpecimenCode::external)
                .transpose()?,
            sample_type: SampleType::parse(&self.sample_type)?,
            container: parse_primary_container(&self.container)?,
            storage: parse_storage_code(&self.storage)?,
            quantity,
            study: text("study", &self.study, 100)?,
            donor: text("donor", &self.donor, 64)?,
            collected_at,
            aliquots: self.aliquots,
            aliquot_quantity,
            aliquot_type: self
                .aliquot_type
                .as_deref()
                .map(SampleType::parse)
                .transpose()?,
            into: self.into.as_deref().map(ContainerId::parse).transpose()?,
        })
    }
}

impl Emit<'_, '_> {
    /// Issues `n` Kura IDs for the current year.
    pub(crate) fn issue_ids(&mut self, n: u64) -> Result<Vec<SpecimenCode>, AppError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if self.id_format.is_none() {
            let f = self.tx.meta("id_format")?.ok_or(AppError::NotInitialised)?;
            self.id_format = Some(
                serde_json::from_str(&f)
                    .map_err(|e| AppError::input("id_format", e.to_string()))?,
            );
        }
        let Some(f) = self.id_format.clone() else {
            return Err(AppError::NotInitialised);
        };
        // The year at the site: IDs issued on New Year's morning in Japan carry the new year.
        let year = chrono::Datelike::year(&self.calendar.date(self.clock.now()));
        self.tx
            .take_serials(year, n)?
            .into_iter()
            .map(|s| Ok(SpecimenCode::kura(f.issue(year, s)?)))
            .collect()
    }

    pub(crate) fn register(&mut self, r: ValidRequest) -> Result<Registered, AppError> {
        let parent_code = match r.code.clone() {
            Some(c) => c,
            None => self.issue_ids(1)?.remove(0),
        };
        let parent = SpecimenRecord {
            code: parent_code.clone(),
            sample_type: r.sample_type,
            container: r.container.to_string(),
            storage: r.storage.to_string(),
            quantity: r.quantity,
            study: r.study.clone(),
            donor: r.donor.clone(),
            collected_at: r.collected_at,
            parent: None,
            freeze_thaw: 0,
        };
        self.emit(EventBody::Registered {
            specimen: parent,
            location: None,
        })?;
        let children = self.issue_ids(u64::from(r.aliquots))?;
        let mut placed = Vec::new();
        for code in &children {
            let record = SpecimenRecord {
                code: code.clone(),
                sample_type: r.aliquot_type.unwrap_or(r.sample_type),
                container: "SCI".into(),
                storage: r.storage.to_string(),
                quantity: r.aliquot_quantity,
                study: r.study.clone(),
                donor: r.donor.clone(),
                collected_at: r.collected_at,
                parent: Some(parent_code.clone()),
                freeze_thaw: 0,
            };
            self.emit(EventBody::Derived {
                specimen: record,
                aliquot: r.aliquot_type.is_none(),
                location: None,
            })?;
            if let Some(into) = &r.into {
                placed.push(self.check_in(code.clone(), into, None)?);
            }
        }
        Ok(Registered {
            parent: parent_code.to_string(),
            aliquots: children.iter().map(ToString::to_string).collect(),
            placed,
        })
    }
}

impl Kura {
    /// Registers a specimen and its aliquots (and stores them, with `into`) in one transaction.
    pub fn register(&mut self, req: &RegisterRequest) -> Result<Registered, AppError> {
        let r = req.validate(&self.calendar)?;
        self.serials_for(u64::from(r.code.is_none()) + u64::from(r.aliquots))?;
        self.write(|e| e.register(r))
    }
}

/// One choice of a SPREC vocabulary, named in both languages where the domain has both.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub code: String,
    pub en: String,
    pub ja: String,
}

/// The choices the register form offers: sample types, primary containers, storage codes.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vocabulary {
    pub sample_types: Vec<Choice>,
    pub primary_containers: Vec<Choice>,
    pub storage: Vec<Choice>,
}

pub fn vocabulary() -> Vocabulary {
    use kura_domain::specimen::{PRIMARY_CONTAINERS, SAMPLE_TYPES, STORAGE_CODES};
    let pairs = |t: &[(&str, &str, &str)]| {
        t.iter()
            .map(|(c, en, ja)| Choice {
                code: c.to_string(),
                en: en.to_string(),
                ja: ja.to_string(),
            })
            .collect()
    };
    Vocabulary {
        sample_types: SAMPLE_TYPES
            .iter()
            .map(|t| Choice {
                code: t.code.into(),
                en: t.en.into(),
                ja: t.ja.into(),
            })
            .collect(),
        primary_containers: pairs(PRIMARY_CONTAINERS),
        storage: pairs(STORAGE_CODES),
    }
}
