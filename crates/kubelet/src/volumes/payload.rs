//! What configMap, secret and downwardAPI volumes (and their projections) hold: the
//! payloads upstream's `MakePayload` and `CollectData` build, from objects already fetched.
//! Pure; the texts of the errors are upstream's.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, KeyToPath, Pod, ResourceFieldSelector,
};
use k8s_openapi::ByteString;
use rkube_api::quantity::Quantity;

use super::atomic_writer::{clean, FileProjection, Payload};

/// The mode files get when a volume names none (the API server defaults it to this).
pub const DEFAULT_MODE: i32 = 0o644;

fn mode_bits(mode: Option<i32>, default_mode: i32) -> u32 {
    u32::try_from(mode.unwrap_or(default_mode)).unwrap_or(0o644) & 0o7777
}

/// A configMap volume's or projection's files: every key of `data` and `binaryData`, or
/// only `items` (key → path, with an optional mode). A missing key is an error unless the
/// volume is optional.
pub fn configmap_payload(
    items: &[KeyToPath],
    data: &BTreeMap<String, String>,
    binary: &BTreeMap<String, ByteString>,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    if items.is_empty() {
        for (k, v) in data {
            payload.insert(
                k.clone(),
                FileProjection::new(v.as_bytes(), mode_bits(None, default_mode)),
            );
        }
        for (k, v) in binary {
            payload.insert(
                k.clone(),
                FileProjection::new(v.0.clone(), mode_bits(None, default_mode)),
            );
        }
        return Ok(payload);
    }
    for ktp in items {
        let content = if let Some(s) = data.get(&ktp.key) {
            s.as_bytes().to_vec()
        } else if let Some(b) = binary.get(&ktp.key) {
            b.0.clone()
        } else if optional {
            continue;
        } else {
            return Err(format!(
                "configmap references non-existent config key: {}",
                ktp.key
            ));
        };
        payload.insert(
            ktp.path.clone(),
            FileProjection::new(content, mode_bits(ktp.mode, default_mode)),
        );
    }
    Ok(payload)
}

/// A secret volume's or projection's files, as [`configmap_payload`] for `data`.
pub fn secret_payload(
    items: &[KeyToPath],
    data: &BTreeMap<String, ByteString>,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    if items.is_empty() {
        for (k, v) in data {
            payload.insert(
                k.clone(),
                FileProjection::new(v.0.clone(), mode_bits(None, default_mode)),
            );
        }
        return Ok(payload);
    }
    for ktp in items {
        let Some(content) = data.get(&ktp.key) else {
            if optional {
                continue;
            }
            return Err(format!("references non-existent secret key: {}", ktp.key));
        };
        payload.insert(
            ktp.path.clone(),
            FileProjection::new(content.0.clone(), mode_bits(ktp.mode, default_mode)),
        );
    }
    Ok(payload)
}

/// A downwardAPI volume's or projection's files. `allocatable` is the node's allocatable
/// resources, which stand in for limits a container does not set. Every item is tried;
/// the errors are aggregated as upstream's `utilerrors.NewAggregate`.
pub fn downward_api_payload(
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    allocatable: &BTreeMap<String, Quantity>,
    default_mode: i32,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    for item in items {
        let mut file = FileProjection::new(Vec::new(), mode_bits(item.mode, default_mode));
        if let Some(f) = &item.field_ref {
            match extract_field_path(pod, &f.field_path) {
                Ok(v) => file.data = v.into_bytes(),
                Err(e) => errors.push(e),
            }
        } else if let Some(r) = &item.resource_field_ref {
            match container_resource_value(r, pod, allocatable) {
                Ok(v) => file.data = v.into_bytes(),
                Err(e) => errors.push(e),
            }
        }
        payload.insert(clean(&item.path), file);
    }
    match aggregate(&errors) {
        Some(e) => Err(e),
        None => Ok(payload),
    }
}

/// Upstream's `utilerrors.NewAggregate(...).Error()`: one distinct message as is, several
/// as `[a, b]`.
pub fn aggregate(errors: &[String]) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.len() {
        0 => None,
        1 => Some(seen[0].to_string()),
        _ => Some(format!("[{}]", seen.join(", "))),
    }
}

