//! Services and endpoints: upstream's `ValidateService`, `ValidateServiceUpdate` (cluster IPs
//! may not change once set) and `ValidateEndpoints`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Endpoints, Service, ServicePort};

use super::container::{enum_field, validate_port_num_or_name, PROTOCOLS};
use super::meta::{json, validate_labels};
use super::names::{
    is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_port_num,
    name_is_dns1035_label, name_is_dns_subdomain,
};
use super::{no_update, MetaRule, Rules};
use crate::field_error::{ErrorList, FieldError, FieldPath};

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const IP_ERR: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const KUBELET_PORT: i32 = 10250;

fn headless(s: &Service) -> bool {
    s.spec.as_ref().is_some_and(|sp| {
        sp.cluster_ip.as_deref() == Some("None")
            || sp
                .cluster_ips
                .as_ref()
                .and_then(|c| c.first())
                .map(String::as_str)
                == Some("None")
    })
}

pub(crate) fn service_rules() -> Rules<Service> {
    Rules {
        meta: MetaRule::Standard(name_is_dns1035_label),
        create: |s, _| validate_service(s),
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let t = |s: &Service| {
                s.spec
                    .as_ref()
                    .and_then(|sp| sp.type_.clone())
                    .unwrap_or_else(|| "ClusterIP".into())
            };
            if t(n) == "ExternalName" || t(o) == "ExternalName" {
                return errs;
            }
            let ips = |s: &Service| {
                let sp = s.spec.clone().unwrap_or_default();
                let mut v = sp.cluster_ips.unwrap_or_default();
                if v.is_empty() {
                    if let Some(ip) = sp.cluster_ip.filter(|ip| !ip.is_empty()) {
                        v.push(ip);
                    }
                }
                v
            };
            let (ni, oi) = (ips(n), ips(o));
            if let (Some(a), Some(b)) = (ni.first(), oi.first()) {
                if a != b {
                    errs.push(FieldError::invalid(
                        &FieldPath::new("spec").child("clusterIPs").index(0),
                        json(&ni),
                        "may not change once set",
                    ));
                }
            }
            if ni.len() > 1 && oi.len() > 1 && ni[1] != oi[1] {
                errs.push(FieldError::invalid(
                    &FieldPath::new("spec").child("clusterIPs").index(1),
                    json(&ni),
                    "may not change once set",
                ));
            }
            let lbc = |s: &Service| {
                s.spec
                    .as_ref()
                    .and_then(|sp| sp.load_balancer_class.clone())
            };
            if t(o) == "LoadBalancer" && t(n) == "LoadBalancer" && lbc(n) != lbc(o) {
                errs.push(FieldError::invalid(
                    &FieldPath::new("spec").child("loadBalancerClass"),
                    json(&lbc(n)),
                    "may not change once set",
                ));
            }
            errs
        },
        status: |n, _, _| {
            let mut errs = ErrorList::new();
            let ip = FieldPath::new("status")
                .child("loadBalancer")
                .child("ingress");
            for (i, ing) in n
                .status
                .iter()
                .flat_map(|s| s.load_balancer.iter())
                .flat_map(|l| l.ingress.iter().flatten())
                .enumerate()
            {
                if let Some(a) = ing.ip.as_deref().filter(|a| !a.is_empty()) {
                    if a.parse::<IpAddr>().is_err() {
                        errs.push(FieldError::invalid(&ip.index(i).child("ip"), a, IP_ERR));
                    }
                }
                if let Some(h) = ing.hostname.as_deref().filter(|h| !h.is_empty()) {
                    for m in is_dns1123_subdomain(h) {
                        errs.push(FieldError::invalid(&ip.index(i).child("hostname"), h, &m));
                    }
                    if h.parse::<IpAddr>().is_ok() {
                        errs.push(FieldError::invalid(
                            &ip.index(i).child("hostname"),
                            h,
                            "must be a DNS name, not an IP address",
                        ));
                    }
                }
            }
            errs
        },
    }
}

