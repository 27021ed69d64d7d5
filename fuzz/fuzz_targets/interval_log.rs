//! The interval-log reader (HdrHistogram V2 compressed logs that `report` merges): any
//! file is read or refused with an error, never a panic; what is read writes out and
//! reads back to the same histograms.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimload::metrics::timeline::Timeline;

fuzz_target!(|data: &[u8]| {
    let Ok(tl) = Timeline::read_log(data) else {
        return;
    };
    let mut out = Vec::new();
    tl.write_log(&mut out, &[])
        .expect("a log that was read can be written");
    let again = Timeline::read_log(&out).expect("a written log reads back");
    for (tag, series) in &tl.series {
        let other = &again.series[tag];
        assert_eq!(series.len(), other.len(), "{tag}");
        let h = tl.total(tag, 0, u64::MAX);
        let _ = h.value_at_quantile(0.99);
        assert_eq!(h.len(), again.total(tag, 0, u64::MAX).len(), "{tag}");
    }
});
