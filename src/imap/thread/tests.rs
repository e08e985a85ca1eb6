use std::num::NonZeroU32;
use std::time::{Duration, UNIX_EPOCH};

use imap_codec::imap_types::extensions::thread::Thread;

use super::message_id::{Ids, MAX_ID, MAX_REFERENCES};
use super::tree::{self, MAX_NESTING, Node};
use super::{Fields, Message, References, ordered_subject};
use crate::store::{Flags, MessageMeta};

/// The `* THREAD` answer's lists as they go on the wire.
fn wire(threads: &[Thread]) -> String {
    threads.iter().map(ToString::to_string).collect()
}

fn number(n: usize) -> NonZeroU32 {
    NonZeroU32::new(u32::try_from(n).unwrap()).unwrap()
}

/// A message's header lines (`\n`-separated) as stored, with a body.
fn raw(headers: &str) -> Vec<u8> {
    format!("{}\r\n\r\nbody\r\n", headers.replace('\n', "\r\n")).into_bytes()
}

/// Message number `n` (arrived at second `n`) and its ids, read from its header as the
/// session reads it.
fn read(n: usize, headers: &str) -> (Message, Ids) {
    let meta = MessageMeta {
        uid: 1,
        size: 100,
        flags: Flags::EMPTY.into(),
        internal_date: UNIX_EPOCH + Duration::from_secs(n as u64),
        modseq: 1,
    };
    let bytes = raw(headers);
    let fields = Fields::of_header(&bytes);
    (Message::new(number(n), &meta, &fields), fields.ids())
}

/// THREAD=REFERENCES over messages given by their header lines, numbered from 1.
fn references(messages: &[&str]) -> String {
    let mut threader = References::default();
    for (n, headers) in messages.iter().enumerate() {
        let (message, ids) = read(n + 1, headers);
        threader.add(message, ids);
    }
    wire(&threader.threads())
}

/// THREAD=ORDEREDSUBJECT over messages given by their header lines, numbered from 1.
fn ordered(messages: &[&str]) -> String {
    let messages: Vec<Message> = messages
        .iter()
        .enumerate()
        .map(|(n, headers)| read(n + 1, headers).0)
        .collect();
    wire(&ordered_subject(&messages))
}

#[test]
fn lists_take_rfc_5256_shapes() {
    let leaf = |n: usize| Node {
        number: Some(number(n)),
        children: Vec::new(),
    };
    // (3 6 (4 23)(44 7 96)) from RFC 5256 section 4, and a lone message, and a dummy with
    // two children (a thread whose first message is missing).
    let mut nodes: Vec<Node> = [3, 6, 4, 23, 44, 7, 96, 9, 10, 11]
        .into_iter()
        .map(leaf)
        .collect();
    nodes[0].children = vec![1];
    nodes[1].children = vec![2, 4];
    nodes[2].children = vec![3];
    nodes[4].children = vec![5];
    nodes[5].children = vec![6];
    nodes.push(Node {
        number: None,
        children: vec![8, 9],
    });
    nodes.push(Node::default());
    let roots = [0, 7, 10, 11];
    assert_eq!(
        wire(&tree::threads(&nodes, &roots)),
        "(3 6 (4 23)(44 7 96))(9)((10)(11))",
        "a dummy without children is no list"
    );
}

#[test]
fn ordered_subject_groups_by_base_subject_under_the_first_message() {
    let threads = ordered(&[
        "Subject: b\nDate: Tue, 14 Nov 2023 10:00:00 +0000",
        "Subject: Re: a\nDate: Tue, 14 Nov 2023 09:00:00 +0000",
        "Subject: A\nDate: Tue, 14 Nov 2023 11:00:00 +0000",
        "Subject: RE: b\nDate: Tue, 14 Nov 2023 12:00:00 +0000",
        "Subject: [list] a\nDate: Tue, 14 Nov 2023 08:00:00 +0000",
        "Subject: c\nDate: Tue, 14 Nov 2023 13:00:00 +0000",
    ]);
    // "a" (5, 2, 3 by date; base subjects compare without case) comes first: its first
    // message is the earliest. 2 and 3 are both children of 5, not a chain.
    assert_eq!(threads, "(5 (2)(3))(1 4)(6)");
}

