//! FETCH responses as a client reads them: rendered, then encoded by imap-codec.

use std::num::NonZeroU32;
use std::time::{Duration, UNIX_EPOCH};

use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::{CommandCodec, ResponseCodec};

use super::FetchPlan;
use crate::store::{Flags, MessageMeta, rfc822_size};

/// The plan for `FETCH 1 (<items>)` (or UID FETCH).
pub(super) fn plan(items: &str, uid: bool) -> FetchPlan {
    let command = format!("a {}FETCH 1 {items}\r\n", if uid { "UID " } else { "" });
    let (_, command) = CommandCodec::default()
        .decode(command.as_bytes())
        .unwrap_or_else(|err| panic!("{items}: {err:?}"));
    match command.body {
        CommandBody::Fetch {
            macro_or_item_names,
            uid: parsed_uid,
            ..
        } => {
            assert_eq!(parsed_uid, uid);
            FetchPlan::new(&macro_or_item_names, uid)
        }
        other => panic!("not a FETCH: {other:?}"),
    }
}

pub(super) fn meta(message: &[u8], flags: Flags) -> MessageMeta {
    MessageMeta {
        uid: 7,
        size: rfc822_size(message),
        flags: flags.into(),
        internal_date: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        modseq: 12,
    }
}

/// The untagged response to `FETCH 1 <items>` for `message`, as sent.
pub(super) fn fetch(message: &[u8], items: &str) -> String {
    let plan = plan(items, false);
    let content = plan.needs_content().then_some(message);
    let items = plan.render(&meta(message, Flags::SEEN), content, false, false);
    encode(items)
}

