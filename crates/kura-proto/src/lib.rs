//! The sync protocol, version 1: what a bench and the central registry say to each other over
//! HTTP (`/api/v1/...`). Types only, no IO. Every type here is a compatibility promise: a field
//! is never renamed or removed within a version; the golden fixtures in `tests/fixtures/` pin the
//! bytes. An event's payload travels as the exact canonical string that was hashed.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The protocol version every request and answer carries in `v`.
pub const VERSION: u32 = 1;
/// A push carries at most this many events …
pub const MAX_BATCH_EVENTS: usize = 500;
/// … and at most this many bytes of JSON once decompressed.
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// Pull pages hold at most this many events.
pub const MAX_PAGE: u32 = 1000;
/// The serial block a lease grants when the request names no size.
pub const DEFAULT_LEASE: u64 = 1000;
/// The largest serial block one request may ask for.
pub const MAX_LEASE: u64 = 100_000;

pub mod path {
    pub const CAPABILITIES: &str = "/api/v1";
    pub const ENROLL: &str = "/api/v1/enroll";
    pub const EVENTS: &str = "/api/v1/events";
    pub const STATUS: &str = "/api/v1/status";
    pub const CONFLICTS: &str = "/api/v1/conflicts";
    pub const SERIALS: &str = "/api/v1/serials";
    pub const SERIALS_CLAIM: &str = "/api/v1/serials/claim";
    pub const PARCELS: &str = "/api/v1/parcels";
    pub const OPENAPI: &str = "/api/v1/openapi.json";
    pub const HEALTH: &str = "/health";
    pub const READY: &str = "/ready";
}

/// What this registry speaks (`GET /api/v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Capabilities {
    pub versions: Vec<u32>,
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
    pub max_page: u32,
    /// `Content-Encoding`s a push may use besides none.
    pub encodings: Vec<String>,
}

impl Capabilities {
    pub fn current() -> Capabilities {
        Capabilities {
            versions: vec![VERSION],
            max_batch_events: MAX_BATCH_EVENTS,
            max_batch_bytes: MAX_BATCH_BYTES,
            max_page: MAX_PAGE,
            encodings: vec!["gzip".into(), "zstd".into()],
        }
    }
}

/// Every refusal: a stable code a program or a translation can act on, and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// A custody event as a bench stored it, and as the registry ordered it: the domain's
/// envelope travels as it is (the hash as 64 lower-case hex digits).
pub use kura_domain::{Digest, Envelope, Placed};

/// A site: the benches of one biobank that share an ID prefix and their freezers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Site {
    pub code: String,
    pub name: String,
    /// The letters that start every Kura ID of the site.
    pub prefix: String,
    pub serial_width: u32,
}

/// A block of serials, `first..=last`, for Kura IDs of `year` with the site's prefix; no other
/// workstation ever gets any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Lease {
    pub year: i32,
    pub first: u64,
    pub last: u64,
}

/// `POST /api/v1/enroll` (no token: the one-time code is the credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollRequest {
    pub v: u32,
    pub code: String,
    /// The bench's own workstation id: the stream its events already carry.
    pub workstation: Uuid,
    /// A name people recognise (host name, bench label).
    pub name: String,
    /// The year of the first lease (the bench's calendar year).
    pub year: i32,
    /// Serials this database issued itself before it was enrolled (`first..=last` per year):
    /// the registry records them as this workstation's, so that no other bench is leased them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issued: Vec<Lease>,
    /// The ID format of a database that issued Kura IDs itself: the registry refuses (and keeps
    /// the code unused) when the site's differs, since those IDs could never join the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_format: Option<IdFormatClaim>,
    /// A replacement PC (`kura recover`): the code names the workstation it replaces, whose
    /// identity (stream, site) it takes; `workstation` is then ignored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recover: bool,
}

/// The prefix and serial width a bench's own IDs carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IdFormatClaim {
    pub prefix: String,
    pub serial_width: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    pub v: u32,
    pub workstation: Uuid,
    pub site: Site,
    /// The bearer token for every later request. Shown once; the registry keeps only its hash.
    pub token: String,
    pub lease: Lease,
    /// A replacement PC: where the replaced workstation's stream stood.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<ReplacedStream>,
}

/// Where a replaced workstation's stream stood when a new PC took it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplacedStream {
    /// Its events the registry holds (acknowledged), up to this seq.
    pub head: u64,
    /// When it was last heard from (µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
}

/// `POST /api/v1/events`: one workstation's events in `seq` order, without holes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PushRequest {
    pub v: u32,
    pub workstation: Uuid,
    /// The bench's clock when it sent the batch (µs): the registry reports the skew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    pub events: Vec<Envelope>,
}