fn validate_service(s: &Service) -> ErrorList {
    let mut errs = ErrorList::new();
    let sp = FieldPath::new("spec");
    let spec = s.spec.clone().unwrap_or_default();
    let ports = spec.ports.clone().unwrap_or_default();
    let ty = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
    let is_headless = headless(s);
    if ports.is_empty() && !is_headless && ty != "ExternalName" {
        errs.push(FieldError::required(&sp.child("ports"), ""));
    }
    let first_ip = spec
        .cluster_ips
        .as_ref()
        .and_then(|c| c.first().cloned())
        .or_else(|| spec.cluster_ip.clone())
        .unwrap_or_default();
    match ty.as_str() {
        "LoadBalancer" => {
            if is_headless {
                errs.push(FieldError::invalid(
                    &sp.child("clusterIPs").index(0),
                    first_ip.as_str(),
                    "may not be set to 'None' for LoadBalancer services",
                ));
            }
            for (i, p) in ports.iter().enumerate() {
                if p.port == KUBELET_PORT {
                    errs.push(FieldError::invalid(
                        &sp.child("ports").index(i),
                        p.port,
                        "may not expose port 10250 externally since it is used by kubelet",
                    ));
                }
            }
        }
        "NodePort" if is_headless => {
            errs.push(FieldError::invalid(
                &sp.child("clusterIPs").index(0),
                first_ip.as_str(),
                "may not be set to 'None' for NodePort services",
            ));
        }
        "ExternalName" => {
            if spec.cluster_ips.as_ref().is_some_and(|c| !c.is_empty())
                || spec.cluster_ip.as_deref().is_some_and(|c| !c.is_empty())
            {
                errs.push(FieldError::forbidden(
                    &sp.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(
                    &sp.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    &sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let ext = spec.external_name.clone().unwrap_or_default();
            let cname = ext.strip_suffix('.').unwrap_or(&ext);
            if cname.is_empty() {
                errs.push(FieldError::required(&sp.child("externalName"), ""));
            } else {
                for m in is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid(&sp.child("externalName"), cname, &m));
                }
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            p,
            ports.len() > 1,
            &mut names,
            &sp.child("ports").index(i),
        ));
    }
    errs.extend(validate_labels(
        spec.selector.as_ref(),
        &sp.child("selector"),
    ));
    enum_field(
        spec.session_affinity.as_deref(),
        &["ClientIP", "None"],
        &sp.child("sessionAffinity"),
        &mut errs,
    );
    let sac = sp.child("sessionAffinityConfig");
    match spec.session_affinity.as_deref() {
        Some("ClientIP") => match spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
        {
            None if spec.session_affinity_config.is_none() => errs.push(FieldError::required(
                &sac,
                "when session affinity type is ClientIP",
            )),
            None => errs.push(FieldError::required(
                &sac.child("clientIP"),
                "when session affinity type is ClientIP",
            )),
            Some(c) => {
                if let Some(t) = c.timeout_seconds.filter(|t| *t <= 0 || *t > 86400) {
                    errs.push(FieldError::invalid(
                        &sac.child("clientIP").child("timeoutSeconds"),
                        t,
                        "must be greater than 0 and less than 86400",
                    ));
                }
            }
        },
        Some("None") if spec.session_affinity_config.is_some() => {
            errs.push(FieldError::forbidden(
                &sac,
                "must not be set when session affinity is None",
            ));
        }
        _ => {}
    }
    if ty != "ExternalName" {
        let ci = spec.cluster_ip.clone().unwrap_or_default();
        if !ci.is_empty() && ci != "None" && ci.parse::<IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                &sp.child("clusterIP"),
                ci.as_str(),
                IP_ERR,
            ));
        }
        let cips = spec.cluster_ips.clone().unwrap_or_default();
        if let Some(first) = cips.first() {
            if !ci.is_empty() && *first != ci {
                errs.push(FieldError::invalid(
                    &sp.child("clusterIPs"),
                    json(&cips),
                    "first value must match `clusterIP`",
                ));
            }
        }
        for (i, ip) in cips.iter().enumerate().skip(1) {
            if ip == "None" || ip.parse::<IpAddr>().is_err() {
                errs.push(FieldError::invalid(
                    &sp.child("clusterIPs").index(i),
                    ip.as_str(),
                    IP_ERR,
                ));
            }
        }
        if cips.len() > 2 {
            errs.push(FieldError::invalid(
                &sp.child("clusterIPs"),
                json(&cips),
                "may only hold up to 2 values",
            ));
        }
    }
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        if ip.parse::<IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                &sp.child("externalIPs").index(i),
                ip.as_str(),
                IP_ERR,
            ));
        }
    }
    enum_field(
        spec.type_.as_deref(),
        SERVICE_TYPES,
        &sp.child("type"),
        &mut errs,
    );
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.node_port.is_some_and(|n| n != 0) {
                errs.push(FieldError::forbidden(
                    &sp.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
        if let Some(np) = p.node_port.filter(|n| *n != 0) {
            if !node_ports.insert((proto.clone(), np)) {
                errs.push(FieldError::duplicate(
                    &sp.child("ports").index(i).child("nodePort"),
                    np,
                ));
            }
        }
        if !seen.insert((proto.clone(), p.port)) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i),
                serde_json::json!({"port": p.port, "protocol": proto}),
            ));
        }
    }
    for (field, v, supported) in [
        (
            "externalTrafficPolicy",
            spec.external_traffic_policy.as_deref(),
            &["Cluster", "Local"],
        ),
        (
            "internalTrafficPolicy",
            spec.internal_traffic_policy.as_deref(),
            &["Cluster", "Local"],
        ),
    ] {
        if let Some(v) = v {
            if (ty == "ClusterIP" || ty == "ExternalName") && field == "externalTrafficPolicy" {
                errs.push(FieldError::invalid(
                    &sp.child(field),
                    v,
                    "may only be set for externally-accessible services",
                ));
            } else {
                enum_field(Some(v), supported, &sp.child(field), &mut errs);
            }
        }
    }
    if let Some(p) = spec.ip_family_policy.as_deref() {
        enum_field(
            Some(p),
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
            &sp.child("ipFamilyPolicy"),
            &mut errs,
        );
    }
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        if !matches!(f.as_str(), "IPv4" | "IPv6") {
            errs.push(FieldError::not_supported(
                &sp.child("ipFamilies").index(i),
                f.as_str(),
                &["IPv4", "IPv6"],
            ));
        }
    }
    errs
}

