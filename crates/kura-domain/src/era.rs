//! Dates as Japanese sheets write them: the Gregorian year-first forms (`2024/04/01`,
//! `2024年4月1日`) and the era calendar (和暦: `令和6年4月1日`, `R6.4.1`, `H31.4.30`,
//! `平成元年1月8日`). Each is converted exactly or refused with the reason: a date that never
//! existed in its era (`平成31年5月1日`: Heisei ended on 30 April 2019) is refused, never moved.

use chrono::NaiveDate;
use unicode_normalization::UnicodeNormalization;

/// An era: its names and its first and last days (the last era has none).
struct Era {
    kanji: &'static str,
    letter: char,
    romaji: &'static str,
    first: (i32, u32, u32),
    last: Option<(i32, u32, u32)>,
}

const ERAS: &[Era] = &[
    Era {
        kanji: "明治",
        letter: 'M',
        romaji: "Meiji",
        // The Gregorian calendar came to Japan on 明治6年1月1日.
        first: (1873, 1, 1),
        last: Some((1912, 7, 29)),
    },
    Era {
        kanji: "大正",
        letter: 'T',
        romaji: "Taishō",
        first: (1912, 7, 30),
        last: Some((1926, 12, 24)),
    },
    Era {
        kanji: "昭和",
        letter: 'S',
        romaji: "Shōwa",
        first: (1926, 12, 25),
        last: Some((1989, 1, 7)),
    },
    Era {
        kanji: "平成",
        letter: 'H',
        romaji: "Heisei",
        first: (1989, 1, 8),
        last: Some((2019, 4, 30)),
    },
    Era {
        kanji: "令和",
        letter: 'R',
        romaji: "Reiwa",
        first: (2019, 5, 1),
        last: None,
    },
];

/// Why a date in a Japanese form is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EraDateError {
    #[error("{written:?} is not a date: {reason}")]
    NoSuchDate { written: String, reason: String },
    #[error(
        "{written:?} never existed: {era} ran from {first} to {last}; write the date in the era of that day (or as YYYY-MM-DD)"
    )]
    OutsideEra {
        written: String,
        era: String,
        first: NaiveDate,
        last: String,
    },
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Reads a date written year-first in the Gregorian calendar with `/`, `.`, `-` or 年月日, or in
/// the era calendar with a kanji era (`令和6年4月1日`, `令和元年…`) or its letter (`R6.4.1`,
/// `H31/4/30`). Full-width digits are read too. `Ok(None)`: not one of these forms (the caller
/// tries its own); `Err`: one of them, naming a day that does not exist.
pub fn parse_japanese_date(s: &str) -> Result<Option<NaiveDate>, EraDateError> {
    let written = s.trim();
    let t: String = written.nfkc().collect::<String>().to_uppercase();
    let t = t.trim();
    // The era, if any, and the rest.
    let (era, rest) = match ERAS.iter().find_map(|e| {
        t.strip_prefix(e.kanji)
            .or_else(|| t.strip_prefix(e.letter))
            .map(|r| (e, r))
    }) {
        Some((e, r)) => (Some(e), r.trim_start()),
        None => (None, t),
    };
    let Some([y, m, d]) = split_ymd(rest, era.is_some()) else {
        return Ok(None);
    };
    let (m, d) = (m as u32, d as u32);
    let no_such = |reason: String| EraDateError::NoSuchDate {
        written: written.to_string(),
        reason,
    };
    let Some(e) = era else {
        if y < 1000 {
            return Ok(None);
        }
        return NaiveDate::from_ymd_opt(y, m, d)
            .map(Some)
            .ok_or_else(|| no_such(format!("{y}-{m:02}-{d:02} has no such day")));
    };
    if y < 1 {
        return Err(no_such(format!("{} has no year {y}", e.kanji)));
    }
    let gy = e.first.0 + y - 1;
    let Some(g) = NaiveDate::from_ymd_opt(gy, m, d) else {
        return Err(no_such(format!(
            "{}{y}年 is {gy}, which has no {m}月{d}日",
            e.kanji
        )));
    };
    let first = date(e.first.0, e.first.1, e.first.2);
    let last = e.last.map(|(y, m, d)| date(y, m, d));
    if g < first || last.is_some_and(|l| g > l) {
        return Err(EraDateError::OutsideEra {
            written: written.to_string(),
            era: format!("{} ({}, {})", e.kanji, e.romaji, e.letter),
            first,
            last: last.map_or_else(|| "today".to_string(), |l| l.to_string()),
        });
    }
    Ok(Some(g))
}

