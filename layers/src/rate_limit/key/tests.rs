use super::*;

fn session(ip: &str) -> Session {
    Session::new(
        tower_mail::Protocol::Imap,
        std::net::SocketAddr::new(ip.parse().unwrap(), 40000),
        "127.0.0.1:143".parse().unwrap(),
    )
}

fn key(how: &RateLimitKey, ip: &str) -> Option<String> {
    how.key_for(&session(ip)).map(|k| k.to_string())
}

#[test]
fn key_is_small() {
    assert_eq!(std::mem::size_of::<Key>(), 32);
}

#[test]
fn keys_print_as_before() {
    let ip = |s: &str| Key::from(s.parse::<IpAddr>().unwrap());
    let net = |s: &str| Key::from(s.parse::<IpNet>().unwrap());
    assert_eq!(format!("{:?}", ip("192.0.2.1")), "Ip(192.0.2.1)");
    assert_eq!(format!("{:?}", net("10.0.0.9/24")), "Net(10.0.0.0/24)");
    assert_eq!(format!("{:?}", Key::from("a")), "Text(\"a\")");
    assert_eq!(ip("2001:db8::1").to_string(), "2001:db8::1");
    assert_eq!(net("2001:db8::1/128").to_string(), "2001:db8::1/128");
    assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
}

#[test]
fn equal_keys_hash_alike_and_others_apart() {
    let texts = [
        "",
        "a",
        "abcdefgh",
        "abcdefghi",
        "10.0.0.1",
        "\0\0\0\0\0\0\0\0",
    ];
    let mut keys: Vec<Key> = texts.iter().map(|t| Key::from(*t)).collect();
    for s in ["10.0.0.1", "10.0.0.0", "2001:db8::1", "::"] {
        keys.push(Key::from(s.parse::<IpAddr>().unwrap()));
    }
    for s in [
        "10.0.0.0/32",
        "10.0.0.0/8",
        "0.0.0.0/0",
        "::/0",
        "::/128",
        "2001:db8::/64",
    ] {
        keys.push(Key::from(s.parse::<IpNet>().unwrap()));
    }
    for (i, a) in keys.iter().enumerate() {
        assert_eq!(a.hash_value(), a.clone().hash_value());
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
            assert_ne!(a.hash_value(), b.hash_value(), "{a:?} {b:?}");
        }
    }
    assert_eq!(Key::from("abcdefghi"), Key::from(String::from("abcdefghi")));
}

#[test]
fn kinds_of_keys_never_match() {
    let ip: IpAddr = "10.0.0.0".parse().unwrap();
    let net: IpNet = "10.0.0.0/32".parse().unwrap();
    assert_ne!(Key::from(ip), Key::from(net));
    assert_ne!(Key::from(ip), Key::from("10.0.0.0"));
    assert_eq!(Key::from("10.0.0.0").to_string(), Key::from(ip).to_string());
}

#[test]
fn ip_keys_are_canonical() {
    let ip = RateLimitKey::Ip;
    assert_eq!(key(&ip, "192.0.2.1").as_deref(), Some("192.0.2.1"));
    assert_eq!(key(&ip, "::ffff:192.0.2.1").as_deref(), Some("192.0.2.1"));
    assert_eq!(
        ip.key_for(&session("::ffff:192.0.2.1")),
        ip.key_for(&session("192.0.2.1"))
    );
    assert_eq!(key(&ip, "2001:db8::1").as_deref(), Some("2001:db8::1"));
}

#[test]
fn prefixes_group_networks() {
    let net = RateLimitKey::Prefix { v4: 24, v6: 64 };
    let a = net.key_for(&session("10.0.0.1"));
    assert_eq!(a, net.key_for(&session("10.0.0.200")));
    assert_eq!(a, net.key_for(&session("::ffff:10.0.0.99")));
    assert_ne!(a, net.key_for(&session("10.0.1.1")));
    assert_eq!(key(&net, "10.0.0.1").as_deref(), Some("10.0.0.0/24"));

    let b = net.key_for(&session("2001:db8:0:1::1"));
    assert_eq!(b, net.key_for(&session("2001:db8:0:1:ffff::2")));
    assert_ne!(b, net.key_for(&session("2001:db8:0:2::1")));
    assert_eq!(
        key(&net, "2001:db8:0:1::1").as_deref(),
        Some("2001:db8:0:1::/64")
    );
}

#[test]
fn oversized_prefixes_are_whole_addresses() {
    let net = RateLimitKey::Prefix { v4: 40, v6: 200 };
    assert_eq!(key(&net, "10.0.0.1").as_deref(), Some("10.0.0.1/32"));
    assert_eq!(key(&net, "2001:db8::1").as_deref(), Some("2001:db8::1/128"));
}

#[test]
fn custom_keys_and_unlimited_sessions() {
    let by_port = RateLimitKey::custom(|s| {
        (s.remote_addr().ip().is_ipv4()).then(|| Key::from(format!("k{}", s.local_addr().port())))
    });
    assert_eq!(key(&by_port, "10.0.0.1").as_deref(), Some("k143"));
    assert_eq!(key(&by_port, "2001:db8::1"), None);
}
