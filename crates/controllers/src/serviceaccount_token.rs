//! `serviceaccount-token` (upstream's legacy tokens controller): a Secret of type
//! `kubernetes.io/service-account-token` naming an existing ServiceAccount gets `token` (a
//! legacy JWT from the injected [`TokenGenerator`]), `ca.crt` and
//! `namespace`, and the account's uid as an annotation; one whose account is gone, or whose
//! recorded uid is not the account's, is deleted.
//!
//! Keys are the token Secrets (watched with the `type` field selector). An account event
//! queues the Secrets in its namespace that name it, so deleting an account deletes its tokens.
//! Writes go over the cached version; a conflict means a newer one is coming through the
//! watch. Deletes carry the Secret's uid as a precondition, as upstream's. Not done (upstream
//! does it): removing a deleted Secret from the account's `secrets` list.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::driver::{drive, on_objects, reflect};
use crate::error::{is_conflict, is_not_found};
use crate::{ControllerContext, Error, TokenGenerator};

pub const NAME: &str = "serviceaccount-token";
pub const SECRET_TYPE: &str = "kubernetes.io/service-account-token";
pub const SERVICE_ACCOUNT_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
pub const SERVICE_ACCOUNT_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
pub const TOKEN_KEY: &str = "token";
pub const CA_KEY: &str = "ca.crt";
pub const NAMESPACE_KEY: &str = "namespace";

/// The account a token Secret names: its name annotation, if the Secret is a token at all.
pub fn account_name(secret: &Secret) -> Option<&str> {
    if secret.type_.as_deref() != Some(SECRET_TYPE) {
        return None;
    }
    secret
        .annotations()
        .get(SERVICE_ACCOUNT_NAME_ANNOTATION)
        .map(String::as_str)
        .filter(|n| !n.is_empty())
}

/// Whether `secret` is a token of `sa` (upstream's `IsServiceAccountToken`): the type, the
/// name annotation, and the uid annotation when the Secret has one.
pub fn is_token_of(secret: &Secret, sa: &ServiceAccount) -> bool {
    if account_name(secret) != sa.metadata.name.as_deref() {
        return false;
    }
    match secret.annotations().get(SERVICE_ACCOUNT_UID_ANNOTATION) {
        Some(uid) if !uid.is_empty() => sa.metadata.uid.as_deref() == Some(uid.as_str()),
        _ => true,
    }
}

/// Which parts of a token Secret are missing or stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// `ca.crt` differs from the cluster CA (only when there is a CA to publish).
    pub ca: bool,
    /// `namespace` is empty.
    pub namespace: bool,
    /// `token` is empty.
    pub token: bool,
}

impl Needs {
    pub fn any(self) -> bool {
        self.ca || self.namespace || self.token
    }
}

/// Upstream's `secretUpdateNeeded`.
pub fn needs(secret: &Secret, ca_pem: &[u8]) -> Needs {
    let value = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.as_slice())
            .unwrap_or_default()
    };
    Needs {
        ca: !ca_pem.is_empty() && value(CA_KEY) != ca_pem,
        namespace: value(NAMESPACE_KEY).is_empty(),
        token: value(TOKEN_KEY).is_empty(),
    }
}

/// What to do with a token Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAction {
    /// Not a token Secret naming an account: not ours.
    Ignore,
    /// Its account does not exist (or is not the one it recorded): delete it, on the
    /// condition that it is still this Secret (its uid).
    Delete { uid: Option<String> },
    /// Fill in what is missing.
    Populate(Needs),
    /// Complete.
    UpToDate,
}

/// Decides what a token Secret needs, given its account as looked up by name (`None` when
/// there is none).
pub fn plan(secret: &Secret, account: Option<&ServiceAccount>, ca_pem: &[u8]) -> TokenAction {
    if account_name(secret).is_none() {
        return TokenAction::Ignore;
    }
    if !account.is_some_and(|sa| is_token_of(secret, sa)) {
        return TokenAction::Delete {
            uid: secret.metadata.uid.clone(),
        };
    }
    let needs = needs(secret, ca_pem);
    if needs.any() {
        TokenAction::Populate(needs)
    } else {
        TokenAction::UpToDate
    }
}

/// The Secret with what `needs` says filled in (`token` is the freshly generated token when
/// `needs.token`), and the account's name and uid recorded.
pub fn populate(
    secret: &Secret,
    sa: &ServiceAccount,
    ca_pem: &[u8],
    needs: Needs,
    token: Option<String>,
) -> Secret {
    let mut out = secret.clone();
    let namespace = out.namespace().unwrap_or_default();
    let data = out.data.get_or_insert_with(Default::default);
    if needs.ca {
        data.insert(CA_KEY.into(), ByteString(ca_pem.to_vec()));
    }
    if needs.namespace {
        data.insert(NAMESPACE_KEY.into(), ByteString(namespace.into_bytes()));
    }
    if let Some(token) = token.filter(|_| needs.token) {
        data.insert(TOKEN_KEY.into(), ByteString(token.into_bytes()));
    }
    let annotations = out.annotations_mut();
    annotations.insert(SERVICE_ACCOUNT_NAME_ANNOTATION.into(), sa.name_any());
    annotations.insert(
        SERVICE_ACCOUNT_UID_ANNOTATION.into(),
        sa.metadata.uid.clone().unwrap_or_default(),
    );
    out
}

