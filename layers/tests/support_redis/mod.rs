//! A real `redis-server` for tests: started on a free loopback port with no persistence,
//! ready once it answers `PING`, killed on drop. Plus a tiny blocking RESP client to look at
//! what the store wrote.
//!
//! Shared by `layers/tests/redis_store.rs` and the root package's end-to-end tests (through
//! `#[path]`). Needs `redis-server` on the `PATH` (or `REDIS_SERVER=/path/to/redis-server`);
//! `.ci/run` installs it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bound for the server to answer its first `PING`.
const STARTUP: Duration = Duration::from_secs(10);

/// A `redis-server` child process on `127.0.0.1:<port>`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Start a server on a free port; panics with a clear message if `redis-server` is missing.
    pub fn start() -> RedisServer {
        // A port free a moment ago may be taken by the time the server binds it: try again.
        for _ in 0..5 {
            if let Some(server) = RedisServer::start_on(free_port()) {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Start a server on `port` (a restart on the port of one killed before); `None` if it
    /// exited at once (the port was taken).
    pub fn start_on(port: u16) -> Option<RedisServer> {
        RedisServer::start_on_with(port, &[])
    }

    /// [`start_on`](RedisServer::start_on) with more command-line arguments (a cluster
    /// node's, say).
    pub fn start_on_with(port: u16, extra: &[&str]) -> Option<RedisServer> {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--loglevel", "warning"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {binary:?}: {e}. These tests need a real Redis: install \
                     redis-server (`apt-get install redis-server`; .ci/run does) or set \
                     REDIS_SERVER to its path"
                )
            });
        let mut server = RedisServer {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = server.child.as_mut()?.try_wait().expect("try_wait") {
                eprintln!("redis-server on port {port} exited at start: {status}");
                server.child = None;
                return None;
            }
            if server
                .try_cmd(&["PING"])
                .is_ok_and(|r| r == Reply::Status("PONG".into()))
            {
                return Some(server);
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not answer PING within {STARTUP:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stop the server at once (SIGKILL): its clients see the connection reset.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Send a signal by name (`STOP`, `CONT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid} failed: {status}");
    }

    /// Run one command; panics on an I/O or Redis error.
    #[track_caller]
    pub fn cmd(&self, args: &[&str]) -> Reply {
        match self.try_cmd(args) {
            Ok(Reply::Error(e)) => panic!("{args:?}: {e}"),
            Ok(reply) => reply,
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    /// [`cmd`](RedisServer::cmd) for an integer reply.
    #[track_caller]
    pub fn int(&self, args: &[&str]) -> i64 {
        match self.cmd(args) {
            Reply::Int(n) => n,
            other => panic!("{args:?}: not an integer: {other:?}"),
        }
    }

    /// [`cmd`](RedisServer::cmd) for a bulk-string reply (`None` for nil).
    #[track_caller]
    pub fn bulk(&self, args: &[&str]) -> Option<String> {
        match self.cmd(args) {
            Reply::Bulk(text) => text,
            other => panic!("{args:?}: not a bulk string: {other:?}"),
        }
    }

    fn try_cmd(&self, args: &[&str]) -> std::io::Result<Reply> {
        let stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        (&stream).write_all(request.as_bytes())?;
        read_reply(&mut BufReader::new(stream))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
}

fn read_reply(reader: &mut impl BufRead) -> std::io::Result<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at(1);
    let number = || {
        rest.parse::<i64>()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    };
    Ok(match kind {
        "+" => Reply::Status(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Int(number()?),
        "$" => match number()? {
            -1 => Reply::Bulk(None),
            len => {
                let mut body = vec![0; len as usize + 2];
                reader.read_exact(&mut body)?;
                body.truncate(len as usize);
                Reply::Bulk(Some(String::from_utf8_lossy(&body).into_owned()))
            }
        },
        "*" => match number()? {
            -1 => Reply::Array(Vec::new()),
            len => Reply::Array(
                (0..len)
                    .map(|_| read_reply(reader))
                    .collect::<std::io::Result<_>>()?,
            ),
        },
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not RESP: {line:?}"),
            ));
        }
    })
}

/// A Redis URL where nobody listens: port 1 (tcpmux), which no test binds and no server
/// here runs, unlike a port that was merely free a moment ago and that a parallel test may
/// take.
pub fn nowhere_url() -> String {
    "redis://127.0.0.1:1".to_owned()
}

/// A loopback port that was free a moment ago, below Linux's ephemeral range (32768 and up):
/// a port from that range can be taken meanwhile as the source port of some outgoing
/// connection, even by a client reconnecting to this very port (a TCP self-connect), and then
/// a Redis restarted on it cannot bind.
pub fn free_port() -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
    (0..1000u64)
        .map(|i| 20_000 + ((seed.wrapping_mul(2_654_435_761) + i * 7_919) % 12_000) as u16)
        .find(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port in 20000..32000")
}
