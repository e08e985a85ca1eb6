//! One client connection: lines in and out, IMAP responses with their literals, POP3
//! multi-line answers. Every read is bounded, so a server that misbehaves fails the run
//! rather than filling the generator's memory.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The longest line any server here sends (an IMAP FETCH response line with its envelope).
const MAX_LINE: u64 = 1 << 20;
/// The largest IMAP literal read (a header field); more fails the run.
const MAX_LITERAL: u64 = 64 << 20;

pub struct Conn {
    stream: BufReader<TcpStream>,
    line: Vec<u8>,
}

/// An error that names what the server said, for the run's report.
fn unexpected(what: &str, line: &[u8]) -> io::Error {
    io::Error::other(format!(
        "{what}: {:?}",
        String::from_utf8_lossy(line).trim_end()
    ))
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(stream),
            line: Vec::with_capacity(256),
        })
    }

    pub async fn send(&mut self, text: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(text.len() + 2);
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.stream.get_mut().write_all(&bytes).await
    }

    /// The next line, CRLF included; the server closing first is an error.
    async fn line(&mut self) -> io::Result<&[u8]> {
        self.line.clear();
        let n = (&mut self.stream)
            .take(MAX_LINE)
            .read_until(b'\n', &mut self.line)
            .await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        if !self.line.ends_with(b"\n") {
            return Err(unexpected("a line over 1 MiB or cut short", &self.line));
        }
        Ok(&self.line)
    }

    /// Read and drop everything until the server closes; returns the bytes read.
    pub async fn read_to_close(&mut self) -> io::Result<u64> {
        tokio::io::copy(&mut self.stream, &mut tokio::io::sink()).await
    }

    /// An IMAP greeting: `* OK` or `* PREAUTH`; `* BYE` (a refusal) is an error.
    pub async fn imap_greeting(&mut self) -> io::Result<()> {
        let line = self.line().await?;
        if line.starts_with(b"* OK") || line.starts_with(b"* PREAUTH") {
            Ok(())
        } else {
            Err(unexpected("IMAP greeting", line))
        }
    }

    /// Send `tag command` and read to its tagged answer, which must be OK. Returns the
    /// number of untagged FETCH responses on the way. Literals (`{n}` at a line's end) are
    /// read as bytes, so a CRLF or a tag inside one is not taken for the end of anything.
    pub async fn imap_command(&mut self, tag: &str, command: &str) -> io::Result<usize> {
        self.send(&format!("{tag} {command}")).await?;
        let mut fetches = 0;
        loop {
            let line = self.line().await?;
            if line.starts_with(b"* ") && line.windows(8).any(|w| w == b" FETCH (") {
                fetches += 1;
            }
            let tagged = line
                .strip_prefix(tag.as_bytes())
                .and_then(|rest| rest.strip_prefix(b" "));
            if let Some(status) = tagged {
                if status.starts_with(b"OK") {
                    return Ok(fetches);
                }
                return Err(unexpected(command, line));
            }
            // A response line that ends in a literal goes on after it, on the line that
            // follows; that line starts no new response.
            while let Some(size) = literal_size(&self.line) {
                if size > MAX_LITERAL {
                    return Err(unexpected("a literal over 64 MiB", &self.line));
                }
                let read =
                    tokio::io::copy(&mut (&mut self.stream).take(size), &mut tokio::io::sink())
                        .await?;
                if read < size {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.line().await?;
            }
        }
    }

    /// A POP3 single-line answer, which must be `+OK`.
    pub async fn pop3_ok(&mut self, what: &str) -> io::Result<()> {
        let line = self.line().await?;
        if line.starts_with(b"+OK") {
            Ok(())
        } else {
            Err(unexpected(what, line))
        }
    }

    /// A POP3 multi-line answer: `+OK`, then lines up to `.` alone. Returns the bytes of
    /// the lines between (dot-stuffing and CRLFs included).
    pub async fn pop3_multiline(&mut self, what: &str) -> io::Result<u64> {
        self.pop3_ok(what).await?;
        let mut bytes = 0;
        loop {
            let line = self.line().await?;
            if line == b".\r\n" {
                return Ok(bytes);
            }
            bytes += line.len() as u64;
        }
    }
}

/// The size of the literal a line announces at its end (`{123}\r\n`, or `{123+}` as a client
/// would send), if it does.
fn literal_size(line: &[u8]) -> Option<u64> {
    let inner = line.strip_suffix(b"}\r\n")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::literal_size;

    #[test]
    fn finds_literals_only_at_a_line_end() {
        assert_eq!(literal_size(b"* 1 FETCH (ENVELOPE (NIL {12}\r\n"), Some(12));
        assert_eq!(literal_size(b"* 1 FETCH (X {3+}\r\n"), Some(3));
        assert_eq!(literal_size(b"* 1 FETCH (X \"{3}\" Y)\r\n"), None);
        assert_eq!(literal_size(b"* OK {}\r\n"), None);
        assert_eq!(literal_size(b"* OK {1a}\r\n"), None);
    }
}
