//! The floor: the least a mail server can do per connection, the denominator of every ratio
//! in BENCHMARKS.md. A bare tokio server (the same runtime as the example server, no
//! tower-mail) that accepts, greets, reads one line, answers it and closes, in an IMAP and a
//! POP3 flavour. It answers `LOGOUT` and `QUIT` as a real server would, so `load imap-greet`
//! and `load pop3-greet` run against it unchanged; it parses nothing else.
//!
//! ```text
//! cargo run --release --example floor_server -- --imap 127.0.0.1:2143 --pop3 127.0.0.1:2110
//! ```
//!
//! It serves until killed. Each connection has 10 seconds to send its line.

use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One flavour: what the server says first, and how it answers the line it reads.
#[derive(Clone, Copy)]
enum Flavour {
    Imap,
    Pop3,
}

impl Flavour {
    fn greeting(self) -> &'static [u8] {
        match self {
            Flavour::Imap => b"* OK [CAPABILITY IMAP4rev1] floor ready\r\n",
            Flavour::Pop3 => b"+OK floor ready\r\n",
        }
    }

    /// The answer to `line`: IMAP's to a LOGOUT under the line's tag, POP3's to QUIT.
    fn answer(self, line: &[u8]) -> Vec<u8> {
        match self {
            Flavour::Imap => {
                let tag_end = line
                    .iter()
                    .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
                    .unwrap_or(line.len());
                let mut answer = b"* BYE floor logging out\r\n".to_vec();
                answer.extend_from_slice(&line[..tag_end]);
                answer.extend_from_slice(b" OK LOGOUT completed\r\n");
                answer
            }
            Flavour::Pop3 => b"+OK floor signing off\r\n".to_vec(),
        }
    }
}

async fn serve(stream: TcpStream, flavour: Flavour) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    // A small buffer: a line of a few bytes is all it reads, and an idle connection's memory
    // is part of the floor.
    let mut stream = BufReader::with_capacity(128, stream);
    stream.get_mut().write_all(flavour.greeting()).await?;
    let mut line = Vec::with_capacity(64);
    // One line of at most 1 KiB: the floor bounds what it reads like any server.
    (&mut stream)
        .take(1024)
        .read_until(b'\n', &mut line)
        .await?;
    if line.is_empty() {
        return Ok(());
    }
    stream.get_mut().write_all(&flavour.answer(&line)).await
}

async fn listen(addr: &str, flavour: Flavour) -> Result<(), String> {
    // The backlog the example server listens with, so that a burst is queued alike for both
    // and the ratio compares the servers, not their kernel queues.
    let parsed = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let listener = tower_mail::server::bind(parsed, tower_mail::server::DEFAULT_BACKLOG)
        .map_err(|e| format!("{addr}: {e}"))?;
    println!(
        "floor_server: {} on {}",
        match flavour {
            Flavour::Imap => "IMAP",
            Flavour::Pop3 => "POP3",
        },
        listener.local_addr().map_err(|e| e.to_string())?
    );
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(async move {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(10), serve(stream, flavour))
                                .await;
                    });
                }
                // Out of descriptors, say: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    Ok(())
}

const USAGE: &str = "usage: floor_server [--imap ADDR] [--pop3 ADDR]";

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut listeners = Vec::new();
    while let Some(flag) = args.next() {
        let flavour = match flag.as_str() {
            "--imap" => Flavour::Imap,
            "--pop3" => Flavour::Pop3,
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        };
        let Some(addr) = args.next() else {
            eprintln!("{flag} needs an address\n{USAGE}");
            return ExitCode::from(2);
        };
        listeners.push((addr, flavour));
    }
    if listeners.is_empty() {
        listeners = vec![
            ("127.0.0.1:2143".to_owned(), Flavour::Imap),
            ("127.0.0.1:2110".to_owned(), Flavour::Pop3),
        ];
    }
    for (addr, flavour) in listeners {
        if let Err(err) = listen(&addr, flavour).await {
            eprintln!("floor_server: {err}");
            return ExitCode::FAILURE;
        }
    }
    // Serve until killed.
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}
