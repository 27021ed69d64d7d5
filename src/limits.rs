//! What the services people onboard into allow, as data: each preset is a set of token
//! buckets over the import's operations (a rate, a window and a burst, counting requests or
//! members added), with the source of its figures. One table, like the dialects, read by
//! `scimload plan` and by everything that projects an onboarding time under a vendor's
//! limits; `--limit` adds buckets of the same form.
//!
//! Figures are as the vendors publish them (each preset names its source); a vendor
//! that changes them is caught by the adaptive throttle, which still reacts to 429s.

use std::time::Duration;

use crate::metrics::Op;

/// What a bucket counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cost {
    /// One token per request.
    Requests,
    /// One token per member a PATCH adds (GitHub counts users added to a group).
    Members,
}

/// One published limit: `limit` units per `window`, `burst` of them at once.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Bucket {
    pub name: String,
    pub ops: Vec<Op>,
    pub limit: f64,
    #[serde(rename = "window_seconds", serialize_with = "secs")]
    pub window: Duration,
    pub burst: f64,
    pub cost: Cost,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Bucket {
    /// Tokens per second.
    pub fn rate(&self) -> f64 {
        self.limit / self.window.as_secs_f64().max(1e-9)
    }

    /// A user's `--limit`: `OPS=N/WINDOW[,burst=B][,per=request|member]`, where OPS is an
    /// operation (`create_user`), several joined by `+`, or `writes`, `reads`, `all`;
    /// WINDOW is `s`, `min`, `h` or a duration (`2.5min`, `150s`). Without a burst, the
    /// whole window's limit may go at once (as a fixed window allows).
    pub fn parse(text: &str) -> Result<Bucket, String> {
        let form =
            "write OPS=N/WINDOW[,burst=B][,per=request|member], e.g. create_user=180/min,burst=20";
        let mut parts = text.split(',');
        let head = parts.next().unwrap_or_default();
        let (ops_text, rate) = head
            .split_once('=')
            .ok_or_else(|| format!("--limit '{text}': {form}"))?;
        let mut ops = Vec::new();
        for name in ops_text.split('+').map(str::trim) {
            match name {
                "writes" => ops.extend(WRITES),
                "reads" => ops.extend(READS),
                "all" => ops.extend(Op::ALL),
                _ => ops.push(Op::from_name(name).ok_or_else(|| {
                    format!(
                        "--limit '{text}': '{name}' is not an operation; use writes, reads, all or one of {}",
                        Op::ALL.map(Op::as_str).join(", ")
                    )
                })?),
            }
        }
        let (n, window) = rate
            .split_once('/')
            .ok_or_else(|| format!("--limit '{text}': {form}"))?;
        let limit: f64 = crate::units::parse_count(n.trim())
            .map_err(|e| format!("--limit '{text}': {e}"))? as f64;
        let window =
            parse_window(window.trim()).map_err(|e| format!("--limit '{text}': {e}; {form}"))?;
        let mut bucket = Bucket {
            name: format!("{} (--limit)", ops_text.trim()),
            ops,
            limit,
            window,
            burst: limit,
            cost: Cost::Requests,
        };
        for p in parts {
            match p.trim().split_once('=') {
                Some(("burst", b)) => {
                    bucket.burst = crate::units::parse_count(b.trim())
                        .map_err(|e| format!("--limit '{text}': burst: {e}"))?
                        as f64
                }
                Some(("per", "request")) => bucket.cost = Cost::Requests,
                Some(("per", "member")) => bucket.cost = Cost::Members,
                _ => {
                    return Err(format!(
                        "--limit '{text}': '{p}' is not burst=B or per=request|member; {form}"
                    ))
                }
            }
        }
        if bucket.limit <= 0.0 || bucket.burst < 1.0 {
            return Err(format!(
                "--limit '{text}': the limit and the burst must be at least 1"
            ));
        }
        Ok(bucket)
    }
}

