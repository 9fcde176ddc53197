//! validation: not written yet.
