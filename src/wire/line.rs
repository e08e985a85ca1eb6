//! Reading CRLF-terminated lines with a hard length cap and a buffer that costs nothing while
//! the client is idle.

use std::pin::Pin;
use std::task::Poll;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// The most the first read of a line takes: most command lines fit. Longer lines grow the
/// buffer geometrically, up to the cap.
const FIRST_CHUNK: usize = 128;
/// A buffer grown past this by a long line is released once drained, so one big command does
/// not pin memory for the rest of an idle session.
const KEEP_CAPACITY: usize = 4096;
/// How much of an overlong line is kept for [`LineReader::take_overlong_head`]: enough for
/// an IMAP tag and command name.
const HEAD_LEN: usize = 64;

/// The most one read of a streamed literal asks for: what a connection streaming a large
/// message holds in its read buffer.
const STREAM_CHUNK: usize = 64 * 1024;
/// How much of one overlong line is skipped, after it was answered, before the reader gives
/// up on the client: a line this long is no mistake, and skipping costs a read per buffer.
const MAX_DISCARD: usize = 1024 * 1024;

/// One line read from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its CRLF (or bare LF).
    Complete(Bytes),
    /// The line passed the cap. Reported as soon as it does, not when its end arrives, so the
    /// client can be answered at once; the next read skips the rest of it first.
    TooLong,
    /// The client closed its side; any partial line is dropped.
    Eof,
    /// An overlong line went on for more than 1 MiB past its answer: the client is not
    /// speaking the protocol, and the session should end.
    Unending,
}

/// Splits a byte stream into lines of at most `max_len` bytes.
///
/// The buffer is empty between lines and grows in small steps only while a line is arriving,
/// so an idle connection holds no read buffer. A line over the cap is reported
/// ([`Line::TooLong`]) the moment it passes the cap; what follows of it is skipped by the
/// next read, under a bound ([`Line::Unending`] after 1 MiB skipped).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use tower_mail::wire::{Line, LineReader};
/// let mut input: &[u8] = b"USER alice\r\nPASS x\n";
/// let mut reader = LineReader::new(255);
/// assert_eq!(reader.read_line(&mut input).await.unwrap(), Line::Complete("USER alice".into()));
/// assert_eq!(reader.read_line(&mut input).await.unwrap(), Line::Complete("PASS x".into()));
/// assert_eq!(reader.read_line(&mut input).await.unwrap(), Line::Eof);
/// # });
/// ```
#[derive(Debug)]
pub struct LineReader {
    buf: BytesMut,
    max_len: usize,
    /// The start of the last overlong line, until taken.
    head: Bytes,
    /// Bytes of an overlong line skipped so far, while its end has not arrived. A field, not a
    /// local, so that a read cancelled mid-skip (an IDLE wake-up) resumes skipping instead of
    /// reading the rest of the long line as a new command.
    skipping: Option<usize>,
    /// A larger cap for the lines whose start passes a test, if any.
    longer: Option<LongerLines>,
    /// Whether the buffer's allocation grew past [`KEEP_CAPACITY`]. Kept apart from the
    /// buffer's capacity: once a line is split off, the rest reports only the room after it,
    /// yet holds the whole allocation.
    large: bool,
}

/// The lines that may pass the usual cap: those whose start passes `starts`, up to `max_len`.
#[derive(Debug, Clone, Copy)]
struct LongerLines {
    max_len: usize,
    starts: fn(&[u8]) -> bool,
}

impl LineReader {
    /// A reader for lines of at most `max_len` bytes (not counting CRLF).
    pub fn new(max_len: usize) -> LineReader {
        LineReader {
            buf: BytesMut::new(),
            max_len,
            head: Bytes::new(),
            skipping: None,
            longer: None,
            large: false,
        }
    }

    /// Let the lines whose start passes `starts` be up to `max_len` bytes, every other line
    /// staying under the usual cap. The test is asked only once a line has passed the usual
    /// cap, with the bytes of the line received so far: it decides by the line's first words
    /// (IMAP's ID command may be longer than any other, RFC 2971).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use tower_mail::wire::{Line, LineReader};
    /// let mut input: &[u8] = b"LONG xxxxxxxx\r\nNOOP xxxxxxxx\r\n";
    /// let mut reader = LineReader::new(8);
    /// reader.allow_longer_lines(16, |line| line.starts_with(b"LONG "));
    /// assert_eq!(reader.read_line(&mut input).await.unwrap(), Line::Complete("LONG xxxxxxxx".into()));
    /// assert_eq!(reader.read_line(&mut input).await.unwrap(), Line::TooLong);
    /// # });
    /// ```
    pub fn allow_longer_lines(&mut self, max_len: usize, starts: fn(&[u8]) -> bool) {
        self.longer = Some(LongerLines { max_len, starts });
    }

