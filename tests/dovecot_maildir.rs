//! A Maildir tree that Dovecot wrote, served by tower-mail over loopback sockets to Python's
//! imaplib and poplib: the UIDs, UIDVALIDITY, UIDNEXT and POP3 UIDLs Dovecot gave stay what
//! they were, and so do the subscriptions (nested ones too); `\Recent` tells of what was
//! delivered while no session looked, once, also after a restart. Then the two servers take
//! turns on one tree, with Dovecot's own `doveadm` as the other server, and a QRESYNC client
//! hears of what Dovecot changed in its turn.
//!
//! Needs `python3` (imaplib and poplib from the standard library) and `doveadm`
//! (`apt-get install dovecot-core`; `.ci/run` installs it).

mod common;
mod support_shared;

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tower_mail::Protocol;
use tower_mail::auth::PasswdFile;
use tower_mail::imap::{ImapConfig, ImapService};
use tower_mail::pop3::{Pop3Config, Pop3Service};
use tower_mail::server::{Server, ServerConfig, TlsMode};
use tower_mail::store::Maildir;

use common::SOON;

const USER: &str = "alice";
const PASSWORD: &str = "secret";

/// The fixture's INBOX UIDVALIDITY, as Dovecot's `dovecot-uidlist` has it (its UIDs are 7,
/// 23 and 42).
const INBOX_VALIDITY: u32 = 1500000000;

// ---- Harness ----

/// tower-mail's IMAP and POP3 services over one Maildir tree, plaintext logins allowed.
struct Tower {
    imap: Server,
    imap_addr: SocketAddr,
    pop3: Server,
    pop3_addr: SocketAddr,
}

impl Tower {
    async fn start(root: &Path) -> Tower {
        let store = Maildir::new(root);
        let mut imap_config = ImapConfig::default();
        imap_config.allow_plaintext_login = true;
        let imap = ImapService::new(users(), store.clone(), imap_config);
        let (imap, imap_addr) =
            common::serve(Protocol::Imap, TlsMode::None, ServerConfig::default(), imap).await;
        let mut pop3_config = Pop3Config::default();
        pop3_config.allow_plaintext_login = true;
        let pop3 = Pop3Service::new(users(), store, pop3_config);
        let (pop3, pop3_addr) =
            common::serve(Protocol::Pop3, TlsMode::None, ServerConfig::default(), pop3).await;
        Tower {
            imap,
            imap_addr,
            pop3,
            pop3_addr,
        }
    }

    /// Shut down: a restart is a new `Tower` on the same tree, with nothing kept in memory.
    async fn stop(self) {
        self.imap.shutdown(SOON).await;
        self.pop3.shutdown(SOON).await;
    }

    /// Runs `body` with `M`, an imaplib connection logged in as alice, `show(key, value)` to
    /// print a line for [`printed`], and `searches()` to show SEARCH RECENT, NEW and OLD of
    /// the selected mailbox; returns what it printed.
    async fn imaplib(&self, body: &str) -> String {
        let prelude = format!(
            "import imaplib\n\
             M = imaplib.IMAP4('{}', {})\n\
             M.login('{USER}', '{PASSWORD}')\n\
             def show(*values):\n    print(*[v.decode() if isinstance(v, bytes) else v for v in values])\n\
             def searches():\n    for key in ['RECENT', 'NEW', 'OLD']:\n        show('search-' + key, M.search(None, key)[1][0])\n",
            self.imap_addr.ip(),
            self.imap_addr.port(),
        );
        python(&format!(
            "{prelude}{}\nM.logout()\n",
            support_shared::dedent(body)
        ))
        .await
    }

    /// The POP3 UIDL listing, through poplib: unique-id by message number.
    async fn uidl(&self) -> Vec<String> {
        let script = format!(
            "import poplib\n\
             P = poplib.POP3('{}', {})\n\
             P.user('{USER}')\n\
             P.pass_('{PASSWORD}')\n\
             for line in P.uidl()[1]:\n    print(line.decode().split(' ')[1])\n\
             P.quit()\n",
            self.pop3_addr.ip(),
            self.pop3_addr.port(),
        );
        python(&script).await.lines().map(str::to_owned).collect()
    }
}

