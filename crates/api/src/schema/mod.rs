//! OpenAPI schemas of the built-in types and what is derived from them: the definitions
//! registry ([`definitions`]), the OpenAPI v2 and v3 documents kube-apiserver serves
//! ([`openapi`]) with v2's protobuf form ([`openapi_v2_pb`]), and the unknown- and
//! duplicate-field detection behind `fieldValidation=Strict|Warn` ([`strict`]).

pub mod definitions;
pub mod openapi;
pub mod openapi_v2_pb;
mod params;
mod paths;
pub mod prune;
pub mod strict;
mod types;

pub use definitions::{definition_name, definitions, kind_schema, Definitions, KindEntry};
pub use openapi::{
    openapi_v2, openapi_v2_json, openapi_v3, openapi_v3_hash, openapi_v3_index, openapi_v3_json,
};
pub use openapi_v2_pb::{
    negotiate_openapi_v2, openapi_v2_protobuf, OpenApiV2Format, OPENAPI_V2_PROTOBUF_CONTENT_TYPE,
};
pub use prune::prune;
pub use strict::{strict_error_message, strict_problems};
