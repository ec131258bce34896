//! What a person typed, parsed once for every face. The CLI and the window collect strings and
//! hand them here; the same string gives the same value or the same error code whichever face
//! it came through (the parity table in `src-tauri` runs both).

use chrono::NaiveDate;
use kura_domain::Purpose;

use crate::AppError;

/// Who is acting when nobody said: the events still need a name.
pub const DEFAULT_ACTOR: &str = "technician";

/// Longest actor name, reason or note Kura records.
const MAX_ACTOR: usize = 64;
const MAX_REASON: usize = 500;

/// Who is acting: the first candidate that is not blank (the faces pass, in order, an explicit
/// `--actor`, `KURA_USER`, then `USER`), else [`DEFAULT_ACTOR`]. A blank candidate counts as
/// unset; a name with control characters or over 64 characters is refused.
pub fn actor<'a>(
    candidates: impl IntoIterator<Item = Option<&'a str>>,
) -> Result<String, AppError> {
    match candidates
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|c| !c.is_empty())
    {
        Some(name) => text("actor", name, MAX_ACTOR),
        None => Ok(DEFAULT_ACTOR.to_string()),
    }
}

/// A required free text (a name, a reason): trimmed, not empty, no control characters, at most
/// `max` characters.
pub fn text(field: &str, v: &str, max: usize) -> Result<String, AppError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(AppError::input(field, format!("{field} is required")));
    }
    if v.chars().count() > max {
        return Err(AppError::input(
            field,
            format!("{field} is longer than {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(AppError::input(
            field,
            format!("{field} contains a control character"),
        ));
    }
    Ok(v.to_string())
}

/// An optional free text: blank means none.
pub fn optional_text(field: &str, v: Option<&str>, max: usize) -> Result<Option<String>, AppError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => text(field, v, max).map(Some),
        None => Ok(None),
    }
}

/// Why something was done (dispose, block, unblock, resolve).
pub fn reason(v: &str) -> Result<String, AppError> {
    text("reason", v, MAX_REASON)
}

/// Why a specimen leaves storage.
pub fn purpose(v: &str) -> Result<Purpose, AppError> {
    Purpose::parse(v).ok_or_else(|| {
        AppError::input(
            "purpose",
            format!("{v:?} is not a purpose; use analysis, qc, distribution, transfer or other"),
        )
    })
}

/// A calendar date `YYYY-MM-DD`; blank means none.
pub fn date(field: &str, v: Option<&str>) -> Result<Option<NaiveDate>, AppError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => v
            .parse::<NaiveDate>()
            .map(Some)
            .map_err(|_| AppError::input(field, format!("{v:?} is not a date (YYYY-MM-DD)"))),
        None => Ok(None),
    }
}

fn blank(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// An amount and its unit as typed. Blank fields are absent. An amount without a unit is taken
/// in `default_unit` (the specimen's own) when there is one.
pub fn amount(
    amount: Option<&str>,
    unit: Option<&str>,
    default_unit: Option<kura_domain::specimen::Unit>,
) -> Result<Option<kura_domain::specimen::Quantity>, AppError> {
    match (blank(amount), blank(unit)) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(AppError::input(
            "amount",
            "a unit was given without an amount",
        )),
        (Some(a), Some(u)) => Ok(Some(kura_domain::specimen::Quantity::parse(a, u)?)),
        (Some(a), None) => match default_unit {
            Some(u) => Ok(Some(kura_domain::specimen::Quantity::parse(a, u.as_str())?)),
            None => Err(AppError::input(
                "unit",
                "this specimen has no recorded quantity; give the unit of the amount",
            )),
        },
    }
}

/// The UI language a locale asks for: Japanese for `ja*`, English for anything else. The faces
/// pass `LC_ALL`, `LC_MESSAGES` and `LANG` in that order (the first one set wins, as in POSIX).
pub fn language<'a>(locale: impl IntoIterator<Item = Option<&'a str>>) -> &'static str {
    let first = locale
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|l| !l.is_empty());
    match first {
        Some(l) if l.to_ascii_lowercase().starts_with("ja") => "ja",
        _ => "en",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors() {
        let cases: &[(&[Option<&str>], Result<&str, &str>)] = &[
            (&[Some("sato"), Some("root")], Ok("sato")),
            (&[None, Some("root")], Ok("root")),
            (&[Some(""), Some("root")], Ok("root")),
            (&[Some("  "), Some("")], Ok(DEFAULT_ACTOR)),
            (&[None, None], Ok(DEFAULT_ACTOR)),
            (&[Some(" 佐藤 ")], Ok("佐藤")),
            (&[Some("a\u{7}b")], Err("bad_input")),
        ];
        for (given, want) in cases {
            let got = actor(given.iter().copied());
            match want {
                Ok(w) => assert_eq!(got.ok().as_deref(), Some(*w), "{given:?}"),
                Err(code) => assert_eq!(got.err().map(|e| e.code()), Some(*code), "{given:?}"),
            }
        }
    }

    #[test]
    fn languages() {
        let cases: &[(&[Option<&str>], &str)] = &[
            (&[None, None, Some("ja_JP.UTF-8")], "ja"),
            (&[Some("C"), None, Some("ja_JP.UTF-8")], "en"),
            (&[Some(""), Some("ja_JP.eucJP"), Some("en_US")], "ja"),
            (&[None, None, Some("en_GB.UTF-8")], "en"),
            (&[None, None, None], "en"),
            (&[Some("JA")], "ja"),
        ];
        for (given, want) in cases {
            assert_eq!(language(given.iter().copied()), *want, "{given:?}");
        }
    }

    #[test]
    fn amounts() {
        use kura_domain::specimen::Unit;
        let ml = Some(Unit::Ml);
        let cases: &[(
            Option<&str>,
            Option<&str>,
            Option<Unit>,
            Result<Option<i64>, &str>,
        )] = &[
            (None, None, ml, Ok(None)),
            (Some(""), Some(""), ml, Ok(None)),
            (Some("0.5"), Some("mL"), None, Ok(Some(500))),
            (Some("0.5"), None, ml, Ok(Some(500))),
            (Some("0.5"), Some(""), ml, Ok(Some(500))),
            (Some("0.5"), None, None, Err("bad_input")),
            (None, Some("mL"), ml, Err("bad_input")),
            (Some("x"), Some("mL"), ml, Err("bad_vocabulary")),
            (Some("1"), Some("gallon"), ml, Err("bad_vocabulary")),
        ];
        for (a, u, d, want) in cases {
            let got = amount(*a, *u, *d);
            match want {
                Ok(w) => assert_eq!(
                    got.ok().map(|q| q.map(|q| q.milli)),
                    Some(*w),
                    "{a:?} {u:?}"
                ),
                Err(code) => assert_eq!(got.err().map(|e| e.code()), Some(*code), "{a:?} {u:?}"),
            }
        }
    }
}