/// `s`, `min`, `h`, or a duration: `150s`, `2.5min`, `10m`.
fn parse_window(w: &str) -> Result<Duration, String> {
    let one = match w {
        "s" | "sec" | "second" => Some(1.0),
        "min" | "m" | "minute" => Some(60.0),
        "h" | "hour" => Some(3600.0),
        _ => None,
    };
    if let Some(s) = one {
        return Ok(Duration::from_secs_f64(s));
    }
    let d = match w.strip_suffix("min") {
        Some(n) => crate::units::parse_duration(&format!("{n}m"))?,
        None => crate::units::parse_duration(w)?,
    };
    if d.is_zero() {
        return Err(format!("'{w}' is not a window; use s, min, h or e.g. 150s"));
    }
    Ok(d)
}

/// The operations that change a target.
pub const WRITES: [Op; 12] = [
    Op::CreateUser,
    Op::UpdateUser,
    Op::PatchManager,
    Op::CreateGroup,
    Op::PatchMembers,
    Op::RemoveMembers,
    Op::PutUser,
    Op::PatchUser,
    Op::DeactivateUser,
    Op::DeleteUser,
    Op::Bulk,
    Op::BulkUpload,
];

/// The operations that only read.
pub const READS: [Op; 8] = [
    Op::LookupUser,
    Op::LookupGroup,
    Op::GetUser,
    Op::FilterUsers,
    Op::ListPage,
    Op::GetGroup,
    Op::GetGroupNoMembers,
    Op::UploadStatus,
];

/// Users per Entra inbound `/bulkUpload` request at most (its published maximum).
pub const INBOUND_BATCH: u64 = 50;

/// `--target-limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    Slack,
    GithubEmu,
    EntraGraph,
    EntraInbound,
    Okta,
    Aws,
    None,
}

/// A preset's buckets and where their figures come from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetLimits {
    pub name: String,
    pub source: String,
    pub buckets: Vec<Bucket>,
    /// Requests in flight the service allows at most (Okta's org-wide concurrency).
    pub max_in_flight: Option<usize>,
    /// What the preset cannot say (no published figure).
    pub note: String,
    /// Users one request carries, for a service that takes users only in batches
    /// (Entra's inbound `/bulkUpload`: 50); `None` for SCIM services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_per_request: Option<u64>,
    /// How many times faster than published the windows run ([`TargetLimits::scaled`]);
    /// projections are always of the published limits.
    #[serde(skip)]
    pub speedup: f64,
}

fn bucket(name: &str, ops: &[Op], limit: f64, window_s: f64, burst: f64, cost: Cost) -> Bucket {
    Bucket {
        name: name.into(),
        ops: ops.to_vec(),
        limit,
        window: Duration::from_secs_f64(window_s),
        burst,
        cost,
    }
}

impl Preset {
    pub fn limits(self) -> TargetLimits {
        let r = Cost::Requests;
        let (name, source, buckets, max_in_flight, note) = match self {
            Preset::Slack => (
                "slack",
                "Slack SCIM API, rate limits (api.slack.com/admins/scim): writes 600/min (burst 180), reads 1,000/min, POST Users 180/min (burst 20), PATCH Groups 180/min (burst 80)",
                vec![
                    bucket("writes", &WRITES, 600.0, 60.0, 180.0, r),
                    bucket("reads", &READS, 1000.0, 60.0, 1000.0, r),
                    bucket("POST /Users", &[Op::CreateUser], 180.0, 60.0, 20.0, r),
                    bucket(
                        "PATCH /Groups",
                        &[Op::PatchMembers, Op::RemoveMembers],
                        180.0,
                        60.0,
                        80.0,
                        r,
                    ),
                ],
                None,
                "",
            ),
            Preset::GithubEmu => (
                "github-emu",
                "GitHub Enterprise Managed Users, SCIM provisioning (docs.github.com, 'Provisioning users and groups with SCIM using the REST API'): assign no more than 1,000 users per hour, add no more than 1,000 users to a group per hour",
                vec![
                    bucket("user assignments", &[Op::CreateUser], 1000.0, 3600.0, 1000.0, r),
                    bucket(
                        "users added to groups",
                        &[Op::PatchMembers],
                        1000.0,
                        3600.0,
                        1000.0,
                        Cost::Members,
                    ),
                ],
                None,
                "",
            ),
            Preset::EntraGraph => (
                "entra-graph",
                "Microsoft Graph throttling limits, identity and access (learn.microsoft.com, 'Microsoft Graph service-specific throttling limits'): 3,000 writes per 2.5 min per app and tenant; 18,000 writes per 5 min per tenant",
                vec![
                    bucket("app writes", &WRITES, 3000.0, 150.0, 3000.0, r),
                    bucket("tenant writes", &WRITES, 18000.0, 300.0, 18000.0, r),
                ],
                None,
                "the resource-unit limits per 10 s (3,500 / 5,000 / 8,000 by tenant size) are not modelled",
            ),
            Preset::EntraInbound => (
                "entra-inbound",
                "Microsoft Graph, synchronizationJob: bulkUpload (learn.microsoft.com, 'Perform bulkUpload'): 40 requests per second, at most 50 user operations per request",
                vec![bucket("bulkUpload requests", &[Op::BulkUpload], 40.0, 1.0, 40.0, r)],
                None,
                "users only, 50 a request; processing after the 202 is asynchronous and not limited here",
            ),
            Preset::Okta => (
                "okta",
                "Okta rate limits, concurrency (developer.okta.com, 'Concurrent rate limits'): 75 requests in flight org-wide",
                vec![],
                Some(75),
                "Okta limits concurrency, not a rate: the time follows the measured speed at up to 75 requests in flight",
            ),
            Preset::Aws => (
                "aws",
                "AWS IAM Identity Center SCIM: no SCIM-specific figure published; it answers 429 ThrottlingException",
                vec![],
                None,
                "no published figure: pacing is left to the adaptive throttle (429 ThrottlingException)",
            ),
            Preset::None => ("none", "no limits", vec![], None, ""),
        };
        TargetLimits {
            name: name.into(),
            source: source.into(),
            buckets,
            max_in_flight,
            note: note.into(),
            users_per_request: (self == Preset::EntraInbound).then_some(INBOUND_BATCH),
            speedup: 1.0,
        }
    }
}

