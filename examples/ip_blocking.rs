//! The connection-management guide's "Advanced Connection Filtering": refuse blocked IP
//! addresses, and cap the concurrent connections from one IP address.
//!
//! ```text
//! cargo run --example ip_blocking -- --block 192.168.1.100 --block 10.0.0.50 --max-per-ip 10
//! ```
//!
//! From the guide's JavaScript to Rust:
//!
//! - `onConnect(session, callback)` is an [`OnConnectLayer`] hook: an async fn of the session
//!   that returns `Err(Reject)` instead of `callback(new Error(..))`. The client reads
//!   `-ERR IP address blocked` or `-ERR Too many connections from this IP`.
//! - `onClose(session)` is an [`OnCloseLayer`] hook, which runs exactly once for every
//!   connection that reached it, on every path (logout, reset, timeout, shutdown, a panic, a
//!   refusal by a layer further in).
//! - `connectionCounts` is a [`PerIpCount`] behind one mutex.
//!
//! What the Rust form fixes:
//!
//! - The guide's `onClose` decrements for every connection, including those its own
//!   `onConnect` refused and never counted, so each refusal frees a slot held by someone else
//!   and the cap stops holding. Here a connection is released only if it was counted (see
//!   [`PerIpCount`]).
//! - Check and increment happen under one lock, so concurrent connections cannot all pass a
//!   count of 9 and end at 12.
//! - Counts that reach zero are removed, so the map does not grow with every address ever seen.

#[path = "guide/mod.rs"]
mod guide;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use tower::ServiceBuilder;
use tower_mail::{CloseReport, Reject, Session, SessionId};
use tower_mail_layers::on_close::OnCloseLayer;
use tower_mail_layers::on_connect::OnConnectLayer;

/// The policy: blocked addresses, and a cap on concurrent connections per address.
struct Filter {
    blocked: HashSet<IpAddr>,
    max_per_ip: usize,
    counts: Mutex<PerIpCount>,
}

/// Concurrent connections per IP address, and which sessions were counted.
///
/// Remembering the counted sessions is what makes the release exact. The alternatives are
/// wrong on some path:
///
/// - decrementing in every close (the guide) also decrements for connections this filter
///   refused;
/// - decrementing unless the close reason is "rejected" misses connections this filter counted
///   and a layer further in then refused (a global limit, say): they leak a slot forever;
/// - telling the two apart by the refusing layer's name breaks when a refusal comes from the
///   hook layer itself (its deadline) or a layer is renamed.
///
/// With the set, `release` undoes exactly what `admit` did, whatever ended the connection, and
/// does nothing for connections that were never counted. It relies on the [`OnCloseLayer`]
/// running exactly once for every connection that reached the [`OnConnectLayer`], which holds
/// because the close layer sits outside it.
#[derive(Default)]
struct PerIpCount {
    per_ip: HashMap<IpAddr, usize>,
    counted: HashMap<SessionId, IpAddr>,
}

impl Filter {
    /// The onConnect check: refuse or count the connection.
    fn admit(&self, session: &Session) -> Result<(), Reject> {
        let ip = client_ip(session);
        if self.blocked.contains(&ip) {
            return Err(Reject::new("IP address blocked").with_layer("ip_block"));
        }
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let current = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if current >= self.max_per_ip {
            return Err(Reject::new("Too many connections from this IP").with_layer("per_ip_limit"));
        }
        counts.per_ip.insert(ip, current + 1);
        counts.counted.insert(session.id().clone(), ip);
        Ok(())
    }

    /// The onClose clean-up: give back the slot `admit` took, if it took one.
    fn release(&self, session: &Session) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(ip) = counts.counted.remove(session.id()) else {
            return;
        };
        if let Some(count) = counts.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }
}

/// The client's address, with an IPv4 client of a dual-stack listener (`::ffff:192.0.2.1`)
/// written as plain IPv4, so `--block 192.0.2.1` and the per-IP count apply to it.
fn client_ip(session: &Session) -> IpAddr {
    session.remote_addr().ip().to_canonical()
}

/// The guide's two handlers in front of any session service.
fn filtered(inner: impl guide::Stack, filter: Arc<Filter>) -> impl guide::Stack {
    let on_connect = {
        let filter = filter.clone();
        move |session: Arc<Session>| {
            let filter = filter.clone();
            async move {
                filter.admit(&session)?;
                println!(
                    "{} connection allowed from {}",
                    guide::protocol_name(session.protocol()),
                    client_ip(&session)
                );
                Ok(())
            }
        }
    };
    let on_close = move |session: &Session, report: &CloseReport| {
        filter.release(session);
        println!(
            "{} connection closed: {} from {} ({})",
            guide::protocol_name(session.protocol()),
            session.id(),
            client_ip(session),
            report.reason
        );
    };
    ServiceBuilder::new()
        // Outside the check, so it sees the end of every connection the check counted.
        .layer(OnCloseLayer::new(on_close))
        .layer(OnConnectLayer::new(on_connect))
        .service(inner)
}

async fn run() -> Result<(), String> {
    let args = guide::Args::parse(&["--block", "--max-per-ip"])?;
    let blocked = args
        .all("--block")
        .map(|ip| ip.parse().map_err(|e| format!("--block {ip:?}: {e}")))
        .collect::<Result<_, String>>()?;
    let filter = Arc::new(Filter {
        blocked,
        max_per_ip: args.parsed("--max-per-ip", 10)?,
        counts: Mutex::default(),
    });
    guide::serve(args.listen(), filtered(guide::pop3(), filter)).await
}

#[tokio::main]
async fn main() -> ExitCode {
    guide::exit("ip_blocking", run().await)
}
