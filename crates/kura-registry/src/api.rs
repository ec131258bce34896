//! The HTTP API, version 1. Handlers parse, call the database, answer `{code, message}` on
//! refusal. The OpenAPI document is generated from these annotations.

use std::io::Read;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kura_proto::{
    Capabilities, ClaimRequest, ClaimResponse, ConflictsResponse, EnrollRequest, EnrollResponse,
    ErrorBody, Lease, Parcel, ParcelPost, ParcelPosted, ParcelsResponse, PullResponse, PushRequest,
    PushResponse, SerialsRequest, StatusResponse, VERSION,
};
use kura_registry_db::{Batch, Caller, DbError, Enrollment, RegistryDb, secret_hash};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;

use crate::db::AnyDb;
use crate::secret;

pub struct AppState {
    pub db: AnyDb,
    pub limits: crate::Limits,
}

pub type Shared = State<Arc<AppState>>;

/// The registry's clock, µs since the epoch.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A refusal: the status, a stable code and a sentence.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        let status = match &e {
            DbError::NotFound(_) => StatusCode::NOT_FOUND,
            DbError::Exists(_)
            | DbError::Gap { .. }
            | DbError::OrderChanged { .. }
            | DbError::SerialsExhausted { .. } => StatusCode::CONFLICT,
            DbError::SerialsQuota { .. } => StatusCode::TOO_MANY_REQUESTS,
            DbError::Enroll(_) | DbError::NotYourStream { .. } => StatusCode::FORBIDDEN,
            DbError::BadBatch(_) => StatusCode::BAD_REQUEST,
            DbError::Parcel { code, .. }
                if *code == "not_acknowledged" || *code == "key_changed" =>
            {
                StatusCode::CONFLICT
            }
            DbError::Parcel { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            DbError::Unavailable(_) | DbError::NotMigrated(_) => StatusCode::SERVICE_UNAVAILABLE,
            DbError::Backend(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            // The details stay in the log: a client learns nothing of the database.
            tracing::error!(code = e.code(), error = %e, "database");
            return ApiError::new(
                status,
                e.code(),
                "the registry could not reach or use its database; try again later (the details are in the registry's log)".to_string(),
            );
        }
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                code: self.code,
                message: self.message,
            }),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A request body of at most [`crate::MAX_BODY`] bytes; a longer one is refused with 413 and
/// `{code, message}` before it is read to the end.
pub struct Body(pub Bytes);

impl axum::extract::FromRequest<Arc<AppState>> for Body {
    type Rejection = ApiError;

    /// The whole body must arrive within the body deadline: a client that trickles it (or
    /// stops) is answered 408 and holds nothing longer.
    async fn from_request(
        req: axum::extract::Request,
        s: &Arc<AppState>,
    ) -> Result<Body, ApiError> {
        let deadline = s.limits.body_timeout;
        match tokio::time::timeout(
            deadline,
            axum::body::to_bytes(req.into_body(), crate::MAX_BODY),
        )
        .await
        {
            Ok(read) => read.map(Body).map_err(|_| too_large()),
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s; send it again",
                    deadline.as_secs_f64()
                ),
            )),
        }
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "a batch is at most {} bytes of JSON and {} events; send smaller batches",
            kura_proto::MAX_BATCH_BYTES,
            kura_proto::MAX_BATCH_EVENTS
        ),
    )
}

/// Where the authenticated workstation is noted for the request log.
#[derive(Clone, Default)]
pub struct Who(Arc<std::sync::Mutex<Option<uuid::Uuid>>>);

impl Who {
    pub fn get(&self) -> Option<uuid::Uuid> {
        self.0.lock().ok().and_then(|g| *g)
    }
    fn set(&self, id: uuid::Uuid) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(id);
        }
    }
}

/// The workstation behind `Authorization: Bearer <token>`.
pub struct Auth(pub Caller);

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Auth, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                unauthorized("this request needs the workstation's token (Authorization: Bearer …); enroll the workstation first")
            })?;
        match state.db.authenticate(secret_hash(token)).await? {
            Some(c) => {
                if let Some(who) = parts.extensions.get::<Who>() {
                    who.set(c.workstation);
                }
                Ok(Auth(c))
            }
            None => Err(unauthorized(
                "this token is not valid (wrong, or the workstation was revoked); enroll the workstation again",
            )),
        }
    }
}

