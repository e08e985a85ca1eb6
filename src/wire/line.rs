//! Reading CRLF-terminated lines with a hard length cap and a buffer that costs nothing while
//! the client is idle.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The first reservation for a line: most command lines fit, and every idle connection holds
/// one. Longer lines grow the buffer geometrically, up to the cap.
const FIRST_CHUNK: usize = 128;
/// A buffer grown past this by a long line is released once drained, so one big command does
/// not pin memory for the rest of an idle session.
const KEEP_CAPACITY: usize = 4096;
/// How much of an overlong line is kept for [`LineReader::take_overlong_head`]: enough for
/// an IMAP tag and command name.
const HEAD_LEN: usize = 64;

/// One line read from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its CRLF (or bare LF).
    Complete(Bytes),
    /// A line longer than the cap; it was read and discarded up to its end.
    TooLong,
    /// The client closed its side; any partial line is dropped.
    Eof,
}

/// Splits a byte stream into lines of at most `max_len` bytes.
///
/// The buffer starts empty and grows in small steps only while a line is arriving, so an idle
/// connection holds no read buffer.
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
}

impl LineReader {
    /// A reader for lines of at most `max_len` bytes (not counting CRLF).
    pub fn new(max_len: usize) -> LineReader {
        LineReader {
            buf: BytesMut::new(),
            max_len,
            head: Bytes::new(),
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
    }

    /// Read the next line. Cancel-safe: a cancelled read keeps what arrived for the next call.
    pub async fn read_line<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        io: &mut R,
    ) -> std::io::Result<Line> {
        let mut scanned = 0;
        let mut discarding = false;
        loop {
            if let Some(pos) = memchr_lf(&self.buf[scanned..]) {
                let end = scanned + pos;
                if discarding {
                    self.buf.advance(end + 1);
                    self.release_if_large();
                    return Ok(Line::TooLong);
                }
                let mut line = self.buf.split_to(end + 1);
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                self.release_if_large();
                if line.len() > self.max_len {
                    self.head = Bytes::copy_from_slice(&line[..HEAD_LEN.min(line.len())]);
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Complete(line.freeze()));
            }
            scanned = self.buf.len();
            // +1 leaves room for the CR of CRLF.
            if scanned > self.max_len + 1 {
                // Too long already: drop what we have and skip to the end of the line, keeping
                // memory bounded whatever the client sends.
                if !discarding {
                    self.head = Bytes::copy_from_slice(&self.buf[..HEAD_LEN.min(self.buf.len())]);
                }
                discarding = true;
                self.buf.clear();
                scanned = 0;
            }
            let room_left = self.max_len + 2 - scanned.min(self.max_len + 1);
            self.buf
                .reserve(self.buf.len().max(FIRST_CHUNK).min(room_left.max(1)));
            if io.read_buf(&mut self.buf).await? == 0 {
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
            self.buf.reserve((len - self.buf.len()).min(64 * 1024));
            if io.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        let out = self.buf.split_to(len).freeze();
        self.release_if_large();
        Ok(out)
    }

    fn release_if_large(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
            self.buf = BytesMut::new();
        }
    }
}

fn memchr_lf(haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
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
    async fn idle_reader_releases_a_large_buffer() {
        let mut input = vec![b'x'; 20_000];
        input.extend_from_slice(b"\r\n");
        let mut reader = LineReader::new(100_000);
        let mut io = &input[..];
        assert!(matches!(
            reader.read_line(&mut io).await.unwrap(),
            Line::Complete(_)
        ));
        assert_eq!(reader.buf.capacity(), 0);
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
