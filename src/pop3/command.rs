//! POP3 command lines (RFC 1939, RFC 2449, RFC 2595, RFC 5034, RFC 6856) and SASL client
//! responses, parsed by pure functions.
//!
//! Framing (reading up to CRLF, the 255-octet line limit of RFC 2449) is the caller's job: these
//! functions take one line without its line ending. Which command is allowed in which session
//! state is the session service's job.

use std::fmt;

use crate::auth::sasl::base64;

/// Longest argument RFC 2449 allows, in characters. `PASS`, user names (e-mail addresses
/// are often longer) and AUTH's initial response are exempt.
///
/// ```
/// use tower_mail::pop3::command::{parse, ParseError, MAX_ARG_LEN};
/// assert!(parse(format!("TOP 1 {}", "1".repeat(MAX_ARG_LEN)).as_bytes()).is_err());
/// let long_user = format!("USER {}@example.com", "u".repeat(MAX_ARG_LEN));
/// assert!(parse(long_user.as_bytes()).is_ok());
/// ```
pub const MAX_ARG_LEN: usize = 40;

/// How much of an unknown keyword is kept for the error text.
const MAX_KEYWORD_ECHO: usize = 20;

/// Longest SASL mechanism name (RFC 4422 section 3.1).
const MAX_MECHANISM_LEN: usize = 20;

/// One POP3 command.
///
/// `Debug` never shows secrets: the PASS argument, the APOP digest and AUTH's initial response
/// are printed as `<redacted>`, so commands can be logged as they are.
///
/// ```
/// use tower_mail::pop3::command::{parse, Command};
/// let cmd = parse(b"PASS hunter2").unwrap();
/// assert_eq!(cmd, Command::Pass("hunter2".into()));
/// assert_eq!(format!("{cmd:?}"), "Pass(<redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `USER name` (RFC 1939). The name is UTF-8 (RFC 6856) without control characters.
    User(String),
    /// `PASS string` (RFC 1939): everything after `PASS `, spaces included, exactly as sent.
    Pass(String),
    /// `APOP name digest` (RFC 1939).
    Apop {
        /// The mailbox name, as for [`Command::User`].
        name: String,
        /// The MD5 digest: 32 hexadecimal digits, lowercased here.
        digest: String,
    },
    /// `STAT`.
    Stat,
    /// `LIST [msg]`.
    List(Option<u32>),
    /// `RETR msg`.
    Retr(u32),
    /// `DELE msg`.
    Dele(u32),
    /// `NOOP`.
    Noop,
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
    /// `TOP msg n` (RFC 1939): the headers and the first `lines` lines of the body.
    Top {
        /// The message number, at least 1.
        msg: u32,
        /// How many body lines to send; 0 is allowed.
        lines: u32,
    },
    /// `UIDL [msg]`.
    Uidl(Option<u32>),
    /// `CAPA` (RFC 2449).
    Capa,
    /// `STLS` (RFC 2595).
    Stls,
    /// `AUTH [mechanism [initial-response]]` (RFC 5034). Without arguments, common practice is
    /// to list the mechanisms.
    Auth {
        /// The SASL mechanism name, uppercased (`PLAIN`).
        mechanism: Option<String>,
        /// The base64 initial response as sent; `=` stands for an empty response. Check and
        /// decode it with [`decode_sasl_response`] or [`decode_auth_plain`].
        initial_response: Option<String>,
    },
    /// `UTF8` (RFC 6856).
    Utf8,
    /// `LANG [lang-range]` (RFC 6856): a language range such as `en`, `pt-BR` or `*`.
    Lang(Option<String>),
}

impl Command {
    /// The command's keyword in upper case, for logs and metrics.
    ///
    /// ```
    /// use tower_mail::pop3::command::parse;
    /// assert_eq!(parse(b"retr 1").unwrap().keyword(), "RETR");
    /// ```
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Apop { .. } => "APOP",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
            Command::Top { .. } => "TOP",
            Command::Uidl(_) => "UIDL",
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::Auth { .. } => "AUTH",
            Command::Utf8 => "UTF8",
            Command::Lang(_) => "LANG",
        }
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::User(name) => f.debug_tuple("User").field(name).finish(),
            Command::Pass(_) => f.debug_tuple("Pass").field(&Redacted).finish(),
            Command::Apop { name, .. } => f
                .debug_struct("Apop")
                .field("name", name)
                .field("digest", &Redacted)
                .finish(),
            Command::List(msg) => f.debug_tuple("List").field(msg).finish(),
            Command::Retr(msg) => f.debug_tuple("Retr").field(msg).finish(),
            Command::Dele(msg) => f.debug_tuple("Dele").field(msg).finish(),
            Command::Top { msg, lines } => f
                .debug_struct("Top")
                .field("msg", msg)
                .field("lines", lines)
                .finish(),
            Command::Uidl(msg) => f.debug_tuple("Uidl").field(msg).finish(),
            Command::Auth {
                mechanism,
                initial_response,
            } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field(
                    "initial_response",
                    &initial_response.as_ref().map(|_| Redacted),
                )
                .finish(),
            Command::Lang(range) => f.debug_tuple("Lang").field(range).finish(),
            Command::Stat => f.write_str("Stat"),
            Command::Noop => f.write_str("Noop"),
            Command::Rset => f.write_str("Rset"),
            Command::Quit => f.write_str("Quit"),
            Command::Capa => f.write_str("Capa"),
            Command::Stls => f.write_str("Stls"),
            Command::Utf8 => f.write_str("Utf8"),
        }
    }
}

