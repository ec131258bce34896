// Generated from the Rust DTOs (src-tauri/src/types.rs). Do not edit: run
// `KURA_UPDATE_TYPES=1 cargo test -p kura-desktop types` after changing a DTO.

export type Scheme = 'numbers' | 'letters' | 'letters_skip_i' | 'roman';
export type Geometry =
  | { layout: 'grid'; rows: number; cols: number; row_scheme: Scheme; col_scheme: Scheme; fill: { column_major: boolean; from: string } }
  | { layout: 'linear'; slots: number; scheme: Scheme }
  | { layout: 'unpositioned' };

export type SessionInfo = { actor: string, workstation: string, database: string, 
/**
 * The site's Kura ID prefix (None until the database is set up).
 */
id_prefix: string | null, 
/**
 * The site's time zone (an IANA name), in which due dates and "today" are dates.
 */
time_zone: string, 
/**
 * Whether that zone was chosen for the site (false: it follows this computer's).
 */
time_zone_set: boolean, 
/**
 * Today's date at the site, `YYYY-MM-DD`.
 */
today: string, 
/**
 * This start created the database (there was no file): the window says where.
 */
created: boolean, };

export type SpecimenView = { code: string, sample_type: string, material: string, primary_container: string, storage_code: string, quantity_milli: number | null, unit: string | null, study: string, donor: string, collected_at: number | null, registered_at: number, parent: string | null, freeze_thaw: number, status: string, blocked: boolean, in_conflict: boolean, 
/**
 * The container's code (box, tube rack, cane), when stored or reserved.
 */
container: string | null, row: number | null, col: number | null, 
/**
 * The position label, e.g. `A1`.
 */
position: string | null, 
/**
 * site › room › freezer › rack › box › A1
 */
path: string | null, holder: string | null, due: string | null, 
/**
 * Why the donor (of this specimen or of one it derives from) withdrew consent; `None`:
 * they did not.
 */
consent_withdrawn: string | null, };

export type ScanFlags = { in_conflict: boolean, consent_withdrawn: string | null, };

export type Located = { specimen: SpecimenView, box_map: BoxMap | null, };

export type FindQuery = { 
/**
 * A specimen code (exact, or a prefix), a donor or a study.
 */
text: string | null, donor: string | null, study: string | null, sample_type: string | null, status: string | null, limit: number, offset: number, };

export type EventRow = { event_id: string, workstation: string, seq: number, actor: string, at: number, kind: string, payload: Record<string, unknown>, };

export type LineageNode = { code: string, sample_type: string, status: string, children: Array<LineageNode>, };

export type BoxSlot = { row: number, col: number, label: string, specimen: string | null, sample_type: string | null, status: string | null, blocked: boolean, registered_at: number | null, 
/**
 * A container in this slot (racks hold boxes).
 */
container: string | null, };

export type BoxMap = { code: string, name: string, kind: string, path: string, geometry: Geometry, capacity: number | null, occupied: number, 
/**
 * Every position in row-major order (empty ones included).
 */
slots: Array<BoxSlot>, };

export type ContainerRow = { code: string, name: string, kind: string, type_name: string, parent: string | null, position: string | null, path: string, temperature: string | null, children: number, specimens: number, capacity: number | null, };

export type Stats = { specimens: number, by_status: Array<[string, number]>, blocked: number, containers: number, events: number, 
/**
 * This workstation's events the registry has not answered yet (past the high-water mark).
 */
to_sync: number, workstation: string, };

export type Placed = { specimen: string, container: string, row: number, col: number, position: string, 
/**
 * Two benches disagree about this specimen (the window adds a line saying so).
 */
in_conflict: boolean, 
/**
 * Why its donor withdrew consent (the window says so in red).
 */
consent_withdrawn: string | null, };

export type CheckOut = { to: string, 
/**
 * analysis, qc, distribution, transfer or other.
 */
purpose: string, 
/**
 * YYYY-MM-DD; blank or absent: open-ended.
 */
due: string | null, note: string | null, };

