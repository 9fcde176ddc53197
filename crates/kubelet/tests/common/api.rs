//! A real API server (rkube-apiserver in process, on an embedded store in a temporary
//! directory, RBAC and the default admission plugins on) and a cluster-admin client for it.
//! For tests whose kubelet code reads the API; dropped with the test.

use std::sync::Arc;

pub struct Api {
    pub client: kube::Client,
    pub server: Arc<rkube_apiserver::ApiServer>,
    _dir: tempfile::TempDir,
}

impl Api {
    pub async fn start() -> Api {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn rkube_store::Store> = Arc::new(
            rkube_store::embedded::EmbeddedStore::open(dir.path())
                .await
                .expect("opening the embedded store"),
        );
        let server = rkube_apiserver::ApiServer::new(
            store,
            rkube_apiserver::Config::default(),
            rkube_apiserver::Security {
                admission: rkube_apiserver::admission::Admission::default_plugins(),
                ..Default::default()
            },
        )
        .await
        .expect("starting the API server");
        let client = server.client(rkube_apiserver::authz::User {
            name: "test-admin".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        });
        Api {
            client,
            server,
            _dir: dir,
        }
    }
}
