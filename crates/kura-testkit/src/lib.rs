//! Test support every side of Kura shares: the custody event bodies tests record (a site's
//! storage, specimens registered, checked in and out, moved), and [`Bench`], one workstation's
//! stream of events with seqs and hashes chained as a bench writes them. It builds values only;
//! the store, the sync engine and the registry each test with their own real parts around it.
// Test support: a failure here is a broken test fixture, and a panic is the right report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kura_domain::container::{ContainerSpec, builtin_type};
use kura_domain::event::{EventBody, Location, Purpose};
use kura_domain::hash::{Digest, GENESIS};
use kura_domain::id::{ContainerId, KuraId, SpecimenCode};
use kura_domain::position::Pos;
use kura_domain::specimen::{Quantity, SampleType, SpecimenRecord};
use kura_domain::{Envelope, Meaning};
use uuid::Uuid;

/// One workstation's stream, as a bench writes it.
#[derive(Debug, Clone)]
pub struct Bench {
    pub workstation: Uuid,
    pub seq: u64,
    pub prev: Digest,
    pub at: i64,
}

impl Bench {
    pub fn new(workstation: Uuid) -> Bench {
        Bench {
            workstation,
            seq: 0,
            prev: GENESIS,
            at: 1_764_000_000_000_000,
        }
    }

    /// The next event of the stream: its seq, time and hash chained on the one before.
    fn next(&mut self, id: Uuid, actor: &str, kind: &str, payload: &str) -> Envelope {
        self.seq += 1;
        self.at += 1_000;
        let mut e = Envelope {
            id,
            workstation: self.workstation,
            seq: self.seq,
            actor: actor.into(),
            at: self.at,
            kind: kind.into(),
            payload: payload.into(),
            hash: GENESIS,
        };
        e.hash = e.expected_hash(&self.prev);
        self.prev = e.hash;
        e
    }

    /// The next event of the stream with any kind and payload (for malformed payloads).
    pub fn raw(&mut self, kind: &str, payload: &str) -> Envelope {
        self.next(Uuid::now_v7(), "technician", kind, payload)
    }

    /// The next event, carrying an id of the caller's choosing (one already used, say).
    pub fn with_id(&mut self, id: Uuid, body: &EventBody) -> Envelope {
        self.next(id, "technician", body.kind(), &body.canonical())
    }

    /// The next event, recorded by `actor`.
    pub fn by(&mut self, actor: &str, body: &EventBody) -> Envelope {
        self.next(Uuid::now_v7(), actor, body.kind(), &body.canonical())
    }

    /// `signer`'s signature on `target`, the next event, signed with `key` (None: no signature).
    pub fn signature(
        &mut self,
        signer: &str,
        target: &Envelope,
        key: Option<&kura_domain::sign::SigningKey>,
    ) -> Envelope {
        let meaning = Meaning::Approved;
        let at = self.at + 1_000;
        let body = EventBody::Signed {
            event: target.id,
            event_hash: target.hash.to_string(),
            signer: signer.into(),
            name: signer.into(),
            meaning,
            signature: key.map(|k| {
                k.sign(&kura_domain::sign::message(
                    &target.hash.to_string(),
                    meaning,
                    at,
                ))
            }),
        };
        let e = self.by(signer, &body);
        assert_eq!(e.at, at);
        e
    }

    pub fn event(&mut self, body: &EventBody) -> Envelope {
        self.raw(body.kind(), &body.canonical())
    }

    pub fn events(&mut self, bodies: &[EventBody]) -> Vec<Envelope> {
        bodies.iter().map(|b| self.event(b)).collect()
    }
}

/// The Kura ID `serial` of a prefix in 2026.
pub fn specimen(prefix: &str, serial: u64) -> SpecimenCode {
    SpecimenCode::kura(KuraId::from_data(&format!("{prefix}26{serial:07}")).unwrap())
}

pub fn cid(s: &str) -> ContainerId {
    ContainerId::parse(s).unwrap()
}

/// A container of a built-in type, in `parent` at `pos` (row, column).
pub fn create(id: &str, ty: &str, parent: Option<&str>, pos: Option<(u16, u16)>) -> EventBody {
    let (kind, geometry) = builtin_type(ty).unwrap();
    EventBody::ContainerCreated {
        container: ContainerSpec {
            id: cid(id),
            kind,
            name: id.into(),
            type_name: ty.into(),
            geometry,
            temperature: None,
            parent: parent.map(cid),
            pos: pos.map(|(r, c)| Pos::new(r, c)),
        },
    }
}

