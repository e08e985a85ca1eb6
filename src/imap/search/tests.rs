use std::time::SystemTime;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::search::SearchKey;

use super::addresses::address_text;
use super::{Bounds, Candidate, charset_supported, matches, needs_content};
use crate::store::{Flags, MessageMeta, test_keywords};

/// Criteria as a client sends them, parsed by imap-codec as the session's are.
fn criteria(text: &str) -> Vec<SearchKey<'static>> {
    let line = format!("a SEARCH {text}\r\n");
    let (rest, command) = CommandCodec::default()
        .decode(line.as_bytes())
        .unwrap_or_else(|err| panic!("{text:?} does not parse: {err:?}"));
    assert!(rest.is_empty());
    match command.into_static().body {
        CommandBody::Search { criteria, .. } => criteria.into_iter().collect(),
        other => panic!("not a SEARCH: {other:?}"),
    }
}

/// A search string as an IMAP literal, for 8-bit text.
fn literal(text: &str) -> String {
    format!("{{{}}}\r\n{text}", text.len())
}

/// 2024-03-15 23:30 UTC: late enough that a zone-shifted date would fall on the 16th.
fn internal_date() -> SystemTime {
    let time = chrono::NaiveDate::from_ymd_opt(2024, 3, 15)
        .and_then(|date| date.and_hms_opt(23, 30, 0))
        .expect("a valid date");
    time.and_utc().into()
}

fn meta(uid: u32, flags: Flags) -> MessageMeta {
    MessageMeta {
        uid,
        size: 1000,
        flags: flags.into(),
        internal_date: internal_date(),
        modseq: 5,
    }
}

/// Whether the one message of a one-message mailbox matches.
fn hit(search: &str, content: &[u8]) -> bool {
    let keys = criteria(search);
    let meta = meta(1, Flags::EMPTY);
    let candidate = Candidate {
        seq: 1,
        meta: &meta,
        recent: false,
        content: Some(content),
    };
    let bounds = Bounds {
        largest_seq: 1,
        largest_uid: 1,
        saved: None,
    };
    matches(&keys, &candidate, bounds)
}

/// Whether a message with `flags` and no content at hand matches: keys that need no
/// content must not look for it.
fn hit_flags(search: &str, flags: Flags) -> bool {
    hit_flags_recent(search, flags, false)
}

/// [`hit_flags`] for a message that is `\Recent` in the session or not.
fn hit_flags_recent(search: &str, flags: Flags, recent: bool) -> bool {
    hit_meta(search, &meta(1, flags), recent)
}

/// Whether the message `meta`, with no content at hand, matches.
fn hit_meta(search: &str, meta: &MessageMeta, recent: bool) -> bool {
    let keys = criteria(search);
    assert!(!needs_content(&keys), "{search} needs no content");
    let candidate = Candidate {
        seq: 1,
        meta,
        recent,
        content: None,
    };
    let bounds = Bounds {
        largest_seq: 1,
        largest_uid: 1,
        saved: None,
    };
    matches(&keys, &candidate, bounds)
}

/// The sequence numbers matching in a mailbox of ten messages with UIDs 10, 20, ... 100.
fn hits_in_ten(search: &str) -> Vec<u32> {
    let keys = criteria(search);
    let bounds = Bounds {
        largest_seq: 10,
        largest_uid: 100,
        saved: None,
    };
    (1..=10)
        .filter(|&seq| {
            let meta = meta(seq * 10, Flags::EMPTY);
            let candidate = Candidate {
                seq,
                meta: &meta,
                recent: false,
                content: None,
            };
            matches(&keys, &candidate, bounds)
        })
        .collect()
}

const PLAIN: &[u8] = b"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>\r\n\
To: \"Doe, Jane\" <jane@example.net>, bob@example.com\r\n\
Cc: carol@example.com\r\n\
Bcc: dave@example.com\r\n\
Subject: =?UTF-8?Q?Gr=C3=BCne_Wiese?= und\r\n\
\t=?ISO-8859-1?B?U29ubmU=?= heute\r\n\
Date: Mon, 1 Jan 2024 23:30:00 -0800\r\n\
X-Tag: first\r\n\
X-Empty:\r\n\
x-tag: Second Value\r\n\
\r\n\
Plain body about meadows.\r\n";