/// Kura IDs carry two digits of the year: leases are for 2000–2099.
fn check_year(year: i32) -> Result<(), ApiError> {
    if !(2000..=2099).contains(&year) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_year",
            format!(
                "serials are leased for the years 2000 to 2099, not {year}; check the workstation's clock"
            ),
        ));
    }
    Ok(())
}

/// Reads a JSON body of protocol version 1; an unknown version is refused before its shape is.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    #[derive(Deserialize)]
    struct Versioned {
        v: Option<serde_json::Value>,
    }
    let bad = |e: serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the request body is not the JSON this endpoint takes: {e}"),
        )
    };
    let v: Versioned = serde_json::from_slice(body).map_err(bad)?;
    if v.v.as_ref().and_then(|v| v.as_u64()) != Some(VERSION as u64) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_version",
            format!(
                "this registry speaks protocol version {VERSION}; the request says {}",
                v.v.map_or("none".to_string(), |v| v.to_string())
            ),
        ));
    }
    serde_json::from_slice(body).map_err(bad)
}

/// The body as sent (`Content-Encoding` gzip, zstd or none), refused past the batch limit once
/// decompressed (a small compressed body cannot grow without bound).
fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let limit = kura_proto::MAX_BATCH_BYTES as u64;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let mut out = Vec::new();
    let bad = |e: std::io::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_encoding",
            format!("the body is not valid {encoding}: {e}"),
        )
    };
    match encoding.as_str() {
        "identity" | "" => out.extend_from_slice(body),
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(bad)?;
        }
        "zstd" => {
            zstd::stream::read::Decoder::new(body)
                .map_err(bad)?
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(bad)?;
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!("Content-Encoding {other:?} is not supported; use gzip, zstd or none"),
            ));
        }
    }
    if out.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(out)
}

#[utoipa::path(get, path = "/health", responses((status = 200, description = "The process runs")))]
pub async fn health() -> &'static str {
    "ok"
}

#[utoipa::path(get, path = "/ready", responses(
    (status = 200, description = "The database answers and its schema is current"),
    (status = 503, body = ErrorBody)))]
pub async fn ready(State(s): Shared) -> Result<&'static str, ApiError> {
    s.db.ready().await?;
    Ok("ready")
}

#[utoipa::path(get, path = "/api/v1", responses((status = 200, body = Capabilities)))]
pub async fn capabilities() -> Json<Capabilities> {
    Json(Capabilities::current())
}

#[utoipa::path(post, path = "/api/v1/enroll", request_body = EnrollRequest, responses(
    (status = 200, body = EnrollResponse),
    (status = 403, body = ErrorBody, description = "Unknown, used or expired code; another site; revoked")))]
pub async fn enroll(State(s): Shared, Body(body): Body) -> ApiResult<EnrollResponse> {
    let req: EnrollRequest = parse(&body)?;
    check_year(req.year)?;
    for c in &req.issued {
        check_year(c.year)?;
        if c.first == 0 || c.first > c.last {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_count",
                format!(
                    "serials {}–{} of {} are not a range",
                    c.first, c.last, c.year
                ),
            ));
        }
    }
    let token = secret::new_token().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no_randomness",
            e.to_string(),
        )
    })?;
    let done =
        s.db.enroll(Enrollment {
            code_hash: secret_hash(&secret::normalize_code(&req.code)),
            workstation: req.workstation,
            name: req.name.chars().take(200).collect(),
            token_hash: secret_hash(&token),
            now: now_us(),
            year: req.year,
            lease: kura_proto::DEFAULT_LEASE,
            issued: req.issued.clone(),
            id_format: req.id_format.clone(),
            recover: req.recover,
        })
        .await?;
    match done.replaced {
        Some(r) => tracing::warn!(
            workstation = %done.workstation,
            site = %done.site.code,
            head = r.head,
            "a replacement PC took over the workstation; its old token no longer works"
        ),
        None => {
            tracing::info!(workstation = %done.workstation, site = %done.site.code, "enrolled")
        }
    }
    Ok(Json(EnrollResponse {
        v: VERSION,
        workstation: done.workstation,
        site: done.site,
        token,
        lease: done.lease,
        replaced: done.replaced.map(|r| kura_proto::ReplacedStream {
            head: r.head,
            last_seen: r.last_seen,
        }),
    }))
}

