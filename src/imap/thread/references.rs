//! THREAD=REFERENCES (RFC 5256 section 2.2), Jamie Zawinski's algorithm: messages linked by
//! their ids, dummies for the messages referred to but not found, empty dummies pruned,
//! threads of one base subject gathered, and siblings ordered by sent date.
//!
//! Containers sit in one arena and name each other by index, and every step is a loop, not
//! a recursion: a hostile mailbox (a reply chain of a million messages) costs time and memory
//! in proportion to its messages and their bounded references, not stack.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use imap_codec::imap_types::extensions::thread::Thread;

use super::Message;
use super::message_id::Ids;
use super::tree::{self, Node};

/// The most ancestors looked at to tell whether a new link would close a loop. A link is
/// only checked when its child already has children; past this depth it is taken as a loop
/// and not made, which bounds the work of one link whatever the References say.
const MAX_ANCESTORS: usize = 4096;

/// Ancestors looked at in all, per message added, beyond [`SPARE_STEPS`]: real threads are
/// a few levels deep, while References crafted to send every link up a long chain would
/// otherwise cost [`MAX_ANCESTORS`] steps for each of a message's 64 references. Past the
/// budget, a link whose child has children is taken as a loop and not made.
const STEPS_PER_MESSAGE: usize = 256;
const SPARE_STEPS: usize = 65_536;

/// Ids referred to but not (yet) found allowed per message added, beyond [`SPARE_IDS`]: the
/// table of ids and the dummies stay proportional to the messages. Past it, a reference to
/// an id not in the table is skipped, and the references on either side are linked, as
/// step 4 would link them once the dummy between them was pruned.
const IDS_PER_MESSAGE: usize = 16;
const SPARE_IDS: usize = 1024;

/// What the table of ids holds of an id: 128 bits of it under two keyed hashes, not its up
/// to [`MAX_ID`](super::message_id::MAX_ID) octets. Keys are random per THREAD, so no
/// mailbox can make two ids collide on purpose, and by chance they do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct IdKey(u64, u64);

/// One container: a message, or a dummy for an id only referred to.
#[derive(Debug, Default)]
struct Container {
    message: Option<Message>,
    /// The message's position among those added: ties of sent date go by it.
    position: usize,
    parent: Option<usize>,
    /// How many containers have this one as parent (the lists are made after step 1, so
    /// that moving a child from a parent with many is not a search through them).
    children: usize,
}

/// The REFERENCES threading of the messages [`add`](References::add)ed, in mailbox order.
#[derive(Debug, Default)]
pub(in crate::imap) struct References {
    containers: Vec<Container>,
    /// Step 1's table of ids; dropped at step 3.
    by_id: HashMap<IdKey, usize>,
    keys: (RandomState, RandomState),
    added: usize,
    /// Steps up the tree loop checks have taken (see [`STEPS_PER_MESSAGE`]).
    steps: usize,
}

impl References {
    /// Step 1 for one more message (A: its references linked in order; B: the last of them
    /// made its parent). Messages must come in mailbox order: of messages with the same
    /// Message-ID, only the first keeps it, the others are taken as having none.
    pub(in crate::imap) fn add(&mut self, message: Message, ids: Ids) {
        let own = match ids.message_id.map(|id| self.key(&id)) {
            Some(id) => match self.by_id.get(&id) {
                Some(&dummy) if self.containers[dummy].message.is_none() => dummy,
                Some(_) => self.container(),
                None => {
                    let at = self.container();
                    self.by_id.insert(id, at);
                    at
                }
            },
            None => self.container(),
        };
        self.containers[own].message = Some(message);
        self.containers[own].position = self.added;
        self.added += 1;

        let mut previous = None;
        for id in ids.references {
            let id = self.key(&id);
            let at = match self.by_id.get(&id) {
                Some(&at) => at,
                None if self.by_id.len() >= IDS_PER_MESSAGE * self.added + SPARE_IDS => {
                    continue;
                }
                None => {
                    let at = self.container();
                    self.by_id.insert(id, at);
                    at
                }
            };
            // A: links already made stay; none that would close a loop is made.
            if let Some(parent) = previous
                && self.containers[at].parent.is_none()
                && !self.would_loop(parent, at)
            {
                self.link(parent, at);
            }
            previous = Some(at);
        }
        // B: the message's own word on its parent replaces what its children presumed, and
        // with no references it has none.
        if self.containers[own].parent != previous {
            match previous {
                Some(parent) if self.would_loop(parent, own) => {}
                _ => {
                    self.unlink(own);
                    if let Some(parent) = previous {
                        self.link(parent, own);
                    }
                }
            }
        }
    }