#[test]
fn system_flags_and_their_negations() {
    let keys = [
        ("ANSWERED", "UNANSWERED", Flags::ANSWERED),
        ("DELETED", "UNDELETED", Flags::DELETED),
        ("DRAFT", "UNDRAFT", Flags::DRAFT),
        ("FLAGGED", "UNFLAGGED", Flags::FLAGGED),
        ("SEEN", "UNSEEN", Flags::SEEN),
    ];
    for (set, unset, flag) in keys {
        assert!(hit_flags(set, flag), "{set}");
        assert!(!hit_flags(set, Flags::EMPTY), "{set}");
        assert!(!hit_flags(unset, flag), "{unset}");
        assert!(hit_flags(unset, Flags::EMPTY), "{unset}");
        // Another flag set changes nothing.
        let others = Flags::SEEN | Flags::DRAFT | Flags::ANSWERED;
        assert_eq!(hit_flags(set, others), others.contains(flag), "{set}");
    }
}

#[test]
fn recent_new_and_old() {
    assert!(hit_flags_recent("RECENT", Flags::SEEN, true));
    assert!(hit_flags_recent("NEW", Flags::EMPTY, true));
    assert!(
        !hit_flags_recent("NEW", Flags::SEEN, true),
        "NEW is RECENT UNSEEN"
    );
    assert!(!hit_flags_recent("OLD", Flags::EMPTY, true));
    for flags in [Flags::EMPTY, Flags::SEEN] {
        assert!(!hit_flags("RECENT", flags));
        assert!(!hit_flags("NEW", flags));
        assert!(hit_flags("OLD", flags));
    }
}

#[test]
fn keywords_match_case_insensitively() {
    let mut meta = meta(1, Flags::SEEN);
    meta.flags.keywords = test_keywords(&["$Junk", "NonJunk"]);
    let search = |text: &str| hit_meta(text, &meta, false);
    assert!(search("KEYWORD $Junk"));
    assert!(search("KEYWORD nonjunk SEEN"));
    assert!(!search("KEYWORD $Label1"));
    assert!(!search("UNKEYWORD $JUNK"));
    assert!(search("UNKEYWORD $Label1"));
    assert!(search("OR KEYWORD $Label1 KEYWORD NonJunk"));
    let long = "k".repeat(crate::store::MAX_KEYWORD_LEN + 1);
    assert!(!search(&format!("KEYWORD {long}")), "no message has it");
    // A message without keywords.
    assert!(!hit_flags("KEYWORD $Junk", Flags::SEEN));
    assert!(hit_flags("UNKEYWORD $Junk", Flags::EMPTY));
}

#[test]
fn sequence_sets_and_star() {
    assert_eq!(hits_in_ten("2:4"), [2, 3, 4]);
    assert_eq!(hits_in_ten("*"), [10]);
    assert_eq!(hits_in_ten("8:*"), [8, 9, 10]);
    assert_eq!(hits_in_ten("*:9"), [9, 10]);
    assert_eq!(hits_in_ten("1,5:3,12"), [1, 3, 4, 5]);
    assert_eq!(hits_in_ten("1:4294967295"), (1..=10).collect::<Vec<_>>());
}

#[test]
fn uid_sets_and_star() {
    assert_eq!(hits_in_ten("UID 30:50"), [3, 4, 5]);
    assert_eq!(hits_in_ten("UID 25:35"), [3]);
    assert_eq!(hits_in_ten("UID 15"), Vec::<u32>::new());
    assert_eq!(hits_in_ten("UID *"), [10]);
    assert_eq!(hits_in_ten("UID 90:*"), [9, 10]);
    // RFC 3501 section 6.4.8: `*` is the largest UID even below the range's other end.
    assert_eq!(hits_in_ten("UID 500:*"), [10]);
    assert_eq!(hits_in_ten("UID 10:* 2:3"), [2, 3]);
}

