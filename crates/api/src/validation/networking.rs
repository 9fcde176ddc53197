//! Networking kinds: ingresses, ingress classes, network policies and endpoint slices.

use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{
    Ingress, IngressBackend, IngressClass, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::cluster::is_cidr;
use super::container::{enum_field, PROTOCOLS};
use super::meta::{immutable, json, validate_label_selector};
use super::names::{
    is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_port_name,
    is_valid_port_num, is_wildcard_dns1123_subdomain, name_is_dns1035_label, name_is_dns_subdomain,
};
use super::{no_update, MetaRule, Rules};
use crate::field_error::{ErrorList, FieldError, FieldPath};

const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const CIDR_ERR: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

fn validate_backend(b: &IngressBackend, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    match (&b.resource, &b.service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            let rp = path.child("resource");
            if r.kind.is_empty() {
                errs.push(FieldError::required(&rp.child("kind"), ""));
            }
            if r.name.is_empty() {
                errs.push(FieldError::required(&rp.child("name"), ""));
            }
        }
        (None, Some(s)) => {
            let sp = path.child("service");
            if s.name.is_empty() {
                errs.push(FieldError::required(&sp.child("name"), ""));
            } else {
                for m in name_is_dns1035_label(&s.name, false) {
                    errs.push(FieldError::invalid(&sp.child("name"), s.name.as_str(), &m));
                }
            }
            let port = s.port.clone().unwrap_or_default();
            let name = port.name.unwrap_or_default();
            let number = port.number.unwrap_or(0);
            match (name.is_empty(), number != 0) {
                (false, true) => errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                )),
                (false, false) => {
                    for m in is_valid_port_name(&name) {
                        errs.push(FieldError::invalid(
                            &sp.child("port").child("name"),
                            name.as_str(),
                            &m,
                        ));
                    }
                }
                (true, true) => {
                    for m in is_valid_port_num(number.into()) {
                        errs.push(FieldError::invalid(
                            &sp.child("port").child("number"),
                            number,
                            &m,
                        ));
                    }
                }
                (true, false) => errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                )),
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
    errs
}

fn validate_host(host: &str, path: &FieldPath, errs: &mut ErrorList) {
    if host.parse::<IpAddr>().is_ok() {
        errs.push(FieldError::invalid(
            path,
            host,
            "must be a DNS name, not an IP address",
        ));
    }
    let msgs = if host.contains('*') {
        is_wildcard_dns1123_subdomain(host)
    } else {
        is_dns1123_subdomain(host)
    };
    for m in msgs {
        errs.push(FieldError::invalid(path, host, &m));
    }
}

