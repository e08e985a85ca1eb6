//! Data safety through the example server (issue 13): SIGKILL at seeded points during IMAP
//! APPEND, STORE, EXPUNGE, COPY and MOVE, POP3 DELE and QUIT, and while an outside program
//! delivers into the Maildir, then a restart on the same data directory; IMAP, POP3 and an
//! outside writer on one mailbox at once; and a second server on the same tree.
//!
//! After each restart the mailboxes must be exactly what the commands sent leave after some
//! point of their work: the server works through pipelined commands in order, and through a
//! command's messages in UID order, one file operation each (a rename, an unlink), so what a
//! SIGKILL leaves is the result of the first `p` of those steps for some `p`; and `p` covers
//! at least every command whose tagged OK (POP3: `+OK`) reached the client. Every body must be
//! one the test sent, whole; a UID once seen never names another message; UIDVALIDITY never
//! changes; a new UID is at least the UIDNEXT seen before.
//!
//! Nothing is timed: the kill comes after a seeded number of replies, or with a literal half
//! sent, and every wait is for a reply, EOF or the process's exit.
//!
//! ```text
//! cargo build --example server && cargo test -p tower-mail --test crash_safety -- --nocapture
//! CRASH_SEED=0x1234 cargo test -p tower-mail --test crash_safety   # replay another run
//! ```
//!
//! Needs `python3` (the harness parses JSON logs with it) and `curl` (metrics).

mod support_example;
mod support_shared;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use support_example::{ExampleServer, PASSWORD, RawClient, USER, run_server_expecting_exit};
use support_shared::Rng;

/// The seed of the kill cycles: printed, and replayed with `CRASH_SEED`.
const SEED: u64 = 0x13_da7a_5afe;

/// Kill cycles of each kind.
const IMAP_CYCLES: usize = 20;
const POP3_CYCLES: usize = 6;
const MDA_CYCLES: usize = 6;

/// The second mailbox, where COPY and MOVE go.
const ARCHIVE: &str = "Archive";

/// Flags and keywords the STOREs draw from.
const FLAG_POOL: [&str; 7] = [
    "\\Seen",
    "\\Flagged",
    "\\Answered",
    "$Crash1",
    "$Crash2",
    "$Crash3",
    "$Crash4",
];

/// A message's flags as compared: lower case, without `\Recent` (which sessions claim).
type Flags = BTreeSet<String>;

fn flags_of<'a>(names: impl IntoIterator<Item = &'a str>) -> Flags {
    names
        .into_iter()
        .map(str::to_ascii_lowercase)
        .filter(|f| f != "\\recent")
        .collect()
}

/// The message with id `id`: its id in a header and a body of a length it chooses (up to
/// ~24 KB, so some take the server a while to write), each line naming the id and its number,
/// so that any cut or mix-up shows.
fn message(id: u64) -> Vec<u8> {
    let lines = (id.wrapping_mul(0x9e37_79b9) % 400) as usize;
    let mut text = format!("Subject: crash {id}\r\nX-Crash-Id: {id}\r\n\r\n");
    for n in 0..lines {
        text.push_str(&format!(
            "message {id} line {n} ..................................\r\n"
        ));
    }
    text.push_str(&format!("end of {id}\r\n"));
    text.into_bytes()
}

/// The id a fetched message names; fails unless the message is the whole of that id's.
#[track_caller]
fn id_of(octets: &[u8], context: &str) -> u64 {
    let text = String::from_utf8_lossy(octets);
    let id: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("X-Crash-Id: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{context}: a message the test never sent: {text:.200}"));
    assert!(
        octets == message(id).as_slice(),
        "{context}: message {id} is not whole ({} octets of {}): {text:.300}",
        octets.len(),
        message(id).len()
    );
    id
}

/// What a mailbox holds: message id and flags by UID.
type Mailbox = BTreeMap<u32, (u64, Flags)>;

/// Mailboxes split for comparison: the messages whose UIDs the test knows (from before the
/// cycle, or from an acknowledgement), and the other new ones as sorted (id, flags).
type Split = BTreeMap<&'static str, (Mailbox, Vec<(u64, Flags)>)>;

/// One file operation of the server's, in the order it does them.
#[derive(Debug, Clone)]
enum Step {
    /// A new message in `mailbox` (an APPEND, a COPY's or MOVE's copy), known by `key` until
    /// an acknowledgement gives its UID.
    New {
        mailbox: &'static str,
        key: Key,
        id: u64,
        flags: Flags,
    },
    SetFlags {
        uid: u32,
        flags: Flags,
    },
    Expunge {
        mailbox: &'static str,
        uid: u32,
    },
}

/// A new message's name before its UID is known: the command and the source UID (0 for
/// an APPEND).
type Key = (usize, u32);

/// A command of a cycle: its tag, its octets, and the steps it takes.
struct Command {
    tag: String,
    octets: Vec<u8>,
    steps: Vec<Step>,
}