#[test]
fn internal_date_keys_use_the_utc_calendar_date() {
    assert!(hit_flags("ON 15-Mar-2024", Flags::EMPTY));
    assert!(!hit_flags("ON 16-Mar-2024", Flags::EMPTY));
    assert!(hit_flags("BEFORE 16-Mar-2024", Flags::EMPTY));
    assert!(!hit_flags("BEFORE 15-Mar-2024", Flags::EMPTY));
    assert!(hit_flags("SINCE 15-Mar-2024", Flags::EMPTY));
    assert!(hit_flags("SINCE 1-Jan-2000", Flags::EMPTY));
    assert!(!hit_flags("SINCE 16-Mar-2024", Flags::EMPTY));
}

#[test]
fn sizes_are_strict() {
    assert!(hit_flags("LARGER 999", Flags::EMPTY));
    assert!(!hit_flags("LARGER 1000", Flags::EMPTY));
    assert!(hit_flags("SMALLER 1001", Flags::EMPTY));
    assert!(!hit_flags("SMALLER 1000", Flags::EMPTY));
}

#[test]
fn not_or_and_nest() {
    let seen = Flags::SEEN;
    let flagged = Flags::FLAGGED;
    let both = Flags::SEEN | Flags::FLAGGED;
    assert!(hit_flags("NOT SEEN", flagged));
    assert!(!hit_flags("NOT NOT SEEN", flagged));
    assert!(hit_flags("OR SEEN FLAGGED", seen));
    assert!(hit_flags("OR SEEN FLAGGED", flagged));
    assert!(!hit_flags("OR SEEN FLAGGED", Flags::DRAFT));
    assert!(hit_flags("SEEN FLAGGED", both), "implicit AND");
    assert!(!hit_flags("SEEN FLAGGED", seen), "implicit AND");
    assert!(hit_flags("NOT (SEEN FLAGGED)", seen));
    assert!(!hit_flags("NOT (SEEN FLAGGED)", both));
    assert!(hit_flags("OR DRAFT (SEEN NOT FLAGGED)", seen));
    assert!(!hit_flags("OR DRAFT (SEEN NOT FLAGGED)", both));
    assert!(hit_flags("OR NOT SEEN OR DRAFT ANSWERED", flagged));
    assert!(!hit_flags("OR NOT SEEN OR DRAFT ANSWERED", seen));
    assert!(hit_flags("NOT OR SEEN (LARGER 5000)", flagged));
}

#[test]
fn which_criteria_need_content() {
    for search in ["SEEN UID 1:* 1:5 LARGER 3", "OR NEW (ON 1-Jan-2024)", "ALL"] {
        assert!(!needs_content(&criteria(search)), "{search}");
    }
    for search in [
        "OR SEEN BODY x",
        "NOT (FLAGGED SENTON 1-Jan-2024)",
        "HEADER X-A \"\"",
        "SEEN TEXT x",
        "FROM a",
        "TO a",
        "CC a",
        "BCC a",
        "SUBJECT a",
        "SENTBEFORE 1-Jan-2024",
        "SENTSINCE 1-Jan-2024",
    ] {
        assert!(needs_content(&criteria(search)), "{search}");
    }
}

#[test]
fn charsets() {
    for charset in ["UTF-8", "utf-8", "US-ASCII", "us-ascii"] {
        assert!(charset_supported(charset), "{charset}");
    }
    for charset in ["ISO-8859-1", "UTF8", "", "UTF-16"] {
        assert!(!charset_supported(charset), "{charset}");
    }
}

#[test]
fn header_by_name_any_occurrence_empty_string_means_present() {
    assert!(hit("HEADER X-Tag first", PLAIN));
    assert!(
        hit("HEADER x-TAG \"second val\"", PLAIN),
        "any of the repeats"
    );
    assert!(!hit("HEADER X-Tag third", PLAIN));
    assert!(hit("HEADER X-Tag \"\"", PLAIN));
    assert!(hit("HEADER X-Empty \"\"", PLAIN), "present though empty");
    assert!(!hit("HEADER X-Missing \"\"", PLAIN));
    assert!(
        !hit("HEADER X-Tag x-tag", PLAIN),
        "the name is not the value"
    );
    assert!(
        hit("HEADER Date \"1 Jan 2024\"", PLAIN),
        "a structured header as text"
    );
}

