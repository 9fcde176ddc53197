//! defaults: not written yet.
