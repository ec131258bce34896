//! The registry as the engine sees it: [`Remote`], and its real implementation over HTTP(S)
//! ([`Http`], reqwest with rustls). Errors say what a person can act on.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use kura_proto::{
    ClaimRequest, ClaimResponse, EnrollRequest, EnrollResponse, ErrorBody, Holding, Lease,
    ParcelPost, ParcelPosted, ParcelsResponse, PullResponse, PushRequest, PushResponse,
    SerialsRequest, StatusResponse, VERSION, path,
};

/// Why a request to the registry did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    #[error(
        "the registry at {url} cannot be reached ({detail}); check the network and the address"
    )]
    Unreachable { url: String, detail: String },
    #[error("the registry did not answer within {seconds} s")]
    Timeout { seconds: u64 },
    #[error(
        "the registry's certificate is not trusted ({detail}); give its CA certificate (--ca) or ask the registry administrator"
    )]
    Certificate { detail: String },
    /// 5xx: the registry is in trouble; try again later.
    #[error("the registry failed ({status}): {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    /// 4xx: the registry refused the request.
    #[error("{message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// An answer that is not what protocol version 1 says (a proxy, another server).
    #[error("the registry's answer was not understood: {0}")]
    Protocol(String),
    #[error("{0}")]
    Config(String),
    /// `http://` to another machine: the token and every event would cross the network in the
    /// clear.
    #[error(
        "{url} is plain HTTP to another machine ({host}): the bench's token and every custody event would cross the network unencrypted. Use the registry's https:// address (with --ca for its CA certificate), or, only on a network you trust, add --insecure-http"
    )]
    PlainHttp { url: String, host: String },
}

impl RemoteError {
    /// Worth trying again after a pause: the network, a timeout, the registry's own trouble.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            RemoteError::Unreachable { .. }
                | RemoteError::Timeout { .. }
                | RemoteError::Server { .. }
                | RemoteError::Protocol(_)
        ) || matches!(
            self,
            RemoteError::Refused { code, .. } if code == "rate_limited" || code == "body_timeout"
        )
    }

    /// Whether this says the network or the registry is down (the bench is offline).
    pub fn offline(&self) -> bool {
        matches!(
            self,
            RemoteError::Unreachable { .. } | RemoteError::Timeout { .. }
        )
    }

    /// A stable code; a refusal carries the registry's own code (one it is known to send, else
    /// `registry_refused`).
    pub fn code(&self) -> &'static str {
        match self {
            RemoteError::Unreachable { .. } => "registry_unreachable",
            RemoteError::Timeout { .. } => "registry_timeout",
            RemoteError::Certificate { .. } => "registry_certificate",
            RemoteError::Server { .. } => "registry_failed",
            RemoteError::Refused { code, .. } => match code.as_str() {
                "unauthorized" => "unauthorized",
                "enroll_code_unknown" => "enroll_code_unknown",
                "enroll_code_used" => "enroll_code_used",
                "enroll_code_expired" => "enroll_code_expired",
                "enroll_other_site" => "enroll_other_site",
                "enroll_serials_taken" => "enroll_serials_taken",
                "enroll_prefix_refused" => "enroll_prefix_refused",
                "enroll_code_for_replacement" => "enroll_code_for_replacement",
                "enroll_code_not_for_replacement" => "enroll_code_not_for_replacement",
                "workstation_revoked" => "workstation_revoked",
                "workstation_exists" => "workstation_exists",
                "not_your_stream" => "not_your_stream",
                "serials_exhausted" => "serials_exhausted",
                "serials_quota" => "serials_quota",
                "enroll_claim_too_large" => "enroll_claim_too_large",
                "bad_year" => "bad_year",
                "gap" => "gap",
                "order_changed" => "order_changed",
                "too_large" => "too_large",
                "rate_limited" => "rate_limited",
                "body_timeout" => "body_timeout",
                "unsupported_version" => "unsupported_version",
                _ => "registry_refused",
            },
            RemoteError::Protocol(_) => "registry_protocol",
            RemoteError::Config(_) => "sync_config",
            RemoteError::PlainHttp { .. } => "registry_plain_http",
        }
    }
}

