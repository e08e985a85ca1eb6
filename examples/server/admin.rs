//! The example server's admin listener, on the metrics address (loopback by default):
//!
//! - `GET /metrics`: Prometheus text;
//! - `GET /sessions`: the live sessions as a JSON array (what `doveadm who` lists);
//! - `POST /sessions/kick?user=NAME` or `?addr=IP`: end those sessions, each client told
//!   "Disconnected by the administrator" (what `doveadm kick` does); answers `{"ended": N}`.
//!
//! The `/sessions` endpoints answer only loopback peers (403 otherwise): they show who is
//! logged in from where, and end sessions. A request is one head of at most 8 KiB read within
//! 5 s, answered and closed: this is an operator's tool, not a web server.

use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_mail::server::Server;
use tower_mail_layers::sessions::SessionRegistry;

const MAX_HEAD: usize = 8 * 1024;
const READ_DEADLINE: Duration = Duration::from_secs(5);
/// What a kicked client is told.
pub const KICK_TEXT: &str = "Disconnected by the administrator";

/// What the admin endpoints serve.
#[derive(Clone)]
pub struct Admin {
    pub metrics: PrometheusHandle,
    pub sessions: SessionRegistry,
    /// Its own counts are read at each scrape, so a scrape is never stale.
    pub server: Server,
}

impl Admin {
    /// Serve requests on `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let admin = self.clone();
            tokio::spawn(async move { admin.answer(stream, peer).await });
        }
    }

    async fn answer(&self, mut stream: TcpStream, peer: SocketAddr) {
        let Ok(Some(head)) = tokio::time::timeout(READ_DEADLINE, read_head(&mut stream)).await
        else {
            return;
        };
        let (status, content_type, body) = self.respond(&head, peer);
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(READ_DEADLINE, stream.write_all(response.as_bytes())).await;
        let _ = stream.shutdown().await;
    }

    fn respond(&self, head: &str, peer: SocketAddr) -> (&'static str, &'static str, String) {
        const JSON: &str = "application/json";
        const TEXT: &str = "text/plain; charset=utf-8";
        let mut words = head.split(' ');
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path.starts_with("/sessions") && !peer.ip().to_canonical().is_loopback() {
            return ("403 Forbidden", TEXT, "loopback only\n".into());
        }
        match (method, path) {
            ("GET", "/metrics") => {
                crate::telemetry::mirror_server_metrics(&self.server);
                let text = self.metrics.render();
                ("200 OK", "text/plain; version=0.0.4", text)
            }
            ("GET", "/sessions") => ("200 OK", JSON, self.sessions_json()),
            ("POST", "/sessions/kick") => match kick(&self.sessions, query) {
                Ok(ended) => ("200 OK", JSON, format!("{{\"ended\":{ended}}}\n")),
                Err(problem) => ("400 Bad Request", TEXT, format!("{problem}\n")),
            },
            (_, "/metrics" | "/sessions" | "/sessions/kick") => (
                "405 Method Not Allowed",
                TEXT,
                "method not allowed\n".into(),
            ),
            _ => ("404 Not Found", TEXT, "not found\n".into()),
        }
    }

    fn sessions_json(&self) -> String {
        let sessions: Vec<serde_json::Value> = self
            .sessions
            .sessions()
            .iter()
            .map(|session| {
                let since = session
                    .created()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                serde_json::json!({
                    "id": session.id().as_str(),
                    "user": session.user(),
                    "address": session.remote_addr().ip().to_canonical().to_string(),
                    "protocol": session.protocol().as_str(),
                    "since": since,
                    "seconds": session.started().elapsed().as_secs(),
                    "state": session.state().as_str(),
                    "secure": session.secure(),
                    "selected": session.selected(),
                })
            })
            .collect();
        serde_json::Value::Array(sessions).to_string() + "\n"
    }
}

/// `user=NAME` or `addr=IP` (percent-decoding `%40` and the like in names).
fn kick(registry: &SessionRegistry, query: &str) -> Result<usize, String> {
    let (key, value) = query
        .split_once('=')
        .ok_or("expected ?user=NAME or ?addr=IP")?;
    let value = percent_decode(value)?;
    match key {
        "user" if !value.is_empty() => Ok(registry.kick_user(&value, KICK_TEXT)),
        "addr" => {
            let ip = value.parse().map_err(|e| format!("addr {value:?}: {e}"))?;
            Ok(registry.kick_address(ip, KICK_TEXT))
        }
        _ => Err("expected ?user=NAME or ?addr=IP".into()),
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'%' => {
                let hex = rest
                    .get(..2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("bad percent-encoding")?;
                bytes.push(hex);
                rest = &rest[2..];
            }
            b'+' => bytes.push(b' '),
            byte => bytes.push(byte),
        }
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())
}

/// The request line, once the whole head has arrived; `None` if it is too long or the peer
/// went away.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    text.lines().next().map(str::to_owned)
}
