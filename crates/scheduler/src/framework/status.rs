//! A plugin's verdict: upstream's `framework.Status` with its codes.

use std::fmt;

/// Upstream's status codes, in upstream's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// The plugin ran and found nothing wrong.
    Success,
    /// An internal error: the cycle is aborted and the pod retried with backoff.
    Error,
    /// The pod does not fit on this node now; preemption might make it fit.
    Unschedulable,
    /// The pod does not fit on this node and preemption cannot help.
    UnschedulableAndUnresolvable,
    /// A Permit plugin holds the pod before binding.
    Wait,
    /// The plugin has nothing to do for this pod: its Filter (after PreFilter) or Score (after
    /// PreScore) is skipped for the cycle.
    Skip,
    /// PreEnqueue: the pod is not ready to be queued (for example, it has scheduling gates).
    Pending,
}

impl Code {
    /// Upstream's spelling, as metrics and messages use it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Success => "Success",
            Code::Error => "Error",
            Code::Unschedulable => "Unschedulable",
            Code::UnschedulableAndUnresolvable => "UnschedulableAndUnresolvable",
            Code::Wait => "Wait",
            Code::Skip => "Skip",
            Code::Pending => "Pending",
        }
    }
}

/// The result of running a plugin: a code, the human-readable reasons (each counted in the
/// `FailedScheduling` summary), and the plugin that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    code: Code,
    reasons: Vec<String>,
    plugin: Option<&'static str>,
}

impl Default for Status {
    fn default() -> Self {
        Status::success()
    }
}

impl Status {
    /// A status with `code` and reasons.
    pub fn new(code: Code, reasons: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Status {
            code,
            reasons: reasons.into_iter().map(Into::into).collect(),
            plugin: None,
        }
    }

    /// Success.
    pub fn success() -> Self {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: None,
        }
    }

    /// Unschedulable with one reason.
    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Status::new(Code::Unschedulable, [reason.into()])
    }

    /// UnschedulableAndUnresolvable with one reason.
    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Status::new(Code::UnschedulableAndUnresolvable, [reason.into()])
    }

    /// An internal error.
    pub fn error(reason: impl Into<String>) -> Self {
        Status::new(Code::Error, [reason.into()])
    }

    /// Skip.
    pub fn skip() -> Self {
        Status::new(Code::Skip, Vec::<String>::new())
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The reasons.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }

    /// The reasons joined with ", ", as upstream's `Status.Message()`.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }

    /// The plugin that returned this status, once the framework has recorded it.
    pub fn plugin(&self) -> Option<&'static str> {
        self.plugin
    }

    /// Records the plugin that returned this status.
    pub fn with_plugin(mut self, plugin: &'static str) -> Self {
        self.plugin = Some(plugin);
        self
    }

    /// Success (or Skip, which is not a failure).
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    /// Skip.
    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }

    /// Wait.
    pub fn is_wait(&self) -> bool {
        self.code == Code::Wait
    }

    /// Unschedulable or UnschedulableAndUnresolvable: a rejection rather than an error.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable | Code::Pending
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reasons.is_empty() {
            f.write_str(self.code.as_str())
        } else {
            f.write_str(&self.message())
        }
    }
}
