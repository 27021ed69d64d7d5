//! Filter parse/evaluate and group-membership PATCH cost against group size.
//!
//! The membership benchmark is the one that matters for SCIM servers: many lose members
//! or slow down as groups grow. Adding 100 members to a 100,000-member group must cost
//! about what it costs on a 100-member group (`scripts/server-bench.sh` prints the ratio).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use scimload::scim::filter::{parse, CompiledFilter};
use scimload::scim::model::{PatchOperation, PatchRequest};
use scimload::scim::schema::USER_TYPE;
use scimload::server::profile::RFC;
use scimload::server::render::Projection;
use scimload::server::service::Ctx;
use scimload::server::store::{Kind, Store};
use serde_json::{json, Value};

const FILTERS: &[&str] = &[
    "userName eq \"bjensen@example.com\"",
    "userType eq \"Employee\" and (emails co \"example.com\" or emails.value co \"example.org\")",
    "emails[type eq \"work\" and value co \"@example.com\"] or ims[type eq \"xmpp\" and value co \"@foo.com\"]",
    "meta.lastModified gt \"2011-05-13T04:42:34Z\" and not (title pr)",
];

fn user() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rfc7643/user-enterprise.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn filters(c: &mut Criterion) {
    let mut g = c.benchmark_group("filter");
    for (i, f) in FILTERS.iter().enumerate() {
        g.bench_with_input(BenchmarkId::new("parse", i), f, |b, f| {
            b.iter(|| parse(black_box(f)).unwrap())
        });
    }
    let u = user();
    let attrs = u.as_object().unwrap();
    for (i, f) in FILTERS.iter().enumerate() {
        let cf = CompiledFilter::compile(&USER_TYPE, &parse(f).unwrap()).unwrap();
        g.bench_with_input(BenchmarkId::new("evaluate", i), &cf, |b, cf| {
            b.iter(|| cf.matches(black_box(attrs)))
        });
    }
    g.finish();
}

const SIZES: [usize; 3] = [100, 10_000, 100_000];
const STORE: usize = 100_000 + 100;

/// One store of 100,100 users with a group of each size: the store is the same for
/// every size, so the comparison isolates the group's size.
fn store_with_groups() -> (Store, Vec<String>, Vec<String>) {
    let store = Store::new();
    let ctx = Ctx {
        store: &store,
        profile: &RFC,
        base_url: "http://bench",
        async_create: None,
    };
    let proj = Projection::default_view();
    let id_of = |loc: Option<String>| loc.unwrap().rsplit('/').next().unwrap().to_string();
    let ids: Vec<String> = (0..STORE)
        .map(|i| {
            id_of(
                ctx.create(Kind::User, json!({"userName": format!("u{i}")}), &proj)
                    .unwrap()
                    .location,
            )
        })
        .collect();
    let mut groups = Vec::new();
    for size in SIZES {
        let gid = id_of(
            ctx.create(
                Kind::Group,
                json!({"displayName": format!("g{size}")}),
                &proj,
            )
            .unwrap()
            .location,
        );
        for chunk in ids[..size].chunks(1000) {
            let members: Vec<Value> = chunk.iter().map(|id| json!({"value": id})).collect();
            let req = PatchRequest::new(vec![PatchOperation {
                op: "add".into(),
                path: Some("members".into()),
                value: Some(Value::Array(members)),
            }]);
            ctx.patch(Kind::Group, &gid, req, None, &proj, false)
                .unwrap();
        }
        groups.push(gid);
    }
    // The last 100 users belong to no group: they are the ones added and removed.
    let extra = ids[STORE - 100..].to_vec();
    (store, groups, extra)
}

fn membership_patch(c: &mut Criterion) {
    let (store, groups, extra) = store_with_groups();
    let ctx = Ctx {
        store: &store,
        profile: &RFC,
        base_url: "http://bench",
        async_create: None,
    };
    let proj = Projection::default_view();
    let add = PatchRequest::new(vec![PatchOperation {
        op: "add".into(),
        path: Some("members".into()),
        value: Some(Value::Array(
            extra.iter().map(|id| json!({"value": id})).collect(),
        )),
    }]);
    // Entra-compliant and Okta style: one remove operation per member.
    let remove = PatchRequest::new(
        extra
            .iter()
            .map(|id| PatchOperation {
                op: "remove".into(),
                path: Some(format!("members[value eq \"{id}\"]")),
                value: None,
            })
            .collect(),
    );
    let mut g = c.benchmark_group("patch_add_100_members");
    g.throughput(Throughput::Elements(100));
    for (size, gid) in SIZES.iter().zip(&groups) {
        // Each iteration adds the 100 and removes them again, so the group keeps its size.
        g.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                ctx.patch(Kind::Group, gid, black_box(add.clone()), None, &proj, false)
                    .unwrap();
                ctx.patch(
                    Kind::Group,
                    gid,
                    black_box(remove.clone()),
                    None,
                    &proj,
                    false,
                )
                .unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, filters, membership_patch);
criterion_main!(benches);
