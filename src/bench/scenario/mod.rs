//! What a benchmark sends: each scenario turns a request number into one SCIM request,
//! deterministically, from the data it seeded before measuring. Numbering is per shard
//! (`m`), with the global number (`i`) where a value must be unique across shards.
//!
//! The shapes follow what identity providers send (../reference/scim-dialects.md): lookups
//! by `userName eq` and `externalId eq`, membership PATCHes in batches, page walks during
//! full syncs — and the classic SCIM scaling problem, groups with tens of thousands of
//! members, gets a curve of latency against group size.

use bytes::Bytes;
use hyper::Method;
use serde_json::json;

use crate::dispatch::schedule::Shard;

mod group;
mod replay;
use crate::client::dialect::{DialectName, Shaped, UpdateStyle, GENERIC};
use crate::gen::names::{DEPARTMENTS, DOMAIN, FIRST, LAST, TITLES};
use crate::gen::Rng;
use crate::metrics::Op;
use crate::scim::filter::query_escape;
use crate::scim::urns;

/// The scenarios `scimload bench` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Create,
    Get,
    Filter,
    Paginate,
    GroupMembers,
    Update,
    Mixed,
    /// An identity provider's provisioning cycle in --dialect: lookups, creates,
    /// updates, deactivations and group pushes, shaped as that provider sends them.
    Replay,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Get => "get",
            Kind::Filter => "filter",
            Kind::Paginate => "paginate",
            Kind::GroupMembers => "group-members",
            Kind::Update => "update",
            Kind::Mixed => "mixed",
            Kind::Replay => "replay",
        }
    }

    /// Whether it needs users on the server before measuring.
    pub fn needs_users(self) -> bool {
        !matches!(self, Kind::Create)
    }
}

/// How pages are requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Paging {
    /// startIndex/count (RFC 7644 §3.4.2.4).
    Index,
    /// cursor/nextCursor (RFC 9865).
    Cursor,
}

/// One request, ready to send.
#[derive(Debug, Clone)]
pub struct Req {
    pub op: Op,
    pub method: Method,
    pub path: String,
    pub body: Option<Bytes>,
    /// A curve this request's latency also goes into: (name, x), e.g. group size.
    pub curve: Option<(&'static str, u64)>,
    /// Keep the id of what this request creates, to delete it at cleanup.
    pub keep_id: bool,
}

impl Req {
    fn get(op: Op, path: String) -> Self {
        Req {
            op,
            method: Method::GET,
            path,
            body: None,
            curve: None,
            keep_id: false,
        }
    }

    fn with_body(op: Op, method: Method, path: String, body: serde_json::Value) -> Self {
        Req {
            op,
            method,
            path,
            body: Some(Bytes::from(body.to_string())),
            curve: None,
            keep_id: false,
        }
    }
}

/// A synthetic person, the same for the same (namespace, number).
#[derive(Debug, Clone)]
pub struct Person {
    pub user_name: String,
    pub external_id: String,
    pub given: &'static str,
    pub family: &'static str,
    pub first_ascii: &'static str,
    pub email: String,
}

impl Person {
    /// `ns` keeps seeded users (`s`) and created users (`c`) of run `tag` apart.
    pub fn new(tag: &str, ns: &str, i: u64) -> Self {
        let mut r = Rng::new(0x5eed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (given, first_ascii) = FIRST[r.skewed(FIRST.len())];
        let (family, last_ascii) = LAST[r.skewed(LAST.len())];
        let local = format!("{first_ascii}.{last_ascii}.{tag}{ns}{i}").to_lowercase();
        Person {
            user_name: format!("{local}@{DOMAIN}"),
            external_id: format!("{tag}-{ns}{i}"),
            given,
            family,
            first_ascii,
            email: format!("{local}@{DOMAIN}"),
        }
    }

    /// A full User resource; `title` varies it for updates.
    pub fn body(&self, title: &str, i: u64) -> serde_json::Value {
        json!({
            "schemas": [urns::USER, urns::ENTERPRISE_USER],
            "userName": self.user_name,
            "externalId": self.external_id,
            "name": {"givenName": self.given, "familyName": self.family},
            "displayName": format!("{} {}", self.given, self.family),
            "title": title,
            "active": true,
            "emails": [{"value": self.email, "type": "work", "primary": true}],
            (urns::ENTERPRISE_USER): {
                "employeeNumber": format!("{}", 100_000 + i),
                "department": DEPARTMENTS[(i % DEPARTMENTS.len() as u64) as usize],
            },
        })
    }
}

/// A user the scenario seeded: its number and SCIM id.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub number: u64,
    pub id: String,
}

/// What the seeding phase left on the server for this shard.
#[derive(Debug, Clone, Default)]
pub struct SeedData {
    pub users: Vec<Seeded>,
    pub group: Option<String>,
    /// Users the server holds in all (for page counts).
    pub total_users: u64,
}

/// Per-connection state for requests that depend on the previous answer (cursor walks).
#[derive(Debug, Default)]
pub struct Walker {
    cursor: Option<String>,
    page: u64,
}

/// Settings of the scenarios.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Params {
    /// Users seeded for get/filter/update/paginate/mixed (all shards together).
    pub users: u64,
    pub page_size: u64,
    pub paging: Paging,
    /// Members of the group built by `group-members`; with shards, each shard builds
    /// a group of this size from its own users (a group is the unit measured).
    pub group_size: u64,
    /// Members per membership PATCH.
    pub member_batch: u64,
    /// Weights of the `mixed` scenario.
    pub mix: Vec<(Kind, u32)>,
    /// Request shapes of `replay` and of `update`'s PATCHes.
    pub dialect: DialectName,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            users: 1000,
            page_size: 100,
            paging: Paging::Index,
            group_size: 50_000,
            member_batch: 100,
            mix: default_mix(),
            dialect: DialectName::Generic,
        }
    }
}

