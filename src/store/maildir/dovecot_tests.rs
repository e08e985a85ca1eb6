//! Maildir and Dovecot on one tree: the UID list and subscriptions Dovecot wrote are read as
//! Dovecot meant them, what tower-mail writes Dovecot reads, and `\Recent` survives restarts.
//! (Through sockets, with Dovecot's own tools where installed: `tests/dovecot_maildir.rs`.)

use std::fs;
use std::path::Path;

use bytes::Bytes;
use tempfile::TempDir;

use super::Maildir;
use crate::store::{Flags, INBOX, Mailstore};

const USER: &str = "alice";
const GUID: &str = "3085f01b7f11094c501100008c4a11c1";

/// A user tree as Dovecot leaves it: messages in `cur/` (flags in the names) and `new/`,
/// UIDs with gaps, a `W` field, the subscriptions in version 2, no tower-mail marker.
fn dovecot_tree() -> (Maildir, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let user_dir = dir.path().join(USER);
    for sub in [
        "cur",
        "new",
        "tmp",
        ".Archive.2024/cur",
        ".Archive.2024/new",
    ] {
        fs::create_dir_all(user_dir.join(sub)).unwrap();
    }
    let files = [
        ("cur/1700000000.M1P1.mx,S=14,W=17:2,S", "Subject: a\n\nx\n"),
        ("cur/1700000001.M2P1.mx:2,FS", "Subject: b\r\n\r\ny\r\n"),
        ("new/1700000002.M3P1.mx,S=14,W=17", "Subject: c\n\nz\n"),
    ];
    for (name, content) in files {
        fs::write(user_dir.join(name), content).unwrap();
    }
    fs::write(
        user_dir.join("dovecot-uidlist"),
        format!(
            "3 V1600000000 N43 G{GUID}\n\
             7 :1700000000.M1P1.mx,S=14,W=17\n\
             12 W16 :1700000001.M2P1.mx:2,FS\n\
             40 :1700000002.M3P1.mx,S=14,W=17\n"
        ),
    )
    .unwrap();
    fs::write(
        user_dir.join("subscriptions"),
        "V\t2\n\nINBOX\nArchive\t2024\n",
    )
    .unwrap();
    (Maildir::new(dir.path()), dir)
}

fn uids(snapshot: &crate::store::MailboxSnapshot) -> Vec<u32> {
    snapshot.messages.iter().map(|m| m.uid).collect()
}

fn uidlist(folder: &Path) -> String {
    fs::read_to_string(folder.join("dovecot-uidlist")).unwrap()
}

#[tokio::test]
async fn a_tree_dovecot_wrote_keeps_its_uids() {
    let (store, dir) = dovecot_tree();
    let user_dir = dir.path().join(USER);
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(snapshot.uid_validity, 1600000000);
    assert_eq!(snapshot.uid_next, 43);
    // The message still in new/ keeps its UID: moved to cur/ under the same base.
    assert_eq!(uids(&snapshot), [7, 12, 40]);
    assert_eq!(
        snapshot.messages[1].flags,
        (Flags::FLAGGED | Flags::SEEN).into()
    );
    assert!(
        user_dir
            .join("cur/1700000002.M3P1.mx,S=14,W=17:2,")
            .exists()
    );
    // A message an MDA delivered after Dovecot's time gets the next UID.
    fs::write(user_dir.join("new/1700000009.M9P9.mx"), "Subject: d\n\nw\n").unwrap();
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(uids(&snapshot), [7, 12, 40, 43]);
    // The list was rewritten in Dovecot's format with its GUID and fields kept.
    let list = uidlist(&user_dir);
    assert!(
        list.starts_with(&format!("3 V1600000000 N44 G{GUID} r1\n")),
        "{list}"
    );
    assert!(list.contains("\n12 W16 :1700000001.M2P1.mx\n"), "{list}");
    assert!(!user_dir.join("dovecot-uidlist.lock").exists());
    assert!(!user_dir.join("tower-mail-uidlist").exists());
}

#[tokio::test]
async fn dovecot_subscriptions_are_read_and_kept() {
    let (store, dir) = dovecot_tree();
    let user_dir = dir.path().join(USER);
    // Before tower-mail's first set-up of the user (which adds its special-use mailboxes).
    let listed = store.list_mailboxes(USER).await.unwrap();
    let subscribed: Vec<&str> = listed
        .iter()
        .filter(|info| info.subscribed)
        .map(|info| info.name.as_str())
        .collect();
    assert_eq!(subscribed, [INBOX, "Archive/2024"]);
    store.ensure_user(USER).await.unwrap();
    store.set_subscribed(USER, "Sent", false).await.unwrap();
    assert_eq!(
        fs::read_to_string(user_dir.join("subscriptions")).unwrap(),
        "V\t2\n\nArchive\t2024\nDrafts\nINBOX\nJunk\nTrash\n"
    );
    assert!(!user_dir.join("subscriptions.lock").exists());
}

