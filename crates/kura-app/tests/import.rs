//! CSV import: all rows or none, and every bad row named.

mod common;

use common::bench;

fn csv_rows(n: usize, bad_at: Option<(usize, &str, &str)>) -> String {
    let mut s = String::from(
        "code,type,container,storage,quantity,unit,study,donor,collected_at,parent,box,position\n",
    );
    for i in 0..n {
        let mut row = vec![
            format!("FS{:08}", 10_000_000 + i),
            "PL1".to_string(),
            "PED".to_string(),
            "A".to_string(),
            "0.5".to_string(),
            "mL".to_string(),
            "Import study 取込".to_string(),
            format!("D{:05}", i / 9),
            "2026-10-01".to_string(),
            String::new(),
            String::new(),
            String::new(),
        ];
        if let Some((at, col, value)) = bad_at
            && at == i
        {
            let idx = [
                "code",
                "type",
                "container",
                "storage",
                "quantity",
                "unit",
                "study",
                "donor",
                "collected_at",
                "parent",
                "box",
                "position",
            ]
            .iter()
            .position(|c| *c == col)
            .unwrap();
            row[idx] = value.to_string();
        }
        s.push_str(&row.join(","));
        s.push('\n');
    }
    s
}

#[test]
fn one_bad_row_in_ten_thousand_writes_nothing_and_is_named() {
    let cases = [
        (4_321, "type", "XYZ", "type"),
        (9_999, "quantity", "-3", "quantity"),
        (17, "unit", "gallons", "unit"),
        (5_000, "collected_at", "31/12/2026", "collected_at"),
        (123, "code", "FS10000000", "code"), // duplicate of row 0
        (42, "parent", "FS99999999", "parent"),
        (77, "box", "NOPE", "box"),
        (78, "position", "A1", "box"), // a position without a box
    ];
    for (row, column, value, named) in cases {
        let mut b = bench();
        let before = b.kura.stats().unwrap();
        let data = csv_rows(10_000, Some((row, column, value)));
        let err = b
            .kura
            .import_csv(data.as_bytes(), &mut |_, _| {})
            .unwrap_err();
        assert_eq!(err.code(), "import_rejected", "{err}");
        let kura_app::AppError::Import { rows, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            rows[0].line,
            row as u64 + 2,
            "line numbers count the header as line 1"
        );
        assert_eq!(rows[0].column, named, "{rows:?}");
        let after = b.kura.stats().unwrap();
        assert_eq!(after.events, before.events, "nothing may be written");
        assert_eq!(after.specimens, 0);
    }
}

#[test]
fn good_import_stores_and_exports_round_trip() {
    let mut b = bench();
    let mut data = csv_rows(200, None);
    // Place a few rows: into BX1 with and without a position.
    data = data
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            1 => l.replacen(",,,", ",,BX1,C3", 1),
            2 => l.replacen(",,,", ",,BX1,", 1),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let r = b.kura.import_csv(data.as_bytes(), &mut |_, _| {}).unwrap();
    assert_eq!((r.rows, r.stored), (200, 2));
    assert_eq!(
        b.kura.show("FS10000000").unwrap().position.as_deref(),
        Some("C3")
    );
    assert_eq!(
        b.kura.show("FS10000001").unwrap().position.as_deref(),
        Some("A1")
    );
    let mut out = Vec::new();
    assert_eq!(b.kura.export_csv(&mut out, false).unwrap(), 200);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("FS10000000,PL1,PED,A,0.5,mL,Import study 取込,D00000,"),
        "{text}"
    );
    // The export imports into a fresh bank with the same layout.
    let mut fresh = bench();
    let r2 = fresh
        .kura
        .import_csv(text.as_bytes(), &mut |_, _| {})
        .unwrap();
    assert_eq!(r2.rows, 200);
    assert_eq!(
        fresh.kura.show("FS10000000").unwrap().path,
        b.kura.show("FS10000000").unwrap().path
    );
    // Importing the same file again is refused row by row (already registered), nothing written.
    let err = b
        .kura
        .import_csv(text.as_bytes(), &mut |_, _| {})
        .unwrap_err();
    let kura_app::AppError::Import { rows, .. } = err else {
        panic!()
    };
    let lines: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.line).collect();
    assert_eq!(lines.len(), 200, "every row is named");
    assert_eq!(
        rows.iter().filter(|r| r.column == "position").count(),
        2,
        "and both placed rows' positions are taken"
    );
    assert!(b.kura.verify(&mut |_, _| {}).unwrap().ok());
}

#[test]
fn bad_header_is_refused() {
    let mut b = bench();
    let err = b
        .kura
        .import_csv("code,type,colour\nX,BLD,red\n".as_bytes(), &mut |_, _| {})
        .unwrap_err();
    let kura_app::AppError::Import { rows, .. } = err else {
        panic!()
    };
    assert!(rows.iter().any(|r| r.column == "colour"));
    assert!(
        rows.iter()
            .any(|r| r.column == "study" && r.reason.contains("missing"))
    );
}

