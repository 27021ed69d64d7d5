//! `scimload import`: provision the users and groups of an export into a SCIM server.
//!
//! Phases, in order: reach the target (discovery, the schema check), start the ingest
//! thread (reader.rs: read → map → validate → deduplicate), users (users.rs: the
//! dispatcher, the only owner of results), pending creates, managers (managers.rs),
//! missing users (sync.rs), memberships (memberships.rs), read-back verification, then
//! the summary. Every row ends as exactly one of: created, updated, rejected, failed or
//! pending.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::bulk;
pub use super::config::{BulkMode, ImportConfig, Interrupt, Lookup, Missing};
use super::ingest::{IngestError, IngestOptions};
pub use super::preflight::SchemaCheck;
use super::preflight::SchemaFindings;
pub use super::readback::Verify;
use super::rejects::RejectSink;
use super::sync::MissingTotals;
use super::users::{Meter, UsersDone};
use super::worker::{verify_pending, FailedWriter, Tally, Worker};
use crate::client::discovery::{discover, Capabilities};
use crate::client::throttle::Throttle;
use crate::client::ScimClient;
use crate::mapping::MappingSpec;
use crate::metrics::Recorder;
pub use crate::results::import::ImportSummary;

/// The pre-flight schema check: what the mapping writes that the target does not
/// declare, with row counts; `strict` stops the import here, before anything is sent.
async fn schema_check(
    client: &ScimClient,
    path: &Path,
    spec: &MappingSpec,
    opts: &IngestOptions,
    mode: SchemaCheck,
    progress: &impl Fn(String),
) -> Result<SchemaFindings, IngestError> {
    let published = crate::client::schemas::read(client)
        .await
        .map_err(|e| IngestError::Sink(format!("cannot read the target's schemas: {e}")))?;
    let mut f = super::preflight::compare(spec, &published);
    if !f.undeclared.is_empty() {
        let (p, s, o) = (path.to_path_buf(), spec.clone(), opts.clone());
        f = tokio::task::spawn_blocking(move || {
            super::preflight::count_rows(&p, &s, &o, &mut f).map(|_| f)
        })
        .await
        .map_err(|e| IngestError::Sink(format!("the schema check failed: {e}")))??;
    }
    for n in &f.notes {
        progress(format!("schema: {n}"));
    }
    if let Some(w) = f.warning() {
        if mode == SchemaCheck::Strict {
            return Err(IngestError::Sink(format!(
                "{w}. Nothing was sent (--schema-check strict); drop these attributes from the mapping, or import with --schema-check warn to send the rest"
            )));
        }
        progress(format!("warning: {w}"));
    }
    Ok(f)
}

