//! Kura's central registry as a library: [`router`] and [`serve`] (tests bind port 0 and pass the
//! listener), [`serve_tls`] for rustls. The binary in `main.rs` only parses arguments.
//!
//! The registry keeps no state between requests: everything is in the database, so several
//! processes can serve one PostgreSQL database behind a load balancer.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use kura_proto::path;

pub mod api;
pub mod bench;
pub mod db;
pub mod secret;
pub mod tls;

pub use db::AnyDb;

/// The largest body any endpoint reads (a compressed or plain batch).
pub const MAX_BODY: usize = kura_proto::MAX_BATCH_BYTES;

/// What one client may ask of the registry, and how long anything may take. A client past a
/// rate is answered 429 `rate_limited` with `Retry-After`; the benches wait and try again.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A whole request, from its headers to the answer (queueing for a slot included).
    pub request_timeout: Duration,
    /// Reading a request's body.
    pub body_timeout: Duration,
    /// Requests handled at once; more wait (within their deadline) for a slot.
    pub max_in_flight: usize,
    /// Requests per second one IP address may make, after a burst of `per_ip_burst`.
    pub per_ip_per_second: u64,
    pub per_ip_burst: u32,
    /// Enrollments: one per `enroll_every` per IP address, after a burst of `enroll_burst`.
    pub enroll_every: Duration,
    pub enroll_burst: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            request_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_in_flight: 256,
            per_ip_per_second: 200,
            per_ip_burst: 2_000,
            enroll_every: Duration::from_secs(1),
            enroll_burst: 60,
        }
    }
}

pub fn router(db: impl Into<AnyDb>) -> Router {
    router_with(db, Limits::default())
}

/// A rate limit per peer IP address (tower_governor), answering in `{code, message}`.
fn per_ip(
    every: Duration,
    burst: u32,
) -> tower_governor::GovernorLayer<
    tower_governor::key_extractor::PeerIpKeyExtractor,
    governor::middleware::StateInformationMiddleware,
    axum::body::Body,
> {
    let config = tower_governor::governor::GovernorConfigBuilder::default()
        .period(every.max(Duration::from_nanos(1)))
        .burst_size(burst.max(1))
        .use_headers()
        .finish();
    let layer = match config {
        Some(c) => tower_governor::GovernorLayer::new(c),
        // Only a zero period or burst fails, and both are kept above zero.
        None => tower_governor::GovernorLayer::new(
            tower_governor::governor::GovernorConfigBuilder::default()
                .use_headers()
                .finish()
                .unwrap_or_else(|| unreachable!("the default configuration is valid")),
        ),
    };
    layer.error_handler(rate_limited)
}

fn rate_limited(e: tower_governor::GovernorError) -> Response {
    use axum::response::IntoResponse;
    match e {
        tower_governor::GovernorError::TooManyRequests { wait_time, headers } => {
            let mut r = api::ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many requests from this address; wait {} s and try again",
                    wait_time.max(1)
                ),
            )
            .into_response();
            if let Some(h) = headers {
                r.headers_mut().extend(h);
            }
            if let Ok(v) = axum::http::HeaderValue::from_str(&wait_time.max(1).to_string()) {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            r
        }
        other => {
            tracing::error!(error = %other, "rate limiter");
            api::ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the registry could not tell where the request came from",
            )
            .into_response()
        }
    }
}

/// The router with explicit [`Limits`]. Serve it with connect info (`serve` and `serve_tls`
/// do): the rate limits key on the peer's address.
pub fn router_with(db: impl Into<AnyDb>, limits: Limits) -> Router {
    let state = Arc::new(api::AppState {
        db: db.into(),
        limits: limits.clone(),
    });
    let enroll_limit = per_ip(limits.enroll_every, limits.enroll_burst);
    let ip_limit = per_ip(
        Duration::from_secs(1) / limits.per_ip_per_second.clamp(1, 1_000_000) as u32,
        limits.per_ip_burst,
    );
    let deadline = limits.request_timeout;
    Router::new()
        .route(path::HEALTH, get(api::health))
        .route(path::READY, get(api::ready))
        .route(path::CAPABILITIES, get(api::capabilities))
        .route(path::OPENAPI, get(api::openapi))
        .route(path::ENROLL, post(api::enroll).layer(enroll_limit))
        .route(path::EVENTS, post(api::push).get(api::pull))
        .route(path::STATUS, get(api::status))
        .route(path::CONFLICTS, get(api::conflicts))
        .route(path::SERIALS, post(api::serials))
        .route(path::SERIALS_CLAIM, post(api::claim))
        .route(path::PARCELS, post(api::post_parcel).get(api::parcels))
        // The body limit is `api::Body`'s, which answers in `{code, message}`.
        .layer(DefaultBodyLimit::disable())
        // Innermost first: a slot among `max_in_flight`, within the request's deadline, for an
        // address under its rate; the log sees every answer, refusals included.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_in_flight.max(1),
        ))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            within(deadline, req, next)
        }))
        .layer(ip_limit)
        .layer(middleware::from_fn(log))
        .with_state(state)
}

/// Answers 503 `request_timeout` when a request is not done by its deadline (its work is
/// dropped; a push's transaction rolls back).
async fn within(deadline: Duration, req: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(r) => r,
        Err(_) => api::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            format!(
                "the registry did not finish the request within {} s; try again later",
                deadline.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

/// One line per request: method, path, status, time, and the workstation when authenticated.
/// Never headers or bodies (tokens and enrollment codes travel there).
async fn log(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let who = api::Who::default();
    req.extensions_mut().insert(who.clone());
    let res = next.run(req).await;
    let ws = who.get().map(|u| u.to_string());
    tracing::info!(
        %method,
        path,
        status = res.status().as_u16(),
        ms = start.elapsed().as_secs_f64() * 1e3,
        workstation = ws.as_deref().unwrap_or("-"),
        "request"
    );
    res
}

/// Serves plain HTTP on `listener` until `shutdown` resolves, then finishes requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    db: impl Into<AnyDb>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, db, Limits::default(), shutdown).await
}

/// [`serve`] with explicit [`Limits`].
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    db: impl Into<AnyDb>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router_with(db, limits).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serves HTTPS (rustls, TLS 1.2 and 1.3) with a PEM certificate chain and key.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    db: impl Into<AnyDb>,
    limits: Limits,
    cert: &Path,
    key: &Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|e| {
            std::io::Error::other(format!(
                "cannot use the certificate {} and key {}: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(listener, config)?
        .handle(handle)
        .serve(router_with(db, limits).into_make_service_with_connect_info::<SocketAddr>())
        .await
}

/// An HTTP client for the benchmark and the tests. reqwest's rustls backend has no crypto
/// provider of its own in this build (the bench's sync engine enables it without one): ring is
/// installed first, as the server does.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn terminated() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
