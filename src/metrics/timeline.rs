//! Histograms over time: one HdrHistogram per tag and interval, written and read as an
//! HdrHistogram interval log (V2, deflate-compressed, `Tag=` per series).
//!
//! The log is the raw result every summary and report is computed from. Intervals are
//! aligned to multiples of the interval length since the Unix epoch, so logs of shards
//! that ran on different machines at the same time line up, and merging is plain
//! histogram addition per (tag, interval) — percentiles are never averaged.
//!
//! A full histogram (1 µs to 60 s at 3 digits) is ~147 KB of counts, and a run keeps
//! three per operation per second: a 30-minute soak held over a gigabyte. Intervals are
//! therefore sealed once they are closed — kept as their V2-deflate serialization (a few
//! hundred bytes, the very bytes the log stores) and decoded one at a time when read —
//! so a soak's generator and the merge of its shards stay within a pod's memory.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
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

/// One interval's histogram of one tag.
#[derive(Debug, Clone)]
pub enum Slot {
    /// Still recorded into.
    Open(Box<Histogram<u64>>),
    /// Closed: its V2-deflate serialization, with the two figures read without decoding.
    Sealed {
        bytes: Arc<[u8]>,
        len: u64,
        max: u64,
    },
}

fn decode(bytes: &[u8]) -> Result<Histogram<u64>, TimelineError> {
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| TimelineError::Decode(format!("{e:?}")))
}

fn encode(h: &Histogram<u64>) -> Vec<u8> {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("a histogram serializes into memory");
    buf
}

impl Slot {
    fn sealed(h: &Histogram<u64>) -> Slot {
        Slot::Sealed {
            bytes: encode(h).into(),
            len: h.len(),
            max: h.max(),
        }
    }