#[test]
fn rfc2047_subject_decoded_and_unfolded() {
    assert!(hit("SUBJECT wiese", PLAIN));
    assert!(hit(
        &format!("SUBJECT {}", literal("GRÜNE WIESE UND")),
        PLAIN
    ));
    assert!(
        hit("SUBJECT \"sonne heute\"", PLAIN),
        "B-encoded Latin-1, unfolded"
    );
    assert!(hit("SUBJECT \"und sonne\"", PLAIN), "folding undone");
    assert!(!hit("SUBJECT \"=?UTF-8?\"", PLAIN), "not the encoded form");
    assert!(!hit("SUBJECT meadows", PLAIN), "not the body");
}

#[test]
fn address_headers_include_names_and_addresses() {
    assert!(hit(&format!("FROM {}", literal("jürgen müller")), PLAIN));
    assert!(hit("FROM juergen@example.org", PLAIN));
    assert!(hit("FROM EXAMPLE.ORG", PLAIN));
    assert!(!hit("FROM jane", PLAIN));
    assert!(hit("TO \"doe, jane\"", PLAIN));
    assert!(hit("TO bob@example.com", PLAIN));
    assert!(hit("CC carol", PLAIN));
    assert!(hit("BCC dave", PLAIN));
    assert!(!hit("CC dave", PLAIN));
    assert!(!hit("BCC carol", PLAIN));
}

#[test]
fn address_keys_match_addresses_without_comments_or_folding() {
    let message = b"From: <user-from (comment)@ (comment)\r\n domain.org>\r\n\
To: =?UTF-8?Q?J=C3=BCrgen?= <J@X.org>, \"Doe, Jane\" <jane@y.example> (not a name)\r\n\
Cc: group:;, group2: (foo) ;\r\n\
Bcc: team: a@b (Al), <@r:c@d>;\r\n\
\r\n";
    assert!(hit("FROM user-from@domain.org", message));
    assert!(
        !hit("FROM comment", message),
        "a comment is no part of an address"
    );
    assert!(
        hit("HEADER From comment", message),
        "HEADER matches the field's text"
    );
    assert!(hit(&format!("TO {}", literal("jürgen <j@x.org>")), message));
    assert!(hit("TO \"doe, jane <jane@y.example>\"", message));
    assert!(!hit("TO \"not a name\"", message));
    assert!(
        hit("CC group2", message),
        "a group's name is in the envelope"
    );
    assert!(!hit("CC foo", message));
    assert!(
        hit("CC \"\"", message),
        "an empty string: the field is there"
    );
    assert!(!hit("CC MISSING", message), "no placeholder is matched");
    assert!(hit("BCC \"al <a@b>\"", message));
    assert!(hit("BCC c@d", message));
}

#[test]
fn address_text_is_names_and_mailboxes() {
    assert_eq!(
        address_text(b" <user-from (comment)@ (comment)\r\n domain.org>"),
        "user-from@domain.org"
    );
    assert_eq!(
        address_text(b"=?UTF-8?Q?J=C3=BCrgen?= <J@X.org>, \"Doe, Jane\" <jane@y> (x)"),
        "jürgen <j@x.org>, doe, jane <jane@y>"
    );
    assert_eq!(
        address_text(b"team: a@b (Al), c@d;, e@f, group2: (foo) ;, <@r:g@h>, lost"),
        "team: al <a@b>, c@d;, e@f, group2: ;, @r:g@h, lost"
    );
}