fn users() -> PasswdFile {
    PasswdFile::parse(common::USERS)
}

async fn python(script: &str) -> String {
    support_shared::run_python_async(script).await
}

/// The fixture tree written out under `root` as alice's, with its real file names (`%3A` is
/// `:`) and the `tmp/` directories a repository cannot hold.
fn dovecot_tree(root: &Path) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dovecot-maildir");
    copy_tree(&fixture.join(USER), &root.join(USER));
    for folder in ["", ".Archive.2024"] {
        fs::create_dir_all(root.join(USER).join(folder).join("tmp")).unwrap();
        fs::create_dir_all(root.join(USER).join(folder).join("new")).unwrap();
    }
    root.join(USER)
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap().replace("%3A", ":");
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(name));
        } else {
            fs::copy(entry.path(), to.join(name)).unwrap();
        }
    }
}

/// Dovecot's default POP3 UIDL (`pop3_uidl_format = %08Xu%08Xv`).
fn dovecot_uidl(uid: u32, uid_validity: u32) -> String {
    format!("{uid:08X}{uid_validity:08X}")
}

/// `key value...` lines printed by a script, by key (the last line of a key wins).
fn printed(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

// ---- A tree Dovecot wrote ----

#[tokio::test(flavor = "multi_thread")]
async fn a_tree_dovecot_wrote_keeps_its_uids_uidls_and_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let user_dir = dovecot_tree(dir.path());
    // Delivered by an MDA since Dovecot last looked: no UID yet.
    fs::write(
        user_dir.join("new/1700000300.M400P1.mx"),
        "From: e@example.org\nSubject: arrived later\n\nFourth.\n",
    )
    .unwrap();
    let tower = Tower::start(dir.path()).await;

    let out = printed(
        &tower
            .imaplib(
                r#"
                show('select', M.select('INBOX')[1][0])
                show('uidvalidity', M.response('UIDVALIDITY')[1][0])
                show('uidnext', M.response('UIDNEXT')[1][0])
                show('uids', M.uid('SEARCH', 'ALL')[1][0])
                show('status', M.status('Archive/2024', '(MESSAGES UIDVALIDITY UIDNEXT)')[1][0])
                show('lsub', ' '.join(l.decode().split(' "/" ')[1] for l in M.lsub()[1]))
                "#,
            )
            .await,
    );
    assert_eq!(out["select"], "4");
    assert_eq!(out["uidvalidity"], INBOX_VALIDITY.to_string());
    assert_eq!(
        out["uidnext"], "52",
        "the new message got Dovecot's UIDNEXT, 51"
    );
    assert_eq!(out["uids"], "7 23 42 51");
    assert_eq!(
        out["status"],
        "Archive/2024 (MESSAGES 1 UIDVALIDITY 1500000007 UIDNEXT 4)"
    );
    // Dovecot's subscriptions, the nested one too, and the special-use mailboxes tower-mail
    // creates (subscribed) at a user's first login.
    assert_eq!(out["lsub"], "INBOX Archive/2024 Drafts Junk Sent Trash");

    // UID 23 has the UIDL a migration kept (Dovecot's `P` field), which Dovecot serves.
    let expected_uidl = [
        dovecot_uidl(7, INBOX_VALIDITY),
        "courier-1099999999.23".to_owned(),
        dovecot_uidl(42, INBOX_VALIDITY),
        dovecot_uidl(51, INBOX_VALIDITY),
    ];
    assert_eq!(
        tower.uidl().await,
        expected_uidl,
        "POP3 UIDLs as Dovecot gave them"
    );

    // What Dovecot reads back: its format, its GUID, the new message under UID 51.
    let list = fs::read_to_string(user_dir.join("dovecot-uidlist")).unwrap();
    assert!(
        list.starts_with("3 V1500000000 N52 G0a1b2c3d4e5f60718293a4b5c6d7e8f9 r"),
        "{list}"
    );
    assert!(
        list.contains("\n23 W104 Pcourier-1099999999.23 :1700000100.M200P1.mx\n"),
        "{list}"
    );
    assert!(list.contains("\n51 :1700000300.M400P1.mx,S="), "{list}");
    let subscriptions = fs::read_to_string(user_dir.join("subscriptions")).unwrap();
    assert_eq!(
        subscriptions,
        "V\t2\n\nArchive\t2024\nDrafts\nINBOX\nJunk\nSent\nTrash\n"
    );
    tower.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uids_and_flags_of_a_dovecot_tree_through_imap() {
    let dir = tempfile::tempdir().unwrap();
    dovecot_tree(dir.path());
    let tower = Tower::start(dir.path()).await;
    let out = tower
        .imaplib(
            r#"
            M.select('INBOX', readonly=True)
            for line in M.uid('FETCH', '1:*', '(FLAGS RFC822.SIZE)')[1]:
                show(line)
            "#,
        )
        .await;
    assert_eq!(
        out,
        "1 (UID 7 FLAGS (\\Seen \\Recent) RFC822.SIZE 117)\n\
         2 (UID 23 FLAGS (\\Recent) RFC822.SIZE 104)\n\
         3 (UID 42 FLAGS (\\Recent) RFC822.SIZE 77)\n"
    );
    tower.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_uid_list_costs_only_its_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let user_dir = dovecot_tree(dir.path());
    // A line of garbage, one naming a file elsewhere, and a line cut short by a crash.
    let path = user_dir.join("dovecot-uidlist");
    let mut list = fs::read_to_string(&path).unwrap();
    list = list.replace("42 :", "\u{1}\u{2} garbage\n30 :../../etc/passwd\n42 :");
    list.push_str("60 :1700000200.M3");
    fs::write(&path, list).unwrap();
    let tower = Tower::start(dir.path()).await;
    let out = printed(
        &tower
            .imaplib(
                r#"
                M.select('INBOX', readonly=True)
                show('uidvalidity', M.response('UIDVALIDITY')[1][0])
                show('uids', M.uid('SEARCH', 'ALL')[1][0])
                "#,
            )
            .await,
    );
    assert_eq!(
        out["uidvalidity"],
        INBOX_VALIDITY.to_string(),
        "not renumbered"
    );
    assert_eq!(out["uids"], "7 23 42", "every good line kept its UID");
    tower.stop().await;
}

// ---- \Recent ----

#[tokio::test(flavor = "multi_thread")]
async fn recent_is_told_once_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let user_dir = dovecot_tree(dir.path());
    let tower = Tower::start(dir.path()).await;

    // Nobody was told of the three messages yet: EXAMINE and STATUS see them as recent
    // without claiming them.
    let examined = printed(
        &tower
            .imaplib(
                r#"
                show('status', M.status('INBOX', '(RECENT)')[1][0])
                M.select('INBOX', readonly=True)
                show('recent', M.response('RECENT')[1][0])
                searches()
                show('status-after', M.status('INBOX', '(RECENT)')[1][0])
                "#,
            )
            .await,
    );
    assert_eq!(examined["status"], "INBOX (RECENT 3)");
    assert_eq!(examined["recent"], "3");
    assert_eq!(examined["search-RECENT"], "1 2 3");
    assert_eq!(examined["search-NEW"], "2 3", "message 1 is seen");
    assert_eq!(examined["search-OLD"], "");
    assert_eq!(examined["status-after"], "INBOX (RECENT 3)");

    // The first SELECT claims them.
    let selected = printed(
        &tower
            .imaplib(
                r#"
                M.select('INBOX')
                show('recent', M.response('RECENT')[1][0])
                searches()
                "#,
            )
            .await,
    );
    assert_eq!(selected["recent"], "3");
    assert_eq!(selected["search-RECENT"], "1 2 3");
    assert_eq!(selected["search-OLD"], "");

    // A restart forgets nothing: no later session sees them as recent.
    tower.stop().await;
    let tower = Tower::start(dir.path()).await;
    let after_restart = printed(
        &tower
            .imaplib(
                r#"
                show('status', M.status('INBOX', '(RECENT)')[1][0])
                M.select('INBOX')
                show('recent', M.response('RECENT')[1][0])
                searches()
                "#,
            )
            .await,
    );
    assert_eq!(after_restart["status"], "INBOX (RECENT 0)");
    assert_eq!(after_restart["recent"], "0");
    assert_eq!(after_restart["search-RECENT"], "");
    assert_eq!(after_restart["search-OLD"], "1 2 3");

    // Delivered while the server was down (by an MDA) and appended by a client to a mailbox
    // nobody had open: recent for the next session, after another restart.
    tower.stop().await;
    fs::write(
        user_dir.join("new/1700000400.M500P1.mx"),
        "Subject: while down\n\nx\n",
    )
    .unwrap();
    let tower = Tower::start(dir.path()).await;
    tower
        .imaplib(
            r#"
            M.append('Archive/2024', None, None, b'Subject: appended\r\n\r\ny\r\n')
            "#,
        )
        .await;
    tower.stop().await;
    let tower = Tower::start(dir.path()).await;
    let later = printed(
        &tower
            .imaplib(
                r#"
                show('archive', M.status('Archive/2024', '(RECENT)')[1][0])
                M.select('INBOX')
                show('recent', M.response('RECENT')[1][0])
                searches()
                M.select('Archive/2024')
                show('archive-recent', M.uid('SEARCH', 'RECENT')[1][0])
                "#,
            )
            .await,
    );
    // Archive/2024's message from Dovecot's time was never shown to a session either.
    assert_eq!(later["archive"], "Archive/2024 (RECENT 2)");
    assert_eq!(later["recent"], "1");
    assert_eq!(later["search-RECENT"], "4");
    assert_eq!(later["search-NEW"], "4");
    assert_eq!(later["search-OLD"], "1 2 3");
    assert_eq!(
        later["archive-recent"], "3 4",
        "Archive/2024's UIDNEXT was 4"
    );
    tower.stop().await;
}

