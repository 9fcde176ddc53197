//! Test-only generator of `schema.txt`, the message table the codec is driven by.
//!
//! Nothing here runs in production: `schema_file_is_current` rebuilds the table from the
//! sources that two published crates ship and compares it with the committed file
//! (`RKUBE_PROTO_REGEN=1` rewrites it instead). The wire facts (messages, field numbers, wire
//! types, labels, message references, the group of each kind) come from the prost-generated
//! modules of `k8s-pb` 0.8.0 (Kubernetes v1.33 `generated.proto`). prost renames fields to
//! snake_case, which loses acronyms (`hostIPC` becomes `host_ipc`), so the JSON names, and
//! whether a field is required (no `omitempty`, hence emitted even when empty), come from the
//! serde code of `k8s-openapi` 0.29 (`v1_33`), matching fields of the same message by their
//! name with case and punctuation removed.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Module trees of k8s-pb left out: metrics APIs are not served and the test group is a fixture.
const SKIPPED_MODULES: &[&str] = &["metrics", "apimachinery/pkg/apis/testapigroup"];

#[derive(Debug)]
struct PbField {
    tag: u32,
    rust_name: String,
    label: char,
    ty: String,
    reference: Option<String>,
}

#[derive(Debug)]
struct PbMessage {
    module: String,
    name: String,
    fields: Vec<PbField>,
}

#[derive(Debug, Clone)]
struct JsonField {
    json: String,
    required: bool,
}

/// JSON facts of one k8s-openapi struct, by normalised field name.
type JsonFields = HashMap<String, JsonField>;

/// Lower-cases and drops everything but letters and digits, so `host_ipc`, `hostIPC`,
/// `x-kubernetes-list-type` and `x_kubernetes_list_type` compare equal.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = std::process::Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc runs");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc reports its host")
        .to_owned()
}

/// Where cargo unpacked a package of the current build graph.
fn package_dir(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        // Filtering to the host avoids resolving (and downloading) other platforms' crates.
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(host_triple())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let manifest = packages
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| panic!("package {name} not in the build graph"));
    Path::new(manifest)
        .parent()
        .expect("manifest has a parent")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable source dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Resolves a Rust type path written inside `module` (`super::super::meta::v1::Time`) to
/// `module/path.Name`.
fn resolve(module: &str, path: &str) -> String {
    let mut parts: Vec<&str> = module.split('/').filter(|s| !s.is_empty()).collect();
    let mut segs: Vec<&str> = path.split("::").collect();
    let name = segs.pop().expect("non-empty path");
    for seg in segs {
        match seg {
            "super" => {
                parts.pop();
            }
            "crate" => parts.clear(),
            other => parts.push(other),
        }
    }
    format!("{}.{}", parts.join("/"), name)
}

/// The message type named by a field's Rust type: the one path not under `::core`/`::prost`.
fn message_path(ty: &str) -> Option<&str> {
    ty.split(['<', '>', ','])
        .map(str::trim)
        .find(|t| !t.is_empty() && !t.starts_with("::"))
}

fn parse_attr(attr: &str) -> (char, String) {
    let inner = attr
        .trim()
        .trim_start_matches("#[prost(")
        .trim_end_matches(")]");
    if let Some(rest) = inner.strip_prefix("btree_map = \"") {
        let kv = rest.split('"').next().expect("quoted map types");
        let value = kv.split(',').nth(1).expect("map value type").trim();
        return ('m', value.to_owned());
    }
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    let ty = parts[0].split(' ').next().expect("type token").to_owned();
    let label = if parts.contains(&"repeated") {
        'r'
    } else {
        'o'
    };
    (label, ty)
}

