//! The store's half of sync, with real SQLite files and a registry reduced to what the store
//! relies on: one order for the site's events (`server_seq`), each bench reading the others'
//! events from a cursor. Benches that worked apart end with the same projection, whatever
//! order their work reached each other in; refused events become the same conflicts on every
//! bench; a settlement reaches every bench; bad pages are refused whole.

use std::path::{Path, PathBuf};

use kura_domain::Placed;
use kura_domain::specimen::Quantity;
use kura_domain::{Custody, EventBody, Outcome, Pos, SpecimenCode, Timestamp};
use kura_store::{Answer, Store, StoreError};
use kura_testkit::{self as kit, at, cid, create};
use uuid::Uuid;

// The tests' own numbering over the shared builders: specimen n is TST26000000n.
fn sid(n: u32) -> SpecimenCode {
    kit::specimen("TST", n.into())
}
fn register(n: u32) -> EventBody {
    kit::register(&sid(n), None)
}
fn check_in(n: u32, c: &str, r: u16, col: u16) -> EventBody {
    kit::check_in(&sid(n), at(c, r, col))
}
fn check_out(n: u32, to: &str) -> EventBody {
    kit::check_out(&sid(n), to)
}
fn moved(n: u32, from: (&str, u16, u16), to: (&str, u16, u16)) -> EventBody {
    kit::moved(&sid(n), at(from.0, from.1, from.2), at(to.0, to.1, to.2))
}

/// The storage the released schemas' fixtures hold.
fn world() -> Vec<EventBody> {
    vec![
        create("SITE", "site", None, None),
        create("ROOM1", "room", Some("SITE"), None),
        create("F1", "freezer-5-shelves", Some("ROOM1"), None),
        create("R1", "rack-5x4", Some("F1"), Some((0, 0))),
        create("BX1", "box-9x9", Some("R1"), Some((0, 0))),
        create("BX2", "box-9x9", Some("R1"), Some((0, 1))),
    ]
}

struct Bench {
    store: Store,
    path: PathBuf,
    clock: i64,
}

/// Benches are enrolled (their events keep undo images, and a pull that must go before them
/// rebases them) unless `KURA_TEST_UNENROLLED` says otherwise: then the projection is refolded
/// whole. The tests run both ways (see `both_ways`).
fn enrolled() -> bool {
    std::env::var_os("KURA_TEST_UNENROLLED").is_none()
}

impl Bench {
    /// A database never enrolled.
    fn alone(dir: &Path, name: &str) -> Bench {
        let path = dir.join(format!("{name}.sqlite3"));
        Bench {
            store: Store::open(&path, Uuid::now_v7).unwrap(),
            path,
            clock: 0,
        }
    }

    fn new(dir: &Path, name: &str) -> Bench {
        let path = dir.join(format!("{name}.sqlite3"));
        let mut store = Store::open(&path, Uuid::now_v7).unwrap();
        if enrolled() {
            store
                .write(|tx| tx.set_enrollment("http://registry.test", "file:token", None, "{}"))
                .unwrap();
        }
        Bench {
            store,
            path,
            clock: 0,
        }
    }

    /// Records a local command: "" when allowed, else the refusal's code.
    fn act(&mut self, body: EventBody) -> &'static str {
        self.clock += 1;
        let t = self.clock;
        self.store
            .write(|tx| -> Result<(), StoreError> {
                tx.append(Uuid::now_v7(), "tester", Timestamp(t), body)?;
                Ok(())
            })
            .err()
            .map(|e| e.code())
            .unwrap_or("")
    }

    fn must(&mut self, bodies: Vec<EventBody>) {
        for b in bodies {
            assert_eq!(self.act(b.clone()), "", "{b:?}");
        }
    }

    /// The projection as facts, local row ids replaced by event ids: comparable across benches.
    fn projection(&self) -> Vec<String> {
        let c = rusqlite::Connection::open(&self.path).unwrap();
        let ev = "(SELECT hex(e.event_id) FROM events e WHERE e.id = ";
        let mut out = Vec::new();
        for sql in [
            format!(
                "SELECT code || '|' || status || '|' || blocked || '|' || in_conflict || '|' ||
                    coalesce((SELECT c.code FROM containers c WHERE c.id = s.container), '-') || '|' ||
                    coalesce(row, '-') || '|' || coalesce(col, '-') || '|' || coalesce(holder, '-') || '|' ||
                    freeze_thaw || '|' || coalesce(qty_milli, '-') || '|' || coalesce({ev}s.last_event), '-')
                 FROM specimens s ORDER BY code"
            ),
            format!(
                "SELECT code || '|' || coalesce((SELECT p.code FROM containers p WHERE p.id = c.parent), '-') || '|' ||
                    coalesce(prow, '-') || '|' || coalesce(pcol, '-') || '|' || path || '|' || coalesce({ev}c.last_event), '-')
                 FROM containers c ORDER BY code"
            ),
            format!(
                "SELECT subject || '|' || code || '|' || {ev}k.event) || '|' || coalesce({ev}k.other), '-') || '|' ||
                    coalesce({ev}k.resolved_by), '-')
                 FROM conflicts k ORDER BY subject, {ev}k.event)"
            ),
        ] {
            let mut st = c.prepare(&sql).unwrap();
            let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
            out.extend(rows.map(Result::unwrap));
        }
        out
    }

    fn verify_ok(&mut self) {
        let r = self.store.verify(&mut |_, _| {}).unwrap();
        assert!(r.ok(), "{:?}", r.problems);
    }

    fn state(&self, n: u32) -> kura_store::SpecimenView {
        self.store.specimen(&sid(n)).unwrap().unwrap()
    }
}

