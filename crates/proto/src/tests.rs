//! Round trips and independently built bodies.