struct State {
    client: Client,
    accounts: Store<ServiceAccount>,
    tokens: Arc<dyn TokenGenerator>,
    ca_pem: Vec<u8>,
}

/// Runs the controller until its watches end; refuses to start without a token generator.
pub async fn run(client: Client, ctx: Arc<ControllerContext>) -> Result<(), Error> {
    let tokens = ctx
        .token_generator
        .clone()
        .ok_or(Error::MissingDependency {
            controller: NAME,
            what: "a service-account token generator (the service-account signing key)",
        })?;
    let by_type = watcher::Config::default().fields(&format!("type={SECRET_TYPE}"));
    let (secrets, secret_events) =
        reflect(NAME, Api::<Secret>::all(ctx.informers(&client)), by_type);
    let (accounts, sa_events) = ctx.informer::<ServiceAccount>(NAME, &client).await;
    let secret_cache = secrets.clone();
    let triggers = vec![
        on_objects(secret_events, false, |s: &Secret| {
            Some(ObjectRef::from_obj(s))
        }),
        on_objects(sa_events, true, move |sa: &ServiceAccount| {
            let (ns, name) = (sa.namespace(), sa.name_any());
            secret_cache
                .state()
                .into_iter()
                .filter(|s| s.namespace() == ns && account_name(s) == Some(name.as_str()))
                .map(|s| ObjectRef::from_obj(&*s))
                .collect::<Vec<_>>()
        }),
    ];
    let state = Arc::new(State {
        client,
        accounts,
        tokens,
        ca_pem: ctx.ca_pem.clone().into_bytes(),
    });
    drive(NAME, &ctx, secrets, triggers, state, reconcile).await
}

/// The Secret's account: from the cache, or (on a miss or a uid mismatch, as the cache may lag
/// a re-created account) from the API.
async fn find_account(
    st: &State,
    secret: &Secret,
    name: &str,
) -> Result<Option<ServiceAccount>, Error> {
    let namespace = secret.namespace().unwrap_or_default();
    let cached = st.accounts.get(&ObjectRef::new(name).within(&namespace));
    if let Some(sa) = cached.filter(|sa| is_token_of(secret, sa)) {
        return Ok(Some((*sa).clone()));
    }
    let api = Api::<ServiceAccount>::namespaced(st.client.clone(), &namespace);
    Ok(api.get_opt(name).await?)
}

