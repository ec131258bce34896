//! The wire format, pinned: each fixture is what version 1 puts on the wire for one message.
//! A failing case means a released shape changed; make a new version instead. Run with
//! `KURA_BLESS=1` only when adding a fixture.

use kura_proto::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

fn id(n: u8) -> Uuid {
    Uuid::parse_str(&format!("01890a5d-ac96-774b-bcce-b302099a80{n:02x}")).unwrap()
}

fn event() -> Envelope {
    let payload = r#"{"kind":"thawed","specimen":"G123498654321H"}"#.to_string();
    let mut e = Envelope {
        id: id(0x57),
        workstation: id(0x58),
        seq: 1,
        actor: "tester".into(),
        at: 1_764_000_000_000_000,
        kind: "thawed".into(),
        payload,
        hash: kura_domain::hash::GENESIS,
    };
    e.hash = e.expected_hash(&kura_domain::hash::GENESIS);
    e
}

fn site() -> Site {
    Site {
        code: "NCGM".into(),
        name: "National Center Biobank".into(),
        prefix: "G".into(),
        serial_width: 9,
    }
}

fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(name: &str, value: T) {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
    if std::env::var_os("KURA_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{path} is missing; run with KURA_BLESS=1 once"));
    assert_eq!(text, golden, "{name}: the wire shape changed");
    let back: T = serde_json::from_str(&golden).unwrap();
    assert_eq!(back, value, "{name}: does not read back");
}

