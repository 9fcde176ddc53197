//! table: not written yet.
