//! Protobuf message bytes to the JSON upstream's API server would produce for the same Go
//! object.
//!
//! The wire cannot tell a Go pointer set to zero from a plain field at its zero value: gogo's
//! generated marshallers write every non-pointer field, so client-go sends `hostNetwork: false`
//! and `name: ""` for everything it leaves unset, and only pointers (`replicas *int32`) may be
//! absent. Upstream then JSON-encodes the Go struct, dropping `omitempty` zeros. We lack the
//! Go types, so the rule is: present strings and bytes that are empty are dropped unless the
//! field is required (no `omitempty`); present numeric and boolean zeros are kept, because for
//! a pointer they mean something (`replicas: 0`, `gracePeriodSeconds: 0`, `runAsUser: 0`) and
//! for a plain field zero and absent are equivalent; the exception is the short list of
//! plain fields below, whose zeros every client-go request carries and which upstream never
//! shows (or defaults only when absent, as probe timings).

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::schema::{Field, Label, Message, Schema, Special, Type};
use crate::wire::{self, Reader};
use crate::ProtoError;

/// Deepest message nesting accepted; bounds recursion on hostile input.
pub(crate) const MAX_DEPTH: usize = 256;

/// Plain (non-pointer, `omitempty`) numeric and boolean fields whose zero is dropped.
const ZERO_OMITTED: &[(&str, &[&str])] = &[
    ("apimachinery/pkg/apis/meta/v1.ObjectMeta", &["generation"]),
    (
        "api/core/v1.PodSpec",
        &["hostNetwork", "hostPID", "hostIPC"],
    ),
    ("api/core/v1.Container", &["stdin", "stdinOnce", "tty"]),
    (
        "api/core/v1.EphemeralContainerCommon",
        &["stdin", "stdinOnce", "tty"],
    ),
    ("api/core/v1.ContainerPort", &["hostPort"]),
    ("api/core/v1.VolumeMount", &["readOnly"]),
    (
        "api/core/v1.PersistentVolumeClaimVolumeSource",
        &["readOnly"],
    ),
    (
        "api/core/v1.Probe",
        &[
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ],
    ),
    ("api/core/v1.ServicePort", &["nodePort"]),
    (
        "api/core/v1.ServiceSpec",
        &["healthCheckNodePort", "publishNotReadyAddresses"],
    ),
    ("api/core/v1.NodeSpec", &["unschedulable"]),
    ("api/core/v1.Event", &["count"]),
    ("api/networking/v1.ServiceBackendPort", &["number"]),
    ("api/apps/v1.DeploymentSpec", &["minReadySeconds", "paused"]),
    ("api/apps/v1.ReplicaSetSpec", &["minReadySeconds"]),
    ("api/apps/v1.StatefulSetSpec", &["minReadySeconds"]),
    ("api/apps/v1.DaemonSetSpec", &["minReadySeconds"]),
    (
        "api/apps/v1.DeploymentStatus",
        &[
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ],
    ),
    (
        "api/apps/v1.ReplicaSetStatus",
        &[
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ],
    ),
    (
        "api/apps/v1.StatefulSetStatus",
        &[
            "observedGeneration",
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
            "availableReplicas",
        ],
    ),
    (
        "api/apps/v1.DaemonSetStatus",
        &[
            "observedGeneration",
            "updatedNumberScheduled",
            "numberAvailable",
            "numberUnavailable",
        ],
    ),
    ("api/batch/v1.JobStatus", &["active", "succeeded", "failed"]),
];

/// Go `*string` fields for which an empty string differs from unset.
const EMPTY_STRING_KEPT: &[(&str, &str)] =
    &[("api/core/v1.PersistentVolumeClaimSpec", "storageClassName")];

fn malformed(reason: impl std::fmt::Display) -> ProtoError {
    ProtoError::Malformed {
        path: String::new(),
        reason: reason.to_string(),
    }
}

impl From<wire::WireError> for ProtoError {
    fn from(e: wire::WireError) -> Self {
        malformed(e)
    }
}

