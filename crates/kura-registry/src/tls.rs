//! A site's own certificate authority for the registry's HTTPS, made with rcgen: `kura-registry
//! tls generate --host NAME --out DIR`. The CA certificate goes to every bench (`kura enroll
//! --ca ca.pem`); its SHA-256 fingerprint, printed here and by `kura enroll`, lets the technician
//! check that the file they were handed is the site's.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path} already exists; give another --out directory or remove the old files first")]
    Exists { path: String },
    #[error("{0:?} is not a host name or IP address for the certificate")]
    BadHost(String),
    #[error("give at least one --host: the name or address the benches use to reach the registry")]
    NoHost,
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    #[error("cannot make the certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// What [`generate`] wrote.
#[derive(Debug)]
pub struct Generated {
    /// The site CA's certificate: give it to every bench.
    pub ca_cert: PathBuf,
    /// The CA's private key: keep it offline; it signs further server certificates.
    pub ca_key: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SHA-256 of the CA certificate (DER), as colon-separated upper-case hex.
    pub ca_fingerprint: String,
}

/// SHA-256 of a certificate's DER bytes, as `AB:CD:…` (how browsers and openssl show it).
pub fn fingerprint(der: &[u8]) -> String {
    kura_domain::Digest::of(der).colon_hex()
}

fn ymd(t: chrono::DateTime<chrono::Utc>) -> (i32, u8, u8) {
    (t.year(), t.month() as u8, t.day() as u8)
}

/// Makes a site CA (valid 10 years) and a server certificate for `hosts` signed by it (valid
/// `days`), and writes `ca.pem`, `ca.key`, `cert.pem`, `key.pem` into `out` (keys owner-only).
/// Refuses to overwrite any of them.
pub fn generate(hosts: &[String], out: &Path, days: u32) -> Result<Generated, TlsError> {
    if hosts.is_empty() {
        return Err(TlsError::NoHost);
    }
    let mut sans = Vec::new();
    for h in hosts {
        let h = h.trim();
        let san = match h.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) if valid_dns(h) => SanType::DnsName(
                h.to_string()
                    .try_into()
                    .map_err(|_| TlsError::BadHost(h.to_string()))?,
            ),
            Err(_) => return Err(TlsError::BadHost(h.to_string())),
        };
        sans.push(san);
    }
    let files = ["ca.pem", "ca.key", "cert.pem", "key.pem"].map(|f| out.join(f));
    for f in &files {
        if f.exists() {
            return Err(TlsError::Exists {
                path: f.display().to_string(),
            });
        }
    }
    let now = chrono::Utc::now();
    let start = ymd(now - chrono::Duration::days(1));
    let date = |d: (i32, u8, u8)| rcgen::date_time_ymd(d.0, d.1, d.2);

    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("Kura site CA ({})", hosts[0].trim()),
    );
    ca.distinguished_name
        .push(DnType::OrganizationName, "Kura registry");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = date(start);
    ca.not_after = date(ymd(now + chrono::Duration::days(3650)));
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut leaf = CertificateParams::default();
    leaf.subject_alt_names = sans;
    leaf.distinguished_name
        .push(DnType::CommonName, hosts[0].trim());
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = date(start);
    leaf.not_after = date(ymd(now + chrono::Duration::days(i64::from(days.max(1)))));
    let leaf_key = KeyPair::generate()?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    std::fs::create_dir_all(out).map_err(|e| TlsError::Write {
        path: out.display().to_string(),
        message: e.to_string(),
    })?;
    let [ca_pem, ca_key_path, cert_pem, key_pem] = files;
    write(&ca_pem, ca_cert.pem().as_bytes(), false)?;
    write(&ca_key_path, issuer.key().serialize_pem().as_bytes(), true)?;
    // The chain the server presents: its certificate, then the CA's.
    write(
        &cert_pem,
        format!("{}{}", leaf_cert.pem(), ca_cert.pem()).as_bytes(),
        false,
    )?;
    write(&key_pem, leaf_key.serialize_pem().as_bytes(), true)?;
    Ok(Generated {
        ca_fingerprint: fingerprint(ca_cert.der()),
        ca_cert: ca_pem,
        ca_key: ca_key_path,
        cert: cert_pem,
        key: key_pem,
    })
}

fn valid_dns(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn write(path: &Path, bytes: &[u8], secret: bool) -> Result<(), TlsError> {
    let err = |e: std::io::Error| TlsError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = o.open(path).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

/// Whether serving plain HTTP on `addr` keeps tokens and events on this machine.
pub fn loopback(addr: &std::net::SocketAddr) -> bool {
    addr.ip().is_loopback()
}
