//! The conversation with one client, as every protocol service needs it: read a line (or a
//! literal) while watching the idle timeout and the session's end signal, send replies without
//! letting a client that stops reading hold the session, and upgrade to TLS.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::stream::Stream;
use super::{CountingIo, Line, LineReader};
use crate::close_reason::CloseReason;
use crate::connection::{BoxIo, Transport, TransportSlot};
use crate::session::Session;
use crate::tls::TlsAcceptor;

/// Why a wait for the client stopped without a line. The protocol service says its goodbye
/// (`-ERR` / `* BYE`) for the first two and then closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupted {
    /// The session was asked to end ([`Session::end`], server shutdown), with this reason.
    Ending(CloseReason),
    /// The client was silent for the idle timeout.
    Idle,
    /// The client closed the connection, or reading failed.
    Gone(CloseReason),
    /// The client sent an overlong line that did not end within the skip bound: told
    /// "Line too long", closed as a protocol error.
    Unending,
}

impl Interrupted {
    /// What the client is told and why the session ends; `Err` with the reason when the
    /// client is gone and can be told nothing.
    pub fn into_goodbye(self) -> Result<(String, CloseReason), CloseReason> {
        let reason = match self {
            Interrupted::Gone(reason) => return Err(reason),
            Interrupted::Unending => {
                return Ok(("Line too long".to_owned(), CloseReason::ProtocolErrors));
            }
            Interrupted::Idle => CloseReason::IdleTimeout,
            Interrupted::Ending(reason) => reason,
        };
        Ok((reason.goodbye().to_owned(), reason))
    }
}

/// One client's byte stream with its read buffer and reply buffer.
///
/// Every wait for the client goes through [`next_line`](Channel::next_line) or
/// [`read_literal`](Channel::read_literal), so each ends the same way; every reply goes
/// through [`flush`](Channel::flush), which is bounded by the idle timeout and the end signal.
pub struct Channel {
    io: Stream,
    reader: LineReader,
    out: Vec<u8>,
    session: Arc<Session>,
    idle_timeout: Duration,
    /// When a client that has not logged in is let go however busy it keeps the session
    /// (the server's login timeout); `None` once logged in. Enforced by the same timer as
    /// the idle timeout, so it costs an idle connection nothing more.
    login_deadline: Option<Instant>,
    starttls: Option<TlsAcceptor>,
    /// Where the stream goes back if the channel is dropped before [`shutdown`]
    /// (Channel::shutdown): the server then says goodbye for the session.
    home: Option<Arc<TransportSlot>>,
    /// A reply may be partly written: a flush started and did not finish (cut by the end
    /// signal, or its future dropped). A goodbye written now would land inside that reply, where
    /// the client would read it as part of the reply (a line of a message, the rest of a
    /// literal), so the stream is not given back for one.
    reply_cut: bool,
}

impl Drop for Channel {
    fn drop(&mut self) {
        if let Some(home) = self.home.take()
            && !self.reply_cut
        {
            home.put_back(self.take_io().into_io());
        }
    }
}

impl Channel {
    /// A channel over `transport`, counting traffic into `session`, with lines of at most
    /// `max_line_len` bytes and the given idle timeout.
    pub fn new(
        transport: Transport,
        session: Arc<Session>,
        max_line_len: usize,
        idle_timeout: Duration,
    ) -> Channel {
        Channel {
            io: Stream::Counted(CountingIo::new(transport.io, session.clone())),
            reader: LineReader::new(max_line_len),
            out: Vec::new(),
            login_deadline: session
                .login_timeout
                .map(|timeout| Instant::now() + timeout),
            session,
            idle_timeout,
            starttls: transport.starttls,
            home: transport.home,
            reply_cut: false,
        }
    }

    /// The reply buffer: protocol code writes replies here, then calls
    /// [`flush`](Channel::flush).
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// The client has logged in: the login deadline no longer applies.
    pub fn logged_in(&mut self) {
        self.login_deadline = None;
    }

    /// Change the idle timeout (IMAP uses a longer one once logged in).
    pub fn set_idle_timeout(&mut self, idle_timeout: Duration) {
        self.idle_timeout = idle_timeout;
    }

    /// Change the line cap (for SASL responses, which may be longer than commands).
    pub fn set_max_line_len(&mut self, max_len: usize) {
        self.reader.set_max_len(max_len);
    }

    /// Let the lines whose start passes `starts` be up to `max_len` bytes (IMAP's ID command);
    /// see [`LineReader::allow_longer_lines`].
    pub fn allow_longer_lines(&mut self, max_len: usize, starts: fn(&[u8]) -> bool) {
        self.reader.allow_longer_lines(max_len, starts);
    }