impl TargetLimits {
    /// A preset with the user's `--limit` buckets added.
    pub fn with(mut self, extra: Vec<Bucket>) -> TargetLimits {
        if !extra.is_empty() {
            self.name = if self.buckets.is_empty() && self.name == "none" {
                "--limit".into()
            } else {
                format!("{} + --limit", self.name)
            };
        }
        self.buckets.extend(extra);
        self
    }
}

/// What an export asks of a target: the counts a plan spreads over the phases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportShape {
    pub users: u64,
    /// Manager references to a row further down the file: set by a PATCH after the
    /// creates (the others travel in the create).
    pub manager_patches: u64,
    pub memberships: u64,
    /// Each group's member count.
    pub group_sizes: Vec<u64>,
}

impl ExportShape {
    /// The import's phases against a target without /Bulk (none of the rate-limited
    /// services has one): every user created; a PATCH for each manager further down (a
    /// lower bound: under concurrency a manager whose create is not answered yet is
    /// patched too); every group looked up, created, then filled by PATCHes of
    /// `member_batch` members.
    pub fn phases(&self, member_batch: u64) -> Vec<PhaseLoad> {
        let batch = member_batch.max(1);
        let groups = self.group_sizes.len() as u64;
        let patches: u64 = self.group_sizes.iter().map(|n| n.div_ceil(batch)).sum();
        vec![
            PhaseLoad {
                phase: "users",
                requests: vec![(Op::CreateUser, self.users)],
                members: 0,
            },
            PhaseLoad {
                phase: "managers",
                requests: vec![(Op::PatchManager, self.manager_patches)],
                members: 0,
            },
            PhaseLoad {
                phase: "groups",
                requests: vec![
                    (Op::LookupGroup, groups),
                    (Op::CreateGroup, groups),
                    (Op::PatchMembers, patches),
                ],
                members: self.memberships,
            },
        ]
    }
}

impl ExportShape {
    /// The phases under `limits`: an inbound API that takes users in batches gets one
    /// phase of batches (managers travel in them as externalId references, groups are
    /// not its business); a SCIM service gets [`ExportShape::phases`].
    pub fn phases_under(&self, limits: &TargetLimits, member_batch: u64) -> Vec<PhaseLoad> {
        match limits.users_per_request {
            Some(per) => vec![PhaseLoad {
                phase: "users",
                requests: vec![(Op::BulkUpload, self.users.div_ceil(per.max(1)))],
                members: 0,
            }],
            None => self.phases(member_batch),
        }
    }
}

