//! Bulk intake on enrolled benches: an import needing more IDs than the bench holds leases them
//! from the registry while it is online, and is refused, naming what is missing, while it is not.

use std::collections::BTreeSet;
use std::path::Path;

use kura_sync_tests::{Bench, Registry};

use crate::{agree, settle, site};

/// `n` rows of new tubes (no code: Kura issues an ID for each).
fn new_tubes(dir: &Path, name: &str, n: usize) -> String {
    let mut csv = String::from("code,type,container,storage,study,donor\n");
    for i in 0..n {
        csv.push_str(&format!(",PL1,SCI,D,コホート{name},D-{i:05}\n"));
    }
    let path = dir.join(format!("{name}.csv"));
    std::fs::write(&path, csv).unwrap();
    path.display().to_string()
}

fn ids(b: &Bench) -> Vec<String> {
    b.specimens().into_keys().collect()
}

#[test]
fn five_thousand_new_tubes_on_an_enrolled_online_bench() {
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::sqlite(d.path());
    intake(&mut reg, d.path());
}

pub fn intake(reg: &mut Registry, dir: &Path) {
    let v = site(reg, dir, &["a", "b", "c"]);
    let (a, b, c) = (&v[0], &v[1], &v[2]);
    for x in [a, b, c] {
        assert_eq!(
            x.status()["ids_left"],
            1000,
            "a fresh bench holds one lease"
        );
        assert_eq!(
            x.status()["lease_size"],
            1000,
            "a default lease for a bench with no use"
        );
    }
    // 5,000 new tubes on a bench holding 1,000 IDs, the registry up: leased, then accepted.
    let r = a.ok(&["import", &new_tubes(dir, "a", 5000)]);
    assert_eq!(
        (r["rows"].as_u64(), r["issued"].as_u64()),
        (Some(5000), Some(5000))
    );
    // The next lease follows the bench's use: a week at 5,000 a day.
    assert_eq!(a.status()["lease_size"], 35_000);
    // Two other benches import at the same time of day.
    b.ok(&["import", &new_tubes(dir, "b", 2500)]);
    c.ok(&["import", &new_tubes(dir, "c", 1200)]);
    // Offline, a bench short of IDs is refused, naming how many are missing; nothing written.
    reg.kill();
    let before = c.events();
    let left = c.status()["ids_left"].as_u64().unwrap();
    let e = c
        .try_run(&["import", &new_tubes(dir, "c2", (left + 700) as usize)])
        .unwrap_err();
    assert_eq!(e["code"], "no_serials_left", "{e}");
    assert_eq!(e["details"]["missing"], 700, "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("700 missing"), "{msg}");
    assert_eq!(c.events(), before, "nothing written");
    reg.restart();
    settle(&[a, b, c]);
    let all: Vec<String> = [a, b, c]
        .iter()
        .flat_map(|x| ids(x))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let registered = reg.specimens("NCGM");
    assert_eq!(
        registered.len(),
        5000 + 2500 + 1200,
        "every ID once at the registry"
    );
    assert_eq!(
        all.len(),
        registered.len(),
        "no ID issued twice across three benches"
    );
    agree(reg, "NCGM", &[a, b, c]);
}
