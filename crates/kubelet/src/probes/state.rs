//! The probe state machine, pure: how a run of probe outcomes moves a container's liveness,
//! readiness or startup result (upstream's prober `worker.doProbe` after the probe itself), and
//! when a probe runs at all.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};

/// The three probes of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 3] = [
        ProbeKind::Startup,
        ProbeKind::Readiness,
        ProbeKind::Liveness,
    ];

    /// Upstream's probe type text, as events show it.
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }

    /// The container's probe of this kind.
    pub fn of(self, container: &Container) -> Option<&Probe> {
        match self {
            ProbeKind::Liveness => container.liveness_probe.as_ref(),
            ProbeKind::Readiness => container.readiness_probe.as_ref(),
            ProbeKind::Startup => container.startup_probe.as_ref(),
        }
    }

    /// The result before the first probe counts: readiness starts failed (not ready), liveness
    /// successful (alive), startup unknown (not started).
    pub fn initial(self) -> Status {
        match self {
            ProbeKind::Liveness => Status::Success,
            ProbeKind::Readiness => Status::Failure,
            ProbeKind::Startup => Status::Unknown,
        }
    }

    /// Whether this probe's failure means the container is killed.
    pub fn kills(self) -> bool {
        matches!(self, ProbeKind::Liveness | ProbeKind::Startup)
    }
}

/// What one probe run says, as upstream's `probe.Result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A success with something to report (an HTTP redirect to another host not followed).
    Warning,
    Failure,
    /// No verdict without an error: counts as a failure.
    Unknown,
}

impl Outcome {
    /// What the run counts as: warnings succeed, unknowns fail.
    pub fn verdict(self) -> Verdict {
        match self {
            Outcome::Success | Outcome::Warning => Verdict::Success,
            Outcome::Failure | Outcome::Unknown => Verdict::Failure,
        }
    }
}

/// A probe run's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure,
}

/// A probe's current result (upstream's `results.Result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Unknown,
    Success,
    Failure,
}

/// A probe's timing and thresholds, with upstream's defaults for unset fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn of(probe: &Probe) -> Timing {
        let secs = |v: Option<i32>, default: i32, min: i32| {
            Duration::from_secs(v.unwrap_or(default).max(min) as u64)
        };
        Timing {
            initial_delay: secs(probe.initial_delay_seconds, 0, 0),
            period: secs(probe.period_seconds, 10, 1),
            timeout: secs(probe.timeout_seconds, 1, 1),
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
        }
    }
}

/// One probe of one container instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeState {
    pub kind: ProbeKind,
    /// The current result.
    pub status: Status,
    last: Option<Verdict>,
    /// How many runs in a row gave `last`.
    run: u32,
    /// Set once a liveness or startup probe has failed: the container is to be killed, and this
    /// instance is not probed again.
    pub on_hold: bool,
}

impl ProbeState {
    pub fn new(kind: ProbeKind) -> ProbeState {
        ProbeState {
            kind,
            status: kind.initial(),
            last: None,
            run: 0,
            on_hold: false,
        }
    }

    /// Records one run's verdict: the result changes once `successThreshold` successes or
    /// `failureThreshold` failures come in a row. Returns the new result when it changed.
    pub fn record(&mut self, verdict: Verdict, timing: &Timing) -> Option<Status> {
        if self.last == Some(verdict) {
            self.run += 1;
        } else {
            self.last = Some(verdict);
            self.run = 1;
        }
        let threshold = match verdict {
            Verdict::Success => timing.success_threshold,
            Verdict::Failure => timing.failure_threshold,
        };
        if self.run < threshold {
            return None;
        }
        let status = match verdict {
            Verdict::Success => Status::Success,
            Verdict::Failure => Status::Failure,
        };
        if self.kind.kills() && verdict == Verdict::Failure {
            self.on_hold = true;
            self.run = 0;
        }
        let previous = std::mem::replace(&mut self.status, status);
        (previous != status).then_some(status)
    }
}