    /// The histogram, decoded if sealed (bytes sealed here, or checked when a log was
    /// read, always decode).
    pub fn histogram(&self) -> Cow<'_, Histogram<u64>> {
        match self {
            Slot::Open(h) => Cow::Borrowed(h),
            Slot::Sealed { bytes, .. } => {
                Cow::Owned(decode(bytes).expect("sealed histograms were checked"))
            }
        }
    }

    /// The histogram to write into (opened again if sealed).
    pub fn histogram_mut(&mut self) -> &mut Histogram<u64> {
        if let Slot::Sealed { .. } = self {
            *self = Slot::Open(Box::new(self.histogram().into_owned()));
        }
        match self {
            Slot::Open(h) => h,
            Slot::Sealed { .. } => unreachable!("opened above"),
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Slot::Open(h) => h.len(),
            Slot::Sealed { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn seal(&mut self) {
        if let Slot::Open(h) = self {
            *self = Slot::sealed(h);
        }
    }
}

/// Tagged histograms per interval.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Interval length in milliseconds.
    pub interval_ms: u64,
    /// tag → interval start (epoch ms) → histogram of microseconds.
    pub series: BTreeMap<String, BTreeMap<u64, Slot>>,
    /// How many logs were merged into this one (1 for a single run).
    pub sources: u32,
    /// The latest interval recorded into: those before the one ahead of it are sealed.
    newest: u64,
}

impl Timeline {
    pub fn new(interval: Duration) -> Self {
        Timeline {
            interval_ms: (interval.as_millis() as u64).max(1),
            series: BTreeMap::new(),
            sources: 1,
            newest: 0,
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
        let h = per_tag
            .entry(slot)
            .or_insert_with(|| Slot::Open(Box::new(new_histogram())))
            .histogram_mut();
        // Saturated into the histogram's range, so recording cannot fail.
        let _ = h.record(value_us.clamp(1, h.high()));
        if slot > self.newest {
            self.newest = slot;
            // Samples are recorded when answered, handed over in batches up to 50 ms
            // late: the interval before the newest stays open, older ones are closed.
            self.seal_before(slot.saturating_sub(self.interval_ms));
        }
    }

    /// Seals every open interval that starts before `cut_ms`.
    pub fn seal_before(&mut self, cut_ms: u64) {
        for slots in self.series.values_mut() {
            // All of them, not only the tail: a late sample may have opened an older
            // one again.
            for (_, s) in slots.range_mut(..cut_ms) {
                s.seal();
            }
        }
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
                match mine.get_mut(slot) {
                    None => {
                        mine.insert(*slot, h.clone());
                    }
                    Some(m) => {
                        let sealed = matches!(m, Slot::Sealed { .. });
                        let sum = m.histogram_mut();
                        sum.add(&*h.histogram())
                            .map_err(|e| TimelineError::Decode(format!("{e:?}")))?;
                        if sealed {
                            m.seal();
                        }
                    }
                }
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
                let _ = sum.add(&*h.histogram());
            }
        }
        sum
    }

    /// How many samples `tag` has within `[from_ms, to_ms)`: the slots' counts, without
    /// decoding a sealed histogram (an error tag is counted, never read for latency).
    pub fn count(&self, tag: &str, from_ms: u64, to_ms: u64) -> u64 {
        self.series.get(tag).map_or(0, |slots| {
            slots.range(from_ms..to_ms).map(|(_, h)| h.len()).sum()
        })
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
    /// Sealed intervals are written as they are kept (their bytes are the log's).
    pub fn write_log(&self, w: &mut impl Write, comments: &[String]) -> Result<(), TimelineError> {
        let mut by_time: Vec<(u64, &str, &Slot)> = self
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
        // The header as the library writes it; the lines below in its format
        // (`Tag=…,start,length,max/1000,base64`), from the kept bytes.
        drop(b.begin_log_with(&mut *w, &mut ser)?);
        let mut text = String::new();
        for (slot, tag, h) in by_time {
            if Tag::new(tag).is_none() {
                return Err(TimelineError::BadTag(tag.to_string()));
            }
            let (bytes, max) = match h {
                Slot::Sealed { bytes, max, .. } => (Cow::Borrowed(&bytes[..]), *max),
                Slot::Open(h) => (Cow::Owned(encode(h)), h.max()),
            };
            text.clear();
            base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut text);
            writeln!(
                w,
                "Tag={tag},{:.3},{:.3},{:.3},{text}",
                slot as f64 / 1000.0,
                self.interval_ms as f64 / 1000.0,
                max as f64 / 1000.0
            )?;
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
                    match mine.get_mut(&slot) {
                        // Kept as read (the histogram decoded above, so the bytes do).
                        None => {
                            mine.insert(
                                slot,
                                Slot::Sealed {
                                    bytes: raw.into(),
                                    len: h.len(),
                                    max: h.max(),
                                },
                            );
                        }
                        Some(m) => {
                            let sum = m.histogram_mut();
                            sum.add(&h)
                                .map_err(|e| TimelineError::Decode(format!("{e:?}")))?;
                            m.seal();
                        }
                    }
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
    fn closed_intervals_are_sealed_and_count_what_was_recorded() {
        let t0 = 1_800_000_000_000u64;
        let mut tl = Timeline::new(Duration::from_secs(1));
        let mut all = new_histogram();
        for i in 0..600_000u64 {
            // 1,000 samples a second for 600 s, then one sample 5 s late.
            let at = t0 + i;
            let v = 50 + (i * 7919) % 200_000;
            tl.record("get_user.response", at, v);
            all.record(v).unwrap();
        }
        tl.record("get_user.response", t0 + 594_500, 77);
        all.record(77).unwrap();
        tl.record("get_user.response", t0 + 600_000, 88);
        all.record(88).unwrap();
        let slots = &tl.series["get_user.response"];
        let open = slots
            .values()
            .filter(|s| matches!(s, Slot::Open(_)))
            .count();
        assert_eq!(
            open, 2,
            "only the newest interval and the one before stay open"
        );
        let kept: usize = slots
            .values()
            .map(|s| match s {
                Slot::Sealed { bytes, .. } => bytes.len(),
                Slot::Open(_) => 0,
            })
            .sum();
        assert!(
            kept < 600 * 4096,
            "sealed intervals are small: {kept} bytes"
        );
        assert_eq!(tl.total("get_user.response", 0, u64::MAX), all);
        let mut buf = Vec::new();
        tl.write_log(&mut buf, &[]).unwrap();
        let back = Timeline::read_log(&buf).unwrap();
        assert_eq!(back.total("get_user.response", 0, u64::MAX), all);
        assert_eq!(back.series["get_user.response"].len(), slots.len());
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