/// The tree as last seen, and everything seen before, for the checks across restarts.
#[derive(Default)]
struct Tree {
    mailboxes: BTreeMap<&'static str, Mailbox>,
    uid_validity: BTreeMap<&'static str, u32>,
    uid_next: BTreeMap<&'static str, u32>,
    /// HIGHESTMODSEQ as last seen: a crash must never take it back (RFC 7162 section 3.1.2:
    /// a client resyncing from it would miss changes).
    highest_modseq: BTreeMap<&'static str, u64>,
    /// Every UID ever seen, with the message it named.
    history: HashMap<(&'static str, u32), u64>,
    next_id: u64,
    /// Figures for the report.
    checked_acknowledged: usize,
    checked_messages: usize,
    checked_uids: usize,
}

/// What a cycle's checks need: the steps in order, how many of them the acknowledgements
/// cover, the UIDs the acknowledgements named, and messages an outside writer delivered.
#[derive(Default)]
struct Outcome {
    steps: Vec<Step>,
    acknowledged: usize,
    uids: HashMap<Key, u32>,
    delivered: Vec<u64>,
}

impl Tree {
    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The mailboxes after the first `p` steps of `outcome` (new messages without a known
    /// UID listed apart, sorted), as [`observe`](Tree::observe) splits what it sees.
    fn after(&self, outcome: &Outcome, p: usize) -> Split {
        let mut state: Split = self
            .mailboxes
            .iter()
            .map(|(name, mailbox)| (*name, (mailbox.clone(), Vec::new())))
            .collect();
        for step in &outcome.steps[..p] {
            match step {
                Step::New {
                    mailbox,
                    key,
                    id,
                    flags,
                } => {
                    let (known, new) = state.get_mut(mailbox).unwrap();
                    match outcome.uids.get(key) {
                        Some(&uid) => {
                            known.insert(uid, (*id, flags.clone()));
                        }
                        None => new.push((*id, flags.clone())),
                    }
                }
                Step::SetFlags { uid, flags } => {
                    if let Some(message) = state.get_mut("INBOX").unwrap().0.get_mut(uid) {
                        message.1 = flags.clone();
                    }
                }
                Step::Expunge { mailbox, uid } => {
                    state.get_mut(mailbox).unwrap().0.remove(uid);
                }
            }
        }
        for id in &outcome.delivered {
            state.get_mut("INBOX").unwrap().1.push((*id, Flags::new()));
        }
        for (_, new) in state.values_mut() {
            new.sort();
        }
        state
    }

    /// Checks the restarted server's tree against what the cycle may have left, and takes
    /// it as the tree from now on.
    #[track_caller]
    fn check(&mut self, server: &ExampleServer, outcome: &Outcome, context: &str) {
        let seen = read_tree(server, &["INBOX", ARCHIVE], context);
        for (name, now) in highest_modseqs(server, &["INBOX", ARCHIVE]) {
            let before = self.highest_modseq.insert(name, now).unwrap_or(0);
            assert!(
                now >= before,
                "{context}: HIGHESTMODSEQ of {name} went back from {before} to {now}"
            );
        }
        for (name, (validity, uid_next, mailbox)) in &seen {
            let before = *self.uid_validity.entry(name).or_insert(*validity);
            assert_eq!(
                *validity, before,
                "{context}: UIDVALIDITY of {name} changed"
            );
            let old_next = self.uid_next.get(name).copied().unwrap_or(1);
            for (&uid, (id, _)) in mailbox {
                self.checked_uids += 1;
                match self.history.insert((*name, uid), *id) {
                    Some(was) => assert_eq!(
                        was, *id,
                        "{context}: UID {uid} of {name} named message {was}, now {id}"
                    ),
                    None => assert!(
                        uid >= old_next,
                        "{context}: new UID {uid} in {name} below the UIDNEXT {old_next} seen before"
                    ),
                }
            }
            self.uid_next.insert(name, *uid_next);
        }
        // Split as `after` does: UIDs known before the cycle or named by an acknowledgement,
        // and the rest.
        let observed: Split = seen
            .iter()
            .map(|(name, (_, _, mailbox))| {
                let acked: BTreeSet<u32> = outcome
                    .uids
                    .iter()
                    .filter(|(key, _)| {
                        outcome.steps.iter().any(|s| {
                            matches!(s, Step::New { mailbox: m, key: k, .. } if m == name && k == *key)
                        })
                    })
                    .map(|(_, uid)| *uid)
                    .collect();
                let mut known = Mailbox::new();
                let mut new = Vec::new();
                for (&uid, message) in mailbox {
                    if self.mailboxes[name].contains_key(&uid) || acked.contains(&uid) {
                        known.insert(uid, message.clone());
                    } else {
                        new.push(message.clone());
                    }
                }
                new.sort();
                (*name, (known, new))
            })
            .collect();
        let matched = (outcome.acknowledged..=outcome.steps.len())
            .any(|p| self.after(outcome, p) == observed);
        if !matched {
            panic!(
                "{context}: the tree after the restart is what no point of the work leaves \
                 (acknowledged steps {} of {}):\nsteps: {:#?}\nUIDs acknowledged: {:?}\n\
                 before: {:#?}\nafter: {observed:#?}\nwith everything done: {:#?}",
                outcome.acknowledged,
                outcome.steps.len(),
                outcome.steps,
                outcome.uids,
                self.mailboxes,
                self.after(outcome, outcome.steps.len()),
            );
        };
        self.checked_acknowledged += outcome.acknowledged;
        self.checked_messages += seen.values().map(|(_, _, m)| m.len()).sum::<usize>();
        self.mailboxes = seen
            .into_iter()
            .map(|(name, (_, _, mailbox))| (name, mailbox))
            .collect();
    }
}

/// Read lines until the tagged reply to `tag`; all of them, `None` if the connection ended
/// first.
fn until_tagged(client: &mut RawClient, tag: &str) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let line = client.line()?;
        let done = line.starts_with(&format!("{tag} "));
        lines.push(line);
        if done {
            return Some(lines);
        }
    }
}