// ---- Dovecot and tower-mail in turn, with Dovecot's doveadm ----

/// Dovecot's `doveadm` on the tree under `root` (alice's is the Maildir), with a minimal
/// configuration: Maildir++ with `/` as the hierarchy separator, as tower-mail shows it.
struct Doveadm {
    /// The test's directory, holding the configuration and the tree.
    dir: PathBuf,
    config: PathBuf,
    user_dir: PathBuf,
    /// Running as root, Dovecot refuses to touch mail as root: it works as `nobody`, and the
    /// directory is handed to `nobody` before each run.
    as_nobody: bool,
}

impl Doveadm {
    fn new(dir: &Path) -> Doveadm {
        let user_dir = dir.join("mail").join(USER);
        fs::create_dir_all(&user_dir).unwrap();
        let as_nobody = command_output("id", &["-u"]).trim() == "0";
        let mut config = format!(
            "mail_location = maildir:{}\n\
             ssl = no\n\
             log_path = /dev/stderr\n\
             namespace inbox {{\n  inbox = yes\n  separator = /\n}}\n",
            user_dir.display()
        );
        if as_nobody {
            config.push_str("mail_uid = 65534\nmail_gid = 65534\n");
        }
        let path = dir.join("dovecot.conf");
        fs::write(&path, config).unwrap();
        Doveadm {
            dir: dir.to_path_buf(),
            config: path,
            user_dir,
            as_nobody,
        }
    }

