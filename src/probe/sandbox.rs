//! The behaviour checks of `probe`, on users and groups named `scimload-probe-<hex>-…`
//! that are deleted at the end. Each check does what import or bench will do and then
//! reads back whether it happened: a 200 to a PATCH that changed nothing is a "no".

use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};

use super::{id_of, Check, Outcome, ProbeReport};
use crate::client::{Reply, ScimClient};
use crate::scim::urns;

/// No answer within the check's bound.
struct TimedOut;

struct Sandbox<'a> {
    client: &'a ScimClient,
    bound: Duration,
    prefix: String,
    users: Vec<String>,
    groups: Vec<String>,
    /// Names whose create got no answer: it may have been applied all the same.
    unanswered: Vec<String>,
}

type Answer = Result<(Reply, Value), TimedOut>;

impl Sandbox<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap_or_default());
        match tokio::time::timeout(self.bound, self.client.send(method, path, body, None)).await {
            Ok(Ok(r)) => {
                let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                Ok((r, v))
            }
            // The client's own bound is a timeout too.
            Ok(Err(crate::client::TransportError::Timeout)) => Err(TimedOut),
            // A transport failure is an answer of sorts: status 0.
            Ok(Err(e)) => Ok((
                Reply {
                    status: 0,
                    body: bytes::Bytes::from(e.to_string()),
                    retry_after: None,
                    exhausted: None,
                    etag: None,
                    location: None,
                    request_id: None,
                },
                Value::Null,
            )),
            Err(_) => Err(TimedOut),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    async fn patch(&self, path: &str, ops: Value) -> Answer {
        self.send(
            Method::PATCH,
            path,
            Some(json!({"schemas": [urns::PATCH_OP], "Operations": ops})),
        )
        .await
    }

    fn user_name(&self, n: usize) -> String {
        format!("{}-u{n}@probe.invalid", self.prefix)
    }

    async fn create_user(&mut self, n: usize, extra: Value) -> Answer {
        let mut body = json!({
            "schemas": [urns::USER],
            "userName": self.user_name(n),
            "externalId": format!("{}-e{n}", self.prefix),
            "name": {"givenName": "Probe", "familyName": format!("User {n}")},
            "displayName": format!("Probe User {n}"),
            "active": true,
        });
        if let (Some(b), Value::Object(x)) = (body.as_object_mut(), extra) {
            b.extend(x);
        }
        let a = self.send(Method::POST, "/Users", Some(body)).await;
        self.created("Users", self.user_name(n), &a);
        a
    }

    /// Records what a create made, or that it may have made something (no answer, or a
    /// broken connection), for the clean-up.
    fn created(&mut self, kind: &str, name: String, a: &Answer) {
        match a {
            Ok((r, v)) if r.status != 0 => {
                if let Some(id) = id_of(v) {
                    if kind == "Users" {
                        self.users.push(id);
                    } else {
                        self.groups.push(id);
                    }
                }
            }
            _ => self.unanswered.push(name),
        }
    }

    /// Deletes everything the sandbox made: by id, then every name it used is looked up
    /// and whatever is still there deleted (a create whose answer was lost, a /Bulk
    /// operation without a location). Answers what could not be removed, or confirmed
    /// absent after an unanswered create.
    async fn clean_up(&self) -> Vec<String> {
        let mut gone: Vec<String> = Vec::new();
        let mut left = Vec::new();
        // Groups first: they reference users.
        for (kind, ids) in [("Groups", &self.groups), ("Users", &self.users)] {
            for id in ids {
                let path = format!("/{kind}/{id}");
                if self.delete(&path).await {
                    gone.push(id.clone());
                } else {
                    left.push(path);
                }
            }
        }
        let mut names: Vec<(&str, &str, String)> = vec![
            ("Groups", "displayName", format!("{} group", self.prefix)),
            ("Groups", "displayName", format!("{} bulk", self.prefix)),
        ];
        names.extend((0..4).map(|n| ("Users", "userName", self.user_name(n))));
        for (kind, key, name) in names {
            let unsure = self.unanswered.contains(&name);
            let found = self.lookup(kind, key, &name).await;
            match found {
                Some(ids) => {
                    for id in ids.into_iter().filter(|i| !gone.contains(i)) {
                        let path = format!("/{kind}/{id}");
                        if !self.delete(&path).await {
                            left.push(path);
                        }
                    }
                }
                None if unsure => left.push(format!(
                    "/{kind}?filter={key} eq \"{name}\" (its create got no answer and it could not be looked up)"
                )),
                None => {}
            }
        }
        left
    }

    /// A few tries: the clean-up must not leave data behind because one answer was lost.
    async fn delete(&self, path: &str) -> bool {
        for _ in 0..3 {
            match self.send(Method::DELETE, path, None).await {
                Ok((r, _)) if r.is_success() || r.status == 404 => return true,
                Ok((r, _)) if r.status != 0 && r.status < 500 && r.status != 429 => return false,
                _ => {}
            }
        }
        false
    }

    async fn lookup(&self, kind: &str, key: &str, name: &str) -> Option<Vec<String>> {
        for _ in 0..3 {
            if let Ok((r, v)) = self.get(&filter_path(kind, key, name)).await {
                if r.is_success() {
                    return Some(resources(&v).iter().filter_map(id_of).collect());
                }
            }
        }
        None
    }
}

