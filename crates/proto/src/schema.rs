//! The message table the codec walks: every Kubernetes v1.33 protobuf message with its field
//! numbers, wire types and JSON names, parsed once from the generated `schema.txt`, plus the
//! lookup from an object's `apiVersion`/`kind` to its message.

use std::collections::HashMap;
use std::sync::OnceLock;

const SCHEMA_TEXT: &str = include_str!("schema.txt");

/// The module holding `meta.k8s.io` types, which every group version also serves.
pub(crate) const META_V1: &str = "apimachinery/pkg/apis/meta/v1";

/// meta/v1 kinds registered in every group version (client-go sends `DeleteOptions` under the
/// resource's own apiVersion) or served unversioned under `v1`.
const META_KINDS: &[&str] = &[
    "Status",
    "WatchEvent",
    "DeleteOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "GetOptions",
    "ListOptions",
    "APIVersions",
    "APIGroup",
    "APIGroupList",
    "APIResourceList",
];

/// Top-level kinds that carry no `metadata` field.
const KINDS_WITHOUT_METADATA: &[&str] = &["AdmissionReview", "ConversionReview"];

/// The scalar or message type of a field (for maps: of the value; keys are always strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    String,
    Bytes,
    Int32,
    Int64,
    Bool,
    Double,
    Message(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    Optional,
    Repeated,
    Map,
    /// A Go embedded struct: a nested message on the wire, flattened into the parent in JSON.
    Embedded,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) number: u32,
    pub(crate) json: String,
    pub(crate) label: Label,
    pub(crate) ty: Type,
    /// Emitted by Go's JSON encoder even when empty (no `omitempty`).
    pub(crate) required: bool,
}

