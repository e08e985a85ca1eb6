//! COMPRESS=DEFLATE (RFC 4978) through the server over loopback sockets: on the implicit-TLS
//! listener and after STARTTLS, with the client side in raw DEFLATE as a phone client would
//! speak it, and the session's byte counts checked against what crossed the wire.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tower::ServiceBuilder;
use tower::util::MapRequestLayer;
use tower_mail::auth::PasswdFile;
use tower_mail::imap::{ImapConfig, ImapService};
use tower_mail::server::{Server, ServerConfig, TlsMode};
use tower_mail::store::MemoryStore;
use tower_mail::wire::{CountingIo, DeflateIo};
use tower_mail::{CloseReason, Connection, Protocol, Session};
use tower_mail_layers::on_close::OnCloseLayer;

use common::{Client, Closes};

struct Harness {
    server: Server,
    addr: SocketAddr,
    closes: Closes,
    cert: String,
}

impl Harness {
    async fn start(tls: fn(tower_mail::tls::TlsAcceptor) -> TlsMode, hide: bool) -> Harness {
        let (acceptor, cert) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
        let store = MemoryStore::new();
        // 64 KiB of text that deflates well, for the size check.
        let body = "All work and no play makes Jack a dull boy.\r\n".repeat(1500);
        common::deliver(
            &store,
            "alice",
            format!("Subject: long\r\n\r\n{body}").as_bytes(),
        )
        .await;
        let imap = ImapService::new(
            PasswdFile::parse(common::USERS),
            store,
            ImapConfig::default(),
        );
        let closes = Closes::default();
        let stack = ServiceBuilder::new()
            .layer(OnCloseLayer::new(closes.hook()))
            .layer(MapRequestLayer::new(move |mut conn: Connection| {
                if hide {
                    conn.settings_mut().hide_capability("COMPRESS");
                }
                conn
            }))
            .service(imap);
        let (server, addr) = common::serve(
            Protocol::Imap,
            tls(acceptor),
            ServerConfig::default(),
            stack,
        )
        .await;
        Harness {
            server,
            addr,
            closes,
            cert,
        }
    }

