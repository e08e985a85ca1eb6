//! Raw DEFLATE both ways over a stream, for IMAP's COMPRESS=DEFLATE (RFC 4978).
//!
//! RFC 4978 section 4: raw DEFLATE (RFC 1951, no zlib header), with a sync flush after each
//! response so that the client can decompress every reply as soon as it arrives. Every write
//! is compressed into a buffer that `poll_flush` completes and sends; every read inflates into
//! the caller's buffer only, so a small compressed input that inflates to gigabytes (a
//! "deflate bomb") is handed out a buffer at a time to the line reader and its caps, never
//! held.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Compressed bytes read from the stream at a time.
const READ_CHUNK: usize = 8 * 1024;

/// Compressed output held before a write waits for the stream to take some.
const MAX_PENDING_OUT: usize = 64 * 1024;

/// A stream whose reads are inflated and whose writes are deflated.
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tower_mail::wire::DeflateIo;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (server, client) = tokio::io::duplex(1024);
/// let mut server = DeflateIo::new(server, &[]);
/// let mut client = DeflateIo::new(client, &[]);
/// server.write_all(b"* OK compressed\r\n").await.unwrap();
/// server.flush().await.unwrap(); // a sync flush: the client can read the whole line now
/// let mut line = [0; 17];
/// client.read_exact(&mut line).await.unwrap();
/// assert_eq!(&line, b"* OK compressed\r\n");
/// # });
/// ```
pub struct DeflateIo<T> {
    inner: T,
    inflate: Decompress,
    deflate: Compress,
    /// Compressed input not inflated yet: `input[read_at..]`.
    input: Vec<u8>,
    read_at: usize,
    /// The compressed stream ended (RFC 4978 has no such end short of the connection's).
    stream_ended: bool,
    /// The connection's read side ended.
    eof: bool,
    /// Compressed output not sent yet: `output[sent..]`.
    output: Vec<u8>,
    sent: usize,
    /// Whether something was deflated since the last sync flush.
    unflushed: bool,
}

impl<T> DeflateIo<T> {
    /// Compress over `inner`. `already_read` are bytes read from `inner` before compression
    /// began (pipelined after the COMPRESS command): they are inflated first.
    pub fn new(inner: T, already_read: &[u8]) -> DeflateIo<T> {
        DeflateIo {
            inner,
            inflate: Decompress::new(false),
            deflate: Compress::new(Compression::default(), false),
            input: already_read.to_vec(),
            read_at: 0,
            stream_ended: false,
            eof: false,
            output: Vec::new(),
            sent: 0,
            unflushed: false,
        }
    }

    /// Inflate what is buffered into `buf`: how many bytes came out.
    fn inflate_into(&mut self, buf: &mut ReadBuf<'_>) -> io::Result<usize> {
        let before_in = self.inflate.total_in();
        let before_out = self.inflate.total_out();
        let status = self
            .inflate
            .decompress(
                &self.input[self.read_at..],
                buf.initialize_unfilled(),
                FlushDecompress::None,
            )
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        self.read_at += (self.inflate.total_in() - before_in) as usize;
        let produced = (self.inflate.total_out() - before_out) as usize;
        buf.advance(produced);
        if status == Status::StreamEnd {
            self.stream_ended = true;
        }
        Ok(produced)
    }