/// Subjects compare as i;unicode-casemap: `Été` and `Re: été` are one thread, under either
/// algorithm (REFERENCES gathers them by subject when no ids link them).
#[test]
fn accented_subjects_thread_together_whatever_their_case() {
    let messages = [
        "Subject: =?UTF-8?Q?=C3=89t=C3=A9_2024?=\nDate: Tue, 14 Nov 2023 10:00:00 +0000",
        "Subject: Re: =?UTF-8?Q?=C3=A9t=C3=A9_2024?=\nDate: Tue, 14 Nov 2023 11:00:00 +0000",
    ];
    assert_eq!(ordered(&messages), "(1 2)");
    assert_eq!(references(&messages), "(1 2)");
}

#[test]
fn ordered_subject_ties_and_missing_dates() {
    // No Date: the arrival (second n) stands in; equal dates keep mailbox order.
    let threads = ordered(&[
        "Subject: x",
        "Subject: x\nDate: Thu, 01 Jan 1970 00:00:01 +0000",
        "Subject: y",
    ]);
    assert_eq!(
        threads, "(1 2)(3)",
        "a group of two is one list: parent, child"
    );
}

#[test]
fn references_follow_a_reply_chain() {
    let threads = references(&[
        "Message-ID: <a@x>\nSubject: start",
        "Message-ID: <b@x>\nIn-Reply-To: <a@x>\nSubject: Re: start",
        "Message-ID: <c@x>\nReferences: <a@x> <b@x>\nSubject: Re: start",
        "Message-ID: <d@x>\nReferences: <a@x>\nSubject: other words",
    ]);
    // 4 answers the first: a sibling of 2, both later than 1.
    assert_eq!(threads, "(1 (2 3)(4))");
}

#[test]
fn references_dummies_for_missing_parents() {
    let threads = references(&[
        // Two answers to a message that is not in the mailbox: one thread under a dummy.
        "Message-ID: <b@x>\nReferences: <gone@x>\nSubject: one",
        "Message-ID: <c@x>\nReferences: <gone@x>\nSubject: two",
        // One answer to a missing message, itself answered: the dummy is promoted away.
        "Message-ID: <e@x>\nReferences: <lost@x>\nSubject: three",
        "Message-ID: <f@x>\nReferences: <lost@x>\n  <e@x>\nSubject: four",
    ]);
    assert_eq!(threads, "((1)(2))(3 4)");
}

#[test]
fn references_gather_threads_by_base_subject() {
    let threads = references(&[
        "Message-ID: <a@x>\nSubject: lunch",
        // Its client dropped the references: "Re: lunch" joins "lunch" as its child.
        "Message-ID: <b@x>\nSubject: Re: lunch",
        // Two that are no replies, with one subject: siblings under a dummy.
        "Message-ID: <c@x>\nSubject: report",
        "Message-ID: <d@x>\nSubject: Report",
        // No subject: never gathered.
        "Message-ID: <e@x>",
        "Message-ID: <f@x>",
    ]);
    assert_eq!(threads, "(1 2)((3)(4))(5)(6)");
}

#[test]
fn references_ignore_loops() {
    let threads = references(&[
        "Message-ID: <a@x>\nReferences: <b@x>\nSubject: p",
        "Message-ID: <b@x>\nReferences: <a@x>\nSubject: q",
        // Refers to itself, and to a chain that would loop back to it.
        "Message-ID: <c@x>\nReferences: <c@x> <d@x> <c@x>\nSubject: r",
    ]);
    // 1 is b's child; b, answering a, would loop and keeps no parent.
    assert_eq!(threads, "(2 1)(3)");
}

/// RFC 5256 section 2.2: ids are compared without their quoting.
#[test]
fn references_match_ids_through_their_quoting() {
    let threads = references(&[
        "Message-ID: <\"abc\"@x.example>\nDate: Tue, 14 Nov 2023 10:00:00 +0000",
        "In-Reply-To: <abc@x.example>\nSubject: other\nDate: Tue, 14 Nov 2023 11:00:00 +0000",
    ]);
    assert_eq!(threads, "(1 2)");
}

#[test]
fn references_take_duplicate_ids_as_unique() {
    let threads = references(&[
        "Message-ID: <same@x>\nSubject: first",
        "Message-ID: <same@x>\nSubject: second",
        "Message-ID: <r@x>\nIn-Reply-To: <same@x>\nSubject: third",
    ]);
    // The answer goes to the first message with the id; the second stands alone.
    assert_eq!(threads, "(1 3)(2)");
}

