//! gnostic's `openapi.v2` messages as tables: for each message, which swagger key goes to
//! which field number and how, and how each oneof picks its member — the choices gnostic's
//! `ParseDocument` makes when kube-apiserver turns its JSON document into protobuf.

use serde_json::Value;

use super::{Kind, Shape};

fn any_key(_: &str) -> bool {
    true
}

fn is_path(key: &str) -> bool {
    key.starts_with('/')
}

/// gnostic's `^([0-9]{3})$|^(default)$`.
fn is_response_code(key: &str) -> bool {
    key == "default" || (key.len() == 3 && key.bytes().all(|b| b.is_ascii_digit()))
}

fn has_ref(v: &Value) -> bool {
    v.get("$ref").is_some()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(super) static DOCUMENT: Shape = Shape::Object {
    fields: &[
        ("swagger", 1, Kind::Str),
        ("info", 2, Kind::Msg(&INFO)),
        ("host", 3, Kind::Str),
        ("basePath", 4, Kind::Str),
        ("schemes", 5, Kind::Strings),
        ("consumes", 6, Kind::Strings),
        ("produces", 7, Kind::Strings),
        ("paths", 8, Kind::Msg(&PATHS)),
        ("definitions", 9, Kind::Msg(&NAMED_SCHEMAS)),
        ("parameters", 10, Kind::Msg(&PARAMETER_DEFINITIONS)),
        ("responses", 11, Kind::Msg(&RESPONSE_DEFINITIONS)),
        ("security", 12, Kind::Msgs(&SECURITY_REQUIREMENT)),
        ("securityDefinitions", 13, Kind::Msg(&SECURITY_DEFINITIONS)),
        ("tags", 14, Kind::Msgs(&TAG)),
        ("externalDocs", 15, Kind::Msg(&EXTERNAL_DOCS)),
    ],
    ext: Some(16),
};

static INFO: Shape = Shape::Object {
    fields: &[
        ("title", 1, Kind::Str),
        ("version", 2, Kind::Str),
        ("description", 3, Kind::Str),
        ("termsOfService", 4, Kind::Str),
        ("contact", 5, Kind::Msg(&CONTACT)),
        ("license", 6, Kind::Msg(&LICENSE)),
    ],
    ext: Some(7),
};

static CONTACT: Shape = Shape::Object {
    fields: &[
        ("name", 1, Kind::Str),
        ("url", 2, Kind::Str),
        ("email", 3, Kind::Str),
    ],
    ext: Some(4),
};

static LICENSE: Shape = Shape::Object {
    fields: &[("name", 1, Kind::Str), ("url", 2, Kind::Str)],
    ext: Some(3),
};

static EXTERNAL_DOCS: Shape = Shape::Object {
    fields: &[("description", 1, Kind::Str), ("url", 2, Kind::Str)],
    ext: Some(3),
};

static TAG: Shape = Shape::Object {
    fields: &[
        ("name", 1, Kind::Str),
        ("description", 2, Kind::Str),
        ("externalDocs", 3, Kind::Msg(&EXTERNAL_DOCS)),
    ],
    ext: Some(4),
};

static XML: Shape = Shape::Object {
    fields: &[
        ("name", 1, Kind::Str),
        ("namespace", 2, Kind::Str),
        ("prefix", 3, Kind::Str),
        ("attribute", 4, Kind::Bool),
        ("wrapped", 5, Kind::Bool),
    ],
    ext: Some(6),
};

static SCHEMA: Shape = Shape::Object {
    fields: &[
        ("$ref", 1, Kind::Str),
        ("format", 2, Kind::Str),
        ("title", 3, Kind::Str),
        ("description", 4, Kind::Str),
        ("default", 5, Kind::Any),
        ("multipleOf", 6, Kind::Double),
        ("maximum", 7, Kind::Double),
        ("exclusiveMaximum", 8, Kind::Bool),
        ("minimum", 9, Kind::Double),
        ("exclusiveMinimum", 10, Kind::Bool),
        ("maxLength", 11, Kind::Int),
        ("minLength", 12, Kind::Int),
        ("pattern", 13, Kind::Str),
        ("maxItems", 14, Kind::Int),
        ("minItems", 15, Kind::Int),
        ("uniqueItems", 16, Kind::Bool),
        ("maxProperties", 17, Kind::Int),
        ("minProperties", 18, Kind::Int),
        ("required", 19, Kind::Strings),
        ("enum", 20, Kind::Anys),
        (
            "additionalProperties",
            21,
            Kind::Msg(&ADDITIONAL_PROPERTIES),
        ),
        ("type", 22, Kind::Msg(&TYPE_ITEM)),
        ("items", 23, Kind::Msg(&ITEMS_ITEM)),
        ("allOf", 24, Kind::Msgs(&SCHEMA)),
        ("properties", 25, Kind::Msg(&NAMED_SCHEMAS)),
        ("discriminator", 26, Kind::Str),
        ("readOnly", 27, Kind::Bool),
        ("xml", 28, Kind::Msg(&XML)),
        ("externalDocs", 29, Kind::Msg(&EXTERNAL_DOCS)),
        ("example", 30, Kind::Any),
    ],
    ext: Some(31),
};

/// `Definitions` and `Properties`: both `repeated NamedSchema additional_properties = 1`.
static NAMED_SCHEMAS: Shape = Shape::Map {
    field: 1,
    value: Kind::Msg(&SCHEMA),
    ext: None,
    accept: any_key,
};

static ADDITIONAL_PROPERTIES: Shape = Shape::OneOf(|v| match v {
    Value::Object(_) => Some((1, Kind::Msg(&SCHEMA))),
    Value::Bool(_) => Some((2, Kind::Bool)),
    _ => None,
});

/// `TypeItem{repeated string value = 1}`: gnostic takes a single type name or a list.
static TYPE_ITEM: Shape = Shape::OneOf(|v| match v {
    Value::String(_) => Some((1, Kind::Str)),
    Value::Array(_) => Some((1, Kind::Strings)),
    _ => None,
});

/// `ItemsItem{repeated Schema schema = 1}`: gnostic accepts only a single schema object.
static ITEMS_ITEM: Shape = Shape::OneOf(|v| match v {
    Value::Object(_) => Some((1, Kind::Msg(&SCHEMA))),
    Value::Array(_) => Some((1, Kind::Msgs(&SCHEMA))),
    _ => None,
});

static PATHS: Shape = Shape::Map {
    field: 2,
    value: Kind::Msg(&PATH_ITEM),
    ext: Some(1),
    accept: is_path,
};

static PATH_ITEM: Shape = Shape::Object {
    fields: &[
        ("$ref", 1, Kind::Str),
        ("get", 2, Kind::Msg(&OPERATION)),
        ("put", 3, Kind::Msg(&OPERATION)),
        ("post", 4, Kind::Msg(&OPERATION)),
        ("delete", 5, Kind::Msg(&OPERATION)),
        ("options", 6, Kind::Msg(&OPERATION)),
        ("head", 7, Kind::Msg(&OPERATION)),
        ("patch", 8, Kind::Msg(&OPERATION)),
        ("parameters", 9, Kind::Msgs(&PARAMETERS_ITEM)),
    ],
    ext: Some(10),
};

static OPERATION: Shape = Shape::Object {
    fields: &[
        ("tags", 1, Kind::Strings),
        ("summary", 2, Kind::Str),
        ("description", 3, Kind::Str),
        ("externalDocs", 4, Kind::Msg(&EXTERNAL_DOCS)),
        ("operationId", 5, Kind::Str),
        ("produces", 6, Kind::Strings),
        ("consumes", 7, Kind::Strings),
        ("parameters", 8, Kind::Msgs(&PARAMETERS_ITEM)),
        ("responses", 9, Kind::Msg(&RESPONSES)),
        ("schemes", 10, Kind::Strings),
        ("deprecated", 11, Kind::Bool),
        ("security", 12, Kind::Msgs(&SECURITY_REQUIREMENT)),
    ],
    ext: Some(13),
};

static JSON_REFERENCE: Shape = Shape::Object {
    fields: &[("$ref", 1, Kind::Str), ("description", 2, Kind::Str)],
    ext: None,
};

static PARAMETERS_ITEM: Shape = Shape::OneOf(|v| {
    if has_ref(v) {
        Some((2, Kind::Msg(&JSON_REFERENCE)))
    } else {
        v.is_object().then_some((1, Kind::Msg(&PARAMETER)))
    }
});

static PARAMETER: Shape = Shape::OneOf(|v| {
    if str_of(v, "in") == "body" {
        Some((1, Kind::Msg(&BODY_PARAMETER)))
    } else {
        Some((2, Kind::Msg(&NON_BODY_PARAMETER)))
    }
});

/// gnostic checks `in` against each sub-schema's single allowed value.
static NON_BODY_PARAMETER: Shape = Shape::OneOf(|v| match str_of(v, "in") {
    "header" => Some((1, Kind::Msg(&HEADER_PARAMETER))),
    "formData" => Some((2, Kind::Msg(&QUERY_OR_FORM_PARAMETER))),
    "query" => Some((3, Kind::Msg(&QUERY_OR_FORM_PARAMETER))),
    "path" => Some((4, Kind::Msg(&HEADER_PARAMETER))),
    _ => None,
});

static BODY_PARAMETER: Shape = Shape::Object {
    fields: &[
        ("description", 1, Kind::Str),
        ("name", 2, Kind::Str),
        ("in", 3, Kind::Str),
        ("required", 4, Kind::Bool),
        ("schema", 5, Kind::Msg(&SCHEMA)),
    ],
    ext: Some(6),
};

/// `HeaderParameterSubSchema` and `PathParameterSubSchema` number their fields alike.
static HEADER_PARAMETER: Shape = Shape::Object {
    fields: &[
        ("required", 1, Kind::Bool),
        ("in", 2, Kind::Str),
        ("description", 3, Kind::Str),
        ("name", 4, Kind::Str),
        ("type", 5, Kind::Str),
        ("format", 6, Kind::Str),
        ("items", 7, Kind::Msg(&PRIMITIVES_ITEMS)),
        ("collectionFormat", 8, Kind::Str),
        ("default", 9, Kind::Any),
        ("maximum", 10, Kind::Double),
        ("exclusiveMaximum", 11, Kind::Bool),
        ("minimum", 12, Kind::Double),
        ("exclusiveMinimum", 13, Kind::Bool),
        ("maxLength", 14, Kind::Int),
        ("minLength", 15, Kind::Int),
        ("pattern", 16, Kind::Str),
        ("maxItems", 17, Kind::Int),
        ("minItems", 18, Kind::Int),
        ("uniqueItems", 19, Kind::Bool),
        ("enum", 20, Kind::Anys),
        ("multipleOf", 21, Kind::Double),
    ],
    ext: Some(22),
};

/// `QueryParameterSubSchema` and `FormDataParameterSubSchema` number their fields alike
/// (both have `allowEmptyValue` at 5).
static QUERY_OR_FORM_PARAMETER: Shape = Shape::Object {
    fields: &[
        ("required", 1, Kind::Bool),
        ("in", 2, Kind::Str),
        ("description", 3, Kind::Str),
        ("name", 4, Kind::Str),
        ("allowEmptyValue", 5, Kind::Bool),
        ("type", 6, Kind::Str),
        ("format", 7, Kind::Str),
        ("items", 8, Kind::Msg(&PRIMITIVES_ITEMS)),
        ("collectionFormat", 9, Kind::Str),
        ("default", 10, Kind::Any),
        ("maximum", 11, Kind::Double),
        ("exclusiveMaximum", 12, Kind::Bool),
        ("minimum", 13, Kind::Double),
        ("exclusiveMinimum", 14, Kind::Bool),
        ("maxLength", 15, Kind::Int),
        ("minLength", 16, Kind::Int),
        ("pattern", 17, Kind::Str),
        ("maxItems", 18, Kind::Int),
        ("minItems", 19, Kind::Int),
        ("uniqueItems", 20, Kind::Bool),
        ("enum", 21, Kind::Anys),
        ("multipleOf", 22, Kind::Double),
    ],
    ext: Some(23),
};

/// The validation keywords `PrimitivesItems` and `Header` share, numbered 1 to 17.
macro_rules! primitive_fields {
    ($($extra:expr),* $(,)?) => {
        &[
            ("type", 1, Kind::Str),
            ("format", 2, Kind::Str),
            ("items", 3, Kind::Msg(&PRIMITIVES_ITEMS)),
            ("collectionFormat", 4, Kind::Str),
            ("default", 5, Kind::Any),
            ("maximum", 6, Kind::Double),
            ("exclusiveMaximum", 7, Kind::Bool),
            ("minimum", 8, Kind::Double),
            ("exclusiveMinimum", 9, Kind::Bool),
            ("maxLength", 10, Kind::Int),
            ("minLength", 11, Kind::Int),
            ("pattern", 12, Kind::Str),
            ("maxItems", 13, Kind::Int),
            ("minItems", 14, Kind::Int),
            ("uniqueItems", 15, Kind::Bool),
            ("enum", 16, Kind::Anys),
            ("multipleOf", 17, Kind::Double),
            $($extra,)*
        ]
    };
}

static PRIMITIVES_ITEMS: Shape = Shape::Object {
    fields: primitive_fields!(),
    ext: Some(18),
};

static HEADER: Shape = Shape::Object {
    fields: primitive_fields!(("description", 18, Kind::Str)),
    ext: Some(19),
};

static RESPONSES: Shape = Shape::Map {
    field: 1,
    value: Kind::Msg(&RESPONSE_VALUE),
    ext: Some(2),
    accept: is_response_code,
};

static RESPONSE_VALUE: Shape = Shape::OneOf(|v| {
    if has_ref(v) {
        Some((2, Kind::Msg(&JSON_REFERENCE)))
    } else {
        v.is_object().then_some((1, Kind::Msg(&RESPONSE)))
    }
});

static RESPONSE: Shape = Shape::Object {
    fields: &[
        ("description", 1, Kind::Str),
        ("schema", 2, Kind::Msg(&SCHEMA_ITEM)),
        ("headers", 3, Kind::Msg(&HEADERS)),
        ("examples", 4, Kind::Msg(&EXAMPLES)),
    ],
    ext: Some(5),
};

/// gnostic tries `Schema` then `FileSchema`; only `type: file` passes the latter.
static SCHEMA_ITEM: Shape = Shape::OneOf(|v| {
    if str_of(v, "type") == "file" {
        Some((2, Kind::Msg(&FILE_SCHEMA)))
    } else {
        v.is_object().then_some((1, Kind::Msg(&SCHEMA)))
    }
});

static FILE_SCHEMA: Shape = Shape::Object {
    fields: &[
        ("format", 1, Kind::Str),
        ("title", 2, Kind::Str),
        ("description", 3, Kind::Str),
        ("default", 4, Kind::Any),
        ("required", 5, Kind::Strings),
        ("type", 6, Kind::Str),
        ("readOnly", 7, Kind::Bool),
        ("externalDocs", 8, Kind::Msg(&EXTERNAL_DOCS)),
        ("example", 9, Kind::Any),
    ],
    ext: Some(10),
};

static HEADERS: Shape = Shape::Map {
    field: 1,
    value: Kind::Msg(&HEADER),
    ext: None,
    accept: any_key,
};

static EXAMPLES: Shape = Shape::Map {
    field: 1,
    value: Kind::Any,
    ext: None,
    accept: any_key,
};

static PARAMETER_DEFINITIONS: Shape = Shape::Map {
    field: 1,
    value: Kind::Msg(&PARAMETER),
    ext: None,
    accept: any_key,
};

static RESPONSE_DEFINITIONS: Shape = Shape::Map {
    field: 1,
    value: Kind::Msg(&RESPONSE),
    ext: None,
    accept: any_key,
};

static SECURITY_REQUIREMENT: Shape = Shape::Map {
    field: 1,
    value: Kind::Msg(&STRING_ARRAY),
    ext: None,
    accept: any_key,
};

static STRING_ARRAY: Shape = Shape::OneOf(|v| v.is_array().then_some((1, Kind::Strings)));

static SECURITY_DEFINITIONS: Shape = Shape::Map {
    field: 1,
    value: Kind::Msg(&SECURITY_DEFINITIONS_ITEM),
    ext: None,
    accept: any_key,
};

static SECURITY_DEFINITIONS_ITEM: Shape =
    Shape::OneOf(|v| match (str_of(v, "type"), str_of(v, "flow")) {
        ("basic", _) => Some((1, Kind::Msg(&BASIC_SECURITY))),
        ("apiKey", _) => Some((2, Kind::Msg(&API_KEY_SECURITY))),
        ("oauth2", "implicit") => Some((3, Kind::Msg(&OAUTH2_IMPLICIT))),
        ("oauth2", "password") => Some((4, Kind::Msg(&OAUTH2_TOKEN_URL))),
        ("oauth2", "application") => Some((5, Kind::Msg(&OAUTH2_TOKEN_URL))),
        ("oauth2", "accessCode") => Some((6, Kind::Msg(&OAUTH2_ACCESS_CODE))),
        _ => None,
    });

static BASIC_SECURITY: Shape = Shape::Object {
    fields: &[("type", 1, Kind::Str), ("description", 2, Kind::Str)],
    ext: Some(3),
};

static API_KEY_SECURITY: Shape = Shape::Object {
    fields: &[
        ("type", 1, Kind::Str),
        ("name", 2, Kind::Str),
        ("in", 3, Kind::Str),
        ("description", 4, Kind::Str),
    ],
    ext: Some(5),
};

static OAUTH2_IMPLICIT: Shape = Shape::Object {
    fields: &[
        ("type", 1, Kind::Str),
        ("flow", 2, Kind::Str),
        ("scopes", 3, Kind::Msg(&OAUTH2_SCOPES)),
        ("authorizationUrl", 4, Kind::Str),
        ("description", 5, Kind::Str),
    ],
    ext: Some(6),
};

/// `Oauth2PasswordSecurity` and `Oauth2ApplicationSecurity` number their fields alike.
static OAUTH2_TOKEN_URL: Shape = Shape::Object {
    fields: &[
        ("type", 1, Kind::Str),
        ("flow", 2, Kind::Str),
        ("scopes", 3, Kind::Msg(&OAUTH2_SCOPES)),
        ("tokenUrl", 4, Kind::Str),
        ("description", 5, Kind::Str),
    ],
    ext: Some(6),
};

static OAUTH2_ACCESS_CODE: Shape = Shape::Object {
    fields: &[
        ("type", 1, Kind::Str),
        ("flow", 2, Kind::Str),
        ("scopes", 3, Kind::Msg(&OAUTH2_SCOPES)),
        ("authorizationUrl", 4, Kind::Str),
        ("tokenUrl", 5, Kind::Str),
        ("description", 6, Kind::Str),
    ],
    ext: Some(7),
};

static OAUTH2_SCOPES: Shape = Shape::Map {
    field: 1,
    value: Kind::Str,
    ext: None,
    accept: any_key,
};
