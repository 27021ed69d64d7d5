//! The server's request-body reader and resource normaliser: any bytes POSTed or PUT as a
//! User or a Group are stored or refused with a SCIM error (400 invalidSyntax or
//! invalidValue), never panic; what is stored renders and lists again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimload::server::handlers::parse_json;
use scimload::server::profile::{ALL, RFC};
use scimload::server::render::Projection;
use scimload::server::service::{Ctx, ListQuery};
use scimload::server::store::{Kind, Store};
use serde_json::{json, Value};

/// The id at the end of an outcome's Location.
fn id_of(o: &scimload::server::service::Outcome) -> String {
    o.location.as_deref().unwrap().rsplit('/').next().unwrap().to_string()
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_json::<Value>(data) else {
        return;
    };
    let proj = Projection::default_view();
    // The profile by the first byte: each one normalises differently.
    let profile = ALL
        .get(data.first().map_or(0, |b| *b as usize) % ALL.len())
        .copied()
        .unwrap_or(&RFC);
    let store = Store::new();
    let ctx = Ctx {
        store: &store,
        profile,
        base_url: "http://fuzz",
        async_create: None,
    };
    let existing = ctx
        .create(Kind::User, json!({"userName": "existing"}), &proj)
        .unwrap();
    let id = id_of(&existing);
    for kind in [Kind::User, Kind::Group] {
        if let Ok(o) = ctx.create(kind, body.clone(), &proj) {
            let new = id_of(&o);
            ctx.get(kind, &new, &proj, None).ok();
        }
        let _ = ctx.list(kind, &ListQuery::default());
    }
    let _ = ctx.replace(Kind::User, &id, body, None, &proj);
    ctx.get(Kind::User, &id, &proj, None).ok();
});
