//! A minimal, private reading of resource quantities (`500m`, `1Gi`, `1e3`): enough for
//! validation to reject malformed ones, compare requests with limits and check signs.
//! The full quantity model lives in `crate::quantity`; this stays small on purpose.

/// Upstream's parse error, which it reports for any malformed quantity.
pub(crate) const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A parsed quantity as a float: exact enough to order requests and limits.
pub(crate) fn parse(s: &str) -> Option<f64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (num, suffix) = rest.split_at(num_end);
    if num.is_empty() || num.matches('.').count() > 1 || !num.bytes().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let base: f64 = num.parse().ok()?;
    let mult = multiplier(suffix)?;
    Some(sign * base * mult)
}

fn multiplier(suffix: &str) -> Option<f64> {
    let m = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => {
            let exp = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'))?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let e: i32 = exp.parse().ok()?;
            10f64.powi(e)
        }
    };
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_forms() {
        let cases: &[(&str, Option<f64>)] = &[
            ("1", Some(1.0)),
            ("500m", Some(0.5)),
            ("1Gi", Some(1073741824.0)),
            ("1.5k", Some(1500.0)),
            ("1e3", Some(1000.0)),
            ("-2", Some(-2.0)),
            (".5", Some(0.5)),
            ("", None),
            ("abc", None),
            ("1..2", None),
            ("1X", None),
            ("1e", None),
            ("1Gib", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s), *want, "{s}");
        }
    }
}