fn filter_path(resource: &str, attr: &str, value: &str) -> String {
    let f = format!("{attr} eq \"{value}\"");
    format!("/{resource}?filter={}", urlencode(&f))
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn status(a: &Answer) -> String {
    match a {
        Ok((r, _)) if r.status == 0 => {
            format!("no answer: {}", String::from_utf8_lossy(&r.body))
        }
        Ok((r, v)) => match v.get("scimType").and_then(Value::as_str) {
            Some(t) => format!("{} {t}", r.status),
            None => r.status.to_string(),
        },
        Err(_) => "no answer in time".into(),
    }
}

fn ok(a: &Answer) -> bool {
    matches!(a, Ok((r, _)) if r.is_success())
}

/// The resources of a list answer.
fn resources(v: &Value) -> &[Value] {
    v.get("Resources")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn member_ids(v: &Value) -> Option<Vec<String>> {
    v.get("members").and_then(Value::as_array).map(|m| {
        m.iter()
            .filter_map(|x| x.get("value").and_then(Value::as_str).map(str::to_string))
            .collect()
    })
}

struct Table<'r> {
    report: &'r mut ProbeReport,
}

impl Table<'_> {
    fn put(&mut self, name: &'static str, outcome: Outcome, detail: impl Into<String>) {
        self.report.checks.push(Check {
            name,
            outcome,
            detail: detail.into(),
        });
    }
    /// Yes when `applied`; otherwise No with what was answered; a timeout as such.
    fn verdict(&mut self, name: &'static str, a: &Answer, applied: bool, seen: &str) {
        match a {
            Err(_) => self.put(name, Outcome::Timeout, "no answer in time"),
            Ok(_) if applied => self.put(name, Outcome::Yes, status(a)),
            Ok(_) if ok(a) => self.put(name, Outcome::No, format!("{} but {seen}", status(a))),
            Ok(_) => self.put(name, Outcome::No, status(a)),
        }
    }
    fn skip(&mut self, name: &'static str, why: &str) {
        self.put(name, Outcome::Skipped, why);
    }
}

type Custom = [(
    crate::mapping::custom::CustomTarget,
    crate::mapping::custom::ValueType,
)];

pub(super) async fn run(
    client: &ScimClient,
    bound: Duration,
    custom: &Custom,
    report: &mut ProbeReport,
) {
    let prefix = format!(
        "scimload-probe-{:08x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32)
    );
    let mut sb = Sandbox {
        client,
        bound,
        prefix,
        users: Vec::new(),
        groups: Vec::new(),
        unanswered: Vec::new(),
    };
    checks(&mut sb, custom, &mut Table { report }).await;
    report.left_behind = sb.clean_up().await;
}

