//! The OpenAPI v2 document in protobuf form: gnostic's `openapi.v2.Document` message, which
//! kubectl 1.27 and 1.28 ask `/openapi/v2` for (`Accept:
//! application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) before `kubectl apply`.
//!
//! Upstream (kube-openapi's handler) builds it by parsing the JSON document with gnostic's
//! `ParseDocument` and marshalling the result, so this module mirrors that parse: which JSON key
//! becomes which field, how oneofs are chosen (`$ref` makes a `JsonReference`, `in` picks the
//! parameter kind, `type: file` a `FileSchema`), and that every `x-` key and every free-form
//! value (`default`, `enum`, `example`) becomes an `Any` whose `yaml` holds the value as YAML
//! text. Clients read those values back with a YAML parser — kube-openapi's `util/proto` finds
//! the `x-kubernetes-group-version-kind` of each definition, and cli-runtime's query-parameter
//! check finds it on PATCH operations that way — so the YAML must parse to the same value; it
//! is written in yaml.v3's block layout, quoting every string a YAML 1.1 reader could take for
//! something else.
//!
//! Fields are written in field-number order with proto3's rules: scalars equal to their zero
//! value are left out, messages and oneof members are written whenever the key is present.

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use super::openapi::openapi_v2;
use messages::DOCUMENT;
use yaml::to_yaml;

mod messages;
mod yaml;

/// The OpenAPI v2 document as gnostic's `openapi_v2.Document` protobuf, as kube-apiserver
/// serves it for `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (and
/// the `...spec.v2.v1.0+protobuf` spelling). Cached for the last server version asked for.
pub fn openapi_v2_protobuf(server_version: &str) -> Arc<Vec<u8>> {
    static CACHE: Mutex<Option<(String, Arc<Vec<u8>>)>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((version, bytes)) = cache.as_ref() {
        if version == server_version {
            return Arc::clone(bytes);
        }
    }
    let bytes = Arc::new(encode_document(&openapi_v2(server_version)));
    *cache = Some((server_version.to_string(), Arc::clone(&bytes)));
    bytes
}

/// Encodes a swagger 2.0 JSON document as an `openapi.v2.Document` message. Keys gnostic
/// does not know, and values of the wrong JSON type, are left out rather than refused.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_shape(&DOCUMENT, doc, &mut out);
    out
}

/// The `Content-Type` kube-apiserver answers protobuf requests for `/openapi/v2` with, for
/// both spellings of the media type clients ask for.
pub const OPENAPI_V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The two representations `/openapi/v2` is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenApiV2Format {
    /// [`super::openapi_v2_json`], as `application/json`.
    Json,
    /// [`openapi_v2_protobuf`], as [`OPENAPI_V2_PROTOBUF_CONTENT_TYPE`].
    Protobuf,
}

impl OpenApiV2Format {
    pub fn content_type(self) -> &'static str {
        match self {
            OpenApiV2Format::Json => "application/json",
            OpenApiV2Format::Protobuf => OPENAPI_V2_PROTOBUF_CONTENT_TYPE,
        }
    }
}

/// The representation kube-openapi's handler picks for an `Accept` header: clauses ordered
/// by `q`, then concrete before wildcard types; the first clause matching (in this order)
/// `application/json`, `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` or
/// `application/com.github.proto-openapi.spec.v2.v1.0+protobuf` wins, so `*/*` and a
/// missing header get JSON. `None` means no clause matched: answer 406 Not Acceptable.
/// Clauses with `q=0` are skipped, as HTTP says they refuse that type.
pub fn negotiate_openapi_v2(accept: Option<&str>) -> Option<OpenApiV2Format> {
    const OFFERS: [(&str, OpenApiV2Format); 3] = [
        ("json", OpenApiV2Format::Json),
        (
            "com.github.proto-openapi.spec.v2@v1.0+protobuf",
            OpenApiV2Format::Protobuf,
        ),
        (
            "com.github.proto-openapi.spec.v2.v1.0+protobuf",
            OpenApiV2Format::Protobuf,
        ),
    ];
    let header = accept
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or("*/*");
    let mut clauses: Vec<(f64, &str, &str)> = header
        .split(',')
        .filter_map(|clause| {
            let mut parts = clause.split(';').map(str::trim);
            let range = parts.next()?;
            let (ty, sub) = if range == "*" {
                ("*", "*")
            } else {
                range.split_once('/')?
            };
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim() == "q")
                .map_or(1.0, |(_, v)| v.trim().parse::<f64>().unwrap_or(0.0));
            Some((q, ty.trim(), sub.trim()))
        })
        .filter(|(q, _, _)| *q > 0.0)
        .collect();
    // Stable, like goautoneg's ordering: equal clauses keep the order the client sent.
    clauses.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then((a.1 == "*").cmp(&(b.1 == "*")))
            .then((a.2 == "*").cmp(&(b.2 == "*")))
    });
    clauses.iter().find_map(|(_, ty, sub)| {
        let type_ok = *ty == "*" || ty.eq_ignore_ascii_case("application");
        OFFERS
            .iter()
            .find(|(offer, _)| type_ok && (*sub == "*" || sub.eq_ignore_ascii_case(offer)))
            .map(|(_, format)| *format)
    })
}

