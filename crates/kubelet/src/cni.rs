//! The pod network's CNI configuration: a bridge with host-local IPAM over the node's
//! podCIDR, portmap for hostPorts, and loopback, written where the runtime's CNI plugin reads
//! it. The runtime (containerd) calls the plugins; the kubelet only writes this file.

use std::path::PathBuf;

use serde_json::json;

/// The pod network of one node.
#[derive(Debug, Clone)]
pub struct CniConfig {
    /// Where the runtime reads conflists from.
    pub conf_dir: PathBuf,
    /// The bridge's name (one per node when several nodes share a machine).
    pub bridge: String,
    /// host-local's allocation directory (per node, for the same reason).
    pub ipam_dir: PathBuf,
    /// The network's MTU (0: the plugin's default).
    pub mtu: u32,
}

/// The conflist file name: `10-` so it sorts before any other file a user leaves there.
pub const CONFLIST: &str = "10-rkube.conflist";

/// The conflist for the node's pod CIDRs (one per IP family).
pub fn render(cfg: &CniConfig, pod_cidrs: &[String]) -> String {
    let ranges: Vec<_> = pod_cidrs
        .iter()
        .map(|cidr| json!([{ "subnet": cidr }]))
        .collect();
    let mut routes = Vec::new();
    for cidr in pod_cidrs {
        routes.push(if cidr.contains(':') {
            json!({"dst": "::/0"})
        } else {
            json!({"dst": "0.0.0.0/0"})
        });
    }
    let mut bridge = json!({
        "type": "bridge",
        "bridge": cfg.bridge,
        "isGateway": true,
        "ipMasq": true,
        "hairpinMode": true,
        "ipam": {
            "type": "host-local",
            "dataDir": cfg.ipam_dir,
            "ranges": ranges,
            "routes": routes,
        },
    });
    if cfg.mtu > 0 {
        bridge["mtu"] = json!(cfg.mtu);
    }
    let list = json!({
        "cniVersion": "1.0.0",
        "name": "rkube",
        "plugins": [
            bridge,
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
        ],
    });
    serde_json::to_string_pretty(&list).unwrap_or_default()
}

/// Writes the conflist when it differs from what is there (atomically: the runtime watches
/// the directory and must never read half a file). Returns whether it changed.
pub fn write(cfg: &CniConfig, pod_cidrs: &[String]) -> std::io::Result<bool> {
    let text = render(cfg, pod_cidrs);
    let path = cfg.conf_dir.join(CONFLIST);
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    std::fs::create_dir_all(&cfg.conf_dir)?;
    std::fs::create_dir_all(&cfg.ipam_dir)?;
    let tmp = cfg.conf_dir.join(format!(".{CONFLIST}.tmp"));
    std::fs::write(&tmp, &text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conflist_bridges_the_pod_cidr_with_portmap() {
        let cfg = CniConfig {
            conf_dir: "/d/net.d".into(),
            bridge: "rkube0".into(),
            ipam_dir: "/d/ipam".into(),
            mtu: 0,
        };
        let text = render(&cfg, &["10.42.0.0/24".into()]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["plugins"][0]["type"], "bridge");
        assert_eq!(v["plugins"][0]["bridge"], "rkube0");
        assert_eq!(v["plugins"][0]["isGateway"], true);
        assert_eq!(v["plugins"][0]["ipam"]["type"], "host-local");
        assert_eq!(v["plugins"][0]["ipam"]["dataDir"], "/d/ipam");
        assert_eq!(
            v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.42.0.0/24"
        );
        assert_eq!(v["plugins"][1]["type"], "portmap");
        assert_eq!(v["plugins"][1]["capabilities"]["portMappings"], true);
        assert!(v["plugins"][0].get("mtu").is_none());
    }
}
