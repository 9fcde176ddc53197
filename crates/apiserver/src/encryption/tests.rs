use base64::Engine as _;

use super::*;

const PLAIN: &[u8] = br#"{"kind":"Secret","apiVersion":"v1","data":{"k":"dg=="}}"#;
const KEY: &[u8] = b"/registry/secrets/default/s1";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A key secret of `len` bytes, different per `seed`.
fn secret(len: usize, seed: u8) -> String {
    b64(&(0..len)
        .map(|i| seed.wrapping_add(i as u8))
        .collect::<Vec<_>>())
}

/// A configuration for `secrets` with the given provider YAML fragments, in order.
fn config(providers: &[String]) -> EncryptionConfig {
    let yaml = config_yaml(providers);
    match EncryptionConfig::from_bytes(yaml.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("config did not load: {e}\n{yaml}"),
    }
}

fn config_yaml(providers: &[String]) -> String {
    let mut yaml = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n\
         resources:\n- resources: [secrets]\n  providers:\n",
    );
    for p in providers {
        yaml.push_str("  - ");
        yaml.push_str(p);
        yaml.push('\n');
    }
    yaml
}

/// A provider fragment with named keys: `keyed("aesgcm", &[("k1", secret)])`.
fn keyed(provider: &str, keys: &[(&str, String)]) -> String {
    let keys: Vec<String> = keys
        .iter()
        .map(|(name, secret)| format!("{{name: {name}, secret: {secret:?}}}"))
        .collect();
    format!("{provider}: {{keys: [{}]}}", keys.join(", "))
}

fn identity() -> String {
    "identity: {}".to_string()
}

fn secrets(c: &EncryptionConfig) -> Arc<Transformer> {
    c.transformer("", "secrets")
        .unwrap_or_else(|| panic!("no transformer for secrets"))
}

fn decrypt_ok(t: &Transformer, key: &[u8], stored: &[u8]) -> (Vec<u8>, bool) {
    t.decrypt(key, stored)
        .unwrap_or_else(|e| panic!("decrypt failed: {e}"))
}

fn encrypt_ok(t: &Transformer, key: &[u8], plain: &[u8]) -> Vec<u8> {
    t.encrypt(key, plain)
        .unwrap_or_else(|e| panic!("encrypt failed: {e}"))
}

/// Every encrypting provider and key size upstream accepts, each key named after its case
/// so that no two share a prefix (a wrong AES-CBC key can pass the padding check by
/// chance, so tests must not depend on it failing).
fn encrypting_providers() -> Vec<(String, String)> {
    [
        ("aesgcm", 16, 1),
        ("aesgcm", 24, 2),
        ("aesgcm", 32, 3),
        ("aescbc", 16, 4),
        ("aescbc", 24, 5),
        ("aescbc", 32, 6),
        ("secretbox", 32, 7),
    ]
    .into_iter()
    .map(|(provider, len, seed)| {
        let name = format!("{provider}-{len}");
        let fragment = keyed(provider, &[(&name, secret(len, seed))]);
        (name, fragment)
    })
    .collect()
}

#[test]
fn every_provider_round_trips_with_upstreams_prefix() {
    for (name, provider) in encrypting_providers() {
        let t = secrets(&config(&[provider]));
        let stored = encrypt_ok(&t, KEY, PLAIN);
        let kind = name.split('-').next().unwrap_or_default();
        let prefix = format!("k8s:enc:{kind}:v1:{name}:");
        assert!(stored.starts_with(prefix.as_bytes()), "{name}: prefix");
        assert!(
            !stored.windows(PLAIN.len()).any(|w| w == PLAIN),
            "{name}: plaintext visible in stored value"
        );
        let (plain, stale) = decrypt_ok(&t, KEY, &stored);
        assert_eq!(plain, PLAIN, "{name}");
        assert!(!stale, "{name}: written with the first key is not stale");
        // Random nonces: the same plaintext never stores the same bytes twice.
        assert_ne!(encrypt_ok(&t, KEY, PLAIN), stored, "{name}: nonce reuse");
    }
    let t = secrets(&config(&[identity()]));
    let stored = encrypt_ok(&t, KEY, PLAIN);
    assert_eq!(stored, PLAIN, "identity stores the plaintext");
    assert_eq!(decrypt_ok(&t, KEY, &stored), (PLAIN.to_vec(), false));
}