    /// Steps 2 to 6: the threads, ordered.
    pub(in crate::imap) fn threads(self) -> Vec<Thread> {
        let References { containers, .. } = self;
        let mut forest = Forest::new(containers);
        let roots = forest.roots();
        let roots = forest.prune(roots);
        let roots = forest.gather_by_subject(roots);
        let roots = forest.sort(roots);
        let nodes: Vec<Node> = forest
            .containers
            .iter()
            .zip(forest.children)
            .map(|(container, children)| Node {
                number: container.message.as_ref().map(|message| message.number),
                children,
            })
            .collect();
        tree::threads(&nodes, &roots)
    }

    fn key(&self, id: &[u8]) -> IdKey {
        IdKey(self.keys.0.hash_one(id), self.keys.1.hash_one(id))
    }

    fn container(&mut self) -> usize {
        self.containers.push(Container::default());
        self.containers.len() - 1
    }

    /// Whether making `child` a child of `parent` would close a loop: `child` is `parent`
    /// or one of its ancestors (or too far up to tell, see [`MAX_ANCESTORS`] and
    /// [`STEPS_PER_MESSAGE`]).
    fn would_loop(&mut self, parent: usize, child: usize) -> bool {
        if parent == child {
            return true;
        }
        // A container without children is nobody's ancestor.
        if self.containers[child].children == 0 {
            return false;
        }
        let budget = (SPARE_STEPS + STEPS_PER_MESSAGE * self.added).saturating_sub(self.steps);
        let mut at = parent;
        for step in 0..MAX_ANCESTORS.min(budget) {
            match self.containers[at].parent {
                None => {
                    self.steps += step;
                    return false;
                }
                Some(up) if up == child => {
                    self.steps += step;
                    return true;
                }
                Some(up) => at = up,
            }
        }
        self.steps += MAX_ANCESTORS.min(budget);
        true
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.containers[child].parent = Some(parent);
        self.containers[parent].children += 1;
    }

    fn unlink(&mut self, child: usize) {
        if let Some(parent) = self.containers[child].parent.take() {
            self.containers[parent].children -= 1;
        }
    }
}

/// The containers after step 1, with their children listed.
struct Forest {
    containers: Vec<Container>,
    children: Vec<Vec<usize>>,
}

impl Forest {
    fn new(containers: Vec<Container>) -> Forest {
        let mut children = vec![Vec::new(); containers.len()];
        for (at, container) in containers.iter().enumerate() {
            if let Some(parent) = container.parent {
                children[parent].push(at);
            }
        }
        Forest {
            containers,
            children,
        }
    }

    fn is_dummy(&self, at: usize) -> bool {
        self.containers[at].message.is_none()
    }

    /// Step 2: the containers without a parent.
    fn roots(&self) -> Vec<usize> {
        (0..self.containers.len())
            .filter(|&at| self.containers[at].parent.is_none())
            .collect()
    }

    /// Step 4: dummies without children deleted; dummies with children replaced by them,
    /// except at the root, where a dummy stays unless it has only one child.
    fn prune(&mut self, roots: Vec<usize>) -> Vec<usize> {
        let mut kept = Vec::with_capacity(roots.len());
        for root in roots {
            self.splice_children(root);
            match (self.is_dummy(root), self.children[root].len()) {
                (true, 0) => {}
                (true, 1) => kept.push(self.children[root][0]),
                _ => kept.push(root),
            }
        }
        let mut pending = kept.clone();
        while let Some(at) = pending.pop() {
            self.splice_children(at);
            pending.extend(self.children[at].iter().copied());
        }
        kept
    }

    /// The children of `at` with every dummy among them replaced by its own children, as
    /// often as those are dummies too.
    fn splice_children(&mut self, at: usize) {
        if !self.children[at].iter().any(|&child| self.is_dummy(child)) {
            return;
        }
        let mut spliced = Vec::new();
        let mut pending: Vec<usize> = std::mem::take(&mut self.children[at]);
        pending.reverse();
        while let Some(child) = pending.pop() {
            if self.is_dummy(child) {
                let grandchildren = std::mem::take(&mut self.children[child]);
                pending.extend(grandchildren.into_iter().rev());
            } else {
                spliced.push(child);
            }
        }
        self.children[at] = spliced;
    }

    /// The subject a thread at the root is gathered by: its message's base subject, or a
    /// dummy's first child's (the earliest); `None` when empty.
    fn thread_subject(&self, at: usize) -> Option<&[u8]> {
        let message = match &self.containers[at].message {
            Some(message) => message,
            None => {
                let first = self.children[at]
                    .iter()
                    .min_by_key(|&&child| self.order_of(child))?;
                self.containers[*first].message.as_ref()?
            }
        };
        Some(&message.subject[..]).filter(|subject| !subject.is_empty())
    }