fn encode(items: Vec1<MessageDataItem<'static>>) -> String {
    let bytes = encode_bytes(items);
    // What was sent must read back: the encoding is valid IMAP, whatever the message held.
    if let Err(err) = ResponseCodec::default().decode(&bytes) {
        panic!("{err:?}: {}", String::from_utf8_lossy(&bytes));
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(super) fn encode_bytes(items: Vec1<MessageDataItem<'static>>) -> Vec<u8> {
    let response = Response::Data(Data::Fetch {
        seq: NonZeroU32::MIN,
        items,
    });
    ResponseCodec::default().encode(&response).dump()
}

pub(super) fn literal(text: &str) -> String {
    format!("{{{}}}\r\n{text}", text.len())
}

const SIMPLE: &[u8] = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>\r\n\
Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n \
=?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=\r\n\
To: Friends: a@example.com, \"B. Smith\" <b@example.com>;, c@example.org\r\n\
Cc: undisclosed-recipients:;\r\n\
Message-ID: <B27397-0100000@cac.washington.edu>\r\n\
\r\n\
Hello\r\n";

#[test]
fn envelope_keeps_encoded_words_and_renders_groups() {
    let keld = "((\"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=\" NIL \"keld\" \"dkuug.dk\"))";
    let expected = format!(
        "* 1 FETCH (ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \
         \"=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?= =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=\" \
         {keld} {keld} {keld} \
         ((NIL NIL \"Friends\" NIL)(NIL NIL \"a\" \"example.com\")(\"B. Smith\" NIL \"b\" \"example.com\")(NIL NIL NIL NIL)(NIL NIL \"c\" \"example.org\")) \
         ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) \
         NIL NIL \"<B27397-0100000@cac.washington.edu>\"))\r\n"
    );
    assert_eq!(fetch(SIMPLE, "ENVELOPE"), expected);
}

#[test]
fn envelope_groups_of_nothing_or_only_comments_hold_no_address() {
    let message = b"From: <user-from (comment)@ (comment) domain.org>\r\n\
To: \"Team: A; B\" <a@b.example>, \"list:\": (x (y)) c@d.example (Carl) , e@f.example\r\n\
Cc: group:;, group2: (foo) ;\r\n\
Bcc: open: (never closed\r\n\
\r\n";
    let from = "((NIL NIL \"user-from\" \"domain.org\"))";
    assert_eq!(
        fetch(message, "ENVELOPE"),
        format!(
            "* 1 FETCH (ENVELOPE (NIL NIL {from} {from} {from} \
             ((\"Team: A; B\" NIL \"a\" \"b.example\")(NIL NIL \"list:\" NIL)\
             (\"Carl\" NIL \"c\" \"d.example\")(NIL NIL \"e\" \"f.example\")(NIL NIL NIL NIL)) \
             ((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)) \
             ((NIL NIL \"open\" NIL)(NIL NIL NIL NIL)) \
             NIL NIL))\r\n"
        )
    );
}

#[test]
fn envelope_parts_an_address_lacks_are_named_missing() {
    let message = b"To: undisclosed, <@example.org>\r\n\r\n";
    assert!(
        fetch(message, "ENVELOPE").contains(
            "((NIL NIL \"undisclosed\" \"MISSING_DOMAIN\")(NIL NIL \"MISSING_MAILBOX\" \"example.org\"))"
        ),
        "{}",
        fetch(message, "ENVELOPE")
    );
}

#[test]
fn envelope_of_deeply_nested_comments_is_served() {
    // 100,000 levels, in every address field and the subject: no recursion anywhere on
    // the way (mail-parser parses the same header for BODYSTRUCTURE), and no address.
    let deep = "(".repeat(100_000);
    let message = format!(
        "From: {deep}\r\nTo: g: {deep}\r\nSubject: {deep}\r\nContent-Type: text/plain; x={deep}\r\n\r\nbody\r\n"
    );
    let response = fetch(message.as_bytes(), "(ENVELOPE BODYSTRUCTURE)");
    assert!(
        response.contains(" NIL NIL NIL ((NIL NIL \"g\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL)"),
        "{}",
        &response[response.len() - 300..]
    );
}

#[test]
fn envelope_strings_with_8bit_or_quotes_stay_valid() {
    let message =
        "Subject: Grüße \"quoted\" \\ back\r\nFrom: \"A \\\"B\\\"\" <a@b>\r\nSender: \r\n\r\n";
    let response = fetch(message.as_bytes(), "ENVELOPE");
    let subject = "Grüße \"quoted\" \\ back";
    assert_eq!(
        response,
        format!(
            "* 1 FETCH (ENVELOPE (NIL {} ((\"A \\\"B\\\"\" NIL \"a\" \"b\")) ((\"A \\\"B\\\"\" NIL \"a\" \"b\")) ((\"A \\\"B\\\"\" NIL \"a\" \"b\")) NIL NIL NIL NIL NIL))\r\n",
            literal(subject)
        )
    );
}

#[test]
fn simple_message_structure_and_part_one() {
    assert_eq!(
        fetch(SIMPLE, "(BODYSTRUCTURE BODY)"),
        "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 7 1 NIL NIL NIL NIL) \
         BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 7 1))\r\n"
    );
    // A non-multipart message's part 1 is its body; 1.MIME is the message header.
    assert_eq!(
        fetch(SIMPLE, "(BODY.PEEK[1] BODY.PEEK[TEXT] BODY.PEEK[2])"),
        format!(
            "* 1 FETCH (BODY[1] {} BODY[TEXT] {} BODY[2] NIL)\r\n",
            literal("Hello\r\n"),
            literal("Hello\r\n")
        )
    );
}

const MIXED: &[u8] = b"From: a@example.com\r\n\
Subject: mixed\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
This is a multi-part message in MIME format.\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8; format=flowed\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Hello there=\r\n friend\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Hello</p>\r\n\
--inner--\r\n\
\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"report.pdf\"\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-ID: <pdf@x>\r\n\
Content-Description: The report\r\n\
Content-Language: en\r\n\
Content-Location: http://example.com/report.pdf\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--outer--\r\n";

#[test]
fn multipart_bodystructure_is_exact() {
    assert_eq!(
        fetch(MIXED, "BODYSTRUCTURE"),
        "* 1 FETCH (BODYSTRUCTURE (\
         ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\" \"FORMAT\" \"flowed\") NIL NIL \"QUOTED-PRINTABLE\" 21 1 NIL NIL NIL NIL)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 12 0 NIL NIL NIL NIL) \
         \"ALTERNATIVE\" (\"BOUNDARY\" \"inner\") NIL NIL NIL)\
         (\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") \"<pdf@x>\" \"The report\" \"BASE64\" 12 NIL \
         (\"ATTACHMENT\" (\"FILENAME\" \"report.pdf\")) (\"en\") \"http://example.com/report.pdf\") \
         \"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL))\r\n"
    );
    assert_eq!(
        fetch(MIXED, "BODY"),
        "* 1 FETCH (BODY (\
         ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\" \"FORMAT\" \"flowed\") NIL NIL \"QUOTED-PRINTABLE\" 21 1)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 12 0) \"ALTERNATIVE\")\
         (\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") \"<pdf@x>\" \"The report\" \"BASE64\" 12) \"MIXED\"))\r\n"
    );
}