    /// Runs `doveadm <args>` with `stdin`; its stdout. Fails the test if doveadm fails or
    /// complains: a warning about the tree (a UID list it finds broken) is a failure here.
    fn run(&self, args: &[&str], stdin: &[u8]) -> String {
        if self.as_nobody {
            // The whole directory: `nobody` must be able to reach the tree, whatever the umask.
            command_output("chown", &["-R", "65534:65534", self.dir.to_str().unwrap()]);
        }
        let mut child = std::process::Command::new("doveadm")
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env("HOME", &self.user_dir)
            .env("USER", if self.as_nobody { "nobody" } else { USER })
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}", support_shared::missing("doveadm", &e)));
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.trim().is_empty(),
            "doveadm {args:?} ({}): {stderr}",
            output.status
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn save(&self, mailbox: &str, message: &str) {
        self.run(&["save", "-m", mailbox], message.as_bytes());
    }

    /// The UIDs of `mailbox`, as Dovecot has them.
    fn uids(&self, mailbox: &str) -> Vec<u32> {
        let out = self.run(
            &["-f", "tab", "fetch", "uid", "mailbox", mailbox, "all"],
            b"",
        );
        out.lines()
            .skip(1)
            .map(|uid| uid.parse().unwrap())
            .collect()
    }

    /// `uidvalidity` and `uidnext` of `mailbox`.
    fn status(&self, mailbox: &str) -> (u32, u32) {
        let out = self.run(
            &[
                "-f",
                "tab",
                "mailbox",
                "status",
                "uidvalidity uidnext",
                mailbox,
            ],
            b"",
        );
        let mut lines = out.lines();
        let header = lines.next().unwrap().split('\t');
        // `mailbox`, then the items (in Dovecot's order, not the asked one).
        let values: BTreeMap<&str, &str> = header.zip(lines.next().unwrap().split('\t')).collect();
        let value = |item: &str| values[item].parse().unwrap();
        (value("uidvalidity"), value("uidnext"))
    }

