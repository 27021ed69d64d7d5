//! What a service says about its limits in an answer's headers, read the ways services
//! write it: `Retry-After` as seconds or an HTTP-date (RFC 9110 §10.2.3); GitHub's
//! `X-RateLimit-Remaining` / `X-RateLimit-Reset` (epoch seconds); the IETF draft's
//! `RateLimit-Remaining` / `RateLimit-Reset` (seconds from now) and its later single
//! field `RateLimit: …;r=0;t=5` (remaining `r`, reset `t`), with `remaining=`/`reset=`
//! spelt out as some services do.
//!
//! Two uses: how long a refused request waits before it is sent again (a 429 without
//! `Retry-After` but with a reset time waits for the reset, not for a guess), and a
//! pause of every request when a successful answer says nothing is left until the
//! reset — so the next request is not refused at all.

use std::time::{Duration, SystemTime};

use hyper::header::{HeaderMap, RETRY_AFTER};

/// Longest wait any header is believed for (a wrong clock or a reset a day away).
const MOST: Duration = Duration::from_secs(3600);

fn text<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)?.to_str().ok().map(str::trim)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate, the form RFC 9110 requires senders to
/// use) as seconds since the epoch.
fn http_date(s: &str) -> Option<i64> {
    let fmt = time::format_description::parse_borrowed::<2>(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT",
    )
    .ok()?;
    let t = time::PrimitiveDateTime::parse(s, &fmt).ok()?;
    Some(t.assume_utc().unix_timestamp())
}

fn since_epoch(now: SystemTime) -> f64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn seconds(v: f64) -> Option<Duration> {
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v).min(MOST))
}

/// A reset given as a number: epoch seconds when it is one (GitHub), else seconds from
/// now.
fn reset_value(v: &str, now: SystemTime) -> Option<Duration> {
    let n: f64 = v.parse().ok()?;
    if n > 1e9 {
        seconds(n - since_epoch(now)).or(Some(Duration::ZERO))
    } else {
        seconds(n)
    }
}

/// `r` and `t` (or `remaining`, `reset`) of a `RateLimit` field.
fn structured(v: &str) -> (Option<f64>, Option<f64>) {
    let (mut remaining, mut reset) = (None, None);
    for part in v.split([';', ',']) {
        if let Some((k, val)) = part.trim().split_once('=') {
            let n = val.trim().trim_matches('"').parse::<f64>().ok();
            match k.trim() {
                "r" | "remaining" => remaining = n,
                "t" | "reset" => reset = n,
                _ => {}
            }
        }
    }
    (remaining, reset)
}

/// Units left before the limit and the time until it resets, as far as the headers say.
fn quota(h: &HeaderMap, now: SystemTime) -> (Option<f64>, Option<Duration>) {
    // Most answers carry none of these: one pass over the few names present is cheaper
    // than five lookups of names that are not there (each hashes the name).
    if !h.keys().any(|k| k.as_str().contains("ratelimit")) {
        return (None, None);
    }
    let remaining = text(h, "x-ratelimit-remaining")
        .or_else(|| text(h, "ratelimit-remaining"))
        .and_then(|v| v.parse::<f64>().ok());
    let reset = text(h, "x-ratelimit-reset")
        .and_then(|v| reset_value(v, now))
        .or_else(|| text(h, "ratelimit-reset").and_then(|v| v.parse().ok().and_then(seconds)));
    match text(h, "ratelimit") {
        Some(v) if remaining.is_none() || reset.is_none() => {
            let (r, t) = structured(v);
            (remaining.or(r), reset.or_else(|| t.and_then(seconds)))
        }
        _ => (remaining, reset),
    }
}

/// `Retry-After` itself, as seconds or an HTTP-date.
fn given_retry_after(h: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Some(d) = v.parse::<f64>().ok().and_then(seconds) {
        return Some(d);
    }
    http_date(v).map(|at| seconds(at as f64 - since_epoch(now)).unwrap_or(Duration::ZERO))
}

fn spent(q: (Option<f64>, Option<Duration>)) -> Option<Duration> {
    match q {
        (Some(r), Some(reset)) if r <= 0.0 && !reset.is_zero() => Some(reset),
        _ => None,
    }
}

/// An answer's headers read once: how long to wait before sending a refused request
/// again (`Retry-After`, else the reset of a limit the headers say is spent), and — on
/// an answer that went through — the time until the reset when nothing is left, so the
/// client waits instead of being refused.
pub fn read(h: &HeaderMap, now: SystemTime) -> (Option<Duration>, Option<Duration>) {
    let q = quota(h, now);
    let wait = given_retry_after(h, now).or(match q {
        (Some(r), Some(reset)) if r <= 0.0 => Some(reset),
        _ => None,
    });
    (wait, spent(q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_in_each_form() {
        // 2015-10-21 07:27:50 UTC.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        let at = |pairs| read(&headers(pairs), now).0;
        assert_eq!(at(&[("retry-after", "2")]), Some(Duration::from_secs(2)));
        assert_eq!(
            at(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
            Some(Duration::from_secs(10))
        );
        // A date already passed: go now.
        assert_eq!(
            at(&[("retry-after", "Wed, 21 Oct 2015 07:27:00 GMT")]),
            Some(Duration::ZERO)
        );
        assert_eq!(
            at(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1445412500")
            ]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            at(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "7")]),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            at(&[("ratelimit", r#""default";r=0;t=4"#)]),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            at(&[("ratelimit", "limit=100, remaining=0, reset=3")]),
            Some(Duration::from_secs(3))
        );
        // Something left, or nothing said: no wait from the headers.
        assert_eq!(
            at(&[
                ("x-ratelimit-remaining", "5"),
                ("x-ratelimit-reset", "1445412500")
            ]),
            None
        );
        assert_eq!(at(&[("retry-after", "soon")]), None);
        assert_eq!(at(&[]), None);
    }

    #[test]
    fn a_spent_quota_on_a_success_pauses_until_its_reset() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1445412475"),
        ]);
        assert_eq!(read(&h, now).1, Some(Duration::from_secs(5)));
        let h = headers(&[("ratelimit-remaining", "3"), ("ratelimit-reset", "5")]);
        assert_eq!(read(&h, now).1, None);
    }
}