/// Why a line is not a valid command. `Display` gives a short text to send after `-ERR `: one
/// line, printable ASCII only, never an argument's value.
///
/// ```
/// use tower_mail::pop3::command::{parse, ParseError};
/// let err = parse(b"XYZZY\x1b[2J").unwrap_err();
/// assert_eq!(err, ParseError::UnknownCommand("XYZZY?[2J".into()));
/// assert_eq!(err.to_string(), "Unknown command: XYZZY?[2J");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The keyword is not a known command. Holds the keyword cut to 20 characters, with every
    /// byte that is not printable ASCII replaced by `?`.
    UnknownCommand(String),
    /// A required argument is absent.
    MissingArgument,
    /// More arguments than the command takes.
    TooManyArguments,
    /// An argument is malformed: not a valid number, too long, bad characters, bad base64 or a
    /// malformed SASL message.
    InvalidArgument,
    /// The line is empty or only spaces.
    Empty,
    /// A user name, password or SASL identity is not valid UTF-8.
    InvalidUtf8,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnknownCommand(keyword) => write!(f, "Unknown command: {keyword}"),
            ParseError::MissingArgument => f.write_str("Missing argument"),
            ParseError::TooManyArguments => f.write_str("Too many arguments"),
            ParseError::InvalidArgument => f.write_str("Invalid argument"),
            ParseError::Empty => f.write_str("Empty command"),
            ParseError::InvalidUtf8 => f.write_str("Invalid UTF-8"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parse one command line, given without its CRLF (a trailing CR or CRLF is tolerated anyway).
///
/// Keywords are case-insensitive. Arguments are separated by spaces; runs of spaces and leading
/// or trailing spaces are tolerated, except that the PASS argument is everything after the
/// single space that follows `PASS`. Message numbers are plain decimal from 1 to 4294967295.
///
/// ```
/// use tower_mail::pop3::command::{parse, Command, ParseError};
/// assert_eq!(parse(b"top 3 10\r"), Ok(Command::Top { msg: 3, lines: 10 }));
/// assert_eq!(parse(b"LIST"), Ok(Command::List(None)));
/// assert_eq!(parse(b"PASS  two  spaces "), Ok(Command::Pass(" two  spaces ".into())));
/// assert_eq!(parse(b"RETR 0"), Err(ParseError::InvalidArgument));
/// assert_eq!(parse(b""), Err(ParseError::Empty));
/// ```
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = strip_line_end(line);
    let start = line
        .iter()
        .position(|&b| b != b' ')
        .ok_or(ParseError::Empty)?;
    let line = &line[start..];
    let (keyword, rest) = match line.iter().position(|&b| b == b' ') {
        Some(space) => (&line[..space], &line[space + 1..]),
        None => (line, &line[line.len()..]),
    };
    let mut buffer = [0u8; 4];
    let upper = match keyword.len() {
        // RFC 2449: keywords are 3 or 4 characters, so anything else is unknown.
        3 | 4 => {
            let upper = &mut buffer[..keyword.len()];
            upper.copy_from_slice(keyword);
            upper.make_ascii_uppercase();
            &*upper
        }
        _ => &[],
    };
    let command = match upper {
        b"USER" => {
            let [name] = split_args(rest)?;
            Command::User(user_name(required(name)?)?)
        }
        b"PASS" => {
            // RFC 1939: PASS has a single argument, so spaces are part of the password.
            if rest.is_empty() {
                return Err(ParseError::MissingArgument);
            }
            Command::Pass(utf8(rest)?.to_owned())
        }
        b"APOP" => {
            let [name, digest] = split_args(rest)?;
            let name = user_name(required(name)?)?;
            Command::Apop {
                name,
                digest: apop_digest(required(digest)?)?,
            }
        }
        b"STAT" => no_args(rest, Command::Stat)?,
        b"LIST" => {
            let [msg] = split_args(rest)?;
            Command::List(msg.map(message_number).transpose()?)
        }
        b"RETR" => {
            let [msg] = split_args(rest)?;
            Command::Retr(message_number(required(msg)?)?)
        }
        b"DELE" => {
            let [msg] = split_args(rest)?;
            Command::Dele(message_number(required(msg)?)?)
        }
        b"NOOP" => no_args(rest, Command::Noop)?,
        b"RSET" => no_args(rest, Command::Rset)?,
        b"QUIT" => no_args(rest, Command::Quit)?,
        b"TOP" => {
            let [msg, lines] = split_args(rest)?;
            let msg = message_number(required(msg)?)?;
            Command::Top {
                msg,
                lines: number(required(lines)?)?,
            }
        }
        b"UIDL" => {
            let [msg] = split_args(rest)?;
            Command::Uidl(msg.map(message_number).transpose()?)
        }
        b"CAPA" => no_args(rest, Command::Capa)?,
        b"STLS" => no_args(rest, Command::Stls)?,
        b"AUTH" => {
            let [mechanism, initial_response] = split_args(rest)?;
            Command::Auth {
                mechanism: mechanism.map(mechanism_name).transpose()?,
                initial_response: initial_response.map(base64_text).transpose()?,
            }
        }
        b"UTF8" => no_args(rest, Command::Utf8)?,
        b"LANG" => {
            let [range] = split_args(rest)?;
            Command::Lang(range.map(language_range).transpose()?)
        }
        _ => return Err(ParseError::UnknownCommand(clean_keyword(keyword))),
    };
    Ok(command)
}

