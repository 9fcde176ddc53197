//! selector: not written yet.
