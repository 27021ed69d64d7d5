//! The benchmark's plan from its flags: the sweep (`--find-knee`, `--steps`) and its SLO,
//! the load model, the scenario's parameters, the run id, and the combinations refused
//! before anything is seeded. Pure (the clock is passed in), so each rule has a test.

use std::time::{Duration, SystemTime};

use super::ConfigError;
use crate::bench::engine::Model;
use crate::bench::knee::KneeConfig;
use crate::bench::scenario::{parse_mix, Kind, Paging, Params};
use crate::bench::{BenchConfig, Sweep};
use crate::cli::BenchArgs;
use crate::client::dialect::DialectName;
use crate::client::ClientOptions;
use crate::metrics::threshold::{Metric, Threshold};

/// `--threshold` values, each one a bound the run is judged by.
pub fn thresholds(list: &[String]) -> Result<Vec<Threshold>, ConfigError> {
    list.iter()
        .map(|t| Threshold::parse(t).map_err(|why| ConfigError::Flag("--threshold", why)))
        .collect()
}

/// `--steps 100,200,400`: fixed rates to step through, each above 0.
fn steps(list: &str) -> Result<Vec<f64>, ConfigError> {
    let rates = list
        .split(',')
        .map(|r| crate::units::parse_rate(r.trim()))
        .collect::<Result<Vec<f64>, _>>()
        .map_err(|why| {
            ConfigError::Flag("--steps", format!("{why}; give rates like 100,200,400"))
        })?;
    if rates.is_empty() || rates.iter().any(|r| *r <= 0.0) {
        return Err(ConfigError::Flag(
            "--steps",
            "rates must be above 0, like 100,200,400".into(),
        ));
    }
    Ok(rates)
}

/// A knee search or fixed steps, judged against `--slo`, which must bound a percentile
/// of all requests (the knee is where the whole mix stops meeting it).
fn sweep(a: &BenchArgs) -> Result<Option<Sweep>, ConfigError> {
    let rates = a.steps.as_deref().map(steps).transpose()?;
    if !a.find_knee && rates.is_none() {
        return Ok(None);
    }
    if a.scenario == Kind::GroupMembers {
        return Err(ConfigError::SweepOfGroupMembers);
    }
    let slo = Threshold::parse(&a.slo).map_err(|why| ConfigError::Flag("--slo", why))?;
    if !matches!(slo.metric, Metric::Quantile(_)) || slo.op.is_some() {
        return Err(ConfigError::Flag(
            "--slo",
            "it must bound a percentile of all requests, e.g. p99<300ms".into(),
        ));
    }
    if a.closed {
        return Err(ConfigError::SweepClosed);
    }
    Ok(Some(Sweep {
        judge: KneeConfig {
            slo,
            error_budget: a.error_budget,
            start_rate: a.knee_start.max(1.0),
            max_rate: a.knee_max.max(a.knee_start),
            precision: 0.05,
            max_send_lag_ms: a.max_send_lag.as_secs_f64() * 1000.0,
        },
        step: a.step_duration,
        rates,
    }))
}

