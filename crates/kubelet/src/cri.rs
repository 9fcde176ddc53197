//! The kubelet's only door to the container runtime: CRI v1 over gRPC on a unix socket.
//!
//! [`Cri`] bundles the RuntimeService and ImageService clients of one endpoint. Both share one
//! HTTP/2 connection (tonic multiplexes calls on it), and cloning is cheap.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

/// A CRI error: the runtime could not be reached, or it answered a call with an error.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("connecting to the container runtime at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{call}: {status}")]
    Call {
        call: &'static str,
        #[source]
        status: Box<tonic::Status>,
    },
    #[error(
        "invalid runtime endpoint {0:?}: only unix sockets (unix:///path or /path) are supported"
    )]
    Endpoint(String),
}

impl CriError {
    /// The gRPC code of a failed call (`Unknown` for a connection failure).
    pub fn code(&self) -> tonic::Code {
        match self {
            CriError::Call { status, .. } => status.code(),
            _ => tonic::Code::Unknown,
        }
    }

    /// Whether the runtime said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == tonic::Code::NotFound
            || matches!(self, CriError::Call { status, .. } if status.message().contains("not found"))
    }

    /// The runtime's own message, without the call name (what goes into a pod's status).
    pub fn message(&self) -> String {
        match self {
            CriError::Call { status, .. } => status.message().to_string(),
            other => other.to_string(),
        }
    }
}

/// Turns a tonic result into a [`CriError`] naming the call.
pub(crate) trait CallExt<T> {
    fn call(self, call: &'static str) -> Result<T, CriError>;
}

impl<T> CallExt<T> for Result<tonic::Response<T>, tonic::Status> {
    fn call(self, call: &'static str) -> Result<T, CriError> {
        self.map(tonic::Response::into_inner)
            .map_err(|status| CriError::Call {
                call,
                status: Box::new(status),
            })
    }
}

/// The socket path of a CRI endpoint given as `unix:///path` or `/path`.
pub fn socket_path(endpoint: &str) -> Result<PathBuf, CriError> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if path.starts_with('/') {
        Ok(PathBuf::from(path))
    } else {
        Err(CriError::Endpoint(endpoint.to_string()))
    }
}

/// A connected CRI runtime.
#[derive(Debug, Clone)]
pub struct Cri {
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
    endpoint: String,
}

impl Cri {
    /// Connects to the CRI endpoint (`unix:///path` or `/path`). The connection is made at
    /// once, so a missing socket is reported here.
    pub async fn connect(endpoint: &str) -> Result<Cri, CriError> {
        let path = socket_path(endpoint)?;
        let channel = channel(&path).await.map_err(|source| CriError::Connect {
            endpoint: endpoint.to_string(),
            source,
        })?;
        Ok(Cri {
            // Container creation with large specs and ListContainers on a busy node exceed
            // tonic's 4 MiB default; upstream's kubelet allows 16 MiB.
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(16 << 20)
                .max_encoding_message_size(16 << 20),
            images: ImageServiceClient::new(channel)
                .max_decoding_message_size(16 << 20)
                .max_encoding_message_size(16 << 20),
            endpoint: endpoint.to_string(),
        })
    }

    /// The endpoint this client was connected to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The runtime's name and version.
    pub async fn version(&self) -> Result<cri::VersionResponse, CriError> {
        self.runtime
            .clone()
            .version(cri::VersionRequest {
                version: "v1".into(),
            })
            .await
            .call("Version")
    }

    /// The runtime's status conditions (RuntimeReady, NetworkReady).
    pub async fn status(&self) -> Result<cri::StatusResponse, CriError> {
        self.runtime
            .clone()
            .status(cri::StatusRequest { verbose: false })
            .await
            .call("Status")
    }
}

async fn channel(path: &Path) -> Result<Channel, tonic::transport::Error> {
    let path = path.to_path_buf();
    // The URI is required by tonic but unused: every connection goes to the unix socket.
    Endpoint::from_static("http://localhost")
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_unix_sockets() {
        assert_eq!(
            socket_path("unix:///run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert_eq!(
            socket_path("/run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert!(socket_path("tcp://1.2.3.4:5").is_err());
        assert!(socket_path("relative.sock").is_err());
    }
}
