//! patch: not written yet.