    fn subscribed(&self) -> Vec<String> {
        let out = self.run(&["mailbox", "list", "-s"], b"");
        let mut names: Vec<String> = out.lines().map(str::to_owned).collect();
        names.sort();
        names
    }
}

fn command_output(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}", support_shared::missing(program, &e)));
    assert!(output.status.success(), "{program} {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn dovecot_and_tower_mail_take_turns_on_one_tree() {
    let dir = tempfile::tempdir().unwrap();
    let dovecot = Doveadm::new(dir.path());
    let root = dir.path().join("mail");

    // Dovecot first: three messages, the second expunged, the first read; a nested
    // mailbox, subscribed.
    for i in 1..=3 {
        dovecot.save(
            "INBOX",
            &format!("Subject: from Dovecot {i}\r\n\r\nbody {i}\r\n"),
        );
    }
    dovecot.run(&["expunge", "mailbox", "INBOX", "uid", "2"], b"");
    dovecot.run(
        &["flags", "add", "\\Seen", "mailbox", "INBOX", "uid", "1"],
        b"",
    );
    dovecot.run(&["mailbox", "create", "Archive/2024"], b"");
    dovecot.save("Archive/2024", "Subject: archived\r\n\r\nold\r\n");
    dovecot.run(&["mailbox", "subscribe", "INBOX", "Archive/2024"], b"");
    let (validity, uid_next) = dovecot.status("INBOX");
    assert_eq!((dovecot.uids("INBOX"), uid_next), (vec![1, 3], 4));

    // tower-mail: the same UIDs, UIDVALIDITY, UIDLs and subscriptions; then a delivery, a
    // new nested mailbox subscribed and the old one unsubscribed.
    let tower = Tower::start(&root).await;
    let out = printed(
        &tower
            .imaplib(
                r#"
                M.select('INBOX')
                show('uidvalidity', M.response('UIDVALIDITY')[1][0])
                show('uids', M.uid('SEARCH', 'ALL')[1][0])
                show('seen', M.uid('SEARCH', 'SEEN')[1][0])
                show('lsub', ' '.join(l.decode().split(' "/" ')[1] for l in M.lsub()[1]))
                show('appended', M.append('INBOX', None, None, b'Subject: from tower-mail\r\n\r\nhi\r\n')[1][0])
                M.create('Lists/rust')
                M.subscribe('Lists/rust')
                M.unsubscribe('Archive/2024')
                "#,
            )
            .await,
    );
    assert_eq!(out["uidvalidity"], validity.to_string());
    assert_eq!(out["uids"], "1 3");
    assert_eq!(out["seen"], "1");
    assert_eq!(out["lsub"], "INBOX Archive/2024 Drafts Junk Sent Trash");
    assert_eq!(
        out["appended"],
        format!("[APPENDUID {validity} 4] APPEND completed")
    );
    let expected_uidl: Vec<String> = [1, 3, 4]
        .iter()
        .map(|&uid| dovecot_uidl(uid, validity))
        .collect();
    assert_eq!(tower.uidl().await, expected_uidl);
    tower.stop().await;

    // Dovecot again: tower-mail's message kept its UID, the next one gets the next, and the
    // subscriptions are tower-mail's.
    assert_eq!(dovecot.uids("INBOX"), [1, 3, 4]);
    assert_eq!(dovecot.status("INBOX"), (validity, 5));
    assert_eq!(
        dovecot.subscribed(),
        ["Drafts", "INBOX", "Junk", "Lists/rust", "Sent", "Trash"]
    );
    dovecot.save("INBOX", "Subject: from Dovecot again\r\n\r\nbody\r\n");
    assert_eq!(dovecot.uids("INBOX"), [1, 3, 4, 5]);
    dovecot.run(&["mailbox", "subscribe", "Archive/2024"], b"");

    // And tower-mail once more.
    let tower = Tower::start(&root).await;
    let out = printed(
        &tower
            .imaplib(
                r#"
                M.select('INBOX')
                show('uidvalidity', M.response('UIDVALIDITY')[1][0])
                show('uidnext', M.response('UIDNEXT')[1][0])
                show('uids', M.uid('SEARCH', 'ALL')[1][0])
                show('lsub', ' '.join(l.decode().split(' "/" ')[1] for l in M.lsub()[1]))
                "#,
            )
            .await,
    );
    assert_eq!(out["uidvalidity"], validity.to_string());
    assert_eq!(out["uidnext"], "6");
    assert_eq!(out["uids"], "1 3 4 5");
    assert_eq!(
        out["lsub"],
        "INBOX Archive/2024 Drafts Junk Lists/rust Sent Trash"
    );
    tower.stop().await;
}

