//! `scimload bench` and `scimload report`: from arguments to a run (against the given
//! target or an embedded server), its result directory, and an exit code — 1 when a
//! threshold was missed, distinct from a fatal error (2).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::{say, say_raw};
use crate::bench;
use crate::cli::{BenchArgs, ReportArgs, ReportFormat};
use crate::config;
use crate::metrics::threshold::{Metric, Threshold};
use crate::metrics::timeline::Timeline;
use crate::report::{self, compare::Comparison, ReportData, Run};
use crate::server::faults::FaultConfig;
use crate::server::{self, ServerConfig};

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
    let client = super::client_options(&a.connect, a.timeout)?;
    let run_id = a.run_id.clone().unwrap_or_else(clock_run_id);
    let cfg = config::bench_config(&a, client, run_id.clone(), std::time::SystemTime::now())?;
    let dir = a.report.clone().unwrap_or_else(|| {
        PathBuf::from("scimload-results").join(format!("bench-{}-{run_id}", a.scenario.name()))
    });
    let rt = super::runtime(None)?;
    let tty = std::io::stderr().is_terminal();
    let quiet = a.quiet;
    let shard = cfg.shard;
    let outcome = rt.block_on(async {
        let mut cfg = cfg;
        if let Some(addr) = a.metrics_listen {
            let live = crate::metrics::live::Live::new(
                "bench",
                &cfg.run_id,
                &format!("{}/{}", cfg.shard.index + 1, cfg.shard.count),
            );
            let bound = crate::metrics::live::serve(addr, live.clone()).await?;
            if !quiet {
                eprintln!("scimload: live metrics at http://{bound}/metrics");
            }
            cfg.live = Some(live);
        }
        let embedded = match &a.target {
            Some(t) => {
                cfg.base_url = t.trim_end_matches('/').to_string();
                None
            }
            None => {
                let h = server::spawn(
                    ServerConfig {
                        token: super::embedded_token(&cfg.client),
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
        // On a runtime worker, not in block_on on this thread: the aggregator is woken
        // by every sample batch, and waking a thread parked in block_on costs a futex.
        let r = tokio::spawn(async move { bench::run(&cfg, progress).await })
            .await
            .context("the benchmark task failed")?;
        if tty && !quiet {
            eprintln!();
        }
        if let Some(h) = embedded {
            h.shutdown().await;
        }
        anyhow::Ok(r?)
    });
    // A target given in SCIM_TARGET (a Secret, in Kubernetes) is kept out of what this
    // command prints; summary.json, in the result directory, still records it.
    let hidden = a
        .target
        .as_ref()
        .filter(|t| std::env::var("SCIM_TARGET").ok().as_ref() == Some(*t))
        .map(|t| t.trim_end_matches('/').to_string());
    let redact = |text: String| match &hidden {
        Some(t) => text.replace(t.as_str(), "$SCIM_TARGET"),
        None => text,
    };
    let (summary, timeline) = match outcome {
        Ok(r) => r,
        Err(e) => {
            let text = redact(format!("{e:#}"));
            // A merge waiting for this shard learns it failed instead of waiting out.
            if a.report.is_some() {
                bench::write_failure(
                    &dir,
                    &run_id,
                    &format!("{}/{}", shard.index + 1, shard.count),
                    &text,
                );
            }
            bail!(text);
        }
    };
    bench::write_results(&dir, &summary, &timeline)?;
    write_reports(
        &dir,
        Run::Bench(Box::new(summary.clone())),
        &timeline,
        &a.slo,
    )?;
    if a.json {
        say(&serde_json::to_string_pretty(&summary)?)?;
    } else {
        say_raw(&redact(summary.human()))?;
        say(&format!(
            "  results (interval log, summary.json, report.html) in {}",
            dir.display()
        ))?;
    }
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The SLO of a report's capacity section.
fn report_slo(text: &str) -> anyhow::Result<Threshold> {
    let slo = Threshold::parse(text)
        .map_err(anyhow::Error::msg)
        .context("bad --slo")?;
    if !matches!(slo.metric, Metric::Quantile(_)) || slo.op.is_some() {
        bail!("--slo must bound a percentile of all requests, e.g. p99<300ms");
    }
    Ok(slo)
}

/// Writes report.json, report.md and report.html next to a run's results.
pub(crate) fn write_reports(dir: &Path, run: Run, tl: &Timeline, slo: &str) -> anyhow::Result<()> {
    let data = ReportData::build(&run, tl, &report_slo(slo)?);
    report::write_all(dir, &data)?;
    Ok(())
}

pub fn report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let slo = report_slo(&a.slo)?;
    let format = if a.json { ReportFormat::Json } else { a.format };
    if let Some(pair) = &a.compare {
        let [base_dir, new_dir] = pair.as_slice() else {
            bail!("--compare takes two result directories: BASE NEW");
        };
        let build = |d: &PathBuf| -> anyhow::Result<ReportData> {
            let (run, tl) = report::open(std::slice::from_ref(d), &[])?;
            Ok(ReportData::build(&run, &tl, &slo))
        };
        let (base, new) = (build(base_dir)?, build(new_dir)?);
        let cmp = Comparison::of(&base, &new, a.tolerance, a.min_delta.as_secs_f64() * 1000.0);
        if let Some(out) = &a.out {
            report::write(out, "compare.json", &serde_json::to_vec_pretty(&cmp)?)?;
            report::write(
                out,
                "compare.md",
                report::markdown::comparison(&cmp).as_bytes(),
            )?;
            report::write(
                out,
                "compare.html",
                report::html::comparison(&cmp, &base, &new)?.as_bytes(),
            )?;
        }
        match format {
            ReportFormat::Terminal => say_raw(&report::terminal::comparison(&cmp))?,
            ReportFormat::Json => say(&serde_json::to_string_pretty(&cmp)?)?,
            ReportFormat::Markdown => say_raw(&report::markdown::comparison(&cmp))?,
            ReportFormat::Html => say_raw(&report::html::comparison(&cmp, &base, &new)?)?,
        }
        return Ok(if a.fail_on_regression && cmp.regressions > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    let dirs = match a.shards {
        None => a.dirs.clone(),
        Some(0) => bail!("--shards 0: a run has at least one shard; give the Job's completions"),
        Some(n) => {
            let [root] = a.dirs.as_slice() else {
                bail!("--shards takes the one directory the shards write under, e.g. --shards {n} /results/RUN");
            };
            let dirs = report::shards::gather(root, n, a.wait, std::time::Duration::from_secs(2))?;
            eprintln!("scimload: all {n} shards complete under {}", root.display());
            dirs
        }
    };
    let (run, tl) = report::open(&dirs, &config::thresholds(&a.thresholds)?)?;
    let data = ReportData::build(&run, &tl, &slo);
    if let Some(out) = &a.out {
        if let (Run::Bench(s), true) = (&run, dirs.len() > 1) {
            bench::write_results(out, s, &tl)?;
        }
        report::write_all(out, &data)?;
    }
    match format {
        ReportFormat::Terminal => {
            say_raw(&report::terminal::report(&data))?;
            if let Some(out) = &a.out {
                say(&format!(
                    "report.html, report.md and report.json written to {}",
                    out.display()
                ))?;
            }
        }
        ReportFormat::Json => say(&serde_json::to_string_pretty(&data)?)?,
        ReportFormat::Markdown => say_raw(&report::markdown::report(&data))?,
        ReportFormat::Html => say_raw(&report::html::report(&data)?)?,
    }
    Ok(if data.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
