//! A minimal IMAP client for the measures: connect (from a chosen loopback address), read
//! lines, send bytes. Every wait is bounded.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// Longest wait for one answer: a liveness bound, far above any answer's expected time.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Client {
    io: BufReader<TcpStream>,
}

impl Client {
    /// Connect from `source` and read the greeting.
    pub async fn connect(source: IpAddr, addr: SocketAddr) -> std::io::Result<Client> {
        let stream = connect_from(source, addr).await?;
        let mut client = Client {
            io: BufReader::new(stream),
        };
        client.line().await?;
        Ok(client)
    }

    /// The next line, without CRLF; an error at EOF.
    pub async fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        let read = tokio::time::timeout(PATIENCE, self.io.read_line(&mut line))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end().to_owned())
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.get_mut().write_all(bytes).await
    }

    /// Send a command and read lines up to its tagged answer, which is returned.
    pub async fn command(&mut self, tag: &str, command: &str) -> std::io::Result<String> {
        self.send(format!("{tag} {command}\r\n").as_bytes()).await?;
        loop {
            let line = self.line().await?;
            if line.starts_with(&format!("{tag} ")) {
                return Ok(line);
            }
        }
    }
}

/// A TCP connection from `source` (any 127.0.0.0/8 address on loopback).
pub async fn connect_from(source: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// Percentile `p` (0-100) of sorted `values`.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        n => sorted[((n - 1) * p / 100).min(n - 1)],
    }
}