/// The registry's endpoints the bench uses.
pub trait Remote {
    fn status(&self) -> impl Future<Output = Result<StatusResponse, RemoteError>>;
    fn push(&self, req: &PushRequest) -> impl Future<Output = Result<PushResponse, RemoteError>>;
    /// The site's events after `after`, naming what the bench holds at or below it (see
    /// [`kura_proto::PullResponse`]).
    fn pull(
        &self,
        after: u64,
        limit: u32,
        holding: Holding,
    ) -> impl Future<Output = Result<PullResponse, RemoteError>>;
    fn lease(&self, year: i32, count: u64) -> impl Future<Output = Result<Lease, RemoteError>>;
    /// Claims blocks of serials the registry's status did not list as this workstation's.
    fn claim(&self, leases: Vec<Lease>)
    -> impl Future<Output = Result<ClaimResponse, RemoteError>>;
    /// Sends one of this workstation's shipment bundles.
    fn post_parcel(
        &self,
        req: &ParcelPost,
    ) -> impl Future<Output = Result<ParcelPosted, RemoteError>>;
    /// The parcels addressed to this site after `after`.
    fn parcels(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<ParcelsResponse, RemoteError>>;
}

/// How long to wait on the registry.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// A whole request, from sending to the end of the answer.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(30),
        }
    }
}

/// The registry over HTTP(S).
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
    token: String,
    timeouts: Timeouts,
}

fn client(ca: Option<&Path>, t: Timeouts) -> Result<reqwest::Client, RemoteError> {
    // rustls with ring (the registry's own provider); installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .connect_timeout(t.connect)
        .timeout(t.request)
        .user_agent(concat!("kura/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| {
            RemoteError::Config(format!(
                "cannot read the CA certificate {}: {e}",
                ca.display()
            ))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            RemoteError::Config(format!("{} is not a PEM certificate: {e}", ca.display()))
        })?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build()
        .map_err(|e| RemoteError::Config(format!("cannot set up HTTPS: {e}")))
}

/// The base URL as given, without a trailing slash; only http and https.
pub fn base_url(url: &str) -> Result<String, RemoteError> {
    let u = url.trim().trim_end_matches('/');
    if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 10 {
        return Err(RemoteError::Config(format!(
            "{url:?} is not a registry address; give it as https://host:port (or http:// on a trusted network)"
        )));
    }
    Ok(u.to_string())
}

/// The host of an `http://` address that is not this machine (`None` for https or loopback).
pub fn plain_http_host(base: &str) -> Option<String> {
    let rest = base.trim().strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| host.to_string())
}

/// Refuses `http://` to another machine unless the person said `--insecure-http`.
pub fn check_transport(base: &str, insecure_http: bool) -> Result<(), RemoteError> {
    match plain_http_host(base) {
        Some(host) if !insecure_http => Err(RemoteError::PlainHttp {
            url: base.to_string(),
            host,
        }),
        Some(host) => {
            tracing::warn!(%host, "plain HTTP to the registry (--insecure-http)");
            Ok(())
        }
        None => Ok(()),
    }
}

/// The SHA-256 fingerprint of the first certificate in a PEM file, as `AB:CD:…` (what
/// `kura-registry tls generate` printed for the site CA).
pub fn ca_fingerprint(ca: &Path) -> Result<String, RemoteError> {
    use rustls_pki_types::pem::PemObject;
    let cert = rustls_pki_types::CertificateDer::from_pem_file(ca).map_err(|e| {
        RemoteError::Config(format!("{} is not a PEM certificate: {e}", ca.display()))
    })?;
    Ok(kura_domain::Digest::of(cert.as_ref()).colon_hex())
}

fn classify(url: &str, t: Timeouts, e: reqwest::Error) -> RemoteError {
    use std::error::Error;
    let mut chain = String::new();
    let mut src: Option<&dyn Error> = Some(&e);
    while let Some(s) = src {
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&s.to_string());
        src = s.source();
    }
    let lower = chain.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        return RemoteError::Certificate { detail: chain };
    }
    if e.is_timeout() {
        return RemoteError::Timeout {
            seconds: t.request.as_secs().max(1),
        };
    }
    if e.is_connect() || e.is_request() || e.is_body() {
        return RemoteError::Unreachable {
            url: url.to_string(),
            detail: chain,
        };
    }
    RemoteError::Protocol(chain)
}

async fn answer<T: serde::de::DeserializeOwned>(
    url: &str,
    t: Timeouts,
    res: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, RemoteError> {
    let res = res.map_err(|e| classify(url, t, e))?;
    let status = res.status();
    let bytes = res.bytes().await.map_err(|e| classify(url, t, e))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| RemoteError::Protocol(format!("{e} (status {})", status.as_u16())));
    }
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(b) => (b.code, b.message),
        Err(_) => (
            format!("http_{}", status.as_u16()),
            String::from_utf8_lossy(&bytes).chars().take(300).collect(),
        ),
    };
    if status.is_server_error() {
        Err(RemoteError::Server {
            status: status.as_u16(),
            code,
            message,
        })
    } else {
        Err(RemoteError::Refused {
            status: status.as_u16(),
            code,
            message,
        })
    }
}

