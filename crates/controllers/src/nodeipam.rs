//! `node-ipam` (upstream's `NodeIpamController` with the `RangeAllocator`): gives every node
//! a pod CIDR (`spec.podCIDR`, `spec.podCIDRs`) carved out of the cluster CIDR, one per
//! family for dual-stack.
//!
//! Subnets are handed out in order from a rotating cursor, as upstream's `CidrSet`, so a
//! subnet freed by a deleted node is reused only once the cursor comes round again. On
//! start the allocations nodes already carry are taken first, so a restart keeps them; a
//! node's delete frees its subnets. When the range is full the node gets a
//! `CIDRNotAvailable` event and is retried.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::events::Recorder;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::driver::{drive, on_objects};
use crate::error::is_not_found;
use crate::events::publish;
use crate::{ControllerContext, Error};

pub const NAME: &str = "node-ipam";

/// How long a node waits before another try when the range is full.
const FULL_RETRY: Duration = Duration::from_secs(30);

/// The controller's settings: upstream's `--cluster-cidr` (rkube's default 10.42.0.0/16,
/// one IPv4 and one IPv6 CIDR for dual-stack) and `--node-cidr-mask-size-ipv4/-ipv6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIpamConfig {
    pub cluster_cidrs: Vec<String>,
    pub node_cidr_mask_size_ipv4: u8,
    pub node_cidr_mask_size_ipv6: u8,
}

impl Default for NodeIpamConfig {
    fn default() -> Self {
        NodeIpamConfig {
            cluster_cidrs: vec!["10.42.0.0/16".into()],
            node_cidr_mask_size_ipv4: 24,
            node_cidr_mask_size_ipv6: 64,
        }
    }
}

/// Why a CIDR setting is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("invalid CIDR {0:?}")]
    Invalid(String),
    #[error("node CIDR mask /{mask} does not fit cluster CIDR {cidr}: it must be longer and at most 16 bits longer")]
    MaskSize { cidr: String, mask: u8 },
    #[error("at most one CIDR per IP family, and at most two")]
    Families,
}

/// A parsed CIDR: its network address as an integer, its family and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: u128,
    pub v6: bool,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let bad = || CidrError::Invalid(s.to_string());
        let (ip, len) = s.split_once('/').ok_or_else(bad)?;
        let ip = IpAddr::from_str(ip).map_err(|_| bad())?;
        let prefix: u8 = len.parse().map_err(|_| bad())?;
        let (base, bits, v6) = match ip {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32u8, false),
            IpAddr::V6(a) => (u128::from(a), 128u8, true),
        };
        if prefix > bits {
            return Err(bad());
        }
        let host_bits = u32::from(bits - prefix);
        let mask = if host_bits >= 128 {
            0
        } else {
            !0u128 << host_bits
        };
        Ok(Cidr {
            base: base & mask & if v6 { !0 } else { u128::from(u32::MAX) },
            v6,
            prefix,
        })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.v6 {
            write!(f, "{}/{}", Ipv6Addr::from(self.base), self.prefix)
        } else {
            let v4 = u32::try_from(self.base).unwrap_or_default();
            write!(f, "{}/{}", Ipv4Addr::from(v4), self.prefix)
        }
    }
}

/// One cluster CIDR cut into node subnets (upstream's `CidrSet`): which are taken, by whom,
/// and where the next search starts.
#[derive(Debug, Clone)]
pub struct CidrSet {
    cluster: Cidr,
    mask: u8,
    max: u64,
    next: u64,
    used: BTreeMap<u64, String>,
}

impl CidrSet {
    pub fn new(cluster: Cidr, mask: u8) -> Result<Self, CidrError> {
        let bits = if cluster.v6 { 128 } else { 32 };
        if mask < cluster.prefix || mask > bits || mask - cluster.prefix > 16 {
            return Err(CidrError::MaskSize {
                cidr: cluster.to_string(),
                mask,
            });
        }
        Ok(CidrSet {
            cluster,
            mask,
            max: 1u64 << (mask - cluster.prefix),
            next: 0,
            used: BTreeMap::new(),
        })
    }

