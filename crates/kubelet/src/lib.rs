//! rkube's kubelet: registers its node, watches the pods bound to it, and drives a CRI
//! runtime until what runs matches their specs, reporting status back.
//!
//! Pure decision cores (what to do for a pod given what the runtime shows; what its status
//! is) sit beside thin drivers that call CRI and the API.

pub mod cgroups;
pub mod cni;
pub mod containerd;
pub mod cri;
pub mod events;
pub mod images;
pub mod import;
pub mod kubelet;
pub mod labels;
pub mod node;
pub mod oci;
pub mod pause;
pub mod pod;
pub mod probes;
pub mod server;
pub mod static_pods;
pub mod volumes;