#[test]
fn hostile_address_fields_are_bounded_and_match_nothing_they_do_not_hold() {
    // Deep, yet within the 64 KiB of a field that is parsed, so that what follows counts.
    let deep = "(".repeat(30_000);
    let closed = format!("{deep}{}", ")".repeat(30_000));
    let from = |value: &str| format!("From: {value}\r\n\r\nbody\r\n").into_bytes();
    // Comments alone, however deep or unbalanced, are no address.
    for value in [
        &deep,
        &format!("g: {closed} ;"),
        ")))(((",
        &"<(".repeat(50_000),
    ] {
        assert!(!hit("FROM \"(\"", &from(value)), "{}", &value[..10]);
        assert!(hit("FROM \"\"", &from(value)), "the field is there");
    }
    // A comment after a bare address is its name, nesting kept, as ENVELOPE has it.
    let named = from(&format!("a@b {closed}"));
    assert!(hit("FROM a@b", &named));
    assert!(hit("FROM \"))))) <a@b>\"", &named));
}

#[test]
fn body_and_text() {
    assert!(hit("BODY MEADOWS", PLAIN));
    assert!(hit("BODY \"\"", PLAIN));
    assert!(!hit("BODY wiese", PLAIN), "BODY leaves headers out");
    assert!(hit("TEXT wiese", PLAIN));
    assert!(hit("TEXT meadows", PLAIN));
    assert!(
        hit("TEXT \"x-tag: first\"", PLAIN),
        "a header line, name and value"
    );
    assert!(!hit("TEXT nowhere", PLAIN));
    assert!(hit("NOT TEXT nowhere", PLAIN));
}

#[test]
fn quoted_printable_body_in_latin1() {
    let message = b"Subject: qp\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Die Wiese ist gr=FCn und sch=\r\n\
=F6n.\r\n";
    assert!(hit(&format!("BODY {}", literal("GRÜN")), message));
    assert!(
        hit(&format!("BODY {}", literal("schön")), message),
        "soft break"
    );
    assert!(!hit("BODY gr=FCn", message), "not the encoded form");
}

#[test]
fn base64_parts_of_a_multipart() {
    let message = b"Subject: parts\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: multipart/alternative; boundary=\"b2\"\r\n\
\r\n\
--b2\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
SGVsbG8gc2VjcmV0IHdvcmxk\r\n\
--b2\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Only <b>in</b> html: gr&uuml;n</p>\r\n\
--b2--\r\n\
--b1\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
aGlkZGVuIHRyZWFzdXJl\r\n\
--b1--\r\n";
    assert!(hit("BODY \"SECRET WORLD\"", message), "base64 text/plain");
    assert!(!hit("BODY SGVsbG8", message), "not the encoded form");
    assert!(hit("BODY \"only <b>in\"", message), "the markup as sent");
    assert!(hit("BODY \"only in html\"", message), "the text as read");
    assert!(
        hit(&format!("BODY {}", literal("GRÜN")), message),
        "entities"
    );
    assert!(!hit("BODY treasure", message), "binary parts are not text");
}

#[test]
fn attached_messages_are_body() {
    let message = b"Subject: outer\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
\r\n\
See attached.\r\n\
--b\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: =?UTF-8?Q?Inner_=C3=A4pfel?=\r\n\
\r\n\
Inner words.\r\n\
--b--\r\n";
    assert!(hit("BODY \"inner words\"", message));
    assert!(hit(&format!("BODY {}", literal("ÄPFEL")), message));
    assert!(!hit("SUBJECT inner", message), "the outer headers only");
    assert!(hit("SUBJECT outer", message));
}

#[test]
fn case_folding_is_unicode() {
    let message = "Subject: Ψάρι ΟΔΟΣ\r\n\r\nStraße GRÜN ÉTÉ οδοσημα\r\n".as_bytes();
    assert!(hit(&format!("BODY {}", literal("grün")), message));
    assert!(hit(&format!("BODY {}", literal("été")), message));
    assert!(hit(&format!("BODY {}", literal("STRAßE")), message));
    assert!(hit(&format!("SUBJECT {}", literal("ψάρι")), message));
    // A final sigma folds as any other, alone or inside a word.
    assert!(hit(&format!("SUBJECT {}", literal("οδος")), message));
    assert!(hit(&format!("BODY {}", literal("ΟΔΟΣ")), message));
}

