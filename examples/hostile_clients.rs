//! What hostile clients cost the example server, measured on this machine: the figures issue 9
//! asks for, from a real server process (its memory and threads read from /proc) and real
//! sockets on loopback.
//!
//! 1. 100 connections that, before logging in, announce 50 MiB literals (`{n}` and `{n+}`)
//!    and send the bytes anyway: peak resident memory above idle (goal: under 64 MiB).
//! 2. Ten logged-in 50 MiB APPENDs at once: peak resident memory above idle.
//! 3. 50 connections guessing passwords of an ARGON2ID user (Dovecot's `doveadm pw`
//!    parameters: 64 MiB per hash): peak memory and threads, and another client's greeting
//!    latency meanwhile, with the failure delay off (so the verification bound is what holds),
//!    at one verification per core and at the default (one fewer than the cores, at least 1).
//! 4. Wrong-password answers per second from one address with the default failure delay.
//! 5. Refusals per second of a blocked address on the implicit-TLS port, decided before the
//!    handshake and after it, beside the plain port's.
//!
//! ```text
//! cargo build --release --example server --example hostile_clients
//! ./target/release/examples/hostile_clients
//! ```
//!
//! Client and server share the machine, so the rates depend on it; memory and threads do not
//! much. The run takes about two minutes.

#[path = "hostile_clients/client.rs"]
mod client;
#[path = "hostile_clients/server.rs"]
mod server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use client::{Client, percentile};
use server::ExampleServer;

const MIB: usize = 1024 * 1024;

fn lo(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hostile_clients: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let binary = server::binary()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let setup = Setup::new(dir.path())?;
    println!("machine: {} cores", available_cores());

    let server = setup.start(&binary, "")?;
    unauthenticated_literals(&server).await;
    post_login_appends(&server).await;
    drop(server);

    for verifications in [available_cores(), 0] {
        let config = format!(
            "[auth]\nfailure_delay_ms = 0\nmax_concurrent_verifications = {verifications}\n"
        );
        let server = setup.start(&binary, &config)?;
        password_guessing(&server, verifications).await;
    }

    let server = setup.start(&binary, "")?;
    wrong_password_rate(&server).await;
    drop(server);

    for before in [true, false] {
        let config = format!(
            "[layers]\nrefuse_before_tls_handshake = {before}\n\
             [layers.ip_block]\ndeny = [\"127.0.0.2/32\"]\n"
        );
        let server = setup.start(&binary, &config)?;
        if before {
            plain_refusals(&server).await;
        }
        tls_refusals(&server, &setup.cert_pem, before).await;
    }
    Ok(())
}

/// The files every server of the run shares: users, certificate, mail directory.
struct Setup {
    dir: std::path::PathBuf,
    cert_pem: String,
    base: String,
}

impl Setup {
    fn new(dir: &std::path::Path) -> Result<Setup, String> {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(|e| e.to_string())?;
        let cert_pem = certified.cert.pem();
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))
        };
        write("cert.pem", &cert_pem)?;
        write("key.pem", &certified.signing_key.serialize_pem())?;
        // Dovecot's ARGON2ID defaults: 64 MiB, 3 passes, 1 lane.
        let params = argon2::Params::new(64 * 1024, 3, 1, None).map_err(|e| e.to_string())?;
        let argon2 =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let hash =
            argon2::PasswordHasher::hash_password(&argon2, b"right").map_err(|e| e.to_string())?;
        write(
            "users.passwd",
            &format!("demo:{{PLAIN}}demo\nslow:{{ARGON2ID}}{hash}\n"),
        )?;
        let base =
            "[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n[store]\nmaildir = \"maildir\"\n"
                .to_owned();
        Ok(Setup {
            dir: dir.to_owned(),
            cert_pem,
            base,
        })
    }

    /// A server with the base settings and `extra` (whole TOML sections).
    fn start(&self, binary: &std::path::Path, extra: &str) -> Result<ExampleServer, String> {
        let auth = match extra.contains("[auth]") {
            true => extra.replace("[auth]\n", "[auth]\npasswd_file = \"users.passwd\"\n"),
            false => format!("[auth]\npasswd_file = \"users.passwd\"\n{extra}"),
        };
        ExampleServer::start(binary, &self.dir, &format!("{}{auth}", self.base))
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Report a memory figure: peak above idle.
fn report_memory(what: &str, idle: u64, peak: u64) {
    println!(
        "{what}: idle {:.1} MiB, peak {:.1} MiB, +{:.1} MiB",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(idle) as f64 / 1024.0
    );
}

/// Send up to `total` bytes of `x` until the server stops reading; how many went out.
async fn flood(client: &mut Client, total: usize) -> usize {
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        let write = tokio::time::timeout(Duration::from_secs(5), client.send(&chunk[..n]));
        match write.await {
            Ok(Ok(())) => sent += n,
            _ => break,
        }
    }
    sent
}