pub fn default_mix() -> Vec<(Kind, u32)> {
    vec![
        (Kind::Get, 40),
        (Kind::Filter, 30),
        (Kind::Update, 15),
        (Kind::Create, 10),
        (Kind::Paginate, 5),
    ]
}

/// `get=40,filter=30,create=10`.
pub fn parse_mix(s: &str) -> Result<Vec<(Kind, u32)>, String> {
    use clap::ValueEnum;
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, w) = part
            .split_once('=')
            .ok_or_else(|| format!("'{part}': write scenario=weight, e.g. get=40"))?;
        let kind = Kind::from_str(k.trim(), true).map_err(|_| {
            format!("'{k}' is not a scenario (create, get, filter, paginate, update)")
        })?;
        if matches!(kind, Kind::Mixed | Kind::GroupMembers | Kind::Replay) {
            return Err(format!("'{k}' cannot be part of a mix"));
        }
        let w: u32 = w
            .trim()
            .parse()
            .map_err(|_| format!("'{w}' is not a whole-number weight"))?;
        out.push((kind, w));
    }
    if out.iter().map(|(_, w)| *w as u64).sum::<u64>() == 0 {
        return Err(format!("'{s}': the weights add up to zero"));
    }
    Ok(out)
}

/// A scenario bound to its run: what to send for request `m`.
#[derive(Debug)]
pub struct Scenario {
    pub kind: Kind,
    pub tag: String,
    pub shard: Shard,
    pub params: Params,
    pub seed: SeedData,
    steps: Vec<(group::GroupStep, u64)>,
}

/// A small integer hash: which filter, which user, which mix entry.
fn pick(m: u64, stream: u64) -> u64 {
    crate::rng::mix(m.wrapping_add(stream.wrapping_mul(crate::rng::GOLDEN)))
}

fn weighted<T: Copy>(table: &[(T, u32)], x: u64) -> T {
    let total: u64 = table.iter().map(|(_, w)| *w as u64).sum();
    let mut r = x % total.max(1);
    for (t, w) in table {
        if r < *w as u64 {
            return *t;
        }
        r -= *w as u64;
    }
    table[0].0
}

/// The width of a curve bucket so that `span` falls into about 20 of them.
fn bucket(x: u64, span: u64) -> u64 {
    let w = span.div_ceil(20).max(1);
    x - x % w
}

impl Scenario {
    pub fn new(kind: Kind, tag: String, shard: Shard, params: Params, seed: SeedData) -> Self {
        let steps = if kind == Kind::GroupMembers {
            group::steps(&params)
        } else {
            Vec::new()
        };
        Scenario {
            kind,
            tag,
            shard,
            params,
            seed,
            steps,
        }
    }

    /// Requests in a finite scenario (group-members), per shard.
    pub fn finite_len(&self) -> Option<u64> {
        (self.kind == Kind::GroupMembers).then_some(self.steps.len() as u64)
    }

    /// A seeded user drawn uniformly (by hash of the request number and a stream), as
    /// the reference tools' id lists are drawn in scripts/bench-vs-wrk.sh.
    fn seeded(&self, m: u64, stream: u64) -> &Seeded {
        &self.seed.users[(pick(m, stream) % self.seed.users.len() as u64) as usize]
    }