/// Why the registry refused one event. The codes are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The registry holds another event under this `(workstation, seq)`: the bench's history
    /// went backwards (restored from an old backup, or truncated and rebuilt).
    SequenceFork,
    /// The hash does not match the content and the previous event, or an earlier event of the
    /// batch was not stored.
    ChainBroken,
    /// The event names another site's prefix.
    WrongSite,
    /// The payload is not a custody event this registry knows (malformed, or a newer kind).
    BadPayload,
    /// Another event the registry holds (or an earlier one of the batch) has this event's id.
    IdTaken,
    /// Its actor may not do this at this site (not a user, disabled, a role that does not
    /// allow it), or a signed act without a valid signature by someone allowed to do it.
    Forbidden,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::SequenceFork => "sequence_fork",
            RejectCode::ChainBroken => "chain_broken",
            RejectCode::WrongSite => "wrong_site",
            RejectCode::BadPayload => "bad_payload",
            RejectCode::IdTaken => "id_taken",
            RejectCode::Forbidden => "forbidden",
        }
    }
}

/// The registry's answer for one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Stored now, as `server_seq` of the site.
    Accepted { seq: u64, id: Uuid, server_seq: u64 },
    /// Already stored with the same hash; nothing changed. `server_seq` says where the site's
    /// order put it (absent from registries before it was added).
    Duplicate {
        seq: u64,
        id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server_seq: Option<u64>,
    },
    /// Not stored as a custody event; kept by the registry and to be shown to the user.
    Rejected {
        seq: u64,
        id: Uuid,
        code: RejectCode,
        message: String,
    },
}

impl Verdict {
    pub fn seq(&self) -> u64 {
        match self {
            Verdict::Accepted { seq, .. }
            | Verdict::Duplicate { seq, .. }
            | Verdict::Rejected { seq, .. } => *seq,
        }
    }
}

/// Where the registry's copy of one workstation's stream ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Head {
    /// 0 when the registry holds nothing of this workstation.
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub hash: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PushResponse {
    pub v: u32,
    pub verdicts: Vec<Verdict>,
    pub head: Head,
}

/// `GET /api/v1/status`: what the registry really holds of the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    pub v: u32,
    pub workstation: Uuid,
    pub site: Site,
    pub head: Head,
    pub leases: Vec<Lease>,
    /// The registry's clock (µs).
    pub server_time: i64,
    /// The bench's clock minus the registry's at the last push that said (µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_us: Option<i64>,
    /// The site's newest `server_seq`: the pull cursor can catch up to here.
    pub site_seq: u64,
    /// The event kinds this registry takes: a bench newer than it holds events of other kinds
    /// back (they wait; nothing is refused) and says to upgrade the registry. Absent from
    /// registries older than this field, which the bench then sends everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
}

/// Two (or more) benches recorded custody that cannot both be true; both events are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Conflict {
    /// The `server_seq` of the event that raised it.
    pub server_seq: u64,
    /// The specimen (or container) concerned.
    pub subject: String,
    /// The rule that refused the later event (`already_checked_out`, `position_occupied`, …).
    pub code: String,
    pub message: String,
    /// The events that disagree: the earlier one (when known) and the refused one.
    pub events: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<Uuid>,
}

/// `GET /api/v1/events?after=CURSOR&limit=N&at=POS&id=EVENT`: the site's events from other
/// workstations in `server_seq` order. Store `next` with what was applied.
///
/// `at` and `id` name the event the bench holds at position `at`, the highest position at or
/// below `after` it holds an event of (`at=0` and no `id` when it holds none). A registry whose
/// order differs there, holds another workstation's event between `at` and `after`, or ends
/// before `after` (it was restored from an older copy) answers `409 order_changed` instead: the
/// bench then finds the last position both agree on and learns the order again from there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PullResponse {
    pub v: u32,
    pub events: Vec<Placed>,
    /// Always empty: a bench finds the conflicts by folding the events it pulls (the same rules
    /// as the registry), and the site's list is `GET /api/v1/conflicts`. Sent, empty, so that
    /// benches of earlier versions, which require it, still read the page.
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
    pub next: u64,
    /// More pages wait after `next`.
    pub more: bool,
    /// Where the registry put the caller's own events of this page (their bodies are not sent:
    /// the bench has them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub own: Vec<OwnPosition>,
    /// Events of the page's workstations the registry refused (kept as rejections, never in the
    /// site's order), from each one's event before the page up to its last in the page: the
    /// only holes a workstation's stream may have. Any other jump is an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedSeq>,
}