#[utoipa::path(post, path = "/api/v1/events", request_body = PushRequest, security(("token" = [])),
    params(("Content-Encoding" = Option<String>, Header, description = "gzip, zstd or none")),
    responses(
        (status = 200, body = PushResponse, description = "A verdict per event"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "Events of another workstation"),
        (status = 409, body = ErrorBody, description = "gap: the batch starts past what the registry holds"),
        (status = 413, body = ErrorBody)))]
pub async fn push(
    State(s): Shared,
    Auth(caller): Auth,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<PushResponse> {
    let received_at = now_us();
    let json = decode(&headers, &body)?;
    let req: PushRequest = parse(&json)?;
    if req.workstation != caller.workstation {
        return Err(DbError::NotYourStream {
            seq: req.events.first().map_or(0, |e| e.seq),
            claimed: req.workstation,
        }
        .into());
    }
    let n = req.events.len();
    if n > kura_proto::MAX_BATCH_EVENTS {
        return Err(too_large());
    }
    let r =
        s.db.push(
            &caller,
            Batch {
                events: req.events,
                sent_at: req.sent_at,
                received_at,
            },
        )
        .await?;
    tracing::info!(workstation = %caller.workstation, events = n, head = r.head.seq, "push");
    Ok(Json(r))
}

#[utoipa::path(get, path = "/api/v1/status", security(("token" = [])),
    responses((status = 200, body = StatusResponse), (status = 401, body = ErrorBody)))]
pub async fn status(State(s): Shared, Auth(caller): Auth) -> ApiResult<StatusResponse> {
    let st = s.db.status(&caller).await?;
    Ok(Json(StatusResponse {
        v: VERSION,
        workstation: caller.workstation,
        site: caller.site,
        head: st.head,
        leases: st.leases,
        server_time: now_us(),
        clock_skew_us: st.clock_skew_us,
        site_seq: st.site_seq,
        kinds: kura_registry_db::ingest::known_kinds().to_vec(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PullQuery {
    /// The cursor: the `next` of the last page applied (0 at first).
    #[serde(default)]
    after: u64,
    /// Events per page (at most 1000).
    limit: Option<u32>,
    /// The highest position at or below `after` the bench holds an event at (0 for none) …
    at: Option<u64>,
    /// … and that event's id: the registry checks its order agrees there (else `409
    /// order_changed`).
    id: Option<uuid::Uuid>,
    /// The newest seq of its own stream the bench holds: its own events above it come back in
    /// full (a bench restored from a backup, or a replacement PC).
    own: Option<u64>,
    /// When the registry stored the event at `at` (its `received_at`): names the placement.
    placed: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/events", security(("token" = [])), params(PullQuery),
    responses((status = 200, body = PullResponse), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "order_changed: the registry's order differs from the bench's at `at`")))]
pub async fn pull(
    State(s): Shared,
    Auth(caller): Auth,
    Query(q): Query<PullQuery>,
) -> ApiResult<PullResponse> {
    let limit = q.limit.unwrap_or(kura_proto::MAX_PAGE);
    let holding = q.at.map(|at| kura_proto::Holding {
        at,
        id: q.id,
        own: q.own,
        placed: q.placed,
    });
    Ok(Json(s.db.pull(&caller, q.after, limit, holding).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ConflictsQuery {
    /// `false` to include resolved conflicts.
    open: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/conflicts", security(("token" = [])), params(ConflictsQuery),
    responses((status = 200, body = ConflictsResponse), (status = 401, body = ErrorBody)))]
pub async fn conflicts(
    State(s): Shared,
    Auth(caller): Auth,
    Query(q): Query<ConflictsQuery>,
) -> ApiResult<ConflictsResponse> {
    let conflicts =
        s.db.conflicts(&caller.site.code, q.open.unwrap_or(true))
            .await?;
    Ok(Json(ConflictsResponse {
        v: VERSION,
        conflicts,
    }))
}

#[utoipa::path(post, path = "/api/v1/serials", request_body = SerialsRequest, security(("token" = [])),
    responses((status = 200, body = Lease), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The serial space of the year is used up")))]
pub async fn serials(State(s): Shared, Auth(caller): Auth, Body(body): Body) -> ApiResult<Lease> {
    let req: SerialsRequest = parse(&body)?;
    check_year(req.year)?;
    let count = req.count.unwrap_or(kura_proto::DEFAULT_LEASE);
    if !(1..=kura_proto::MAX_LEASE).contains(&count) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_count",
            format!("ask for 1 to {} serials", kura_proto::MAX_LEASE),
        ));
    }
    let lease = s.db.lease(&caller, req.year, count, now_us()).await?;
    tracing::info!(workstation = %caller.workstation, first = lease.first, last = lease.last, "lease");
    Ok(Json(lease))
}

#[utoipa::path(post, path = "/api/v1/serials/claim", request_body = ClaimRequest, security(("token" = [])),
    responses((status = 200, body = ClaimResponse), (status = 401, body = ErrorBody)))]
pub async fn claim(
    State(s): Shared,
    Auth(caller): Auth,
    Body(body): Body,
) -> ApiResult<ClaimResponse> {
    let req: ClaimRequest = parse(&body)?;
    if req.leases.len() > 100 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_count",
            "claim at most 100 blocks at once".to_string(),
        ));
    }
    for c in &req.leases {
        check_year(c.year)?;
        if c.first == 0 || c.first > c.last || c.last - c.first >= kura_proto::MAX_LEASE {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_count",
                format!(
                    "serials {}–{} of {} are not a block the registry could have leased",
                    c.first, c.last, c.year
                ),
            ));
        }
    }
    let got = s.db.claim(&caller, req.leases, now_us()).await?;
    if !got.kept.is_empty() || !got.taken.is_empty() {
        tracing::warn!(
            workstation = %caller.workstation,
            kept = ?got.kept,
            taken = ?got.taken,
            "a bench held serials this registry did not list as its own (restored from an older copy?)"
        );
    }
    Ok(Json(ClaimResponse {
        v: VERSION,
        kept: got.kept,
        taken: got.taken,
    }))
}