#[test]
fn multipart_sections() {
    assert_eq!(
        fetch(
            MIXED,
            "(BODY.PEEK[1.1] BODY.PEEK[1.2] BODY.PEEK[2] BODY.PEEK[3] BODY.PEEK[1.3])"
        ),
        format!(
            "* 1 FETCH (BODY[1.1] {} BODY[1.2] {} BODY[2] {} BODY[3] NIL BODY[1.3] NIL)\r\n",
            literal("Hello there=\r\n friend"),
            literal("<p>Hello</p>"),
            literal("JVBERi0xLjQK"),
        )
    );
    let alternative = "--inner\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\nHello there=\r\n friend\r\n--inner\r\n\
        Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hello</p>\r\n--inner--\r\n";
    assert_eq!(
        fetch(MIXED, "BODY.PEEK[1]"),
        format!("* 1 FETCH (BODY[1] {})\r\n", literal(alternative))
    );
}

#[test]
fn mime_sections() {
    assert_eq!(
        fetch(
            MIXED,
            "(BODY.PEEK[1.2.MIME] BODY.PEEK[1.MIME] BODY.PEEK[4.MIME])"
        ),
        format!(
            "* 1 FETCH (BODY[1.2.MIME] {} BODY[1.MIME] {} BODY[4.MIME] NIL)\r\n",
            literal("Content-Type: text/html; charset=utf-8\r\n\r\n"),
            literal("Content-Type: multipart/alternative; boundary=inner\r\n\r\n"),
        )
    );
    assert_eq!(
        fetch(SIMPLE, "BODY.PEEK[1.MIME]"),
        format!(
            "* 1 FETCH (BODY[1.MIME] {})\r\n",
            literal(std::str::from_utf8(&SIMPLE[..SIMPLE.len() - 7]).unwrap())
        )
    );
}

const FORWARD: &[u8] = b"From: outer@example.com\r\n\
Subject: fwd\r\n\
Content-Type: multipart/mixed; boundary=b1\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
See attached.\r\n\
--b1\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: inner@example.com\r\n\
Subject: inner\r\n\
\r\n\
Inner body\r\n\
--b1\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: nested multipart\r\n\
Content-Type: multipart/alternative; boundary=b2\r\n\
\r\n\
--b2\r\n\
\r\n\
plain\r\n\
--b2\r\n\
Content-Type: text/html\r\n\
\r\n\
<b>html</b>\r\n\
--b2--\r\n\
--b1--\r\n";

