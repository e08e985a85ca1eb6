//! What happens to a connection before its stack runs, through real sockets: address checks
//! before an implicit-TLS handshake, and the counting of connections that end there.
//!
//! Loopback is all of 127.0.0.0/8, so a client binds a source address of its own
//! (127.0.0.2 is "the blocked one") and the server tells clients apart as it would remote
//! hosts.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tower::ServiceBuilder;
use tower_mail::server::{Endpoint, Server, ServerConfig, SetupFailure, TlsMode};
use tower_mail::store::MemoryStore;
use tower_mail::{CloseReason, Protocol};
use tower_mail_layers::ip_block::{CidrSet, IpBlock, IpBlockLayer, IpLists};
use tower_mail_layers::on_close::OnCloseLayer;
use tower_mail_layers::policy::BeforeHandshake;

use common::{Closes, SOON};

fn lo(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

async fn connect_from(source: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Poll `check` until it holds, for at most [`SOON`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let wait = async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(SOON, wait)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_refused_before_the_tls_handshake_costs_no_handshake() {
    let (acceptor, cert) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
    let ip_block = IpBlock::new(IpLists {
        deny: CidrSet::parse_list("127.0.0.2/32").unwrap(),
        message: "IP address blocked".into(),
        ..IpLists::default()
    });
    let closes = Closes::default();
    let stack = ServiceBuilder::new()
        .layer(OnCloseLayer::new(closes.hook()))
        .layer(IpBlockLayer::new(ip_block.clone()))
        .service(common::pop3(MemoryStore::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ServerConfig::default());
    let endpoint = Endpoint::new(Protocol::Pop3, TlsMode::Implicit(acceptor))
        .refuse_before_handshake(BeforeHandshake::new(ip_block));
    server.serve(listener, endpoint, stack);

    // The blocked peer sends a ClientHello and gets no ServerHello: the connection is closed.
    let tls = common::tls_connector(&cert);
    let blocked = connect_from(lo(2), addr).await;
    let name = "localhost".try_into().unwrap();
    let handshake = tokio::time::timeout(SOON, tls.connect(name, blocked))
        .await
        .expect("the refused peer is closed, not kept waiting");
    assert!(handshake.is_err(), "no handshake for a refused peer");
    eventually("the refusal is counted", || {
        server.setup_failures(Protocol::Pop3, SetupFailure::Refused) == 1
    })
    .await;
    assert_eq!(
        server.setup_failures(Protocol::Pop3, SetupFailure::TlsHandshake),
        0,
        "refused before the handshake, not in it"
    );

    // Another address gets the handshake and the greeting inside TLS.
    let allowed = connect_from(lo(3), addr).await;
    let name = "localhost".try_into().unwrap();
    let mut session = tls.connect(name, allowed).await.expect("handshake");
    let mut greeting = [0u8; 3];
    session.read_exact(&mut greeting).await.unwrap();
    assert_eq!(&greeting, b"+OK");
    session.write_all(b"QUIT\r\n").await.unwrap();
    let mut rest = Vec::new();
    let _ = session.read_to_end(&mut rest).await;

    // Only the connection that reached the stack ran its close hook.
    let closed = common::shutdown_and_collect(&server, &closes).await;
    common::assert_close_reasons(&closed, &[CloseReason::Logout]);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_check_a_refused_tls_peer_is_told_inside_tls() {
    let (acceptor, cert) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
    let ip_block = IpBlock::new(IpLists {
        deny: CidrSet::parse_list("127.0.0.2/32").unwrap(),
        message: "IP address blocked".into(),
        ..IpLists::default()
    });
    let stack = ServiceBuilder::new()
        .layer(IpBlockLayer::new(ip_block))
        .service(common::pop3(MemoryStore::new()));
    let (server, addr) = common::serve(
        Protocol::Pop3,
        TlsMode::Implicit(acceptor),
        ServerConfig::default(),
        stack,
    )
    .await;
    let tls = common::tls_connector(&cert);
    let blocked = connect_from(lo(2), addr).await;
    let mut session = tls
        .connect("localhost".try_into().unwrap(), blocked)
        .await
        .expect("the handshake happens");
    let mut told = Vec::new();
    let _ = session.read_to_end(&mut told).await;
    assert_eq!(told, b"-ERR IP address blocked\r\n");
    assert_eq!(
        server.setup_failures(Protocol::Pop3, SetupFailure::Refused),
        0
    );
    server.shutdown(SOON).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_tls_handshake_is_counted() {
    let (acceptor, _) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
    let stack = common::pop3(MemoryStore::new());
    let (server, addr) = common::serve(
        Protocol::Pop3,
        TlsMode::Implicit(acceptor),
        ServerConfig::default(),
        stack,
    )
    .await;
    // A plaintext client on the TLS port: its first line is no ClientHello.
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"USER alice\r\n").await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(SOON, client.read_to_end(&mut rest)).await;
    eventually("the failed handshake is counted", || {
        server.setup_failures(Protocol::Pop3, SetupFailure::TlsHandshake) == 1
    })
    .await;
    eventually("its setup place is given back", || {
        server.connections_in_setup() == 0
    })
    .await;
    eventually("its task is counted as ended", || {
        server.connections_finished() == 1
    })
    .await;
    assert_eq!(server.connections_accepted(), 1);
    server.shutdown(SOON).await;
}
