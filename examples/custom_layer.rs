//! Writing a connection layer from scratch: `RequireTlsLayer` refuses connections that are not
//! encrypted.
//!
//! ```text
//! cargo run --example custom_layer
//! ```
//!
//! A connection layer is plain tower: a `Layer` that wraps a service, and a
//! `Service<Connection>` that looks at the connection in `call` and either passes it on or
//! fails. Three rules make it a good citizen of a tower-mail stack:
//!
//! 1. **Refuse with a [`Reject`].** The server answers the client with its text (`-ERR` /
//!    `* BYE`) and metrics and logs name the layer. Any other error reaches the client as a
//!    generic text, so internals never leak.
//! 2. **Keep `poll_ready` the inner service's.** Back-pressure (a global concurrency limit
//!    further in) must pass through untouched.
//! 3. **Decide in `call`, cheaply.** The stack runs in the connection's own task, so a slow
//!    check delays only its own connection, but it still delays it. For async checks with
//!    deadlines, shadow mode and refusal delays, implement
//!    [`Policy`](tower_mail_layers::policy::Policy) instead and wrap it in a `PolicyLayer`.
//!
//! The example serves POP3 with the layer on a plain and an implicit-TLS listener, connects
//! to both as a client, prints what it was told, and exits non-zero if the layer misbehaved.

use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::Either;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, Service, ServiceBuilder};
use tower_mail::auth::PasswdFile;
use tower_mail::pop3::{Pop3Config, Pop3Service};
use tower_mail::server::{Endpoint, Server, ServerConfig, TlsMode};
use tower_mail::store::MemoryStore;
use tower_mail::{BoxError, Connection, Protocol, Reject};

/// Refuses connections that are not encrypted: put it in front of a plain listener to force
/// clients onto the implicit-TLS port.
#[derive(Debug, Clone)]
pub struct RequireTlsLayer {
    message: Arc<str>,
}

impl RequireTlsLayer {
    pub fn new(message: &str) -> Self {
        RequireTlsLayer {
            message: message.into(),
        }
    }
}

impl<S> Layer<S> for RequireTlsLayer {
    type Service = RequireTls<S>;

    fn layer(&self, inner: S) -> RequireTls<S> {
        RequireTls {
            inner,
            message: self.message.clone(),
        }
    }
}

/// The service [`RequireTlsLayer`] makes.
#[derive(Debug, Clone)]
pub struct RequireTls<S> {
    inner: S,
    message: Arc<str>,
}

impl<S> Service<Connection> for RequireTls<S>
where
    S: Service<Connection>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    // Either the inner service's future or an immediate refusal: no allocation per connection.
    type Future = Either<
        futures_util::future::MapErr<S::Future, fn(S::Error) -> BoxError>,
        Ready<Result<S::Response, BoxError>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Rule 2: the inner service decides when we are ready.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, conn: Connection) -> Self::Future {
        use futures_util::TryFutureExt;
        if conn.session().secure() {
            return Either::Left(self.inner.call(conn).map_err(Into::into as fn(_) -> _));
        }
        // Rule 1: a Reject, named, so the client reads the text and metrics name the layer.
        let reject = Reject::new(&*self.message).with_layer("require_tls");
        Either::Right(ready(Err(Box::new(reject))))
    }
}

async fn first_line<T: AsyncRead + AsyncWrite + Unpin>(io: T) -> String {
    let mut line = String::new();
    let mut reader = BufReader::new(io);
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await;
    match read {
        Ok(Ok(_)) => line.trim_end().to_owned(),
        _ => "<nothing>".to_owned(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let (acceptor, cert_pem) = tower_mail::tls::self_signed(&["localhost"]).expect("certificate");
    let pop3 = Pop3Service::new(
        PasswdFile::parse("demo:{PLAIN}demo"),
        MemoryStore::new(),
        Pop3Config::default(),
    );
    let stack = ServiceBuilder::new()
        .layer(RequireTlsLayer::new("TLS required: use port 995"))
        .service(pop3);

    let server = Server::new(ServerConfig::default());
    let plain = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let tls = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (plain_addr, tls_addr) = (plain.local_addr().unwrap(), tls.local_addr().unwrap());
    server.serve(
        plain,
        Endpoint::new(Protocol::Pop3, TlsMode::None),
        stack.clone(),
    );
    server.serve(
        tls,
        Endpoint::new(Protocol::Pop3, TlsMode::Implicit(acceptor)),
        stack,
    );

    let plain_reply = first_line(TcpStream::connect(plain_addr).await.expect("connect")).await;
    println!("plain: {plain_reply}");
    let connector = tower_mail::tls::connector_trusting(&cert_pem).expect("trust");
    let tcp = TcpStream::connect(tls_addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls_stream = connector.connect(name, tcp).await.expect("TLS handshake");
    let tls_reply = first_line(tls_stream).await;
    println!("tls:   {tls_reply}");

    server.shutdown(Duration::from_secs(5)).await;
    let as_expected =
        plain_reply == "-ERR TLS required: use port 995" && tls_reply.starts_with("+OK");
    println!(
        "{}",
        if as_expected {
            "layer works"
        } else {
            "layer misbehaved"
        }
    );
    if as_expected {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
