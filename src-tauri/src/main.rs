//! Kura's desktop window: setup, state and commands of a few lines each that call `kura-app`.
//! No SQL and no business rules here; errors cross IPC as `{code, message, details}`.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::sync::Mutex;

use kura_app::{AppError, Kura, WireError};
use tauri::State;

struct App(Mutex<Kura>);

type R<T> = Result<T, WireError>;

fn wire(e: AppError) -> WireError {
    e.to_wire()
}

#[tauri::command]
fn show(app: State<'_, App>, scan: String) -> R<kura_app::SpecimenView> {
    app.0.lock().expect("not poisoned").show(&scan).map_err(wire)
}

#[tauri::command]
fn box_map(app: State<'_, App>, container: String) -> R<kura_app::BoxMap> {
    app.0.lock().expect("not poisoned").box_map(&container).map_err(wire)
}

#[tauri::command]
fn check_in(app: State<'_, App>, specimen: String, container: String, position: Option<String>) -> R<kura_app::Placed> {
    app.0.lock().expect("not poisoned").check_in(&specimen, &container, position.as_deref()).map_err(wire)
}

#[tauri::command]
fn stats(app: State<'_, App>) -> R<kura_app::Stats> {
    app.0.lock().expect("not poisoned").stats().map_err(wire)
}

fn main() {
    let path = std::env::var_os("KURA_DB").map(std::path::PathBuf::from).unwrap_or_else(kura_app::default_db_path);
    let actor = std::env::var("KURA_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "technician".into());
    let kura = match Kura::open(&path, &actor) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code());
            std::process::exit(1);
        }
    };
    tauri::Builder::default()
        .manage(App(Mutex::new(kura)))
        .invoke_handler(tauri::generate_handler![show, box_map, check_in, stats])
        .run(tauri::generate_context!())
        .expect("the Kura window runs");
}