/// tower-mail's message cache across Dovecot's turn on the tree: Dovecot leaves
/// `tower-mail-cache` alone (and says nothing about it), and what it changed meanwhile (an
/// expunge, a flag, a delivery) is answered as it is now, not as it was cached.
#[tokio::test(flavor = "multi_thread")]
async fn cached_envelopes_follow_dovecots_turn() {
    let dir = tempfile::tempdir().unwrap();
    let dovecot = Doveadm::new(dir.path());
    let root = dir.path().join("mail");
    for i in 1..=3 {
        dovecot.save(
            "INBOX",
            &format!("Subject: from Dovecot {i}\r\n\r\nbody {i}\r\n"),
        );
    }
    let envelopes = r#"
        M.select('INBOX')
        for line in M.uid('FETCH', '1:*', '(FLAGS ENVELOPE)')[1]:
            show('fetch', line)
        "#;
    let fetched = |output: &str| -> Vec<String> {
        output
            .lines()
            .filter_map(|line| line.strip_prefix("fetch "))
            .map(str::to_owned)
            .collect()
    };

    let tower = Tower::start(&root).await;
    let before = fetched(&tower.imaplib(envelopes).await);
    tower.stop().await;
    assert_eq!(before.len(), 3, "{before:#?}");
    assert!(dovecot.user_dir.join("tower-mail-cache").is_file());

    dovecot.run(&["expunge", "mailbox", "INBOX", "uid", "2"], b"");
    dovecot.run(
        &["flags", "add", "\\Flagged", "mailbox", "INBOX", "uid", "3"],
        b"",
    );
    dovecot.save("INBOX", "Subject: from Dovecot 4\r\n\r\nbody 4\r\n");

    let tower = Tower::start(&root).await;
    let after = fetched(&tower.imaplib(envelopes).await);
    tower.stop().await;
    assert_eq!(after.len(), 3, "{after:#?}");
    let has = |line: &str, uid: u32, subject: &str| {
        line.contains(&format!("UID {uid} ")) && line.contains(&format!("\"{subject}\""))
    };
    assert!(has(&after[0], 1, "from Dovecot 1"), "{after:#?}");
    assert!(
        has(&after[1], 3, "from Dovecot 3") && after[1].contains("\\Flagged"),
        "{after:#?}"
    );
    assert!(has(&after[2], 4, "from Dovecot 4"), "{after:#?}");
}

