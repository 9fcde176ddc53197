//! quantity: not written yet.