/// A site, a room, a freezer, a rack and the 9×9 boxes `boxes` in it (`S{tag}`, `ROOM{tag}`,
/// `F{tag}`, `R{tag}`; the boxes fill the rack's rows of four from the first).
pub fn storage(tag: &str, boxes: &[&str]) -> Vec<EventBody> {
    let (s, room, f, r) = (
        format!("S{tag}"),
        format!("ROOM{tag}"),
        format!("F{tag}"),
        format!("R{tag}"),
    );
    let mut v = vec![
        create(&s, "site", None, None),
        create(&room, "room", Some(&s), None),
        create(&f, "freezer-5-shelves", Some(&room), None),
        create(&r, "rack-5x4", Some(&f), Some((0, 0))),
    ];
    for (i, b) in boxes.iter().enumerate() {
        v.push(create(
            b,
            "box-9x9",
            Some(&r),
            Some(((i / 4) as u16, (i % 4) as u16)),
        ));
    }
    v
}

pub fn at(container: &str, row: u16, col: u16) -> Location {
    Location {
        container: cid(container),
        pos: Pos::new(row, col),
    }
}

/// 1 mL of plasma (PL1) in a tube, of study がんゲノム研究 and donor D0001.
pub fn register(code: &SpecimenCode, location: Option<Location>) -> EventBody {
    EventBody::Registered {
        specimen: SpecimenRecord {
            code: code.clone(),
            sample_type: SampleType::parse("PL1").unwrap(),
            container: "PED".into(),
            storage: "A".into(),
            quantity: Some(Quantity::parse("1", "mL").unwrap()),
            study: "がんゲノム研究".into(),
            donor: "D0001".into(),
            collected_at: None,
            parent: None,
            freeze_thaw: 0,
        },
        location,
    }
}

pub fn check_in(code: &SpecimenCode, location: Location) -> EventBody {
    EventBody::CheckedIn {
        specimen: code.clone(),
        location,
    }
}

/// Checked out to `to` for analysis, with no date due back.
pub fn check_out(code: &SpecimenCode, to: &str) -> EventBody {
    EventBody::CheckedOut {
        specimen: code.clone(),
        to: to.into(),
        purpose: Purpose::Analysis,
        due: None,
        note: None,
    }
}

pub fn moved(code: &SpecimenCode, from: Location, to: Location) -> EventBody {
    EventBody::Moved {
        specimen: code.clone(),
        from,
        to,
    }
}

pub fn returned(code: &SpecimenCode) -> EventBody {
    EventBody::Returned {
        specimen: code.clone(),
        thawed: false,
    }
}

pub fn resolve(code: &SpecimenCode, events: Vec<Uuid>) -> EventBody {
    EventBody::ConflictResolved {
        specimen: code.clone(),
        events,
        resolution: "the check-out at bench 1 is the real one".into(),
    }
}

pub fn thawed(code: &SpecimenCode) -> EventBody {
    EventBody::Thawed {
        specimen: code.clone(),
    }
}

/// A realistic stream of `n` events for one workstation: freezers, racks and boxes as needed, and
/// specimens (prefix `prefix`, serials from `first_serial`) registered straight into the next free
/// position. Registrations are ~300-byte payloads, like an inventory import.
pub fn workload(
    bench: &mut Bench,
    tag: &str,
    prefix: &str,
    first_serial: u64,
    n: usize,
) -> Vec<Envelope> {
    let site = format!("S{tag}");
    let room = format!("ROOM{tag}");
    let mut out = vec![
        bench.event(&create(&site, "site", None, None)),
        bench.event(&create(&room, "room", Some(&site), None)),
    ];
    let mut k = 0u64;
    while out.len() < n {
        let b = k / 81;
        if k.is_multiple_of(81) {
            let (f, r) = (b / 100, (b / 20) % 5);
            if b.is_multiple_of(100) {
                out.push(bench.event(&create(
                    &format!("F{tag}-{f}"),
                    "freezer-5-shelves",
                    Some(&room),
                    None,
                )));
            }
            if b.is_multiple_of(20) {
                out.push(bench.event(&create(
                    &format!("R{tag}-{f}-{r}"),
                    "rack-5x4",
                    Some(&format!("F{tag}-{f}")),
                    Some((0, r as u16)),
                )));
            }
            let slot = b % 20;
            out.push(bench.event(&create(
                &format!("B{tag}-{b}"),
                "box-9x9",
                Some(&format!("R{tag}-{f}-{r}")),
                Some(((slot / 4) as u16, (slot % 4) as u16)),
            )));
        }
        let code = specimen(prefix, first_serial + k);
        let pos = k % 81;
        let mut body = register(
            &code,
            Some(at(
                &format!("B{tag}-{b}"),
                (pos / 9) as u16,
                (pos % 9) as u16,
            )),
        );
        if let EventBody::Registered { specimen, .. } = &mut body {
            specimen.donor = format!("D{:06}", k / 3);
            specimen.collected_at = Some(kura_domain::time::Timestamp(
                1_764_000_000_000_000 + k as i64,
            ));
        }
        out.push(bench.event(&body));
        k += 1;
    }
    out.truncate(n);
    out
}

