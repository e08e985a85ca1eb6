//! Two example servers sharing their rate-limit counts through one real Redis
//! (`[layers.rate_limit] redis`): a limit of two open connections per address holds across
//! both, for POP3 and IMAP alike, and a slot freed on one server is free on the other. Also:
//! a server whose Redis is down starts, and `fail_open` decides.
//!
//! ```text
//! cargo build --example server && cargo test --test redis_servers
//! ```
//!
//! Needs `redis-server` (see `layers/tests/support_redis`), plus what tests/policy_layers.rs
//! needs.

mod support_example;
#[path = "../layers/tests/support_redis/mod.rs"]
mod support_redis;
mod support_shared;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use support_example::{ExampleServer, PASSWORD, RawClient, SOON, USER, poll};
use support_redis::{RedisServer, free_port, nowhere_url};

const MESSAGE: &str = "Too many connections from this IP";

/// The loopback address `127.0.0.<last>`: each test's clients have addresses of their own.
fn lo(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// An example server counting in the Redis at `url`, with `max_concurrent_per_ip = 2`.
fn server_on(url: &str, extra: &str) -> ExampleServer {
    ExampleServer::start_with(&format!(
        "[layers.rate_limit]\n\
         max_concurrent_per_ip = 2\n\
         redis = \"{url}\"\n\
         {extra}"
    ))
}

/// Connect from `source` and read the greeting: `+OK` (POP3) or `* OK` (IMAP) means admitted.
fn greeted(addr: SocketAddr, source: IpAddr) -> Result<RawClient, String> {
    let mut client = RawClient::connect_from(source, addr);
    let line = client.line().unwrap_or_default();
    if line.starts_with("+OK") || line.starts_with("* OK") {
        Ok(client)
    } else {
        Err(line)
    }
}

#[track_caller]
fn admitted(addr: SocketAddr, source: IpAddr) -> RawClient {
    greeted(addr, source).unwrap_or_else(|line| panic!("{source} to {addr} refused: {line:?}"))
}

/// Connect from `source`, expect exactly `refusal` in place of a greeting, then the close.
#[track_caller]
fn refused(addr: SocketAddr, source: IpAddr, refusal: &str) {
    let mut client = RawClient::connect_from(source, addr);
    assert_eq!(
        client.line().as_deref(),
        Some(refusal),
        "what {source} was told by {addr}"
    );
    assert!(client.read_to_eof().is_empty(), "nothing after the refusal");
}

/// Poll until a client from `source` is greeted by `addr` again.
#[track_caller]
fn admitted_soon(addr: SocketAddr, source: IpAddr, what: &str) -> RawClient {
    poll(SOON, || greeted(addr, source).ok()).unwrap_or_else(|| panic!("{what} within {SOON:?}"))
}

#[test]
fn two_servers_share_open_connection_counts_through_redis() {
    let redis = RedisServer::start();
    let mut a = server_on(&redis.url(), "");
    let mut b = server_on(&redis.url(), "");
    for server in [&mut a, &mut b] {
        server.wait_for_stdout(SOON, |line| {
            line.contains("rate limit: counts shared through Redis")
        });
    }

    // POP3: two open on A; the third from the same address, on B, is refused.
    let pop3 = lo(31);
    let first = admitted(a.pop3, pop3);
    let second = admitted(a.pop3, pop3);
    refused(b.pop3, pop3, &format!("-ERR {MESSAGE}"));
    refused(a.pop3, pop3, &format!("-ERR {MESSAGE}"));
    // Another address has its own count, on either server.
    drop(admitted(b.pop3, lo(32)));
    // One ends on A: B serves the address again once the release has reached Redis.
    drop(first);
    let third = admitted_soon(b.pop3, pop3, "B serves 127.0.0.31 after one of A's closed");
    refused(a.pop3, pop3, &format!("-ERR {MESSAGE}"));

    // IMAP, from another address: the same through the IMAP listeners.
    let imap = lo(33);
    let one = admitted(b.imap, imap);
    let two = admitted(a.imap, imap);
    refused(b.imap, imap, &format!("* BYE {MESSAGE}"));
    drop(two);
    let _three = admitted_soon(
        b.imap,
        imap,
        "B serves 127.0.0.33 after A's IMAP one closed",
    );
    refused(a.imap, imap, &format!("* BYE {MESSAGE}"));

    // SIGHUP with a lower limit on A: A refuses at one open connection; B keeps its own.
    a.edit_config(|text| text.replace("max_concurrent_per_ip = 2", "max_concurrent_per_ip = 1"));
    a.reload_policies();
    let four = lo(34);
    let only = admitted(b.pop3, four);
    refused(a.pop3, four, &format!("-ERR {MESSAGE}"));
    drop(admitted(b.pop3, four));
    drop((only, one, second, third));
}

#[test]
fn a_server_starts_without_its_redis_and_fail_open_decides() {
    let nowhere = nowhere_url();
    let mut open = server_on(&nowhere, "fail_open = true\n");
    let mut closed = server_on(&nowhere, "fail_open = false\n");
    for server in [&mut open, &mut closed] {
        server.wait_for_stdout(SOON, |line| line.contains("not reachable yet"));
    }
    // Uncounted: more than the limit of two are let in.
    let clients: Vec<RawClient> = (0..3).map(|_| admitted(open.pop3, lo(35))).collect();
    refused(
        closed.pop3,
        lo(35),
        &format!("-ERR {}", tower_mail::GENERIC_MESSAGE),
    );
    drop(clients);
}

#[test]
fn a_server_counts_again_once_its_redis_is_back() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut server = server_on(&url, "fail_open = false\n");
    server.wait_for_stdout(SOON, |line| line.contains("not reachable yet"));
    refused(
        server.pop3,
        lo(36),
        &format!("-ERR {}", tower_mail::GENERIC_MESSAGE),
    );
    let _redis = RedisServer::start_on(port).expect("redis on the chosen port");
    let first = admitted_soon(server.pop3, lo(36), "admitted once Redis is up");
    let _second = admitted(server.pop3, lo(36));
    refused(server.pop3, lo(36), &format!("-ERR {MESSAGE}"));
    drop(first);
    let _third = admitted_soon(server.pop3, lo(36), "admitted after one closed");
}

