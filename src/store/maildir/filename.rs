//! Maildir file names: `<base>:2,<info letters>`, where the base never changes once a message
//! has a UID (the UID list maps UIDs to bases) and the info letters carry the flags.
//!
//! Bases this store writes follow Dovecot:
//! `<secs>.M<micros>P<pid>Q<counter>.<hostname>,S=<size>,W=<rfc822 size>`, so a snapshot
//! learns a message's RFC 822 size from its name without reading it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::Flags;
use crate::store::keyword_table::{SlotMask, bit};

/// Separates the base from the info in a file name in `cur/`.
const INFO_SEPARATOR: &str = ":2,";

/// Whether a file name in `cur/` can be a message's: hidden files are not (other tools keep
/// state there), and a control character (a line break above all) would break the
/// one-line-per-message UID list.
pub(super) fn is_message_name(name: &str) -> bool {
    !name.starts_with('.') && !name.chars().any(char::is_control) && !split(name).0.is_empty()
}

/// Splits a file name into its base and its info letters (`None` if the name has no
/// `:2,` info, as in `new/`, or an info of another version).
pub(super) fn split(name: &str) -> (&str, Option<&str>) {
    match name.split_once(':') {
        Some((base, info)) => (base, info.strip_prefix("2,")),
        None => (name, None),
    }
}

/// The `,<key>=<number>` field of a base (`key` is `S` or `W`).
pub(super) fn size_field(base: &str, key: char) -> Option<u64> {
    base.split(',').skip(1).find_map(|field| {
        let value = field.strip_prefix(key)?.strip_prefix('=')?;
        value.parse().ok()
    })
}

/// A base with the `,S=` and `,W=` fields added where missing.
pub(super) fn with_size_fields(base: &str, size: u64, rfc822_size: u64) -> String {
    let mut out = base.to_owned();
    if size_field(base, 'S').is_none() {
        out.push_str(&format!(",S={size}"));
    }
    if size_field(base, 'W').is_none() {
        out.push_str(&format!(",W={rfc822_size}"));
    }
    out
}

/// The file name for `base` with info `letters`.
pub(super) fn full_name(base: &str, letters: &str) -> String {
    format!("{base}{INFO_SEPARATOR}{letters}")
}

/// The keyword letters (`a` to `z`) of info letters, as slots: bit 0 is `a`.
pub(super) fn keyword_mask(info: &str) -> SlotMask {
    info.bytes()
        .filter(u8::is_ascii_lowercase)
        .fold(0, |mask, letter| mask | bit(usize::from(letter - b'a')))
}

/// The info letters for the system flags `system` and the keyword letters `keywords`,
/// keeping from `old` the letters that no flag stands for: `P` (passed) and the keyword
/// letters in `kept`. Sorted, as Maildir requires and Dovecot writes them: the uppercase
/// letters in ASCII order, then the lowercase ones.
pub(super) fn info_letters(
    old: Option<&str>,
    system: Flags,
    keywords: SlotMask,
    kept: SlotMask,
) -> String {
    let old = old.unwrap_or("");
    let keywords = keywords | (keyword_mask(old) & kept);
    let mut letters: Vec<char> = system.maildir_letters().chars().collect();
    if old.contains('P') {
        letters.push('P');
    }
    letters.sort_unstable();
    letters.extend(
        (b'a'..=b'z')
            .filter(|&letter| keywords & bit(usize::from(letter - b'a')) != 0)
            .map(char::from),
    );
    letters.into_iter().collect()
}

/// A name no other delivery uses: time, process and a per-process counter (unique in this
/// process) plus the host name (unique across hosts sharing the directory, as on NFS).
pub(super) fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed) + 1,
        hostname(),
    )
}

/// A base for a new message of `size` bytes and the given RFC 822 size.
pub(super) fn unique_base(size: u64, rfc822_size: u64) -> String {
    base_with_sizes(&unique_token(), size, rfc822_size)
}

/// The base of a message named `token` (from [`unique_token`]) once its sizes are known.
pub(super) fn base_with_sizes(token: &str, size: u64, rfc822_size: u64) -> String {
    format!("{token},S={size},W={rfc822_size}")
}

/// The host name, escaped as Maildir requires (`/` and `:` would break the name; `,` would
/// start a bogus field).
fn hostname() -> &'static str {
    static HOSTNAME: OnceLock<String> = OnceLock::new();
    HOSTNAME.get_or_init(|| escape_hostname(raw_hostname()))
}