/// CONDSTORE and QRESYNC across Dovecot's turn on the tree: Dovecot leaves tower-mail's
/// mod-sequence file alone, and what it changed meanwhile (a flag, an expunge, a delivery)
/// reaches a client that resynchronises with tower-mail from the value it had before.
#[tokio::test(flavor = "multi_thread")]
async fn qresync_after_dovecots_turn_reports_what_dovecot_changed() {
    let dir = tempfile::tempdir().unwrap();
    let dovecot = Doveadm::new(dir.path());
    let root = dir.path().join("mail");
    for i in 1..=3 {
        dovecot.save("INBOX", &format!("Subject: {i}\r\n\r\nbody {i}\r\n"));
    }

    let tower = Tower::start(&root).await;
    let before = printed(
        &tower
            .imaplib(
                r#"
                M._simple_command('ENABLE', 'QRESYNC')
                M.select('INBOX')
                show('validity', M.response('UIDVALIDITY')[1][0])
                show('highest', M.response('HIGHESTMODSEQ')[1][0])
                "#,
            )
            .await,
    );
    tower.stop().await;

    dovecot.run(
        &["flags", "add", "\\Flagged", "mailbox", "INBOX", "uid", "1"],
        b"",
    );
    dovecot.run(&["expunge", "mailbox", "INBOX", "uid", "3"], b"");
    dovecot.save("INBOX", "Subject: 4\r\n\r\nbody 4\r\n");
    assert_eq!(dovecot.uids("INBOX"), [1, 2, 4]);

    let tower = Tower::start(&root).await;
    let out = tower
        .imaplib(&format!(
            r#"
            M._simple_command('ENABLE', 'QRESYNC')
            M.untagged_responses.clear()
            typ, data = M._simple_command('SELECT', 'INBOX', '(QRESYNC ({} {}))')
            show('exists', M.untagged_responses['EXISTS'][0])
            for line in M.untagged_responses.get('VANISHED', []):
                show('vanished', line)
            for line in M.untagged_responses.get('FETCH', []):
                show('fetch', line)
            "#,
            before["validity"], before["highest"]
        ))
        .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "exists 3");
    assert_eq!(lines[1], "vanished (EARLIER) 3");
    // The flagged message and the delivery, each with a mod-sequence of its own.
    let fetched: Vec<&str> = lines[2..]
        .iter()
        .filter_map(|line| line.strip_prefix("fetch "))
        .collect();
    assert_eq!(fetched.len(), 2, "{out}");
    assert!(
        fetched[0].starts_with("1 (UID 1 FLAGS (\\Flagged) MODSEQ ("),
        "{out}"
    );
    assert!(fetched[1].starts_with("3 (UID 4 FLAGS ("), "{out}");
    assert_ne!(
        fetched[0].split("MODSEQ").nth(1),
        fetched[1].split("MODSEQ").nth(1)
    );
    tower.stop().await;
}
