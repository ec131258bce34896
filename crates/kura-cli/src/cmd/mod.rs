//! The commands, one file per group, each with its `Cmd` and its `run`.

pub mod custody;
pub mod database;
pub mod find;
pub mod labels;
pub mod people;
pub mod records;
pub mod shipping;
pub mod storage;
pub mod sync;
