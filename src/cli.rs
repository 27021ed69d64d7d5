//! What the user typed: the clap definitions of every subcommand. Validation and
//! defaults that depend on other flags live in [`crate::config`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::server::faults::{Latency, Stall};
use crate::units::{parse_count, parse_duration, parse_fraction, parse_rate, parse_rfc3339};

#[derive(Debug, Parser)]
#[command(
    name = "scimload",
    version,
    about = "Bulk-import HR exports into SCIM 2.0 servers and load-test them"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the embedded SCIM 2.0 service provider.
    Serve(ServeArgs),
    /// Write a deterministic synthetic HR export (streams; any size in constant memory).
    Gen(GenArgs),
    /// Provision an HR export's users and groups into a SCIM server (--dry-run: only
    /// parse, map and validate).
    Import(Box<ImportArgs>),
    /// Load-test a SCIM server with provisioning traffic; latency measured from each
    /// request's planned send time (no coordinated omission).
    Bench(Box<BenchArgs>),
    /// Summarise benchmark results; several directories (shards) are merged exactly.
    Report(ReportArgs),
    /// Delete from the target every user and group an import recorded in a state file.
    Cleanup(CleanupArgs),
    /// What a target can do: discovery, then each behaviour import and bench rely on,
    /// checked on sandbox users and groups it deletes afterwards; recommends a dialect.
    Probe(ProbeArgs),
    /// How long onboarding an export takes under a service's published rate limits:
    /// requests per phase, the limit that binds, the time (sends nothing).
    Plan(PlanArgs),
}

/// An HR export and how its columns map: what import and plan read.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The HR export: CSV, NDJSON or a JSON array, optionally gzip-compressed.
    pub file: PathBuf,
    /// Mapping file (TOML); see datasets/mappings/ for examples.
    #[arg(long = "map", conflicts_with = "preset")]
    pub map: Option<PathBuf>,
    /// Built-in mapping: workday, bamboohr or generic (default: guessed from the columns).
    #[arg(long)]
    pub preset: Option<String>,
    /// Input format (default: from the file name, then its first byte).
    #[arg(long, value_enum)]
    pub format: Option<crate::source::InputFormat>,
    /// CSV delimiter: a single character, or "tab".
    #[arg(long, default_value = ",")]
    pub delimiter: String,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub export: ExportArgs,
    /// The service's published limits (README "Target limits").
    #[arg(long, value_enum, default_value = "none")]
    pub target_limits: crate::limits::Preset,
    /// A limit of your own, as OPS=N/WINDOW[,burst=B][,per=request|member], e.g.
    /// 'create_user=180/min,burst=20'; repeatable, added to --target-limits.
    #[arg(long = "limit", value_parser = crate::limits::Bucket::parse)]
    pub limits: Vec<crate::limits::Bucket>,
    /// Members added per group PATCH (the import's default: the dialect's; 100 generic).
    #[arg(long, default_value = "100", value_parser = parse_count)]
    pub member_batch: u64,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// SCIM base URL of the target, http:// or https://.
    pub url: String,
    /// Only read the discovery documents: create nothing.
    #[arg(long)]
    pub read_only: bool,
    /// The mapping an import will use: its custom extension attributes join the round
    /// trip, with a value of their type.
    #[arg(long, conflicts_with = "preset")]
    pub map: Option<PathBuf>,
    /// A preset mapping (workday, bamboohr, generic), as for --map.
    #[arg(long)]
    pub preset: Option<String>,
    /// Bound on each request of a check: a server that hangs is reported, not waited on.
    #[arg(long, default_value = "10s", value_parser = crate::units::parse_duration)]
    pub timeout: std::time::Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// The import's state file (--state of the import; default there:
    /// FILE.scimload-state.sqlite next to the input).
    #[arg(long)]
    pub state: PathBuf,
    /// SCIM base URL, when the server is reached another way than at import time
    /// (default: the target recorded in the state).
    #[arg(long)]
    pub target: Option<String>,
    /// Deletes in flight at once.
    #[arg(long, default_value = "16", value_parser = parse_count)]
    pub concurrency: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Flags that shape one run at one rate; a knee search or --steps sets these itself, so
