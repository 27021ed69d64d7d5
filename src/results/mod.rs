//! Run records: what a bench run and an import leave in a result directory, their
//! writers and readers. Bench and import write them, report reads them; none of the
//! three needs another's code for that (DESIGN: samples → aggregator → results → report).

use serde::{Deserialize, Serialize};

pub mod bench;
pub mod import;
pub mod knee;

/// What ran on which machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub os: String,
    pub arch: String,
    pub cores: usize,
}

impl Machine {
    pub fn this() -> Self {
        Machine {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}
