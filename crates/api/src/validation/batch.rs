//! `batch/v1` kinds: jobs and cron jobs, with a cron parser that accepts what upstream's
//! (`robfig/cron` standard syntax) accepts and words its errors the same way.

use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::meta::{
    immutable, json, non_negative, selector_matches, validate_annotations, validate_label_selector,
    validate_labels,
};
use super::names::name_is_dns_subdomain;
use super::pod::validate_pod_template_spec;
use super::{no_update, MetaRule, Rules};
use crate::field_error::{ErrorList, FieldError, FieldPath};

const MAX_PARALLELISM_INDEXED: i32 = 100_000;

fn validate_job_spec(spec: &JobSpec, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for (v, f) in [
        (spec.parallelism.map(i64::from), "parallelism"),
        (spec.completions.map(i64::from), "completions"),
        (spec.active_deadline_seconds, "activeDeadlineSeconds"),
        (spec.backoff_limit.map(i64::from), "backoffLimit"),
        (
            spec.ttl_seconds_after_finished.map(i64::from),
            "ttlSecondsAfterFinished",
        ),
        (
            spec.backoff_limit_per_index.map(i64::from),
            "backoffLimitPerIndex",
        ),
        (spec.max_failed_indexes.map(i64::from), "maxFailedIndexes"),
    ] {
        non_negative(v, &path.child(f), &mut errs);
    }
    if let Some(m) = spec.completion_mode.as_deref() {
        if !matches!(m, "NonIndexed" | "Indexed") {
            errs.push(FieldError::not_supported(
                &path.child("completionMode"),
                m,
                &["NonIndexed", "Indexed"],
            ));
        }
        if m == "Indexed" {
            if spec.completions.is_none() {
                errs.push(FieldError::required(
                    &path.child("completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = spec.parallelism.filter(|p| *p > MAX_PARALLELISM_INDEXED) {
                errs.push(FieldError::invalid(
                    &path.child("parallelism"),
                    p,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                ));
            }
        }
    }
    if let Some(p) = spec.pod_replacement_policy.as_deref() {
        if !matches!(p, "TerminatingOrFailed" | "Failed") {
            errs.push(FieldError::not_supported(
                &path.child("podReplacementPolicy"),
                p,
                &["TerminatingOrFailed", "Failed"],
            ));
        }
    }
    // The server generates the selector unless `manualSelector` is set; only check it when
    // there is one (or one was required).
    match &spec.selector {
        None if spec.manual_selector == Some(true) => {
            errs.push(FieldError::required(&path.child("selector"), ""))
        }
        None => {}
        Some(sel) => {
            errs.extend(validate_label_selector(Some(sel), &path.child("selector")));
            let labels = spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone());
            if selector_matches(sel, labels.as_ref()) == Some(false) {
                errs.push(FieldError::invalid(
                    &path.child("template").child("metadata").child("labels"),
                    json(&labels.unwrap_or_default()),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    errs.extend(validate_job_template(
        &spec.template,
        &path.child("template"),
    ));
    errs
}

fn validate_job_template(t: &PodTemplateSpec, path: &FieldPath) -> ErrorList {
    let mut errs = validate_pod_template_spec(t, path);
    let restart = t.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
    match restart {
        Some("OnFailure" | "Never") => {}
        // Pod defaulting would make an absent policy `Always`, which jobs do not allow.
        other => errs.push(FieldError::not_supported(
            &path.child("spec").child("restartPolicy"),
            other.unwrap_or("Always"),
            &["OnFailure", "Never"],
        )),
    }
    errs
}

pub(crate) fn job_rules() -> Rules<Job> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |j, _| {
            validate_job_spec(&j.spec.clone().unwrap_or_default(), &FieldPath::new("spec"))
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            let (ns, os) = (
                n.spec.clone().unwrap_or_default(),
                o.spec.clone().unwrap_or_default(),
            );
            if os.selector.is_some() {
                immutable(&ns.selector, &os.selector, &sp.child("selector"), &mut errs);
            }
            if ns.completion_mode.as_deref() != Some("Indexed") || ns.completions.is_none() {
                immutable(
                    &ns.completions,
                    &os.completions,
                    &sp.child("completions"),
                    &mut errs,
                );
            }
            immutable(
                &ns.completion_mode,
                &os.completion_mode,
                &sp.child("completionMode"),
                &mut errs,
            );
            immutable(
                &ns.pod_failure_policy,
                &os.pod_failure_policy,
                &sp.child("podFailurePolicy"),
                &mut errs,
            );
            immutable(
                &ns.backoff_limit_per_index,
                &os.backoff_limit_per_index,
                &sp.child("backoffLimitPerIndex"),
                &mut errs,
            );
            immutable(
                &ns.managed_by,
                &os.managed_by,
                &sp.child("managedBy"),
                &mut errs,
            );
            // A suspended job that never started may have its scheduling directives changed.
            let mut nt = ns.template.clone();
            let ot = os.template.clone();
            if ns.suspend == Some(true) {
                if let (Some(a), Some(b)) = (nt.spec.as_mut(), ot.spec.as_ref()) {
                    a.node_selector.clone_from(&b.node_selector);
                    a.affinity.clone_from(&b.affinity);
                    a.tolerations.clone_from(&b.tolerations);
                    a.scheduling_gates.clone_from(&b.scheduling_gates);
                }
                if let (Some(a), Some(b)) = (nt.metadata.as_mut(), ot.metadata.as_ref()) {
                    a.labels.clone_from(&b.labels);
                    a.annotations.clone_from(&b.annotations);
                }
            }
            if json(&nt) != json(&ot) {
                errs.push(FieldError::invalid(
                    &sp.child("template"),
                    json(&ns.template),
                    super::meta::FIELD_IMMUTABLE,
                ));
            }
            errs
        },
        status: |n, _, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("status");
            if let Some(s) = &n.status {
                for (v, f) in [
                    (s.active, "active"),
                    (s.succeeded, "succeeded"),
                    (s.failed, "failed"),
                    (s.ready, "ready"),
                    (s.terminating, "terminating"),
                ] {
                    non_negative(v.map(i64::from), &sp.child(f), &mut errs);
                }
            }
            errs
        },
    }
}

pub(crate) fn cron_job_rules() -> Rules<CronJob> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |cj, _| {
            let mut errs = ErrorList::new();
            let name = cj.metadata.name.clone().unwrap_or_default();
            if name.len() > 52 {
                errs.push(FieldError::invalid(
                    &FieldPath::new("metadata").child("name"),
                    name.as_str(),
                    "must be no more than 52 characters",
                ));
            }
            errs.extend(validate_cron_job_spec(cj, None));
            errs
        },
        update: no_update,
        status: |_, _, _| ErrorList::new(),
    }
}

fn validate_cron_job_spec(cj: &CronJob, old_schedule: Option<&str>) -> ErrorList {
    let mut errs = ErrorList::new();
    let sp = FieldPath::new("spec");
    let spec = cj.spec.clone().unwrap_or_default();
    let schp = sp.child("schedule");
    if spec.schedule.is_empty() {
        errs.push(FieldError::required(&schp, ""));
    } else {
        if let Err(e) = parse_cron(&spec.schedule) {
            errs.push(FieldError::invalid(&schp, spec.schedule.as_str(), &e));
        }
        let allow_tz = old_schedule.is_some_and(|s| s.contains("TZ"));
        if allow_tz && spec.schedule.contains("TZ") && spec.time_zone.is_some() {
            errs.push(FieldError::invalid(
                &schp,
                spec.schedule.as_str(),
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && spec.schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                &schp,
                spec.schedule.as_str(),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    non_negative(
        spec.starting_deadline_seconds,
        &sp.child("startingDeadlineSeconds"),
        &mut errs,
    );
    if let Some(tz) = spec.time_zone.as_deref() {
        let tzp = sp.child("timeZone");
        if tz.is_empty() {
            errs.push(FieldError::invalid(&tzp, tz, "unknown time zone "));
        } else if tz.contains(' ')
            || tz.starts_with('/')
            || tz.contains("..")
            || jiff::tz::TimeZone::get(tz).is_err()
        {
            errs.push(FieldError::invalid(
                &tzp,
                tz,
                &format!("unknown time zone {tz}"),
            ));
        }
    }
    match spec.concurrency_policy.as_deref() {
        None | Some("Allow" | "Forbid" | "Replace") => {}
        Some("") => errs.push(FieldError::required(&sp.child("concurrencyPolicy"), "")),
        Some(p) => errs.push(FieldError::not_supported(
            &sp.child("concurrencyPolicy"),
            p,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jtp = sp.child("jobTemplate");
    let jt = &spec.job_template;
    let jmeta = jt.metadata.clone().unwrap_or_default();
    errs.extend(validate_labels(
        jmeta.labels.as_ref(),
        &jtp.child("metadata").child("labels"),
    ));
    errs.extend(validate_annotations(
        jmeta.annotations.as_ref(),
        &jtp.child("metadata").child("annotations"),
    ));
    let jspec = jt.spec.clone().unwrap_or_default();
    errs.extend(validate_job_spec(&jspec, &jtp.child("spec")));
    for (v, f) in [
        (
            spec.successful_jobs_history_limit,
            "successfulJobsHistoryLimit",
        ),
        (spec.failed_jobs_history_limit, "failedJobsHistoryLimit"),
    ] {
        non_negative(v.map(i64::from), &sp.child(f), &mut errs);
    }
    errs
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// Parses a standard five-field cron expression or a descriptor; `Err` carries upstream's
/// error text.
pub(crate) fn parse_cron(spec: &str) -> Result<(), String> {
    let mut spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let (tz, rest) = spec.split_once(' ').unwrap_or((spec, ""));
        let name = tz.split_once('=').map(|(_, n)| n).unwrap_or_default();
        if jiff::tz::TimeZone::get(name).is_err() {
            return Err(format!(
                "provided bad location {name}: unknown time zone {name}"
            ));
        }
        spec = rest.trim();
    }
    if let Some(d) = spec.strip_prefix('@') {
        return match d {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ if d.starts_with("every ") => {
                let dur = d["every ".len()..].trim();
                if parse_go_duration(dur) {
                    Ok(())
                } else {
                    Err(format!(
                        "failed to parse duration {spec}: time: invalid duration \"{dur}\""
                    ))
                }
            }
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for (f, b) in fields.iter().zip([&MINUTE, &HOUR, &DOM, &MONTH, &DOW]) {
        for part in f.split(',') {
            parse_range(part, b)?;
        }
    }
    Ok(())
}

fn parse_range(expr: &str, b: &Bounds) -> Result<(), String> {
    let (range, step) = match expr.split('/').collect::<Vec<_>>().as_slice() {
        [r] => (*r, None),
        [r, s] => (*r, Some(*s)),
        _ => return Err(format!("too many slashes: {expr}")),
    };
    let (start, end) = if range == "*" || range == "?" {
        (b.min, b.max)
    } else {
        match range.split('-').collect::<Vec<_>>().as_slice() {
            [a] => {
                let v = parse_value(a, b)?;
                (v, if step.is_some() { b.max } else { v })
            }
            [a, z] => (parse_value(a, b)?, parse_value(z, b)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    if let Some(s) = step {
        let s = parse_int(s)?;
        if s == 0 {
            return Err(format!("step of range should be a positive number: {expr}"));
        }
    }
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    Ok(())
}

fn parse_value(s: &str, b: &Bounds) -> Result<u32, String> {
    let lower = s.to_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(u32::try_from(i).unwrap_or(0) + if b.min == 1 { 1 } else { 0 });
    }
    parse_int(s)
}

fn parse_int(s: &str) -> Result<u32, String> {
    match s.parse::<i64>() {
        Ok(n) if n < 0 => Err(format!("negative number ({n}) not allowed: {s}")),
        Ok(n) => u32::try_from(n).map_err(|_| {
            format!(
                "failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": value out of range"
            )
        }),
        Err(_) => Err(format!(
            "failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax"
        )),
    }
}

/// Go's duration syntax: `1h30m`, `90s`, `1.5h`.
fn parse_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    let mut any = false;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return false;
        }
        rest = &rest[n..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(*u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
        any = true;
    }
    any
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{kinds, want, Case};
    use super::super::{validate_create, validate_update};
    use super::parse_cron;
    use crate::field_error::FieldErrorType::*;
    use serde_json::{json, Value};

    fn job(spec: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "d", "resourceVersion": "1"}, "spec": spec})
    }

    fn tmpl(restart: &str) -> Value {
        json!({"spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]}})
    }

    #[test]
    fn job_rules() {
        let cases: Vec<Case> = vec![
            (
                "valid",
                json!({"template": tmpl("Never"), "completions": 3, "parallelism": 2}),
                vec![],
            ),
            (
                "restart always",
                json!({"template": tmpl("Always")}),
                vec![("spec.template.spec.restartPolicy", NotSupported)],
            ),
            (
                "negative completions",
                json!({"template": tmpl("OnFailure"), "completions": -1}),
                vec![("spec.completions", Invalid)],
            ),
            (
                "negative parallelism",
                json!({"template": tmpl("OnFailure"), "parallelism": -1}),
                vec![("spec.parallelism", Invalid)],
            ),
            (
                "indexed needs completions",
                json!({"template": tmpl("Never"), "completionMode": "Indexed"}),
                vec![("spec.completions", Required)],
            ),
            (
                "selector mismatch",
                json!({"template": tmpl("Never"), "selector": {"matchLabels": {"a": "b"}}}),
                vec![("spec.template.metadata.labels", Invalid)],
            ),
        ];
        for (name, spec, w) in cases {
            assert_eq!(
                kinds(&validate_create("batch", "Job", &job(spec))),
                want(w),
                "{name}"
            );
        }
        let old = job(json!({"template": tmpl("Never")}));
        let new = job(
            json!({"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "other"}]}}}),
        );
        assert_eq!(
            kinds(&validate_update("batch", "Job", &new, &old)),
            want(vec![("spec.template", Invalid)])
        );
    }

    fn cron(schedule: &str, extra: Value) -> Value {
        let mut spec =
            json!({"schedule": schedule, "jobTemplate": {"spec": {"template": tmpl("OnFailure")}}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            spec[k] = v.clone();
        }
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "d", "resourceVersion": "1"}, "spec": spec})
    }

    #[test]
    fn cron_job_rules() {
        let cases: Vec<Case> = vec![
            ("valid", cron("*/5 * * * *", json!({})), vec![]),
            (
                "descriptor",
                cron("@hourly", json!({"concurrencyPolicy": "Forbid"})),
                vec![],
            ),
            (
                "bad schedule",
                cron("61 * * * *", json!({})),
                vec![("spec.schedule", Invalid)],
            ),
            (
                "tz in schedule",
                cron("TZ=UTC 0 * * * *", json!({})),
                vec![("spec.schedule", Invalid)],
            ),
            (
                "bad concurrency",
                cron("0 * * * *", json!({"concurrencyPolicy": "Sometimes"})),
                vec![("spec.concurrencyPolicy", NotSupported)],
            ),
            (
                "bad template",
                cron(
                    "0 * * * *",
                    json!({"jobTemplate": {"spec": {"template": tmpl("Always")}}}),
                ),
                vec![(
                    "spec.jobTemplate.spec.template.spec.restartPolicy",
                    NotSupported,
                )],
            ),
            (
                "bad time zone",
                cron("0 * * * *", json!({"timeZone": "Mars/Olympus"})),
                vec![("spec.timeZone", Invalid)],
            ),
        ];
        for (name, obj, w) in cases {
            assert_eq!(
                kinds(&validate_create("batch", "CronJob", &obj)),
                want(w),
                "{name}"
            );
        }
        let mut long = cron("0 * * * *", json!({}));
        long["metadata"]["name"] = json!("a".repeat(53));
        assert_eq!(
            kinds(&validate_create("batch", "CronJob", &long)),
            want(vec![("metadata.name", Invalid)])
        );
    }

    #[test]
    fn cron_parser_matches_upstream_errors() {
        for ok in [
            "* * * * *",
            "0 0 1 1 *",
            "0-59/15 0,12 * jan-dec mon-fri",
            "@daily",
            "@every 1h30m",
            "0 0 ? * SUN",
        ] {
            assert_eq!(parse_cron(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("foo", "expected exactly 5 fields, found 1: [foo]"),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("@sometimes", "unrecognized descriptor: @sometimes"),
            ("", "empty spec string"),
        ];
        for (spec, err) in cases {
            assert_eq!(parse_cron(spec), Err(err.to_string()), "{spec}");
        }
    }
}
