//! The real kubectl against `rkube server`: every `kubectl.1.2x`/`kubectl.1.3x` build beside
//! the `kubectl` on PATH runs the same script, in its own namespace, and each command must
//! succeed with the output upstream gives.
//!
//! In CI (`CI=true`) a machine without any kubectl build fails the test rather than skipping.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

/// The kubectl builds on this machine: `kubectl.1.NN` beside the `kubectl` on PATH.
fn kubectl_builds() -> Vec<PathBuf> {
    let Ok(out) = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output()
    else {
        return Vec::new();
    };
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if path.is_empty() {
        return Vec::new();
    }
    let Some(dir) = Path::new(&path).parent() else {
        return Vec::new();
    };
    let mut builds: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with("kubectl.1.2") || n.starts_with("kubectl.1.3")
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    builds.sort();
    // RKUBE_KUBECTL_ONLY=1.33 runs one build, for a quick local run.
    if let Ok(only) = std::env::var("RKUBE_KUBECTL_ONLY") {
        builds.retain(|b| b.to_string_lossy().ends_with(&format!("kubectl.{only}")));
    }
    builds
}

struct Kubectl<'a> {
    bin: &'a Path,
    kubeconfig: &'a Path,
    home: PathBuf,
    namespace: String,
}

impl Kubectl<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin);
        c.env("KUBECONFIG", self.kubeconfig)
            .env("HOME", &self.home)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args);
        c
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, &[], None)
    }

    fn ok_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> String {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("run kubectl");
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            pipe.write_all(input.as_bytes()).expect("stdin");
        }
        let out = child.wait_with_output().expect("kubectl output");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "{} {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}",
            self.bin.display()
        );
        stdout
    }
}

fn manifest(ns: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox:1.36
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {ns}
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
data:
  mode: fast
---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  namespace: {ns}
  labels:
    app: solo
spec:
  containers:
  - name: main
    image: busybox:1.36
"#
    )
}

/// Waits until the service-account controller has made the namespace's `default` account:
/// as upstream, pods are refused in a namespace until it exists.
fn wait_for_default_account(k: &Kubectl<'_>) {
    wait_until(
        k,
        &["get", "serviceaccount", "default", "-o", "name"],
        "serviceaccount/default",
    );
}