/// One phase of an onboarding, as the import runs them one after another: users, then
/// the managers not known at create time, then groups and their members.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseLoad {
    pub phase: &'static str,
    /// Requests per operation.
    pub requests: Vec<(Op, u64)>,
    /// Members the phase's member PATCHes add (what a per-member bucket counts).
    pub members: u64,
}

/// How long one phase takes under the buckets, and which bucket sets it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhaseTime {
    pub phase: String,
    pub requests: u64,
    pub seconds: f64,
    /// The bucket that takes longest in this phase (`None`: no limit applies).
    pub binding: Option<String>,
}

/// The projection of a whole onboarding under the limits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Projection {
    pub limits: String,
    pub phases: Vec<PhaseTime>,
    pub requests: u64,
    pub seconds: f64,
    /// The bucket that binds for the longest share of the time.
    pub binding: Option<String>,
}

/// Token buckets over the phases, request by request, in order: every bucket starts
/// full; each request goes as soon as every bucket that counts it has its tokens (a
/// member PATCH costs a per-member bucket its share of the phase's members), and waits
/// until then; what buckets refill meanwhile, up to their bursts, carries on. Within a
/// phase the requests go in the order given (for groups: the creates, then the member
/// PATCHes). A request that waits on one bucket may find another empty when it goes, so
/// the buckets cannot be judged apart. The target's own speed is not in it: where no
/// bucket binds, the measured speed decides.
pub fn project(limits: &TargetLimits, phases: &[PhaseLoad]) -> Projection {
    let rates: Vec<f64> = limits.buckets.iter().map(Bucket::rate).collect();
    let mut tokens: Vec<f64> = limits.buckets.iter().map(|b| b.burst).collect();
    let mut out = Vec::new();
    let mut waited_total = vec![0.0f64; limits.buckets.len()];
    for p in phases {
        let patches: u64 = p
            .requests
            .iter()
            .filter(|(op, _)| *op == Op::PatchMembers)
            .map(|(_, n)| n)
            .sum();
        let per_patch = p.members as f64 / patches.max(1) as f64;
        let mut seconds = 0.0f64;
        let mut waited = vec![0.0f64; limits.buckets.len()];
        for &(op, n) in &p.requests {
            let counted: Vec<usize> = (0..limits.buckets.len())
                .filter(|&i| limits.buckets[i].ops.contains(&op))
                .collect();
            if counted.is_empty() {
                continue;
            }
            let cost = |i: usize| match limits.buckets[i].cost {
                Cost::Requests => 1.0,
                Cost::Members => per_patch,
            };
            for _ in 0..n {
                let (mut wait, mut by) = (0.0f64, None);
                for &i in &counted {
                    let w = (cost(i) - tokens[i]) / rates[i];
                    if w > wait {
                        (wait, by) = (w, Some(i));
                    }
                }
                if wait > 0.0 {
                    for (i, t) in tokens.iter_mut().enumerate() {
                        *t = (*t + rates[i] * wait).min(limits.buckets[i].burst);
                    }
                    seconds += wait;
                    if let Some(i) = by {
                        waited[i] += wait;
                    }
                }
                for &i in &counted {
                    tokens[i] -= cost(i);
                }
            }
        }
        let binding = (0..limits.buckets.len())
            .filter(|&i| waited[i] > 0.0)
            .max_by(|&a, &b| waited[a].total_cmp(&waited[b]))
            .map(|i| limits.buckets[i].name.clone());
        for (t, w) in waited_total.iter_mut().zip(&waited) {
            *t += w;
        }
        out.push(PhaseTime {
            phase: p.phase.to_string(),
            requests: p.requests.iter().map(|(_, n)| n).sum(),
            seconds,
            binding,
        });
    }
    let binding = (0..limits.buckets.len())
        .filter(|&i| waited_total[i] > 0.0)
        .max_by(|&a, &b| waited_total[a].total_cmp(&waited_total[b]))
        .map(|i| limits.buckets[i].name.clone());
    Projection {
        limits: limits.name.clone(),
        requests: out.iter().map(|p| p.requests).sum(),
        seconds: out.iter().map(|p| p.seconds).sum(),
        binding,
        phases: out,
    }
}