    /// A TLS client that counts the bytes it sends and receives inside TLS, which is what the
    /// server counts, with the crate's own counter on a session of the client's.
    async fn tls_client(&self, tcp: TcpStream) -> (Client<CountingIo<TlsStream>>, Arc<Session>) {
        let tls = common::tls_connector(&self.cert)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake");
        let counted = Arc::new(Session::new(
            Protocol::Imap,
            self.addr,
            "127.0.0.1:0".parse().unwrap(),
        ));
        (Client::new(CountingIo::new(tls, counted.clone())), counted)
    }
}

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Send `text` and read up to the tagged reply.
async fn command<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<T>,
    text: &str,
) -> Vec<String> {
    client.send(text).await;
    let tag = format!("{} ", text.split(' ').next().unwrap());
    let mut lines = Vec::new();
    loop {
        let line = client.line().await.expect("connection closed");
        let done = line.starts_with(&tag);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

fn advertises_compress(lines: &[String]) -> bool {
    lines
        .iter()
        .any(|line| line.split(' ').any(|cap| cap == "COMPRESS=DEFLATE"))
}

/// Log in, turn compression on, and use the session compressed; returns the bytes of
/// uncompressed text the client read after compression began.
async fn compressed_session<T: AsyncRead + AsyncWrite + Unpin>(mut client: Client<T>) -> usize {
    let login = command(&mut client, "a LOGIN alice secret").await;
    assert!(login[0].starts_with("a OK"), "{login:?}");
    assert!(
        advertises_compress(&command(&mut client, "b CAPABILITY").await),
        "COMPRESS=DEFLATE is offered once logged in"
    );
    assert_eq!(
        command(&mut client, "c COMPRESS DEFLATE").await,
        ["c OK DEFLATE active"]
    );
    assert!(client.buffered().is_empty());
    let mut client = Client::new(DeflateIo::new(client.into_inner(), &[]));
    let mut plain = 0;
    let caps = command(&mut client, "d CAPABILITY").await;
    assert!(!advertises_compress(&caps), "{caps:?}");
    plain += caps.iter().map(|l| l.len() + 2).sum::<usize>();
    let select = command(&mut client, "e SELECT INBOX").await;
    assert!(select.iter().any(|l| l == "* 1 EXISTS"), "{select:?}");
    plain += select.iter().map(|l| l.len() + 2).sum::<usize>();
    let fetch = command(&mut client, "f FETCH 1 BODY[TEXT]").await;
    assert!(
        fetch[0].starts_with("* 1 FETCH (BODY[TEXT] {67500}"),
        "{fetch:?}"
    );
    assert!(
        fetch
            .iter()
            .any(|l| l == "All work and no play makes Jack a dull boy.")
    );
    plain += fetch.iter().map(|l| l.len() + 2).sum::<usize>();
    assert_eq!(
        command(&mut client, "g COMPRESS DEFLATE").await,
        ["g NO [COMPRESSIONACTIVE] DEFLATE is active already"]
    );
    let logout = command(&mut client, "h LOGOUT").await;
    assert_eq!(logout, ["* BYE Logging out", "h OK LOGOUT completed"]);
    assert!(client.closed().await);
    plain
}

#[tokio::test(flavor = "multi_thread")]
async fn compress_on_the_tls_listener_counts_compressed_bytes() {
    let harness = Harness::start(TlsMode::Implicit, false).await;
    let tcp = TcpStream::connect(harness.addr).await.unwrap();
    let (mut client, counted) = harness.tls_client(tcp).await;
    let greeting = client.line().await.unwrap();
    assert!(
        !greeting.contains("COMPRESS"),
        "not offered before login: {greeting}"
    );
    let plain = compressed_session(client).await;
    let closed = harness.closes.wait_for(1).await;
    assert_eq!(closed[0].reason, CloseReason::Logout);
    // What the server counted is what crossed the wire inside TLS: compressed bytes.
    let report = &closed[0].report;
    assert_eq!(report.bytes_in, counted.bytes_out());
    assert_eq!(report.bytes_out, counted.bytes_in());
    // And compression happened: 67 KB of text after COMPRESS came in far fewer bytes.
    assert!(plain > 67_500, "{plain}");
    assert!(report.bytes_out < 10_000, "{} bytes out", report.bytes_out);
    harness.server.shutdown(common::SOON).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compress_after_starttls() {
    let harness = Harness::start(TlsMode::Starttls, false).await;
    let mut plain = Client::connect(harness.addr).await;
    plain.line().await.unwrap();
    assert_eq!(
        command(&mut plain, "s STARTTLS").await,
        ["s OK Begin TLS negotiation now"]
    );
    let (client, _) = harness.tls_client(plain.into_inner()).await;
    compressed_session(client).await;
    let closed = harness.closes.wait_for(1).await;
    assert_eq!(closed[0].reason, CloseReason::Logout);
    assert!(closed[0].secure);
    harness.server.shutdown(common::SOON).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compress_needs_a_login_and_can_be_withheld() {
    let harness = Harness::start(TlsMode::Implicit, false).await;
    let tcp = TcpStream::connect(harness.addr).await.unwrap();
    let (mut client, _) = harness.tls_client(tcp).await;
    client.line().await.unwrap();
    assert!(!advertises_compress(
        &command(&mut client, "a CAPABILITY").await
    ));
    assert_eq!(
        command(&mut client, "b COMPRESS DEFLATE").await,
        ["b BAD Log in first"]
    );
    drop(client);
    harness.server.shutdown(common::SOON).await;

    // A layer that hides the capability takes the command away with it.
    let harness = Harness::start(TlsMode::Implicit, true).await;
    let tcp = TcpStream::connect(harness.addr).await.unwrap();
    let (mut client, _) = harness.tls_client(tcp).await;
    client.line().await.unwrap();
    assert!(command(&mut client, "a LOGIN alice secret").await[0].starts_with("a OK"));
    assert!(!advertises_compress(
        &command(&mut client, "b CAPABILITY").await
    ));
    let reply = command(&mut client, "c COMPRESS DEFLATE").await;
    assert!(reply[0].starts_with("c BAD"), "{reply:?}");
    // Still uncompressed: the session goes on in plain text.
    assert_eq!(
        command(&mut client, "d NOOP").await,
        ["d OK NOOP completed"]
    );
    drop(client);
    harness.server.shutdown(common::SOON).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_compressed_input_ends_the_session_and_the_server_goes_on() {
    let harness = Harness::start(TlsMode::Implicit, false).await;
    let tcp = TcpStream::connect(harness.addr).await.unwrap();
    let (mut client, _) = harness.tls_client(tcp).await;
    client.line().await.unwrap();
    assert!(command(&mut client, "a LOGIN alice secret").await[0].starts_with("a OK"));
    assert_eq!(
        command(&mut client, "b COMPRESS DEFLATE").await,
        ["b OK DEFLATE active"]
    );
    // Not DEFLATE: block type 3 is reserved (RFC 1951).
    client.send_raw(&[0xff; 32]).await;
    let closed = harness.closes.wait_for(1).await;
    assert!(
        matches!(closed[0].reason, CloseReason::Io(_)),
        "{:?}",
        closed[0].reason
    );
    // Another client is served as before.
    let tcp = TcpStream::connect(harness.addr).await.unwrap();
    let (client, _) = harness.tls_client(tcp).await;
    let mut client = client;
    client.line().await.unwrap();
    compressed_session(client).await;
    harness.closes.wait_for(2).await;
    harness.server.shutdown(common::SOON).await;
}