    fn subnet(&self, index: u64) -> Cidr {
        let bits = if self.cluster.v6 { 128 } else { 32 };
        Cidr {
            base: self.cluster.base + (u128::from(index) << (bits - self.mask)),
            v6: self.cluster.v6,
            prefix: self.mask,
        }
    }

    /// The index of `cidr` if it is one of this set's subnets.
    fn index_of(&self, cidr: &Cidr) -> Option<u64> {
        let bits = if self.cluster.v6 { 128 } else { 32 };
        if cidr.v6 != self.cluster.v6 || cidr.prefix != self.mask || cidr.base < self.cluster.base {
            return None;
        }
        let index = (cidr.base - self.cluster.base) >> (bits - self.mask);
        u64::try_from(index).ok().filter(|i| *i < self.max)
    }

    /// Takes the next free subnet for `node`; None when the set is full.
    pub fn allocate(&mut self, node: &str) -> Option<Cidr> {
        for step in 0..self.max {
            let i = (self.next + step) % self.max;
            if let std::collections::btree_map::Entry::Vacant(e) = self.used.entry(i) {
                e.insert(node.to_string());
                self.next = (i + 1) % self.max;
                return Some(self.subnet(i));
            }
        }
        None
    }

    /// The subnet `node` holds here, if any.
    fn held_by(&self, node: &str) -> Option<Cidr> {
        self.used
            .iter()
            .find(|(_, n)| n.as_str() == node)
            .map(|(i, _)| self.subnet(*i))
    }

    /// Records `cidr` as `node`'s (an allocation found on a node); false when not ours.
    pub fn occupy(&mut self, cidr: &Cidr, node: &str) -> bool {
        match self.index_of(cidr) {
            Some(i) => {
                self.used.insert(i, node.to_string());
                true
            }
            None => false,
        }
    }

    /// Frees `cidr` if `node` holds it.
    pub fn release(&mut self, cidr: &Cidr, node: &str) {
        if let Some(i) = self.index_of(cidr) {
            if self.used.get(&i).map(String::as_str) == Some(node) {
                self.used.remove(&i);
            }
        }
    }
}

/// The allocator over the configured cluster CIDRs (one per family).
#[derive(Debug, Clone)]
pub struct Allocator {
    sets: Vec<CidrSet>,
}

impl Allocator {
    pub fn new(cfg: &NodeIpamConfig) -> Result<Self, CidrError> {
        let cidrs: Vec<Cidr> = cfg
            .cluster_cidrs
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?;
        let v6 = cidrs.iter().filter(|c| c.v6).count();
        if cidrs.is_empty() || cidrs.len() > 2 || v6 > 1 || cidrs.len() - v6 > 1 {
            return Err(CidrError::Families);
        }
        let sets = cidrs
            .into_iter()
            .map(|c| {
                let mask = if c.v6 {
                    cfg.node_cidr_mask_size_ipv6
                } else {
                    cfg.node_cidr_mask_size_ipv4
                };
                CidrSet::new(c, mask)
            })
            .collect::<Result<_, _>>()?;
        Ok(Allocator { sets })
    }

    /// Records the CIDRs a node already carries.
    pub fn occupy(&mut self, node: &str, pod_cidrs: &[String]) {
        for cidr in pod_cidrs.iter().filter_map(|s| s.parse::<Cidr>().ok()) {
            for set in &mut self.sets {
                if set.occupy(&cidr, node) {
                    break;
                }
            }
        }
    }

    /// One subnet per cluster CIDR for `node`, in the configured order; None (and nothing
    /// taken) when any set is full.
    /// A node that already holds a subnet of a set (its patch is not in the cache yet, or it
    /// carried only one family) gets that one again.
    pub fn allocate(&mut self, node: &str) -> Option<Vec<Cidr>> {
        let mut got = Vec::with_capacity(self.sets.len());
        let mut new = Vec::new();
        for i in 0..self.sets.len() {
            if let Some(c) = self.sets[i].held_by(node) {
                got.push(c);
                continue;
            }
            match self.sets[i].allocate(node) {
                Some(c) => {
                    got.push(c);
                    new.push((i, c));
                }
                None => {
                    for (i, c) in new {
                        self.sets[i].release(&c, node);
                    }
                    return None;
                }
            }
        }
        Some(got)
    }