    /// Deflate `data` (or only flush, when empty) into the output buffer.
    fn deflate(&mut self, mut data: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            self.output.reserve(data.len() / 2 + 64);
            let before_in = self.deflate.total_in();
            self.deflate
                .compress_vec(data, &mut self.output, flush)
                .map_err(io::Error::other)?;
            data = &data[(self.deflate.total_in() - before_in) as usize..];
            // Done when all input is in and the compressor stopped for want of input, not of
            // room (a sync flush may need several calls to write its marker out).
            if data.is_empty() && self.output.len() < self.output.capacity() {
                return Ok(());
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> DeflateIo<T> {
    /// Send buffered compressed output until it is all written.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.output.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.output[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.output.clear();
        self.sent = 0;
        // A large reply should not pin its buffer for the rest of an idle session.
        if self.output.capacity() > MAX_PENDING_OUT {
            self.output = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for DeflateIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.stream_ended {
                return Poll::Ready(Ok(()));
            }
            let consumed_before = this.read_at;
            if this.inflate_into(buf)? > 0 || this.stream_ended {
                return Poll::Ready(Ok(()));
            }
            if this.read_at > consumed_before {
                // Input went in (block headers) without output yet: go on with the rest.
                continue;
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            // The inflater needs more than is buffered: keep what it has not taken, and read.
            this.input.drain(..this.read_at);
            this.read_at = 0;
            let kept = this.input.len();
            if kept > READ_CHUNK {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "compressed input makes no progress",
                )));
            }
            this.input.resize(kept + READ_CHUNK, 0);
            let mut chunk = ReadBuf::new(&mut this.input[kept..]);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut chunk);
            let got = chunk.filled().len();
            this.input.truncate(kept + got);
            ready!(polled)?;
            if got == 0 {
                // The client closed the connection.
                this.eof = true;
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DeflateIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Back-pressure: a client that stops reading holds at most this much of ours.
        if this.output.len() - this.sent > MAX_PENDING_OUT {
            ready!(this.poll_send(cx))?;
        }
        this.deflate(data, FlushCompress::None)?;
        this.unflushed = true;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.unflushed {
            this.deflate(&[], FlushCompress::Sync)?;
            this.unflushed = false;
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 1024);
        let mut compress = Compress::new(Compression::best(), false);
        compress
            .compress_vec(data, &mut out, FlushCompress::Sync)
            .unwrap();
        out
    }

    #[tokio::test]
    async fn each_flush_makes_a_reply_readable_at_once() {
        let (server, client) = tokio::io::duplex(64 * 1024);
        let mut server = DeflateIo::new(server, &[]);
        let mut client = DeflateIo::new(client, &[]);
        for i in 0..100 {
            let line = format!("* {i} FETCH (FLAGS (\\Seen))\r\n");
            server.write_all(line.as_bytes()).await.unwrap();
            server.flush().await.unwrap();
            let mut got = vec![0; line.len()];
            client.read_exact(&mut got).await.unwrap();
            assert_eq!(got, line.as_bytes());
        }
    }

    #[tokio::test]
    async fn bytes_read_before_compression_are_inflated_first() {
        let compressed = raw_deflate(b"a NOOP\r\nb LOGOUT\r\n");
        let (head, tail) = compressed.split_at(5);
        let (mut peer, ours) = tokio::io::duplex(1024);
        peer.write_all(tail).await.unwrap();
        drop(peer);
        let mut ours = DeflateIo::new(ours, head);
        let mut text = String::new();
        ours.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "a NOOP\r\nb LOGOUT\r\n");
    }

    #[tokio::test]
    async fn a_deflate_bomb_is_handed_out_a_buffer_at_a_time() {
        // 64 MiB of one byte deflates to about 64 KiB; each read inflates into the caller's
        // small buffer only.
        let bomb = raw_deflate(&vec![b'a'; 64 * 1024 * 1024]);
        assert!(bomb.len() < 128 * 1024, "{}", bomb.len());
        let (mut peer, ours) = tokio::io::duplex(256 * 1024);
        let writer = tokio::spawn(async move {
            peer.write_all(&bomb).await.unwrap();
            peer
        });
        let mut ours = DeflateIo::new(ours, &[]);
        let mut buf = [0; 4096];
        let n = ours.read(&mut buf).await.unwrap();
        assert!(n > 0 && n <= buf.len());
        assert!(buf[..n].iter().all(|&b| b == b'a'));
        // What it holds is the compressed input, never the inflated output.
        assert!(ours.input.capacity() <= 2 * READ_CHUNK);
        drop(ours);
        drop(writer);
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_hang() {
        let (mut peer, ours) = tokio::io::duplex(1024);
        // 0xff: a block type of 3, which RFC 1951 reserves.
        peer.write_all(&[0xff; 16]).await.unwrap();
        let mut ours = DeflateIo::new(ours, &[]);
        let mut buf = [0; 64];
        let err = ours.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
