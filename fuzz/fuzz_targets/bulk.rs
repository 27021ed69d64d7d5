//! /Bulk request parsing and execution (RFC 7644 §3.7): any body must produce a
//! BulkResponse or a SCIM error, never panic — bulkId references, cycles, failOnErrors,
//! paths and methods included.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimload::scim::model::BulkRequest;
use scimload::server::bulk;
use scimload::server::handlers::parse_json;
use scimload::server::profile::RFC;
use scimload::server::service::Ctx;
use scimload::server::store::Store;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = parse_json::<BulkRequest>(data) else {
        return;
    };
    let store = Store::new();
    let ctx = Ctx {
        store: &store,
        profile: &RFC,
        base_url: "http://fuzz",
        async_create: None,
    };
    if let Ok(out) = bulk::run(&ctx, 1000, req) {
        // The answer is JSON the client can read.
        serde_json::from_slice::<serde_json::Value>(&out).expect("a BulkResponse is JSON");
    }
});
