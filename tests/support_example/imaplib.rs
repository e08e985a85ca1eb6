//! Python's imaplib driving the example server: the prelude every script starts with, and
//! the runner that reads back what the script printed.

use super::{ExampleServer, PASSWORD, Transcript, USER};
use crate::support_shared::{dedent, run_python};

/// Prepended to every imaplib script: `M` is a session logged in as demo on the plain IMAP
/// port; `ARGS` are the script's own arguments. `out(name, ...)` prints one line for the test
/// (bytes as UTF-8 text, lists joined with " | "), `out_hex(name, octets)` prints octets as
/// hex, `literal(data)` is the literal of a one-message FETCH answer.
const IMAPLIB_PRELUDE: &str = r#"
import imaplib, re, sys
PORT, USER, PASSWORD = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ARGS = sys.argv[4:]

def connect():
    m = imaplib.IMAP4("127.0.0.1", PORT, timeout=20)
    typ, data = m.login(USER, PASSWORD)
    assert typ == "OK", data
    return m

M = connect()

def show(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, (list, tuple)):
        return " | ".join(show(v) for v in value)
    return str(value)

def out(name, *values):
    print(name, *[show(v) for v in values], flush=True)

def out_hex(name, octets):
    print(name, bytes(octets).hex(), flush=True)

def literal(data):
    for item in data:
        if isinstance(item, tuple):
            return item[1]
    raise SystemExit("no literal in %r" % (data,))
"#;

/// Run `script` (indented as it sits in the test; see [`IMAPLIB_PRELUDE`]) with `args`;
/// fails the test if Python fails. imaplib's socket timeout bounds every wait. What it
/// printed: `(name, rest of the line)` of each `out` line, in order; the octets of an
/// `out_hex` line are [`Transcript::octets`].
#[track_caller]
pub fn imaplib(server: &ExampleServer, script: &str, args: &[&str]) -> Transcript {
    let program = format!("{IMAPLIB_PRELUDE}\n{}\n", dedent(script));
    let port = server.imap.port().to_string();
    let stdout = run_python(&program, [port.as_str(), USER, PASSWORD].iter().chain(args));
    Transcript::parse(&stdout)
}