    /// The cap for the line that starts with `start`: the larger one only for a line already
    /// past the usual cap, so the test runs once a line is long, not on every short line.
    fn cap_for(&self, start: &[u8]) -> usize {
        match self.longer {
            Some(longer) if start.len() > self.max_len && (longer.starts)(start) => {
                longer.max_len.max(self.max_len)
            }
            _ => self.max_len,
        }
    }

    /// The line cap.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Change the line cap (for instance while a long AUTH response is expected).
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }

    /// Bytes received but not yet consumed: pipelined commands.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The first bytes of the last line answered [`Line::TooLong`], so that the protocol can
    /// still answer it by its tag; empty once taken.
    pub fn take_overlong_head(&mut self) -> Bytes {
        std::mem::take(&mut self.head)
    }

    /// Drop every buffered byte. STARTTLS needs this: bytes that arrived in plaintext after the
    /// command must never be read as if they came over TLS (RFC 9051 section 6.2.1, RFC 2595).
    pub fn discard_buffered(&mut self) {
        self.buf = BytesMut::new();
        self.large = false;
        self.skipping = None;
    }

    /// Take every buffered byte. COMPRESS needs this: bytes that arrived after the command
    /// are compressed, for the inflater to read first.
    #[cfg(feature = "compress")]
    pub fn take_buffered(&mut self) -> Bytes {
        self.skipping = None;
        std::mem::take(&mut self.buf).freeze()
    }

    /// Read the next line. Cancel-safe: a cancelled read keeps what arrived, and whether it
    /// was skipping an overlong line, for the next call.
    pub async fn read_line<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        io: &mut R,
    ) -> std::io::Result<Line> {
        loop {
            if let Some(skipped) = self.skipping {
                match memchr::memchr(b'\n', &self.buf) {
                    Some(pos) => {
                        self.buf.advance(pos + 1);
                        self.skipping = None;
                        self.release_if_large();
                        continue;
                    }
                    None => {
                        let skipped = skipped + self.buf.len();
                        if skipped > MAX_DISCARD {
                            self.skipping = None;
                            self.buf = BytesMut::new();
                            self.large = false;
                            return Ok(Line::Unending);
                        }
                        self.skipping = Some(skipped);
                        self.buf.clear();
                    }
                }
            } else if let Some(end) = memchr::memchr(b'\n', &self.buf) {
                let mut line = self.buf.split_to(end + 1);
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                self.release_if_large();
                if line.len() > self.cap_for(&line) {
                    self.head = Bytes::copy_from_slice(&line[..HEAD_LEN.min(line.len())]);
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Complete(line.freeze()));
            }
            let cap = self.cap_for(&self.buf);
            if self.buf.len() > cap + 1 {
                // +1 leaves room for the CR of CRLF. Answer now; drop what we have and skip
                // the rest, keeping memory bounded whatever the client sends.
                self.head = Bytes::copy_from_slice(&self.buf[..HEAD_LEN.min(self.buf.len())]);
                self.skipping = Some(self.buf.len());
                self.buf.clear();
                return Ok(Line::TooLong);
            }
            let filled = self.buf.len().min(cap + 1);
            let room_left = cap + 2 - filled;
            let want = self.buf.len().max(FIRST_CHUNK).min(room_left.max(1));
            let read = if self.buf.is_empty() && self.skipping.is_none() {
                // No line begun: the wait may be long (an idle client), so it holds no buffer.
                self.buf = BytesMut::new();
                self.large = false;
                read_first_bytes(io, &mut self.buf, want).await?
            } else {
                self.reserve(want);
                io.read_buf(&mut self.buf).await?
            };
            if read == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// Read exactly `len` bytes (an IMAP literal), using buffered bytes first.
    pub async fn read_exact<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        io: &mut R,
        len: usize,
    ) -> std::io::Result<Bytes> {
        while self.buf.len() < len {
            self.reserve((len - self.buf.len()).min(STREAM_CHUNK));
            if io.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        let out = self.buf.split_to(len).freeze();
        self.release_if_large();
        Ok(out)
    }

    /// Read 1 to `max` bytes of a streamed literal, using buffered bytes first. Cancel-safe:
    /// bytes are only taken from the buffer once they are returned.
    pub async fn read_some<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        io: &mut R,
        max: usize,
    ) -> std::io::Result<Bytes> {
        if self.buf.is_empty() {
            self.reserve(max.min(STREAM_CHUNK));
            if io.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        let out = self.buf.split_to(self.buf.len().min(max)).freeze();
        self.release_if_large();
        Ok(out)
    }

    fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
        self.large |= self.buf.capacity() > KEEP_CAPACITY;
    }

    fn release_if_large(&mut self) {
        if self.buf.is_empty() && self.large {
            self.buf = BytesMut::new();
            self.large = false;
        }
    }
}