/// When the registry stored its `server_seq` 0 (µs).
const RECEIVED: i64 = 1_800_000_000_000_000;

/// The registry as the store sees it: one order for every event of the site.
#[derive(Default)]
struct Order {
    log: Vec<Placed>,
}

impl Order {
    /// Pushes a bench's events past its mark; each is placed next in the site's order.
    fn push(&mut self, b: &mut Bench) {
        let st = b.store.sync_state().unwrap();
        let events = b.store.own_events(st.pushed_seq + 1, 500, 1 << 20).unwrap();
        let mut answers = Vec::new();
        for e in events {
            let seq = e.seq;
            let server_seq = match self.log.iter().find(|r| r.event.id == e.id) {
                Some(r) => r.server_seq,
                None => {
                    let s = self.log.len() as u64 + 1;
                    self.log.push(Placed {
                        server_seq: s,
                        received_at: RECEIVED + s as i64,
                        event: e,
                    });
                    s
                }
            };
            answers.push(Answer::Stored {
                seq,
                server_seq: Some(server_seq),
            });
        }
        b.store.write(|tx| tx.record_answers(&answers, 0)).unwrap();
    }

    /// Like `push`, but the answer never reaches the bench (a cut connection, a crash).
    fn push_lost(&mut self, b: &mut Bench) {
        let st = b.store.sync_state().unwrap();
        for e in b.store.own_events(st.pushed_seq + 1, 500, 1 << 20).unwrap() {
            let s = self.log.len() as u64 + 1;
            self.log.push(Placed {
                server_seq: s,
                received_at: RECEIVED + s as i64,
                event: e,
            });
        }
    }

    /// The others' events past the bench's cursor, in the site's order.
    fn page(&self, b: &Bench) -> Vec<Placed> {
        let cursor = b.store.sync_state().unwrap().pull_cursor as usize;
        let ws = b.store.workstation();
        self.log[cursor.min(self.log.len())..]
            .iter()
            .filter(|e| e.event.workstation != ws)
            .cloned()
            .collect()
    }

    /// One page of the others' events, then the end of the pull (as the sync engine does).
    fn pull(&self, b: &mut Bench) -> kura_store::PullApplied {
        let page = self.page(b);
        let next = self.log.len() as u64;
        let a = b.store.write(|tx| tx.apply_remote(&page, next)).unwrap();
        let end = b.store.write(|tx| tx.finish_pull()).unwrap();
        kura_store::PullApplied {
            conflicts: a.conflicts + end.conflicts,
            reordered: a.reordered || end.reordered,
            ..a
        }
    }

    /// Like `pull`, one page of `size` events at a time (each with its own cursor), calling
    /// `between` with the bench after each page but the last. Returns what each page did, and
    /// then what the end of the pull did.
    fn pull_paged(
        &self,
        b: &mut Bench,
        size: usize,
        between: &mut dyn FnMut(usize, &mut Bench),
    ) -> (Vec<kura_store::PullApplied>, kura_store::PullApplied) {
        let all = self.page(b);
        let pages: Vec<&[Placed]> = all.chunks(size).collect();
        let mut each = Vec::new();
        for (i, page) in pages.iter().enumerate() {
            let next = if i + 1 == pages.len() {
                self.log.len() as u64
            } else {
                page.last().unwrap().server_seq
            };
            each.push(b.store.write(|tx| tx.apply_remote(page, next)).unwrap());
            if i + 1 < pages.len() {
                between(i, b);
            }
        }
        (each, b.store.write(|tx| tx.finish_pull()).unwrap())
    }

    fn sync(&mut self, b: &mut Bench) -> kura_store::PullApplied {
        self.push(b);
        self.pull(b)
    }
}

