//! The planner: what one sync round does, from what this bench holds and what the registry
//! says it holds. Pure (no IO, no clock): tested as a table of cases.

/// What the bench holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Local {
    /// This workstation's newest event.
    pub head_seq: u64,
    /// Its events up to here are answered by the registry (the high-water mark).
    pub pushed_seq: u64,
    /// Whether the bench's event at the registry's head seq has the registry's hash
    /// (`None` when the bench has no event of that seq, or the registry holds none).
    pub same_at_registry_head: Option<bool>,
    /// The site's `server_seq` pulled up to.
    pub pull_cursor: u64,
    /// Pushing stopped after a fork, until someone looks.
    pub stopped: bool,
    /// Serials left in the leases of each year that needs them (this year; next year in its
    /// last weeks).
    pub leases_left: Vec<(i32, u64)>,
    /// Below this many serials left, ask for another block …
    pub lease_low: u64,
    /// … of this size.
    pub lease_size: u64,
}

/// What the registry says it holds of this workstation and its site (`GET /api/v1/status`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registry {
    pub head_seq: u64,
    pub site_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// The histories differ: the registry holds another event under this workstation's seq
    /// (the bench was rebuilt, or recorded after coming back from a copy without syncing).
    /// Nothing is pushed; nothing is overwritten.
    Fork { registry: u64, local: u64 },
    /// The registry lost events (restored from an older copy): send them again.
    RewindPush { to: u64 },
    /// Push `from..=to` in bounded batches.
    Push { from: u64, to: u64 },
    /// Pull pages after the cursor until none is left. Every round pulls, an empty page when
    /// nothing is new: a pull names what the bench holds at its cursor, so it is where the bench
    /// learns the registry's order changed under it (restored from an older copy, even one that
    /// has grown back past the cursor).
    Pull { after: u64 },
    /// Ask for another block of serials.
    Lease { year: i32, count: u64 },
}

pub fn plan(l: &Local, r: &Registry) -> Vec<Op> {
    let mut ops = Vec::new();
    for &(year, left) in &l.leases_left {
        if left < l.lease_low {
            ops.push(Op::Lease {
                year,
                count: l.lease_size,
            });
        }
    }
    // The registry holds more of this workstation's stream than the bench (it came back from a
    // copy, or is a replacement PC): the pull brings the rest back (and tells a true fork by
    // the hash chain); nothing is pushed before.
    let behind = r.head_seq > l.head_seq;
    if l.same_at_registry_head == Some(false) {
        ops.push(Op::Fork {
            registry: r.head_seq,
            local: l.head_seq,
        });
    } else if !l.stopped && !behind {
        if r.head_seq < l.pushed_seq {
            ops.push(Op::RewindPush { to: r.head_seq });
        }
        // A lost acknowledgement: the registry holds more than the mark says; sending from the
        // mark gets duplicates, which say where the registry put them.
        let from = l.pushed_seq.min(r.head_seq) + 1;
        if from <= l.head_seq {
            ops.push(Op::Push {
                from,
                to: l.head_seq,
            });
        }
    }
    if r.site_seq > 0 || l.pull_cursor > 0 {
        ops.push(Op::Pull {
            after: l.pull_cursor,
        });
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(head: u64, pushed: u64, same: Option<bool>, cursor: u64) -> Local {
        Local {
            head_seq: head,
            pushed_seq: pushed,
            same_at_registry_head: same,
            pull_cursor: cursor,
            stopped: false,
            leases_left: vec![(2026, 800)],
            lease_low: 500,
            lease_size: 1000,
        }
    }
    fn reg(head: u64, site: u64) -> Registry {
        Registry {
            head_seq: head,
            site_seq: site,
        }
    }

    #[test]
    fn plans() {
        use Op::*;
        let cases: Vec<(&str, Local, Registry, Vec<Op>)> = vec![
            ("nothing to do", local(0, 0, None, 0), reg(0, 0), vec![]),
            (
                "new events, nothing from others",
                local(10, 4, Some(true), 7),
                reg(4, 7),
                vec![Push { from: 5, to: 10 }, Pull { after: 7 }],
            ),
            (
                "others wrote",
                local(10, 10, Some(true), 7),
                reg(10, 30),
                vec![Pull { after: 7 }],
            ),
            (
                "an acknowledgement was lost: resend from the mark",
                local(10, 4, Some(true), 0),
                reg(8, 8),
                vec![Push { from: 5, to: 10 }, Pull { after: 0 }],
            ),
            (
                "the registry lost events: rewind and resend",
                local(10, 10, Some(true), 20),
                reg(6, 12),
                vec![
                    RewindPush { to: 6 },
                    Push { from: 7, to: 10 },
                    Pull { after: 20 },
                ],
            ),
            (
                "the registry's order grew back past the cursor: the pull's check finds it",
                local(10, 10, Some(true), 20),
                reg(10, 20),
                vec![Pull { after: 20 }],
            ),
            (
                "the registry holds more than this bench wrote: restored bench",
                local(5, 5, None, 0),
                reg(9, 9),
                vec![Pull { after: 0 }],
            ),
            (
                "restored bench with events it had not pushed when copied: they come back too",
                local(5, 3, None, 4),
                reg(9, 9),
                vec![Pull { after: 4 }],
            ),
            (
                "same seq, other event: rebuilt bench",
                local(9, 9, Some(false), 9),
                reg(9, 9),
                vec![
                    Fork {
                        registry: 9,
                        local: 9,
                    },
                    Pull { after: 9 },
                ],
            ),
            (
                "stopped after a fork: pull only",
                Local {
                    stopped: true,
                    ..local(12, 9, Some(true), 3)
                },
                reg(9, 9),
                vec![Pull { after: 3 }],
            ),
            (
                "leases low for this year and next",
                Local {
                    leases_left: vec![(2026, 499), (2027, 0)],
                    ..local(0, 0, None, 0)
                },
                reg(0, 0),
                vec![
                    Lease {
                        year: 2026,
                        count: 1000,
                    },
                    Lease {
                        year: 2027,
                        count: 1000,
                    },
                ],
            ),
        ];
        for (what, l, r, want) in cases {
            assert_eq!(plan(&l, &r), want, "{what}");
        }
    }
}