#[test]
fn empty_plaintext_round_trips() {
    for (name, provider) in encrypting_providers() {
        let t = secrets(&config(&[provider]));
        let stored = encrypt_ok(&t, KEY, b"");
        assert_eq!(decrypt_ok(&t, KEY, &stored).0, b"", "{name}");
    }
}

#[test]
fn values_sealed_by_an_independent_implementation_open() {
    // Produced with Python's `cryptography` package in upstream's layout
    // (prefix, nonce or IV, ciphertext), with keys bytes(range(n)) for GCM and
    // bytes(range(100, 100 + n)) for CBC.
    let cases = [
        ("aesgcm", 16, 0, "azhzOmVuYzphZXNnY206djE6azE6BwcHBwcHBwcHBwcH6m4/tA/f4gPVGEegbdycWxrmK3rbqSD+mKGWS2Dr4nOaENqt8Qv6Ouhu1s6uQhOzlPqSYgj+OeQce8hLcKMXIKz16q/K5wc="),
        ("aesgcm", 24, 0, "azhzOmVuYzphZXNnY206djE6azE6BwcHBwcHBwcHBwcHFXAICxD5Ug0eLiS3aheoomxbVZG3oB3I7nJ1cKbqj5IslKAe1XMrwd3WRILYNY8QGT/djsx2k0lkV/Unu+SF7U4XTXOpiTU="),
        ("aesgcm", 32, 0, "azhzOmVuYzphZXNnY206djE6azE6BwcHBwcHBwcHBwcHdEjNNQFr9c7kznbj8jSAuY1+7APhoeRrjdIxlCbkEG0WZt1c5SGA8yDE2t+pNeME3y+OdPfcfEXaVtS7XG5IySmHG8JpAZ0="),
        ("aescbc", 16, 100, "azhzOmVuYzphZXNjYmM6djE6azE6CQkJCQkJCQkJCQkJCQkJCRLFEZKdu+fuvpG6GmAcx4hYbzju40jGKALrkzr5KmaxH5w4Iy47YkAFtdv0ao1HauMoUeTPntwLo9TGJ3eOFEs="),
        ("aescbc", 24, 100, "azhzOmVuYzphZXNjYmM6djE6azE6CQkJCQkJCQkJCQkJCQkJCYazxxqugxzB/h5xk0ERgFYoASi29HmbCgN5lx+h7V0bHZ46gCyMUqMKPEeKpMAk3cWOpb3wGFENiyHow1rSx8c="),
        ("aescbc", 32, 100, "azhzOmVuYzphZXNjYmM6djE6azE6CQkJCQkJCQkJCQkJCQkJCcGlXLbFYmViEHKqwFgCEvyg/cWp+j7jju24WpnvDKNkxvNh+1nUnP5XspNDMg/KxcHh6y7744sHaf/qs/SlKHM="),
    ];
    for (provider, len, seed, stored) in cases {
        let t = secrets(&config(&[keyed(provider, &[("k1", secret(len, seed))])]));
        let stored = base64::engine::general_purpose::STANDARD
            .decode(stored)
            .unwrap_or_default();
        let (plain, stale) = decrypt_ok(&t, KEY, &stored);
        assert_eq!(plain, PLAIN, "{provider}-{len}");
        assert!(!stale);
    }
}

