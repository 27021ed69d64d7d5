//! The retry policy: *whether* a failed request is retried, apart from *how long* to wait.
//!
//! - 429 and 503 are retried after `Retry-After` when given, else after a backoff.
//! - Other 5xx, timeouts and broken connections are retried with exponential backoff and
//!   full jitter (a uniform delay in [0, min(cap, base·2^attempt)]), so many workers
//!   that failed together do not come back together.
//! - 4xx other than 409 and 429 are final: the request is wrong, resending cannot help.
//! - 409 on create is not an error to retry but a user that exists: look it up, update it.
//! - A create that may have reached the server (timeout, reset) is never re-sent blindly:
//!   the caller looks the user up first, or it would create a duplicate.

use std::time::Duration;

use super::reply::Reply;
use super::transport::TransportError;
use crate::metrics::sample::Timing;
use crate::metrics::Op;

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// What to do after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It worked (2xx), or the failure is final: hand the reply to the caller.
    Done,
    /// Send again after this long.
    Retry(Duration),
    /// 409 on create: the resource exists; look it up and update it.
    Conflict,
    /// The create may have been applied: look it up before deciding to send it again.
    LookUpFirst,
    /// Out of attempts, or a transport failure that is final.
    GiveUp,
    /// The server is throttling: slow everyone down (and retry after this long).
    Throttled(Duration),
}

impl RetryPolicy {
    /// Full-jitter exponential backoff for `attempt` (1-based), from a uniform `u` in [0, 1).
    pub fn backoff(&self, attempt: u32, u: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        exp.min(self.max_delay).mul_f64(u.clamp(0.0, 1.0))
    }

    /// Decides after attempt number `attempt` (1-based) of a request. `creates` is true for
    /// a POST that makes a resource; `u` is a uniform random number for jitter.
    pub fn decide(
        &self,
        attempt: u32,
        creates: bool,
        outcome: &Result<Reply, TransportError>,
        u: f64,
    ) -> Decision {
        let last = attempt >= self.max_attempts;
        match outcome {
            Ok(r) if r.is_success() => Decision::Done,
            Ok(r) if r.status == 409 && creates => Decision::Conflict,
            Ok(r) if r.status == 429 || r.status == 503 => {
                if last {
                    return Decision::GiveUp;
                }
                // Retry-After is the server's word: never sooner. Up to half of it more
                // (at most 5 s), drawn per request: requests refused together would
                // otherwise all come back in the same millisecond, and a rate limiter
                // with a small burst refuses most of them again, round after round (at
                // a cap of 800/s, 64 connections made 21 users/s that way). Without
                // Retry-After, back off as for any 5xx.
                let wait = r.retry_after.map_or_else(
                    || self.backoff(attempt, u),
                    |ra| {
                        ra + ra
                            .mul_f64(0.5 * u.clamp(0.0, 1.0))
                            .min(Duration::from_secs(5))
                    },
                );
                if r.status == 429 {
                    Decision::Throttled(wait)
                } else {
                    Decision::Retry(wait)
                }
            }
            Ok(r) if r.status >= 500 => {
                if last {
                    Decision::GiveUp
                } else {
                    Decision::Retry(self.backoff(attempt, u))
                }
            }
            Ok(_) => Decision::Done,
            // A refused certificate or credential is refused again: no retry loop.
            Err(e) if e.is_fatal() => Decision::GiveUp,
            Err(e) if creates && e.maybe_applied() => Decision::LookUpFirst,
            Err(_) if last => Decision::GiveUp,
            Err(_) => Decision::Retry(self.backoff(attempt, u)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, retry_after: Option<u64>) -> Result<Reply, TransportError> {
        Ok(Reply {
            status,
            body: Default::default(),
            retry_after: retry_after.map(Duration::from_secs),
            exhausted: None,
            etag: None,
            location: None,
            request_id: None,
        })
    }

    #[test]
    fn whether_to_retry() {
        let p = RetryPolicy::default();
        assert_eq!(p.decide(1, true, &reply(201, None), 0.5), Decision::Done);
        assert_eq!(
            p.decide(1, true, &reply(409, None), 0.5),
            Decision::Conflict
        );
        assert_eq!(
            p.decide(1, false, &reply(409, None), 0.5),
            Decision::Done,
            "a 409 on update is final"
        );
        assert_eq!(
            p.decide(1, false, &reply(400, None), 0.5),
            Decision::Done,
            "4xx is final"
        );
        assert_eq!(p.decide(1, false, &reply(404, None), 0.5), Decision::Done);
        // Never sooner than Retry-After, up to half of it later.
        assert_eq!(
            p.decide(1, false, &reply(429, Some(3)), 0.0),
            Decision::Throttled(Duration::from_secs(3))
        );
        assert_eq!(
            p.decide(1, false, &reply(429, Some(3)), 0.5),
            Decision::Throttled(Duration::from_millis(3750))
        );
        assert_eq!(
            p.decide(1, false, &reply(503, Some(1)), 0.5),
            Decision::Retry(Duration::from_millis(1250))
        );
        assert_eq!(
            p.decide(1, false, &reply(429, Some(120)), 1.0),
            Decision::Throttled(Duration::from_secs(125)),
            "at most 5 s more"
        );
        assert!(matches!(
            p.decide(1, false, &reply(502, None), 0.5),
            Decision::Retry(_)
        ));
        assert_eq!(
            p.decide(8, false, &reply(502, None), 0.5),
            Decision::GiveUp,
            "attempt cap"
        );
        let timeout: Result<Reply, TransportError> = Err(TransportError::Timeout);
        assert_eq!(
            p.decide(1, true, &timeout, 0.5),
            Decision::LookUpFirst,
            "a create that timed out is looked up, not re-sent"
        );
        assert!(matches!(
            p.decide(1, false, &timeout, 0.5),
            Decision::Retry(_)
        ));
        let refused: Result<Reply, TransportError> = Err(TransportError::Connect("refused".into()));
        assert!(
            matches!(p.decide(1, true, &refused, 0.5), Decision::Retry(_)),
            "never reached the server: safe to resend"
        );
    }

    #[test]
    fn backoff_is_full_jitter_under_a_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        assert_eq!(p.backoff(1, 0.999_999).as_millis(), 99);
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(200));
        assert_eq!(p.backoff(30, 1.0), Duration::from_secs(2));
        assert_eq!(p.backoff(5, 0.0), Duration::ZERO);
    }
}

