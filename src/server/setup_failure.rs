//! Connections that end before their stack runs: why, counted per protocol, and logged at
//! info level under a budget so that a flood of broken handshakes cannot flood the log.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::session::Protocol;

/// Why a connection ended before the layer stack saw it.
///
/// ```
/// use tower_mail::server::SetupFailure;
/// assert_eq!(SetupFailure::TlsTimeout.as_str(), "tls_timeout");
/// assert_eq!(SetupFailure::ALL.len(), 6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SetupFailure {
    /// Too many connections were setting up (server-wide, or from the address): closed at
    /// once, with no handshake.
    SetupCap,
    /// The PROXY header was malformed, truncated or too large, or the peer closed first.
    ProxyHeader,
    /// The PROXY header did not arrive within its deadline.
    ProxyTimeout,
    /// The TLS handshake failed (a reset, a plaintext client, no shared protocol version).
    TlsHandshake,
    /// The TLS handshake did not finish within its deadline.
    TlsTimeout,
    /// Refused by the listener's address check before its TLS handshake
    /// ([`Endpoint::refuse_before_handshake`](super::Endpoint::refuse_before_handshake)).
    Refused,
}

impl SetupFailure {
    /// Every reason, for exporting the counts.
    pub const ALL: [SetupFailure; 6] = [
        SetupFailure::SetupCap,
        SetupFailure::ProxyHeader,
        SetupFailure::ProxyTimeout,
        SetupFailure::TlsHandshake,
        SetupFailure::TlsTimeout,
        SetupFailure::Refused,
    ];

    /// A stable lower-case label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SetupFailure::SetupCap => "setup_cap",
            SetupFailure::ProxyHeader => "proxy_header",
            SetupFailure::ProxyTimeout => "proxy_timeout",
            SetupFailure::TlsHandshake => "tls_handshake",
            SetupFailure::TlsTimeout => "tls_timeout",
            SetupFailure::Refused => "refused",
        }
    }

    /// A failed PROXY header read, by its error.
    pub(super) fn proxy(err: &io::Error) -> SetupFailure {
        match err.kind() {
            io::ErrorKind::TimedOut => SetupFailure::ProxyTimeout,
            _ => SetupFailure::ProxyHeader,
        }
    }

    /// A failed TLS handshake, by its error.
    pub(super) fn tls(err: &io::Error) -> SetupFailure {
        match err.kind() {
            io::ErrorKind::TimedOut => SetupFailure::TlsTimeout,
            _ => SetupFailure::TlsHandshake,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Log lines about setup failures allowed per second; the rest are summed up in the next
/// line, so an operator sees a flood's size without the log becoming the flood.
const LOG_LINES_PER_SECOND: u32 = 10;

/// The server's setup-failure counts and log budget.
#[derive(Debug, Default)]
pub(super) struct SetupFailures {
    counts: [[AtomicU64; SetupFailure::ALL.len()]; 2],
    budget: Mutex<LogBudget>,
}

#[derive(Debug, Default)]
struct LogBudget {
    second: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl SetupFailures {
    /// Count one failure and log it, unless this second's lines are spent.
    pub(super) fn record(
        &self,
        protocol: Protocol,
        peer: SocketAddr,
        failure: SetupFailure,
        error: Option<&dyn std::fmt::Display>,
    ) {
        self.counts[protocol_index(protocol)][failure.index()].fetch_add(1, Ordering::Relaxed);
        let Some(suppressed) = self.take_log_line() else {
            return;
        };
        let error = error.map(tracing::field::display);
        tracing::info!(
            event = "setup_failure",
            protocol = protocol.as_str(),
            %peer,
            reason = failure.as_str(),
            error,
            suppressed_before = (suppressed > 0).then_some(suppressed),
            "connection ended before its session started"
        );
    }

    /// `Some(lines suppressed since the last one)` if a line may be logged now.
    fn take_log_line(&self) -> Option<u64> {
        let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let new_second = budget
            .second
            .is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1));
        if new_second {
            budget.second = Some(now);
            budget.logged = 0;
        }
        if budget.logged >= LOG_LINES_PER_SECOND {
            budget.suppressed += 1;
            return None;
        }
        budget.logged += 1;
        Some(std::mem::take(&mut budget.suppressed))
    }

    pub(super) fn count(&self, protocol: Protocol, failure: SetupFailure) -> u64 {
        self.counts[protocol_index(protocol)][failure.index()].load(Ordering::Relaxed)
    }
}

fn protocol_index(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Imap => 0,
        Protocol::Pop3 => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_per_protocol_and_reason() {
        let failures = SetupFailures::default();
        let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        failures.record(Protocol::Imap, peer, SetupFailure::TlsTimeout, None);
        failures.record(Protocol::Imap, peer, SetupFailure::TlsTimeout, None);
        failures.record(Protocol::Pop3, peer, SetupFailure::SetupCap, None);
        assert_eq!(failures.count(Protocol::Imap, SetupFailure::TlsTimeout), 2);
        assert_eq!(failures.count(Protocol::Pop3, SetupFailure::TlsTimeout), 0);
        assert_eq!(failures.count(Protocol::Pop3, SetupFailure::SetupCap), 1);
    }

    #[test]
    fn the_log_budget_holds_and_reports_what_it_held_back() {
        let failures = SetupFailures::default();
        for _ in 0..LOG_LINES_PER_SECOND {
            assert_eq!(failures.take_log_line(), Some(0));
        }
        assert_eq!(failures.take_log_line(), None);
        assert_eq!(failures.take_log_line(), None);
        // A new second: the next line says how many were held back.
        failures.budget.lock().unwrap().second = Some(Instant::now() - Duration::from_secs(2));
        assert_eq!(failures.take_log_line(), Some(2));
        assert_eq!(failures.take_log_line(), Some(0));
    }

    #[test]
    fn errors_map_to_reasons() {
        let timed_out = io::Error::from(io::ErrorKind::TimedOut);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(SetupFailure::tls(&timed_out), SetupFailure::TlsTimeout);
        assert_eq!(SetupFailure::tls(&reset), SetupFailure::TlsHandshake);
        assert_eq!(SetupFailure::proxy(&timed_out), SetupFailure::ProxyTimeout);
        assert_eq!(SetupFailure::proxy(&reset), SetupFailure::ProxyHeader);
    }
}
