//! scimload: bulk-import HR exports into SCIM 2.0 service providers and load-test them
//! with correct latency measurement. The binary is a thin shell over this library.

pub mod bench;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod dispatch;
pub mod gen;
pub mod import;
pub mod limits;
pub mod mapping;
pub mod metrics;
pub mod oauth;
pub mod probe;
pub mod report;
pub mod results;
pub mod rng;
pub mod scim;
pub mod server;
pub mod source;
pub mod units;
