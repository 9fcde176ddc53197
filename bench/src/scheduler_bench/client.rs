//! The benchmark's HTTP side: pod and node creators over keep-alive loopback connections, and
//! the pod watch that counts bound pods.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use serde::Deserialize;
use serde_json::Value;

pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub struct Target {
    pub client: HttpClient,
    pub base: String,
}

impl Target {
    async fn post(&self, path: &str, body: Vec<u8>) -> Result<(u16, Bytes)> {
        let req = http::Request::post(format!("{}{path}", self.base))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let resp = self.client.request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Creates an object, retrying while the server sheds load (429) or is briefly
    /// unavailable; an object that already exists counts as created.
    pub async fn create(&self, path: &str, obj: &Value) -> Result<()> {
        let body = serde_json::to_vec(obj)?;
        loop {
            let (code, resp) = self.post(path, body.clone()).await?;
            match code {
                201 | 200 | 409 => return Ok(()),
                429 | 503 => tokio::time::sleep(Duration::from_millis(5)).await,
                _ => bail!("POST {path}: {code} {}", String::from_utf8_lossy(&resp)),
            }
        }
    }
}

/// Creates `n` objects with `workers` concurrent creators; returns when all are created.
pub async fn create_all<F>(
    t: &Arc<Target>,
    workers: usize,
    n: usize,
    path: &str,
    make: F,
) -> Result<()>
where
    F: Fn(usize) -> Value + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let mut tasks = Vec::new();
    for _ in 0..workers.clamp(1, n.max(1)) {
        let (t, next, make, path) = (t.clone(), next.clone(), make.clone(), path.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                t.create(&path, &make(i)).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// The parts of a pod watch event this benchmark reads; serde skips the rest.
#[derive(Deserialize)]
struct WatchLine {
    #[serde(rename = "type")]
    kind: String,
    object: PodLite,
}

#[derive(Deserialize)]
struct PodLite {
    #[serde(default)]
    metadata: MetaLite,
    #[serde(default)]
    spec: SpecLite,
}

#[derive(Deserialize, Default)]
struct MetaLite {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
}

#[derive(Deserialize, Default)]
struct SpecLite {
    #[serde(default, rename = "nodeName")]
    node_name: Option<String>,
}

/// Counts the pods of one namespace that have been bound, from one watch.
pub struct BindWatch {
    count: tokio::sync::watch::Receiver<usize>,
    /// When the latest newly bound pod was seen.
    pub last: Arc<Mutex<Option<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl BindWatch {
    /// Opens the watch and returns once the server has answered it, so that no pod created
    /// afterwards can be missed.
    pub async fn start(t: &Arc<Target>, ns: &str) -> Result<BindWatch> {
        let (tx, count) = tokio::sync::watch::channel(0usize);
        let last = Arc::new(Mutex::new(None));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<()>>();
        let (t, ns, last2) = (t.clone(), ns.to_string(), last.clone());
        let task = tokio::spawn(async move {
            let mut bound: HashSet<String> = HashSet::new();
            let mut rv = String::new();
            let mut ready = Some(ready_tx);
            loop {
                // Reconnects after the server ends a watch, from the last version seen (or
                // from a fresh list after an error event: the set de-duplicates).
                let uri = format!(
                    "{}/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv}",
                    t.base
                );
                let resp = match http::Request::get(uri).body(Full::new(Bytes::new())) {
                    Ok(req) => t.client.request(req).await,
                    Err(e) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Err(e.into()));
                        }
                        return;
                    }
                };
                let resp = match resp {
                    Ok(r) if r.status().is_success() => r,
                    other => {
                        let why = match other {
                            Ok(r) => anyhow::anyhow!("watch answered {}", r.status()),
                            Err(e) => e.into(),
                        };
                        if let Some(r) = ready.take() {
                            let _ = r.send(Err(why));
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if let Some(r) = ready.take() {
                    let _ = r.send(Ok(()));
                }
                let mut body = resp.into_body();
                let mut buf: Vec<u8> = Vec::new();
                while let Some(Ok(frame)) = body.frame().await {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    buf.extend_from_slice(&data);
                    let mut start = 0;
                    while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
                        let line = &buf[start..start + pos];
                        start += pos + 1;
                        let Ok(ev) = serde_json::from_slice::<WatchLine>(line) else {
                            continue;
                        };
                        if ev.kind == "ERROR" {
                            rv.clear();
                            continue;
                        }
                        if !ev.object.metadata.resource_version.is_empty() {
                            rv = ev.object.metadata.resource_version;
                        }
                        let is_bound = ev.object.spec.node_name.is_some_and(|n| !n.is_empty());
                        if ev.kind != "DELETED" && is_bound && bound.insert(ev.object.metadata.name)
                        {
                            if let Ok(mut l) = last2.lock() {
                                *l = Some(Instant::now());
                            }
                            tx.send_replace(bound.len());
                        }
                    }
                    buf.drain(..start);
                }
            }
        });
        ready_rx.await.context("the pod watch ended at once")??;
        Ok(BindWatch { count, last, task })
    }

    /// Waits until `n` pods are bound or `timeout` passes (zero: not at all); returns the
    /// count reached, and reports progress on stderr every few seconds.
    pub async fn wait(&mut self, n: usize, timeout: Duration, what: &str) -> usize {
        if timeout.is_zero() {
            return *self.count.borrow();
        }
        let deadline = Instant::now() + timeout;
        let started = Instant::now();
        loop {
            let step =
                Duration::from_secs(5).min(deadline.saturating_duration_since(Instant::now()));
            let done = tokio::time::timeout(step, self.count.wait_for(|c| *c >= n))
                .await
                .map(|r| r.is_ok());
            let c = *self.count.borrow();
            if c >= n {
                return c;
            }
            // Ok(false): the watch task ended.
            if Instant::now() >= deadline || done == Ok(false) {
                eprintln!("  {what}: timed out with {c} of {n} bound");
                return c;
            }
            eprintln!(
                "  {what}: {c} of {n} bound after {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

impl Drop for BindWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
