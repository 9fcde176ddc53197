//! Patches: strategic merge patch and the patch metadata of the built-in types.
//!
//! JSON patch and JSON merge patch come from the `json-patch` crate.

pub mod meta;
