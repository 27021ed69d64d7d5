//! Histograms over time: one HdrHistogram per tag and interval, written and read as an
//! HdrHistogram interval log (V2, deflate-compressed, `Tag=` per series).
//!
//! The log is the raw result every summary and report is computed from. Intervals are
//! aligned to multiples of the interval length since the Unix epoch, so logs of shards
//! that ran on different machines at the same time line up, and merging is plain
//! histogram addition per (tag, interval) — percentiles are never averaged.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use super::new_histogram;

#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the interval log is damaged near byte {0}; re-run the benchmark or restore the file")]
    Parse(usize),
    #[error("a histogram in the interval log cannot be decoded ({0}); the file is damaged")]
    Decode(String),
    #[error("tag '{0}' cannot go into an interval log (no spaces or commas)")]
    BadTag(String),
    #[error("the logs use different interval lengths ({0} ms and {1} ms); merge runs made with the same --interval")]
    IntervalMismatch(u64, u64),
}

/// Milliseconds since the Unix epoch.
pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// Tagged histograms per interval.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Interval length in milliseconds.
    pub interval_ms: u64,
    /// tag → interval start (epoch ms) → histogram of microseconds.
    pub series: BTreeMap<String, BTreeMap<u64, Histogram<u64>>>,
    /// How many logs were merged into this one (1 for a single run).
    pub sources: u32,
}

impl Timeline {
    pub fn new(interval: Duration) -> Self {
        Timeline {
            interval_ms: (interval.as_millis() as u64).max(1),
            series: BTreeMap::new(),
            sources: 1,
        }
    }

    /// The start of the interval holding `at_ms`.
    pub fn slot(&self, at_ms: u64) -> u64 {
        at_ms - at_ms % self.interval_ms
    }

    /// Records `value_us` under `tag` in the interval holding `at_ms`.
    pub fn record(&mut self, tag: &str, at_ms: u64, value_us: u64) {
        let slot = self.slot(at_ms);
        let per_tag = match self.series.get_mut(tag) {
            Some(s) => s,
            None => self.series.entry(tag.to_string()).or_default(),
        };
        let h = per_tag.entry(slot).or_insert_with(new_histogram);
        // Saturated into the histogram's range, so recording cannot fail.
        let _ = h.record(value_us.clamp(1, h.high()));
    }

    /// Adds every histogram of `other` into this one, interval by interval.
    pub fn merge(&mut self, other: &Timeline) -> Result<(), TimelineError> {
        if other.interval_ms != self.interval_ms {
            return Err(TimelineError::IntervalMismatch(
                self.interval_ms,
                other.interval_ms,
            ));
        }
        for (tag, slots) in &other.series {
            let mine = self.series.entry(tag.clone()).or_default();
            for (slot, h) in slots {
                let m = mine.entry(*slot).or_insert_with(new_histogram);
                m.add(h)
                    .map_err(|e| TimelineError::Decode(format!("{e:?}")))?;
            }
        }
        self.sources += other.sources;
        Ok(())
    }

    /// The sum of `tag`'s histograms whose interval starts in `[from_ms, to_ms)`.
    pub fn total(&self, tag: &str, from_ms: u64, to_ms: u64) -> Histogram<u64> {
        let mut sum = new_histogram();
        if let Some(slots) = self.series.get(tag) {
            for (_, h) in slots.range(from_ms..to_ms) {
                let _ = sum.add(h);
            }
        }
        sum
    }

    /// The first and one-past-last interval starts present.
    pub fn span(&self) -> Option<(u64, u64)> {
        let first = self.series.values().filter_map(|s| s.keys().next()).min()?;
        let last = self.series.values().filter_map(|s| s.keys().last()).max()?;
        Some((*first, last + self.interval_ms))
    }

