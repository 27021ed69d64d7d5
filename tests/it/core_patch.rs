//! The PATCH engine against tests/fixtures/patch/cases.json: every shape the dialect
//! reference lists, and the errors RFC 7644 §3.5.2 requires.

use crate::harness::fixture_json;
use scimload::scim::model::PatchOperation;
use scimload::scim::patch::apply;
use scimload::scim::schema::{GROUP_TYPE, USER_TYPE};
use serde_json::Value;

#[test]
fn patch_cases_from_fixture() {
    let cases = fixture_json("patch/cases.json");
    let mut n = 0;
    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let rt = if case["type"] == "Group" {
            &GROUP_TYPE
        } else {
            &USER_TYPE
        };
        let mut attrs = case["before"].as_object().unwrap().clone();
        let ops: Vec<PatchOperation> = serde_json::from_value(case["operations"].clone()).unwrap();
        let r = apply(rt, &mut attrs, &ops, None);
        match case.get("error").and_then(Value::as_str) {
            Some(want) => {
                let e = r.expect_err(name);
                assert_eq!(e.scim_type.map(|t| t.as_str()), Some(want), "{name}: {e}");
                assert_eq!(e.status, 400, "{name}");
            }
            None => {
                r.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(Value::Object(attrs), case["after"], "{name}");
            }
        }
        n += 1;
    }
    assert!(n >= 25, "the fixture lost cases: {n}");
}

#[test]
fn empty_operations_are_refused() {
    let mut attrs = serde_json::Map::new();
    let e = apply(&USER_TYPE, &mut attrs, &[], None).unwrap_err();
    assert_eq!(e.status, 400);
}
