//! A SPDY client session over an upgraded connection: the kubelet opens streams (odd ids,
//! increasing), writes data and half-closes them, and reads what the server sends as
//! [`Event`]s. A writer task owns the write half and the header compressor; a reader task
//! owns the read half and the decompressor, answers the server's PINGs and refuses streams
//! the server tries to open.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::frame::{rst, Frame, HeaderCompressor, HeaderDecompressor, Headers, FLAG_FIN};

/// A stream's id.
pub type StreamId = u32;

/// The largest data frame the session writes.
const MAX_DATA_FRAME: usize = 32 * 1024;

/// What the server did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The server accepted a stream (SYN_REPLY).
    Reply(StreamId),
    /// Bytes on a stream.
    Data(StreamId, Bytes),
    /// The server half-closed a stream (FIN on a data, reply or headers frame).
    Fin(StreamId),
    /// The server reset a stream.
    Reset(StreamId, u32),
    /// The server said GOAWAY.
    GoAway,
    /// The connection ended: cleanly (`None`) or with an error.
    Closed(Option<String>),
}

/// A client session.
#[derive(Debug)]
pub struct Session {
    frames: mpsc::Sender<Frame>,
    events: mpsc::Receiver<Event>,
    next_id: StreamId,
}

/// The session's connection is gone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the SPDY connection is closed")]
pub struct SessionClosed;

impl Session {
    /// Starts the session's reader and writer tasks on `io` (an upgraded connection).
    pub fn start<IO>(io: IO) -> Session
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let (frames_tx, frames_rx) = mpsc::channel::<Frame>(64);
        let (events_tx, events_rx) = mpsc::channel::<Event>(64);
        tokio::spawn(write_loop(write, frames_rx));
        tokio::spawn(read_loop(read, events_tx, frames_tx.clone()));
        Session {
            frames: frames_tx,
            events: events_rx,
            next_id: 1,
        }
    }

    /// Opens a stream with `headers`; the server's SYN_REPLY arrives as [`Event::Reply`].
    pub async fn open(&mut self, headers: Headers) -> Result<StreamId, SessionClosed> {
        let id = self.next_id;
        self.next_id += 2;
        self.frames
            .send(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                flags: 0,
                headers,
            })
            .await
            .map_err(|_| SessionClosed)?;
        Ok(id)
    }

    /// Writes `data` on a stream.
    pub async fn send(&self, id: StreamId, data: Bytes) -> Result<(), SessionClosed> {
        let mut data = data;
        while !data.is_empty() {
            let chunk = data.split_to(data.len().min(MAX_DATA_FRAME));
            self.frames
                .send(Frame::Data {
                    stream_id: id,
                    flags: 0,
                    data: chunk,
                })
                .await
                .map_err(|_| SessionClosed)?;
        }
        Ok(())
    }

    /// Half-closes a stream: the server reads end-of-file on it.
    pub async fn finish(&self, id: StreamId) -> Result<(), SessionClosed> {
        self.frames
            .send(Frame::Data {
                stream_id: id,
                flags: FLAG_FIN,
                data: Bytes::new(),
            })
            .await
            .map_err(|_| SessionClosed)
    }

    /// Resets a stream.
    pub async fn reset(&self, id: StreamId) -> Result<(), SessionClosed> {
        self.frames
            .send(Frame::RstStream {
                stream_id: id,
                status: rst::CANCEL,
            })
            .await
            .map_err(|_| SessionClosed)
    }

    /// Sends GOAWAY; the connection closes once the writer has sent it and this session is
    /// dropped.
    pub async fn go_away(&self) {
        let _ = self
            .frames
            .send(Frame::GoAway {
                last_good_stream_id: 0,
                status: 0,
            })
            .await;
    }

    /// The next thing the server did; `None` once the reader has ended and everything it
    /// reported was taken.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }
}

async fn write_loop<W: AsyncWrite>(write: W, mut frames: mpsc::Receiver<Frame>) {
    tokio::pin!(write);
    let mut z = HeaderCompressor::new();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    while let Some(frame) = frames.recv().await {
        buf.clear();
        if frame.encode(&mut z, &mut buf).is_err() {
            continue;
        }
        // Batch whatever else is already queued into one write.
        while let Ok(more) = frames.try_recv() {
            let _ = more.encode(&mut z, &mut buf);
            if buf.len() > 256 * 1024 {
                break;
            }
        }
        if write.write_all(&buf).await.is_err() || write.flush().await.is_err() {
            return;
        }
    }
    let _ = write.shutdown().await;
}

async fn read_loop<R: AsyncRead>(
    read: R,
    events: mpsc::Sender<Event>,
    frames: mpsc::Sender<Frame>,
) {
    tokio::pin!(read);
    let mut z = HeaderDecompressor::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        loop {
            let frame = match Frame::decode(&mut buf, &mut z) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    let _ = events.send(Event::Closed(Some(e.to_string()))).await;
                    return;
                }
            };
            for event in on_frame(frame, &frames).await {
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
        if buf.capacity() - buf.len() < 8 * 1024 {
            buf.reserve(64 * 1024);
        }
        match read.read_buf(&mut buf).await {
            Ok(0) => {
                let _ = events.send(Event::Closed(None)).await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = events.send(Event::Closed(Some(e.to_string()))).await;
                return;
            }
        }
    }
}

