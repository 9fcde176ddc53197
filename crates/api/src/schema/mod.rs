//! schema: not written yet.
