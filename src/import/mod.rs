//! `scimload import`: the input half of the pipeline (read, map, validate, deduplicate),
//! the dry run built on it, and the provisioning half (dispatcher, worker, groups, sync
//! of missing users, state, cleanup).

mod bulk;
mod bulk_groups;
pub mod cleanup;
pub mod config;
pub mod dedup;
pub mod dry_run;
mod group_check;
mod groups;
mod ids;
pub mod inbound;
pub mod ingest;
pub mod preflight;
pub mod readback;
pub mod run;
pub mod state;
mod sync;
mod worker;
