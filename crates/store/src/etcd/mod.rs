//! The etcd backend (in progress).