const CREATE: &str = "create: 201 with id and Location";
const FILTER_USERNAME: &str = "filter: userName eq (case-insensitive)";
const FILTER_EXTERNAL: &str = "filter: externalId eq";
const PATCH_RFC: &str = "patch: path and value (RFC 7644)";
const PATCH_PATHLESS: &str = "patch: value object without path";
const PATCH_ENTRA: &str = "patch: Replace with \"False\" (Entra)";
const PUT: &str = "put: full replace";
const MEMBER_ADD: &str = "group: member add by PATCH";
const MEMBERS_READ: &str = "group: GET returns members";
const EXCLUDED: &str = "group: excludedAttributes=members";
const REMOVE_FILTER: &str = "group: members removed by members[value eq \"id\"]";
const REMOVE_LIST: &str = "group: members removed by path members + value list";
const INDEX: &str = "paging: index (startIndex, count honoured)";
const CURSOR: &str = "paging: cursor (RFC 9865)";
const PAGE_CAP: &str = "paging: page cap";
const BULK: &str = "bulk: POST /Bulk with bulkId references";
const ETAG: &str = "etag: If-Match honoured";
const ROUND_TRIP: &str = "round trip: mapped attributes kept";

async fn title_is(sb: &Sandbox<'_>, path: &str, want: &str) -> bool {
    sb.get(path)
        .await
        .is_ok_and(|(_, v)| v.get("title").and_then(Value::as_str) == Some(want))
}

/// A value of `ty`, as a mapping would send it.
fn sample(ty: crate::mapping::custom::ValueType) -> Value {
    use crate::mapping::custom::ValueType::*;
    match ty {
        String => json!("probe"),
        Boolean => json!(true),
        Integer => json!(42),
        Decimal => json!(1.5),
        DateTime => json!("2024-01-31T00:00:00Z"),
        Reference => json!("https://example.com/probe"),
    }
}

/// Adds the mapping's custom attributes to the round-trip user.
fn add_custom(user: &mut Value, custom: &Custom) {
    for (ct, ty) in custom {
        let v = sample(*ty);
        let Some(u) = user.as_object_mut() else {
            return;
        };
        match &ct.schema {
            None => {
                u.insert(ct.attr.clone(), json!([{"value": v}]));
            }
            Some(urn) => {
                if let Some(s) = u.get_mut("schemas").and_then(Value::as_array_mut) {
                    if !s.iter().any(|x| x == urn.as_str()) {
                        s.push(json!(urn));
                    }
                }
                let ext = u.entry(urn.clone()).or_insert_with(|| json!({}));
                match &ct.sub {
                    None => ext[&ct.attr] = v,
                    Some(sub) => {
                        if !ext[&ct.attr].is_object() {
                            ext[&ct.attr] = json!({});
                        }
                        ext[&ct.attr][sub] = v;
                    }
                }
            }
        }
    }
}