export type RegisterRequest = { 
/**
 * A pre-barcoded tube's own code; when absent Kura issues an ID.
 */
code: string | null, 
/**
 * SPREC sample type (BLD, PL1, …).
 */
sample_type: string, 
/**
 * SPREC primary container (PED, SST, …).
 */
container: string, 
/**
 * SPREC long-term storage (A, C, D, …).
 */
storage: string, 
/**
 * The amount, e.g. "10" (with `unit`).
 */
quantity: string | null, 
/**
 * The amount's unit, e.g. "mL".
 */
unit: string | null, study: string, donor: string, 
/**
 * RFC 3339 or YYYY-MM-DD.
 */
collected_at: string | null, 
/**
 * How many aliquots to split off in the same act.
 */
aliquots: number, 
/**
 * Each aliquot's quantity (same unit as the parent).
 */
aliquot_quantity: string | null, 
/**
 * A different SPREC type makes the children derivatives (DNA from blood …).
 */
aliquot_type: string | null, 
/**
 * Store the aliquots in this box, each at the next free position.
 */
into: string | null, };

export type Registered = { parent: string, aliquots: Array<string>, placed: Array<Placed>, };

export type Choice = { code: string, en: string, ja: string, };

export type Vocabulary = { sample_types: Array<Choice>, primary_containers: Array<Choice>, storage: Array<Choice>, };

export type StockInfo = { id: string, name: string, template: string, dpi: number, source: string, };

export type LabelPreview = { code: string, stock: string, 
/**
 * SVG, sized in mm.
 */
svg: string, warnings: Array<string>, 
/**
 * How often this code's label was printed before (a print now is a reprint when > 0).
 */
printed_before: number, };

export type PrintReport = { labels: number, pages: number, bytes: number, stock: string, target: string, warnings: Array<string>, 
/**
 * Codes printed before: this print is marked as their reprint.
 */
reprints: Array<string>, };

export type PrinterConfig = { "kind": "tcp", address: string, dpi?: number, zpl_font?: string, } | { "kind": "cups", queue: string, dpi?: number, zpl_font?: string, } | { "kind": "cups_pdf", queue: string, dpi?: number, };

export type PrinterTest = { printer: string, dpi: number, stock: string, 
/**
 * `ready`, `no status answer` (a ZPL printer that does not answer `~HS`) or `queue running`.
 */
status: string, 
/**
 * What the calibration label's symbols encode.
 */
code: string, bytes: number, warnings: Array<string>, };

export type Who = { secured: boolean, user: string | null, name: string | null, role: string | null, idle_secs: number, 
/**
 * Whether this session has signed once (then a signature asks only the password).
 */
signed_once: boolean, };

export type UserView = { user: string, name: string, role: string, badge: string | null, disabled: boolean, has_password: boolean, has_pin: boolean, };

export type AuditQuery = { 
/**
 * Events about this specimen.
 */
specimen: string | null, 
/**
 * Events this user made, or that are about them (user administration).
 */
user: string | null, 
/**
 * From this date at the site (inclusive), `YYYY-MM-DD`.
 */
from: string | null, 
/**
 * To this date at the site (inclusive).
 */
to: string | null, 
/**
 * Verify the whole log and the projection again (`kura verify --full`), not only what
 * came after the last verified point.
 */
full: boolean, };

export type AuditExport = { path: string, format: string, events: number, pages: number, sha256: string, 
/**
 * Whether `verify` found the chain intact.
 */
intact: boolean, signature: SignatureView | null, };

export type Signing = { user: string | null, secret: string, meaning: 'performed' | 'reviewed' | 'approved', };

export type SignatureView = { event: string, event_hash: string, signer: string, name: string, meaning: string, 
/**
 * UTC microseconds.
 */
at: number, };

export type QueuedForDestruction = { code: string, donor: string, reason: string, };