#[test]
fn benches_that_worked_apart_end_with_one_projection() {
    let d = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut c) = (
        Bench::new(d.path(), "a"),
        Bench::new(d.path(), "b"),
        Bench::new(d.path(), "c"),
    );
    let mut reg = Order::default();
    a.must(world());
    reg.sync(&mut a);
    reg.sync(&mut b);
    reg.sync(&mut c);
    // Offline, each in its own corner of the shared boxes.
    a.must(vec![
        register(1),
        check_in(1, "BX1", 0, 0),
        register(2),
        check_in(2, "BX1", 0, 1),
    ]);
    b.must(vec![
        register(11),
        check_in(11, "BX2", 0, 0),
        check_out(11, "Dr. Sato"),
    ]);
    c.must(vec![
        register(21),
        check_in(21, "BX1", 5, 5),
        moved(21, ("BX1", 5, 5), ("BX2", 3, 3)),
    ]);
    a.must(vec![check_out(1, "Dr. Ito")]);
    // They come online in another order than they worked.
    reg.sync(&mut c);
    reg.sync(&mut a);
    reg.sync(&mut b);
    reg.sync(&mut c);
    reg.sync(&mut a);
    assert_eq!(a.projection(), b.projection());
    assert_eq!(a.projection(), c.projection());
    assert_eq!(
        a.store.conflicts(true).unwrap(),
        vec![],
        "nothing disagreed"
    );
    for x in [&mut a, &mut b, &mut c] {
        x.verify_ok();
        assert_eq!(x.store.waiting().unwrap(), 0);
    }
    assert_eq!(b.state(21).container.as_deref(), Some("BX2"));
    // Each bench holds the three streams: its heads are each stream's last event and hash, as
    // a plain GROUP BY over the whole log finds them.
    for x in [&a, &b, &c] {
        let heads = x.store.heads().unwrap();
        assert_eq!(heads.len(), 3);
        let conn = rusqlite::Connection::open(x.store.path()).unwrap();
        let mut stmt = conn
            .prepare("SELECT workstation, max(seq), hash FROM events GROUP BY workstation ORDER BY workstation")
            .unwrap();
        let want: Vec<(Vec<u8>, i64, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let got: Vec<(Vec<u8>, i64, Vec<u8>)> = heads
            .iter()
            .map(|(w, s, h)| (w.as_bytes().to_vec(), *s, h.as_bytes().to_vec()))
            .collect();
        assert_eq!(got, want);
    }
}

#[test]
fn the_same_specimen_checked_out_at_two_benches_is_one_conflict_on_both() {
    let d = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (Bench::new(d.path(), "a"), Bench::new(d.path(), "b"));
    let mut reg = Order::default();
    a.must(world());
    a.must(vec![register(1), check_in(1, "BX1", 0, 0)]);
    reg.sync(&mut a);
    reg.sync(&mut b);
    // Both offline: each checks out the same tube.
    a.must(vec![check_out(1, "Dr. Ito")]);
    b.must(vec![check_out(1, "Dr. Sato")]);
    reg.push(&mut a); // A's check-out comes first in the site's order
    let pulled_b = reg.sync(&mut b); // B learns of A's, which belongs before its own
    assert!(pulled_b.reordered, "B re-folds in the site's order");
    let pulled_a = reg.sync(&mut a);
    assert_eq!((pulled_a.new, pulled_a.conflicts), (1, 1));
    assert_eq!(a.projection(), b.projection());
    for x in [&a, &b] {
        let s = x.state(1);
        assert!(s.in_conflict, "flagged on every bench");
        assert_eq!(
            s.holder.as_deref(),
            Some("Dr. Ito"),
            "the first in the site's order holds"
        );
        let open = x.store.conflicts(false).unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].code, "already_checked_out");
    }
    a.verify_ok();
    b.verify_ok();

    // At B a supervisor finds the tube with Dr. Sato: B's event is the true one.
    let open = b.store.conflicts(false).unwrap();
    let keep = Uuid::parse_str(&open[0].event).unwrap();
    let discard = Uuid::parse_str(open[0].other.as_deref().unwrap()).unwrap();
    let held = b.state(1).container.unwrap();
    assert_eq!(
        b.act(EventBody::ConflictSettled {
            specimen: sid(1),
            keep,
            discard: vec![discard],
            reason: "found with Dr. Sato".into(),
            outcome: Outcome {
                custody: Custody::CheckedOut {
                    held: at(&held, 0, 0),
                    holder: "Dr. Sato".into(),
                    due: None,
                },
                blocked: false,
                freeze_thaw: 0,
                quantity: Some(Quantity::parse("1", "mL").unwrap()),
            },
        }),
        ""
    );
    reg.sync(&mut b);
    reg.sync(&mut a);
    assert_eq!(a.projection(), b.projection());
    for x in [&mut a, &mut b] {
        let s = x.state(1);
        assert!(!s.in_conflict);
        assert_eq!(s.holder.as_deref(), Some("Dr. Sato"));
        assert_eq!(x.store.conflicts(false).unwrap(), vec![]);
        assert_eq!(x.store.conflicts(true).unwrap().len(), 1, "kept, resolved");
        x.verify_ok();
    }
}