async fn checks(sb: &mut Sandbox<'_>, custom: &Custom, t: &mut Table<'_>) {
    // The manager first, so the round-trip user can name it.
    let boss = sb.create_user(1, json!({})).await;
    let ent = urns::ENTERPRISE_USER;
    let mut full = json!({
        "schemas": [urns::USER, ent],
        "nickName": "Probe", "title": "Prober", "userType": "Employee",
        "name": {"givenName": "Probe", "familyName": "User 0", "formatted": "Probe User 0"},
        "emails": [{"value": format!("{}-u0@probe.invalid", sb.prefix), "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "work", "primary": true}],
        "addresses": [{"type": "work", "locality": "Oslo"}],
        ent: {"employeeNumber": "0", "department": "Probing", "costCenter": "CC-0", "division": "Tests", "organization": "scimload",
              "manager": {"value": boss.as_ref().ok().and_then(|(_, v)| id_of(v)).unwrap_or_default()}},
    });
    add_custom(&mut full, custom);
    let created = sb.create_user(0, full.clone()).await;
    let Some(uid) = created.as_ref().ok().and_then(|(_, v)| id_of(v)) else {
        t.put(
            CREATE,
            match created {
                Err(_) => Outcome::Timeout,
                _ => Outcome::No,
            },
            format!("{}; nothing else can be checked", status(&created)),
        );
        // Nothing is recommended from checks that could not run.
        return;
    };
    let (reply, _) = created.as_ref().ok().expect("created");
    t.verdict(
        CREATE,
        &created,
        reply.status == 201 && reply.location.is_some(),
        if reply.status != 201 {
            "not 201"
        } else {
            "no Location header"
        },
    );
    let user_path = format!("/Users/{uid}");

    // Round trip: every attribute the mapping can write, read back by id.
    let back = sb.get(&user_path).await;
    if let Ok((_, got)) = &back {
        let mut sent = full.clone();
        if let Some(o) = sent.as_object_mut() {
            o.insert("userName".into(), json!(sb.user_name(0)));
            o.insert("externalId".into(), json!(format!("{}-e0", sb.prefix)));
            o.insert("displayName".into(), json!("Probe User 0"));
            o.insert("active".into(), json!(true));
        }
        let lost: Vec<String> = crate::import::readback::compare(&sent, got)
            .into_iter()
            .map(|d| d.0)
            .collect();
        t.report.not_kept = lost.clone();
        let all = lost.is_empty();
        t.verdict(
            ROUND_TRIP,
            &back,
            all,
            &format!("not kept: {}", lost.join(", ")),
        );
        // ETags honoured: a change under a stale version must be refused (RFC 7644 §3.14).
        let stale = "W/\"scimload-probe-stale\"";
        let body = serde_json::to_vec(&json!({"schemas": [urns::PATCH_OP],
            "Operations": [{"op": "replace", "path": "nickName", "value": "Stale"}]}))
        .unwrap_or_default();
        let a = match tokio::time::timeout(
            sb.bound,
            sb.client
                .send(Method::PATCH, &user_path, Some(body), Some(stale)),
        )
        .await
        {
            Ok(Ok(r)) => Ok((r, Value::Null)),
            _ => Err(TimedOut),
        };
        let refused = matches!(&a, Ok((r, _)) if r.status == 412);
        let has_etag = back.as_ref().is_ok_and(|(r, _)| r.etag.is_some());
        match &a {
            Ok(_) if refused => t.put(
                ETAG,
                Outcome::Yes,
                format!(
                    "412 to a stale If-Match{}",
                    if has_etag { "; ETag on reads" } else { "" }
                ),
            ),
            Ok((r, _)) => t.put(
                ETAG,
                Outcome::No,
                format!("{} to a stale If-Match: versions are not checked", r.status),
            ),
            Err(_) => t.put(ETAG, Outcome::Timeout, "no answer in time"),
        }
    } else {
        t.verdict(ROUND_TRIP, &back, false, "");
    }

    // Lookups.
    let upper = sb.user_name(0).to_uppercase();
    let a = sb.get(&filter_path("Users", "userName", &upper)).await;
    let found = |a: &Answer| {
        a.as_ref().is_ok_and(|(_, v)| {
            resources(v)
                .iter()
                .any(|r| id_of(r).as_deref() == Some(uid.as_str()))
        })
    };
    t.verdict(
        FILTER_USERNAME,
        &a,
        found(&a),
        "the user was not found by its upper-cased userName",
    );
    let a = sb
        .get(&filter_path(
            "Users",
            "externalId",
            &format!("{}-e0", sb.prefix),
        ))
        .await;
    t.verdict(FILTER_EXTERNAL, &a, found(&a), "the user was not found");

    // PATCH shapes, each read back.
    let a = sb
        .patch(
            &user_path,
            json!([{"op": "replace", "path": "title", "value": "RFC"}]),
        )
        .await;
    let applied = title_is(sb, &user_path, "RFC").await;
    t.verdict(PATCH_RFC, &a, ok(&a) && applied, "the title did not change");
    let a = sb
        .patch(
            &user_path,
            json!([{"op": "replace", "value": {"title": "Pathless"}}]),
        )
        .await;
    let applied = title_is(sb, &user_path, "Pathless").await;
    t.verdict(
        PATCH_PATHLESS,
        &a,
        ok(&a) && applied,
        "the title did not change",
    );
    let a = sb
        .patch(
            &user_path,
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    let inactive = sb.get(&user_path).await.is_ok_and(|(_, v)| {
        v.get("active") == Some(&json!(false)) || v.get("active") == Some(&json!("False"))
    });
    t.verdict(
        PATCH_ENTRA,
        &a,
        ok(&a) && inactive,
        "the user is still active",
    );
    let mut replaced = full.clone();
    if let Some(o) = replaced.as_object_mut() {
        o.insert("userName".into(), json!(sb.user_name(0)));
        o.insert("externalId".into(), json!(format!("{}-e0", sb.prefix)));
        o.insert("displayName".into(), json!("Probe Replaced"));
        o.insert("active".into(), json!(true));
    }
    let a = sb.send(Method::PUT, &user_path, Some(replaced)).await;
    let applied = sb
        .get(&user_path)
        .await
        .is_ok_and(|(_, v)| v.get("displayName").and_then(Value::as_str) == Some("Probe Replaced"));
    t.verdict(PUT, &a, ok(&a) && applied, "the displayName did not change");

    // Groups and members.
    let other = sb.create_user(2, json!({})).await;
    let other_id = other.as_ref().ok().and_then(|(_, v)| id_of(v));
    let g = sb
        .send(
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [urns::GROUP], "displayName": format!("{} group", sb.prefix)})),
        )
        .await;
    let gid = g.as_ref().ok().and_then(|(_, v)| id_of(v));
    sb.created("Groups", format!("{} group", sb.prefix), &g);
    match (&gid, &other_id) {
        (Some(gid), Some(oid)) => {
            let gpath = format!("/Groups/{gid}");
            let a = sb
                .patch(&gpath, json!([{"op": "add", "path": "members", "value": [{"value": uid}, {"value": oid}]}]))
                .await;
            let read = sb.get(&gpath).await;
            let members = read.as_ref().ok().and_then(|(_, v)| member_ids(v));
            let listed = members.as_ref().is_some_and(|m| !m.is_empty());
            t.verdict(MEMBERS_READ, &read, listed, "no members in the answer");
            if listed {
                let has = |m: &Option<Vec<String>>, id: &str| {
                    m.as_ref().is_some_and(|m| m.iter().any(|x| x == id))
                };
                t.verdict(
                    MEMBER_ADD,
                    &a,
                    ok(&a) && has(&members, &uid) && has(&members, oid),
                    "the members are not in the group",
                );
                let x = sb.get(&format!("{gpath}?excludedAttributes=members")).await;
                let without = x.as_ref().is_ok_and(|(_, v)| v.get("members").is_none());
                t.verdict(EXCLUDED, &x, without, "members were returned anyway");
                let a = sb
                    .patch(
                        &gpath,
                        json!([{"op": "remove", "path": format!("members[value eq \"{oid}\"]")}]),
                    )
                    .await;
                let m = sb.get(&gpath).await.ok().and_then(|(_, v)| member_ids(&v));
                t.verdict(
                    REMOVE_FILTER,
                    &a,
                    ok(&a) && !has(&m, oid) && has(&m, &uid),
                    "the member is still there",
                );
                let a = sb
                    .patch(
                        &gpath,
                        json!([{"op": "remove", "path": "members", "value": [{"value": uid}]}]),
                    )
                    .await;
                let m = sb.get(&gpath).await.ok().and_then(|(_, v)| member_ids(&v));
                t.verdict(
                    REMOVE_LIST,
                    &a,
                    ok(&a) && !has(&m, &uid),
                    "the member is still there",
                );
            } else {
                // Members cannot be seen: the add is judged by its answer alone.
                t.put(
                    MEMBER_ADD,
                    if ok(&a) { Outcome::Yes } else { Outcome::No },
                    format!(
                        "{} (not visible: groups are read without members)",
                        status(&a)
                    ),
                );
                for c in [EXCLUDED, REMOVE_FILTER, REMOVE_LIST] {
                    t.skip(c, "groups are read without members");
                }
            }
        }
        _ => {
            t.verdict(MEMBER_ADD, &g, false, "the group was not created");
            for c in [MEMBERS_READ, EXCLUDED, REMOVE_FILTER, REMOVE_LIST] {
                t.skip(c, "no group");
            }
        }
    }

    // Paging over all users (at least the three made here).
    let a = sb.get("/Users?startIndex=1&count=2").await;
    let n = a.as_ref().map_or(0, |(_, v)| resources(v).len());
    t.verdict(
        INDEX,
        &a,
        ok(&a) && n == 2,
        &format!("{n} users on a page of count=2"),
    );
    // Cursor paging: count honoured, and the next page holds other users.
    let a = sb.get("/Users?count=2&cursor=").await;
    let page = |a: &Answer| -> Vec<String> {
        a.as_ref().map_or(Vec::new(), |(_, v)| {
            resources(v).iter().filter_map(id_of).collect()
        })
    };
    let next = a.as_ref().ok().and_then(|(_, v)| {
        v.get("nextCursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
    });
    let first = page(&a);
    match &next {
        None => t.verdict(CURSOR, &a, false, "no nextCursor"),
        Some(_) if first.len() != 2 => t.verdict(
            CURSOR,
            &a,
            false,
            &format!("{} users on a page of count=2", first.len()),
        ),
        Some(c) => {
            let b = sb
                .get(&format!("/Users?count=2&cursor={}", urlencode(c)))
                .await;
            let second = page(&b);
            t.verdict(
                CURSOR,
                &b,
                ok(&b) && !second.is_empty() && second.iter().all(|id| !first.contains(id)),
                "the page after nextCursor repeats the first or is empty",
            );
        }
    }
    let index = t
        .report
        .check(INDEX)
        .is_some_and(|c| c.outcome == Outcome::Yes);
    let a = sb
        .get(if index {
            "/Users?startIndex=1&count=100000"
        } else {
            "/Users?count=100000&cursor="
        })
        .await;
    match &a {
        Ok((_, v)) if ok(&a) => {
            let got = resources(v).len() as u64;
            let total = v.get("totalResults").and_then(Value::as_u64).unwrap_or(got);
            let detail = if got < total {
                format!("at most {got} per page (count=100000 asked, {total} users)")
            } else {
                format!("no cap below {got} (all users on one page)")
            };
            t.put(PAGE_CAP, Outcome::Yes, detail);
        }
        _ => t.verdict(PAGE_CAP, &a, false, ""),
    }

    // /Bulk: a user and a group that names it by bulkId.
    let a = sb
        .send(
            Method::POST,
            "/Bulk",
            Some(json!({
                "schemas": [urns::BULK_REQUEST],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"schemas": [urns::USER], "userName": sb.user_name(3), "externalId": format!("{}-e3", sb.prefix)}},
                    {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"schemas": [urns::GROUP], "displayName": format!("{} bulk", sb.prefix), "members": [{"value": "bulkId:u"}]}}
                ]
            })),
        )
        .await;
    if !matches!(&a, Ok((r, _)) if r.status != 0) {
        let (user, group) = (sb.user_name(3), format!("{} bulk", sb.prefix));
        sb.unanswered.extend([user, group]);
    }
    let ops: Vec<Value> = a
        .as_ref()
        .ok()
        .and_then(|(_, v)| v.get("Operations").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    let created = |op: &Value| {
        op.get("status")
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| s.to_string())
            })
            .is_some_and(|s| s.starts_with("201"))
    };
    for op in &ops {
        let id = op
            .get("location")
            .and_then(Value::as_str)
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_string);
        if let (Some(id), Some(m)) = (id, op.get("method").and_then(Value::as_str)) {
            if m.eq_ignore_ascii_case("POST") {
                let is_group = op.get("bulkId").and_then(Value::as_str) == Some("g");
                if is_group {
                    sb.groups.push(id)
                } else {
                    sb.users.push(id)
                }
            }
        }
    }
    t.verdict(
        BULK,
        &a,
        ok(&a) && ops.len() == 2 && ops.iter().all(created),
        "not both operations answered 201",
    );
}
