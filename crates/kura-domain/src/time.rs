//! Time enters the domain as values: a [`Timestamp`] (UTC, microseconds) handed in through a
//! [`Clock`]. The rules never call `now()` themselves.

use std::fmt;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A UTC instant in microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_datetime(dt: DateTime<Utc>) -> Timestamp {
        Timestamp(dt.timestamp_micros())
    }
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.0).single().unwrap_or_default()
    }
    pub fn millis(self) -> u64 {
        u64::try_from(self.0.div_euclid(1000)).unwrap_or(0)
    }
    /// Parses RFC 3339 (`2026-11-21T09:30:00Z`, `2026-11-21T18:30:00+09:00`) or a bare date
    /// (taken as midnight UTC).
    pub fn parse(s: &str) -> Option<Timestamp> {
        let s = s.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(Timestamp::from_datetime(dt.with_timezone(&Utc)));
        }
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
            return Some(Timestamp::from_datetime(dt.and_utc()));
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|dt| Timestamp::from_datetime(dt.and_utc()))
    }
    pub fn date(self) -> NaiveDate {
        self.to_datetime().date_naive()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_datetime().format("%Y-%m-%dT%H:%M:%S%.6fZ"))
    }
}

/// Where time comes from. The app uses the system clock; tests and the demo use fixed ones.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// A clock that returns a fixed instant and advances by `step` microseconds on every call.
#[derive(Debug)]
pub struct SteppingClock {
    next: std::sync::atomic::AtomicI64,
    step: i64,
}

impl SteppingClock {
    pub fn new(start: Timestamp, step_micros: i64) -> SteppingClock {
        SteppingClock {
            next: std::sync::atomic::AtomicI64::new(start.0),
            step: step_micros,
        }
    }
}

impl Clock for SteppingClock {
    fn now(&self) -> Timestamp {
        Timestamp(
            self.next
                .fetch_add(self.step, std::sync::atomic::Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        let a = Timestamp::parse("2026-11-21T09:30:00Z").unwrap();
        let b = Timestamp::parse("2026-11-21T18:30:00+09:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2026-11-21T09:30:00.000000Z");
        assert_eq!(
            Timestamp::parse("2026-11-21").unwrap().date().to_string(),
            "2026-11-21"
        );
        assert!(Timestamp::parse("21/11/2026").is_none());
    }
}
