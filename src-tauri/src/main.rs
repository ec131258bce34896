//! Kura's desktop window: setup, state and commands of a few lines each that call `kura-app`.
//! No SQL and no business rules here; errors cross IPC as `{code, message, details}`.
//!
//! Commands are `async` so that Tauri runs them off the window's main thread: a long print or
//! a 10,000-row search never freezes the scan bar.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use kura_app::audit::{AuditExport, AuditQuery};
use kura_app::backup::{BackupReport, BackupSettings};
use kura_app::import::{ExportFilter, Exported, ImportOptions, ImportReport};
use kura_app::rack::{Order, Reconciliation, ScanFile};
use kura_app::space::Space;
use kura_app::users::Act;
use kura_app::{
    BoxMap, CheckOut, ConflictView, ContainerRow, EnrollReport, EventRow, FindQuery, Kura,
    LabelPreview, LineageNode, Located, Placed, PrintReport, PrinterConfig, PrinterTest,
    Progressed, QueuedForDestruction, RegisterRequest, Registered, RejectionRow, ScanFlags,
    SessionInfo, SignatureView, Signing, SpecimenView, Stats, StockInfo, SyncStatus, SyncWorker,
    UserView, Who, WireError,
};
use tauri::State;
use tauri::ipc::Channel;

#[cfg(test)]
mod parity;
#[cfg(test)]
mod types;

struct App(Mutex<Kura>);