/// What a received frame means to the session's user, after the session's own duties
/// (answering PINGs, refusing pushed streams).
async fn on_frame(frame: Frame, frames: &mpsc::Sender<Frame>) -> Vec<Event> {
    let fin = |flags: u8, id: StreamId, mut out: Vec<Event>| {
        if flags & FLAG_FIN != 0 {
            out.push(Event::Fin(id));
        }
        out
    };
    match frame {
        Frame::SynReply {
            stream_id, flags, ..
        } => fin(flags, stream_id, vec![Event::Reply(stream_id)]),
        Frame::Headers {
            stream_id, flags, ..
        } => fin(flags, stream_id, Vec::new()),
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            let out = if data.is_empty() {
                Vec::new()
            } else {
                vec![Event::Data(stream_id, data)]
            };
            fin(flags, stream_id, out)
        }
        Frame::RstStream { stream_id, status } => vec![Event::Reset(stream_id, status)],
        Frame::GoAway { .. } => vec![Event::GoAway],
        Frame::Ping { id } => {
            // Server-initiated pings have even ids; ours would be odd (we send none).
            if id % 2 == 0 {
                let _ = frames.send(Frame::Ping { id }).await;
            }
            Vec::new()
        }
        Frame::SynStream { stream_id, .. } => {
            let _ = frames
                .send(Frame::RstStream {
                    stream_id,
                    status: rst::REFUSED_STREAM,
                })
                .await;
            Vec::new()
        }
        Frame::Settings { .. } | Frame::WindowUpdate { .. } | Frame::Unknown { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted server on the other end of an in-memory pipe.
    async fn server_reads(
        io: &mut tokio::io::DuplexStream,
        z: &mut HeaderDecompressor,
        buf: &mut BytesMut,
    ) -> Frame {
        loop {
            if let Some(f) = Frame::decode(buf, z).expect("decode") {
                return f;
            }
            let n = io.read_buf(buf).await.expect("read");
            assert!(n > 0, "client closed early");
        }
    }

    #[tokio::test]
    async fn session_opens_streams_sends_data_and_fins_and_reports_server_frames() {
        let (client_io, mut server_io) = tokio::io::duplex(1 << 16);
        let mut session = Session::start(client_io);
        let mut sz = HeaderDecompressor::new();
        let mut sbuf = BytesMut::new();
        let mut server_z = HeaderCompressor::new();

        let a = session
            .open(vec![("streamType".into(), "error".into())])
            .await
            .expect("open");
        let b = session
            .open(vec![("streamType".into(), "stdin".into())])
            .await
            .expect("open");
        assert_eq!((a, b), (1, 3));
        session
            .send(b, Bytes::from_static(b"input"))
            .await
            .expect("send");
        session.finish(b).await.expect("fin");

        match server_reads(&mut server_io, &mut sz, &mut sbuf).await {
            Frame::SynStream {
                stream_id, headers, ..
            } => {
                assert_eq!(stream_id, 1);
                assert_eq!(headers, vec![("streamtype".into(), "error".into())]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            server_reads(&mut server_io, &mut sz, &mut sbuf).await,
            Frame::SynStream { stream_id: 3, .. }
        ));
        assert_eq!(
            server_reads(&mut server_io, &mut sz, &mut sbuf).await,
            Frame::Data {
                stream_id: 3,
                flags: 0,
                data: Bytes::from_static(b"input")
            }
        );
        assert_eq!(
            server_reads(&mut server_io, &mut sz, &mut sbuf).await,
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::new()
            }
        );

        // The server replies, pings, writes on stream 1 and closes it, then goes away.
        let mut out = BytesMut::new();
        for f in [
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: Vec::new(),
            },
            Frame::Ping { id: 2 },
            Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"{\"status\":\"Success\"}"),
            },
            Frame::GoAway {
                last_good_stream_id: 0,
                status: 0,
            },
        ] {
            f.encode(&mut server_z, &mut out).expect("encode");
        }
        server_io.write_all(&out).await.expect("write");
        assert_eq!(session.next_event().await, Some(Event::Reply(1)));
        assert_eq!(
            session.next_event().await,
            Some(Event::Data(
                1,
                Bytes::from_static(b"{\"status\":\"Success\"}")
            ))
        );
        assert_eq!(session.next_event().await, Some(Event::Fin(1)));
        assert_eq!(session.next_event().await, Some(Event::GoAway));
        // the ping came back
        assert_eq!(
            server_reads(&mut server_io, &mut sz, &mut sbuf).await,
            Frame::Ping { id: 2 }
        );
        drop(server_io);
        assert_eq!(session.next_event().await, Some(Event::Closed(None)));
    }
}