/// they are refused there rather than ignored (clap checks only flags given, never
/// their defaults).
const SINGLE_RUN_ONLY: [&str; 6] = ["rate", "ramp", "poisson", "duration", "warmup", "requests"];

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to send: create, get, filter, paginate, group-members, update, mixed, or
    /// replay.
    #[arg(value_enum)]
    pub scenario: crate::bench::scenario::Kind,
    /// SCIM base URL of the server under test, http:// or https:// (default: an
    /// embedded server on 127.0.0.1:0); also from SCIM_TARGET (a Secret in Kubernetes).
    #[arg(long, env = "SCIM_TARGET", hide_env_values = true)]
    pub target: Option<String>,
    /// Serve live Prometheus metrics at http://ADDR/metrics while the run goes on
    /// (requests, errors by status, in flight, offered and achieved rate, latency
    /// buckets per operation); the results stay those of the interval log.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Offered rate in requests/s (open model): 500, or a ramp 100..2000 over --duration.
    #[arg(long, default_value = "200", value_parser = crate::dispatch::schedule::RateShape::parse)]
    pub rate: crate::dispatch::schedule::RateShape,
    /// Ramp the offered rate linearly over --duration, e.g. 100..2000 (same as
    /// --rate 100..2000).
    #[arg(long, value_parser = crate::dispatch::schedule::RateShape::parse)]
    pub ramp: Option<crate::dispatch::schedule::RateShape>,
    /// Poisson arrivals (seeded by --seed) instead of evenly spaced ones.
    #[arg(long)]
    pub poisson: bool,
    /// Closed model: each connection sends as soon as its previous answer is in.
    #[arg(long)]
    pub closed: bool,
    /// Connections (with HTTP/1.1 also the requests in flight at most).
    #[arg(long, visible_alias = "concurrency", default_value = "32", value_parser = parse_count)]
    pub connections: u64,
    /// Concurrent streams on each HTTP/2 connection (requests in flight = connections x
    /// streams); needs HTTP/2 (--http2, or ALPN h2 on https://).
    #[arg(long, default_value = "1", value_parser = parse_count)]
    pub streams: u64,
    /// Measured duration (after the warm-up).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up: recorded in the interval log, left out of the results.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Stop after this many requests (per shard).
    #[arg(long, value_parser = parse_count)]
    pub requests: Option<u64>,
    /// Start the schedule at this instant (RFC 3339, e.g. 2026-12-01T16:30:00Z), after
    /// seeding: the shards of one run given the same instant send as one generator would.
    /// A time passed by more than one --interval is refused.
    #[arg(long, value_parser = parse_rfc3339, conflicts_with_all = ["find_knee", "steps"])]
    pub start_at: Option<std::time::SystemTime>,
    /// Run shard i of N (1-based): a disjoint 1/N of the data and of the rate; `auto`
    /// in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX and SCIMLOAD_SHARDS).
    #[arg(long, value_parser = crate::dispatch::schedule::Shard::parse)]
    pub shard: Option<crate::dispatch::schedule::Shard>,
    /// Users seeded before measuring (get, filter, update, paginate, mixed).
    #[arg(long, default_value = "1000", value_parser = parse_count)]
    pub users: u64,
    /// Page size of the paginate scenario.
    #[arg(long, default_value = "100", value_parser = parse_count)]
    pub page_size: u64,
    /// Paging method (default: index when the server offers it, else cursor).
    #[arg(long, value_enum)]
    pub paging: Option<crate::bench::scenario::Paging>,
    /// Members of the group built by group-members.
    #[arg(long, default_value = "50000", value_parser = parse_count)]
    pub group_size: u64,
    /// Members added or removed per PATCH in group-members.
    #[arg(long, default_value = "100", value_parser = parse_count)]
    pub member_batch: u64,
    /// Whose request shapes replay (and update's PATCHes) use: generic, entra,
    /// entra-legacy, okta, okta-aiw, aws.
    #[arg(long, value_enum, default_value = "generic")]
    pub dialect: crate::client::dialect::DialectName,
    /// Weights of the mixed scenario.
    #[arg(
        long,
        default_value = "get=40,filter=30,update=15,create=10,paginate=5"
    )]
    pub mix: String,
    /// Search for the highest rate that meets --slo (geometric steps, then bisection).
    /// It sets its own rates (--knee-start, --knee-max) and step length
    /// (--step-duration): --rate, --ramp, --poisson, --duration, --warmup and --requests
    /// are refused with it.
    #[arg(long, conflicts_with_all = SINGLE_RUN_ONLY)]
    pub find_knee: bool,
    /// Run these rates one after another (--step-duration each) and judge each against
    /// --slo, e.g. 100,200,400. Refuses the same flags as --find-knee.
    #[arg(long, conflicts_with = "find_knee", conflicts_with_all = SINGLE_RUN_ONLY)]
    pub steps: Option<String>,
    /// Latency objective of the knee search and of --steps, e.g. p99<300ms.
    #[arg(long, default_value = "p99<300ms")]
    pub slo: String,
    /// Errors allowed in a knee step (0.1% or 0.001).
    #[arg(long, default_value = "0.1%", value_parser = parse_fraction)]
    pub error_budget: f64,
    /// Send-lag p99 above which a knee or --steps step measured the generator, not the
    /// server: the step fails as "the generator could not keep the rate" and a knee
    /// search ends there with a lower bound.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    pub max_send_lag: std::time::Duration,
    /// First rate of the knee search.
    #[arg(long, default_value = "100", value_parser = parse_rate)]
    pub knee_start: f64,
    /// Highest rate the knee search tries.
    #[arg(long, default_value = "100000", value_parser = parse_rate)]
    pub knee_max: f64,
    /// Duration of each knee step or --steps step.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub step_duration: Duration,
    /// Pass/fail criterion (repeatable): create_user:p99<200ms, errors<0.1%, rate>=500.
    /// A missed one makes the exit code 1.
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    /// Result directory (intervals.hlog, summary.json, report.html/.md/.json); default
    /// scimload-results/bench-SCENARIO-RUNID.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Interval length of the histogram log.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Names the run's users and groups (shards of one run share it); default: from the clock.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Seed of Poisson arrivals.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Delete what the run created and seeded afterwards.
    #[arg(long)]
    pub cleanup: bool,
    /// Timeout of one request.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Fault injection of the embedded server (ignored with --target).
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// What `scimload report` prints on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Terminal,
    Json,
    Markdown,
    Html,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Result directories written by `scimload bench` or `scimload import --report`;
    /// several (the shards of one bench run) are merged exactly.
    #[arg(required_unless_present = "compare")]
    pub dirs: Vec<PathBuf>,
    /// Compare two runs side by side: BASE NEW (result directories).
    #[arg(long, num_args = 2, value_names = ["BASE", "NEW"], conflicts_with = "dirs")]
    pub compare: Option<Vec<PathBuf>>,
    /// Relative change that --compare counts as a regression or an improvement.
    #[arg(long, default_value = "10%", value_parser = parse_fraction)]
    pub tolerance: f64,
    /// Latency changes smaller than this are noise, never a regression.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    pub min_delta: Duration,
    /// Exit 1 when --compare finds a regression.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// What to print on standard output.
    #[arg(long, value_enum, default_value = "terminal")]
    pub format: ReportFormat,
    /// Same as --format json.
    #[arg(long)]
    pub json: bool,
    /// Write report.json, report.md and report.html here (compare.* with --compare), and
    /// the merged intervals.hlog and summary.json when several shards were given.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Latency objective of the capacity section when the run had no knee search.
    #[arg(long, default_value = "p99<300ms")]
    pub slo: String,
    /// Re-check thresholds against the (merged) results; a missed one exits 1.
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    /// The one DIR holds the result directories of N shards (any names, e.g. one per
    /// JOB_COMPLETION_INDEX): merge them once all N are complete; a shard that failed or
    /// is still missing after --wait exits 2 and is named.
    #[arg(long, value_parser = parse_count, conflicts_with = "compare")]
    pub shards: Option<u64>,
    /// How long --shards waits for the shards to finish (e.g. 45m).
    #[arg(long, default_value = "0s", value_parser = parse_duration, requires = "shards")]
    pub wait: Duration,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of data rows.
    #[arg(long, default_value = "1000", value_parser = parse_count)]
    pub rows: u64,
    /// Which HR system the export looks like.
    #[arg(long, value_enum, default_value = "workday")]
    pub shape: crate::gen::Shape,
    /// Output format (default: what the shape's system exports: workday csv, bamboohr
    /// json, generic ndjson).
    #[arg(long, value_enum)]
    pub format: Option<crate::gen::Format>,
    /// Seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fraction of rows given one defect (0.02 or 2%): missing required field, malformed
    /// email, duplicate userName or employee id, over-long value, bad date, stray quote,
    /// wrong field count, invalid UTF-8.
    #[arg(long, default_value = "0", value_parser = parse_fraction)]
    pub dirty: f64,
    /// Write the list of defective rows (NDJSON: row, defect, column) here.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Output file (default: standard output); a name ending in .gz is gzip-compressed.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub export: ExportArgs,
    /// Parse, map and validate without sending anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Write rejected rows here (CSV: row, externalId, field, code, reason, original).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Write the mapped payloads here (NDJSON), for inspection.
    #[arg(long)]
    pub emit: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Rows per batch handed to the mapping threads.
    #[arg(long, default_value = "8192", value_parser = parse_count)]
    pub batch_rows: u64,
    /// SCIM base URL of the target (default: an embedded server started on 127.0.0.1:0);
    /// also from SCIM_TARGET.
    #[arg(long, env = "SCIM_TARGET", hide_env_values = true)]
    pub target: Option<String>,
    /// Serve live Prometheus metrics at http://ADDR/metrics while the import goes on.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Pace every request under the target service's published limits (README "Target
    /// limits"); 429s still slow the import down when they are wrong or outdated.
    #[arg(long, value_enum, default_value = "none")]
    pub target_limits: crate::limits::Preset,
    /// A limit of your own, OPS=N/WINDOW[,burst=B][,per=request|member], e.g.
    /// 'create_user=180/min,burst=20'; repeatable, added to --target-limits.
    #[arg(long = "limit", value_parser = crate::limits::Bucket::parse)]
    pub limits: Vec<crate::limits::Bucket>,
    /// Requests in flight at once (with /Bulk, the batches are --bulk-in-flight).
    #[arg(long, default_value = "32", value_parser = parse_count)]
    pub concurrency: u64,
    /// Users started per second at most (e.g. 200 or 200/s); default: as fast as
    /// --concurrency and the target allow.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Do not slow every request down when the target answers 429 (each refused request
    /// still waits its Retry-After before it is sent again).
    #[arg(long)]
    pub no_adaptive: bool,
    /// Send new users in /Bulk requests: auto (when the target's ServiceProviderConfig
    /// offers Bulk; the default with the generic dialect), never (the default with IdP
    /// dialects, which do not use Bulk), or always.
    #[arg(long, value_enum)]
    pub bulk: Option<crate::import::run::BulkMode>,
    /// Operations per Bulk request at most (default 100, within the target's
    /// maxOperations).
    #[arg(long, value_parser = parse_count)]
    pub bulk_size: Option<u64>,
    /// /Bulk requests in flight at once (at most --concurrency, which bounds the
    /// requests outside /Bulk). A few overlap transfer and processing; each holds a
    /// whole batch of users.
    #[arg(long, default_value = "4", value_parser = parse_count)]
    pub bulk_in_flight: u64,
    /// Deactivate (in the dialect's way) users the state knows but the export no longer
    /// has. Needs a state file.
    #[arg(long, conflicts_with = "delete_missing")]
    pub deactivate_missing: bool,
    /// Delete users the state knows but the export no longer has. Needs a state file.
    #[arg(long)]
    pub delete_missing: bool,
    /// Leave missing users alone when they are more than this share of the users the
    /// state knows (a truncated or wrong file must not empty a directory).
    #[arg(long, default_value = "50%", value_parser = parse_fraction)]
    pub missing_limit: f64,
    /// Before sending, compare the attributes the mapping writes with the target's
    /// /Schemas and name those it does not declare, with how many rows carry them:
    /// warn (and send), strict (exit 2, nothing sent) or off.
    #[arg(long, value_enum, default_value = "warn")]
    pub schema_check: crate::import::run::SchemaCheck,
    /// After the import, read users back and compare every attribute the mapping wrote
    /// with what the target returns, and check each group's members: N users, N% of
    /// them (at least 100, or all if fewer), all, or off. Differences exit 1.
    #[arg(long, default_value = "1%", value_parser = clap::value_parser!(crate::import::run::Verify))]
    pub verify: crate::import::run::Verify,
    /// Whose request shapes to send: generic (RFC 7644), entra, entra-legacy, okta,
    /// okta-aiw, aws — lookups, updates and member batches as that provider sends them;
    /// entra-inbound — users into Entra ID's inbound provisioning API: --target is the
    /// job's /bulkUpload URL, users go 50 a request at 40 requests/s, answers are 202 and
    /// rows stay pending until a status read confirms them (README "Entra inbound").
    #[arg(long, value_enum, default_value = "generic")]
    pub dialect: crate::client::dialect::DialectName,
    /// With --dialect entra-inbound: where an upload's outcome is read, a URL on the
    /// target's host with {request_id} (or without: a provisioning log covering every
    /// upload, e.g. Graph's .../auditLogs/provisioning?$filter=jobId%20eq%20'JOB'; spaces
    /// percent-encoded). Default:
    /// the 202's Location, when the service gives one.
    #[arg(long)]
    pub inbound_status: Option<String>,
    /// With --dialect entra-inbound: how long after the last upload outcomes are polled
    /// for; rows still unconfirmed then end pending with their request id.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub inbound_wait: Duration,
    /// Look users up before creating them: always (as IdPs do), never (fastest on a fresh
    /// tenant), or on-conflict (create, and on 409 look up and update). Default: always
    /// for the entra, okta and aws dialects, on-conflict for generic.
    #[arg(long, value_enum)]
    pub lookup: Option<crate::import::run::Lookup>,
    /// Members added per group PATCH (default: the dialect's, e.g. 100 generic, 1 entra).
    #[arg(long, value_parser = parse_count)]
    pub member_batch: Option<u64>,
    /// Timeout of one request.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Attempts per request before it counts as failed.
    #[arg(long, default_value = "8")]
    pub max_attempts: u32,
    /// Write target failures here (CSV: row, externalId, status, detail).
    #[arg(long)]
    pub failed: Option<PathBuf>,
    /// State database (SQLite): a re-run skips unchanged rows and resumes without
    /// duplicates. Default with --target: FILE.scimload-state.sqlite next to the input;
    /// with the embedded server (new and empty each time): none.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Write summary.json, intervals.hlog, report.html/.md/.json, rejects.csv and
    /// failed.csv into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// No uniqueness on userName and externalId (a second create with the same ones is
    /// a second user), as some real servers behave.
    #[arg(long)]
    pub allow_duplicates: bool,
    /// A request's head must be complete within this of its first byte (a TLS
    /// handshake likewise, of its first byte); slower connections are closed (slowloris).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// A connection with no request in flight (a new one included) is closed after this
    /// long without a byte.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Connections open at once at most; those above are answered 503 (plain HTTP) or
    /// closed (TLS) at once, never queued.
    #[arg(long, default_value = "10000", value_parser = parse_count)]
    pub max_connections: u64,
    /// A request whose handling (its body read included) takes longer is answered 503.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Close every connection after its answer (`Connection: close`), as servers that
    /// keep no connection open do (some WSGI and HTTP/1.0 servers): a client must not
    /// send into a connection that is closing.
    #[arg(long)]
    pub no_keep_alive: bool,
    /// Fraction of member adds answered as done and silently not kept (the same ones
    /// every run, chosen by --seed), as servers that answer 2xx and keep part of what
    /// they were sent: read-back verification must find them.
    #[arg(long, default_value = "0", value_parser = parse_fraction)]
    pub drop_members: f64,
    /// Bearer token clients must send. Prefer SCIM_TOKEN or --token-file: a flag value
    /// lands in shell history. Required when listening beyond loopback.
    #[arg(long, env = "SCIM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the bearer token from this file (first line).
    #[arg(long, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Limits of a real provider to emulate: rfc (everything RFC 7644 offers), aws (AWS IAM
    /// Identity Center), entra-api (Entra ID SCIM API), core-only (declares only the core
    /// User and Group schemas: extension attributes answer 201 and are dropped, a PATCH
    /// into one answers 400 invalidPath); slack, github-emu, entra-graph (RFC behaviour
    /// under that service's published rate limits: 429 with Retry-After and
    /// X-RateLimit-* over a limit; see README "Target limits"); okta (RFC behaviour with
    /// Okta's org-wide cap of 75 requests in flight: one more answers 429); entra-inbound (Entra ID's
    /// inbound provisioning: POST /bulkUpload of up to 50 users answers 202 and is
    /// processed --inbound-delay later, GET /bulkUpload/{request-id} tells the outcome).
    #[arg(long, default_value = "rfc", value_parser = ["rfc", "aws", "entra-api", "core-only", "slack", "github-emu", "entra-graph", "okta", "entra-inbound"])]
    pub profile: String,
    /// With --profile entra-inbound: how long after its 202 an upload is processed.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub inbound_delay: Duration,
    /// With a rate-limited profile: its limits this many times faster (windows divided),
    /// for demonstrations and tests that must end in seconds.
    #[arg(long, default_value = "1", value_parser = parse_positive)]
    pub limits_speedup: f64,
    /// A rate limit of the server's own, in --limit's form (e.g. 'all=200/s,burst=20'):
    /// refused with 429 over it, as a service whose limit is not published; repeatable,
    /// added to the profile's.
    #[arg(long = "limit", value_parser = crate::limits::Bucket::parse)]
    pub limits: Vec<crate::limits::Bucket>,
    /// Public base URL used in meta.location (default: from the Host header).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Create resources asynchronously: POST answers 202 and the resource becomes visible
    /// after this delay (e.g. 2s), as invitation-style providers do.
    #[arg(long, value_parser = parse_duration)]
    pub async_create: Option<Duration>,
    /// Largest request body accepted (413 beyond it).
    #[arg(long, default_value = "10M", value_parser = parse_count)]
    pub max_body: u64,
    /// Bulk maxOperations advertised and enforced.
    #[arg(long, default_value = "1000", value_parser = parse_count)]
    pub bulk_max_operations: u64,
    /// Bulk maxPayloadSize in bytes, advertised and enforced.
    #[arg(long, default_value = "1M", value_parser = parse_count)]
    pub bulk_max_payload: u64,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate signed by the CA(s) in this PEM file (mutual TLS);
    /// needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Speak HTTP/2 too: ALPN h2 on TLS, prior knowledge (h2c) on plain connections.
    #[arg(long)]
    pub http2: bool,
    /// Issue short-lived bearer tokens at POST /oauth2/token (OAuth 2.0 client
    /// credentials, client_secret_basic or _post) and accept them on every SCIM
    /// endpoint. The client id is --oauth-client-id, the secret SCIM_OAUTH_CLIENT_SECRET
    /// or --oauth-client-secret-file.
    #[arg(long)]
    pub oauth: bool,
    /// Client id the token endpoint accepts.
    #[arg(long, default_value = "scimload", requires = "oauth")]
    pub oauth_client_id: String,
    /// Read the client secret the token endpoint accepts from this file (first line).
    #[arg(long, requires = "oauth")]
    pub oauth_client_secret_file: Option<PathBuf>,
    /// Lifetime of the tokens --oauth issues (expires_in), e.g. 2s to test renewal.
    #[arg(long, default_value = "1h", value_parser = parse_duration, requires = "oauth")]
    pub token_ttl: Duration,
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// How to reach a target and what to show it: TLS, HTTP version, credentials, headers.
/// One set for import, cleanup and bench, so a target reached by one is reached by all.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Connection and credentials")]
pub struct ConnectArgs {
    /// Bearer token from this file (first line); else from SCIM_TOKEN. Never a flag
    /// value: those land in shell history.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Also trust the CA certificate(s) in this PEM file (a private CA or a self-signed
    /// server); the public (Mozilla) roots are trusted anyway.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM, chain) for mutual TLS; needs --client-key.
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Do not verify the target's certificate (test servers only; a warning is printed
    /// on every run and the results record it).
    #[arg(long)]
    pub insecure: bool,
    /// Speak HTTP/1.1 only.
    #[arg(long, conflicts_with = "http2")]
    pub http1: bool,
    /// Speak HTTP/2 only: ALPN h2 on https://, prior knowledge (h2c) on http://.
    /// Without either flag: HTTP/1.1, or HTTP/2 when TLS negotiates it.
    #[arg(long)]
    pub http2: bool,
    /// OAuth 2.0 client credentials (RFC 6749 §4.4): the token endpoint, e.g.
    /// https://login.microsoftonline.com/TENANT/oauth2/v2.0/token. The client id comes
    /// from --oauth-client-id or SCIM_OAUTH_CLIENT_ID, the secret from
    /// SCIM_OAUTH_CLIENT_SECRET or --oauth-client-secret-file. Tokens are renewed before
    /// they expire and once after a 401.
    #[arg(long, conflicts_with = "token_command")]
    pub oauth_token_url: Option<String>,
    /// OAuth client id (default: SCIM_OAUTH_CLIENT_ID).
    #[arg(long, env = "SCIM_OAUTH_CLIENT_ID")]
    pub oauth_client_id: Option<String>,
    /// Read the OAuth client secret from this file (first line); else
    /// SCIM_OAUTH_CLIENT_SECRET.
    #[arg(long)]
    pub oauth_client_secret_file: Option<PathBuf>,
    /// OAuth scope, e.g. api://APP-ID/.default (Entra ID).
    #[arg(long)]
    pub oauth_scope: Option<String>,
    /// OAuth audience (Auth0, Okta custom authorization servers).
    #[arg(long)]
    pub oauth_audience: Option<String>,
    /// OAuth resource indicator (RFC 8707).
    #[arg(long)]
    pub oauth_resource: Option<String>,
    /// How the client authenticates at the token endpoint: basic (client_secret_basic)
    /// or post (client_secret_post).
    #[arg(long, value_enum, default_value = "basic")]
    pub oauth_auth: crate::client::auth::ClientAuthMethod,
    /// A command that prints a token, run by sh before the run and again every
    /// --token-refresh, or after a 401: e.g. 'az account get-access-token --query
    /// accessToken -o tsv'. JSON with access_token and expires_in is understood too.
    #[arg(long)]
    pub token_command: Option<String>,
    /// How long a token from --token-command is used before the command runs again.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub token_refresh: Duration,
    /// Extra request header, 'Name: value' (repeatable), e.g. 'User-Agent: acme-sync/1'.
    /// Headers named like credentials are shown as *** wherever headers are shown.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
}

