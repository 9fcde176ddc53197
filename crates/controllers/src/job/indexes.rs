//! Completion indexes of Indexed Jobs (upstream's `indexed_job_utils.go`): the compressed
//! interval format of `status.completedIndexes` / `failedIndexes` ("1,3-5"), the index a pod
//! carries, and the pod names, annotations and env var an index gives a pod.

use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec,
};

/// The annotation (and label) with a pod's completion index.
pub const COMPLETION_INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
/// The env var every container of an Indexed Job's pods gets.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// How many counted failures an index had before this pod (`backoffLimitPerIndex`).
pub const INDEX_FAILURE_COUNT_KEY: &str = "batch.kubernetes.io/job-index-failure-count";
/// How many ignored failures an index had before this pod.
pub const INDEX_IGNORED_FAILURE_COUNT_KEY: &str =
    "batch.kubernetes.io/job-index-ignored-failure-count";
/// Upstream's `MaxGeneratedNameLength` share of a pod name for `generateName`.
const MAX_GENERATED_NAME_LENGTH: usize = 58;

/// Sorted, disjoint, non-adjacent closed intervals of indexes (upstream's `orderedIntervals`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(pub Vec<(i64, i64)>);

impl Intervals {
    /// Parses "1,3-5" keeping indexes below `completions`; malformed parts are skipped, as
    /// upstream's `parseIndexesFromString` logs and skips them.
    pub fn parse(s: &str, completions: i64) -> Self {
        let mut out = Intervals::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<i64>(), b.parse::<i64>()),
                None => (part.parse::<i64>(), part.parse::<i64>()),
            };
            let (Ok(first), Ok(last)) = (first, last) else {
                continue;
            };
            let last = last.min(completions - 1);
            if first < 0 || first > last {
                continue;
            }
            out.insert_range(first, last);
        }
        out
    }

    fn insert_range(&mut self, first: i64, last: i64) {
        self.0.push((first, last));
        self.0.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(self.0.len());
        for (a, b) in self.0.drain(..) {
            match merged.last_mut() {
                Some(prev) if a <= prev.1 + 1 => prev.1 = prev.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.0 = merged;
    }

    /// These intervals plus `indexes`.
    pub fn with(&self, indexes: impl IntoIterator<Item = i64>) -> Self {
        let mut out = self.clone();
        for i in indexes {
            if !out.has(i) {
                out.insert_range(i, i);
            }
        }
        out
    }

    pub fn has(&self, i: i64) -> bool {
        self.0.iter().any(|&(a, b)| a <= i && i <= b)
    }

    /// How many indexes.
    pub fn total(&self) -> i64 {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many indexes of `self` are in `other`.
    pub fn overlap(&self, other: &Intervals) -> i64 {
        let mut n = 0;
        for &(a, b) in &self.0 {
            for &(c, d) in &other.0 {
                n += (b.min(d) - a.max(c) + 1).max(0);
            }
        }
        n
    }
}

impl std::fmt::Display for Intervals {
    /// Single indexes alone, two adjacent ones as "a,b", longer runs as "a-b".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for &(a, b) in &self.0 {
            match b - a {
                0 => parts.push(a.to_string()),
                1 => parts.push(format!("{a},{b}")),
                _ => parts.push(format!("{a}-{b}")),
            }
        }
        f.write_str(&parts.join(","))
    }
}

/// The pod's completion index: its annotation, else its label (upstream's
/// `getCompletionIndex`); None when absent or not a non-negative integer.
pub fn completion_index(pod: &Pod) -> Option<i64> {
    let m = &pod.metadata;
    let raw = m
        .annotations
        .as_ref()
        .and_then(|a| a.get(COMPLETION_INDEX_KEY))
        .or_else(|| m.labels.as_ref().and_then(|l| l.get(COMPLETION_INDEX_KEY)))?;
    raw.parse::<i64>().ok().filter(|i| *i >= 0)
}

/// `<job>-<index>-`, cut so the generated name stays valid (upstream's
/// `podGenerateNameWithIndex`).
pub fn generate_name_with_index(job: &str, index: i64) -> String {
    let suffix = format!("-{index}-");
    let prefix = format!("{job}{suffix}");
    if prefix.len() <= MAX_GENERATED_NAME_LENGTH {
        return prefix;
    }
    let keep = MAX_GENERATED_NAME_LENGTH.saturating_sub(suffix.len());
    format!("{}{suffix}", &job[..keep.min(job.len())])
}

fn add_env(c: &mut Container) {
    let env = c.env.get_or_insert_with(Vec::new);
    if env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
        return;
    }
    env.push(EnvVar {
        name: COMPLETION_INDEX_ENV.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.annotations['{COMPLETION_INDEX_KEY}']"),
            }),
            ..Default::default()
        }),
    });
}

/// `JOB_COMPLETION_INDEX` from the index annotation, in every container and init container
/// (upstream's `addCompletionIndexEnvVariables`).
pub fn add_completion_index_env(template: &mut PodTemplateSpec) {
    if let Some(spec) = template.spec.as_mut() {
        spec.containers.iter_mut().for_each(add_env);
        spec.init_containers.iter_mut().flatten().for_each(add_env);
    }
}

/// Stamps `index` on a pod of an Indexed Job: annotation, label, hostname `<job>-<index>`,
/// and the name prefix.
pub fn stamp_index(pod: &mut Pod, job: &str, index: i64) {
    let v = index.to_string();
    pod.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX_KEY.into(), v.clone());
    pod.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX_KEY.into(), v);
    if let Some(spec) = pod.spec.as_mut() {
        spec.hostname = Some(format!("{job}-{index}"));
    }
    pod.metadata.generate_name = Some(generate_name_with_index(job, index));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_and_render_in_the_compressed_format() {
        let cases: &[(&str, i64, &str, i64)] = &[
            ("", 5, "", 0),
            ("0", 5, "0", 1),
            ("0,1", 5, "0,1", 2),
            ("0-2", 5, "0-2", 3),
            ("1,3-5,4", 10, "1,3-5", 4),
            ("3-9", 5, "3,4", 2),
            ("x,2,7", 5, "2", 1),
            ("0,1,2,4", 5, "0-2,4", 4),
        ];
        for (s, completions, want, total) in cases {
            let i = Intervals::parse(s, *completions);
            assert_eq!(i.to_string(), *want, "{s:?}");
            assert_eq!(i.total(), *total, "{s:?}");
        }
        let i = Intervals::parse("1,3-5", 10).with([2, 7, 8]);
        assert_eq!(i.to_string(), "1-5,7,8");
        assert!(i.has(4) && !i.has(6));
        assert_eq!(Intervals::parse("0-3", 10).overlap(&i), 3);
    }

    #[test]
    fn index_names_are_cut_to_stay_valid() {
        assert_eq!(generate_name_with_index("pi", 3), "pi-3-");
        let long = "a".repeat(70);
        let g = generate_name_with_index(&long, 12);
        assert_eq!(g.len(), 58);
        assert!(g.ends_with("-12-"));
    }
}