    /// Tags whose name starts with `prefix`.
    pub fn tags_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.series
            .keys()
            .filter(move |t| t.starts_with(prefix))
            .map(String::as_str)
    }

    /// Writes the interval log: header comments, then every histogram in time order.
    pub fn write_log(&self, w: &mut impl Write, comments: &[String]) -> Result<(), TimelineError> {
        let mut by_time: Vec<(u64, &str, &Histogram<u64>)> = self
            .series
            .iter()
            .flat_map(|(tag, slots)| slots.iter().map(move |(s, h)| (*s, tag.as_str(), h)))
            .collect();
        by_time.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let start = by_time.first().map_or(0, |e| e.0);
        let mut ser = V2DeflateSerializer::new();
        let mut b = IntervalLogWriterBuilder::new();
        b.add_comment("scimload interval log: values in microseconds; tags are <operation>.<response|service|lag>, <operation>.error.<status>, and curve buckets")
            .add_comment(&format!("interval_ms={} sources={}", self.interval_ms, self.sources))
            .with_start_time(UNIX_EPOCH + Duration::from_millis(start))
            .with_max_value_divisor(1000.0);
        for c in comments {
            b.add_comment(c);
        }
        let mut lw = b.begin_log_with(w, &mut ser)?;
        for (slot, tag, h) in by_time {
            let t = Tag::new(tag).ok_or_else(|| TimelineError::BadTag(tag.to_string()))?;
            lw.write_histogram(
                h,
                Duration::from_millis(slot),
                Duration::from_millis(self.interval_ms),
                Some(t),
            )
            .map_err(|e| match e {
                hdrhistogram::serialization::interval_log::IntervalLogWriterError::IoError(e) => {
                    TimelineError::Io(e)
                }
                other => TimelineError::Decode(other.to_string()),
            })?;
        }
        Ok(())
    }

    /// Reads a log written by [`Timeline::write_log`] (or any V2 log with absolute
    /// timestamps or a BaseTime).
    pub fn read_log(bytes: &[u8]) -> Result<Timeline, TimelineError> {
        let text = std::str::from_utf8(bytes).map_err(|e| TimelineError::Parse(e.valid_up_to()))?;
        let interval_ms = text
            .lines()
            .filter_map(|l| l.strip_prefix("#"))
            .find_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("interval_ms="))
                    .and_then(|v| v.parse::<u64>().ok())
            });
        let sources = text
            .lines()
            .filter_map(|l| l.strip_prefix("#"))
            .find_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("sources="))
                    .and_then(|v| v.parse::<u32>().ok())
            });
        let mut base = Duration::ZERO;
        let mut tl = Timeline::new(Duration::from_millis(interval_ms.unwrap_or(1000)));
        tl.sources = sources.unwrap_or(1);
        let mut de = Deserializer::new();
        for entry in IntervalLogIterator::new(bytes) {
            match entry {
                Ok(LogEntry::BaseTime(b)) => base = b,
                Ok(LogEntry::StartTime(_)) => {}
                Ok(LogEntry::Interval(ih)) => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(ih.encoded_histogram())
                        .map_err(|e| TimelineError::Decode(e.to_string()))?;
                    let h: Histogram<u64> = de
                        .deserialize(&mut raw.as_slice())
                        .map_err(|e| TimelineError::Decode(format!("{e:?}")))?;
                    let tag = ih.tag().map_or("untagged", |t| t.as_str()).to_string();
                    // The log parser can hand back a "tag" that runs over a line break
                    // (found by fuzzing): no writer makes one, and it could not be
                    // written again, so the file is damaged.
                    if Tag::new(&tag).is_none() || tag.chars().any(char::is_control) {
                        return Err(TimelineError::Decode(format!(
                            "tag {:?} is not a tag",
                            tag.chars().take(60).collect::<String>()
                        )));
                    }
                    let at = (base + ih.start_timestamp()).as_millis() as u64;
                    let slot = tl.slot(at);
                    let mine = tl.series.entry(tag).or_default();
                    let m = mine.entry(slot).or_insert_with(new_histogram);
                    m.add(&h)
                        .map_err(|e| TimelineError::Decode(format!("{e:?}")))?;
                }
                Err(hdrhistogram::serialization::interval_log::LogIteratorError::ParseError {
                    offset,
                }) => return Err(TimelineError::Parse(offset)),
            }
        }
        Ok(tl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_round_trips_and_shards_merge_exactly() {
        let t0 = 1_800_000_000_000u64;
        let mut whole = Timeline::new(Duration::from_secs(1));
        let mut a = Timeline::new(Duration::from_secs(1));
        let mut b = Timeline::new(Duration::from_secs(1));
        for i in 0..20_000u64 {
            let at = t0 + i / 4;
            let v = 100 + (i * 7919) % 50_000;
            whole.record("get_user.response", at, v);
            if i % 2 == 0 { &mut a } else { &mut b }.record("get_user.response", at, v);
        }
        let mut buf = Vec::new();
        a.write_log(&mut buf, &["shard 1/2".into()]).unwrap();
        let a2 = Timeline::read_log(&buf).unwrap();
        let mut buf = Vec::new();
        b.write_log(&mut buf, &[]).unwrap();
        let mut merged = a2.clone();
        merged.merge(&Timeline::read_log(&buf).unwrap()).unwrap();
        assert_eq!(merged.sources, 2);
        let (from, to) = whole.span().unwrap();
        let (x, y) = (
            whole.total("get_user.response", from, to),
            merged.total("get_user.response", from, to),
        );
        assert_eq!(x.len(), 20_000);
        assert_eq!(x, y);
        assert_eq!(
            whole.series["get_user.response"].len(),
            merged.series["get_user.response"].len()
        );
    }

    #[test]
    fn different_intervals_do_not_merge() {
        let mut a = Timeline::new(Duration::from_secs(1));
        let b = Timeline::new(Duration::from_millis(500));
        assert!(matches!(
            a.merge(&b),
            Err(TimelineError::IntervalMismatch(1000, 500))
        ));
    }
}