/// Messages whose JSON form is not an object of their fields (custom `MarshalJSON` upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// `metav1.Time`: `{seconds, nanos}` as RFC 3339 with whole seconds, zero as `null`.
    Time,
    /// `metav1.MicroTime`: as RFC 3339 with microseconds.
    MicroTime,
    /// `metav1.Duration`: nanoseconds as a Go duration string.
    Duration,
    /// `intstr.IntOrString`: `{type, intVal, strVal}` as a number or a string.
    IntOrString,
    /// `resource.Quantity`: `{string}` as that string.
    Quantity,
    /// `runtime.RawExtension`, apiextensions `JSON`, `metav1.FieldsV1`: `{raw}` holding JSON.
    RawJson,
    /// `metav1.Verbs`, `ExtraValue`: `{items}` as a bare string array.
    StringList,
    /// apiextensions `JSONSchemaPropsOrArray`: a schema or an array of schemas.
    PropsOrArray,
    /// apiextensions `JSONSchemaPropsOrBool`: a schema or a boolean.
    PropsOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray`: a schema or an array of strings.
    PropsOrStringArray,
}

impl Special {
    fn of(name: &str) -> Option<Special> {
        let (module, short) = name.rsplit_once('.')?;
        let apiextensions = module.starts_with("apiextensions_apiserver/");
        Some(match (module, short) {
            (META_V1, "Time") => Special::Time,
            (META_V1, "MicroTime") => Special::MicroTime,
            (META_V1, "Duration") => Special::Duration,
            (META_V1, "FieldsV1") => Special::RawJson,
            (META_V1, "Verbs") => Special::StringList,
            ("apimachinery/pkg/util/intstr", "IntOrString") => Special::IntOrString,
            ("apimachinery/pkg/api/resource", "Quantity" | "QuantityValue") => Special::Quantity,
            ("apimachinery/pkg/runtime", "RawExtension") => Special::RawJson,
            (_, "ExtraValue") => Special::StringList,
            (_, "Json") if apiextensions => Special::RawJson,
            (_, "JsonSchemaPropsOrArray") if apiextensions => Special::PropsOrArray,
            (_, "JsonSchemaPropsOrBool") if apiextensions => Special::PropsOrBool,
            (_, "JsonSchemaPropsOrStringArray") if apiextensions => Special::PropsOrStringArray,
            _ => return None,
        })
    }
}

#[derive(Debug)]
pub(crate) struct Message {
    /// `module/path.Name`, e.g. `api/core/v1.Pod`.
    pub(crate) name: String,
    pub(crate) fields: Vec<Field>,
    pub(crate) special: Option<Special>,
}

impl Message {
    pub(crate) fn field(&self, number: u32) -> Option<&Field> {
        self.fields.iter().find(|f| f.number == number)
    }

    /// The `Name` part of `module.Name`.
    pub(crate) fn short_name(&self) -> &str {
        self.name.rsplit_once('.').map_or(&self.name, |(_, n)| n)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Schema {
    pub(crate) messages: Vec<Message>,
    by_name: HashMap<String, usize>,
    /// API group to the module prefix holding its versions (`apps` to `api/apps`).
    groups: HashMap<String, String>,
}

impl Schema {
    pub(crate) fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| Schema::parse(SCHEMA_TEXT))
    }

    pub(crate) fn message(&self, index: usize) -> &Message {
        &self.messages[index]
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Parses the generated table. The text is a build input checked by a test, so a malformed
    /// line is skipped rather than failing every request.
    fn parse(text: &str) -> Schema {
        let mut schema = Schema::default();
        // Field lines name their message type before that message's own `M` line may have been
        // read, so types resolve in a second pass.
        let mut pending: Vec<Vec<(Field, Option<&str>)>> = Vec::new();
        for line in text.lines() {
            let mut parts = line.split(' ');
            match parts.next() {
                Some("G") => {
                    if let (Some(group), Some(prefix)) = (parts.next(), parts.next()) {
                        let group = if group == "-" { "" } else { group };
                        schema.groups.insert(group.to_owned(), prefix.to_owned());
                    }
                }
                Some("M") => {
                    if let Some(name) = parts.next() {
                        schema
                            .by_name
                            .insert(name.to_owned(), schema.messages.len());
                        schema.messages.push(Message {
                            name: name.to_owned(),
                            fields: Vec::new(),
                            special: Special::of(name),
                        });
                        pending.push(Vec::new());
                    }
                }
                Some("F") => {
                    let (Some(number), Some(json), Some(label), Some(ty)) =
                        (parts.next(), parts.next(), parts.next(), parts.next())
                    else {
                        continue;
                    };
                    let Ok(number) = number.parse() else { continue };
                    let required = label.ends_with('!');
                    let label = match label.trim_end_matches('!') {
                        "r" => Label::Repeated,
                        "m" => Label::Map,
                        "i" => Label::Embedded,
                        _ => Label::Optional,
                    };
                    let ty = match ty {
                        "string" => Type::String,
                        "bytes" => Type::Bytes,
                        "int32" => Type::Int32,
                        "int64" => Type::Int64,
                        "bool" => Type::Bool,
                        "double" => Type::Double,
                        _ => Type::Message(usize::MAX),
                    };
                    if let Some(fields) = pending.last_mut() {
                        let field = Field {
                            number,
                            json: json.to_owned(),
                            label,
                            ty,
                            required,
                        };
                        fields.push((field, parts.next()));
                    }
                }
                _ => {}
            }
        }
        for (index, fields) in pending.into_iter().enumerate() {
            let resolved = fields
                .into_iter()
                .filter_map(|(mut field, reference)| {
                    if let Type::Message(_) = field.ty {
                        field.ty = Type::Message(schema.index_of(reference?)?);
                    }
                    Some(field)
                })
                .collect();
            schema.messages[index].fields = resolved;
        }
        schema
    }

    /// The message of an object with this `apiVersion` and `kind`, if Kubernetes defines one.
    pub(crate) fn lookup(&self, api_version: &str, kind: &str) -> Option<usize> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        if version.is_empty() || kind.is_empty() {
            return None;
        }
        if META_KINDS.contains(&kind) {
            return self.index_of(&format!("{META_V1}.{kind}"));
        }
        let prefix = match group {
            "meta.k8s.io" => "apimachinery/pkg/apis/meta".to_owned(),
            _ => match self.groups.get(group) {
                Some(prefix) => prefix.clone(),
                // Groups with no persisted resource (admission.k8s.io, imagepolicy.k8s.io)
                // live under their first label.
                None => format!("api/{}", group.split('.').next().unwrap_or(group)),
            },
        };
        let index = self.index_of(&format!("{prefix}/{version}.{kind}"))?;
        let message = self.message(index);
        let top_level = KINDS_WITHOUT_METADATA.contains(&kind)
            || message.fields.iter().any(|f| {
                f.json == "metadata"
                    && matches!(f.ty, Type::Message(m)
                        if matches!(self.message(m).short_name(), "ObjectMeta" | "ListMeta"))
            });
        top_level.then_some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_top_level_kinds_across_groups() {
        let schema = Schema::get();
        let cases = [
            ("v1", "Pod", Some("api/core/v1.Pod")),
            ("v1", "PodList", Some("api/core/v1.PodList")),
            ("apps/v1", "Deployment", Some("api/apps/v1.Deployment")),
            ("autoscaling/v1", "Scale", Some("api/autoscaling/v1.Scale")),
            ("policy/v1", "Eviction", Some("api/policy/v1.Eviction")),
            ("v1", "Binding", Some("api/core/v1.Binding")),
            (
                "networking.k8s.io/v1",
                "Ingress",
                Some("api/networking/v1.Ingress"),
            ),
            (
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                Some("api/rbac/v1.ClusterRole"),
            ),
            (
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                Some("apiextensions_apiserver/pkg/apis/apiextensions/v1.CustomResourceDefinition"),
            ),
            (
                "apiregistration.k8s.io/v1",
                "APIService",
                Some("kube_aggregator/pkg/apis/apiregistration/v1.APIService"),
            ),
            ("v1", "Status", Some("apimachinery/pkg/apis/meta/v1.Status")),
            (
                "apps/v1",
                "DeleteOptions",
                Some("apimachinery/pkg/apis/meta/v1.DeleteOptions"),
            ),
            (
                "meta.k8s.io/v1",
                "PartialObjectMetadata",
                Some("apimachinery/pkg/apis/meta/v1.PartialObjectMetadata"),
            ),
            (
                "admission.k8s.io/v1",
                "AdmissionReview",
                Some("api/admission/v1.AdmissionReview"),
            ),
            ("v1", "PodSpec", None),
            ("meta.k8s.io/v1", "Table", None),
            ("example.com/v1", "Widget", None),
            ("", "Pod", None),
            ("v1", "", None),
        ];
        for (api_version, kind, want) in cases {
            let got = schema
                .lookup(api_version, kind)
                .map(|i| schema.message(i).name.as_str());
            assert_eq!(got, want, "{api_version} {kind}");
        }
    }

    #[test]
    fn every_message_reference_resolves() {
        let text_refs = SCHEMA_TEXT
            .lines()
            .filter(|l| l.starts_with("F ") && l.split(' ').count() == 6)
            .count();
        let schema = Schema::get();
        let resolved = schema
            .messages
            .iter()
            .flat_map(|m| &m.fields)
            .filter(|f| matches!(f.ty, Type::Message(_)))
            .count();
        assert_eq!(resolved, text_refs);
        assert!(schema.messages.len() > 1000);
    }

    #[test]
    fn json_names_keep_acronyms() {
        let schema = Schema::get();
        let pod_spec = schema
            .index_of("api/core/v1.PodSpec")
            .map(|i| schema.message(i));
        let names: Vec<&str> = pod_spec
            .into_iter()
            .flat_map(|m| &m.fields)
            .map(|f| f.json.as_str())
            .collect();
        for want in ["hostIPC", "hostPID", "setHostnameAsFQDN", "dnsConfig"] {
            assert!(names.contains(&want), "{want} missing");
        }
    }
}
