//! One client command off the wire: its lines and literals gathered through the [`Channel`],
//! decoded by `imap-codec`, with the size limits applied before anything is buffered.
//!
//! `imap-codec` stops at a literal announcement (`{n}` or `{n+}` at the end of a line) with
//! `LiteralFound`; the reader then checks the size, sends `+` for a synchronizing literal, reads
//! exactly `n` bytes, then the rest of the command's line, and decodes the whole again.
//!
//! An APPEND's message is the exception: it is not held but handed to the session as an
//! [`AppendStart`] before its `+`, so the session can stream it into the store.
//!
//! The IMAP4rev2 syntax `imap-codec` lacks (SEARCH's result options, the saved result `$`,
//! extended LIST) is handled by the `syntax` module around the decoder.

use imap_codec::CommandCodec;
use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{LiteralMode, Tag};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;

use super::id::{MAX_ID_COMMAND_LEN, MAX_ID_LITERALS};
use super::response;
use super::syntax::list::{Incomplete, ListRequest};
use super::syntax::{self, Extension};
use crate::wire::{Channel, Interrupted};

/// Literals one command may carry. `imap-codec` decodes the whole command again after each
/// literal, so their number, not only their size, bounds the work a command costs; no
/// command served here needs more than a few.
const MAX_LITERALS: usize = 32;

/// How much one command may hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// The command's lines together, without literals and line endings. An ID command has
    /// its own cap instead, for lines and literals together ([`MAX_ID_COMMAND_LEN`]).
    pub(super) max_line_len: usize,
    /// The command's literals together.
    pub(super) max_literal_len: usize,
    /// The literals of an APPEND command together: the message.
    pub(super) max_append_len: usize,
    /// Whether the client has logged in. Before, only the commands of that state that take
    /// strings (LOGIN, ID) may announce a synchronizing literal; any other is refused before
    /// the `+`, so an APPEND cannot make the server wait for, or hold, its message.
    pub(super) authenticated: bool,
}

/// What the client sent.
#[derive(Debug)]
pub(super) enum Input {
    /// A well-formed command, and what `imap-codec` could not decode of it.
    Command(Command<'static>, Extension),
    /// A LIST in RFC 5258's extended syntax. Boxed: rare, and larger than the other inputs.
    List {
        tag: Tag<'static>,
        request: Box<ListRequest>,
    },
    /// A command to answer `BAD` (tagged when its tag could be read); the session goes on.
    Invalid {
        tag: Option<Tag<'static>>,
        problem: Problem,
    },
    /// A non-synchronizing literal over the limits. Its bytes are already on their way and
    /// would be read as commands, so the session has to end.
    LiteralOverflow(Problem),
    /// An APPEND up to its message literal, which is still unread (and, when synchronizing,
    /// not yet asked for). Boxed: rare, and larger than the other inputs.
    Append(Box<AppendStart>),
}

/// An APPEND command whose message is next on the wire: everything the session needs to
/// open an upload and answer `NO` before the client sends the message.
#[derive(Debug)]
pub(super) struct AppendStart {
    pub(super) tag: Tag<'static>,
    pub(super) mailbox: Mailbox<'static>,
    pub(super) flags: Vec<Flag<'static>>,
    pub(super) date: Option<DateTime>,
    /// The message's size, within the APPEND cap.
    pub(super) length: usize,
    /// Whether the client waits for `+` before sending the message.
    pub(super) mode: LiteralMode,
}

/// Why a command could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Problem {
    LineTooLong,
    LiteralTooLarge,
    TooManyLiterals,
    LoginFirst,
    Syntax,
    UnknownOption,
}

impl Problem {
    pub(super) fn text(self) -> &'static str {
        match self {
            Problem::LineTooLong => "Command line too long",
            Problem::LiteralTooLarge => "Literal too large",
            Problem::TooManyLiterals => "Too many literals",
            Problem::LoginFirst => "Log in first",
            Problem::Syntax => "Unknown command or invalid arguments",
            Problem::UnknownOption => "Unknown or unsupported option",
        }
    }
}

/// Read the next command. A synchronizing literal over the limit is refused before the client
/// sends it (RFC 3501 section 7.5: `BAD` instead of `+`), so the session can go on.
///
/// An ID command is held to its own cap instead ([`MAX_ID_COMMAND_LEN`], lines and literals
/// together), in every state: RFC 2971 allows an ID longer than any other command needs.
pub(super) async fn read_command(
    channel: &mut Channel,
    limits: Limits,
) -> Result<Input, Interrupted> {
    let input = read(channel, limits).await;
    // An ID's continuation lines are read under what is left of its cap.
    channel.set_max_line_len(limits.max_line_len);
    input
}