    fn user(&self, m: u64, stream: u64) -> (&Seeded, Person) {
        let u = self.seeded(m, stream);
        (u, Person::new(&self.tag, "s", u.number))
    }

    /// The request with per-shard number `m`.
    pub fn request(&self, m: u64, walker: &mut Walker) -> Req {
        self.request_as(self.kind, m, walker)
    }

    fn request_as(&self, kind: Kind, m: u64, walker: &mut Walker) -> Req {
        match kind {
            Kind::Create => {
                let i = self.shard.global(m);
                create_user(&Person::new(&self.tag, "c", i), i)
            }
            Kind::Get => {
                let u = self.seeded(m, 1);
                Req::get(Op::GetUser, format!("/Users/{}", u.id))
            }
            Kind::Filter => self.filter(m),
            Kind::Update => {
                let (u, p) = self.user(m, 3);
                let title = format!("{} {m}", TITLES[(m % TITLES.len() as u64) as usize]);
                let body = p.body(&title, u.number);
                if m.is_multiple_of(2) {
                    Req::with_body(Op::PutUser, Method::PUT, format!("/Users/{}", u.id), body)
                } else {
                    // The PATCH as the dialect shapes it; a dialect that updates by PUT
                    // (Okta) is compared with the RFC's per-attribute PATCH.
                    let d = match self.dialect().update {
                        UpdateStyle::GetThenPut => &GENERIC,
                        _ => self.dialect(),
                    };
                    let patch = json!({"title": title});
                    let shaped = d.update(&u.id, &patch).swap_remove(0);
                    shaped_req(Op::PatchUser, shaped)
                }
            }
            Kind::Replay => self.replay(m),
            Kind::Paginate => self.page(m, walker),
            Kind::GroupMembers => self.group_step(m),
            Kind::Mixed => {
                let k = weighted(&self.params.mix, pick(m, 9));
                let mut r = self.request_as(k, m, walker);
                if k == Kind::Paginate {
                    r.curve = None;
                }
                r
            }
        }
    }

    fn filter(&self, m: u64) -> Req {
        // Weights: what an IdP's sync mostly asks (exact lookups), plus the searches
        // that make servers scan (prefix, substring, value paths, or).
        const MIX: [(u8, u32); 8] = [
            (0, 25), // userName eq, existing
            (1, 10), // userName eq, missing
            (2, 20), // externalId eq
            (3, 10), // userName sw prefix
            (4, 5),  // displayName co
            (5, 15), // emails[type eq "work" and value eq …]
            (6, 10), // userName eq … or externalId eq …
            (7, 5),  // active eq true and userName eq …
        ];
        let (_, p) = self.user(m, 2);
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let (f, count) = match weighted(&MIX, pick(m, 4)) {
            0 => (format!("userName eq {}", q(&p.user_name)), None),
            1 => (
                format!(
                    "userName eq {}",
                    q(&format!("missing.{}.{m}@{DOMAIN}", self.tag))
                ),
                None,
            ),
            2 => (format!("externalId eq {}", q(&p.external_id)), None),
            3 => (
                format!(
                    "userName sw {}",
                    q(&format!("{}.", p.first_ascii.to_lowercase()))
                ),
                Some(20),
            ),
            4 => (format!("displayName co {}", q(p.family)), Some(20)),
            5 => (
                format!("emails[type eq \"work\" and value eq {}]", q(&p.email)),
                None,
            ),
            6 => {
                let (_, other) = self.user(m, 5);
                (
                    format!(
                        "userName eq {} or externalId eq {}",
                        q(&p.user_name),
                        q(&other.external_id)
                    ),
                    None,
                )
            }
            _ => (
                format!("active eq true and userName eq {}", q(&p.user_name)),
                None,
            ),
        };
        let mut path = format!("/Users?filter={}", query_escape(&f));
        if let Some(c) = count {
            path.push_str(&format!("&count={c}"));
        }
        Req::get(Op::FilterUsers, path)
    }

    fn page(&self, m: u64, walker: &mut Walker) -> Req {
        let size = self.params.page_size.max(1);
        let pages = self.seed.total_users.div_ceil(size).max(1);
        match self.params.paging {
            Paging::Index => {
                let p = m % pages;
                let mut r = Req::get(
                    Op::ListPage,
                    format!("/Users?startIndex={}&count={size}", p * size + 1),
                );
                r.curve = Some(("by_position", bucket(p * size + 1, pages * size)));
                r
            }
            Paging::Cursor => {
                let path = match &walker.cursor {
                    Some(c) => format!("/Users?cursor={}&count={size}", query_escape(c)),
                    None => {
                        walker.page = 0;
                        format!("/Users?cursor=&count={size}")
                    }
                };
                let mut r = Req::get(Op::ListPage, path);
                r.curve = Some(("by_position", bucket(walker.page * size + 1, pages * size)));
                r
            }
        }
    }

