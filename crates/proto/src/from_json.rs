//! JSON values to protobuf message bytes, as client-go would decode them into Go structs.
//!
//! Only what the JSON holds is written: for a Go pointer, absence means nil and must stay
//! absent; for a plain field, absence and the zero value decode alike. JSON members the
//! message does not define (`kind`, `apiVersion`, fields of a newer release) are dropped, as
//! upstream's protobuf encoding of the Go struct would. Map entries are written in key order
//! and message fields in field-number order, as gogo's marshallers do.

use base64::Engine as _;
use serde_json::Value;

use crate::schema::{Field, Label, Schema, Special, Type};
use crate::to_json::MAX_DEPTH;
use crate::wire::{put_bytes, put_fixed64_field, put_varint_field};
use crate::ProtoError;

fn invalid(reason: impl std::fmt::Display) -> ProtoError {
    ProtoError::InvalidValue {
        path: String::new(),
        reason: reason.to_string(),
    }
}

/// Encodes `value` as the body of message `index` (no tag or length) onto `out`.
pub(crate) fn message(
    schema: &Schema,
    index: usize,
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep(MAX_DEPTH));
    }
    let msg = schema.message(index);
    if let Some(special) = msg.special {
        return special_message(schema, index, special, value, out, depth);
    }
    let Value::Object(object) = value else {
        return Err(invalid(format!(
            "expected an object, found {}",
            kind_of(value)
        )));
    };
    for field in &msg.fields {
        let result = if field.label == Label::Embedded {
            // The embedded struct's members sit in this same JSON object.
            match field.ty {
                Type::Message(m) => nested(schema, m, value, depth)
                    .map(|bytes| put_bytes(out, field.number, &bytes)),
                _ => Ok(()),
            }
        } else {
            match object.get(&field.json) {
                None | Some(Value::Null) => continue,
                Some(v) => write_field(schema, field, v, out, depth),
            }
        };
        result.map_err(|e| e.within(&field.json))?;
    }
    Ok(())
}

fn nested(
    schema: &Schema,
    index: usize,
    value: &Value,
    depth: usize,
) -> Result<Vec<u8>, ProtoError> {
    let mut bytes = Vec::new();
    message(schema, index, value, &mut bytes, depth + 1)?;
    Ok(bytes)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn write_field(
    schema: &Schema,
    field: &Field,
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), ProtoError> {
    match field.label {
        Label::Optional | Label::Embedded => {
            write_one(schema, field.ty, field.number, value, out, depth)
        }
        Label::Repeated => {
            let Value::Array(items) = value else {
                return Err(invalid(format!(
                    "expected an array, found {}",
                    kind_of(value)
                )));
            };
            for (at, item) in items.iter().enumerate() {
                write_one(schema, field.ty, field.number, item, out, depth)
                    .map_err(|e| e.within(&format!("[{at}]")))?;
            }
            Ok(())
        }
        Label::Map => {
            let Value::Object(entries) = value else {
                return Err(invalid(format!(
                    "expected an object, found {}",
                    kind_of(value)
                )));
            };
            let mut keys: Vec<&String> = entries.keys().collect();
            keys.sort();
            for key in keys {
                let mut entry = Vec::new();
                put_bytes(&mut entry, 1, key.as_bytes());
                let entry_value = entries.get(key).unwrap_or(&Value::Null);
                write_one(schema, field.ty, 2, entry_value, &mut entry, depth)
                    .map_err(|e| e.within(key))?;
                put_bytes(out, field.number, &entry);
            }
            Ok(())
        }
    }
}

/// One value of type `ty` as field `number`; `null` stands for the zero value, as Go's JSON
/// decoder treats it inside arrays and maps.
fn write_one(
    schema: &Schema,
    ty: Type,
    number: u32,
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), ProtoError> {
    match ty {
        Type::Message(m) => {
            let bytes = if value.is_null() {
                Vec::new()
            } else {
                nested(schema, m, value, depth)?
            };
            put_bytes(out, number, &bytes);
        }
        Type::String => put_bytes(out, number, string(value)?.as_bytes()),
        Type::Bytes => {
            let text = string(value)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .map_err(|e| invalid(format!("not base64: {e}")))?;
            put_bytes(out, number, &bytes);
        }
        Type::Int32 => {
            let v = integer(value)?;
            let v = i32::try_from(v).map_err(|_| invalid(format!("{v} does not fit in int32")))?;
            // Negative int32 values are sign-extended to ten bytes on the wire.
            put_varint_field(out, number, i64::from(v) as u64);
        }
        Type::Int64 => put_varint_field(out, number, integer(value)? as u64),
        Type::Bool => match value {
            Value::Bool(b) => put_varint_field(out, number, u64::from(*b)),
            Value::Null => put_varint_field(out, number, 0),
            other => {
                return Err(invalid(format!(
                    "expected a boolean, found {}",
                    kind_of(other)
                )))
            }
        },
        Type::Double => {
            let f = match value {
                Value::Number(n) => n.as_f64().unwrap_or(0.0),
                Value::Null => 0.0,
                other => {
                    return Err(invalid(format!(
                        "expected a number, found {}",
                        kind_of(other)
                    )))
                }
            };
            put_fixed64_field(out, number, f.to_bits());
        }
    }
    Ok(())
}

fn string(value: &Value) -> Result<&str, ProtoError> {
    match value {
        Value::String(s) => Ok(s),
        Value::Null => Ok(""),
        other => Err(invalid(format!(
            "expected a string, found {}",
            kind_of(other)
        ))),
    }
}

fn integer(value: &Value) -> Result<i64, ProtoError> {
    match value {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| invalid(format!("{n} is not an integer"))),
        other => Err(invalid(format!(
            "expected an integer, found {}",
            kind_of(other)
        ))),
    }
}