impl App {
    fn kura(&self) -> MutexGuard<'_, Kura> {
        // A panic inside a use case leaves the store consistent (its transaction rolled back).
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The background sync: its own thread and connection, never the window's `Kura`.
struct Syncer(SyncWorker);

type R<T> = Result<T, WireError>;
type S<'a> = State<'a, App>;
type Sy<'a> = State<'a, Syncer>;

static STARTED: OnceLock<Instant> = OnceLock::new();

fn wire(e: kura_app::AppError) -> WireError {
    e.to_wire()
}

/// The page calls this once its scan bar has focus: milliseconds since the process started.
#[tauri::command]
async fn ready() -> R<f64> {
    let ms = STARTED
        .get()
        .map(|t| t.elapsed().as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    tracing::info!(ms, "scan bar interactive");
    Ok(ms)
}

/// The language the window starts in until the user picks one: the system locale's.
#[tauri::command]
async fn system_language() -> R<String> {
    Ok(kura_app::input::language(locale().iter().map(|v| v.as_deref())).to_string())
}

fn locale() -> [Option<String>; 3] {
    ["LC_ALL", "LC_MESSAGES", "LANG"].map(|v| std::env::var(v).ok())
}

#[tauri::command]
async fn session(app: S<'_>) -> R<SessionInfo> {
    app.kura().session_info().map_err(wire)
}

#[tauri::command]
async fn stats(app: S<'_>) -> R<Stats> {
    app.kura().stats().map_err(wire)
}

#[tauri::command]
async fn show(app: S<'_>, scan: String) -> R<SpecimenView> {
    app.kura().show(&scan).map_err(wire)
}

#[tauri::command]
async fn find(app: S<'_>, query: FindQuery) -> R<Vec<SpecimenView>> {
    app.kura().find(&query).map_err(wire)
}

/// A scanned specimen and the map of its box, in one call (the Find screen).
#[tauri::command]
async fn locate(app: S<'_>, scan: String) -> R<Located> {
    app.kura().locate(&scan).map_err(wire)
}

/// What a scan of a specimen must say besides the screen's answer (in conflict, consent
/// withdrawn), when that answer did not carry it.
#[tauri::command]
async fn scan_flags(app: S<'_>, specimen: String) -> R<ScanFlags> {
    app.kura().scan_flags(&specimen).map_err(wire)
}

#[tauri::command]
async fn history(app: S<'_>, specimen: String) -> R<Vec<EventRow>> {
    app.kura().history(&specimen).map_err(wire)
}

#[tauri::command]
async fn lineage(app: S<'_>, specimen: String) -> R<LineageNode> {
    app.kura().lineage(&specimen).map_err(wire)
}

#[tauri::command]
async fn box_map(app: S<'_>, container: String) -> R<BoxMap> {
    app.kura().box_map(&container).map_err(wire)
}

#[tauri::command]
async fn containers(app: S<'_>, parent: Option<String>) -> R<Vec<ContainerRow>> {
    app.kura().containers(parent.as_deref()).map_err(wire)
}

#[tauri::command]
async fn check_in(
    app: S<'_>,
    specimen: String,
    container: String,
    position: Option<String>,
) -> R<Placed> {
    app.kura()
        .check_in(&specimen, &container, position.as_deref())
        .map_err(wire)
}

#[tauri::command]
async fn check_out(app: S<'_>, specimens: Vec<String>, out: CheckOut) -> R<usize> {
    app.kura().check_out(&specimens, &out).map_err(wire)
}

#[tauri::command]
async fn return_specimen(app: S<'_>, specimen: String, thawed: bool) -> R<Placed> {
    app.kura().return_specimen(&specimen, thawed).map_err(wire)
}

#[tauri::command]
async fn move_specimen(
    app: S<'_>,
    specimen: String,
    container: String,
    position: Option<String>,
) -> R<Placed> {
    app.kura()
        .move_specimen(&specimen, &container, position.as_deref())
        .map_err(wire)
}

#[tauri::command]
async fn move_container(
    app: S<'_>,
    container: String,
    parent: String,
    position: Option<String>,
    signing: Option<Signing>,
) -> R<()> {
    app.kura()
        .with_signature(Act::StorageLayout, signing.as_ref(), |k| {
            k.move_container(&container, &parent, position.as_deref())
        })
        .map_err(wire)
}

#[tauri::command]
async fn register(app: S<'_>, request: RegisterRequest) -> R<Registered> {
    app.kura().register(&request).map_err(wire)
}

#[tauri::command]
async fn vocabulary() -> R<kura_app::Vocabulary> {
    Ok(kura_app::register::vocabulary())
}

#[tauri::command]
async fn thaw(app: S<'_>, specimen: String) -> R<()> {
    app.kura().thaw(&specimen).map_err(wire)
}

#[tauri::command]
async fn consume(
    app: S<'_>,
    specimen: String,
    amount: Option<String>,
    unit: Option<String>,
    used_up: bool,
) -> R<()> {
    app.kura()
        .consume(&specimen, amount.as_deref(), unit.as_deref(), used_up)
        .map_err(wire)
}

#[tauri::command]
async fn block(app: S<'_>, specimen: String, reason: String) -> R<()> {
    app.kura().block(&specimen, &reason).map_err(wire)
}

#[tauri::command]
async fn unblock(app: S<'_>, specimen: String, reason: String) -> R<()> {
    app.kura()
        .unblock(&specimen, &reason)
        .map(drop)
        .map_err(wire)
}

#[tauri::command]
async fn dispose(
    app: S<'_>,
    specimen: String,
    reason: String,
    signing: Option<Signing>,
) -> R<Option<SignatureView>> {
    app.kura()
        .with_signature(Act::Dispose, signing.as_ref(), |k| {
            k.dispose(&specimen, &reason)
        })
        .map_err(wire)
}

#[tauri::command]
async fn ship(
    app: S<'_>,
    form: kura_app::ShipForm,
    sealed: bool,
    signing: Option<Signing>,
) -> R<kura_app::Shipped> {
    let mut k = app.kura();
    // Out of the network the dispatch is a supervisor's signed distribution.
    if form
        .to_recipient
        .as_deref()
        .is_some_and(|r| !r.trim().is_empty())
    {
        k.with_signature(Act::Distribute, signing.as_ref(), |k| {
            k.ship_to_files(&form, sealed)
        })
    } else {
        k.ship_to_files(&form, sealed)
    }
    .map_err(wire)
}

#[tauri::command]
async fn shipments(app: S<'_>) -> R<Vec<kura_app::ShipmentSummary>> {
    app.kura().shipments().map_err(wire)
}

#[tauri::command]
async fn take_sealed(app: S<'_>, path: String) -> R<kura_app::Taken> {
    let b = kura_app::Kura::read_sealed(std::path::Path::new(path.trim())).map_err(wire)?;
    app.kura().take_bundle(b).map_err(wire)
}

#[tauri::command]
async fn receive(
    app: S<'_>,
    shipment: String,
    into: Option<String>,
    scans: Vec<String>,
    condition: Option<String>,
) -> R<kura_app::Reconciled> {
    app.kura()
        .receive(&shipment, into.as_deref(), &scans, condition.as_deref())
        .map_err(wire)
}

#[tauri::command]
async fn workstation_key(app: S<'_>) -> R<kura_app::KeyView> {
    app.kura().workstation_key().map_err(wire)
}

#[tauri::command]
async fn trust_key(
    app: S<'_>,
    name: String,
    fingerprint: String,
    signing: Option<Signing>,
) -> R<()> {
    app.kura()
        .with_signature(Act::ManageUsers, signing.as_ref(), |k| {
            k.trust_key(&name, &fingerprint)
        })
        .map_err(wire)
}

#[tauri::command]
async fn destruction_queue(app: S<'_>) -> R<Vec<QueuedForDestruction>> {
    app.kura().destruction_queue().map_err(wire)
}

#[tauri::command]
async fn signatures(app: S<'_>, event: String) -> R<Vec<SignatureView>> {
    app.kura().signatures_of(&event).map_err(wire)
}

#[tauri::command]
async fn stocks() -> R<Vec<StockInfo>> {
    kura_app::labels::stock_list().map_err(wire)
}

#[tauri::command]
async fn label_preview(app: S<'_>, code: String, stock: String) -> R<LabelPreview> {
    app.kura().label_preview(&code, &stock).map_err(wire)
}

#[tauri::command]
async fn codes_in_box(app: S<'_>, container: String) -> R<Vec<String>> {
    app.kura().codes_in_box(&container).map_err(wire)
}

#[tauri::command]
async fn print_labels(
    app: S<'_>,
    codes: Vec<String>,
    stock: String,
    printer: Option<String>,
) -> R<PrintReport> {
    app.kura()
        .print_labels_to(&codes, &stock, printer.as_deref())
        .map_err(wire)
}

#[tauri::command]
async fn overdue(app: S<'_>) -> R<Vec<SpecimenView>> {
    app.kura().overdue(100).map_err(wire)
}

#[tauri::command]
async fn set_time_zone(app: S<'_>, name: Option<String>) -> R<String> {
    app.kura().set_time_zone(name.as_deref()).map_err(wire)
}

#[tauri::command]
async fn printers(app: S<'_>) -> R<std::collections::BTreeMap<String, PrinterConfig>> {
    app.kura().printers().map_err(wire)
}

#[tauri::command]
async fn set_printer(app: S<'_>, name: String, config: Option<PrinterConfig>) -> R<()> {
    app.kura().set_printer(&name, config).map_err(wire)
}

#[tauri::command]
async fn who(app: S<'_>, active: Option<bool>) -> R<Who> {
    app.kura().who_active(active.unwrap_or(false)).map_err(wire)
}

#[tauri::command]
async fn sign_in(app: S<'_>, user: String, password: String) -> R<Who> {
    let mut k = app.kura();
    k.sign_in(&user, &password).map_err(wire)?;
    k.who().map_err(wire)
}

#[tauri::command]
async fn sign_in_badge(app: S<'_>, badge: String, pin: String) -> R<Who> {
    let mut k = app.kura();
    k.sign_in_badge(&badge, &pin).map_err(wire)?;
    k.who().map_err(wire)
}

#[tauri::command]
async fn sign_out(app: S<'_>) -> R<Who> {
    let mut k = app.kura();
    k.sign_out();
    k.who().map_err(wire)
}

#[tauri::command]
async fn add_first_administrator(
    app: S<'_>,
    user: String,
    name: String,
    password: String,
) -> R<Who> {
    let mut k = app.kura();
    k.add_first_administrator(&user, &name, &password)
        .map_err(wire)?;
    k.who().map_err(wire)
}

#[tauri::command]
async fn users(app: S<'_>) -> R<Vec<UserView>> {
    app.kura().users().map_err(wire)
}

fn role(r: &str) -> Result<kura_app::Role, WireError> {
    kura_app::users::role(r).map_err(wire)
}

#[tauri::command]
async fn add_user(
    app: S<'_>,
    user: String,
    name: String,
    role_name: String,
    badge: Option<String>,
    password: String,
    signing: Option<Signing>,
) -> R<UserView> {
    let r = role(&role_name)?;
    app.kura()
        .with_signature(Act::ManageUsers, signing.as_ref(), |k| {
            k.add_user(&user, &name, r, badge.as_deref(), &password)
        })
        .map_err(wire)
}

#[tauri::command]
async fn grant_role(
    app: S<'_>,
    user: String,
    role_name: String,
    signing: Option<Signing>,
) -> R<UserView> {
    let r = role(&role_name)?;
    app.kura()
        .with_signature(Act::ManageUsers, signing.as_ref(), |k| {
            k.grant_role(&user, r)
        })
        .map_err(wire)
}

#[tauri::command]
async fn disable_user(
    app: S<'_>,
    user: String,
    reason: String,
    signing: Option<Signing>,
) -> R<UserView> {
    app.kura()
        .with_signature(Act::ManageUsers, signing.as_ref(), |k| {
            k.disable_user(&user, &reason)
        })
        .map_err(wire)
}

/// Writes the audit report where the database keeps its reports (`Kura::audit_report_path`);
/// the answer says where. The report is read and built on a handle of its own, without the
/// window's lock (scans and check-ins go on meanwhile); the lock is taken again only to check
/// the signer first and to record the export at the end.
#[tauri::command]
async fn export_audit(
    app: S<'_>,
    query: AuditQuery,
    format: String,
    lang: String,
    signing: Option<Signing>,
) -> R<AuditExport> {
    let (mut reader, out) = {
        let mut k = app.kura();
        let out = k.audit_report_path(&format).map_err(wire)?;
        let reader = k
            .with_signature(Act::Read, signing.as_ref(), |k| k.audit_reader())
            .map_err(wire)?;
        (reader, out)
    };
    // On a blocking thread: the runtime's workers stay free for the window's other calls.
    let file = tauri::async_runtime::spawn_blocking(move || {
        reader.build_audit(&query, &out, &lang, &mut |_, _| {})
    })
    .await
    .map_err(|j| wire(kura_app::AppError::input("audit", j.to_string())))?
    .map_err(wire)?;
    app.kura()
        .with_signature(Act::Read, signing.as_ref(), |k| k.record_audit(file))
        .map_err(wire)
}

#[tauri::command]
async fn set_idle_lock(app: S<'_>, seconds: u64) -> R<u64> {
    app.kura().set_idle_lock(seconds).map_err(wire)
}

#[tauri::command]
async fn test_printer(app: S<'_>, name: String, stock: String) -> R<PrinterTest> {
    app.kura().test_printer(&name, &stock).map_err(wire)
}

#[tauri::command]
async fn sync_status(app: S<'_>, sync: Sy<'_>) -> R<SyncStatus> {
    let mut s = app.kura().sync_status().map_err(wire)?;
    sync.0.annotate(&mut s);
    Ok(s)
}

#[tauri::command]
async fn sync_now(sync: Sy<'_>) -> R<()> {
    sync.0.sync_now();
    Ok(())
}

/// Enrolls this workstation; the request goes out without holding the window's `Kura`.
#[tauri::command]
async fn enroll(
    app: S<'_>,
    sync: Sy<'_>,
    registry: String,
    code: String,
    ca: Option<String>,
) -> R<EnrollReport> {
    let e = app
        .kura()
        .prepare_enrollment(
            &code,
            &registry,
            ca.as_deref().map(std::path::Path::new),
            None,
            false,
        )
        .map_err(wire)?;
    let (e, answer) = tauri::async_runtime::spawn_blocking(move || e.send().map(|a| (e, a)))
        .await
        .map_err(|j| wire(kura_app::AppError::input("enroll", j.to_string())))?
        .map_err(wire)?;
    let r = app.kura().complete_enrollment(e, answer).map_err(wire)?;
    sync.0.sync_now();
    Ok(r)
}

#[tauri::command]
async fn conflicts(app: S<'_>, specimen: Option<String>) -> R<Vec<ConflictView>> {
    app.kura()
        .conflicts(specimen.as_deref(), false)
        .map_err(wire)
}

#[tauri::command]
async fn resolve_conflict(
    app: S<'_>,
    sync: Sy<'_>,
    specimen: String,
    keep: String,
    reason: String,
    signing: Option<Signing>,
) -> R<SpecimenView> {
    let v = app
        .kura()
        .with_signature(Act::ResolveConflict, signing.as_ref(), |k| {
            k.resolve_conflict(&specimen, &keep, &reason)
        })
        .map_err(wire)?;
    sync.0.sync_now();
    Ok(v)
}

#[tauri::command]
async fn rejections(app: S<'_>) -> R<Vec<RejectionRow>> {
    app.kura().rejections().map_err(wire)
}

#[tauri::command]
async fn backup_settings(app: S<'_>) -> R<BackupSettings> {
    app.kura().backup_settings().map_err(wire)
}

#[tauri::command]
async fn set_backup_dir(app: S<'_>, dir: String) -> R<BackupSettings> {
    app.kura().set_backup_dir(&dir).map_err(wire)
}

#[tauri::command]
async fn backup_now(app: S<'_>) -> R<BackupReport> {
    app.kura().backup_now().map_err(wire)
}

/// Where N new tubes fit, and each place's fill (the Storage screen's heat map).
#[tauri::command]
async fn space(
    app: S<'_>,
    type_name: Option<String>,
    need: Option<u64>,
    under: Option<String>,
) -> R<Space> {
    app.kura()
        .space(type_name.as_deref(), need, under.as_deref())
        .map_err(wire)
}

fn order(order: Option<String>) -> Result<Order, WireError> {
    order.map_or(Ok(Order::Row), |o| o.parse().map_err(wire))
}

/// A rack scanner's file the user picked, compared with a box (`apply`: recorded).
#[tauri::command]
async fn reconcile_rack(
    app: S<'_>,
    bytes: Vec<u8>,
    name: String,
    container: String,
    order_by: Option<String>,
    apply: bool,
) -> R<Reconciliation> {
    let order = order(order_by)?;
    app.kura()
        .reconcile_rack(&bytes, &name, &container, order, None, apply, None)
        .map_err(wire)
}

/// The same for a file in the scanner's folder.
#[tauri::command]
async fn reconcile_rack_file(
    app: S<'_>,
    path: String,
    container: String,
    order_by: Option<String>,
    apply: bool,
) -> R<Reconciliation> {
    let order = order(order_by)?;
    app.kura()
        .reconcile_rack_file(std::path::Path::new(&path), &container, order, apply)
        .map_err(wire)
}

/// The newest scan in the folder a rack scanner writes into (the window asks every few seconds).
#[tauri::command]
async fn newest_rack_scan(folder: String) -> R<Option<ScanFile>> {
    kura_app::rack::newest_scan(std::path::Path::new(&folder)).map_err(wire)
}

/// A progress bar's feed: every step goes to the page's channel.
fn feed(channel: &Channel<Progressed>) -> impl FnMut(u64, u64) + '_ {
    move |done, total| {
        let _ = channel.send(Progressed { done, total });
    }
}

/// An inventory file (CSV or workbook) the user picked: checked, or checked and imported.
#[tauri::command]
async fn import_file(
    app: S<'_>,
    bytes: Vec<u8>,
    name: String,
    sheet: Option<String>,
    check: bool,
    progress: Channel<Progressed>,
) -> R<ImportReport> {
    let opts = ImportOptions {
        file: name,
        check,
        sheet,
        ..ImportOptions::default()
    };
    app.kura()
        .import_bytes(&bytes, &opts, &mut feed(&progress))
        .map_err(wire)
}

/// The specimens of a box or a study (all without either) written to `path` (`.xlsx` or CSV).
#[tauri::command]
async fn export_file(
    app: S<'_>,
    path: String,
    filter: ExportFilter,
    bom: bool,
    progress: Channel<Progressed>,
) -> R<Exported> {
    app.kura()
        .export_file(
            std::path::Path::new(&path),
            bom,
            &filter,
            &mut feed(&progress),
        )
        .map_err(wire)
}

/// The folder an export is suggested in.
#[tauri::command]
async fn export_dir() -> R<String> {
    Ok(kura_app::default_export_dir().display().to_string())
}

/// The daily backup: a check at start and every `KURA_BACKUP_CHECK` seconds (default an hour),
/// on its own connection; one is taken when none was in the last day.
fn daily_backups(path: std::path::PathBuf) {
    let every = std::env::var("KURA_BACKUP_CHECK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3600u64)
        .max(1);
    std::thread::spawn(move || {
        loop {
            match Kura::open_existing(&path, "kura-backup").and_then(|mut k| k.backup_if_due()) {
                Ok(Some(r)) => tracing::info!(path = %r.path, events = r.events, "daily backup"),
                Ok(None) => {}
                Err(e) => tracing::warn!(code = e.code(), error = %e, "the daily backup failed"),
            }
            std::thread::sleep(std::time::Duration::from_secs(every));
        }
    });
}

/// WebKitGTK composites through OpenGL by default; on a bench PC without a usable GPU (or in a VM)
/// that is Mesa's software GL, and a scrolling list then paints at ~25 frames a second instead of
/// 60 (measured under Xvfb). Plain software painting is faster there, so Kura asks for it unless
/// `KURA_GPU=1`.
fn software_rendering(app: &tauri::App) {
    #[cfg(target_os = "linux")]
    if std::env::var_os("KURA_GPU").is_none_or(|v| v != "1") {
        use tauri::Manager;
        use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
        for w in app.webview_windows().values() {
            let _ = w.with_webview(|wv| {
                if let Some(s) = WebViewExt::settings(&wv.inner()) {
                    s.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
                }
            });
        }
    }
}

/// Who is acting: `KURA_USER`, then `USER`, picked by kura-app exactly as the CLI does.
fn actor(kura_user: Option<String>, user: Option<String>) -> Result<String, kura_app::AppError> {
    kura_app::input::actor([kura_user.as_deref(), user.as_deref()])
}

/// Every command the page may invoke (the parity tests drive the same list).
fn handler<Rt: tauri::Runtime>() -> impl Fn(tauri::ipc::Invoke<Rt>) -> bool + Send + Sync + 'static
{
    tauri::generate_handler![
        ready,
        overdue,
        set_time_zone,
        session,
        stats,
        show,
        locate,
        scan_flags,
        find,
        history,
        lineage,
        box_map,
        containers,
        check_in,
        check_out,
        return_specimen,
        move_specimen,
        move_container,
        register,
        vocabulary,
        thaw,
        consume,
        block,
        unblock,
        dispose,
        ship,
        shipments,
        take_sealed,
        receive,
        workstation_key,
        trust_key,
        stocks,
        label_preview,
        codes_in_box,
        print_labels,
        printers,
        set_printer,
        test_printer,
        who,
        sign_in,
        sign_in_badge,
        sign_out,
        set_idle_lock,
        add_first_administrator,
        users,
        add_user,
        grant_role,
        disable_user,
        export_audit,
        signatures,
        destruction_queue,
        system_language,
        sync_status,
        sync_now,
        enroll,
        conflicts,
        resolve_conflict,
        rejections,
        backup_settings,
        set_backup_dir,
        backup_now,
        space,
        reconcile_rack,
        reconcile_rack_file,
        newest_rack_scan,
        import_file,
        export_file,
        export_dir
    ]
}

fn main() {
    STARTED.get_or_init(Instant::now);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("KURA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    // `kura-desktop --db PATH` (a second bench's database), else KURA_DB, else the default.
    let mut args = std::env::args_os().skip(1);
    let mut from_args = None;
    while let Some(a) = args.next() {
        if a == "--db" {
            from_args = args.next().map(std::path::PathBuf::from);
        }
    }
    let path = from_args
        .or_else(|| std::env::var_os("KURA_DB").map(std::path::PathBuf::from))
        .unwrap_or_else(kura_app::default_db_path);
    let kura = match actor(std::env::var("KURA_USER").ok(), std::env::var("USER").ok())
        .and_then(|actor| Kura::open(&path, &actor))
    {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code());
            std::process::exit(1);
        }
    };
    // A round every KURA_SYNC_INTERVAL seconds (default 30), and on "Sync now".
    let interval = std::env::var("KURA_SYNC_INTERVAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30u64);
    daily_backups(path.clone());
    let syncer = Syncer(SyncWorker::start(
        path.clone(),
        std::time::Duration::from_secs(interval.max(1)),
    ));
    tauri::Builder::default()
        .setup(|app| {
            software_rendering(app);
            Ok(())
        })
        .manage(App(Mutex::new(kura)))
        .manage(syncer)
        .invoke_handler(handler())
        .run(tauri::generate_context!())
        .expect("the Kura window runs");
}
