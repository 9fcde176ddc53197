//! The kubelet's HTTPS server against a real containerd, reached through a real API server:
//! `pods/log`, `pods/exec`, `pods/attach`, `pods/portforward` and `nodes/proxy` with
//! kube-rs and with every kubectl build on the machine (1.27..1.33: SPDY for the older
//! ones, WebSocket v5 and SPDY-over-WebSocket for the newer), and the kubelet's own
//! authentication and authorization.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::apiserver::{kubectl_builds, kubectl_minor, KUBELET_CLIENT_USER};
use common::node::{sh, wait_for, Spec, TestNode};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{AttachParams, LogParams};
use kube::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LONG: Duration = Duration::from_secs(60);

/// Awaits `fut`, failing the test if it takes longer than [`LONG`].
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LONG, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn kubectl(bin: &Path, node: &TestNode, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.env("KUBECONFIG", &node.api.kubeconfig)
        .env("HOME", node.api.dir.path())
        .args(["--namespace", "default"])
        .args(args)
        .stdin(Stdio::null());
    c
}

/// Runs kubectl to the end with `stdin`; (exit code, stdout, stderr).
fn run(mut cmd: Command, stdin: Option<&[u8]>) -> (i32, String, String) {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn kubectl");
    if let Some(input) = stdin {
        let mut w = child.stdin.take().expect("stdin");
        w.write_all(input).expect("write stdin");
    }
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut out = String::new();
            let mut err = String::new();
            child
                .stdout
                .take()
                .expect("stdout")
                .read_to_string(&mut out)
                .expect("read stdout");
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err)
                .expect("read stderr");
            return (status.code().unwrap_or(-1), out, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kubectl {cmd:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A long-running kubectl whose output lines arrive on a channel; killed on drop.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// kubectl's stdin, kept open (attach ends when its input does).
    stdin: Option<std::process::ChildStdin>,
}

impl Running {
    /// Starts kubectl with `stdin` written to it and left open.
    fn spawn_interactive(mut cmd: Command, stdin: &[u8]) -> Running {
        cmd.stdin(Stdio::piped());
        let mut r = Running::spawn(cmd, None);
        let mut w = r.child.stdin.take().expect("stdin");
        w.write_all(stdin).expect("write stdin");
        w.flush().expect("flush");
        r.stdin = Some(w);
        r
    }

    fn spawn(mut cmd: Command, stdin: Option<&[u8]>) -> Running {
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(input) = stdin {
            let mut w = child.stdin.take().expect("stdin");
            w.write_all(input).expect("write stdin");
            // dropping `w` closes kubectl's stdin
        }
        let (tx, rx) = mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
            stdin: None,
        }
    }

    /// Waits for a line `matches` accepts; returns it.
    fn wait_line(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.seen.iter().find(|l| matches(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + LONG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no {what} in kubectl's output: {:?}", self.seen),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kubelet's `/metrics` through the API server's `nodes/proxy`.
async fn kubelet_metrics(node: &TestNode) -> String {
    let req = http::Request::get(format!("/api/v1/nodes/{}/proxy/metrics", node.name))
        .body(Vec::new())
        .expect("request");
    node.api
        .admin
        .request_text(req)
        .await
        .expect("kubelet metrics")
}

/// The value of a counter line in a text exposition (0 when absent).
fn counter(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0)
}

const TRANSLATED_EXEC: &str = "kubelet_websocket_streaming_requests_total{request_type=\"exec\"}";
const TUNNELLED_PORT_FORWARD: &str =
    "kubelet_websocket_streaming_requests_total{request_type=\"portforward\"}";

/// The logger's output without its one stderr line (the runtime interleaves the two
/// streams as it reads them).
fn without_stderr(log: &str) -> String {
    log.lines()
        .filter(|l| *l != "oops")
        .map(|l| format!("{l}\n"))
        .collect()
}

const LOGGER: &str = "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; \
                      i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_reach_kube_rs_and_every_kubectl_through_the_api_server() {
    if !common::prerequisites() {
        return;
    }
    let node = TestNode::start().await;
    let mut logger = node.run_pod("logger", &[sh("c", LOGGER)]).await;
    let pods: Api<Pod> = Api::namespaced(node.api.admin.clone(), "default");
    wait_for("the logger's ticks", LONG, || async {
        pods.logs("logger", &LogParams::default())
            .await
            .is_ok_and(|l| l.contains("tick 3\n"))
    })
    .await;

    let all = pods
        .logs("logger", &LogParams::default())
        .await
        .expect("logs");
    // stdout and stderr are separate pipes: their lines interleave as the runtime reads them
    let stdout: Vec<&str> = all.lines().filter(|l| *l != "oops").take(6).collect();
    assert_eq!(
        stdout,
        ["line 1", "line 2", "line 3", "line 4", "line 5", "tick 1"],
        "{all}"
    );
    assert_eq!(all.lines().filter(|l| *l == "oops").count(), 1, "{all}");
    // the first lines are more than a second old once tick 8 is out (0.2 s apart)
    wait_for("tick 8", LONG, || async {
        pods.logs("logger", &LogParams::default())
            .await
            .is_ok_and(|l| l.contains("tick 8\n"))
    })
    .await;
    let tail = pods
        .logs(
            "logger",
            &LogParams {
                tail_lines: Some(2),
                ..Default::default()
            },
        )
        .await
        .expect("tail");
    assert_eq!(tail.lines().count(), 2, "{tail}");
    assert!(tail.lines().all(|l| l.starts_with("tick ")), "{tail}");
    let limited = pods
        .logs(
            "logger",
            &LogParams {
                limit_bytes: Some(10),
                ..Default::default()
            },
        )
        .await
        .expect("limit");
    assert_eq!(limited, all[..10], "the log's first 10 bytes");
    let stamped = pods
        .logs(
            "logger",
            &LogParams {
                timestamps: true,
                tail_lines: Some(3),
                ..Default::default()
            },
        )
        .await
        .expect("timestamps");
    for line in stamped.lines() {
        let (ts, text) = line.split_once(' ').expect("timestamp and text");
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{line}");
        assert_eq!(ts.len(), "2024-01-01T00:00:00.000000000Z".len(), "{line}");
        assert!(text.starts_with("tick "), "{line}");
    }
    let recent = pods
        .logs(
            "logger",
            &LogParams {
                since_seconds: Some(1),
                ..Default::default()
            },
        )
        .await
        .expect("since");
    assert!(!recent.contains("line 1"), "{recent}");
    assert!(recent.contains("tick"), "{recent}");

    // follow: new lines keep arriving on one response
    {
        use futures::{AsyncBufReadExt, StreamExt};
        let stream = pods
            .log_stream(
                "logger",
                &LogParams {
                    follow: true,
                    tail_lines: Some(1),
                    ..Default::default()
                },
            )
            .await
            .expect("follow");
        let mut lines = stream.lines();
        let first = lines.next().await.expect("line").expect("ok");
        let n: u64 = first
            .strip_prefix("tick ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{first}"));
        let next = lines.next().await.expect("line").expect("ok");
        assert_eq!(next, format!("tick {}", n + 1));
        let next = lines.next().await.expect("line").expect("ok");
        assert_eq!(next, format!("tick {}", n + 2));
    }

    // errors, as the API server words them
    let err = pods
        .logs(
            "logger",
            &LogParams {
                container: Some("nope".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("no such container");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 400 && s.message == "container nope is not valid for pod logger"),
        "{err:?}"
    );
    let err = pods
        .logs(
            "logger",
            &LogParams {
                previous: true,
                ..Default::default()
            },
        )
        .await
        .expect_err("no previous container");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 400 && s.message == "previous terminated container \"c\" in pod \"logger\" not found"),
        "{err:?}"
    );
    let err = pods
        .logs("missing", &LogParams::default())
        .await
        .expect_err("no such pod");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404),
        "{err:?}"
    );
    let err = pods
        .logs(
            "logger",
            &LogParams {
                tail_lines: Some(-1),
                ..Default::default()
            },
        )
        .await
        .expect_err("negative tail");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422 && s.message.contains("tailLines")),
        "{err:?}"
    );
    node.create_unbound_pod("unbound").await;
    assert_eq!(
        pods.logs("unbound", &LogParams::default())
            .await
            .expect("empty"),
        "",
        "a pod not on a node has no log yet"
    );

    // every kubectl: logs, --tail, -f
    let builds = kubectl_builds();
    for bin in &builds {
        let v = bin.display();
        let (code, out, err) = run(kubectl(bin, &node, &["logs", "logger"]), None);
        assert_eq!(code, 0, "{v}: {err}");
        assert!(
            without_stderr(&out).starts_with("line 1\nline 2\n"),
            "{v}: {out}"
        );
        let (code, out, err) = run(kubectl(bin, &node, &["logs", "--tail=1", "logger"]), None);
        assert_eq!(code, 0, "{v}: {err}");
        assert_eq!(out.lines().count(), 1, "{v}: {out}");
        let mut follow = Running::spawn(
            kubectl(bin, &node, &["logs", "-f", "--tail=1", "logger"]),
            None,
        );
        let first = follow.wait_line("a tick", |l| l.starts_with("tick "));
        let n: u64 = first["tick ".len()..].parse().expect("tick number");
        let want = format!("tick {}", n + 2);
        follow.wait_line(&want, |l| l == want);
        drop(follow);
        let (code, _, err) = run(kubectl(bin, &node, &["logs", "logger", "-c", "nope"]), None);
        assert_ne!(code, 0);
        assert!(
            err.contains("container nope is not valid for pod logger"),
            "{v}: {err}"
        );
    }

    // a restart: the new instance's log is current, the old one's is --previous
    node.stop_container(&logger, "c").await;
    node.start_container(
        &mut logger,
        &sh("c", "echo second life; exec sleep 100000"),
        1,
    )
    .await;
    wait_for("the second instance's log", LONG, || async {
        pods.logs("logger", &LogParams::default())
            .await
            .is_ok_and(|l| l == "second life\n")
    })
    .await;
    let previous = pods
        .logs(
            "logger",
            &LogParams {
                previous: true,
                ..Default::default()
            },
        )
        .await
        .expect("previous");
    assert!(
        without_stderr(&previous).starts_with("line 1\n"),
        "{previous}"
    );
    for bin in &builds {
        let (code, out, err) = run(kubectl(bin, &node, &["logs", "--previous", "logger"]), None);
        assert_eq!(code, 0, "{}: {err}", bin.display());
        assert!(
            without_stderr(&out).starts_with("line 1\n"),
            "{}: {out}",
            bin.display()
        );
    }
    eprintln!("logs verified with {builds:?}");

    // rotation: the runtime reopens its log; a follower reads the old file to its end and
    // goes on with the new one, losing and repeating nothing
    let rotator = node
        .run_pod(
            "rotator",
            &[sh(
                "c",
                "i=0; while true; do i=$((i+1)); echo n $i; sleep 0.05; done",
            )],
        )
        .await;
    {
        use futures::{AsyncBufReadExt, StreamExt};
        let stream = within(
            "following the rotator",
            pods.log_stream(
                "rotator",
                &LogParams {
                    follow: true,
                    ..Default::default()
                },
            ),
        )
        .await
        .expect("follow");
        let mut lines = Box::pin(stream.lines());
        let mut expect = 1u64;
        async fn next<S>(lines: &mut S) -> String
        where
            S: futures::Stream<Item = std::io::Result<String>> + Unpin,
        {
            within("the next line", lines.next())
                .await
                .expect("a line")
                .expect("ok")
        }
        while expect <= 5 {
            assert_eq!(next(&mut lines).await, format!("n {expect}"));
            expect += 1;
        }
        let mut selector = std::collections::HashMap::new();
        selector.insert(
            rkube_kubelet::labels::POD_UID.to_string(),
            rotator.uid.clone(),
        );
        let policy = rkube_kubelet::server::rotation::Policy {
            max_size: 1,
            max_files: 2,
        };
        let rotated = rkube_kubelet::server::rotation::rotate_all(node.cri(), policy, selector)
            .await
            .expect("rotation");
        assert_eq!(rotated.len(), 1, "{rotated:?}");
        let old = std::fs::read_to_string(&rotated[0]).expect("the rotated file");
        // `<n>.log.<stamp>` → `<n>.log`
        let live_path = rotated[0].with_extension("");
        assert!(old.contains("stdout F n 5\n"), "{old}");
        // the runtime writes to a new file at the old path
        wait_for("lines in the reopened log", LONG, || async {
            std::fs::read_to_string(&live_path).is_ok_and(|t| t.contains(" stdout F n "))
        })
        .await;
        let first_new: u64 = std::fs::read_to_string(&live_path)
            .expect("new log")
            .lines()
            .next()
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .expect("a line number");
        // the follower sees every line, across the two files, in order
        while expect <= first_new + 5 {
            assert_eq!(next(&mut lines).await, format!("n {expect}"));
            expect += 1;
        }
        // the next rotation (in a later second, so under another name) leaves two files
        let first_suffix = rkube_kubelet::server::rotation::rotation_suffix(jiff::Timestamp::now());
        wait_for("the next second", LONG, || async {
            rkube_kubelet::server::rotation::rotation_suffix(jiff::Timestamp::now()) != first_suffix
        })
        .await;
        let mut selector = std::collections::HashMap::new();
        selector.insert(
            rkube_kubelet::labels::POD_UID.to_string(),
            rotator.uid.clone(),
        );
        let again = rkube_kubelet::server::rotation::rotate_all(node.cri(), policy, selector)
            .await
            .expect("second rotation");
        assert_eq!(again.len(), 1);
        assert_ne!(again[0], rotated[0]);
        assert!(!rotated[0].exists(), "the oldest rotated log is removed");
        assert!(again[0].exists());
        assert!(live_path.exists(), "the runtime has a live log again");
    }
    // a later rotation keeps at most max_files files: the first rotated one goes
    node.stop().await;
}