/// How one JSON value is written as one protobuf field.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Double,
    Int,
    Strings,
    Any,
    Anys,
    Msg(&'static Shape),
    Msgs(&'static Shape),
}

/// How a JSON value becomes the body of one message.
enum Shape {
    /// Fixed keys, plus `x-` keys as `repeated NamedAny` at `ext`.
    Object {
        fields: &'static [(&'static str, u32, Kind)],
        ext: Option<u32>,
    },
    /// Each accepted key becomes a `Named*{name = 1, value = 2}` entry at `field`; `x-` keys
    /// go to `ext` when the message has vendor extensions.
    Map {
        field: u32,
        value: Kind,
        ext: Option<u32>,
        accept: fn(&str) -> bool,
    },
    /// A oneof (or a message gnostic fills from a non-object): the chosen member's field
    /// number and kind, written even when it holds a zero value.
    OneOf(fn(&Value) -> Option<(u32, Kind)>),
}

const WIRE_VARINT: u32 = 0;
const WIRE_FIXED64: u32 = 1;
const WIRE_LEN: u32 = 2;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(out, u64::from((field << 3) | wire));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_message(out: &mut Vec<u8>, field: u32, shape: &Shape, value: &Value) {
    let mut body = Vec::new();
    encode_shape(shape, value, &mut body);
    put_bytes(out, field, &body);
}

fn put_any(out: &mut Vec<u8>, field: u32, value: &Value) {
    let mut body = Vec::new();
    put_bytes(&mut body, 2, to_yaml(value).as_bytes());
    put_bytes(out, field, &body);
}

fn put_named(out: &mut Vec<u8>, field: u32, name: &str, kind: Kind, value: &Value) {
    let mut body = Vec::new();
    if !name.is_empty() {
        put_bytes(&mut body, 1, name.as_bytes());
    }
    encode_field(kind, 2, value, false, &mut body);
    put_bytes(out, field, &body);
}