pub(crate) fn ingress_rules() -> Rules<Ingress> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |ing, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            let spec = ing.spec.clone().unwrap_or_default();
            let rules = spec.rules.clone().unwrap_or_default();
            if spec.default_backend.is_none() && rules.is_empty() {
                errs.push(FieldError::invalid(
                    &sp.child("rules"),
                    json(&rules),
                    "either `defaultBackend` or `rules` must be specified",
                ));
            }
            if let Some(b) = &spec.default_backend {
                errs.extend(validate_backend(b, &sp.child("defaultBackend")));
            }
            for (i, r) in rules.iter().enumerate() {
                let rp = sp.child("rules").index(i);
                if let Some(h) = r.host.as_deref().filter(|h| !h.is_empty()) {
                    validate_host(h, &rp.child("host"), &mut errs);
                }
                let Some(http) = &r.http else { continue };
                let hp = rp.child("http");
                if http.paths.is_empty() {
                    errs.push(FieldError::required(&hp.child("paths"), ""));
                }
                for (j, p) in http.paths.iter().enumerate() {
                    let pp = hp.child("paths").index(j);
                    let path = p.path.clone().unwrap_or_default();
                    if p.path_type.is_empty() {
                        errs.push(FieldError::required(
                            &pp.child("pathType"),
                            "pathType must be specified",
                        ));
                    } else if !PATH_TYPES.contains(&p.path_type.as_str()) {
                        errs.push(FieldError::not_supported(
                            &pp.child("pathType"),
                            p.path_type.as_str(),
                            PATH_TYPES,
                        ));
                    } else if p.path_type != "ImplementationSpecific" {
                        if !path.starts_with('/') {
                            errs.push(FieldError::invalid(
                                &pp.child("path"),
                                path.as_str(),
                                "must be an absolute path",
                            ));
                        } else {
                            for bad in ["//", "/./", "/../", "%2f", "%2F"] {
                                if path.contains(bad) {
                                    errs.push(FieldError::invalid(
                                        &pp.child("path"),
                                        path.as_str(),
                                        &format!("must not contain '{bad}'"),
                                    ));
                                }
                            }
                            for bad in ["/..", "/."] {
                                if path.ends_with(bad) {
                                    errs.push(FieldError::invalid(
                                        &pp.child("path"),
                                        path.as_str(),
                                        &format!("cannot end with '{bad}'"),
                                    ));
                                }
                            }
                        }
                    } else if !path.is_empty() && !path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            &pp.child("path"),
                            path.as_str(),
                            "must be an absolute path",
                        ));
                    }
                    errs.extend(validate_backend(&p.backend, &pp.child("backend")));
                }
            }
            for (i, t) in spec.tls.iter().flatten().enumerate() {
                for (j, h) in t.hosts.iter().flatten().enumerate() {
                    let hp = sp.child("tls").index(i).child("hosts").index(j);
                    let msgs = if h.contains('*') {
                        is_wildcard_dns1123_subdomain(h)
                    } else {
                        is_dns1123_subdomain(h)
                    };
                    for m in msgs {
                        errs.push(FieldError::invalid(&hp, h.as_str(), &m));
                    }
                }
            }
            if let Some(c) = spec.ingress_class_name.as_deref() {
                for m in name_is_dns_subdomain(c, false) {
                    errs.push(FieldError::invalid(&sp.child("ingressClassName"), c, &m));
                }
            }
            errs
        },
        update: no_update,
        status: no_update,
    }
}

pub(crate) fn ingress_class_rules() -> Rules<IngressClass> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |ic, _| {
            let mut errs = ErrorList::new();
            let cp = FieldPath::new("spec").child("controller");
            let c = ic
                .spec
                .as_ref()
                .and_then(|s| s.controller.clone())
                .unwrap_or_default();
            if c.is_empty() {
                errs.push(FieldError::required(&cp, ""));
            } else if c.len() > 250 {
                errs.push(FieldError::too_long(&cp, 250));
            } else {
                let segments: Vec<&str> = c.splitn(2, '/').collect();
                match segments.as_slice() {
                    [host, rest] if !host.is_empty() && !rest.is_empty() => {
                        for m in is_dns1123_subdomain(host) {
                            errs.push(FieldError::invalid(&cp, *host, &m));
                        }
                    }
                    _ => errs.push(FieldError::invalid(
                        &cp,
                        c.as_str(),
                        "must be a domain-prefixed path (such as \"acme.io/foo\")",
                    )),
                }
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            let c = |x: &IngressClass| x.spec.as_ref().and_then(|s| s.controller.clone());
            immutable(
                &c(n),
                &c(o),
                &FieldPath::new("spec").child("controller"),
                &mut errs,
            );
            errs
        },
        status: no_update,
    }
}