#[test]
fn encapsulated_message_sections() {
    let inner_header = "From: inner@example.com\r\nSubject: inner\r\n\r\n";
    assert_eq!(
        fetch(
            FORWARD,
            "(BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] BODY.PEEK[2] BODY.PEEK[2.MIME] BODY.PEEK[2.2])"
        ),
        format!(
            "* 1 FETCH (BODY[2.HEADER] {} BODY[2.TEXT] {} BODY[2.1] {} BODY[2] {} BODY[2.MIME] {} BODY[2.2] NIL)\r\n",
            literal(inner_header),
            literal("Inner body"),
            literal("Inner body"),
            literal(&format!("{inner_header}Inner body")),
            literal("Content-Type: message/rfc822\r\n\r\n"),
        )
    );
    assert_eq!(
        fetch(
            FORWARD,
            "(BODY.PEEK[3.1] BODY.PEEK[3.2] BODY.PEEK[3.2.MIME] BODY.PEEK[3.HEADER.FIELDS (SUBJECT)])"
        ),
        format!(
            "* 1 FETCH (BODY[3.1] {} BODY[3.2] {} BODY[3.2.MIME] {} BODY[3.HEADER.FIELDS (SUBJECT)] {})\r\n",
            literal("plain"),
            literal("<b>html</b>"),
            literal("Content-Type: text/html\r\n\r\n"),
            literal("Subject: nested multipart\r\n\r\n"),
        )
    );
}

#[test]
fn encapsulated_message_structure() {
    assert_eq!(
        fetch(FORWARD, "BODYSTRUCTURE"),
        "* 1 FETCH (BODYSTRUCTURE (\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 13 0 NIL NIL NIL NIL)\
         (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 53 \
         (NIL \"inner\" ((NIL NIL \"inner\" \"example.com\")) ((NIL NIL \"inner\" \"example.com\")) \
         ((NIL NIL \"inner\" \"example.com\")) NIL NIL NIL NIL NIL) \
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)\
         (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 146 \
         (NIL \"nested multipart\" NIL NIL NIL NIL NIL NIL NIL NIL) \
         ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 0 NIL NIL NIL NIL)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 11 0 NIL NIL NIL NIL) \
         \"ALTERNATIVE\" (\"BOUNDARY\" \"b2\") NIL NIL NIL) 10 NIL NIL NIL NIL) \
         \"MIXED\" (\"BOUNDARY\" \"b1\") NIL NIL NIL))\r\n"
    );
}

#[test]
fn header_fields_and_not() {
    let message =
        b"From: a@b\r\nX-Spam: yes\r\nsubject: folded\r\n line\r\nTo: c@d\r\n\r\nbody\r\n";
    assert_eq!(
        fetch(
            message,
            "(BODY.PEEK[HEADER.FIELDS (From Subject)] BODY.PEEK[HEADER.FIELDS.NOT (FROM \"subject\")])"
        ),
        format!(
            "* 1 FETCH (BODY[HEADER.FIELDS (From Subject)] {} BODY[HEADER.FIELDS.NOT (FROM \"subject\")] {})\r\n",
            literal("From: a@b\r\nsubject: folded\r\n line\r\n\r\n"),
            literal("X-Spam: yes\r\nTo: c@d\r\n\r\n"),
        )
    );
    assert_eq!(
        fetch(message, "BODY.PEEK[HEADER.FIELDS (Nope)]"),
        format!(
            "* 1 FETCH (BODY[HEADER.FIELDS (Nope)] {})\r\n",
            literal("\r\n")
        )
    );
    // A message without body and blank line gets no blank line either.
    assert_eq!(
        fetch(b"From: a@b\r\n", "BODY.PEEK[HEADER.FIELDS (FROM)]"),
        format!(
            "* 1 FETCH (BODY[HEADER.FIELDS (FROM)] {})\r\n",
            literal("From: a@b\r\n")
        )
    );
}

#[test]
fn partial_fetches() {
    let whole = std::str::from_utf8(SIMPLE).unwrap();
    assert_eq!(
        fetch(
            SIMPLE,
            "(BODY.PEEK[]<0.4> BODY.PEEK[TEXT]<2.100> BODY.PEEK[]<100000.10>)"
        ),
        format!(
            "* 1 FETCH (BODY[]<0> {} BODY[TEXT]<2> {} BODY[]<100000> {})\r\n",
            literal(&whole[..4]),
            literal("llo\r\n"),
            literal("")
        )
    );
    // Subsetting comes first, then the substring.
    assert_eq!(
        fetch(SIMPLE, "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]<1.8>"),
        format!(
            "* 1 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID)]<1> {})\r\n",
            literal("essage-I")
        )
    );
}