/// A flag value as the command line spells it (`on-conflict`, `entra-legacy`).
fn value_name(v: impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

/// A client for the target and what it offers, asked before a row is read: a target
/// that cannot be reached (or whose certificate is refused) stops the import here.
async fn reach(
    cfg: &ImportConfig,
) -> Result<(ScimClient, Arc<Throttle>, Capabilities), IngestError> {
    let (client, throttle) = ScimClient::paced(
        &cfg.base_url,
        &cfg.client,
        cfg.concurrency,
        cfg.adaptive,
        &cfg.limits,
    )
    .map_err(|e| IngestError::Sink(e.to_string()))?;
    let caps = discover(&client).await.map_err(|e| {
        let hint = match e {
            crate::client::TransportError::Tls(_)
            | crate::client::TransportError::Auth(_)
            | crate::client::TransportError::Connect(_) => "",
            _ => "; check the URL and that the server runs",
        };
        IngestError::Sink(format!(
            "cannot reach the target {}: {e}{hint}",
            cfg.base_url
        ))
    })?;
    Ok((client, throttle, caps))
}

/// /Bulk batches as (users a batch, bytes a batch) and the target's maxOperations;
/// `None` when not allowed or not useful.
fn bulk_plan(
    cfg: &ImportConfig,
    offered: Option<(usize, usize)>,
    lookup: Lookup,
) -> (Option<(usize, usize)>, usize) {
    // What the target offers; /Bulk only when allowed and useful (a lookup before every
    // create, as IdP dialects do, cannot travel in a batch).
    let bulk_limits = match cfg.bulk {
        BulkMode::Never => None,
        _ if lookup == Lookup::Always => None,
        BulkMode::Auto => offered,
        BulkMode::Always => offered.or(Some((1000, 1 << 20))),
    }
    .map(|(ops, bytes)| {
        // A quarter of maxOperations is left for the memberships of the batch's users.
        let users = cfg
            .bulk_size
            .unwrap_or(bulk::DEFAULT_OPS)
            .min(ops - ops / 4)
            .max(1);
        // Keep a margin under maxPayloadSize for what the estimate misses.
        (users, bytes - bytes / 10, ops)
    });
    let bulk_max_ops = bulk_limits.map_or(0, |(_, _, ops)| ops);
    let bulk_limits = bulk_limits.map(|(users, bytes, _)| (users, bytes));
    (bulk_limits, bulk_max_ops)
}

/// failed.csv, with its header, when `--failed FILE` is given.
fn open_failed(cfg: &ImportConfig) -> Result<Option<FailedWriter>, IngestError> {
    let Some(p) = &cfg.failed else {
        return Ok(None);
    };
    let mut w = csv::Writer::from_writer(BufWriter::new(File::create(p).map_err(|e| {
        IngestError::Sink(format!(
            "cannot write {}: {e}; choose a writable --failed path",
            p.display()
        ))
    })?));
    let _ = w.write_record(["row", "externalId", "what", "status", "scimType", "detail"]);
    Ok(Some(w))
}

/// Runs the whole import. `progress` gets a line now and then (stderr, when not quiet).
pub async fn run(
    path: &Path,
    spec: &MappingSpec,
    ingest_opts: &IngestOptions,
    cfg: &ImportConfig,
    progress: impl Fn(String),
) -> Result<ImportSummary, IngestError> {
    let t0 = Instant::now();
    let started = std::time::SystemTime::now();
    // A service that caps requests in flight (Okta: 75 org-wide) is never sent more.
    let capped;
    let cfg = match cfg.limits.max_in_flight {
        Some(m) if m < cfg.concurrency => {
            capped = ImportConfig {
                concurrency: m.max(1),
                ..cfg.clone()
            };
            &capped
        }
        _ => cfg,
    };
    let (client, throttle, caps) = reach(cfg).await?;
    let schema = match cfg.schema_check {
        SchemaCheck::Off => None,
        mode => Some(schema_check(&client, path, spec, ingest_opts, mode, &progress).await?),
    };
    let meter = Meter::start(path, t0, throttle.clone());
    let rejects = RejectSink::new(cfg.rejects.as_deref())?;
    let (rx, reader) = super::reader::start(path, spec, ingest_opts, rejects, cfg.concurrency);

    let state = match &cfg.state {
        Some(p) => Some(
            super::state::State::open(p, &cfg.base_url, &path.display().to_string())
                .map_err(|e| IngestError::Sink(e.to_string()))?,
        ),
        None => None,
    };
    // After a run that was killed, a create it had sent may have been applied without
    // an answer being recorded; on a target without uniqueness a second create would be
    // a second user. Everything the state does not know is looked up first this time.
    let lookup = match &state {
        Some(st) if st.unclean && cfg.lookup != Lookup::Always => {
            progress("the previous run did not finish (killed?): users and groups the state does not know are looked up before they are created".into());
            Lookup::Always
        }
        _ => cfg.lookup,
    };
    let (bulk_limits, bulk_max_ops) = bulk_plan(cfg, caps.bulk, lookup);
    let worker = Arc::new(Worker {
        client: client.clone(),
        retry: cfg.retry.clone(),
        lookup,
        dialect: cfg.dialect,
    });
    let mut t = Tally::new(
        Recorder::with_live(cfg.live.clone()),
        state,
        open_failed(cfg)?,
    );
    let known_at_start = t.state.as_ref().map_or(0, |st| st.users.len());
    let users = super::users::Users {
        cfg,
        worker: worker.clone(),
        lookup,
        bulk_limits,
        bulk_max_ops,
        meter,
    };
    let UsersDone {
        stopping,
        not_sent,
        mut deferred_managers,
        trial,
        mut bulk_groups,
    } = super::users::provision(users, &mut t, rx, &progress).await;
    let mut ingested = reader
        .await
        .map_err(|e| IngestError::Sink(format!("the reader failed: {e}")))??;
    if let Some(w) = t.failed_out.as_mut() {
        let _ = w.flush();
    }

    if !stopping {
        verify_pending(&client, &cfg.retry, cfg.dialect, &mut t, &progress).await;
    }

    // Managers not known when their reports were created (not after Ctrl-C: nothing
    // more is sent; a re-run sets them).
    let forward_managers = ingested.forward_managers.len() as u64;
    if stopping {
        deferred_managers.clear();
    } else {
        deferred_managers.extend(std::mem::take(&mut ingested.forward_managers));
    }
    let managers_failed = super::managers::set(&client, cfg, &mut t, deferred_managers).await;
    if !stopping {
        super::managers::record_unresolved(&t, std::mem::take(&mut ingested.unresolved));
    }

    // Users the state knows that this export no longer has (not after Ctrl-C: the rest
    // of the file was not looked at).
    let sync = if stopping {
        MissingTotals::default()
    } else {
        super::sync::sync_missing(&client, cfg, &mut t, &ingested.rejected_ids, known_at_start)
            .await
    };

    // Groups: found or created, then their members added (not after Ctrl-C).
    let ids = Arc::new(std::mem::take(&mut t.ids));
    let export_groups = ingested.groups.len() as u64;
    let export_memberships: u64 = ingested.groups.values().map(|m| m.len() as u64).sum();
    let group_sizes: Vec<u64> = ingested.groups.values().map(|m| m.len() as u64).collect();
    let groups = if stopping {
        BTreeMap::new()
    } else {
        super::memberships::to_visit(ingested.groups, t.state.as_ref())
    };
    let super::memberships::Memberships {
        totals: mut gt,
        members: group_members,
    } = super::memberships::provision(
        &client,
        cfg,
        lookup,
        &mut t,
        &ids,
        groups,
        bulk_groups.as_mut(),
        (bulk_limits, bulk_max_ops),
    )
    .await;
    let members_failed = gt.refused.len() as u64;
    super::memberships::write_refused(path, spec, ingest_opts, &mut t, &gt, &ids).await?;
    if let Some(st) = t.state.take() {
        st.close().map_err(|e| IngestError::Sink(e.to_string()))?;
    }
    let verification = if stopping || cfg.verify == Verify::Off {
        None
    } else {
        let groups = std::mem::take(&mut gt.ids)
            .into_iter()
            .filter_map(|(name, id)| {
                let want = group_members.get(&name)?.clone();
                Some((name, id, want))
            })
            .collect();
        let inputs = super::readback::Inputs {
            path,
            spec,
            opts: ingest_opts,
            client: &client,
            retry: &cfg.retry,
            concurrency: cfg.concurrency,
            ids: &ids,
            groups,
            members_in_reads: None,
        };
        Some(super::readback::verify(cfg.verify, inputs, &progress).await?)
    };
    let elapsed = t0.elapsed();
    let rejected: u64 = ingested.rejected.values().sum();
    // The export's onboarding under the published limits the import was paced by: the
    // same arithmetic as `scimload plan`, next to the measured-speed projection.
    let limits_projection = (!cfg.limits.buckets.is_empty()).then(|| {
        let shape = crate::limits::ExportShape {
            users: ingested.rows - rejected,
            manager_patches: forward_managers,
            memberships: export_memberships,
            group_sizes,
        };
        crate::limits::project(
            &cfg.limits.published(),
            &shape.phases_under(&cfg.limits, cfg.member_batch as u64),
        )
    });
    Ok(ImportSummary {
        limits_projection,
        kind: "import".into(),
        tool: concat!("scimload ", env!("CARGO_PKG_VERSION")).into(),
        samples: "attempt".into(),
        started: crate::units::rfc3339(started),
        machine: crate::results::Machine::this(),
        input: path.display().to_string(),
        dialect: value_name(cfg.dialect.name),
        concurrency: cfg.concurrency,
        member_batch: cfg.member_batch,
        bulk: value_name(cfg.bulk),
        lookup: value_name(lookup),
        export_groups,
        export_memberships,
        throttle: throttle.stats(),
        target: cfg.base_url.clone(),
        connection: client.describe(),
        rows: ingested.rows,
        created: t.created,
        updated: t.updated,
        unchanged: t.unchanged,
        rejected,
        failed: t.failed,
        pending: t.pending.len() as u64,
        not_sent,
        interrupted: stopping,
        groups_created: gt.created,
        groups_existing: gt.existing,
        groups_unchanged: gt.unchanged,
        groups_failed: gt.failed,
        memberships_added: gt.added,
        memberships_removed: gt.removed,
        missing: sync.missing,
        deactivated: sync.deactivated,
        deleted: sync.deleted,
        missing_failed: sync.failed,
        missing_refused: sync.refused,
        memberships_skipped: gt.skipped,
        bulk_trial: trial.map(|tr| tr.outcome()),
        inbound: None,
        managers_set: t.managers_set,
        managers_failed,
        memberships_failed: members_failed,
        managers_unresolved: ingested.unresolved_managers,
        schema,
        verification,
        rejects_by_reason: ingested
            .rejected
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        operations: t.rec.summary(elapsed),
        timeline: Some(t.rec.timeline),
        errors: t.rec.errors,
        elapsed_seconds: elapsed.as_secs_f64(),
        users_per_second: (t.created + t.updated) as f64 / elapsed.as_secs_f64().max(1e-9),
    })
}