/// The whole plan but the target's URL and the live-metrics handle, which the command
/// fills once the embedded server and the listener are up. `now` judges `--start-at`.
pub fn bench_config(
    a: &BenchArgs,
    client: ClientOptions,
    run_id: String,
    now: SystemTime,
) -> Result<BenchConfig, ConfigError> {
    let knee = sweep(a)?;
    if a.dialect == DialectName::EntraInbound {
        return Err(ConfigError::InboundBench);
    }
    if run_id.is_empty() || !run_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ConfigError::RunId(run_id));
    }
    let interval = a.interval.max(Duration::from_millis(100));
    // Refused before anything is seeded; checked again once seeding is done. Within one
    // interval is not "passed": shards started by one Job land a moment apart.
    if let Some(at) = a.start_at {
        if let Err(e) = at.duration_since(now) {
            if e.duration() > interval {
                return Err(ConfigError::StartAtPassed {
                    at: crate::units::rfc3339(at),
                    ago: e.duration().as_secs_f64(),
                });
            }
        }
    }
    Ok(BenchConfig {
        scenario: a.scenario,
        params: Params {
            users: a.users.max(1),
            page_size: a.page_size.max(1),
            paging: a.paging.unwrap_or(Paging::Index),
            group_size: a.group_size.max(1),
            member_batch: a.member_batch.max(1),
            dialect: a.dialect,
            mix: parse_mix(&a.mix).map_err(|why| ConfigError::Flag("--mix", why))?,
        },
        paging_chosen: a.paging.is_some(),
        base_url: String::new(),
        client,
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
        streams: a.streams.max(1) as usize,
        warmup: a.warmup,
        duration: a.duration,
        max_requests: a.requests,
        shard: a.shard.unwrap_or_default(),
        run_id,
        cleanup: a.cleanup,
        knee,
        thresholds: thresholds(&a.thresholds)?,
        interval,
        start_at: a.start_at,
        live: None,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(flags: &[&str]) -> BenchArgs {
        let argv = ["scimload", "bench"].iter().chain(flags);
        match Cli::try_parse_from(argv).expect("flags parse").command {
            Command::Bench(a) => *a,
            _ => unreachable!("a bench command"),
        }
    }

    fn plan(flags: &[&str]) -> Result<BenchConfig, ConfigError> {
        bench_config(
            &args(flags),
            ClientOptions::default(),
            "r1".into(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )
    }

    #[test]
    fn refused_plans_say_what_to_change() {
        for (flags, says) in [
            (
                &["get", "--steps", "100,x"][..],
                "give rates like 100,200,400",
            ),
            (&["get", "--steps", "100,0"][..], "above 0"),
            (&["group-members", "--find-knee"][..], "one --rate"),
            (
                &["get", "--find-knee", "--slo", "errors<1%"][..],
                "percentile",
            ),
            (&["get", "--find-knee", "--closed"][..], "drop --closed"),
            (&["get", "--dialect", "entra-inbound"][..], "import target"),
            (&["get", "--threshold", "p99<<1"][..], "--threshold"),
            (&["mixed", "--mix", "get=x"][..], "--mix"),
            // The clock above reads 2027-01-15T08:00:00Z; 2020 is years before it.
            (
                &["get", "--start-at", "2020-01-01T00:00:00Z"][..],
                "set a time ahead",
            ),
        ] {
            let e = plan(flags).expect_err("refused").to_string();
            assert!(e.contains(says), "{flags:?}: {e}");
        }
        let e = bench_config(
            &args(&["get"]),
            ClientOptions::default(),
            "a-b".into(),
            SystemTime::now(),
        );
        assert!(e
            .expect_err("refused")
            .to_string()
            .contains("letters and digits"));
    }

    #[test]
    fn a_sweep_and_the_model_follow_the_flags() {
        let single = plan(&["get", "--rate", "250"]).unwrap();
        assert!(single.knee.is_none());
        assert!(matches!(single.model, Model::Open { poisson: None, .. }));
        assert!(matches!(
            plan(&["get", "--closed"]).unwrap().model,
            Model::Closed
        ));
        let steps = plan(&["get", "--steps", "100, 200,400"]).unwrap();
        assert_eq!(steps.knee.unwrap().rates, Some(vec![100.0, 200.0, 400.0]));
        let knee = plan(&[
            "get",
            "--find-knee",
            "--knee-start",
            "500",
            "--knee-max",
            "100",
        ])
        .unwrap();
        let judge = knee.knee.unwrap().judge;
        assert_eq!(
            (judge.start_rate, judge.max_rate),
            (500.0, 500.0),
            "max raised to start"
        );
        // A start a moment ago (within one interval) is not refused: shards land apart.
        let at = |t: &str| plan(&["get", "--interval", "5s", "--start-at", t]);
        at("2027-01-15T07:59:58Z").expect("2 s ago, within one interval");
        at("2027-01-15T07:59:50Z").expect_err("10 s ago");
        at("2027-01-15T08:01:00Z").expect("ahead");
        let p = plan(&["get", "--interval", "1ms", "--connections", "0"]).unwrap();
        assert_eq!((p.interval, p.connections), (Duration::from_millis(100), 1));
    }
}
