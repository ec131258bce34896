//! Getting bytes to a printer: raw TCP port 9100 (Zebra and compatible thermal printers) or a
//! CUPS queue through `lp`.
//!
//! Before a ZPL job over TCP, the printer is asked for its host status (`~HS`): paper or ribbon
//! out, head open, paused or buffer full stop the job before a byte of it is sent (and nothing
//! is logged); a printer that does not answer in time is printed to as before.
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

/// How a workstation reaches one of its printers, and what the printer is: its resolution
/// (the stock's when not given) and, for ZPL printers, a resident font that draws Japanese.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PrinterConfig {
    /// Raw ZPL over TCP, e.g. `192.0.2.10:9100`.
    Tcp {
        address: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        dpi: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        zpl_font: Option<String>,
    },
    /// Raw ZPL into a CUPS queue (`lp -d QUEUE -o raw`).
    Cups {
        queue: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        dpi: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        zpl_font: Option<String>,
    },
    /// PDF into a CUPS queue (sheet printers).
    CupsPdf {
        queue: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        dpi: Option<u32>,
    },
}

impl PrinterConfig {
    pub fn tcp(address: impl Into<String>) -> PrinterConfig {
        PrinterConfig::Tcp {
            address: address.into(),
            dpi: None,
            zpl_font: None,
        }
    }
    pub fn cups(queue: impl Into<String>) -> PrinterConfig {
        PrinterConfig::Cups {
            queue: queue.into(),
            dpi: None,
            zpl_font: None,
        }
    }
    pub fn cups_pdf(queue: impl Into<String>) -> PrinterConfig {
        PrinterConfig::CupsPdf {
            queue: queue.into(),
            dpi: None,
        }
    }

    pub fn takes_zpl(&self) -> bool {
        !matches!(self, PrinterConfig::CupsPdf { .. })
    }

    /// The printer's resolution, when it was given.
    pub fn dpi(&self) -> Option<u32> {
        match self {
            PrinterConfig::Tcp { dpi, .. }
            | PrinterConfig::Cups { dpi, .. }
            | PrinterConfig::CupsPdf { dpi, .. } => *dpi,
        }
    }

    pub fn zpl_font(&self) -> Option<&str> {
        match self {
            PrinterConfig::Tcp { zpl_font, .. } | PrinterConfig::Cups { zpl_font, .. } => {
                zpl_font.as_deref()
            }
            PrinterConfig::CupsPdf { .. } => None,
        }
    }
}

/// A condition a Zebra reports in its host status that stops it printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    HeadOpen,
    PaperOut,
    RibbonOut,
    Paused,
    BufferFull,
}

impl Fault {
    pub fn code(&self) -> &'static str {
        match self {
            Fault::HeadOpen => "printer_head_open",
            Fault::PaperOut => "printer_paper_out",
            Fault::RibbonOut => "printer_ribbon_out",
            Fault::Paused => "printer_paused",
            Fault::BufferFull => "printer_buffer_full",
        }
    }

    fn says(&self) -> &'static str {
        match self {
            Fault::HeadOpen => "the print head is open: close it",
            Fault::PaperOut => "it is out of labels: load a roll",
            Fault::RibbonOut => "it is out of ribbon: load a ribbon",
            Fault::Paused => "it is paused: press its pause button to resume",
            Fault::BufferFull => {
                "its receive buffer is full: wait for it to finish the jobs it has"
            }
        }
    }
}

/// What a Zebra's answer to `~HS` says. Three strings, each between STX and ETX:
/// 1: `aaa,b,c,dddd,eee,f,…` (b paper out, c paused, f buffer full);
/// 2: `mmm,n,o,p,…` (o head up, p ribbon out); 3: `xxxx,y`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    pub faults: Vec<Fault>,
}