#[test]
fn aesgcm_binds_the_value_to_its_storage_key() {
    let t = secrets(&config(&[keyed("aesgcm", &[("k1", secret(32, 1))])]));
    let stored = encrypt_ok(&t, KEY, PLAIN);
    let err = t
        .decrypt(b"/registry/secrets/default/other", &stored)
        .expect_err("a value moved to another key must not open");
    assert!(err.to_string().contains("authentication failed"), "{err}");
}

#[test]
fn tampered_values_do_not_open() {
    for (name, provider) in encrypting_providers() {
        let t = secrets(&config(&[provider]));
        let stored = encrypt_ok(&t, KEY, PLAIN);
        // 17 bytes from the end lies in the ciphertext for every provider; for AES-CBC it
        // is the last byte of the next-to-last block, which flips the padding byte, so
        // even the provider without integrity fails deterministically.
        let mut tampered = stored.clone();
        let at = stored.len() - 17;
        tampered[at] ^= 1;
        assert!(t.decrypt(KEY, &tampered).is_err(), "{name}: tampered");
        let truncated = &stored[..stored.len() - 17];
        assert!(t.decrypt(KEY, truncated).is_err(), "{name}: truncated");
    }
}

#[test]
fn key_rotation_reads_old_values_and_writes_with_the_new_key() {
    for provider in ["aesgcm", "aescbc", "secretbox"] {
        let old = secret(32, 1);
        let new = secret(32, 2);
        let before = secrets(&config(&[keyed(provider, &[("old", old.clone())])]));
        let old_value = encrypt_ok(&before, KEY, PLAIN);

        let after = secrets(&config(&[keyed(
            provider,
            &[("new", new.clone()), ("old", old.clone())],
        )]));
        let (plain, stale) = decrypt_ok(&after, KEY, &old_value);
        assert_eq!(plain, PLAIN, "{provider}");
        assert!(stale, "{provider}: a value under the second key is stale");

        let new_value = encrypt_ok(&after, KEY, PLAIN);
        let prefix = format!("k8s:enc:{provider}:v1:new:");
        assert!(new_value.starts_with(prefix.as_bytes()), "{provider}");
        assert_eq!(decrypt_ok(&after, KEY, &new_value), (PLAIN.to_vec(), false));

        // Dropping the old key too early loses the old values.
        let only_new = secrets(&config(&[keyed(provider, &[("new", new)])]));
        let err = only_new
            .decrypt(KEY, &old_value)
            .expect_err("old key removed");
        assert!(err.to_string().contains("no matching key"), "{err}");
    }
}

#[test]
fn provider_rotation_marks_values_of_later_providers_stale() {
    let gcm = keyed("aesgcm", &[("g", secret(32, 1))]);
    let cbc = keyed("aescbc", &[("c", secret(32, 2))]);
    let gcm_value = encrypt_ok(&secrets(&config(std::slice::from_ref(&gcm))), KEY, PLAIN);
    let t = secrets(&config(&[cbc, gcm]));
    assert_eq!(decrypt_ok(&t, KEY, &gcm_value), (PLAIN.to_vec(), true));
    let written = encrypt_ok(&t, KEY, PLAIN);
    assert!(written.starts_with(b"k8s:enc:aescbc:v1:c:"));
    assert_eq!(decrypt_ok(&t, KEY, &written), (PLAIN.to_vec(), false));
}

#[test]
fn the_same_provider_listed_twice_tries_both_key_sets() {
    // Upstream's rotation example: two aescbc entries sharing a prefix; a failure
    // under the first must not stop the second from being tried.
    let k2 = keyed("aescbc", &[("2", secret(32, 2))]);
    let k1 = keyed("aescbc", &[("1", secret(32, 1))]);
    let old_value = encrypt_ok(&secrets(&config(std::slice::from_ref(&k1))), KEY, PLAIN);
    let t = secrets(&config(&[k2, k1]));
    assert_eq!(decrypt_ok(&t, KEY, &old_value), (PLAIN.to_vec(), true));
}

