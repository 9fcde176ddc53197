//! A container's environment, as upstream's kubelet builds it (`makeEnvironmentVariables`):
//! service links, then `envFrom`, then `env` in order, each value expanded against what came
//! before; `valueFrom` reads ConfigMaps, Secrets, the pod's fields and its resources. Pure:
//! the worker fetches the objects first.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use rkube_api::quantity::Quantity;

/// What a container's environment may draw on.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// ConfigMaps and Secrets of the pod's namespace, by name (absent: not found).
    pub config_maps: HashMap<String, ConfigMap>,
    pub secrets: HashMap<String, Secret>,
    /// Services of the pod's namespace (for service links), and the `kubernetes` service of
    /// `default`, which every pod gets.
    pub services: Vec<Service>,
    pub master_service: Option<Service>,
    pub host_ips: Vec<String>,
    pub pod_ips: Vec<String>,
    /// The node's allocatable cpu and memory, for resourceFieldRef of unset limits.
    pub node_allocatable: BTreeMap<String, String>,
}

/// Why a container's environment could not be built (the container waits with
/// `CreateContainerConfigError` and this message).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct EnvError(pub String);

/// The ConfigMaps and Secrets the pod's containers' environments name.
pub fn referenced(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    let Some(spec) = pod.spec.as_ref() else {
        return (cms, secrets);
    };
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    for c in containers {
        for from in c.env_from.iter().flatten() {
            if let Some(r) = &from.config_map_ref {
                cms.push(r.name.clone());
            }
            if let Some(r) = &from.secret_ref {
                secrets.push(r.name.clone());
            }
        }
        for e in c.env.iter().flatten() {
            let Some(v) = &e.value_from else { continue };
            if let Some(r) = &v.config_map_key_ref {
                cms.push(r.name.clone());
            }
            if let Some(r) = &v.secret_key_ref {
                secrets.push(r.name.clone());
            }
        }
    }
    cms.sort();
    cms.dedup();
    secrets.sort();
    secrets.dedup();
    (cms, secrets)
}