/// What a probe's worker does at a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Run the probe.
    Probe,
    /// Not now; ask again at the next tick.
    Wait,
    /// This probe is done with this container instance.
    Done,
}

/// Whether a probe runs now (upstream's checks before probing): not before `initialDelaySeconds`
/// (whole seconds since the container started), the startup probe only until the container has
/// started, the others only once it has; liveness and startup stop when the pod is being deleted
/// and once they have failed.
pub fn gate(
    state: &ProbeState,
    started: bool,
    deleting: bool,
    since_start: Duration,
    initial_delay: Duration,
) -> Gate {
    if state.on_hold || (deleting && state.kind.kills()) {
        return Gate::Done;
    }
    if state.kind == ProbeKind::Startup && started {
        return Gate::Done;
    }
    if since_start.as_secs() < initial_delay.as_secs() {
        return Gate::Wait;
    }
    if state.kind != ProbeKind::Startup && !started {
        return Gate::Wait;
    }
    Gate::Probe
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    fn timing(success: u32, failure: u32) -> Timing {
        Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    fn sym(s: Status) -> char {
        match s {
            Status::Unknown => '?',
            Status::Success => 'S',
            Status::Failure => 'F',
        }
    }

    /// Feeds a sequence of outcomes and returns the status after each, as a string.
    fn run(kind: ProbeKind, success: u32, failure: u32, outcomes: &[Outcome]) -> (String, bool) {
        let t = timing(success, failure);
        let mut state = ProbeState::new(kind);
        let mut trace = String::new();
        for o in outcomes {
            let before = state.status;
            let changed = state.record(o.verdict(), &t);
            assert_eq!(changed.is_some(), state.status != before, "change reported");
            trace.push(sym(state.status));
        }
        (trace, state.on_hold)
    }

    #[test]
    fn thresholds_move_results() {
        use ProbeKind::*;
        // (name, kind, successThreshold, failureThreshold, outcomes, statuses after each, on hold)
        type Case<'a> = (&'a str, ProbeKind, u32, u32, &'a [Outcome], &'a str, bool);
        let cases: &[Case] = &[
            (
                "readiness: one success makes ready",
                Readiness,
                1,
                3,
                &[Success],
                "S",
                false,
            ),
            (
                "readiness: three failures make unready",
                Readiness,
                1,
                3,
                &[Success, Failure, Failure, Failure],
                "SSSF",
                false,
            ),
            (
                "readiness: failures below threshold keep ready",
                Readiness,
                1,
                3,
                &[Success, Failure, Failure, Success, Failure, Failure],
                "SSSSSS",
                false,
            ),
            (
                "readiness: successThreshold 2 needs two in a row",
                Readiness,
                2,
                3,
                &[Success, Failure, Success, Success],
                "FFFS",
                false,
            ),
            (
                "readiness: warning counts as success",
                Readiness,
                1,
                1,
                &[Warning],
                "S",
                false,
            ),
            (
                "readiness: unknown counts as failure",
                Readiness,
                1,
                1,
                &[Success, Unknown],
                "SF",
                false,
            ),
            (
                "readiness: keeps probing after failing",
                Readiness,
                1,
                1,
                &[Failure, Success, Failure],
                "FSF",
                false,
            ),
            (
                "liveness: alive until failureThreshold failures",
                Liveness,
                1,
                3,
                &[Failure, Failure, Failure],
                "SSF",
                true,
            ),
            (
                "liveness: a success resets the count",
                Liveness,
                1,
                3,
                &[Failure, Failure, Success, Failure, Failure],
                "SSSSS",
                false,
            ),
            (
                "liveness: failureThreshold 1",
                Liveness,
                1,
                1,
                &[Success, Failure],
                "SF",
                true,
            ),
            (
                "startup: unknown until a success",
                Startup,
                1,
                3,
                &[Failure, Success],
                "?S",
                false,
            ),
            (
                "startup: fails after failureThreshold",
                Startup,
                1,
                3,
                &[Failure, Failure, Failure],
                "??F",
                true,
            ),
            (
                "startup: unknown counts as failure",
                Startup,
                1,
                2,
                &[Unknown, Unknown],
                "?F",
                true,
            ),
        ];
        for (name, kind, success, failure, outcomes, want, hold) in cases {
            let (trace, on_hold) = run(*kind, *success, *failure, outcomes);
            assert_eq!(&trace, want, "{name}");
            assert_eq!(on_hold, *hold, "{name}: on hold");
        }
    }

    #[test]
    fn initial_results() {
        assert_eq!(
            ProbeState::new(ProbeKind::Readiness).status,
            Status::Failure
        );
        assert_eq!(ProbeState::new(ProbeKind::Liveness).status, Status::Success);
        assert_eq!(ProbeState::new(ProbeKind::Startup).status, Status::Unknown);
    }

    #[test]
    fn gates() {
        use ProbeKind::*;
        let s = Duration::from_secs;
        let held = {
            let mut p = ProbeState::new(Liveness);
            p.on_hold = true;
            p
        };
        let st = ProbeState::new;
        // (name, state, started, deleting, since start, initial delay, gate)
        let cases: Vec<(&str, ProbeState, bool, bool, Duration, Duration, Gate)> = vec![
            (
                "liveness runs once started",
                st(Liveness),
                true,
                false,
                s(0),
                s(0),
                Gate::Probe,
            ),
            (
                "liveness waits for startup",
                st(Liveness),
                false,
                false,
                s(5),
                s(0),
                Gate::Wait,
            ),
            (
                "readiness waits for startup",
                st(Readiness),
                false,
                false,
                s(5),
                s(0),
                Gate::Wait,
            ),
            (
                "startup runs until started",
                st(Startup),
                false,
                false,
                s(0),
                s(0),
                Gate::Probe,
            ),
            (
                "startup is done once started",
                st(Startup),
                true,
                false,
                s(0),
                s(0),
                Gate::Done,
            ),
            (
                "initial delay holds a probe",
                st(Readiness),
                true,
                false,
                s(4),
                s(5),
                Gate::Wait,
            ),
            (
                "initial delay counts whole seconds",
                st(Readiness),
                true,
                false,
                Duration::from_millis(4999),
                s(5),
                Gate::Wait,
            ),
            (
                "initial delay over",
                st(Readiness),
                true,
                false,
                s(5),
                s(5),
                Gate::Probe,
            ),
            (
                "startup honours its initial delay",
                st(Startup),
                false,
                false,
                s(1),
                s(2),
                Gate::Wait,
            ),
            (
                "a failed liveness probe is done",
                held,
                true,
                false,
                s(9),
                s(0),
                Gate::Done,
            ),
            (
                "deletion ends liveness",
                st(Liveness),
                true,
                true,
                s(9),
                s(0),
                Gate::Done,
            ),
            (
                "deletion ends startup",
                st(Startup),
                false,
                true,
                s(9),
                s(0),
                Gate::Done,
            ),
            (
                "readiness runs during deletion",
                st(Readiness),
                true,
                true,
                s(9),
                s(0),
                Gate::Probe,
            ),
        ];
        for (name, state, started, deleting, since, delay, want) in cases {
            assert_eq!(
                gate(&state, started, deleting, since, delay),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn timing_defaults() {
        let t = Timing::of(&Probe::default());
        assert_eq!(
            t,
            Timing {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3,
            }
        );
        let t = Timing::of(&Probe {
            initial_delay_seconds: Some(5),
            period_seconds: Some(2),
            timeout_seconds: Some(3),
            success_threshold: Some(2),
            failure_threshold: Some(4),
            ..Default::default()
        });
        assert_eq!(
            (
                t.initial_delay.as_secs(),
                t.period.as_secs(),
                t.timeout.as_secs()
            ),
            (5, 2, 3)
        );
        assert_eq!((t.success_threshold, t.failure_threshold), (2, 4));
    }
}
