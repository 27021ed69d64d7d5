//! The filter parser and evaluator (RFC 7644 §3.4.2.2): any text a client sends as
//! `?filter=` or as a PATCH path must parse or be refused, never panic, and a filter that
//! compiles must evaluate against a user with every attribute type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimload::scim::filter::{parse, parse_patch_path, CompiledFilter};
use scimload::scim::schema::USER_TYPE;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_patch_path(text);
    let Ok(f) = parse(text) else {
        return;
    };
    let user = json!({
        "id": "2819c223", "userName": "bjensen@example.com", "active": true,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                   {"value": "babs@jensen.org", "type": "home"}],
        "meta": {"created": "2011-08-01T18:29:49.793Z", "lastModified": "2011-08-01T18:29:49.793Z",
                 "resourceType": "User"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
            {"employeeNumber": "701984", "manager": {"value": "26118915"}}
    });
    if let Ok(cf) = CompiledFilter::compile(&USER_TYPE, &f) {
        let _ = cf.matches(user.as_object().unwrap());
        let _ = cf.indexed_eq();
        let _ = cf.member_eq();
        for e in user["emails"].as_array().unwrap() {
            let _ = cf.matches_element(e);
        }
    }
});
