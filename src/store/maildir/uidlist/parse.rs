//! Reading a UID list in any of the formats it may be in (see the [parent](super)).
//!
//! A damaged header makes the whole list unusable: without a trustworthy UIDVALIDITY and
//! UIDNEXT no UID in it can be trusted, so the folder is renumbered under a new UIDVALIDITY.
//! A damaged message line (truncated, not UTF-8, UIDs out of order, a bad name) costs only
//! that line: its message is given a new UID, as if it had just arrived, and UIDNEXT is
//! raised past the line's UID if that much could be read, so no UID ever handed out is
//! handed out again. Dovecot throws the whole file away in both cases; keeping the rest
//! spares the clients a full download for one bad line.

use std::collections::{BTreeMap, HashMap};

use super::super::filename;
use super::{RECENT_KEY, UidList, new_guid};

/// Longer lines are damage: a base name is at most 255 octets, Dovecot's fields are short.
const MAX_LINE: usize = 8 * 1024;

/// A list as read, and how many of its message lines were unusable.
#[derive(Debug)]
pub(super) struct Parsed {
    pub(super) list: UidList,
    pub(super) skipped: usize,
}

/// The three formats, by their header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Dovecot's and Courier's: `1 <uidvalidity> <uidnext>`, lines `<uid> <name>`.
    V1,
    /// Dovecot's: `3 V<uidvalidity> N<uidnext> ...`, lines `<uid> [<fields>] :<name>`.
    V3,
    /// Earlier tower-mail versions': `1 V<uidvalidity> N<uidnext>`, lines `<uid> <base>`.
    Legacy,
}

/// Parses a list; on failure, the UIDVALIDITY of the header if it was readable.
pub(super) fn parse(bytes: &[u8]) -> Result<Parsed, Option<u32>> {
    let mut lines = bytes.split(|&b| b == b'\n');
    let header = lines
        .next()
        .and_then(|line| std::str::from_utf8(line).ok())
        .ok_or(None)?;
    let (format, mut list) = parse_header(header)?;
    let mut skipped = 0;
    // Raised past the UID of every line, usable or not.
    let mut highest_seen = 0;
    let mut by_base: HashMap<String, u32> = HashMap::new();
    let mut entries = BTreeMap::new();
    let mut extensions = HashMap::new();
    let mut last = 0;
    for line in lines.filter(|line| !line.is_empty()) {
        let Some(entry) = parse_line(line, format) else {
            if let Some(uid) = leading_uid(line) {
                highest_seen = highest_seen.max(uid);
            }
            skipped += 1;
            continue;
        };
        highest_seen = highest_seen.max(entry.uid);
        if entry.uid <= last {
            skipped += 1;
            continue;
        }
        last = entry.uid;
        // The same file again under a later UID: Dovecot appends such a line when an
        // expunged file comes back; the later line wins, as in Dovecot.
        if let Some(earlier) = by_base.insert(entry.base.to_owned(), entry.uid) {
            entries.remove(&earlier);
        }
        if let Some(fields) = entry.fields {
            extensions.insert(entry.base.to_owned(), fields);
        }
        entries.insert(entry.uid, entry.base.to_owned());
    }
    // Dovecot appends lines without rewriting the header, so its N may lag.
    list.uid_next = list.uid_next.max(highest_seen.saturating_add(1));
    list.first_recent_uid = list.first_recent_uid.min(list.uid_next);
    list.entries = entries;
    list.extensions = extensions;
    Ok(Parsed { list, skipped })
}

fn parse_header(header: &str) -> Result<(Format, UidList), Option<u32>> {
    let mut fields = header.split(' ').filter(|field| !field.is_empty());
    let version = fields.next().ok_or(None)?;
    let rest: Vec<&str> = fields.collect();
    let format = match (version, rest.first()) {
        ("3", _) => Format::V3,
        ("1", Some(first)) if first.starts_with('V') => Format::Legacy,
        ("1", _) => Format::V1,
        _ => return Err(None),
    };
    let mut validity = None;
    let mut next = None;
    let mut guid = None;
    let mut first_recent_uid = 1;
    let mut other_header = Vec::new();
    if format == Format::V1 {
        let number = |i: usize| rest.get(i).and_then(|n| n.parse::<u32>().ok());
        validity = number(0);
        next = number(1).filter(|_| rest.len() == 2);
    } else {
        for field in rest {
            let mut chars = field.chars();
            let key = chars.next().unwrap_or(' ');
            let value = chars.as_str();
            match key {
                'V' => validity = value.parse::<u32>().ok(),
                'N' => next = value.parse::<u32>().ok(),
                // A bad GUID is replaced, not kept: Dovecot refuses a list with one.
                'G' => guid = is_guid(value).then(|| value.to_owned()),
                RECENT_KEY => first_recent_uid = value.parse::<u32>().unwrap_or(1).max(1),
                _ if format == Format::V3 => other_header.push(field.to_owned()),
                _ => return Err(validity.filter(|&v| v != 0)),
            }
        }
    }
    let uid_validity = validity.filter(|&v| v != 0).ok_or(None)?;
    let uid_next = next.filter(|&n| n != 0).ok_or(Some(uid_validity))?;
    let list = UidList {
        uid_validity,
        uid_next,
        first_recent_uid,
        entries: BTreeMap::new(),
        extensions: HashMap::new(),
        guid: guid.unwrap_or_else(new_guid),
        other_header,
        legacy: false,
    };
    Ok((format, list))
}

/// One usable message line.
struct Entry<'a> {
    uid: u32,
    base: &'a str,
    fields: Option<String>,
}

fn parse_line(line: &[u8], format: Format) -> Option<Entry<'_>> {
    if line.len() > MAX_LINE {
        return None;
    }
    let line = std::str::from_utf8(line).ok()?;
    let (uid, rest) = line.split_once(' ')?;
    let uid = parse_uid(uid)?;
    let (fields, name) = match format {
        Format::V3 => v3_fields_and_name(rest)?,
        Format::V1 | Format::Legacy => (None, rest),
    };
    // The name may be the whole file name as last seen; the base is what identifies it.
    let base = filename::split(name).0;
    let usable = !base.contains('/') && filename::is_message_name(base);
    usable.then_some(Entry { uid, base, fields })
}

/// The extension fields (`W2481 P...`, checked as Dovecot does: a capital key) and the name
/// after the `:` of a version 3 line.
fn v3_fields_and_name(rest: &str) -> Option<(Option<String>, &str)> {
    let mut rest = rest.trim_start_matches(' ');
    let mut fields: Vec<&str> = Vec::new();
    loop {
        if let Some(name) = rest.strip_prefix(':') {
            let fields = (!fields.is_empty()).then(|| fields.join(" "));
            return Some((fields, name));
        }
        let (field, after) = rest.split_once(' ')?;
        // Dovecot drops a field with a bad key and keeps the line; so do we.
        if field.starts_with(|c: char| c.is_ascii_uppercase()) {
            fields.push(field);
        }
        rest = after.trim_start_matches(' ');
    }
}

fn parse_uid(text: &str) -> Option<u32> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u32>()
        .ok()
        .filter(|&uid| uid != 0 && uid != u32::MAX)
}

/// The UID at the start of an unusable line, if it has one.
fn leading_uid(line: &[u8]) -> Option<u32> {
    let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
    let followed_by_space = line.get(digits) == Some(&b' ');
    followed_by_space
        .then(|| {
            std::str::from_utf8(&line[..digits])
                .ok()
                .and_then(parse_uid)
        })
        .flatten()
}

/// 32 hex digits, what Dovecot accepts as a mailbox GUID.
fn is_guid(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit())
}