const SHELL: &str = "while read l; do echo \"got $l\"; done; exec sleep 100000";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_attach_and_cp_work_with_kube_rs_and_every_kubectl() {
    if !common::prerequisites() {
        return;
    }
    let node = TestNode::start().await;
    let shell = Spec {
        stdin: true,
        ..sh("sh", SHELL)
    };
    node.run_pod("shell", &[shell]).await;
    let pods: Api<Pod> = Api::namespaced(node.api.admin.clone(), "default");
    // kube-rs (WebSocket v5, translated to SPDY by the kubelet): output, exit code
    let mut p = within(
        "kube-rs exec",
        pods.exec(
            "shell",
            ["sh", "-c", "echo out; echo err >&2; exit 3"],
            &AttachParams::default().stderr(true),
        ),
    )
    .await
    .expect("exec");
    let mut stdout = p.stdout().expect("stdout");
    let mut stderr = p.stderr().expect("stderr");
    let status = p.take_status().expect("status");
    let (mut out, mut err) = (String::new(), String::new());
    within("exec output", async {
        stdout.read_to_string(&mut out).await.expect("read");
        stderr.read_to_string(&mut err).await.expect("read");
    })
    .await;
    let status = within("exec status", status).await.expect("a status");
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    assert_eq!(
        status.reason.as_deref(),
        Some("NonZeroExitCode"),
        "{status:?}"
    );
    let code = status
        .details
        .and_then(|d| d.causes)
        .and_then(|c| {
            c.into_iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
        })
        .and_then(|c| c.message);
    assert_eq!(code.as_deref(), Some("3"));

    // kube-rs with stdin: closing it (v5's close signal) ends `tr`
    let mut p = within(
        "kube-rs exec with stdin",
        pods.exec(
            "shell",
            ["tr", "a-z", "A-Z"],
            &AttachParams::default().stdin(true).stderr(false),
        ),
    )
    .await
    .expect("exec with stdin");
    let mut stdin = p.stdin().expect("stdin");
    stdin.write_all(b"hello\n").await.expect("write");
    // shutting the writer down is kube-rs's end of stdin
    stdin.shutdown().await.expect("close stdin");
    let mut out = String::new();
    let mut stdout = p.stdout().expect("stdout");
    within("tr's output", stdout.read_to_string(&mut out))
        .await
        .expect("read");
    assert_eq!(out, "HELLO\n");
    let status = within("tr's status", p.take_status().expect("status"))
        .await
        .expect("a status");
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");

    // kube-rs attach to the container's own stdin and stdout
    let mut a = within(
        "kube-rs attach",
        pods.attach("shell", &AttachParams::default().stdin(true).stderr(false)),
    )
    .await
    .expect("attach");
    a.stdin()
        .expect("stdin")
        .write_all(b"via-kube-rs\n")
        .await
        .expect("write");
    let mut stdout = a.stdout().expect("stdout");
    let mut seen = Vec::new();
    let deadline = Instant::now() + LONG;
    while !String::from_utf8_lossy(&seen).contains("got via-kube-rs") {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout_at(deadline.into(), stdout.read(&mut buf))
            .await
            .expect("attach output in time")
            .expect("read");
        assert!(
            n > 0,
            "attach ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    drop(a);

    // errors
    let err = pods
        .exec(
            "shell",
            ["true"],
            &AttachParams::default().container("nope"),
        )
        .await
        .err()
        .expect("no such container");
    assert!(
        format!("{err:?}").contains("400") || format!("{err}").contains("not valid"),
        "{err:?}"
    );
    node.create_unbound_pod("unbound").await;
    let req = http::Request::post(
        "/api/v1/namespaces/default/pods/unbound/exec?command=true&stdout=true",
    )
    .header("Connection", "Upgrade")
    .header("Upgrade", "SPDY/3.1")
    .header("X-Stream-Protocol-Version", "v4.channel.k8s.io")
    .body(Vec::new())
    .expect("request");
    let err = node.api.admin.request_text(req).await.expect_err("unbound");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 400 && s.message == "pod unbound does not have a host assigned"),
        "{err:?}"
    );

    // every kubectl: exit codes, stdin, cp both ways, a TTY, attach
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("payload.txt");
    let payload: String = (0..2000).map(|i| format!("payload line {i}\n")).collect();
    std::fs::write(&local, &payload).expect("payload");
    let builds = kubectl_builds();
    for bin in &builds {
        let v = bin.display();
        let minor = kubectl_minor(bin);
        let before = counter(&kubelet_metrics(&node).await, TRANSLATED_EXEC);
        let (code, _, err) = run(
            kubectl(bin, &node, &["exec", "shell", "--", "sh", "-c", "exit 3"]),
            None,
        );
        assert_eq!(code, 3, "{v}: {err}");
        let (code, out, err) = run(
            kubectl(
                bin,
                &node,
                &["exec", "-i", "shell", "--", "tr", "a-z", "A-Z"],
            ),
            Some(b"hello from kubectl\n"),
        );
        assert_eq!(
            (code, out.as_str()),
            (0, "HELLO FROM KUBECTL\n"),
            "{v}: {err}"
        );
        let (code, out, err) = run(
            kubectl(
                bin,
                &node,
                &["exec", "shell", "--", "sh", "-c", "echo out; echo err >&2"],
            ),
            None,
        );
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (0, "out\n", "err\n"),
            "{v}"
        );
        // kubectl 1.30+ speaks WebSocket v5 (the kubelet translates); older ones SPDY
        let after = counter(&kubelet_metrics(&node).await, TRANSLATED_EXEC);
        if minor >= 30 {
            assert_eq!(after - before, 3, "{v} should have used WebSockets");
        } else {
            assert_eq!(after, before, "{v} should have used SPDY");
        }

        let remote = format!("shell:/tmp/payload-{minor}.txt");
        let (code, _, err) = run(
            kubectl(bin, &node, &["cp", &local.display().to_string(), &remote]),
            None,
        );
        assert_eq!(code, 0, "{v}: cp to the pod: {err}");
        let (code, out, err) = run(
            kubectl(
                bin,
                &node,
                &[
                    "exec",
                    "shell",
                    "--",
                    "md5sum",
                    &format!("/tmp/payload-{minor}.txt"),
                ],
            ),
            None,
        );
        assert_eq!(code, 0, "{v}: {err}");
        let want = md5_hex(payload.as_bytes());
        assert_eq!(want.len(), 32);
        assert!(out.starts_with(&want), "{v}: {out} != {want}");
        let back = dir.path().join(format!("back-{minor}.txt"));
        let (code, _, err) = run(
            kubectl(bin, &node, &["cp", &remote, &back.display().to_string()]),
            None,
        );
        assert_eq!(code, 0, "{v}: cp from the pod: {err}");
        assert_eq!(
            std::fs::read_to_string(&back).expect("copied back"),
            payload,
            "{v}"
        );

        // -it under a pseudo-terminal (script(1) gives kubectl one)
        let line = format!(
            "{} --namespace default exec -it shell -- sh -c 'test -t 0 && echo is-a-tty'",
            bin.display()
        );
        let mut script = Command::new("script");
        script
            .args(["-qec", &line, "/dev/null"])
            .env("KUBECONFIG", &node.api.kubeconfig)
            .env("HOME", node.api.dir.path());
        let (code, out, err) = run(script, Some(b""));
        assert_eq!(code, 0, "{v}: exec -it: {out} {err}");
        assert!(out.contains("is-a-tty"), "{v}: exec -it: {out} {err}");

        // attach -i: the container reads what kubectl sends
        let word = format!("attached-{minor}");
        let mut attach = Running::spawn_interactive(
            kubectl(bin, &node, &["attach", "-i", "shell"]),
            format!("{word}\n").as_bytes(),
        );
        let want = format!("got {word}");
        attach.wait_line(&want, |l| l.contains(&want));
    }
    eprintln!("exec, cp, exec -it and attach verified with {builds:?}");
    node.stop().await;
}

