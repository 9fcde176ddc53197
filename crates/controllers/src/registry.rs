//! The controllers this crate has, as `{name, start}` entries, upstream's `--controllers`
//! selection syntax, and [`start_all`], which spawns the selected ones.
//!
//! `--controllers` is a comma-separated list: `*` turns on every controller that is on by
//! default, `foo` turns `foo` on, `-foo` turns it off; the first entry that names a
//! controller decides, as upstream's `IsControllerEnabled`. Names are the short flag names
//! (`serviceaccount`, ...); upstream's canonical names (`serviceaccount-controller`, ...) are
//! accepted as aliases. An unknown name is an error with upstream's message.

use std::str::FromStr;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::{
    clusterrole_aggregation, cronjob, csrapproving, csrsigning, daemonset, deployment, disruption,
    endpoints, endpointslice, endpointslicemirroring, garbagecollector, job, namespace, nodeipam,
    nodelifecycle, podgc, replicaset, resourcequota, root_ca_cert_publisher, serviceaccount,
    serviceaccount_token, statefulset, tainteviction, ttlafterfinished, ControllerContext, Error,
};

/// Starts a controller: the future runs it until its watches end.
pub type StartFn =
    fn(kube::Client, Arc<ControllerContext>) -> BoxFuture<'static, Result<(), Error>>;

/// One controller the manager can run.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// The name `--controllers` uses.
    pub name: &'static str,
    /// Other names accepted for it (upstream's canonical names).
    pub aliases: &'static [&'static str],
    /// Whether `*` leaves it off.
    pub disabled_by_default: bool,
    /// The kube-system service account the controller acts as (upstream's
    /// `--use-service-account-credentials`); empty for the controller manager's own identity.
    pub service_account: &'static str,
    pub start: StartFn,
}

/// Every controller, in start order.
pub const REGISTRY: &[Registration] = &[
    Registration {
        name: serviceaccount::NAME,
        aliases: &["serviceaccount-controller"],
        disabled_by_default: false,
        service_account: "service-account-controller",
        start: |c, x| Box::pin(serviceaccount::run(c, x)),
    },
    Registration {
        name: serviceaccount_token::NAME,
        aliases: &["serviceaccount-token-controller"],
        disabled_by_default: false,
        service_account: "",
        start: |c, x| Box::pin(serviceaccount_token::run(c, x)),
    },
    Registration {
        name: root_ca_cert_publisher::NAME,
        aliases: &["root-ca-certificate-publisher-controller"],
        disabled_by_default: false,
        service_account: "root-ca-cert-publisher",
        start: |c, x| Box::pin(root_ca_cert_publisher::run(c, x)),
    },
    Registration {
        name: clusterrole_aggregation::NAME,
        aliases: &["clusterrole-aggregation-controller"],
        disabled_by_default: false,
        service_account: "clusterrole-aggregation-controller",
        start: |c, x| Box::pin(clusterrole_aggregation::run(c, x)),
    },
    Registration {
        name: resourcequota::NAME,
        aliases: &["resourcequota-controller"],
        disabled_by_default: false,
        service_account: "resourcequota-controller",
        start: |c, x| Box::pin(resourcequota::run(c, x)),
    },
    Registration {
        name: csrapproving::NAME,
        aliases: &["certificatesigningrequest-approving-controller"],
        disabled_by_default: false,
        service_account: "certificate-controller",
        start: |c, x| Box::pin(csrapproving::run(c, x)),
    },
    Registration {
        name: csrsigning::NAME,
        aliases: &["certificatesigningrequest-signing-controller"],
        disabled_by_default: false,
        service_account: "certificate-controller",
        start: |c, x| Box::pin(csrsigning::run(c, x)),
    },
    Registration {
        name: cronjob::NAME,
        aliases: &["cronjob-controller"],
        disabled_by_default: false,
        service_account: "cronjob-controller",
        start: |c, x| Box::pin(cronjob::run(c, x)),
    },
    Registration {
        name: endpointslice::NAME,
        aliases: &["endpointslice-controller"],
        disabled_by_default: false,
        service_account: "endpointslice-controller",
        start: |c, x| Box::pin(endpointslice::run(c, x)),
    },
    Registration {
        name: endpoints::NAME,
        aliases: &["endpoints-controller"],
        disabled_by_default: false,
        service_account: "endpoint-controller",
        start: |c, x| Box::pin(endpoints::run(c, x)),
    },
    Registration {
        name: endpointslicemirroring::NAME,
        aliases: &["endpointslice-mirroring-controller"],
        disabled_by_default: false,
        service_account: "endpointslicemirroring-controller",
        start: |c, x| Box::pin(endpointslicemirroring::run(c, x)),
    },
    Registration {
        name: nodelifecycle::NAME,
        aliases: &["node-lifecycle-controller"],
        disabled_by_default: false,
        service_account: "node-controller",
        start: |c, x| Box::pin(nodelifecycle::run(c, x)),
    },
    Registration {
        name: tainteviction::NAME,
        aliases: &[],
        disabled_by_default: false,
        service_account: "node-controller",
        start: |c, x| Box::pin(tainteviction::run(c, x)),
    },
    Registration {
        name: nodeipam::NAME,
        aliases: &["node-ipam-controller"],
        disabled_by_default: false,
        service_account: "node-controller",
        start: |c, x| Box::pin(nodeipam::run(c, x)),
    },
    Registration {
        name: podgc::NAME,
        aliases: &["pod-garbage-collector-controller"],
        disabled_by_default: false,
        service_account: "pod-garbage-collector",
        start: |c, x| Box::pin(podgc::run(c, x)),
    },
    Registration {
        name: ttlafterfinished::NAME,
        aliases: &["ttl-after-finished-controller"],
        disabled_by_default: false,
        service_account: "ttl-after-finished-controller",
        start: |c, x| Box::pin(ttlafterfinished::run(c, x)),
    },
    Registration {
        name: garbagecollector::NAME,
        aliases: &["garbage-collector-controller"],
        disabled_by_default: false,
        service_account: "generic-garbage-collector",
        start: |c, x| Box::pin(garbagecollector::run(c, x)),
    },
    Registration {
        name: namespace::NAME,
        aliases: &["namespace-controller"],
        disabled_by_default: false,
        service_account: "namespace-controller",
        start: |c, x| Box::pin(namespace::run(c, x)),
    },
    Registration {
        name: job::NAME,
        aliases: &["job-controller"],
        disabled_by_default: false,
        service_account: "job-controller",
        start: |c, x| Box::pin(job::run(c, x)),
    },
    Registration {
        name: disruption::NAME,
        aliases: &["disruption-controller"],
        disabled_by_default: false,
        service_account: "disruption-controller",
        start: |c, x| Box::pin(disruption::run(c, x)),
    },
    Registration {
        name: replicaset::NAME,
        aliases: &["replicaset-controller"],
        disabled_by_default: false,
        service_account: "replicaset-controller",
        start: |c, x| Box::pin(replicaset::run(c, x)),
    },
    Registration {
        name: replicaset::RC_NAME,
        aliases: &["replicationcontroller-controller"],
        disabled_by_default: false,
        service_account: "replication-controller",
        start: |c, x| Box::pin(replicaset::run_replication_controllers(c, x)),
    },
    Registration {
        name: deployment::NAME,
        aliases: &["deployment-controller"],
        disabled_by_default: false,
        service_account: "deployment-controller",
        start: |c, x| Box::pin(deployment::run(c, x)),
    },
    Registration {
        name: daemonset::NAME,
        aliases: &["daemonset-controller"],
        disabled_by_default: false,
        service_account: "daemon-set-controller",
        start: |c, x| Box::pin(daemonset::run(c, x)),
    },
    Registration {
        name: statefulset::NAME,
        aliases: &["statefulset-controller"],
        disabled_by_default: false,
        service_account: "statefulset-controller",
        start: |c, x| Box::pin(statefulset::run(c, x)),
    },
];