#[track_caller]
fn imap_session(server: &ExampleServer) -> RawClient {
    let mut client = RawClient::connect(server.imap);
    let greeting = client.line().expect("an IMAP greeting");
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let reply = client.cmd(&format!("l LOGIN {USER} {PASSWORD}"));
    assert!(reply.starts_with("l OK"), "LOGIN: {reply}");
    client
}

/// `[NAME value]` in a line, as a number.
fn code_number(lines: &[String], name: &str) -> Option<u32> {
    lines.iter().find_map(|l| {
        let rest = &l[l.find(&format!("[{name} "))? + name.len() + 2..];
        rest[..rest.find(']')?].parse().ok()
    })
}

/// Each of `mailboxes`' HIGHESTMODSEQ, from STATUS in a fresh session.
#[track_caller]
fn highest_modseqs(
    server: &ExampleServer,
    mailboxes: &[&'static str],
) -> BTreeMap<&'static str, u64> {
    let mut client = imap_session(server);
    let mut modseqs = BTreeMap::new();
    for &name in mailboxes {
        client.send_raw(format!("m STATUS {name} (HIGHESTMODSEQ)\r\n").as_bytes());
        let lines = until_tagged(&mut client, "m").expect("STATUS answered");
        let value = lines
            .iter()
            .find_map(|l| {
                let rest = &l[l.find("(HIGHESTMODSEQ ")? + "(HIGHESTMODSEQ ".len()..];
                rest[..rest.find(')')?].parse().ok()
            })
            .unwrap_or_else(|| panic!("no HIGHESTMODSEQ in {lines:?}"));
        modseqs.insert(name, value);
    }
    client.send_raw(b"z LOGOUT\r\n");
    modseqs
}

/// `mailboxes` as a fresh session sees them: UIDVALIDITY, UIDNEXT, and each message's id
/// (its body checked whole) and flags by UID.
#[track_caller]
fn read_tree(
    server: &ExampleServer,
    mailboxes: &[&'static str],
    context: &str,
) -> BTreeMap<&'static str, (u32, u32, Mailbox)> {
    let mut client = imap_session(server);
    let mut tree = BTreeMap::new();
    for &name in mailboxes {
        client.send_raw(format!("s SELECT {name}\r\n").as_bytes());
        let selected = until_tagged(&mut client, "s").expect("SELECT answered");
        assert!(selected.last().unwrap().starts_with("s OK"), "{selected:?}");
        let validity = code_number(&selected, "UIDVALIDITY").expect("UIDVALIDITY");
        let uid_next = code_number(&selected, "UIDNEXT").expect("UIDNEXT");
        let exists: usize = selected
            .iter()
            .find_map(|l| l.strip_prefix("* ")?.strip_suffix(" EXISTS")?.parse().ok())
            .expect("EXISTS");
        let mut mailbox = Mailbox::new();
        if exists > 0 {
            client.send_raw(b"f UID FETCH 1:* (UID FLAGS BODY.PEEK[])\r\n");
            loop {
                let line = client.line().expect("FETCH answered");
                if line.starts_with("f ") {
                    assert!(line.starts_with("f OK"), "{context}: FETCH: {line}");
                    break;
                }
                if !line.contains(" FETCH ") {
                    continue;
                }
                let Some(open) = line.rfind('{').filter(|_| line.ends_with('}')) else {
                    panic!("{context}: a FETCH without the message: {line:?}");
                };
                let len: usize = line[open + 1..line.len() - 1].parse().unwrap();
                let octets = client.octets(len).expect("the literal");
                let rest = client.line().expect("the end of the FETCH");
                let items = format!("{line} {rest}");
                let uid: u32 = items
                    .split(" UID ")
                    .nth(1)
                    .or_else(|| items.split("(UID ").nth(1))
                    .and_then(|r| r.split([' ', ')']).next()?.parse().ok())
                    .unwrap_or_else(|| panic!("no UID in {items:?}"));
                let flags = items
                    .split("FLAGS (")
                    .nth(1)
                    .and_then(|r| r.split(')').next())
                    .unwrap_or_else(|| panic!("no FLAGS in {items:?}"));
                let id = id_of(&octets, &format!("{context}: {name} UID {uid}"));
                let previous = mailbox.insert(uid, (id, flags_of(flags.split_whitespace())));
                assert!(previous.is_none(), "{context}: UID {uid} twice in {name}");
            }
        }
        assert_eq!(mailbox.len(), exists, "{context}: {name}");
        tree.insert(name, (validity, uid_next, mailbox));
    }
    client.send_raw(b"z LOGOUT\r\n");
    tree
}

