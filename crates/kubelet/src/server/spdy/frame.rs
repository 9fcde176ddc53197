//! SPDY/3.1 frames on the wire (draft 3.1, section 2.2 and 2.6) and the header-block
//! compression. Pure: [`Frame::encode`] appends bytes, [`Frame::decode`] takes one frame off
//! the front of a buffer, each with the connection's stateful zlib stream for header blocks.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::dictionary;

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// The largest payload a frame can carry (24-bit length).
pub const MAX_LENGTH: usize = (1 << 24) - 1;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// Control-frame flag FLAG_FIN (and data-frame FLAG_FIN).
pub const FLAG_FIN: u8 = 0x01;
/// SYN_STREAM flag FLAG_UNIDIRECTIONAL.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

/// RST_STREAM status codes (draft 3.1, 2.6.3).
pub mod rst {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const CANCEL: u32 = 5;
    pub const INTERNAL_ERROR: u32 = 6;
}

/// Header names and values; a value holding several values separates them with NUL.
pub type Headers = Vec<(String, String)>;

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        /// 0 (highest) to 7.
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        /// (flags, id, value)
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame of a type this implementation does not know (only ever decoded).
    Unknown {
        kind: u16,
    },
}

/// A frame that breaks the protocol, or a header block zlib cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpdyError {
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("malformed {what} frame")]
    Malformed { what: &'static str },
    #[error("header block: {0}")]
    Headers(String),
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
}

fn malformed(what: &'static str) -> SpdyError {
    SpdyError::Malformed { what }
}

impl Frame {
    /// The stream a frame belongs to (0 for connection-level frames).
    pub fn stream_id(&self) -> u32 {
        match self {
            Frame::SynStream { stream_id, .. }
            | Frame::SynReply { stream_id, .. }
            | Frame::RstStream { stream_id, .. }
            | Frame::Headers { stream_id, .. }
            | Frame::WindowUpdate { stream_id, .. }
            | Frame::Data { stream_id, .. } => *stream_id,
            Frame::Settings { .. }
            | Frame::Ping { .. }
            | Frame::GoAway { .. }
            | Frame::Unknown { .. } => 0,
        }
    }

