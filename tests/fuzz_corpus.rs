//! The fuzz targets' inputs as regression tests: every file of the committed seed corpus
//! (`fuzz/corpus/<target>/`) and every input that once crashed a target
//! (`fuzz/regressions/<target>/`) runs through the same harness the cargo-fuzz targets use,
//! without cargo-fuzz. A crash or a hung session fails the test; beyond that, each session
//! greets and ends the way a client relies on.

#[path = "../fuzz/src/harness.rs"]
mod harness;

use std::fs;
use std::path::Path;

/// Every input of `target`, by file name.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz")
            .join(kind)
            .join(target);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            all.push((path.display().to_string(), fs::read(&path).unwrap()));
        }
    }
    assert!(!all.is_empty(), "no inputs for {target}");
    all
}

#[test]
fn imap_sessions_greet_answer_and_end() {
    for (name, input) in inputs("imap_session") {
        let output = harness::imap_session(&input);
        assert!(output.starts_with(b"* OK [CAPABILITY "), "{name}");
        // Every line the server sent ends in CRLF: no bare LF from an echoed input.
        for line in lines_but_binary_data(&output) {
            assert!(line.ends_with(b"\r\n"), "{name}: {line:?}");
        }
    }
}

/// The lines of `output`, without the octets BINARY items send (the literal or literal8
/// after `BINARY[...]`): those are a part's own octets, bare LF included.
fn lines_but_binary_data(output: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut rest = output;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, after) = rest.split_at(end);
        lines.push(line);
        rest = after;
        if let Some(length) = binary_literal(line) {
            rest = &rest[length.min(rest.len())..];
        }
    }
    lines
}

/// The length of the literal `line` announces at its end, if a BINARY item's:
/// `BINARY[1] {4}` or `BINARY[1] ~{4}`.
fn binary_literal(line: &[u8]) -> Option<usize> {
    let head = line.strip_suffix(b"}\r\n")?;
    let open = head.iter().rposition(|&b| b == b'{')?;
    let length = std::str::from_utf8(&head[open + 1..]).ok()?.parse().ok()?;
    let before = &head[..open];
    let item = before
        .strip_suffix(b"~")
        .unwrap_or(before)
        .strip_suffix(b" ")?;
    let bracket = item.iter().rposition(|&b| b == b'[')?;
    item[..bracket].ends_with(b"BINARY").then_some(length)
}

#[test]
fn pop3_sessions_greet_answer_and_end() {
    for (name, input) in inputs("pop3_session") {
        let output = harness::pop3_session(&input);
        assert!(output.starts_with(b"+OK "), "{name}");
        for line in output.split_inclusive(|&b| b == b'\n') {
            assert!(line.ends_with(b"\r\n"), "{name}: {line:?}");
        }
    }
}

#[test]
fn any_message_can_be_fetched_and_searched() {
    for (name, message) in inputs("imap_message") {
        let output = String::from_utf8_lossy(&harness::imap_message(&message)).into_owned();
        // The message went in, and every command after it was answered by its tag.
        for tag in ["b OK", "c OK", "d OK", "e OK", "f OK", "g OK", "h OK"] {
            assert!(
                output.lines().any(|l| l.starts_with(tag)),
                "{name}: no {tag:?} in\n{output}"
            );
        }
        // BINARY decodes whatever the parts hold, or refuses an encoding it does not know.
        assert!(
            output
                .lines()
                .any(|l| l.starts_with("e2 OK") || l.starts_with("e2 NO [UNKNOWN-CTE]")),
            "{name}: e2 not answered in\n{output}"
        );
    }
}

#[test]
fn maildir_trees_left_by_other_programs_keep_every_message_and_sound_uids() {
    for (name, input) in inputs("maildir_tree") {
        // The harness itself fails on UIDs that are not unique and ascending below UIDNEXT.
        let held = harness::maildir_tree(&input);
        let names = input
            .split(|&b| b == 0)
            .skip(2)
            .filter(|n| !n.is_empty())
            .count();
        assert!(held <= names, "{name}: {held} messages from {names} files");
        if name.ends_with("dovecot_written") {
            // Two in cur/ known to the UID list, one an MDA left in new/: all three listed.
            assert_eq!(held, 3, "{name}");
        }
    }
}

#[test]
fn proxy_headers_are_read_by_their_deadline_and_pass_on_the_client_bytes() {
    for (name, input) in inputs("proxy_header") {
        // The harness fails on a hang, a header over the cap, or bytes passed on that are not
        // the client's own.
        let accepted = harness::proxy_header(&input);
        let well_formed = ["v1_tcp4", "v1_tcp6", "v1_unknown", "v2_tcp4"];
        if well_formed.iter().any(|seed| name.ends_with(seed)) {
            assert!(accepted, "{name}: a valid header was refused");
        }
        if name.ends_with("v1_truncated") || name.ends_with("garbage") {
            assert!(!accepted, "{name}: a malformed header was accepted");
        }
    }
}
