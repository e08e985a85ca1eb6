//! The load generator's command line.

use std::net::SocketAddr;
use std::time::Duration;

/// What each connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// IMAP: greeting, `a LOGOUT`, its answer, then the server's close.
    ImapGreet,
    /// POP3: greeting, `QUIT`, `+OK`, then the server's close.
    Pop3Greet,
    /// Any protocol: read whatever the server says until it closes (a refused client).
    Refusal,
    /// IMAP: LOGIN, SELECT INBOX, `UID FETCH 1:* (FLAGS ENVELOPE)`, `FETCH 1:* (BODYSTRUCTURE)`,
    /// LOGOUT.
    ImapFetch,
    /// POP3: USER, PASS, `RETR n`, QUIT.
    Pop3Retr,
    /// Hold connections open (before login, or after it with `--login`) and report the
    /// growth of the server's memory.
    Idle,
}

impl Mode {
    const NAMES: [(&'static str, Mode); 6] = [
        ("imap-greet", Mode::ImapGreet),
        ("pop3-greet", Mode::Pop3Greet),
        ("refusal", Mode::Refusal),
        ("imap-fetch", Mode::ImapFetch),
        ("pop3-retr", Mode::Pop3Retr),
        ("idle", Mode::Idle),
    ];

    pub fn name(self) -> &'static str {
        Mode::NAMES
            .iter()
            .find(|(_, mode)| *mode == self)
            .map(|(name, _)| *name)
            .expect("every mode is named")
    }

    fn parse(text: &str) -> Option<Mode> {
        Mode::NAMES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, mode)| *mode)
    }

    /// Modes that count connections per second; the others time what happens inside one.
    pub fn is_rate(self) -> bool {
        matches!(self, Mode::ImapGreet | Mode::Pop3Greet | Mode::Refusal)
    }
}

/// Which protocol `idle` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
}

/// Command-line settings.
#[derive(Debug, Clone)]
pub struct Args {
    pub mode: Mode,
    /// The server, on a loopback address.
    pub addr: SocketAddr,
    /// Measured connections (in `idle`: connections held open).
    pub connections: usize,
    /// Connections before the measured ones, not counted.
    pub warmup: usize,
    /// Connections in flight at once.
    pub concurrency: usize,
    /// Stop starting connections after this long.
    pub duration: Duration,
    /// The most any one connection may take.
    pub timeout: Duration,
    pub user: String,
    pub password: String,
    /// The message `pop3-retr` retrieves.
    pub message: usize,
    /// `idle`: the protocol to speak, and whether to log in first.
    pub protocol: Protocol,
    pub login: bool,
    /// `idle`: the server's process, whose memory (with its children's) is read before and
    /// after.
    pub pid: Option<u32>,
    /// `idle`: how long to wait, once all are open, before reading the memory.
    pub settle: Duration,
    /// A label copied into the JSON summary (a server's name in a comparison).
    pub label: String,
}

pub const USAGE: &str = "\
usage: load MODE --addr 127.0.0.1:PORT [options]
modes: imap-greet | pop3-greet | refusal | imap-fetch | pop3-retr | idle
  --connections N    measured connections (idle: connections held open)    [rate modes 5000, else 1]
  --warmup N         connections first, not counted            [rate modes connections/10, else 0]
  --concurrency N    connections in flight at once                          [rate modes 32, else 1]
  --duration SECS    start no connection after this long                                      [60]
  --timeout SECS     the most one connection may take                                         [60]
  --user U --password P   for imap-fetch, pop3-retr, idle --login                   [bench bench]
  --message N        the message pop3-retr retrieves                                           [1]
  --protocol imap|pop3   what idle speaks                                                   [imap]
  --login            idle: log in (IMAP: and SELECT INBOX) before going quiet
  --pid PID          idle: the server's process; its memory and its children's is read
  --settle MS        idle: wait this long after the last connection before reading it       [1000]
  --label TEXT       copied into the JSON summary
Prints a human summary, then one line of JSON starting with `{\"load\":`.";

pub fn parse() -> Result<Args, String> {
    parse_from(std::env::args().skip(1))
}