export type SyncStatus = { enrolled: boolean, 
/**
 * `not_enrolled`, `online`, `offline`, `error`, `stopped` (a fork), or `syncing`.
 */
state: string, registry: string | null, site: string | null, 
/**
 * This workstation's events the registry has not answered yet.
 */
waiting: number, 
/**
 * UTC microseconds.
 */
last_success: number | null, last_attempt: number | null, last_error_code: string | null, last_error: string | null, 
/**
 * Events of this workstation the registry kept as rejections.
 */
rejections: number, 
/**
 * Open conflicts.
 */
conflicts: number, 
/**
 * Incoming shipments with tubes still on the way (the header counts them).
 */
incoming: number, 
/**
 * This workstation's clock minus the registry's, at the last push (ms).
 */
clock_skew_ms: number | null, 
/**
 * Kura IDs left for this year in the leases (None: not enrolled, IDs from the local counter).
 */
ids_left: number | null, 
/**
 * IDs issued here in the last 24 hours (at least 50): a day's worth.
 */
ids_per_day: number, 
/**
 * Fewer than a day's worth left.
 */
ids_low: boolean, 
/**
 * The size of the next lease this bench asks for: a week at its recent rate, at least a
 * default lease.
 */
lease_size: number, 
/**
 * Below this many IDs left, a sync round asks for another lease.
 */
lease_low: number, 
/**
 * Why pushing stopped (a sequence fork), until an administrator looks.
 */
stopped: string | null, 
/**
 * A round in flight (the window's worker): what it is doing.
 */
phase: string | null, phase_done: number | null, phase_total: number | null, };

export type EnrollReport = { registry: string, site: string, site_name: string, 
/**
 * The prefix of the Kura IDs this workstation issues from now on.
 */
prefix: string, workstation: string, lease_year: number, lease_first: number, lease_last: number, 
/**
 * Kura IDs this database issued before it was enrolled (outside the registry's leases).
 */
issued_before: number, 
/**
 * SHA-256 of the CA certificate given with --ca, to compare with what the registry's
 * administrator read out (`kura-registry tls generate` prints it).
 */
ca_fingerprint: string | null, };

export type ConflictView = { subject: string, code: string, message: string, 
/**
 * The event the rules refused (the later one in the site's order).
 */
refused: EventRow | null, 
/**
 * The earlier event it disagrees with, whose effect stands.
 */
other: EventRow | null, resolved_by: string | null, };

export type RejectionRow = { event: string, seq: number, kind: string, code: string, message: string, at: number, };

export type LastBackup = { 
/**
 * When it was taken (µs).
 */
at: number, path: string, events: number, 
/**
 * On the same disk as the database: it will not survive that disk.
 */
same_disk: boolean, };

export type BackupSettings = { dir: string, keep: number, last: LastBackup | null, 
/**
 * No backup in the last day (or never): the next check takes one.
 */
due: boolean, };

export type BackupReport = { path: string, events: number, specimens: number, 
/**
 * The registry token was copied beside it (an enrolled bench).
 */
token: boolean, 
/**
 * Older backups of this workstation removed by `--keep`.
 */
removed: Array<string>, 
/**
 * The backup folder is on the same disk as the database: it will not survive that disk.
 */
same_disk: boolean, };

export type ShipForm = { 
/**
 * What was scanned: tubes, or boxes (each stands for every tube in it).
 */
scans: Array<string>, 
/**
 * Another site of the network (its code).
 */
to_site: string | null, 
/**
 * A researcher outside the network (the tubes leave Kura's custody; needs `mta`).
 */
to_recipient: string | null, courier: string | null, tracking: string | null, 
/**
 * dry-ice, ln2-dry-shipper, ambient or 4C.
 */
temperature: string, 
/**
 * Net dry ice in kg (with dry ice).
 */
dry_ice_kg: string | null, 
/**
 * The temperature logger travelling with the tubes.
 */
logger: string | null, 
/**
 * The material transfer agreement's reference.
 */
mta: string | null, };

export type Dispatched = { shipment: string, 
/**
 * `site:CODE` or `recipient:NAME`.
 */
destination: string, tubes: Array<string>, 
/**
 * The boxes the tubes were packed from.
 */
boxes: Array<string>, 
/**
 * Out of the network: the tubes' custody ended (`distributed`).
 */
distributed: boolean, 
/**
 * The supervisor's signature of a distribution.
 */
signature: SignatureView | null, };

