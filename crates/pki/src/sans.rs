//! The subject alternative names of the API server's serving certificate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::PkiError;

/// The SANs upstream gives the apiserver serving cert: the node name and addresses,
/// `localhost`, 127.0.0.1, `kubernetes`, `kubernetes.default`, `kubernetes.default.svc`,
/// `kubernetes.default.svc.<cluster_domain>`, and the first address of each service CIDR
/// (`10.43.0.1` for `10.43.0.0/16`; `service_cidr` may list a dual-stack pair separated by a
/// comma). Duplicates are dropped; order is stable.
pub fn apiserver_sans(
    node_name: &str,
    node_ips: &[IpAddr],
    cluster_domain: &str,
    service_cidr: &str,
) -> Result<(Vec<String>, Vec<IpAddr>), PkiError> {
    let domain = cluster_domain.trim_end_matches('.');
    let mut dns: Vec<String> = Vec::new();
    let mut push_dns = |name: String| {
        if !name.is_empty() && !dns.contains(&name) {
            dns.push(name);
        }
    };
    push_dns(node_name.to_string());
    push_dns("localhost".into());
    push_dns("kubernetes".into());
    push_dns("kubernetes.default".into());
    push_dns("kubernetes.default.svc".into());
    if !domain.is_empty() {
        push_dns(format!("kubernetes.default.svc.{domain}"));
    }

    let mut ips: Vec<IpAddr> = Vec::new();
    let mut push_ip = |ip: IpAddr| {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    };
    push_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    for cidr in service_cidr
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        push_ip(first_service_ip(cidr)?);
    }
    for ip in node_ips {
        push_ip(*ip);
    }
    Ok((dns, ips))
}

/// The first usable address of a CIDR (network address + 1), as upstream's
/// `GetIndexedIP(subnet, 1)`, which the `kubernetes` service gets.
pub fn first_service_ip(cidr: &str) -> Result<IpAddr, PkiError> {
    let err = |reason: &str| PkiError::InvalidCidr {
        cidr: cidr.to_string(),
        reason: reason.to_string(),
    };
    let (addr, prefix) = cidr
        .split_once('/')
        .ok_or_else(|| err("expected <address>/<prefix length>"))?;
    let addr: IpAddr = addr.parse().map_err(|_| err("invalid address"))?;
    let prefix: u32 = prefix.parse().map_err(|_| err("invalid prefix length"))?;
    match addr {
        IpAddr::V4(v4) => {
            if prefix > 30 {
                return Err(err("prefix too long to hold a service address"));
            }
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            Ok(IpAddr::V4(Ipv4Addr::from((u32::from(v4) & mask) + 1)))
        }
        IpAddr::V6(v6) => {
            if prefix > 126 {
                return Err(err("prefix too long to hold a service address"));
            }
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            Ok(IpAddr::V6(Ipv6Addr::from((u128::from(v6) & mask) + 1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_service_ip_is_network_plus_one() {
        let cases = [
            ("10.43.0.0/16", "10.43.0.1"),
            ("10.96.0.0/12", "10.96.0.1"),
            ("10.96.5.7/12", "10.96.0.1"),
            ("192.168.1.0/30", "192.168.1.1"),
            ("0.0.0.0/0", "0.0.0.1"),
            ("fd00:10:96::/108", "fd00:10:96::1"),
            ("2001:db8::/64", "2001:db8::1"),
        ];
        for (cidr, want) in cases {
            assert_eq!(
                first_service_ip(cidr).unwrap(),
                want.parse::<IpAddr>().unwrap(),
                "{cidr}"
            );
        }
    }

    #[test]
    fn bad_cidrs_are_rejected() {
        for cidr in [
            "10.43.0.0",
            "10.43.0.0/33",
            "10.43.0.0/31",
            "nope/16",
            "10.0.0.0/x",
            "",
        ] {
            assert!(
                matches!(first_service_ip(cidr), Err(PkiError::InvalidCidr { .. })),
                "{cidr}"
            );
        }
    }

    #[test]
    fn apiserver_sans_match_upstream_list() {
        let node_ip: IpAddr = "192.168.5.10".parse().unwrap();
        let (dns, ips) = apiserver_sans(
            "node-a",
            &[node_ip],
            "cluster.local.",
            "10.43.0.0/16,fd00::/108",
        )
        .unwrap();
        assert_eq!(
            dns,
            [
                "node-a",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ]
        );
        let want: Vec<IpAddr> = ["127.0.0.1", "10.43.0.1", "fd00::1", "192.168.5.10"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(ips, want);
    }

    #[test]
    fn apiserver_sans_drop_duplicates() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let (dns, ips) =
            apiserver_sans("localhost", &[lo, lo], "cluster.local", "10.43.0.0/16").unwrap();
        assert_eq!(dns.iter().filter(|d| *d == "localhost").count(), 1);
        assert_eq!(ips.iter().filter(|ip| **ip == lo).count(), 1);
    }
}