async fn read(channel: &mut Channel, limits: Limits) -> Result<Input, Interrupted> {
    let codec = CommandCodec::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut line_bytes = 0usize;
    let mut literal_bytes = 0usize;
    let mut literals = 0usize;
    loop {
        let Some(line) = channel.next_line().await? else {
            // The reader dropped the line but kept its start, where the tag is.
            let head = channel.take_overlong_head();
            return Ok(match buf.is_empty() {
                true => invalid(&head, Problem::LineTooLong),
                false => invalid(&buf, Problem::LineTooLong),
            });
        };
        let id = is_id_command(if buf.is_empty() { &line } else { &buf });
        line_bytes += line.len();
        let too_long = match id {
            true => line_bytes.saturating_add(literal_bytes) > MAX_ID_COMMAND_LEN,
            false => line_bytes > limits.max_line_len,
        };
        if too_long {
            let problem = Problem::LineTooLong;
            return Ok(match buf.is_empty() {
                true => invalid(&line, problem),
                false => invalid(&buf, problem),
            });
        }
        buf.extend_from_slice(&line);
        buf.extend_from_slice(b"\r\n");
        let (tag, length, mode) = match decode(&codec, &buf) {
            Decoded::Done(input) => return Ok(input),
            Decoded::Literal { tag, length, mode } => (tag, length, mode),
        };
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        literal_bytes = literal_bytes.saturating_add(length);
        literals += 1;
        let word = command_word(&buf);
        let append = word.eq_ignore_ascii_case(b"APPEND") && limits.authenticated;
        let (too_large, too_many) = match id {
            true => (
                line_bytes.saturating_add(literal_bytes) > MAX_ID_COMMAND_LEN,
                literals > MAX_ID_LITERALS,
            ),
            false => (
                literal_bytes
                    > match append {
                        true => limits.max_append_len,
                        false => limits.max_literal_len,
                    },
                literals > MAX_LITERALS,
            ),
        };
        let allowed = limits.authenticated || takes_literals_before_login(word);
        let problem = match () {
            _ if too_large => Some(Problem::LiteralTooLarge),
            _ if too_many => Some(Problem::TooManyLiterals),
            // A non-synchronizing literal within the cap is read: the state machine then
            // answers the command `BAD` as for any other in the wrong state.
            _ if !allowed && mode == LiteralMode::Sync => Some(Problem::LoginFirst),
            _ => None,
        };
        if let Some(problem) = problem {
            return Ok(match mode {
                LiteralMode::Sync => Input::Invalid {
                    tag: Some(tag),
                    problem,
                },
                LiteralMode::NonSync => Input::LiteralOverflow(problem),
            });
        }
        if append && let Some(start) = append_start(&codec, &buf, &tag, length, mode) {
            return Ok(Input::Append(Box::new(start)));
        }
        if mode == LiteralMode::Sync {
            response::continuation(channel.out(), "Ready for literal data");
            channel.flush().await.map_err(Interrupted::Gone)?;
        }
        let literal = channel.read_literal(length).await?;
        buf.extend_from_slice(&literal);
        if id {
            channel.set_max_line_len(MAX_ID_COMMAND_LEN - line_bytes - literal_bytes);
        }
    }
}

/// What a command's text so far makes.
enum Decoded {
    Done(Input),
    /// A literal is announced at the end and still on the wire.
    Literal {
        tag: Tag<'static>,
        length: u32,
        mode: LiteralMode,
    },
}

/// Decode `buf`, a command's text up to a line's end: by `imap-codec`, with the IMAP4rev2
/// syntax it lacks taken care of by [`syntax`].
fn decode(codec: &CommandCodec, buf: &[u8]) -> Decoded {
    let (text, extension) = match syntax::prepare(buf) {
        Ok(Some((text, extension))) => (std::borrow::Cow::Owned(text), extension),
        Ok(None) => (std::borrow::Cow::Borrowed(buf), Extension::default()),
        Err(refusal) => return Decoded::Done(invalid(buf, refusal.problem())),
    };
    match codec.decode(&text) {
        Ok((_, command)) => Decoded::Done(Input::Command(command.into_static(), extension)),
        Err(CommandDecodeError::LiteralFound { tag, length, mode }) => Decoded::Literal {
            tag: tag.into_static(),
            length,
            mode,
        },
        // The buffer always ends with a whole line, so "incomplete" is as bad as "failed".
        Err(CommandDecodeError::Incomplete | CommandDecodeError::Failed) => {
            extended_list(buf).unwrap_or_else(|| Decoded::Done(invalid(buf, Problem::Syntax)))
        }
    }
}