fn validate_service_port(
    p: &ServicePort,
    require_name: bool,
    names: &mut BTreeSet<String>,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = p.name.clone().unwrap_or_default();
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        for m in is_dns1123_label(&name) {
            errs.push(FieldError::invalid(&path.child("name"), name.as_str(), &m));
        }
        if !names.insert(name.clone()) {
            errs.push(FieldError::duplicate(&path.child("name"), name.as_str()));
        }
    }
    for m in is_valid_port_num(p.port.into()) {
        errs.push(FieldError::invalid(&path.child("port"), p.port, &m));
    }
    enum_field(
        p.protocol.as_deref(),
        PROTOCOLS,
        &path.child("protocol"),
        &mut errs,
    );
    if let Some(t) = &p.target_port {
        errs.extend(validate_port_num_or_name(t, &path.child("targetPort")));
    }
    if let Some(np) = p.node_port.filter(|n| *n != 0) {
        for m in is_valid_port_num(np.into()) {
            errs.push(FieldError::invalid(&path.child("nodePort"), np, &m));
        }
    }
    if let Some(a) = &p.app_protocol {
        for m in is_qualified_name(a) {
            errs.push(FieldError::invalid(
                &path.child("appProtocol"),
                a.as_str(),
                &m,
            ));
        }
    }
    errs
}