/// Writes `value` as field `field`. `always` is for oneof members, which proto3 writes
/// even when they hold their type's zero value.
fn encode_field(kind: Kind, field: u32, value: &Value, always: bool, out: &mut Vec<u8>) {
    match kind {
        Kind::Str => {
            if let Some(s) = value.as_str().filter(|s| always || !s.is_empty()) {
                put_bytes(out, field, s.as_bytes());
            }
        }
        Kind::Bool => {
            if let Some(b) = value.as_bool().filter(|b| always || *b) {
                put_key(out, field, WIRE_VARINT);
                put_varint(out, u64::from(b));
            }
        }
        Kind::Double => {
            // Go's proto3 leaves out only +0.0 (all bits clear), not -0.0.
            if let Some(f) = value.as_f64().filter(|f| always || f.to_bits() != 0) {
                put_key(out, field, WIRE_FIXED64);
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        Kind::Int => {
            if let Some(i) = value.as_i64().filter(|i| always || *i != 0) {
                put_key(out, field, WIRE_VARINT);
                put_varint(out, i as u64);
            }
        }
        Kind::Strings => {
            for s in value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                put_bytes(out, field, s.as_bytes());
            }
        }
        Kind::Any => put_any(out, field, value),
        Kind::Anys => {
            for item in value.as_array().into_iter().flatten() {
                put_any(out, field, item);
            }
        }
        Kind::Msg(shape) => put_message(out, field, shape, value),
        Kind::Msgs(shape) => {
            for item in value.as_array().into_iter().flatten() {
                put_message(out, field, shape, item);
            }
        }
    }
}

fn encode_shape(shape: &Shape, value: &Value, out: &mut Vec<u8>) {
    match shape {
        Shape::Object { fields, ext } => {
            let Some(obj) = value.as_object() else {
                return;
            };
            let mut ext_written = ext.is_none();
            for &(key, field, kind) in fields.iter() {
                if let Some(e) = ext.filter(|e| !ext_written && *e < field) {
                    put_extensions(obj, e, out);
                    ext_written = true;
                }
                if let Some(v) = obj.get(key) {
                    encode_field(kind, field, v, false, out);
                }
            }
            if let Some(e) = ext.filter(|_| !ext_written) {
                put_extensions(obj, e, out);
            }
        }
        Shape::Map {
            field,
            value: kind,
            ext,
            accept,
        } => {
            let Some(obj) = value.as_object() else {
                return;
            };
            let ext_first = ext.is_some_and(|e| e < *field);
            if let Some(e) = ext.filter(|_| ext_first) {
                put_extensions(obj, e, out);
            }
            for (name, v) in obj.iter().filter(|(k, _)| accept(k)) {
                put_named(out, *field, name, *kind, v);
            }
            if let Some(e) = ext.filter(|_| !ext_first) {
                put_extensions(obj, e, out);
            }
        }
        Shape::OneOf(choose) => {
            if let Some((field, kind)) = choose(value) {
                encode_field(kind, field, value, true, out);
            }
        }
    }
}

fn put_extensions(obj: &Map<String, Value>, field: u32, out: &mut Vec<u8>) {
    for (name, v) in obj.iter().filter(|(k, _)| is_extension(k)) {
        put_named(out, field, name, Kind::Any, v);
    }
}

fn is_extension(key: &str) -> bool {
    key.starts_with("x-")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// One field as read off the wire, by a reader that shares nothing with the encoder.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Wire<'a> {
        Varint(u64),
        Fixed64(u64),
        Bytes(&'a [u8]),
    }

    #[derive(Debug)]
    struct Msg<'a>(Vec<(u32, Wire<'a>)>);

    fn read_varint(buf: &[u8], pos: &mut usize) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = buf[*pos];
            *pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return v;
            }
        }
        panic!("varint longer than ten bytes");
    }

    fn parse(buf: &[u8]) -> Msg<'_> {
        let mut pos = 0;
        let mut fields = Vec::new();
        while pos < buf.len() {
            let key = read_varint(buf, &mut pos);
            let field = u32::try_from(key >> 3).expect("field number");
            let wire = match key & 7 {
                0 => Wire::Varint(read_varint(buf, &mut pos)),
                1 => {
                    let bytes: [u8; 8] = buf[pos..pos + 8].try_into().expect("eight bytes");
                    pos += 8;
                    Wire::Fixed64(u64::from_le_bytes(bytes))
                }
                2 => {
                    let len = usize::try_from(read_varint(buf, &mut pos)).expect("length");
                    pos += len;
                    Wire::Bytes(&buf[pos - len..pos])
                }
                other => panic!("unexpected wire type {other}"),
            };
            fields.push((field, wire));
        }
        assert_eq!(pos, buf.len(), "message overruns its buffer");
        Msg(fields)
    }

    impl<'a> Msg<'a> {
        fn numbers(&self) -> Vec<u32> {
            self.0.iter().map(|(f, _)| *f).collect()
        }
        fn all(&self, field: u32) -> Vec<Wire<'a>> {
            self.0
                .iter()
                .filter(|(f, _)| *f == field)
                .map(|(_, w)| *w)
                .collect()
        }
        fn bytes(&self, field: u32) -> Vec<&'a [u8]> {
            self.all(field)
                .into_iter()
                .map(|w| match w {
                    Wire::Bytes(b) => b,
                    other => panic!("field {field} is {other:?}, not length-delimited"),
                })
                .collect()
        }
        fn strs(&self, field: u32) -> Vec<&'a str> {
            self.bytes(field)
                .into_iter()
                .map(|b| std::str::from_utf8(b).expect("utf-8"))
                .collect()
        }
        fn str(&self, field: u32) -> &'a str {
            self.strs(field).last().copied().unwrap_or("")
        }
        fn msgs(&self, field: u32) -> Vec<Msg<'a>> {
            self.bytes(field).into_iter().map(parse).collect()
        }
        fn msg(&self, field: u32) -> Msg<'a> {
            let mut all = self.msgs(field);
            assert_eq!(all.len(), 1, "field {field} in {:?}", self.numbers());
            all.remove(0)
        }
        /// The value (field 2) of the `Named*` entry at `field` called `name`.
        fn named(&self, field: u32, name: &str) -> Msg<'a> {
            self.msgs(field)
                .into_iter()
                .find(|m| m.str(1) == name)
                .unwrap_or_else(|| panic!("no {name:?} at field {field}"))
                .msg(2)
        }
        fn names(&self, field: u32) -> Vec<&'a str> {
            self.msgs(field).iter().map(|m| m.str(1)).collect()
        }
        /// The `Any.yaml` of vendor extension `name`, kept at `field`.
        fn extension(&self, field: u32, name: &str) -> &'a str {
            self.named(field, name).str(2)
        }
    }

    const EXT: u32 = 31;

    fn definition<'a>(doc: &Msg<'a>, name: &str) -> Msg<'a> {
        doc.msg(9).named(1, name)
    }

    fn property<'a>(schema: &Msg<'a>, name: &str) -> Msg<'a> {
        schema.msg(25).named(1, name)
    }

    #[test]
    fn accept_header_chooses_the_representation_as_kube_openapi_does() {
        use OpenApiV2Format::{Json, Protobuf};
        let cases: [(Option<&str>, Option<OpenApiV2Format>); 12] = [
            (None, Some(Json)),
            (Some(""), Some(Json)),
            (Some("*/*"), Some(Json)),
            (Some("application/json"), Some(Json)),
            (
                Some("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
                Some(Protobuf),
            ),
            (
                Some("application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
                Some(Protobuf),
            ),
            (
                Some("application/com.github.proto-openapi.spec.v2@v1.0+protobuf, application/json"),
                Some(Protobuf),
            ),
            (
                Some("application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
                Some(Protobuf),
            ),
            (
                Some("*/*, application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
                Some(Protobuf),
            ),
            (Some("application/*"), Some(Json)),
            (Some("text/html"), None),
            (Some("application/json;q=0"), None),
        ];
        for (accept, want) in cases {
            assert_eq!(negotiate_openapi_v2(accept), want, "{accept:?}");
        }
        assert_eq!(
            Protobuf.content_type(),
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        );
        assert_eq!(Json.content_type(), "application/json");
    }

    #[test]
    fn served_document_carries_swagger_version_and_info() {
        let bytes = openapi_v2_protobuf("v1.33.7");
        let doc = parse(&bytes);
        assert_eq!(doc.str(1), "2.0");
        let info = doc.msg(2);
        assert_eq!((info.str(1), info.str(2)), ("Kubernetes", "v1.33.7"));
        assert!(Arc::ptr_eq(&bytes, &openapi_v2_protobuf("v1.33.7")));
        let other = openapi_v2_protobuf("v1.33.8");
        assert_eq!(parse(&other).msg(2).str(2), "v1.33.8");
    }

    #[test]
    fn pod_definition_refers_to_pod_spec_and_names_its_kind() {
        let bytes = openapi_v2_protobuf("v1.33.0");
        let doc = parse(&bytes);
        let pod = definition(&doc, "io.k8s.api.core.v1.Pod");
        assert_eq!(pod.msg(22).strs(1), ["object"]);
        assert_eq!(
            property(&pod, "spec").str(1),
            "#/definitions/io.k8s.api.core.v1.PodSpec"
        );
        assert_eq!(
            pod.extension(EXT, "x-kubernetes-group-version-kind"),
            "- group: \"\"\n  kind: Pod\n  version: v1\n"
        );
    }

    #[test]
    fn pod_spec_containers_carry_their_strategic_merge_keys() {
        let bytes = openapi_v2_protobuf("v1.33.0");
        let doc = parse(&bytes);
        let containers = property(
            &definition(&doc, "io.k8s.api.core.v1.PodSpec"),
            "containers",
        );
        assert_eq!(containers.msg(22).strs(1), ["array"]);
        assert_eq!(
            containers.msg(23).msg(1).str(1),
            "#/definitions/io.k8s.api.core.v1.Container"
        );
        assert_eq!(
            containers.extension(EXT, "x-kubernetes-patch-merge-key"),
            "name\n"
        );
        assert_eq!(
            containers.extension(EXT, "x-kubernetes-patch-strategy"),
            "merge\n"
        );
    }

    /// What cli-runtime's `supportsQueryParam` walks to decide on `fieldValidation`.
    #[test]
    fn pod_patch_operation_names_its_kind_and_offers_field_validation() {
        let bytes = openapi_v2_protobuf("v1.33.0");
        let doc = parse(&bytes);
        let item = doc
            .msg(8)
            .named(2, "/api/v1/namespaces/{namespace}/pods/{name}");
        let patch = item.msg(8);
        assert_eq!(
            patch.extension(13, "x-kubernetes-group-version-kind"),
            "group: \"\"\nkind: Pod\nversion: v1\n"
        );
        let params: Vec<Msg> = patch.msgs(8).iter().map(|p| p.msg(1)).collect();
        let query: Vec<&str> = params
            .iter()
            .filter(|p| !p.all(2).is_empty())
            .map(|p| p.msg(2))
            .filter(|n| !n.all(3).is_empty())
            .map(|n| n.msg(3).str(4))
            .collect::<Vec<_>>();
        assert!(query.contains(&"fieldValidation"), "{query:?}");
        let body = params[0].msg(1);
        assert_eq!((body.str(2), body.str(3)), ("body", "body"));
        assert_eq!(
            body.msg(5).str(1),
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
        );
        let ok = patch.msg(9).named(1, "200").msg(1);
        assert_eq!(ok.str(1), "OK");
        assert_eq!(
            ok.msg(2).msg(1).str(1),
            "#/definitions/io.k8s.api.core.v1.Pod"
        );
    }

    /// The checks kube-openapi's `util/proto` `NewOpenAPIData` makes on every definition;
    /// any failure makes kubectl 1.27/1.28 give up on the whole document.
    #[test]
    fn every_definition_passes_kube_openapi_model_parsing() {
        fn check(s: &Msg, models: &[&str], path: &str, errors: &mut Vec<String>) {
            let types = s
                .all(22)
                .first()
                .map(|_| s.msg(22).strs(1))
                .unwrap_or_default();
            let reference = s.str(1);
            let has_properties = !s.all(25).is_empty();
            if !reference.is_empty() {
                let target = reference.strip_prefix("#/definitions/").unwrap_or("");
                if has_properties && !s.msg(25).all(1).is_empty() {
                    errors.push(format!("{path}: $ref with properties"));
                }
                if !types.is_empty() {
                    errors.push(format!("{path}: $ref with a type"));
                }
                if !models.contains(&target) {
                    errors.push(format!("{path}: unknown model {reference:?}"));
                }
                return;
            }
            match types.as_slice() {
                [] | ["object"] if has_properties => {
                    for p in s.msg(25).msgs(1) {
                        let sub = format!("{path}.{}", p.str(1));
                        check(&p.msg(2), models, &sub, errors);
                    }
                }
                [] => {}
                ["object"] => {
                    if let Some(schema) = s.all(21).first().map(|_| s.msg(21)) {
                        if !schema.all(1).is_empty() {
                            check(&schema.msg(1), models, path, errors);
                        }
                    }
                }
                ["array"] => match s.all(23).first().map(|_| s.msg(23).msgs(1)) {
                    Some(items) if items.len() == 1 => check(&items[0], models, path, errors),
                    _ => errors.push(format!("{path}: array without exactly one item schema")),
                },
                ["string" | "number" | "integer" | "boolean"] => {}
                other => errors.push(format!("{path}: unsupported type {other:?}")),
            }
        }
        let bytes = openapi_v2_protobuf("v1.33.0");
        let doc = parse(&bytes);
        let definitions = doc.msg(9);
        let models = definitions.names(1);
        assert!(models.len() > 100, "{}", models.len());
        let mut errors = Vec::new();
        for (name, schema) in models.iter().zip(definitions.msgs(1)) {
            check(&schema.msg(2), &models, name, &mut errors);
        }
        assert!(errors.is_empty(), "{errors:#?}");
    }

    fn schema_of(schema: Value) -> Vec<u8> {
        let doc = encode_document(&json!({ "definitions": { "X": schema } }));
        let parsed = parse(&doc);
        let named = parsed.msg(9).msgs(1).remove(0);
        named.bytes(2)[0].to_vec()
    }

    #[test]
    fn schema_fields_follow_proto3_presence_and_field_order() {
        let cases: Vec<(Value, Vec<u8>)> = vec![
            (json!({}), vec![]),
            // Zero scalars and unknown keys are left out; `type` is a TypeItem message.
            (
                json!({ "description": "", "maxLength": 0, "uniqueItems": false,
                        "nullable": true, "type": "string" }),
                vec![0xb2, 0x01, 8, 0x0a, 6, b's', b't', b'r', b'i', b'n', b'g'],
            ),
            // A false additionalProperties is a set oneof member, so it is written.
            (
                json!({ "additionalProperties": false }),
                vec![0xaa, 0x01, 2, 0x10, 0],
            ),
            (
                json!({ "additionalProperties": {} }),
                vec![0xaa, 0x01, 2, 0x0a, 0],
            ),
            (json!({ "maximum": 2.5 }), {
                let mut v = vec![0x39];
                v.extend_from_slice(&2.5f64.to_le_bytes());
                v
            }),
            (
                json!({ "minLength": -1 }),
                vec![
                    0x60, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
            ),
            (
                json!({ "type": ["string", "null"] }),
                vec![
                    0xb2, 0x01, 14, 0x0a, 6, b's', b't', b'r', b'i', b'n', b'g', 0x0a, 4, b'n',
                    b'u', b'l', b'l',
                ],
            ),
            // Extensions come last whatever their place in the JSON; `default` is an Any.
            (
                json!({ "x-a": "b", "default": 1, "$ref": "r" }),
                vec![
                    0x0a, 1, b'r', 0x2a, 4, 0x12, 2, b'1', b'\n', 0xfa, 0x01, 11, 0x0a, 3, b'x',
                    b'-', b'a', 0x12, 4, 0x12, 2, b'b', b'\n',
                ],
            ),
        ];
        for (schema, want) in cases {
            assert_eq!(schema_of(schema.clone()), want, "{schema}");
        }
    }

    #[test]
    fn oneofs_are_chosen_as_gnostic_chooses_them() {
        let doc = json!({
            "swagger": "2.0",
            "paths": {
                "x-p": true,
                "/a": {
                    "get": {
                        "parameters": [
                            { "$ref": "#/parameters/p" },
                            { "in": "body", "name": "body", "schema": { "type": "object" } },
                            { "in": "header", "name": "h", "type": "string" },
                            { "in": "formData", "name": "f", "type": "string" },
                            { "in": "query", "name": "q", "type": "string" },
                            { "in": "path", "name": "p", "type": "string", "required": true }
                        ],
                        "responses": {
                            "bogus": {},
                            "200": { "$ref": "#/responses/ok" },
                            "default": { "description": "d", "schema": { "type": "file" } },
                            "x-r": 1
                        }
                    }
                },
                "not-a-path": {}
            },
            "securityDefinitions": {
                "BearerToken": { "type": "apiKey", "name": "authorization", "in": "header" }
            }
        });
        let bytes = encode_document(&doc);
        let parsed = parse(&bytes);
        assert_eq!(parsed.numbers(), [1, 8, 13]);
        let paths = parsed.msg(8);
        assert_eq!(paths.numbers(), [1, 2]);
        assert_eq!(paths.names(2), ["/a"]);
        assert_eq!(paths.extension(1, "x-p"), "true\n");
        let get = paths.named(2, "/a").msg(2);
        let chosen: Vec<(u32, u32, u32)> = get
            .msgs(8)
            .iter()
            .map(|item| {
                let outer = item.numbers()[0];
                let inner = item.msg(outer);
                let middle = inner.numbers().first().copied().unwrap_or(0);
                let innermost = if outer == 1 && middle == 2 {
                    inner.msg(2).numbers()[0]
                } else {
                    0
                };
                (outer, middle, innermost)
            })
            .collect();
        assert_eq!(
            chosen,
            [
                (2, 1, 0),
                (1, 1, 0),
                (1, 2, 1),
                (1, 2, 2),
                (1, 2, 3),
                (1, 2, 4)
            ]
        );
        let path_param = get.msgs(8)[5].msg(1).msg(2).msg(4);
        assert_eq!(path_param.all(1), [Wire::Varint(1)]);
        assert_eq!(path_param.str(4), "p");
        let responses = get.msg(9);
        assert_eq!(responses.numbers(), [1, 1, 2]);
        assert_eq!(responses.names(1), ["200", "default"]);
        assert_eq!(responses.named(1, "200").msg(2).str(1), "#/responses/ok");
        let default = responses.named(1, "default").msg(1);
        assert_eq!(default.str(1), "d");
        assert_eq!(default.msg(2).msg(2).str(6), "file");
        let security = parsed.msg(13).named(1, "BearerToken").msg(2);
        assert_eq!(
            (security.str(1), security.str(2), security.str(3)),
            ("apiKey", "authorization", "header")
        );
    }
}
