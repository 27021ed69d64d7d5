//! Parsers for the quantities users type: durations (`250ms`, `1.5s`, `2m`), rates
//! (`500`, `10k`, `500/s`), counts (`20k`, `1M`) fractions (`0.1`, `10%`) and instants (RFC 3339). Each error says
//! which form was expected, so a typo costs one retry.

use std::time::Duration;

/// `250ms`, `1.5s`, `2m`, `1h`, `300us`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration; use e.g. 250ms, 1.5s, 2m"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "ns" => n / 1e9,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => {
            return Err(format!(
                "unknown unit '{u}' in '{s}'; use ns, us, ms, s, m or h"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("'{s}' is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `20000`, `20k`, `1.5M`.
pub fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        Some('g' | 'G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a count; use e.g. 5000, 20k, 1M"))?;
    if n < 0.0 || !n.is_finite() {
        return Err(format!("'{s}' must be a positive count"));
    }
    Ok((n * mult).round() as u64)
}

/// Requests per second: `500`, `10k`, `500/s`, `30000/m`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, per) = match t.split_once('/') {
        Some((n, "s")) => (n, 1.0),
        Some((n, "m")) => (n, 60.0),
        Some((n, "h")) => (n, 3600.0),
        Some(_) => return Err(format!("'{s}': the rate unit must be /s, /m or /h")),
        None => (t, 1.0),
    };
    let n =
        parse_count(num).map_err(|_| format!("'{s}' is not a rate; use e.g. 500, 10k or 500/s"))?;
    Ok(n as f64 / per)
}

/// `0.1` or `10%`, between 0 and 1.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("'{s}' is not a fraction; use e.g. 0.05 or 5%"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("'{s}' must be between 0 and 1 (0% and 100%)"));
    }
    Ok(v)
}

/// An instant in RFC 3339: `2026-12-01T16:30:00Z`, `2026-12-01T17:30:00.5+01:00`.
/// An instant as RFC 3339 text, as every run record writes it.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn parse_rfc3339(s: &str) -> Result<std::time::SystemTime, String> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .map(std::time::SystemTime::from)
        .map_err(|e| {
            format!("'{s}' is not an RFC 3339 time ({e}); write e.g. 2026-12-01T16:30:00Z, or `date -u -d '+2 min' +%FT%TZ`")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_and_explain() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("5 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert_eq!(parse_count("20k").unwrap(), 20_000);
        assert_eq!(parse_count("1.5M").unwrap(), 1_500_000);
        assert_eq!(parse_rate("500/s").unwrap(), 500.0);
        assert_eq!(parse_rate("600/m").unwrap(), 10.0);
        assert_eq!(parse_fraction("10%").unwrap(), 0.1);
        assert!(parse_fraction("1.5").is_err());
    }

    #[test]
    fn instants_parse_in_rfc3339_and_others_say_the_form() {
        let t = parse_rfc3339("2026-12-01T16:30:00.5Z").unwrap();
        let ms = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        assert_eq!(ms, 1_796_142_600_500);
        assert_eq!(parse_rfc3339("2026-12-01T17:30:00.5+01:00").unwrap(), t);
        assert!(parse_rfc3339("16:30")
            .unwrap_err()
            .contains("2026-12-01T16:30:00Z"));
    }
}
