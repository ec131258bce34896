//! Test support shared by the conformance suite, the HTTP tests and the benchmark: the event
//! builders of [`kura_testkit`] (a bench's chained stream, custody bodies, a realistic workload)
//! and the registry's own: a site as enrollment gives it.
// Test support: a failure here is a broken test fixture, and a panic is the right report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub use kura_testkit::*;

use kura_proto::Site;

pub fn site(code: &str, prefix: &str) -> Site {
    Site {
        code: code.into(),
        name: format!("Biobank {code}"),
        prefix: prefix.into(),
        serial_width: 7,
    }
}
