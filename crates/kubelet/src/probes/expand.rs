//! Upstream's `$(VAR)` expansion (third_party/forked/golang/expansion), as exec probes use it:
//! `ExpandContainerCommandOnlyStatic` expands a probe's command with the container's `env`
//! (only the literal `value`s: a `valueFrom` variable expands to the empty string, as upstream).
//! Hand-written: the syntax is Kubernetes' own (`$$` escapes, unknown references stay as they
//! are), which no shell-expansion crate implements.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::EnvVar;

/// Expands `$(NAME)` references in `input`: a known name becomes its value, an unknown one stays
/// as written, `$$` becomes `$`, and any other `$` stays.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(close) => {
                        let name = &rest[1..close];
                        match lookup(name) {
                            Some(value) => out.push_str(&value),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        close + 1
                    }
                    None => {
                        // an unterminated reference stays as written
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    // a `$` that starts no reference stays; the next character is copied
                    // from the checkpoint, so it is never split in the middle
                    out.push('$');
                    0
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.push_str(&input[checkpoint.min(input.len())..]);
    out
}

/// Upstream's `ExpandContainerCommandOnlyStatic`.
pub fn command_with_static_env(command: &[String], env: &[EnvVar]) -> Vec<String> {
    let vars: HashMap<&str, &str> = env
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or_default()))
        .collect();
    command
        .iter()
        .map(|arg| expand(arg, |name| vars.get(name).map(|v| v.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "VAR_A" => Some("A".into()),
            "VAR_B" => Some("B".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_as_upstream() {
        // cases from upstream's expand_test.go
        for (input, want) in [
            ("$(VAR_A)", "A"),
            ("___$(VAR_B)___", "___B___"),
            ("$(VAR_A)-$(VAR_B)", "A-B"),
            ("$(VAR_A)$(VAR_B)", "AB"),
            ("$(EMPTY)", ""),
            ("$(UNKNOWN)", "$(UNKNOWN)"),
            ("$$(VAR_A)", "$(VAR_A)"),
            ("$$$(VAR_A)", "$A"),
            ("$$$$(VAR_A)", "$$(VAR_A)"),
            ("$$", "$"),
            ("$", "$"),
            ("foo$", "foo$"),
            ("$VAR_A", "$VAR_A"),
            ("$(VAR_A", "$(VAR_A"),
            ("$(", "$("),
            ("$()", "$()"),
            ("f00__(VAR_A)__", "f00__(VAR_A)__"),
            ("héllo $(VAR_A) ü$ü", "héllo A ü$ü"),
            ("$é", "$é"),
            ("", ""),
        ] {
            assert_eq!(expand(input, lookup), want, "{input:?}");
        }
    }

    #[test]
    fn only_static_values_expand() {
        let env = vec![
            EnvVar {
                name: "PORT".into(),
                value: Some("8080".into()),
                ..Default::default()
            },
            EnvVar {
                name: "SECRET".into(),
                value: None,
                value_from: Some(Default::default()),
            },
        ];
        let cmd = [
            "check".into(),
            "--port=$(PORT)".into(),
            "$(SECRET)$(NONE)".into(),
        ];
        assert_eq!(
            command_with_static_env(&cmd, &env),
            vec!["check", "--port=8080", "$(NONE)"]
        );
    }
}