/// Values gathered for one field before the object is assembled in field order.
#[derive(Debug)]
enum Slot {
    Scalar(Value),
    Message(Vec<u8>),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
}

/// Decodes `bytes` as message `index` into its JSON value.
pub(crate) fn message(
    schema: &Schema,
    index: usize,
    bytes: &[u8],
    depth: usize,
) -> Result<Value, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep(MAX_DEPTH));
    }
    let msg = schema.message(index);
    if let Some(special) = msg.special {
        return special_message(schema, msg, special, bytes, depth);
    }
    let mut slots: Vec<Option<Slot>> = msg.fields.iter().map(|_| None).collect();
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        let (number, value) = reader.field()?;
        // Fields newer than our table are skipped, as proto2 decoders do.
        let Some(at) = msg.fields.iter().position(|f| f.number == number) else {
            continue;
        };
        let field = &msg.fields[at];
        read_field(schema, field, value, &mut slots[at], depth)
            .map_err(|e| e.within(&field.json))?;
    }
    let mut object = Map::new();
    for (field, slot) in msg.fields.iter().zip(slots) {
        let value = match slot {
            None => continue,
            Some(Slot::Scalar(v)) => {
                if !keep_scalar(msg, field, &v) {
                    continue;
                }
                v
            }
            Some(Slot::Message(bytes)) => {
                let Type::Message(m) = field.ty else { continue };
                let v = message(schema, m, &bytes, depth + 1).map_err(|e| e.within(&field.json))?;
                if field.label == Label::Embedded {
                    if let Value::Object(inner) = v {
                        object.extend(inner);
                    }
                    continue;
                }
                v
            }
            Some(Slot::List(items)) => Value::Array(items),
            Some(Slot::Map(mut entries)) => {
                // Go's encoding/json writes map keys sorted.
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().collect())
            }
        };
        object.insert(field.json.clone(), value);
    }
    Ok(Value::Object(object))
}

fn read_field(
    schema: &Schema,
    field: &Field,
    value: wire::Value<'_>,
    slot: &mut Option<Slot>,
    depth: usize,
) -> Result<(), ProtoError> {
    match field.label {
        Label::Optional | Label::Embedded => match field.ty {
            Type::Message(_) => {
                let bytes = length_delimited(value)?;
                // Repeated occurrences of a message field merge, which for the wire format
                // is concatenation.
                match slot {
                    Some(Slot::Message(existing)) => existing.extend_from_slice(bytes),
                    _ => *slot = Some(Slot::Message(bytes.to_vec())),
                }
            }
            ty => *slot = Some(Slot::Scalar(scalar(ty, value)?)),
        },
        Label::Repeated => {
            if !matches!(slot, Some(Slot::List(_))) {
                *slot = Some(Slot::List(Vec::new()));
            }
            let Some(Slot::List(items)) = slot else {
                return Ok(());
            };
            match (field.ty, value) {
                (Type::Message(m), value) => {
                    let at = items.len();
                    let v = message(schema, m, length_delimited(value)?, depth + 1)
                        .map_err(|e| e.within(&format!("[{at}]")))?;
                    items.push(v);
                }
                (Type::Int32 | Type::Int64 | Type::Bool, wire::Value::Bytes(packed)) => {
                    let mut reader = Reader::new(packed);
                    while !reader.is_empty() {
                        items.push(scalar(field.ty, wire::Value::Varint(reader.varint()?))?);
                    }
                }
                (Type::Double, wire::Value::Bytes(packed)) => {
                    for chunk in packed.chunks(8) {
                        let mut a = [0u8; 8];
                        if chunk.len() != 8 {
                            return Err(malformed("packed doubles not a multiple of 8 bytes"));
                        }
                        a.copy_from_slice(chunk);
                        items.push(scalar(
                            Type::Double,
                            wire::Value::Fixed64(u64::from_le_bytes(a)),
                        )?);
                    }
                }
                (ty, value) => items.push(scalar(ty, value)?),
            }
        }
        Label::Map => {
            let (key, entry_value) = map_entry(schema, field, length_delimited(value)?, depth)?;
            match slot {
                Some(Slot::Map(entries)) => {
                    // A repeated key replaces the earlier entry, as in Go.
                    entries.retain(|(k, _)| *k != key);
                    entries.push((key, entry_value));
                }
                _ => *slot = Some(Slot::Map(vec![(key, entry_value)])),
            }
        }
    }
    Ok(())
}

