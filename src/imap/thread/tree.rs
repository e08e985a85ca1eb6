//! A forest of messages turned into imap-types' [`Thread`]s, the shape `* THREAD` answers
//! (RFC 5256 section 4): a chain of messages each with one child is one list, `(3 6 ...)`,
//! and a message with several children ends its list with one nested list per child,
//! `(3 6 (4 23)(44 7 96))`.

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{Vec1, Vec2};
use imap_codec::imap_types::extensions::thread::Thread;

/// The most lists nested in one another in an answer. A thread that branches deeper is
/// answered flat below that depth: the messages of each subtree there in one list, parents
/// before their children. Real threads branch far less deep; the bound keeps the answer's
/// building and dropping (recursive in imap-types) shallow whatever the mailbox holds.
pub(super) const MAX_NESTING: usize = 64;

/// One node of a forest: a message, or a dummy (`None`) standing for a missing parent.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub(super) number: Option<NonZeroU32>,
    /// Indices into the forest's nodes, in the order to answer them.
    pub(super) children: Vec<usize>,
}

/// The threads rooted at `roots`, in their order; a dummy's place is taken by its children.
pub(super) fn threads(nodes: &[Node], roots: &[usize]) -> Vec<Thread> {
    roots
        .iter()
        .filter_map(|&root| thread(nodes, root))
        .collect()
}

/// A list being built: its messages and its children, some still to build.
struct Frame {
    prefix: Vec<NonZeroU32>,
    pending: std::vec::IntoIter<usize>,
    built: Vec<Thread>,
}

/// The thread rooted at `root`, built without recursion: a chain of a million replies is
/// one loop, not a million stack frames.
fn thread(nodes: &[Node], root: usize) -> Option<Thread> {
    let mut stack = vec![chain(nodes, root)];
    loop {
        let top = stack.last_mut()?;
        if let Some(child) = top.pending.next() {
            let frame = match stack.len() >= MAX_NESTING {
                true => flat(nodes, child),
                false => chain(nodes, child),
            };
            stack.push(frame);
            continue;
        }
        let done = stack.pop()?;
        let built = finish(done.prefix, done.built);
        match stack.last_mut() {
            Some(parent) => parent.built.extend(built),
            None => return built,
        }
    }
}

/// The list that starts at `start`: it and its only children, down to a node with none, or
/// several, or a dummy (whose children are built apart and joined by [`finish`]).
fn chain(nodes: &[Node], start: usize) -> Frame {
    let mut prefix = Vec::new();
    let mut at = start;
    loop {
        let node = &nodes[at];
        if let Some(number) = node.number {
            prefix.push(number);
            if let [only] = node.children[..] {
                at = only;
                continue;
            }
        }
        return Frame {
            prefix,
            pending: node.children.clone().into_iter(),
            built: Vec::new(),
        };
    }
}

/// The messages of the subtree at `start` as one list, parents before children.
fn flat(nodes: &[Node], start: usize) -> Frame {
    let mut prefix = Vec::new();
    let mut stack = vec![start];
    while let Some(at) = stack.pop() {
        prefix.extend(nodes[at].number);
        stack.extend(nodes[at].children.iter().rev());
    }
    Frame {
        prefix,
        pending: Vec::new().into_iter(),
        built: Vec::new(),
    }
}

/// The list of `prefix` followed by its children's lists; `None` for a dummy without any.
fn finish(prefix: Vec<NonZeroU32>, mut built: Vec<Thread>) -> Option<Thread> {
    let prefix = Vec1::try_from(prefix).ok();
    if built.len() >= 2 {
        let answers = Vec2::try_from(built).expect("two lists or more");
        return Some(match prefix {
            Some(prefix) => Thread::Members {
                prefix,
                answers: Some(answers),
            },
            None => Thread::Nested { answers },
        });
    }
    let Some(prefix) = prefix else {
        return built.pop();
    };
    // One child under a message: the child's list continues the message's.
    Some(match built.pop() {
        None => Thread::Members {
            prefix,
            answers: None,
        },
        Some(Thread::Members {
            prefix: more,
            answers,
        }) => {
            let mut all = prefix.into_inner();
            all.extend(more.into_inner());
            Thread::Members {
                prefix: Vec1::try_from(all).expect("not empty"),
                answers,
            }
        }
        Some(Thread::Nested { answers }) => Thread::Members {
            prefix,
            answers: Some(answers),
        },
    })
}