#[test]
fn sent_dates_in_the_headers_own_zone() {
    // 1 Jan 2024 23:30 -0800 is 2 Jan in UTC; the date as written counts.
    assert!(hit("SENTON 1-Jan-2024", PLAIN));
    assert!(!hit("SENTON 2-Jan-2024", PLAIN));
    assert!(hit("SENTBEFORE 2-Jan-2024", PLAIN));
    assert!(!hit("SENTBEFORE 1-Jan-2024", PLAIN));
    assert!(hit("SENTSINCE 1-Jan-2024", PLAIN));
    assert!(!hit("SENTSINCE 2-Jan-2024", PLAIN));
}

#[test]
fn no_usable_date_matches_no_sent_key() {
    let undated = b"Subject: undated\r\n\r\nbody\r\n";
    let unparsable = b"Date: some day soon\r\nSubject: x\r\n\r\nbody\r\n";
    let impossible = b"Date: Fri, 31 Feb 2024 10:00:00 +0000\r\n\r\nbody\r\n";
    for message in [&undated[..], unparsable, impossible] {
        for key in [
            "SENTBEFORE 1-Jan-2100",
            "SENTON 1-Jan-2024",
            "SENTSINCE 1-Jan-1900",
        ] {
            assert!(!hit(key, message), "{key}");
            assert!(hit(&format!("NOT {key}"), message), "NOT {key}");
        }
    }
}

#[test]
fn last_header_without_a_line_break() {
    assert!(hit(
        "SUBJECT last",
        b"From: a@example.org\r\nSubject: the last"
    ));
    assert!(!hit(
        "BODY last",
        b"From: a@example.org\r\nSubject: the last"
    ));
}

#[test]
fn garbage_matches_no_text_key_and_never_panics() {
    let garbage: [&[u8]; 6] = [
        b"",
        b"\0\xff\xfe\r\n\r\n\x80",
        b"no header here at all",
        b":\r\n:\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
        b"Subject: =?UTF-8?B?////?= =?x?q?=?=\r\nDate: 99 Foo 99999 99:99:99 +9999\r\n",
    ];
    for content in garbage {
        assert!(!hit("BODY x", content));
        assert!(hit("NOT HEADER X-Nothing \"\"", content));
        assert!(!hit("SENTON 1-Jan-2024", content));
        assert!(hit("UNSEEN NOT TEXT zzz", content));
    }
    // Mutations of real messages, reproducible.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds: [&[u8]; 2] = [PLAIN, b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogaGkNCg0KYm9keQ==\r\n--b--\r\n"];
    let keys = criteria("OR FROM j (OR TEXT u (OR SENTON 1-Jan-2024 HEADER X-Tag a))");
    let meta = meta(1, Flags::EMPTY);
    let bounds = Bounds {
        largest_seq: 1,
        largest_uid: 1,
        saved: None,
    };
    for round in 0..2000 {
        let mut content = seeds[round % seeds.len()].to_vec();
        for _ in 0..1 + random() % 6 {
            let at = random() as usize % (content.len() + 1);
            let byte = random().to_le_bytes()[0];
            match random() % 3 {
                0 if at < content.len() => drop(content.remove(at)),
                1 => content.insert(at, b"\r\n:=?-\t"[usize::from(byte) % 7]),
                _ if at < content.len() => content[at] = byte,
                _ => content.push(byte),
            }
        }
        let candidate = Candidate {
            seq: 1,
            meta: &meta,
            recent: false,
            content: Some(&content),
        };
        let _ = matches(&keys, &candidate, bounds);
    }
}

#[test]
fn missing_content_matches_no_text_key() {
    let keys = criteria("BODY x");
    let meta = meta(1, Flags::EMPTY);
    let candidate = Candidate {
        seq: 1,
        meta: &meta,
        recent: false,
        content: None,
    };
    let bounds = Bounds {
        largest_seq: 1,
        largest_uid: 1,
        saved: None,
    };
    assert!(!matches(&keys, &candidate, bounds));
}
