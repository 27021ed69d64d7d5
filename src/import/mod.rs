//! `scimload import`: the input half of the pipeline (read, map, validate, deduplicate)
//! and the dry run built on it.

pub mod cleanup;
pub mod dedup;
pub mod dry_run;
pub mod ingest;
pub mod run;
pub mod state;
