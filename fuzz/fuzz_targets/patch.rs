//! The PATCH engine (RFC 7644 §3.5.2) applied to a stored user and to a group with
//! members, as the server runs it: any body must be applied or refused with a SCIM
//! error, never panic, and what is stored afterwards must still render.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimload::scim::model::PatchRequest;
use scimload::server::handlers::parse_json;
use scimload::server::profile::RFC;
use scimload::server::render::Projection;
use scimload::server::service::Ctx;
use scimload::server::store::{Kind, Store};
use serde_json::json;

fn id(o: &scimload::server::service::Outcome) -> String {
    o.location
        .as_deref()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

fuzz_target!(|data: &[u8]| {
    let Ok(req) = parse_json::<PatchRequest>(data) else {
        return;
    };
    let store = Store::new();
    let ctx = Ctx {
        store: &store,
        profile: &RFC,
        base_url: "http://fuzz",
        async_create: None,
    };
    let proj = Projection::default_view();
    let user = ctx
        .create(
            Kind::User,
            json!({
                "userName": "bjensen", "active": true, "name": {"givenName": "Barbara"},
                "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Tour"}
            }),
            &proj,
        )
        .unwrap();
    ctx.create(Kind::User, json!({"userName": "other"}), &proj)
        .unwrap();
    let uid = id(&user);
    let group = ctx
        .create(
            Kind::Group,
            json!({"displayName": "Tour", "members": [{"value": uid}]}),
            &proj,
        )
        .unwrap();
    let gid = id(&group);
    for (kind, id) in [(Kind::User, &uid), (Kind::Group, &gid)] {
        let _ = ctx.patch(kind, id, req.clone(), None, &proj, true);
        // Whatever was applied must still read back.
        ctx.get(kind, id, &proj, None).ok();
    }
});