    /// The next line; `Ok(None)` if it was longer than the cap (it was skipped).
    pub async fn next_line(&mut self) -> Result<Option<Bytes>, Interrupted> {
        self.release_idle_reply_buffer();
        let read = self.reader.read_line(&mut self.io);
        match watch(&self.session, self.idle_timeout, self.login_deadline, read).await? {
            Line::Eof => Err(Interrupted::Gone(CloseReason::ClientClosed)),
            Line::Unending => Err(Interrupted::Unending),
            Line::TooLong => Ok(None),
            Line::Complete(line) => Ok(Some(line)),
        }
    }

    /// The first bytes of the last line [`next_line`](Channel::next_line) skipped as too
    /// long: IMAP answers it by its tag.
    pub fn take_overlong_head(&mut self) -> Bytes {
        self.reader.take_overlong_head()
    }

    /// Exactly `len` bytes (an IMAP literal), under the same watch as
    /// [`next_line`](Channel::next_line).
    pub async fn read_literal(&mut self, len: usize) -> Result<Bytes, Interrupted> {
        let read = self.reader.read_exact(&mut self.io, len);
        watch(&self.session, self.idle_timeout, self.login_deadline, read).await
    }

    /// The next 1 to `max` bytes of a literal that is streamed rather than held whole (an
    /// APPEND's message), under the same watch as [`next_line`](Channel::next_line): the idle
    /// timeout applies to each piece, so a client that stalls mid-message is let go.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Bytes, Interrupted> {
        let read = self.reader.read_some(&mut self.io, max);
        watch(&self.session, self.idle_timeout, self.login_deadline, read).await
    }

    /// Before a wait for the client that may be long: with no line already here, the reply
    /// buffer is let go, so that an idle connection holds none (the next reply takes a fresh
    /// one, a cheap allocation beside the wait). A pipelining client keeps it.
    fn release_idle_reply_buffer(&mut self) {
        if self.out.is_empty() && self.reader.buffered() == 0 {
            self.out = Vec::new();
        }
    }

    /// Send what is buffered. A client that stops reading cannot hold the session: the write
    /// is bounded by the idle timeout and by the session's end signal.
    pub async fn flush(&mut self) -> Result<(), CloseReason> {
        if self.out.is_empty() {
            return Ok(());
        }
        // Cleared only when the whole reply is out: any other way out of this function,
        // including its future being dropped, leaves the reply cut.
        self.reply_cut = true;
        let result = tokio::select! {
            biased;
            written = tokio::time::timeout(self.idle_timeout, write_and_flush(&mut self.io, &self.out)) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(err)) => Err(CloseReason::from_io(&err)),
                Err(_elapsed) => Err(CloseReason::IdleTimeout),
            },
            _ = self.session.ending() => {
                Err(self.session.end_reason().unwrap_or(CloseReason::Shutdown))
            }
        };
        self.reply_cut = result.is_err();
        self.out.clear();
        // A large reply should not pin its buffer for the rest of an idle session.
        if self.out.capacity() > 16 * 1024 {
            self.out = Vec::new();
        }
        result
    }

    /// Whether STARTTLS/STLS can be offered now: the listener allows it and TLS is not active.
    pub fn can_starttls(&self) -> bool {
        self.starttls.is_some() && !self.session.secure()
    }

    /// Upgrade to TLS after the protocol's "go ahead" reply was flushed. Bytes the client
    /// pipelined after the command arrived in plaintext and are discarded, never read as if
    /// they came over TLS (RFC 9051 section 6.2.1, RFC 2595).
    pub async fn starttls(&mut self, handshake_timeout: Duration) -> Result<(), CloseReason> {
        let Some(acceptor) = self.starttls.take() else {
            return Err(CloseReason::Io(std::io::ErrorKind::Unsupported));
        };
        self.reader.discard_buffered();
        let plain = self.take_io().into_io();
        let tls = crate::tls::handshake(&acceptor, plain, handshake_timeout, &self.session, false)
            .await
            .map_err(|err| CloseReason::from_io(&err))?;
        self.io = Stream::Counted(CountingIo::new(tls, self.session.clone()));
        Ok(())
    }

    /// Whether COMPRESS=DEFLATE is on.
    pub fn compressing(&self) -> bool {
        match self.io {
            Stream::Counted(_) => false,
            #[cfg(feature = "compress")]
            Stream::Compressed(_) => true,
        }
    }

    /// Compress both ways from here on (RFC 4978), after the tagged OK was flushed. Bytes the
    /// client sent after the command are compressed already, and are inflated first. Does
    /// nothing if compression is on.
    #[cfg(feature = "compress")]
    pub fn compress(&mut self) {
        if let Stream::Counted(counted) = self.take_io() {
            let pipelined = self.reader.take_buffered();
            self.io = Stream::Compressed(super::DeflateIo::new(counted, &pipelined));
        }
    }

    /// Close the connection: best effort, the client may already be gone. The session ended
    /// on its own, so the stream is not given back for a goodbye.
    pub async fn shutdown(&mut self) {
        self.home = None;
        let _ = self.io.shutdown().await;
    }

    /// The stream, leaving a placeholder that reads nothing and swallows writes.
    fn take_io(&mut self) -> Stream {
        let placeholder: BoxIo = Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink()));
        std::mem::replace(
            &mut self.io,
            Stream::Counted(CountingIo::new(placeholder, self.session.clone())),
        )
    }
}

