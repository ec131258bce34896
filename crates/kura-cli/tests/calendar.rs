//! The site's calendar, end to end: the real `kura` binary run at a given wall-clock time by
//! libfaketime (the process's own clock, not an injected one) in a given `TZ`. Due dates,
//! "today", "overdue", date-only inputs and the year in new Kura IDs are the site's dates.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// `kura --db DB --json ARGS` with the system zone `tz`, at `wall` (that zone's wall clock).
fn kura_at(db: &Path, tz: &str, wall: &str, args: &[&str]) -> Output {
    Command::new("faketime")
        .arg(wall)
        .arg(env!("CARGO_BIN_EXE_kura"))
        .arg("--db")
        .arg(db)
        .arg("--json")
        .args(args)
        .env("TZ", tz)
        .env("KURA_USER", "tester")
        // Only the wall clock moves; timeouts and busy waits keep the real monotonic clock.
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .output()
        .expect("faketime runs (scripts/setup installs it)")
}

fn ok_at(db: &Path, tz: &str, wall: &str, args: &[&str]) -> Value {
    let o = kura_at(db, tz, wall, args);
    assert!(
        o.status.success(),
        "kura {args:?} at {wall} {tz} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn err_at(db: &Path, tz: &str, wall: &str, args: &[&str]) -> Value {
    let o = kura_at(db, tz, wall, args);
    assert!(
        !o.status.success(),
        "kura {args:?} at {wall} {tz} succeeded"
    );
    serde_json::from_slice::<Value>(&o.stdout).unwrap()["error"].clone()
}

/// The number of custody events, read with the sqlite3 shell.
fn events(db: &Path) -> i64 {
    let o = Command::new("sqlite3")
        .arg(db)
        .arg("SELECT count(*) FROM events")
        .output()
        .expect("sqlite3 runs");
    String::from_utf8(o.stdout).unwrap().trim().parse().unwrap()
}

fn iso_micros(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap()
        .timestamp_micros()
}

#[test]
fn due_dates_today_and_overdue_are_dates_at_the_site() {
    struct Case {
        tz: &'static str,
        /// The wall clock where the bench stands.
        wall: &'static str,
        /// The date there, and the day before and after.
        today: &'static str,
        yesterday: &'static str,
        tomorrow_wall: &'static str,
        /// The instant `--collected TODAY` means: the start of that day at the site.
        midnight_utc: &'static str,
    }
    let cases = [
        // 00:30 in Tokyo is still yesterday in UTC: the UTC calendar accepted yesterday's due date.
        Case {
            tz: "Asia/Tokyo",
            wall: "2026-12-01 00:30:00",
            today: "2026-12-01",
            yesterday: "2026-11-30",
            tomorrow_wall: "2026-12-02 00:30:00",
            midnight_utc: "2026-11-30T15:00:00Z",
        },
        Case {
            tz: "Asia/Tokyo",
            wall: "2026-11-30 23:30:00",
            today: "2026-11-30",
            yesterday: "2026-11-29",
            tomorrow_wall: "2026-12-01 23:30:00",
            midnight_utc: "2026-11-29T15:00:00Z",
        },
        Case {
            tz: "UTC",
            wall: "2026-11-30 15:30:00",
            today: "2026-11-30",
            yesterday: "2026-11-29",
            tomorrow_wall: "2026-12-01 15:30:00",
            midnight_utc: "2026-11-30T00:00:00Z",
        },
    ];
    for c in cases {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("kura.sqlite3");
        let (tz, wall) = (c.tz, c.wall);
        let at = |args: &[&str]| ok_at(&db, tz, wall, args);
        at(&["init", "--prefix", "NCC"]);
        let layout = d.path().join("layout.toml");
        std::fs::write(&layout, include_str!("../../../assets/demo/layout.toml")).unwrap();
        at(&["storage", "apply", layout.to_str().unwrap()]);
        let zone = at(&["time-zone"]);
        assert_eq!(zone["time_zone"], tz, "{tz}: the system's zone by default");
        assert_eq!(zone["today"], c.today, "{tz} {wall}");
        let r = at(&[
            "register",
            "--type",
            "PL1",
            "--study",
            "S",
            "--donor",
            "D1",
            "--collected",
            c.today,
        ]);
        let code = r["parent"].as_str().unwrap().to_string();
        at(&["check-in", &code, "BOX-0001"]);
        let v = at(&["show", &code]);
        assert_eq!(
            v["collected_at"].as_i64().unwrap(),
            iso_micros(c.midnight_utc),
            "{tz}: a bare date is the start of that day at the site"
        );

        // Due yesterday (at the site) is refused, and nothing is written.
        let before = events(&db);
        let e = err_at(
            &db,
            tz,
            wall,
            &["check-out", &code, "--to", "Dr. Sato", "--due", c.yesterday],
        );
        assert_eq!(e["code"], "bad_input", "{tz} {wall}: {e}");
        assert!(e["message"].as_str().unwrap().contains(c.yesterday), "{e}");
        assert_eq!(events(&db), before, "a refused check-out writes nothing");
        // Due today is accepted, and is not overdue today…
        at(&["check-out", &code, "--to", "Dr. Sato", "--due", c.today]);
        let o = at(&["overdue"]);
        assert_eq!(o["today"], c.today);
        assert_eq!(
            o["overdue"].as_array().unwrap().len(),
            0,
            "{tz} {wall}: {o}"
        );
        // …but it is tomorrow.
        let o = ok_at(&db, tz, c.tomorrow_wall, &["overdue"]);
        let late = o["overdue"].as_array().unwrap();
        assert_eq!(late.len(), 1, "{tz} {}: {o}", c.tomorrow_wall);
        assert_eq!(late[0]["code"], code.as_str());
        assert_eq!(late[0]["due"], c.today);
        assert_eq!(events(&db), before + 1);
        let v = ok_at(&db, tz, c.tomorrow_wall, &["verify"]);
        assert_eq!(v["ok"], true, "{v}");
    }
}

#[test]
fn the_sites_zone_outranks_the_computers_and_the_year_turns_at_the_site() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("kura.sqlite3");
    // A computer set to UTC at a bench in Tokyo: 2027-01-01 00:30 in Tokyo is 15:30 on New
    // Year's Eve in UTC.
    let (tz, wall) = ("UTC", "2026-12-31 15:30:00");
    let at = |args: &[&str]| ok_at(&db, tz, wall, args);
    at(&["init", "--prefix", "NCC"]);
    assert_eq!(at(&["time-zone"])["today"], "2026-12-31");
    let z = at(&["time-zone", "Asia/Tokyo"]);
    assert_eq!(z["time_zone"], "Asia/Tokyo");
    assert_eq!(z["chosen"], true);
    assert_eq!(z["today"], "2027-01-01");
    // The first ID of the new year carries the site's year.
    let r = at(&["register", "--type", "PL1", "--study", "S", "--donor", "D1"]);
    let code = r["parent"].as_str().unwrap();
    assert!(code.starts_with("NCC27"), "{code}");
    // A zone that does not exist is refused with a hint; the setting is unchanged.
    let e = err_at(&db, tz, wall, &["time-zone", "Tokyo"]);
    assert_eq!(e["code"], "bad_input");
    assert!(e["message"].as_str().unwrap().contains("Asia/Tokyo"), "{e}");
    assert_eq!(at(&["time-zone"])["time_zone"], "Asia/Tokyo");
    // Back to the computer's zone.
    let z = at(&["time-zone", "--system"]);
    assert_eq!(z["time_zone"], "UTC");
    assert_eq!(z["chosen"], false);
}