/// A random non-empty set of up to 3 UIDs of `mailbox`, ascending (none if it is empty).
fn pick(rng: &mut Rng, mailbox: &Mailbox) -> Vec<u32> {
    let uids: Vec<u32> = mailbox.keys().copied().collect();
    if uids.is_empty() {
        return Vec::new();
    }
    let mut picked: BTreeSet<u32> = BTreeSet::new();
    for _ in 0..=rng.below(3) {
        picked.insert(uids[rng.below(uids.len())]);
    }
    picked.into_iter().collect()
}

fn uid_list(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn random_flags(rng: &mut Rng) -> Vec<&'static str> {
    (0..rng.below(4))
        .map(|_| FLAG_POOL[rng.below(FLAG_POOL.len())])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The commands of an IMAP cycle, drawn from the seed, with the steps each takes on
/// `inbox` (which they update as the server will).
fn plan_imap(rng: &mut Rng, tree: &mut Tree, count: usize) -> Vec<Command> {
    let mut inbox = tree.mailboxes["INBOX"].clone();
    let mut commands = Vec::new();
    for n in 0..count {
        let tag = format!("c{n}");
        let uids = pick(rng, &inbox);
        let kind = if inbox.len() < 4 { 0 } else { rng.below(6) };
        let (text, steps) = match kind {
            // APPEND with a LITERAL+ literal: pipelined like everything else.
            0 | 1 if uids.is_empty() || kind == 0 => {
                let id = tree.new_id();
                let flags = random_flags(rng);
                let octets = message(id);
                let mut text = format!(
                    "{tag} APPEND INBOX ({}) {{{}+}}\r\n",
                    flags.join(" "),
                    octets.len()
                )
                .into_bytes();
                text.extend_from_slice(&octets);
                text.extend_from_slice(b"\r\n");
                let step = Step::New {
                    mailbox: "INBOX",
                    key: (n, 0),
                    id,
                    flags: flags_of(flags),
                };
                (text, vec![step])
            }
            1 => {
                let flags = random_flags(rng);
                let (verb, op) = [("FLAGS", 0), ("+FLAGS", 1), ("-FLAGS.SILENT", 2)][rng.below(3)];
                let text = format!(
                    "{tag} UID STORE {} {verb} ({})\r\n",
                    uid_list(&uids),
                    flags.join(" ")
                );
                let given = flags_of(flags);
                let mut steps = Vec::new();
                for uid in &uids {
                    let message = inbox.get_mut(uid).unwrap();
                    let new: Flags = match op {
                        0 => given.clone(),
                        1 => message.1.union(&given).cloned().collect(),
                        _ => message.1.difference(&given).cloned().collect(),
                    };
                    if new != message.1 {
                        message.1 = new.clone();
                        steps.push(Step::SetFlags {
                            uid: *uid,
                            flags: new,
                        });
                    }
                }
                (text.into_bytes(), steps)
            }
            // Mark deleted; the EXPUNGE is a command of its own, next.
            2 | 3 => {
                let text = format!("{tag} UID STORE {} +FLAGS (\\Deleted)\r\n", uid_list(&uids));
                let mut steps = Vec::new();
                for uid in &uids {
                    let message = inbox.get_mut(uid).unwrap();
                    if message.1.insert("\\deleted".into()) {
                        steps.push(Step::SetFlags {
                            uid: *uid,
                            flags: message.1.clone(),
                        });
                    }
                }
                let mut text = text.into_bytes();
                let expunge_tag = format!("{tag}x");
                let expunge = if kind == 2 {
                    format!("{expunge_tag} EXPUNGE\r\n")
                } else {
                    format!("{expunge_tag} UID EXPUNGE {}\r\n", uid_list(&uids))
                };
                commands.push(Command {
                    tag,
                    octets: std::mem::take(&mut text),
                    steps,
                });
                let gone: Vec<u32> = inbox
                    .iter()
                    .filter(|(uid, (_, flags))| {
                        flags.contains("\\deleted") && (kind == 2 || uids.contains(uid))
                    })
                    .map(|(uid, _)| *uid)
                    .collect();
                let steps = gone
                    .iter()
                    .map(|uid| {
                        inbox.remove(uid);
                        Step::Expunge {
                            mailbox: "INBOX",
                            uid: *uid,
                        }
                    })
                    .collect();
                commands.push(Command {
                    tag: expunge_tag,
                    octets: expunge.into_bytes(),
                    steps,
                });
                continue;
            }
            // COPY and MOVE: a copy each in UID order, then (MOVE) the expunges.
            _ => {
                let moving = kind == 5;
                let verb = if moving { "MOVE" } else { "COPY" };
                let text = format!("{tag} UID {verb} {} {ARCHIVE}\r\n", uid_list(&uids));
                let mut steps: Vec<Step> = uids
                    .iter()
                    .map(|uid| {
                        let (id, flags) = inbox[uid].clone();
                        Step::New {
                            mailbox: ARCHIVE,
                            key: (commands.len(), *uid),
                            id,
                            flags,
                        }
                    })
                    .collect();
                if moving {
                    for uid in &uids {
                        inbox.remove(uid);
                        steps.push(Step::Expunge {
                            mailbox: "INBOX",
                            uid: *uid,
                        });
                    }
                }
                (text.into_bytes(), steps)
            }
        };
        // APPENDUID and COPYUID name the command by its index in `commands`.
        let steps = steps
            .into_iter()
            .map(|step| match step {
                Step::New {
                    mailbox,
                    key: (_, source),
                    id,
                    flags,
                } => Step::New {
                    mailbox,
                    key: (commands.len(), source),
                    id,
                    flags,
                },
                other => other,
            })
            .collect();
        commands.push(Command {
            tag,
            octets: text,
            steps,
        });
    }
    commands
}

/// The UIDs of a UID set (`1:3,7`).
fn uid_set(text: &str) -> Vec<u32> {
    text.split(',')
        .flat_map(|part| match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                (a.min(b)..=a.max(b)).collect::<Vec<_>>()
            }
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

/// What a reply line acknowledges: APPENDUID and COPYUID give new messages their UIDs.
fn record_uids(line: &str, command: usize, uids: &mut HashMap<Key, u32>) {
    if let Some(at) = line.find("[APPENDUID ") {
        let mut parts = line[at + 11..].split([' ', ']']);
        let _validity = parts.next();
        let uid = parts.next().unwrap().parse().unwrap();
        uids.insert((command, 0), uid);
    }
    if let Some(at) = line.find("[COPYUID ") {
        let mut parts = line[at + 9..].split([' ', ']']);
        let _validity = parts.next();
        let source = uid_set(parts.next().unwrap());
        let target = uid_set(parts.next().unwrap());
        for (from, to) in source.into_iter().zip(target) {
            uids.insert((command, from), to);
        }
    }
}

/// How a cycle's session meets the kill.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// After this many tagged replies (all of them: right after the last acknowledgement).
    AfterReplies(usize),
    /// With a final APPEND's synchronizing literal half sent, the commands before it done.
    MidLiteral,
}

/// One IMAP cycle: pipelined commands, SIGKILL at `point`, and what the client saw.
fn imap_cycle(
    server: &mut ExampleServer,
    tree: &mut Tree,
    rng: &mut Rng,
    point: KillPoint,
) -> Outcome {
    let count = 2 + rng.below(5);
    let commands = plan_imap(rng, tree, count);
    let mut client = imap_session(server);
    client.send_raw(b"s SELECT INBOX\r\n");
    let selected = until_tagged(&mut client, "s").expect("SELECT answered");
    assert!(selected.last().unwrap().starts_with("s OK"), "{selected:?}");
    let mut octets: Vec<u8> = commands.iter().flat_map(|c| c.octets.clone()).collect();
    let cut_id = tree.new_id();
    let cut = message(cut_id);
    if let KillPoint::MidLiteral = point {
        octets.extend_from_slice(format!("cut APPEND INBOX {{{}}}\r\n", cut.len()).as_bytes());
    }
    client.send_raw(&octets);
    let wanted = match point {
        KillPoint::AfterReplies(n) => n.min(commands.len()),
        KillPoint::MidLiteral => commands.len(),
    };
    let mut outcome = Outcome::default();
    let mut replies = 0;
    // A tagged reply: which command it answers (each must succeed), with the UIDs it names.
    let read_reply = |line: &str, outcome: &mut Outcome| {
        let Some(index) = commands
            .iter()
            .position(|c| line.starts_with(&format!("{} ", c.tag)))
        else {
            return false;
        };
        assert!(
            line.starts_with(&format!("{} OK", commands[index].tag)),
            "a command failed: {line}"
        );
        record_uids(line, index, &mut outcome.uids);
        true
    };
    // MOVE's COPYUID comes untagged, before its tagged OK: it belongs to the first command
    // not answered yet.
    while replies < wanted {
        let line = client
            .line()
            .expect("the server answers until it is killed");
        if line.starts_with("* OK [COPYUID") {
            record_uids(&line, replies, &mut outcome.uids);
        }
        if read_reply(&line, &mut outcome) {
            replies += 1;
        }
    }
    if let KillPoint::MidLiteral = point {
        while !client.line().expect("the continuation").starts_with('+') {}
        client.send_raw(&cut[..cut.len() / 2]);
    }
    server.kill();
    // What the server wrote before it died is acknowledged too: it reached the client.
    while let Some(line) = client.line() {
        if line.starts_with("* OK [COPYUID") {
            record_uids(&line, replies, &mut outcome.uids);
        }
        if read_reply(&line, &mut outcome) {
            replies += 1;
        }
    }
    outcome.acknowledged = commands[..replies].iter().map(|c| c.steps.len()).sum();
    outcome.steps = commands.into_iter().flat_map(|c| c.steps).collect();
    outcome
}

/// One POP3 cycle: DELE of some messages and QUIT, pipelined, SIGKILL after `after` replies.
fn pop3_cycle(server: &mut ExampleServer, tree: &Tree, rng: &mut Rng, after: usize) -> Outcome {
    let mut client = RawClient::connect(server.pop3);
    client.login(USER, PASSWORD);
    let reply = client.cmd("UIDL");
    assert!(reply.starts_with("+OK"), "UIDL: {reply}");
    let mut numbered = Vec::new();
    loop {
        let line = client.line().expect("the UIDL listing");
        if line == "." {
            break;
        }
        let (number, uidl) = line.split_once(' ').expect("n uidl");
        let uid = u32::from_str_radix(&uidl[..8], 16).expect("UIDL starts with the UID in hex");
        numbered.push((number.to_owned(), uid));
    }
    let inbox = &tree.mailboxes["INBOX"];
    assert_eq!(
        numbered.iter().map(|(_, uid)| *uid).collect::<Vec<_>>(),
        inbox.keys().copied().collect::<Vec<_>>(),
        "POP3 lists INBOX as IMAP does"
    );
    let mut doomed: BTreeSet<u32> = BTreeSet::new();
    let mut commands = String::new();
    let deletions = if numbered.is_empty() {
        0
    } else {
        1 + rng.below(3)
    };
    for _ in 0..deletions {
        let (number, uid) = &numbered[rng.below(numbered.len())];
        if doomed.insert(*uid) {
            commands.push_str(&format!("DELE {number}\r\n"));
        }
    }
    commands.push_str("QUIT\r\n");
    let dele = doomed.len();
    client.send_raw(commands.as_bytes());
    let mut replies = 0;
    while replies < after.min(dele + 1) {
        let line = client
            .line()
            .expect("the server answers until it is killed");
        assert!(line.starts_with("+OK"), "{line}");
        replies += 1;
    }
    server.kill();
    while let Some(line) = client.line() {
        assert!(line.starts_with("+OK"), "{line}");
        replies += 1;
    }
    let steps: Vec<Step> = doomed
        .iter()
        .map(|uid| Step::Expunge {
            mailbox: "INBOX",
            uid: *uid,
        })
        .collect();
    Outcome {
        // The QUIT's +OK acknowledges the expunges; the DELEs' only a mark.
        acknowledged: if replies > dele { steps.len() } else { 0 },
        steps,
        ..Outcome::default()
    }
}

/// An outside program's delivery, as an MDA makes it: written and synced in `tmp/`, then
/// renamed into `new/`.
fn mda_deliver(user_dir: &Path, name: &str, octets: &[u8]) {
    let tmp = user_dir.join("tmp").join(name);
    let mut file = std::fs::File::create(&tmp).expect("create in tmp/");
    file.write_all(octets).expect("write");
    file.sync_all().expect("sync");
    std::fs::rename(&tmp, user_dir.join("new").join(name)).expect("rename into new/");
}

/// One delivery cycle: an outside writer delivers `ids` while an IMAP session asks the
/// server to look (NOOP, STATUS) and moves some flags; SIGKILL after `after` replies.
fn mda_cycle(server: &mut ExampleServer, tree: &mut Tree, rng: &mut Rng, after: usize) -> Outcome {
    let ids: Vec<u64> = (0..3 + rng.below(6)).map(|_| tree.new_id()).collect();
    let user_dir: PathBuf = server.maildir().join(USER);
    let writer = {
        let ids = ids.clone();
        std::thread::spawn(move || {
            for id in ids {
                mda_deliver(
                    &user_dir,
                    &format!("1700000000.M{id}P1Q1.mda"),
                    &message(id),
                );
            }
        })
    };
    let mut commands = plan_imap(rng, tree, 1);
    commands.retain(|c| c.steps.iter().all(|s| matches!(s, Step::SetFlags { .. })));
    for n in 0..6 {
        let text = if n % 2 == 0 {
            format!("n{n} NOOP\r\n")
        } else {
            format!("n{n} STATUS INBOX (MESSAGES UIDNEXT)\r\n")
        };
        commands.push(Command {
            tag: format!("n{n}"),
            octets: text.into_bytes(),
            steps: Vec::new(),
        });
    }
    let mut client = imap_session(server);
    client.send_raw(b"s SELECT INBOX\r\n");
    until_tagged(&mut client, "s").expect("SELECT answered");
    let octets: Vec<u8> = commands.iter().flat_map(|c| c.octets.clone()).collect();
    client.send_raw(&octets);
    let mut replies = 0;
    let tagged = |line: &str| {
        commands
            .iter()
            .any(|c| line.starts_with(&format!("{} ", c.tag)))
    };
    while replies < after.min(commands.len()) {
        let line = client
            .line()
            .expect("the server answers until it is killed");
        if tagged(&line) {
            assert!(line.contains(" OK"), "{line}");
            replies += 1;
        }
    }
    server.kill();
    while let Some(line) = client.line() {
        if tagged(&line) {
            replies += 1;
        }
    }
    writer.join().expect("the outside writer finished");
    Outcome {
        acknowledged: commands[..replies].iter().map(|c| c.steps.len()).sum(),
        steps: commands.into_iter().flat_map(|c| c.steps).collect(),
        delivered: ids,
        ..Outcome::default()
    }
}

fn seed() -> u64 {
    match std::env::var("CRASH_SEED") {
        Ok(text) => {
            let text = text.trim();
            match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            }
            .expect("CRASH_SEED: a number, decimal or 0x hex")
        }
        Err(_) => SEED,
    }
}

