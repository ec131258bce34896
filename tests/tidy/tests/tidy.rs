//! Tidy checks that keep the architecture true: the layering of the crates, and what each
//! crate must never contain. They read the sources, so they run in milliseconds.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn manifest(krate: &str) -> toml_lite::Deps {
    toml_lite::deps(
        &std::fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap(),
    )
}

/// Just enough TOML to list a manifest's [dependencies] names.
mod toml_lite {
    pub struct Deps {
        pub normal: Vec<String>,
        pub all: Vec<String>,
    }
    pub fn deps(text: &str) -> Deps {
        let mut section = String::new();
        let (mut normal, mut all) = (Vec::new(), Vec::new());
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.trim_matches(|c| c == '[' || c == ']').to_string();
                continue;
            }
            if section.ends_with("dependencies")
                && let Some(name) = line
                    .split(['=', '.'])
                    .next()
                    .map(str::trim)
                    .filter(|n| !n.is_empty() && !n.starts_with('#'))
            {
                all.push(name.to_string());
                if section == "dependencies" {
                    normal.push(name.to_string());
                }
            }
        }
        Deps { normal, all }
    }
}

fn crates() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| root().join("crates").join(n).join("Cargo.toml").exists())
        .collect();
    v.sort();
    v
}

#[test]
fn no_crate_under_crates_depends_on_tauri() {
    for c in crates() {
        let d = manifest(&c);
        assert!(
            !d.all.iter().any(|n| n.starts_with("tauri")),
            "{c} depends on Tauri; only src-tauri may"
        );
    }
}

#[test]
fn layering_points_down_only() {
    // Which Kura crates each crate may use.
    let allowed: &[(&str, &[&str])] = &[
        ("kura-domain", &[]),
        ("kura-store", &["kura-domain"]),
        ("kura-labels", &[]),
        ("kura-sync", &["kura-domain", "kura-store", "kura-proto"]),
        (
            "kura-app",
            &[
                "kura-domain",
                "kura-store",
                "kura-labels",
                "kura-proto",
                "kura-sync",
            ],
        ),
        ("kura-cli", &["kura-app"]),
        ("kura-proto", &["kura-domain"]),
        // Its testkit module (the conformance suite's and the benchmark's events) re-exports
        // kura-testkit.
        (
            "kura-registry-db",
            &["kura-domain", "kura-proto", "kura-testkit"],
        ),
        ("kura-testkit", &["kura-domain"]),
        (
            "kura-registry-sqlite",
            &["kura-domain", "kura-proto", "kura-registry-db"],
        ),
        (
            "kura-registry-postgres",
            &["kura-domain", "kura-proto", "kura-registry-db"],
        ),
        (
            "kura-registry",
            &[
                "kura-domain",
                "kura-proto",
                "kura-registry-db",
                "kura-registry-sqlite",
                "kura-registry-postgres",
            ],
        ),
    ];
    for c in crates() {
        let Some((_, ok)) = allowed.iter().find(|(n, _)| *n == c) else {
            panic!(
                "crate {c} has no place in the layering table of this test (and of ARCHITECTURE.md)"
            );
        };
        for d in manifest(&c)
            .normal
            .iter()
            .filter(|d| d.starts_with("kura-"))
        {
            assert!(ok.contains(&d.as_str()), "{c} must not depend on {d}");
        }
    }
}

/// Every file under `dir`, at any depth (nothing when there is no such directory).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The Rust sources under `dir`, with their text; there are some, or the check would pass on
/// nothing.
fn sources_in(dir: &Path) -> Vec<(PathBuf, String)> {
    let out: Vec<(PathBuf, String)> = files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    assert!(!out.is_empty(), "no Rust sources under {}", dir.display());
    out
}

fn sources(krate: &str) -> Vec<(PathBuf, String)> {
    sources_in(&root().join("crates").join(krate).join("src"))
}

#[test]
fn the_domain_does_no_io_and_reads_no_clock() {
    let forbidden = [
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "rusqlite",
        "Utc::now",
        "SystemTime",
        "Local::now",
        "Uuid::now_v7",
        "new_v4",
    ];
    for (path, text) in sources("kura-domain") {
        for f in forbidden {
            assert!(
                !text.contains(f),
                "{} uses {f}: kura-domain is pure",
                path.display()
            );
        }
    }
    let d = manifest("kura-domain");
    for dep in ["rusqlite", "directories", "tracing-subscriber", "tokio"] {
        assert!(
            !d.normal.iter().any(|n| n == dep),
            "kura-domain depends on {dep}"
        );
    }
}

