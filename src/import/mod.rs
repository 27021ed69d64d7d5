//! `scimload import`: the input half of the pipeline (read, map, validate, deduplicate),
//! the dry run built on it, and the provisioning half as phases that `run` calls in
//! order — reader, users (the dispatcher), managers, sync (missing users), memberships,
//! readback — over the worker, the state and the reject sink.

mod bulk;
mod bulk_groups;
pub mod cleanup;
pub mod config;
pub(crate) mod dedup;
pub mod dry_run;
mod early_groups;
mod group_check;
mod groups;
mod ids;
pub mod inbound;
pub mod ingest;
mod managers;
mod memberships;
pub(crate) mod preflight;
pub(crate) mod readback;
mod reader;
pub(crate) mod rejects;
pub mod run;
mod screen;
pub(crate) mod state;
mod sync;
mod trial;
mod users;
mod worker;
