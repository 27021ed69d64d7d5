//! Inputs that fuzzing (scripts/fuzz.sh) found to break a parser, each kept in
//! tests/fixtures/fuzz/ and tested under the name of what it found.

use scimload::metrics::timeline::{Timeline, TimelineError};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(crate::harness::fixture_path(&format!("fuzz/{name}"))).unwrap()
}

/// interval_log: hdrhistogram's log parser returned a tag that ran over a line break;
/// the reader took it, and writing the timeline out again then failed. A damaged file
/// is refused when read.
#[test]
fn interval_log_tag_over_a_line_break() {
    let e = Timeline::read_log(&fixture("interval_log-tag-over-a-line-break.hlog")).unwrap_err();
    assert!(matches!(e, TimelineError::Decode(_)), "{e:?}");
    assert!(e.to_string().contains("the file is damaged"), "{e}");
}

/// patch: a PATCH value object whose key has a two-byte character across byte 4
/// ("urnƞeploeeNumberle"): the attribute-path parser sliced `[..4]` to look for "urn:" and
/// panicked the request's handler. Sent to the server, it is answered, not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_urn_prefix_inside_a_character() {
    let s = crate::harness::Srv::default().await;
    let id = s.user("bjensen").await;
    let body: serde_json::Value =
        serde_json::from_slice(&fixture("patch-urn-prefix-inside-a-character.json")).unwrap();
    let r = s
        .send("PATCH", &format!("/Users/{id}"), Some(body), &[])
        .await;
    assert!(
        r.status == 200 || r.status == 204 || r.status == 400,
        "{} {}",
        r.status,
        r.body
    );
    // Not an attribute name: refused with a reason, not a panic.
    let e = scimload::scim::filter::parse_attr_path("urnƞeploeeNumberle").unwrap_err();
    assert_eq!(e.status, 400, "{}", e.detail);
}

/// Found reading the parser after the finding above: a filter longer than the limit is
/// quoted in the error by its first 64 bytes, and byte 64 may fall inside a character.
#[test]
fn filter_too_long_cut_inside_a_character() {
    let long = format!("{}ƞ{}", "a".repeat(63), " eq \"x\"".repeat(2000));
    let e = scimload::scim::filter::parse(&long).unwrap_err();
    assert!(e.detail.contains("longer than"), "{}", e.detail);
}