/// Upstream's `fieldpath.ExtractFieldPathAsString` for a pod: `metadata.name`,
/// `metadata.namespace`, `metadata.uid`, `metadata.labels`, `metadata.annotations` and
/// one label or annotation (`metadata.labels['key']`).
pub fn extract_field_path(pod: &Pod, field_path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let empty = BTreeMap::new();
    let labels = meta.labels.as_ref().unwrap_or(&empty);
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    if let Some((path, subscript)) = split_subscripted_path(field_path) {
        return match path {
            "metadata.annotations" => Ok(annotations.get(subscript).cloned().unwrap_or_default()),
            "metadata.labels" => Ok(labels.get(subscript).cloned().unwrap_or_default()),
            _ => Err(format!(
                "fieldPath {} does not support subscript",
                rkube_api::go_quote::go_quote(field_path)
            )),
        };
    }
    match field_path {
        "metadata.annotations" => Ok(format_map(annotations)),
        "metadata.labels" => Ok(format_map(labels)),
        "metadata.name" => Ok(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Ok(meta.namespace.clone().unwrap_or_default()),
        "metadata.uid" => Ok(meta.uid.clone().unwrap_or_default()),
        _ => Err(format!("unsupported fieldPath: {field_path}")),
    }
}

/// `path['subscript']` → (`path`, `subscript`).
fn split_subscripted_path(field_path: &str) -> Option<(&str, &str)> {
    let s = field_path.strip_suffix("']")?;
    let (path, subscript) = s.split_once("['")?;
    (!path.is_empty()).then_some((path, subscript))
}

/// Labels or annotations as the downward API writes them: `key="value"` lines sorted by
/// key, the value quoted as Go's `%q`, no trailing newline.
pub fn format_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", rkube_api::go_quote::go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Upstream's `ExtractResourceValueByContainerNameAndNodeAllocatable`: a container's
/// request or limit in units of the divisor, rounded up; a limit the container does not
/// set (cpu, memory, ephemeral-storage) is the node's allocatable amount.
pub fn container_resource_value(
    fs: &ResourceFieldSelector,
    pod: &Pod,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, String> {
    let name = fs.container_name.as_deref().unwrap_or("");
    let container =
        find_container(pod, name).ok_or_else(|| format!("container {name} not found"))?;
    let parse =
        |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| Quantity::parse(&q.0).ok();
    let mut limits: BTreeMap<String, Quantity> = container
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| Some((k.clone(), parse(v)?)))
                .collect()
        })
        .unwrap_or_default();
    for r in ["cpu", "memory", "ephemeral-storage"] {
        if limits.get(r).is_none_or(Quantity::is_zero) {
            if let Some(cap) = allocatable.get(r) {
                limits.insert(r.to_string(), cap.clone());
            }
        }
    }
    let requests: BTreeMap<String, Quantity> = container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| Some((k.clone(), parse(v)?)))
                .collect()
        })
        .unwrap_or_default();
    let divisor = fs
        .divisor
        .as_ref()
        .and_then(parse)
        .filter(|d| !d.is_zero())
        .unwrap_or_else(|| Quantity::from_i64(1, Default::default()));
    let zero = Quantity::from_i64(0, Default::default());
    let (list, resource) = if let Some(r) = fs.resource.strip_prefix("limits.") {
        (&limits, r)
    } else if let Some(r) = fs.resource.strip_prefix("requests.") {
        (&requests, r)
    } else {
        return Err(format!("unsupported container resource : {}", fs.resource));
    };
    let value = list.get(resource).unwrap_or(&zero);
    let ceil_div = |a: i64, b: i64| -> i64 {
        if b == 0 {
            return 0;
        }
        // float division as upstream (math.Ceil(float64(a) / float64(b)))
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let r = (a as f64 / b as f64).ceil() as i64;
        r
    };
    match resource {
        "cpu" => Ok(ceil_div(value.milli_value(), divisor.milli_value()).to_string()),
        "memory" | "ephemeral-storage" => Ok(ceil_div(value.value(), divisor.value()).to_string()),
        r if r.starts_with("hugepages-") => {
            Ok(ceil_div(value.value(), divisor.value()).to_string())
        }
        _ => Err(format!("unsupported container resource : {}", fs.resource)),
    }
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ObjectFieldSelector, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQ;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ktp(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        }
    }

    fn files(p: &Payload) -> Vec<(String, String, u32)> {
        p.iter()
            .map(|(k, f)| {
                (
                    k.clone(),
                    String::from_utf8_lossy(&f.data).into_owned(),
                    f.mode,
                )
            })
            .collect()
    }

    fn owned(v: &[(&str, &str, u32)]) -> Vec<(String, String, u32)> {
        v.iter()
            .map(|(a, b, m)| (a.to_string(), b.to_string(), *m))
            .collect()
    }

    #[test]
    fn configmap_items_modes_and_optional() {
        let data: BTreeMap<String, String> =
            [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        let binary: BTreeMap<String, ByteString> = [("bin".into(), ByteString(vec![0, 1]))].into();
        type Case = (
            &'static str,
            Vec<KeyToPath>,
            i32,
            bool,
            Result<Vec<(&'static str, &'static str, u32)>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "all keys, default mode",
                vec![],
                0o644,
                false,
                Ok(vec![
                    ("a", "1", 0o644),
                    ("b", "2", 0o644),
                    ("bin", "\0\u{1}", 0o644),
                ]),
            ),
            (
                "defaultMode",
                vec![],
                0o400,
                false,
                Ok(vec![
                    ("a", "1", 0o400),
                    ("b", "2", 0o400),
                    ("bin", "\0\u{1}", 0o400),
                ]),
            ),
            (
                "items with paths and modes",
                vec![ktp("a", "x/a.txt", Some(0o600)), ktp("bin", "bin", None)],
                0o644,
                false,
                Ok(vec![("bin", "\0\u{1}", 0o644), ("x/a.txt", "1", 0o600)]),
            ),
            (
                "missing key",
                vec![ktp("a", "a", None), ktp("zz", "zz", None)],
                0o644,
                false,
                Err("configmap references non-existent config key: zz"),
            ),
            (
                "missing key, optional",
                vec![ktp("a", "a", None), ktp("zz", "zz", None)],
                0o644,
                true,
                Ok(vec![("a", "1", 0o644)]),
            ),
        ];
        for (name, items, mode, optional, want) in cases {
            let got = configmap_payload(&items, &data, &binary, mode, optional).map(|p| files(&p));
            assert_eq!(
                got,
                want.map(|w| owned(&w)).map_err(str::to_string),
                "{name}"
            );
        }
        // a missing optional config map is an empty one
        let empty = configmap_payload(
            &[ktp("a", "a", None)],
            &BTreeMap::new(),
            &BTreeMap::new(),
            0o644,
            true,
        )
        .unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn secret_items_modes_and_optional() {
        let data: BTreeMap<String, ByteString> =
            [("user".into(), ByteString(b"admin".to_vec()))].into();
        assert_eq!(
            files(&secret_payload(&[], &data, 0o400, false).unwrap()),
            owned(&[("user", "admin", 0o400)])
        );
        assert_eq!(
            files(
                &secret_payload(&[ktp("user", "creds/u", Some(0o440))], &data, 0o644, false)
                    .unwrap()
            ),
            owned(&[("creds/u", "admin", 0o440)])
        );
        assert_eq!(
            secret_payload(&[ktp("pw", "pw", None)], &data, 0o644, false).unwrap_err(),
            "references non-existent secret key: pw"
        );
        assert!(secret_payload(&[ktp("pw", "pw", None)], &data, 0o644, true)
            .unwrap()
            .is_empty());
    }

    fn pod() -> Pod {
        let q = |s: &str| KQ(s.to_string());
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("prod".into()),
                uid: Some("u-1".into()),
                labels: Some(
                    [
                        ("app".into(), "web".into()),
                        ("tier".into(), "a \"b\"\n".into()),
                    ]
                    .into(),
                ),
                annotations: Some([("note".into(), "x".into())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        limits: Some(
                            [("cpu".into(), q("1500m")), ("memory".into(), q("64Mi"))].into(),
                        ),
                        requests: Some(
                            [("cpu".into(), q("250m")), ("memory".into(), q("32Mi"))].into(),
                        ),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                init_containers: Some(vec![Container {
                    name: "init".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn field_paths() {
        let p = pod();
        let cases = [
            ("metadata.name", Ok("web")),
            ("metadata.namespace", Ok("prod")),
            ("metadata.uid", Ok("u-1")),
            (
                "metadata.labels",
                Ok("app=\"web\"\ntier=\"a \\\"b\\\"\\n\""),
            ),
            ("metadata.annotations", Ok("note=\"x\"")),
            ("metadata.labels['app']", Ok("web")),
            ("metadata.labels['missing']", Ok("")),
            ("metadata.annotations['note']", Ok("x")),
            (
                "metadata.name['x']",
                Err("fieldPath \"metadata.name['x']\" does not support subscript"),
            ),
            ("spec.nodeName", Err("unsupported fieldPath: spec.nodeName")),
        ];
        for (path, want) in cases {
            assert_eq!(
                extract_field_path(&p, path),
                want.map(str::to_string).map_err(str::to_string),
                "{path}"
            );
        }
    }

    #[test]
    fn resource_values() {
        let p = pod();
        let alloc: BTreeMap<String, Quantity> = [
            ("cpu".to_string(), Quantity::parse("4").unwrap()),
            ("memory".to_string(), Quantity::parse("8Gi").unwrap()),
            (
                "ephemeral-storage".to_string(),
                Quantity::parse("10G").unwrap(),
            ),
        ]
        .into();
        let sel = |c: &str, r: &str, d: Option<&str>| ResourceFieldSelector {
            container_name: Some(c.into()),
            resource: r.into(),
            divisor: d.map(|d| KQ(d.into())),
        };
        let cases = [
            (sel("c", "limits.cpu", None), Ok("2")),
            (sel("c", "limits.cpu", Some("1m")), Ok("1500")),
            (sel("c", "requests.cpu", Some("1m")), Ok("250")),
            (sel("c", "requests.cpu", None), Ok("1")),
            (sel("c", "limits.memory", None), Ok("67108864")),
            (sel("c", "limits.memory", Some("1Mi")), Ok("64")),
            (sel("c", "requests.memory", Some("1Mi")), Ok("32")),
            (sel("c", "limits.ephemeral-storage", Some("1G")), Ok("10")),
            (sel("c", "requests.ephemeral-storage", None), Ok("0")),
            (sel("init", "limits.cpu", None), Ok("4")),
            (sel("init", "limits.memory", Some("1Gi")), Ok("8")),
            (
                sel("nope", "limits.cpu", None),
                Err("container nope not found"),
            ),
            (
                sel("c", "limits.gpu", None),
                Err("unsupported container resource : limits.gpu"),
            ),
        ];
        for (fs, want) in cases {
            assert_eq!(
                container_resource_value(&fs, &p, &alloc),
                want.map(str::to_string).map_err(str::to_string),
                "{} {}",
                fs.resource,
                fs.container_name.as_deref().unwrap_or("")
            );
        }
    }

    #[test]
    fn downward_api_items_and_errors() {
        let p = pod();
        let item = |path: &str, field: &str, mode: Option<i32>| DownwardAPIVolumeFile {
            path: path.into(),
            field_ref: Some(ObjectFieldSelector {
                field_path: field.into(),
                api_version: Some("v1".into()),
            }),
            mode,
            resource_field_ref: None,
        };
        let got = downward_api_payload(
            &[
                item("labels", "metadata.labels", None),
                item("./meta/name", "metadata.name", Some(0o600)),
            ],
            &p,
            &BTreeMap::new(),
            0o644,
        )
        .unwrap();
        assert_eq!(
            files(&got),
            owned(&[
                ("labels", "app=\"web\"\ntier=\"a \\\"b\\\"\\n\"", 0o644),
                ("meta/name", "web", 0o600)
            ])
        );
        let err = downward_api_payload(
            &[
                item("a", "spec.x", None),
                item("b", "spec.y", None),
                item("c", "spec.x", None),
            ],
            &p,
            &BTreeMap::new(),
            0o644,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "[unsupported fieldPath: spec.x, unsupported fieldPath: spec.y]"
        );
    }
}