fn parse_pb(root: &Path) -> (Vec<PbMessage>, BTreeMap<String, String>) {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut messages = Vec::new();
    let mut groups = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(root).expect("under root");
        let module = rel
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if module.is_empty() || SKIPPED_MODULES.iter().any(|s| module.starts_with(s)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable");
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        let mut current: Option<PbMessage> = None;
        while i < lines.len() {
            let line = lines[i].trim();
            if let Some(rest) = line.strip_prefix("pub struct ") {
                let (name, empty) = match rest.strip_suffix(" {}") {
                    Some(name) => (name, true),
                    None => (rest.trim_end_matches(" {"), false),
                };
                let message = PbMessage {
                    module: module.clone(),
                    name: name.trim().to_owned(),
                    fields: Vec::new(),
                };
                if empty {
                    messages.push(message);
                } else {
                    current = Some(message);
                }
            } else if line == "}" && lines[i].starts_with('}') {
                if let Some(m) = current.take() {
                    messages.push(m);
                }
            } else if line.starts_with("#[prost(") && current.is_some() {
                let (label, ty) = parse_attr(line);
                let tag: u32 = line
                    .split("tag = \"")
                    .nth(1)
                    .and_then(|t| t.split('"').next())
                    .and_then(|t| t.parse().ok())
                    .expect("tagged field");
                i += 1;
                let decl_start = i;
                let mut decl = String::new();
                while i < lines.len() {
                    decl.push_str(lines[i].trim());
                    let depth = decl.matches('<').count() - decl.matches('>').count();
                    if depth == 0 && decl.ends_with(',') {
                        break;
                    }
                    i += 1;
                }
                assert!(decl.starts_with("pub "), "field at line {decl_start}");
                let (name, rust_ty) = decl[4..].split_once(':').expect("field decl");
                let rust_name = name
                    .trim()
                    .trim_start_matches("r#")
                    .trim_end_matches('_')
                    .to_owned();
                let reference = (ty == "message")
                    .then(|| message_path(rust_ty).map(|p| resolve(&module, p)))
                    .flatten();
                let ty = if ty == "message" {
                    "msg".to_owned()
                } else {
                    ty
                };
                if let Some(m) = current.as_mut() {
                    m.fields.push(PbField {
                        tag,
                        rust_name,
                        label,
                        ty,
                        reference,
                    });
                }
            } else if line.starts_with("const API_VERSION") {
                let api_version = line.split('"').nth(1).expect("quoted api version");
                let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
                let prefix = module.rsplit_once('/').map_or("", |(p, _)| p);
                groups.insert(group.to_owned(), prefix.to_owned());
            }
            i += 1;
        }
    }
    (messages, groups)
}

/// k8s-openapi's JSON facts per `module.lowercasename`, and every JSON name it knows.
fn parse_openapi(root: &Path) -> (HashMap<String, JsonFields>, HashMap<String, String>) {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut types = HashMap::new();
    let mut global = HashMap::new();
    for file in files {
        let rel = file.strip_prefix(root).expect("under root");
        let module = rel
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&file).expect("readable");
        let Some(struct_start) = text.find("\npub struct ") else {
            continue;
        };
        let header = &text[struct_start + "\npub struct ".len()..];
        let name: String = header
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut optional: HashMap<String, bool> = HashMap::new();
        for line in header.lines().skip(1) {
            if line == "}" {
                break;
            }
            if let Some(decl) = line.strip_prefix("    pub ") {
                if let Some((field, ty)) = decl.split_once(':') {
                    optional.insert(field.to_owned(), ty.trim().starts_with("Option<"));
                }
            }
        }
        let mut fields = JsonFields::new();
        for line in text.lines() {
            let line = line.trim();
            let Some((json, rest)) = line.split_once("\" => Field::Key_") else {
                continue;
            };
            let json = json.trim_start_matches('"').to_owned();
            let rust = rest.trim_end_matches(',');
            let required = optional.get(rust).is_some_and(|o| !o);
            global
                .entry(normalise(&json))
                .or_insert_with(|| json.clone());
            fields.insert(normalise(&json), JsonField { json, required });
        }
        types.insert(format!("{module}.{}", name.to_lowercase()), fields);
    }
    (types, global)
}