pub(crate) fn endpoints_rules() -> Rules<Endpoints> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |e, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("subsets");
            for (i, ss) in e.subsets.iter().flatten().enumerate() {
                let p = sp.index(i);
                let addrs = ss.addresses.as_deref().unwrap_or_default();
                let not_ready = ss.not_ready_addresses.as_deref().unwrap_or_default();
                if addrs.is_empty() && not_ready.is_empty() {
                    errs.push(FieldError::required(
                        &p,
                        "must specify `addresses` or `notReadyAddresses`",
                    ));
                }
                for (field, list) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
                    for (j, a) in list.iter().enumerate() {
                        let ap = p.child(field).index(j);
                        if a.ip.parse::<IpAddr>().is_err() {
                            errs.push(FieldError::invalid(&ap.child("ip"), a.ip.as_str(), IP_ERR));
                        }
                        if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
                            for m in is_dns1123_label(h) {
                                errs.push(FieldError::invalid(&ap.child("hostname"), h, &m));
                            }
                        }
                        if let Some(n) = a.node_name.as_deref().filter(|n| !n.is_empty()) {
                            for m in name_is_dns_subdomain(n, false) {
                                errs.push(FieldError::invalid(&ap.child("nodeName"), n, &m));
                            }
                        }
                    }
                }
                let ports = ss.ports.as_deref().unwrap_or_default();
                for (j, port) in ports.iter().enumerate() {
                    let pp = p.child("ports").index(j);
                    let name = port.name.clone().unwrap_or_default();
                    if ports.len() > 1 && name.is_empty() {
                        errs.push(FieldError::required(&pp.child("name"), ""));
                    } else if !name.is_empty() {
                        for m in is_dns1123_label(&name) {
                            errs.push(FieldError::invalid(&pp.child("name"), name.as_str(), &m));
                        }
                    }
                    for m in is_valid_port_num(port.port.into()) {
                        errs.push(FieldError::invalid(&pp.child("port"), port.port, &m));
                    }
                    enum_field(
                        port.protocol.as_deref(),
                        PROTOCOLS,
                        &pp.child("protocol"),
                        &mut errs,
                    );
                }
            }
            errs
        },
        update: no_update,
        status: no_update,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{kinds, want, Case};
    use super::super::{validate_create, validate_update};
    use crate::field_error::FieldErrorType::*;
    use serde_json::{json, Value};

    fn svc(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "d", "resourceVersion": "1"}, "spec": spec})
    }

    #[test]
    fn service_create_rules() {
        let cases: Vec<Case> = vec![
            (
                "valid",
                svc(
                    "web",
                    json!({"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "web"}}),
                ),
                vec![],
            ),
            (
                "name must be dns1035",
                svc("1web", json!({"ports": [{"port": 80}]})),
                vec![("metadata.name", Invalid)],
            ),
            (
                "ports required",
                svc("web", json!({})),
                vec![("spec.ports", Required)],
            ),
            (
                "headless needs no ports",
                svc("web", json!({"clusterIP": "None"})),
                vec![],
            ),
            (
                "external name",
                svc(
                    "web",
                    json!({"type": "ExternalName", "externalName": "example.com."}),
                ),
                vec![],
            ),
            (
                "external name required",
                svc("web", json!({"type": "ExternalName"})),
                vec![("spec.externalName", Required)],
            ),
            (
                "bad port",
                svc("web", json!({"ports": [{"port": 0}]})),
                vec![("spec.ports[0].port", Invalid)],
            ),
            (
                "names required when many",
                svc(
                    "web",
                    json!({"ports": [{"port": 80, "name": "a"}, {"port": 81}]}),
                ),
                vec![("spec.ports[1].name", Required)],
            ),
            (
                "duplicate names",
                svc(
                    "web",
                    json!({"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]}),
                ),
                vec![("spec.ports[1].name", Duplicate)],
            ),
            (
                "duplicate ports",
                svc(
                    "web",
                    json!({"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]}),
                ),
                vec![("spec.ports[1]", Duplicate)],
            ),
            (
                "bad target port",
                svc(
                    "web",
                    json!({"ports": [{"port": 80, "targetPort": "Http"}]}),
                ),
                vec![("spec.ports[0].targetPort", Invalid)],
            ),
            (
                "bad type",
                svc("web", json!({"type": "Magic", "ports": [{"port": 80}]})),
                vec![("spec.type", NotSupported)],
            ),
            (
                "bad protocol",
                svc("web", json!({"ports": [{"port": 80, "protocol": "ICMP"}]})),
                vec![("spec.ports[0].protocol", NotSupported)],
            ),
            (
                "nodePort on ClusterIP",
                svc(
                    "web",
                    json!({"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30000}]}),
                ),
                vec![("spec.ports[0].nodePort", Forbidden)],
            ),
            (
                "bad clusterIP",
                svc(
                    "web",
                    json!({"clusterIP": "10.0.0.300", "ports": [{"port": 80}]}),
                ),
                vec![("spec.clusterIP", Invalid)],
            ),
            (
                "bad selector",
                svc(
                    "web",
                    json!({"ports": [{"port": 80}], "selector": {"a": "b c"}}),
                ),
                vec![("spec.selector", Invalid)],
            ),
            (
                "bad session affinity",
                svc(
                    "web",
                    json!({"ports": [{"port": 80}], "sessionAffinity": "Sticky"}),
                ),
                vec![("spec.sessionAffinity", NotSupported)],
            ),
        ];
        for (name, obj, w) in cases {
            assert_eq!(
                kinds(&validate_create("", "Service", &obj)),
                want(w),
                "{name}"
            );
        }
        let errs = validate_create(
            "",
            "Service",
            &svc("web", json!({"type": "Magic", "ports": [{"port": 80}]})),
        );
        assert_eq!(errs[0].to_string(), "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"");
    }

    #[test]
    fn cluster_ip_is_immutable() {
        let old = svc(
            "web",
            json!({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 80}]}),
        );
        let new = svc(
            "web",
            json!({"clusterIP": "10.0.0.2", "clusterIPs": ["10.0.0.2"], "ports": [{"port": 80}]}),
        );
        assert_eq!(
            kinds(&validate_update("", "Service", &new, &old)),
            want(vec![("spec.clusterIPs[0]", Invalid)])
        );
        let same = svc(
            "web",
            json!({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 81}]}),
        );
        assert_eq!(
            kinds(&validate_update("", "Service", &same, &old)),
            want(vec![])
        );
    }

    #[test]
    fn endpoints_rules() {
        let ep = |subsets: Value| json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "d"}, "subsets": subsets});
        assert_eq!(
            kinds(&validate_create(
                "",
                "Endpoints",
                &ep(json!([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]))
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                "",
                "Endpoints",
                &ep(json!([{"addresses": [{"ip": "nope"}], "ports": [{"port": 0}]}]))
            )),
            want(vec![
                ("subsets[0].addresses[0].ip", Invalid),
                ("subsets[0].ports[0].port", Invalid)
            ])
        );
    }
}
