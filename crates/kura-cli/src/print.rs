//! Human-readable output.

use kura_app::bench::BenchReport;
use kura_app::{
    BoxMap, Calendar, ConflictView, ContainerRow, EnrollReport, EventRow, LineageNode,
    RecoverReport, SpecimenView, Stats, SyncReport, SyncStatus, VerifyReport,
};

/// An instant as the site's wall clock shows it.
fn when(cal: &Calendar, micros: i64) -> String {
    cal.wall(kura_app::Timestamp(micros))
}

fn qty(v: &SpecimenView) -> String {
    match (v.quantity_milli, &v.unit) {
        (Some(m), Some(u)) => format!("{} {u}", (m as f64) / 1000.0),
        _ => String::new(),
    }
}

fn status(v: &SpecimenView) -> String {
    let mut s = v.status.clone();
    if v.blocked {
        s.push_str(", BLOCKED");
    }
    if v.in_conflict {
        s.push_str(", IN CONFLICT");
    }
    s
}

pub fn specimen(v: &SpecimenView, cal: &Calendar) -> String {
    let mut s = format!(
        "{}  {} ({})  {}  [{}]\n",
        v.code,
        v.sample_type,
        v.material,
        qty(v),
        status(v)
    );
    match (&v.path, v.status.as_str()) {
        (Some(p), "checked_out") => s.push_str(&format!("  reserved at: {p}\n")),
        (Some(p), _) => s.push_str(&format!("  location:    {p}\n")),
        (None, _) => s.push_str("  location:    —\n"),
    }
    if let Some(h) = &v.holder {
        s.push_str(&format!(
            "  held by:     {h}{}\n",
            v.due
                .as_ref()
                .map(|d| format!(" (due back {d})"))
                .unwrap_or_default()
        ));
    }
    s.push_str(&format!(
        "  study:       {}\n  donor:       {}\n",
        v.study, v.donor
    ));
    if let Some(p) = &v.parent {
        s.push_str(&format!("  parent:      {p}\n"));
    }
    if let Some(r) = &v.consent_withdrawn {
        s.push_str(&format!("  consent:     WITHDRAWN ({r})\n"));
    }
    s.push_str(&format!(
        "  freeze–thaw: {}\n  registered:  {}",
        v.freeze_thaw,
        when(cal, v.registered_at)
    ));
    s
}

