//! SASL beyond PLAIN through the example server, over real sockets, with real clients: LOGIN,
//! SCRAM-SHA-256, OAUTHBEARER and XOAUTH2 from Python's imaplib and poplib, curl, and mbsync
//! (whose SCRAM is Cyrus SASL's); hostile exchanges; and failed logins of every mechanism
//! counted by the auth layers (failure delay, auto-ban) like wrong passwords.
//!
//! The SCRAM client in the scripts is written here from RFC 5802 with hashlib and hmac; the
//! `{SCRAM-SHA-256}` entry it logs in against was made by Dovecot's `doveadm pw`
//! (`tests/fixtures/dovecot_schemes.txt`), and mbsync checks the server's signature itself.
//!
//! ```text
//! cargo build --example server && cargo test -p tower-mail --test sasl_mechanisms
//! ```

mod support_example;
mod support_shared;

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;

use support_example::{ExampleServer, RawClient, curl, stderr, toml_str};
use support_shared::{dedent, missing, run_python};

const VECTORS: &str = include_str!("fixtures/dovecot_schemes.txt");

/// The fixture's password field for `user` (made by `doveadm pw`).
fn fixture_field(user: &str) -> &'static str {
    VECTORS
        .lines()
        .find_map(|line| {
            let mut words = line.split(' ');
            (words.next() == Some(user)).then(|| words.nth(1).unwrap())
        })
        .unwrap_or_else(|| panic!("no fixture line for {user}"))
}

/// The users: `plain` (`{PLAIN}pencil`), `scram` (doveadm's `{SCRAM-SHA-256}` of
/// `pw-scramsha256`) and `hashed` (`{SHA512-CRYPT}` of `pw-sha512crypt`, which SCRAM cannot
/// serve).
fn users() -> String {
    format!(
        "plain:{{PLAIN}}pencil\nscram:{}\nhashed:{}\n",
        fixture_field("scramsha256"),
        fixture_field("sha512crypt")
    )
}

/// The test token issuer's file: a token for `plain` and one for `scram`.
const TOKENS: &str = "# token user\ntoken-for-plain plain\ntoken-for-scram scram\n";

/// The example server with SCRAM and the token mechanisms on, `users()` in its passwd-file,
/// and `auth_keys` more `[auth]` settings. The token file lives in `dir`.
fn start(dir: &Path, auth_keys: &str, extra: &str) -> ExampleServer {
    let tokens = dir.join("tokens");
    fs::write(&tokens, TOKENS).unwrap();
    let server = ExampleServer::start_with_auth(
        &format!(
            "passwd_check_ms = 0\nscram = true\noauth_tokens = {}\n{auth_keys}",
            toml_str(&tokens)
        ),
        extra,
    );
    // Renamed over the demo file; every login looks at the file (passwd_check_ms = 0).
    let passwd = server.passwd_file();
    let next = passwd.with_extension("next");
    fs::write(&next, users()).unwrap();
    fs::rename(&next, &passwd).unwrap();
    server
}

/// A SCRAM-SHA-256 client (RFC 5802 section 3), usable as imaplib's `authobject`: called with
/// each decoded challenge, it answers with the next message. `verified` says whether the
/// server's signature was right.
const SCRAM_CLIENT: &str = r#"
import base64, hashlib, hmac, os