export type Shipped = { dispatched: Dispatched, 
/**
 * The manifest PDF (in the labels folder next to the database).
 */
manifest: string, pages: number, 
/**
 * The sealed manifest file, when asked for.
 */
sealed: string | null, };

export type ShipmentSummary = { shipment: string, 
/**
 * `outgoing` (dispatched from this site) or `incoming`.
 */
direction: string, destination: string, 
/**
 * YYYY-MM-DD HH:MM at the site: when it was dispatched from here, or arrived here.
 */
dispatched: string, coolant: string, courier: string | null, tracking: string | null, tubes: number, 
/**
 * Tubes still on the way.
 */
in_transit: number, 
/**
 * Outgoing: tubes the destination received, as the registry's receipts say (they are no
 * longer counted on the way).
 */
received_there: number, };

export type Reconciled = { shipment: string, 
/**
 * Received now (into a box: with the position).
 */
received: Array<Placed>, 
/**
 * On the manifest, not received yet: still in transit (a straggler can be received later).
 */
missing: Array<string>, 
/**
 * Scanned but not on the manifest: reported, never registered.
 */
unexpected: Array<string>, 
/**
 * Received damaged or leaked (and blocked).
 */
damaged: Array<string>, 
/**
 * Scanned again, received before.
 */
already: Array<string>, };

export type Taken = { shipment: string, 
/**
 * The trusted key's name (None: through the registry, which vouched for its site).
 */
from: string | null, tubes: number, 
/**
 * It had been taken before (nothing new was recorded).
 */
again: boolean, };

export type KeyView = { fingerprint: string, public: string, };

export type Progressed = { done: number, total: number, };

export type ImportReport = { rows: number, issued: number, stored: number, 
/**
 * The file's name and the SHA-256 of its bytes, as the `imported` event records them.
 */
file: string, sha256: string, 
/**
 * `--check`: every row was read and checked; nothing was written.
 */
checked_only: boolean, };

export type Exported = { path: string, rows: number, };

export type ExportFilter = { 
/**
 * Only those in this box (rack, cane).
 */
container: string | null, 
/**
 * Only those of this study.
 */
study: string | null, 
/**
 * A specimen code (exact, or a prefix), a donor or a study, as the search box takes it.
 */
text: string | null, donor: string | null, sample_type: string | null, status: string | null, };

export type ScanFile = { name: string, path: string, 
/**
 * Modification time, milliseconds since 1970 (a new scan has a newer one).
 */
modified_ms: number, bytes: number, };

export type AtPosition = { position: string, code: string, };

export type MovedTube = { code: string, 
/**
 * Where the database has it (`BOX/A3`, or a status when it is not in storage).
 */
from: string, to: string, };

export type Unreadable = { position: string, expected: string | null, };

export type Applied = { moved: number, checked_out_missing: number, registered: number, };

export type Reconciliation = { box: string, rows: number, cols: number, rack: string | null, 
/**
 * The scan was read rotated by 180° (the rack sat the wrong way round in the reader).
 */
rotated: boolean, matched: Array<AtPosition>, 
/**
 * In the database here, not in the scan.
 */
missing: Array<AtPosition>, moved: Array<MovedTube>, unreadable: Array<Unreadable>, 
/**
 * In the scan, not registered at all.
 */
unexpected: Array<AtPosition>, 
/**
 * Set by `--apply`: what was recorded.
 */
applied: Applied | null, };

export type Room = { code: string, kind: string, path: string, capacity: number, free: number, 
/**
 * Taken share, 0–1 (the heat map's colour).
 */
fill: number, };

export type TypeRoom = { type_name: string, boxes: number, free: number, };

export type Take = { code: string, path: string, tubes: number, };

export type Space = { free: number, by_type: Array<TypeRoom>, 
/**
 * Every container above the boxes (sites, rooms, freezers, racks …), with its boxes' room.
 */
places: Array<Room>, 
/**
 * With `need`: the boxes that take them, fullest first (fill what is open before a new box).
 */
takes: Array<Take>, 
/**
 * With `need`: whether they all fit.
 */
fits: boolean | null, };

export type WireError = { code: string, message: string, details?: Record<string, unknown>, };