/// A LIST that `imap-codec` refused, in RFC 5258's syntax; `None` if it is no LIST.
fn extended_list(buf: &[u8]) -> Option<Decoded> {
    let head = syntax::head(buf).filter(|head| !head.uid)?;
    if !head.name.eq_ignore_ascii_case(b"LIST") {
        return None;
    }
    let tag = tag_of(buf)?;
    Some(match syntax::list::parse(buf, head.args) {
        Ok(request) => Decoded::Done(Input::List {
            tag,
            request: Box::new(request),
        }),
        Err(Incomplete::Literal { length, mode }) => Decoded::Literal { tag, length, mode },
        Err(Incomplete::Refused(refusal)) => Decoded::Done(invalid(buf, refusal.problem())),
    })
}

/// If the literal announced at the end of `command` is an APPEND's message, the command's
/// other arguments. Decoded by `imap-codec` as the same command with an empty message in
/// place of the announced one, so there is one parser of APPEND's syntax; a literal that is
/// not the message (a mailbox name sent as a literal) does not decode so, and is read as any
/// other.
fn append_start(
    codec: &CommandCodec,
    command: &[u8],
    tag: &Tag<'static>,
    length: usize,
    mode: LiteralMode,
) -> Option<AppendStart> {
    if !command_word(command).eq_ignore_ascii_case(b"APPEND") {
        return None;
    }
    let announcement = command.iter().rposition(|&b| b == b'{')?;
    let mut probe = command[..announcement].to_vec();
    probe.extend_from_slice(b"{0}\r\n\r\n");
    let Ok((rest, command)) = codec.decode(&probe) else {
        return None;
    };
    let CommandBody::Append {
        mailbox,
        flags,
        date,
        ..
    } = command.body
    else {
        return None;
    };
    rest.is_empty().then(|| AppendStart {
        tag: tag.clone(),
        mailbox: mailbox.into_static(),
        flags: flags.into_iter().map(IntoStatic::into_static).collect(),
        date,
        length,
        mode,
    })
}

/// The command's name, its second word: a literal's size has to be judged before
/// `imap-codec` can decode the command.
fn command_word(command: &[u8]) -> &[u8] {
    command.split(|&b| b == b' ').nth(1).unwrap_or_default()
}

/// Whether `line` starts an ID command (RFC 2971), which has a cap of its own: judged by its
/// first words, so that a line can be let past the usual cap while it is still arriving.
pub(super) fn is_id_command(line: &[u8]) -> bool {
    command_word(line).eq_ignore_ascii_case(b"ID")
}

/// The commands allowed before login whose arguments may be literals (RFC 3501 section 6.2,
/// RFC 2971).
fn takes_literals_before_login(word: &[u8]) -> bool {
    [&b"LOGIN"[..], b"ID"]
        .iter()
        .any(|name| word.eq_ignore_ascii_case(name))
}

fn invalid(command: &[u8], problem: Problem) -> Input {
    Input::Invalid {
        tag: tag_of(command),
        problem,
    }
}