/// A client's line during a SASL exchange (RFC 5034 section 4), answering a `+ ` challenge.
///
/// `Debug` never shows the data.
///
/// ```
/// use tower_mail::pop3::command::{parse_auth_response, AuthResponse};
/// assert_eq!(parse_auth_response(b"*"), AuthResponse::Cancel);
/// assert_eq!(parse_auth_response(b"dXNlcg=="), AuthResponse::Data("dXNlcg==".into()));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum AuthResponse {
    /// `*`: the client cancels the exchange; answer `-ERR`.
    Cancel,
    /// The base64 response, unchecked; an empty line is an empty response. Decode it with
    /// [`decode_sasl_response`].
    Data(String),
}

impl fmt::Debug for AuthResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthResponse::Cancel => f.write_str("Cancel"),
            AuthResponse::Data(_) => f.debug_tuple("Data").field(&Redacted).finish(),
        }
    }
}

/// Classify a SASL continuation line, given without its CRLF (a trailing CR is tolerated).
///
/// These lines are not commands, so they are never parsed with [`parse`]. Bytes that are not
/// UTF-8 become U+FFFD, which no base64 decoder accepts, so they still fail at decoding.
///
/// ```
/// use tower_mail::pop3::command::{parse_auth_response, AuthResponse};
/// assert_eq!(parse_auth_response(b"*\r"), AuthResponse::Cancel);
/// assert_eq!(parse_auth_response(b""), AuthResponse::Data(String::new()));
/// ```
pub fn parse_auth_response(line: &[u8]) -> AuthResponse {
    let line = strip_line_end(line);
    if line == b"*" {
        AuthResponse::Cancel
    } else {
        AuthResponse::Data(String::from_utf8_lossy(line).into_owned())
    }
}

/// Decode a SASL response: strict base64, where `=` alone is the empty initial response of
/// RFC 5034 (an empty continuation line decodes to nothing as well).
///
/// ```
/// use tower_mail::pop3::command::{decode_sasl_response, ParseError};
/// assert_eq!(decode_sasl_response("dXNlcg==").unwrap(), b"user");
/// assert_eq!(decode_sasl_response("=").unwrap(), b"");
/// assert_eq!(decode_sasl_response("dXNlcg"), Err(ParseError::InvalidArgument));
/// ```
pub fn decode_sasl_response(text: &str) -> Result<Vec<u8>, ParseError> {
    if text == "=" {
        return Ok(Vec::new());
    }
    base64::decode(text.as_bytes()).map_err(|_| ParseError::InvalidArgument)
}

