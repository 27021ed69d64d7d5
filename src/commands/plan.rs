//! `scimload plan FILE --target-limits X`: the question an IT lead asks before a
//! migration — how long will onboarding this export into that service take? A dry run
//! counts what the import would send (users, managers, groups and their member PATCHes),
//! and the token-bucket arithmetic of `client::limits` spreads it under the service's
//! published limits. Nothing is sent.

use std::process::ExitCode;

use anyhow::Context;

use super::{say, say_raw};
use crate::cli::PlanArgs;
use crate::import::dry_run::{self, DryRunOptions, DryRunSummary};
use crate::import::ingest::IngestOptions;
use crate::limits::{self, ExportShape, Projection, TargetLimits};

/// The export's shape as a dry run counted it.
pub fn shape(d: &DryRunSummary) -> ExportShape {
    ExportShape {
        users: d.users,
        manager_patches: d.forward_managers.unwrap_or(d.users_with_manager),
        memberships: d.memberships,
        group_sizes: d.group_sizes.clone(),
    }
}

/// `1 h 05 min`, `5 min 27 s`, `12.4 s`.
pub fn duration_text(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        _ if secs < 60.0 => format!("{secs:.1} s"),
        _ if s < 3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ if s < 86_400 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {:02} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A bucket's window as its limit is quoted: `s`, `min`, `h`, or `150 s`.
fn window_text(secs: f64) -> String {
    match secs {
        1.0 => "s".into(),
        60.0 => "min".into(),
        3600.0 => "h".into(),
        _ => format!("{secs} s"),
    }
}

#[derive(serde::Serialize)]
struct Plan<'a> {
    file: String,
    users: u64,
    groups: u64,
    memberships: u64,
    managers: u64,
    /// Manager references to a row further down: set by a PATCH after the creates.
    manager_patches: u64,
    member_batch: u64,
    limits: &'a TargetLimits,
    projection: &'a Projection,
}

pub fn plan(a: PlanArgs) -> anyhow::Result<ExitCode> {
    let (spec, opts) = super::read_export(&a.export, IngestOptions::default().batch_rows)?;
    let d = dry_run::run(
        &a.export.file,
        &spec,
        &opts,
        &DryRunOptions {
            forward_managers: true,
            ..DryRunOptions::default()
        },
    )
    .with_context(|| format!("cannot read {}", a.export.file.display()))?;
    let lim = a.target_limits.limits().with(a.limits.clone());
    let p = limits::project(&lim, &shape(&d).phases_under(&lim, a.member_batch));
    if a.json {
        say(&serde_json::to_string_pretty(&Plan {
            file: a.export.file.display().to_string(),
            users: d.users,
            groups: d.groups,
            memberships: d.memberships,
            managers: d.users_with_manager,
            manager_patches: d.forward_managers.unwrap_or(d.users_with_manager),
            member_batch: a.member_batch,
            limits: &lim,
            projection: &p,
        })?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = format!(
        "plan for {} under the {} limits ({})\n  export: {} users, {} groups, {} memberships, {} manager references ({} to a row further down, set by a PATCH), {} rows rejected\n",
        a.export.file.display(),
        lim.name,
        lim.source,
        d.users,
        d.groups,
        d.memberships,
        d.users_with_manager,
        d.forward_managers.unwrap_or(d.users_with_manager),
        d.rejected
    );
    out.push_str("  phase       requests   time             binding limit\n");
    for ph in &p.phases {
        out.push_str(&format!(
            "  {:<10} {:>9}   {:<16} {}\n",
            ph.phase,
            ph.requests,
            duration_text(ph.seconds),
            ph.binding.as_deref().map_or(
                "none (the target's own speed decides)".to_string(),
                |b| {
                    let b = lim
                        .buckets
                        .iter()
                        .find(|x| x.name == b)
                        .expect("named bucket");
                    format!(
                        "{} ({}/{}, burst {}{})",
                        b.name,
                        b.limit,
                        window_text(b.window.as_secs_f64()),
                        b.burst,
                        if b.cost == limits::Cost::Members {
                            ", counting members"
                        } else {
                            ""
                        }
                    )
                }
            )
        ));
    }
    out.push_str(&format!(
        "  total      {:>9}   {:<16} the limit that binds longest: {}\n",
        p.requests,
        duration_text(p.seconds),
        p.binding.as_deref().unwrap_or("none")
    ));
    if !lim.note.is_empty() {
        out.push_str(&format!("  note: {}\n", lim.note));
    }
    if lim.users_per_request.is_none() {
        out.push_str("  (manager PATCHes are a lower bound: a manager whose create is not answered yet when its report is sent is patched too; the target's own latency adds to these times where no limit binds)\n");
    } else {
        out.push_str("  (managers travel in the uploads as externalIds, groups are not sent; the target's own latency adds to these times where no limit binds)\n");
    }
    say_raw(&out)?;
    Ok(ExitCode::SUCCESS)
}