/// `Y?M?D` with one separator kind (`/`, `.`, `-`) or 年月日 (日 optional); `元` is year 1
/// after an era.
fn split_ymd(s: &str, era: bool) -> Option<[i32; 3]> {
    let num = |p: &str, year: bool| -> Option<i32> {
        let p = p.trim();
        if year && era && p == "元" {
            return Some(1);
        }
        if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let parts: Vec<&str> = if s.contains('年') {
        let (y, r) = s.split_once('年')?;
        let (m, r) = r.split_once('月')?;
        let d = r.strip_suffix('日').unwrap_or(r);
        vec![y, m, d]
    } else {
        let sep = ['/', '.', '-'].into_iter().find(|c| s.contains(*c))?;
        s.split(sep).collect()
    };
    let [y, m, d] = parts.as_slice() else {
        return None;
    };
    let (y, m, d) = (num(y, true)?, num(m, false)?, num(d, false)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some([y, m, d])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_japanese_sheets_write_them() {
        // (what the cell says, the date or the start of the refusal)
        let cases: &[(&str, Result<Option<&str>, &str>)] = &[
            ("2024/04/01", Ok(Some("2024-04-01"))),
            ("2024/4/1", Ok(Some("2024-04-01"))),
            ("2024.4.1", Ok(Some("2024-04-01"))),
            ("2024年4月1日", Ok(Some("2024-04-01"))),
            ("２０２４／４／１", Ok(Some("2024-04-01"))),
            ("令和6年4月1日", Ok(Some("2024-04-01"))),
            ("令和６年４月１日", Ok(Some("2024-04-01"))),
            ("R6.4.1", Ok(Some("2024-04-01"))),
            ("r6.4.1", Ok(Some("2024-04-01"))),
            ("R06/04/01", Ok(Some("2024-04-01"))),
            ("H31.4.30", Ok(Some("2019-04-30"))),
            ("平成31年4月30日", Ok(Some("2019-04-30"))),
            ("令和元年5月1日", Ok(Some("2019-05-01"))),
            ("R1.5.1", Ok(Some("2019-05-01"))),
            ("平成元年1月8日", Ok(Some("1989-01-08"))),
            ("S64.1.7", Ok(Some("1989-01-07"))),
            ("昭和63年12月31日", Ok(Some("1988-12-31"))),
            ("平成31年5月1日", Err("\"平成31年5月1日\" never existed")),
            ("H31.5.1", Err("\"H31.5.1\" never existed")),
            ("S64.1.8", Err("\"S64.1.8\" never existed")),
            ("平成元年1月7日", Err("\"平成元年1月7日\" never existed")),
            ("令和5年2月29日", Err("\"令和5年2月29日\" is not a date")),
            ("2023/02/29", Err("\"2023/02/29\" is not a date")),
            ("令和0年1月1日", Err("\"令和0年1月1日\" is not a date")),
            // Not these forms: the caller's own parsers (ISO, RFC 3339) or its refusal.
            ("2024-04-01T09:00:00Z", Ok(None)),
            ("yesterday", Ok(None)),
            ("4/1/2024", Ok(None)),
            ("R6.13.1", Ok(None)),
            ("", Ok(None)),
        ];
        for (cell, want) in cases {
            let got = parse_japanese_date(cell);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g.map(|d| d.to_string()).as_deref(), *w, "{cell}"),
                (Err(w), Err(e)) => assert!(e.to_string().starts_with(w), "{cell}: {e}"),
                _ => panic!("{cell}: {got:?}, wanted {want:?}"),
            }
        }
    }
}
