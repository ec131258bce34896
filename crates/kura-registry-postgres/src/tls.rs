//! TLS to PostgreSQL with rustls, configured from the URL the way libpq reads it: `sslmode`
//! (`disable`, `prefer`, `require`, `verify-full`) and `sslrootcert`. tokio-postgres itself
//! knows only disable/prefer/require, so the two are taken out of the URL here.

use std::sync::Arc;

use kura_registry_db::{DbError, DbResult};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

fn config_err(m: String) -> DbError {
    DbError::Unavailable(m)
}

/// The URL tokio-postgres can read, and the rustls configuration when the URL asks for TLS.
pub fn split(url: &str) -> DbResult<(String, Option<ClientConfig>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut mode = None;
    let mut root = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_string()),
            Some(("sslrootcert", v)) => root = Some(v.to_string()),
            _ => rest.push(pair),
        }
    }
    // The URL without the two, with tokio-postgres's own sslmode when one is given.
    let with = |mode: Option<&str>| {
        let mut q = rest.clone();
        let m = mode.map(|m| format!("sslmode={m}"));
        q.extend(m.as_deref());
        if q.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", q.join("&"))
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err(format!("cannot set up TLS: {e}")))
    };
    match mode.as_deref() {
        None => Ok((with(None), None)),
        Some(m @ ("disable" | "prefer")) => Ok((with(Some(m)), None)),
        Some("require") => {
            // libpq: with a root certificate given, require checks it as verify-ca does; here
            // the stricter verify-full is asked for by name, and require only encrypts.
            let config = builder()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider.clone())))
                .with_no_client_auth();
            Ok((with(Some("require")), Some(config)))
        }
        Some("verify-full") => {
            let root = root.ok_or_else(|| {
                config_err(
                    "sslmode=verify-full needs sslrootcert=PATH: the CA certificate (PEM) that signed the PostgreSQL server's certificate".into(),
                )
            })?;
            let roots = roots(&root)?;
            let config = builder()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok((with(Some("require")), Some(config)))
        }
        Some(other) => Err(config_err(format!(
            "sslmode={other} is not supported here; use disable, prefer, require (encrypted) or verify-full with sslrootcert=PATH (encrypted and the server checked)"
        ))),
    }
}

fn roots(path: &str) -> DbResult<rustls::RootCertStore> {
    use rustls::pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| {
            config_err(format!(
                "cannot read the CA certificate {path} (sslrootcert): {e}"
            ))
        })?;
    if certs.is_empty() {
        return Err(config_err(format!(
            "{path} (sslrootcert) holds no PEM certificate"
        )));
    }
    for c in certs {
        store
            .add(c)
            .map_err(|e| config_err(format!("{path} (sslrootcert): {e}")))?;
    }
    Ok(store)
}

/// `sslmode=require`: the connection is encrypted and the handshake's signatures are checked,
/// but the server's certificate is not (as libpq does without a root certificate).
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