/// A user added with `role`.
pub fn user_added(user: &str, role: kura_domain::Role) -> EventBody {
    EventBody::UserAdded {
        user: user.into(),
        name: user.into(),
        role,
        badge: None,
    }
}

/// `user`'s password credential, publishing `key`'s public half.
pub fn password(user: &str, key: &kura_domain::sign::SigningKey) -> EventBody {
    EventBody::CredentialSet {
        user: user.into(),
        secret: kura_domain::Secret::Password,
        hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        key: Some(kura_domain::sign::PublicKey {
            ed25519: key.public_hex(),
            salt: "00".repeat(16),
        }),
    }
}

/// A shipment `id` of `tubes` to site `to_site` from `bench`, whose events so far are `stream`
/// (from seq 1) and among them the tubes' registrations `registered`: each tube's `shipped`, then
/// the dispatch naming the registrations and the `shipped` by hash. Returns the new events (to
/// push) and the shipment's bundle, signed with `key`.
pub fn ship(
    bench: &mut Bench,
    stream: &[Envelope],
    registered: &[&Envelope],
    tubes: &[SpecimenCode],
    id: &str,
    to_site: &str,
    key: &kura_domain::sign::SigningKey,
) -> (Vec<Envelope>, kura_domain::bundle::Bundle) {
    use kura_domain::bundle::{Bundle, Carried, FORMAT, message};
    use kura_domain::shipment::{Coolant, Destination, Shipment};
    let prev_of = |e: &Envelope| match e.seq {
        1 => GENESIS,
        n => stream[n as usize - 2].hash,
    };
    let mut carried: Vec<Carried> = registered
        .iter()
        .map(|e| Carried {
            event: (*e).clone(),
            prev: prev_of(e),
        })
        .collect();
    let mut new = Vec::new();
    for t in tubes {
        let prev = bench.prev;
        let e = bench.event(&EventBody::Shipped {
            specimen: t.clone(),
            shipment: id.into(),
            destination: format!("site:{to_site}"),
        });
        carried.push(Carried {
            event: e.clone(),
            prev,
        });
        new.push(e);
    }
    let prev = bench.prev;
    let dispatch = bench.event(&EventBody::ShipmentDispatched {
        shipment: Shipment {
            id: id.into(),
            destination: Destination::Site {
                code: to_site.into(),
            },
            specimens: tubes.to_vec(),
            coolant: Coolant::Ambient,
            dry_ice_grams: None,
            courier: None,
            tracking: None,
            logger: None,
            mta: None,
            packed: vec![],
            carries: carried.iter().map(|c| c.event.hash).collect(),
        },
    });
    new.push(dispatch.clone());
    let bundle = Bundle {
        kura_bundle: FORMAT,
        shipment: id.into(),
        site: None,
        signature: key.sign(&message(&dispatch.hash)),
        key: key.public_hex(),
        dispatch: Carried {
            event: dispatch,
            prev,
        },
        events: carried,
    };
    (new, bundle)
}

/// A receiving bench's `received` of a tube of shipment `id`, placed nowhere.
pub fn received(code: &SpecimenCode, id: &str) -> EventBody {
    EventBody::Received {
        specimen: code.clone(),
        shipment: id.into(),
        location: None,
    }
}