/// The operation a request is, from its method and path (`/Users?filter=…`,
/// `/scim/v2/Groups/7`): what a published limit counts. A user's PATCH is `update_user`
/// here, manager or not (no vendor limits them apart; see [`classify_request`]).
pub fn classify(method: &hyper::Method, path: &str) -> Op {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segs
        .iter()
        .rposition(|s| matches!(*s, "Users" | "Groups" | "Bulk" | "bulkUpload" | ".search"));
    let (kind, has_id) = match at {
        Some(i) => (segs[i], i + 1 < segs.len()),
        None => ("", false),
    };
    let searched = segs.last() == Some(&".search");
    use hyper::Method as M;
    match (method, kind, has_id) {
        (&M::POST, "Bulk", _) => Op::Bulk,
        (&M::POST, "bulkUpload", _) => Op::BulkUpload,
        (&M::GET, "bulkUpload", _) => Op::UploadStatus,
        (&M::POST, ".search", _) => Op::FilterUsers,
        (_, _, _) if searched => Op::FilterUsers,
        (&M::POST, "Users", _) => Op::CreateUser,
        (&M::POST, "Groups", _) => Op::CreateGroup,
        (&M::PUT | &M::PATCH, "Users", _) => Op::UpdateUser,
        (&M::PUT | &M::PATCH, "Groups", _) => Op::PatchMembers,
        (&M::DELETE, _, _) => Op::DeleteUser,
        (&M::GET, "Users", true) => Op::GetUser,
        (&M::GET, "Users", false) => Op::LookupUser,
        (&M::GET, "Groups", true) => Op::GetGroup,
        (&M::GET, "Groups", false) => Op::LookupGroup,
        _ => Op::ListPage,
    }
}

/// As [`classify`], with the body: a small PATCH of a user that sets its manager is
/// `patch_manager` (what the import's manager phase sends), so a limit of one's own on
/// it paces just those.
pub fn classify_request(method: &hyper::Method, path: &str, body: Option<&[u8]>) -> Op {
    let op = classify(method, path);
    let manager_only =
        body.is_some_and(|b| b.len() < 1024 && memchr::memmem::find(b, b"manager").is_some());
    if op == Op::UpdateUser && method == hyper::Method::PATCH && manager_only {
        Op::PatchManager
    } else {
        op
    }
}

