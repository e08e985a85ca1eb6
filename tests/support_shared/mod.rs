//! Helpers that both kinds of integration test use: the in-process ones (`tests/common`) and
//! the ones that drive the example server binary (`tests/support_example`, which runs its
//! poplib script with it). Declare it with `mod support_shared;` beside either of those.
//!
//! - Python scripts: a test writes its script indented as it sits in the Rust source
//!   ([`dedent`]), puts its own prelude in front (each file's differs: what it connects to,
//!   what it predefines) and runs it with [`run_python`], or, from a test whose server runs
//!   on the test's own runtime, with [`run_python_async`].
//! - Message bytes: [`crlf`].
//! - Outside programs: [`missing`] turns a failed start into a message that says what to
//!   install.
//! - Seeded choices: [`Rng`].
#![allow(dead_code)]

use std::ffi::OsStr;
use std::process::{Command, Output};

// ---- Python scripts ----

/// `script` without the indentation its lines share, so that a script can be written indented
/// inside a raw string in a test. Blank lines do not count towards the indentation.
pub fn dedent(script: &str) -> String {
    let indent = script
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    script
        .lines()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The scripts `setup` and then `script`, each written indented as it sits in a test.
pub fn dedent_both(setup: &str, script: &str) -> String {
    format!("{}\n{}", dedent(setup), dedent(script))
}

/// `python3 -c <program>`, not started yet; arguments added to it are the script's
/// `sys.argv[1:]`.
pub fn python3(program: &str) -> Command {
    let mut command = Command::new("python3");
    command.arg("-c").arg(program);
    command
}

/// What a finished `program` printed. Fails the test if Python failed, showing the program
/// with line numbers (tracebacks name lines of `<string>`), its stdout and its stderr, or if
/// it printed anything but UTF-8.
#[track_caller]
pub fn stdout_of(program: &str, output: Output) -> String {
    if !output.status.success() {
        let numbered: Vec<String> = program
            .lines()
            .enumerate()
            .map(|(i, line)| format!("{:4} {line}", i + 1))
            .collect();
        panic!(
            "python3 failed ({}):\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            numbered.join("\n"),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).expect("the script prints UTF-8")
}

/// Run `program` with `args` as its `sys.argv[1:]`, wait for it and return what it printed;
/// fails the test as [`stdout_of`] says. Nothing bounds the run here: a script that talks to
/// a server bounds its own waits (a socket timeout).
#[track_caller]
pub fn run_python<I, S>(program: &str, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = python3(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}", missing("python3", &e)));
    stdout_of(program, output)
}

/// [`run_python`] without arguments, through tokio: for tests whose server runs on the
/// test's own runtime, which must go on serving while Python runs. Fails the test if Python
/// has not finished within a minute (a liveness bound, not a timing claim).
pub async fn run_python_async(program: &str) -> String {
    let run = tokio::process::Command::from(python3(program)).output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("python finished in time")
        .unwrap_or_else(|e| panic!("{}", missing("python3", &e)));
    stdout_of(program, output)
}

// ---- Outside programs ----

/// Why `program` could not be started, with what to install when it is missing: the tests
/// run real clients and servers (Debian package names; `.ci/run` installs them all).
pub fn missing(program: &str, err: &std::io::Error) -> String {
    let package = match program {
        "mbsync" => "isync",
        "doveadm" => "dovecot-core",
        "prlimit" | "kill" => "util-linux procps",
        other => other,
    };
    match err.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{program} is not installed; this test needs it: apt-get install {package} \
             (.ci/run installs everything the tests need)"
        ),
        _ => format!("cannot run {program}: {err}"),
    }
}

// ---- Message bytes ----

/// `message` with every bare LF made CRLF (a CRLF stays as it is): what a client must receive
/// of a message stored with LF line ends; its length is the RFC 822 size.
pub fn crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    for (i, &byte) in message.iter().enumerate() {
        if byte == b'\n' && (i == 0 || message[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(byte);
    }
    out
}

// ---- Seeded choices ----

/// xorshift64*: a few lines instead of a dependency, and plenty for picking test cases; the
/// same seed gives the same choices, so a failing run can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// `n` arbitrary bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// ---- Encodings ----

/// `data` in base64 (RFC 4648, padded, one line), from Python's base64 module: an encoder
/// independent of the library's own (which is private to it). `data` travels as hex, so it
/// may hold any byte, NUL included (a SASL PLAIN message).
pub fn base64(data: &[u8]) -> String {
    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
    let encoded = run_python(
        "import base64, sys\nprint(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())",
        [hex],
    );
    encoded.trim_end().to_owned()
}
