//! One integration-test binary (faster to link than one per file), with a module per
//! area. Fixtures live in tests/fixtures.

mod architecture;
mod bench;
mod cli;
mod client;
mod core_filter;
mod core_models;
mod core_patch;
mod engine;
mod fidelity;
mod fuzz_findings;
mod harness;
mod import;
mod inbound;
mod ingest;
mod limits;
mod plan;
mod probe;
mod report;
mod server_api;
mod server_faults;
mod server_limits;
mod server_profiles;
mod shards;
mod tls;
mod transport;
