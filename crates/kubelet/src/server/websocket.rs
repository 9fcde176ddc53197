//! The server side of a WebSocket handshake the kubelet answers itself (translation and
//! tunnelling); frames are `tokio-tungstenite`'s. The handshake is done by hand so that the
//! 101 goes out only after the runtime accepted its own upgrade, with the sub-protocol the
//! runtime chose.

use base64::Engine;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

/// RFC 6455's GUID for `Sec-WebSocket-Accept`.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut input = key.trim().as_bytes().to_vec();
    input.extend_from_slice(GUID.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// The client's handshake key, if the request carries a usable one.
pub fn client_key(headers: &HeaderMap) -> Option<String> {
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "13");
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)?
        .to_str()
        .ok()?
        .trim()
        .to_string();
    (version_ok && !key.is_empty()).then_some(key)
}

/// The 101 that completes a handshake with `protocol` (none if empty).
pub fn switching_protocols<B: Default>(key: &str, protocol: &str) -> Response<B> {
    let mut resp = Response::new(B::default());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept_key(key)) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if !protocol.is_empty() {
        if let Ok(v) = HeaderValue::from_str(protocol) {
            h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_is_rfc6455s_example() {
        // RFC 6455, section 1.3
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn handshakes_need_version_13_and_a_key() {
        let mut h = HeaderMap::new();
        h.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("abc"));
        assert_eq!(client_key(&h), None);
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        assert_eq!(client_key(&h).as_deref(), Some("abc"));
        let resp: Response<()> =
            switching_protocols("dGhlIHNhbXBsZSBub25jZQ==", "v5.channel.k8s.io");
        assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            resp.headers()[header::SEC_WEBSOCKET_PROTOCOL],
            "v5.channel.k8s.io"
        );
        assert_eq!(
            resp.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