/// `pod_i_ps` to `podIPs`: only used when k8s-openapi has no such field anywhere.
fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    for (i, part) in snake.split('_').enumerate() {
        let mut chars = part.chars();
        match chars.next() {
            Some(c) if i > 0 => {
                out.push(c.to_ascii_uppercase());
                out.extend(chars);
            }
            Some(c) => {
                out.push(c);
                out.extend(chars);
            }
            None => {}
        }
    }
    out
}

/// Builds the schema text.
pub(crate) fn generate() -> String {
    let pb_root = package_dir("k8s-pb").join("src");
    let openapi_root = package_dir("k8s-openapi").join("src").join("v1_33");
    let (mut messages, groups) = parse_pb(&pb_root);
    let (types, global) = parse_openapi(&openapi_root);
    messages.sort_by(|a, b| (&a.module, &a.name).cmp(&(&b.module, &b.name)));

    let mut out = String::new();
    out.push_str(
        "# Kubernetes v1.33 protobuf messages with their JSON field names.\n\
         # Generated from the sources of k8s-pb 0.8.0 and k8s-openapi 0.29.0 (v1_33) by src/gen.rs;\n\
         # regenerate with `RKUBE_PROTO_REGEN=1 cargo test -p rkube-proto schema_file_is_current`.\n\
         # G <group> <module prefix>\n\
         # M <module>.<Message>\n\
         # labels: o optional, r repeated, m map (string keys), i embedded (inlined in JSON), ! required\n\
         # F <number> <json name> <o|r|m|i>[!] <string|bytes|int32|int64|bool|double|msg> [<message>]\n",
    );
    for (group, prefix) in &groups {
        let group = if group.is_empty() { "-" } else { group };
        let _ = writeln!(out, "G {group} {prefix}");
    }
    // Go embeds some structs (`LocalObjectReference` in `SecretKeySelector`, `VolumeSource` in
    // `Volume`): protobuf keeps them as a nested message while JSON flattens their fields into
    // the parent. Such a field is a message field that k8s-openapi's flattened struct lacks;
    // older versions of a message that k8s-openapi does not carry inherit the finding by name.
    let mut embedded: HashMap<(String, String), bool> = HashMap::new();
    for m in &messages {
        if let Some(json_fields) = types.get(&format!("{}.{}", m.module, m.name.to_lowercase())) {
            for f in &m.fields {
                let key = normalise(&f.rust_name);
                let inline = f.ty == "msg" && f.label == 'o' && !json_fields.contains_key(&key);
                embedded.insert((m.name.clone(), f.rust_name.clone()), inline);
            }
        }
    }
    for m in &messages {
        let _ = writeln!(out, "M {}.{}", m.module, m.name);
        let json_fields = types.get(&format!("{}.{}", m.module, m.name.to_lowercase()));
        let mut fields: Vec<&PbField> = m.fields.iter().collect();
        fields.sort_by_key(|f| f.tag);
        for f in fields {
            let key = normalise(&f.rust_name);
            let inline = embedded
                .get(&(m.name.clone(), f.rust_name.clone()))
                .copied()
                .unwrap_or(false);
            let (json, required) = match json_fields.and_then(|j| j.get(&key)) {
                Some(j) => (j.json.clone(), j.required),
                None => (
                    global
                        .get(&key)
                        .cloned()
                        .unwrap_or_else(|| lower_camel(&f.rust_name)),
                    false,
                ),
            };
            let label = if inline { 'i' } else { f.label };
            let bang = if required { "!" } else { "" };
            let _ = write!(out, "F {} {} {}{} {}", f.tag, json, label, bang, f.ty);
            if let Some(r) = &f.reference {
                let _ = write!(out, " {r}");
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_file_is_current() {
        let generated = super::generate();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/schema.txt");
        if std::env::var_os("RKUBE_PROTO_REGEN").is_some() {
            std::fs::write(path, &generated).expect("schema.txt is writable");
        }
        let committed = std::fs::read_to_string(path).expect("schema.txt is readable");
        assert!(
            committed == generated,
            "src/schema.txt is stale; regenerate with RKUBE_PROTO_REGEN=1"
        );
    }
}