/// The host name as the kernel has it (empty if unknown): what Dovecot writes in its lock
/// files, so that a lock of a process that died on this host can be told stale.
pub(super) fn raw_hostname() -> &'static str {
    static RAW: OnceLock<String> = OnceLock::new();
    RAW.get_or_init(|| {
        let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        raw.trim().to_owned()
    })
}

fn escape_hostname(raw: &str) -> String {
    if raw.is_empty() {
        return "localhost".to_owned();
    }
    raw.chars()
        .map(|c| match c {
            '/' => "\\057".to_owned(),
            ':' => "\\072".to_owned(),
            ',' => "\\054".to_owned(),
            c if c.is_control() || c.is_whitespace() => "_".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any system flags and keyword letters come back from the name they are written in,
        /// in the order Dovecot writes: uppercase in ASCII order, then lowercase.
        #[test]
        fn info_letters_round_trip(system in 0u8..32, keywords in 0u32..(1 << 26), old_p: bool) {
            let flags = Flags::from_maildir_letters(
                &"DFRST"
                    .chars()
                    .enumerate()
                    .filter(|(i, _)| system & (1 << i) != 0)
                    .map(|(_, c)| c)
                    .collect::<String>(),
            );
            let old = if old_p { Some("P") } else { None };
            let letters = info_letters(old, flags, keywords, 0);
            proptest::prop_assert_eq!(Flags::from_maildir_letters(&letters), flags);
            proptest::prop_assert_eq!(keyword_mask(&letters), keywords);
            proptest::prop_assert_eq!(letters.contains('P'), old_p);
            let (upper, lower): (Vec<char>, Vec<char>) =
                letters.chars().partition(char::is_ascii_uppercase);
            proptest::prop_assert!(upper.is_sorted() && lower.is_sorted());
            proptest::prop_assert!(letters.starts_with(&upper.iter().collect::<String>()));
        }
    }

    #[test]
    fn splits_names() {
        assert_eq!(split("123.abc,S=5:2,FS"), ("123.abc,S=5", Some("FS")));
        assert_eq!(split("123.abc"), ("123.abc", None));
        assert_eq!(split("123.abc:2,"), ("123.abc", Some("")));
        assert_eq!(split("123.abc:1,xyz"), ("123.abc", None));
        assert!(!is_message_name(".hidden"));
        assert!(!is_message_name(":2,S"));
        assert!(!is_message_name("1.2.host\r"));
        assert!(is_message_name("1.2.host"));
    }

    #[test]
    fn size_fields() {
        let base = unique_base(10, 12);
        assert_eq!(size_field(&base, 'S'), Some(10));
        assert_eq!(size_field(&base, 'W'), Some(12));
        assert_eq!(size_field("1.2.host", 'W'), None);
        assert_eq!(with_size_fields("1.2.host", 3, 4), "1.2.host,S=3,W=4");
        assert_eq!(with_size_fields("1.2.host,S=3", 3, 4), "1.2.host,S=3,W=4");
        assert_eq!(with_size_fields(&base, 1, 1), base);
    }

    #[test]
    fn letters_sorted_system_first() {
        let flags = Flags::SEEN | Flags::FLAGGED;
        assert_eq!(info_letters(None, flags, 0, 0), "FS");
        assert_eq!(info_letters(None, flags, bit(1) | bit(0), 0), "FSab");
        assert_eq!(info_letters(Some("S"), Flags::EMPTY, 0, 0), "");
        assert_eq!(keyword_mask("RSabz"), bit(0) | bit(1) | bit(25));
    }

    #[test]
    fn old_keyword_letters_go_unless_kept_and_passed_stays() {
        let flags = Flags::SEEN | Flags::FLAGGED;
        // `a` and `c` are replaced by `b`; `c` stays if its name is foreign.
        assert_eq!(info_letters(Some("aRTPc"), flags, bit(1), 0), "FPSb");
        assert_eq!(info_letters(Some("aRTPc"), flags, bit(1), bit(2)), "FPSbc");
    }

    #[test]
    fn unique_and_escaped() {
        assert_ne!(unique_token(), unique_token());
        assert_eq!(escape_hostname("a/b:c,d"), "a\\057b\\072c\\054d");
        assert_eq!(escape_hostname(""), "localhost");
        assert!(!hostname().contains(['/', ':', ',']));
    }
}
