//! A local OCI registry: Debian's `docker-registry` (distribution 2.8) serving a temporary
//! directory on a free 127.0.0.1 port, optionally behind htpasswd basic auth, killed on drop;
//! and a small push client for the OCI distribution API (blob upload POST + PUT, manifest
//! PUT) over hyper, enough to publish the test images built in memory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rkube_kubelet::oci::Image;

/// A user of a registry with basic auth.
#[derive(Debug, Clone)]
pub struct Login {
    pub username: String,
    pub password: String,
}

#[derive(Debug)]
pub struct Registry {
    /// `127.0.0.1:PORT`, the registry part of image names.
    pub host: String,
    pub login: Option<Login>,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    /// An open registry.
    pub async fn start() -> Registry {
        Registry::spawn(None)
    }

    /// A registry that answers only `login` (htpasswd, bcrypt as distribution requires).
    pub async fn start_private(login: Login) -> Registry {
        Registry::spawn(Some(login))
    }

    fn spawn(login: Option<Login>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("rkreg")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let auth = match &login {
            Some(l) => {
                // the lowest cost bcrypt allows: the registry checks it on every request
                let hash = bcrypt::hash(&l.password, 4).expect("bcrypt");
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{}:{hash}\n", l.username)).expect("htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: rkube-test\n    path: {}\n",
                    htpasswd.display()
                )
            }
            None => String::new(),
        };
        let config = dir.path().join("config.yml");
        // port 0: the registry picks a free port and logs it, so no two tests race for one
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  secret: rkube-test\n{auth}",
                dir.path().join("data").display()
            ),
        )
        .expect("registry config");
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path).expect("registry log");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting docker-registry (scripts/setup.sh installs it)");
        let mut registry = Registry {
            host: String::new(),
            login,
            dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .find_map(|l| l.split("msg=\"listening on ").nth(1))
                .and_then(|rest| rest.split('"').next())
            {
                registry.host = addr.to_string();
                return registry;
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!("docker-registry exited ({status}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `host/repo:tag`, an image name in this registry.
    pub fn image(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.host)
    }

    /// The registry's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One HTTP/1.1 request on a fresh connection, with the registry's login if it has one.
    pub async fn request(
        &self,
        method: &str,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (http::StatusCode, http::HeaderMap, Bytes) {
        let stream = tokio::net::TcpStream::connect(&self.host)
            .await
            .expect("connecting to the registry");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        let mut req = http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(http::header::HOST, &self.host)
            .header(http::header::CONTENT_LENGTH, body.len());
        if let Some(ct) = content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        if let Some(l) = &self.login {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", l.username, l.password));
            req = req.header(http::header::AUTHORIZATION, format!("Basic {token}"));
        }
        let req = req.body(Full::new(Bytes::from(body))).expect("request");
        let resp = sender.send_request(req).await.expect("registry request");
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.expect("response body").to_bytes();
        (parts.status, parts.headers, bytes)
    }

    /// Uploads one blob (monolithic: POST opens the upload, PUT with the digest completes it).
    pub async fn push_blob(&self, repo: &str, digest: &str, bytes: &[u8]) {
        let (status, headers, body) = self
            .request(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/"),
                None,
                Vec::new(),
            )
            .await;
        assert_eq!(status, 202, "starting the upload of {digest}: {body:?}");
        let location = headers
            .get(http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .expect("upload Location")
            .to_string();
        // distribution answers an absolute URL; the request line needs only its path
        let path = match location.split_once("://") {
            Some((_, rest)) => rest[rest.find('/').unwrap_or(rest.len())..].to_string(),
            None => location,
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, _, body) = self
            .request(
                "PUT",
                &format!("{path}{sep}digest={digest}"),
                Some("application/octet-stream"),
                bytes.to_vec(),
            )
            .await;
        assert_eq!(status, 201, "uploading {digest}: {body:?}");
    }

    /// Pushes the image (its layer and config blobs, then its manifest) as `repo:tag`.
    pub async fn push(&self, repo: &str, tag: &str, image: &Image) {
        for (digest, bytes) in &image.blobs {
            if *digest != image.manifest_digest {
                self.push_blob(repo, digest, bytes).await;
            }
        }
        let (status, _, body) = self
            .request(
                "PUT",
                &format!("/v2/{repo}/manifests/{tag}"),
                Some("application/vnd.oci.image.manifest.v1+json"),
                image.manifest.clone(),
            )
            .await;
        assert_eq!(
            status, 201,
            "pushing the manifest of {repo}:{tag}: {body:?}"
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