pub fn specimens(rows: &[SpecimenView]) -> String {
    if rows.is_empty() {
        return "no specimens found".into();
    }
    rows.iter()
        .map(|v| {
            format!(
                "{:<16} {:<4} {:<12} {:<24} {}",
                v.code,
                v.sample_type,
                status(v),
                v.donor,
                v.path.clone().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Overdue check-outs: who has them and since when they were due.
pub fn overdue(rows: &[SpecimenView], today: &str) -> String {
    if rows.is_empty() {
        return format!("nothing is overdue (today is {today})");
    }
    rows.iter()
        .map(|v| {
            format!(
                "{:<16} due {}  {:<24} {}",
                v.code,
                v.due.clone().unwrap_or_default(),
                v.holder.clone().unwrap_or_default(),
                v.path.clone().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn history(rows: &[EventRow], cal: &Calendar) -> String {
    rows.iter()
        .map(|e| {
            let mut p = e.payload.clone();
            if let Some(o) = p.as_object_mut() {
                o.remove("kind");
            }
            format!("{}  {:<18} {:<12} {}", when(cal, e.at), e.kind, e.actor, p)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn lineage(n: &LineageNode) -> String {
    fn walk(n: &LineageNode, depth: usize, out: &mut Vec<String>) {
        out.push(format!(
            "{}{} {} [{}]",
            "  ".repeat(depth),
            n.code,
            n.sample_type,
            n.status
        ));
        for c in &n.children {
            walk(c, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(n, 0, &mut out);
    out.join("\n")
}

pub fn box_map(m: &BoxMap) -> String {
    let mut s = format!(
        "{} — {} ({}), {} of {} positions used\n",
        m.code,
        m.path,
        m.kind,
        m.occupied,
        m.capacity.unwrap_or(0)
    );
    let (rows, cols) = match &m.geometry {
        kura_app::storage::Geometry::Grid { rows, cols, .. } => (*rows, *cols),
        kura_app::storage::Geometry::Linear { slots, .. } => (1, *slots),
        kura_app::storage::Geometry::Unpositioned => (0, 0),
    };
    for r in 0..rows {
        let mut line = String::new();
        for c in 0..cols {
            let slot = m.slots.iter().find(|x| x.row == r && x.col == c);
            let mark = match slot {
                Some(x) if x.blocked => "B",
                Some(x) if x.status.as_deref() == Some("checked_out") => "○",
                Some(x) if x.specimen.is_some() || x.container.is_some() => "●",
                _ => "·",
            };
            line.push_str(mark);
            line.push(' ');
        }
        s.push_str(&format!("  {}\n", line.trim_end()));
    }
    s.push_str("  ● stored  ○ checked out (reserved)  B blocked  · free\n");
    for x in &m.slots {
        if let Some(code) = x.specimen.as_ref().or(x.container.as_ref()) {
            s.push_str(&format!(
                "  {:<5} {code} {}\n",
                x.label,
                x.sample_type.clone().unwrap_or_default()
            ));
        }
    }
    s.trim_end().to_string()
}

pub fn containers(rows: &[ContainerRow]) -> String {
    if rows.is_empty() {
        return "no containers".into();
    }
    rows.iter()
        .map(|c| {
            let used = match c.capacity {
                Some(cap) => format!("{}/{cap}", c.specimens.max(c.children)),
                None => format!("{} inside", c.children),
            };
            format!(
                "{:<22} {:<10} {:<6} {:<10} {}",
                c.code,
                c.kind,
                c.position.clone().unwrap_or_default(),
                used,
                c.name
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn verify(r: &VerifyReport, integrity: &str) -> String {
    let mut s = format!(
        "{} events from {} workstation(s), {} specimens; SQLite integrity: {integrity}\n",
        r.events, r.workstations, r.specimens
    );
    if let Some(p) = r.since.as_ref().filter(|_| !r.full) {
        s.push_str(&format!(
            "from the last verified point: event {} ({}); run with --full to read the whole log again and compare the projection\n",
            p.event,
            kura_app::Timestamp(p.at)
        ));
    }
    if r.ok() && r.awaiting_refold {
        s.push_str("OK: the hash chain is intact; the projection waits for a pull to finish (it is folded again in the registry's order then) and was not compared: run kura sync, then verify again");
    } else if r.ok() && r.full {
        s.push_str("OK: the hash chain is intact and the projection equals a rebuild from the log");
    } else if r.ok() {
        s.push_str("OK: the events since that point are intact and chained to it");
    } else {
        s.push_str(&format!("FAILED: {} problem(s)\n", r.problems.len()));
        for p in &r.problems {
            s.push_str(&format!("  [{}] {}\n", p.code, p.message));
        }
    }
    s.trim_end().to_string()
}

pub fn stats(s: &Stats, path: &std::path::Path) -> String {
    let mut out = format!(
        "database:    {}\nworkstation: {}\nspecimens:   {}\n",
        path.display(),
        s.workstation,
        s.specimens
    );
    for (st, n) in &s.by_status {
        out.push_str(&format!("  {st:<12} {n}\n"));
    }
    out.push_str(&format!(
        "blocked:     {}\ncontainers:  {}\nevents:      {}\nto sync:     {}",
        s.blocked, s.containers, s.events, s.to_sync
    ));
    out
}

pub fn bench(r: &BenchReport) -> String {
    let mut s = format!("Kura benchmarks ({} specimens)\n", r.specimens);
    for l in &r.lines {
        s.push_str(&format!(
            "\n{}\n  compares: {}\n  kura:     {}\n  baseline: {}\n  ratio:    {:.2} ({})\n  target:   {}: {}\n",
            l.name,
            l.compares,
            l.kura,
            l.raw,
            l.ratio,
            l.ratio_of,
            l.target,
            if l.met { "met" } else { "NOT met" }
        ));
    }
    s
}

pub fn enrolled(r: &EnrollReport) -> String {
    let mut s = format!(
        "enrolled workstation {} at site {} ({}) on {}\nKura IDs now carry the prefix {}; leased serials {}–{} for {}",
        r.workstation,
        r.site,
        r.site_name,
        r.registry,
        r.prefix,
        r.lease_first,
        r.lease_last,
        r.lease_year
    );
    if let Some(f) = &r.ca_fingerprint {
        s.push_str(&format!(
            "\ntrusting the CA certificate with SHA-256 fingerprint {f}: compare it with what the registry's administrator read out"
        ));
    }
    if r.issued_before > 0 {
        s.push_str(&format!(
            "\nnote: this database issued {} ID(s) itself before it was enrolled; they are outside the registry's leases",
            r.issued_before
        ));
    }
    s.push_str("\nnext: kura sync (or kura sync --watch)");
    s
}

pub fn recovered(r: &RecoverReport, cal: &Calendar) -> String {
    let e = &r.enrolled;
    let mut s = format!(
        "this PC is now workstation {} of site {} ({}) on {}; the old PC's token no longer works\nthe registry had acknowledged {} of its events{}; anything it recorded after its last sync is gone",
        e.workstation,
        e.site,
        e.site_name,
        e.registry,
        r.acknowledged,
        r.last_seen
            .map(|t| format!(" (last heard from {})", when(cal, t)))
            .unwrap_or_default(),
    );
    match &r.sync_error {
        None => s.push_str(&format!(
            "\n{} of its events came back; {} events here now (its own and the site's); Kura IDs continue from serial {} of {}",
            r.recovered, r.events, e.lease_first, e.lease_year
        )),
        Some(err) => s.push_str(&format!(
            "\nthe first sync did not finish ({err}); run kura sync: nothing is recorded here until it has"
        )),
    }
    s
}

pub fn sync_report(r: &SyncReport) -> String {
    let mut s = format!(
        "pushed {} (already there {}, rejected {}), pulled {} (conflicts {}), leased {} serials",
        r.pushed, r.duplicates, r.rejected, r.pulled, r.conflicts, r.leased
    );
    if r.reordered {
        s.push_str("\nthe projection was refolded in the registry's order (two benches touched the same specimens or boxes)");
    }
    s
}

pub fn sync_status(s: &SyncStatus, cal: &Calendar) -> String {
    if !s.enrolled {
        return "not enrolled: this database works alone (kura enroll CODE --registry URL)".into();
    }
    let t = |v: Option<i64>| v.map(|m| when(cal, m)).unwrap_or_else(|| "never".into());
    let mut out = format!(
        "{}  {}  site {}\nwaiting to sync: {}\nlast success: {}\nlast attempt: {}",
        s.state,
        s.registry.as_deref().unwrap_or("-"),
        s.site.as_deref().unwrap_or("-"),
        s.waiting,
        t(s.last_success),
        t(s.last_attempt),
    );
    if let (Some(c), Some(m)) = (&s.last_error_code, &s.last_error) {
        out.push_str(&format!("\nlast error [{c}]: {m}"));
    }
    out.push_str(&format!(
        "\nrejections: {}\nconflicts: {}",
        s.rejections, s.conflicts
    ));
    if let Some(ms) = s.clock_skew_ms {
        out.push_str(&format!(
            "\nclock skew: {:+.0} ms (this workstation minus the registry)",
            ms
        ));
    }
    if let Some(left) = s.ids_left {
        out.push_str(&format!(
            "\nKura IDs left this year: {left} (about {} a day){}",
            s.ids_per_day,
            if s.ids_low {
                " — LOW: sync to lease more"
            } else {
                ""
            }
        ));
        out.push_str(&format!(
            "\nLeases: {} IDs at a time (a week at this rate), another below {} left",
            s.lease_size, s.lease_low
        ));
    }
    if let Some(why) = &s.stopped {
        out.push_str(&format!("\nPUSHING STOPPED: {why}"));
    }
    out
}

fn event_line(e: &EventRow, cal: &Calendar) -> String {
    format!(
        "{}  {}  {}  by {}  (workstation {} seq {})\n      {}",
        e.event_id,
        when(cal, e.at),
        e.kind,
        e.actor,
        e.workstation,
        e.seq,
        e.payload
    )
}

pub fn conflicts(list: &[ConflictView], cal: &Calendar) -> String {
    if list.is_empty() {
        return "no conflicts".into();
    }
    list.iter()
        .map(|c| {
            let mut s = format!("{} [{}] {}", c.subject, c.code, c.message);
            if let Some(o) = &c.other {
                s.push_str(&format!("\n  in effect: {}", event_line(o, cal)));
            }
            if let Some(r) = &c.refused {
                s.push_str(&format!("\n  refused:   {}", event_line(r, cal)));
            }
            match &c.resolved_by {
                Some(by) => s.push_str(&format!("\n  resolved by {by}")),
                None => s.push_str(&format!(
                    "\n  settle: kura resolve {} --keep EVENT_ID --reason \"…\"",
                    c.subject
                )),
            }
            s
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The workstation's printers as a table: name, how it is reached, where, dpi, resident font.
pub fn printers(
    all: &std::collections::BTreeMap<String, kura_app::transport::PrinterConfig>,
) -> String {
    use kura_app::transport::PrinterConfig as P;
    if all.is_empty() {
        return "no printers yet: kura printer add NAME --tcp HOST:9100 | --cups QUEUE | --cups-pdf QUEUE"
            .into();
    }
    let mut t = format!(
        "{:<16} {:<18} {:<24} {:>5}  {}\n",
        "NAME", "SENDS", "TO", "DPI", "ZPL FONT"
    );
    for (name, c) in all {
        let (sends, to, dpi, font) = match c {
            P::Tcp {
                address,
                dpi,
                zpl_font,
            } => ("ZPL over TCP", address.as_str(), dpi, zpl_font.as_deref()),
            P::Cups {
                queue,
                dpi,
                zpl_font,
            } => ("ZPL to CUPS", queue.as_str(), dpi, zpl_font.as_deref()),
            P::CupsPdf { queue, dpi } => ("PDF to CUPS", queue.as_str(), dpi, None),
        };
        let dpi = dpi.map(|d| d.to_string()).unwrap_or_else(|| "stock".into());
        t.push_str(&format!(
            "{name:<16} {sends:<18} {to:<24} {dpi:>5}  {}\n",
            font.unwrap_or("—")
        ));
    }
    t.trim_end().to_string()
}

/// A rack reconciliation drawn as a grid: `o` matched, `>` moved here, `?` unreadable,
/// `x` missing, `+` unexpected, `.` empty; then each list.
pub fn reconciliation(r: &kura_app::rack::Reconciliation) -> String {
    use std::collections::HashMap;
    let mut mark: HashMap<&str, char> = HashMap::new();
    for m in &r.missing {
        mark.insert(&m.position, 'x');
    }
    for m in &r.matched {
        mark.insert(&m.position, 'o');
    }
    for m in &r.moved {
        mark.insert(&m.to, '>');
    }
    for u in &r.unreadable {
        mark.insert(&u.position, '?');
    }
    for u in &r.unexpected {
        mark.insert(&u.position, '+');
    }
    let label = |row: u16, col: u16| format!("{}{}", (b'A' + row as u8) as char, col + 1);
    let mut out = format!(
        "Rack scan of {}{}{}\n   ",
        r.container,
        r.rack
            .as_deref()
            .map(|k| format!(" (rack {k})"))
            .unwrap_or_default(),
        if r.rotated {
            " — the rack was scanned ROTATED 180°: read turned round"
        } else {
            ""
        }
    );
    for c in 0..r.cols {
        out.push_str(&format!("{:>3}", c + 1));
    }
    for row in 0..r.rows {
        out.push_str(&format!("\n {} ", (b'A' + row as u8) as char));
        for col in 0..r.cols {
            let l = label(row, col);
            out.push_str(&format!(
                "{:>3}",
                mark.get(l.as_str()).copied().unwrap_or('.')
            ));
        }
    }
    out.push_str(&format!(
        "\n\no matched {}, > moved {}, ? unreadable {}, x missing {}, + unexpected {}",
        r.matched.len(),
        r.moved.len(),
        r.unreadable.len(),
        r.missing.len(),
        r.unexpected.len()
    ));
    for m in &r.moved {
        out.push_str(&format!("\n  moved      {} {} → {}", m.code, m.from, m.to));
    }
    for m in &r.missing {
        out.push_str(&format!(
            "\n  missing    {} (expected at {})",
            m.code, m.position
        ));
    }
    for u in &r.unreadable {
        out.push_str(&format!(
            "\n  unreadable {}{}",
            u.position,
            u.expected
                .as_deref()
                .map(|e| format!(" (expected {e})"))
                .unwrap_or_default()
        ));
    }
    for u in &r.unexpected {
        out.push_str(&format!("\n  unexpected {} at {}", u.code, u.position));
    }
    if let Some(a) = &r.applied {
        out.push_str(&format!(
            "\nRecorded: {} moved, {} missing checked out, {} registered",
            a.moved, a.checked_out_missing, a.registered
        ));
    }
    out
}

/// Free room: by type, per place (a bar for the fill), and where the new tubes go.
pub fn space(s: &kura_app::space::Space) -> String {
    let mut out = format!("{} free positions", s.free);
    for t in &s.by_type {
        out.push_str(&format!(
            "\n  {:<16} {:>6} free in {} boxes",
            t.type_name, t.free, t.boxes
        ));
    }
    for p in &s.places {
        let filled = (p.fill * 20.0).round() as usize;
        out.push_str(&format!(
            "\n{:<10} {:<14} [{}{}] {:>3}% full, {:>6} free  {}",
            p.kind,
            p.code,
            "#".repeat(filled),
            ".".repeat(20 - filled.min(20)),
            (p.fill * 100.0).round(),
            p.free,
            p.path
        ));
    }
    match s.fits {
        Some(true) => {
            out.push_str("\nThey fit:");
            for t in &s.takes {
                out.push_str(&format!("\n  {:>5} into {} ({})", t.tubes, t.code, t.path));
            }
        }
        Some(false) => out.push_str(&format!(
            "\nThey do NOT fit: only {} free positions; add boxes (kura storage add) or look under another freezer",
            s.free
        )),
        None => {}
    }
    out
}