async fn reconcile(secret: Arc<Secret>, st: Arc<State>) -> Result<Action, Error> {
    let Some(name) = account_name(&secret) else {
        return Ok(Action::await_change());
    };
    st.accounts
        .wait_until_ready()
        .await
        .map_err(|_| Error::CacheStopped("serviceaccount"))?;
    let account = find_account(&st, &secret, name).await?;
    let namespace = secret.namespace().unwrap_or_default();
    let api = Api::<Secret>::namespaced(st.client.clone(), &namespace);
    match plan(&secret, account.as_ref(), &st.ca_pem) {
        TokenAction::Ignore | TokenAction::UpToDate => {}
        TokenAction::Delete { uid } => {
            let dp = DeleteParams {
                preconditions: uid.map(|uid| Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&secret.name_any(), &dp).await {
                Ok(_) => {
                    tracing::info!(controller = NAME, namespace, secret = %secret.name_any(), account = name, "deleted token of a missing service account")
                }
                // Already gone, or a different Secret by now (the uid precondition failed).
                Err(e) if is_not_found(&e) || is_conflict(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        TokenAction::Populate(needs) => {
            let Some(sa) = account else {
                return Ok(Action::await_change());
            };
            let token = if needs.token {
                let uid = sa.metadata.uid.as_deref().unwrap_or_default();
                let token = st
                    .tokens
                    .legacy_token(&namespace, name, uid, &secret.name_any())
                    .map_err(|message| Error::TokenGeneration {
                        namespace: namespace.clone(),
                        name: secret.name_any(),
                        message,
                    })?;
                Some(token)
            } else {
                None
            };
            let filled = populate(&secret, &sa, &st.ca_pem, needs, token);
            match api
                .replace(&secret.name_any(), &PostParams::default(), &filled)
                .await
            {
                Ok(_) => {
                    tracing::info!(controller = NAME, namespace, secret = %secret.name_any(), "populated service account token")
                }
                Err(e) if is_conflict(&e) || is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;
    use std::collections::BTreeMap;

    const CA: &[u8] = b"CA PEM";

    fn secret(type_: &str, annotations: &[(&str, &str)], data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("tok".into()),
                namespace: Some("ns".into()),
                uid: Some("secret-uid".into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            type_: Some(type_.into()),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    fn sa(name: &str, uid: &str) -> ServiceAccount {
        ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(uid.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    const NAME_A: (&str, &str) = (SERVICE_ACCOUNT_NAME_ANNOTATION, "builder");
    const COMPLETE: &[(&str, &str)] = &[
        (TOKEN_KEY, "jwt"),
        (CA_KEY, "CA PEM"),
        (NAMESPACE_KEY, "ns"),
    ];

    #[test]
    fn token_secrets_are_judged_by_their_account() {
        let account = sa("builder", "u1");
        let populate_all = TokenAction::Populate(Needs {
            ca: true,
            namespace: true,
            token: true,
        });
        let delete = TokenAction::Delete {
            uid: Some("secret-uid".into()),
        };
        let cases: Vec<(&str, Secret, Option<&ServiceAccount>, TokenAction)> = vec![
            (
                "opaque secret",
                secret("Opaque", &[NAME_A], &[]),
                Some(&account),
                TokenAction::Ignore,
            ),
            (
                "no account annotation",
                secret(SECRET_TYPE, &[], &[]),
                Some(&account),
                TokenAction::Ignore,
            ),
            (
                "empty secret",
                secret(SECRET_TYPE, &[NAME_A], &[]),
                Some(&account),
                populate_all,
            ),
            (
                "account missing",
                secret(SECRET_TYPE, &[NAME_A], COMPLETE),
                None,
                delete.clone(),
            ),
            (
                "uid mismatch",
                secret(
                    SECRET_TYPE,
                    &[NAME_A, (SERVICE_ACCOUNT_UID_ANNOTATION, "old")],
                    COMPLETE,
                ),
                Some(&account),
                delete.clone(),
            ),
            (
                "uid matches",
                secret(
                    SECRET_TYPE,
                    &[NAME_A, (SERVICE_ACCOUNT_UID_ANNOTATION, "u1")],
                    COMPLETE,
                ),
                Some(&account),
                TokenAction::UpToDate,
            ),
            (
                "complete without uid",
                secret(SECRET_TYPE, &[NAME_A], COMPLETE),
                Some(&account),
                TokenAction::UpToDate,
            ),
            (
                "stale CA only",
                secret(
                    SECRET_TYPE,
                    &[NAME_A],
                    &[(TOKEN_KEY, "jwt"), (CA_KEY, "old"), (NAMESPACE_KEY, "ns")],
                ),
                Some(&account),
                TokenAction::Populate(Needs {
                    ca: true,
                    ..Default::default()
                }),
            ),
            (
                "other account's secret",
                secret(
                    SECRET_TYPE,
                    &[(SERVICE_ACCOUNT_NAME_ANNOTATION, "other")],
                    COMPLETE,
                ),
                Some(&account),
                delete,
            ),
        ];
        for (what, s, account, want) in cases {
            assert_eq!(plan(&s, account, CA), want, "{what}");
        }
    }

    #[test]
    fn no_cluster_ca_means_ca_is_never_needed() {
        let s = secret(
            SECRET_TYPE,
            &[NAME_A],
            &[(TOKEN_KEY, "jwt"), (NAMESPACE_KEY, "ns")],
        );
        assert!(!needs(&s, b"").any());
    }

    #[test]
    fn populate_fills_what_is_needed_and_records_the_account() {
        let s = secret(SECRET_TYPE, &[NAME_A], &[(TOKEN_KEY, "keep")]);
        let needs = Needs {
            ca: true,
            namespace: true,
            token: false,
        };
        let out = populate(&s, &sa("builder", "u1"), CA, needs, Some("ignored".into()));
        let data = out.data.as_ref().unwrap();
        assert_eq!(data[TOKEN_KEY].0, b"keep");
        assert_eq!(data[CA_KEY].0, CA);
        assert_eq!(data[NAMESPACE_KEY].0, b"ns");
        assert_eq!(out.annotations()[SERVICE_ACCOUNT_UID_ANNOTATION], "u1");
        assert_eq!(
            out.annotations()[SERVICE_ACCOUNT_NAME_ANNOTATION],
            "builder"
        );

        let empty = secret(SECRET_TYPE, &[NAME_A], &[]);
        let out = populate(
            &empty,
            &sa("builder", "u1"),
            CA,
            Needs {
                token: true,
                ..Default::default()
            },
            Some("jwt".into()),
        );
        assert_eq!(out.data.as_ref().unwrap()[TOKEN_KEY].0, b"jwt");
    }
}