/// Runs `kubectl args` until it succeeds printing `want` (trimmed), for at most 30 s.
fn wait_until(k: &Kubectl<'_>, args: &[&str], want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = k.command(args).output().expect("run kubectl");
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl {args:?} in {} printed {got:?}, not {want:?}, for 30 s",
            k.namespace
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `kubectl auth`: the admin kubeconfig's identity and its permissions, over HTTPS with the
/// client certificate `rkube server` wrote.
fn auth_script(k: &Kubectl<'_>, version: &str) {
    assert_eq!(k.ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");
    let list = k.ok(&["auth", "can-i", "--list"]);
    assert!(list.lines().any(|l| l.starts_with("*.*")), "{list}");
    // `auth whoami` reads SelfSubjectReview v1 from 1.28 on (1.27 asks for v1beta1, which a
    // 1.33 server no longer serves).
    let minor: u32 = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(u32::MAX);
    if minor >= 28 {
        let who = k.ok(&["auth", "whoami"]);
        assert!(
            who.contains("system:admin") && who.contains("system:masters"),
            "{who}"
        );
    }
}

fn script(k: &Kubectl<'_>) {
    let ns = k.namespace.clone();
    let full = manifest(&ns);
    let namespace_only = full.split("\n---\n").next().unwrap_or_default().to_string();
    let out = k.ok_with(&["apply", "-f", "-"], &[], Some(&namespace_only));
    assert!(out.contains(&format!("namespace/{ns} created")), "{out}");
    wait_for_default_account(k);
    let out = k.ok_with(&["apply", "-f", "-"], &[], Some(&full));
    for want in [
        format!("namespace/{ns} unchanged"),
        "deployment.apps/web created".into(),
        "service/web created".into(),
        "configmap/settings created".into(),
        "pod/solo created".into(),
    ] {
        assert!(out.contains(&want), "apply: want {want:?} in {out}");
    }
    // Applying again changes nothing.
    let again = k.ok_with(&["apply", "-f", "-"], &[], Some(&manifest(&ns)));
    assert!(again.contains("deployment.apps/web unchanged"), "{again}");

    let yaml = k.ok(&["get", "deployment", "web", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("replicas: 2"),
        "{yaml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "configmap", "settings", "-o", "json"])).expect("json");
    assert_eq!(json["data"]["mode"], "fast");
    let wide = k.ok(&["get", "pods", "-o", "wide"]);
    let header = wide.lines().next().unwrap_or_default();
    for col in [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ] {
        assert!(header.contains(col), "wide header {header:?} lacks {col}");
    }
    assert!(
        wide.contains("solo") && wide.contains("0/1") && wide.contains("Pending"),
        "{wide}"
    );
    let names = k.ok(&["get", "deployments,services", "-o", "name"]);
    assert!(
        names.contains("deployment.apps/web") && names.contains("service/web"),
        "{names}"
    );
    let all = k.ok(&["get", "all"]);
    for want in ["pod/solo", "service/web", "deployment.apps/web"] {
        assert!(all.contains(want), "get all lacks {want}: {all}");
    }
    let pods = k.ok(&["get", "pods"]);
    let header = pods.lines().next().unwrap_or_default();
    assert!(
        header.split_whitespace().collect::<Vec<_>>()
            == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{header}"
    );

    let described = k.ok(&["describe", "deployment", "web"]);
    assert!(
        described.contains("Name:") && described.contains("web") && described.contains("8080/TCP"),
        "{described}"
    );
    let described = k.ok(&["describe", "pod", "solo"]);
    assert!(described.contains("busybox:1.36"), "{described}");
    events_script(k);

    let out = k.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"busybox:1.37"}]}}}}"#,
    ]);
    assert!(out.contains("deployment.apps/web patched"), "{out}");
    let ports = k.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].ports[0].containerPort}",
    ]);
    assert_eq!(ports.trim(), "8080", "strategic merge kept the ports");
    // The deployment controller (as its own service account, under RBAC) records the new
    // revision and the rollout's status: with no kubelet the old pods never become available,
    // so only the one surge pod (25% of 2, rounded up) is of the new template.
    let status = "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision} \
                  {.status.observedGeneration} {.status.replicas} {.status.updatedReplicas}";
    wait_until(k, &["get", "deployment", "web", "-o", status], "2 2 3 1");
    let history = k.ok(&["rollout", "history", "deployment", "web"]);
    let revisions: Vec<u32> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(revisions, [1, 2], "rollout history: {history}");
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"extra":"1"}}"#,
    ]);
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/data/mode","value":"slow"}]"#,
    ]);
    let data = k.ok(&[
        "get",
        "configmap",
        "settings",
        "-o",
        "jsonpath={.data.mode}/{.data.extra}",
    ]);
    assert_eq!(data.trim(), "slow/1");

    assert!(k
        .ok(&["label", "pod", "solo", "tier=front"])
        .contains("pod/solo labeled"));
    assert!(k
        .ok(&["annotate", "pod", "solo", "note=hello"])
        // kubectl 1.27 itself prints "annotate" rather than "annotated".
        .contains("pod/solo annotate"));
    let selected = k.ok(&["get", "pods", "-l", "tier=front", "-o", "name"]);
    assert_eq!(selected.trim(), "pod/solo");

    assert!(k
        .ok(&["scale", "deployment", "web", "--replicas=4"])
        .contains("deployment.apps/web scaled"));
    let replicas = k.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas.trim(), "4");

    let out = k.ok_with(
        &["edit", "configmap", "settings"],
        &[("EDITOR", "sed -i s/slow/edited/")],
        None,
    );
    assert!(out.contains("configmap/settings edited"), "{out}");
    let mode = k.ok(&[
        "get",
        "configmap",
        "settings",
        "-o",
        "jsonpath={.data.mode}",
    ]);
    assert_eq!(mode.trim(), "edited");

    let ssa = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: \"1\"\n";
    let out = k.ok_with(&["apply", "--server-side", "-f", "-"], &[], Some(ssa));
    assert!(
        out.contains("configmap/applied serverside-applied"),
        "{out}"
    );

    watch_sees_a_new_pod(k);

    let explained = k.ok(&["explain", "pods.spec.containers"]);
    assert!(
        explained.contains("KIND:")
            && explained.contains("Pod")
            && explained.contains("containers"),
        "{explained}"
    );
    let resources = k.ok(&["api-resources"]);
    assert!(
        resources.contains("deployments")
            && resources.contains("deploy")
            && resources.contains("apps/v1"),
        "{resources}"
    );
    let versions = k.ok(&["api-versions"]);
    assert!(
        versions.lines().any(|l| l == "apps/v1") && versions.lines().any(|l| l == "v1"),
        "{versions}"
    );

    let out = k.ok(&["delete", "pod", "solo"]);
    assert!(out.contains("pod \"solo\" deleted"), "{out}");
    let out = k.ok(&["delete", "deployment", "web"]);
    assert!(out.contains("deployment.apps \"web\" deleted"), "{out}");
    assert!(k
        .ok(&["get", "deployments", "-o", "name"])
        .trim()
        .is_empty());
}

