//! Nothing here: the checks are in `tests/tidy.rs`. The crate stands apart from every crate it
//! reads, so that no crate carries the tests of the whole house.