    /// Appends the frame's bytes to `out`, compressing a header block with `z`.
    pub fn encode(&self, z: &mut HeaderCompressor, out: &mut BytesMut) -> Result<(), SpdyError> {
        match self {
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if data.len() > MAX_LENGTH {
                    return Err(SpdyError::TooLarge(data.len()));
                }
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32((u32::from(*flags) << 24) | data.len() as u32);
                out.put_slice(data);
            }
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                flags,
                headers,
            } => {
                let block = z.compress(&header_block(headers))?;
                let mut body = BytesMut::with_capacity(10 + block.len());
                body.put_u32(stream_id & 0x7fff_ffff);
                body.put_u32(associated_to & 0x7fff_ffff);
                body.put_u8((priority & 0x07) << 5);
                body.put_u8(0); // credential slot
                body.put_slice(&block);
                control(out, TYPE_SYN_STREAM, *flags, &body)?;
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                let block = z.compress(&header_block(headers))?;
                let mut body = BytesMut::with_capacity(4 + block.len());
                body.put_u32(stream_id & 0x7fff_ffff);
                body.put_slice(&block);
                control(out, TYPE_SYN_REPLY, *flags, &body)?;
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                let block = z.compress(&header_block(headers))?;
                let mut body = BytesMut::with_capacity(4 + block.len());
                body.put_u32(stream_id & 0x7fff_ffff);
                body.put_slice(&block);
                control(out, TYPE_HEADERS, *flags, &body)?;
            }
            Frame::RstStream { stream_id, status } => {
                let mut body = BytesMut::with_capacity(8);
                body.put_u32(stream_id & 0x7fff_ffff);
                body.put_u32(*status);
                control(out, TYPE_RST_STREAM, 0, &body)?;
            }
            Frame::Settings { flags, entries } => {
                let mut body = BytesMut::with_capacity(4 + 8 * entries.len());
                body.put_u32(entries.len() as u32);
                for (f, id, value) in entries {
                    body.put_u32((u32::from(*f) << 24) | (id & 0x00ff_ffff));
                    body.put_u32(*value);
                }
                control(out, TYPE_SETTINGS, *flags, &body)?;
            }
            Frame::Ping { id } => control(out, TYPE_PING, 0, &id.to_be_bytes())?,
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                let mut body = BytesMut::with_capacity(8);
                body.put_u32(last_good_stream_id & 0x7fff_ffff);
                body.put_u32(*status);
                control(out, TYPE_GOAWAY, 0, &body)?;
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut body = BytesMut::with_capacity(8);
                body.put_u32(stream_id & 0x7fff_ffff);
                body.put_u32(delta & 0x7fff_ffff);
                control(out, TYPE_WINDOW_UPDATE, 0, &body)?;
            }
            Frame::Unknown { .. } => return Err(malformed("unknown")),
        }
        Ok(())
    }

    /// Takes one whole frame off the front of `buf`; `None` when `buf` does not hold one yet.
    pub fn decode(
        buf: &mut BytesMut,
        z: &mut HeaderDecompressor,
    ) -> Result<Option<Frame>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let word = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let flags = buf[4];
        let length = (u32::from_be_bytes([0, buf[5], buf[6], buf[7]])) as usize;
        if buf.len() < 8 + length {
            return Ok(None);
        }
        let control_bit = word & 0x8000_0000 != 0;
        buf.advance(8);
        let mut body = buf.split_to(length).freeze();
        if !control_bit {
            return Ok(Some(Frame::Data {
                stream_id: word & 0x7fff_ffff,
                flags,
                data: body,
            }));
        }
        let version = ((word >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let kind = (word & 0xffff) as u16;
        let frame = match kind {
            TYPE_SYN_STREAM => {
                if body.len() < 10 {
                    return Err(malformed("SYN_STREAM"));
                }
                let stream_id = body.get_u32() & 0x7fff_ffff;
                let associated_to = body.get_u32() & 0x7fff_ffff;
                let priority = body.get_u8() >> 5;
                let _slot = body.get_u8();
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    flags,
                    headers: parse_header_block(&z.decompress(&body)?)?,
                }
            }
            TYPE_SYN_REPLY | TYPE_HEADERS => {
                if body.len() < 4 {
                    return Err(malformed("SYN_REPLY"));
                }
                let stream_id = body.get_u32() & 0x7fff_ffff;
                let headers = parse_header_block(&z.decompress(&body)?)?;
                if kind == TYPE_SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        flags,
                        headers,
                    }
                }
            }
            TYPE_RST_STREAM => {
                if body.len() != 8 {
                    return Err(malformed("RST_STREAM"));
                }
                Frame::RstStream {
                    stream_id: body.get_u32() & 0x7fff_ffff,
                    status: body.get_u32(),
                }
            }
            TYPE_SETTINGS => {
                if body.len() < 4 {
                    return Err(malformed("SETTINGS"));
                }
                let count = body.get_u32() as usize;
                if body.len() != count.saturating_mul(8) {
                    return Err(malformed("SETTINGS"));
                }
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    let id = body.get_u32();
                    let value = body.get_u32();
                    entries.push(((id >> 24) as u8, id & 0x00ff_ffff, value));
                }
                Frame::Settings { flags, entries }
            }
            TYPE_PING => {
                if body.len() != 4 {
                    return Err(malformed("PING"));
                }
                Frame::Ping { id: body.get_u32() }
            }
            TYPE_GOAWAY => {
                if body.len() < 4 {
                    return Err(malformed("GOAWAY"));
                }
                let last_good_stream_id = body.get_u32() & 0x7fff_ffff;
                let status = if body.len() >= 4 { body.get_u32() } else { 0 };
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                }
            }
            TYPE_WINDOW_UPDATE => {
                if body.len() != 8 {
                    return Err(malformed("WINDOW_UPDATE"));
                }
                Frame::WindowUpdate {
                    stream_id: body.get_u32() & 0x7fff_ffff,
                    delta: body.get_u32() & 0x7fff_ffff,
                }
            }
            // draft 3.1: an unknown control frame is ignored by the receiver.
            other => Frame::Unknown { kind: other },
        };
        Ok(Some(frame))
    }
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, body: &[u8]) -> Result<(), SpdyError> {
    if body.len() > MAX_LENGTH {
        return Err(SpdyError::TooLarge(body.len()));
    }
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32((u32::from(flags) << 24) | body.len() as u32);
    out.put_slice(body);
    Ok(())
}

