//! SPDY/3.1 framing, as Kubernetes streams use it (`Upgrade: SPDY/3.1`): the kubelet speaks
//! it as a client to the container runtime's streaming server when it translates a
//! WebSocket `v5.channel.k8s.io` session (kubectl 1.30 and newer) into the SPDY session
//! containerd 1.6 understands.
//!
//! Written here because no well-kept Rust crate implements SPDY: the protocol was abandoned
//! for HTTP/2 in 2015 and survives only in Kubernetes (Go's `moby/spdystream`); the crates.io
//! attempts are unmaintained drafts. What Kubernetes needs is small: the eight control
//! frames and data frames of draft 3.1, with header blocks compressed by one zlib stream per
//! direction primed with the protocol's dictionary (`flate2` does the zlib), and no flow
//! control (spdystream neither sends nor honours WINDOW_UPDATE).
//!
//! - [`frame`]: the frames, their wire encoding and the header compression (pure);
//! - [`dictionary`]: the zlib dictionary of SPDY/3;
//! - [`client`]: a client session over an upgraded connection: create streams, send data
//!   and FINs, receive events.

pub mod client;
pub mod dictionary;
pub mod frame;

pub use client::{Event, Session, StreamId};
pub use frame::{Frame, HeaderCompressor, HeaderDecompressor, SpdyError};