/// Upstream's `$(VAR)` expansion: `$$` is a literal `$`, `$(NAME)` the value of NAME when
/// defined and left as written otherwise.
pub fn expand(input: &str, vars: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match vars(name) {
                            Some(v) => out.push_str(&v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The docker-links style variables of one service (upstream's `envvars.FromServices`).
fn service_vars(svc: &Service, out: &mut Vec<(String, String)>) {
    let Some(spec) = svc.spec.as_ref() else {
        return;
    };
    let Some(ip) = spec
        .cluster_ip
        .as_deref()
        .filter(|ip| !ip.is_empty() && *ip != "None")
    else {
        return;
    };
    let name = svc
        .metadata
        .name
        .as_deref()
        .unwrap_or("")
        .to_uppercase()
        .replace('-', "_");
    let ports = spec.ports.clone().unwrap_or_default();
    let Some(first) = ports.first() else { return };
    out.push((format!("{name}_SERVICE_HOST"), ip.to_string()));
    out.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
    for p in &ports {
        if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((
                format!(
                    "{name}_SERVICE_PORT_{}",
                    pn.to_uppercase().replace('-', "_")
                ),
                p.port.to_string(),
            ));
        }
    }
    let proto = |p: &k8s_openapi::api::core::v1::ServicePort| {
        p.protocol.clone().unwrap_or_else(|| "TCP".into())
    };
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    out.push((
        format!("{name}_PORT"),
        format!("{}://{host}:{}", proto(first).to_lowercase(), first.port),
    ));
    for p in &ports {
        let pr = proto(p);
        let prefix = format!("{name}_PORT_{}_{}", p.port, pr.to_uppercase());
        out.push((
            prefix.clone(),
            format!("{}://{host}:{}", pr.to_lowercase(), p.port),
        ));
        out.push((format!("{prefix}_PROTO"), pr.to_lowercase()));
        out.push((format!("{prefix}_PORT"), p.port.to_string()));
        out.push((format!("{prefix}_ADDR"), ip.to_string()));
    }
}

fn field_ref(pod: &Pod, path: &str, src: &Sources) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let subscript = |p: &str, prefix: &str| -> Option<String> {
        p.strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")
            .map(str::to_string)
    };
    let format_map = |m: &Option<BTreeMap<String, String>>| {
        m.iter()
            .flatten()
            .map(|(k, v)| {
                format!(
                    "{k}=\"{}\"",
                    v.replace('\\', "\\\\")
                        .replace('\n', "\\n")
                        .replace('"', "\\\"")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(&meta.labels),
        "metadata.annotations" => format_map(&meta.annotations),
        "spec.nodeName" => spec.node_name.clone().unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.clone().unwrap_or_default(),
        "status.hostIP" => src.host_ips.first().cloned().unwrap_or_default(),
        "status.hostIPs" => src.host_ips.join(","),
        "status.podIP" => src.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => src.pod_ips.join(","),
        p => {
            if let Some(k) = subscript(p, "metadata.labels") {
                meta.labels
                    .as_ref()
                    .and_then(|m| m.get(&k))
                    .cloned()
                    .unwrap_or_default()
            } else if let Some(k) = subscript(p, "metadata.annotations") {
                meta.annotations
                    .as_ref()
                    .and_then(|m| m.get(&k))
                    .cloned()
                    .unwrap_or_default()
            } else {
                return Err(EnvError(format!("unsupported fieldPath: {p}")));
            }
        }
    })
}

/// `resourceFieldRef` (upstream's `ExtractContainerResourceValue`): limits fall back to the
/// node's allocatable; the value is divided by the divisor and rounded up.
pub fn resource_ref(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
    src: &Sources,
) -> Result<String, EnvError> {
    let res = container.resources.clone().unwrap_or_default();
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| EnvError(format!("unsupported container resource : {resource}")))?;
    let from = |m: &Option<
        BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| { m.as_ref().and_then(|m| m.get(name)).map(|q| q.0.clone()) };
    let value = match kind {
        "limits" => from(&res.limits).or_else(|| src.node_allocatable.get(name).cloned()),
        "requests" => from(&res.requests).or_else(|| {
            // an unset request is 0 for cpu/memory (the API defaults it from the limit)
            from(&res.limits).or(Some("0".into()))
        }),
        _ => None,
    }
    .ok_or_else(|| EnvError(format!("unsupported container resource : {resource}")))?;
    let q = Quantity::parse(&value).map_err(|e| EnvError(format!("{resource}: {e:?}")))?;
    let d = Quantity::parse(divisor.filter(|d| !d.is_empty()).unwrap_or("1"))
        .map_err(|e| EnvError(format!("divisor: {e:?}")))?;
    if d.is_zero() {
        return Err(EnvError("divisor is 0".into()));
    }
    // ceil(q / d), in milli-units to keep cpu fractions exact
    let (qm, dm) = (q.milli_value() as i128, d.milli_value() as i128);
    let v = if dm == 0 { 0 } else { (qm + dm - 1) / dm };
    Ok(if name == "cpu" {
        v.max(1).to_string()
    } else {
        v.to_string()
    })
}

/// The container's environment, in order, with later definitions of a name replacing
/// earlier ones in place.
pub fn resolve(
    pod: &Pod,
    container: &Container,
    src: &Sources,
) -> Result<Vec<(String, String)>, EnvError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, k: String, v: String| {
        if let Some(slot) = vars.iter_mut().find(|(n, _)| *n == k) {
            slot.1 = v;
        } else {
            vars.push((k, v));
        }
    };
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut service_env = Vec::new();
    if links {
        let mut services: Vec<&Service> = src.services.iter().collect();
        services.sort_by_key(|s| s.metadata.name.clone());
        for s in services {
            service_vars(s, &mut service_env);
        }
    }
    if let Some(m) = &src.master_service {
        service_vars(m, &mut service_env);
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match src.config_maps.get(&r.name) {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        set(&mut vars, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError(format!("configmap \"{}\" not found", r.name))),
            }
        }
        if let Some(r) = &from.secret_ref {
            match src.secrets.get(&r.name) {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        set(
                            &mut vars,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError(format!("secret \"{}\" not found", r.name))),
            }
        }
    }
    for e in container.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (_, Some(from)) => {
                if let Some(r) = &from.config_map_key_ref {
                    match src.config_maps.get(&r.name) {
                        Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                            Some(v) => Some(v.clone()),
                            None if r.optional == Some(true) => None,
                            None => {
                                return Err(EnvError(format!(
                                    "couldn't find key {} in ConfigMap {ns}/{}",
                                    r.key, r.name
                                )))
                            }
                        },
                        None if r.optional == Some(true) => None,
                        None => {
                            return Err(EnvError(format!("configmap \"{}\" not found", r.name)))
                        }
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    match src.secrets.get(&r.name) {
                        Some(s) => match s.data.as_ref().and_then(|d| d.get(&r.key)) {
                            Some(v) => Some(String::from_utf8_lossy(&v.0).into_owned()),
                            None if r.optional == Some(true) => None,
                            None => {
                                return Err(EnvError(format!(
                                    "couldn't find key {} in Secret {ns}/{}",
                                    r.key, r.name
                                )))
                            }
                        },
                        None if r.optional == Some(true) => None,
                        None => return Err(EnvError(format!("secret \"{}\" not found", r.name))),
                    }
                } else if let Some(f) = &from.field_ref {
                    Some(field_ref(pod, &f.field_path, src)?)
                } else if let Some(r) = &from.resource_field_ref {
                    Some(resource_ref(
                        container,
                        &r.resource,
                        r.divisor.as_ref().map(|d| d.0.as_str()),
                        src,
                    )?)
                } else {
                    None
                }
            }
            (Some(v), None) => {
                let lookup = |name: &str| {
                    vars.iter()
                        .find(|(k, _)| k == name)
                        .or_else(|| service_env.iter().find(|(k, _)| k == name))
                        .map(|(_, v)| v.clone())
                };
                Some(expand(v, &lookup))
            }
            (None, None) => Some(String::new()),
        };
        if let Some(v) = value {
            set(&mut vars, e.name.clone(), v);
        }
    }
    // service links come first, and explicit variables win over them
    let mut out = Vec::with_capacity(service_env.len() + vars.len());
    for (k, v) in service_env {
        if !vars.iter().any(|(n, _)| *n == k)
            && !out.iter().any(|(n, _): &(String, String)| *n == k)
        {
            out.push((k, v));
        }
    }
    out.extend(vars);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec,
        ResourceFieldSelector, ResourceRequirements, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    #[test]
    fn expansion_follows_upstream() {
        let vars = |n: &str| match n {
            "A" => Some("a".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(expand("x$(A)y", &vars), "xay");
        assert_eq!(expand("$(MISSING)", &vars), "$(MISSING)");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("$(EMPTY)-", &vars), "-");
        assert_eq!(expand("$(A", &vars), "$(A");
        assert_eq!(expand("cost $5", &vars), "cost $5");
        assert_eq!(expand("ünï$(A)", &vars), "ünïa");
    }

    fn pod_with(c: Container) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![c],
                node_name: Some("n1".into()),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn values_sources_and_dependent_expansion() {
        let c = Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(k8s_openapi::api::core::v1::ConfigMapEnvSource {
                    name: "cm".into(),
                    optional: None,
                }),
                prefix: Some("CM_".into()),
                secret_ref: None,
            }]),
            env: Some(vec![
                var("A", "1"),
                var("B", "$(A)-$(CM_k)-$(NOPE)"),
                EnvVar {
                    name: "POD".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.name".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                },
                EnvVar {
                    name: "APP".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.labels['app']".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                },
                EnvVar {
                    name: "IP".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "status.podIP".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                },
                var("A", "2"),
            ]),
            ..Default::default()
        };
        let pod = pod_with(c.clone());
        let mut src = Sources {
            pod_ips: vec!["10.42.0.9".into()],
            ..Default::default()
        };
        let err = resolve(&pod, &c, &src).unwrap_err();
        assert_eq!(err.0, "configmap \"cm\" not found");
        src.config_maps.insert(
            "cm".into(),
            ConfigMap {
                data: Some([("k".to_string(), "v".to_string())].into()),
                ..Default::default()
            },
        );
        let env = resolve(&pod, &c, &src).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CM_k"), Some("v"));
        assert_eq!(get("B"), Some("1-v-$(NOPE)"));
        assert_eq!(
            get("A"),
            Some("2"),
            "a later definition replaces the earlier"
        );
        assert_eq!(get("POD"), Some("p"));
        assert_eq!(get("APP"), Some("web"));
        assert_eq!(get("IP"), Some("10.42.0.9"));
        // a missing key names the object
        let c2 = Container {
            name: "c".into(),
            env: Some(vec![EnvVar {
                name: "X".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: "cm".into(),
                        key: "nokey".into(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
            }]),
            ..Default::default()
        };
        assert_eq!(
            resolve(&pod, &c2, &src).unwrap_err().0,
            "couldn't find key nokey in ConfigMap ns/cm"
        );
    }

    #[test]
    fn service_links_and_resource_refs() {
        let svc = Service {
            metadata: ObjectMeta {
                name: Some("my-svc".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.43.0.10".into()),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        };
        let c = Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                limits: Some(
                    [
                        ("memory".to_string(), Q("64Mi".into())),
                        ("cpu".to_string(), Q("250m".into())),
                    ]
                    .into(),
                ),
                ..Default::default()
            }),
            env: Some(vec![EnvVar {
                name: "MEM".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    resource_field_ref: Some(ResourceFieldSelector {
                        resource: "limits.memory".into(),
                        divisor: Some(Q("1Mi".into())),
                        container_name: None,
                    }),
                    ..Default::default()
                }),
            }]),
            ..Default::default()
        };
        let pod = pod_with(c.clone());
        let src = Sources {
            services: vec![svc],
            ..Default::default()
        };
        let env = resolve(&pod, &c, &src).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("MY_SVC_SERVICE_HOST"), Some("10.43.0.10"));
        assert_eq!(get("MY_SVC_SERVICE_PORT"), Some("80"));
        assert_eq!(get("MY_SVC_SERVICE_PORT_HTTP"), Some("80"));
        assert_eq!(get("MY_SVC_PORT"), Some("tcp://10.43.0.10:80"));
        assert_eq!(get("MY_SVC_PORT_80_TCP_ADDR"), Some("10.43.0.10"));
        assert_eq!(get("MEM"), Some("64"));
        assert_eq!(
            resource_ref(&c, "limits.cpu", None, &src).unwrap(),
            "1",
            "cpu rounds up to a core"
        );
        assert_eq!(
            resource_ref(&c, "limits.cpu", Some("1m"), &src).unwrap(),
            "250"
        );
    }
}
