//! The TypeScript side of the IPC contract, generated from the Rust DTOs with `ts-rs` so the two
//! cannot drift: this test fails when `ui/src/lib/types.gen.ts` differs from what the Rust types
//! say. `KURA_UPDATE_TYPES=1 cargo test -p kura-desktop types` rewrites it.

use kura_app::*;
use ts_rs::TS;

const HEADER: &str = "// Generated from the Rust DTOs (src-tauri/src/types.rs). Do not edit: run
// `KURA_UPDATE_TYPES=1 cargo test -p kura-desktop types` after changing a DTO.

export type Scheme = 'numbers' | 'letters' | 'letters_skip_i' | 'roman';
export type Geometry =
  | { layout: 'grid'; rows: number; cols: number; row_scheme: Scheme; col_scheme: Scheme; fill: { column_major: boolean; from: string } }
  | { layout: 'linear'; slots: number; scheme: Scheme }
  | { layout: 'unpositioned' };
";

fn generate() -> String {
    let decls = [
        SessionInfo::decl(),
        SpecimenView::decl(),
        ScanFlags::decl(),
        Located::decl(),
        FindQuery::decl(),
        EventRow::decl(),
        LineageNode::decl(),
        BoxSlot::decl(),
        BoxMap::decl(),
        ContainerRow::decl(),
        Stats::decl(),
        Placed::decl(),
        CheckOut::decl(),
        RegisterRequest::decl(),
        Registered::decl(),
        Choice::decl(),
        Vocabulary::decl(),
        StockInfo::decl(),
        LabelPreview::decl(),
        PrintReport::decl(),
        PrinterConfig::decl(),
        PrinterTest::decl(),
        Who::decl(),
        UserView::decl(),
        audit::AuditQuery::decl(),
        audit::AuditExport::decl(),
        Signing::decl(),
        SignatureView::decl(),
        QueuedForDestruction::decl(),
        SyncStatus::decl(),
        EnrollReport::decl(),
        ConflictView::decl(),
        RejectionRow::decl(),
        kura_app::backup::LastBackup::decl(),
        kura_app::backup::BackupSettings::decl(),
        kura_app::backup::BackupReport::decl(),
        ShipForm::decl(),
        Dispatched::decl(),
        Shipped::decl(),
        ShipmentSummary::decl(),
        Reconciled::decl(),
        Taken::decl(),
        KeyView::decl(),
        Progressed::decl(),
        import::ImportReport::decl(),
        import::Exported::decl(),
        import::ExportFilter::decl(),
        rack::ScanFile::decl(),
        rack::AtPosition::decl(),
        rack::MovedTube::decl(),
        rack::Unreadable::decl(),
        rack::Applied::decl(),
        rack::Reconciliation::decl(),
        space::Room::decl(),
        space::TypeRoom::decl(),
        space::Take::decl(),
        space::Space::decl(),
        WireError::decl(),
    ];
    let mut s = HEADER.to_string();
    for d in decls {
        s.push_str("\nexport ");
        s.push_str(&d);
        s.push('\n');
    }
    s
}

#[test]
fn typescript_types_match_the_rust_dtos() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/lib/types.gen.ts");
    let want = generate();
    if std::env::var_os("KURA_UPDATE_TYPES").is_some() {
        std::fs::write(&path, &want).expect("writes the types");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "ui/src/lib/types.gen.ts is out of date with the Rust DTOs; run `KURA_UPDATE_TYPES=1 cargo test -p kura-desktop types` and commit it"
    );
}
