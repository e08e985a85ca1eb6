//! Mod-sequences on disk: what survives a restart, and what other programs' changes to the
//! tree (Dovecot, mutt, an MDA) do to them. The rules both stores share are in
//! [`conformance_modseq`](crate::store::conformance_modseq).

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tempfile::TempDir;

use super::Maildir;
use super::modseqs::FILE_NAME;
use crate::store::{Flags, FlagsUpdate, INBOX, MailboxSnapshot, Mailstore, MessageFlags};

const USER: &str = "alice";

async fn user_store() -> (Maildir, TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = Maildir::new(dir.path().join("mail"));
    store.ensure_user(USER).await.unwrap();
    let user_dir = store.root().join(USER);
    (store, dir, user_dir)
}

async fn append(store: &Maildir) -> u32 {
    let content = Bytes::from_static(b"Subject: m\r\n\r\nbody\r\n");
    store
        .append(USER, INBOX, content, Flags::EMPTY.into(), None)
        .await
        .unwrap()
}

async fn snapshot(store: &Maildir) -> MailboxSnapshot {
    store.snapshot(USER, INBOX).await.unwrap()
}

fn modseq_of(snapshot: &MailboxSnapshot, uid: u32) -> u64 {
    let message = snapshot.messages.iter().find(|m| m.uid == uid);
    message.expect("the message is there").modseq
}

/// The name in `cur/` of the one file whose name contains `needle`.
fn file_with(cur: &Path, needle: &str) -> String {
    let names: Vec<String> = fs::read_dir(cur)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains(needle))
        .collect();
    assert_eq!(names.len(), 1, "{needle} in {names:?}");
    names[0].clone()
}

/// The file of message `uid`, from the UID list.
fn file_of(user_dir: &Path, uid: u32) -> String {
    let list = fs::read_to_string(user_dir.join("dovecot-uidlist")).unwrap();
    let base = list
        .lines()
        .skip(1)
        .find_map(|line| {
            let (number, rest) = line.split_once(' ')?;
            (number == uid.to_string()).then(|| rest.rsplit_once(':').unwrap().1.to_owned())
        })
        .expect("the UID is listed");
    file_with(&user_dir.join("cur"), &base)
}

#[tokio::test]
async fn modseqs_and_expunges_survive_a_restart() {
    let (store, _dir, user_dir) = user_store().await;
    let (a, b, c) = (
        append(&store).await,
        append(&store).await,
        append(&store).await,
    );
    store
        .set_flags(USER, INBOX, b, Flags::SEEN.into())
        .await
        .unwrap();
    let before_expunge = snapshot(&store).await.highest_modseq;
    store.expunge(USER, INBOX, &[c]).await.unwrap();
    let before = snapshot(&store).await;
    assert!(user_dir.join(FILE_NAME).is_file());

    let restarted = Maildir::new(store.root());
    assert_eq!(snapshot(&restarted).await, before);
    let history = restarted.expunged_since(USER, INBOX, before_expunge).await;
    assert_eq!(history.unwrap(), Some(vec![c..=c]));
    // And counting goes on from there.
    restarted
        .set_flags(USER, INBOX, a, Flags::FLAGGED.into())
        .await
        .unwrap();
    let after = snapshot(&restarted).await;
    assert_eq!(modseq_of(&after, a), before.highest_modseq + 1);
    assert_eq!(modseq_of(&after, b), modseq_of(&before, b));
}