#[test]
fn a_position_taken_at_two_benches_reorders_and_conflicts() {
    let d = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (Bench::new(d.path(), "a"), Bench::new(d.path(), "b"));
    let mut reg = Order::default();
    a.must(world());
    reg.sync(&mut a);
    reg.sync(&mut b);
    a.must(vec![register(1), check_in(1, "BX1", 0, 0)]);
    b.must(vec![register(2), check_in(2, "BX1", 0, 0), register(3)]);
    reg.push(&mut b);
    let r = reg.sync(&mut a);
    assert!(r.reordered);
    reg.sync(&mut b);
    assert_eq!(a.projection(), b.projection());
    // B's tube was first: A's check-in is refused everywhere, A's tube stays received.
    assert_eq!(a.state(2).position.as_deref(), Some("A1"));
    assert!(a.state(1).in_conflict);
    assert_eq!(a.state(1).status, "received");
    a.verify_ok();
    b.verify_ok();
}

/// What a bench's own events ahead of a pull touch is carried from page to page, not read again
/// for each: events the bench writes between two pages join it, so a later page that touches
/// them is still applied before them (the projection stays the canonical fold).
#[test]
fn own_events_written_between_pages_still_come_after_the_pages() {
    let d = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (Bench::new(d.path(), "a"), Bench::new(d.path(), "b"));
    let mut reg = Order::default();
    a.must(world());
    reg.sync(&mut a);
    reg.sync(&mut b);
    // A works offline: ten tubes, the last two into BX2 A1 and A2; pushed first.
    for n in 1..=10 {
        a.must(vec![register(n)]);
    }
    a.must(vec![check_in(9, "BX2", 0, 0), check_in(10, "BX2", 0, 1)]);
    reg.push(&mut a);
    // B's own work, pushed after A's (so A's pages all come before it), touching nothing of A's.
    b.must(vec![register(20), check_in(20, "BX1", 4, 4)]);
    reg.push(&mut b);
    // B pulls A's twelve events two at a time; after the second page it checks a tube in to
    // BX2 A2, which A's last page also takes: A's was first in the site's order.
    reg.pull_paged(&mut b, 2, &mut |i, b| {
        if i == 1 {
            b.must(vec![register(21), check_in(21, "BX2", 0, 1)]);
        }
    });
    reg.sync(&mut b);
    reg.sync(&mut a);
    assert_eq!(a.projection(), b.projection());
    assert_eq!(
        b.state(10).position.as_deref(),
        Some("A2"),
        "A's tube was first"
    );
    assert!(b.state(21).in_conflict, "B's check-in came after A's");
    a.verify_ok();
    b.verify_ok();
}

/// A bench that worked before it was enrolled keeps no undo images of that work: a pulled page
/// that belongs before it and touches what it touched means folding the whole projection again
/// in the site's order. A large site's pull holds many such pages: each is only recorded, and
/// the projection is refolded once, when the pull has caught up or stops; a bench closed between
/// pages finds the refold waiting when it opens.
#[test]
fn pages_before_work_from_before_enrollment_are_refolded_once_at_the_end() {
    let d = tempfile::tempdir().unwrap();
    let mut a = Bench::new(d.path(), "a");
    let mut b = Bench::alone(d.path(), "b");
    let mut reg = Order::default();
    a.must(world());
    reg.push(&mut a);
    reg.pull(&mut b);
    // B, not enrolled yet, checks three tubes in to BX1; the third takes A5, which A takes too.
    b.must(vec![
        register(101),
        check_in(101, "BX1", 8, 8),
        register(102),
        check_in(102, "BX1", 8, 7),
        register(103),
        check_in(103, "BX1", 0, 4),
    ]);
    // A checks twelve tubes in to BX1, A1 to A12 (over a row of nine: A1-A9, B1-B3), pushed
    // first: all of it goes before B's work.
    for n in 1..=12u32 {
        let (row, col) = ((n - 1) / 9, (n - 1) % 9);
        a.must(vec![
            register(n),
            check_in(n, "BX1", row as u16, col as u16),
        ]);
    }
    reg.push(&mut a);
    b.store
        .write(|tx| tx.set_enrollment("http://registry.test", "file:token", None, "{}"))
        .unwrap();
    reg.push(&mut b);
    // B pulls A's 24 events four at a time. After the third page the bench closes and opens
    // again (the refold left waits in the file); after the fifth the pull stops (the engine
    // folds what came so far); the sixth page is a pull of its own.
    let path = b.path.clone();
    let mut cut = None;
    let (pages, end) = reg.pull_paged(&mut b, 4, &mut |i, b| {
        if i == 2 {
            b.store = Store::open(&path, Uuid::now_v7).unwrap();
            // Meanwhile the projection is not the site's fold, and verify says so.
            let r = b.store.verify(&mut |_, _| {}).unwrap();
            assert!(r.ok() && r.awaiting_refold, "{r:?}");
        }
        if i == 4 {
            cut = Some(b.store.write(|tx| tx.pull_cut_short()).unwrap());
            let r = b.store.verify(&mut |_, _| {}).unwrap();
            assert!(r.ok() && !r.awaiting_refold, "{r:?}");
        }
    });
    let cut = cut.unwrap();
    assert_eq!(pages.len(), 6);
    assert_eq!(pages.iter().map(|p| p.new).sum::<u64>(), 24);
    assert!(
        pages[..5].iter().all(|p| !p.reordered),
        "no page refolds the projection: {pages:?}"
    );
    assert!(
        cut.reordered,
        "the stopped pull refolds what it brought, once"
    );
    assert_eq!(cut.conflicts, 1, "B's check-in to A5 came after A's");
    // The refold kept undo images of B's events (it is enrolled now): the last page is rebased
    // around them, and nothing is left for the end.
    assert!(pages[5].reordered, "{pages:?}");
    assert!(!end.reordered);
    assert_eq!(end.conflicts, 0);
    assert!(b.state(103).in_conflict);
    assert_eq!(b.state(5).position.as_deref(), Some("A5"));
    assert_eq!(b.state(101).position.as_deref(), Some("I9"));
    // Nothing is left for the next pull.
    let again = b.store.write(|tx| tx.finish_pull()).unwrap();
    assert!(!again.reordered);
    reg.sync(&mut a);
    assert_eq!(a.projection(), b.projection());
    a.verify_ok();
    b.verify_ok();
}

