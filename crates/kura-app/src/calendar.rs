//! The site's calendar. The log keeps UTC instants; people think in the dates of the place they
//! stand in. Due dates, "today", "overdue", the year in a Kura ID and date-only inputs are dates
//! in the site's time zone (a setting; the system's zone until one is chosen).

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use jiff::tz::TimeZone;
use kura_domain::Timestamp;

use crate::AppError;

/// The `meta` key of the chosen zone (absent: follow the system's).
pub(crate) const META_KEY: &str = "time_zone";

#[derive(Debug, Clone)]
pub struct Calendar {
    tz: TimeZone,
    name: String,
}

impl Calendar {
    /// The zone this computer is set to (`TZ`, then /etc/localtime); UTC when it has none.
    pub fn system() -> Calendar {
        let tz = TimeZone::try_system().unwrap_or(TimeZone::UTC);
        // A zone set by a file with no name (rare) is still used as it is; it is only shown so.
        let name = tz
            .iana_name()
            .unwrap_or("system (unnamed zone)")
            .to_string();
        Calendar { tz, name }
    }

    pub fn utc() -> Calendar {
        Calendar {
            tz: TimeZone::UTC,
            name: "UTC".into(),
        }
    }

    /// An IANA zone by name, e.g. `Asia/Tokyo`.
    pub fn named(name: &str) -> Result<Calendar, AppError> {
        let name = name.trim();
        let tz = TimeZone::get(name).map_err(|_| {
            AppError::input(
                "time_zone",
                format!("{name:?} is not a time zone; use an IANA name such as Asia/Tokyo or UTC"),
            )
        })?;
        Ok(Calendar {
            tz,
            name: name.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn zoned(&self, t: Timestamp) -> jiff::Zoned {
        jiff::Timestamp::from_microsecond(t.0)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(self.tz.clone())
    }

    /// The date at the site when `t` happened.
    pub fn date(&self, t: Timestamp) -> NaiveDate {
        let d = self.zoned(t).date();
        NaiveDate::from_ymd_opt(i32::from(d.year()), d.month() as u32, d.day() as u32)
            .unwrap_or_default()
    }

    /// `t` as the site's wall clock shows it, to the second.
    pub fn wall_seconds(&self, t: Timestamp) -> NaiveDateTime {
        let z = self.zoned(t);
        NaiveDate::from_ymd_opt(i32::from(z.year()), z.month() as u32, z.day() as u32)
            .and_then(|d| d.and_hms_opt(z.hour() as u32, z.minute() as u32, z.second() as u32))
            .unwrap_or_default()
    }

    /// `t` as the site's wall clock shows it: `2026-12-01 00:30`.
    pub fn wall(&self, t: Timestamp) -> String {
        self.zoned(t).strftime("%Y-%m-%d %H:%M").to_string()
    }

    /// The same with the zone's offset: `2026-12-01 00:30 +09:00`.
    pub fn wall_with_offset(&self, t: Timestamp) -> String {
        self.zoned(t).strftime("%Y-%m-%d %H:%M %:z").to_string()
    }

    /// The instant of a wall-clock time at the site (a time skipped by a clock change is read
    /// as the one just after it, as clocks do).
    fn instant(&self, dt: NaiveDateTime) -> Option<Timestamp> {
        let civil = jiff::civil::DateTime::new(
            i16::try_from(dt.year()).ok()?,
            i8::try_from(dt.month()).ok()?,
            i8::try_from(dt.day()).ok()?,
            i8::try_from(dt.hour()).ok()?,
            i8::try_from(dt.minute()).ok()?,
            i8::try_from(dt.second()).ok()?,
            0,
        )
        .ok()?;
        let z = self.tz.to_ambiguous_zoned(civil).compatible().ok()?;
        Some(Timestamp(z.timestamp().as_microsecond()))
    }

    /// Reads a time as people type it: RFC 3339 with its offset as written
    /// (`2026-11-21T09:30:00Z`, `…+09:00`), a wall-clock time at the site
    /// (`2026-11-21 09:30[:00]`, `2026-11-21T09:30`), or a date (the start of that day at the site).
    /// Year-first dates with slashes (`2026/11/21`, `2026/11/21 9:30`) are read too: that is how
    /// Excel in Japan writes dates into a CSV file.
    ///
    /// Japanese sheets' dates are read as well (`2024年4月1日`, `令和6年4月1日`, `R6.4.1`,
    /// `H31.4.30`; see [`kura_domain::era`]).
    pub fn parse(&self, s: &str) -> Option<Timestamp> {
        self.read(s).ok()
    }

    /// The same, saying why not: a date that never existed in its era is named as such.
    pub fn read(&self, s: &str) -> Result<Timestamp, String> {
        // An era date starts with its era (令和, R …): only a digit can start the other forms.
        let gregorian = s.trim_start().starts_with(|c: char| c.is_ascii_digit());
        if gregorian && let Some(t) = self.parse_gregorian(s) {
            return Ok(t);
        }
        match kura_domain::era::parse_japanese_date(s) {
            Ok(Some(d)) => d
                .and_hms_opt(0, 0, 0)
                .and_then(|dt| self.instant(dt))
                .ok_or_else(|| format!("{s:?} is outside the dates Kura keeps")),
            Ok(None) => Err(
                "not a date (YYYY-MM-DD, YYYY/MM/DD, 令和6年4月1日, R6.4.1 or RFC 3339)"
                    .to_string(),
            ),
            Err(e) => Err(e.to_string()),
        }
    }

    fn parse_gregorian(&self, s: &str) -> Option<Timestamp> {
        let s = s.trim();
        if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
            return Some(Timestamp::from_datetime(dt.with_timezone(&chrono::Utc)));
        }
        for f in [
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M",
            "%Y/%m/%d %H:%M:%S",
            "%Y/%m/%d %H:%M",
        ] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(s, f) {
                return self.instant(dt);
            }
        }
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(s, "%Y/%m/%d"))
            .ok()?;
        self.instant(d.and_hms_opt(0, 0, 0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn dates_at_the_site() {
        // (zone, instant, the date there)
        let cases = [
            ("Asia/Tokyo", "2026-11-30T15:30:00Z", "2026-12-01"), // 00:30 in Tokyo
            ("Asia/Tokyo", "2026-11-30T14:30:00Z", "2026-11-30"), // 23:30 in Tokyo
            ("UTC", "2026-11-30T15:30:00Z", "2026-11-30"),
            ("Asia/Tokyo", "2026-12-31T15:00:00Z", "2027-01-01"), // the year turns first in Japan
            ("America/New_York", "2026-12-01T03:00:00Z", "2026-11-30"),
        ];
        for (zone, t, date) in cases {
            let c = Calendar::named(zone).unwrap();
            assert_eq!(c.date(at(t)).to_string(), date, "{zone} {t}");
        }
    }

    #[test]
    fn typed_times_are_read_at_the_site() {
        let tokyo = Calendar::named("Asia/Tokyo").unwrap();
        let cases = [
            ("2026-12-01", "2026-11-30T15:00:00.000000Z"),
            ("2026-12-01 09:30", "2026-12-01T00:30:00.000000Z"),
            ("2026-12-01T09:30:15", "2026-12-01T00:30:15.000000Z"),
            ("2026-12-01T09:30:00Z", "2026-12-01T09:30:00.000000Z"),
            ("2026-12-01T09:30:00+09:00", "2026-12-01T00:30:00.000000Z"),
            ("2026/12/01", "2026-11-30T15:00:00.000000Z"),
            ("2026/12/1 9:30", "2026-12-01T00:30:00.000000Z"),
        ];
        for (typed, utc) in cases {
            assert_eq!(tokyo.parse(typed).unwrap().to_string(), utc, "{typed}");
        }
        assert!(tokyo.parse("01/12/2026").is_none());
        assert_eq!(tokyo.wall(at("2026-11-30T15:30:00Z")), "2026-12-01 00:30");
    }

    #[test]
    fn unknown_zones_are_refused_with_a_hint() {
        let e = Calendar::named("Tokyo/Japan").unwrap_err().to_string();
        assert!(e.contains("Asia/Tokyo"), "{e}");
    }
}