#[utoipa::path(post, path = "/api/v1/parcels", request_body = ParcelPost, security(("token" = [])),
    params(("Content-Encoding" = Option<String>, Header, description = "gzip, zstd or none")),
    responses((status = 200, body = ParcelPosted), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "Another workstation's dispatch"),
        (status = 409, body = ErrorBody, description = "not_acknowledged: push the events first; key_changed"),
        (status = 422, body = ErrorBody, description = "The bundle does not check (bundle_tampered, bundle_signature, …)")))]
pub async fn post_parcel(
    State(s): Shared,
    Auth(caller): Auth,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<ParcelPosted> {
    let json = decode(&headers, &body)?;
    let req: ParcelPost = parse(&json)?;
    let shipment = req.parcel.shipment().to_string();
    let kind = req.parcel.kind();
    let r = match req.parcel {
        Parcel::Bundle { bundle } => s.db.post_bundle(&caller, bundle, now_us()).await?,
        Parcel::FollowUp { follow_up } => s.db.post_follow_up(&caller, follow_up, now_us()).await?,
        Parcel::Receipt { .. } => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_a_bench_parcel",
                "a bench sends its shipments' bundles and follow-ups; receipts are made by the registry",
            ));
        }
    };
    tracing::info!(workstation = %caller.workstation, %shipment, kind, seq = r.seq, duplicate = r.duplicate, "parcel");
    Ok(Json(r))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ParcelsQuery {
    /// The cursor: the `next` of the last page taken (0 at first).
    #[serde(default)]
    after: u64,
    /// Parcels per page (at most 100).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/parcels", security(("token" = [])), params(ParcelsQuery),
    responses((status = 200, body = ParcelsResponse), (status = 401, body = ErrorBody)))]
pub async fn parcels(
    State(s): Shared,
    Auth(caller): Auth,
    Query(q): Query<ParcelsQuery>,
) -> ApiResult<ParcelsResponse> {
    let limit = q.limit.unwrap_or(100).clamp(1, 100);
    Ok(Json(s.db.parcels(&caller, q.after, limit).await?))
}

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Kura registry", description = "The central registry of custody events (sync protocol v1)."),
    paths(health, ready, capabilities, enroll, push, status, pull, conflicts, serials, claim, post_parcel, parcels),
    modifiers(&Security)
)]
pub struct ApiDoc;

pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
