//! Which streaming protocol a client asked for, and what the kubelet does with it (pure).
//!
//! The container runtime's streaming server (containerd 1.6 vendors the kubelet's CRI
//! streaming server of about Kubernetes 1.24) speaks SPDY/3.1 with `v1`..`v4.channel.k8s.io`
//! and `portforward.k8s.io`, and WebSocket with `channel.k8s.io`..`v4.channel.k8s.io`. Clients
//! speak:
//!
//! - SPDY (kubectl 1.27..1.29 for exec/attach/cp, 1.27..1.30 for port-forward, and every
//!   kubectl after a WebSocket attempt fails): passed through as it is;
//! - WebSocket `v5.channel.k8s.io` for exec/attach (kubectl 1.30+, kube-rs): v5 adds the
//!   stream-close signal the runtime does not know, so the kubelet ends the WebSocket itself
//!   and speaks SPDY `v4.channel.k8s.io` to the runtime (upstream's StreamTranslator, which
//!   kube-apiserver 1.30+ runs and newer kubelets run with `ExtendWebSocketsToKubelet`);
//! - WebSocket `SPDY/3.1+portforward.k8s.io` for port-forward (kubectl 1.31+): SPDY bytes
//!   inside WebSocket binary messages; the kubelet unwraps them and passes the SPDY session
//!   through (upstream's TunnelingHandler);
//! - WebSocket `v4.channel.k8s.io` and older (kube-rs's port-forward, old clients): passed
//!   through.

use http::{header, HeaderMap};

/// The prefix kubectl puts before the SPDY protocols it tunnels over WebSocket.
pub const TUNNELING_PREFIX: &str = "SPDY/3.1+";
/// The remote-command protocol with the stream-close signal.
pub const V5_CHANNEL: &str = "v5.channel.k8s.io";
/// The remote-command protocol the kubelet asks the runtime for when translating.
pub const V4_CHANNEL: &str = "v4.channel.k8s.io";
/// The SPDY upgrade token.
pub const SPDY_31: &str = "SPDY/3.1";
/// The header carrying SPDY sub-protocols.
pub const PROTOCOL_VERSION_HEADER: &str = "X-Stream-Protocol-Version";

/// Which streaming endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Exec,
    Attach,
    PortForward,
}

impl StreamKind {
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Exec => "exec",
            StreamKind::Attach => "attach",
            StreamKind::PortForward => "portforward",
        }
    }
}

/// What the kubelet does with a streaming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Forward the upgrade request to the runtime and splice the two connections.
    Passthrough,
    /// Accept WebSocket v5 here and speak SPDY v4 to the runtime.
    TranslateV5,
    /// Accept WebSocket here, SPDY-upgrade to the runtime with these protocols (the
    /// tunneled ones without their prefix), and carry the SPDY bytes in binary messages.
    Tunnel { protocols: Vec<String> },
}

/// Why a streaming request cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("Upgrade request required")]
    UpgradeRequired,
    #[error("unable to upgrade: no tunneling spdy protocols provided")]
    NoTunnelingProtocols,
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Whether the request asks to upgrade the connection at all.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, header::CONNECTION, "upgrade") && headers.contains_key(header::UPGRADE)
}

/// Whether the request is a WebSocket handshake.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    has_token(headers, header::CONNECTION, "upgrade")
        && has_token(headers, header::UPGRADE, "websocket")
}

/// The WebSocket sub-protocols a client offers, in its order.
pub fn websocket_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Decides how to serve a streaming request.
pub fn negotiate(kind: StreamKind, headers: &HeaderMap) -> Result<Mode, NegotiationError> {
    if !is_upgrade(headers) {
        return Err(NegotiationError::UpgradeRequired);
    }
    if !is_websocket(headers) {
        return Ok(Mode::Passthrough);
    }
    let offered = websocket_protocols(headers);
    match kind {
        StreamKind::Exec | StreamKind::Attach => {
            if offered.iter().any(|p| p == V5_CHANNEL) {
                Ok(Mode::TranslateV5)
            } else {
                Ok(Mode::Passthrough)
            }
        }
        StreamKind::PortForward => {
            let tunneled: Vec<String> = offered
                .iter()
                .filter_map(|p| p.strip_prefix(TUNNELING_PREFIX))
                .filter(|p| p.ends_with(".k8s.io"))
                .map(str::to_string)
                .collect();
            if !tunneled.is_empty() {
                Ok(Mode::Tunnel {
                    protocols: tunneled,
                })
            } else if offered.iter().any(|p| p.starts_with(TUNNELING_PREFIX)) {
                Err(NegotiationError::NoTunnelingProtocols)
            } else {
                Ok(Mode::Passthrough)
            }
        }
    }
}

/// The streams an exec or attach asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A query flag: upstream's kubelet takes `1`; the API server's own parameters say `true`.
fn flag(pairs: &[(String, String)], key: &str) -> bool {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .is_some_and(|(_, v)| matches!(v.as_str(), "1" | "true" | "True" | "TRUE"))
}