fn sub_message(schema: &Schema, index: usize, number: u32) -> Result<usize, ProtoError> {
    let msg = schema.message(index);
    match msg.field(number).map(|f| f.ty) {
        Some(Type::Message(m)) => Ok(m),
        _ => Err(invalid(format!(
            "{} lacks message field {number}",
            msg.name
        ))),
    }
}

fn special_message(
    schema: &Schema,
    index: usize,
    special: Special,
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), ProtoError> {
    match special {
        Special::Time | Special::MicroTime => {
            if value.is_null() {
                return Ok(());
            }
            let text = string(value)?;
            let (seconds, nanos) = crate::timefmt::parse_time(text)
                .ok_or_else(|| invalid(format!("{text:?} is not an RFC 3339 time")))?;
            put_varint_field(out, 1, seconds as u64);
            put_varint_field(out, 2, i64::from(nanos) as u64);
        }
        Special::Duration => {
            let text = string(value)?;
            let nanos = crate::timefmt::parse_duration(text)
                .ok_or_else(|| invalid(format!("{text:?} is not a duration")))?;
            put_varint_field(out, 1, nanos as u64);
        }
        Special::IntOrString => match value {
            Value::String(s) => {
                put_varint_field(out, 1, 1);
                put_varint_field(out, 2, 0);
                put_bytes(out, 3, s.as_bytes());
            }
            other => {
                let v = integer(other)?;
                let v =
                    i32::try_from(v).map_err(|_| invalid(format!("{v} does not fit in int32")))?;
                put_varint_field(out, 1, 0);
                put_varint_field(out, 2, i64::from(v) as u64);
                put_bytes(out, 3, b"");
            }
        },
        Special::Quantity => match value {
            Value::String(s) => put_bytes(out, 1, s.as_bytes()),
            // Quantities also accept bare JSON numbers.
            Value::Number(n) => put_bytes(out, 1, n.to_string().as_bytes()),
            Value::Null => {}
            other => {
                return Err(invalid(format!(
                    "expected a quantity, found {}",
                    kind_of(other)
                )))
            }
        },
        Special::RawJson => {
            if !value.is_null() {
                let raw = serde_json::to_vec(value).map_err(invalid)?;
                put_bytes(out, 1, &raw);
            }
        }
        Special::StringList => {
            let Value::Array(items) = value else {
                return Err(invalid(format!(
                    "expected an array, found {}",
                    kind_of(value)
                )));
            };
            for item in items {
                put_bytes(out, 1, string(item)?.as_bytes());
            }
        }
        Special::PropsOrArray => match value {
            Value::Array(items) => {
                let item = sub_message(schema, index, 2)?;
                for v in items {
                    put_bytes(out, 2, &nested(schema, item, v, depth)?);
                }
            }
            Value::Null => {}
            v => put_bytes(
                out,
                1,
                &nested(schema, sub_message(schema, index, 1)?, v, depth)?,
            ),
        },
        Special::PropsOrBool => match value {
            Value::Bool(b) => put_varint_field(out, 1, u64::from(*b)),
            Value::Null => {}
            v => {
                put_varint_field(out, 1, 1);
                put_bytes(
                    out,
                    2,
                    &nested(schema, sub_message(schema, index, 2)?, v, depth)?,
                );
            }
        },
        Special::PropsOrStringArray => match value {
            Value::Array(items) => {
                for item in items {
                    put_bytes(out, 2, string(item)?.as_bytes());
                }
            }
            Value::Null => {}
            v => put_bytes(
                out,
                1,
                &nested(schema, sub_message(schema, index, 1)?, v, depth)?,
            ),
        },
    }
    Ok(())
}
