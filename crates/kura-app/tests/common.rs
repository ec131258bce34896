#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use kura_app::Kura;
use kura_domain::Timestamp;
use kura_domain::time::SteppingClock;

pub struct Bench {
    pub dir: tempfile::TempDir,
    pub kura: Kura,
}

impl Bench {
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("kura.sqlite3")
    }
}

pub const LAYOUT: &str = r#"
[[container]]
code = "SITE"
type = "site"
name = "Test site"

[[container]]
code = "ROOM"
type = "room"
parent = "SITE"

[[container]]
code = "F1"
type = "freezer-5-shelves"
parent = "ROOM"
temperature = "-80"

[[container]]
code = "R1"
type = "rack-5x4"
parent = "F1"
position = "I"

[[container]]
code = "BX{n}"
count = 3
type = "box-9x9"
parent = "R1"

[[container]]
code = "SMALL"
type = "box-5x5"
parent = "R1"
"#;

/// A fresh database in a temp dir, initialised with prefix TST and the test layout.
pub fn bench() -> Bench {
    bench_with("TST")
}

/// The same, issuing Kura IDs with `prefix` (another site's bench).
pub fn bench_with(prefix: &str) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SteppingClock::new(
        Timestamp::parse("2026-11-21T09:00:00Z").unwrap(),
        1_000_000,
    ));
    let mut kura = Kura::open_with_clock(dir.path().join("kura.sqlite3"), "tester", clock).unwrap();
    kura.init(prefix, 7).unwrap();
    kura.apply_layout(LAYOUT).unwrap();
    Bench { dir, kura }
}

pub fn register(k: &mut Kura, aliquots: u32) -> kura_app::Registered {
    k.register(&kura_app::RegisterRequest {
        sample_type: "BLD".into(),
        container: "PED".into(),
        storage: "A".into(),
        quantity: Some("10".into()),
        unit: Some("mL".into()),
        study: "研究A".into(),
        donor: "D0001".into(),
        aliquots,
        aliquot_quantity: if aliquots > 0 {
            Some("0.2".into())
        } else {
            None
        },
        ..Default::default()
    })
    .unwrap()
}