/// Found by the property test: a bench whose answer was lost learns its events' place late; the
/// page it then pulls holds events from before them and from after them, and is applied around
/// them in the site's order.
#[test]
fn a_page_from_before_and_after_own_events_is_applied_around_them() {
    let d = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut c) = (
        Bench::new(d.path(), "a"),
        Bench::new(d.path(), "b"),
        Bench::new(d.path(), "c"),
    );
    let mut reg = Order::default();
    a.must(world());
    for x in [&mut a, &mut b, &mut c] {
        reg.sync(x);
    }
    b.must(vec![register(3), check_in(3, "BX1", 0, 0)]);
    reg.push(&mut b); // before c's
    c.must(vec![register(2), check_in(2, "BX1", 0, 1)]);
    reg.push_lost(&mut c); // stored, the answer lost
    a.must(vec![register(4), check_in(4, "BX1", 0, 1)]);
    reg.push(&mut a); // after c's: refused everywhere
    reg.sync(&mut c); // duplicates, then b's page and a's
    for x in [&mut a, &mut b] {
        reg.sync(x);
    }
    assert_eq!(c.projection(), a.projection());
    assert_eq!(b.projection(), a.projection());
    assert_eq!(
        c.state(2).position.as_deref(),
        Some("A2"),
        "the first at A2 keeps it"
    );
    assert!(c.state(4).in_conflict);
    for x in [&mut a, &mut b, &mut c] {
        x.verify_ok();
    }
}

#[test]
fn bad_pages_are_refused_whole() {
    let d = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (Bench::new(d.path(), "a"), Bench::new(d.path(), "b"));
    let mut reg = Order::default();
    a.must(world());
    a.must(vec![register(1)]);
    reg.push(&mut a);
    let good = reg.page(&b);
    let n = good.len() as u64;
    let mut cases: Vec<(&str, Vec<Placed>, &str)> = Vec::new();
    let mut tampered = good.clone();
    tampered[3].event.payload = tampered[3].event.payload.replace("R1", "R9");
    cases.push(("a payload changed", tampered, "store_corrupt"));
    // A newer bench's event, correctly chained, of a kind this version has never heard of.
    let mut unknown = good.clone();
    let prev = unknown[unknown.len() - 2].event.hash;
    let e = &mut unknown.last_mut().unwrap().event;
    e.kind = "teleported".into();
    e.payload = r#"{"kind":"teleported"}"#.into();
    e.hash = e.expected_hash(&prev);
    cases.push((
        "an event this version does not know",
        unknown,
        "unknown_event_kind",
    ));
    let mut mine = good.clone();
    mine[0].event.workstation = b.store.workstation();
    // (Its own events come back only to a bench that lacks them, and must continue its chain.)
    cases.push((
        "an event of this bench's stream that does not continue its chain",
        mine,
        "sequence_fork",
    ));
    for (what, page, code) in cases {
        let err = b.store.write(|tx| tx.apply_remote(&page, n)).unwrap_err();
        assert_eq!(err.code(), code, "{what}: {err}");
        assert_eq!(
            b.store.stats().unwrap().events,
            0,
            "{what}: nothing applied"
        );
        assert_eq!(b.store.sync_state().unwrap().pull_cursor, 0, "{what}");
    }
    // The same page again is harmless.
    assert_eq!(reg.pull(&mut b).new, n);
    let again = b.store.write(|tx| tx.apply_remote(&good, n)).unwrap();
    assert_eq!((again.new, again.known), (0, n));
    b.verify_ok();
}