/// The registry is its own program: it shares the domain (rules, event hash) and the protocol
/// with the bench, never the bench's store or use cases, not even in its tests.
#[test]
fn the_registry_never_uses_the_bench_store() {
    for c in crates().iter().filter(|c| c.starts_with("kura-registry")) {
        for dep in manifest(c).all {
            assert!(
                ![
                    "kura-store",
                    "kura-app",
                    "kura-labels",
                    "kura-cli",
                    "kura-sync"
                ]
                .contains(&dep.as_str()),
                "{c} depends on {dep}; the registry uses kura-proto and kura-domain only"
            );
        }
        for (path, text) in sources(c) {
            for bench in ["kura_store", "kura_sync"] {
                assert!(!text.contains(bench), "{} uses {bench}", path.display());
            }
        }
    }
    // Nor the other way round: no bench crate knows a registry backend.
    for c in [
        "kura-domain",
        "kura-store",
        "kura-app",
        "kura-labels",
        "kura-cli",
        "kura-proto",
        "kura-sync",
    ] {
        for dep in manifest(c).all {
            assert!(!dep.starts_with("kura-registry"), "{c} depends on {dep}");
        }
    }
}

/// The wire types are types only: no IO, no clock, no database, no HTTP.
#[test]
fn the_protocol_does_no_io() {
    for (path, text) in sources("kura-proto") {
        for f in [
            "std::fs",
            "std::net",
            "std::process",
            "SystemTime",
            "Utc::now",
            "reqwest",
            "axum",
            "tokio",
        ] {
            assert!(
                !text.contains(f),
                "{} uses {f}: kura-proto is types only",
                path.display()
            );
        }
    }
    for dep in manifest("kura-proto").normal {
        assert!(
            ["kura-domain", "serde", "serde_json", "uuid", "utoipa"].contains(&dep.as_str()),
            "kura-proto depends on {dep}"
        );
    }
}

/// Every backend runs the one conformance suite.
#[test]
fn every_registry_backend_runs_the_conformance_suite() {
    for c in ["kura-registry-sqlite", "kura-registry-postgres"] {
        let t = std::fs::read_to_string(root().join("crates").join(c).join("tests/conformance.rs"))
            .unwrap_or_default();
        assert!(
            t.contains("kura_registry_db::conformance::run("),
            "{c} does not run the conformance suite"
        );
    }
}

#[test]
fn the_labels_crate_does_no_io() {
    for (path, text) in sources("kura-labels") {
        for f in [
            "std::fs",
            "std::net",
            "std::process",
            "Utc::now",
            "SystemTime",
        ] {
            assert!(
                !text.contains(f),
                "{} uses {f}: kura-labels is data in, bytes out",
                path.display()
            );
        }
    }
}

#[test]
fn only_the_app_reads_the_system_clock() {
    for c in ["kura-store", "kura-cli", "kura-sync"] {
        for (path, text) in sources(c) {
            assert!(
                !text.contains("Utc::now()"),
                "{} reads the clock; time comes from kura-app's Clock",
                path.display()
            );
        }
    }
}

/// The store mints no ids: a new workstation's id, like every event's, comes from its caller
/// (`Uuid::now_v7` reads the system clock, which only kura-app does).
#[test]
fn the_store_mints_no_ids() {
    for (path, text) in sources("kura-store") {
        for minted in ["now_v7", "new_v4"] {
            assert!(
                !text.contains(minted),
                "{} calls Uuid::{minted}; ids come from the store's caller",
                path.display()
            );
        }
    }
}

/// Sync never calls the use cases: kura-app starts it, not the other way round.
#[test]
fn sync_knows_nothing_of_the_use_cases() {
    for (path, text) in sources("kura-sync") {
        for above in ["kura_app", "kura_labels", "tauri"] {
            assert!(
                !text.contains(above),
                "{} uses {above}; kura-sync sits below kura-app",
                path.display()
            );
        }
    }
}

