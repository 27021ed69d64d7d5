//! Before measuring, a scenario puts on the server what it will read (users, a group);
//! after, `--cleanup` takes away everything the run created. Both go through the
//! import's client and retry policy: seeding must survive the same 429s and 503s the
//! benchmark is about to measure, and is never itself measured.

use std::sync::Arc;

use hyper::Method;
use serde_json::{json, Value};

use super::scenario::{Kind, Paging, Params, Person, SeedData, Seeded};
use crate::client::dialect::GENERIC;
use crate::client::fan::fan_out;
use crate::client::reply::id_in;
use crate::client::retry::{execute, Executed};
use crate::client::{Decision, RetryPolicy, ScimClient};
use crate::dispatch::schedule::Shard;
use crate::scim::filter::query_escape;
use crate::scim::urns;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("seeding failed: {what} answered {detail}; check the target URL and token, or seed fewer users (--users)")]
    Failed { what: String, detail: String },
}

fn detail(e: &Executed) -> String {
    match &e.outcome {
        Ok(r) => format!(
            "{} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
                .chars()
                .take(200)
                .collect::<String>()
        ),
        Err(t) => t.to_string(),
    }
}

/// Creates one resource, or finds it when it exists already (a re-run with the same
/// `--run-id`).
async fn create_or_find(
    client: &ScimClient,
    policy: &RetryPolicy,
    endpoint: &str,
    body: &[u8],
    attr: &str,
    value: &str,
    seed: u64,
) -> Result<String, SeedError> {
    let e = execute(
        client,
        policy,
        Method::POST,
        endpoint,
        Some(body),
        true,
        seed,
    )
    .await;
    if let (Decision::Done, Ok(r)) = (&e.decision, &e.outcome) {
        if r.is_success() {
            if let Some(id) = id_in(&r.body) {
                return Ok(id);
            }
        }
    }
    if !matches!(e.decision, Decision::Conflict | Decision::LookUpFirst) {
        return Err(SeedError::Failed {
            what: format!("POST {endpoint}"),
            detail: detail(&e),
        });
    }
    let filter = query_escape(&format!("{attr} eq {}", json!(value)));
    let path = format!("{endpoint}?filter={filter}");
    let found = execute(client, policy, Method::GET, &path, None, false, seed).await;
    let id = found.outcome.as_ref().ok().and_then(|r| {
        let v: Value = serde_json::from_slice(&r.body).ok()?;
        v["Resources"][0]["id"].as_str().map(str::to_string)
    });
    id.ok_or_else(|| SeedError::Failed {
        what: format!("GET {endpoint} (after a conflict)"),
        detail: detail(&found),
    })
}

/// Seeds what `kind` needs for this shard. `params.paging` may be switched to cursors
/// when the server offers no index paging.
pub async fn seed(
    client: &ScimClient,
    kind: Kind,
    params: &mut Params,
    tag: &str,
    shard: Shard,
    paging_chosen: bool,
    caps: &crate::client::discovery::Capabilities,
) -> Result<SeedData, SeedError> {
    let policy = RetryPolicy::default();
    let mut data = SeedData::default();
    let numbers: Vec<u64> = match kind {
        Kind::Create => Vec::new(),
        // Each shard builds its own group from its own users.
        Kind::GroupMembers => (0..params.group_size).map(|m| shard.global(m)).collect(),
        _ => (0..params.users)
            .filter(|j| j % shard.count == shard.index)
            .collect(),
    };
    let users = {
        let (client, policy, tag) = (client.clone(), policy.clone(), tag.to_string());
        let numbers = Arc::new(numbers);
        let nums = numbers.clone();
        fan_out(nums.len(), 32, move |k| {
            let (client, policy, tag, number) =
                (client.clone(), policy.clone(), tag.clone(), numbers[k]);
            async move {
                let p = Person::new(&tag, "s", number);
                let body = p.body("Seeded", number).to_string();
                let id = create_or_find(
                    &client,
                    &policy,
                    "/Users",
                    body.as_bytes(),
                    "userName",
                    &p.user_name,
                    number,
                )
                .await?;
                Ok(Seeded { number, id })
            }
        })
        .await?
    };
    data.users = users;
    if matches!(kind, Kind::GroupMembers | Kind::Replay) {
        let name = format!("bench-{tag}-group-{}", shard.index + 1);
        let body = json!({"schemas": [urns::GROUP], "displayName": name}).to_string();
        let gid = create_or_find(
            client,
            &policy,
            "/Groups",
            body.as_bytes(),
            "displayName",
            &name,
            0,
        )
        .await?;
        if kind == Kind::Replay {
            // The first half of the users start as members (see Scenario::replay).
            let half = data.users.len() / 2;
            let ids: Vec<&str> = data.users[..half].iter().map(|u| u.id.as_str()).collect();
            for s in GENERIC.add_members(&gid, &ids, 100) {
                let body = s.body.unwrap_or_default();
                let e = execute(
                    client,
                    &policy,
                    Method::PATCH,
                    &s.path,
                    Some(&body),
                    false,
                    0,
                )
                .await;
                if !e.outcome.as_ref().is_ok_and(|r| r.is_success()) {
                    return Err(SeedError::Failed {
                        what: format!("PATCH {}", s.path),
                        detail: detail(&e),
                    });
                }
            }
        }
        data.group = Some(gid);
    }
    if matches!(kind, Kind::Paginate | Kind::Mixed) {
        let r = execute(
            client,
            &policy,
            Method::GET,
            "/Users?count=0",
            None,
            false,
            0,
        )
        .await;
        data.total_users = r
            .outcome
            .as_ref()
            .ok()
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .and_then(|v| v["totalResults"].as_u64())
            .unwrap_or(params.users);
        if !paging_chosen {
            // Cursors when the server pages only that way (the Entra ID SCIM API, AWS).
            if caps.index_paging == Some(false) && caps.cursor_paging == Some(true) {
                params.paging = Paging::Cursor;
            }
        }
    }
    Ok(data)
}