class Scram:
    def __init__(self, user, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.bare = 'n=%s,r=%s' % (user, self.nonce)
        self.step = 0
        self.verified = False

    def __call__(self, challenge):
        self.step += 1
        if self.step == 1:
            return b'n,,' + self.bare.encode()
        if self.step == 2:
            server_first = challenge.decode()
            fields = dict(f.split('=', 1) for f in server_first.split(','))
            assert fields['r'].startswith(self.nonce), server_first
            salted = hashlib.pbkdf2_hmac(
                'sha256', self.password, base64.b64decode(fields['s']), int(fields['i']))
            client_key = hmac.new(salted, b'Client Key', 'sha256').digest()
            stored_key = hashlib.sha256(client_key).digest()
            without_proof = 'c=biws,r=' + fields['r']
            self.auth_message = ','.join([self.bare, server_first, without_proof]).encode()
            signature = hmac.new(stored_key, self.auth_message, 'sha256').digest()
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            self.server_key = hmac.new(salted, b'Server Key', 'sha256').digest()
            return ('%s,p=%s' % (without_proof, base64.b64encode(proof).decode())).encode()
        expected = hmac.new(self.server_key, self.auth_message, 'sha256').digest()
        self.verified = challenge == b'v=' + base64.b64encode(expected)
        return b''
"#;

/// Logs in with each mechanism through imaplib (which sends no initial response: every
/// exchange starts with the server's first challenge) and prints one line per attempt.
const IMAPLIB_SCRIPT: &str = r#"
    import imaplib, sys
    PORT = int(sys.argv[1])

    def attempt(name, mechanism, authobject):
        M = imaplib.IMAP4('127.0.0.1', PORT, timeout=20)
        try:
            typ, _ = M.authenticate(mechanism, authobject)
            print(name, typ, M.state)
            M.logout()
        except imaplib.IMAP4.error as e:
            print(name, 'refused', e)

    M = imaplib.IMAP4('127.0.0.1', PORT, timeout=20)
    print('capabilities', ' '.join(c for c in M.capabilities if c.startswith('AUTH=')))
    M.logout()

    challenges = []
    def login(user, password):
        def answer(challenge):
            challenges.append(challenge.decode())
            return {b'Username:': user, b'Password:': password}[challenge]
        return answer
    attempt('LOGIN plain', 'LOGIN', login('plain', 'pencil'))
    print('LOGIN challenges', ' '.join(challenges))
    attempt('LOGIN wrong', 'LOGIN', login('plain', 'pencil2'))

    for user, password in [('scram', 'pw-scramsha256'), ('plain', 'pencil'),
                           ('scram', 'wrong'), ('hashed', 'pw-sha512crypt'),
                           ('nobody', 'pencil')]:
        client = Scram(user, password)
        attempt('SCRAM %s %s' % (user, password), 'SCRAM-SHA-256', client)
        if client.verified:
            print('SCRAM %s server signature verified' % user)

    def token(message):
        seen = []
        def answer(challenge):
            seen.append(challenge)
            if len(seen) == 1:
                return message
            print('error challenge', challenge.decode())
            return b'\x01' if message.startswith(b'n,') else b''
        return answer
    attempt('XOAUTH2 good', 'XOAUTH2', token(b'user=plain\x01auth=Bearer token-for-plain\x01\x01'))
    attempt('XOAUTH2 other user', 'XOAUTH2', token(b'user=plain\x01auth=Bearer token-for-scram\x01\x01'))
    attempt('OAUTHBEARER good', 'OAUTHBEARER',
            token(b'n,a=scram,\x01host=127.0.0.1\x01auth=Bearer token-for-scram\x01\x01'))
    attempt('OAUTHBEARER password', 'OAUTHBEARER', token(b'n,a=plain,\x01auth=Bearer pencil\x01\x01'))
"#;

#[test]
fn imaplib_logs_in_with_login_scram_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "failure_delay_ms = 0", "");
    let program = format!("{SCRAM_CLIENT}\n{}", dedent(IMAPLIB_SCRIPT));
    let out = run_python(&program, [server.imap.port().to_string()]);
    let refused = "refused [AUTHENTICATIONFAILED] Authentication failed";
    assert_eq!(
        out,
        format!(
            "capabilities AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256 AUTH=OAUTHBEARER AUTH=XOAUTH2\n\
             LOGIN plain OK AUTH\n\
             LOGIN challenges Username: Password:\n\
             LOGIN wrong {refused}\n\
             SCRAM scram pw-scramsha256 OK AUTH\n\
             SCRAM scram server signature verified\n\
             SCRAM plain pencil OK AUTH\n\
             SCRAM plain server signature verified\n\
             SCRAM scram wrong {refused}\n\
             SCRAM hashed pw-sha512crypt {refused}\n\
             SCRAM nobody pencil {refused}\n\
             XOAUTH2 good OK AUTH\n\
             error challenge {{\"status\":\"401\",\"schemes\":\"bearer\"}}\n\
             XOAUTH2 other user {refused}\n\
             OAUTHBEARER good OK AUTH\n\
             error challenge {{\"status\":\"invalid_token\",\"schemes\":\"bearer\"}}\n\
             OAUTHBEARER password {refused}\n"
        )
    );
}

