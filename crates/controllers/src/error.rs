//! The controllers' error type, and the questions they ask of API errors (is it a 404, a 409,
//! a write refused because the namespace is terminating).

/// Why a reconcile, or a controller, failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API request failed (the server's `Status` is inside).
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// The controller needs something the manager was not given; it does not start.
    #[error("controller {controller} needs {what}, which is not configured")]
    MissingDependency {
        controller: &'static str,
        what: &'static str,
    },
    /// A reflector's writer went away, so its cache will never be ready.
    #[error("the {0} cache stopped")]
    CacheStopped(&'static str),
    /// The token generator refused.
    #[error("error generating a token for secret {namespace}/{name}: {message}")]
    TokenGeneration {
        namespace: String,
        name: String,
        message: String,
    },
    /// `spec.request` of a CSR is not a PEM certificate request (upstream's text).
    #[error("unable to parse csr {name:?}: {message}")]
    CsrParse { name: String, message: String },
    /// The signer refused (upstream's text).
    #[error("error auto signing csr {name:?}: {message}")]
    Signing { name: String, message: String },
    /// A kubelet client CSR whose requester may not have it: retried with backoff, as
    /// upstream's ignorable error.
    #[error("recognized csr {name:?} as [{}] but subject access review was not approved", .tried.join(" "))]
    NotApproved { name: String, tried: Vec<String> },
    /// A terminating namespace's content could not all be discovered or deleted (the
    /// namespace's conditions say what); retried with backoff.
    #[error("deletion of namespace {namespace} failed: {message}")]
    NamespaceDeletion { namespace: String, message: String },
    /// An aggregation rule with a selector that cannot be built.
    #[error("invalid aggregationRule of clusterrole {name}: {source}")]
    Selector {
        name: String,
        #[source]
        source: rkube_api::selector::SelectorError,
    },
}

impl Error {
    /// An expected state that is retried quietly (upstream's `IgnorableError`, and a write
    /// that lost a race to a concurrent one), not a fault.
    pub fn is_ignorable(&self) -> bool {
        match self {
            Error::NotApproved { .. } => true,
            Error::Api(e) => is_conflict(e),
            _ => false,
        }
    }
}

/// The message of an API error as upstream prints it in events: the server's `Status`
/// message, not kube's debug rendering of the whole `Status`.
pub fn api_message(err: &kube::Error) -> String {
    match status(err) {
        Some(s) if !s.message.is_empty() => s.message.clone(),
        _ => err.to_string(),
    }
}

/// The server's `Status` for an API error, if that is what `err` is.
fn status(err: &kube::Error) -> Option<&kube::core::Status> {
    match err {
        kube::Error::Api(s) => Some(s),
        _ => None,
    }
}

/// 404: the object is gone.
pub fn is_not_found(err: &kube::Error) -> bool {
    status(err).is_some_and(|s| s.is_not_found())
}

/// 409 AlreadyExists.
pub fn is_already_exists(err: &kube::Error) -> bool {
    status(err).is_some_and(|s| s.is_already_exists())
}

/// 409 Conflict: a stale resourceVersion or a failed precondition.
pub fn is_conflict(err: &kube::Error) -> bool {
    status(err).is_some_and(|s| s.is_conflict())
}

/// 415: the server does not take this patch type (server-side apply).
pub fn is_unsupported_media_type(err: &kube::Error) -> bool {
    status(err).is_some_and(|s| s.code == 415)
}

/// A create refused because its namespace is terminating (upstream's
/// `HasStatusCause(err, NamespaceTerminatingCause)`).
pub fn is_namespace_terminating(err: &kube::Error) -> bool {
    status(err)
        .and_then(|s| s.details.as_ref())
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::{StatusCause, StatusDetails};
    use kube::core::Status;

    fn api(status: Status) -> kube::Error {
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn api_errors_are_classified_by_status() {
        let not_found = api(Status::failure("gone", "NotFound").with_code(404));
        let exists = api(Status::failure("exists", "AlreadyExists").with_code(409));
        let conflict = api(Status::failure("stale", "Conflict").with_code(409));
        let media = api(Status::failure("no apply", "UnsupportedMediaType").with_code(415));
        let terminating = api(Status::failure("being terminated", "Forbidden")
            .with_code(403)
            .with_details(StatusDetails {
                causes: vec![StatusCause {
                    reason: "NamespaceTerminating".into(),
                    message: "namespace a is being terminated".into(),
                    field: String::new(),
                }],
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                retry_after_seconds: 0,
            }));
        let plain_forbidden = api(Status::failure("no", "Forbidden").with_code(403));
        let cases: &[(&kube::Error, [bool; 5])] = &[
            (&not_found, [true, false, false, false, false]),
            (&exists, [false, true, false, false, false]),
            (&conflict, [false, false, true, false, false]),
            (&media, [false, false, false, true, false]),
            (&terminating, [false, false, false, false, true]),
            (&plain_forbidden, [false; 5]),
        ];
        for (err, want) in cases {
            let got = [
                is_not_found(err),
                is_already_exists(err),
                is_conflict(err),
                is_unsupported_media_type(err),
                is_namespace_terminating(err),
            ];
            assert_eq!(&got, want, "{err}");
        }
    }

    #[test]
    fn api_message_is_the_status_message() {
        let e = api(Status::failure("pods \"p\" is forbidden", "Forbidden").with_code(403));
        assert_eq!(api_message(&e), "pods \"p\" is forbidden");
    }

    #[test]
    fn not_approved_reads_like_upstream() {
        let e = Error::NotApproved {
            name: "csr-1".into(),
            tried: vec!["selfnodeclient".into(), "nodeclient".into()],
        };
        assert_eq!(
            e.to_string(),
            "recognized csr \"csr-1\" as [selfnodeclient nodeclient] but subject access review was not approved"
        );
    }
}
