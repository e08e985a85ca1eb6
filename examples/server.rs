//! The tower-mail example server: IMAP and POP3 (plain with STARTTLS/STLS, and implicit TLS)
//! over one Maildir++ tree, with the connection-policy stack composed in code with
//! `ServiceBuilder` (see `server/stack.rs`), and logins checked by one authentication stack
//! that both protocols share (failure delays, per-user session caps, automatic bans, a bound
//! on password verifications: see `server/auth.rs`), whatever the SASL mechanism: PLAIN and
//! LOGIN, SCRAM-SHA-256 with `[auth] scram`, OAUTHBEARER and XOAUTH2 with the test token
//! issuer of `[auth] oauth_tokens` (`server/tokens.rs`).
//!
//! ```text
//! cargo run --release --example server                          # embedded defaults
//! cargo run --release --example server -- --config server.toml  # explicit settings
//! ```
//!
//! With no file it serves on loopback, keeps mail under `./data/maildir`, creates the user
//! `demo` with password `demo` if the user file is absent, and logs one line per connection
//! event. Ctrl-C and SIGTERM shut it down gracefully; SIGHUP reloads the user file and the
//! `[layers.*]` policies without dropping sessions. The user file is also read again when it
//! changes (`[auth] passwd_check_ms`).

#[path = "server/admin.rs"]
mod admin;
#[path = "server/auth.rs"]
mod auth;
#[path = "server/config.rs"]
mod config;
#[path = "server/json_log.rs"]
mod json_log;
#[path = "server/policies.rs"]
mod policies;
#[path = "server/prometheus.rs"]
mod prometheus;
#[path = "server/stack.rs"]
mod stack;
#[path = "server/telemetry.rs"]
mod telemetry;
#[path = "server/tokens.rs"]
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_mail::Protocol;
use tower_mail::auth::PasswdFile;
use tower_mail::auth::sasl::Mechanisms;
use tower_mail::imap::{ImapConfig, ImapService};
use tower_mail::pop3::{Pop3Config, Pop3Service};
use tower_mail::server::{Endpoint, ProxyConfig, Server, ServerConfig, TlsMode};
use tower_mail::store::Maildir;
use tower_mail_layers::rate_limit::AnyStore;
use tower_mail_layers::sessions::SessionRegistry;

use config::Config;

fn usage() -> &'static str {
    "usage: server [--config FILE]"
}

