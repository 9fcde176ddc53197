//! Patches: strategic merge patch and the patch metadata of the built-in types.
//!
//! JSON patch and JSON merge patch come from the `json-patch` crate.

mod gofmt;
pub mod meta;
mod schema_walk;
mod smp_list;
mod smp_map;
pub mod strategic;

pub use strategic::{
    apply as apply_strategic, supports_kind as strategic_supports_kind, StrategicPatchError,
};