/// The MD5 of `data` as busybox's md5sum prints it (the same tool the pod runs).
fn md5_hex(data: &[u8]) -> String {
    let mut child = Command::new("/bin/busybox")
        .arg("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("busybox md5sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    let out = child.wait_with_output().expect("md5sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

const WEB: &str = "mkdir -p /tmp/www && echo hello-from-pod > /tmp/www/index.html && \
                   exec httpd -f -p 8080 -h /tmp/www";

/// An HTTP GET over a connected stream; the response.
async fn http_get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) -> String {
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n")
        .await
        .expect("request");
    let mut out = Vec::new();
    tokio::time::timeout(LONG, s.read_to_end(&mut out))
        .await
        .expect("response in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn port_forward_works_with_kube_rs_and_every_kubectl() {
    if !common::prerequisites() {
        return;
    }
    let node = TestNode::start().await;
    node.run_pod("web", &[sh("web", WEB)]).await;
    let pods: Api<Pod> = Api::namespaced(node.api.admin.clone(), "default");
    // httpd is up once a forwarded request gets an answer
    let mut answer = String::new();
    let deadline = Instant::now() + LONG;
    while !answer.contains("hello-from-pod") {
        assert!(
            Instant::now() < deadline,
            "no answer through kube-rs: {answer}"
        );
        let mut pf = pods.portforward("web", &[8080]).await.expect("portforward");
        let stream = pf.take_stream(8080).expect("stream");
        answer = http_get(stream).await;
        drop(pf);
        if !answer.contains("hello-from-pod") {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");

    let builds = kubectl_builds();
    for bin in &builds {
        let v = bin.display();
        let minor = kubectl_minor(bin);
        let before = counter(&kubelet_metrics(&node).await, TUNNELLED_PORT_FORWARD);
        let mut pf = Running::spawn(
            kubectl(bin, &node, &["port-forward", "pod/web", ":8080"]),
            None,
        );
        let line = pf.wait_line("Forwarding from 127.0.0.1", |l| {
            l.starts_with("Forwarding from 127.0.0.1:")
        });
        let port: u16 = line["Forwarding from 127.0.0.1:".len()..]
            .split(' ')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{v}: {line}"));
        for round in 0..2 {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect to kubectl");
            let answer = http_get(tcp).await;
            assert!(
                answer.contains("hello-from-pod"),
                "{v} round {round}: {answer}"
            );
        }
        drop(pf);
        // kubectl 1.31+ tunnels SPDY in WebSockets; older ones speak SPDY
        let after = counter(&kubelet_metrics(&node).await, TUNNELLED_PORT_FORWARD);
        if minor >= 31 {
            assert_eq!(after - before, 1, "{v} should have tunnelled");
        } else {
            assert_eq!(after, before, "{v} should have used SPDY");
        }
    }
    eprintln!("port-forward verified with {builds:?}");
    node.stop().await;
}

/// A request straight to the kubelet (not through the API server) as `client`.
async fn kubelet_get(node: &TestNode, client: &kube::Client, path: &str) -> Result<String, u16> {
    let req = http::Request::get(path).body(Vec::new()).expect("request");
    match client.request_text(req).await {
        Ok(text) => Ok(text),
        Err(kube::Error::Api(s)) => Err(s.code),
        Err(e) => panic!("{path} on {}: {e:?}", node.port),
    }
}

/// A kube client for the kubelet's URL with the cluster CA and `cred`.
async fn kubelet_client(node: &TestNode, cred: Option<rkube_pki::Credential>) -> kube::Client {
    let url = format!("https://127.0.0.1:{}", node.port);
    let yaml = match cred {
        Some(cred) => rkube_pki::kubeconfig(&url, node.api.ca.cert_pem(), "t", "t", &cred),
        None => rkube_pki::kubeconfig(
            &url,
            node.api.ca.cert_pem(),
            "t",
            "t",
            &rkube_pki::Credential::Token(String::new()),
        ),
    };
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubelet_api_checks_callers_and_reports_pods_stats_and_metrics() {
    if !common::prerequisites() {
        return;
    }
    let node = TestNode::start().await;
    node.run_pod(
        "busy",
        &[sh(
            "c",
            "while true; do echo x > /dev/null; sleep 0.05; done",
        )],
    )
    .await;

    // no credentials: 401
    let anonymous = kubelet_client(&node, None).await;
    assert_eq!(kubelet_get(&node, &anonymous, "/pods").await, Err(401));
    // a certificate from another CA, even naming the API server: refused in the handshake
    let other_ca = rkube_pki::Ca::generate().expect("ca");
    let stranger = other_ca
        .issue_client(KUBELET_CLIENT_USER, &[])
        .expect("cert");
    let stranger = kubelet_client(&node, Some(rkube_pki::Credential::Cert(stranger))).await;
    let req = http::Request::get("/pods")
        .body(Vec::new())
        .expect("request");
    let refused = stranger.request_text(req).await.expect_err("an unknown CA");
    // (the connection fails; no HTTP status comes back)
    assert!(!matches!(refused, kube::Error::Api(_)), "{refused:?}");
    // a known user without rights: 403
    let alice = node.api.ca.issue_client("alice", &[]).expect("cert");
    let alice = kubelet_client(&node, Some(rkube_pki::Credential::Cert(alice))).await;
    assert_eq!(kubelet_get(&node, &alice, "/pods").await, Err(403));
    assert_eq!(kubelet_get(&node, &alice, "/healthz").await, Err(403));

    // a service-account token, reviewed by the API server; allowed nodes/pods only
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let sas: Api<ServiceAccount> = Api::namespaced(node.api.admin.clone(), "default");
    sas.create(
        &Default::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": "reader"}})).expect("sa"),
    )
    .await
    .expect("create sa");
    let token = sas
        .create_token_request("reader", &Default::default(), &TokenRequest::default())
        .await
        .expect("token")
        .status
        .expect("token status")
        .token;
    let reader = kubelet_client(&node, Some(rkube_pki::Credential::Token(token))).await;
    assert_eq!(kubelet_get(&node, &reader, "/pods").await, Err(403));
    let roles: Api<ClusterRole> = Api::all(node.api.admin.clone());
    roles
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "node-pods-reader"},
                "rules": [{"apiGroups": [""], "resources": ["nodes/pods"], "verbs": ["get"]}],
            }))
            .expect("role"),
        )
        .await
        .expect("create role");
    let bindings: Api<ClusterRoleBinding> = Api::all(node.api.admin.clone());
    bindings
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "node-pods-reader"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "node-pods-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}],
            }))
            .expect("binding"),
        )
        .await
        .expect("create binding");
    // the denial is cached for 30 s, as upstream's kubelet does; a new server asks anew
    let fresh = rkube_kubelet::server::Server::new(rkube_kubelet::server::ServerDeps {
        cri: node.cri().clone(),
        client: node.api.node_client(&node.name),
        node_name: node.name.clone(),
        pods: node.pods.clone(),
        client_ca: Some(node.api.ca.cert_pem().to_string()),
    })
    .expect("server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let fresh_port = listener.local_addr().expect("addr").port();
    let serving = node
        .api
        .ca
        .issue_serving("x", &[], &["127.0.0.1".parse().expect("ip")])
        .expect("cert");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rkube_kubelet::server::serve_with(
        fresh,
        listener,
        rkube_pki::server_tls_config(&serving, node.api.ca.cert_pem()).expect("tls"),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let token_again = sas
        .create_token_request("reader", &Default::default(), &TokenRequest::default())
        .await
        .expect("token")
        .status
        .expect("status")
        .token;
    let url = format!("https://127.0.0.1:{fresh_port}");
    let yaml = rkube_pki::kubeconfig(
        &url,
        node.api.ca.cert_pem(),
        "t",
        "t",
        &rkube_pki::Credential::Token(token_again),
    );
    let cfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("config");
    let reader = kube::Client::try_from(cfg).expect("client");
    let listed = kubelet_get(&node, &reader, "/pods")
        .await
        .expect("nodes/pods allows /pods");
    assert!(listed.contains("\"busy\""), "{listed}");
    assert_eq!(
        kubelet_get(&node, &reader, "/stats/summary").await,
        Err(403),
        "nodes/stats is another subresource"
    );
    let _ = stop_tx.send(());

    // the API server's own identity: everything
    let apiserver_cert = node
        .api
        .ca
        .issue_client(KUBELET_CLIENT_USER, &[])
        .expect("cert");
    let admin = kubelet_client(&node, Some(rkube_pki::Credential::Cert(apiserver_cert))).await;
    assert_eq!(
        kubelet_get(&node, &admin, "/healthz").await,
        Ok("ok".into())
    );
    let pods: serde_json::Value =
        serde_json::from_str(&kubelet_get(&node, &admin, "/pods").await.expect("pods"))
            .expect("json");
    assert_eq!(pods["kind"], "PodList");
    assert_eq!(pods["items"][0]["metadata"]["name"], "busy");
    let running: serde_json::Value = serde_json::from_str(
        &kubelet_get(&node, &admin, "/runningpods/")
            .await
            .expect("running"),
    )
    .expect("json");
    assert_eq!(running["items"][0]["metadata"]["name"], "busy");
    assert_eq!(running["items"][0]["spec"]["containers"][0]["name"], "c");

    // stats through the API server's nodes/proxy; CPU rates need two samples
    let path = format!("/api/v1/nodes/{}/proxy/stats/summary", node.name);
    let summary = || async {
        let req = http::Request::get(path.as_str())
            .body(Vec::new())
            .expect("request");
        let text = node.api.admin.request_text(req).await.expect("summary");
        serde_json::from_str::<serde_json::Value>(&text).expect("json")
    };
    let first = summary().await;
    assert_eq!(first["node"]["nodeName"], node.name.as_str());
    assert!(
        first["node"]["cpu"]["usageCoreNanoSeconds"]
            .as_u64()
            .is_some(),
        "{first}"
    );
    assert!(
        first["node"]["memory"]["workingSetBytes"]
            .as_u64()
            .is_some(),
        "{first}"
    );
    let pod = &first["pods"][0];
    assert_eq!(pod["podRef"]["name"], "busy");
    assert_eq!(pod["containers"][0]["name"], "c");
    assert!(
        pod["containers"][0]["memory"]["workingSetBytes"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{pod}"
    );
    wait_for("a CPU rate for the container", LONG, || async {
        summary().await["pods"][0]["containers"][0]["cpu"]["usageNanoCores"]
            .as_u64()
            .is_some()
    })
    .await;
    let metrics = kubelet_get(&node, &admin, "/metrics/resource")
        .await
        .expect("resource metrics");
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "container_cpu_usage_seconds_total{container=\"c\",namespace=\"default\",pod=\"busy\"}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("node_memory_working_set_bytes "),
        "{metrics}"
    );
    let own = kubelet_get(&node, &admin, "/metrics")
        .await
        .expect("metrics");
    assert!(own.contains("kubelet_http_requests_total{"), "{own}");

    // a kubelet whose serving certificate the cluster CA did not sign: the API server
    // refuses it, unless a log request says insecureSkipTLSVerifyBackend
    let rogue_ca = rkube_pki::Ca::generate().expect("ca");
    let rogue_serving = rogue_ca
        .issue_serving("rogue", &[], &["127.0.0.1".parse().expect("ip")])
        .expect("cert");
    let rogue = rkube_kubelet::server::Server::new(rkube_kubelet::server::ServerDeps {
        cri: node.cri().clone(),
        client: node.api.node_client("rogue"),
        node_name: "rogue".into(),
        pods: node.pods.clone(),
        client_ca: Some(node.api.ca.cert_pem().to_string()),
    })
    .expect("server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let rogue_port = listener.local_addr().expect("addr").port();
    let (rogue_stop, rogue_stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rkube_kubelet::server::serve_with(
        rogue,
        listener,
        rkube_pki::server_tls_config(&rogue_serving, node.api.ca.cert_pem()).expect("tls"),
        async move {
            let _ = rogue_stopped.await;
        },
    ));
    node.create_node("rogue", rogue_port).await;
    node.run_pod_on(
        "rogue",
        "elsewhere",
        &[sh("c", "echo from-elsewhere; exec sleep 100000")],
    )
    .await;
    let log = |skip: bool| {
        let path = format!(
            "/api/v1/namespaces/default/pods/elsewhere/log{}",
            if skip {
                "?insecureSkipTLSVerifyBackend=true"
            } else {
                ""
            }
        );
        let client = node.api.admin.clone();
        async move {
            let req = http::Request::get(path).body(Vec::new()).expect("request");
            client.request_text(req).await
        }
    };
    wait_for("the pod elsewhere's log", LONG, || async {
        log(true).await.is_ok_and(|l| l == "from-elsewhere\n")
    })
    .await;
    let err = log(false).await.expect_err("an unverified kubelet");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 500 && s.message.contains("certificate")),
        "{err:?}"
    );
    let _ = rogue_stop.send(());
    node.stop().await;
}
