//! Upstream's messages are Go format strings: these reproduce the few Go verbs they use (`%q`
//! of a string, a `time.Duration`, `format.Pod`) so the texts in events match upstream's.
//! Hand-written: they are a few lines each and no crate formats the Go way.

use k8s_openapi::api::core::v1::Pod;

/// Go's `%q` of a string (the API crate's, which error messages share).
pub fn quote(s: &str) -> String {
    rkube_api::go_quote::go_quote(s)
}

/// Go's `time.Duration` text of a whole number of seconds: `1s`, `1m30s`, `2h0m0s`.
pub fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Upstream's `format.Pod`: `name_namespace(uid)`.
pub fn pod(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// Go's `%v` of a string slice: `[a b c]`.
pub fn slice(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_as_go() {
        for (input, want) in [
            ("", r#""""#),
            ("ok", r#""ok""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("line\n\ttab\r", r#""line\n\ttab\r""#),
            ("\u{1b}[0m\u{7f}", r#""\x1b[0m\x7f""#),
            ("héllo", r#""héllo""#),
        ] {
            assert_eq!(quote(input), want, "{input:?}");
        }
    }

    #[test]
    fn durations_as_go() {
        for (secs, want) in [
            (0, "0s"),
            (1, "1s"),
            (59, "59s"),
            (60, "1m0s"),
            (90, "1m30s"),
            (3600, "1h0m0s"),
            (3723, "1h2m3s"),
        ] {
            assert_eq!(duration(secs), want);
        }
    }

    #[test]
    fn pods_and_slices_as_upstream() {
        let mut p = Pod::default();
        p.metadata.name = Some("web".into());
        p.metadata.namespace = Some("default".into());
        p.metadata.uid = Some("u-1".into());
        assert_eq!(pod(&p), "web_default(u-1)");
        assert_eq!(
            slice(&["sh".into(), "-c".into(), "exit 1".into()]),
            "[sh -c exit 1]"
        );
    }
}