#[test]
fn identity_first_writes_plaintext_and_reads_every_encrypted_provider() {
    let mut providers = vec![identity()];
    providers.extend(encrypting_providers().into_iter().map(|(_, p)| p));
    let t = secrets(&config(&providers));
    for (name, provider) in encrypting_providers() {
        let value = encrypt_ok(&secrets(&config(&[provider])), KEY, PLAIN);
        let (plain, stale) = t
            .decrypt(KEY, &value)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(plain, PLAIN, "{name}");
        assert!(
            stale,
            "{name}: encrypted data under identity-first is stale"
        );
    }
    assert_eq!(encrypt_ok(&t, KEY, PLAIN), PLAIN);
    assert_eq!(decrypt_ok(&t, KEY, PLAIN), (PLAIN.to_vec(), false));
}

#[test]
fn plaintext_reads_only_when_identity_is_configured() {
    let gcm = keyed("aesgcm", &[("k1", secret(32, 1))]);
    let without = secrets(&config(std::slice::from_ref(&gcm)));
    let err = without
        .decrypt(KEY, PLAIN)
        .expect_err("plaintext without identity");
    assert!(
        err.to_string().contains("no matching prefix found"),
        "{err}"
    );

    let with = secrets(&config(&[gcm, identity()]));
    assert_eq!(
        decrypt_ok(&with, KEY, PLAIN),
        (PLAIN.to_vec(), true),
        "plaintext is stale once a real provider comes first"
    );
}

#[test]
fn identity_alone_refuses_encrypted_values() {
    let value = encrypt_ok(
        &secrets(&config(&[keyed("aesgcm", &[("k1", secret(32, 1))])])),
        KEY,
        PLAIN,
    );
    let t = secrets(&config(&[identity()]));
    assert!(t.decrypt(KEY, &value).is_err());
}

#[test]
fn unknown_key_names_and_providers_are_errors() {
    let t = secrets(&config(&[keyed("aesgcm", &[("k1", secret(32, 1))])]));
    let other = secrets(&config(&[keyed("aesgcm", &[("k9", secret(32, 1))])]));
    let value = encrypt_ok(&other, KEY, PLAIN);
    let err = t.decrypt(KEY, &value).expect_err("unknown key");
    assert!(
        err.to_string().contains("no matching key was found"),
        "{err}"
    );
    let err = t
        .decrypt(KEY, b"k8s:enc:kms:v2:x:abc")
        .expect_err("unknown provider");
    assert!(
        err.to_string().contains("no matching prefix found"),
        "{err}"
    );
}