/// Members a group PATCH adds (what GitHub's group limit counts): the values of its
/// `add` operations on `members`, path-less ones included.
pub fn members_added(body: &[u8]) -> u64 {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    let ops = v
        .get("Operations")
        .and_then(|o| o.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    ops.iter()
        .filter(|o| {
            o.get("op")
                .and_then(|x| x.as_str())
                .is_some_and(|x| x.eq_ignore_ascii_case("add"))
        })
        .map(|o| {
            let value = o.get("value");
            let members = match o.get("path").and_then(|p| p.as_str()) {
                Some(p) if p.eq_ignore_ascii_case("members") => value,
                Some(_) => None,
                None => value.and_then(|v| v.get("members")),
            };
            match members {
                Some(serde_json::Value::Array(a)) => a.len() as u64,
                Some(serde_json::Value::Object(_)) => 1,
                _ => 0,
            }
        })
        .sum()
}

/// A bucket's state: tokens at an instant. Tokens may run below zero on the client,
/// where a request takes its tokens and waits out the debt (so concurrent senders queue
/// in order); a server refuses instead.
#[derive(Debug)]
struct Tokens {
    tokens: f64,
    at: std::time::Instant,
}

/// Token buckets shared by every request of a client (pacing: a request waits until its
/// buckets allow it) or of a server (enforcing: a request its buckets do not allow is
/// refused, with the time until they would).
#[derive(Debug)]
pub struct Buckets {
    buckets: Vec<(Bucket, std::sync::Mutex<Tokens>)>,
    /// Whether a bucket counts members (then group PATCH bodies are read).
    pub counts_members: bool,
}

impl Buckets {
    /// A server's buckets, as published; `None` when the limits hold none.
    pub fn new(limits: &TargetLimits) -> Option<std::sync::Arc<Buckets>> {
        Buckets::with_reserve(limits, 0.0)
    }

    /// A client's buckets: the same rates, with a tenth of each burst (at least one
    /// token) left unused, so requests that arrive closer together than they were sent
    /// (network jitter) find tokens at the server instead of a 429.
    pub fn pacing(limits: &TargetLimits) -> Option<std::sync::Arc<Buckets>> {
        Buckets::with_reserve(limits, 0.1)
    }

    fn with_reserve(limits: &TargetLimits, reserve: f64) -> Option<std::sync::Arc<Buckets>> {
        if limits.buckets.is_empty() {
            return None;
        }
        let now = std::time::Instant::now();
        Some(std::sync::Arc::new(Buckets {
            counts_members: limits.buckets.iter().any(|b| b.cost == Cost::Members),
            buckets: limits
                .buckets
                .iter()
                .map(|b| {
                    let mut b = b.clone();
                    if reserve > 0.0 {
                        b.burst = (b.burst - (b.burst * reserve).max(1.0)).max(1.0);
                    }
                    let tokens = b.burst;
                    (b, std::sync::Mutex::new(Tokens { tokens, at: now }))
                })
                .collect(),
        }))
    }

    /// Takes the tokens of one request; returns how long it must wait for them (zero:
    /// none). With `refuse`, a request that would wait takes nothing.
    pub fn take(&self, op: Op, members: u64, refuse: bool) -> std::time::Duration {
        let now = std::time::Instant::now();
        let mut states: Vec<(&Bucket, std::sync::MutexGuard<'_, Tokens>)> = self
            .buckets
            .iter()
            .filter(|(b, _)| b.ops.contains(&op))
            .map(|(b, t)| (b, t.lock().unwrap_or_else(|p| p.into_inner())))
            .collect();
        let mut wait = 0.0f64;
        for (b, t) in states.iter_mut() {
            t.tokens = (t.tokens + b.rate() * now.duration_since(t.at).as_secs_f64()).min(b.burst);
            t.at = now;
            let cost = match b.cost {
                Cost::Requests => 1.0,
                Cost::Members => members as f64,
            };
            wait = wait.max((cost - t.tokens) / b.rate());
        }
        if !(refuse && wait > 0.0) {
            for (b, t) in states.iter_mut() {
                t.tokens -= match b.cost {
                    Cost::Requests => 1.0,
                    Cost::Members => members as f64,
                };
            }
        }
        std::time::Duration::from_secs_f64(wait.max(0.0))
    }

    /// Waits until the request's buckets allow it (client side).
    pub async fn pace(&self, op: Op, members: u64) {
        let now = std::time::Instant::now();
        let wait = self.take(op, members, false);
        if !wait.is_zero() {
            crate::dispatch::timer::sleep_precisely(now + wait).await;
        }
    }
}

impl TargetLimits {
    /// The same limits with every burst `factor` times smaller (at least one token): a
    /// test of a few thousand requests under a burst of thousands would see no pacing.
    pub fn bursts_scaled(mut self, factor: f64) -> TargetLimits {
        for b in &mut self.buckets {
            b.burst = (b.burst * factor).max(1.0).round();
        }
        self
    }

    /// The same limits `factor` times faster (windows divided by it, bursts kept): tests
    /// and demonstrations that must end in seconds, not hours.
    pub fn scaled(mut self, factor: f64) -> TargetLimits {
        for b in &mut self.buckets {
            b.window = b.window.div_f64(factor.max(1e-9));
        }
        self.speedup *= factor;
        self
    }

    /// The limits as published (undoing [`TargetLimits::scaled`]).
    pub fn published(&self) -> TargetLimits {
        let mut l = self.clone();
        for b in &mut l.buckets {
            b.window = b.window.mul_f64(self.speedup);
        }
        l.speedup = 1.0;
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_burst_cost_and_windows() {
        let b = Bucket::parse("create_user=180/min,burst=20").unwrap();
        assert_eq!(b.ops, [Op::CreateUser]);
        assert_eq!((b.limit, b.burst, b.rate()), (180.0, 20.0, 3.0));
        let b = Bucket::parse("writes=3000/2.5min").unwrap();
        assert_eq!((b.window, b.burst), (Duration::from_secs(150), 3000.0));
        assert_eq!(b.ops.len(), WRITES.len());
        let b = Bucket::parse("patch_members=1k/h,per=member").unwrap();
        assert_eq!((b.limit, b.cost), (1000.0, Cost::Members));
        for bad in [
            "create_user",
            "nope=1/s",
            "create_user=1/fortnight",
            "create_user=5/s,bust=2",
        ] {
            assert!(Bucket::parse(bad).unwrap_err().contains("--limit"), "{bad}");
        }
    }

    #[test]
    fn requests_are_classified_by_method_and_path() {
        use hyper::Method as M;
        for (m, p, op) in [
            (M::POST, "/Users", Op::CreateUser),
            (M::POST, "/scim/v2/Groups", Op::CreateGroup),
            (M::PATCH, "/Users/1", Op::UpdateUser),
            (M::PUT, "/Users/1", Op::UpdateUser),
            (M::PATCH, "/Groups/9", Op::PatchMembers),
            (
                M::GET,
                "/Users?filter=userName%20eq%20%22a%22",
                Op::LookupUser,
            ),
            (M::GET, "/Users/1", Op::GetUser),
            (M::GET, "/Groups/1?excludedAttributes=members", Op::GetGroup),
            (M::POST, "/Bulk", Op::Bulk),
            (M::POST, "/Users/.search", Op::FilterUsers),
            (M::DELETE, "/Groups/1", Op::DeleteUser),
        ] {
            assert_eq!(classify(&m, p), op, "{m} {p}");
        }
        let body = br#"{"Operations":[{"op":"add","path":"members","value":[{"value":"a"},{"value":"b"}]},{"op":"Add","value":{"members":[{"value":"c"}]}},{"op":"remove","path":"members[value eq \"d\"]"}]}"#;
        assert_eq!(members_added(body), 3);
    }

    #[test]
    fn an_inbound_plan_counts_uploads_of_fifty() {
        let l = Preset::EntraInbound.limits();
        let shape = ExportShape {
            users: 40_000,
            manager_patches: 900,
            memberships: 80_000,
            group_sizes: vec![40_000, 40_000],
        };
        let p = project(&l, &shape.phases_under(&l, 100));
        // 800 uploads: 40 at once, the other 760 at 40 a second; nothing else is sent.
        assert_eq!(p.requests, 800);
        assert!((p.seconds - 19.0).abs() < 1e-6, "{}", p.seconds);
        assert_eq!(p.binding.as_deref(), Some("bulkUpload requests"));
    }

    #[test]
    fn buckets_pace_a_client_and_refuse_for_a_server() {
        let l = TargetLimits {
            name: "t".into(),
            source: String::new(),
            buckets: vec![bucket(
                "posts",
                &[Op::CreateUser],
                10.0,
                1.0,
                2.0,
                Cost::Requests,
            )],
            max_in_flight: None,
            note: String::new(),
            users_per_request: None,
            speedup: 1.0,
        };
        let b = Buckets::new(&l).unwrap();
        assert!(b.take(Op::CreateUser, 0, true).is_zero());
        assert!(b.take(Op::CreateUser, 0, true).is_zero());
        // Burst spent: a server refuses (and takes nothing), a client waits its turn.
        let w = b.take(Op::CreateUser, 0, true);
        assert!(w > std::time::Duration::from_millis(90), "{w:?}");
        assert!(b.take(Op::CreateUser, 0, false) > std::time::Duration::from_millis(90));
        let next = b.take(Op::CreateUser, 0, false);
        assert!(
            next > std::time::Duration::from_millis(190),
            "queued after the last: {next:?}"
        );
        assert!(
            b.take(Op::GetUser, 0, true).is_zero(),
            "not counted by the bucket"
        );
    }

    #[test]
    fn a_phase_lasts_as_long_as_its_slowest_bucket_after_the_burst() {
        let l = Preset::Slack.limits();
        let p = project(
            &l,
            &[PhaseLoad {
                phase: "users",
                requests: vec![(Op::CreateUser, 1000)],
                members: 0,
            }],
        );
        // POST Users: 20 at once, then 3 a second; the writes bucket (180, then 10 a
        // second) would need only 82 s.
        assert!((p.seconds - 980.0 / 3.0).abs() < 1e-9, "{p:?}");
        assert_eq!(p.binding.as_deref(), Some("POST /Users"));
        let none = project(&Preset::None.limits(), &[]);
        assert_eq!((none.seconds, none.binding), (0.0, None));
    }
}