fn validate_np_port(p: &NetworkPolicyPort, path: &FieldPath, errs: &mut ErrorList) {
    enum_field(
        p.protocol.as_deref(),
        PROTOCOLS,
        &path.child("protocol"),
        errs,
    );
    match &p.port {
        Some(IntOrString::Int(n)) => {
            for m in is_valid_port_num((*n).into()) {
                errs.push(FieldError::invalid(&path.child("port"), *n, &m));
            }
            if let Some(e) = p.end_port {
                if e < *n {
                    errs.push(FieldError::invalid(
                        &path.child("endPort"),
                        e,
                        "must be greater than or equal to `port`",
                    ));
                }
                for m in is_valid_port_num(e.into()) {
                    errs.push(FieldError::invalid(&path.child("endPort"), e, &m));
                }
            }
        }
        Some(IntOrString::String(s)) => {
            if p.end_port.is_some() {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    p.end_port.unwrap_or(0),
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for m in is_valid_port_name(s) {
                errs.push(FieldError::invalid(&path.child("port"), s.as_str(), &m));
            }
        }
        None => {
            if let Some(e) = p.end_port {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    e,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
}

fn validate_np_peer(p: &NetworkPolicyPeer, path: &FieldPath, errs: &mut ErrorList) {
    let mut n = 0;
    if let Some(s) = &p.pod_selector {
        n += 1;
        errs.extend(validate_label_selector(Some(s), &path.child("podSelector")));
    }
    if let Some(s) = &p.namespace_selector {
        n += 1;
        errs.extend(validate_label_selector(
            Some(s),
            &path.child("namespaceSelector"),
        ));
    }
    if let Some(b) = &p.ip_block {
        n += 1;
        let bp = path.child("ipBlock");
        if b.cidr.is_empty() {
            errs.push(FieldError::required(&bp.child("cidr"), ""));
        } else if !is_cidr(&b.cidr) {
            errs.push(FieldError::invalid(
                &bp.child("cidr"),
                b.cidr.as_str(),
                CIDR_ERR,
            ));
        }
        for (i, e) in b.except.iter().flatten().enumerate() {
            if !is_cidr(e) {
                errs.push(FieldError::invalid(
                    &bp.child("except").index(i),
                    e.as_str(),
                    CIDR_ERR,
                ));
            }
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if n > 1 && p.ip_block.is_some() {
        errs.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
}

pub(crate) fn network_policy_rules() -> Rules<NetworkPolicy> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |np, _| {
            let mut errs = ErrorList::new();
            let sp = FieldPath::new("spec");
            let spec = np.spec.clone().unwrap_or_default();
            errs.extend(validate_label_selector(
                spec.pod_selector.as_ref(),
                &sp.child("podSelector"),
            ));
            for (i, r) in spec.ingress.iter().flatten().enumerate() {
                let rp = sp.child("ingress").index(i);
                for (j, p) in r.ports.iter().flatten().enumerate() {
                    validate_np_port(p, &rp.child("ports").index(j), &mut errs);
                }
                for (j, p) in r.from.iter().flatten().enumerate() {
                    validate_np_peer(p, &rp.child("from").index(j), &mut errs);
                }
            }
            for (i, r) in spec.egress.iter().flatten().enumerate() {
                let rp = sp.child("egress").index(i);
                for (j, p) in r.ports.iter().flatten().enumerate() {
                    validate_np_port(p, &rp.child("ports").index(j), &mut errs);
                }
                for (j, p) in r.to.iter().flatten().enumerate() {
                    validate_np_peer(p, &rp.child("to").index(j), &mut errs);
                }
            }
            let types = spec.policy_types.clone().unwrap_or_default();
            for (i, t) in types.iter().enumerate() {
                if !matches!(t.as_str(), "Ingress" | "Egress") {
                    errs.push(FieldError::not_supported(
                        &sp.child("policyTypes").index(i),
                        t.as_str(),
                        &["Ingress", "Egress"],
                    ));
                }
            }
            if types.len() > 2 {
                errs.push(FieldError::invalid(
                    &sp.child("policyTypes"),
                    json(&types),
                    "may not specify more than two policyTypes",
                ));
            }
            errs
        },
        update: no_update,
        status: no_update,
    }
}

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];

pub(crate) fn endpoint_slice_rules() -> Rules<EndpointSlice> {
    Rules {
        meta: MetaRule::Standard(name_is_dns_subdomain),
        create: |es, _| {
            let mut errs = ErrorList::new();
            let ep = FieldPath::new("endpoints");
            if es.endpoints.len() > 1000 {
                errs.push(FieldError::too_many(&ep, es.endpoints.len(), 1000));
            }
            for (i, e) in es.endpoints.iter().enumerate() {
                let p = ep.index(i);
                let ap = p.child("addresses");
                if e.addresses.is_empty() {
                    errs.push(FieldError::required(&ap, "must contain at least 1 address"));
                } else if e.addresses.len() > 100 {
                    errs.push(FieldError::too_many(&ap, e.addresses.len(), 100));
                }
                for (j, a) in e.addresses.iter().enumerate() {
                    let aj = ap.index(j);
                    match es.address_type.as_str() {
                        "IPv4" if a.parse::<std::net::Ipv4Addr>().is_err() => errs.push(
                            FieldError::invalid(&aj, a.as_str(), "must be a valid IPv4 address"),
                        ),
                        "IPv6" if a.parse::<std::net::Ipv6Addr>().is_err() => errs.push(
                            FieldError::invalid(&aj, a.as_str(), "must be a valid IPv6 address"),
                        ),
                        "FQDN" => {
                            for m in is_dns1123_subdomain(a.strip_suffix('.').unwrap_or(a)) {
                                errs.push(FieldError::invalid(&aj, a.as_str(), &m));
                            }
                        }
                        _ => {}
                    }
                }
                if let Some(h) = e.hostname.as_deref() {
                    for m in is_dns1123_label(h) {
                        errs.push(FieldError::invalid(&p.child("hostname"), h, &m));
                    }
                }
                if let Some(n) = e.node_name.as_deref() {
                    for m in name_is_dns_subdomain(n, false) {
                        errs.push(FieldError::invalid(&p.child("nodeName"), n, &m));
                    }
                }
                for k in e.deprecated_topology.iter().flat_map(|t| t.keys()) {
                    for m in is_qualified_name(k) {
                        errs.push(FieldError::invalid(
                            &p.child("deprecatedTopology"),
                            k.as_str(),
                            &m,
                        ));
                    }
                }
            }
            let atp = FieldPath::new("addressType");
            if es.address_type.is_empty() {
                errs.push(FieldError::required(&atp, ""));
            } else if !ADDRESS_TYPES.contains(&es.address_type.as_str()) {
                errs.push(FieldError::not_supported(
                    &atp,
                    es.address_type.as_str(),
                    ADDRESS_TYPES,
                ));
            }
            let pp = FieldPath::new("ports");
            let ports = es.ports.as_deref().unwrap_or_default();
            if ports.len() > 20000 {
                errs.push(FieldError::too_many(&pp, ports.len(), 20000));
            }
            let mut names = std::collections::BTreeSet::new();
            for (i, p) in ports.iter().enumerate() {
                let ip = pp.index(i);
                let name = p.name.clone().unwrap_or_default();
                if !name.is_empty() {
                    for m in is_dns1123_label(&name) {
                        errs.push(FieldError::invalid(&ip.child("name"), name.as_str(), &m));
                    }
                }
                if !names.insert(name.clone()) {
                    errs.push(FieldError::duplicate(&ip.child("name"), name.as_str()));
                }
                match p.protocol.as_deref() {
                    None => errs.push(FieldError::required(&ip.child("protocol"), "")),
                    Some(pr) if !PROTOCOLS.contains(&pr) => errs.push(FieldError::not_supported(
                        &ip.child("protocol"),
                        pr,
                        PROTOCOLS,
                    )),
                    _ => {}
                }
                if let Some(a) = &p.app_protocol {
                    for m in is_qualified_name(a) {
                        errs.push(FieldError::invalid(
                            &ip.child("appProtocol"),
                            a.as_str(),
                            &m,
                        ));
                    }
                }
            }
            errs
        },
        update: |n, o, _| {
            let mut errs = ErrorList::new();
            immutable(
                &n.address_type,
                &o.address_type,
                &FieldPath::new("addressType"),
                &mut errs,
            );
            errs
        },
        status: no_update,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{kinds, want, Case};
    use super::super::{validate_create, validate_update};
    use crate::field_error::FieldErrorType::*;
    use serde_json::{json, Value};

    fn ing(spec: Value) -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i", "namespace": "d"}, "spec": spec})
    }

    #[test]
    fn ingress_rules() {
        let backend = json!({"service": {"name": "web", "port": {"number": 80}}});
        let cases: Vec<Case> = vec![
            (
                "valid",
                json!({"rules": [{"host": "example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}),
                vec![],
            ),
            (
                "wildcard host",
                json!({"rules": [{"host": "*.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}),
                vec![],
            ),
            ("nothing", json!({}), vec![("spec.rules", Invalid)]),
            (
                "bad host",
                json!({"rules": [{"host": "Example.com"}]}),
                vec![("spec.rules[0].host", Invalid)],
            ),
            (
                "ip host",
                json!({"rules": [{"host": "1.2.3.4"}]}),
                vec![("spec.rules[0].host", Invalid)],
            ),
            (
                "relative path",
                json!({"rules": [{"http": {"paths": [{"path": "x", "pathType": "Prefix", "backend": backend}]}}]}),
                vec![("spec.rules[0].http.paths[0].path", Invalid)],
            ),
            (
                "bad path type",
                json!({"rules": [{"http": {"paths": [{"path": "/", "pathType": "Regex", "backend": backend}]}}]}),
                vec![("spec.rules[0].http.paths[0].pathType", NotSupported)],
            ),
            (
                "no port",
                json!({"defaultBackend": {"service": {"name": "web"}}}),
                vec![("spec.defaultBackend", Required)],
            ),
            (
                "no backend",
                json!({"defaultBackend": {}}),
                vec![("spec.defaultBackend", Invalid)],
            ),
        ];
        for (name, spec, w) in cases {
            assert_eq!(
                kinds(&validate_create("networking.k8s.io", "Ingress", &ing(spec))),
                want(w),
                "{name}"
            );
        }
    }

    #[test]
    fn network_policy_rules() {
        let np = |spec: Value| json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n", "namespace": "d"}, "spec": spec});
        assert_eq!(
            kinds(&validate_create(
                "networking.k8s.io",
                "NetworkPolicy",
                &np(
                    json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 80}]}]})
                )
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                "networking.k8s.io",
                "NetworkPolicy",
                &np(
                    json!({"podSelector": {}, "ingress": [{"from": [{}, {"ipBlock": {"cidr": "nope"}}], "ports": [{"port": 0, "protocol": "ICMP"}]}], "policyTypes": ["Sideways"]})
                )
            )),
            want(vec![
                ("spec.ingress[0].ports[0].protocol", NotSupported),
                ("spec.ingress[0].ports[0].port", Invalid),
                ("spec.ingress[0].from[0]", Required),
                ("spec.ingress[0].from[1].ipBlock.cidr", Invalid),
                ("spec.policyTypes[0]", NotSupported),
            ])
        );
    }

    #[test]
    fn endpoint_slice_rules() {
        let es = |at: &str, eps: Value| json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e", "namespace": "d", "resourceVersion": "1"}, "addressType": at, "endpoints": eps, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]});
        assert_eq!(
            kinds(&validate_create(
                "discovery.k8s.io",
                "EndpointSlice",
                &es("IPv4", json!([{"addresses": ["10.0.0.1"]}]))
            )),
            want(vec![])
        );
        assert_eq!(
            kinds(&validate_create(
                "discovery.k8s.io",
                "EndpointSlice",
                &es("IPv5", json!([]))
            )),
            want(vec![("addressType", NotSupported)])
        );
        assert_eq!(
            kinds(&validate_create(
                "discovery.k8s.io",
                "EndpointSlice",
                &es("IPv4", json!([{"addresses": ["::1"]}, {"addresses": []}]))
            )),
            want(vec![
                ("endpoints[0].addresses[0]", Invalid),
                ("endpoints[1].addresses", Required)
            ])
        );
        assert_eq!(
            kinds(&validate_update(
                "discovery.k8s.io",
                "EndpointSlice",
                &es("IPv6", json!([])),
                &es("IPv4", json!([]))
            )),
            want(vec![("addressType", Invalid)])
        );
    }
}