fn parse_args() -> Result<Option<PathBuf>, String> {
    let mut args = std::env::args().skip(1);
    let mut config = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                config = Some(PathBuf::from(args.next().ok_or("--config needs a file")?));
            }
            "--help" | "-h" => return Err(usage().to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("server: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let config_path = parse_args()?;
    let config = Config::load(config_path.as_deref())?;
    // Dropped last, when `run` returns: the log lines of the shutdown are written by then.
    let _log_writer = telemetry::init_logging(config.log.format);
    // One server per Maildir tree: checked before any listener is bound, so that a second
    // server on the same tree says so rather than fail on a port in use. Held until `run`
    // returns; the kernel lets go of it however the process ends.
    let store = Maildir::new(&config.store.maildir);
    let _tree_claim = store
        .lock_for_server()
        .map_err(|e| format!("store.maildir: {e}"))?;
    let sessions = SessionRegistry::new();
    // The recorder first, so that every layer built below records into it; its listener once
    // the server exists, whose own counts each scrape reads.
    let listen = &config.metrics.listen;
    let metrics = match listen.is_empty() {
        true => None,
        false => {
            let metrics = telemetry::init_metrics()?;
            telemetry::describe_metrics();
            let listener = TcpListener::bind(listen)
                .await
                .map_err(|e| format!("metrics.listen {listen}: {e}"))?;
            Some((metrics, listener))
        }
    };
    let policies = policies::Policies::new(&config.layers)?;
    if let AnyStore::Redis(store) = policies.rate_limit.store() {
        // Not a condition to start: checks reconnect by themselves, and `fail_open` decides
        // while Redis is away.
        let at = store.address();
        match store.ping().await {
            Ok(()) => println!("rate limit: counts shared through Redis at {at}"),
            Err(err) => println!(
                "rate limit: Redis at {at} not reachable yet ({err}); fail_open = {} applies until it is",
                config.layers.rate_limit.fail_open
            ),
        }
    }

    let acceptor = match &config.tls {
        Some(tls) => tower_mail::tls::acceptor_from_pem(&tls.cert, &tls.key)
            .map_err(|e| format!("TLS: {e}"))?,
        None => {
            let (acceptor, _pem) = tower_mail::tls::self_signed(&["localhost", "127.0.0.1"])
                .map_err(|e| format!("TLS: {e}"))?;
            println!("TLS: using a self-signed certificate for localhost made at start");
            acceptor
        }
    };

    let passwd = &config.auth.passwd_file;
    if PasswdFile::ensure_user(passwd, "demo", "demo")
        .map_err(|e| format!("{}: {e}", passwd.display()))?
    {
        println!(
            "created {} with user demo (password demo)",
            passwd.display()
        );
    }
    let users = PasswdFile::open(passwd)
        .map_err(|e| format!("{}: {e}", passwd.display()))?
        .check_interval(Some(Duration::from_millis(config.auth.passwd_check_ms)));
    let mut sasl = Mechanisms::new();
    if config.auth.scram {
        sasl = sasl.scram(users.clone());
    }
    let token_path = &config.auth.oauth_tokens;
    let tokens = if token_path.as_os_str().is_empty() {
        tokens::TokenFile::default()
    } else {
        let tokens = tokens::TokenFile::read(token_path)
            .map_err(|e| format!("auth.oauth_tokens {}: {e}", token_path.display()))?;
        println!(
            "auth.oauth_tokens: TEST token issuer with {} tokens from {}",
            tokens.len(),
            token_path.display()
        );
        sasl = sasl.oauth();
        tokens
    };
    println!("SASL mechanisms: {}", sasl.names().join(" "));
    // Wrapped once: IMAP and POP3 get clones of one stack, so that its counts cover both.
    let auth = auth::build(users.clone(), tokens, &config.auth, &policies)?;

    let trusted = config
        .proxy
        .trusted
        .iter()
        .map(|cidr| {
            cidr.parse()
                .map_err(|e| format!("proxy.trusted {cidr:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let limits = &config.limits;
    let mut server_config = ServerConfig::default();
    server_config.proxy = ProxyConfig::trusting(trusted);
    server_config.max_setup_connections = limits.max_setup_connections;
    server_config.max_setup_per_address = limits.max_setup_per_address;
    server_config.max_tarpitted = limits.max_tarpitted;
    server_config.login_timeout = match limits.login_deadline_seconds {
        0 => None,
        seconds => Some(Duration::from_secs(seconds)),
    };
    let server = Server::new(server_config);
    if let Some((metrics, listener)) = metrics {
        let admin = admin::Admin {
            metrics,
            sessions: sessions.clone(),
            server: server.clone(),
        };
        tokio::spawn(admin.serve(listener));
        println!("metrics on http://{listen}/metrics");
        println!("sessions on http://{listen}/sessions (loopback clients only)");
    }

    // "loopback" is decided per connection by a layer of the stack (see stack.rs); the
    // services' own setting is then "refused".
    let plaintext = config.auth.plaintext_without_tls == config::Plaintext::Allowed;
    let mut pop3_config = Pop3Config::default();
    pop3_config.allow_plaintext_login = plaintext;
    pop3_config.sasl = sasl.clone();
    pop3_config.idle_timeout = Duration::from_secs(limits.pop3_idle_seconds);
    pop3_config.unauthenticated_idle_timeout = Duration::from_secs(limits.pop3_login_seconds);
    let pop3 = Pop3Service::new(auth.clone(), store.clone(), pop3_config);

    let mut imap_config = ImapConfig::default();
    imap_config.allow_plaintext_login = plaintext;
    imap_config.sasl = sasl;
    imap_config.idle_timeout = Duration::from_secs(limits.imap_idle_seconds);
    imap_config.max_append_len = limits.imap_max_message_bytes;
    imap_config.max_unauthenticated_literal_len = limits.max_unauthenticated_literal_bytes;
    imap_config.unauthenticated_idle_timeout = Duration::from_secs(limits.imap_login_seconds);
    let imap = ImapService::new(auth, store, imap_config);

    let shared = stack::Shared {
        policies: policies.clone(),
        global_limit: GlobalConcurrencyLimitLayer::new(limits.max_connections),
        closed: Arc::new(AtomicU64::new(0)),
        shutting_down: CancellationToken::new(),
        plaintext: config.auth.plaintext_without_tls,
        sessions,
    };
    let pop3_stack = stack::build(pop3, &shared, &config.layers);
    let imap_stack = stack::build(imap, &shared, &config.layers);

    let (pop3_plain, pop3_tls) = config.pop3.addresses("127.0.0.1:1110", "127.0.0.1:1995");
    let (imap_plain, imap_tls) = config.imap.addresses("127.0.0.1:1143", "127.0.0.1:1993");
    let listeners = [
        (
            imap_plain,
            Protocol::Imap,
            TlsMode::Starttls(acceptor.clone()),
            "IMAP (STARTTLS)",
            &imap_stack,
        ),
        (
            imap_tls,
            Protocol::Imap,
            TlsMode::Implicit(acceptor.clone()),
            "IMAP (TLS)",
            &imap_stack,
        ),
        (
            pop3_plain,
            Protocol::Pop3,
            TlsMode::Starttls(acceptor.clone()),
            "POP3 (STLS)",
            &pop3_stack,
        ),
        (
            pop3_tls,
            Protocol::Pop3,
            TlsMode::Implicit(acceptor.clone()),
            "POP3 (TLS)",
            &pop3_stack,
        ),
    ];
    let before_handshake = policies.before_tls_handshake(&config.layers);
    let mut listening = 0;
    for (address, protocol, tls, label, stack) in listeners {
        let Some(address) = address else { continue };
        let listener = listen_on(&address, config.limits.listen_backlog)
            .await
            .map_err(|e| format!("{label} on {address}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!("{label} listening on {local}");
        let implicit_tls = matches!(tls, TlsMode::Implicit(_));
        let mut endpoint = Endpoint::new(protocol, tls);
        if let (true, Some(checks)) = (implicit_tls, before_handshake.clone()) {
            endpoint = endpoint.refuse_before_handshake(checks);
        }
        server.serve(listener, endpoint, stack.clone());
        listening += 1;
    }
    if listening == 0 {
        return Err("no listener configured".into());
    }

    wait_for_signals(|| reload(config_path.as_deref(), &users, &policies)).await;
    println!("shutting down");
    shared.shutting_down.cancel();
    server
        .shutdown(Duration::from_secs(config.limits.shutdown_grace_seconds))
        .await;
    // The sessions have ended: send their releases before the process goes, so that other
    // servers sharing the Redis counts see the slots free now rather than when leases run out.
    if let Err(err) = policies.rate_limit.store().flush().await {
        tracing::warn!(error = %err, "rate limit releases not sent at shutdown");
    }
    println!(
        "stopped; {} connections closed",
        shared.closed.load(Ordering::Relaxed)
    );
    Ok(())
}

/// SIGHUP: re-read the user file and the policy settings. A broken file is reported and the
/// settings in force are kept.
fn reload(
    config_path: Option<&std::path::Path>,
    users: &PasswdFile,
    policies: &policies::Policies,
) {
    match users.reload() {
        Ok(()) => tracing::info!("SIGHUP: user file reloaded"),
        Err(err) => tracing::error!(error = %err, "SIGHUP: reloading the user file failed"),
    }
    let Some(path) = config_path else {
        return;
    };
    match Config::load(Some(path)).and_then(|config| policies.reload(&config.layers)) {
        Ok(()) => tracing::info!("SIGHUP: policies reloaded"),
        Err(err) => tracing::error!(error = %err, "SIGHUP: policies not reloaded"),
    }
}

/// Wait for SIGINT or SIGTERM, calling `on_hangup` for each SIGHUP meanwhile.
async fn wait_for_signals(on_hangup: impl Fn()) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = hup.recv() => on_hangup(),
        }
    }
}

/// A listener on `address` (an address or a host name with a port) with `backlog`.
async fn listen_on(address: &str, backlog: u32) -> std::io::Result<TcpListener> {
    let addr = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")
        })?;
    tower_mail::server::bind(addr, backlog)
}
