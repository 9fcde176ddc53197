//! Kubernetes' protobuf wire format (`application/vnd.kubernetes.protobuf`) to and from the
//! JSON objects rkube stores.
//!
//! client-go's typed clients (so `kubectl create deployment`, `kubectl drain`'s evictions,
//! delete options) send protobuf bodies; the API server converts them to the JSON upstream
//! would have produced, and can answer protobuf-only clients by encoding its JSON back.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` envelope whose `typeMeta`
//! names the kind and whose `raw` holds the object's message. Watch streams frame each
//! `metav1.WatchEvent` with a 4-byte big-endian length and no envelope; the event's object is
//! itself a full enveloped body.
//!
//! The converter is generic and table driven. `schema.txt` lists every v1.33 message with its
//! field numbers, wire types and JSON names; one walker turns wire data into JSON (and back)
//! for any message, with hand-written rules only for the types whose JSON is not an object of
//! their fields (`Time`, `MicroTime`, `Duration`, `IntOrString`, `Quantity`, raw-JSON
//! holders, string-list wrappers and the apiextensions schema unions). No crate ships the
//! upstream `.proto` files or a descriptor set, so the table is derived, by a test-only
//! generator (`src/gen.rs`), from two crates' shipped sources: the prost-generated modules of
//! `k8s-pb` 0.8.0 give the wire facts, and `k8s-openapi`'s serde code gives the JSON names
//! (prost's snake_case loses acronyms) and which fields Go always emits. A test fails when the
//! committed table drifts from those sources. There is no build script and no `protoc`.
//!
//! Go's omitempty and pointer distinctions are not on the wire; see the `to_json` module for how
//! present zero values are treated.

mod from_json;
#[cfg(test)]
mod gen;
mod schema;
mod timefmt;
mod to_json;
mod wire;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use schema::Schema;

/// The prefix of every Kubernetes protobuf body.
pub const MAGIC: [u8; 4] = *b"k8s\0";
/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// The media type of a protobuf watch stream.
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Why a body could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("not a Kubernetes protobuf body: it does not start with \"k8s\\x00\"")]
    BadMagic,
    #[error("malformed protobuf{}: {reason}", at(path))]
    Malformed { path: String, reason: String },
    #[error("the object has no apiVersion and kind")]
    MissingTypeMeta,
    #[error("no protobuf serialization is defined for {api_version}, Kind={kind}")]
    UnsupportedKind { api_version: String, kind: String },
    #[error("unsupported protobuf envelope content {0:?}")]
    UnsupportedContent(String),
    #[error("cannot encode{} as protobuf: {reason}", at(path))]
    InvalidValue { path: String, reason: String },
    #[error("protobuf message nesting deeper than {0} levels")]
    TooDeep(usize),
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

impl ProtoError {
    /// Prefixes the error's location with an enclosing field name or `[index]`.
    pub(crate) fn within(self, segment: &str) -> Self {
        let join = |path: String| {
            if path.is_empty() {
                segment.to_owned()
            } else if path.starts_with('[') {
                format!("{segment}{path}")
            } else {
                format!("{segment}.{path}")
            }
        };
        match self {
            ProtoError::Malformed { path, reason } => ProtoError::Malformed {
                path: join(path),
                reason,
            },
            ProtoError::InvalidValue { path, reason } => ProtoError::InvalidValue {
                path: join(path),
                reason,
            },
            other => other,
        }
    }
}

/// The fields of a `runtime.Unknown` envelope.
#[derive(Debug, Default)]
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

fn text(value: wire::Value<'_>) -> Result<String, ProtoError> {
    match value {
        wire::Value::Bytes(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        _ => Err(ProtoError::Malformed {
            path: String::new(),
            reason: "expected a length-delimited value".to_owned(),
        }),
    }
}

fn parse_envelope(bytes: &[u8]) -> Result<Envelope<'_>, ProtoError> {
    let mut envelope = Envelope::default();
    let mut reader = wire::Reader::new(bytes);
    while !reader.is_empty() {
        match reader.field()? {
            (1, wire::Value::Bytes(type_meta)) => {
                let mut inner = wire::Reader::new(type_meta);
                while !inner.is_empty() {
                    match inner.field()? {
                        (1, v) => envelope.api_version = text(v)?,
                        (2, v) => envelope.kind = text(v)?,
                        _ => {}
                    }
                }
            }
            (2, wire::Value::Bytes(raw)) => envelope.raw = raw,
            (3, v) => envelope.content_encoding = text(v)?,
            (4, v) => envelope.content_type = text(v)?,
            _ => {}
        }
    }
    Ok(envelope)
}

fn message_index(api_version: &str, kind: &str) -> Result<usize, ProtoError> {
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtoError::MissingTypeMeta);
    }
    Schema::get()
        .lookup(api_version, kind)
        .ok_or_else(|| ProtoError::UnsupportedKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        })
}

