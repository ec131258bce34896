//! Random sequences of valid and invalid custody commands: afterwards the projection equals a
//! rebuild from the log, the hash chain verifies, no position holds two specimens, and every
//! refused command wrote nothing.

mod common;

use std::collections::HashSet;

use common::{bench, register};
use kura_app::{CheckOut, FindQuery, Kura};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Cmd {
    CheckIn(usize, usize, Option<(u8, u8)>),
    CheckOut(Vec<usize>),
    Return(usize, bool),
    Move(usize, usize, Option<(u8, u8)>),
    Thaw(usize),
    Consume(usize),
    Dispose(usize),
    Block(usize),
    Unblock(usize),
    MoveBox(usize, (u8, u8)),
    FillBox(usize, Vec<usize>),
}

const BOXES: [&str; 4] = ["BX1", "BX2", "SMALL", "R1"];

fn pos_label(p: (u8, u8)) -> String {
    // Only the first rows and columns, so that collisions are common; row 9 is outside a 9x9 box.
    format!("{}{}", (b'A' + p.0) as char, p.1 + 1)
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let s = 0usize..12;
    let b = 0usize..4;
    let p = proptest::option::of((0u8..3, 0u8..3));
    prop_oneof![
        4 => (s.clone(), b.clone(), p.clone()).prop_map(|(s, b, p)| Cmd::CheckIn(s, b, p)),
        2 => proptest::collection::vec(s.clone(), 1..4).prop_map(Cmd::CheckOut),
        2 => (s.clone(), any::<bool>()).prop_map(|(s, t)| Cmd::Return(s, t)),
        2 => (s.clone(), b.clone(), p).prop_map(|(s, b, p)| Cmd::Move(s, b, p)),
        1 => s.clone().prop_map(Cmd::Thaw),
        1 => s.clone().prop_map(Cmd::Consume),
        1 => s.clone().prop_map(Cmd::Dispose),
        1 => s.clone().prop_map(Cmd::Block),
        1 => s.clone().prop_map(Cmd::Unblock),
        1 => (b.clone(), (0u8..5, 0u8..4)).prop_map(|(b, p)| Cmd::MoveBox(b, p)),
        1 => (b, proptest::collection::vec(s, 1..5)).prop_map(|(b, v)| Cmd::FillBox(b, v)),
    ]
}

fn run(k: &mut Kura, codes: &[String], c: &Cmd) -> Result<(), kura_app::AppError> {
    let out = CheckOut {
        to: "Lab 2".into(),
        purpose: "qc".into(),
        due: None,
        note: None,
    };
    match c {
        Cmd::CheckIn(s, b, p) => k
            .check_in(&codes[*s], BOXES[*b], p.map(pos_label).as_deref())
            .map(|_| ()),
        Cmd::CheckOut(v) => k
            .check_out(
                &v.iter().map(|i| codes[*i].clone()).collect::<Vec<_>>(),
                &out,
            )
            .map(|_| ()),
        Cmd::Return(s, t) => k.return_specimen(&codes[*s], *t).map(|_| ()),
        Cmd::Move(s, b, p) => k
            .move_specimen(&codes[*s], BOXES[*b], p.map(pos_label).as_deref())
            .map(|_| ()),
        Cmd::Thaw(s) => k.thaw(&codes[*s]),
        Cmd::Consume(s) => k.consume(&codes[*s], Some("0.1"), Some("mL"), false),
        Cmd::Dispose(s) => k.dispose(&codes[*s], "test").map(drop),
        Cmd::Block(s) => k.block(&codes[*s], "test"),
        Cmd::Unblock(s) => k.unblock(&codes[*s], "test").map(drop),
        Cmd::MoveBox(b, (r, c)) => {
            k.move_container(BOXES[*b], "R1", Some(&format!("{}-{}", r + 1, c + 1)))
        }
        Cmd::FillBox(b, v) => k
            .check_in_box(
                BOXES[*b],
                &v.iter().map(|i| codes[*i].clone()).collect::<Vec<_>>(),
            )
            .map(|_| ()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn projection_always_equals_rebuild(cmds in proptest::collection::vec(cmd(), 1..60)) {
        let mut b = bench();
        let k = &mut b.kura;
        let r = register(k, 11);
        let mut codes = vec![r.parent.clone()];
        codes.extend(r.aliquots.clone());
        for c in &cmds {
            let before = k.stats().unwrap().events;
            let result = run(k, &codes, c);
            let after = k.stats().unwrap().events;
            if std::env::var_os("PROP_DEBUG").is_some() { eprintln!("{c:?} -> {:?}", result.as_ref().map_err(|e| e.code())); }
            if let Err(e) = &result {
                prop_assert_eq!(before, after, "refused {:?} ({}) wrote events", c, e);
            } else {
                prop_assert!(after > before, "{:?} succeeded without an event", c);
            }
        }
        // No position holds two specimens (checked-out ones keep theirs reserved).
        let all = k.find(&FindQuery { limit: 1000, ..Default::default() }).unwrap();
        let mut seen = HashSet::new();
        for s in &all {
            if let (Some(c), Some(r), Some(col)) = (&s.container, s.row, s.col) {
                prop_assert!(seen.insert((c.clone(), r, col)), "{} shares {} {:?}", s.code, c, s.position);
            }
        }
        let report = k.verify(&mut |_, _| {}).unwrap();
        prop_assert!(report.ok(), "{:?}", report.problems);
    }
}