/// A header block before compression: a 32-bit count, then each name and value with a
/// 32-bit length. Names are lower-cased, as the protocol requires.
pub fn header_block(headers: &Headers) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Reads a decompressed header block.
pub fn parse_header_block(mut block: &[u8]) -> Result<Headers, SpdyError> {
    let bad = || SpdyError::Headers("truncated header block".into());
    let take = |block: &mut &[u8]| -> Result<Vec<u8>, SpdyError> {
        if block.len() < 4 {
            return Err(bad());
        }
        let len = u32::from_be_bytes([block[0], block[1], block[2], block[3]]) as usize;
        let rest = block.get(4..4 + len).ok_or_else(bad)?.to_vec();
        *block = &block[4 + len..];
        Ok(rest)
    };
    if block.len() < 4 {
        return Err(bad());
    }
    let count = u32::from_be_bytes([block[0], block[1], block[2], block[3]]) as usize;
    block = &block[4..];
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let name = take(&mut block)?;
        let value = take(&mut block)?;
        headers.push((
            String::from_utf8_lossy(&name).to_ascii_lowercase(),
            String::from_utf8_lossy(&value).into_owned(),
        ));
    }
    Ok(headers)
}

/// The sending side's zlib stream: one per connection and direction, primed with the
/// dictionary, each header block ended with a sync flush.
pub struct HeaderCompressor {
    z: Compress,
}

impl std::fmt::Debug for HeaderCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderCompressor")
            .field("total_in", &self.z.total_in())
            .finish()
    }
}

impl Default for HeaderCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderCompressor {
    pub fn new() -> Self {
        let mut z = Compress::new(Compression::best(), true);
        // Setting a dictionary on a fresh stream cannot fail.
        let _ = z.set_dictionary(dictionary());
        HeaderCompressor { z }
    }

    /// Compresses one header block, flushed so the peer can read it whole.
    pub fn compress(&mut self, input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Headers(e.to_string()))?;
            consumed += (self.z.total_in() - before) as usize;
            // The flush is complete once all input is taken and zlib left room unused.
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The receiving side's zlib stream.
pub struct HeaderDecompressor {
    z: Decompress,
}

impl std::fmt::Debug for HeaderDecompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderDecompressor")
            .field("total_in", &self.z.total_in())
            .finish()
    }
}

impl Default for HeaderDecompressor {
    fn default() -> Self {
        Self::new()
    }
}

/// The most a header block may inflate to.
const MAX_HEADER_BLOCK: usize = 1 << 20;

impl HeaderDecompressor {
    pub fn new() -> Self {
        HeaderDecompressor {
            z: Decompress::new(true),
        }
    }

