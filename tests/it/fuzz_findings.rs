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
