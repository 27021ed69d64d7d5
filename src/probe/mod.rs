//! `scimload probe URL`: what a target can do, asked before an import or a benchmark
//! relies on it. Discovery first (ServiceProviderConfig, ResourceTypes, Schemas, read
//! tolerantly), then, unless `--read-only`, the behaviours themselves checked on
//! uniquely named users and groups that are deleted afterwards ([`sandbox`]). A
//! ServiceProviderConfig says what a server means to do; the sandbox says what it does.

mod sandbox;

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::client::discovery::discover;
use crate::client::schemas;
use crate::client::{ScimClient, TransportError};

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The target does it.
    Yes,
    /// The target answered, and does not.
    No,
    /// Not checked: a check it depends on failed, or `--read-only`.
    Skipped,
    /// No answer within the check's time bound.
    Timeout,
}

/// One line of the capability table.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    /// What was seen: a status, a count, what was missing.
    pub detail: String,
}

/// What `probe` found.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub target: String,
    /// ServiceProviderConfig as the import reads it.
    pub advertised: crate::client::discovery::Capabilities,
    /// The schemas of the User resource type, as published.
    pub user_schemas: Vec<String>,
    /// What is wrong with the discovery documents.
    pub discovery_notes: Vec<String>,
    pub checks: Vec<Check>,
    /// Mapped attributes that did not survive a create → GET round trip.
    pub not_kept: Vec<String>,
    pub recommended_dialect: &'static str,
    pub recommended_flags: Vec<String>,
    /// Why, one line per reason.
    pub reasons: Vec<String>,
    /// Sandbox resources that could not be deleted (ids), to remove by hand.
    pub left_behind: Vec<String>,
}

impl ProbeReport {
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    fn yes(&self, name: &str) -> bool {
        self.check(name).is_some_and(|c| c.outcome == Outcome::Yes)
    }

    fn no(&self, name: &str) -> bool {
        self.check(name).is_some_and(|c| c.outcome == Outcome::No)
    }

    /// The dialect and flags the checks point to.
    fn recommend(&mut self) {
        // Without a sandbox user nothing was checked: nothing to recommend from.
        if !self.yes("create: 201 with id and Location") {
            self.recommended_flags = Vec::new();
            self.reasons = vec![match self.check("create: 201 with id and Location") {
                Some(c) => format!(
                    "no recommendation: the sandbox user could not be created ({})",
                    c.detail
                ),
                None => "no recommendation without the sandbox checks (--read-only)".into(),
            }];
            return;
        }
        let mut flags = Vec::new();
        let mut why = Vec::new();
        let rfc_patch = self.yes("patch: path and value (RFC 7644)");
        let pathless = self.yes("patch: value object without path");
        let entra = self.yes("patch: Replace with \"False\" (Entra)");
        let put = self.yes("put: full replace");
        let dialect = if !rfc_patch && !pathless && put {
            why.push("PATCH of a user is not applied but PUT is: every change as PUT".into());
            "okta-aiw"
        } else if !rfc_patch && (pathless || entra) {
            why.push("PATCH with a path is not applied, path-less PATCH is".into());
            "entra"
        } else {
            "generic"
        };
        if self.yes("bulk: POST /Bulk with bulkId references") {
            flags.push("--bulk auto".into());
        } else {
            flags.push("--bulk never".into());
            why.push("/Bulk is not usable: one request per user".into());
        }
        if self.yes("filter: userName eq (case-insensitive)") {
            flags.push("--lookup on-conflict".into());
        } else {
            flags.push("--lookup always".into());
            why.push(
                "userName lookups are case-sensitive or broken: look up before every create".into(),
            );
        }
        if self.no("group: members removed by members[value eq \"id\"]")
            && self.yes("group: members removed by path members + value list")
        {
            why.push("members are removed only with a value list (Entra's legacy form): the entra-legacy dialect sends that".into());
        }
        if self.yes("group: members removed by members[value eq \"id\"]")
            && self.no("group: members removed by path members + value list")
        {
            why.push("members cannot be removed with a value list (the entra-legacy dialect's form): keep to a dialect that removes by filter".into());
        }
        if self.no("group: GET returns members") {
            why.push(
                "groups are read without members: memberships cannot be verified by reading back"
                    .into(),
            );
        }
        if !self.not_kept.is_empty() {
            why.push(format!(
                "not kept on a create → GET round trip: {}; leave them out of the mapping or expect --verify to report them",
                self.not_kept.join(", ")
            ));
            flags.push("--verify 1%".into());
        }
        self.recommended_dialect = dialect;
        self.recommended_flags = flags;
        self.reasons = why;
    }

