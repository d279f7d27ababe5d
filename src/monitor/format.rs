//! Go-compatible formatting and query parsing shared by the endpoints: RFC 3339 times,
//! nats-server's uptime style, Go duration strings for RTT, and strconv-style errors for
//! bad query values (clients and scripts match on these texts).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::config::duration::format_duration;

/// RFC 3339 UTC with nanoseconds, as Go marshals time.Time.
pub fn rfc3339(t: SystemTime) -> String {
    Rfc3339(t).to_string()
}

/// [`rfc3339`] as `Display`, so a serializer can write it without a `String` per field.
pub struct Rfc3339(pub SystemTime);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self
            .0
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = d.as_secs() as i64;
        let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
        let (y, m, dd) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )?;
        // Go prints the fraction with trailing zeros dropped, and none when whole.
        let mut nanos = d.subsec_nanos();
        if nanos != 0 {
            let mut width = 9;
            while nanos.is_multiple_of(10) {
                nanos /= 10;
                width -= 1;
            }
            write!(f, ".{nanos:0width$}")?;
        }
        f.write_str("Z")
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// nats-server's uptime style (`myUptime`): "9s", "1m29s", "2h0m5s", "2d3h0m5s", "1y2d...".
pub fn uptime(d: Duration) -> String {
    Uptime(d).to_string()
}

/// [`uptime`] as `Display` (and `Serialize` without an intermediate `String`).
pub struct Uptime(pub Duration);

impl std::fmt::Display for Uptime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0.as_secs();
        let (mins, hrs, days) = (s / 60, s / 3600, s / 86400);
        let years = days / 365;
        if years > 0 {
            write!(
                f,
                "{years}y{}d{}h{}m{}s",
                days % 365,
                hrs % 24,
                mins % 60,
                s % 60
            )
        } else if days > 0 {
            write!(f, "{days}d{}h{}m{}s", hrs % 24, mins % 60, s % 60)
        } else if hrs > 0 {
            write!(f, "{hrs}h{}m{}s", mins % 60, s % 60)
        } else if mins > 0 {
            write!(f, "{mins}m{}s", s % 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl serde::Serialize for Uptime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An RTT as nats-server prints it (`getRTT().String()`): truncated to microseconds
/// between 1 µs and 1 ms, "0s" when not measured yet.
pub fn rtt(d: Option<Duration>) -> String {
    let d = d.unwrap_or_default();
    let d = if d > Duration::from_micros(1) && d < Duration::from_millis(1) {
        Duration::from_micros(d.as_micros() as u64)
    } else {
        d
    };
    format_duration(d)
}

/// Time from `t` to `now` (zero if `t` is later).
pub fn elapsed(now: SystemTime, t: SystemTime) -> Duration {
    now.duration_since(t).unwrap_or_default()
}

/// Go's strconv.Quote for the error texts (ASCII inputs; enough for query values).
fn quote(v: &str) -> String {
    format!("{v:?}")
}

/// Query parameters with nats-server's decoding rules and error texts.
pub struct Query<'a>(pub &'a HashMap<String, String>);

impl Query<'_> {
    /// The value, `None` when absent or empty (Go's `Get` returns "" for both).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// strconv.ParseBool forms; absent or empty is false.
    pub fn bool(&self, key: &str) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(v) => Err(format!(
                "Error decoding boolean for '{key}': strconv.ParseBool: parsing {}: invalid syntax",
                quote(v)
            )),
        }
    }

    /// strconv.Atoi; absent or empty is 0.
    pub fn int(&self, key: &str) -> Result<i64, String> {
        let Some(v) = self.get(key) else { return Ok(0) };
        v.parse::<i64>().map_err(|e| {
            let why = if matches!(
                e.kind(),
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
            ) {
                "value out of range"
            } else {
                "invalid syntax"
            };
            format!(
                "Error decoding int for '{key}': strconv.Atoi: parsing {}: {why}",
                quote(v)
            )
        })
    }

    /// strconv.ParseUint; absent or empty is 0.
    pub fn uint64(&self, key: &str) -> Result<u64, String> {
        let Some(v) = self.get(key) else { return Ok(0) };
        v.parse::<u64>().map_err(|_| {
            format!(
                "Error decoding uint64 for '{key}': strconv.ParseUint: parsing {}: invalid syntax",
                quote(v)
            )
        })
    }

    /// `subs`: `detail` (any case) or a boolean. Returns (subs, detail).
    pub fn subs(&self) -> Result<(bool, bool), String> {
        if self
            .get("subs")
            .is_some_and(|v| v.eq_ignore_ascii_case("detail"))
        {
            return Ok((false, true));
        }
        Ok((self.bool("subs")?, false))
    }
}

/// nats-server's paging: negative offset is 0, a non-positive limit is the default.
pub fn page_bounds(offset: i64, limit: i64, default_limit: usize) -> (usize, usize) {
    let offset = offset.max(0) as usize;
    let limit = if limit <= 0 {
        default_limit
    } else {
        limit as usize
    };
    (offset, limit)
}

/// The `[offset, offset+limit)` window of `len` items, clamped.
pub fn window(len: usize, offset: usize, limit: usize) -> std::ops::Range<usize> {
    let lo = offset.min(len);
    let hi = offset.saturating_add(limit).min(len);
    lo..hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_000_000, 500);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40.0000005Z");
        assert_eq!(uptime(Duration::from_secs(89)), "1m29s");
        assert_eq!(
            uptime(Duration::from_secs(2 * 86400 + 3 * 3600 + 5)),
            "2d3h0m5s"
        );
        assert_eq!(uptime(Duration::from_secs(400 * 86400)), "1y35d0h0m0s");
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_000_000, 120_000_000);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40.12Z");
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_000_000, 999_999_999);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40.999999999Z");
    }

    #[test]
    fn rtt_truncates_like_go() {
        assert_eq!(rtt(None), "0s");
        assert_eq!(rtt(Some(Duration::from_nanos(167_432))), "167µs");
        assert_eq!(rtt(Some(Duration::from_nanos(4_032_472))), "4.032472ms");
    }

    #[test]
    fn query_errors_match_nats_server() {
        let mut m = HashMap::new();
        m.insert("subs".to_string(), "x".to_string());
        m.insert("limit".to_string(), "x".to_string());
        m.insert("cid".to_string(), "x".to_string());
        let q = Query(&m);
        assert_eq!(
            q.bool("subs").unwrap_err(),
            "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            q.int("limit").unwrap_err(),
            "Error decoding int for 'limit': strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            q.uint64("cid").unwrap_err(),
            "Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"x\": invalid syntax"
        );
        assert_eq!(window(5, 3, 10), 3..5);
        assert_eq!(window(5, 9, 10), 5..5);
    }
}