/// Decode a SASL PLAIN response (RFC 4616): base64 of `[authzid] NUL authcid NUL passwd`.
///
/// Returns `(authzid, authcid, password)`; an empty authzid is `None`. Bad base64, an empty
/// response (`=`), or a message [`auth::sasl::decode_plain`](crate::auth::sasl::decode_plain)
/// refuses are [`ParseError::InvalidArgument`].
///
/// ```
/// use tower_mail::pop3::command::decode_auth_plain;
/// // base64 of "\0tim\0tanstaaftanstaaf", the example of RFC 4616.
/// let (authzid, authcid, password) = decode_auth_plain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm").unwrap();
/// assert_eq!((authzid, authcid.as_str(), password.as_str()), (None, "tim", "tanstaaftanstaaf"));
/// assert!(decode_auth_plain("=").is_err());
/// ```
pub fn decode_auth_plain(base64: &str) -> Result<(Option<String>, String, String), ParseError> {
    let message = decode_sasl_response(base64)?;
    crate::auth::sasl::decode_plain(&message).map_err(|_| ParseError::InvalidArgument)
}

/// Drop one line ending: CRLF, CR or LF. Callers frame on LF and may leave the CR behind.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The space-separated arguments after the keyword, at most `N` of them.
fn split_args<const N: usize>(rest: &[u8]) -> Result<[Option<&[u8]>; N], ParseError> {
    let mut tokens = rest.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let mut args = [None; N];
    for arg in &mut args {
        *arg = tokens.next();
    }
    match tokens.next() {
        Some(_) => Err(ParseError::TooManyArguments),
        None => Ok(args),
    }
}

fn no_args(rest: &[u8], command: Command) -> Result<Command, ParseError> {
    let [] = split_args::<0>(rest)?;
    Ok(command)
}

fn required(arg: Option<&[u8]>) -> Result<&[u8], ParseError> {
    arg.ok_or(ParseError::MissingArgument)
}

fn utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|_| ParseError::InvalidUtf8)
}

/// A plain decimal number: no sign, no spaces, no overflow. Leading zeros are allowed.
fn number(arg: &[u8]) -> Result<u32, ParseError> {
    if arg.is_empty() || arg.len() > MAX_ARG_LEN {
        return Err(ParseError::InvalidArgument);
    }
    arg.iter().try_fold(0u32, |n, &b| {
        if !b.is_ascii_digit() {
            return Err(ParseError::InvalidArgument);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u32::from(b - b'0')))
            .ok_or(ParseError::InvalidArgument)
    })
}

/// A message number: messages are numbered from 1 (RFC 1939 section 5).
fn message_number(arg: &[u8]) -> Result<u32, ParseError> {
    match number(arg)? {
        0 => Err(ParseError::InvalidArgument),
        n => Ok(n),
    }
}

/// A user name: UTF-8 (RFC 6856), short, and free of control characters so it is safe in logs.
/// User names are exempt from RFC 2449's 40-character argument limit: real users log in with
/// e-mail addresses longer than that, and Dovecot does not enforce it either. The line cap
/// still bounds them.
fn user_name(arg: &[u8]) -> Result<String, ParseError> {
    let name = utf8(arg)?;
    if name.chars().any(char::is_control) {
        return Err(ParseError::InvalidArgument);
    }
    Ok(name.to_owned())
}

fn apop_digest(arg: &[u8]) -> Result<String, ParseError> {
    if arg.len() != 32 || !arg.iter().all(u8::is_ascii_hexdigit) {
        return Err(ParseError::InvalidArgument);
    }
    Ok(String::from_utf8_lossy(arg).to_ascii_lowercase())
}

/// A SASL mechanism name (RFC 4422 section 3.1): 1 to 20 of `A-Z 0-9 - _`. Clients send lower
/// case too, so it is uppercased for comparison.
fn mechanism_name(arg: &[u8]) -> Result<String, ParseError> {
    if arg.len() > MAX_MECHANISM_LEN
        || !arg
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ParseError::InvalidArgument);
    }
    Ok(String::from_utf8_lossy(arg).to_ascii_uppercase())
}

/// AUTH's initial response: only the base64 alphabet is checked here, decoding comes later.
/// Exempt from the 40-character limit (RFC 5034 allows it to fill the line).
fn base64_text(arg: &[u8]) -> Result<String, ParseError> {
    if !arg
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err(ParseError::InvalidArgument);
    }
    Ok(String::from_utf8_lossy(arg).into_owned())
}