/// Write `out` and flush: a compressing stream sends a reply only on flush (RFC 4978's sync
/// flush per response); for TCP and TLS the flush costs nothing more.
async fn write_and_flush(io: &mut Stream, out: &[u8]) -> std::io::Result<()> {
    io.write_all(out).await?;
    io.flush().await
}

/// Wait for `read` while watching the session's end signal and the idle timeout: every wait
/// for the client ends in one of the same few ways.
async fn watch<T>(
    session: &Session,
    idle_timeout: Duration,
    login_deadline: Option<Instant>,
    read: impl Future<Output = std::io::Result<T>>,
) -> Result<T, Interrupted> {
    let idle_deadline = Instant::now() + idle_timeout;
    let (deadline, login) = match login_deadline {
        Some(login) if login < idle_deadline => (login, true),
        _ => (idle_deadline, false),
    };
    let read = tokio::select! {
        biased;
        _ = session.ending() => return Err(ending(session)),
        read = tokio::time::timeout_at(deadline, read) => read,
    };
    match read {
        Err(_elapsed) if login => {
            // Recorded, as any other end, so that what reports the session's end agrees.
            session.end(CloseReason::LoginTimeout);
            Err(Interrupted::Ending(CloseReason::LoginTimeout))
        }
        Err(_elapsed) => Err(Interrupted::Idle),
        Ok(Err(err)) => Err(Interrupted::Gone(CloseReason::from_io(&err))),
        Ok(Ok(value)) => Ok(value),
    }
}

fn ending(session: &Session) -> Interrupted {
    Interrupted::Ending(session.end_reason().unwrap_or(CloseReason::Shutdown))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, DuplexStream};

    use super::*;
    use crate::session::Protocol;

    fn channel() -> (Channel, DuplexStream) {
        let (client, server) = tokio::io::duplex(4096);
        let session = Arc::new(Session::new(
            Protocol::Pop3,
            "192.0.2.1:4000".parse().unwrap(),
            "127.0.0.1:110".parse().unwrap(),
        ));
        let channel = Channel::new(Transport::new(server), session, 255, Duration::from_secs(5));
        (channel, client)
    }

    async fn reply(channel: &mut Channel, client: &mut DuplexStream, text: &[u8]) {
        channel.out().extend_from_slice(text);
        channel.flush().await.unwrap();
        let mut got = vec![0; text.len()];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, text);
    }

    #[tokio::test]
    async fn a_connection_waiting_for_its_client_holds_no_reply_buffer() {
        let (mut channel, mut client) = channel();
        reply(
            &mut channel,
            &mut client,
            b"+OK a greeting of some length\r\n",
        )
        .await;
        client.write_all(b"NOOP\r\n").await.unwrap();
        let line = channel.next_line().await.unwrap();
        assert_eq!(line.as_deref(), Some(&b"NOOP"[..]));
        assert_eq!(channel.out().capacity(), 0);
        // The next reply still goes out whole.
        reply(&mut channel, &mut client, b"+OK\r\n").await;
    }

    #[tokio::test]
    async fn pipelined_commands_keep_the_reply_buffer() {
        let (mut channel, mut client) = channel();
        client.write_all(b"NOOP\r\nNOOP\r\n").await.unwrap();
        channel.next_line().await.unwrap();
        reply(&mut channel, &mut client, b"+OK\r\n").await;
        let kept = channel.out().capacity();
        assert!(kept > 0);
        channel.next_line().await.unwrap();
        assert_eq!(channel.out().capacity(), kept);
    }
}