#[test]
fn a_hole_the_registry_left_is_told_and_verify_accepts_it() {
    let d = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (Bench::new(d.path(), "a"), Bench::new(d.path(), "b"));
    let mut reg = Order::default();
    a.must(world());
    a.must(vec![register(1), register(2)]);
    reg.push(&mut a);
    // The registry kept seq 7 as a rejection: it never reaches another bench.
    let mut page = reg.page(&b);
    page.retain(|e| e.event.seq != 7);
    let ws = a.store.workstation();
    let n = reg.log.len() as u64;
    // Untold, the jump stops the page: nothing of it is applied.
    let held = b.store.stats().unwrap().events;
    let e = b.store.write(|tx| tx.apply_remote(&page, n)).unwrap_err();
    assert_eq!(e.code(), "stream_gap", "{e}");
    assert_eq!(b.store.stats().unwrap().events, held);
    // Told (the page says seq 7 was refused), it is applied and verify accepts the hole.
    b.store
        .write(|tx| -> Result<_, StoreError> {
            tx.record_refused(&[(ws, 7)])?;
            tx.apply_remote(&page, n)
        })
        .unwrap();
    b.verify_ok();
    // A hole nobody told of is found.
    let c = rusqlite::Connection::open(&b.path).unwrap();
    c.execute("DELETE FROM stream_refused", []).unwrap();
    let r = b.store.verify(&mut |_, _| {}).unwrap();
    // … and the chain cannot be followed across it.
    assert_eq!(
        r.problems.iter().map(|p| p.code).collect::<Vec<_>>(),
        ["sequence_gap", "hash_mismatch"]
    );
}

#[test]
fn leased_serials_are_issued_once_and_run_out_clearly() {
    let d = tempfile::tempdir().unwrap();
    let mut a = Bench::alone(d.path(), "a");
    // Never enrolled: the database's own counter.
    let own = a.store.write(|tx| tx.take_serials(2026, 3)).unwrap();
    assert_eq!(own, [1, 2, 3]);
    a.store
        .write(|tx| -> Result<(), StoreError> {
            tx.set_enrollment("http://registry", "file:token", None, "{}")?;
            // Serials 1–3 were issued here already: the block starts after them.
            tx.add_lease(2026, 1, 5)?;
            tx.add_lease(2026, 101, 102)?;
            Ok(())
        })
        .unwrap();
    let table: Vec<(u64, Result<Vec<u64>, &str>)> = vec![
        (1, Ok(vec![4])),
        (2, Ok(vec![5, 101])),
        (2, Err("no_serials_left")),
        (1, Ok(vec![102])),
        (1, Err("no_serials_left")),
    ];
    for (n, want) in table {
        let got = a.store.write(|tx| tx.take_serials(2026, n));
        assert_eq!(got.map_err(|e| e.code()), want);
    }
    let left: u64 = a
        .store
        .sync_state()
        .unwrap()
        .leases
        .iter()
        .map(|b| b.left())
        .sum();
    assert_eq!(left, 0);
}

/// A database of the schema before 0005 gets the last event of each specimen and container
/// from its log, so that `verify` agrees with a rebuild right after the migration.
#[test]
fn migration_0005_fills_last_events_from_the_log() {
    let d = tempfile::tempdir().unwrap();
    let mut a = Bench::new(d.path(), "a");
    a.must(world());
    a.must(vec![
        register(1),
        check_in(1, "BX1", 0, 0),
        check_out(1, "Dr. Ito"),
        register(2),
        check_in(2, "BX1", 0, 1),
    ]);
    a.must(vec![EventBody::ContainerMoved {
        container: cid("BX2"),
        from: Some(kura_domain::Placement {
            parent: cid("R1"),
            pos: Some(Pos::new(0, 1)),
        }),
        to: kura_domain::Placement {
            parent: cid("R1"),
            pos: Some(Pos::new(2, 2)),
        },
    }]);
    let before = a.projection();
    drop(a);
    // Undo 0005 (and what came after it) as if the database had been written by the version
    // before it.
    let c = rusqlite::Connection::open(d.path().join("a.sqlite3")).unwrap();
    c.execute_batch(
        "DROP TABLE bundles_posted; DROP TABLE parcels; DROP TABLE held; DROP TABLE delivered;
         ALTER TABLE sync_state DROP COLUMN parcel_cursor; ALTER TABLE sync_state DROP COLUMN parcel_at;
         ALTER TABLE sync_state DROP COLUMN follow_up_seq;
         DROP TABLE workstation_key; DROP TABLE trusted_keys; DROP TABLE bundles;
         ALTER TABLE sync_state DROP COLUMN restored_at;
         DROP TABLE order_relearn; DROP TABLE stream_refused; ALTER TABLE sync_state DROP COLUMN relearn;
         DROP TABLE event_order; DROP TABLE stream_gaps; DROP TABLE conflicts; DROP TABLE undo;
         ALTER TABLE specimens DROP COLUMN last_event; ALTER TABLE containers DROP COLUMN last_event;
         ALTER TABLE sync_state DROP COLUMN site; ALTER TABLE sync_state DROP COLUMN registry_ca;
         ALTER TABLE sync_state DROP COLUMN clock_skew_us; ALTER TABLE sync_state DROP COLUMN last_attempt;
         ALTER TABLE sync_state DROP COLUMN last_error_code; ALTER TABLE sync_state DROP COLUMN stopped;
         DROP TABLE users; DROP TABLE signatures; DROP TABLE withdrawals; DROP TABLE shipments;
         DELETE FROM schema_migrations WHERE version >= 5;",
    )
    .unwrap();
    drop(c);
    let mut a = Bench::new(d.path(), "a");
    assert_eq!(a.projection(), before);
    a.verify_ok();
}

