//! The text of upstream's `utilerrors.NewAggregate(errs).Error()`, which several admission
//! plugins put in their messages.

/// One message as itself; several as `[a, b]` with repeats dropped; none as `""`.
pub(crate) fn aggregate_message<S: AsRef<str>>(messages: &[S]) -> String {
    match messages {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        many => {
            let mut seen: Vec<&str> = Vec::new();
            for m in many {
                if !seen.contains(&m.as_ref()) {
                    seen.push(m.as_ref());
                }
            }
            if seen.len() == 1 {
                seen[0].to_string()
            } else {
                format!("[{}]", seen.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::aggregate_message;

    #[test]
    fn aggregates_like_upstream() {
        let none: [&str; 0] = [];
        assert_eq!(aggregate_message(&none), "");
        assert_eq!(aggregate_message(&["a"]), "a");
        assert_eq!(aggregate_message(&["a", "b"]), "[a, b]");
        assert_eq!(aggregate_message(&["a", "a"]), "a");
        assert_eq!(aggregate_message(&["a", "b", "a"]), "[a, b]");
    }
}
