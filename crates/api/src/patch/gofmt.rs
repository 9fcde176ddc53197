//! Go's `fmt` renderings of decoded JSON values, so that strategic merge patch errors carry
//! upstream's exact texts (`map: map[image:nginx] does not contain declared merge key: name`).
//!
//! Upstream decodes JSON into `map[string]interface{}` with integers as `int64` and other
//! numbers as `float64`; `%v` prints maps with sorted keys and lists space-separated.

use serde_json::{Number, Value};

/// `fmt.Sprintf("%v", v)`.
pub(crate) fn v(value: &Value) -> String {
    let mut out = String::new();
    write_v(&mut out, value);
    out
}

/// `fmt.Sprintf("%s", v)`: strings bare, other scalars as Go's bad-verb form.
pub(crate) fn s(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".to_string(),
        Value::Bool(_) | Value::Number(_) => format!("%!s({}={})", type_name(value), v(value)),
        Value::Array(_) | Value::Object(_) => v(value),
    }
}

/// `reflect.TypeOf(v).String()`, with `%s` of a nil type for JSON null.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(n) if is_integer(n) => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn is_integer(n: &Number) -> bool {
    n.is_i64() || n.is_u64()
}

fn write_v(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !is_integer(n) => out.push_str(&float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                if let Some(item) = map.get(key) {
                    write_v(out, item);
                }
            }
            out.push(']');
        }
    }
}

/// `%v` of a float64: the shortest digits, in exponent form when the decimal exponent is
/// below -4 or at least 6 (Go's `%g` threshold for the shortest precision).
fn float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return match f {
            x if x.is_nan() => "NaN".to_string(),
            x if x == f64::INFINITY => "+Inf".to_string(),
            x if x == f64::NEG_INFINITY => "-Inf".to_string(),
            _ => "0".to_string(),
        };
    }
    // Rust's `{:e}` gives the shortest round-tripping digits, like Go's precision -1.
    let sci = format!("{f:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_print_as_go_percent_v() {
        let cases = [
            (
                json!({"name": "a", "image": "nginx"}),
                "map[image:nginx name:a]",
            ),
            (json!([1, "x", null, true]), "[1 x <nil> true]"),
            (
                json!({"ports": [{"containerPort": 80}]}),
                "map[ports:[map[containerPort:80]]]",
            ),
            (json!(1.5), "1.5"),
            (json!(1000000.0), "1e+06"),
            (json!(123456.0), "123456"),
            (json!(0.00001), "1e-05"),
            (json!(0.0001), "0.0001"),
        ];
        for (value, want) in cases {
            assert_eq!(v(&value), want, "{value}");
        }
    }

    #[test]
    fn type_names_follow_reflect() {
        let cases = [
            (json!("a"), "string"),
            (json!(1), "int64"),
            (json!(1.5), "float64"),
            (json!({}), "map[string]interface {}"),
            (json!([]), "[]interface {}"),
            (Value::Null, "%!s(<nil>)"),
        ];
        for (value, want) in cases {
            assert_eq!(type_name(&value), want);
        }
        assert_eq!(s(&json!(1)), "%!s(int64=1)");
        assert_eq!(s(&json!("merge")), "merge");
    }
}