/// One attempt of a request: its times and status, and its error key when it failed.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub timing: Timing,
    /// `"429"`, `"409 uniqueness"`, `"transport: timeout"`; `None` for a success.
    pub error: Option<String>,
}

/// How one logical request ended, after retries.
#[derive(Debug)]
pub struct Executed {
    pub outcome: Result<Reply, TransportError>,
    /// The final decision: `Done`, `Conflict`, `LookUpFirst` or `GiveUp`.
    pub decision: Decision,
    pub attempts: u32,
    /// Times the server throttled this request (429).
    pub throttled: u32,
    /// Every attempt, retried or final, each timed from its own send: the backoff between
    /// two attempts is in neither (DESIGN: one sample per attempt, backoff never latency).
    pub tries: Vec<Attempt>,
}

impl Executed {
    /// The attempts as samples of `op`, taken out so that each is recorded once.
    pub fn take_attempts(&mut self, op: Op) -> impl Iterator<Item = (Op, Attempt)> {
        std::mem::take(&mut self.tries)
            .into_iter()
            .map(move |a| (op, a))
    }

    /// Every failed attempt's error key.
    pub fn errors(&self) -> impl Iterator<Item = &str> {
        self.tries.iter().filter_map(|a| a.error.as_deref())
    }
}

/// How an attempt failed, for error counts; `None` for a success.
pub fn error_key(o: &Result<Reply, TransportError>) -> Option<String> {
    match o {
        Ok(r) if r.is_success() => None,
        Ok(r) => Some(match r.scim_type() {
            Some(t) => format!("{} {t}", r.status),
            None => r.status.to_string(),
        }),
        Err(e) => Some(format!("transport: {}", e.kind())),
    }
}

/// Sends a request until the policy says stop, sleeping as it says. `seed` makes the
/// jitter reproducible.
pub async fn execute(
    client: &super::ScimClient,
    policy: &RetryPolicy,
    method: hyper::Method,
    path: &str,
    body: Option<&[u8]>,
    creates: bool,
    seed: u64,
) -> Executed {
    let mut rng = crate::gen::Rng::new(seed);
    let mut throttled = 0;
    let mut attempt = 1;
    let mut tries = Vec::new();
    // Copied once; every attempt shares it.
    let body = body.map(bytes::Bytes::copy_from_slice);
    loop {
        let (outcome, timing) = client
            .send_timed(method.clone(), path, body.clone(), None)
            .await;
        tries.push(Attempt {
            timing,
            error: error_key(&outcome),
        });
        let d = policy.decide(attempt, creates, &outcome, rng.f64());
        match d {
            Decision::Retry(wait) | Decision::Throttled(wait) => {
                throttled += matches!(d, Decision::Throttled(_)) as u32;
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            decision => {
                return Executed {
                    outcome,
                    decision,
                    attempts: attempt,
                    throttled,
                    tries,
                }
            }
        }
    }
}
