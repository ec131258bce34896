//! `kura`: every Kura use case from the command line. Glue only: parse arguments, call
//! `kura-app`, print text or `--json`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use kura_app::labels::PrintTarget;
use kura_app::transport::PrinterConfig;
use kura_app::{AppError, CheckOut, FindQuery, Kura, RegisterRequest};
use serde_json::json;

mod print;

#[derive(Parser)]
#[command(name = "kura", version, about = "Kura (蔵): chain of custody for biobank specimens", long_about = None)]
struct Cli {
    /// The database file (default: kura.sqlite3 in your data directory).
    #[arg(long, global = true, env = "KURA_DB")]
    db: Option<PathBuf>,
    /// Who is acting, on a database without users (recorded on every event). A database with
    /// users ignores it: its events name the user signed in with `kura login`.
    #[arg(long, global = true, env = "KURA_USER")]
    actor: Option<String>,
    /// Print JSON for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Set up a new database: the site's ID prefix and serial width.
    Init {
        #[arg(long, default_value = "KURA")]
        prefix: String,
        #[arg(long, default_value_t = 7)]
        serial_width: usize,
        /// Create the database's first administrator with this user ID now (asks their
        /// password twice; there is no default). Without it the database has no users until
        /// `kura user add … --role administrator`.
        #[arg(long)]
        admin: Option<String>,
        /// The administrator's printed name (with --admin).
        #[arg(long, requires = "admin")]
        name: Option<String>,
        /// Read the administrator's password from standard input (with --admin).
        #[arg(long, requires = "admin")]
        password_stdin: bool,
    },
    /// Fill a new database with deterministic synthetic data.
    Demo {
        #[arg(long, default_value_t = 10_000)]
        specimens: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Sites, rooms, freezers, racks and boxes.
    #[command(subcommand)]
    Storage(StorageCmd),
    /// Register a specimen (and N aliquots).
    Register(RegisterArgs),
    /// Check a specimen into a box (the next free position unless --position).
    CheckIn {
        specimen: String,
        #[arg(value_name = "BOX")]
        container: String,
        #[arg(long)]
        position: Option<String>,
    },
    /// Fill a box from scans, one transaction; with no SPECIMEN arguments, reads scans from stdin.
    CheckInBox {
        #[arg(value_name = "BOX")]
        container: String,
        specimens: Vec<String>,
    },
    /// Check out one or many specimens.
    CheckOut {
        #[arg(required = true)]
        specimens: Vec<String>,
        /// Who receives them.
        #[arg(long)]
        to: String,
        /// analysis, qc, distribution, transfer or other.
        #[arg(long, default_value = "analysis")]
        purpose: String,
        /// When they are due back (YYYY-MM-DD).
        #[arg(long)]
        due: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Return a checked-out specimen to its reserved position.
    Return {
        specimen: String,
        /// It was thawed while out (counts a freeze–thaw cycle).
        #[arg(long)]
        thawed: bool,
    },
    /// Move a stored specimen.
    Move {
        specimen: String,
        #[arg(value_name = "BOX")]
        container: String,
        #[arg(long)]
        position: Option<String>,
    },
    /// Move a box, rack or other container with everything in it.
    MoveContainer {
        container: String,
        parent: String,
        #[arg(long)]
        position: Option<String>,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Move everything in a failing freezer or tank to the same positions in a backup unit.
    Evacuate {
        source: String,
        backup: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Record a thaw.
    Thaw { specimen: String },
    /// Record consumption: an amount, or --all.
    Consume {
        specimen: String,
        #[arg(long)]
        amount: Option<String>,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Dispose of a specimen (signed on a database with users; the signature means "performed"
    /// unless --meaning says otherwise).
    Dispose {
        specimen: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Block a specimen. With --donor instead: the donor withdrew consent — the same as
    /// `kura consent withdraw` (signed, through the lineage, into the destruction queue).
    Block {
        specimen: Option<String>,
        #[arg(long, conflicts_with = "specimen")]
        donor: Option<String>,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Lift a block. Lifting a consent withdrawal's block is an exception, a supervisor's
    /// signed act on a database with users.
    Unblock {
        specimen: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Show a specimen with its location path.
    Show { specimen: String },
    /// Find specimens by ID (or prefix), donor, study, type or status.
    Find {
        text: Option<String>,
        #[arg(long)]
        donor: Option<String>,
        #[arg(long)]
        study: Option<String>,
        #[arg(long = "type")]
        sample_type: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Every custody event of a specimen.
    History { specimen: String },
    /// Parent, aliquots and derivatives.
    Lineage { specimen: String },
    /// A box's grid; with --out, an A4 box map PDF for the freezer door.
    Boxmap {
        #[arg(value_name = "BOX")]
        container: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print labels for specimens or containers (IDs, a whole box, or a search).
    Labels {
        codes: Vec<String>,
        /// Every specimen in this box, in position order.
        #[arg(long = "box", value_name = "BOX")]
        in_box: Option<String>,
        /// Every specimen a search finds (ID prefix, donor or study).
        #[arg(long)]
        query: Option<String>,
        /// The label stock (see `kura stocks`).
        #[arg(long, default_value = "cryo-38x13-a4")]
        stock: String,
        /// Write a PDF.
        #[arg(long, conflicts_with_all = ["printer", "zpl"])]
        out: Option<PathBuf>,
        /// Send to a printer configured on this workstation (`kura printer add`).
        #[arg(long)]
        printer: Option<String>,
        /// Write ZPL for a Zebra printer to this file.
        #[arg(long, conflicts_with = "printer")]
        zpl: Option<PathBuf>,
    },
    /// The label stocks.
    Stocks,
    /// Printers of this workstation.
    #[command(subcommand)]
    Printer(PrinterCmd),
    /// Sign in (a database with users records who acts): user ID and password, or --badge and
    /// its PIN. The session lasts until 5 minutes without a command, or `kura logout`.
    Login {
        user: Option<String>,
        #[arg(long, conflicts_with = "user")]
        badge: Option<String>,
        /// Read the password (or PIN) from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// End this session.
    Logout,
    /// Who is signed in.
    Whoami,
    /// Users and roles (technician, supervisor, administrator, auditor).
    #[command(subcommand)]
    User(UserCmd),
    /// Consent: a donor's withdrawal (blocks their specimens and everything derived from them),
    /// and the destruction queue.
    #[command(subcommand)]
    Consent(ConsentCmd),
    /// Import inventory from CSV (all rows or none).
    Import {
        file: PathBuf,
        /// auto (UTF-8 with or without BOM, else CP932), utf-8, or cp932 (Excel's plain "CSV" on
        /// Japanese Windows).
        #[arg(long, default_value = "auto")]
        encoding: String,
    },
    /// Export inventory to CSV in UTF-8 (stdout without a file).
    Export {
        file: Option<PathBuf>,
        /// Start with a byte-order mark, so that Excel on Japanese Windows shows the Japanese.
        #[arg(long)]
        bom: bool,
    },
    /// Check-outs past their due date at the site.
    Overdue {
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// The site's time zone, in which due dates and "today" are dates: shows it, or sets it.
    TimeZone {
        /// An IANA name such as Asia/Tokyo.
        name: Option<String>,
        /// Follow this computer's zone again.
        #[arg(long, conflicts_with = "name")]
        system: bool,
    },
    /// Enroll this workstation with the central registry (a one-time code from its administrator).
    Enroll {
        code: String,
        /// The registry's address, e.g. https://registry.example:8443
        #[arg(long)]
        registry: String,
        /// A CA certificate (PEM) to trust for the registry's HTTPS.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// The name the registry shows for this workstation (default: the host name).
        #[arg(long)]
        name: Option<String>,
        /// Allow http:// to another machine (the token and events travel unencrypted): only on
        /// a network you trust.
        #[arg(long)]
        insecure_http: bool,
    },
    /// A replacement PC takes over a dead bench: CODE comes from `kura-registry enroll --site S
    /// --replaces WORKSTATION`; into a new data directory. Brings back the bench's stream and the
    /// site's; the old PC's token stops working.
    Recover {
        code: String,
        /// The registry's address, e.g. https://registry.example:8443
        #[arg(long)]
        registry: String,
        /// A CA certificate (PEM) to trust for the registry's HTTPS.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// The name the registry shows for this workstation (default: the host name).
        #[arg(long)]
        name: Option<String>,
        /// Allow http:// to another machine (the token and events travel unencrypted): only on
        /// a network you trust.
        #[arg(long)]
        insecure_http: bool,
    },
    /// Sync with the registry: one round (push, then pull), or --watch; `kura sync status`.
    Sync {
        #[command(subcommand)]
        cmd: Option<SyncCmd>,
        /// Keep syncing on a timer until interrupted.
        #[arg(long)]
        watch: bool,
        /// Seconds between rounds with --watch.
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// Seconds to wait on one request.
        #[arg(long, env = "KURA_SYNC_TIMEOUT")]
        timeout: Option<u64>,
        /// Tries of one request before the round gives up.
        #[arg(long, env = "KURA_SYNC_ATTEMPTS")]
        attempts: Option<u32>,
    },
    /// Conflicts: events two benches recorded that cannot both be true.
    Conflicts {
        /// Only this specimen's.
        specimen: Option<String>,
        /// Resolved ones too.
        #[arg(long)]
        all: bool,
    },
    /// Settle a specimen's conflict: which event is true, and why.
    Resolve {
        specimen: String,
        /// The id of the event to keep (see `kura conflicts`).
        #[arg(long)]
        keep: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Check the hash chain and that the projection equals a rebuild.
    Verify,
    /// A consistent copy of this database into DIR while Kura runs, checked with verify, named
    /// by time and workstation, with the registry token beside it. Put DIR on another disk.
    Backup {
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// Keep this workstation's newest N backups in DIR and remove older ones.
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
    },
    /// Restore a backup as the database (--db, or the default): a new file only, never over a
    /// database; a backup that fails verify is refused.
    Restore { file: PathBuf },
    /// The audit trail of a specimen, a user or a period (all events without a filter): every
    /// event with the values it changed, who, when, where, why and its signatures, as a PDF
    /// whose last page is the verification of the chain, or as CSV. The export is recorded
    /// (and signed on a database with users).
    Audit {
        #[arg(long)]
        specimen: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// First date at the site, YYYY-MM-DD (inclusive).
        #[arg(long)]
        from: Option<String>,
        /// Last date at the site (inclusive).
        #[arg(long)]
        to: Option<String>,
        /// The report: FILE.pdf or FILE.csv.
        #[arg(long)]
        out: PathBuf,
        /// The report's language, en or ja (default: from LANG).
        #[arg(long)]
        lang: Option<String>,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Recompute the projection from the log.
    Rebuild,
    /// Counts.
    Stats,
    /// Kura IDs and check characters.
    #[command(subcommand)]
    Id(IdCmd),
    /// Benchmarks on a large demo database, beside raw SQLite.
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        specimens: u64,
        #[arg(long, default_value = "target/bench")]
        dir: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        lookups: usize,
        #[arg(long, default_value_t = 2_000)]
        checkins: usize,
        #[arg(long, default_value_t = 10)]
        boxes: usize,
        /// Only the label benchmark: this many cryo-sheet labels to PDF, beside glabels-3-batch.
        #[arg(long)]
        labels: Option<usize>,
    },
}

#[derive(Subcommand)]
enum StorageCmd {
    /// Create containers from a TOML layout file (existing ones are kept).
    Apply {
        file: PathBuf,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Create one container.
    Add {
        code: String,
        #[arg(long = "type")]
        type_name: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        position: Option<String>,
        #[arg(long)]
        temperature: Option<String>,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// List containers under PARENT (or the sites).
    List { parent: Option<String> },
    /// The built-in container types.
    Types,
}

/// How a signed act (storage layout, conflict settlement, user administration, audit export) is
/// signed on a database with users; elsewhere nothing is asked.
#[derive(Args, Clone)]
struct SignArgs {
    /// What your signature means: performed, reviewed or approved (default: performed for a
    /// disposal, approved for the rest).
    #[arg(long)]
    meaning: Option<String>,
    /// Your user ID, needed at the first signature of a session (asked at a terminal).
    #[arg(long)]
    signer: Option<String>,
    /// Read your signing password from standard input (the line after any other secret the
    /// command reads there).
    #[arg(long)]
    sign_stdin: bool,
}

#[derive(Subcommand)]
enum ConsentCmd {
    /// The donor withdrew consent: block every specimen of theirs and derived from them, and
    /// queue them for destruction (signed on a database with users).
    Withdraw {
        donor: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Specimens waiting to be destroyed after a consent withdrawal.
    Queue,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user (an administrator's act); on a new database, the first administrator.
    Add {
        user: String,
        /// The printed name signatures show.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "technician")]
        role: String,
        /// Their badge code (USR-…), for sign-in by badge and PIN.
        #[arg(long)]
        badge: Option<String>,
        /// Read the first password from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        sign: SignArgs,
    },
    List,
    /// Give a user another role.
    Grant {
        user: String,
        role: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Stop a user from acting and signing (what they did stays theirs).
    Disable {
        user: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Set a password (your own, or as an administrator anyone's).
    Passwd {
        user: Option<String>,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// How long a session may stay idle before the window locks and `kura login` is needed
    /// again (an administrator's setting for this database; default 300 seconds).
    Idle {
        seconds: u64,
    },
    /// Set a badge PIN (your own, or as an administrator anyone's).
    Pin {
        user: Option<String>,
        /// Read the new PIN from standard input (as every command reads the secret it sets or
        /// signs in with).
        #[arg(long, alias = "pin-stdin")]
        password_stdin: bool,
        #[command(flatten)]
        sign: SignArgs,
    },
}

#[derive(Subcommand)]
enum PrinterCmd {
    /// Add (or replace) a printer: --tcp HOST:9100 for Zebra, --cups QUEUE (raw ZPL) or --cups-pdf QUEUE.
    Add {
        name: String,
        #[arg(long, conflicts_with_all = ["cups", "cups_pdf"])]
        tcp: Option<String>,
        #[arg(long, conflicts_with = "cups_pdf")]
        cups: Option<String>,
        #[arg(long)]
        cups_pdf: Option<String>,
        /// The printer's resolution (203, 300 or 600; its configuration label says): labels are
        /// laid out in its dots. Default: the stock's.
        #[arg(long)]
        dpi: Option<u32>,
        /// A font resident on the Zebra that draws Japanese (e.g. E:TT0003M_.TTF), used instead
        /// of sending such text as graphics.
        #[arg(long, conflicts_with = "cups_pdf")]
        zpl_font: Option<String>,
    },
    List,
    Remove {
        name: String,
    },
    /// Asks the printer's status, then prints a calibration label (name, dpi, date, a
    /// DataMatrix and a Code128). Nothing is logged.
    Test {
        name: String,
        #[arg(long, default_value = "box-2x1")]
        stock: String,
    },
}

#[derive(Subcommand)]
enum SyncCmd {
    /// Where this workstation stands: online, waiting, last success and error, rejections,
    /// conflicts, clock skew, IDs left.
    Status,
    /// This workstation's events the registry refused and keeps (they never block the others).
    Rejections,
}

#[derive(Subcommand)]
enum IdCmd {
    /// Is CODE a valid Kura ID? Exit status 0 if so, 1 if not (and why).
    Check { code: String },
    /// Print DATA with its check character appended.
    CheckChar { data: String },
}

#[derive(Args)]
struct RegisterArgs {
    /// SPREC sample type (BLD, SER, PL1, DNA, IPS, …).
    #[arg(long = "type")]
    sample_type: String,
    /// SPREC primary container (PED, SST, …).
    #[arg(long, default_value = "PED")]
    container: String,
    /// SPREC long-term storage (A, C, D, …).
    #[arg(long, default_value = "A")]
    storage: String,
    #[arg(long)]
    quantity: Option<String>,
    #[arg(long)]
    unit: Option<String>,
    #[arg(long)]
    study: String,
    #[arg(long)]
    donor: String,
    #[arg(long)]
    collected: Option<String>,
    /// A pre-barcoded tube's own code.
    #[arg(long)]
    code: Option<String>,
    #[arg(long, default_value_t = 0)]
    aliquots: u32,
    #[arg(long)]
    aliquot_quantity: Option<String>,
    /// Makes the children derivatives of this type (e.g. DNA from BLD).
    #[arg(long)]
    aliquot_type: Option<String>,
    /// Store the aliquots in this box.
    #[arg(long)]
    into: Option<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KURA_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour for a person at a terminal, plain text for a pipe or a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if json {
                line(&json!({ "error": e.to_wire() }).to_string());
            } else {
                eprintln!("error[{}]: {e}", e.code());
                if let AppError::Import { total, rows } = &e {
                    for r in rows.iter().take(50) {
                        eprintln!("  {r}");
                    }
                    if *total > 50 {
                        eprintln!("  … and {} more", total - 50);
                    }
                }
            }
            ExitCode::from(1)
        }
    }
}

fn progress(label: &'static str) -> impl FnMut(u64, u64) {
    let tty = std::io::stderr().is_terminal();
    move |done, total| {
        if tty {
            eprint!("\r{label}: {done}/{total}");
            if done >= total {
                eprintln!();
            }
        } else {
            eprintln!("{label}: {done}/{total}");
        }
    }
}

/// Progress of a sync round on stderr (push, then pull); without a terminal, a line per tenth.
fn progress_phase() -> impl FnMut(&str, u64, u64) {
    let tty = std::io::stderr().is_terminal();
    let mut shown = (String::new(), u64::MAX);
    move |phase, done, total| {
        let tenth = done * 10 / total.max(1);
        if !tty && shown.0 == phase && shown.1 == tenth && done < total {
            return;
        }
        shown = (phase.to_string(), tenth);
        if tty {
            eprint!("\r{phase}: {done}/{total}   ");
            if done >= total {
                eprintln!();
            }
        } else {
            eprintln!("{phase}: {done}/{total}");
        }
    }
}

fn open(cli: &Cli) -> Result<Kura, AppError> {
    let path = cli.db.clone().unwrap_or_else(kura_app::default_db_path);
    // `--actor` (or KURA_USER, through clap), then USER: kura-app picks, as for the window.
    // On a database with users, the signed-in user acts instead (the session file).
    let user = std::env::var("USER").ok();
    let actor = kura_app::input::actor([cli.actor.as_deref(), user.as_deref()])?;
    // Only init, demo and enroll (a new bench set up from its site) make a database; any other
    // command on a missing file says so, and creates nothing.
    let mut k = if matches!(
        cli.cmd,
        Cmd::Init { .. } | Cmd::Demo { .. } | Cmd::Enroll { .. } | Cmd::Recover { .. }
    ) {
        Kura::open(&path, &actor)?
    } else {
        Kura::open_existing(&path, &actor)?
    };
    if k.secured()? {
        let file = kura_app::users::session_file(&path);
        if let Ok(token) = std::fs::read_to_string(&file) {
            match k.resume_token(&token) {
                // This command is activity: the session lives on from now.
                Ok(()) => save_session(&mut k, &path)?,
                Err(e) => {
                    tracing::info!(code = e.code(), "the saved session is over");
                    let _ = std::fs::remove_file(&file);
                }
            }
        }
    }
    Ok(k)
}

/// Keeps the session for the next command, owner-only.
fn save_session(k: &mut Kura, db: &std::path::Path) -> Result<(), AppError> {
    let file = kura_app::users::session_file(db);
    let Some(token) = k.session_token()? else {
        let _ = std::fs::remove_file(&file);
        return Ok(());
    };
    let err = |e: std::io::Error| AppError::File {
        path: file.display().to_string(),
        message: e.to_string(),
    };
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(&file).map_err(err)?;
    #[cfg(unix)]
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(err)?;
    std::io::Write::write_all(&mut f, token.as_bytes()).map_err(err)
}

/// A password or PIN: from the first line of standard input, or typed at the terminal unseen.
fn secret(what: &str, from_stdin: bool) -> Result<String, AppError> {
    secret_from(what, &format!("{what}-stdin"), from_stdin)
}

/// A new password or PIN: typed twice at a terminal (a typing slip would lock its owner out),
/// or the first line of standard input.
fn new_secret(what: &str, from_stdin: bool) -> Result<String, AppError> {
    let first = secret(what, from_stdin)?;
    if !from_stdin {
        let again = rpassword::prompt_password(format!("{what} again: "))
            .map_err(|e| AppError::input(what, e.to_string()))?;
        if again != first {
            return Err(AppError::input(
                what,
                format!("the two {what}s typed differ: nothing was changed; run the command again"),
            ));
        }
    }
    Ok(first)
}

/// The same, where the flag that reads it from standard input is `--{flag}`.
fn secret_from(what: &str, flag: &str, from_stdin: bool) -> Result<String, AppError> {
    secret_prompt(what, what, flag, from_stdin)
}

/// A secret from standard input (`--{flag}`), or typed at the terminal after `prompt`.
fn secret_prompt(
    what: &str,
    prompt: &str,
    flag: &str,
    from_stdin: bool,
) -> Result<String, AppError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| AppError::input(what, e.to_string()))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    if !std::io::stdin().is_terminal() {
        return Err(AppError::input(
            what,
            format!("no terminal to type the {what} at: give --{flag} and pipe it in"),
        ));
    }
    rpassword::prompt_password(format!("{prompt}: "))
        .map_err(|e| AppError::input(what, e.to_string()))
}

/// The signature a signed act needs on a database with users (None elsewhere): whether this
/// person may do `act` at all (asked before any password), what the signature means (`--meaning`,
/// else `default_meaning`), the signer's user ID at the first signature of a session (`--signer`,
/// or asked at a terminal) and their password (`--sign-stdin`, or asked at a terminal with a
/// prompt that says whose and what for).
fn sign_for_meaning(
    k: &mut Kura,
    act: kura_app::users::Act,
    a: &SignArgs,
    default_meaning: &str,
) -> Result<Option<kura_app::Signing>, AppError> {
    if !k.secured()? {
        return Ok(None);
    }
    k.authorize(act)?;
    let meaning = kura_app::users::meaning(a.meaning.as_deref().unwrap_or(default_meaning))?;
    let who = k.who()?;
    let mut user = a.signer.clone();
    let needs_id = user.is_none() && !who.signed_once;
    if !a.sign_stdin && !std::io::stdin().is_terminal() {
        return Err(AppError::input(
            "sign-stdin",
            format!(
                "{} is signed and there is no terminal to ask at: give --sign-stdin and pipe the signer's password in{}",
                act.as_str(),
                if needs_id {
                    ", with --signer ID (the first signature of a session names its signer)"
                } else {
                    ""
                }
            ),
        ));
    }
    if needs_id {
        // The first signature of a session names the signer, who then gives their password.
        if a.sign_stdin {
            return Err(AppError::SignatureNeedsId);
        }
        eprint!(
            "your user ID, to sign {} (first signature of this session): ",
            act.as_str()
        );
        std::io::stderr().flush().ok();
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| AppError::input("signer", e.to_string()))?;
        user = Some(line.trim().to_string());
    }
    let whose = user.clone().or(who.user).unwrap_or_default();
    let secret = secret_prompt(
        "password",
        &format!(
            "password of {whose}, signing {} ({})",
            act.as_str(),
            meaning.as_str()
        ),
        "sign-stdin",
        a.sign_stdin,
    )?;
    Ok(Some(kura_app::Signing {
        user,
        secret,
        meaning,
    }))
}

/// Runs a signed act with the signature `a` gives, and keeps the session (a first signature
/// changes what the next one asks).
fn signed<T>(
    k: &mut Kura,
    act: kura_app::users::Act,
    a: &SignArgs,
    f: impl FnOnce(&mut Kura) -> Result<T, AppError>,
) -> Result<T, AppError> {
    signed_meaning(k, act, a, "approved", f)
}

/// The same, for an act whose signature means `default_meaning` unless --meaning says otherwise.
fn signed_meaning<T>(
    k: &mut Kura,
    act: kura_app::users::Act,
    a: &SignArgs,
    default_meaning: &str,
    f: impl FnOnce(&mut Kura) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let s = sign_for_meaning(k, act, a, default_meaning)?;
    let r = k.with_signature(s.as_ref(), f)?;
    if s.is_some() {
        let db = path_of(k);
        save_session(k, &db)?;
    }
    Ok(r)
}

/// A donor withdrew consent: their specimens and everything derived from them blocked and
/// queued for destruction, signed on a database with users.
fn withdraw_consent(
    k: &mut Kura,
    donor: &str,
    reason: &str,
    sign: &SignArgs,
    json: bool,
) -> Result<(), AppError> {
    let w = signed(k, kura_app::users::Act::Block, sign, |k| {
        k.withdraw_consent(donor, reason)
    })?;
    out(json, json!(w), || {
        format!(
            "consent of {} withdrawn: {} specimen(s) blocked and queued for destruction{}",
            w.donor,
            w.blocked.len(),
            w.signature
                .as_ref()
                .map(|s| format!("; signed by {} ({}) — {}", s.name, s.signer, s.meaning))
                .unwrap_or_default()
        )
    });
    Ok(())
}

/// Sets a password or PIN: one's own needs no signature; another user's is user
/// administration, signed.
fn set_secret(
    k: &mut Kura,
    who: &str,
    secret: kura_app::Secret,
    value: &str,
    a: &SignArgs,
) -> Result<(), AppError> {
    if !k.secret_needs_signature(who)? {
        return k.set_secret(who, secret, value);
    }
    signed(k, kura_app::users::Act::ManageUsers, a, |k| {
        k.set_secret(who, secret, value)
    })
}

fn path_of(k: &Kura) -> std::path::PathBuf {
    k.path().to_path_buf()
}

fn out(json: bool, value: serde_json::Value, text: impl FnOnce() -> String) {
    if json {
        line(&value.to_string());
    } else {
        let t = text();
        if !t.is_empty() {
            line(&t);
        }
    }
}

/// One line (or more) to standard output. A reader that stopped reading (`kura find | head`)
/// ends the command quietly and successfully: what it wanted, it has.
fn line(text: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = writeln!(o, "{text}").and_then(|()| o.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

fn run(cli: Cli) -> Result<ExitCode, AppError> {
    let json = cli.json;
    // Commands that need no database.
    match &cli.cmd {
        Cmd::Id(IdCmd::Check { code }) => {
            return Ok(match kura_app::ids::check(code) {
                Ok(id) => {
                    out(
                        json,
                        json!({ "valid": true, "id": id.to_string(), "data": id.data(), "check": id.check().to_string() }),
                        || {
                            format!(
                                "{id} is a valid Kura ID (data {}, check character {})",
                                id.data(),
                                id.check()
                            )
                        },
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    out(
                        json,
                        json!({ "valid": false, "error": AppError::from(e.clone()).to_wire() }),
                        || format!("not a valid Kura ID: {e}"),
                    );
                    ExitCode::from(1)
                }
            });
        }
        Cmd::Id(IdCmd::CheckChar { data }) => {
            let id = kura_app::ids::with_check_char(data)?;
            out(
                json,
                json!({ "id": id.to_string(), "check": id.check().to_string() }),
                || id.to_string(),
            );
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Stocks => {
            let list = kura_app::labels::stock_list()?;
            out(json, json!(list), || {
                list.iter()
                    .map(|s| format!("{:<18} {:>3} dpi  {}  ({})", s.id, s.dpi, s.name, s.source))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Storage(StorageCmd::Types) => {
            out(json, json!(kura_app::storage::builtin_types()), || {
                kura_app::storage::builtin_types()
                    .iter()
                    .map(|(n, d)| format!("{n:<18} {d}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Bench {
            labels: Some(n),
            dir,
            ..
        } => {
            let exe = std::env::current_exe().map_err(|e| AppError::File {
                path: "kura".into(),
                message: e.to_string(),
            })?;
            let report = kura_app::bench::run_labels(dir, *n, &exe, &mut |s| eprintln!("{s}"))?;
            out(json, json!(report), || print::bench(&report));
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Bench {
            specimens,
            dir,
            lookups,
            checkins,
            boxes,
            labels: None,
        } => {
            let opts = kura_app::bench::BenchOptions {
                dir: dir.clone(),
                specimens: *specimens,
                lookups: *lookups,
                checkins: *checkins,
                boxes: *boxes,
            };
            let report = kura_app::bench::run(&opts, &mut |s| eprintln!("{s}"))?;
            out(json, json!(report), || print::bench(&report));
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Restore { file } => {
            let db = cli.db.clone().unwrap_or_else(kura_app::default_db_path);
            let r = Kura::restore(file, &db)?;
            out(json, json!(r), || {
                format!(
                    "restored {} as {}: {} events, {} specimens, verified{}",
                    file.display(),
                    r.path,
                    r.events,
                    r.specimens,
                    if r.token {
                        "; the registry token came with it"
                    } else {
                        ""
                    }
                ) + &if r.unenrolled {
                    "\nthis database issues Kura IDs from its own counter: IDs it issued after the backup was taken may be issued again; check the newest labels".to_string()
                } else {
                    format!(
                        "\n{} serials left in its leases burned (they may have been used after the backup); the next sync asks the registry for new ones\nsync before recording anything (kura sync): it brings back what this workstation recorded after the backup; until then nothing new is recorded here",
                        r.burned
                    )
                }
            });
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let mut k = open(&cli)?;
    match cli.cmd {
        Cmd::Init {
            prefix,
            serial_width,
            admin,
            name,
            password_stdin,
        } => {
            // Everything asked before anything is written.
            let admin = match admin {
                Some(user) => {
                    let name = name.ok_or_else(|| {
                        AppError::input(
                            "name",
                            "the first administrator needs a printed name: give --name \"…\"",
                        )
                    })?;
                    let pw = new_secret("password", password_stdin)?;
                    Some((user, name, pw))
                }
                None => None,
            };
            let f = k.init(&prefix, serial_width)?;
            let example = f.issue(chrono::Datelike::year(&k.today()), 1)?;
            let admin = match admin {
                Some((user, name, pw)) => {
                    k.add_first_administrator(&user, &name, &pw)?;
                    let db = path_of(&k);
                    save_session(&mut k, &db)?;
                    Some(user.to_ascii_lowercase())
                }
                None => None,
            };
            let secured = k.secured()?;
            out(
                json,
                json!({ "db": k.path(), "prefix": f.prefix, "serial_width": f.serial_width, "example": example.to_string(), "administrator": admin, "secured": secured }),
                || {
                    let mut t = format!(
                        "initialised {} — IDs look like {example}",
                        k.path().display()
                    );
                    match (&admin, secured) {
                        (Some(a), _) => t.push_str(&format!(
                            "\n{a} is its first administrator, and signed in; every act on this database now needs a signed-in user"
                        )),
                        (None, false) => t.push_str(
                            "\nno users yet: whoever uses this computer acts on it, unsigned. Create its administrator: kura user add ID --name \"NAME\" --role administrator",
                        ),
                        (None, true) => {}
                    }
                    t
                },
            );
        }
        Cmd::Demo { specimens, seed } => {
            let r = k.demo(specimens, seed, &mut progress("demo"))?;
            out(json, json!(r), || {
                format!(
                    "{} specimens, {} containers, {} events in {:.1} s ({:.0} specimens/s) → {}",
                    r.specimens,
                    r.containers,
                    r.events,
                    r.seconds,
                    r.specimens_per_second,
                    k.path().display()
                )
            });
        }
        Cmd::Storage(StorageCmd::Apply { file, sign }) => {
            let text = std::fs::read_to_string(&file).map_err(|e| AppError::File {
                path: file.display().to_string(),
                message: e.to_string(),
            })?;
            let r = signed(&mut k, kura_app::users::Act::StorageLayout, &sign, |k| {
                k.apply_layout(&text)
            })?;
            out(json, json!(r), || {
                format!(
                    "created {}, already there {}",
                    r.created.len(),
                    r.existing.len()
                )
            });
        }
        Cmd::Storage(StorageCmd::Add {
            code,
            type_name,
            name,
            parent,
            position,
            temperature,
            sign,
        }) => {
            let created = signed(&mut k, kura_app::users::Act::StorageLayout, &sign, |k| {
                k.create_container(
                    &code,
                    &type_name,
                    name.as_deref(),
                    parent.as_deref(),
                    position.as_deref(),
                    temperature.as_deref(),
                )
            })?;
            out(json, json!({ "code": code, "created": created }), || {
                if created {
                    format!("created {code}")
                } else {
                    format!("{code} already exists; nothing changed")
                }
            });
        }
        Cmd::Enroll {
            code,
            registry,
            ca,
            name,
            insecure_http,
        } => {
            let r = k.enroll(
                &code,
                &registry,
                ca.as_deref(),
                name.as_deref(),
                insecure_http,
            )?;
            out(json, json!(r), || print::enrolled(&r));
        }
        Cmd::Recover {
            code,
            registry,
            ca,
            name,
            insecure_http,
        } => {
            let mut bar = progress_phase();
            let r = k.recover(
                &code,
                &registry,
                ca.as_deref(),
                name.as_deref(),
                insecure_http,
                &mut bar,
            )?;
            out(json, json!(r), || print::recovered(&r, k.calendar()));
        }
        Cmd::Sync {
            cmd: Some(SyncCmd::Status),
            ..
        } => {
            let s = k.sync_status()?;
            out(json, json!(s), || print::sync_status(&s, k.calendar()));
        }
        Cmd::Sync {
            cmd: Some(SyncCmd::Rejections),
            ..
        } => {
            let list = k.rejections()?;
            out(json, json!(list), || {
                if list.is_empty() {
                    return "no rejections".into();
                }
                list.iter()
                    .map(|r| {
                        format!(
                            "seq {} {} {} [{}] {}",
                            r.seq, r.kind, r.event, r.code, r.message
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Cmd::Sync {
            cmd: None,
            watch,
            interval,
            timeout,
            attempts,
        } => {
            let opts = kura_app::SyncOptions {
                timeout: timeout.map(std::time::Duration::from_secs),
                attempts,
                apply_chunk: None,
            };
            if watch {
                k.sync_watch(
                    opts,
                    std::time::Duration::from_secs(interval.max(1)),
                    &mut |r| {
                        match r {
                            Ok(rep) => out(json, json!(rep), || print::sync_report(rep)),
                            Err(e) if json => line(&json!({ "error": e.to_wire() }).to_string()),
                            Err(e) => eprintln!("error[{}]: {e}", e.code()),
                        }
                        true
                    },
                )?;
            } else {
                let mut bar = progress_phase();
                let rep = k.sync(opts, &mut bar)?;
                out(json, json!(rep), || print::sync_report(&rep));
            }
        }
        Cmd::Conflicts { specimen, all } => {
            let list = k.conflicts(specimen.as_deref(), all)?;
            out(json, json!(list), || print::conflicts(&list, k.calendar()));
        }
        Cmd::Resolve {
            specimen,
            keep,
            reason,
            sign,
        } => {
            let s = signed(&mut k, kura_app::users::Act::ResolveConflict, &sign, |k| {
                k.resolve_conflict(&specimen, &keep, &reason)
            })?;
            out(json, json!(s), || {
                format!(
                    "{}: conflict settled, {}{}",
                    s.code,
                    s.status,
                    s.path
                        .as_ref()
                        .map(|p| format!(" at {p}"))
                        .unwrap_or_default()
                )
            });
        }
        Cmd::Storage(StorageCmd::List { parent }) => {
            let rows = k.containers(parent.as_deref())?;
            out(json, json!(rows), || print::containers(&rows));
        }
        Cmd::Storage(StorageCmd::Types)
        | Cmd::Id(_)
        | Cmd::Bench { .. }
        | Cmd::Stocks
        | Cmd::Restore { .. } => {
            unreachable!("handled above")
        }
        Cmd::Labels {
            codes,
            in_box,
            query,
            stock,
            out: pdf,
            printer,
            zpl,
        } => {
            let mut codes = codes;
            if let Some(b) = in_box {
                codes.extend(k.codes_in_box(&b)?);
            }
            if let Some(q) = query {
                codes.extend(k.codes_for_query(&q)?);
            }
            let target = match (pdf, printer, zpl) {
                (Some(p), None, None) => PrintTarget::Pdf(p),
                (None, Some(n), None) => PrintTarget::Printer(n),
                (None, None, Some(z)) => PrintTarget::Zpl(z),
                (None, None, None) => {
                    return Err(AppError::input(
                        "out",
                        "say where to print: --out FILE.pdf, --printer NAME or --zpl FILE",
                    ));
                }
                _ => {
                    return Err(AppError::input(
                        "out",
                        "give only one of --out, --printer, --zpl",
                    ));
                }
            };
            let r = k.print_labels(&codes, &stock, &target)?;
            for w in &r.warnings {
                eprintln!("warning: {w}");
            }
            out(json, json!(r), || {
                let re = if r.reprints.is_empty() {
                    String::new()
                } else {
                    format!(" ({} reprinted)", r.reprints.len())
                };
                format!(
                    "printed {} label(s) on {} → {} ({} page(s), {} bytes){re}",
                    r.labels, r.stock, r.target, r.pages, r.bytes
                )
            });
        }
        Cmd::Printer(PrinterCmd::Add {
            name,
            tcp,
            cups,
            cups_pdf,
            dpi,
            zpl_font,
        }) => {
            let mut detected = None;
            let config = match (tcp, cups, cups_pdf) {
                (Some(address), None, None) => {
                    // The printer says its resolution, where it can.
                    if dpi.is_none() {
                        detected = k.detect_dpi(&address);
                    }
                    PrinterConfig::Tcp {
                        address,
                        dpi: dpi.or(detected),
                        zpl_font,
                    }
                }
                (None, Some(queue), None) => PrinterConfig::Cups {
                    queue,
                    dpi,
                    zpl_font,
                },
                (None, None, Some(queue)) => PrinterConfig::CupsPdf { queue, dpi },
                _ => {
                    return Err(AppError::input(
                        "printer",
                        "give one of --tcp HOST:PORT, --cups QUEUE, --cups-pdf QUEUE",
                    ));
                }
            };
            let dpi = config.dpi();
            k.set_printer(&name, Some(config))?;
            out(
                json,
                json!({ "added": name, "dpi": dpi, "dpi_from_printer": detected.is_some() }),
                || match (dpi, detected) {
                    (Some(d), Some(_)) => format!("printer {name} added ({d} dpi, as it reports)"),
                    (Some(d), None) => format!("printer {name} added ({d} dpi)"),
                    (None, _) => format!(
                        "printer {name} added (labels at each stock's dpi; give --dpi if it differs)"
                    ),
                },
            );
        }
        Cmd::Login {
            user,
            badge,
            password_stdin,
        } => {
            if !k.secured()? {
                return Err(AppError::input(
                    "user",
                    "this database has no users yet: add the first administrator with `kura user add ID --name NAME --role administrator`",
                ));
            }
            let s = match (user, badge) {
                (_, Some(b)) => {
                    let pin = secret("pin", password_stdin)?;
                    k.sign_in_badge(&b, &pin)?
                }
                (Some(u), None) => {
                    let pw = secret("password", password_stdin)?;
                    k.sign_in(&u, &pw)?
                }
                (None, None) => {
                    return Err(AppError::input(
                        "user",
                        "give your user ID, or --badge USR-…",
                    ));
                }
            };
            let db = path_of(&k);
            save_session(&mut k, &db)?;
            out(
                json,
                json!({ "user": s.user, "name": s.name, "idle_secs": s.idle_secs }),
                || {
                    format!(
                        "signed in as {} ({}); the session ends after {} minutes without a command",
                        s.user,
                        s.name,
                        s.idle_secs / 60
                    )
                },
            );
        }
        Cmd::Logout => {
            k.sign_out();
            let _ = std::fs::remove_file(kura_app::users::session_file(&path_of(&k)));
            out(json, json!({ "signed_out": true }), || "signed out".into());
        }
        Cmd::Whoami => {
            let s = k.session().cloned();
            let role = match &s {
                Some(s) => Some(k.user_view(&s.user)?.role),
                None => None,
            };
            out(
                json,
                json!({ "user": s.as_ref().map(|s| &s.user), "name": s.as_ref().map(|s| &s.name), "role": role }),
                || match &s {
                    Some(s) => format!(
                        "{} ({}), {}",
                        s.user,
                        s.name,
                        role.clone().unwrap_or_default()
                    ),
                    None => "nobody is signed in".into(),
                },
            );
        }
        Cmd::User(UserCmd::Add {
            user,
            name,
            role,
            badge,
            password_stdin,
            sign,
        }) => {
            let role = kura_app::users::role(&role)?;
            let first = !k.secured()?;
            if first && role != kura_app::Role::Administrator {
                return Err(AppError::input(
                    "role",
                    "this database has no users yet: the first one is its administrator (--role administrator)",
                ));
            }
            let pw = new_secret("password", password_stdin)?;
            let v = if first {
                k.add_first_administrator(&user, &name, &pw)?;
                let db = path_of(&k);
                save_session(&mut k, &db)?;
                k.user_view(&user.to_ascii_lowercase())?
            } else {
                signed(&mut k, kura_app::users::Act::ManageUsers, &sign, |k| {
                    k.add_user(&user, &name, role, badge.as_deref(), &pw)
                })?
            };
            out(json, json!(v), || {
                if first {
                    format!(
                        "{} added as the first administrator, and signed in; every act on this database now needs a signed-in user",
                        v.user
                    )
                } else {
                    format!("{} added ({})", v.user, v.role)
                }
            });
        }
        Cmd::User(UserCmd::List) => {
            let list = k.users()?;
            out(json, json!(list), || {
                list.iter()
                    .map(|u| {
                        format!(
                            "{:<16} {:<14} {:<24} {}{}",
                            u.user,
                            u.role,
                            u.name,
                            u.badge.clone().unwrap_or_default(),
                            if u.disabled { "  (disabled)" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Cmd::User(UserCmd::Grant { user, role, sign }) => {
            let role = kura_app::users::role(&role)?;
            let v = signed(&mut k, kura_app::users::Act::ManageUsers, &sign, |k| {
                k.grant_role(&user, role)
            })?;
            out(json, json!(v), || format!("{} is now {}", v.user, v.role));
        }
        Cmd::User(UserCmd::Disable { user, reason, sign }) => {
            let v = signed(&mut k, kura_app::users::Act::ManageUsers, &sign, |k| {
                k.disable_user(&user, &reason)
            })?;
            out(json, json!(v), || format!("{} is disabled", v.user));
        }
        Cmd::User(UserCmd::Passwd {
            user,
            password_stdin,
            sign,
        }) => {
            let who = user
                .or_else(|| k.session().map(|s| s.user.clone()))
                .ok_or(AppError::SignInRequired)?;
            let pw = new_secret("password", password_stdin)?;
            set_secret(&mut k, &who, kura_app::Secret::Password, &pw, &sign)?;
            out(json, json!({ "user": who, "set": "password" }), || {
                format!("password of {who} set")
            });
        }
        Cmd::Consent(ConsentCmd::Withdraw {
            donor,
            reason,
            sign,
        }) => {
            withdraw_consent(&mut k, &donor, &reason, &sign, json)?;
        }
        Cmd::Consent(ConsentCmd::Queue) => {
            let q = k.destruction_queue()?;
            out(json, json!(q), || {
                q.iter()
                    .map(|x| format!("{:<18} {:<12} {}", x.code, x.donor, x.reason))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Cmd::User(UserCmd::Idle { seconds }) => {
            let s = k.set_idle_lock(seconds)?;
            out(json, json!({ "idle_secs": s }), || {
                format!("sessions end after {s} s without activity")
            });
        }
        Cmd::User(UserCmd::Pin {
            user,
            password_stdin,
            sign,
        }) => {
            let who = user
                .or_else(|| k.session().map(|s| s.user.clone()))
                .ok_or(AppError::SignInRequired)?;
            let pin = new_secret("pin", password_stdin)?;
            set_secret(&mut k, &who, kura_app::Secret::Pin, &pin, &sign)?;
            out(json, json!({ "user": who, "set": "pin" }), || {
                format!("PIN of {who} set")
            });
        }
        Cmd::Printer(PrinterCmd::List) => {
            let all = k.printers()?;
            out(json, json!(all), || print::printers(&all));
        }
        Cmd::Printer(PrinterCmd::Test { name, stock }) => {
            let t = k.test_printer(&name, &stock)?;
            out(json, json!(t), || {
                let mut s = format!(
                    "printer {}: {}\ncalibration label sent: {} on {} at {} dpi ({} bytes); scan it: both symbols read {}",
                    t.printer, t.status, t.code, t.stock, t.dpi, t.bytes, t.code
                );
                for w in &t.warnings {
                    s.push_str(&format!("\nwarning: {w}"));
                }
                s
            });
        }
        Cmd::Printer(PrinterCmd::Remove { name }) => {
            k.set_printer(&name, None)?;
            out(json, json!({ "removed": name }), || {
                format!("printer {name} removed")
            });
        }
        Cmd::Register(a) => {
            let r = k.register(&RegisterRequest {
                code: a.code,
                sample_type: a.sample_type,
                container: a.container,
                storage: a.storage,
                quantity: a.quantity,
                unit: a.unit,
                study: a.study,
                donor: a.donor,
                collected_at: a.collected,
                aliquots: a.aliquots,
                aliquot_quantity: a.aliquot_quantity,
                aliquot_type: a.aliquot_type,
                into: a.into,
            })?;
            out(json, json!(r), || {
                let mut s = format!("registered {}", r.parent);
                for (i, c) in r.aliquots.iter().enumerate() {
                    let at = r
                        .placed
                        .get(i)
                        .map(|p| format!(" → {} {}", p.container, p.position))
                        .unwrap_or_default();
                    s.push_str(&format!("\n  aliquot {c}{at}"));
                }
                s
            });
        }
        Cmd::CheckIn {
            specimen,
            container,
            position,
        } => {
            let p = k.check_in(&specimen, &container, position.as_deref())?;
            out(json, json!(p), || {
                format!("{} → {} {}", p.specimen, p.container, p.position)
            });
        }
        Cmd::CheckInBox {
            container,
            mut specimens,
        } => {
            if specimens.is_empty() {
                for line in std::io::stdin().lines() {
                    let line = line.map_err(|e| AppError::File {
                        path: "stdin".into(),
                        message: e.to_string(),
                    })?;
                    let line = line.trim();
                    if line.eq_ignore_ascii_case("done") {
                        break;
                    }
                    if !line.is_empty() {
                        specimens.push(line.to_string());
                    }
                }
            }
            let placed = k.check_in_box(&container, &specimens)?;
            out(json, json!(placed), || {
                placed
                    .iter()
                    .map(|p| format!("{} → {} {}", p.specimen, p.container, p.position))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Cmd::CheckOut {
            specimens,
            to,
            purpose,
            due,
            note,
        } => {
            let n = k.check_out(
                &specimens,
                &CheckOut {
                    to: to.clone(),
                    purpose,
                    due,
                    note,
                },
            )?;
            out(json, json!({ "checked_out": n, "to": to }), || {
                format!("checked out {n} to {to}")
            });
        }
        Cmd::Return { specimen, thawed } => {
            let p = k.return_specimen(&specimen, thawed)?;
            out(json, json!(p), || {
                format!("{} returned → {} {}", p.specimen, p.container, p.position)
            });
        }
        Cmd::Move {
            specimen,
            container,
            position,
        } => {
            let p = k.move_specimen(&specimen, &container, position.as_deref())?;
            out(json, json!(p), || {
                format!("{} moved → {} {}", p.specimen, p.container, p.position)
            });
        }
        Cmd::MoveContainer {
            container,
            parent,
            position,
            sign,
        } => {
            signed(&mut k, kura_app::users::Act::StorageLayout, &sign, |k| {
                k.move_container(&container, &parent, position.as_deref())
            })?;
            out(json, json!({ "moved": container, "to": parent }), || {
                format!("{container} moved into {parent}")
            });
        }
        Cmd::Evacuate {
            source,
            backup,
            sign,
        } => {
            let moved = signed(&mut k, kura_app::users::Act::StorageLayout, &sign, |k| {
                k.evacuate(&source, &backup)
            })?;
            out(json, json!({ "moved": moved }), || {
                format!("moved {} containers from {source} to {backup}", moved.len())
            });
        }
        Cmd::Thaw { specimen } => {
            k.thaw(&specimen)?;
            out(json, json!({ "thawed": specimen }), || {
                format!("thaw recorded for {specimen}")
            });
        }
        Cmd::Consume {
            specimen,
            amount,
            unit,
            all,
        } => {
            k.consume(&specimen, amount.as_deref(), unit.as_deref(), all)?;
            out(json, json!({ "consumed": specimen }), || {
                format!("consumption recorded for {specimen}")
            });
        }
        Cmd::Dispose {
            specimen,
            reason,
            sign,
        } => {
            let act = kura_app::users::Act::Dispose;
            // The next signature of this session asks only the password.
            match signed_meaning(&mut k, act, &sign, "performed", |k| {
                k.dispose(&specimen, &reason)
            })? {
                Some(sig) => out(
                    json,
                    json!({ "disposed": specimen, "signature": sig }),
                    || {
                        format!(
                            "{specimen} disposed; signed by {} ({}) — {}",
                            sig.name, sig.signer, sig.meaning
                        )
                    },
                ),
                None => out(json, json!({ "disposed": specimen }), || {
                    format!("{specimen} disposed")
                }),
            }
        }
        Cmd::Block {
            specimen,
            donor,
            reason,
            sign,
        } => match (specimen, donor) {
            (Some(s), None) => {
                k.block(&s, &reason)?;
                out(json, json!({ "blocked": [s] }), || format!("{s} blocked"));
            }
            // A donor's specimens are blocked only as a consent withdrawal: signed, through the
            // lineage, into the destruction queue (one way, not two).
            (None, Some(d)) => withdraw_consent(&mut k, &d, &reason, &sign, json)?,
            _ => return Err(AppError::input("specimen", "give a specimen or --donor")),
        },
        Cmd::Unblock {
            specimen,
            reason,
            sign,
        } => {
            // Lifting a consent withdrawal's block on a database with users is an exception,
            // signed; any other block is lifted as before.
            let exception = k.secured()? && k.consent_withdrawn(&specimen)?.is_some();
            let sig = if exception {
                signed(&mut k, kura_app::users::Act::Block, &sign, |k| {
                    k.unblock(&specimen, &reason)
                })?
            } else {
                k.unblock(&specimen, &reason)?
            };
            match sig {
                Some(sig) => out(
                    json,
                    json!({ "unblocked": specimen, "signature": sig }),
                    || {
                        format!(
                            "{specimen} unblocked as an exception to the consent withdrawal; signed by {} ({}) — {}",
                            sig.name, sig.signer, sig.meaning
                        )
                    },
                ),
                None => out(json, json!({ "unblocked": specimen }), || {
                    format!("{specimen} unblocked")
                }),
            }
        }
        Cmd::Show { specimen } => {
            let v = k.show(&specimen)?;
            out(json, json!(v), || print::specimen(&v, k.calendar()));
        }
        Cmd::Find {
            text,
            donor,
            study,
            sample_type,
            status,
            limit,
        } => {
            let rows = k.find(&FindQuery {
                text,
                donor,
                study,
                sample_type,
                status,
                limit,
                offset: 0,
            })?;
            out(json, json!(rows), || {
                let mut t = print::specimens(&rows);
                if rows.len() == limit {
                    t.push_str(&format!(
                        "\n(the first {limit} shown; more may match: --limit N shows more)"
                    ));
                }
                t
            });
        }
        Cmd::History { specimen } => {
            let rows = k.history(&specimen)?;
            out(json, json!(rows), || print::history(&rows, k.calendar()));
        }
        Cmd::Lineage { specimen } => {
            let tree = k.lineage(&specimen)?;
            out(json, json!(tree), || print::lineage(&tree));
        }
        Cmd::Boxmap {
            container,
            out: None,
        } => {
            let m = k.box_map(&container)?;
            out(json, json!(m), || print::box_map(&m));
        }
        Cmd::Boxmap {
            container,
            out: Some(path),
        } => {
            let r = k.print_box_map(&container, &path)?;
            for w in &r.warnings {
                eprintln!("warning: {w}");
            }
            out(json, json!(r), || {
                format!(
                    "box map of {container} → {} ({} bytes)",
                    path.display(),
                    r.bytes
                )
            });
        }
        Cmd::Import { file, encoding } => {
            let encoding: kura_app::import::CsvEncoding = encoding.parse()?;
            let f = std::fs::File::open(&file).map_err(|e| AppError::File {
                path: file.display().to_string(),
                message: e.to_string(),
            })?;
            let r = k.import_csv_as(
                std::io::BufReader::new(f),
                encoding,
                &mut progress("import"),
            )?;
            out(json, json!(r), || {
                format!(
                    "imported {} specimens ({} new IDs issued, {} stored)",
                    r.rows, r.issued, r.stored
                )
            });
        }
        Cmd::Export { file, bom } => {
            let n = match &file {
                Some(path) => {
                    let f = kura_app::create_private(path).map_err(|e| AppError::File {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                    let mut w = std::io::BufWriter::new(f);
                    let n = k.export_csv(&mut w, bom)?;
                    w.flush().map_err(|e| AppError::File {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                    n
                }
                None => k.export_csv(std::io::stdout().lock(), bom)?,
            };
            if file.is_some() {
                out(json, json!({ "exported": n }), || {
                    format!("exported {n} specimens")
                });
            }
        }
        Cmd::Overdue { limit } => {
            let rows = k.overdue(limit)?;
            let today = k.today().to_string();
            out(
                json,
                json!({ "today": today, "time_zone": k.calendar().name(), "overdue": rows }),
                || {
                    let mut t = print::overdue(&rows, &today);
                    if rows.len() == limit {
                        t.push_str(&format!(
                            "\n(the first {limit} shown, the longest overdue first; --limit N shows more)"
                        ));
                    }
                    t
                },
            );
        }
        Cmd::TimeZone { name, system } => {
            if name.is_some() || system {
                k.set_time_zone(name.as_deref())?;
            }
            let i = k.session_info()?;
            out(
                json,
                json!({ "time_zone": i.time_zone, "chosen": i.time_zone_set, "today": i.today }),
                || {
                    format!(
                        "{} ({}); today at the site is {}",
                        i.time_zone,
                        if i.time_zone_set {
                            "set for this database"
                        } else {
                            "this computer's"
                        },
                        i.today
                    )
                },
            );
        }
        Cmd::Audit {
            specimen,
            user,
            from,
            to,
            out: file,
            lang,
            sign,
        } => {
            let lang = match lang.as_deref() {
                Some(l @ ("en" | "ja")) => l.to_string(),
                Some(other) => {
                    return Err(AppError::input(
                        "lang",
                        format!("{other:?}: a report is in en or ja"),
                    ));
                }
                None => {
                    let env = |k: &str| std::env::var(k).ok();
                    let (a, b, c) = (env("LC_ALL"), env("LC_MESSAGES"), env("LANG"));
                    kura_app::input::language([a.as_deref(), b.as_deref(), c.as_deref()])
                        .to_string()
                }
            };
            let q = kura_app::audit::AuditQuery {
                specimen,
                user,
                from,
                to,
            };
            let x = signed(&mut k, kura_app::users::Act::Read, &sign, |k| {
                k.export_audit(&q, &file, &lang, &mut progress("audit"))
            });
            let x = x?;
            out(json, json!(x), || {
                format!(
                    "{} events to {} ({}{}); chain {}; SHA-256 {}{}",
                    x.events,
                    x.path,
                    x.format,
                    if x.pages > 0 {
                        format!(", {} pages", x.pages)
                    } else {
                        String::new()
                    },
                    if x.intact {
                        "intact"
                    } else {
                        "NOT intact: see the last page and kura verify"
                    },
                    x.sha256,
                    x.signature
                        .as_ref()
                        .map(|s| format!("; signed by {} ({}) — {}", s.name, s.signer, s.meaning))
                        .unwrap_or_default()
                )
            });
        }
        Cmd::Verify => {
            let r = k.verify(&mut progress("verify"))?;
            let integrity = k.integrity_check()?;
            let ok = r.ok() && integrity == "ok";
            out(
                json,
                json!({ "ok": ok, "integrity": integrity, "report": r }),
                || print::verify(&r, &integrity),
            );
            if !ok {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::Backup { to, keep } => {
            let r = k.backup(&to, keep)?;
            k.remember_backup(&r)?;
            if r.same_disk {
                tracing::warn!(
                    "{} is on the same disk as the database: this backup will not survive that disk; back up to another disk",
                    to.display()
                );
            }
            out(json, json!(r), || {
                let mut s = format!(
                    "backup {}: {} events, {} specimens, verified{}",
                    r.path,
                    r.events,
                    r.specimens,
                    if r.token {
                        "; with the registry token"
                    } else {
                        ""
                    }
                );
                for old in &r.removed {
                    s.push_str(&format!("\nremoved the older backup {old}"));
                }
                s
            });
        }
        Cmd::Rebuild => {
            let r = k.rebuild(&mut progress("rebuild"))?;
            out(json, json!(r), || {
                format!(
                    "rebuilt from {} events: {} specimens, {} containers",
                    r.events, r.specimens, r.containers
                )
            });
        }
        Cmd::Stats => {
            let s = k.stats()?;
            out(json, json!(s), || print::stats(&s, k.path()));
        }
    }
    Ok(ExitCode::SUCCESS)
}
