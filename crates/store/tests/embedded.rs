//! The conformance suite against the embedded backend.
mod conformance;
