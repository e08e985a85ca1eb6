use std::net::IpAddr;
use std::sync::Arc;

use tower::{ServiceBuilder, ServiceExt};
use tower_mail::{CloseReason, CloseReport, Connection, Protocol, Session};

use super::*;

fn session(remote: &str, user: Option<&str>) -> Arc<Session> {
    let session = Arc::new(Session::new(
        Protocol::Pop3,
        remote.parse().unwrap(),
        "127.0.0.1:110".parse().unwrap(),
    ));
    session.set_user(user.map(str::to_owned));
    session
}

#[test]
fn kicks_end_only_the_chosen_sessions_with_the_text() {
    let registry = SessionRegistry::new();
    let alice = session("192.0.2.1:5000", Some("alice"));
    let alice_again = session("192.0.2.2:5000", Some("alice"));
    let bob = session("192.0.2.1:5001", Some("bob"));
    let anonymous = session("[::ffff:198.51.100.9]:5002", None);
    let _guards: Vec<_> = [&alice, &alice_again, &bob, &anonymous]
        .iter()
        .map(|s| registry.register(s))
        .collect();
    assert_eq!(registry.len(), 4);

    assert_eq!(registry.kick_user("alice", "Maintenance"), 2);
    assert_eq!(
        alice.end_reason(),
        Some(CloseReason::Kicked("Maintenance".into()))
    );
    assert!(alice_again.is_ending() && !bob.is_ending() && !anonymous.is_ending());

    // An IPv4 address also finds the session that arrived as IPv4-mapped IPv6.
    let ip: IpAddr = "198.51.100.9".parse().unwrap();
    assert_eq!(registry.kick_address(ip, "Go away"), 1);
    assert!(anonymous.is_ending() && !bob.is_ending());
    assert_eq!(registry.kick_user("nobody", "x"), 0);
}

#[test]
fn a_dropped_guard_or_session_leaves_the_list() {
    let registry = SessionRegistry::new();
    let first = session("192.0.2.1:5000", None);
    let second = session("192.0.2.1:5001", None);
    let first_guard = registry.register(&first);
    let _second_guard = registry.register(&second);
    assert_eq!(registry.sessions().len(), 2);
    drop(first_guard);
    let listed = registry.sessions();
    assert_eq!(listed.len(), 1);
    assert!(Arc::ptr_eq(&listed[0], &second));
    // A session whose connection is gone is not listed even before its guard drops.
    drop(listed);
    drop(second);
    assert!(registry.sessions().is_empty());
}

#[tokio::test]
async fn the_layer_registers_a_connection_for_its_life() {
    let registry = SessionRegistry::new();
    let seen = registry.clone();
    let service = tower::service_fn(move |conn: Connection| {
        let listed = seen.len();
        async move {
            assert_eq!(listed, 1, "registered while the session runs");
            Ok::<_, tower_mail::BoxError>(CloseReport::new(conn.session(), CloseReason::Logout))
        }
    });
    let stack = ServiceBuilder::new()
        .layer(SessionRegistryLayer::new(registry.clone()))
        .service(service);
    let (_client, server) = tokio::io::duplex(64);
    let report = stack
        .oneshot(Connection::for_test(Protocol::Imap, server))
        .await
        .unwrap();
    assert_eq!(report.reason, CloseReason::Logout);
    assert!(registry.is_empty(), "removed when the connection ended");
}