#[tokio::test]
async fn another_programs_flag_changes_get_new_modseqs_when_seen() {
    let (store, _dir, user_dir) = user_store().await;
    let (a, b) = (append(&store).await, append(&store).await);
    let before = snapshot(&store).await;
    let cur = user_dir.join("cur");

    // mutt (or Dovecot) marks message a seen by renaming its file.
    let name = file_of(&user_dir, a);
    let base = name.strip_suffix(":2,").unwrap();
    fs::rename(cur.join(&name), cur.join(format!("{base}:2,S"))).unwrap();
    let after = snapshot(&store).await;
    assert_eq!(after.messages[0].flags, MessageFlags::from(Flags::SEEN));
    assert!(modseq_of(&after, a) > before.highest_modseq);
    assert_eq!(after.highest_modseq, modseq_of(&after, a));
    assert_eq!(modseq_of(&after, b), modseq_of(&before, b));

    // Seen once: the next look and a restart keep the value.
    assert_eq!(snapshot(&store).await, after);
    assert_eq!(snapshot(&Maildir::new(store.root())).await, after);
}

#[tokio::test]
async fn a_change_another_program_made_unseen_fails_a_condition() {
    let (store, _dir, user_dir) = user_store().await;
    let a = append(&store).await;
    let known = modseq_of(&snapshot(&store).await, a);
    let cur = user_dir.join("cur");
    let name = file_of(&user_dir, a);
    let base = name.strip_suffix(":2,").unwrap();
    fs::rename(cur.join(&name), cur.join(format!("{base}:2,F"))).unwrap();

    // No snapshot in between: the store learns of the change from the file itself.
    let update = store
        .update_flags(USER, INBOX, a, Flags::SEEN.into(), Some(known))
        .await
        .unwrap();
    let FlagsUpdate::Modified { modseq } = update else {
        panic!("a change nobody was told of passed the condition: {update:?}");
    };
    assert!(modseq > known);
    let now = snapshot(&store).await;
    assert_eq!(now.messages[0].flags, MessageFlags::from(Flags::FLAGGED));
    assert_eq!(modseq_of(&now, a), modseq);
}

#[tokio::test]
async fn another_programs_expunges_and_deliveries_are_recorded_when_seen() {
    let (store, _dir, user_dir) = user_store().await;
    let (a, b) = (append(&store).await, append(&store).await);
    let before = snapshot(&store).await;
    let cur = user_dir.join("cur");
    fs::remove_file(cur.join(file_of(&user_dir, a))).unwrap();
    fs::write(user_dir.join("new").join("1700000000.M1P9.mx"), b"new\n").unwrap();

    let after = snapshot(&store).await;
    assert_eq!(after.messages.len(), 2);
    let delivered = after.messages[1].uid;
    assert!(modseq_of(&after, delivered) > before.highest_modseq);
    assert_eq!(modseq_of(&after, b), modseq_of(&before, b));
    let history = store
        .expunged_since(USER, INBOX, before.highest_modseq)
        .await;
    assert_eq!(history.unwrap(), Some(vec![a..=a]));
}

#[tokio::test]
async fn a_lost_file_starts_above_every_value_handed_out() {
    let (store, _dir, user_dir) = user_store().await;
    let a = append(&store).await;
    let before = snapshot(&store).await;
    fs::remove_file(user_dir.join(FILE_NAME)).unwrap();

    let restarted = Maildir::new(store.root());
    let after = snapshot(&restarted).await;
    assert!(modseq_of(&after, a) > before.highest_modseq);
    // Expunges from before the file was lost are unknown: the caller answers broadly.
    let history = restarted
        .expunged_since(USER, INBOX, before.highest_modseq)
        .await;
    assert_eq!(history.unwrap(), None);
}

#[tokio::test]
async fn a_renumbered_folder_starts_its_modseqs_anew() {
    let (store, _dir, user_dir) = user_store().await;
    append(&store).await;
    let before = snapshot(&store).await;
    // Dovecot lost its UID list and numbered the folder again.
    fs::remove_file(user_dir.join("dovecot-uidlist")).unwrap();
    let after = snapshot(&Maildir::new(store.root())).await;
    assert_ne!(after.uid_validity, before.uid_validity);
    assert!(after.highest_modseq > before.highest_modseq);
    let text = fs::read_to_string(user_dir.join(FILE_NAME)).unwrap();
    assert!(
        text.starts_with(&format!("1 V{} ", after.uid_validity)),
        "{text}"
    );
}