#[test]
fn rfc822_items() {
    let header = std::str::from_utf8(&SIMPLE[..SIMPLE.len() - 7]).unwrap();
    assert_eq!(
        fetch(SIMPLE, "(RFC822.HEADER RFC822.TEXT RFC822.SIZE)"),
        format!(
            "* 1 FETCH (RFC822.HEADER {} RFC822.TEXT {} RFC822.SIZE {})\r\n",
            literal(header),
            literal("Hello\r\n"),
            SIMPLE.len()
        )
    );
    assert_eq!(
        fetch(SIMPLE, "RFC822"),
        format!(
            "* 1 FETCH (RFC822 {})\r\n",
            literal(std::str::from_utf8(SIMPLE).unwrap())
        )
    );
}

#[test]
fn bare_lf_messages_are_served_and_measured_as_crlf() {
    let stored = String::from_utf8(MIXED.to_vec())
        .unwrap()
        .replace("\r\n", "\n");
    let stored = stored.as_bytes();
    let size = rfc822_size(stored);
    assert_eq!(size, MIXED.len() as u64);

    let response = fetch(stored, "(RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE)");
    let crlf = fetch(MIXED, "(RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE)");
    assert_eq!(response, crlf);
    assert!(response.starts_with(&format!(
        "* 1 FETCH (RFC822.SIZE {size} BODY[] {{{size}}}\r\n"
    )));
    assert_eq!(
        fetch(stored, "BODY.PEEK[1.1]"),
        format!(
            "* 1 FETCH (BODY[1.1] {})\r\n",
            literal("Hello there=\r\n friend")
        )
    );
}

#[test]
fn plan_flags() {
    let fast = plan("FAST", false);
    assert!(!fast.needs_content());
    assert!(!fast.marks_seen());
    let all = plan("ALL", false);
    assert!(all.needs_content());
    assert!(!plan("(BODY.PEEK[] RFC822.HEADER)", false).marks_seen());
    assert!(plan("BODY[TEXT]", false).marks_seen());
    assert!(plan("RFC822", false).marks_seen());
    assert!(plan("RFC822.TEXT", false).marks_seen());
    assert!(plan("(BODY.PEEK[1] BODY[1])", false).marks_seen());
    assert!(!plan("(UID FLAGS INTERNALDATE RFC822.SIZE)", true).needs_content());

    let message = SIMPLE;
    let meta = meta(message, Flags::SEEN | Flags::FLAGGED);
    // UID FETCH: UID first even when not asked; FLAGS added when the caller set \Seen.
    let items = plan("(RFC822.SIZE BODY[]<0.1> BODY.PEEK[]<0.1>)", true).render(
        &meta,
        Some(message),
        true,
        false,
    );
    assert_eq!(
        encode(items),
        format!(
            "* 1 FETCH (UID 7 RFC822.SIZE {} BODY[]<0> {{1}}\r\nD FLAGS (\\Flagged \\Seen))\r\n",
            message.len()
        )
    );
    let items = plan("FAST", false).render(&meta, None, false, false);
    assert_eq!(
        encode(items),
        format!(
            "* 1 FETCH (FLAGS (\\Flagged \\Seen) INTERNALDATE \"14-Nov-2023 22:13:20 +0000\" RFC822.SIZE {})\r\n",
            message.len()
        )
    );
}

#[test]
fn unreadable_mime_degrades_to_text() {
    // A multipart without its boundary, and a base64 message/rfc822.
    let message = b"Content-Type: multipart/mixed; boundary=zz\r\n\r\nno parts here\r\n";
    assert_eq!(
        fetch(message, "BODY"),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 15 1))\r\n"
    );
    let message = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp5DQo=\r\n--x--\r\n";
    assert_eq!(
        fetch(message, "BODY"),
        "* 1 FETCH (BODY ((\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 24) \"MIXED\"))\r\n"
    );
}