fn find(name: &str) -> Option<&'static Registration> {
    REGISTRY
        .iter()
        .find(|r| r.name == name || r.aliases.contains(&name))
}

/// Why a `--controllers` value was refused: it names controllers that do not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.unknown))]
pub struct ControllersError {
    /// The unknown names, without their `-`.
    pub unknown: Vec<String>,
}

/// Upstream's aggregate of `"%q is not in the list of known controllers"` errors.
fn render(unknown: &[String]) -> String {
    let msgs: Vec<String> = unknown
        .iter()
        .map(|n| format!("{n:?} is not in the list of known controllers"))
        .collect();
    match msgs.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Which controllers to run: upstream's `--controllers` list, with aliases resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controllers {
    entries: Vec<String>,
}

impl Default for Controllers {
    /// `*`: every controller that is on by default (upstream's default).
    fn default() -> Self {
        Controllers {
            entries: vec!["*".into()],
        }
    }
}

impl Controllers {
    /// Parses a comma-separated list (an empty string turns everything off).
    pub fn parse(s: &str) -> Result<Self, ControllersError> {
        Self::from_list(s.split(',').map(str::trim).filter(|e| !e.is_empty()))
    }

    /// Builds the selection from list entries (`*`, `name`, `-name`).
    pub fn from_list<I, S>(entries: I) -> Result<Self, ControllersError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        let mut unknown = Vec::new();
        for entry in entries {
            let entry = entry.as_ref();
            if entry == "*" {
                out.push(entry.to_string());
                continue;
            }
            let (negated, name) = match entry.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, entry),
            };
            match find(name) {
                Some(r) if negated => out.push(format!("-{}", r.name)),
                Some(r) => out.push(r.name.to_string()),
                None => unknown.push(name.to_string()),
            }
        }
        if unknown.is_empty() {
            Ok(Controllers { entries: out })
        } else {
            Err(ControllersError { unknown })
        }
    }

    /// Whether controller `name` (or an alias) runs: the first entry naming it decides;
    /// otherwise `*` turns on those not disabled by default.
    pub fn is_enabled(&self, name: &str) -> bool {
        let Some(reg) = find(name) else {
            return false;
        };
        let negated = format!("-{}", reg.name);
        let mut star = false;
        for e in &self.entries {
            if e == reg.name {
                return true;
            }
            if *e == negated {
                return false;
            }
            star |= e == "*";
        }
        star && !reg.disabled_by_default
    }
}