    /// Follows `nextCursor` in a page walk; the walk starts over after the last page.
    pub fn on_reply(&self, walker: &mut Walker, req: &Req, body: &[u8]) {
        if req.op != Op::ListPage || self.params.paging != Paging::Cursor {
            return;
        }
        walker.cursor = next_cursor(body);
        walker.page += 1;
    }

    pub fn dialect(&self) -> &'static crate::client::dialect::Dialect {
        self.params.dialect.table()
    }
}

/// `POST /Users` of person number `i`, keeping the id for cleanup.
fn create_user(p: &Person, i: u64) -> Req {
    let mut r = Req::with_body(
        Op::CreateUser,
        Method::POST,
        "/Users".into(),
        p.body(TITLES[(i % TITLES.len() as u64) as usize], i),
    );
    r.keep_id = true;
    r
}

fn shaped_req(op: Op, s: Shaped) -> Req {
    Req {
        op,
        method: Method::from_bytes(s.method.as_bytes()).unwrap_or(Method::GET),
        path: s.path,
        body: s.body,
        curve: None,
        keep_id: false,
    }
}

/// `nextCursor` of a ListResponse, found without parsing the page.
fn next_cursor(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"nextCursor\":";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = std::str::from_utf8(&body[at..]).ok()?.trim_start();
    let mut de = serde_json::Deserializer::from_str(rest);
    let v: Option<String> = serde::Deserialize::deserialize(&mut de).ok()?;
    v.filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(n: u64) -> SeedData {
        SeedData {
            users: (0..n)
                .map(|i| Seeded {
                    number: i,
                    id: format!("id{i}"),
                })
                .collect(),
            group: Some("g1".into()),
            total_users: n,
        }
    }

    #[test]
    fn group_members_adds_then_removes_everyone() {
        let params = Params {
            group_size: 1000,
            member_batch: 100,
            ..Params::default()
        };
        let s = Scenario::new(
            Kind::GroupMembers,
            "t".into(),
            Shard::default(),
            params,
            seeded(1000),
        );
        let reqs: Vec<Req> = (0..s.finite_len().unwrap())
            .map(|m| s.request(m, &mut Walker::default()))
            .collect();
        let count = |op| reqs.iter().filter(|r| r.op == op).count();
        assert_eq!(
            (count(Op::PatchMembers), count(Op::RemoveMembers)),
            (10, 10)
        );
        assert_eq!(
            (count(Op::GetGroup), count(Op::GetGroupNoMembers)),
            (11, 10)
        );
        let sizes: Vec<u64> = reqs
            .iter()
            .filter(|r| r.op == Op::PatchMembers)
            .map(|r| r.curve.unwrap().1)
            .collect();
        assert_eq!(sizes, (0..10).map(|k| k * 100).collect::<Vec<_>>());
    }

    #[test]
    fn mixes_parse_and_cursors_are_found() {
        assert_eq!(
            parse_mix("get=3, filter=1").unwrap(),
            [(Kind::Get, 3), (Kind::Filter, 1)]
        );
        assert!(parse_mix("mixed=1").is_err());
        assert!(parse_mix("get=0").is_err());
        assert_eq!(
            next_cursor(br#"{"totalResults":5,"nextCursor":"abc","Resources":[]}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(next_cursor(br#"{"totalResults":5,"Resources":[]}"#), None);
    }

    #[test]
    fn shards_create_distinct_users() {
        let a = Scenario::new(
            Kind::Create,
            "t".into(),
            Shard::parse("1/2").unwrap(),
            Params::default(),
            SeedData::default(),
        );
        let b = Scenario::new(
            Kind::Create,
            "t".into(),
            Shard::parse("2/2").unwrap(),
            Params::default(),
            SeedData::default(),
        );
        let names = |s: &Scenario| {
            (0..50)
                .map(|m| {
                    String::from_utf8(s.request(m, &mut Walker::default()).body.unwrap().to_vec())
                        .unwrap()
                })
                .collect::<std::collections::HashSet<_>>()
        };
        assert!(names(&a).is_disjoint(&names(&b)));
    }
}