fn map_entry(
    schema: &Schema,
    field: &Field,
    bytes: &[u8],
    depth: usize,
) -> Result<(String, Value), ProtoError> {
    let mut key = String::new();
    let mut value = None;
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        match reader.field()? {
            (1, v) => key = utf8(length_delimited(v)?),
            (2, v) => {
                value = Some(match field.ty {
                    Type::Message(m) => message(schema, m, length_delimited(v)?, depth + 1)?,
                    ty => scalar(ty, v)?,
                })
            }
            _ => {}
        }
    }
    let value = match value {
        Some(v) => v,
        // A missing value is the type's zero value.
        None => match field.ty {
            Type::Message(m) => message(schema, m, &[], depth + 1)?,
            Type::String | Type::Bytes => Value::String(String::new()),
            Type::Bool => Value::Bool(false),
            Type::Int32 | Type::Int64 | Type::Double => Value::from(0),
        },
    };
    Ok((key, value))
}

fn length_delimited<'a>(value: wire::Value<'a>) -> Result<&'a [u8], ProtoError> {
    match value {
        wire::Value::Bytes(b) => Ok(b),
        _ => Err(malformed("expected a length-delimited value")),
    }
}

/// Go's decoder replaces invalid UTF-8 only when re-encoding to JSON; do the same.
fn utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scalar(ty: Type, value: wire::Value<'_>) -> Result<Value, ProtoError> {
    Ok(match (ty, value) {
        (Type::String, wire::Value::Bytes(b)) => Value::String(utf8(b)),
        (Type::Bytes, wire::Value::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        // int32 values are sign-extended to 64 bits on the wire; truncation recovers them.
        (Type::Int32, wire::Value::Varint(v)) => Value::from(v as i32),
        (Type::Int64, wire::Value::Varint(v)) => Value::from(v as i64),
        (Type::Bool, wire::Value::Varint(v)) => Value::Bool(v != 0),
        (Type::Double, wire::Value::Fixed64(bits)) => double(f64::from_bits(bits))?,
        _ => return Err(malformed("wire type does not match the field's type")),
    })
}

/// Go writes integral floats without a fraction (`5`, not `5.0`).
fn double(f: f64) -> Result<Value, ProtoError> {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        return Ok(Value::from(f as i64));
    }
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| malformed("a double that is not a finite number"))
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn keep_scalar(msg: &Message, field: &Field, value: &Value) -> bool {
    if field.required || !is_zero(value) {
        return true;
    }
    match field.ty {
        Type::String | Type::Bytes => EMPTY_STRING_KEPT
            .iter()
            .any(|(m, f)| *m == msg.name && *f == field.json),
        _ => !ZERO_OMITTED
            .iter()
            .any(|(m, fields)| *m == msg.name && fields.contains(&field.json.as_str())),
    }
}

/// All occurrences of the fields of a small message, by number.
fn fields_of(bytes: &[u8]) -> Result<Vec<(u32, wire::Value<'_>)>, ProtoError> {
    let mut reader = Reader::new(bytes);
    let mut out = Vec::new();
    while !reader.is_empty() {
        out.push(reader.field()?);
    }
    Ok(out)
}

fn last_varint(fields: &[(u32, wire::Value<'_>)], number: u32) -> u64 {
    fields
        .iter()
        .rev()
        .find_map(|(n, v)| match (n, v) {
            (n, wire::Value::Varint(x)) if *n == number => Some(*x),
            _ => None,
        })
        .unwrap_or(0)
}

fn last_bytes<'a>(fields: &[(u32, wire::Value<'a>)], number: u32) -> Option<&'a [u8]> {
    fields.iter().rev().find_map(|(n, v)| match (n, v) {
        (n, wire::Value::Bytes(b)) if *n == number => Some(*b),
        _ => None,
    })
}

