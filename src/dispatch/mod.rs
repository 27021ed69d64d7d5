//! The dispatch stage of the pipeline (source → map → dispatch → target): when a unit of
//! work may start and how many may be out at once, for bench scenarios and import phases
//! alike. `schedule` fixes send times in advance (open model, capped rate), `timer`
//! sleeps to them with microsecond precision, `pacer` hands out each unit's slot by one
//! of those plans, `engine` runs units on a fixed set of lanes (a benchmark's
//! connections, the import's users), `inflight` bounds the tasks of the phases that fan
//! out work of their own. Nothing here parses input or knows what a unit is.

pub(crate) mod engine;
pub(crate) mod inflight;
pub(crate) mod pacer;
pub mod schedule;
pub(crate) mod timer;

pub use inflight::InFlight;
pub(crate) use pacer::Pacer;