/// An event written through events.k8s.io/v1, as the controllers write theirs, shows through
/// core v1 (`kubectl get events`, `kubectl describe`) and through both `kubectl events` and
/// `kubectl get events.v1.events.k8s.io`.
fn events_script(k: &Kubectl<'_>) {
    let ns = k.namespace.clone();
    let uid = k.ok(&["get", "pod", "solo", "-o", "jsonpath={.metadata.uid}"]);
    let event = format!(
        r#"apiVersion: events.k8s.io/v1
kind: Event
metadata:
  name: solo.compat
  namespace: {ns}
eventTime: "2025-01-01T00:00:00.000000Z"
reportingController: compat-controller
reportingInstance: compat-controller-1
action: Check
reason: CompatChecked
type: Normal
note: checked through events.k8s.io
regarding:
  apiVersion: v1
  kind: Pod
  namespace: {ns}
  name: solo
  uid: {uid}
"#,
        uid = uid.trim()
    );
    let out = k.ok_with(&["create", "-f", "-"], &[], Some(&event));
    assert!(
        out.contains("event.events.k8s.io/solo.compat created"),
        "{out}"
    );
    let row = |out: &str| {
        out.lines().any(|l| {
            l.contains("CompatChecked")
                && l.contains("pod/solo")
                && l.contains("checked through events.k8s.io")
        })
    };
    let header = |out: &str| {
        out.lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    };
    for args in [
        &["get", "events"][..],
        &["get", "events.v1.events.k8s.io"],
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=solo",
        ],
        &[
            "get",
            "events.events.k8s.io",
            "--field-selector",
            "regarding.name=solo",
        ],
    ] {
        let out = k.ok(args);
        assert!(header(&out) && row(&out), "kubectl {args:?}:\n{out}");
    }
    let message = k.ok(&[
        "get",
        "event",
        "solo.compat",
        "-o",
        "jsonpath={.message}/{.involvedObject.name}/{.reportingComponent}",
    ]);
    assert_eq!(
        message.trim(),
        "checked through events.k8s.io/solo/compat-controller"
    );
    let described = k.ok(&["describe", "pod", "solo"]);
    assert!(
        described.lines().any(|l| l.contains("CompatChecked")
            && l.contains("compat-controller")
            && l.contains("checked through events.k8s.io")),
        "describe pod solo shows no event:\n{described}"
    );
    let out = k.ok(&["events", "--for", "pod/solo"]);
    assert!(
        out.lines().any(|l| l.contains("CompatChecked")
            && l.contains("Pod/solo")
            && l.contains("checked through events.k8s.io")),
        "kubectl events:\n{out}"
    );
}

fn watch_sees_a_new_pod(k: &Kubectl<'_>) {
    let mut child = k
        .command(&["get", "pods", "-w", "-o", "name"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The watch is open once it has printed the existing pods.
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("get -w printed the existing pods");
    assert!(first.starts_with("pod/"), "{first}");
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: watched\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n";
    k.ok_with(&["apply", "-f", "-"], &[], Some(pod));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = false;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.trim() == "pod/watched" => {
                seen = true;
                break;
            }
            _ => {}
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "kubectl get -w did not show the new pod");
}

#[test]
fn every_kubectl_build_runs_the_script() {
    let builds = kubectl_builds();
    if builds.is_empty() {
        assert!(
            std::env::var("CI").is_err(),
            "no kubectl builds found beside kubectl on PATH"
        );
        eprintln!("no kubectl builds on this machine; skipping outside CI");
        return;
    }
    let server = Server::start(&[]);
    for bin in &builds {
        let version = bin
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("kubectl")
            .replace("kubectl.", "");
        let home = tempfile::tempdir().expect("home");
        let k = Kubectl {
            bin,
            kubeconfig: &server.kubeconfig,
            home: home.path().to_path_buf(),
            namespace: format!("compat-{}", version.replace('.', "-")),
        };
        eprintln!("running the kubectl script with {}", bin.display());
        script(&k);
        auth_script(&k, &version);
    }
}
