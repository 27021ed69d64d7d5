//! The dispatch stage of the pipeline (source → map → dispatch → target): when a unit of
//! work may start and how many may be out at once, for bench scenarios and import phases
//! alike. `schedule` fixes send times in advance (open model, capped rate), `timer`
//! sleeps to them with microsecond precision, `pacer` hands out each unit's slot by one
//! of those plans, `inflight` bounds the tasks in flight. Nothing here parses input or
//! knows what a unit is.

pub(crate) mod inflight;
pub(crate) mod pacer;
pub mod schedule;
pub(crate) mod timer;

pub use inflight::InFlight;
pub(crate) use pacer::Pacer;
