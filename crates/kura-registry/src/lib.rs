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

pub fn router(db: impl Into<AnyDb>) -> Router {
    let state = Arc::new(api::AppState { db: db.into() });
    Router::new()
        .route(path::HEALTH, get(api::health))
        .route(path::READY, get(api::ready))
        .route(path::CAPABILITIES, get(api::capabilities))
        .route(path::OPENAPI, get(api::openapi))
        .route(path::ENROLL, post(api::enroll))
        .route(path::EVENTS, post(api::push).get(api::pull))
        .route(path::STATUS, get(api::status))
        .route(path::CONFLICTS, get(api::conflicts))
        .route(path::SERIALS, post(api::serials))
        .route(path::SERIALS_CLAIM, post(api::claim))
        // The body limit is `api::Body`'s, which answers in `{code, message}`.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn(log))
        .with_state(state)
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
    axum::serve(listener, router(db))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves HTTPS (rustls, TLS 1.2 and 1.3) with a PEM certificate chain and key.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    db: impl Into<AnyDb>,
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
        .serve(router(db).into_make_service_with_connect_info::<SocketAddr>())
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