/// Fault injection, reproducible for a given seed.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Fault injection")]
pub struct FaultArgs {
    /// Seed of every fault decision.
    #[arg(long, default_value_t = 1)]
    pub fault_seed: u64,
    /// Added latency per request: 5ms, 2ms..10ms (uniform) or exp:5ms (exponential mean).
    #[arg(long, value_parser = Latency::parse)]
    pub latency: Option<Latency>,
    /// Fraction of requests answered 503 Service Unavailable (0.05 or 5%).
    #[arg(long, default_value = "0", value_parser = parse_fraction)]
    pub fail_503: f64,
    /// Fraction of requests answered 429 Too Many Requests with Retry-After.
    #[arg(long, default_value = "0", value_parser = parse_fraction)]
    pub fail_429: f64,
    /// Retry-After sent with 429 and 503 answers.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub retry_after: Duration,
    /// Answer 429 above this many requests per second (e.g. 500 or 500/s).
    #[arg(long, value_parser = parse_rate)]
    pub rate_cap: Option<f64>,
    /// Fraction of requests whose connection is closed without an answer.
    #[arg(long, default_value = "0", value_parser = parse_fraction)]
    pub drop: f64,
    /// Fraction of requests that are applied and whose answer is then lost (the
    /// connection is closed instead): a create that happened although the client never
    /// heard so.
    #[arg(long, default_value = "0", value_parser = parse_fraction)]
    pub lose_answer: f64,
    /// Time each operation of a /Bulk request costs (a server that runs a batch's
    /// operations one after the other): 2ms makes a 100-operation batch take 200 ms.
    #[arg(long, default_value = "0s", value_parser = crate::units::parse_duration)]
    pub bulk_op_delay: std::time::Duration,
    /// Stop answering AT after start for DURATION, e.g. 5s+3s (repeatable).
    #[arg(long = "stall", value_parser = Stall::parse)]
    pub stalls: Vec<Stall>,
    /// Inject the faults above into requests of this operation only (create_user,
    /// patch_members, get_user, …: the names of the reports' operation tables).
    #[arg(long, value_parser = parse_op)]
    pub faults_on: Option<crate::metrics::Op>,
}

/// An operation by its report name.
fn parse_op(s: &str) -> Result<crate::metrics::Op, String> {
    crate::metrics::Op::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = crate::metrics::Op::ALL.iter().map(|o| o.as_str()).collect();
        format!("'{s}' is not an operation; use one of {}", names.join(", "))
    })
}

/// A factor above 0.
fn parse_positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(f),
        _ => Err(format!("'{s}' is not a factor above 0, e.g. 60")),
    }
}