/// The same tables with benches that were never enrolled (no undo images): a pull that must go
/// before their events refolds the whole projection instead of rebasing, with the same result.
#[test]
fn both_ways() {
    if !enrolled() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--test-threads", "1", "--skip", "both_ways"])
        .env("KURA_TEST_UNENROLLED", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bench's own acknowledged events right after the cursor move it: nothing else of the site
/// can be there. A bench that pushed a million events does not page through them again; an
/// event of another bench in between stops it until pulled.
#[test]
fn the_cursor_moves_over_own_events_and_stops_at_anothers() {
    let d = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (Bench::new(d.path(), "a"), Bench::new(d.path(), "b"));
    let mut reg = Order::default();
    a.must(world());
    reg.push(&mut a);
    let st = a.store.sync_state().unwrap();
    assert_eq!(st.pull_cursor, reg.log.len() as u64, "over its own events");
    b.must(vec![create("SITE2", "site", None, None)]);
    reg.push(&mut b); // b has not pulled: its event sits after a's
    a.must(vec![register(1)]);
    reg.push(&mut a);
    let st = a.store.sync_state().unwrap();
    assert_eq!(st.pull_cursor, 6, "stopped before b's event");
    reg.pull(&mut a);
    assert_eq!(
        a.store.sync_state().unwrap().pull_cursor,
        reg.log.len() as u64
    );
    a.verify_ok();
}

/// Going back one released schema: what undoes migration `n` (to schema `n - 1`).
const UNDO: &[(i64, &str)] = &[
    (
        16,
        "DROP TABLE bundles_posted; DROP TABLE parcels; DROP TABLE held; DROP TABLE delivered;
         ALTER TABLE sync_state DROP COLUMN parcel_cursor; ALTER TABLE sync_state DROP COLUMN parcel_at;
         ALTER TABLE sync_state DROP COLUMN follow_up_seq;",
    ),
    (
        15,
        "DROP TABLE workstation_key; DROP TABLE trusted_keys; DROP TABLE bundles;
         ALTER TABLE shipments DROP COLUMN incoming;",
    ),
    (14, "DROP TABLE shipments;"),
    (
        13,
        "ALTER TABLE users DROP COLUMN signing_key; ALTER TABLE users DROP COLUMN key_salt;",
    ),
    (12, "ALTER TABLE event_order DROP COLUMN placed_at;"),
    (11, "ALTER TABLE sync_state DROP COLUMN restored_at;"),
    (
        10,
        "DROP TABLE order_relearn; DROP TABLE stream_refused; ALTER TABLE sync_state DROP COLUMN relearn;",
    ),
    (9, "DROP INDEX conflicts_open;"),
    (8, "DROP TABLE withdrawals;"),
    (7, "DROP TABLE signatures;"),
    (6, "DROP TABLE users;"),
    (
        5,
        "DROP TABLE event_order; DROP TABLE stream_gaps; DROP TABLE conflicts; DROP TABLE undo;
         ALTER TABLE specimens DROP COLUMN last_event; ALTER TABLE containers DROP COLUMN last_event;
         ALTER TABLE sync_state DROP COLUMN site; ALTER TABLE sync_state DROP COLUMN registry_ca;
         ALTER TABLE sync_state DROP COLUMN clock_skew_us; ALTER TABLE sync_state DROP COLUMN last_attempt;
         ALTER TABLE sync_state DROP COLUMN last_error_code; ALTER TABLE sync_state DROP COLUMN stopped;",
    ),
    (
        4,
        "DROP TABLE sync_rejections; DROP TABLE sync_state;
         CREATE TABLE outbox (event INTEGER PRIMARY KEY REFERENCES events(id));
         INSERT INTO outbox (event) SELECT id FROM events;",
    ),
    (3, "DROP INDEX specimens_due;"),
    (2, "DROP TABLE label_prints;"),
];

/// A database as text SQL: its schema and every row, in a form `execute_batch` reads back.
fn dump(c: &rusqlite::Connection) -> String {
    use rusqlite::types::ValueRef;
    let mut out = String::from("PRAGMA foreign_keys=OFF;\nBEGIN;\n");
    let objects: Vec<(String, String, String)> = c
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (ty, name, sql) in &objects {
        if ty == "table" && name != "sqlite_sequence" {
            out.push_str(&format!("{sql};\n"));
        }
    }
    let mut tables: Vec<&str> = objects
        .iter()
        .filter(|o| o.0 == "table")
        .map(|o| o.1.as_str())
        .collect();
    tables.sort();
    for t in tables {
        let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let vals: Vec<String> = (0..n)
                .map(|i| match r.get_ref(i).unwrap() {
                    ValueRef::Null => "NULL".into(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => format!("{v:?}"),
                    ValueRef::Text(t) => {
                        format!("'{}'", String::from_utf8_lossy(t).replace('\'', "''"))
                    }
                    ValueRef::Blob(b) => format!("X'{}'", kura_proto_hex(b)),
                })
                .collect();
            out.push_str(&format!(
                "INSERT INTO \"{t}\" VALUES({});\n",
                vals.join(",")
            ));
        }
    }
    for (ty, _, sql) in &objects {
        if ty != "table" {
            out.push_str(&format!("{sql};\n"));
        }
    }
    out.push_str("COMMIT;\n");
    out
}

fn kura_proto_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn fixture_path(version: i64) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schemas")
        .join(format!("bench-{version:04}.sql"))
}

/// The columns of every table and the names of every index: what a migrated database must
/// share with a new one.
fn shape(c: &rusqlite::Connection) -> Vec<String> {
    let mut out: Vec<String> = c
        .prepare(
            "SELECT m.type || ' ' || m.name || coalesce(' ' || (SELECT group_concat(p.name || ':' || p.type, ',')
               FROM pragma_table_info(m.name) p), '')
             FROM sqlite_master m WHERE m.name NOT LIKE 'sqlite_%' ORDER BY m.type, m.name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    out.sort();
    out
}

