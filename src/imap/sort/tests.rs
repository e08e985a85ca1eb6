use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::extensions::sort::SortCriterion;

use super::{Key, MAX_TEXT_KEY, base_subject, keys, needs_envelope, sort};
use crate::imap::fetch::EncodedItems;
use crate::store::{Flags, MessageMeta};

/// Sort criteria as a client sends them, parsed by imap-codec as the session's are.
fn criteria(text: &str) -> Vec<SortCriterion> {
    let line = format!("a SORT ({text}) UTF-8 ALL\r\n");
    let (rest, command) = CommandCodec::default()
        .decode(line.as_bytes())
        .unwrap_or_else(|err| panic!("{text:?} does not parse: {err:?}"));
    assert!(rest.is_empty());
    match command.into_static().body {
        CommandBody::Sort { sort_criteria, .. } => sort_criteria.into_iter().collect(),
        other => panic!("not a SORT: {other:?}"),
    }
}

fn arrived(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// One message: its header lines, its arrival (seconds since the epoch) and size.
struct Message {
    headers: &'static str,
    arrival: u64,
    size: u64,
}

fn message(headers: &'static str) -> Message {
    Message {
        headers,
        arrival: 1_700_000_000,
        size: 100,
    }
}

/// The keys of one message as the session makes them: from its ENVELOPE, encoded as the
/// store keeps it and decoded again.
fn keys_of(criteria: &[SortCriterion], message: &Message) -> Box<[Key]> {
    let meta = MessageMeta {
        uid: 1,
        size: message.size,
        flags: Flags::EMPTY.into(),
        internal_date: arrived(message.arrival),
        modseq: 1,
    };
    let raw = format!("{}\r\nbody\r\n", message.headers.replace('\n', "\r\n"));
    EncodedItems::of(raw.as_bytes())
        .with_envelope(|envelope| keys(criteria, &meta, Some(envelope)))
        .expect("an envelope this crate encoded decodes")
}

/// The sequence numbers of `messages` (numbered from 1) in the order `text` sorts them.
fn sorted(text: &str, messages: &[Message]) -> Vec<u32> {
    let criteria = criteria(text);
    let mut keyed: Vec<(u32, Box<[Key]>)> = messages
        .iter()
        .zip(1..)
        .map(|(message, seq)| (seq, keys_of(&criteria, message)))
        .collect();
    sort(&criteria, &mut keyed);
    keyed.into_iter().map(|(seq, _)| seq).collect()
}

#[test]
fn base_subjects_as_rfc_5256_defines_them() {
    let base = |subject: &str| base_subject(subject.as_bytes());
    assert_eq!(base("Hello"), "Hello");
    assert_eq!(base("Re: [fwd: Hello]  (fwd)"), "Hello");
    assert_eq!(base("Re: re:RE: x"), "x");
    assert_eq!(base("Fwd: Fw: fw[list]: x"), "x", "a blob before the colon");
    assert_eq!(base("[PATCH] x"), "x");
    assert_eq!(
        base("[PATCH]"),
        "[PATCH]",
        "a blob stays when nothing follows it"
    );
    assert_eq!(base("[list] Re: [other] Re: x"), "x");
    assert_eq!(base("Re: [list] [PATCH 2/3] x (fwd) (FWD) "), "x");
    assert_eq!(base("[Fwd: [Fwd: x]]"), "x", "nested forward wrappers");
    assert_eq!(base("  spread \t out  "), "spread out");
    assert_eq!(
        base("Reply needed"),
        "Reply needed",
        "`Re` must end in a colon"
    );
    assert_eq!(base("Re:"), "");
    assert_eq!(base(""), "");
}

#[test]
fn encoded_words_are_decoded_before_markers_are_taken_off() {
    assert_eq!(base_subject(b"=?UTF-8?Q?Re=3A_Gr=C3=BC=C3=9Fe?="), "Grüße");
    assert_eq!(
        base_subject(b"Re: =?ISO-8859-1?Q?=5Bliste=5D_caf=E9?="),
        "café",
        "a decoded blob is a blob"
    );
}

#[test]
fn many_blobs_do_not_take_quadratic_time() {
    // Every step of the RFC's loop removes one blob; scanning the whole run again each time
    // would cost some 10^10 steps here.
    let subject = "[a]".repeat(100_000) + " x";
    assert_eq!(base_subject(subject.as_bytes()), "x");
    let only_blobs = "[a]".repeat(100_000);
    assert_eq!(base_subject(only_blobs.as_bytes()), "[a]");
}

#[test]
fn subject_sorts_by_base_subject_under_ascii_casemap() {
    let messages = [
        message("Subject: Re: banana"),
        message("Subject: apple"),
        message("Subject: [list] Cherry"),
        message("Subject: _under"),
        message("From: nobody@example.com"),
    ];
    // i;ascii-casemap upper-cases: `_` (0x5F) sorts after letters; no subject is empty.
    assert_eq!(sorted("SUBJECT", &messages), [5, 2, 1, 3, 4]);
    assert_eq!(sorted("REVERSE SUBJECT", &messages), [4, 3, 1, 2, 5]);
}

#[test]
fn address_keys_use_the_first_mailbox_local_part() {
    let messages = [
        message("From: Zed <alpha@zzz.example>"),
        message("From: Alpha <Zulu@aaa.example>, a@example.com"),
        message("From: undisclosed:; beta@example.com"),
        message("To: someone@example.com"),
    ];
    assert_eq!(
        sorted("FROM", &messages),
        [4, 1, 3, 2],
        "no From sorts first"
    );
    assert_eq!(
        sorted("DISPLAYFROM", &messages),
        [4, 2, 3, 1],
        "Alpha, undisclosed (the group's name), Zed"
    );
    let to = [
        message("To: Bob <bob@x.example>\nCc: zed@x.example"),
        message("To: \"Ann\" <zoe@x.example>\nCc: amy@x.example"),
    ];
    assert_eq!(sorted("TO", &to), [1, 2]);
    assert_eq!(sorted("DISPLAYTO", &to), [2, 1]);
    assert_eq!(sorted("CC", &to), [2, 1]);
}

#[test]
fn display_names_are_decoded() {
    let messages = [
        message("From: =?UTF-8?B?w6lsaWU=?= <z@x.example>"),
        message("From: Dora <a@x.example>"),
    ];
    let criteria = criteria("DISPLAYFROM");
    assert_eq!(
        *keys_of(&criteria, &messages[0]),
        [Key::Text("E\u{301}LIE".as_bytes().into())],
        "decoded, case-mapped and decomposed"
    );
    assert_eq!(sorted("DISPLAYFROM", &messages), [2, 1]);
}

#[test]
fn date_is_the_sent_date_in_utc_or_else_the_arrival() {
    let mut late_arrival = message("Subject: no date");
    late_arrival.arrival = 1_700_000_000; // 2023-11-14 22:13:20 UTC
    let mut garbled = message("Date: not a date at all");
    garbled.arrival = 1_600_000_000; // 2020
    let messages = [
        // 2023-11-15 01:00 +0400 is 2023-11-14 21:00 UTC: before the arrival above.
        message("Date: Wed, 15 Nov 2023 01:00:00 +0400"),
        late_arrival,
        garbled,
        message("Date: Tue, 14 Nov 2023 22:00:00 +0000"),
    ];
    assert_eq!(sorted("DATE", &messages), [3, 1, 4, 2]);
    assert_eq!(sorted("REVERSE DATE", &messages), [2, 4, 1, 3]);
}

#[test]
fn arrival_and_size_need_no_envelope() {
    assert!(!needs_envelope(&criteria("ARRIVAL REVERSE SIZE")));
    assert!(needs_envelope(&criteria("SIZE DATE")));
    let mut big = message("Subject: big");
    big.size = 5000;
    big.arrival = 10;
    let mut small = message("Subject: small");
    small.size = 20;
    small.arrival = 20;
    let messages = [big, small];
    assert_eq!(sorted("SIZE", &messages), [2, 1]);
    assert_eq!(sorted("ARRIVAL", &messages), [1, 2]);
    assert_eq!(sorted("REVERSE ARRIVAL", &messages), [2, 1]);
}

#[test]
fn ties_fall_to_the_next_key_then_to_sequence_order() {
    let messages = [
        message("Subject: same\nFrom: b@x.example"),
        message("Subject: same\nFrom: a@x.example"),
        message("Subject: Same\nFrom: b@x.example"),
        message("Subject: other"),
    ];
    assert_eq!(sorted("SUBJECT FROM", &messages), [4, 2, 1, 3]);
    assert_eq!(
        sorted("REVERSE SUBJECT", &messages),
        [1, 2, 3, 4],
        "REVERSE does not reverse the sequence order of ties"
    );
}

#[test]
fn text_keys_are_bounded_and_long_texts_stay_apart() {
    let subject_key = |tail: &str| {
        let long = format!("Subject: {}{tail}", "x".repeat(10 * MAX_TEXT_KEY));
        let long: &'static str = Box::leak(long.into_boxed_str());
        let keys = keys_of(&criteria("SUBJECT"), &message(long));
        let [Key::Text(text)] = &*keys else {
            panic!("one text key: {keys:?}");
        };
        text.clone()
    };
    let (a, b) = (subject_key("a"), subject_key("b"));
    assert_eq!(a.len(), MAX_TEXT_KEY);
    assert_ne!(a, b, "texts that differ past the bound are not equal");
    assert_eq!(a, subject_key("A"), "and equal texts are");
}

/// RFC 5256 requires I18NLEVEL=1's collation, i;unicode-casemap (RFC 5051): accented letters
/// sort beside their base letter, in either case.
#[test]
fn text_collates_as_unicode_casemap() {
    let messages = [
        message("Subject: Zebra"),
        message("Subject: =?UTF-8?Q?=C3=89clair?="),
        message("Subject: apple"),
        message("Subject: =?UTF-8?Q?=C3=A9clair?="),
        message("Subject: ecl"),
    ];
    assert_eq!(sorted("SUBJECT", &messages), [3, 5, 2, 4, 1]);
    let [Key::Text(upper)] = &*keys_of(&criteria("SUBJECT"), &messages[1]) else {
        panic!("a text key");
    };
    let [Key::Text(lower)] = &*keys_of(&criteria("SUBJECT"), &messages[3]) else {
        panic!("a text key");
    };
    assert_eq!(upper, lower, "É and é are one letter");
}

/// RFC 5957 section 3 (and RFC 5256's "addr-mailbox of the first address"): a list that
/// starts with a group sorts by the group's name.
#[test]
fn groups_sort_by_their_name() {
    let messages = [
        message("To: undisclosed-recipients:;"),
        message("To: Bob <bob@x.example>"),
        message("To: Friends: amy@x.example;"),
    ];
    assert_eq!(sorted("DISPLAYTO", &messages), [2, 3, 1]);
    assert_eq!(sorted("TO", &messages), [2, 3, 1]);
}