#[test]
fn fixtures() {
    let lease = Lease {
        year: 2026,
        first: 1001,
        last: 2000,
    };
    check("capabilities", Capabilities::current());
    check(
        "error",
        ErrorBody {
            code: "gap".into(),
            message: "the registry holds seq 3; send from seq 4".into(),
        },
    );
    check(
        "enroll_request",
        EnrollRequest {
            v: VERSION,
            code: "KQ7M-2XPA-9TRB-WC4D".into(),
            workstation: id(0x58),
            name: "bench-3 (-80 °C room)".into(),
            year: 2026,
            issued: vec![],
            id_format: None,
            recover: false,
        },
    );
    // Added to version 1: the serials a database issued before enrollment (absent above).
    check(
        "enroll_request_issued",
        EnrollRequest {
            v: VERSION,
            code: "KQ7M-2XPA-9TRB-WC4D".into(),
            workstation: id(0x58),
            name: "bench-3".into(),
            year: 2026,
            issued: vec![Lease {
                year: 2026,
                first: 1,
                last: 1200,
            }],
            id_format: None,
            recover: false,
        },
    );
    // Added to version 1: the ID format of a database that issued IDs, so the registry refuses
    // a site of another format before the code is spent (absent above).
    check(
        "enroll_request_id_format",
        EnrollRequest {
            v: VERSION,
            code: "KQ7M-2XPA-9TRB-WC4D".into(),
            workstation: id(0x58),
            name: "bench-3".into(),
            year: 2026,
            issued: vec![Lease {
                year: 2026,
                first: 1,
                last: 1200,
            }],
            id_format: Some(IdFormatClaim {
                prefix: "NCG".into(),
                serial_width: 7,
            }),
            recover: false,
        },
    );
    // Added to version 1: a replacement PC takes over a workstation (absent above), and the
    // answer says where the replaced stream stood (absent below).
    check(
        "enroll_request_recover",
        EnrollRequest {
            v: VERSION,
            code: "KQ7M-2XPA-9TRB-WC4D".into(),
            workstation: id(0x59),
            name: "bench-3 (replacement)".into(),
            year: 2026,
            issued: vec![],
            id_format: None,
            recover: true,
        },
    );
    check(
        "enroll_response_replaced",
        EnrollResponse {
            v: VERSION,
            workstation: id(0x58),
            site: site(),
            token: "kura_0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            lease,
            replaced: Some(ReplacedStream {
                head: 4213,
                last_seen: Some(1_764_000_000_500_000),
            }),
        },
    );
    check(
        "enroll_response",
        EnrollResponse {
            v: VERSION,
            workstation: id(0x58),
            site: site(),
            token: "kura_0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            lease,
            replaced: None,
        },
    );
    check(
        "push_request",
        PushRequest {
            v: VERSION,
            workstation: id(0x58),
            sent_at: Some(1_764_000_000_500_000),
            events: vec![event()],
        },
    );
    check(
        "push_response",
        PushResponse {
            v: VERSION,
            verdicts: vec![
                Verdict::Accepted {
                    seq: 1,
                    id: id(0x57),
                    server_seq: 41,
                },
                Verdict::Duplicate {
                    seq: 2,
                    id: id(0x59),
                    server_seq: None,
                },
                Verdict::Rejected {
                    seq: 3,
                    id: id(0x5a),
                    code: RejectCode::SequenceFork,
                    message: "the registry holds another event as seq 3".into(),
                },
            ],
            head: Head {
                seq: 3,
                hash: Some(event().hash),
            },
        },
    );
    check(
        "status_response",
        StatusResponse {
            v: VERSION,
            workstation: id(0x58),
            site: site(),
            head: Head { seq: 0, hash: None },
            leases: vec![lease],
            server_time: 1_764_000_001_000_000,
            clock_skew_us: Some(-2_500_000),
            site_seq: 41,
            kinds: vec![],
        },
    );
    // Added to version 1: the event kinds the registry takes (absent above).
    check(
        "status_response_kinds",
        StatusResponse {
            v: VERSION,
            workstation: id(0x58),
            site: site(),
            head: Head { seq: 0, hash: None },
            leases: vec![lease],
            server_time: 1_764_000_001_000_000,
            clock_skew_us: None,
            site_seq: 41,
            kinds: vec!["registered".into(), "checked_in".into()],
        },
    );
    let conflict = Conflict {
        server_seq: 42,
        subject: "G123498654321H".into(),
        code: "already_checked_out".into(),
        message: "specimen G123498654321H is already checked out to Dr. Sato; return it first"
            .into(),
        events: vec![id(0x57), id(0x5b)],
        resolved_by: None,
    };
    check(
        "pull_response",
        PullResponse {
            v: VERSION,
            events: vec![Placed {
                server_seq: 41,
                received_at: 1_764_000_001_000_000,
                event: event(),
            }],
            conflicts: vec![conflict.clone()],
            next: 42,
            more: false,
            own: vec![],
            refused: vec![],
        },
    );
    // A page that also says where the caller's own events sit and which seqs of another
    // workstation's stream the registry refused (an older registry sends neither).
    check(
        "pull_response_positions",
        PullResponse {
            v: VERSION,
            events: vec![Placed {
                server_seq: 41,
                received_at: 1_764_000_001_000_000,
                event: event(),
            }],
            conflicts: vec![],
            next: 43,
            more: true,
            own: vec![OwnPosition {
                server_seq: 43,
                seq: 7,
            }],
            refused: vec![RefusedSeq {
                workstation: event().workstation,
                seq: 3,
            }],
        },
    );
    check(
        "conflicts_response",
        ConflictsResponse {
            v: VERSION,
            conflicts: vec![conflict],
        },
    );
    // Added to version 1: a duplicate says where the site's order put it (the bench orders its
    // projection by it). The shape without it, above, still reads.
    check(
        "push_response_duplicate_order",
        PushResponse {
            v: VERSION,
            verdicts: vec![Verdict::Duplicate {
                seq: 2,
                id: id(0x59),
                server_seq: Some(40),
            }],
            head: Head {
                seq: 2,
                hash: Some(event().hash),
            },
        },
    );
    check(
        "serials_request",
        SerialsRequest {
            v: VERSION,
            year: 2026,
            count: Some(500),
        },
    );
    // Added to version 1: shipments through the registry.
    check(
        "parcel_post",
        kura_proto::ParcelPost {
            v: VERSION,
            parcel: kura_proto::Parcel::Bundle {
                bundle: kura_domain::bundle::Bundle {
                    kura_bundle: 1,
                    shipment: "SHP-9F2C1A7B-1".into(),
                    site: Some("NCGM".into()),
                    dispatch: kura_domain::bundle::Carried {
                        event: event(),
                        prev: kura_domain::hash::GENESIS,
                    },
                    events: vec![],
                    key: "ab".repeat(32),
                    signature: "cd".repeat(64),
                },
            },
        },
    );
    check(
        "parcel_posted",
        kura_proto::ParcelPosted {
            v: VERSION,
            seq: 7,
            duplicate: false,
        },
    );
    check(
        "parcels_response",
        kura_proto::ParcelsResponse {
            v: VERSION,
            parcels: vec![kura_proto::PlacedParcel {
                seq: 8,
                parcel: kura_proto::Parcel::Receipt {
                    shipment: "SHP-9F2C1A7B-1".into(),
                    site: "NCNP".into(),
                    event: event(),
                },
            }],
            next: 8,
            more: false,
            at: Some(event().hash),
        },
    );
}

/// The event hash the protocol carries is the one the bench store computes: the domain's golden.
/// A hash that is not 64 hex digits is refused when the message is read, naming what it got.
#[test]
fn event_hash_is_the_domains() {
    assert_eq!(
        event().hash.to_string(),
        "4e5c95de2730ec5c8240bf68c4577bfdad1876ad2f2d23509ed17ebb4cbfef1e"
    );
    let good = serde_json::to_value(event()).unwrap();
    for bad in ["", "zz", &"0".repeat(63), &"g".repeat(64)] {
        let mut v = good.clone();
        v["hash"] = bad.into();
        let err = serde_json::from_value::<Envelope>(v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("64 hex digits"), "{bad:?}: {err}");
    }
}
