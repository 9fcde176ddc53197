//! Lifecycle hooks (postStart, preStop), as upstream's pkg/kubelet/lifecycle/handlers.go: exec
//! through CRI ExecSync, httpGet, sleep. A tcpSocket handler is accepted by the API for
//! backward compatibility but upstream's kubelet refuses to run it, and so does this one.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::action::{self, KUBE_VERSION};
use super::gofmt;
use crate::cri::Cri;

/// Runs a lifecycle handler for a container. The error is upstream's message for the
/// FailedPostStartHook / FailedPreStopHook event. There is no timeout: the caller bounds a
/// preStop hook by the grace period (dropping the future stops it).
pub async fn run_handler(
    cri: &Cri,
    pod: &Pod,
    container: &Container,
    container_id: &str,
    handler: &LifecycleHandler,
    pod_ip: Option<&str>,
) -> Result<(), String> {
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        let (output, result) =
            action::exec_in_container(cri, container_id, &command, Duration::ZERO).await;
        return result.map_err(|err| {
            format!(
                "Exec lifecycle hook ({}) for Container {} in Pod {} failed - error: {err}, message: {}",
                gofmt::slice(&command),
                gofmt::quote(&container.name),
                gofmt::quote(&gofmt::pod(pod)),
                gofmt::quote(&String::from_utf8_lossy(&output)),
            )
        });
    }
    if let Some(http) = &handler.http_get {
        return http_hook(pod, container, http, pod_ip).await;
    }
    if let Some(sleep) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64)).await;
        return Ok(());
    }
    Err(format!(
        "Cannot run handler: invalid handler: {}",
        describe(handler)
    ))
}

/// An httpGet hook, with upstream's message on failure.
pub(super) async fn http_hook(
    pod: &Pod,
    container: &Container,
    action: &k8s_openapi::api::core::v1::HTTPGetAction,
    pod_ip: Option<&str>,
) -> Result<(), String> {
    http_handler(action, container, pod_ip)
        .await
        .map_err(|err| {
            format!(
                "HTTP lifecycle hook ({}) for Container {} in Pod {} failed - error: {err}",
                action.path.as_deref().unwrap_or_default(),
                gofmt::quote(&container.name),
                gofmt::quote(&gofmt::pod(pod)),
            )
        })
}

/// An httpGet hook: any HTTP answer succeeds (upstream checks no status code); an HTTPS request
/// answered in plain HTTP is retried over HTTP without the Authorization header, as upstream's.
async fn http_handler(
    action: &k8s_openapi::api::core::v1::HTTPGetAction,
    container: &Container,
    pod_ip: Option<&str>,
) -> Result<(), String> {
    if action.host.as_deref().unwrap_or_default().is_empty()
        && pod_ip.unwrap_or_default().is_empty()
    {
        return Err("failed to find networking container".into());
    }
    let url = action::http_url(action, container, pod_ip)?;
    let headers = action::http_headers(action, &format!("kube-lifecycle/{KUBE_VERSION}"));
    let client = action::lifecycle_client()?;
    let err = match client
        .get(url.clone())
        .headers(headers.clone())
        .send()
        .await
    {
        Ok(mut response) => {
            let _ = action::read_limited(&mut response).await;
            return Ok(());
        }
        Err(err) => err,
    };
    if url.scheme() == "https" && got_http_response(&err) {
        let mut plain = url.clone();
        if plain.set_scheme("http").is_ok() {
            let mut headers = headers;
            headers.remove(reqwest::header::AUTHORIZATION);
            if let Ok(mut response) = client.get(plain).headers(headers).send().await {
                let _ = action::read_limited(&mut response).await;
                return Ok(());
            }
        }
    }
    Err(action::http_error(&url, &err))
}

/// Whether a TLS handshake got a plain HTTP answer (Go's "server gave HTTP response to HTTPS
/// client"): rustls reads the response's first bytes as a record of an invalid content type.
fn got_http_response(err: &reqwest::Error) -> bool {
    action::error_chain(err).into_iter().any(|e| {
        matches!(
            e.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType
            ))
        )
    })
}

/// Go's `%v` of a handler none of whose actions the kubelet runs (the generated `String()`).
fn describe(handler: &LifecycleHandler) -> String {
    let tcp = match &handler.tcp_socket {
        Some(t) => {
            let port = match &t.port {
                IntOrString::Int(n) => format!("{{0 {n} }}"),
                IntOrString::String(s) => format!("{{1 0 {s}}}"),
            };
            format!(
                "&TCPSocketAction{{Port:{port},Host:{},}}",
                t.host.as_deref().unwrap_or_default()
            )
        }
        None => "nil".into(),
    };
    format!("&LifecycleHandler{{Exec:nil,HTTPGet:nil,TCPSocket:{tcp},Sleep:nil,}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::TCPSocketAction;

    #[test]
    fn unrunnable_handlers_are_described_as_upstream() {
        let h = LifecycleHandler {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(8080),
                host: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            describe(&h),
            "&LifecycleHandler{Exec:nil,HTTPGet:nil,TCPSocket:&TCPSocketAction{Port:{0 8080 },Host:,},Sleep:nil,}"
        );
        assert_eq!(
            describe(&LifecycleHandler::default()),
            "&LifecycleHandler{Exec:nil,HTTPGet:nil,TCPSocket:nil,Sleep:nil,}"
        );
    }
}