#[test]
fn the_cli_reaches_nothing_below_kura_app() {
    for (path, text) in sources("kura-cli") {
        for below in ["kura_store", "kura_domain", "kura_labels", "rusqlite"] {
            assert!(
                !text.contains(below),
                "{} uses {below}; faces call kura-app only",
                path.display()
            );
        }
    }
}

/// The window's shell: no SQL, nothing below kura-app, and only `backend.ts` calls `invoke`.
#[test]
fn the_window_is_a_thin_shell() {
    let dir = root().join("src-tauri/src");
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        for below in [
            "kura_store",
            "kura_domain",
            "kura_labels",
            "rusqlite",
            "SELECT ",
            "INSERT ",
            "UPDATE ",
        ] {
            assert!(
                !text.contains(below),
                "{} uses {below}; the shell calls kura-app only",
                p.display()
            );
        }
    }
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "ts" || x == "svelte") {
                out.push(p);
            }
        }
    }
    let mut ui = Vec::new();
    walk(&root().join("ui/src"), &mut ui);
    assert!(ui.len() > 10, "the ui sources are there");
    for p in ui {
        let text = std::fs::read_to_string(&p).unwrap();
        let calls = text.contains("@tauri-apps/api")
            || text.contains("invoke(")
            || text.contains("invoke<");
        assert!(
            !calls || p.ends_with("lib/backend.ts") || p.to_string_lossy().contains("/test/"),
            "{} calls Tauri; only src/lib/backend.ts may",
            p.display()
        );
    }
}

/// Every released migration, pinned by the SHA-256 of its file. A database that ran a migration
/// never runs it again, so an edit to a released one silently splits the world into databases
/// with the old schema and databases with the new: write a new migration instead. Releasing a
/// migration means adding its line here.
const RELEASED_MIGRATIONS: &[(&str, &str)] = &[
    (
        "crates/kura-store/src/migrations/0001_custody.sql",
        "841654520a66f221398a0722c1ffc91b4bf0f0da24fd9792f9a4d66866d4c591",
    ),
    (
        "crates/kura-store/src/migrations/0002_print_log.sql",
        "b44bf2a2f84bd38e831a888f058f72c657a84c7058a933f16aabfbf0050102c1",
    ),
    (
        "crates/kura-store/src/migrations/0003_due_index.sql",
        "e374756bd9918d0d9f2b094cd8ecf91227f42158030f06649ab098b446919b0c",
    ),
    (
        "crates/kura-store/src/migrations/0004_sync_state.sql",
        "363d08399f75b407a55defe623f3399acc26e639e3f8d570f581ebed3636d182",
    ),
    (
        "crates/kura-store/src/migrations/0005_registry_order.sql",
        "8ee216babd4d6400a4003f29ca5ecc148b097846f43a882c0c679901a20d18f0",
    ),
    (
        "crates/kura-store/src/migrations/0006_users.sql",
        "e08d00b6ff3bcf3d3f85f721cdcfd4b546a73a879c7f8df54b41c56a33d61166",
    ),
    (
        "crates/kura-store/src/migrations/0007_signatures.sql",
        "f16d6fd9801eb6880bd212164240e64c0c007a129e5e37c57c1f26bb3180cf78",
    ),
    (
        "crates/kura-store/src/migrations/0008_withdrawals.sql",
        "109b0c62b2ca78cf490f2ad055ab31bc33d014af6ddcc6856bb9d80ef4f2932a",
    ),
    (
        "crates/kura-store/src/migrations/0009_open_conflicts.sql",
        "da083cc43dbbd85cf0b1198a63ac8eda032aef5c6c0042282779fb6b096e9f81",
    ),
    (
        "crates/kura-store/src/migrations/0010_order_relearn.sql",
        "e27ab5c067e035345917739b55daa0629a10c3a3c6bb181c5f02027c2c1fc298",
    ),
    (
        "crates/kura-store/src/migrations/0011_restored.sql",
        "bf1b2f7266695db2e0622e0529598dab05c957ac86d66477fa62380d12f8326f",
    ),
    (
        "crates/kura-store/src/migrations/0012_placed_at.sql",
        "f626964847eab3785d059cf3319a5125c0a9642d7d15fa09b2c550d43af8866e",
    ),
    (
        "crates/kura-store/src/migrations/0013_signing_keys.sql",
        "e19ff8aebe901562358cd10764f1028d34ae1d5879bb0248b9486fbfd9f603c9",
    ),
    (
        "crates/kura-store/src/migrations/0014_shipments.sql",
        "ee80167fb2237bc430bb613982d65358a8288a71843e2412ce2ff64e316ba172",
    ),
    (
        "crates/kura-store/src/migrations/0015_bundles.sql",
        "b66d8fec9be79282515bdf31a62e07a27a88de8c9f297ea08f8612d4baf51a1d",
    ),
    (
        "crates/kura-store/src/migrations/0016_parcels.sql",
        "84f37d7897fae9414474b98b03af661bc293756c6bad97095cac787dfa719d88",
    ),
    (
        "crates/kura-registry-sqlite/migrations/0001_registry.sql",
        "2a0e2184e0bc444199dc7aba0188972d40f4540fdebc8593ccb01aebf5b5516a",
    ),
    (
        "crates/kura-registry-postgres/migrations/0001_registry.sql",
        "71f5d95b613cd148946b95f4c6665f1efd388bbacdef4ab71bf116b0c294b4e4",
    ),
    (
        "crates/kura-registry-sqlite/migrations/0002_replacement.sql",
        "7c882e1ad485f5ab533d5d55c82b1a9f50303083b3743850d2e0f0f7050e14b4",
    ),
    (
        "crates/kura-registry-postgres/migrations/0002_replacement.sql",
        "09164b2770ef66790af07666344466535e2da4dea2951885e75bc2bc5eef54a9",
    ),
    (
        "crates/kura-registry-sqlite/migrations/0003_limits.sql",
        "f5e6f4ddcf466eb0ec21368f7619e5085101a53834d8fd2ab1b50fdb84c348e1",
    ),
    (
        "crates/kura-registry-postgres/migrations/0003_limits.sql",
        "6677483d2106acb7f91e0153e99a334ecc7e413a4a251b179f60332872aa5d46",
    ),
    (
        "crates/kura-registry-sqlite/migrations/0004_site_users.sql",
        "b114e75d9954a1e61ced188a50c05c20526c0762c7060afd4745c6ce32bb1e50",
    ),
    (
        "crates/kura-registry-postgres/migrations/0004_site_users.sql",
        "e78f574e59885b62292e4bef9477f6caa5b892b7bcc7e36e1905e0dfe3340cfa",
    ),
    (
        "crates/kura-registry-sqlite/migrations/0005_parcels.sql",
        "df1b750e98dd28a5ce9a658bb283d35c490ecde7d61724bc83f10fb274c62199",
    ),
    (
        "crates/kura-registry-postgres/migrations/0005_parcels.sql",
        "c35a218485dfe7bbe3c4c4aa344d35ea8feb979d23d4d8cf7e6748b87c0e2a7f",
    ),
];

