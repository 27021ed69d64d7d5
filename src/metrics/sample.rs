//! One sample per attempt, for import and bench alike: which operation, how it ended, and
//! three instants — when the schedule released it (intended), when it went on the wire
//! (sent) and when its answer was read (done). Response time is measured from the
//! intended send, so a stalled server is charged for every request it kept waiting
//! (coordinated omission); a retried request is one sample per attempt, and the backoff
//! between attempts belongs to no sample (it is the client's wait, not the server's).

use std::time::{Duration, Instant};

use super::timeline::Timeline;
use super::Op;

/// When one attempt was meant to go, went, and was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub intended: Instant,
    pub sent: Instant,
    pub done: Instant,
    /// HTTP status, or the kind of transport failure (`timeout`, `connect`, …).
    pub status: Result<u16, &'static str>,
}

/// One answered (or failed) attempt of one operation.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub op: Op,
    /// A latency curve this attempt belongs to: `("size", 5000)` for a membership PATCH
    /// against a group of 5,000 members.
    pub curve: Option<(&'static str, u64)>,
    pub timing: Timing,
}

impl Timing {
    /// Response time from the intended send, service time from the actual send, and
    /// send lag, in microseconds (at least 1, as the histograms count).
    pub fn times(&self) -> (u64, u64, u64) {
        let us = |d: Duration| (d.as_micros() as u64).max(1);
        (
            us(self.done.saturating_duration_since(self.intended)),
            us(self.done.saturating_duration_since(self.sent)),
            us(self.sent.saturating_duration_since(self.intended)),
        )
    }

    /// 4xx, 5xx or a transport failure.
    pub fn failed(&self) -> bool {
        !matches!(self.status, Ok(code) if code < 400)
    }
}

impl Sample {
    pub fn new(op: Op, timing: Timing) -> Sample {
        Sample {
            op,
            curve: None,
            timing,
        }
    }
}

/// The interval-log tags of every operation, built once (no allocation per sample).
#[derive(Debug)]
pub struct Tags {
    by_op: Vec<[String; 3]>,
}

impl Default for Tags {
    fn default() -> Self {
        Tags {
            by_op: Op::ALL
                .iter()
                .map(|o| {
                    let n = o.as_str();
                    [
                        format!("{n}.response"),
                        format!("{n}.service"),
                        format!("{n}.lag"),
                    ]
                })
                .collect(),
        }
    }
}

impl Tags {
    /// Records `s`, answered at epoch ms `at`, under the tags every run shares:
    /// `<op>.response`, `<op>.service`, `<op>.lag`, `<op>.<curve>.<x>` and, for a failed
    /// attempt, `<op>.error.<status or kind>` (its service time). `scimload report` reads
    /// these the same whether an import or a benchmark wrote them.
    pub fn record(&self, timeline: &mut Timeline, at: u64, s: &Sample) {
        let (response, service, lag) = s.timing.times();
        let [r, v, l] = &self.by_op[s.op.index()];
        timeline.record(r, at, response);
        timeline.record(v, at, service);
        timeline.record(l, at, lag);
        if let Some((name, x)) = s.curve {
            timeline.record(&format!("{}.{name}.{x}", s.op.as_str()), at, response);
        }
        match s.timing.status {
            Ok(code) if code < 400 => {}
            Ok(code) => timeline.record(&format!("{}.error.{code}", s.op.as_str()), at, service),
            Err(kind) => timeline.record(
                &format!("{}.error.{}", s.op.as_str(), kind.replace(' ', "_")),
                at,
                service,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_measured_from_the_intended_send() {
        let t0 = Instant::now();
        let t = Timing {
            intended: t0,
            sent: t0 + Duration::from_millis(3),
            done: t0 + Duration::from_millis(10),
            status: Ok(201),
        };
        assert_eq!(t.times(), (10_000, 7_000, 3_000));
        assert!(!t.failed());
        assert!(Timing {
            status: Ok(429),
            ..t
        }
        .failed());
        assert!(Timing {
            status: Err("timeout"),
            ..t
        }
        .failed());
    }

    #[test]
    fn a_sample_is_logged_under_the_shared_tags() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(Duration::from_secs(1));
        let s = Sample::new(
            Op::CreateUser,
            Timing {
                intended: t0,
                sent: t0,
                done: t0 + Duration::from_millis(2),
                status: Ok(429),
            },
        );
        Tags::default().record(&mut tl, 1_000, &s);
        let tags: Vec<&str> = tl.tags_with_prefix("").collect();
        for t in [
            "create_user.response",
            "create_user.service",
            "create_user.lag",
            "create_user.error.429",
        ] {
            assert!(tags.contains(&t), "{t} missing from {tags:?}");
        }
    }
}
