//! Getting bytes to a printer: raw TCP port 9100 (Zebra and compatible thermal printers) or a
//! CUPS queue through `lp`.
//!
//! The rule that keeps a print from coming out twice: a job is retried only when nothing of it
//! was sent (the printer refused or did not answer the connection; these printers accept one
//! connection at a time). Once bytes have gone out, a failure is reported, never retried: the
//! technician checks the printer and reprints, and the reprint is marked as one.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a workstation reaches one of its printers.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PrinterConfig {
    /// Raw ZPL over TCP, e.g. `192.0.2.10:9100`.
    Tcp { address: String },
    /// Raw ZPL into a CUPS queue (`lp -d QUEUE -o raw`).
    Cups { queue: String },
    /// PDF into a CUPS queue (sheet printers).
    CupsPdf { queue: String },
}

impl PrinterConfig {
    pub fn takes_zpl(&self) -> bool {
        !matches!(self, PrinterConfig::CupsPdf { .. })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub write: Duration,
    /// How long to wait for the printer to close after the job.
    pub linger: Duration,
    /// Further connection attempts when the printer refuses or does not answer.
    pub retries: u32,
    pub backoff: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            write: Duration::from_secs(10),
            linger: Duration::from_secs(2),
            retries: 2,
            backoff: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    #[error(
        "printer {address} did not accept the connection after {attempts} attempts ({reason}); check that it is on, online and not busy, then print again"
    )]
    Unreachable {
        address: String,
        attempts: u32,
        reason: String,
    },
    #[error(
        "printer {address} stopped taking data after {sent} of {total} bytes (it may be out of labels or ribbon); check it before reprinting — nothing was resent"
    )]
    Stalled {
        address: String,
        sent: usize,
        total: usize,
    },
    #[error(
        "printer {address} closed the connection during the job ({sent} of {total} bytes sent); check what it printed before reprinting — nothing was resent"
    )]
    Closed {
        address: String,
        sent: usize,
        total: usize,
    },
    #[error("printer address {0:?} is not HOST:PORT")]
    BadAddress(String),
    #[error("CUPS queue {queue}: {message}")]
    Cups { queue: String, message: String },
}

impl PrintError {
    pub fn code(&self) -> &'static str {
        match self {
            PrintError::Unreachable { .. } => "printer_unreachable",
            PrintError::Stalled { .. } => "printer_stalled",
            PrintError::Closed { .. } => "printer_closed",
            PrintError::BadAddress(_) => "printer_bad_address",
            PrintError::Cups { .. } => "printer_cups",
        }
    }
}

/// Sends one job over raw TCP (port 9100), with the retry rule above.
pub fn send_tcp(address: &str, job: &[u8], t: &Timeouts) -> Result<(), PrintError> {
    let addr = address
        .to_socket_addrs()
        .map_err(|_| PrintError::BadAddress(address.into()))?
        .next()
        .ok_or_else(|| PrintError::BadAddress(address.into()))?;
    let mut attempts = 0;
    let mut stream = loop {
        attempts += 1;
        match TcpStream::connect_timeout(&addr, t.connect) {
            Ok(s) => break s,
            Err(e) if attempts <= t.retries => {
                tracing::warn!(address, attempts, error = %e, "printer did not accept the connection; retrying");
                std::thread::sleep(t.backoff * attempts);
            }
            Err(e) => {
                return Err(PrintError::Unreachable {
                    address: address.into(),
                    attempts,
                    reason: e.to_string(),
                });
            }
        }
    };
    let _ = stream.set_write_timeout(Some(t.write));
    let _ = stream.set_nodelay(true);
    let mut sent = 0;
    while sent < job.len() {
        match stream.write(&job[sent..(sent + 64 * 1024).min(job.len())]) {
            Ok(0) => {
                return Err(PrintError::Closed {
                    address: address.into(),
                    sent,
                    total: job.len(),
                });
            }
            Ok(n) => sent += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(PrintError::Stalled {
                    address: address.into(),
                    sent,
                    total: job.len(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                return Err(PrintError::Closed {
                    address: address.into(),
                    sent,
                    total: job.len(),
                });
            }
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    // A printer that took everything closes (EOF) or stays quiet; one that dropped the job
    // resets the connection.
    let _ = stream.set_read_timeout(Some(t.linger));
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                return Err(PrintError::Closed {
                    address: address.into(),
                    sent,
                    total: job.len(),
                });
            }
        }
    }
}

/// Hands a job to CUPS with `lp`.
pub fn send_cups(queue: &str, job: &[u8], raw: bool) -> Result<(), PrintError> {
    let mut cmd = Command::new("lp");
    cmd.args(["-d", queue]);
    if raw {
        cmd.args(["-o", "raw"]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| PrintError::Cups {
            queue: queue.into(),
            message: format!("cannot run lp ({e}); install CUPS (cups-client)"),
        })?;
    child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("lp has no standard input"))
        .and_then(|mut stdin| stdin.write_all(job))
        .map_err(|e| PrintError::Cups {
            queue: queue.into(),
            message: e.to_string(),
        })?;
    let out = child.wait_with_output().map_err(|e| PrintError::Cups {
        queue: queue.into(),
        message: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(PrintError::Cups {
            queue: queue.into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}