async fn unauthenticated_literals(server: &ExampleServer) {
    for (mode, plus) in [("{n}", ""), ("{n+}", "+")] {
        let idle = server.rss_kib();
        let peaks = server.watch();
        let refused_early = Arc::new(AtomicU64::new(0));
        let sent_total = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let addr = server.imap;
                let refused_early = refused_early.clone();
                let sent_total = sent_total.clone();
                tokio::spawn(async move {
                    let Ok(mut client) = Client::connect(lo(10 + (i % 100) as u8), addr).await
                    else {
                        return;
                    };
                    let announce = format!("a APPEND INBOX {{{}{plus}}}\r\n", 50 * MIB);
                    if client.send(announce.as_bytes()).await.is_err() {
                        return;
                    }
                    if plus.is_empty()
                        && let Ok(answer) = client.line().await
                        && !answer.starts_with('+')
                    {
                        refused_early.fetch_add(1, Ordering::Relaxed);
                    }
                    // Hostile: send the message anyway.
                    let sent = flood(&mut client, 50 * MIB).await;
                    sent_total.fetch_add(sent as u64, Ordering::Relaxed);
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        let (peak, _) = peaks.finish();
        report_memory(
            &format!("100 unauthenticated 50 MiB APPEND {mode}"),
            idle,
            peak,
        );
        println!(
            "  refused before `+`: {}; bytes the clients got out before the server closed: {:.1} MiB \
             in all (mostly into socket buffers)",
            refused_early.load(Ordering::Relaxed),
            sent_total.load(Ordering::Relaxed) as f64 / MIB as f64
        );
    }
}

async fn post_login_appends(server: &ExampleServer) {
    let idle = server.rss_kib();
    let peaks = server.watch();
    let started = Instant::now();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let addr = server.imap;
            tokio::spawn(async move {
                let mut client = Client::connect(lo(1), addr).await.ok()?;
                let login = client.command("a", "LOGIN demo demo").await.ok()?;
                if !login.starts_with("a OK") {
                    return None;
                }
                let size = 50 * MIB;
                client
                    .send(format!("b APPEND INBOX {{{size}}}\r\n").as_bytes())
                    .await
                    .ok()?;
                client.line().await.ok()?.starts_with('+').then_some(())?;
                let mut line = vec![b'x'; 998];
                line.extend_from_slice(b"\r\n");
                let chunk: Vec<u8> = line.iter().copied().cycle().take(64 * 1000).collect();
                let mut sent = 0;
                while sent < size {
                    let n = chunk.len().min(size - sent);
                    client.send(&chunk[..n]).await.ok()?;
                    sent += n;
                }
                client.send(b"\r\n").await.ok()?;
                let answer = client.line().await.ok()?;
                answer.starts_with("b OK").then_some(())
            })
        })
        .collect();
    let mut delivered = 0;
    for task in tasks {
        if let Ok(Some(())) = task.await {
            delivered += 1;
        }
    }
    let (peak, _) = peaks.finish();
    report_memory("ten 50 MiB APPENDs after login", idle, peak);
    println!(
        "  delivered {delivered} of 10 in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Greeting latencies of a client connecting every 50 ms until `until`.
async fn probe_greetings(addr: SocketAddr, until: Instant) -> Vec<Duration> {
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let start = Instant::now();
        if Client::connect(lo(200), addr).await.is_ok() {
            latencies.push(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    latencies.sort();
    latencies
}

/// `verifications`: `[auth] max_concurrent_verifications` (0: the default).
async fn password_guessing(server: &ExampleServer, verifications: usize) {
    let before = probe_greetings(server.imap, Instant::now() + Duration::from_secs(2)).await;
    let idle = server.rss_kib();
    let peaks = server.watch();
    let until = Instant::now() + Duration::from_secs(15);
    let answers = Arc::new(AtomicU64::new(0));
    let guessers: Vec<_> = (0..50)
        .map(|i| {
            let addr = server.imap;
            let answers = answers.clone();
            tokio::spawn(async move {
                while Instant::now() < until {
                    let Ok(mut client) = Client::connect(lo(20 + i as u8), addr).await else {
                        continue;
                    };
                    for n in 0.. {
                        if Instant::now() >= until {
                            return;
                        }
                        let tag = format!("g{n}");
                        match client.command(&tag, "LOGIN slow wrong").await {
                            Ok(_) => answers.fetch_add(1, Ordering::Relaxed),
                            Err(_) => break,
                        };
                    }
                }
            })
        })
        .collect();
    let during = probe_greetings(server.imap, until).await;
    for guesser in guessers {
        guesser.abort();
    }
    let (peak, threads) = peaks.finish();
    let bound = match verifications {
        0 => format!(
            "{} (the default)",
            available_cores().saturating_sub(1).max(1)
        ),
        n => n.to_string(),
    };
    report_memory(
        &format!(
            "50 connections guessing ARGON2ID (64 MiB) passwords, no failure delay, \
             {bound} verifications at once"
        ),
        idle,
        peak,
    );
    println!(
        "  peak threads {threads}; {} wrong-password answers in 15 s; \
         another client's greeting p50/p99: before {:?}/{:?}, during {:?}/{:?}",
        answers.load(Ordering::Relaxed),
        percentile(&before, 50),
        percentile(&before, 99),
        percentile(&during, 50),
        percentile(&during, 99),
    );
}

async fn wrong_password_rate(server: &ExampleServer) {
    let seconds = 20;
    let until = Instant::now() + Duration::from_secs(seconds);
    let answers = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let addr = server.imap;
            let answers = answers.clone();
            tokio::spawn(async move {
                while Instant::now() < until {
                    let Ok(mut client) = Client::connect(lo(9), addr).await else {
                        continue;
                    };
                    for n in 0.. {
                        if Instant::now() >= until {
                            return;
                        }
                        match client.command(&format!("w{n}"), "LOGIN demo wrong").await {
                            Ok(_) => answers.fetch_add(1, Ordering::Relaxed),
                            Err(_) => break,
                        };
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep_until((until + Duration::from_millis(100)).into()).await;
    for task in tasks {
        task.abort();
    }
    let answered = answers.load(Ordering::Relaxed);
    println!(
        "wrong passwords from one address (10 connections, defaults): {answered} answers in \
         {seconds} s, {:.2}/s",
        answered as f64 / seconds as f64
    );
}

/// Run `attempt` from 16 tasks for 5 s; attempts per second.
async fn rate_of<F, Fut>(attempt: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let seconds = 5;
    let until = Instant::now() + Duration::from_secs(seconds);
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (attempt, done) = (attempt.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    attempt().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    done.load(Ordering::Relaxed) as f64 / seconds as f64
}

async fn plain_refusals(server: &ExampleServer) {
    let addr = server.imap;
    let rate = rate_of(move || async move {
        if let Ok(mut tcp) = client::connect_from(lo(2), addr).await {
            let mut told = Vec::new();
            let _ = tcp.read_to_end(&mut told).await;
        }
    })
    .await;
    println!("refusals on the plain port (`* BYE`): {rate:.0}/s");
}

async fn tls_refusals(server: &ExampleServer, cert_pem: &str, before: bool) {
    let connector = tower_mail::tls::connector_trusting(cert_pem).expect("test certificate");
    let addr = server.imaps;
    let rate = rate_of(move || {
        let connector = connector.clone();
        async move {
            let Ok(tcp) = client::connect_from(lo(2), addr).await else {
                return;
            };
            let name = "localhost".try_into().expect("a DNS name");
            // Either no handshake (closed before it) or the handshake and `* BYE`.
            if let Ok(mut tls) = connector.connect(name, tcp).await {
                let mut told = Vec::new();
                let _ = tls.read_to_end(&mut told).await;
                let _ = tls.shutdown().await;
            }
        }
    })
    .await;
    let when = match before {
        true => "before the handshake",
        false => "after the handshake",
    };
    println!("refusals on the TLS port, decided {when}: {rate:.0}/s");
}
