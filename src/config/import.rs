//! The import's plan from its flags: defaults that depend on the dialect, the target or
//! other flags (lookup, /Bulk, member batch, state path, the inbound endpoint's limits),
//! and the combinations refused before a row is read. Pure, so each rule has a test.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::ConfigError;
use crate::cli::ImportArgs;
use crate::client::dialect::DialectName;
use crate::client::{ClientOptions, RetryPolicy};
use crate::import::config::{BulkMode, ImportConfig, Interrupt, Lookup, Missing};
use crate::limits::{Preset, TargetLimits};
use crate::metrics::live::Live;

/// Flags that would be ignored or cannot work together, refused before anything is read.
pub fn check_import_args(a: &ImportArgs) -> Result<(), ConfigError> {
    if a.emit.is_some() && !a.dry_run {
        return Err(ConfigError::EmitWithoutDryRun);
    }
    if a.dry_run {
        return Ok(());
    }
    if a.inbound_status.is_some() && a.dialect != DialectName::EntraInbound {
        return Err(ConfigError::InboundStatusWithoutInbound);
    }
    if (a.delete_missing || a.deactivate_missing) && import_state_path(a).is_none() {
        return Err(ConfigError::MissingWithoutState);
    }
    Ok(())
}

/// A file the import writes: the flag's path, else `name` in `--report`'s directory.
pub fn import_report_file(a: &ImportArgs, flag: Option<&PathBuf>, name: &str) -> Option<PathBuf> {
    flag.cloned()
        .or_else(|| a.report.as_ref().map(|d| d.join(name)))
}

/// `--state`, else beside the export when there is a target (a rerun then resumes
/// without being told); the embedded server lives as long as the import, so it has none.
pub fn import_state_path(a: &ImportArgs) -> Option<PathBuf> {
    a.state.clone().or_else(|| {
        a.target.as_ref().map(|_| {
            let mut p = a.export.file.clone().into_os_string();
            p.push(".scimload-state.sqlite");
            PathBuf::from(p)
        })
    })
}

/// What every request is paced under: `--target-limits` with `--limit` added; the
/// inbound endpoint's own (40 requests/s) when no preset is named.
pub fn import_limits(a: &ImportArgs) -> TargetLimits {
    let preset = match a.target_limits {
        Preset::None if a.dialect == DialectName::EntraInbound => Preset::EntraInbound,
        p => p,
    };
    preset.limits().with(a.limits.clone())
}