/// The message field `number` of `msg` (its schema, for the apiextensions wrappers).
fn sub_message(msg: &Message, number: u32) -> Result<usize, ProtoError> {
    match msg.field(number).map(|f| f.ty) {
        Some(Type::Message(m)) => Ok(m),
        _ => Err(malformed(format!(
            "{} lacks message field {number}",
            msg.name
        ))),
    }
}

fn special_message(
    schema: &Schema,
    msg: &Message,
    special: Special,
    bytes: &[u8],
    depth: usize,
) -> Result<Value, ProtoError> {
    let fields = fields_of(bytes)?;
    Ok(match special {
        Special::Time | Special::MicroTime => {
            let seconds = last_varint(&fields, 1) as i64;
            let nanos = last_varint(&fields, 2) as i32;
            if seconds == 0 && nanos == 0 {
                // The zero time.Time, which Go marshals as null.
                return Ok(Value::Null);
            }
            let text = if special == Special::Time {
                crate::timefmt::format_time(seconds, nanos)
            } else {
                crate::timefmt::format_micro_time(seconds, nanos)
            };
            Value::String(text.ok_or_else(|| malformed("timestamp out of range"))?)
        }
        Special::Duration => Value::String(crate::timefmt::format_duration(
            last_varint(&fields, 1) as i64,
        )),
        Special::IntOrString => {
            if last_varint(&fields, 1) == 1 {
                Value::String(last_bytes(&fields, 3).map(utf8).unwrap_or_default())
            } else {
                Value::from(last_varint(&fields, 2) as i32)
            }
        }
        Special::Quantity => {
            let text = last_bytes(&fields, 1).map(utf8).unwrap_or_default();
            // A zero Quantity marshals as "0".
            Value::String(if text.is_empty() {
                "0".to_owned()
            } else {
                text
            })
        }
        Special::RawJson => match last_bytes(&fields, 1) {
            None | Some([]) => Value::Null,
            Some(raw) if raw.starts_with(&crate::MAGIC) => crate::decode(raw)?,
            Some(raw) => serde_json::from_slice(raw)
                .map_err(|e| malformed(format!("raw bytes are not JSON: {e}")))?,
        },
        Special::StringList => Value::Array(
            fields
                .iter()
                .filter(|(n, _)| *n == 1)
                .map(|(_, v)| length_delimited(*v).map(|b| Value::String(utf8(b))))
                .collect::<Result<_, _>>()?,
        ),
        Special::PropsOrArray => {
            let item = sub_message(msg, 2)?;
            let schemas = fields
                .iter()
                .filter(|(n, _)| *n == 2)
                .map(|(_, v)| message(schema, item, length_delimited(*v)?, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            if !schemas.is_empty() {
                Value::Array(schemas)
            } else if let Some(b) = last_bytes(&fields, 1) {
                message(schema, sub_message(msg, 1)?, b, depth + 1)?
            } else {
                Value::Null
            }
        }
        Special::PropsOrBool => match last_bytes(&fields, 2) {
            Some(b) => message(schema, sub_message(msg, 2)?, b, depth + 1)?,
            None => Value::Bool(last_varint(&fields, 1) != 0),
        },
        Special::PropsOrStringArray => {
            let property: Vec<Value> = fields
                .iter()
                .filter(|(n, _)| *n == 2)
                .map(|(_, v)| length_delimited(*v).map(|b| Value::String(utf8(b))))
                .collect::<Result<_, _>>()?;
            if !property.is_empty() {
                Value::Array(property)
            } else if let Some(b) = last_bytes(&fields, 1) {
                message(schema, sub_message(msg, 1)?, b, depth + 1)?
            } else {
                Value::Null
            }
        }
    })
}