impl HostStatus {
    /// None when `answer` is not a whole `~HS` answer.
    pub fn parse(answer: &[u8]) -> Option<HostStatus> {
        let text = String::from_utf8_lossy(answer);
        let strings: Vec<Vec<&str>> = text
            .split('\u{2}')
            .skip(1)
            .map(|s| {
                s.split('\u{3}')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .collect()
            })
            .collect();
        if strings.len() < 3 || strings[0].len() < 6 || strings[1].len() < 4 {
            return None;
        }
        let flag = |s: &str| -> Option<bool> {
            match s {
                "0" => Some(false),
                "1" => Some(true),
                _ => None,
            }
        };
        let mut faults = Vec::new();
        for (on, fault) in [
            (flag(strings[1][2])?, Fault::HeadOpen),
            (flag(strings[0][1])?, Fault::PaperOut),
            (flag(strings[1][3])?, Fault::RibbonOut),
            (flag(strings[0][2])?, Fault::Paused),
            (flag(strings[0][5])?, Fault::BufferFull),
        ] {
            if on {
                faults.push(fault);
            }
        }
        Some(HostStatus { faults })
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
    /// How long to wait for the answer to `~HS` before printing without it (None: don't ask).
    pub status: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            write: Duration::from_secs(10),
            linger: Duration::from_secs(2),
            retries: 2,
            backoff: Duration::from_millis(500),
            status: Some(Duration::from_millis(1500)),
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
    #[error("printer {address} is not ready: {}; nothing was sent", .faults.iter().map(|f| f.says()).collect::<Vec<_>>().join("; "))]
    NotReady { address: String, faults: Vec<Fault> },
    #[error("printer address {0:?} is not HOST:PORT")]
    BadAddress(String),
    #[error("CUPS queue {queue} is stopped{}; start it (cupsenable {queue}) or ask whoever stopped it, then print again — nothing was sent", if .reason.is_empty() { String::new() } else { format!(" ({})", .reason) })]
    QueueStopped { queue: String, reason: String },
    #[error("CUPS queue {queue}: {message}")]
    Cups { queue: String, message: String },
}

impl PrintError {
    pub fn code(&self) -> &'static str {
        match self {
            PrintError::Unreachable { .. } => "printer_unreachable",
            PrintError::Stalled { .. } => "printer_stalled",
            PrintError::Closed { .. } => "printer_closed",
            PrintError::NotReady { faults, .. } => {
                faults.first().copied().unwrap_or(Fault::Paused).code()
            }
            PrintError::BadAddress(_) => "printer_bad_address",
            PrintError::QueueStopped { .. } => "printer_queue_stopped",
            PrintError::Cups { .. } => "printer_cups",
        }
    }
}

fn resolve(address: &str) -> Result<std::net::SocketAddr, PrintError> {
    address
        .to_socket_addrs()
        .map_err(|_| PrintError::BadAddress(address.into()))?
        .next()
        .ok_or_else(|| PrintError::BadAddress(address.into()))
}

