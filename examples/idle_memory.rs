//! Measures the server's memory per idle connection before login: the issue's goal is 4 KiB.
//!
//! ```text
//! cargo run --release --example idle_memory -- [connections]
//! ```
//!
//! It serves POP3 in this process, opens N plain client sockets that read the greeting and
//! then stay silent, and reports the growth of the process's resident memory divided by N.
//! The client sockets are blocking std sockets, whose buffers live in the kernel, so the growth
//! is the server side: the connection task, its session and its stack. Run it with
//! `ulimit -n` above 2 × N.

mod measure;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use tower::ServiceBuilder;
use tower_mail::auth::PasswdFile;
use tower_mail::pop3::{Pop3Config, Pop3Service};
use tower_mail::server::{Endpoint, Server, ServerConfig, TlsMode};
use tower_mail::store::MemoryStore;
use tower_mail::{CloseReport, Protocol, Session};
use tower_mail_layers::on_close::OnCloseLayer;
use tower_mail_layers::on_connect::OnConnectLayer;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, addr) = runtime.block_on(async {
        let pop3 = Pop3Service::new(
            PasswdFile::parse("demo:{PLAIN}demo"),
            MemoryStore::new(),
            Pop3Config::default(),
        );
        let stack = ServiceBuilder::new()
            .layer(OnCloseLayer::new(|_: &Session, _: &CloseReport| {}))
            .layer(OnConnectLayer::new(|_| async { Ok(()) }))
            .service(pop3);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Server::new(ServerConfig::default());
        server.serve(
            listener,
            Endpoint::new(Protocol::Pop3, TlsMode::None),
            stack,
        );
        (server, addr)
    });

    // Warm up allocator arenas and the runtime so their one-time growth is not counted.
    let warm: Vec<TcpStream> = (0..200).map(|_| open(addr)).collect();
    drop(warm);
    std::thread::sleep(Duration::from_millis(500));

    let before = measure::resident_kib();
    let clients: Vec<TcpStream> = (0..n).map(|_| open(addr)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let after = measure::resident_kib();
    let per_connection = (after.saturating_sub(before) * 1024) as f64 / n as f64;
    println!("idle connections: {n}");
    println!("server connections: {}", server.connections());
    println!(
        "resident memory growth: {} KiB",
        after.saturating_sub(before)
    );
    println!("per idle connection: {per_connection:.0} bytes (goal: 4096)");
    drop(clients);
    runtime.block_on(server.shutdown(Duration::from_secs(5)));
}

/// A client that has read the greeting and then stays silent.
fn open(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut greeting = [0u8; 64];
    let _ = stream.read(&mut greeting).expect("greeting");
    stream
}