#[test]
fn sigkill_at_seeded_points_loses_no_acknowledged_change() {
    let seed = seed();
    println!("seed {seed:#x} (replay with CRASH_SEED={seed:#x})");
    let mut rng = Rng(seed);
    let mut server = ExampleServer::start();
    let mut tree = Tree::default();
    // The mailboxes and a few messages to work on, checked as the first cycle's "before".
    let mut client = imap_session(&server);
    assert!(
        client
            .cmd(&format!("a CREATE {ARCHIVE}"))
            .starts_with("a OK")
    );
    for _ in 0..6 {
        let id = tree.new_id();
        server.deliver(&message(id));
    }
    drop(client);
    tree.mailboxes = BTreeMap::from([("INBOX", Mailbox::new()), (ARCHIVE, Mailbox::new())]);
    let start = Outcome {
        delivered: (1..=tree.next_id).collect(),
        ..Outcome::default()
    };
    tree.check(&server, &start, "before the first kill");

    let mut plan: Vec<&str> = [
        vec!["imap"; IMAP_CYCLES],
        vec!["pop3"; POP3_CYCLES],
        vec!["mda"; MDA_CYCLES],
    ]
    .concat();
    // A seeded shuffle: the kinds interleave.
    for i in (1..plan.len()).rev() {
        plan.swap(i, rng.below(i + 1));
    }
    let mut kills: BTreeMap<String, usize> = BTreeMap::new();
    let mut steps_total = 0;
    for (cycle, kind) in plan.iter().enumerate() {
        let (outcome, point) = match *kind {
            "imap" => {
                let point = if rng.one_in(4) {
                    KillPoint::MidLiteral
                } else {
                    KillPoint::AfterReplies(rng.below(8))
                };
                (
                    imap_cycle(&mut server, &mut tree, &mut rng, point),
                    format!("{point:?}"),
                )
            }
            "pop3" => {
                let after = rng.below(5);
                (
                    pop3_cycle(&mut server, &tree, &mut rng, after),
                    format!("AfterReplies({after})"),
                )
            }
            _ => {
                let after = rng.below(8);
                (
                    mda_cycle(&mut server, &mut tree, &mut rng, after),
                    format!("AfterReplies({after})"),
                )
            }
        };
        *kills
            .entry(format!("{kind} {}", point.split('(').next().unwrap()))
            .or_default() += 1;
        steps_total += outcome.steps.len();
        server.relaunch();
        let context = format!("seed {seed:#x} cycle {cycle} ({kind}, {point})");
        tree.check(&server, &outcome, &context);
    }
    println!(
        "{} kill cycles: {kills:?}; {steps_total} steps planned, {} acknowledged and checked; \
         {} messages and {} UIDs checked across restarts; messages at the end: INBOX {}, {ARCHIVE} {}; \
         UIDVALIDITY unchanged: {:?}; HIGHESTMODSEQ never went back, at the end: {:?}",
        plan.len(),
        tree.checked_acknowledged,
        tree.checked_messages,
        tree.checked_uids,
        tree.mailboxes["INBOX"].len(),
        tree.mailboxes[ARCHIVE].len(),
        tree.uid_validity,
        tree.highest_modseq,
    );
}

