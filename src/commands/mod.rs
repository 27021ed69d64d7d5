//! The subcommands other than `serve`, each from validated arguments to an exit code.
//! Errors carry context for the person at the terminal (anyhow at this edge).

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::{GenArgs, ImportArgs};
use crate::config;
use crate::gen::{GenConfig, Generator};
use crate::import::dry_run::{self, DryRunOptions};
use crate::import::ingest::IngestOptions;
use crate::import::run;
use crate::mapping::{presets, MappingSpec};
use crate::server::{self, ServerConfig};
use crate::source;

mod bench;
pub mod plan;
pub use bench::{bench, report};

/// Writes a line to standard output; a closed pipe comes back as an error (which `main`
/// treats as a quiet end), not as the panic `println!` would raise.
pub(crate) fn say(line: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")
}

/// Writes text as it is (it carries its own newlines).
pub(crate) fn say_raw(text: &str) -> io::Result<()> {
    io::stdout().lock().write_all(text.as_bytes())
}

/// The one async runtime every command runs on: a worker per core (or `threads`), I/O
/// and timers on. Commands differ in what they run on it, not in how it is built.
pub fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = threads {
        b.worker_threads(t.max(1));
    }
    b.enable_all().build().context(
        "cannot start the async runtime: check the limits on threads and open files (ulimit -u, ulimit -n)",
    )
}

