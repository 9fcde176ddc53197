//! The JSON spellings of `metav1.Time` (RFC 3339, whole seconds), `metav1.MicroTime`
//! (RFC 3339 with six fractional digits) and `metav1.Duration` (Go's `time.Duration` string,
//! nanoseconds on the wire).

use jiff::Timestamp;

/// Formats `seconds`/`nanos` since the epoch as Go's `time.RFC3339` in UTC, dropping the
/// fraction the way `metav1.Time.MarshalJSON` does.
pub(crate) fn format_time(seconds: i64, nanos: i32) -> Option<String> {
    let ts = Timestamp::new(seconds, nanos).ok()?;
    Some(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// `metav1.MicroTime`: always six fractional digits, truncated, in UTC.
pub(crate) fn format_micro_time(seconds: i64, nanos: i32) -> Option<String> {
    let ts = Timestamp::new(seconds, nanos - nanos % 1000).ok()?;
    Some(ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

/// Parses an RFC 3339 timestamp (any offset, optional fraction) into seconds and nanos.
pub(crate) fn parse_time(text: &str) -> Option<(i64, i32)> {
    let ts: Timestamp = text.parse().ok()?;
    Some((ts.as_second(), ts.subsec_nanosecond()))
}

/// Go's `time.Duration.String()`.
pub(crate) fn format_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    if nanos < 0 {
        out.push('-');
    }
    let u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        let (unit, scale, width) = match u {
            0..1_000 => ("ns", 1, 0),
            1_000..1_000_000 => ("µs", 1_000, 3),
            _ => ("ms", 1_000_000, 6),
        };
        out.push_str(&(u / scale).to_string());
        push_fraction(&mut out, u % scale, width);
        out.push_str(unit);
        return out;
    }
    let secs = u / 1_000_000_000;
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&seconds.to_string());
    push_fraction(&mut out, u % 1_000_000_000, 9);
    out.push('s');
    out
}

fn push_fraction(out: &mut String, remainder: u64, width: usize) {
    if remainder > 0 {
        let digits = format!("{remainder:0width$}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// Parses Go's `time.ParseDuration` syntax (`1h30m`, `1.5s`, `-300ms`, `0`) into nanoseconds.
pub(crate) fn parse_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        total = total.checked_add(whole.checked_mul(scale)?)?;
        let mut place = scale;
        for digit in fraction.bytes() {
            place /= 10;
            total = total.checked_add(i128::from(digit - b'0') * place)?;
        }
        if total > i128::from(i64::MAX) + 1 {
            return None;
        }
        rest = after;
    }
    let total = if negative { -total } else { total };
    i64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_like_go() {
        assert_eq!(
            format_time(1_700_000_000, 123_456_789).as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(
            format_micro_time(1_700_000_000, 123_456_789).as_deref(),
            Some("2023-11-14T22:13:20.123456Z")
        );
        assert_eq!(
            format_micro_time(1_700_000_000, 0).as_deref(),
            Some("2023-11-14T22:13:20.000000Z")
        );
        assert_eq!(format_time(i64::MAX, 0), None);
    }

    #[test]
    fn times_parse_with_offsets_and_fractions() {
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some((1_700_000_000, 0)));
        assert_eq!(
            parse_time("2023-11-14T23:13:20.5+01:00"),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn durations_format_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (100_000_000, "100ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (5_430_000_000_000, "1h30m30s"),
            (-2_000_000_000, "-2s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(format_duration(nanos), want);
            assert_eq!(parse_duration(want), Some(nanos), "{want}");
        }
    }

    #[test]
    fn durations_parse_go_syntax_and_reject_garbage() {
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration(".5s"), Some(500_000_000));
        assert_eq!(parse_duration("2us"), Some(2_000));
        for bad in ["", "5", "1x", "s", "-", "99999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
