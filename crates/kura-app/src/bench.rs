//! `kura bench`: Kura's figures on a large demo database, each beside the raw-SQLite figure
//! measured in the same run, so that the ratio is the result. Nothing here is a test: it
//! measures and reports.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kura_store::raw::RawBaseline;
use serde::Serialize;

use crate::demo::Rng;
use crate::{AppError, Kura, RegisterRequest};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// A scratch directory: the benchmark databases are created (and replaced) there.
    pub dir: PathBuf,
    pub specimens: u64,
    pub lookups: usize,
    pub checkins: usize,
    pub boxes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchLine {
    pub name: String,
    pub kura: String,
    pub raw: String,
    pub ratio: f64,
    pub target: String,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub specimens: u64,
    pub lines: Vec<BenchLine>,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn file_size(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

pub fn run(opts: &BenchOptions, say: &mut dyn FnMut(&str)) -> Result<BenchReport, AppError> {
    std::fs::create_dir_all(&opts.dir).map_err(|e| AppError::File {
        path: opts.dir.display().to_string(),
        message: e.to_string(),
    })?;
    let db = opts.dir.join("bench.sqlite3");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let mut lines = Vec::new();
    let mut kura = Kura::open(&db, "bench")?;

    // 1. Demo generation vs raw batched insert.
    say(&format!("generating {} demo specimens …", opts.specimens));
    let report = kura.demo(opts.specimens, 1, &mut |_, _| {})?;
    let mut raw = RawBaseline::create(&opts.dir.join("raw.sqlite3"))?;
    say("raw batched insert …");
    let raw_insert = raw.batched_insert(opts.specimens as i64)?;
    let raw_rate = opts.specimens as f64 / raw_insert.as_secs_f64();
    lines.push(BenchLine {
        name: "demo generation (specimens/s, with containers and custody events)".into(),
        kura: format!(
            "{:.0}/s ({:.1} s)",
            report.specimens_per_second, report.seconds
        ),
        raw: format!("{raw_rate:.0} rows/s batched insert"),
        ratio: report.specimens_per_second / raw_rate,
        target: "≥ 100,000/s".into(),
        met: report.specimens_per_second >= 100_000.0,
    });

    // 2. Size per specimen.
    kura.checkpoint()?;
    let size = file_size(&db) + file_size(&db.with_extension("sqlite3-wal"));
    let per = size as f64 / report.specimens as f64;
    lines.push(BenchLine {
        name: format!("database size per specimen ({} events)", report.events),
        kura: format!("{per:.0} B ({:.1} MiB total)", size as f64 / 1048576.0),
        raw: format!(
            "{:.0} B/row (raw table)",
            (file_size(&opts.dir.join("raw.sqlite3"))
                + file_size(&opts.dir.join("raw.sqlite3-wal"))) as f64
                / opts.specimens as f64
        ),
        ratio: per / 1024.0,
        target: "≤ 1 KiB".into(),
        met: per <= 1024.0,
    });

    // 3. Scan lookup with full location path vs raw primary-key lookup.
    say("lookups …");
    let mut rng = Rng::new(7);
    let max = report.specimens as i64;
    let ids: Vec<i64> = (0..opts.lookups)
        .map(|_| 1 + rng.below(max as u64) as i64)
        .collect();
    let codes = kura.store().codes_by_rowid(&ids)?;
    let mut kura_t = Vec::with_capacity(codes.len());
    for c in &codes {
        let t = Instant::now();
        let v = kura.show(c)?;
        kura_t.push(t.elapsed());
        std::hint::black_box(v);
    }
    let mut raw_t = raw.pk_lookups(&ids)?;
    kura_t.sort();
    raw_t.sort();
    let (kp50, kp99, rp50, rp99) = (
        pct(&kura_t, 0.5),
        pct(&kura_t, 0.99),
        pct(&raw_t, 0.5),
        pct(&raw_t, 0.99),
    );
    lines.push(BenchLine {
        name: format!("scan lookup with location path ({} scans)", codes.len()),
        kura: format!("p50 {:.1} µs, p99 {:.1} µs", us(kp50), us(kp99)),
        raw: format!("p50 {:.1} µs, p99 {:.1} µs (PK lookup)", us(rp50), us(rp99)),
        ratio: us(kp99) / us(rp99).max(1e-3),
        target: "p99 ≤ 3 × raw p99".into(),
        met: us(kp99) <= 3.0 * us(rp99),
    });

    // 4. Single check-ins (each its own transaction at synchronous=FULL).
    say("single check-ins …");
    let n_boxes = opts.checkins.div_ceil(81) + opts.boxes;
    // A position-less freezer that takes the benchmark's empty boxes directly.
    let layout = format!(
        "[[container]]\ncode = \"BENCH-F\"\ntype = \"freezer\"\nparent = \"DEMO-B1-FRZ\"\n\n\
         [[container]]\ncode = \"BENCH-B{{n}}\"\npad = 2\ncount = {n_boxes}\ntype = \"box-9x9\"\nparent = \"BENCH-F\"\n"
    );
    kura.apply_layout(&layout)?;
    let mut fresh = Vec::new();
    while fresh.len() < opts.checkins + 81 * opts.boxes {
        let r = kura.register(&RegisterRequest {
            sample_type: "PL1".into(),
            container: "PED".into(),
            storage: "A".into(),
            quantity: Some("40".into()),
            unit: Some("mL".into()),
            study: "bench".into(),
            donor: format!("B{}", fresh.len()),
            aliquots: 80,
            aliquot_quantity: Some("0.5".into()),
            ..Default::default()
        })?;
        fresh.push(r.parent);
        fresh.extend(r.aliquots);
    }
    let (single, boxed) = fresh.split_at(opts.checkins);
    // Kura and raw alternate in rounds of 50 commits, so that drift in the disk's fsync latency
    // falls on both alike.
    let mut box_i = 1;
    let (mut kura_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    for (round, chunk) in single.chunks(50).enumerate() {
        let t = Instant::now();
        for (j, code) in chunk.iter().enumerate() {
            let i = round * 50 + j;
            if i > 0 && i % 81 == 0 {
                box_i += 1;
            }
            kura.check_in(code, &format!("BENCH-B{box_i:02}"), None)?;
        }
        kura_time += t.elapsed();
        raw_time += raw.update_and_event(chunk.len() as i64)?;
    }
    let kura_rate = single.len() as f64 / kura_time.as_secs_f64();
    let raw_rate = single.len() as f64 / raw_time.as_secs_f64();
    lines.push(BenchLine {
        name: format!(
            "single check-in, event + projection + outbox + hash ({} commits)",
            single.len()
        ),
        kura: format!("{kura_rate:.0}/s"),
        raw: format!("{raw_rate:.0}/s (update + event insert)"),
        ratio: kura_rate / raw_rate,
        target: "≥ 0.5 × raw".into(),
        met: kura_rate >= 0.5 * raw_rate,
    });

    // 5. Whole boxes of 81 in one transaction each.
    say("box check-ins …");
    let mut box_t = Vec::new();
    for chunk in boxed.chunks(81).take(opts.boxes) {
        box_i += 1;
        let t = Instant::now();
        kura.check_in_box(&format!("BENCH-B{box_i:02}"), chunk)?;
        box_t.push(t.elapsed());
    }
    box_t.sort();
    let worst = box_t.last().copied().unwrap_or_default();
    lines.push(BenchLine {
        name: format!(
            "81-position box check-in, one transaction ({} boxes)",
            box_t.len()
        ),
        kura: format!(
            "median {:.1} ms, max {:.1} ms",
            us(pct(&box_t, 0.5)) / 1e3,
            us(worst) / 1e3
        ),
        raw: format!("{:.1} ms for 81 raw commits", 81.0 / raw_rate * 1e3),
        ratio: us(worst) / 1e3 / 50.0,
        target: "≤ 50 ms".into(),
        met: us(worst) / 1e3 <= 50.0,
    });
    Ok(BenchReport {
        specimens: report.specimens,
        lines,
    })
}

/// The label benchmark: `n` labels of the cryo sheet stock to PDF (the median of 5 runs),
/// beside `glabels-3-batch` making the same sheet from a CSV merge in the same run.
pub fn run_labels(
    dir: &std::path::Path,
    n: usize,
    say: &mut dyn FnMut(&str),
) -> Result<BenchReport, AppError> {
    std::fs::create_dir_all(dir).map_err(|e| AppError::File {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let stock = crate::labels::stock("cryo-38x13-a4")?;
    let studies = [
        "がんゲノム研究 2024",
        "認知症コホート研究",
        "Diabetes prospective cohort",
        "小児希少疾患研究",
    ];
    let labels: Vec<kura_labels::LabelData> = (0..n)
        .map(|i| {
            // Cannot fail: letters and digits of a valid length.
            #[allow(clippy::expect_used)]
            let id = kura_domain::KuraId::from_data(&format!("NCC26{i:07}")).expect("valid");
            kura_labels::LabelData {
                code: id.to_string(),
                check: Some(id.check()),
                lines: vec![
                    "PL1 Plasma 0.5 mL".into(),
                    studies[i % studies.len()].into(),
                    format!("D{:07} · 2026-11-21", i / 9),
                ],
            }
        })
        .collect();
    say(&format!("rendering {n} labels …"));
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let r = kura_labels::render_pdf(&stock, &labels)
            .map_err(|e| AppError::input("labels", e.to_string()))?;
        times.push(t.elapsed());
        bytes = r.bytes.len();
        std::fs::write(dir.join("kura-labels.pdf"), &r.bytes).map_err(|e| AppError::File {
            path: "kura-labels.pdf".into(),
            message: e.to_string(),
        })?;
    }
    times.sort();
    let kura = times[times.len() / 2];
    // The same sheet with glabels-3-batch: a template of the same stock and a CSV merge.
    let csv = dir.join("labels.csv");
    let mut text = String::from("code,type,study,donor\n");
    for l in &labels {
        text.push_str(&format!(
            "{},{},{},{}\n",
            l.code, l.lines[0], l.lines[1], l.lines[2]
        ));
    }
    std::fs::write(&csv, text).map_err(|e| AppError::File {
        path: csv.display().to_string(),
        message: e.to_string(),
    })?;
    let template = dir.join("cryo.glabels");
    std::fs::write(
        &template,
        GLABELS_TEMPLATE.replace("CSV_PATH", &csv.display().to_string()),
    )
    .map_err(|e| AppError::File {
        path: template.display().to_string(),
        message: e.to_string(),
    })?;
    say("glabels-3-batch …");
    let t = Instant::now();
    let glabels = std::process::Command::new("glabels-3-batch")
        .arg("-o")
        .arg(dir.join("glabels.pdf"))
        .arg(&template)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let g = t.elapsed();
    let (raw, ratio) = match glabels {
        Ok(s) if s.success() => (
            format!(
                "{:.3} s (glabels-3-batch, CSV merge, DataMatrix)",
                g.as_secs_f64()
            ),
            kura.as_secs_f64() / g.as_secs_f64(),
        ),
        Ok(s) => (format!("glabels-3-batch failed ({s})"), f64::NAN),
        Err(e) => (
            format!("glabels-3-batch not available ({e}); apt-get install glabels"),
            f64::NAN,
        ),
    };
    Ok(BenchReport {
        specimens: n as u64,
        lines: vec![BenchLine {
            name: format!(
                "{n} labels, cryo sheet 38 × 13 mm, to PDF ({} KiB)",
                bytes / 1024
            ),
            kura: format!("{:.3} s (median of 5)", kura.as_secs_f64()),
            raw,
            ratio,
            target: "≤ 0.5 s".into(),
            met: kura.as_secs_f64() <= 0.5,
        }],
    })
}

const GLABELS_TEMPLATE: &str = r#"<?xml version="1.0"?>
<Glabels-document xmlns="http://glabels.org/xmlns/3.0/">
  <Template brand="Kura" part="cryo-38x13" size="A4" description="Cryo 38 x 13 mm">
    <Meta category="label"/>
    <Label-rectangle id="0" width="38mm" height="13mm" round="0mm" x_waste="0mm" y_waste="0mm">
      <Markup-margin size="0.8mm"/>
      <Layout nx="5" ny="21" x0="6mm" y0="12mm" dx="40mm" dy="13mm"/>
    </Label-rectangle>
  </Template>
  <Objects id="0" rotate="False">
    <Object-barcode x="0.8mm" y="0.8mm" w="11.4mm" h="11.4mm" lock_aspect_ratio="False" backend="libiec16022" style="IEC16022" text="False" checksum="True" color="0x000000ff" field="code" a0="1" a1="0" a2="0" a3="1" a4="0" a5="0"/>
    <Object-text x="13mm" y="0.8mm" w="24mm" h="11.4mm" lock_aspect_ratio="False" justify="Left" valign="Top" auto_shrink="True" a0="1" a1="0" a2="0" a3="1" a4="0" a5="0">
      <Span font_family="Sans" font_size="6" font_weight="Regular" font_italic="False" color="0x000000ff" line_spacing="1"><Field name="code"/><NL/><Field name="type"/><NL/><Field name="study"/><NL/><Field name="donor"/></Span>
    </Object-text>
  </Objects>
  <Merge type="Text/Comma/Line1Keys" src="CSV_PATH"/>
</Glabels-document>
"#;
