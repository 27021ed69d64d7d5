//! Filter parser, printer and evaluator against fixture tables.

use crate::harness::{fixture_json, fixture_lines};
use scimload::scim::filter::{parse, parse_patch_path, CompiledFilter, MAX_DEPTH, MAX_LEN};
use scimload::scim::schema::USER_TYPE;
use scimload::scim::ScimType;

#[test]
fn filters_print_and_parse_back_to_the_same_tree() {
    for line in fixture_lines("filters/roundtrip.txt") {
        let tree = parse(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let printed = tree.to_string();
        let again = parse(&printed).unwrap_or_else(|e| panic!("printed {printed}: {e}"));
        assert_eq!(again, tree, "{line} printed as {printed}");
        assert_eq!(again.to_string(), printed, "printing is stable for {line}");
    }
}

#[test]
fn precedence_and_binds_tighter_than_or() {
    let t = parse("a eq 1 or b eq 2 and c eq 3").unwrap();
    assert_eq!(t.to_string(), "a eq 1 or b eq 2 and c eq 3");
    assert!(matches!(t, scimload::scim::filter::Filter::Or(..)));
    let t = parse("(a eq 1 or b eq 2) and c eq 3").unwrap();
    assert!(matches!(t, scimload::scim::filter::Filter::And(..)));
}

#[test]
fn malformed_filters_are_invalid_filter_errors_that_point_at_the_problem() {
    for line in fixture_lines("filters/invalid.tsv") {
        let (f, want) = line.split_once('\t').unwrap();
        let e = parse(f).expect_err(f);
        assert_eq!(e.status, 400);
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{f}");
        assert!(
            e.detail.contains(want),
            "{f:?}: '{}' lacks '{want}'",
            e.detail
        );
    }
}

#[test]
fn nesting_and_length_are_bounded() {
    let deep = format!(
        "{}a pr{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(parse(&deep).unwrap_err().detail.contains("nesting"));
    let ok = format!(
        "{}a pr{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert!(parse(&ok).is_ok());
    let long = format!("a eq \"{}\"", "x".repeat(MAX_LEN));
    assert!(parse(&long).unwrap_err().detail.contains("longer than"));
}

#[test]
fn filters_evaluate_as_rfc7644_says() {
    let user = fixture_json("rfc7643/user-enterprise.json");
    let attrs = user.as_object().unwrap();
    for line in fixture_lines("filters/eval.tsv") {
        let (f, want) = line.split_once('\t').unwrap();
        let compiled = parse(f).and_then(|t| CompiledFilter::compile(&USER_TYPE, &t));
        match want {
            "true" | "false" => {
                let c = compiled.unwrap_or_else(|e| panic!("{f}: {e}"));
                assert_eq!(c.matches(attrs), want == "true", "{f}");
            }
            err => {
                let e = compiled.expect_err(f);
                assert_eq!(
                    Some(e.scim_type.unwrap().as_str()),
                    err.strip_prefix("error:"),
                    "{f}: {e}"
                );
            }
        }
    }
}

#[test]
fn eq_and_only_mode_refuses_other_operators() {
    for f in [
        "userName co \"x\"",
        "userName eq \"a\" or userName eq \"b\"",
        "title pr",
        "not (title pr)",
    ] {
        let e = CompiledFilter::compile_with(&USER_TYPE, &parse(f).unwrap(), true).expect_err(f);
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
    }
    assert!(CompiledFilter::compile_with(
        &USER_TYPE,
        &parse("userName eq \"a\" and externalId eq \"b\"").unwrap(),
        true
    )
    .is_ok());
}

#[test]
fn patch_paths_parse_with_filters_and_sub_attributes() {
    let p = parse_patch_path("emails[type eq \"work\"].value").unwrap();
    assert_eq!(p.attr.name, "emails");
    assert_eq!(p.filter_sub.as_deref(), Some("value"));
    assert_eq!(p.to_string(), "emails[type eq \"work\"].value");
    let p = parse_patch_path(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    )
    .unwrap();
    assert_eq!(
        p.attr.urn.as_deref(),
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    );
    assert_eq!(
        (p.attr.name.as_str(), p.attr.sub.as_deref()),
        ("manager", Some("value"))
    );
    assert!(parse_patch_path("members[value eq \"x\"] junk").is_err());
    assert!(parse_patch_path("emails[type eq \"work\"]value").is_err());
}
