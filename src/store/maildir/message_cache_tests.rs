//! The message cache through the store's API ([`Mailstore::cached`] and
//! [`Mailstore::remember`]): what it answers after a restart and after other programs
//! changed the folder, without a snapshot in between.

use std::fs::{self, File};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::Maildir;
use super::message_cache::MemoryUse;
use crate::store::{Flags, INBOX, Mailstore, StoreError};

const USER: &str = "alice";

/// A store with `count` messages in alice's INBOX, each remembered as `derived <uid>`: the
/// store, its directory, and the messages' `(uid, size)`.
async fn remembered(count: u32) -> (Maildir, tempfile::TempDir, Vec<(u32, u64)>) {
    remembered_counting(count, MemoryUse::default()).await
}

/// [`remembered`], the caches' memory counted in `memory`.
async fn remembered_counting(
    count: u32,
    memory: MemoryUse,
) -> (Maildir, tempfile::TempDir, Vec<(u32, u64)>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Maildir::with_cache_memory(dir.path(), memory);
    store.ensure_user(USER).await.unwrap();
    for n in 0..count {
        let message = Bytes::from(format!("Subject: {n}\r\n\r\nbody\r\n"));
        store
            .append(USER, INBOX, message, Flags::EMPTY.into(), None)
            .await
            .unwrap();
    }
    // As if the deliveries were long ago: the next change to `cur/` moves its time, however
    // coarse the file system's clock.
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for sub in ["cur", "new"] {
        let folder = dir.path().join(USER).join(sub);
        File::open(folder)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
    }
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    let keys: Vec<(u32, u64)> = snapshot.messages.iter().map(|m| (m.uid, m.size)).collect();
    let entries = keys
        .iter()
        .map(|&(uid, size)| (uid, size, Bytes::from(format!("derived {uid}"))))
        .collect();
    store.remember(USER, INBOX, entries).await.unwrap();
    (store, dir, keys)
}

fn cur(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join(USER).join("cur")
}

/// The file of message `n` (by its subject).
fn file_of(dir: &tempfile::TempDir, n: u32) -> PathBuf {
    fs::read_dir(cur(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            fs::read(path)
                .unwrap()
                .starts_with(format!("Subject: {n}\r\n").as_bytes())
        })
        .unwrap()
}

fn shown(answers: Vec<Result<Option<Bytes>, StoreError>>) -> Vec<String> {
    answers
        .into_iter()
        .map(|answer| match answer {
            Ok(Some(data)) => String::from_utf8_lossy(&data).into_owned(),
            Ok(None) => "none".to_owned(),
            Err(err) => format!("{err}"),
        })
        .collect()
}

#[tokio::test]
async fn what_is_remembered_is_answered_after_a_restart() {
    let (_, dir, keys) = remembered(2).await;
    let restarted = Maildir::new(dir.path());
    let answers = restarted.cached(USER, INBOX, &keys).await.unwrap();
    let expected: Vec<String> = keys
        .iter()
        .map(|(uid, _)| format!("derived {uid}"))
        .collect();
    assert_eq!(shown(answers), expected);
}

#[tokio::test]
async fn other_programs_renaming_or_removing_files_are_seen_without_a_snapshot() {
    let (store, dir, keys) = remembered(3).await;
    // A flag change by another program keeps the entry; a removal makes the message gone.
    let first = file_of(&dir, 0);
    let name = first.file_name().unwrap().to_str().unwrap().to_owned();
    fs::rename(&first, first.with_file_name(format!("{name}S"))).unwrap();
    fs::remove_file(file_of(&dir, 1)).unwrap();
    let answers = shown(store.cached(USER, INBOX, &keys).await.unwrap());
    assert_eq!(answers[0], format!("derived {}", keys[0].0));
    assert_eq!(answers[1], StoreError::NoSuchMessage.to_string());
    assert_eq!(answers[2], format!("derived {}", keys[2].0));
}

#[tokio::test]
async fn an_entry_answers_only_for_the_size_it_was_kept_with() {
    let (store, _dir, keys) = remembered(1).await;
    let (uid, size) = keys[0];
    let answers = store.cached(USER, INBOX, &[(uid, size + 1)]).await.unwrap();
    assert_eq!(shown(answers), ["none"]);
}

#[tokio::test]
async fn a_new_file_under_a_known_uid_is_not_answered_for() {
    let (store, dir, keys) = remembered(1).await;
    // Another program replaces the message: a new file, so a new UID; the old one is gone.
    let old = file_of(&dir, 0);
    fs::remove_file(&old).unwrap();
    fs::write(
        cur(&dir).join("1700000000.M1P1Q1.outside:2,"),
        "Subject: 0\r\n\r\nnew\r\n",
    )
    .unwrap();
    let answers = shown(store.cached(USER, INBOX, &keys).await.unwrap());
    assert_eq!(answers, [StoreError::NoSuchMessage.to_string()]);
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    let new: Vec<(u32, u64)> = snapshot.messages.iter().map(|m| (m.uid, m.size)).collect();
    assert_ne!(new[0].0, keys[0].0);
    assert_eq!(
        shown(store.cached(USER, INBOX, &new).await.unwrap()),
        ["none"]
    );
}

#[tokio::test]
async fn past_their_memory_budget_the_caches_of_folders_not_in_use_are_dropped() {
    let roomy = MemoryUse::default();
    let (_store, _dir, _) = remembered_counting(2, roomy.clone()).await;
    assert!(roomy.used() > 0, "kept in memory within the budget");

    let tight = MemoryUse::with_budget(1);
    let (store, _dir, keys) = remembered_counting(2, tight.clone()).await;
    assert_eq!(tight.used(), 0, "dropped once the folder was not in use");
    // Read from the file again when asked, and dropped again after.
    let answers = shown(store.cached(USER, INBOX, &keys).await.unwrap());
    assert_eq!(answers[1], format!("derived {}", keys[1].0));
    assert_eq!(tight.used(), 0);
}