impl FromStr for Controllers {
    type Err = ControllersError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Spawns every enabled controller on the current runtime. A controller that cannot start
/// (e.g. `csrsigning` without a signer) logs why and its task ends; one that fails later logs
/// the error. Aborting a handle stops its controller.
/// The controller manager's own identity.
pub const CONTROLLER_MANAGER: &str = "system:kube-controller-manager";

/// The identity a controller acts as: its kube-system service account (upstream's
/// `--use-service-account-credentials`), or the controller manager's own for an empty name.
pub fn identity(service_account: &str) -> rkube_api::rbac::User {
    let user = |name: String, groups: &[&str]| rkube_api::rbac::User {
        name,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    };
    if service_account.is_empty() {
        return user(CONTROLLER_MANAGER.to_string(), &["system:authenticated"]);
    }
    user(
        format!("system:serviceaccount:kube-system:{service_account}"),
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
            "system:authenticated",
        ],
    )
}

pub fn start_all(
    client_for: &dyn Fn(&str) -> kube::Client,
    ctx: Arc<ControllerContext>,
    enabled: &Controllers,
) -> Vec<tokio::task::JoinHandle<()>> {
    REGISTRY
        .iter()
        .filter(|r| {
            let on = enabled.is_enabled(r.name);
            if !on {
                tracing::info!(controller = r.name, "controller disabled");
            }
            on
        })
        .map(|r| {
            let name = r.name;
            let run = (r.start)(client_for(r.service_account), ctx.clone());
            tokio::spawn(async move {
                match run.await {
                    Ok(()) => {}
                    Err(e @ Error::MissingDependency { .. }) => {
                        tracing::warn!(controller = name, error = %e, "controller not started")
                    }
                    Err(e) => tracing::error!(controller = name, error = %e, "controller failed"),
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_follows_upstreams_rules() {
        // Every controller `*` turns on: those not disabled by default.
        let all: Vec<&str> = REGISTRY
            .iter()
            .filter(|r| !r.disabled_by_default)
            .map(|r| r.name)
            .collect();
        let without_signing: Vec<&str> = all
            .iter()
            .copied()
            .filter(|n| *n != csrsigning::NAME)
            .collect();
        let cases: &[(&str, &[&str])] = &[
            ("*", all.as_slice()),
            ("", &[]),
            ("csrsigning", &["csrsigning"]),
            ("*,-csrsigning", without_signing.as_slice()),
            ("-csrsigning,*", without_signing.as_slice()),
            ("csrsigning,-csrsigning", &["csrsigning"]),
            ("-csrsigning,csrsigning", &[]),
            ("serviceaccount-controller", &["serviceaccount"]),
            (
                "*,-certificatesigningrequest-signing-controller",
                without_signing.as_slice(),
            ),
            (
                " serviceaccount , root-ca-cert-publisher ",
                &["serviceaccount", "root-ca-cert-publisher"],
            ),
        ];
        for (flag, want) in cases {
            let c = Controllers::parse(flag).unwrap();
            let on: Vec<&str> = REGISTRY
                .iter()
                .map(|r| r.name)
                .filter(|n| c.is_enabled(n))
                .collect();
            assert_eq!(on, *want, "--controllers={flag:?}");
        }
    }

    #[test]
    fn default_is_star() {
        assert_eq!(Controllers::default(), Controllers::parse("*").unwrap());
        assert!(Controllers::default().is_enabled("csrapproving"));
        assert!(!Controllers::default().is_enabled("no-such-controller"));
    }

    #[test]
    fn unknown_names_are_refused_with_upstreams_message() {
        let one = Controllers::parse("*,-bogus").unwrap_err();
        assert_eq!(
            one.to_string(),
            "\"bogus\" is not in the list of known controllers"
        );
        let two: ControllersError = "a,csrsigning,b".parse::<Controllers>().unwrap_err();
        assert_eq!(
            two.to_string(),
            "[\"a\" is not in the list of known controllers, \"b\" is not in the list of known controllers]"
        );
    }

    #[test]
    fn registry_names_and_aliases_are_unique() {
        let mut names: Vec<&str> = REGISTRY
            .iter()
            .flat_map(|r| std::iter::once(r.name).chain(r.aliases.iter().copied()))
            .collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
