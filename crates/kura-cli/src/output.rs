//! What the commands print: a line, text or `--json`, and progress on standard error.

use std::io::{IsTerminal, Write};

pub(crate) fn out(json: bool, value: serde_json::Value, text: impl FnOnce() -> String) {
    if json {
        line(&value.to_string());
    } else {
        let t = text();
        if !t.is_empty() {
            line(&t);
        }
    }
}

/// One line (or more) to standard output. A reader that stopped reading (`kura find | head`)
/// ends the command quietly and successfully: what it wanted, it has.
pub(crate) fn line(text: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = writeln!(o, "{text}").and_then(|()| o.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

pub(crate) fn progress(label: &'static str) -> impl FnMut(u64, u64) {
    let tty = std::io::stderr().is_terminal();
    move |done, total| {
        if tty {
            eprint!("\r{label}: {done}/{total}");
            if done >= total {
                eprintln!();
            }
        } else {
            eprintln!("{label}: {done}/{total}");
        }
    }
}

/// Progress of a sync round on stderr (push, then pull); without a terminal, a line per tenth.
pub(crate) fn progress_phase() -> impl FnMut(&str, u64, u64) {
    let tty = std::io::stderr().is_terminal();
    let mut shown = (String::new(), u64::MAX);
    move |phase, done, total| {
        let tenth = done * 10 / total.max(1);
        if !tty && shown.0 == phase && shown.1 == tenth && done < total {
            return;
        }
        shown = (phase.to_string(), tenth);
        if tty {
            eprint!("\r{phase}: {done}/{total}   ");
            if done >= total {
                eprintln!();
            }
        } else {
            eprintln!("{phase}: {done}/{total}");
        }
    }
}