/// The event the bench holds at a position of the site's order (see [`PullResponse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Holding {
    pub at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The newest seq of its own stream the bench holds: the registry sends the caller's own
    /// events above it in full, in their places (a bench back from a backup, or a replacement
    /// PC, gets back what it had pushed). Without it, own events come as positions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own: Option<u64>,
    /// When the registry stored the event at `at` (its `received_at`, as the page said): names
    /// that placement, not only the event. An event sent again after a registry restore can land
    /// where it was before while the places below it changed; its new placement differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed: Option<i64>,
}

/// The caller's own event `seq` sits at `server_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OwnPosition {
    pub server_seq: u64,
    pub seq: u64,
}

/// Event `seq` of `workstation` was refused by the registry (it is not custody).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefusedSeq {
    pub workstation: Uuid,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConflictsResponse {
    pub v: u32,
    pub conflicts: Vec<Conflict>,
}

/// `POST /api/v1/serials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SerialsRequest {
    pub v: u32,
    pub year: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// `POST /api/v1/serials/claim`: blocks of serials the bench holds that the registry's status
/// did not list as its own (the registry was restored from a copy older than the grant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClaimRequest {
    pub v: u32,
    pub leases: Vec<Lease>,
}

/// What the registry made of a claim: `kept` are the caller's again (no other bench will be
/// leased them); `taken` overlap another workstation's lease, and the bench stops issuing from
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClaimResponse {
    pub v: u32,
    pub kept: Vec<Lease>,
    pub taken: Vec<Lease>,
}

/// What travels between sites through the registry beside the events. A `bundle` is a shipment's
/// bundle ([`kura_domain::bundle::Bundle`]), posted by the workstation that dispatched it once its
/// events were acknowledged, and addressed to the destination site. A `receipt` is made by the
/// registry when a bench of the destination site records a tube of it `received`, and addressed
/// back to the sending site: the receiving bench's event, as the registry took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Parcel {
    Bundle {
        #[schema(value_type = Object)]
        bundle: kura_domain::bundle::Bundle,
    },
    Receipt {
        shipment: String,
        /// The receiving site's code.
        site: String,
        event: Envelope,
    },
    /// A tube of the shipment blocked at the sending site after it left (its donor withdrew
    /// consent, or it was quarantined), signed by the workstation that recorded the block:
    /// posted by it, addressed to the shipment's destination.
    FollowUp {
        #[schema(value_type = Object)]
        follow_up: kura_domain::bundle::FollowUp,
    },
}

impl Parcel {
    pub fn kind(&self) -> &'static str {
        match self {
            Parcel::Bundle { .. } => "bundle",
            Parcel::Receipt { .. } => "receipt",
            Parcel::FollowUp { .. } => "follow_up",
        }
    }

    pub fn shipment(&self) -> &str {
        match self {
            Parcel::Bundle { bundle } => &bundle.shipment,
            Parcel::Receipt { shipment, .. } => shipment,
            Parcel::FollowUp { follow_up } => &follow_up.shipment,
        }
    }

    /// What names it: the dispatch's hash for a bundle, the receiving event's for a receipt,
    /// the block's for a follow-up.
    pub fn hash(&self) -> Digest {
        match self {
            Parcel::Bundle { bundle } => bundle.dispatch.event.hash,
            Parcel::Receipt { event, .. } => event.hash,
            Parcel::FollowUp { follow_up } => follow_up.event.event.hash,
        }
    }
}

/// `POST /api/v1/parcels`: a shipment's bundle, sent by the workstation that dispatched it after
/// the registry acknowledged the dispatch, or a follow-up, sent by the workstation that recorded
/// the block after the registry acknowledged it. Sent again, it changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ParcelPost {
    pub v: u32,
    pub parcel: Parcel,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ParcelPosted {
    pub v: u32,
    /// Its place in the registry's parcels.
    pub seq: u64,
    /// The registry already held it.
    pub duplicate: bool,
}

/// A parcel and its place in the registry's parcels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlacedParcel {
    pub seq: u64,
    pub parcel: Parcel,
}

/// `GET /api/v1/parcels?after=CURSOR&limit=N`: the parcels addressed to the caller's site after
/// the cursor, in order. `at` is the hash of the parcel the registry holds at `after` (absent
/// when it holds none there): a bench that took another parcel there knows the registry was put
/// back from an older copy and reads again from 0 (parcels are taken once, by their hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ParcelsResponse {
    pub v: u32,
    pub parcels: Vec<PlacedParcel>,
    pub next: u64,
    pub more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub at: Option<Digest>,
}