fn load_err(yaml: &str) -> String {
    match EncryptionConfig::from_bytes(yaml.as_bytes()) {
        Ok(_) => panic!("config should not load:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_configurations_are_refused_with_the_field_path() {
    let with = |p: &str| config_yaml(&[p.to_string()]);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "short aes key",
            with(&keyed("aesgcm", &[("k1", secret(8, 1))])),
            "resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: \"REDACTED\": \
             secret is not of the expected length, got 8, expected one of [16 24 32]",
        ),
        (
            "short secretbox key",
            with(&keyed("secretbox", &[("k1", secret(16, 1))])),
            "resources[0].providers[0].secretbox.keys[0].secret: Invalid value: \"REDACTED\": \
             secret is not of the expected length, got 16, expected one of [32]",
        ),
        (
            "bad base64",
            with(&keyed("aescbc", &[("k1", "not base64!".to_string())])),
            "resources[0].providers[0].aescbc.keys[0].secret: Invalid value: \"REDACTED\": \
             secrets must be base64 encoded",
        ),
        (
            "missing name",
            with("aesgcm: {keys: [{secret: AAECAwQFBgcICQoLDA0ODw==}]}"),
            "resources[0].providers[0].aesgcm.keys[0].name: Required value: name is a \
             mandatory field for a key",
        ),
        (
            "missing secret",
            with("aesgcm: {keys: [{name: k1}]}"),
            "resources[0].providers[0].aesgcm.keys[0].secret: Required value",
        ),
        (
            "duplicate key names",
            with(&keyed(
                "aesgcm",
                &[("k1", secret(16, 1)), ("k1", secret(16, 2))],
            )),
            "resources[0].providers[0].aesgcm.keys[1].name: Duplicate value: \"k1\"",
        ),
        (
            "no keys",
            with("aesgcm: {keys: []}"),
            "resources[0].providers[0].aesgcm.keys: Required value: at least one keys is \
             required",
        ),
        (
            "two providers in one element",
            with(&format!(
                "{{identity: {{}}, {}}}",
                keyed("aesgcm", &[("k1", secret(16, 1))])
            )),
            "more than one provider specified in a single element",
        ),
        (
            "empty provider",
            with("{}"),
            "provider does not contain any of the expected providers",
        ),
        (
            "kms",
            with("kms: {apiVersion: v2, name: p, endpoint: 'unix:///tmp/kms.sock'}"),
            "resources[0].providers[0].kms: Forbidden: KMS providers are not supported",
        ),
        (
            "no providers",
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n\
             resources:\n- resources: [secrets]\n  providers: []\n"
                .to_string(),
            "resources[0].providers: Required value: at least one resources[0].providers is \
             required",
        ),
        (
            "no resources entries",
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n\
             resources: []\n"
                .to_string(),
            "resources: Required value",
        ),
        (
            "bare star",
            with(&identity()).replace("[secrets]", "['*']"),
            "resources[0].resources[0]: Invalid value: \"*\": use '*.' to encrypt all",
        ),
        (
            "capitals",
            with(&identity()).replace("[secrets]", "[Secrets]"),
            "resource name should not contain capital letters",
        ),
        (
            "resource across groups",
            with(&identity()).replace("[secrets]", "['secrets.*']"),
            "encrypting the same resource across groups is not supported",
        ),
        (
            "events.k8s.io",
            with(&identity()).replace("[secrets]", "['events.events.k8s.io']"),
            "Use 'events' instead",
        ),
        (
            "overlap in one list",
            with(&identity()).replace("[secrets]", "[secrets, '*.']"),
            "using overlapping resources such as 'secrets' and '*.'",
        ),
        (
            "duplicate in one list",
            with(&identity()).replace("[secrets]", "[secrets, secrets]"),
            "the same resource cannot be specified multiple times",
        ),
        (
            "unknown field",
            with("identity: {}\n    pandas: are the best"),
            "unknown field `pandas`",
        ),
        (
            "wrong kind",
            with(&identity()).replace("kind: EncryptionConfiguration", "kind: Policy"),
            "no kind \"Policy\" is registered",
        ),
        (
            "missing kind",
            with(&identity()).replace("kind: EncryptionConfiguration\n", ""),
            "Object 'Kind' is missing",
        ),
        ("empty file", String::new(), "is empty"),
    ];
    for (name, yaml, want) in cases {
        let err = load_err(&yaml);
        assert!(err.contains(want), "{name}: got {err:?}, want {want:?}");
    }
}

#[test]
fn several_errors_are_reported_together() {
    let yaml = config_yaml(&[
        keyed("aesgcm", &[("k1", secret(8, 1))]),
        keyed("secretbox", &[("k1", secret(8, 1))]),
    ]);
    let err = load_err(&yaml);
    assert!(err.contains("providers[0].aesgcm"), "{err}");
    assert!(err.contains("providers[1].secretbox"), "{err}");
    assert!(
        err.contains("[") && err.contains(", "),
        "aggregate form: {err}"
    );
}