/// The whole plan, once the target's URL is known (the embedded server's is known only
/// after it listens) and the live-metrics listener, if any, is up.
pub fn import_config(
    a: &ImportArgs,
    client: ClientOptions,
    base_url: String,
    live: Option<Arc<Live>>,
) -> ImportConfig {
    let dialect = a.dialect.table();
    ImportConfig {
        base_url,
        client,
        // Under a service's concurrency cap (okta) in import::run.
        concurrency: a.concurrency.max(1) as usize,
        // Providers that look a user up before every create are emulated as they are.
        lookup: a.lookup.unwrap_or(if dialect.lookup_before_create {
            Lookup::Always
        } else {
            Lookup::OnConflict
        }),
        dialect,
        retry: RetryPolicy {
            max_attempts: a.max_attempts.max(1),
            ..RetryPolicy::default()
        },
        timeout: a.timeout,
        member_batch: a
            .member_batch
            .map_or(dialect.member_add_batch, |b| b.max(1) as usize),
        rejects: import_report_file(a, a.rejects.as_ref(), "rejects.csv"),
        failed: import_report_file(a, a.failed.as_ref(), "failed.csv"),
        state: import_state_path(a),
        rate: a.rate,
        adaptive: !a.no_adaptive,
        // /Bulk is RFC 7644 §3.7, which no identity provider's dialect sends.
        bulk: a.bulk.unwrap_or(if a.dialect == DialectName::Generic {
            BulkMode::Auto
        } else {
            BulkMode::Never
        }),
        bulk_size: a.bulk_size.map(|b| b.max(1) as usize),
        bulk_in_flight: a.bulk_in_flight.max(1) as usize,
        missing: if a.delete_missing {
            Missing::Delete
        } else if a.deactivate_missing {
            Missing::Deactivate
        } else {
            Missing::Keep
        },
        missing_limit: a.missing_limit,
        interrupt: Some(Arc::new(Interrupt::default())),
        schema_check: a.schema_check,
        verify: a.verify,
        bulk_trial: Duration::from_millis(1500),
        limits: import_limits(a),
        live,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(flags: &[&str]) -> ImportArgs {
        let argv = ["scimload", "import", "hr.csv"].iter().chain(flags);
        match Cli::try_parse_from(argv).expect("flags parse").command {
            Command::Import(a) => *a,
            _ => unreachable!("an import command"),
        }
    }

    fn plan(flags: &[&str]) -> ImportConfig {
        let a = args(flags);
        check_import_args(&a).expect("a valid combination");
        import_config(&a, ClientOptions::default(), "http://t".into(), None)
    }

    #[test]
    fn refused_combinations_say_what_to_change() {
        for (flags, says) in [
            (&["--emit", "p.ndjson"][..], "add --dry-run"),
            (
                &["--inbound-status", "http://s"][..],
                "--dialect entra-inbound",
            ),
            (&["--delete-missing"][..], "give --state"),
            (&["--deactivate-missing"][..], "give --state"),
        ] {
            let e = check_import_args(&args(flags))
                .expect_err("refused")
                .to_string();
            assert!(e.contains(says), "{flags:?}: {e}");
        }
        // With a target the state file has a default, so missing users can be compared.
        check_import_args(&args(&["--delete-missing", "--target", "http://t"])).unwrap();
        check_import_args(&args(&["--emit", "p.ndjson", "--dry-run"])).unwrap();
    }

    #[test]
    fn defaults_follow_the_dialect() {
        let generic = plan(&[]);
        assert_eq!(
            (generic.lookup, generic.bulk),
            (Lookup::OnConflict, BulkMode::Auto)
        );
        assert_eq!(generic.member_batch, generic.dialect.member_add_batch);
        for d in ["entra", "okta"] {
            let p = plan(&["--dialect", d]);
            assert_eq!(p.bulk, BulkMode::Never, "{d}");
            let want = if p.dialect.lookup_before_create {
                Lookup::Always
            } else {
                Lookup::OnConflict
            };
            assert_eq!(p.lookup, want, "{d}");
            assert_eq!(p.member_batch, p.dialect.member_add_batch, "{d}");
        }
        assert!(plan(&["--dialect", "entra"]).dialect.lookup_before_create);
        let own = plan(&[
            "--dialect",
            "entra",
            "--lookup",
            "never",
            "--bulk",
            "always",
            "--member-batch",
            "0",
        ]);
        assert_eq!(
            (own.lookup, own.bulk, own.member_batch),
            (Lookup::Never, BulkMode::Always, 1)
        );
    }

    #[test]
    fn files_default_beside_the_export_or_in_the_report() {
        assert_eq!(plan(&[]).state, None, "the embedded server keeps no state");
        let p = plan(&["--target", "http://t", "--report", "out"]);
        assert_eq!(p.state, Some(PathBuf::from("hr.csv.scimload-state.sqlite")));
        assert_eq!(p.rejects, Some(PathBuf::from("out/rejects.csv")));
        assert_eq!(p.failed, Some(PathBuf::from("out/failed.csv")));
        let p = plan(&["--state", "s.db", "--rejects", "r.csv", "--report", "out"]);
        assert_eq!(p.state, Some(PathBuf::from("s.db")));
        assert_eq!(p.rejects, Some(PathBuf::from("r.csv")));
    }

    #[test]
    fn the_inbound_endpoint_is_paced_at_its_own_limit_unless_a_preset_is_named() {
        let inbound = plan(&["--dialect", "entra-inbound"]);
        assert_eq!(inbound.limits.name, Preset::EntraInbound.limits().name);
        assert!(!inbound.limits.buckets.is_empty());
        assert!(plan(&[]).limits.buckets.is_empty());
        let named = plan(&["--dialect", "entra-inbound", "--target-limits", "slack"]);
        assert_eq!(named.limits.name, Preset::Slack.limits().name);
    }
}