#[test]
fn migrations_are_numbered_pinned_and_never_edited() {
    use sha2::Digest;
    for dir in [
        "crates/kura-store/src/migrations",
        "crates/kura-registry-sqlite/migrations",
        "crates/kura-registry-postgres/migrations",
    ] {
        let mut names: Vec<String> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for (i, n) in names.iter().enumerate() {
            assert!(
                n.starts_with(&format!("{:04}_", i + 1)),
                "{dir}: migration files must be numbered 0001_, 0002_, … without gaps: {n}"
            );
            let path = format!("{dir}/{n}");
            let pinned = RELEASED_MIGRATIONS
                .iter()
                .find(|(p, _)| *p == path)
                .unwrap_or_else(|| {
                    panic!(
                        "{path} is not pinned: add it to RELEASED_MIGRATIONS when it is released"
                    )
                });
            let have = sha2::Sha256::digest(std::fs::read(root().join(&path)).unwrap());
            let have: String = have.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(
                have, pinned.1,
                "{path} changed after release: put the change in a new migration and restore this file"
            );
        }
    }
    for (path, _) in RELEASED_MIGRATIONS {
        assert!(
            root().join(path).exists(),
            "{path} was released and must stay"
        );
    }
}

/// The faces parse nothing a person chooses: a role, what a signature means and whether setting
/// a password is signed are kura-app's (`users::role`, `users::meaning`,
/// `Kura::secret_needs_signature`), so both faces refuse the same input with the same words.
#[test]
fn the_faces_parse_no_role_or_meaning() {
    let mut files = sources("kura-cli");
    files.extend(sources_in(&root().join("src-tauri/src")));
    assert!(files.len() > 2, "the faces' sources were found");
    for (path, text) in files {
        for parse in ["Role::parse", "Meaning::parse", "eq_ignore_ascii_case(who"] {
            assert!(
                !text.contains(parse),
                "{} has {parse}: what a person chooses is parsed in kura-app, once for both faces",
                path.display()
            );
        }
    }
}

