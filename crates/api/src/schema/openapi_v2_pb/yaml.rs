//! JSON values as the YAML text gnostic stores in `Any.yaml`: what kube-openapi's
//! `util/proto` and cli-runtime parse back (with a YAML 1.1 reader, yaml.v2) to find
//! `x-kubernetes-group-version-kind`, patch strategies and defaults.

use serde_json::Value;

/// A JSON value as YAML text the way gnostic's `compiler.Marshal` (yaml.v3, styles cleared)
/// lays it out: block collections, nested mappings and sequences indented to the next
/// multiple of four columns, a mapping inside a sequence item starting right after `- `.
/// Strings are plain only when no YAML 1.1 or 1.2 reader could resolve them to anything but
/// that string; all others are double-quoted (yaml.v3 would pick literal or single-quoted
/// styles for some, which parse to the same value).
pub(super) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    if is_block(value) {
        emit_block(value, 0, false, &mut out);
    } else {
        emit_inline(value, &mut out);
        out.push('\n');
    }
    out
}

/// Non-empty collections are written as blocks; everything else fits after a key or `- `.
fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn next_indent(indent: usize) -> usize {
    4 * ((indent + 4) / 4)
}

/// Writes a non-empty collection at `indent`; with `inline_first` the cursor already stands
/// at that column (after `- `), so the first line gets no indentation of its own.
fn emit_block(value: &Value, indent: usize, inline_first: bool, out: &mut String) {
    let pad = |i: usize, out: &mut String| {
        if !(i == 0 && inline_first) {
            out.extend(std::iter::repeat_n(' ', indent));
        }
    };
    match value {
        Value::Object(map) => {
            for (i, (key, v)) in map.iter().enumerate() {
                pad(i, out);
                emit_string(key, out);
                out.push(':');
                if is_block(v) {
                    out.push('\n');
                    emit_block(v, next_indent(indent), false, out);
                } else {
                    out.push(' ');
                    emit_inline(v, out);
                    out.push('\n');
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pad(i, out);
                out.push_str("- ");
                if is_block(v) {
                    emit_block(v, indent + 2, true, out);
                } else {
                    emit_inline(v, out);
                    out.push('\n');
                }
            }
        }
        other => {
            emit_inline(other, out);
            out.push('\n');
        }
    }
}

fn emit_inline(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => emit_number(&n.to_string(), out),
        Value::String(s) => emit_string(s, out),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// YAML 1.1 floats need a dot and a signed exponent: `1e300` would read back as a string.
fn emit_number(text: &str, out: &mut String) {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        out.push_str(text);
        return;
    };
    out.push_str(mantissa);
    if !mantissa.contains('.') {
        out.push_str(".0");
    }
    out.push('e');
    if !exponent.starts_with(['+', '-']) {
        out.push('+');
    }
    out.push_str(exponent);
}

fn emit_string(s: &str, out: &mut String) {
    if is_plain_safe(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let cp = u32::from(c);
                if cp <= 0xffff {
                    out.push_str(&format!("\\u{cp:04X}"));
                } else {
                    out.push_str(&format!("\\U{cp:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Characters YAML does not allow raw in a double-quoted scalar, or would read as a line
/// break (NEL, LS, PS) or a byte-order mark.
fn needs_escape(c: char) -> bool {
    matches!(u32::from(c), 0..=0x1f | 0x7f..=0x9f | 0x2028 | 0x2029 | 0xfeff)
}

/// A letter or `_` first, then letters, digits, `_`, `.`, `/`, `-` and inner spaces, and not
/// one of the words YAML 1.1 reads as a boolean or null.
fn is_plain_safe(s: &str) -> bool {
    const WORDS: &[&str] = &["true", "false", "yes", "no", "on", "off", "y", "n", "null"];
    let Some(first) = s.chars().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_')
        && !s.ends_with(' ')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ' '))
        && !WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scalars_are_plain_only_when_no_yaml_reader_could_mistake_them() {
        let cases = [
            (json!("Pod"), "Pod\n"),
            (json!("io.k8s.api.core.v1.Pod"), "io.k8s.api.core.v1.Pod\n"),
            (json!("merge"), "merge\n"),
            (json!("a b/c-d_e"), "a b/c-d_e\n"),
            (json!(""), "\"\"\n"),
            (json!("true"), "\"true\"\n"),
            (json!("Yes"), "\"Yes\"\n"),
            (json!("y"), "\"y\"\n"),
            (json!("Off"), "\"Off\"\n"),
            (json!("null"), "\"null\"\n"),
            (json!("~"), "\"~\"\n"),
            (json!("1"), "\"1\"\n"),
            (json!("1.0"), "\"1.0\"\n"),
            (json!("12:30"), "\"12:30\"\n"),
            (json!(".inf"), "\".inf\"\n"),
            (json!("a: b"), "\"a: b\"\n"),
            (json!("a #b"), "\"a #b\"\n"),
            (json!("- a"), "\"- a\"\n"),
            (json!("trail "), "\"trail \"\n"),
            (json!("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"\n"),
            (json!("a\nb\tc"), "\"a\\nb\\tc\"\n"),
            (
                json!("\u{0}\u{85}\u{2028}\u{feff}"),
                "\"\\u0000\\u0085\\u2028\\uFEFF\"\n",
            ),
            (json!("héllo"), "\"héllo\"\n"),
            (json!(null), "null\n"),
            (json!(true), "true\n"),
            (json!(-5), "-5\n"),
            (json!(1.5), "1.5\n"),
            (json!(1e300), "1.0e+300\n"),
            (json!(1e-7), "1.0e-7\n"),
            (json!([]), "[]\n"),
            (json!({}), "{}\n"),
        ];
        for (value, want) in cases {
            assert_eq!(to_yaml(&value), want, "{value}");
        }
    }

    #[test]
    fn collections_use_yaml_v3_block_layout() {
        let cases = [
            (
                json!([{ "group": "", "kind": "Pod", "version": "v1" }]),
                "- group: \"\"\n  kind: Pod\n  version: v1\n",
            ),
            (
                json!({ "group": "apps", "kind": "Deployment", "version": "v1" }),
                "group: apps\nkind: Deployment\nversion: v1\n",
            ),
            (
                json!(["containerPort", "protocol"]),
                "- containerPort\n- protocol\n",
            ),
            (
                json!({ "a": { "b": ["c", {}] }, "d": [] }),
                "a:\n    b:\n        - c\n        - {}\nd: []\n",
            ),
            (
                json!({ "k": [{ "a": 1, "b": [{ "c": 2 }] }] }),
                "k:\n    - a: 1\n      b:\n        - c: 2\n",
            ),
            (json!([["a", "b"], ["c"]]), "- - a\n  - b\n- - c\n"),
            (json!({ "": "x", "1": "z" }), "\"\": x\n\"1\": z\n"),
        ];
        for (value, want) in cases {
            assert_eq!(to_yaml(&value), want, "{value}");
        }
    }
}