/// Read up to `max` (at most [`FIRST_CHUNK`]) bytes into `buf` through a buffer that lives
/// only during each poll: while the client is silent nothing is allocated, and `buf` gets
/// exactly what arrived. Cancel-safe: bytes are appended in the poll that reads them.
async fn read_first_bytes<R: AsyncRead + Unpin + ?Sized>(
    io: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut chunk = [0u8; FIRST_CHUNK];
        let mut read = ReadBuf::new(&mut chunk[..max.min(FIRST_CHUNK)]);
        std::task::ready!(Pin::new(&mut *io).poll_read(cx, &mut read))?;
        buf.extend_from_slice(read.filled());
        Poll::Ready(Ok(read.filled().len()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use tokio::io::AsyncWriteExt;

    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut reader = LineReader::new(max);
        let mut io = input;
        let mut out = Vec::new();
        loop {
            let line = reader.read_line(&mut io).await.unwrap();
            let eof = line == Line::Eof;
            out.push(line);
            if eof {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn an_overlong_line_is_reported_before_its_end_arrives() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let mut reader = LineReader::new(100);
        client.write_all(&[b'x'; 5000]).await.unwrap();
        // No LF has been sent: the answer must not wait for one.
        assert_eq!(reader.read_line(&mut server).await.unwrap(), Line::TooLong);
        client.write_all(&[b'y'; 5000]).await.unwrap();
        client.write_all(b"\r\nNOOP\r\n").await.unwrap();
        assert_eq!(
            reader.read_line(&mut server).await.unwrap(),
            Line::Complete("NOOP".into()),
            "the rest of the long line is skipped, not read as a command"
        );
    }

    #[tokio::test]
    async fn a_cancelled_read_keeps_skipping_the_overlong_line() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let mut reader = LineReader::new(100);
        client.write_all(&[b'x'; 500]).await.unwrap();
        assert_eq!(reader.read_line(&mut server).await.unwrap(), Line::TooLong);
        client.write_all(b"DONE with this part ").await.unwrap();
        // An IDLE wake-up cancels the read while the long line is still arriving.
        let cancelled = tokio::time::timeout(
            std::time::Duration::from_millis(1),
            reader.read_line(&mut server),
        )
        .await;
        assert!(cancelled.is_err(), "no line is complete yet");
        client.write_all(b"DONE\r\nDONE\r\n").await.unwrap();
        assert_eq!(
            reader.read_line(&mut server).await.unwrap(),
            Line::Complete("DONE".into()),
            "the tail of the long line is not a command"
        );
        drop(client);
        assert_eq!(reader.read_line(&mut server).await.unwrap(), Line::Eof);
    }

    #[tokio::test]
    async fn skipping_is_bounded() {
        let input = vec![b'x'; MAX_DISCARD + 10_000];
        let mut reader = LineReader::new(100);
        let mut io = &input[..];
        assert_eq!(reader.read_line(&mut io).await.unwrap(), Line::TooLong);
        assert_eq!(reader.read_line(&mut io).await.unwrap(), Line::Unending);
    }

    #[tokio::test]
    async fn overlong_line_is_skipped_and_next_line_still_read() {
        let mut input = vec![b'A'; 10_000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let got = lines(&input, 255).await;
        assert_eq!(
            got,
            vec![Line::TooLong, Line::Complete("NOOP".into()), Line::Eof]
        );
    }

    #[tokio::test]
    async fn the_head_of_an_overlong_line_is_kept_once() {
        for len in [300, 10_000] {
            let mut input = b"a7 SEARCH TEXT ".to_vec();
            input.extend(std::iter::repeat_n(b'x', len));
            input.extend_from_slice(b"\r\n");
            let mut reader = LineReader::new(255);
            let mut io = &input[..];
            assert_eq!(reader.read_line(&mut io).await.unwrap(), Line::TooLong);
            let head = reader.take_overlong_head();
            assert_eq!(&head[..], &input[..HEAD_LEN], "{len}");
            assert!(reader.take_overlong_head().is_empty());
        }
    }

    #[tokio::test]
    async fn line_at_the_cap_is_accepted_one_over_is_not() {
        let mut input = vec![b'x'; 8];
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(&[b'y'; 9]);
        input.extend_from_slice(b"\r\n");
        let got = lines(&input, 8).await;
        assert_eq!(got[0], Line::Complete(Bytes::from(vec![b'x'; 8])));
        assert_eq!(got[1], Line::TooLong);
    }

    #[tokio::test]
    async fn only_lines_that_start_so_pass_the_usual_cap_and_only_up_to_theirs() {
        let long = |start: &str, len: usize| {
            let mut line = start.as_bytes().to_vec();
            line.resize(len, b'x');
            line
        };
        let mut input = Vec::new();
        for line in [
            long("a ID ", 20_000),
            long("a NOOP ", 20_000),
            long("a ID ", 30_001),
        ] {
            input.extend_from_slice(&line);
            input.extend_from_slice(b"\r\n");
        }
        input.extend_from_slice(b"b NOOP\r\n");
        let mut reader = LineReader::new(100);
        reader.allow_longer_lines(30_000, |line| line.starts_with(b"a ID "));
        // Read in small pieces, so the long line is judged while it is still arriving.
        let (mut client, mut server) = tokio::io::duplex(1024);
        let writing = tokio::spawn(async move { client.write_all(&input).await });
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(match reader.read_line(&mut server).await.unwrap() {
                Line::Complete(line) => format!("{} bytes", line.len()),
                other => format!("{other:?}"),
            });
        }
        writing.await.unwrap().unwrap();
        assert_eq!(got, ["20000 bytes", "TooLong", "TooLong", "6 bytes"]);
        assert_eq!(&reader.take_overlong_head()[..5], b"a ID ");
    }

    #[tokio::test]
    async fn a_reader_waiting_between_lines_holds_no_buffer() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let mut reader = LineReader::new(100);
        let waiting = reader.read_line(&mut server).now_or_never();
        assert!(waiting.is_none(), "nothing sent yet");
        assert_eq!(reader.buf.capacity(), 0, "before the first line");
        client.write_all(b"a NOOP\r\nb NO").await.unwrap();
        assert_eq!(
            reader.read_line(&mut server).await.unwrap(),
            Line::Complete("a NOOP".into())
        );
        client.write_all(b"OP\r\n").await.unwrap();
        assert_eq!(
            reader.read_line(&mut server).await.unwrap(),
            Line::Complete("b NOOP".into()),
            "a line that arrived in two pieces"
        );
        let waiting = reader.read_line(&mut server).now_or_never();
        assert!(waiting.is_none(), "nothing more sent");
        assert_eq!(reader.buf.capacity(), 0, "between lines");
    }

    #[tokio::test]
    async fn idle_reader_releases_a_large_buffer() {
        // Whatever room the line leaves in the buffer: the buffer left after splitting a
        // line off may look small while it still holds the whole allocation.
        for len in [5_000, 20_000, 31_900, 64_000] {
            let mut input = vec![b'x'; len];
            input.extend_from_slice(b"\r\n");
            let mut reader = LineReader::new(100_000);
            let mut io = &input[..];
            assert!(matches!(
                reader.read_line(&mut io).await.unwrap(),
                Line::Complete(_)
            ));
            assert_eq!(reader.buf.capacity(), 0, "{len}");
        }
    }

    #[tokio::test]
    async fn read_some_hands_out_buffered_bytes_then_reads_at_most_max() {
        let mut reader = LineReader::new(100);
        let mut io: &[u8] = b"A1 APPEND INBOX {10}\r\nhello";
        assert!(matches!(
            reader.read_line(&mut io).await.unwrap(),
            Line::Complete(_)
        ));
        let mut rest: &[u8] = b" world\r\n";
        let first = reader.read_some(&mut rest, 10).await.unwrap();
        assert_eq!(&first[..], b"hello", "what was buffered comes first");
        let second = reader.read_some(&mut rest, 3).await.unwrap();
        assert_eq!(&second[..], b" wo", "never more than asked");
        let third = reader.read_some(&mut rest, 2).await.unwrap();
        assert_eq!(&third[..], b"rl");
        // Whether the reader read ahead or not, the rest comes next and whole.
        let left = reader.read_some(&mut rest, 100).await.unwrap();
        assert_eq!(&left[..], b"d\r\n");
        let mut empty: &[u8] = b"";
        let eof = reader.read_some(&mut empty, 100).await.unwrap_err();
        assert_eq!(eof.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn read_exact_uses_buffered_bytes_first() {
        let mut reader = LineReader::new(100);
        let mut io: &[u8] = b"A1 APPEND {5}\r\nhello\r\n";
        assert_eq!(
            reader.read_line(&mut io).await.unwrap(),
            Line::Complete("A1 APPEND {5}".into())
        );
        assert_eq!(&reader.read_exact(&mut io, 5).await.unwrap()[..], b"hello");
        assert_eq!(
            reader.read_line(&mut io).await.unwrap(),
            Line::Complete("".into())
        );
    }
}