/// A tiny deterministic generator: garbage without a dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u8
    }
}

#[test]
fn garbage_does_not_panic() {
    let items = "(FLAGS UID ENVELOPE BODY BODYSTRUCTURE RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE \
        BODY.PEEK[] BODY.PEEK[1] BODY.PEEK[1.2.3] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[1.MIME] \
        BODY.PEEK[HEADER.FIELDS (From To)] BODY.PEEK[1.HEADER.FIELDS.NOT (X)] BODY.PEEK[TEXT]<3.5>)";
    let plan = plan(items, true);
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n".to_vec(),
        b"\n\n\n".to_vec(),
        b"no header at all".to_vec(),
        b":\r\n:\r\n\r\n".to_vec(),
        b"From: <<<@@@>>> \"unterminated (comment\r\nTo: ;;;:::,,,\r\n\r\n".to_vec(),
        b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n----\r\n".to_vec(),
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n--a--".to_vec(),
        b"Content-Type: message/rfc822\r\n\r\n".to_vec(),
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n".to_vec(),
        b"Content-Type: text/plain; charset*0*=x; charset*99999999999=y; (((\r\n\r\n\0\0\0".to_vec(),
        b"Content-Disposition: ; ; =; a=\"\\\r\nContent-Language: ,,,(\r\n\r\n".to_vec(),
    ];
    // Deep nesting, both kinds: imap-codec's own decoder stops at 8 levels, so these are
    // only encoded.
    let mut deep_inputs = Vec::new();
    let mut deep = Vec::new();
    for _ in 0..5_000 {
        deep.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    deep.extend_from_slice(b"Subject: bottom\r\n\r\nbody\r\n");
    deep_inputs.push(deep);
    let mut deep = Vec::new();
    for level in 0..2_000 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n")
                .as_bytes(),
        );
    }
    deep.extend_from_slice(b"\r\nleaf\r\n");
    deep_inputs.push(deep);
    // Random bytes biased towards MIME syntax, and truncations of real messages.
    let alphabet: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"--",
        b"b",
        b"Content-Type: ",
        b"multipart/mixed; boundary=b",
        b"message/rfc822",
        b": ",
        b"\"",
        b"(",
        b")",
        b"<",
        b">",
        b"@",
        b",",
        b";",
        b"\0",
        b"\xff",
        b" ",
        b"=?",
        b"?=",
        b"From",
        b"To",
        b"Content-Transfer-Encoding: base64",
    ];
    let mut random = Lcg(42);
    for _ in 0..300 {
        let mut input = Vec::new();
        for _ in 0..usize::from(random.next()) {
            input.extend_from_slice(alphabet[usize::from(random.next()) % alphabet.len()]);
        }
        inputs.push(input);
    }
    for message in [SIMPLE, MIXED, FORWARD] {
        for cut in (0..message.len()).step_by(7) {
            inputs.push(message[..cut].to_vec());
        }
    }

    for input in &inputs {
        let items = plan.render(&meta(input, Flags::EMPTY), Some(input), true, false);
        assert!(encode(items).starts_with("* 1 FETCH (UID 7 "));
    }
    for input in &deep_inputs {
        let items = plan.render(&meta(input, Flags::EMPTY), Some(input), true, false);
        assert!(encode_bytes(items).starts_with(b"* 1 FETCH (UID 7 "));
    }
}