/// Reads `stdin`, `stdout`, `stderr`, `tty` as upstream's `remotecommand.NewOptions`: at
/// least one stream, and no stderr with a TTY (a terminal merges it into stdout).
pub fn stream_options(pairs: &[(String, String)]) -> Result<StreamOptions, String> {
    let mut o = StreamOptions {
        stdin: flag(pairs, "stdin"),
        stdout: flag(pairs, "stdout"),
        stderr: flag(pairs, "stderr"),
        tty: flag(pairs, "tty"),
    };
    if o.tty && o.stderr {
        o.stderr = false;
    }
    if !o.stdin && !o.stdout && !o.stderr {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    Ok(o)
}

/// The `command` values of an exec, in order.
pub fn command(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect()
}

/// The ports of a port-forward: every `port` (upstream's kubelet parameter) or `ports`
/// (the API's) value, each possibly a comma-separated list.
pub fn ports(pairs: &[(String, String)]) -> Result<Vec<i32>, String> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        if k != "port" && k != "ports" {
            continue;
        }
        if v.is_empty() {
            return Err(format!("query parameter {k:?} cannot be empty"));
        }
        for p in v.split(',') {
            let port: u16 = p
                .trim()
                .parse()
                .map_err(|_| format!("unable to parse {v:?} as a port"))?;
            if port < 1 {
                return Err(format!("port {v:?} must be > 0"));
            }
            out.push(i32::from(port));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    #[test]
    fn each_client_protocol_gets_its_mode() {
        let spdy = headers(&[
            ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ]);
        let ws_v5 = headers(&[
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
        ]);
        let kube_rs = headers(&[
            ("connection", "upgrade"),
            ("upgrade", "WebSocket"),
            (
                "sec-websocket-protocol",
                "v5.channel.k8s.io, v4.channel.k8s.io",
            ),
        ]);
        let ws_v4 = headers(&[
            ("Connection", "keep-alive, Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Protocol", "v4.channel.k8s.io"),
        ]);
        let tunnel = headers(&[
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Protocol", "SPDY/3.1+portforward.k8s.io"),
        ]);
        let plain = headers(&[("Accept", "*/*")]);
        use StreamKind::*;
        let cases: &[(StreamKind, &HeaderMap, Result<Mode, NegotiationError>)] = &[
            (Exec, &spdy, Ok(Mode::Passthrough)),
            (Attach, &spdy, Ok(Mode::Passthrough)),
            (PortForward, &spdy, Ok(Mode::Passthrough)),
            (Exec, &ws_v5, Ok(Mode::TranslateV5)),
            (Attach, &kube_rs, Ok(Mode::TranslateV5)),
            (Exec, &ws_v4, Ok(Mode::Passthrough)),
            // kube-rs's port-forward offers v5/v4 channel protocols: the runtime's v4 port
            // forwarding serves it as it is.
            (PortForward, &kube_rs, Ok(Mode::Passthrough)),
            (
                PortForward,
                &tunnel,
                Ok(Mode::Tunnel {
                    protocols: vec!["portforward.k8s.io".into()],
                }),
            ),
            // a tunnel offered to exec is an ordinary (unknown-protocol) WebSocket
            (Exec, &tunnel, Ok(Mode::Passthrough)),
            (Exec, &plain, Err(NegotiationError::UpgradeRequired)),
            (PortForward, &plain, Err(NegotiationError::UpgradeRequired)),
            (
                PortForward,
                &headers(&[
                    ("Connection", "Upgrade"),
                    ("Upgrade", "websocket"),
                    ("Sec-WebSocket-Protocol", "SPDY/3.1+other"),
                ]),
                Err(NegotiationError::NoTunnelingProtocols),
            ),
        ];
        for (kind, h, want) in cases {
            assert_eq!(&negotiate(*kind, h), want, "{kind:?} {h:?}");
        }
    }

    fn q(s: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(s).expect("query")
    }

    #[test]
    fn stream_options_follow_upstream() {
        assert_eq!(
            stream_options(&q("stdin=1&stdout=1&tty=1&stderr=1")),
            Ok(StreamOptions {
                stdin: true,
                stdout: true,
                stderr: false,
                tty: true
            })
        );
        assert_eq!(
            stream_options(&q("stdout=true&stderr=true")),
            Ok(StreamOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            })
        );
        assert!(stream_options(&q("tty=1")).is_err());
        assert!(stream_options(&q("stdout=0")).is_err());
        assert_eq!(
            command(&q("command=sh&command=-c&command=exit+3")),
            vec!["sh", "-c", "exit 3"]
        );
    }

    #[test]
    fn ports_come_from_port_or_ports() {
        assert_eq!(ports(&q("port=80&port=81,82")), Ok(vec![80, 81, 82]));
        assert_eq!(ports(&q("ports=8080")), Ok(vec![8080]));
        assert_eq!(ports(&q("")), Ok(vec![]));
        assert!(ports(&q("port=0")).is_err());
        assert!(ports(&q("port=x")).is_err());
        assert!(ports(&q("port=70000")).is_err());
        assert!(ports(&q("port=")).is_err());
    }
}
