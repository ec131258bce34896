//! Embeds the front end (`ui/dist`). On a fresh clone, where it has not been built yet, this
//! builds it with npm first, so that a plain `cargo build` gives a working window.

use std::path::Path;
use std::process::Command;

fn npm(ui: &Path, args: &[&str]) {
    let status = Command::new("npm").args(args).current_dir(ui).status().unwrap_or_else(|e| {
        panic!("cannot run npm ({e}); install Node.js 20+, or build the front end first: (cd ui && npm ci && npm run build)")
    });
    assert!(
        status.success(),
        "`npm {}` failed in ui/; see its output above",
        args.join(" ")
    );
}

fn main() {
    // Read at run time: a build script compiled for one checkout may be reused by another that
    // shares the target directory.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let ui = Path::new(&manifest).join("../ui");
    if !ui.join("dist/index.html").exists() {
        if !ui.join("node_modules").exists() {
            npm(&ui, &["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
        }
        npm(&ui, &["run", "build", "--silent"]);
    }
    println!("cargo:rerun-if-changed=../ui/dist/index.html");
    tauri_build::build()
}
