//! `scimload bench` and `scimload report`: from arguments to a run (against the given
//! target or an embedded server), its result directory, and an exit code — 1 when a
//! threshold was missed, distinct from a fatal error (2).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::{say, say_raw};
use crate::bench::engine::Model;
use crate::bench::knee::KneeConfig;
use crate::bench::scenario::{parse_mix, Params};
use crate::bench::threshold::{Metric, Threshold};
use crate::bench::{self, BenchConfig, Sweep};
use crate::cli::{BenchArgs, ReportArgs};
use crate::config;
use crate::server::faults::FaultConfig;
use crate::server::{self, ServerConfig};

fn thresholds(list: &[String]) -> anyhow::Result<Vec<Threshold>> {
    list.iter()
        .map(|t| Threshold::parse(t).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()
        .context("bad --threshold")
}

/// A run id from the clock: short, and distinct between runs a second apart.
fn clock_run_id() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut n = s % (36u64.pow(6));
    let mut out = Vec::new();
    for _ in 0..6 {
        out.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

pub fn bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(t) = &a.target {
        super::check_target(t)?;
    }
    let token = config::client_token(a.token_file.as_deref())?;
    let steps = match &a.steps {
        Some(list) => Some(
            list.split(',')
                .map(|r| crate::units::parse_rate(r.trim()))
                .collect::<Result<Vec<f64>, _>>()
                .map_err(anyhow::Error::msg)
                .context("bad --steps; give rates like 100,200,400")?,
        ),
        None => None,
    };
    if steps
        .as_ref()
        .is_some_and(|v| v.is_empty() || v.iter().any(|r| *r <= 0.0))
    {
        bail!("--steps needs rates above 0, like 100,200,400");
    }
    let knee = if a.find_knee || steps.is_some() {
        let slo = Threshold::parse(&a.slo)
            .map_err(anyhow::Error::msg)
            .context("bad --slo")?;
        if !matches!(slo.metric, Metric::Quantile(_)) || slo.op.is_some() {
            bail!("--slo must bound a percentile of all requests, e.g. p99<300ms");
        }
        if a.closed {
            bail!("--find-knee and --steps drive the open model; drop --closed");
        }
        Some(Sweep {
            judge: KneeConfig {
                slo,
                error_budget: a.error_budget,
                start_rate: a.knee_start.max(1.0),
                max_rate: a.knee_max.max(a.knee_start),
                precision: 0.05,
            },
            step: a.step_duration,
            rates: steps,
        })
    } else {
        None
    };
    let run_id = a.run_id.clone().unwrap_or_else(clock_run_id);
    if run_id.is_empty() || !run_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("--run-id '{run_id}': use letters and digits only (it goes into userNames)");
    }
    let cfg = BenchConfig {
        scenario: a.scenario,
        params: Params {
            users: a.users.max(1),
            page_size: a.page_size.max(1),
            paging: a.paging.unwrap_or(crate::bench::scenario::Paging::Index),
            group_size: a.group_size.max(1),
            member_batch: a.member_batch.max(1),
            dialect: a.dialect,
            mix: parse_mix(&a.mix)
                .map_err(anyhow::Error::msg)
                .context("bad --mix")?,
        },
        paging_chosen: a.paging.is_some(),
        base_url: String::new(),
        token,
        timeout: a.timeout,
        model: if a.closed {
            Model::Closed
        } else {
            Model::Open {
                shape: a.ramp.unwrap_or(a.rate),
                poisson: a.poisson.then_some(a.seed),
            }
        },
        connections: a.connections.max(1) as usize,
        warmup: a.warmup,
        duration: a.duration,
        max_requests: a.requests,
        shard: a.shard.unwrap_or_default(),
        run_id: run_id.clone(),
        cleanup: a.cleanup,
        knee,
        thresholds: thresholds(&a.thresholds)?,
        interval: a.interval.max(std::time::Duration::from_millis(100)),
    };
    let dir = a.report.clone().unwrap_or_else(|| {
        PathBuf::from("scimload-results").join(format!("bench-{}-{run_id}", a.scenario.name()))
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let tty = std::io::stderr().is_terminal();
    let quiet = a.quiet;
    let (summary, timeline) = rt.block_on(async {
        let mut cfg = cfg;
        let embedded = match &a.target {
            Some(t) => {
                cfg.base_url = t.trim_end_matches('/').to_string();
                None
            }
            None => {
                let h = server::spawn(
                    ServerConfig {
                        token: cfg.token.as_ref().map(|t| t.expose().to_string()),
                        faults: FaultConfig::from(&a.faults),
                        ..ServerConfig::default()
                    },
                    "127.0.0.1:0".parse()?,
                )
                .await?;
                if !quiet {
                    eprintln!(
                        "scimload: no --target: benchmarking the embedded SCIM server at {}",
                        h.url()
                    );
                }
                cfg.base_url = h.url();
                Some(h)
            }
        };
        let progress: bench::engine::Progress = if quiet {
            None
        } else if tty {
            Some(Box::new(|l: &str| eprint!("\r\x1b[2K{l}")))
        } else {
            Some(Box::new(|l: &str| eprintln!("scimload: {l}")))
        };
        let r = bench::run(&cfg, progress).await;
        if tty && !quiet {
            eprintln!();
        }
        if let Some(h) = embedded {
            h.shutdown().await;
        }
        anyhow::Ok(r?)
    })?;
    bench::write_results(&dir, &summary, &timeline)?;
    if a.json {
        say(&serde_json::to_string_pretty(&summary)?)?;
    } else {
        say_raw(&summary.human())?;
        say(&format!(
            "  results (interval log, summary.json) in {}",
            dir.display()
        ))?;
    }
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let parts = a
        .dirs
        .iter()
        .map(|d| bench::read_results(d))
        .collect::<Result<Vec<_>, _>>()?;
    let (summary, tl) = bench::merge(parts, &thresholds(&a.thresholds)?)?;
    if let Some(out) = &a.out {
        bench::write_results(out, &summary, &tl)?;
    }
    if a.json {
        say(&serde_json::to_string_pretty(&summary)?)?;
    } else {
        say_raw(&summary.human())?;
        if let Some(out) = &a.out {
            say(&format!("  merged results in {}", out.display()))?;
        }
    }
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