    /// Inflates one header block (the next piece of the connection's zlib stream).
    pub fn decompress(&mut self, input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(1024);
            }
            let before = self.z.total_in();
            let result = self
                .z
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.z.total_in() - before) as usize;
            match result {
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(dictionary())
                        .map_err(|e| SpdyError::Headers(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(SpdyError::Headers(e.to_string())),
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(SpdyError::Headers("header block too large".into()));
            }
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(frames: &[Frame]) -> Vec<Frame> {
        let mut z = HeaderCompressor::new();
        let mut buf = BytesMut::new();
        for f in frames {
            f.encode(&mut z, &mut buf).expect("encode");
        }
        let mut dz = HeaderDecompressor::new();
        let mut out = Vec::new();
        // Feed the bytes in small pieces, as a socket would deliver them.
        let all = buf.freeze();
        let mut pending = BytesMut::new();
        for chunk in all.chunks(7) {
            pending.extend_from_slice(chunk);
            while let Some(frame) = Frame::decode(&mut pending, &mut dz).expect("decode") {
                out.push(frame);
            }
        }
        assert!(pending.is_empty());
        out
    }

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_frame_type_survives_encoding_with_one_stateful_header_stream() {
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                flags: 0,
                headers: h(&[("streamtype", "error")]),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 0,
                priority: 7,
                flags: FLAG_FIN,
                headers: h(&[("streamtype", "stdout"), ("port", "80")]),
            },
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: Vec::new(),
            },
            Frame::Headers {
                stream_id: 3,
                flags: FLAG_FIN,
                headers: h(&[("x", "a\0b")]),
            },
            Frame::Data {
                stream_id: 3,
                flags: 0,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 5,
                flags: FLAG_FIN,
                data: Bytes::new(),
            },
            Frame::RstStream {
                stream_id: 7,
                status: rst::CANCEL,
            },
            Frame::Settings {
                flags: 0,
                entries: vec![(0, 4, 100), (1, 7, 65536)],
            },
            Frame::Ping { id: 1 },
            Frame::GoAway {
                last_good_stream_id: 9,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 1000,
            },
        ];
        assert_eq!(roundtrip(&frames), frames);
    }

    #[test]
    fn header_names_are_lower_cased_and_the_zlib_header_names_the_dictionary() {
        let mut z = HeaderCompressor::new();
        let first = z
            .compress(&header_block(&h(&[("StreamType", "stdin")])))
            .expect("compress");
        // zlib header with FDICT set, then the dictionary's Adler-32 (0xe3c6a7c2).
        assert_eq!(first[0] & 0x0f, 8);
        assert_ne!(first[1] & 0x20, 0, "FDICT");
        assert_eq!(&first[2..6], &[0xe3, 0xc6, 0xa7, 0xc2]);
        let mut dz = HeaderDecompressor::new();
        let block = dz.decompress(&first).expect("inflate");
        assert_eq!(
            parse_header_block(&block).expect("parse"),
            h(&[("streamtype", "stdin")])
        );
    }

    #[test]
    fn control_frame_layout_matches_the_draft() {
        let mut z = HeaderCompressor::new();
        let mut buf = BytesMut::new();
        Frame::Ping { id: 0x0102_0304 }
            .encode(&mut z, &mut buf)
            .expect("encode");
        assert_eq!(&buf[..], &[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 1, 2, 3, 4]);
        buf.clear();
        Frame::Data {
            stream_id: 5,
            flags: FLAG_FIN,
            data: Bytes::from_static(b"ab"),
        }
        .encode(&mut z, &mut buf)
        .expect("encode");
        assert_eq!(&buf[..], &[0, 0, 0, 5, 1, 0, 0, 2, b'a', b'b']);
        buf.clear();
        Frame::RstStream {
            stream_id: 3,
            status: rst::REFUSED_STREAM,
        }
        .encode(&mut z, &mut buf)
        .expect("encode");
        assert_eq!(
            &buf[..],
            &[0x80, 0x03, 0x00, 0x03, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 3]
        );
    }

    #[test]
    fn truncated_and_foreign_input_is_refused_or_waited_for() {
        let mut dz = HeaderDecompressor::new();
        // half a frame header: wait
        let mut buf = BytesMut::from(&[0x80u8, 0x03, 0x00][..]);
        assert_eq!(Frame::decode(&mut buf, &mut dz), Ok(None));
        // SPDY/2
        let mut buf = BytesMut::from(&[0x80u8, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert_eq!(Frame::decode(&mut buf, &mut dz), Err(SpdyError::Version(2)));
        // a PING with a 3-byte body
        let mut buf = BytesMut::from(&[0x80u8, 0x03, 0x00, 0x06, 0, 0, 0, 3, 0, 0, 1][..]);
        assert!(Frame::decode(&mut buf, &mut dz).is_err());
        // a header block that is not zlib
        let mut buf =
            BytesMut::from(&[0x80u8, 0x03, 0x00, 0x02, 0, 0, 0, 8, 0, 0, 0, 1, 1, 2, 3, 4][..]);
        assert!(matches!(
            Frame::decode(&mut buf, &mut dz),
            Err(SpdyError::Headers(_))
        ));
        assert!(parse_header_block(&[0, 0, 0, 1, 0, 0, 0, 9, b'a']).is_err());
    }
}