/// The tag of a command that did not decode, if its first word is a valid tag: then the
/// client can match the `BAD` to its command.
fn tag_of(command: &[u8]) -> Option<Tag<'static>> {
    let end = command
        .iter()
        .position(|&b| b == b' ' || b == b'\r')
        .unwrap_or(command.len());
    Tag::try_from(command[..end].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use imap_codec::imap_types::command::CommandBody;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::connection::Transport;
    use crate::session::{Protocol, Session};

    const LIMITS: Limits = Limits {
        max_line_len: 100,
        max_literal_len: 16,
        max_append_len: 64,
        authenticated: true,
    };

    fn channel() -> (Channel, DuplexStream) {
        let (client, server) = tokio::io::duplex(4096);
        let session = Arc::new(Session::new(
            Protocol::Imap,
            "192.0.2.1:4000".parse().unwrap(),
            "127.0.0.1:143".parse().unwrap(),
        ));
        let mut channel = Channel::new(
            Transport::new(server),
            session,
            LIMITS.max_line_len,
            Duration::from_secs(5),
        );
        // As the session sets it up.
        channel.allow_longer_lines(MAX_ID_COMMAND_LEN, is_id_command);
        (channel, client)
    }

    async fn read(channel: &mut Channel) -> Input {
        read_command(channel, LIMITS).await.unwrap()
    }

    async fn received(client: &mut DuplexStream, n: usize) -> String {
        let mut buf = vec![0; n];
        client.read_exact(&mut buf).await.unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[tokio::test]
    async fn synchronizing_literal_gets_a_continuation() {
        let (mut channel, mut client) = channel();
        client.write_all(b"a1 LOGIN {5}\r\n").await.unwrap();
        let reading = tokio::spawn(async move { (read(&mut channel).await, channel) });
        assert_eq!(received(&mut client, 24).await, "+ Ready for literal data");
        client.write_all(b"alice secret\r\n").await.unwrap();
        let (input, _channel) = reading.await.unwrap();
        let Input::Command(command, _) = input else {
            panic!("{input:?}")
        };
        assert_eq!(command.tag.inner(), "a1");
        assert!(matches!(command.body, CommandBody::Login { .. }));
    }

    #[tokio::test]
    async fn non_synchronizing_literals_are_read_without_asking() {
        let (mut channel, mut client) = channel();
        client
            .write_all(b"a2 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\nb NOOP\r\n")
            .await
            .unwrap();
        let first = read(&mut channel).await;
        assert!(matches!(first, Input::Command(..)), "{first:?}");
        let second = read(&mut channel).await;
        assert!(matches!(second, Input::Command(..)), "{second:?}");
        // Nothing was sent: no continuation requests.
        drop(channel);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }

    #[tokio::test]
    async fn oversized_literals_and_lines_are_refused() {
        let (mut channel, mut client) = channel();
        client
            .write_all(b"a3 LOGIN {17}\r\nb4 x\r\nc5 LOGIN {17+}\r\n")
            .await
            .unwrap();
        let Input::Invalid { tag, problem } = read(&mut channel).await else {
            panic!()
        };
        assert_eq!(
            (tag.unwrap().inner(), problem),
            ("a3", Problem::LiteralTooLarge)
        );
        let Input::Invalid { tag, problem } = read(&mut channel).await else {
            panic!()
        };
        assert_eq!((tag.unwrap().inner(), problem), ("b4", Problem::Syntax));
        assert!(matches!(
            read(&mut channel).await,
            Input::LiteralOverflow(Problem::LiteralTooLarge)
        ));
        let long = format!("d6 NOOP {}\r\n* x\r\n", "x".repeat(200));
        client.write_all(long.as_bytes()).await.unwrap();
        let Input::Invalid { tag, problem } = read(&mut channel).await else {
            panic!()
        };
        assert_eq!(
            (tag.unwrap().inner(), problem),
            ("d6", Problem::LineTooLong),
            "an overlong line is answered by its tag"
        );
        let Input::Invalid { tag, .. } = read(&mut channel).await else {
            panic!()
        };
        assert_eq!(tag, None, "`*` is not a tag");
    }

    #[tokio::test]
    async fn append_has_its_own_cap() {
        let (mut channel, mut client) = channel();
        let message = "x".repeat(40);
        let command = format!("a8 append INBOX {{40+}}\r\n{message}\r\nb9 APPEND INBOX {{65}}\r\n");
        client.write_all(command.as_bytes()).await.unwrap();
        let Input::Append(start) = read(&mut channel).await else {
            panic!("a 40-byte message is under the APPEND cap")
        };
        assert_eq!((start.tag.inner(), start.length), ("a8", 40));
        // The session streams the message; here it is read as it would be.
        assert_eq!(channel.read_literal(40).await.unwrap(), message.as_bytes());
        assert_eq!(
            channel.next_line().await.unwrap().as_deref(),
            Some(&b""[..])
        );
        let Input::Invalid { tag, problem } = read(&mut channel).await else {
            panic!()
        };
        assert_eq!(
            (tag.unwrap().inner(), problem),
            ("b9", Problem::LiteralTooLarge)
        );
    }

    #[tokio::test]
    async fn a_literal8_message_is_streamed_under_the_append_cap() {
        // BINARY (RFC 3516 section 4.4): `~{n}` is the same message literal as `{n}`.
        let (mut channel, mut client) = channel();
        let message = [b'\0'; 40];
        let command = [
            &b"a1 APPEND INBOX ~{40+}\r\n"[..],
            &message,
            b"\r\nb2 APPEND INBOX ~{65}\r\n",
        ]
        .concat();
        client.write_all(&command).await.unwrap();
        let Input::Append(start) = read(&mut channel).await else {
            panic!("a literal8 message under the APPEND cap is streamed")
        };
        assert_eq!((start.length, start.mode), (40, LiteralMode::NonSync));
        // The session streams the message; here it is read as it would be.
        assert_eq!(channel.read_literal(40).await.unwrap(), &message[..]);
        assert_eq!(
            channel.next_line().await.unwrap().as_deref(),
            Some(&b""[..])
        );
        let Input::Invalid { tag, problem } = read(&mut channel).await else {
            panic!()
        };
        assert_eq!(
            (tag.unwrap().inner(), problem),
            ("b2", Problem::LiteralTooLarge)
        );
    }

    #[tokio::test]
    async fn an_append_stops_before_its_message_with_its_arguments_decoded() {
        let (mut channel, mut client) = channel();
        // The mailbox itself a literal: read as any literal, then the message is found.
        client
            .write_all(
                b"a1 APPEND {6+}\r\nDrafts (\\Seen $Work) \"05-Dec-2026 10:00:00 +0100\" {12}\r\n",
            )
            .await
            .unwrap();
        let input = read(&mut channel).await;
        let Input::Append(start) = input else {
            panic!("an APPEND with a message literal: {input:?}")
        };
        assert_eq!(start.tag.inner(), "a1");
        let mailbox = crate::imap::mailboxes::mailbox_name(&start.mailbox, false);
        assert_eq!(mailbox.as_deref(), Some("Drafts"));
        assert_eq!(start.flags.len(), 2);
        assert!(start.date.is_some());
        assert_eq!((start.length, start.mode), (12, LiteralMode::Sync));
        drop(channel);
        let mut sent = Vec::new();
        client.read_to_end(&mut sent).await.unwrap();
        assert!(sent.is_empty(), "no `+` yet: the session asks: {sent:?}");
    }

    #[tokio::test]
    async fn before_login_an_append_is_never_started() {
        let (mut channel, mut client) = channel();
        client
            .write_all(b"a1 APPEND INBOX {3+}\r\nabc\r\n")
            .await
            .unwrap();
        let before_login = Limits {
            authenticated: false,
            ..LIMITS
        };
        let input = read_command(&mut channel, before_login).await.unwrap();
        assert!(
            matches!(input, Input::Command(..)),
            "read whole within the login cap, for the state machine to refuse: {input:?}"
        );
    }

    #[tokio::test]
    async fn the_number_of_literals_is_bounded() {
        let (mut channel, mut client) = channel();
        let mut command = b"e7 SEARCH".to_vec();
        for _ in 0..=MAX_LITERALS {
            command.extend_from_slice(b" TEXT {0+}\r\n");
        }
        command.extend_from_slice(b"\r\n");
        client.write_all(&command).await.unwrap();
        let roomy = Limits {
            max_line_len: 1000,
            ..LIMITS
        };
        let input = read_command(&mut channel, roomy).await.unwrap();
        assert!(
            matches!(input, Input::LiteralOverflow(Problem::TooManyLiterals)),
            "{input:?}"
        );
    }

    #[tokio::test]
    async fn before_login_only_login_and_id_may_announce_literals() {
        let (mut channel, mut client) = channel();
        let before_login = Limits {
            authenticated: false,
            ..LIMITS
        };
        client
            .write_all(b"a1 APPEND INBOX {52428800}\r\na2 APPEND INBOX {10}\r\n")
            .await
            .unwrap();
        for tag in ["a1", "a2"] {
            let input = read_command(&mut channel, before_login).await.unwrap();
            let Input::Invalid { tag: got, problem } = input else {
                panic!("{input:?}")
            };
            assert_eq!(got.unwrap().inner(), tag);
            assert!(
                matches!(problem, Problem::LiteralTooLarge | Problem::LoginFirst),
                "{problem:?}"
            );
        }
        client.write_all(b"a3 LOGIN {5}\r\n").await.unwrap();
        let reading = tokio::spawn(async move {
            let input = read_command(&mut channel, before_login).await.unwrap();
            (input, channel)
        });
        assert_eq!(
            received(&mut client, 24).await,
            "+ Ready for literal data",
            "no continuation was sent for the APPENDs, one is sent for LOGIN"
        );
        client.write_all(b"alice x\r\n").await.unwrap();
        let (input, _channel) = reading.await.unwrap();
        assert!(matches!(input, Input::Command(..)), "{input:?}");
    }

    const BEFORE_LOGIN: Limits = Limits {
        authenticated: false,
        ..LIMITS
    };

    /// Send `bytes` while the command is read (the pipe holds less than a long ID).
    async fn read_while_sending(
        channel: &mut Channel,
        client: &mut DuplexStream,
        bytes: Vec<u8>,
    ) -> Input {
        let (input, sent) = tokio::join!(
            read_command(channel, BEFORE_LOGIN),
            client.write_all(&bytes)
        );
        sent.unwrap();
        input.unwrap()
    }

    fn id_pairs(input: &Input) -> usize {
        match input {
            Input::Command(
                Command {
                    body:
                        CommandBody::Id {
                            parameters: Some(pairs),
                        },
                    ..
                },
                _,
            ) => pairs.len(),
            other => panic!("not an ID: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_largest_id_is_read_whole_before_login_however_it_is_written() {
        let (mut channel, mut client) = channel();
        // Every octet a `"`, so every octet escaped: the longest way to write RFC 2971's
        // largest ID (30 pairs, fields of 30 octets, values of 1024), with a 64-byte tag.
        let field = format!("\"{}\"", "\\\"".repeat(30));
        let value = format!("\"{}\"", "\\\"".repeat(1024));
        let pairs = vec![format!("{field} {value}"); 30].join(" ");
        let escaped = format!("{} ID ({pairs})\r\n", "t".repeat(64));
        assert!(escaped.len() > 60_000);
        let input = read_while_sending(&mut channel, &mut client, escaped.into_bytes()).await;
        assert_eq!(id_pairs(&input), 30);

        // Every value a literal (LITERAL+), and a long quoted rest after the last one: the
        // lines after a literal are held to what is left of the ID's cap, not the line cap.
        let mut literals = b"a2 ID (".to_vec();
        for i in 0..29 {
            literals.extend(format!("\"field{i}\" {{1024+}}\r\n").bytes());
            literals.extend([b'v'; 1024]);
            literals.push(b' ');
        }
        literals.extend(format!("\"last\" \"{}\")\r\n", "w".repeat(1024)).bytes());
        let input = read_while_sending(&mut channel, &mut client, literals).await;
        assert_eq!(id_pairs(&input), 30);

        // The line cap is the usual one again for the next command.
        let long_noop = format!("a3 NOOP {}\r\n", "x".repeat(200)).into_bytes();
        let input = read_while_sending(&mut channel, &mut client, long_noop).await;
        assert!(
            matches!(
                input,
                Input::Invalid {
                    problem: Problem::LineTooLong,
                    ..
                }
            ),
            "{input:?}"
        );
    }

    #[tokio::test]
    async fn an_id_past_its_cap_is_refused_by_its_tag() {
        let (mut channel, mut client) = channel();
        let mut line = b"a1 ID (\"name\" \"".to_vec();
        line.resize(MAX_ID_COMMAND_LEN + 1, b'x');
        line.extend_from_slice(b"\")\r\n");
        let input = read_while_sending(&mut channel, &mut client, line).await;
        let Input::Invalid { tag, problem } = input else {
            panic!("{input:?}")
        };
        assert_eq!(
            (tag.unwrap().inner(), problem),
            ("a1", Problem::LineTooLong)
        );

        // Literals count against the same cap: this one would pass it, and is refused
        // before its `+`.
        let mut command = b"a2 ID (\"name\" \"".to_vec();
        command.resize(MAX_ID_COMMAND_LEN - 100, b'x');
        command.extend_from_slice(b"\" \"os\" {200}\r\n");
        let input = read_while_sending(&mut channel, &mut client, command).await;
        let Input::Invalid { tag, problem } = input else {
            panic!("{input:?}")
        };
        assert_eq!(
            (tag.unwrap().inner(), problem),
            ("a2", Problem::LiteralTooLarge)
        );

        // So does their number: one for each string of 30 pairs, no more.
        let mut command = b"a3 ID (".to_vec();
        for _ in 0..=MAX_ID_LITERALS {
            command.extend_from_slice(b"{1+}\r\nx ");
        }
        command.extend_from_slice(b")\r\n");
        let input = read_while_sending(&mut channel, &mut client, command).await;
        assert!(
            matches!(input, Input::LiteralOverflow(Problem::TooManyLiterals)),
            "{input:?}"
        );
    }
}
