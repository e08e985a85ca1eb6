//! The cost of one policy decision, per layer: what each connection pays before its greeting.
//!
//! ```text
//! cargo bench -p tower-mail-layers --bench decisions
//! ```
//!
//! Goal (issue 4): each decision under 200 ns. The decision is the policy's `check` on a
//! session, the same call `PolicyLayer` makes per connection.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tower_mail::{Protocol, Session};
use tower_mail_layers::ip_block::{CidrSet, IpBlock, IpLists};
use tower_mail_layers::policy::Policy;
use tower_mail_layers::time_window::{Schedule, Time, Weekday};

/// Pseudo-random addresses, the same on every run.
fn addresses(n: usize) -> Vec<Ipv4Addr> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            Ipv4Addr::from(x)
        })
        .collect()
}

fn session(ip: IpAddr) -> Arc<Session> {
    Arc::new(Session::new(
        Protocol::Imap,
        SocketAddr::new(ip, 50_000),
        "127.0.0.1:143".parse().unwrap(),
    ))
}

fn ip_block(c: &mut Criterion) {
    let deny: CidrSet = addresses(100_000)
        .into_iter()
        .enumerate()
        .map(|(i, ip)| {
            let len = if i % 4 == 0 { 24 } else { 32 };
            ipnet::IpNet::V4(ipnet::Ipv4Net::new(ip, len).unwrap().trunc())
        })
        .collect();
    let block = IpBlock::new(IpLists {
        deny,
        ..IpLists::default()
    });
    let probes: Vec<Arc<Session>> = addresses(1024)
        .into_iter()
        .map(|ip| session(IpAddr::V4(Ipv4Addr::from(u32::from(ip).rotate_left(7)))))
        .collect();
    let mut i = 0;
    c.bench_function("ip_block/100k_cidrs", |b| {
        b.iter(|| {
            i = (i + 1) % probes.len();
            black_box(block.check(black_box(&probes[i])).into_inner().is_ok())
        })
    });
}

fn time_window(c: &mut Criterion) {
    let days = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ];
    let schedule = Schedule::new("Europe/Amsterdam").unwrap().open_weekdays(
        &days,
        Time::constant(9, 0, 0, 0),
        Time::constant(17, 0, 0, 0),
    );
    let probe = session("192.0.2.1".parse().unwrap());
    // Both verdicts, whatever the time of day the benchmark runs at.
    let open = Schedule::always_open();
    let closed = Schedule::new("Europe/Amsterdam").unwrap();
    for (name, schedule) in [
        ("time_window/business_hours_now", &schedule),
        ("time_window/open", &open),
        ("time_window/closed", &closed),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| black_box(schedule.check(black_box(&probe)).into_inner().is_ok()))
        });
    }
}

criterion_group!(benches, ip_block, time_window);
criterion_main!(benches);