/// Two example servers sharing their auth state through one Redis (`[auth] redis`,
/// `[layers.auto_ban] redis`): one per-user session cap across both, and a ban made by one
/// refuses the address on the other.
#[test]
fn two_servers_share_per_user_sessions_and_bans_through_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    let auth = format!(
        "redis = \"{url}\"\nmax_sessions_per_user = 2\nfailure_delay_ms = 10\n\
         failure_delay_max_ms = 10\n"
    );
    let layers = format!("[layers.auto_ban]\nfailures = 2\nredis = \"{url}\"\n");
    let a = ExampleServer::start_with_auth(&auth, &layers);
    let b = ExampleServer::start_with_auth(&auth, &layers);

    // demo's two sessions: IMAP on A, POP3 on B. A third, on either, is over the cap.
    let mut on_a = admitted(a.imap, lo(30));
    assert!(
        on_a.cmd(&format!("a1 LOGIN {USER} {PASSWORD}"))
            .starts_with("a1 OK")
    );
    let mut on_b = RawClient::connect_from(lo(30), b.pop3);
    on_b.login(USER, PASSWORD);
    let mut third = admitted(b.imap, lo(30));
    assert_eq!(
        third.cmd(&format!("b1 LOGIN {USER} {PASSWORD}")),
        "b1 NO [LIMIT] Too many sessions for this user"
    );
    // demo logs out on A: the slot is free on B.
    assert!(on_a.cmd("a2 LOGOUT").starts_with("* BYE"));
    let logged_in = poll(SOON, || {
        let reply = third.cmd(&format!("b2 LOGIN {USER} {PASSWORD}"));
        reply.starts_with("b2 OK").then_some(())
    });
    assert!(logged_in.is_some(), "the slot A gave back is free on B");

    // Two failed logins from 127.0.0.31 on A ban it on A, and within a second on B.
    let mut guesser = admitted(a.imap, lo(31));
    for tag in ["g1", "g2"] {
        let reply = guesser.cmd(&format!("{tag} LOGIN {USER} wrong"));
        assert!(reply.starts_with(&format!("{tag} NO")), "{reply}");
    }
    refused(a.imap, lo(31), "* BYE Too many failed logins");
    let banned_on_b = poll(SOON, || match greeted(b.pop3, lo(31)) {
        Err(line) => (line == "-ERR Too many failed logins").then_some(()),
        Ok(_) => None,
    });
    assert!(banned_on_b.is_some(), "the ban reaches B");
    admitted(b.pop3, lo(32));
    drop((on_b, third));
}