pub fn gen(a: GenArgs) -> anyhow::Result<ExitCode> {
    let cfg = GenConfig {
        rows: a.rows,
        shape: a.shape,
        format: a.format.unwrap_or(a.shape.default_format()),
        seed: a.seed,
        dirty: a.dirty,
    };
    let mut g = Generator::new(cfg);
    match &a.output {
        Some(p) => {
            let f = File::create(p).with_context(|| format!("cannot create {}", p.display()))?;
            let w = BufWriter::with_capacity(1 << 20, f);
            if p.extension().is_some_and(|e| e == "gz") {
                let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
                g.write_all(&mut gz)?;
                gz.finish()?.flush()?;
            } else {
                let mut w = w;
                g.write_all(&mut w)?;
            }
        }
        None => {
            let out = io::stdout();
            let mut w = BufWriter::with_capacity(1 << 20, out.lock());
            g.write_all(&mut w)?;
        }
    }
    if let Some(m) = &a.manifest {
        let mut w = BufWriter::new(
            File::create(m).with_context(|| format!("cannot create {}", m.display()))?,
        );
        for e in &g.manifest {
            serde_json::to_writer(&mut w, e)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A target must be an http:// URL: this build speaks no TLS, and a bad URL would
/// otherwise fail every row one by one instead of stopping here.
pub(crate) fn check_target(t: &str) -> anyhow::Result<()> {
    crate::client::transport::BaseUrl::parse(t).context("bad --target")?;
    Ok(())
}

/// The connection flags as client options; warns (every run) when certificates are not
/// checked.
pub(crate) fn client_options(
    a: &crate::cli::ConnectArgs,
    timeout: std::time::Duration,
) -> anyhow::Result<crate::client::ClientOptions> {
    let o = config::client_options(a, timeout)?;
    if o.tls.insecure {
        eprintln!("scimload: WARNING: --insecure: the target's certificate is not verified, so anyone on the path can read and change this traffic; the results record it");
    }
    Ok(o)
}

/// The token the embedded server expects: the client's static one, if any.
pub(crate) fn embedded_token(o: &crate::client::ClientOptions) -> Option<String> {
    match &o.credentials {
        crate::client::Credentials::Static(t) => Some(t.expose().to_string()),
        _ => None,
    }
}

/// Which preset fits these columns.
fn guess_preset(columns: &[String]) -> Option<&'static str> {
    let has = |c: &str| columns.iter().any(|x| x.eq_ignore_ascii_case(c));
    if has("Employee_ID") && has("Email_Work") {
        Some("workday")
    } else if has("workEmail") && has("firstName") {
        Some("bamboohr")
    } else if has("employee_id") && has("email") {
        Some("generic")
    } else {
        None
    }
}

/// An export's mapping (`--map`, `--preset`, or the preset its columns match) and how
/// to read it.
pub(crate) fn read_export(
    e: &crate::cli::ExportArgs,
    batch_rows: usize,
) -> anyhow::Result<(MappingSpec, IngestOptions)> {
    let delimiter = config::delimiter(&e.delimiter)?;
    if e.format.is_none() {
        if let Some(n) = source::wrapped::note(&e.file) {
            eprintln!("scimload: {n}");
        }
    }
    let (file, format) = (&e.file, e.format);
    let spec = match (e.map.as_deref(), e.preset.as_deref()) {
        (Some(p), _) => presets::load_file(p)?,
        (None, Some(name)) => presets::load(name)?,
        (None, None) => {
            let src = source::open_source(file, format, delimiter)?;
            let Some(name) = guess_preset(src.columns()) else {
                bail!(
                    "no --map or --preset given, and the columns ({}) match no preset; write a mapping file (see datasets/mappings/) and pass --map",
                    src.columns().join(", ")
                );
            };
            eprintln!("scimload: using the {name} preset (matched the file's columns); pass --preset or --map to choose");
            presets::load(name)?
        }
    };
    let opts = IngestOptions {
        format,
        delimiter,
        batch_rows: batch_rows.max(1),
    };
    Ok((spec, opts))
}

pub fn import(a: ImportArgs) -> anyhow::Result<ExitCode> {
    // A flag that would be ignored, or two that cannot work together, are refused first.
    config::check_import_args(&a)?;
    let (spec, opts) = read_export(&a.export, a.batch_rows as usize)?;
    for (column, fed) in crate::import::ingest::absent_columns(&a.export.file, &spec, &opts)? {
        eprintln!(
            "scimload: warning: the file has no column '{column}'; {}",
            if fed.is_empty() {
                "it is not checked".to_string()
            } else {
                format!("{} will not be set", fed.join(", "))
            }
        );
    }
    if let Some(dir) = &a.report {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the report directory {}", dir.display()))?;
    }
    let in_report = |name: &str| a.report.as_ref().map(|d| d.join(name));
    let rejects = config::import_report_file(&a, a.rejects.as_ref(), "rejects.csv");
    if a.dry_run {
        let summary = dry_run::run(
            &a.export.file,
            &spec,
            &opts,
            &DryRunOptions {
                rejects: rejects.clone(),
                emit: a.emit.clone(),
                forward_managers: false,
            },
        )?;
        if a.json {
            say(&serde_json::to_string_pretty(&summary)?)?;
        } else {
            say_raw(&summary.human())?;
            if let (Some(r), true) = (&rejects, summary.rejected > 0) {
                say(&format!("  rejected rows written to {}", r.display()))?;
            }
        }
        return Ok(if summary.rejected > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    if let Some(t) = &a.target {
        check_target(t)?;
    }
    let client = client_options(&a.connect, a.timeout)?;
    let rt = runtime(None)?;
    let mut summary = rt.block_on(async {
        let (base, embedded) = match &a.target {
            Some(t) => (t.trim_end_matches('/').to_string(), None),
            None => {
                let inbound = a.dialect == crate::client::dialect::DialectName::EntraInbound;
                let h = server::spawn(
                    ServerConfig {
                        token: embedded_token(&client),
                        // An emulated inbound endpoint: 202, processed a moment later.
                        inbound_delay: inbound.then_some(std::time::Duration::from_millis(500)),
                        ..ServerConfig::default()
                    },
                    "127.0.0.1:0".parse()?,
                )
                .await?;
                let url = if inbound { format!("{}/bulkUpload", h.url()) } else { h.url() };
                eprintln!(
                    "scimload: no --target: provisioning into the embedded SCIM server at {url}"
                );
                (url, Some(h))
            }
        };
        let limits = config::import_limits(&a);
        if !limits.buckets.is_empty() || limits.max_in_flight.is_some() {
            eprintln!(
                "scimload: paced under the {} limits: {}",
                limits.name,
                limits
                    .buckets
                    .iter()
                    .map(|b| format!("{} {}/{} s (burst {})", b.name, b.limit, b.window.as_secs_f64(), b.burst))
                    .chain(limits.max_in_flight.map(|m| format!("at most {m} in flight")))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let live = match a.metrics_listen {
            Some(addr) => {
                let live = crate::metrics::live::Live::new("import", "import", "1/1");
                live.lock().set_offered_rate(a.rate);
                let bound = crate::metrics::live::serve(addr, live.clone()).await?;
                if !a.quiet {
                    eprintln!("scimload: live metrics at http://{bound}/metrics");
                }
                Some(live)
            }
            None => None,
        };
        let cfg = config::import_config(&a, client.clone(), base, live);
        let quiet = a.quiet;
        // Ctrl-C: stop sending, finish what is in flight, record it, print the summary;
        // a second Ctrl-C aborts at once.
        let interrupt = cfg.interrupt.clone().expect("set above");
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupt.fire();
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("scimload: aborted; requests in flight are lost (the state file is intact; run again to finish)");
                    std::process::exit(130);
                }
            }
        });
        // A live bar on a terminal; elsewhere (logs, CI) a plain line every 2 s.
        let bar = (!quiet && io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        // The import runs as a task on the runtime, not in block_on on this thread:
        // every finished request wakes the dispatcher, and waking a thread parked in
        // block_on is a futex round trip per request (measured 2-3% of the importer's
        // CPU, on cores the target shares).
        let (file, spec, opts, cfg2) = (a.export.file.clone(), spec.clone(), opts.clone(), cfg.clone());
        let inbound = (a.dialect == crate::client::dialect::DialectName::EntraInbound).then(|| {
            crate::import::inbound::InboundOptions {
                status_url: a.inbound_status.clone(),
                wait: a.inbound_wait,
                ..Default::default()
            }
        });
        let bar2 = bar.clone();
        let s = tokio::spawn(async move {
            let last_line = std::sync::Mutex::new(std::time::Instant::now());
            let say = |line: String| {
                let periodic = line.starts_with("users:");
                match &bar2 {
                    _ if quiet => {}
                    Some(b) if periodic => b.set_message(line),
                    Some(b) => b.println(format!("scimload: {line}")),
                    None => {
                        let mut last = last_line.lock().unwrap_or_else(|p| p.into_inner());
                        if periodic && last.elapsed().as_secs() < 2 {
                            return;
                        }
                        *last = std::time::Instant::now();
                        eprintln!("scimload: {line}");
                    }
                }
            };
            match inbound {
                Some(i) => crate::import::inbound::run(&file, &spec, &opts, &cfg2, &i, say).await,
                None => run::run(&file, &spec, &opts, &cfg2, say).await,
            }
        })
        .await
        .context("the import task failed")?;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        let s = s?;
        // The embedded server dies with the process: freeing a store of a million users
        // one allocation at a time took about a second, and the OS does it at once.
        std::mem::forget(embedded);
        anyhow::Ok(s)
    })?;
    rt.shutdown_background();
    if let Some(p) = in_report("summary.json") {
        std::fs::write(&p, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    // Out of the summary, so cloning it for the report copies no histograms.
    let timeline = summary.timeline.take();
    if let (Some(p), Some(tl)) = (in_report("intervals.hlog"), &timeline) {
        let mut buf = Vec::new();
        tl.write_log(
            &mut buf,
            &[format!(
                "import of {} into {}",
                a.export.file.display(),
                summary.target
            )],
        )?;
        std::fs::write(&p, buf).with_context(|| format!("cannot write {}", p.display()))?;
        let dir = a.report.as_deref().expect("in_report gave a path");
        bench::write_reports(
            dir,
            crate::report::Run::Import(Box::new(summary.clone())),
            tl,
            "p99<300ms",
        )?;
    }
    if a.json {
        say(&serde_json::to_string_pretty(&summary)?)?;
    } else {
        say_raw(&summary.human())?;
        if let Some(d) = &a.report {
            say(&format!("  report written to {}", d.display()))?;
        }
    }
    Ok(if summary.incomplete() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn cleanup(a: crate::cli::CleanupArgs) -> anyhow::Result<ExitCode> {
    if let Some(t) = &a.target {
        check_target(t)?;
    }
    if !a.state.exists() {
        bail!(
            "no state file at {}; give the --state an import wrote (default: the input file's name + .scimload-state.sqlite)",
            a.state.display()
        );
    }
    let client = client_options(&a.connect, std::time::Duration::from_secs(30))?;
    let rt = runtime(None)?;
    let s = rt.block_on(crate::import::cleanup::cleanup(
        &a.state,
        a.target.as_deref(),
        &client,
        a.concurrency.max(1) as usize,
    ))?;
    if a.json {
        say(&serde_json::to_string_pretty(&s)?)?;
    } else {
        say_raw(&s.human())?;
    }
    Ok(if s.users_failed + s.groups_failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn probe(a: crate::cli::ProbeArgs) -> anyhow::Result<ExitCode> {
    check_target(&a.url)?;
    let opts = client_options(&a.connect, a.timeout)?;
    let rt = runtime(None)?;
    let url = a.url.trim_end_matches('/').to_string();
    let spec = match (&a.map, &a.preset) {
        (Some(p), _) => Some(presets::load_file(p)?),
        (None, Some(n)) => Some(presets::load(n)?),
        _ => None,
    };
    let custom = spec
        .as_ref()
        .map(crate::probe::ProbeOptions::custom_of)
        .unwrap_or_default();
    let report = rt.block_on(async {
        let client = crate::client::ScimClient::connect(&url, &opts, 4)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        crate::probe::probe(
            &client,
            &crate::probe::ProbeOptions {
                read_only: a.read_only,
                check_timeout: a.timeout,
                custom: custom.clone(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the target {url}: {e}"))
    })?;
    if a.json {
        say(&serde_json::to_string_pretty(&report)?)?;
    } else {
        say_raw(&report.human())?;
    }
    // Sandbox resources left behind are the one thing the user must act on.
    Ok(if report.left_behind.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
