//! Logins against Dovecot's own password hashes through the example server and Python's
//! imaplib, and the user file read again when it changes, while logged-in sessions go on.
//!
//! The hashes come from `tests/fixtures/dovecot_schemes.txt` (made by `doveadm pw`); the unit
//! tests in `src/auth/passwd_file/` cover every scheme, this covers the road a real login
//! takes: socket, IMAP LOGIN, the authentication stack, the blocking pool.
//!
//! ```text
//! cargo build --example server && cargo test -p tower-mail --test passwd_schemes
//! ```

mod support_example;
mod support_shared;

use std::path::Path;

use support_example::{ExampleServer, SOON, poll};
use support_shared::{dedent, run_python};

const VECTORS: &str = include_str!("fixtures/dovecot_schemes.txt");

/// The password and the passwd-file field of the fixture's `user`.
fn vector(user: &str) -> (&'static str, &'static str) {
    VECTORS
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let mut words = line.split(' ');
            (words.next() == Some(user)).then(|| (words.next().unwrap(), words.next().unwrap()))
        })
        .unwrap_or_else(|| panic!("no fixture line for {user}"))
}

/// Replaces the file the way installers and editors do: a new file renamed over it.
fn replace(path: &Path, text: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, text).unwrap();
    std::fs::rename(&new, path).unwrap();
}

/// Arguments: the IMAP port, then `user password` pairs (`;` between them), and optionally a
/// path, the text to rename over it, and more pairs. Keeps a session of the first pair open
/// (with INBOX selected), logs in as each pair in turn printing `user: OK` or `user: NO`,
/// replaces the file and logs in as the second pairs, then uses the first session again.
const SCRIPT: &str = r#"
    import imaplib, os, sys
    PORT = int(sys.argv[1])

    def login(user, password):
        M = imaplib.IMAP4('127.0.0.1', PORT, timeout=60)
        try:
            M.login(user, password)
        except imaplib.IMAP4.error:
            M.logout()
            return None
        return M

    def attempt(pairs):
        for pair in pairs.split(';'):
            user, password = pair.split(' ')
            M = login(user, password)
            print('%s: %s' % (user, 'NO' if M is None else 'OK'))
            if M is not None:
                M.logout()

    first = login(*sys.argv[2].split(';')[0].split(' '))
    typ, _ = first.select('INBOX')
    print('session: ' + typ)
    attempt(sys.argv[2])
    if len(sys.argv) > 3:
        path, text = sys.argv[3], sys.argv[4]
        with open(path + '.next', 'w') as f:
            f.write(text)
        os.replace(path + '.next', path)
        attempt(sys.argv[5])
    typ, _ = first.noop()
    print('session after: ' + typ)
    typ, data = first.select('INBOX')
    print('select after: %s %s' % (typ, data[0].decode()))
    first.logout()
"#;

#[test]
fn sha512_crypt_and_blf_crypt_users_log_in_and_a_changed_file_keeps_sessions() {
    let (sha_password, sha_field) = vector("sha512crypt");
    let (blf_password, blf_field) = vector("blfcrypt");
    // blfcrypt's next password: another bcrypt hash of the fixture.
    let (new_blf_password, new_blf_field) = vector("bare2y");
    // Every login checks the file, and failures are answered at once: no waiting for either.
    let mut server =
        ExampleServer::start_with_auth("passwd_check_ms = 0\nfailure_delay_ms = 0", "");
    let passwd = server.passwd_file();
    replace(
        &passwd,
        &format!("sha512crypt:{sha_field}\nblfcrypt:{blf_field}\n"),
    );

    let before = format!(
        "sha512crypt {sha_password};blfcrypt {blf_password};blfcrypt wrong;nobody {sha_password}"
    );
    let changed = format!("sha512crypt:{sha_field}\nblfcrypt:{new_blf_field}\n");
    let after =
        format!("blfcrypt {blf_password};blfcrypt {new_blf_password};sha512crypt {sha_password}");
    let port = server.imap.port().to_string();
    let out = run_python(
        &dedent(SCRIPT),
        [
            port.as_str(),
            &before,
            passwd.to_str().unwrap(),
            &changed,
            &after,
        ],
    );
    assert_eq!(
        out,
        "session: OK\n\
         sha512crypt: OK\n\
         blfcrypt: OK\n\
         blfcrypt: NO\n\
         nobody: NO\n\
         blfcrypt: NO\n\
         blfcrypt: OK\n\
         sha512crypt: OK\n\
         session after: OK\n\
         select after: OK 0\n",
        "the first session is sha512crypt's, open across the change"
    );
    server.wait_for_stdout(SOON, |line| {
        line.contains("passwd-file changed on disk and was read again")
    });
}

#[test]
fn a_broken_user_file_keeps_the_users_in_use_and_is_reported_once() {
    let (sha_password, sha_field) = vector("sha512crypt");
    let (plain_password, plain_field) = vector("plain");
    let server = ExampleServer::start_with_auth("passwd_check_ms = 0\nfailure_delay_ms = 0", "");
    let passwd = server.passwd_file();
    let count = |text: &str| {
        server
            .stdout()
            .iter()
            .filter(|line| line.contains(text))
            .count()
    };
    const READ_AGAIN: &str = "passwd-file changed on disk and was read again";
    replace(&passwd, &format!("sha512crypt:{sha_field}\n"));
    let port = server.imap.port().to_string();
    let pair = format!("sha512crypt {sha_password}");
    let works = "session: OK\nsha512crypt: OK\nsession after: OK\nselect after: OK 0\n";
    assert_eq!(run_python(&dedent(SCRIPT), [port.as_str(), &pair]), works);

    // Not UTF-8: the file cannot be read, and every login (each one checks) goes on with the
    // users read before.
    std::fs::write(&passwd, b"sha512crypt:{PLAIN}\xff\n").unwrap();
    for _ in 0..2 {
        assert_eq!(run_python(&dedent(SCRIPT), [port.as_str(), &pair]), works);
    }

    // Fixed: read again. Every line logged before that one has been read by now.
    replace(&passwd, &format!("plain:{plain_field}\n"));
    let pair = format!("plain {plain_password}");
    let works = works.replace("sha512crypt", "plain");
    assert_eq!(run_python(&dedent(SCRIPT), [port.as_str(), &pair]), works);
    poll(SOON, || (count(READ_AGAIN) == 2).then_some(()))
        .unwrap_or_else(|| panic!("not read again:\n{}", server.stdout().join("\n")));
    assert_eq!(
        count("passwd-file changed on disk but cannot be read"),
        1,
        "warned once, not at each of the logins that found it broken:\n{}",
        server.stdout().join("\n")
    );
}