    /// Frees the CIDRs `node` holds.
    pub fn release(&mut self, node: &str, pod_cidrs: &[String]) {
        for cidr in pod_cidrs.iter().filter_map(|s| s.parse::<Cidr>().ok()) {
            for set in &mut self.sets {
                set.release(&cidr, node);
            }
        }
    }
}

fn pod_cidrs(node: &Node) -> Vec<String> {
    let spec = node.spec.as_ref();
    match spec.and_then(|s| s.pod_cidrs.clone()) {
        Some(c) if !c.is_empty() => c,
        _ => spec.and_then(|s| s.pod_cidr.clone()).into_iter().collect(),
    }
}

struct State {
    client: Client,
    nodes: Store<Node>,
    recorder: Recorder,
    allocator: Mutex<Allocator>,
    /// Whether the allocations found on nodes have been taken.
    loaded: Mutex<bool>,
}

impl State {
    fn allocator(&self) -> std::sync::MutexGuard<'_, Allocator> {
        self.allocator.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs the controller until the node watch ends, with `ctx.node_ipam`. A bad CIDR setting
/// stops it at once, as upstream refuses to start.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let allocator = Allocator::new(&ctx.node_ipam).map_err(|e| {
        tracing::error!(controller = NAME, error = %e, "bad node IPAM settings");
        Error::MissingDependency {
            controller: NAME,
            what: "a valid --cluster-cidr and node CIDR mask size",
        }
    })?;
    let (nodes, events) = ctx.informer::<Node>(NAME, &client).await;
    let recorder = crate::events::recorder(client.clone(), "node-controller");
    let state = Arc::new(State {
        client,
        nodes: nodes.clone(),
        recorder,
        allocator: Mutex::new(allocator),
        loaded: Mutex::new(false),
    });
    let on_delete = state.clone();
    let events = futures::StreamExt::boxed(futures::StreamExt::inspect(events, move |ev| {
        if let watcher::Event::Delete(n) = ev {
            on_delete.allocator().release(&n.name_any(), &pod_cidrs(n));
        }
    }));
    let triggers = vec![on_objects(events, false, |n: &Node| {
        pod_cidrs(n).is_empty().then(|| ObjectRef::from_obj(n))
    })];
    drive(NAME, &ctx, nodes, triggers, state, reconcile).await
}

