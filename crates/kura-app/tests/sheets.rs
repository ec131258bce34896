//! Workbooks both ways, checked by an independent reader and writer (openpyxl, from PyPI:
//! scripts/setup installs it), and legacy inventories: codes and dates as older systems and
//! Japanese sheets wrote them, converted exactly or refused naming the cell.

mod common;

use std::path::Path;
use std::process::Command;

use common::bench;
use kura_app::import::{ExportFilter, ImportOptions};
use kura_app::{AppError, Kura};

/// Runs a Python program with openpyxl; its standard output.
fn python(program: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(program)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn import(
    k: &mut Kura,
    file: &Path,
    check: bool,
) -> Result<kura_app::import::ImportReport, AppError> {
    let bytes = std::fs::read(file).unwrap();
    let opts = ImportOptions {
        file: file.display().to_string(),
        check,
        ..ImportOptions::default()
    };
    k.import_bytes(&bytes, &opts, &mut |_, _| {})
}

fn events(k: &Kura) -> i64 {
    k.stats().unwrap().events
}

fn specimen(k: &Kura, code: &str) -> Option<kura_store::SpecimenView> {
    k.show(code).ok()
}

/// The payloads of every event of `kind` in the database at `db`.
fn payloads(db: &Path, kind: &str) -> Vec<String> {
    let mut out = Vec::new();
    kura_store::Store::open_existing(db)
        .unwrap()
        .for_each_event(|e, _| {
            if e.kind == kind {
                out.push(e.payload.to_string());
            }
            Ok(())
        })
        .unwrap();
    out
}

const HEADER: &str = "code,type,container,storage,quantity,unit,study,donor,collected_at\n";

#[test]
fn a_workbook_kura_writes_reads_back_in_openpyxl_with_text_codes() {
    let mut b = bench();
    let csv = format!(
        "{HEADER}00012345,PL1,PED,A,0.5,mL,がんゲノム,D-001,2024-04-01\n\
         0000000E1,SER,SST,A,1,mL,がんゲノム,D-002,令和6年4月2日\n\
         FS-0012.A_1,DNA,SCI,D,,,認知症,D-003,\n"
    );
    let file = b.dir.path().join("in.csv");
    std::fs::write(&file, csv).unwrap();
    import(&mut b.kura, &file, false).unwrap();
    let (bytes, n) = b.kura.export_xlsx(&ExportFilter::default()).unwrap();
    assert_eq!(n, 3);
    let out = b.dir.path().join("out.xlsx");
    std::fs::write(&out, bytes).unwrap();
    // Every cell as openpyxl sees it: its type and value.
    let cells = python(
        r#"
import sys, openpyxl
ws = openpyxl.load_workbook(sys.argv[1]).active
for row in ws.iter_rows(min_row=2):
    print("|".join(f"{c.data_type}:{c.value}" for c in row[:9]))
"#,
        &[&out],
    );
    let rows: Vec<&str> = cells.lines().collect();
    assert_eq!(
        rows,
        [
            "s:00012345|s:PL1|s:PED|s:A|n:0.5|s:mL|s:がんゲノム|s:D-001|d:2024-04-01 00:00:00",
            "s:0000000E1|s:SER|s:SST|s:A|n:1|s:mL|s:がんゲノム|s:D-002|d:2024-04-02 00:00:00",
            "s:FS-0012.A_1|s:DNA|s:SCI|s:D|n:None|n:None|s:認知症|s:D-003|n:None",
        ],
        "codes stay text (zeros, E1 not a number), dates are date cells"
    );
}

#[test]
fn workbooks_openpyxl_writes_import_exactly() {
    let b = bench();
    let dir = b.dir.path();
    // Three workbooks: dates as date cells, as text and as bare serials; one in the 1904
    // calendar; a code with leading zeros in a cell formatted as text.
    python(
        r#"
import sys, datetime, openpyxl
d = sys.argv[1]
def book(name, rows, is_1904=False, sheet="検体"):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    if is_1904:
        wb.epoch = openpyxl.utils.datetime.CALENDAR_MAC_1904
    ws.append(["code", "type", "container", "storage", "study", "donor", "collected_at"])
    for r in rows:
        ws.append(r)
    for c in ws["A"]:
        c.number_format = "@"
    wb.save(f"{d}/{name}")
base = ["PL1", "PED", "A", "S", "D"]
book("dates.xlsx", [
    ["00012345"] + base + [datetime.datetime(2024, 4, 1)],
    ["00012346"] + base + ["R6.4.1"],
    ["00012347"] + base + [45383],
])
book("mac.xlsx", [["00022345"] + base + [43921]], is_1904=True)
book("bad.xlsx", [
    ["00032345"] + base + ["平成31年5月1日"],
    [datetime.datetime(2024, 1, 2)] + base + ["2024/04/01"],
    ["00032347", "XYZ"] + base[1:] + [None],
])
"#,
        &[dir],
    );
    let mut k = b.kura;
    let r = import(&mut k, &dir.join("dates.xlsx"), false).unwrap();
    assert_eq!((r.rows, r.issued), (3, 0));
    for code in ["00012345", "00012346", "00012347"] {
        let s = specimen(&k, code).expect(code);
        assert_eq!(
            k.calendar()
                .date(kura_domain::Timestamp(s.collected_at.unwrap()))
                .to_string(),
            "2024-04-01",
            "{code}: a date cell, era text and a serial are the same day"
        );
    }
    import(&mut k, &dir.join("mac.xlsx"), false).unwrap();
    let s = specimen(&k, "00022345").unwrap();
    assert_eq!(
        k.calendar()
            .date(kura_domain::Timestamp(s.collected_at.unwrap()))
            .to_string(),
        "2024-04-01",
        "serial 43921 in a 1904 workbook"
    );
    // Every problem named by sheet and cell; nothing written.
    let before = events(&k);
    let e = import(&mut k, &dir.join("bad.xlsx"), false).unwrap_err();
    let AppError::Import { rows, .. } = &e else {
        panic!("{e}")
    };
    let cells: Vec<(Option<&str>, &str)> = rows
        .iter()
        .map(|r| (r.cell.as_deref(), r.reason.split(':').next().unwrap_or("")))
        .collect();
    assert_eq!(cells.len(), 3, "{rows:#?}");
    assert_eq!(cells[0].0, Some("検体!G2"), "{rows:#?}");
    assert!(rows[0].reason.contains("never existed"), "{rows:#?}");
    assert_eq!(
        cells[1].0,
        Some("検体!A3"),
        "a date where a code goes: {rows:#?}"
    );
    assert_eq!(cells[2].0, Some("検体!B4"), "{rows:#?}");
    assert_eq!(events(&k), before);
}

#[test]
fn a_password_protected_workbook_is_refused_clearly() {
    let mut b = bench();
    let dir = b.dir.path().to_path_buf();
    python(
        r#"
import sys, io, openpyxl, msoffcrypto
from msoffcrypto.format.ooxml import OOXMLFile
wb = openpyxl.Workbook()
wb.active.append(["code", "type", "container", "storage", "study", "donor"])
plain = io.BytesIO()
wb.save(plain)
plain.seek(0)
with open(sys.argv[1] + "/locked.xlsx", "wb") as f:
    OOXMLFile(plain).encrypt("secret", f)
"#,
        &[&dir],
    );
    let e = import(&mut b.kura, &dir.join("locked.xlsx"), false).unwrap_err();
    assert_eq!(e.code(), "bad_input");
    assert!(e.to_string().contains("password"), "{e}");
}

#[test]
fn legacy_codes_and_dates_converted_or_refused_naming_the_cell() {
    let mut b = bench();
    // (code, collected_at, the code kept and the date, or the column refused)
    let cases: &[(&str, &str, Result<(&str, &str), &str>)] = &[
        ("LIMS-0001", "2024/04/01", Ok(("LIMS-0001", "2024-04-01"))),
        (
            "lims.0002",
            "令和6年4月1日",
            Ok(("LIMS.0002", "2024-04-01")),
        ),
        ("OLD_0003", "R6.4.1", Ok(("OLD_0003", "2024-04-01"))),
        ("H-0004", "H31.4.30", Ok(("H-0004", "2019-04-30"))),
        ("H-0005", "平成31年4月30日", Ok(("H-0005", "2019-04-30"))),
        ("H-0006", "平成31年5月1日", Err("collected_at")),
        ("H-0007", "R1.4.30", Err("collected_at")),
        ("A/0008", "2024/04/01", Err("code")),
        ("_A0009", "2024/04/01", Err("code")),
        ("A0010", "2023/02/29", Err("collected_at")),
    ];
    let mut csv = String::from(HEADER);
    for (code, date, _) in cases {
        csv.push_str(&format!("{code},PL1,PED,A,,,S,D,{date}\n"));
    }
    let file = b.dir.path().join("legacy.csv");
    std::fs::write(&file, &csv).unwrap();
    let before = events(&b.kura);
    let e = import(&mut b.kura, &file, true).unwrap_err();
    let AppError::Import { rows, .. } = &e else {
        panic!("{e}")
    };
    let refused: Vec<(u64, &str)> = rows.iter().map(|r| (r.line, r.column.as_str())).collect();
    let want: Vec<(u64, &str)> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, (_, _, w))| w.err().map(|c| (i as u64 + 2, c)))
        .collect();
    assert_eq!(refused, want, "{rows:#?}");
    assert_eq!(events(&b.kura), before, "--check writes nothing");
    // The good rows alone import, converted exactly.
    let mut good = String::from(HEADER);
    for (code, date, w) in cases {
        if w.is_ok() {
            good.push_str(&format!("{code},PL1,PED,A,,,S,D,{date}\n"));
        }
    }
    std::fs::write(&file, &good).unwrap();
    let checked = import(&mut b.kura, &file, true).unwrap();
    assert!(checked.checked_only);
    assert_eq!(events(&b.kura), before, "--check writes nothing");
    let r = import(&mut b.kura, &file, false).unwrap();
    assert_eq!(r.rows, 5);
    assert_eq!(
        events(&b.kura),
        before + 6,
        "five tubes and the import itself"
    );
    for (_, _, w) in cases {
        if let Ok((code, date)) = w {
            let s = specimen(&b.kura, code).expect(code);
            assert_eq!(
                b.kura
                    .calendar()
                    .date(kura_domain::Timestamp(s.collected_at.unwrap()))
                    .to_string(),
                *date
            );
        }
    }
    // The import is recorded with the file's SHA-256.
    let hex = python(
        "import sys, hashlib; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())",
        &[&file],
    );
    assert_eq!(r.sha256, hex.trim());
    let last = payloads(&b.db(), "imported");
    assert_eq!(last.len(), 1);
    assert!(last[0].contains(hex.trim()), "{}", last[0]);
}