/// A language range (RFC 4647) as LANG takes it: `*`, or letters, digits and hyphens.
fn language_range(arg: &[u8]) -> Result<String, ParseError> {
    let valid = arg == b"*"
        || (arg.len() <= MAX_ARG_LEN
            && arg[0].is_ascii_alphabetic()
            && arg.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-'));
    if !valid {
        return Err(ParseError::InvalidArgument);
    }
    Ok(String::from_utf8_lossy(arg).into_owned())
}

/// The keyword as it may appear in an error text: at most 20 characters of printable ASCII, so
/// the reply can neither break framing nor carry terminal escapes or Unicode tricks back.
fn clean_keyword(keyword: &[u8]) -> String {
    // A client that glued a secret to its keyword (`PASS\tsecret`) must not see it echoed, nor
    // have it logged with the error.
    let glued_secret = keyword.len() > 4
        && [b"PASS", b"APOP", b"AUTH"]
            .iter()
            .any(|prefix| keyword[..4].eq_ignore_ascii_case(*prefix));
    let keyword = if glued_secret { &keyword[..4] } else { keyword };
    keyword
        .iter()
        .take(MAX_KEYWORD_ECHO)
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command, ParseError> {
        parse(line.as_bytes())
    }

    #[test]
    fn simple_commands_in_any_case() {
        let cases = [
            ("STAT", Command::Stat),
            ("NOOP", Command::Noop),
            ("RSET", Command::Rset),
            ("QUIT", Command::Quit),
            ("CAPA", Command::Capa),
            ("STLS", Command::Stls),
            ("UTF8", Command::Utf8),
        ];
        for (keyword, command) in cases {
            for variant in [
                keyword.to_owned(),
                keyword.to_ascii_lowercase(),
                format!("{}{}", &keyword[..1], keyword[1..].to_ascii_lowercase()),
            ] {
                assert_eq!(p(&variant), Ok(command.clone()), "{variant}");
                assert_eq!(p(&format!("{variant}\r")), Ok(command.clone()));
                assert_eq!(p(&format!("{variant}\r\n")), Ok(command.clone()));
                assert_eq!(p(&format!("{variant}  ")), Ok(command.clone()));
                assert_eq!(
                    p(&format!("{variant} x")),
                    Err(ParseError::TooManyArguments)
                );
            }
            assert_eq!(command.keyword(), keyword);
        }
    }

    #[test]
    fn message_number_commands() {
        assert_eq!(p("RETR 1"), Ok(Command::Retr(1)));
        assert_eq!(p("retr 4294967295"), Ok(Command::Retr(u32::MAX)));
        assert_eq!(p("Dele 42"), Ok(Command::Dele(42)));
        assert_eq!(p("LIST"), Ok(Command::List(None)));
        assert_eq!(p("list 7"), Ok(Command::List(Some(7))));
        assert_eq!(p("UIDL"), Ok(Command::Uidl(None)));
        assert_eq!(p("uidl 3"), Ok(Command::Uidl(Some(3))));
        assert_eq!(p("RETR   5  "), Ok(Command::Retr(5)));
        assert_eq!(p("  RETR 5"), Ok(Command::Retr(5)));
        assert_eq!(p("RETR 007"), Ok(Command::Retr(7)));
        assert_eq!(p("RETR"), Err(ParseError::MissingArgument));
        assert_eq!(p("RETR "), Err(ParseError::MissingArgument));
        assert_eq!(p("DELE"), Err(ParseError::MissingArgument));
        assert_eq!(p("RETR 1 2"), Err(ParseError::TooManyArguments));
        assert_eq!(p("LIST 1 2"), Err(ParseError::TooManyArguments));
        assert_eq!(p("UIDL 1 2"), Err(ParseError::TooManyArguments));
    }

    #[test]
    fn bad_numbers() {
        for bad in [
            "0",
            "00",
            "-1",
            "+1",
            "4294967296",
            "99999999999999999999",
            "1x",
            "x1",
            "0x10",
            "1.0",
            "１",
            "1\t",
        ] {
            for command in ["RETR", "DELE", "LIST", "UIDL"] {
                assert_eq!(
                    p(&format!("{command} {bad}")),
                    Err(ParseError::InvalidArgument),
                    "{command} {bad}"
                );
            }
            assert_eq!(
                p(&format!("TOP {bad} 1")),
                Err(ParseError::InvalidArgument),
                "TOP {bad} 1"
            );
        }
        let padded = format!("RETR {}1", "0".repeat(MAX_ARG_LEN));
        assert_eq!(p(&padded), Err(ParseError::InvalidArgument));
    }

    #[test]
    fn top() {
        assert_eq!(p("TOP 1 0"), Ok(Command::Top { msg: 1, lines: 0 }));
        assert_eq!(p("top 2 10"), Ok(Command::Top { msg: 2, lines: 10 }));
        assert_eq!(
            p("TOP 4294967295 4294967295"),
            Ok(Command::Top {
                msg: u32::MAX,
                lines: u32::MAX
            })
        );
        assert_eq!(p("TOP 0 1"), Err(ParseError::InvalidArgument));
        assert_eq!(p("TOP 1 -1"), Err(ParseError::InvalidArgument));
        assert_eq!(p("TOP 1 4294967296"), Err(ParseError::InvalidArgument));
        assert_eq!(p("TOP"), Err(ParseError::MissingArgument));
        assert_eq!(p("TOP 1"), Err(ParseError::MissingArgument));
        assert_eq!(p("TOP 1 2 3"), Err(ParseError::TooManyArguments));
        assert_eq!(Command::Top { msg: 1, lines: 0 }.keyword(), "TOP");
    }

    #[test]
    fn user() {
        assert_eq!(p("USER alice"), Ok(Command::User("alice".into())));
        assert_eq!(p("user alice"), Ok(Command::User("alice".into())));
        assert_eq!(p("USER  alice "), Ok(Command::User("alice".into())));
        assert_eq!(
            parse("USER jürgen@例え.jp".as_bytes()),
            Ok(Command::User("jürgen@例え.jp".into()))
        );
        assert_eq!(p("USER"), Err(ParseError::MissingArgument));
        assert_eq!(p("USER a b"), Err(ParseError::TooManyArguments));
        assert_eq!(parse(b"USER al\xffice"), Err(ParseError::InvalidUtf8));
        assert_eq!(parse(b"USER al\x00ice"), Err(ParseError::InvalidArgument));
        assert_eq!(parse(b"USER al\tice"), Err(ParseError::InvalidArgument));
    }

    #[test]
    fn forty_character_limit() {
        let ok = "a".repeat(MAX_ARG_LEN);
        let long = "a".repeat(MAX_ARG_LEN + 1);
        // User names are exempt: e-mail addresses are often longer.
        assert_eq!(p(&format!("USER {long}")), Ok(Command::User(long.clone())));
        assert_eq!(
            p(&format!("LANG {ok}")),
            Ok(Command::Lang(Some(ok.clone())))
        );
        assert_eq!(p(&format!("LANG {long}")), Err(ParseError::InvalidArgument));
        // PASS and AUTH's initial response are exempt.
        let secret = "p".repeat(200);
        assert_eq!(
            p(&format!("PASS {secret}")),
            Ok(Command::Pass(secret.clone()))
        );
        let response = "QUFB".repeat(50);
        assert_eq!(
            p(&format!("AUTH PLAIN {response}")),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: Some(response.clone())
            })
        );
    }

    #[test]
    fn pass_keeps_the_argument_exact() {
        assert_eq!(p("PASS secret"), Ok(Command::Pass("secret".into())));
        assert_eq!(p("pass secret"), Ok(Command::Pass("secret".into())));
        assert_eq!(
            p("PASS correct horse battery staple"),
            Ok(Command::Pass("correct horse battery staple".into()))
        );
        assert_eq!(p("PASS  lead"), Ok(Command::Pass(" lead".into())));
        assert_eq!(p("PASS trail  "), Ok(Command::Pass("trail  ".into())));
        assert_eq!(p("PASS a  b\tc"), Ok(Command::Pass("a  b\tc".into())));
        assert_eq!(p("PASS trail\r"), Ok(Command::Pass("trail".into())));
        assert_eq!(p("PASS trail\r\n"), Ok(Command::Pass("trail".into())));
        assert_eq!(
            parse("PASS pässwörd".as_bytes()),
            Ok(Command::Pass("pässwörd".into()))
        );
        assert_eq!(p("PASS"), Err(ParseError::MissingArgument));
        assert_eq!(p("PASS "), Err(ParseError::MissingArgument));
        assert_eq!(parse(b"PASS s\xe9cret"), Err(ParseError::InvalidUtf8));
    }

    #[test]
    fn errors_never_echo_secrets() {
        for line in [
            &b"PASS s\xe9cret hunter2"[..],
            b"PASS",
            b"PASS\thunter2",
            b"pass\x00hunter2",
            b"AUTH\thunter2",
            b"APOP\thunter2",
        ] {
            let err = parse(line).unwrap_err();
            let text = err.to_string();
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!format!("{err:?}").contains("hunter2"));
        }
        assert_eq!(
            parse(b"PASS\thunter2"),
            Err(ParseError::UnknownCommand("PASS".into()))
        );
        let debug = format!(
            "{:?} {:?} {:?}",
            p("PASS hunter2").unwrap(),
            p("AUTH PLAIN aHVudGVyMg==").unwrap(),
            p("APOP bob c4c9334bac560ecc979e58001b3e22fb").unwrap()
        );
        assert!(!debug.contains("hunter2") && !debug.contains("aHVudGVyMg"));
        assert!(!debug.contains("c4c9334bac"), "{debug}");
        assert_eq!(
            format!("{:?}", parse_auth_response(b"aHVudGVyMg==")),
            "Data(<redacted>)"
        );
    }

    #[test]
    fn apop() {
        // The example of RFC 1939 section 7.
        assert_eq!(
            p("APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
            Ok(Command::Apop {
                name: "mrose".into(),
                digest: "c4c9334bac560ecc979e58001b3e22fb".into()
            })
        );
        assert_eq!(
            p("apop mrose C4C9334BAC560ECC979E58001B3E22FB"),
            Ok(Command::Apop {
                name: "mrose".into(),
                digest: "c4c9334bac560ecc979e58001b3e22fb".into()
            })
        );
        assert_eq!(p("APOP"), Err(ParseError::MissingArgument));
        assert_eq!(p("APOP mrose"), Err(ParseError::MissingArgument));
        assert_eq!(
            p("APOP mrose c4c9334bac560ecc979e58001b3e22f"),
            Err(ParseError::InvalidArgument)
        );
        assert_eq!(
            p("APOP mrose g4c9334bac560ecc979e58001b3e22fb"),
            Err(ParseError::InvalidArgument)
        );
        assert_eq!(
            p("APOP mrose c4c9334bac560ecc979e58001b3e22fb x"),
            Err(ParseError::TooManyArguments)
        );
    }

    #[test]
    fn auth() {
        assert_eq!(
            p("AUTH"),
            Ok(Command::Auth {
                mechanism: None,
                initial_response: None
            })
        );
        assert_eq!(
            p("auth plain"),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: None
            })
        );
        assert_eq!(
            p("AUTH PLAIN ="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: Some("=".into())
            })
        );
        assert_eq!(
            p("AUTH SCRAM-SHA-256"),
            Ok(Command::Auth {
                mechanism: Some("SCRAM-SHA-256".into()),
                initial_response: None
            })
        );
        assert_eq!(
            p(&format!("AUTH {}", "M".repeat(MAX_MECHANISM_LEN + 1))),
            Err(ParseError::InvalidArgument),
        );
        assert_eq!(
            p(&format!("AUTH x_{}", "m".repeat(MAX_MECHANISM_LEN - 2))),
            Ok(Command::Auth {
                mechanism: Some(format!("X_{}", "M".repeat(MAX_MECHANISM_LEN - 2))),
                initial_response: None
            })
        );
        assert_eq!(p("AUTH PL@IN"), Err(ParseError::InvalidArgument));
        assert_eq!(p("AUTH PLAIN AAAA BBBB"), Err(ParseError::TooManyArguments));
        assert_eq!(p("AUTH PLAIN AA?A"), Err(ParseError::InvalidArgument));
        assert_eq!(
            parse(b"AUTH PLAIN AA\xe9A"),
            Err(ParseError::InvalidArgument)
        );
    }

    #[test]
    fn auth_plain_with_initial_response() {
        let encoded = base64::encode(b"\0alice\0open sesame");
        let Command::Auth {
            mechanism,
            initial_response: Some(response),
        } = p(&format!("AUTH PLAIN {encoded}")).unwrap()
        else {
            panic!("no initial response");
        };
        assert_eq!(mechanism.as_deref(), Some("PLAIN"));
        assert_eq!(
            decode_auth_plain(&response),
            Ok((None, "alice".into(), "open sesame".into()))
        );
    }

    #[test]
    fn auth_plain_decoding() {
        let plain = |raw: &[u8]| decode_auth_plain(&base64::encode(raw));
        assert_eq!(
            plain(b"admin\0alice\0pw"),
            Ok((Some("admin".into()), "alice".into(), "pw".into()))
        );
        assert_eq!(
            plain("zoë\0jürgen\0pässwörd".as_bytes()),
            Ok((Some("zoë".into()), "jürgen".into(), "pässwörd".into()))
        );
        assert_eq!(plain(b"\0alice\0"), Err(ParseError::InvalidArgument));
        assert_eq!(plain(b"\0\0pw"), Err(ParseError::InvalidArgument));
        assert_eq!(plain(b"alice\0pw"), Err(ParseError::InvalidArgument));
        assert_eq!(plain(b"a\0b\0c\0d"), Err(ParseError::InvalidArgument));
        assert_eq!(plain(b""), Err(ParseError::InvalidArgument));
        // Non-UTF-8 identities or passwords are malformed messages like any other.
        assert_eq!(plain(b"\0al\xffice\0pw"), Err(ParseError::InvalidArgument));
        assert_eq!(plain(b"\0alice\0p\xc3"), Err(ParseError::InvalidArgument));
        assert_eq!(plain(b"\xff\0alice\0pw"), Err(ParseError::InvalidArgument));
        assert_eq!(decode_auth_plain("="), Err(ParseError::InvalidArgument));
        assert_eq!(decode_auth_plain(""), Err(ParseError::InvalidArgument));
        let good = base64::encode(b"\0alice\0pass");
        assert!(good.ends_with('='));
        assert!(decode_auth_plain(&good).is_ok());
        for bad in [
            good.trim_end_matches('='),
            &format!(" {good}"),
            &format!("{good}\r\n"),
            &good.replace('A', "-"),
            &format!("{good}===="),
        ] {
            assert_eq!(
                decode_auth_plain(bad),
                Err(ParseError::InvalidArgument),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sasl_responses() {
        assert_eq!(parse_auth_response(b"*"), AuthResponse::Cancel);
        assert_eq!(parse_auth_response(b"*\r\n"), AuthResponse::Cancel);
        assert_eq!(
            parse_auth_response(b"* "),
            AuthResponse::Data("* ".into()),
            "only a lone star cancels"
        );
        assert_eq!(
            parse_auth_response(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r"),
            AuthResponse::Data("AHRpbQB0YW5zdGFhZnRhbnN0YWFm".into())
        );
        let AuthResponse::Data(data) = parse_auth_response(b"dXN\xfflcg==") else {
            panic!("not data");
        };
        assert_eq!(
            decode_sasl_response(&data),
            Err(ParseError::InvalidArgument)
        );
        assert_eq!(decode_sasl_response("").unwrap(), b"");
        assert_eq!(decode_sasl_response("=").unwrap(), b"");
        assert_eq!(decode_sasl_response("==").ok(), None);
    }

    #[test]
    fn lang() {
        assert_eq!(p("LANG"), Ok(Command::Lang(None)));
        assert_eq!(p("lang *"), Ok(Command::Lang(Some("*".into()))));
        assert_eq!(p("LANG pt-BR"), Ok(Command::Lang(Some("pt-BR".into()))));
        assert_eq!(p("LANG -en"), Err(ParseError::InvalidArgument));
        assert_eq!(p("LANG en_US"), Err(ParseError::InvalidArgument));
        assert_eq!(p("LANG en fr"), Err(ParseError::TooManyArguments));
        assert_eq!(Command::Lang(None).keyword(), "LANG");
    }

    #[test]
    fn empty_lines() {
        for line in [&b""[..], b"\r", b"\r\n", b"\n", b"   ", b"  \r\n"] {
            assert_eq!(parse(line), Err(ParseError::Empty), "{line:?}");
        }
        assert_eq!(ParseError::Empty.to_string(), "Empty command");
    }

    #[test]
    fn unknown_commands() {
        assert_eq!(p("HELO x"), Err(ParseError::UnknownCommand("HELO".into())));
        assert_eq!(p("RE"), Err(ParseError::UnknownCommand("RE".into())));
        assert_eq!(
            p("RETRR 1"),
            Err(ParseError::UnknownCommand("RETRR".into()))
        );
        assert_eq!(p("xtnd"), Err(ParseError::UnknownCommand("xtnd".into())));
        // Tabs are not separators in POP3.
        assert_eq!(
            p("RETR\t1"),
            Err(ParseError::UnknownCommand("RETR?1".into()))
        );
        let long = p(&"A".repeat(300)).unwrap_err();
        assert_eq!(long, ParseError::UnknownCommand("A".repeat(20)));
    }

    #[test]
    fn unknown_command_text_is_clean() {
        let err = parse(b"\x1b[31mRED\x00\x7f\xc3\xa9\r\nINJECTED").unwrap_err();
        let text = err.to_string();
        assert!(
            text.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
            "{text:?}"
        );
        assert!(!text.contains('\r') && !text.contains('\n'));
        assert_eq!(text, "Unknown command: ?[31mRED??????INJECT");
        let errors = [
            ParseError::UnknownCommand("X".into()),
            ParseError::MissingArgument,
            ParseError::TooManyArguments,
            ParseError::InvalidArgument,
            ParseError::Empty,
            ParseError::InvalidUtf8,
        ];
        for err in errors {
            let text = err.to_string();
            assert!(!text.is_empty() && text.len() < 60);
            assert!(text.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
        }
    }

    #[test]
    fn keywords_round_trip() {
        let commands = [
            "USER a",
            "PASS b",
            "APOP a 00000000000000000000000000000000",
            "STAT",
            "LIST",
            "RETR 1",
            "DELE 1",
            "NOOP",
            "RSET",
            "QUIT",
            "TOP 1 1",
            "UIDL",
            "CAPA",
            "STLS",
            "AUTH",
            "UTF8",
            "LANG",
        ];
        for line in commands {
            let command = p(line).unwrap();
            assert_eq!(command.keyword(), &line[..command.keyword().len()]);
            // Debug output is well-formed for every variant.
            assert!(format!("{command:?}").starts_with(|c: char| c.is_ascii_uppercase()));
        }
    }
}