#[test]
fn resources_after_a_covering_wildcard_entry_are_refused() {
    for (first, second, want) in [
        (
            "'*.apps'",
            "deployments.apps",
            "\"deployments.apps\" is masked by earlier rule \"*.apps\"",
        ),
        (
            "'*.'",
            "secrets",
            "\"secrets\" is masked by earlier rule \"*.\"",
        ),
        (
            "'*.*'",
            "configmaps",
            "\"configmaps\" is masked by earlier rule \"*.*\"",
        ),
    ] {
        let yaml = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n\
             resources:\n- resources: [{first}]\n  providers: [{{identity: {{}}}}]\n\
             - resources: [{second}]\n  providers: [{{identity: {{}}}}]\n"
        );
        let err = load_err(&yaml);
        assert!(err.contains(want), "got {err:?}, want {want:?}");
    }
}

#[test]
fn lookup_prefers_exact_then_group_wildcard_then_everything() {
    let yaml = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n\
         resources:\n\
         - resources: [secrets, deployments.apps]\n  providers: [{{{}}}]\n\
         - resources: ['*.apps']\n  providers: [{{{}}}]\n\
         - resources: ['*.']\n  providers: [{{{}}}]\n\
         - resources: ['*.*']\n  providers: [{{{}}}]\n",
        keyed("aesgcm", &[("exact", secret(32, 1))]),
        keyed("aesgcm", &[("apps", secret(32, 2))]),
        keyed("aesgcm", &[("core", secret(32, 3))]),
        keyed("aesgcm", &[("all", secret(32, 4))]),
    );
    let c = EncryptionConfig::from_bytes(yaml.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    for (group, resource, key_name) in [
        ("", "secrets", "exact"),
        ("apps", "deployments", "exact"),
        ("apps", "statefulsets", "apps"),
        ("", "configmaps", "core"),
        ("batch", "jobs", "all"),
        ("rbac.authorization.k8s.io", "roles", "all"),
    ] {
        let t = c
            .transformer(group, resource)
            .unwrap_or_else(|| panic!("{group}/{resource}: no transformer"));
        let stored = encrypt_ok(&t, KEY, PLAIN);
        let prefix = format!("k8s:enc:aesgcm:v1:{key_name}:");
        assert!(
            stored.starts_with(prefix.as_bytes()),
            "{group}/{resource} should use {key_name}"
        );
    }
}

#[test]
fn resources_not_named_have_no_transformer() {
    let c = config(&[identity()]);
    assert!(c.transformer("", "secrets").is_some());
    assert!(c.transformer("", "configmaps").is_none());
    // "secrets" is the core group's; a same-named resource elsewhere is not covered.
    assert!(c.transformer("example.com", "secrets").is_none());
}

#[test]
fn json_and_the_legacy_kind_are_accepted() {
    let json = format!(
        r#"{{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1",
            "resources":[{{"resources":["secrets"],"providers":[
              {{"aescbc":{{"keys":[{{"name":"k1","secret":"{}"}}]}}}},{{"identity":{{}}}}]}}]}}"#,
        secret(32, 1)
    );
    let c = EncryptionConfig::from_bytes(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert!(encrypt_ok(&secrets(&c), KEY, PLAIN).starts_with(b"k8s:enc:aescbc:v1:k1:"));

    let legacy = config_yaml(&[identity()])
        .replace("apiserver.config.k8s.io/v1", "v1")
        .replace("EncryptionConfiguration", "EncryptionConfig");
    assert!(EncryptionConfig::from_bytes(legacy.as_bytes()).is_ok());
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("enc.yaml");
    std::fs::write(&path, config_yaml(&[identity()])).unwrap_or_else(|e| panic!("{e}"));
    let c = EncryptionConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.transformer("", "secrets").is_some());

    let missing = dir.path().join("missing.yaml");
    let err = EncryptionConfig::load(&missing).expect_err("missing file");
    assert!(err.to_string().contains("missing.yaml"), "{err}");
}

#[test]
fn debug_output_never_shows_key_material() {
    let s = secret(32, 1);
    let c = config(&[keyed("aesgcm", &[("visible-name", s.clone())])]);
    let shown = format!("{c:?}");
    assert!(shown.contains("visible-name"), "{shown}");
    assert!(!shown.contains(&s), "{shown}");
}