/// Sends one job over raw TCP (port 9100), with the retry rule above.
pub fn send_tcp(address: &str, job: &[u8], t: &Timeouts) -> Result<(), PrintError> {
    let addr = resolve(address)?;
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
    if let Some(wait) = t.status {
        match host_status(&mut stream, wait) {
            Some(st) if !st.faults.is_empty() => {
                tracing::warn!(address, faults = ?st.faults, "printer not ready; nothing sent");
                return Err(PrintError::NotReady {
                    address: address.into(),
                    faults: st.faults,
                });
            }
            Some(_) => {}
            None => tracing::info!(
                address,
                "printer did not answer ~HS; printing without its status"
            ),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_identification_gives_the_dpi() {
        let cases: &[(&[u8], Option<u32>)] = &[
            (b"\x02ZT410-300dpi,V75.20.01Z,12,8176KB\x03\r\n", Some(300)),
            (b"\x02ZD421-203dpi,V84.20.18Z,8,8176KB\x03", Some(203)),
            (b"\x02ZT610-600dpi,V75.20.01Z,24,8176KB\x03", Some(600)),
            (b"\x02OLD,V1,6,512KB\x03", None),
            (b"garbage", None),
            (b"\x02a,b\x03", None),
        ];
        for (answer, dpi) in cases {
            assert_eq!(
                dpi_from_hi(answer),
                *dpi,
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    #[test]
    fn host_status_flags_read_as_faults() {
        let ok = b"\x02030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,0,0,1,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n";
        assert_eq!(HostStatus::parse(ok), Some(HostStatus { faults: vec![] }));
        let all = b"\x02030,1,1,1245,000,1,0,0,000,0,0,0\x03\x02001,0,1,1,1,2,4,0,00000000,1,000\x03\x021234,0\x03";
        assert_eq!(
            HostStatus::parse(all).unwrap().faults,
            vec![
                Fault::HeadOpen,
                Fault::PaperOut,
                Fault::RibbonOut,
                Fault::Paused,
                Fault::BufferFull
            ]
        );
        assert_eq!(HostStatus::parse(b"\x02030,0\x03"), None, "cut short");
        assert_eq!(
            HostStatus::parse(b"\x02030,x,0,1,0,0\x03\x02001,0,0,0\x03\x02a\x03"),
            None,
            "not a flag"
        );
    }
}

/// Sends a Zebra query (`~HS`, `~HI`) and reads its answer until `strings` of them have ended
/// (each is framed by STX … ETX), for up to `wait`. None: no whole answer in time.
fn ask(stream: &mut TcpStream, query: &[u8], strings: usize, wait: Duration) -> Option<Vec<u8>> {
    stream.write_all(query).ok()?;
    let deadline = std::time::Instant::now() + wait;
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    while answer.iter().filter(|&&b| b == 3).count() < strings {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match stream.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(answer)
}

/// Asks for the host status (three strings) and reads the answer for up to `wait`.
fn host_status(stream: &mut TcpStream, wait: Duration) -> Option<HostStatus> {
    HostStatus::parse(&ask(stream, b"~HS", 3, wait)?)
}

/// The resolution a Zebra reports in its host identification (`~HI`: `model,version,dpmm,memory`,
/// between STX and ETX): 8 dots/mm is 203 dpi, 12 is 300, 24 is 600. None when it does not say.
pub fn query_dpi(address: &str, t: &Timeouts) -> Option<u32> {
    let addr = resolve(address).ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, t.connect).ok()?;
    let wait = t.status.unwrap_or(Duration::from_millis(1500));
    let answer = ask(&mut stream, b"~HI", 1, wait)?;
    dpi_from_hi(&answer)
}

fn dpi_from_hi(answer: &[u8]) -> Option<u32> {
    let text = String::from_utf8_lossy(answer);
    let body = text.split('\u{2}').nth(1)?.split('\u{3}').next()?;
    match body.split(',').nth(2)?.trim() {
        "8" => Some(203),
        "12" => Some(300),
        "24" => Some(600),
        _ => None,
    }
}

/// What `kura printer test` reports of a TCP printer: its status, or None when it does not
/// answer `~HS`.
pub fn query_status(address: &str, t: &Timeouts) -> Result<Option<HostStatus>, PrintError> {
    let addr = resolve(address)?;
    let mut stream =
        TcpStream::connect_timeout(&addr, t.connect).map_err(|e| PrintError::Unreachable {
            address: address.into(),
            attempts: 1,
            reason: e.to_string(),
        })?;
    Ok(host_status(
        &mut stream,
        t.status.unwrap_or(Duration::from_millis(1500)),
    ))
}

/// Refuses a stopped (disabled) queue: `lp` would take the job and hold it unprinted, and the
/// print would be logged as done.
pub fn cups_ready(queue: &str) -> Result<(), PrintError> {
    let out = Command::new("lpstat")
        .args(["-p", queue])
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| PrintError::Cups {
            queue: queue.into(),
            message: format!("cannot run lpstat ({e}); install CUPS (cups-client)"),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.trim().is_empty() {
        return Err(PrintError::Cups {
            queue: queue.into(),
            message: format!(
                "no such queue here ({}); check the name with `lpstat -p`",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let mut lines = text.lines();
    if lines
        .next()
        .is_some_and(|l| l.contains(" disabled") || l.contains(" stopped"))
    {
        let reason = lines
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "reason unknown")
            .collect::<Vec<_>>()
            .join("; ");
        return Err(PrintError::QueueStopped {
            queue: queue.into(),
            reason,
        });
    }
    Ok(())
}

/// Hands a job to CUPS with `lp`, once the queue is known to run.
pub fn send_cups(queue: &str, job: &[u8], raw: bool) -> Result<(), PrintError> {
    cups_ready(queue)?;
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
