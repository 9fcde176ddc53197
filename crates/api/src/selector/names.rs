//! Label key and value syntax, as upstream's `content.IsLabelKey` / `IsLabelValue` and
//! `IsDNS1123Subdomain` check it.
//!
//! Each check returns the list of upstream's problem strings (empty when valid), because
//! callers join them differently: the selector parser with `"; "`, object validation one
//! field error per string.

/// Longest label value and longest name part of a label key.
pub const LABEL_MAX_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain, e.g. a label key's prefix.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// Upstream's `MaxLenError`.
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} bytes")
}

/// Upstream's `RegexError`: the message, the examples and the regular expression. The
/// examples are joined as upstream joins them, with a double space before each `or`.
pub fn regex_error(msg: &str, re: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{re}')");
    }
    let quoted: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{re}')",
        quoted.join(" or ")
    )
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`: non-empty, alphanumeric at both ends.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let end_ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            end_ok(first) && end_ok(last) && b.iter().all(|c| end_ok(c) || *c == b'-')
        }
        _ => false,
    }
}

/// Whether `s` matches the DNS-1123 subdomain expression (length aside).
fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(is_dns1123_label)
}

/// Upstream's `IsDNS1123Subdomain`.
pub fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        let fmt = format!("{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*");
        errs.push(regex_error(DNS1123_SUBDOMAIN_ERR, &fmt, &["example.com"]));
    }
    errs
}

/// Upstream's `IsLabelKey` (a.k.a. `IsQualifiedName`): an optional DNS-1123 subdomain
/// prefix and `/`, then a name of at most 63 characters.
pub fn label_key_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let examples = ["MyName", "my.name", "123-abc"];
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(LABEL_KEY_ERR, LABEL_KEY_FMT, &examples)
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > LABEL_MAX_LENGTH {
        errs.push(format!("name part {}", max_len_error(LABEL_MAX_LENGTH)));
    }
    if !is_label_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(LABEL_KEY_ERR, LABEL_KEY_FMT, &examples)
        ));
    }
    errs
}

/// Upstream's `IsLabelValue`: empty, or at most 63 characters of the label-name syntax.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_MAX_LENGTH {
        errs.push(max_len_error(LABEL_MAX_LENGTH));
    }
    if !value.is_empty() && !is_label_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_are_checked_like_upstream() {
        let long = "a".repeat(64);
        let long_prefix = format!("{}.com/a", "a".repeat(250));
        let cases: &[(&str, bool)] = &[
            ("app", true),
            ("App_1.x-y", true),
            ("example.com/app", true),
            ("k8s.io/a", true),
            ("1", true),
            (&"a".repeat(63), true),
            (&long, false),
            ("", false),
            ("-app", false),
            ("app-", false),
            ("a b", false),
            ("/app", false),
            ("example.com/", false),
            ("Example.com/app", false),
            ("a/b/c", false),
            (&long_prefix, false),
            ("ex_ample.com/app", false),
        ];
        for (key, ok) in cases {
            assert_eq!(label_key_errors(key).is_empty(), *ok, "key {key:?}");
        }
    }

    #[test]
    fn label_key_messages_match_upstream() {
        assert_eq!(
            label_key_errors("a$"),
            vec!["name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string()]
        );
        assert_eq!(
            label_key_errors("/a"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert_eq!(
            label_key_errors("A/a"),
            vec!["prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string()]
        );
        let e = label_key_errors("a/");
        assert_eq!(e[0], "name part must be non-empty");
        assert_eq!(e.len(), 2);
        let e = label_key_errors(&"a".repeat(64));
        assert_eq!(
            e,
            vec!["name part must be no more than 63 bytes".to_string()]
        );
        let e = label_key_errors("a/b/c");
        assert!(
            e[0].starts_with("a valid label key must consist of"),
            "{e:?}"
        );
        assert!(e[0].ends_with(
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ));
    }

    #[test]
    fn label_values_are_checked_like_upstream() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("v", 0),
            ("v1.2_3-x", 0),
            (&"a".repeat(63), 0),
            (&"a".repeat(64), 1),
            ("-v", 1),
            ("v ", 1),
            ("ü", 1),
            (&format!("{}-", "a".repeat(64)), 2),
        ];
        for (value, n) in cases {
            assert_eq!(label_value_errors(value).len(), *n, "value {value:?}");
        }
        assert_eq!(
            label_value_errors("a$")[0],
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
    }
}