#[tokio::test]
async fn plain_subscriptions_of_either_writer_are_read() {
    let (store, dir) = dovecot_tree();
    let user_dir = dir.path().join(USER);
    // Dovecot before 2.3 (Maildir++): `.` separates.
    fs::write(user_dir.join("subscriptions"), "INBOX\nArchive.2024\n").unwrap();
    let archive = |store: Maildir| async move {
        let listed = store.list_mailboxes(USER).await.unwrap();
        listed
            .into_iter()
            .find(|info| info.name == "Archive/2024")
            .unwrap()
            .subscribed
    };
    assert!(archive(store.clone()).await);
    // An earlier tower-mail (its marker is there): `/` separates, a dot is in the name.
    store.ensure_user(USER).await.unwrap();
    fs::write(user_dir.join("subscriptions"), "INBOX\nArchive/2024\n").unwrap();
    assert!(archive(store.clone()).await);
    store.set_subscribed(USER, "Sent", true).await.unwrap();
    assert_eq!(
        fs::read_to_string(user_dir.join("subscriptions")).unwrap(),
        "V\t2\n\nArchive\t2024\nINBOX\nSent\n"
    );
}

#[tokio::test]
async fn an_earlier_tower_mail_list_is_converted() {
    let dir = tempfile::tempdir().unwrap();
    let user_dir = dir.path().join(USER);
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(user_dir.join(sub)).unwrap();
    }
    fs::write(user_dir.join("cur/1.M1.mx,S=3,W=3:2,"), "a\r\n").unwrap();
    fs::write(user_dir.join("cur/2.M2.mx,S=3,W=3:2,S"), "b\r\n").unwrap();
    fs::write(
        user_dir.join("tower-mail-uidlist"),
        "1 V1234 N9\n3 1.M1.mx,S=3,W=3\n8 2.M2.mx,S=3,W=3\n",
    )
    .unwrap();
    let store = Maildir::new(dir.path());
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!((snapshot.uid_validity, snapshot.uid_next), (1234, 9));
    assert_eq!(uids(&snapshot), [3, 8]);
    assert!(!user_dir.join("tower-mail-uidlist").exists());
    assert!(uidlist(&user_dir).starts_with("3 V1234 N9 G"));
}

#[tokio::test]
async fn recent_survives_a_restart() {
    let (store, dir) = dovecot_tree();
    let user_dir = dir.path().join(USER);
    store.ensure_user(USER).await.unwrap();
    // Dovecot keeps \Recent in its index, which tower-mail does not read: all is recent.
    assert_eq!(store.first_recent_uid(USER, INBOX).await.unwrap(), 1);
    assert_eq!(store.claim_recent(USER, INBOX, 40).await.unwrap(), 1);
    let uid = store
        .append(
            USER,
            INBOX,
            Bytes::from_static(b"new\r\n"),
            Flags::EMPTY.into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(uid, 43);
    assert!(uidlist(&user_dir).starts_with(&format!("3 V1600000000 N44 G{GUID} r41\n")));

    let restarted = Maildir::new(dir.path());
    assert_eq!(restarted.first_recent_uid(USER, INBOX).await.unwrap(), 41);
    assert_eq!(restarted.claim_recent(USER, INBOX, uid).await.unwrap(), 41);
    let again = Maildir::new(dir.path());
    assert_eq!(again.first_recent_uid(USER, INBOX).await.unwrap(), 44);
}

#[tokio::test]
async fn a_stale_lock_does_not_stop_delivery() {
    let (store, dir) = dovecot_tree();
    let user_dir = dir.path().join(USER);
    // Left by a process that died long ago (on another host: only its age tells).
    let lock = fs::File::create(user_dir.join("dovecot-uidlist.lock")).unwrap();
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    lock.set_modified(long_ago).unwrap();
    fs::File::options()
        .write(true)
        .open(user_dir.join("dovecot-uidlist"))
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let uid = store
        .append(
            USER,
            INBOX,
            Bytes::from_static(b"x\r\n"),
            Flags::EMPTY.into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(uid, 43);
    assert!(!user_dir.join("dovecot-uidlist.lock").exists());
}