/// Decodes a Kubernetes protobuf body (magic, then a `runtime.Unknown` whose `raw` is the
/// object's message) into upstream's JSON for it, `kind` and `apiVersion` first.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let rest = body.strip_prefix(&MAGIC).ok_or(ProtoError::BadMagic)?;
    let envelope = parse_envelope(rest)?;
    if !envelope.content_encoding.is_empty() {
        return Err(ProtoError::UnsupportedContent(envelope.content_encoding));
    }
    let object = match envelope.content_type.as_str() {
        "" | CONTENT_TYPE => {
            let index = message_index(&envelope.api_version, &envelope.kind)?;
            to_json::message(Schema::get(), index, envelope.raw, 0)?
        }
        // The envelope may carry another serialization; JSON is the only other one upstream
        // ever wraps.
        "application/json" => {
            if envelope.api_version.is_empty() || envelope.kind.is_empty() {
                return Err(ProtoError::MissingTypeMeta);
            }
            serde_json::from_slice(envelope.raw).map_err(|e| ProtoError::Malformed {
                path: String::new(),
                reason: format!("raw bytes are not JSON: {e}"),
            })?
        }
        other => return Err(ProtoError::UnsupportedContent(other.to_owned())),
    };
    let mut out = Map::new();
    out.insert("kind".to_owned(), Value::String(envelope.kind));
    out.insert("apiVersion".to_owned(), Value::String(envelope.api_version));
    if let Value::Object(fields) = object {
        for (key, value) in fields {
            if key != "kind" && key != "apiVersion" {
                out.insert(key, value);
            }
        }
    }
    Ok(Value::Object(out))
}

/// Encodes a JSON object carrying `apiVersion` and `kind` as the protobuf body upstream
/// would send: magic, then a `runtime.Unknown` holding the object's message.
pub fn encode(obj: &Value) -> Result<Vec<u8>, ProtoError> {
    let field = |name: &str| obj.get(name).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let index = message_index(api_version, kind)?;
    let mut raw = Vec::new();
    from_json::message(Schema::get(), index, obj, &mut raw, 0)?;

    let mut type_meta = Vec::new();
    wire::put_bytes(&mut type_meta, 1, api_version.as_bytes());
    wire::put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw.len() + type_meta.len() + 16);
    out.extend_from_slice(&MAGIC);
    wire::put_bytes(&mut out, 1, &type_meta);
    wire::put_bytes(&mut out, 2, &raw);
    // Go always writes the (empty) contentEncoding and contentType strings.
    wire::put_bytes(&mut out, 3, b"");
    wire::put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// Whether objects of this `apiVersion` and `kind` have a protobuf serialization: built-in
/// kinds and their lists, meta/v1 `Status`, `WatchEvent`, the options kinds (in any group
/// version), `Scale`, `Eviction`, `Binding`, `PartialObjectMetadata`; not custom resources
/// and not `meta.k8s.io` `Table`.
pub fn supports(api_version: &str, kind: &str) -> bool {
    Schema::get().lookup(api_version, kind).is_some()
}

/// One frame of a protobuf watch stream (`WATCH_CONTENT_TYPE`): a 4-byte big-endian length,
/// then a `metav1.WatchEvent{type, object: RawExtension{raw}}` without envelope, whose `raw`
/// is the object's full protobuf body (magic and envelope included).
pub fn encode_watch_event(event_type: &str, obj: &Value) -> Result<Vec<u8>, ProtoError> {
    let object = encode(obj)?;
    let mut raw_extension = Vec::with_capacity(object.len() + 8);
    wire::put_bytes(&mut raw_extension, 1, &object);
    let mut event = Vec::with_capacity(raw_extension.len() + event_type.len() + 8);
    wire::put_bytes(&mut event, 1, event_type.as_bytes());
    wire::put_bytes(&mut event, 2, &raw_extension);
    let len = u32::try_from(event.len()).map_err(|_| ProtoError::InvalidValue {
        path: String::new(),
        reason: "watch event larger than 4 GiB".to_owned(),
    })?;
    let mut frame = Vec::with_capacity(event.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&event);
    Ok(frame)
}

/// Decodes one frame written by [`encode_watch_event`] (length prefix included) into the
/// event type and the object's JSON.
pub fn decode_watch_event(frame: &[u8]) -> Result<(String, Value), ProtoError> {
    let truncated = || ProtoError::Malformed {
        path: String::new(),
        reason: "watch frame shorter than its length prefix".to_owned(),
    };
    let (prefix, event) = frame.split_first_chunk::<4>().ok_or_else(truncated)?;
    let len = u32::from_be_bytes(*prefix) as usize;
    let event = event.get(..len).ok_or_else(truncated)?;
    let mut event_type = String::new();
    let mut object = Value::Null;
    let mut reader = wire::Reader::new(event);
    while !reader.is_empty() {
        match reader.field()? {
            (1, v) => event_type = text(v)?,
            (2, wire::Value::Bytes(raw_extension)) => {
                let mut inner = wire::Reader::new(raw_extension);
                while !inner.is_empty() {
                    if let (1, wire::Value::Bytes(raw)) = inner.field()? {
                        object = decode(raw)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok((event_type, object))
}
