//! Kubernetes' protobuf wire format: not written yet.