#[test]
fn empty_codes_get_kura_ids() {
    let mut b = bench();
    let data = "type,container,storage,study,donor\nBLD,PED,A,S,D1\nSER,SST,A,S,D1\n";
    let r = b.kura.import_csv(data.as_bytes(), &mut |_, _| {}).unwrap();
    assert_eq!(r.issued, 2);
    let found = b
        .kura
        .find(&kura_app::FindQuery {
            donor: Some("D1".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        found
            .iter()
            .all(|s| kura_app::ids::check(&s.code).is_ok() && s.code.starts_with("TST26"))
    );
}

/// Once a file with more than 1,000 wrong rows panicked (`expect("checked")` after the error
/// list stopped growing at 1,000): now every problem is counted, the first 1,000 listed.
#[test]
fn regression_import_with_more_than_1000_bad_rows_reports_instead_of_panicking() {
    let mut b = bench();
    let before = b.kura.stats().unwrap().specimens;
    let mut text = csv_rows(1_500, None);
    text = text.replace(",PL1,", ",XYZ,");
    // Good rows after the bad ones: they must not be imported either.
    text.push_str(
        &csv_rows(3, None)
            .lines()
            .skip(1)
            .map(|l| l.replace("FS1000000", "FS2000000") + "\n")
            .collect::<String>(),
    );
    let err = b
        .kura
        .import_csv(text.as_bytes(), &mut |_, _| {})
        .unwrap_err();
    assert_eq!(err.code(), "import_rejected");
    let kura_app::AppError::Import { total, rows } = &err else {
        panic!("{err}")
    };
    assert_eq!(*total, 1_500);
    assert_eq!(rows.len(), kura_app::import::MAX_LISTED);
    assert!(err.to_string().starts_with("1500 problem(s)"), "{err}");
    assert_eq!(b.kura.stats().unwrap().specimens, before, "nothing written");
}

/// Excel on Japanese Windows saves CSV as Shift_JIS, others add a UTF-8 byte-order mark: both
/// import; bytes that are neither are refused before any row is read.
#[test]
fn encodings_utf8_bom_and_shift_jis() {
    let text = csv_rows(3, None);
    let (sjis, _, lossy) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!lossy);
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(text.as_bytes());
    for (what, bytes) in [("shift_jis", sjis.to_vec()), ("bom", bom)] {
        let mut b = bench();
        let r = b.kura.import_csv(&bytes[..], &mut |_, _| {}).unwrap();
        assert_eq!(r.rows, 3, "{what}");
        let s = b.kura.show("FS10000001").unwrap();
        assert_eq!(s.study, "Import study 取込", "{what}");
    }
    let mut b = bench();
    let err = b
        .kura
        .import_csv(&b"code,type\n\xFF\xFE\x00\x81\n"[..], &mut |_, _| {})
        .unwrap_err();
    assert_eq!(err.code(), "bad_input");
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

/// Files as Excel in Japan saves them (tests/fixtures, written by Python's `cp932` codec, not by
/// the decoder under test): plain "CSV" in CP932 and "CSV UTF-8" with a byte-order mark, CRLF
/// line ends, quoted fields, dates as `2026/10/01`, and characters only CP932 has (①, 髙, ㈱,
/// the full-width tilde, half-width katakana).
#[test]
fn excel_files_from_japanese_windows_import_with_their_japanese_intact() {
    use kura_app::import::CsvEncoding;
    let cp932: &[u8] = include_bytes!("fixtures/excel-cp932.csv");
    let utf8: &[u8] = include_bytes!("fixtures/excel-utf8-bom.csv");
    let want = [
        (
            "FS20000000",
            "がんゲノム研究～第①期",
            "髙橋-001",
            Some("2026-09-30T15:00:00.000000Z"),
        ),
        (
            "FS20000001",
            "認知症コホート, 追跡",
            "㈱協力-002",
            Some("2026-10-01T15:00:00.000000Z"),
        ),
        ("FS20000002", "ﾊﾝｶｸ 試料 \"特記\"", "D-003", None),
    ];
    // (file, encoding asked for)
    let cases = [
        ("cp932", cp932, CsvEncoding::Auto),
        ("cp932", cp932, CsvEncoding::Cp932),
        ("utf8-bom", utf8, CsvEncoding::Auto),
        ("utf8-bom", utf8, CsvEncoding::Utf8),
    ];
    for (what, bytes, encoding) in cases {
        let mut b = bench();
        b.kura.set_time_zone(Some("Asia/Tokyo")).unwrap();
        let r = b
            .kura
            .import_csv_as(bytes, encoding, &mut |_, _| {})
            .unwrap_or_else(|e| panic!("{what} as {encoding:?}: {e}"));
        assert_eq!(r.rows, 3, "{what}");
        for (code, study, donor, collected) in want {
            let s = b.kura.show(code).unwrap();
            assert_eq!(
                (s.study.as_str(), s.donor.as_str()),
                (study, donor),
                "{what}"
            );
            let at = s.collected_at.map(|t| kura_app::Timestamp(t).to_string());
            assert_eq!(at.as_deref(), collected, "{what} {code}");
        }
    }
    // The wrong encoding, said explicitly, is refused with what to do instead; nothing is stored.
    let refusals = [
        (cp932, CsvEncoding::Utf8, "--encoding cp932"),
        (utf8, CsvEncoding::Cp932, "--encoding utf-8"),
    ];
    for (bytes, encoding, hint) in refusals {
        let mut b = bench();
        let before = b.kura.stats().unwrap();
        let e = b
            .kura
            .import_csv_as(bytes, encoding, &mut |_, _| {})
            .unwrap_err();
        assert_eq!(e.code(), "bad_input");
        assert!(e.to_string().contains(hint), "{e}");
        assert_eq!(b.kura.stats().unwrap().specimens, before.specimens);
    }
    assert!("shift_jis".parse::<CsvEncoding>().unwrap() == CsvEncoding::Cp932);
    assert!("latin1".parse::<CsvEncoding>().is_err());
}

/// Export with a byte-order mark: what Excel in Japan needs to read UTF-8 as UTF-8. The file
/// imports back, the Japanese intact.
#[test]
fn export_with_a_bom_opens_in_excel_and_imports_back() {
    let mut b = bench();
    b.kura
        .import_csv(
            &include_bytes!("fixtures/excel-cp932.csv")[..],
            &mut |_, _| {},
        )
        .unwrap();
    let mut plain = Vec::new();
    b.kura.export_csv(&mut plain, false).unwrap();
    assert!(!plain.starts_with(b"\xEF\xBB\xBF"));
    let mut bom = Vec::new();
    assert_eq!(b.kura.export_csv(&mut bom, true).unwrap(), 3);
    assert_eq!(&bom[..3], b"\xEF\xBB\xBF");
    assert_eq!(&bom[3..], &plain[..], "the mark is the only difference");
    let text = std::str::from_utf8(&bom[3..]).unwrap();
    assert!(text.contains("がんゲノム研究～第①期"), "{text}");
    assert!(text.contains("\"認知症コホート, 追跡\""), "{text}");
    let mut again = bench();
    again
        .kura
        .import_csv(&bom[..], &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.kura.show("FS20000000").unwrap().donor, "髙橋-001");
}

/// The search indexes (by donor, study, parent, due date) of the database at `db`, as SQLite
/// keeps their definitions.
fn search_indexes(db: &std::path::Path) -> Vec<(String, String)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN
             ('specimens_donor', 'specimens_study', 'specimens_parent', 'specimens_due') ORDER BY name",
        )
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A load at least twice as large as what is there drops the search indexes and builds them again at its
/// end: afterwards they are the migrations' own, searches find what they found, and the
/// projection still equals a rebuild from the log. A load that died before building them gets
/// them back when the database is next opened.
#[test]
fn a_large_import_builds_the_search_indexes_again() {
    let fresh = tempfile::tempdir().unwrap();
    kura_app::Kura::open(fresh.path().join("kura.sqlite3"), "x").unwrap();
    let want = search_indexes(&fresh.path().join("kura.sqlite3"));
    assert_eq!(want.len(), 4);

    let mut b = bench();
    let db = b.kura.path().to_path_buf();
    let mut indexes_during = Vec::new();
    let r = b
        .kura
        .import_csv(csv_rows(12_000, None).as_bytes(), &mut |done, _| {
            if done > 0 && indexes_during.is_empty() {
                indexes_during.push(search_indexes(&db).len());
            }
        })
        .unwrap();
    assert_eq!(r.rows, 12_000);
    assert_eq!(
        indexes_during,
        vec![0],
        "dropped while the rows were written"
    );
    assert_eq!(search_indexes(&db), want);
    let found = b
        .kura
        .find(&kura_store::FindQuery {
            donor: Some("D00042".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), 9);
    assert!(b.kura.verify(&mut |_, _| {}).unwrap().ok());

    // A load that died half-way: the indexes are not there until the next open.
    drop(b.kura);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP INDEX specimens_donor; DROP INDEX specimens_due;")
        .unwrap();
    assert_eq!(search_indexes(&db).len(), 2);
    kura_app::Kura::open(&db, "x").unwrap();
    assert_eq!(search_indexes(&db), want);
}