/// Dovecot's own BODYSTRUCTURE test (src/lib-imap/test-imap-bodystructure.c), bare LFs
/// included: the same sizes, lines and fields, in uppercase, with the MD5 left NIL.
#[test]
fn matches_dovecots_bodystructure_test() {
    let message = "From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\n\
        Content-Type: multipart/mixed; boundary=\"foo\n bar\"\n\nRoot MIME prologue\n\n--foo bar\n\
        Content-Type: text/x-myown; charset=us-ascii; foo=\"quoted\\\"string\"\n\
        Content-ID: <foo@example.com>\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\
        Content-Disposition: inline; foo=bar\nContent-Description: hellodescription\n\
        Content-Language: en, fi, se\nContent-Location: http://example.com/test.txt\n\n\
        hello\n\n--foo bar\nContent-Type: message/rfc822\n\nFrom: sub@domain.org\n\
        To: sub-to1@domain.org, sub-to2@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\n\
        Subject: submsg\nContent-Type: multipart/alternative; boundary=\"sub1\"\n\n\
        Sub MIME prologue\n--sub1\nContent-Type: text/html\nContent-Transfer-Encoding: 8bit\n\n\
        <p>Hello world</p>\n\n--sub1\nContent-Type: text/plain\nContent-Transfer-Encoding: ?invalid\n\n\
        Hello another world\n\n--sub1--\nSub MIME epilogue\n\n--foo bar--\nRoot MIME epilogue\n";
    assert_eq!(
        fetch(message.as_bytes(), "BODYSTRUCTURE"),
        "* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"X-MYOWN\" (\"CHARSET\" \"us-ascii\" \"FOO\" \"quoted\\\"string\") \
         \"<foo@example.com>\" \"hellodescription\" \"7BIT\" 7 1 NIL (\"INLINE\" (\"FOO\" \"bar\")) \
         (\"en\" \"fi\" \"se\") \"http://example.com/test.txt\")\
         (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 412 (\"Sun, 12 Aug 2012 12:34:56 +0300\" \"submsg\" \
         ((NIL NIL \"sub\" \"domain.org\")) ((NIL NIL \"sub\" \"domain.org\")) ((NIL NIL \"sub\" \"domain.org\")) \
         ((NIL NIL \"sub-to1\" \"domain.org\")(NIL NIL \"sub-to2\" \"domain.org\")) NIL NIL NIL NIL) \
         ((\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"8BIT\" 20 1 NIL NIL NIL NIL)\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 21 1 NIL NIL NIL NIL) \
         \"ALTERNATIVE\" (\"BOUNDARY\" \"sub1\") NIL NIL NIL) 21 NIL NIL NIL NIL) \
         \"MIXED\" (\"BOUNDARY\" \"foo bar\") NIL NIL NIL))\r\n"
    );
}

#[test]
fn digest_parts_default_to_messages() {
    let digest = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nbody one\r\n\
        --d\r\nContent-Type: message/global\r\n\r\nSubject: two\r\n\r\nbody two\r\n--d--\r\n";
    assert_eq!(
        fetch(
            digest,
            "(BODY BODY.PEEK[1.HEADER] BODY.PEEK[1.1] BODY.PEEK[2.1])"
        ),
        format!(
            "* 1 FETCH (BODY ((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 24 \
             (NIL \"one\" NIL NIL NIL NIL NIL NIL NIL NIL) \
             (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 8 0) 2)\
             (\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 24) \"DIGEST\") \
             BODY[1.HEADER] {} BODY[1.1] {} BODY[2.1] NIL)\r\n",
            literal("Subject: one\r\n\r\n"),
            literal("body one"),
        )
    );
}

#[test]
fn nul_is_served_as_0x80() {
    let plan = plan("BODY.PEEK[TEXT]", false);
    let message = b"Subject: x\r\n\r\na\0b\r\n";
    let items = plan.render(&meta(message, Flags::EMPTY), Some(message), false, false);
    assert_eq!(
        encode_bytes(items),
        b"* 1 FETCH (BODY[TEXT] {5}\r\na\x80b\r\n)\r\n"
    );
}