#[test]
fn references_without_any_ids_stand_alone_ordered_by_date() {
    let threads = references(&[
        "Subject: late\nDate: Wed, 15 Nov 2023 10:00:00 +0000",
        "Subject: early\nDate: Mon, 13 Nov 2023 10:00:00 +0000",
        "Subject: middle\nDate: Tue, 14 Nov 2023 10:00:00 +0200",
        "Subject: malformed ids\nMessage-ID: no-brackets@x\nReferences: <no-at> <a b@x>",
    ]);
    // 4 has no valid Date: its arrival, 1970, goes first.
    assert_eq!(threads, "(4)(2)(3)(1)");
}

#[test]
fn references_order_siblings_and_threads_by_date() {
    let threads = references(&[
        "Message-ID: <root@x>\nSubject: a\nDate: Mon, 13 Nov 2023 10:00:00 +0000",
        "Message-ID: <late@x>\nReferences: <root@x>\nSubject: Re: a\nDate: Wed, 15 Nov 2023 10:00:00 +0000",
        "Message-ID: <soon@x>\nReferences: <root@x>\nSubject: Re: a\nDate: Tue, 14 Nov 2023 10:00:00 +0000",
        "Message-ID: <b@x>\nSubject: b\nDate: Sun, 12 Nov 2023 10:00:00 +0000",
        // A thread under a dummy goes by its first child's date: Nov 11.
        "Message-ID: <c1@x>\nReferences: <gone@x>\nSubject: c\nDate: Sat, 11 Nov 2023 10:00:00 +0000",
        "Message-ID: <c2@x>\nReferences: <gone@x>\nSubject: c\nDate: Sat, 11 Nov 2023 09:00:00 +0000",
    ]);
    assert_eq!(threads, "((6)(5))(4)(1 (3)(2))");
}

#[test]
fn references_are_bounded() {
    let many: String = (0..10_000).map(|n| format!("<{n}@x> ")).collect();
    let long = format!("<{}@x>", "l".repeat(MAX_ID));
    let ids = Ids::of(b"<me@x>", b"<irt@x>", format!("{many}{long}").as_bytes());
    assert_eq!(ids.message_id.as_deref(), Some(&b"me@x"[..]));
    assert_eq!(ids.references.len(), MAX_REFERENCES);
    assert_eq!(
        ids.references.last().map(|id| &id[..]),
        Some(&b"9999@x"[..]),
        "the last ones, nearest the message, are kept; the overlong id is ignored"
    );
    assert_eq!(
        Ids::of(b"", b"junk <p@x> <q@x>", b"<bad>").references,
        [Box::from(&b"p@x"[..])],
        "no valid reference: In-Reply-To's first id"
    );
    // The whole threading of such a message: one dummy per kept reference at most.
    let threads = references(&[&format!("Message-ID: <m@x>\nReferences: {many}")]);
    assert_eq!(threads, "(1)");
}

#[test]
fn deep_threads_neither_recurse_nor_nest_without_bound() {
    // A chain of 100,000 replies: one list, built without a stack frame per message.
    let chain: Vec<Node> = (1..=100_000)
        .map(|n| Node {
            number: Some(number(n)),
            children: if n < 100_000 { vec![n] } else { Vec::new() },
        })
        .collect();
    let answer = wire(&tree::threads(&chain, &[0]));
    assert!(answer.starts_with("(1 2 3 ") && answer.ends_with(" 100000)"));

    // Every message with two children, one of them a leaf: a list nested in each.
    let levels = 3 * MAX_NESTING;
    let mut nodes = Vec::new();
    for level in 0..levels {
        let (at, leaf) = (nodes.len(), nodes.len() + 1);
        let last = level + 1 == levels;
        nodes.push(Node {
            number: Some(number(at + 1)),
            children: if last {
                Vec::new()
            } else {
                vec![leaf, leaf + 1]
            },
        });
        if !last {
            nodes.push(Node {
                number: Some(number(leaf + 1)),
                children: Vec::new(),
            });
        }
    }
    let answer = wire(&tree::threads(&nodes, &[0]));
    let mut depth = 0usize;
    let mut deepest = 0;
    for c in answer.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    assert!(deepest <= MAX_NESTING + 1, "nested {deepest} deep");
    let mut numbers: Vec<usize> = answer
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .map(|n| n.parse().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=nodes.len()).collect::<Vec<_>>(), "each once");
}

#[test]
fn replies_and_forwards_are_told_by_their_subject() {
    let reply = |subject: &str| read(1, &format!("Subject: {subject}")).0.reply;
    for marked in ["Re: x", "fwd: x", "[list] Re: x", "x (fwd)", "[fwd: x]"] {
        assert!(reply(marked), "{marked}");
    }
    for plain in ["x", "[list] x", "Review: x", ""] {
        assert!(!reply(plain), "{plain}");
    }
}