async fn reconcile(node: Arc<Node>, st: Arc<State>) -> Result<Action, Error> {
    let name = node.name_any();
    let allocated = {
        let mut loaded = st.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if !*loaded {
            let mut alloc = st.allocator();
            for n in st.nodes.state() {
                alloc.occupy(&n.name_any(), &pod_cidrs(&n));
            }
            *loaded = true;
        }
        let existing = pod_cidrs(&node);
        let mut alloc = st.allocator();
        if !existing.is_empty() {
            alloc.occupy(&name, &existing);
            return Ok(Action::await_change());
        }
        alloc.allocate(&name)
    };
    let Some(cidrs) = allocated else {
        publish(
            &st.recorder,
            &node.object_ref(&()),
            EventType::Normal,
            "CIDRNotAvailable",
            format!("Node {name} status is now: CIDRNotAvailable"),
        )
        .await;
        return Ok(Action::requeue(FULL_RETRY));
    };
    let strings: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
    let patch = json!({"spec": {"podCIDR": strings[0], "podCIDRs": strings}});
    let api = Api::<Node>::all(st.client.clone());
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::info!(controller = NAME, node = %name, cidrs = ?strings, "allocated pod CIDRs");
            Ok(Action::await_change())
        }
        Err(e) => {
            st.allocator().release(&name, &strings);
            if is_not_found(&e) {
                Ok(Action::await_change())
            } else {
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The CIDRs of a set's subnets in use.
    fn used(set: &CidrSet) -> BTreeSet<String> {
        set.used
            .keys()
            .map(|i| set.subnet(*i).to_string())
            .collect()
    }

    #[test]
    fn cidrs_parse_and_print() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("10.42.0.0/16", Ok("10.42.0.0/16")),
            ("10.42.7.9/16", Ok("10.42.0.0/16")),
            ("fd00:42::/48", Ok("fd00:42::/48")),
            ("10.42.0.0/33", Err(())),
            ("10.42.0.0", Err(())),
            ("nope/8", Err(())),
        ];
        for (input, want) in cases {
            let got = input.parse::<Cidr>().map(|c| c.to_string()).map_err(|_| ());
            assert_eq!(got.as_deref(), want.as_deref().map_err(|_| &()), "{input}");
        }
    }

    #[test]
    fn settings_are_validated() {
        let cfg = |cidrs: &[&str], v4: u8| NodeIpamConfig {
            cluster_cidrs: cidrs.iter().map(|s| s.to_string()).collect(),
            node_cidr_mask_size_ipv4: v4,
            node_cidr_mask_size_ipv6: 64,
        };
        let cases: &[(&str, NodeIpamConfig, bool)] = &[
            ("default", NodeIpamConfig::default(), true),
            ("dual-stack", cfg(&["10.42.0.0/16", "fd00::/48"], 24), true),
            ("two v4", cfg(&["10.42.0.0/16", "10.43.0.0/16"], 24), false),
            ("none", cfg(&[], 24), false),
            (
                "mask shorter than cluster",
                cfg(&["10.42.0.0/16"], 8),
                false,
            ),
            ("more than 16 bits", cfg(&["10.0.0.0/8"], 28), false),
        ];
        for (what, c, ok) in cases {
            assert_eq!(Allocator::new(c).is_ok(), *ok, "{what}");
        }
    }

    #[test]
    fn allocation_goes_in_order_keeps_existing_and_rotates_past_freed() {
        let cfg = NodeIpamConfig {
            cluster_cidrs: vec!["10.42.0.0/22".into()],
            ..Default::default()
        };
        let mut a = Allocator::new(&cfg).unwrap();
        // A restart: node b already holds 10.42.1.0/24.
        a.occupy("b", &["10.42.1.0/24".into()]);
        let steps: &[(&str, &str, Option<&str>)] = &[
            ("alloc", "a", Some("10.42.0.0/24")),
            ("alloc", "c", Some("10.42.2.0/24")),
            ("release", "a", None),
            ("alloc", "d", Some("10.42.3.0/24")),
            // The cursor wraps to the freed subnet.
            ("alloc", "e", Some("10.42.0.0/24")),
            ("alloc", "f", None),
            // Asked again before its patch is seen, a node gets what it holds.
            ("alloc", "c", Some("10.42.2.0/24")),
        ];
        for (op, node, want) in steps {
            match *op {
                "alloc" => {
                    let got = a.allocate(node).map(|v| v[0].to_string());
                    assert_eq!(got.as_deref(), *want, "{op} {node}");
                }
                _ => a.release(node, &["10.42.0.0/24".into()]),
            }
        }
        assert_eq!(used(&a.sets[0]).len(), 4);
        // Only the holder frees a subnet.
        a.release("zzz", &["10.42.1.0/24".into()]);
        assert_eq!(used(&a.sets[0]).len(), 4);
    }

    #[test]
    fn dual_stack_nodes_get_one_cidr_per_family() {
        let cfg = NodeIpamConfig {
            cluster_cidrs: vec!["10.42.0.0/16".into(), "fd00:42::/48".into()],
            ..Default::default()
        };
        let mut a = Allocator::new(&cfg).unwrap();
        let got: Vec<Vec<String>> = ["a", "b"]
            .iter()
            .map(|n| {
                a.allocate(n)
                    .unwrap()
                    .iter()
                    .map(|c| c.to_string())
                    .collect()
            })
            .collect();
        assert_eq!(
            got,
            [
                vec!["10.42.0.0/24", "fd00:42::/64"],
                vec!["10.42.1.0/24", "fd00:42:0:1::/64"]
            ]
        );
    }

    #[test]
    fn a_full_family_takes_nothing_from_the_other() {
        let cfg = NodeIpamConfig {
            cluster_cidrs: vec!["10.42.0.0/24".into(), "fd00:42::/63".into()],
            node_cidr_mask_size_ipv4: 25,
            node_cidr_mask_size_ipv6: 64,
        };
        let mut a = Allocator::new(&cfg).unwrap();
        a.occupy("x", &["fd00:42::/64".into(), "fd00:42:0:1::/64".into()]);
        assert!(a.allocate("n").is_none());
        assert!(used(&a.sets[0]).is_empty());
    }
}