    fn is_reply(&self, at: usize) -> bool {
        self.containers[at]
            .message
            .as_ref()
            .is_some_and(|message| message.reply)
    }

    /// Step 5: threads at the root with the same base subject gathered into one.
    fn gather_by_subject(&mut self, roots: Vec<usize>) -> Vec<usize> {
        // B: per subject, the thread the others join: a dummy if any, else one that is no
        // reply if any, else the first.
        let mut table: HashMap<Box<[u8]>, usize> = HashMap::new();
        for &at in &roots {
            let Some(subject) = self.thread_subject(at) else {
                continue;
            };
            match table.get(subject) {
                None => {
                    table.insert(subject.into(), at);
                }
                Some(&there) => {
                    if !self.is_dummy(there)
                        && (self.is_dummy(at) || (self.is_reply(there) && !self.is_reply(at)))
                    {
                        table.insert(subject.into(), at);
                    }
                }
            }
        }
        // C: the merges.
        let mut at_root = vec![false; self.containers.len()];
        for &at in &roots {
            at_root[at] = true;
        }
        for &at in &roots {
            if !at_root[at] {
                continue;
            }
            let Some(subject) = self.thread_subject(at).map(Box::<[u8]>::from) else {
                continue;
            };
            let Some(&there) = table.get(&subject) else {
                continue;
            };
            if there == at {
                continue;
            }
            at_root[at] = false;
            match (self.is_dummy(there), self.is_dummy(at)) {
                (true, true) => {
                    let children = std::mem::take(&mut self.children[at]);
                    self.children[there].extend(children);
                }
                (true, false) => self.children[there].push(at),
                (false, _) if self.is_reply(at) && !self.is_reply(there) => {
                    self.children[there].push(at);
                }
                (false, _) => {
                    self.containers.push(Container::default());
                    self.children.push(vec![there, at]);
                    at_root.push(true);
                    let dummy = self.containers.len() - 1;
                    at_root[there] = false;
                    table.insert(subject, dummy);
                }
            }
        }
        (0..self.containers.len())
            .filter(|&at| at_root[at])
            .collect()
    }

    /// The order of a container among its siblings once its children are sorted: its
    /// message's sent date then position, or a dummy's first child's.
    fn order_of(&self, at: usize) -> (i64, usize) {
        let mut at = at;
        loop {
            if let Some(message) = &self.containers[at].message {
                return (message.date, self.containers[at].position);
            }
            match self.children[at].first() {
                Some(&first) => at = first,
                None => return (i64::MAX, usize::MAX),
            }
        }
    }

    /// Step 6: every set of siblings ordered by sent date, ties by mailbox order; a dummy
    /// goes by its first child, so children are sorted before their parents.
    fn sort(&mut self, mut roots: Vec<usize>) -> Vec<usize> {
        let mut order = Vec::new();
        let mut pending = roots.clone();
        while let Some(at) = pending.pop() {
            order.push(at);
            pending.extend(self.children[at].iter().copied());
        }
        for &at in order.iter().rev() {
            let mut children = std::mem::take(&mut self.children[at]);
            children.sort_by_key(|&child| self.order_of(child));
            self.children[at] = children;
        }
        roots.sort_by_key(|&root| self.order_of(root));
        roots
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::{IDS_PER_MESSAGE, Ids, Message, References, SPARE_IDS};

    #[test]
    fn the_table_of_ids_stays_proportional_to_the_messages() {
        // Each message refers to 64 ids found nowhere else: 64 dummies each, unbounded.
        let messages = 200;
        let mut threader = References::default();
        for n in 1..=messages {
            let references = (0..64)
                .map(|r| format!("{n}.{r}@x").into_bytes().into_boxed_slice())
                .collect();
            let message = Message {
                number: NonZeroU32::new(n).unwrap(),
                date: i64::from(n),
                subject: Box::default(),
                reply: false,
            };
            let message_id = Some(format!("{n}@x").into_bytes().into_boxed_slice());
            threader.add(
                message,
                Ids {
                    message_id,
                    references,
                },
            );
        }
        let messages = messages as usize;
        assert!(threader.by_id.len() <= IDS_PER_MESSAGE * messages + SPARE_IDS + messages);
        assert!(threader.containers.len() <= IDS_PER_MESSAGE * messages + SPARE_IDS + messages);
        let answer: String = threader.threads().iter().map(ToString::to_string).collect();
        let listed: Vec<&str> = answer
            .split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .collect();
        assert_eq!(
            listed.len(),
            messages,
            "every message answered once: {answer}"
        );
    }
}