#[test]
fn three_thousand_bad_rows_a_report_and_nothing_written() {
    let mut b = bench();
    let mut csv = String::from(HEADER);
    for i in 0..3000 {
        csv.push_str(&format!(
            "OLD-{i:05},PL1,PED,A,,,S,D,平成31年5月{}日\n",
            1 + i % 28
        ));
    }
    let file = b.dir.path().join("bad.csv");
    std::fs::write(&file, &csv).unwrap();
    let before = events(&b.kura);
    for check in [true, false] {
        let e = import(&mut b.kura, &file, check).unwrap_err();
        let AppError::Import { total, rows } = &e else {
            panic!("{e}")
        };
        assert_eq!(*total, 3000);
        assert_eq!(rows.len(), 1000, "the first thousand listed, all counted");
        assert!(rows.iter().all(|r| r.column == "collected_at"));
        assert_eq!(events(&b.kura), before);
    }
}

#[test]
fn a_storage_layout_from_a_sheet_all_rows_or_none() {
    let b = bench();
    let dir = b.dir.path();
    // A new freezer with a rack and two boxes, written by openpyxl (columns in another order,
    // a header in capitals, a blank row); the same rows as CSV with four mistakes.
    python(
        r#"
import sys, openpyxl
d = sys.argv[1]
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "保管"
ws.append(["Code", "type", "parent", "position", "name", "temperature"])
ws.append(["F2", "freezer-5-shelves", "ROOM", None, "−80 ℃ 2号機", "-80"])
ws.append(["R2", "rack-5x4", "F2", "II", None, None])
ws.append([None, None, None, None, None, None])
ws.append(["B-0001", "box-9x9", "R2", "1-2", None, None])
ws.append(["B-0002", "box-10x10", "R2", None, None, None])
wb.save(f"{d}/layout.xlsx")
"#,
        &[dir],
    );
    let mut k = b.kura;
    let bytes = std::fs::read(dir.join("layout.xlsx")).unwrap();
    let r = k.apply_layout_sheet(&bytes, "layout.xlsx", None).unwrap();
    assert_eq!(r.created, ["F2", "R2", "B-0001", "B-0002"]);
    let mut rows = k.containers(Some("R2")).unwrap();
    rows.sort_by(|a, b| a.code.cmp(&b.code));
    let at: Vec<(&str, Option<&str>)> = rows
        .iter()
        .map(|c| (c.code.as_str(), c.position.as_deref()))
        .collect();
    assert_eq!(
        at,
        [("B-0001", Some("1-2")), ("B-0002", Some("1-1"))],
        "the position given, then the next free slot"
    );
    // Applied again: nothing new.
    let again = k.apply_layout_sheet(&bytes, "layout.xlsx", None).unwrap();
    assert_eq!((again.created.len(), again.existing.len()), (0, 4));

    let before = events(&k);
    let csv = "code,type,parent,position,temperature\n\
               F3,freezer-5-shelves,ROOM,,-70\n\
               R3,rack-9x9,F3,,\n\
               B-0003,box-9x9,NOWHERE,,\n\
               B-0004,box-9x9,,A1,\n\
               B-0005,box-9x9,R2,,\n";
    let e = k
        .apply_layout_sheet(csv.as_bytes(), "layout.csv", None)
        .unwrap_err();
    let AppError::Import { rows, total } = &e else {
        panic!("{e}")
    };
    let named: Vec<(u64, &str)> = rows.iter().map(|r| (r.line, r.column.as_str())).collect();
    assert_eq!(
        named,
        [
            (2, "temperature"),
            (3, "type"),
            (4, "parent"),
            (5, "position")
        ],
        "{rows:#?}"
    );
    assert_eq!(*total, 4);
    assert_eq!(events(&k), before, "nothing written");
    // A position taken: found while writing, named, and nothing written either.
    let taken = "code,type,parent,position\nB-0006,box-9x9,R2,2-1\nB-0007,box-9x9,R2,1-2\n";
    let e = k
        .apply_layout_sheet(taken.as_bytes(), "taken.csv", None)
        .unwrap_err();
    let AppError::Import { rows, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(
        (
            rows[0].line,
            rows[0].column.as_str(),
            rows[0].value.as_str()
        ),
        (3, "position", "1-2"),
        "{rows:#?}"
    );
    assert_eq!(events(&k), before, "B-0006 was not kept either");
}

#[test]
fn search_results_export_what_find_finds_and_the_audit_trail_as_a_workbook() {
    let mut b = bench();
    let csv = format!(
        "{HEADER}XA-1,PL1,PED,A,0.5,mL,がんゲノム,D-001,2024-04-01\n\
         XA-2,SER,SST,A,1,mL,がんゲノム,D-002,2024-04-02\n\
         XA-3,PL1,PED,A,0.5,mL,認知症,D-001,2024-04-03\n\
         YA-1,PL1,PED,A,0.5,mL,認知症,D-003,2024-04-03\n"
    );
    let file = b.dir.path().join("in.csv");
    std::fs::write(&file, csv).unwrap();
    import(&mut b.kura, &file, false).unwrap();
    let k = &mut b.kura;
    // Each filter of the search box, alone and together: the export holds what find finds.
    let table: [(&str, ExportFilter); 5] = [
        (
            "code prefix",
            ExportFilter {
                text: Some("xa-".into()),
                ..Default::default()
            },
        ),
        (
            "donor as text",
            ExportFilter {
                text: Some("D-001".into()),
                ..Default::default()
            },
        ),
        (
            "type and study",
            ExportFilter {
                sample_type: Some("PL1".into()),
                study: Some("認知症".into()),
                ..Default::default()
            },
        ),
        (
            "status",
            ExportFilter {
                status: Some("disposed".into()),
                ..Default::default()
            },
        ),
        (
            "donor",
            ExportFilter {
                donor: Some("D-003".into()),
                ..Default::default()
            },
        ),
    ];
    for (case, filter) in table {
        let found: Vec<String> = k
            .find(&kura_app::FindQuery {
                text: filter.text.clone(),
                donor: filter.donor.clone(),
                study: filter.study.clone(),
                sample_type: filter.sample_type.clone(),
                status: filter.status.clone(),
                limit: 100,
                offset: 0,
            })
            .unwrap()
            .into_iter()
            .map(|s| s.code)
            .collect();
        let mut out = Vec::new();
        k.export_csv_of(&mut out, false, &filter).unwrap();
        let mut exported: Vec<String> = csv::Reader::from_reader(&out[..])
            .records()
            .map(|r| r.unwrap()[0].to_string())
            .collect();
        exported.sort();
        assert_eq!(exported, found, "{case}");
        assert!(
            case == "status" || !found.is_empty(),
            "{case}: a case that finds something"
        );
    }
    // The trail of a period as a workbook: the CSV's rows, as openpyxl reads them.
    let q = kura_app::audit::AuditQuery::default();
    let xlsx = b.dir.path().join("trail.xlsx");
    let csvf = b.dir.path().join("trail.csv");
    let x = k.export_audit(&q, &xlsx, "en", &mut |_, _| {}).unwrap();
    k.export_audit(&q, &csvf, "en", &mut |_, _| {}).unwrap();
    assert_eq!(x.format, "xlsx");
    let rows = kura_app::audit::read_audit_csv(&std::fs::read(&csvf).unwrap()).unwrap();
    let cells = python(
        r#"
import sys, openpyxl
ws = openpyxl.load_workbook(sys.argv[1]).active
for row in ws.iter_rows(min_row=2):
    print("|".join(str(c.value) for c in (row[0], row[3], row[4], row[11], row[13])))
"#,
        &[&xlsx],
    );
    let want: Vec<String> = rows
        .iter()
        .take(x.events as usize)
        .map(|r| format!("{}|{}|{}|{}|{}", r.n, r.event, r.subject, r.seq, r.hash))
        .collect();
    assert_eq!(cells.lines().collect::<Vec<_>>(), want);
    assert!(
        want.len() >= 5,
        "the layout and the import are in the trail"
    );
}