impl Http {
    pub fn new(
        base: &str,
        token: &str,
        ca: Option<&Path>,
        timeouts: Timeouts,
    ) -> Result<Http, RemoteError> {
        Ok(Http {
            client: client(ca, timeouts)?,
            base: base_url(base)?,
            token: token.to_string(),
            timeouts,
        })
    }

    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }
}

/// Enrolls this workstation with a one-time code (no token yet).
pub async fn enroll(
    base: &str,
    ca: Option<&Path>,
    timeouts: Timeouts,
    req: &EnrollRequest,
) -> Result<EnrollResponse, RemoteError> {
    let base = base_url(base)?;
    let c = client(ca, timeouts)?;
    let url = format!("{base}{}", path::ENROLL);
    answer(&base, timeouts, c.post(&url).json(req).send().await).await
}

impl Remote for Http {
    async fn status(&self) -> Result<StatusResponse, RemoteError> {
        let r = self
            .client
            .get(self.url(path::STATUS))
            .bearer_auth(&self.token)
            .send()
            .await;
        answer(&self.base, self.timeouts, r).await
    }

    async fn push(&self, req: &PushRequest) -> Result<PushResponse, RemoteError> {
        let json = serde_json::to_vec(req).map_err(|e| RemoteError::Protocol(e.to_string()))?;
        let body = zstd::bulk::compress(&json, 3)
            .map_err(|e| RemoteError::Protocol(format!("compressing the batch: {e}")))?;
        let r = self
            .client
            .post(self.url(path::EVENTS))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .header("content-encoding", "zstd")
            .body(body)
            .send()
            .await;
        answer(&self.base, self.timeouts, r).await
    }

    async fn pull(
        &self,
        after: u64,
        limit: u32,
        holding: Holding,
    ) -> Result<PullResponse, RemoteError> {
        let id = holding.id.map(|id| format!("&id={id}")).unwrap_or_default();
        let own = holding.own.map(|s| format!("&own={s}")).unwrap_or_default();
        let placed = holding
            .placed
            .map(|t| format!("&placed={t}"))
            .unwrap_or_default();
        let r = self
            .client
            .get(format!(
                "{}?after={after}&limit={limit}&at={}{id}{own}{placed}",
                self.url(path::EVENTS),
                holding.at
            ))
            .bearer_auth(&self.token)
            .send()
            .await;
        answer(&self.base, self.timeouts, r).await
    }

    async fn lease(&self, year: i32, count: u64) -> Result<Lease, RemoteError> {
        let r = self
            .client
            .post(self.url(path::SERIALS))
            .bearer_auth(&self.token)
            .json(&SerialsRequest {
                v: VERSION,
                year,
                count: Some(count),
            })
            .send()
            .await;
        answer(&self.base, self.timeouts, r).await
    }

    async fn post_parcel(&self, req: &ParcelPost) -> Result<ParcelPosted, RemoteError> {
        let json = serde_json::to_vec(req).map_err(|e| RemoteError::Protocol(e.to_string()))?;
        let body = zstd::bulk::compress(&json, 3)
            .map_err(|e| RemoteError::Protocol(format!("compressing the bundle: {e}")))?;
        let r = self
            .client
            .post(self.url(path::PARCELS))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .header("content-encoding", "zstd")
            .body(body)
            .send()
            .await;
        answer(&self.base, self.timeouts, r).await
    }

    async fn parcels(&self, after: u64, limit: u32) -> Result<ParcelsResponse, RemoteError> {
        let r = self
            .client
            .get(format!(
                "{}?after={after}&limit={limit}",
                self.url(path::PARCELS)
            ))
            .bearer_auth(&self.token)
            .send()
            .await;
        answer(&self.base, self.timeouts, r).await
    }

    async fn claim(&self, leases: Vec<Lease>) -> Result<ClaimResponse, RemoteError> {
        let r = self
            .client
            .post(self.url(path::SERIALS_CLAIM))
            .bearer_auth(&self.token)
            .json(&ClaimRequest { v: VERSION, leases })
            .send()
            .await;
        answer(&self.base, self.timeouts, r).await
    }
}