    pub fn human(&self) -> String {
        let mut s = format!("probe of {}\n", self.target);
        s.push_str(&format!(
            "  advertised: bulk {}, patch {}, filter maxResults {}, paging index {} cursor {}\n",
            self.advertised
                .bulk
                .map_or("no".into(), |(o, b)| format!("{o} ops / {b} bytes")),
            yes_no(self.advertised.patch),
            self.advertised
                .filter_max_results
                .map_or("-".into(), |m| m.to_string()),
            self.advertised.index_paging.map_or("-", yes_no),
            self.advertised.cursor_paging.map_or("-", yes_no),
        ));
        s.push_str(&format!(
            "  User schemas: {}\n",
            if self.user_schemas.is_empty() {
                "none published".to_string()
            } else {
                self.user_schemas.join(", ")
            }
        ));
        for n in &self.discovery_notes {
            s.push_str(&format!("  discovery: {n}\n"));
        }
        let w = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(10);
        for c in &self.checks {
            let o = match c.outcome {
                Outcome::Yes => "yes",
                Outcome::No => "NO",
                Outcome::Skipped => "skipped",
                Outcome::Timeout => "TIMEOUT",
            };
            s.push_str(&format!("  {:<w$}  {:<8} {}\n", c.name, o, c.detail));
        }
        if !self.recommended_flags.is_empty() {
            s.push_str(&format!(
                "  recommended: --dialect {} {}\n",
                self.recommended_dialect,
                self.recommended_flags.join(" ")
            ));
        }
        for r in &self.reasons {
            if self.recommended_flags.is_empty() {
                s.push_str(&format!("  {r}\n"));
            } else {
                s.push_str(&format!("    because {r}\n"));
            }
        }
        if !self.left_behind.is_empty() {
            s.push_str(&format!(
                "  could not delete (remove by hand): {}\n",
                self.left_behind.join(", ")
            ));
        }
        s
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Options of a probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Discovery only: nothing is created.
    pub read_only: bool,
    /// Bound on each check (a hanging server is reported, not waited on).
    pub check_timeout: Duration,
    /// Custom attributes of the mapping an import will use (`--map`, `--preset`): the
    /// round trip sends a value of each one's type too.
    pub custom: Vec<(
        crate::mapping::custom::CustomTarget,
        crate::mapping::custom::ValueType,
    )>,
}

impl ProbeOptions {
    /// The custom attributes (and their types) a mapping writes.
    pub fn custom_of(
        spec: &crate::mapping::MappingSpec,
    ) -> Vec<(
        crate::mapping::custom::CustomTarget,
        crate::mapping::custom::ValueType,
    )> {
        use crate::mapping::custom::{CustomTarget, ValueType};
        spec.user
            .iter()
            .filter(|(k, _)| crate::mapping::target::index_of(k).is_none())
            .filter_map(|(k, v)| {
                let ty = match v {
                    crate::mapping::spec::ValueSpec::Full(f) => f.ty.as_deref(),
                    _ => None,
                }
                .and_then(|t| ValueType::parse(t).ok())
                .unwrap_or(ValueType::String);
                CustomTarget::parse(k).map(|c| (c, ty))
            })
            .collect()
    }
}

/// Runs the probe. Fails only when the target gives no HTTP answer at all.
pub async fn probe(
    client: &ScimClient,
    opts: &ProbeOptions,
) -> Result<ProbeReport, TransportError> {
    let advertised = discover(client).await?;
    let published = schemas::read(client).await?;
    let mut notes = published.notes.clone();
    if !advertised.discovered {
        notes.push("no usable /ServiceProviderConfig: nothing is advertised".into());
    }
    let mut report = ProbeReport {
        target: client.base().to_string(),
        advertised,
        user_schemas: published
            .user
            .as_ref()
            .map(|u| u.schemas.clone())
            .unwrap_or_default(),
        discovery_notes: notes,
        checks: Vec::new(),
        not_kept: Vec::new(),
        recommended_dialect: "generic",
        recommended_flags: Vec::new(),
        reasons: Vec::new(),
        left_behind: Vec::new(),
    };
    if !opts.read_only {
        sandbox::run(client, opts.check_timeout, &opts.custom, &mut report).await;
    }
    report.recommend();
    Ok(report)
}

/// The `id` of a SCIM resource document.
fn id_of(v: &Value) -> Option<String> {
    v.get("id").and_then(Value::as_str).map(str::to_string)
}