/// POP3 AUTH through poplib's raw command helpers: the mechanism listing, LOGIN's two
/// challenges, SCRAM with its last empty response, a refused token, and the exchanges a
/// client breaks (`*`, bad base64).
const POPLIB_SCRIPT: &str = r#"
    import base64, poplib, sys
    PORT = int(sys.argv[1])
    b64 = lambda data: base64.b64encode(data).decode()

    def connect():
        return poplib.POP3('127.0.0.1', PORT, timeout=20)

    def step(p, line):
        try:
            return p._shortcmd(line).decode()
        except poplib.error_proto as e:
            return e.args[0].decode()

    p = connect()
    print('capa', ' '.join(p.capa()['SASL']))
    print('list', ' '.join(line.decode() for line in p._longcmd('AUTH')[1]))
    print(step(p, 'AUTH LOGIN'))
    print(step(p, b64(b'plain')))
    print(step(p, b64(b'pencil')))
    p.quit()

    p = connect()
    client = Scram('scram', 'pw-scramsha256')
    first = step(p, 'AUTH SCRAM-SHA-256 ' + b64(client(b'')))
    final = step(p, b64(client(base64.b64decode(first[2:]))))
    client(base64.b64decode(final[2:]))
    print('scram signature verified', client.verified)
    print(step(p, ''))
    p.quit()

    p = connect()
    print(step(p, 'AUTH XOAUTH2 ' + b64(b'user=scram\x01auth=Bearer token-for-plain\x01\x01'))[:2])
    print(step(p, ''))
    print(step(p, 'AUTH OAUTHBEARER ' + b64(b'n,a=scram,\x01auth=Bearer token-for-scram\x01\x01')))
    p.quit()

    p = connect()
    print(step(p, 'AUTH SCRAM-SHA-256'))
    print(step(p, '*'))
    print(step(p, 'AUTH PLAIN'))
    print(step(p, 'not base64!'))
    print(step(p, 'AUTH SCRAM-SHA-256 ' + b64(b'p=tls-server-end-point,,n=scram,r=abc')))
    print(step(p, 'AUTH CRAM-MD5'))
    p.quit()
"#;

#[test]
fn poplib_speaks_auth_with_every_mechanism() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "failure_delay_ms = 0", "");
    let program = format!("{SCRAM_CLIENT}\n{}", dedent(POPLIB_SCRIPT));
    let out = run_python(&program, [server.pop3.port().to_string()]);
    assert_eq!(
        out,
        "capa PLAIN LOGIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2\n\
         list PLAIN LOGIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2\n\
         + VXNlcm5hbWU6\n\
         + UGFzc3dvcmQ6\n\
         +OK Logged in, 0 messages (0 octets)\n\
         scram signature verified True\n\
         +OK Logged in, 0 messages (0 octets)\n\
         + \n\
         -ERR [AUTH] Authentication failed\n\
         +OK Logged in, 0 messages (0 octets)\n\
         + \n\
         -ERR Authentication cancelled\n\
         + \n\
         -ERR Invalid base64 in authentication response\n\
         -ERR Channel binding is not supported\n\
         -ERR Unsupported authentication mechanism\n"
    );
}

/// curl's `-v` lines that show the exchange: commands sent and replies read.
fn dialogue(out: &std::process::Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|line| line.starts_with("> ") || line.starts_with("< "))
        .map(str::to_owned)
        .collect()
}