#[test]
fn a_second_server_on_the_same_tree_refuses_to_start_naming_the_first() {
    let mut server = ExampleServer::start();
    let config = server.config_path();
    let dir = config.parent().unwrap().to_path_buf();
    let second = run_server_expecting_exit(&dir, &["--config".as_ref(), config.as_os_str()]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second server ran: {stderr}");
    let holder = format!("in use by another server (process {},", server.pid());
    assert!(stderr.contains(&holder), "expected {holder:?} in: {stderr}");
    assert!(
        stderr.contains(&server.maildir().display().to_string()),
        "the refusal names the tree: {stderr}"
    );
    // The first server is untouched and a crash frees the tree at once.
    let id = 1;
    server.deliver(&message(id));
    assert_eq!(server.inbox_len(USER), 1);
    server.kill();
    server.relaunch();
    let tree = read_tree(&server, &["INBOX"], "after the first server's crash");
    assert_eq!(tree["INBOX"].2.len(), 1);
}

/// IMAP appends and flag changes, POP3 sessions deleting what they were meant to, and an
/// outside writer delivering, all at once on demo's INBOX: at the end it holds every message
/// that nobody deleted, once and whole, and none of the deleted ones.
#[test]
fn imap_pop3_and_an_outside_writer_at_once_lose_no_message() {
    const EACH: u64 = 25;
    let server = ExampleServer::start();
    // The ones POP3 deletes: there before the others start.
    let doomed: BTreeSet<u64> = (1..=10).collect();
    for id in &doomed {
        server.deliver(&message(*id));
    }
    let imap_ids: Vec<u64> = (100..100 + EACH).collect();
    let mda_ids: Vec<u64> = (200..200 + EACH).collect();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        let imap = scope.spawn(|| {
            let mut client = imap_session(&server);
            client.send_raw(b"s SELECT INBOX\r\n");
            until_tagged(&mut client, "s").expect("SELECT");
            for id in &imap_ids {
                let octets = message(*id);
                let mut text = format!("a{id} APPEND INBOX {{{}+}}\r\n", octets.len()).into_bytes();
                text.extend_from_slice(&octets);
                text.extend_from_slice(
                    format!("\r\nn{id} NOOP\r\nf{id} STORE 1:* +FLAGS.SILENT ($Touched)\r\n")
                        .as_bytes(),
                );
                client.send_raw(&text);
                for tag in [format!("a{id}"), format!("n{id}"), format!("f{id}")] {
                    let lines = until_tagged(&mut client, &tag).expect("answered");
                    let last = lines.last().unwrap();
                    assert!(last.starts_with(&format!("{tag} OK")), "{last}");
                }
                acknowledged.lock().unwrap().push(*id);
            }
        });
        let mda = scope.spawn(|| {
            let user_dir = server.maildir().join(USER);
            for id in &mda_ids {
                mda_deliver(
                    &user_dir,
                    &format!("1700000000.M{id}P2Q1.mda"),
                    &message(*id),
                );
            }
        });
        let pop3 = scope.spawn(|| {
            let mut deleted = BTreeSet::new();
            let mut sessions = 0;
            while deleted.len() < doomed.len() || sessions < 5 {
                sessions += 1;
                assert!(sessions < 100, "POP3 never saw every doomed message");
                let mut client = RawClient::connect(server.pop3);
                client.login(USER, PASSWORD);
                let stat = client.cmd("STAT");
                let count: usize = stat.split(' ').nth(1).unwrap().parse().unwrap();
                let mut dele = Vec::new();
                for n in 1..=count {
                    let reply = client.cmd(&format!("RETR {n}"));
                    assert!(reply.starts_with("+OK"), "RETR {n}: {reply}");
                    let mut octets = Vec::new();
                    loop {
                        let line = client.line().expect("RETR");
                        if line == "." {
                            break;
                        }
                        let line = line.strip_prefix('.').unwrap_or(&line);
                        octets.extend_from_slice(line.as_bytes());
                        octets.extend_from_slice(b"\r\n");
                    }
                    let id = id_of(&octets, &format!("POP3 RETR {n}"));
                    if doomed.contains(&id) {
                        dele.push((n, id));
                    }
                }
                for (n, _) in &dele {
                    assert!(client.cmd(&format!("DELE {n}")).starts_with("+OK"));
                }
                assert!(client.cmd("QUIT").starts_with("+OK"));
                deleted.extend(dele.into_iter().map(|(_, id)| id));
            }
            sessions
        });
        imap.join().unwrap();
        mda.join().unwrap();
        let sessions = pop3.join().unwrap();
        println!("POP3 sessions: {sessions}");
    });
    let tree = read_tree(
        &server,
        &["INBOX"],
        "after IMAP, POP3 and the outside writer",
    );
    let mut ids: Vec<u64> = tree["INBOX"].2.values().map(|(id, _)| *id).collect();
    ids.sort();
    let mut expected: Vec<u64> = acknowledged.lock().unwrap().clone();
    expected.extend(&mda_ids);
    expected.sort();
    assert_eq!(
        ids, expected,
        "INBOX holds every message nobody deleted, once"
    );
    println!(
        "{} IMAP appends, {} outside deliveries, {} deleted by POP3: INBOX {} messages",
        imap_ids.len(),
        mda_ids.len(),
        doomed.len(),
        ids.len()
    );
}