#[test]
fn responses_written_from_encoded_items_are_byte_for_byte_the_rendered_ones() {
    use super::EncodedItems;
    let messages: [&[u8]; 7] = [
        SIMPLE,
        MIXED,
        FORWARD,
        b"Subject: bare\nFrom: a@b\n\nline\n",
        b"Subject: 8-bit \xc3\xa4 \"quoted\" and \\ back\r\nX: \0\r\n\r\nbody\0\r\n",
        b"",
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n--a--\r\n",
    ];
    let plans = [
        ("(FLAGS ENVELOPE)", true),
        ("(BODYSTRUCTURE)", false),
        ("(ENVELOPE BODYSTRUCTURE)", false),
        (
            "(BODYSTRUCTURE UID RFC822.SIZE ENVELOPE INTERNALDATE FLAGS)",
            false,
        ),
        ("(MODSEQ ENVELOPE FLAGS)", true),
    ];
    for message in messages {
        let encoded = EncodedItems::of(message);
        let kept = EncodedItems::from_kept(encoded.kept()).expect("its own kept form reads back");
        for (items, uid) in plans {
            let plan = plan(items, uid);
            assert!(plan.served_by_encoded(), "{items}");
            for (force_flags, recent) in [(false, false), (true, true)] {
                let meta = meta(message, Flags::SEEN | Flags::FLAGGED);
                let rendered = plan.render(&meta, Some(message), force_flags, recent);
                let expected = encode_bytes(rendered);
                for from in [&encoded, &kept] {
                    let mut written = Vec::new();
                    let seq = NonZeroU32::MIN;
                    plan.write_encoded(&mut written, seq, &meta, from, force_flags, recent);
                    assert_eq!(
                        String::from_utf8_lossy(&written),
                        String::from_utf8_lossy(&expected),
                        "{items} of {:?}",
                        String::from_utf8_lossy(message)
                    );
                }
            }
        }
    }
}

#[test]
fn only_plans_of_envelope_and_bodystructure_are_served_encoded() {
    for items in [
        "(FLAGS UID)",
        "(ENVELOPE BODY)",
        "(BODYSTRUCTURE BODY.PEEK[])",
        "FAST",
        "FULL",
    ] {
        assert!(!plan(items, true).served_by_encoded(), "{items}");
    }
    assert!(plan("(ENVELOPE)", false).served_by_encoded());
    assert!(
        plan("ALL", false).served_by_encoded(),
        "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE"
    );
}

#[test]
fn kept_items_of_another_version_or_cut_short_are_not_used() {
    use super::EncodedItems;
    let kept = EncodedItems::of(SIMPLE).kept();
    assert!(EncodedItems::from_kept(kept.slice(..kept.len() / 2)).is_none());
    assert!(EncodedItems::from_kept(bytes::Bytes::new()).is_none());
    let mut other = kept.to_vec();
    other[1] = b'0';
    assert!(EncodedItems::from_kept(other.into()).is_none());
}

#[test]
fn kept_items_carry_the_references_ids_beside_the_items() {
    use super::EncodedItems;
    let message = b"Subject: re\r\nReferences: <a@x> junk <b@x>\r\n <c@x>\r\nIn-Reply-To: <c@x>\r\n\r\nbody\r\n";
    let encoded = EncodedItems::of(message);
    let kept = EncodedItems::from_kept(encoded.kept()).expect("reads back");
    for items in [&encoded, &kept] {
        assert_eq!(items.references(), b"<a@x><b@x><c@x>");
        assert!(items.body_structure().starts_with(b"BODYSTRUCTURE ("));
        assert!(items.envelope().starts_with(b"ENVELOPE ("));
    }
    // Only the last ids of a References field of thousands are kept.
    let long: String = (0..5_000).map(|n| format!("<id{n}@x> ")).collect();
    let message = format!("References: {long}\r\n\r\nx\r\n");
    let kept = EncodedItems::of(message.as_bytes());
    let ids = kept.references().iter().filter(|&&b| b == b'<').count();
    assert_eq!(ids, 64);
    assert!(kept.references().ends_with(b"<id4999@x>"));
    assert_eq!(EncodedItems::of(SIMPLE).references(), b"");
}