#[track_caller]
fn assert_said(dialogue: &[String], line: &str) {
    assert!(
        dialogue.iter().any(|l| l == line),
        "{line:?} not in\n{}",
        dialogue.join("\n")
    );
}

#[test]
fn curl_logs_in_with_login_and_oauthbearer_over_imap_and_pop3() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "failure_delay_ms = 0", "");
    let imap = format!("imap://127.0.0.1:{}/", server.imap.port());
    let pop3 = format!("pop3://127.0.0.1:{}/", server.pop3.port());

    // LOGIN: the user name as initial response (curl's IMAP uses the SASL-IR the server
    // offers), or after the `Username:` challenge (curl's POP3, unless --sasl-ir).
    let out = curl(&[
        "-v",
        "--login-options",
        "AUTH=LOGIN",
        "-u",
        "plain:pencil",
        &imap,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = dialogue(&out);
    assert_said(&said, "> A002 AUTHENTICATE LOGIN cGxhaW4=");
    assert_said(&said, "< + UGFzc3dvcmQ6");
    let out = curl(&[
        "-v",
        "--login-options",
        "AUTH=LOGIN",
        "-u",
        "plain:pencil",
        &pop3,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = dialogue(&out);
    assert_said(&said, "> AUTH LOGIN");
    assert_said(&said, "< + VXNlcm5hbWU6");
    assert_said(&said, "< + UGFzc3dvcmQ6");
    assert_said(&said, "< +OK Logged in, 0 messages (0 octets)");

    // A bearer token: curl picks OAUTHBEARER, which the server offers.
    for url in [&imap, &pop3] {
        let out = curl(&[
            "-v",
            "--oauth2-bearer",
            "token-for-scram",
            "-u",
            "scram:",
            url,
        ]);
        assert!(out.status.success(), "{url}: {}", stderr(&out));
        assert!(stderr(&out).contains("OAUTHBEARER"), "{}", stderr(&out));
        // Another user's token: refused after the error challenge, and curl says so.
        let out = curl(&[
            "-v",
            "--oauth2-bearer",
            "token-for-plain",
            "-u",
            "scram:",
            url,
        ]);
        assert_eq!(
            out.status.code(),
            Some(67),
            "{url}: login denied\n{}",
            stderr(&out)
        );
        let said = dialogue(&out);
        assert_said(&said, "> AQ==");
    }
}

#[test]
fn mbsync_syncs_after_a_cyrus_sasl_scram_login() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "failure_delay_ms = 0", "");
    server.deliver_to("scram", b"Subject: over SCRAM\r\n\r\nhello\r\n");
    let local = dir.path().join("local");
    fs::create_dir(&local).unwrap();
    let config = dir.path().join("mbsyncrc");
    // Plain IMAP on loopback, where the server allows logins without TLS; mbsync's SASL
    // library (Cyrus) does SCRAM and checks the server's signature.
    fs::write(
        &config,
        format!(
            "IMAPAccount test\nHost 127.0.0.1\nPort {port}\nUser scram\nPass pw-scramsha256\n\
             SSLType None\nAuthMechs SCRAM-SHA-256\n\n\
             IMAPStore remote\nAccount test\n\n\
             MaildirStore local\nPath {path}/\nInbox {path}/INBOX\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nSyncState *\n",
            port = server.imap.port(),
            path = local.display()
        ),
    )
    .unwrap();
    let out = Command::new("mbsync")
        .arg("-c")
        .arg(&config)
        .args(["-Dn", "-a"])
        .env("HOME", dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{}", missing("mbsync", &e)));
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed:\n{log}");
    assert!(
        log.contains("Authenticating with SASL mechanism SCRAM-SHA-256"),
        "{log}"
    );
    let synced: Vec<_> = ["new", "cur"]
        .iter()
        .flat_map(|sub| fs::read_dir(local.join("INBOX").join(sub)).unwrap())
        .collect();
    assert_eq!(synced.len(), 1, "{log}");
}

fn lo(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// From 127.0.0.7: a SCRAM proof of the wrong password, another user's token over XOAUTH2
/// (IMAP) and a made-up token over OAUTHBEARER (POP3), each answered as a failed login.
const GUESSER_SCRIPT: &str = r#"
    import base64, socket, sys
    IMAP, POP3 = int(sys.argv[1]), int(sys.argv[2])
    b64 = lambda data: base64.b64encode(data).decode()

    def connect(port):
        s = socket.create_connection(('127.0.0.1', port), timeout=20,
                                     source_address=('127.0.0.7', 0))
        f = s.makefile('rwb')
        f.readline()
        return f

    def say(f, line):
        f.write(line.encode() + b'\r\n')
        f.flush()
        return f.readline().decode().rstrip('\r\n')

    f = connect(IMAP)
    client = Scram('scram', 'guess')
    first = say(f, 'a AUTHENTICATE SCRAM-SHA-256 ' + b64(client(b'')))
    final = say(f, b64(client(base64.b64decode(first[2:]))))
    print(final)
    f = connect(IMAP)
    print(say(f, 'b AUTHENTICATE XOAUTH2 ' + b64(b'user=scram\x01auth=Bearer token-for-plain\x01\x01'))[:1])
    print(say(f, ''))
    f = connect(POP3)
    print(say(f, 'AUTH OAUTHBEARER ' + b64(b'n,a=plain,\x01auth=Bearer made-up\x01\x01'))[:1])
    print(say(f, 'AQ=='))
"#;

#[test]
fn failed_scram_and_token_logins_are_delayed_and_banned_like_wrong_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        "failure_delay_ms = 20",
        "[layers.auto_ban]\nfailures = 3\nwindow_seconds = 60\nban_seconds = 600\n",
    );
    let program = format!("{SCRAM_CLIENT}\n{}", dedent(GUESSER_SCRIPT));
    let out = run_python(
        &program,
        [
            server.imap.port().to_string(),
            server.pop3.port().to_string(),
        ],
    );
    assert_eq!(
        out,
        "a NO [AUTHENTICATIONFAILED] Authentication failed\n\
         +\n\
         b NO [AUTHENTICATIONFAILED] Authentication failed\n\
         +\n\
         -ERR [AUTH] Authentication failed\n"
    );
    // Each failure went through the failure delay, and the third banned the address.
    let metrics = server.metrics_when(|m| m.sum("mail_auth_failures_delayed_total", &[]) == 3.0);
    assert_eq!(
        metrics.sum("mail_auth_bans_total", &[]),
        1.0,
        "{}",
        metrics.text
    );
    let mut banned = RawClient::connect_from(lo(7), server.imap);
    assert_eq!(
        banned.line().as_deref(),
        Some("* BYE Too many failed logins")
    );
    // Another address still logs in.
    let mut other = RawClient::connect_from(lo(8), server.pop3);
    other.login("plain", "pencil");
}

#[test]
fn without_tls_no_mechanism_is_offered_or_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "plaintext_without_tls = false", "");
    let mut imap = RawClient::connect(server.imap);
    let greeting = imap.line().unwrap();
    assert!(greeting.contains("LOGINDISABLED"), "{greeting}");
    assert!(!greeting.contains("AUTH="), "{greeting}");
    for (tag, mechanism) in [("a", "SCRAM-SHA-256"), ("b", "XOAUTH2"), ("c", "LOGIN")] {
        assert_eq!(
            imap.cmd(&format!("{tag} AUTHENTICATE {mechanism}")),
            format!(
                "{tag} NO [PRIVACYREQUIRED] Plaintext login disallowed without TLS; use STARTTLS"
            )
        );
    }
    let mut pop3 = RawClient::connect(server.pop3);
    pop3.greeting();
    assert_eq!(pop3.cmd("AUTH"), "+OK Supported mechanisms follow");
    assert_eq!(pop3.line().as_deref(), Some("."), "no mechanism listed");
    assert_eq!(
        pop3.cmd("AUTH SCRAM-SHA-256"),
        "-ERR [AUTH] Plaintext authentication disallowed without TLS; use STLS"
    );
}