fn parse_from(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mode_text = args.next().ok_or(USAGE)?;
    if mode_text == "--help" || mode_text == "-h" {
        return Err(USAGE.to_owned());
    }
    let mode =
        Mode::parse(&mode_text).ok_or_else(|| format!("unknown mode {mode_text:?}\n{USAGE}"))?;
    let mut addr = None;
    let (mut connections, mut warmup, mut concurrency) = (None, None, None);
    let mut duration = 60.0;
    let mut timeout = 60.0;
    let mut parsed_user = "bench".to_owned();
    let mut password = "bench".to_owned();
    let mut message = 1;
    let mut protocol = Protocol::Imap;
    let mut login = false;
    let mut pid = None;
    let mut settle_ms = 1000;
    let mut label = String::new();
    while let Some(flag) = args.next() {
        if flag == "--login" {
            login = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => addr = Some(loopback(&value)?),
            "--connections" => connections = Some(positive(&flag, &value)?),
            "--warmup" => warmup = Some(number(&flag, &value)?),
            "--concurrency" => concurrency = Some(positive(&flag, &value)?),
            "--duration" => duration = seconds(&flag, &value)?,
            "--timeout" => timeout = seconds(&flag, &value)?,
            "--user" => parsed_user = value,
            "--password" => password = value,
            "--message" => message = positive(&flag, &value)?,
            "--protocol" => {
                protocol = match value.as_str() {
                    "imap" => Protocol::Imap,
                    "pop3" => Protocol::Pop3,
                    _ => return Err(format!("--protocol: imap or pop3, not {value:?}")),
                }
            }
            "--pid" => pid = Some(number(&flag, &value)? as u32),
            "--settle" => settle_ms = number(&flag, &value)? as u64,
            "--label" => label = value,
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    let addr = addr.ok_or_else(|| format!("--addr is required\n{USAGE}"))?;
    let connections = connections.unwrap_or(if mode.is_rate() { 5_000 } else { 1 });
    Ok(Args {
        mode,
        addr,
        connections,
        warmup: warmup.unwrap_or(if mode.is_rate() { connections / 10 } else { 0 }),
        concurrency: concurrency.unwrap_or(if mode.is_rate() { 32 } else { 1 }),
        duration: Duration::from_secs_f64(duration),
        timeout: Duration::from_secs_f64(timeout),
        user: parsed_user,
        password,
        message,
        protocol,
        login,
        pid,
        settle: Duration::from_millis(settle_ms),
        label,
    })
}

/// A load generator floods what it points at: only this machine's loopback addresses, so
/// that a typo cannot aim it at someone else's server.
fn loopback(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("--addr: {text:?} is not an IP address and port"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--addr: {addr} is not a loopback address; this tool only loads servers on this \
             machine (127.0.0.0/8, ::1)"
        ));
    }
    Ok(addr)
}

fn number(flag: &str, value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a number"))
}

fn positive(flag: &str, value: &str) -> Result<usize, String> {
    Some(number(flag, value)?)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{flag}: must be at least 1"))
}

fn seconds(flag: &str, value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0)
        .ok_or_else(|| format!("{flag}: {value:?} is not a number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Args, String> {
        parse_from(line.split(' ').map(String::from))
    }

    #[test]
    fn refuses_addresses_off_this_machine() {
        let err = parse("imap-greet --addr 192.0.2.1:143").unwrap_err();
        assert!(err.contains("not a loopback address"), "{err}");
        assert!(parse("imap-greet --addr example.com:143").is_err());
        assert!(parse("imap-greet --addr [::1]:143").is_ok());
        assert!(parse("imap-greet --addr 127.0.0.2:143").is_ok());
    }

    #[test]
    fn defaults_follow_the_mode() {
        let rate = parse("pop3-greet --addr 127.0.0.1:110").unwrap();
        assert_eq!(
            (rate.connections, rate.warmup, rate.concurrency),
            (5000, 500, 32)
        );
        let fetch = parse("imap-fetch --addr 127.0.0.1:143").unwrap();
        assert_eq!(
            (fetch.connections, fetch.warmup, fetch.concurrency),
            (1, 0, 1)
        );
    }
}