/// Every released bench schema has a committed fixture database (text SQL under
/// tests/fixtures/schemas): the current build opens it, migrates it to the newest schema, which
/// then has the shape of a new database, and `verify` passes with the same projection as the
/// same events recorded now. (`KURA_BLESS=1` writes the fixtures: a workload of custody events
/// that every schema knows, recorded now, with the later migrations taken off one by one; the
/// schema of each is exactly that release's, since released migrations are never edited.)
#[test]
fn every_released_schema_migrates_and_verifies() {
    let d = tempfile::tempdir().unwrap();
    let mut a = Bench::alone(d.path(), "workload");
    a.must(world());
    a.must(vec![
        register(1),
        check_in(1, "BX1", 0, 0),
        register(2),
        check_in(2, "BX1", 0, 1),
        check_out(2, "Dr. Ito"),
        register(3),
        check_in(3, "BX2", 1, 1),
    ]);
    // (Facts without the event ids: the fixtures' events were recorded once, not now.)
    let facts = |b: &Bench| -> Vec<String> {
        b.projection()
            .into_iter()
            .map(|f| f.rsplit_once('|').map_or(f.clone(), |(x, _)| x.to_string()))
            .collect()
    };
    let want = facts(&a);
    let known = kura_store::newest_schema();
    if std::env::var_os("KURA_BLESS").is_some() {
        drop(a);
        let c = rusqlite::Connection::open(d.path().join("workload.sqlite3")).unwrap();
        c.execute_batch("PRAGMA journal_mode=DELETE;").unwrap();
        std::fs::create_dir_all(fixture_path(1).parent().unwrap()).unwrap();
        for v in (1..=known).rev() {
            std::fs::write(fixture_path(v), dump(&c)).unwrap();
            if let Some((_, undo)) = UNDO.iter().find(|u| u.0 == v) {
                c.execute_batch(undo).unwrap();
                c.execute("DELETE FROM schema_migrations WHERE version >= ?1", [v])
                    .unwrap();
            }
        }
    }
    let fresh = Bench::alone(d.path(), "fresh");
    let fresh_shape = shape(&rusqlite::Connection::open(&fresh.path).unwrap());
    for v in 1..=known {
        let text = std::fs::read_to_string(fixture_path(v)).unwrap_or_else(|_| {
            panic!(
                "schema {v} is released but has no fixture {}: run this test once with KURA_BLESS=1",
                fixture_path(v).display()
            )
        });
        let path = d.path().join(format!("schema-{v}.sqlite3"));
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(&text).unwrap();
            let at: i64 = c
                .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(at, v, "fixture {v} is at schema {v}");
        }
        #[cfg(unix)]
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let mut b = Bench {
            store: Store::open(&path, Uuid::now_v7).unwrap_or_else(|e| panic!("schema {v}: {e}")),
            path: path.clone(),
            clock: 100,
        };
        b.verify_ok();
        assert_eq!(facts(&b), want, "schema {v}: the same custody");
        assert_eq!(
            shape(&rusqlite::Connection::open(&path).unwrap()),
            fresh_shape,
            "schema {v} migrated has the shape of a new database"
        );
        // And it records on.
        b.must(vec![register(4), check_in(4, "BX1", 2, 2)]);
        b.verify_ok();
    }
}