/// ARCHITECTURE.md stays true: every crate under crates/ has its section, every crate it names
/// exists, and every source file a crate's section names is in that crate.
#[test]
fn architecture_names_what_exists() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let all = crates();
    // The sections: "### `crates/a`" or "### `crates/a`, `crates/b`".
    let mut sections: Vec<(Vec<String>, String)> = Vec::new();
    for part in text.split("\n### ").skip(1) {
        let (head, body) = part.split_once('\n').unwrap_or((part, ""));
        let named: Vec<String> = head
            .split('`')
            .filter_map(|t| t.strip_prefix("crates/"))
            .map(str::to_string)
            .collect();
        if !named.is_empty() {
            sections.push((named, body.split("\n## ").next().unwrap_or("").to_string()));
        }
    }
    for c in &all {
        assert!(
            sections.iter().any(|(n, _)| n.contains(c)),
            "crates/{c} has no section in ARCHITECTURE.md"
        );
    }
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '/')) {
        if let Some(name) = word
            .strip_prefix("crates/")
            .map(|n| n.split('/').next().unwrap())
            && !name.is_empty()
        {
            assert!(
                all.iter().any(|c| c == name),
                "ARCHITECTURE.md names crates/{name}, which does not exist"
            );
        }
    }
    let mut checked = 0;
    let mut missing = Vec::new();
    for (named, body) in &sections {
        let files: Vec<String> = named
            .iter()
            .flat_map(|c| files_under(&root().join("crates").join(c)))
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        for token in body.split('`').skip(1).step_by(2) {
            let token = token.trim();
            if !token.ends_with(".rs") && !token.ends_with(".sql") {
                continue;
            }
            // "sync/pull.rs", "tests/store.rs", "migrations/0001_custody.sql": the path's end.
            if token.contains(' ') || token.contains('*') || token.contains('…') {
                continue;
            }
            checked += 1;
            // A path from the top of the repository, or the end of a path in the crate.
            if !root().join(token).exists()
                && !files.iter().any(|f| f.ends_with(&format!("/{token}")))
            {
                missing.push(format!("{named:?}: {token}"));
            }
        }
    }
    assert!(checked > 40, "the file names were read ({checked})");
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names files its crates do not have:\n{}",
        missing.join("\n")
    );
}

/// The arrows ARCHITECTURE.md lists ("- `crate` → `dep`, …") are the manifests' own: every crate
/// under crates/ has its line, and its line names exactly the Kura crates it depends on.
#[test]
fn architecture_draws_the_arrows_the_manifests_have() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    // "- `crate` → …", and the indented lines that continue it.
    let mut arrows: Vec<(String, String)> = Vec::new();
    let mut open = false;
    for line in text.lines() {
        if let Some((name, deps)) = line
            .strip_prefix("- `")
            .and_then(|rest| rest.split_once("` → "))
        {
            arrows.push((name.to_string(), deps.to_string()));
            open = true;
        } else if open && line.starts_with("  ") {
            arrows.last_mut().unwrap().1.push_str(line);
        } else {
            open = false;
        }
    }
    let arrows: Vec<(String, Vec<String>)> = arrows
        .into_iter()
        .map(|(name, text)| {
            let mut deps: Vec<String> = text
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            deps.sort();
            (name, deps)
        })
        .collect();
    for c in crates() {
        let Some((_, drawn)) = arrows.iter().find(|(n, _)| *n == c) else {
            panic!("ARCHITECTURE.md lists no arrows for {c}");
        };
        let mut have: Vec<String> = manifest(&c)
            .normal
            .into_iter()
            .filter(|d| d.starts_with("kura-"))
            .collect();
        have.sort();
        assert_eq!(
            drawn, &have,
            "{c}: the arrows ARCHITECTURE.md lists, and the Kura crates its manifest depends on"
        );
    }
    for (name, _) in &arrows {
        assert!(
            crates().contains(name),
            "ARCHITECTURE.md lists arrows for {name}, which is not a crate under crates/"
        );
    }
}
