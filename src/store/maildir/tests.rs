//! Maildir-specific behaviour: what is on disk, restarts, and other programs touching the
//! tree. The behaviour shared with [`MemoryStore`](crate::store::MemoryStore) is in
//! [`conformance`](crate::store::conformance).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use tempfile::TempDir;

use super::Maildir;
use super::upload::BUFFER_SIZE;
use crate::store::conformance::{conformance_tests, mixed_message};
use crate::store::{
    Flags, INBOX, Mailstore, MessageFlags, MessageUpload, StoreError, rfc822_size, test_flags,
};

conformance_tests!(store());

const USER: &str = "alice";

fn store() -> (Maildir, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Maildir::new(dir.path().join("mail")), dir)
}

async fn user_store() -> (Maildir, TempDir, PathBuf) {
    let (store, dir) = store();
    store.ensure_user(USER).await.unwrap();
    let user_dir = store.root().join(USER);
    (store, dir, user_dir)
}

async fn append(store: &Maildir, content: &'static [u8]) -> u32 {
    store
        .append(
            USER,
            INBOX,
            Bytes::from_static(content),
            MessageFlags::from(Flags::EMPTY),
            None,
        )
        .await
        .unwrap()
}

/// The file names in a directory, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn uidlist(folder: &Path) -> String {
    fs::read_to_string(folder.join("dovecot-uidlist")).unwrap()
}

/// The UID list's header fields by key (`V`, `N`, `G`, `r`).
fn uidlist_header(folder: &Path) -> std::collections::HashMap<char, String> {
    let list = uidlist(folder);
    let (version, fields) = list.lines().next().unwrap().split_once(' ').unwrap();
    assert_eq!(version, "3");
    fields
        .split(' ')
        .map(|field| (field.chars().next().unwrap(), field[1..].to_owned()))
        .collect()
}

#[tokio::test]
async fn layout_on_disk() {
    let (store, _dir, user_dir) = user_store().await;
    store.create_mailbox(USER, "Archive/2024").await.unwrap();
    store.create_mailbox(USER, "john.doe").await.unwrap();
    for folder in [
        ".",
        ".Sent",
        ".Drafts",
        ".Trash",
        ".Junk",
        ".Archive",
        ".Archive.2024",
        ".john%2Edoe",
    ] {
        for sub in ["cur", "new", "tmp"] {
            assert!(user_dir.join(folder).join(sub).is_dir(), "{folder}/{sub}");
        }
        let header = uidlist_header(&user_dir.join(folder));
        assert_eq!(header[&'N'], "1", "{folder}");
        assert_eq!(
            header[&'G'].len(),
            32,
            "{folder}: a mailbox GUID as Dovecot writes it"
        );
    }
    let subscriptions = fs::read_to_string(user_dir.join("subscriptions")).unwrap();
    // Dovecot's version 2 format; created mailboxes are not subscribed by CREATE.
    assert_eq!(subscriptions, "V\t2\n\nDrafts\nINBOX\nJunk\nSent\nTrash\n");
    assert!(user_dir.join("tower-mail-initialized").exists());
}

#[tokio::test]
async fn delivery_file_name_and_uidlist() {
    let (store, _dir, user_dir) = user_store().await;
    let content = b"Subject: x\n\nbody\n";
    let when = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let uid = store
        .append(
            USER,
            INBOX,
            Bytes::from_static(content),
            MessageFlags::from(Flags::SEEN | Flags::ANSWERED),
            Some(when),
        )
        .await
        .unwrap();
    let names = files(&user_dir.join("cur"));
    assert_eq!(names.len(), 1);
    let name = &names[0];
    let suffix = format!(",S={},W={}:2,RS", content.len(), rfc822_size(content));
    assert!(name.ends_with(&suffix), "{name}");
    assert!(
        name.contains(&format!("P{}Q", std::process::id())),
        "{name}"
    );
    assert!(files(&user_dir.join("tmp")).is_empty());
    let path = user_dir.join("cur").join(name);
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), when);
    assert_eq!(fs::read(&path).unwrap(), content);

    let validity = store.snapshot(USER, INBOX).await.unwrap().uid_validity;
    let base = name.strip_suffix(":2,RS").unwrap();
    let guid = &uidlist_header(&user_dir)[&'G'];
    assert_eq!(
        uidlist(&user_dir),
        format!("3 V{validity} N{} G{guid} r1\n{uid} :{base}\n", uid + 1)
    );
}

#[tokio::test]
async fn uids_survive_a_restart() {
    let (store, dir, _) = user_store().await;
    append(&store, b"one\r\n").await;
    let two = append(&store, b"two\r\n").await;
    let three = append(&store, b"three\r\n").await;
    store
        .set_flags(USER, INBOX, two, MessageFlags::from(Flags::FLAGGED))
        .await
        .unwrap();
    store.expunge(USER, INBOX, &[three]).await.unwrap();
    let before = store.snapshot(USER, INBOX).await.unwrap();
    drop(store);

    let restarted = Maildir::new(dir.path().join("mail"));
    assert_eq!(restarted.snapshot(USER, INBOX).await.unwrap(), before);
    assert_eq!(
        restarted.fetch(USER, INBOX, two).await.unwrap(),
        &b"two\r\n"[..]
    );
    let four = append(&restarted, b"four\r\n").await;
    assert_eq!(four, three + 1);
    restarted.ensure_user(USER).await.unwrap();
    assert_eq!(
        restarted.snapshot(USER, INBOX).await.unwrap().uid_validity,
        before.uid_validity
    );
}

#[tokio::test]
async fn picks_up_mda_deliveries_in_new() {
    let (store, _dir, user_dir) = user_store().await;
    let first = append(&store, b"first\r\n").await;
    let content = b"Subject: dropped\n\nby procmail\n";
    fs::write(user_dir.join("new/1700000000.M1P99.mx"), content).unwrap();
    fs::write(user_dir.join("new/1700000001.M1P99.mx:2,S"), b"seen\n").unwrap();
    fs::write(user_dir.join("new/.hidden"), b"not mail").unwrap();

    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(snapshot.messages.len(), 3);
    let dropped = &snapshot.messages[1];
    assert_eq!(snapshot.messages[0].uid, first);
    assert!(dropped.uid > first);
    assert_eq!(dropped.size, rfc822_size(content));
    assert_eq!(dropped.flags, MessageFlags::from(Flags::EMPTY));
    assert_eq!(snapshot.messages[2].flags, MessageFlags::from(Flags::SEEN));
    assert_eq!(files(&user_dir.join("new")), [".hidden"]);
    let cur = files(&user_dir.join("cur"));
    let expected = format!(
        "1700000000.M1P99.mx,S={},W={}:2,",
        content.len(),
        rfc822_size(content)
    );
    assert!(cur.contains(&expected), "{cur:?}");
    assert!(
        cur.contains(&"1700000001.M1P99.mx,S=5,W=6:2,S".to_owned()),
        "{cur:?}"
    );
    assert_eq!(
        store.fetch(USER, INBOX, dropped.uid).await.unwrap(),
        &content[..]
    );

    // Stable afterwards, also for a fresh process.
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap(), snapshot);
    let restarted = Maildir::new(store.root());
    assert_eq!(restarted.snapshot(USER, INBOX).await.unwrap(), snapshot);
}

#[tokio::test]
async fn delivery_clashing_with_a_known_base_is_renamed() {
    let (store, _dir, user_dir) = user_store().await;
    fs::write(user_dir.join("new/1.M1.mx,S=2,W=3"), b"a\n").unwrap();
    store.snapshot(USER, INBOX).await.unwrap();
    fs::write(user_dir.join("new/1.M1.mx,S=2,W=3"), b"b\n").unwrap();
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(snapshot.messages.len(), 2);
    let first = store
        .fetch(USER, INBOX, snapshot.messages[0].uid)
        .await
        .unwrap();
    let second = store
        .fetch(USER, INBOX, snapshot.messages[1].uid)
        .await
        .unwrap();
    assert_eq!((&first[..], &second[..]), (&b"a\n"[..], &b"b\n"[..]));
}

#[cfg(unix)]
#[tokio::test]
async fn deliveries_with_unusable_names_get_new_ones() {
    use std::os::unix::ffi::OsStrExt;

    let (store, _dir, user_dir) = user_store().await;
    let not_utf8 = std::ffi::OsStr::from_bytes(b"1.M1.\xff");
    fs::write(user_dir.join("new").join(not_utf8), b"one\n").unwrap();
    fs::write(user_dir.join("new/2.M1.mx\r"), b"two\n").unwrap();
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(snapshot.messages.len(), 2);
    assert!(files(&user_dir.join("new")).is_empty());
    let mut contents = Vec::new();
    for message in &snapshot.messages {
        contents.push(store.fetch(USER, INBOX, message.uid).await.unwrap());
    }
    contents.sort();
    assert_eq!(contents, [&b"one\n"[..], &b"two\n"[..]]);
}

#[tokio::test]
async fn sizes_of_files_without_w_are_read() {
    let (store, _dir, user_dir) = user_store().await;
    // As another Maildir tool might leave it directly in cur/.
    fs::write(user_dir.join("cur/1.M1.other:2,S"), b"a\nb\n").unwrap();
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(snapshot.messages[0].size, 6);
    assert_eq!(snapshot.messages[0].flags, MessageFlags::from(Flags::SEEN));
    // The name is left alone (another tool may track it).
    assert_eq!(files(&user_dir.join("cur")), ["1.M1.other:2,S"]);
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap(), snapshot);
}

#[tokio::test]
async fn set_flags_renames_keeping_passed() {
    let (store, _dir, user_dir) = user_store().await;
    let uid = append(&store, b"x\r\n").await;
    let cur = user_dir.join("cur");
    store
        .set_flags(
            USER,
            INBOX,
            uid,
            MessageFlags::from(Flags::SEEN | Flags::FLAGGED | Flags::DRAFT),
        )
        .await
        .unwrap();
    let name = files(&cur).remove(0);
    assert!(name.ends_with(":2,DFS"), "{name}");

    // Another client adds a keyword letter the folder has no name for, and "passed".
    let base = name.strip_suffix(":2,DFS").unwrap().to_owned();
    fs::rename(cur.join(&name), cur.join(format!("{base}:2,DFPSa"))).unwrap();
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    let keywords: Vec<&str> = snapshot.messages[0]
        .flags
        .keywords
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(keywords, ["unknown-0"], "named as Dovecot names it");
    store
        .set_flags(USER, INBOX, uid, MessageFlags::from(Flags::ANSWERED))
        .await
        .unwrap();
    assert_eq!(
        files(&cur),
        [format!("{base}:2,PR")],
        "the keyword is replaced too"
    );
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(
        snapshot.messages[0].flags,
        MessageFlags::from(Flags::ANSWERED)
    );
    assert_eq!(store.fetch(USER, INBOX, uid).await.unwrap(), &b"x\r\n"[..]);
}

#[tokio::test]
async fn follows_files_renamed_by_other_programs() {
    let (store, _dir, user_dir) = user_store().await;
    let uid = append(&store, b"x\r\n").await;
    store.snapshot(USER, INBOX).await.unwrap();
    let cur = user_dir.join("cur");
    let name = files(&cur).remove(0);
    let base = name.strip_suffix(":2,").unwrap();
    fs::rename(cur.join(&name), cur.join(format!("{base}:2,RS"))).unwrap();
    // Without a snapshot in between: the remembered name is stale.
    assert_eq!(store.fetch(USER, INBOX, uid).await.unwrap(), &b"x\r\n"[..]);
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(
        snapshot.messages[0].flags,
        MessageFlags::from(Flags::ANSWERED | Flags::SEEN)
    );

    // Deleted behind our back: forgotten.
    fs::remove_file(cur.join(format!("{base}:2,RS"))).unwrap();
    assert!(matches!(
        store.fetch(USER, INBOX, uid).await,
        Err(StoreError::NoSuchMessage)
    ));
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert!(snapshot.messages.is_empty());
    assert_eq!(snapshot.uid_next, uid + 1);
}

#[tokio::test]
async fn expunge_removes_files_and_lines() {
    let (store, _dir, user_dir) = user_store().await;
    let one = append(&store, b"one\r\n").await;
    let two = append(&store, b"two\r\n").await;
    store.expunge(USER, INBOX, &[one]).await.unwrap();
    let cur = files(&user_dir.join("cur"));
    assert_eq!(cur.len(), 1);
    let list = uidlist(&user_dir);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains(&format!(" N{} ", two + 1)));
    assert!(lines[1].starts_with(&format!("{two} :")));
    assert_eq!(
        format!("{}:2,", lines[1].split_once(" :").unwrap().1),
        cur[0]
    );
}

#[tokio::test]
async fn damaged_uidlist_is_rebuilt_with_new_uid_validity() {
    let (store, _dir, user_dir) = user_store().await;
    append(&store, b"one\r\n").await;
    append(&store, b"two\r\n").await;
    let old = store.snapshot(USER, INBOX).await.unwrap();

    fs::write(user_dir.join("dovecot-uidlist"), b"this is not a uid list").unwrap();
    let rebuilt = store.snapshot(USER, INBOX).await.unwrap();
    assert_ne!(rebuilt.uid_validity, old.uid_validity);
    assert_eq!(rebuilt.messages.len(), 2);
    assert_eq!(rebuilt.messages[0].uid, 1);
    assert_eq!(store.fetch(USER, INBOX, 2).await.unwrap(), &b"two\r\n"[..]);
    assert!(user_dir.join("dovecot-uidlist.corrupt").exists());

    fs::remove_file(user_dir.join("dovecot-uidlist")).unwrap();
    let restarted = Maildir::new(store.root());
    let again = restarted
        .append(
            USER,
            INBOX,
            Bytes::from_static(b"three\r\n"),
            MessageFlags::from(Flags::EMPTY),
            None,
        )
        .await
        .unwrap();
    let snapshot = restarted.snapshot(USER, INBOX).await.unwrap();
    assert_ne!(snapshot.uid_validity, rebuilt.uid_validity);
    assert_eq!(snapshot.messages.len(), 3);
    assert_eq!(snapshot.messages[2].uid, again);
}

#[tokio::test]
async fn ensure_user_after_an_mda_made_the_directory() {
    let (store, _dir) = store();
    let user_dir = store.root().join(USER);
    fs::create_dir_all(user_dir.join("new")).unwrap();
    fs::write(user_dir.join("new/1.M1.mx"), b"early\n").unwrap();
    store.ensure_user(USER).await.unwrap();
    assert_eq!(store.list_mailboxes(USER).await.unwrap().len(), 5);
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap().messages.len(), 1);
}

#[tokio::test]
async fn folders_not_made_by_us_are_not_listed() {
    let (store, _dir, user_dir) = user_store().await;
    for odd in [
        ".a..b/cur",
        ".x%25y/cur",
        ".NoCur",
        "..tower-mail-deleted.1/cur",
    ] {
        fs::create_dir_all(user_dir.join(odd)).unwrap();
    }
    fs::create_dir_all(user_dir.join(".Made.By.Mutt/cur")).unwrap();
    let names: Vec<String> = store
        .list_mailboxes(USER)
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.name)
        .collect();
    assert_eq!(
        names,
        [INBOX, "Drafts", "Junk", "Made/By/Mutt", "Sent", "Trash"]
    );
    // A folder without a UID list gets one on first use.
    let snapshot = store.snapshot(USER, "Made/By/Mutt").await.unwrap();
    assert_eq!(snapshot.uid_next, 1);
    assert!(user_dir.join(".Made.By.Mutt/dovecot-uidlist").exists());
    // ... and tmp/ when a message is first appended.
    let uid = store
        .append(
            USER,
            "Made/By/Mutt",
            Bytes::from_static(b"m\r\n"),
            MessageFlags::from(Flags::EMPTY),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store.fetch(USER, "Made/By/Mutt", uid).await.unwrap(),
        &b"m\r\n"[..]
    );
}

#[tokio::test]
async fn delete_and_rename_on_disk() {
    let (store, _dir, user_dir) = user_store().await;
    store.create_mailbox(USER, "A/B").await.unwrap();
    store.rename_mailbox(USER, "A", "C.d").await.unwrap();
    assert!(user_dir.join(".C%2Ed/cur").is_dir());
    assert!(user_dir.join(".C%2Ed.B/cur").is_dir());
    assert!(!user_dir.join(".A").exists());
    store.delete_mailbox(USER, "C.d").await.unwrap();
    assert!(!user_dir.join(".C%2Ed").exists());
    assert!(user_dir.join(".C%2Ed.B/cur").is_dir());
    // Nothing left behind.
    let leftovers = files(&user_dir);
    assert!(
        !leftovers.iter().any(|name| name.starts_with("..")),
        "{leftovers:?}"
    );
}

/// Not run by default: `cargo test --lib -- --ignored large_folder --nocapture`.
#[tokio::test]
#[ignore]
async fn large_folder_snapshot_is_fast() {
    let (store, _dir, user_dir) = user_store().await;
    for i in 0..10_000 {
        let name = format!("{}.M{i}P1.mx,S=100,W=102:2,S", 1_700_000_000 + i);
        fs::write(user_dir.join("cur").join(name), b"x").unwrap();
    }
    let started = Instant::now();
    let first = store.snapshot(USER, INBOX).await.unwrap();
    let assigning = started.elapsed();
    let started = Instant::now();
    let mut second = store.snapshot(USER, INBOX).await.unwrap();
    for _ in 0..9 {
        second = store.snapshot(USER, INBOX).await.unwrap();
    }
    let steady = started.elapsed() / 10;
    let started = Instant::now();
    append(&store, b"one more\r\n").await;
    let appending = started.elapsed();
    let started = Instant::now();
    for message in &second.messages[..1000] {
        store.fetch(USER, INBOX, message.uid).await.unwrap();
    }
    let fetching = started.elapsed();
    assert_eq!(first, second);
    assert_eq!(second.messages.len(), 10_000);
    assert!(second.messages.iter().all(|m| m.size == 102));
    println!(
        "10k: first snapshot {assigning:?}, next {steady:?}, append {appending:?}, 1000 fetches {fetching:?}"
    );
}

/// Sets a directory's modification time, as the kernel would on a change at `time`.
fn set_dir_time(dir: &Path, time: std::time::SystemTime) {
    fs::File::open(dir).unwrap().set_modified(time).unwrap();
}

/// A snapshot of a folder whose directories have not changed since the last one reuses that
/// listing (no readdir of a large folder before every IMAP command), and any change, which
/// moves a directory's time, is listed again. A listing made while the times were recent is
/// never reused: two changes within one tick of the file system's clock share a time.
#[tokio::test]
async fn unchanged_settled_folders_are_not_listed_again() {
    let (store, _dir, user_dir) = user_store().await;
    append(&store, b"first\r\n").await;
    let (cur, new) = (user_dir.join("cur"), user_dir.join("new"));
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    set_dir_time(&cur, hour_ago);
    set_dir_time(&new, hour_ago);
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap().messages.len(), 1);

    // A file slipped in with the directory's time put back: only a reused listing misses it.
    fs::write(cur.join("1700000000.M1P99.mx:2,"), b"second\n").unwrap();
    set_dir_time(&cur, hour_ago);
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap().messages.len(), 1);
    // Any real change moves the time: listed again.
    set_dir_time(&cur, hour_ago + Duration::from_secs(1));
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap().messages.len(), 2);

    // Recent times: a file slipped in under the same time is still seen.
    let just_now = std::time::SystemTime::now();
    set_dir_time(&cur, just_now);
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap().messages.len(), 2);
    fs::write(cur.join("1700000001.M1P99.mx:2,"), b"third\n").unwrap();
    set_dir_time(&cur, just_now);
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap().messages.len(), 3);

    // This store's own changes are listed at once, whatever the times.
    set_dir_time(&cur, hour_ago);
    set_dir_time(&new, hour_ago);
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    let uid = snapshot.messages[0].uid;
    store
        .set_flags(USER, INBOX, uid, MessageFlags::from(Flags::SEEN))
        .await
        .unwrap();
    set_dir_time(&cur, hour_ago);
    let after = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(after.messages[0].flags, MessageFlags::from(Flags::SEEN));
    store.expunge(USER, INBOX, &[uid]).await.unwrap();
    set_dir_time(&cur, hour_ago);
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap().messages.len(), 2);
}

/// The one file in a folder's `tmp/` and its length.
fn tmp_file(user_dir: &Path) -> (PathBuf, u64) {
    let names = files(&user_dir.join("tmp"));
    assert_eq!(names.len(), 1, "{names:?}");
    let path = user_dir.join("tmp").join(&names[0]);
    let len = fs::metadata(&path).unwrap().len();
    (path, len)
}

#[tokio::test]
async fn upload_streams_to_tmp_and_is_delivered_like_append() {
    let (store, _dir, user_dir) = user_store().await;
    let content = mixed_message(5 * BUFFER_SIZE + 123);
    let mut upload = store
        .begin_append(USER, INBOX, content.len() as u64)
        .await
        .unwrap();
    assert_eq!(tmp_file(&user_dir).1, 0);
    // In chunks of an IMAP reader's size: on disk as they come, less than a buffer behind.
    let mut sent = 0;
    for chunk in content.chunks(8 * 1024 + 1) {
        upload.write(chunk).await.unwrap();
        sent += chunk.len() as u64;
        let on_disk = tmp_file(&user_dir).1;
        assert!(on_disk <= sent && sent - on_disk < BUFFER_SIZE as u64);
    }
    assert!(files(&user_dir.join("cur")).is_empty());

    let when = UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    let uid = upload
        .commit(MessageFlags::from(Flags::SEEN | Flags::DRAFT), Some(when))
        .await
        .unwrap();
    assert!(files(&user_dir.join("tmp")).is_empty());
    let names = files(&user_dir.join("cur"));
    assert_eq!(names.len(), 1);
    let name = &names[0];
    let suffix = format!(",S={},W={}:2,DS", content.len(), rfc822_size(&content));
    assert!(name.ends_with(&suffix), "{name}");
    assert!(
        name.contains(&format!("P{}Q", std::process::id())),
        "{name}"
    );
    let path = user_dir.join("cur").join(name);
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), when);
    assert_eq!(fs::read(&path).unwrap(), content);
    let validity = store.snapshot(USER, INBOX).await.unwrap().uid_validity;
    let base = name.strip_suffix(":2,DS").unwrap();
    let guid = &uidlist_header(&user_dir)[&'G'];
    assert_eq!(
        uidlist(&user_dir),
        format!("3 V{validity} N{} G{guid} r1\n{uid} :{base}\n", uid + 1)
    );

    // A new process reads the same.
    let restarted = Maildir::new(store.root());
    let snapshot = restarted.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(snapshot.messages[0].size, rfc822_size(&content));
    assert_eq!(restarted.fetch(USER, INBOX, uid).await.unwrap(), content);
}

#[tokio::test]
async fn abandoned_uploads_leave_no_file_in_tmp() {
    let (store, _dir, user_dir) = user_store().await;
    let content = mixed_message(3 * BUFFER_SIZE);
    let list_before = uidlist(&user_dir);

    // Dropped after part of it reached the disk.
    let mut upload = store
        .begin_append(USER, INBOX, content.len() as u64)
        .await
        .unwrap();
    upload
        .write(&content[..2 * BUFFER_SIZE + 10])
        .await
        .unwrap();
    assert!(tmp_file(&user_dir).1 >= 2 * BUFFER_SIZE as u64);
    drop(upload);
    assert!(files(&user_dir.join("tmp")).is_empty());

    // Broken by a write past the announced length: removed at once.
    let mut upload = store.begin_append(USER, INBOX, 5).await.unwrap();
    upload.write(b"12345").await.unwrap();
    assert!(upload.write(b"6").await.is_err());
    assert!(files(&user_dir.join("tmp")).is_empty());
    drop(upload);

    // A commit refused for a short message removes it too.
    let mut upload = store.begin_append(USER, INBOX, 5).await.unwrap();
    upload.write(b"1234").await.unwrap();
    assert!(
        upload
            .commit(MessageFlags::from(Flags::EMPTY), None)
            .await
            .is_err()
    );
    assert!(files(&user_dir.join("tmp")).is_empty());

    // A delivery into a deleted mailbox.
    store.create_mailbox(USER, "Gone").await.unwrap();
    let gone = user_dir.join(".Gone");
    let mut upload = store.begin_append(USER, "Gone", 3).await.unwrap();
    upload.write(b"abc").await.unwrap();
    store.delete_mailbox(USER, "Gone").await.unwrap();
    assert!(matches!(
        upload.commit(MessageFlags::from(Flags::EMPTY), None).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(!gone.exists());

    assert!(files(&user_dir.join("cur")).is_empty());
    assert!(files(&user_dir.join("new")).is_empty());
    assert_eq!(uidlist(&user_dir), list_before);
}

/// A write whose future is dropped while its buffer is on the blocking pool breaks the
/// upload; the file goes when the blocking work is done.
#[tokio::test]
async fn a_cancelled_write_breaks_the_upload_and_its_file_goes() {
    use futures_util::FutureExt;

    let (store, _dir, user_dir) = user_store().await;
    let content = mixed_message(2 * BUFFER_SIZE);
    let mut upload = store
        .begin_append(USER, INBOX, content.len() as u64)
        .await
        .unwrap();
    if upload.write(&content).now_or_never().is_some() {
        // The blocking pool was faster than one poll: nothing was cancelled.
        return;
    }
    assert!(matches!(upload.write(b"").await, Err(StoreError::Io(_))));
    assert!(
        upload
            .commit(MessageFlags::from(Flags::EMPTY), None)
            .await
            .is_err()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !files(&user_dir.join("tmp")).is_empty() {
        assert!(Instant::now() < deadline, "the file was not removed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        store
            .snapshot(USER, INBOX)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
}

#[tokio::test]
async fn upload_into_a_folder_without_tmp() {
    let (store, _dir, user_dir) = user_store().await;
    fs::create_dir_all(user_dir.join(".Mutt/cur")).unwrap();
    let mut upload = store.begin_append(USER, "Mutt", 3).await.unwrap();
    upload.write(b"m\r\n").await.unwrap();
    let uid = upload
        .commit(MessageFlags::from(Flags::EMPTY), None)
        .await
        .unwrap();
    assert_eq!(store.fetch(USER, "Mutt", uid).await.unwrap(), &b"m\r\n"[..]);
    assert!(files(&user_dir.join(".Mutt/tmp")).is_empty());
}

fn keywords_of(flags: &MessageFlags) -> Vec<&str> {
    flags.keywords.iter().map(|k| k.as_str()).collect()
}

#[tokio::test]
async fn keywords_are_written_as_dovecot_writes_them() {
    let (store, _dir, user_dir) = user_store().await;
    let flags = test_flags(Flags::SEEN | Flags::ANSWERED, &["NonJunk", "$Label1"]);
    let uid = store
        .append(USER, INBOX, Bytes::from_static(b"x\r\n"), flags, None)
        .await
        .unwrap();
    let keywords_file = user_dir.join("dovecot-keywords");
    // Letters in the order the keywords were first seen: sorted, `$Label1` before `NonJunk`.
    assert_eq!(
        fs::read_to_string(&keywords_file).unwrap(),
        "0 $Label1\n1 NonJunk\n"
    );
    let name = files(&user_dir.join("cur")).remove(0);
    assert!(name.ends_with(":2,RSab"), "{name}");

    store
        .set_flags(
            USER,
            INBOX,
            uid,
            test_flags(Flags::DRAFT, &["nonjunk", "Todo"]),
        )
        .await
        .unwrap();
    assert_eq!(
        fs::read_to_string(&keywords_file).unwrap(),
        "0 $Label1\n1 NonJunk\n2 Todo\n",
        "only appended"
    );
    let name = files(&user_dir.join("cur")).remove(0);
    assert!(name.ends_with(":2,Dbc"), "{name}");

    // A fresh process reads the same.
    let restarted = Maildir::new(store.root());
    let snapshot = restarted.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(
        keywords_of(&snapshot.messages[0].flags),
        ["NonJunk", "Todo"]
    );
    assert_eq!(snapshot.keywords.len(), 3);
}

#[tokio::test]
async fn dovecots_keyword_letters_are_read_and_never_renumbered() {
    let (store, _dir, user_dir) = user_store().await;
    let folder = user_dir.join(".Archive");
    store.create_mailbox(USER, "Archive").await.unwrap();
    // As Dovecot leaves a folder: a gap at `b`, and a name it cannot have come from IMAP.
    fs::write(
        folder.join("dovecot-keywords"),
        "0 $Junk\n2 $Forwarded\n3 not an atom\n",
    )
    .unwrap();
    fs::write(folder.join("cur/1.M1.dovecot,S=3:2,Sacd"), b"x\r\n").unwrap();
    let snapshot = store.snapshot(USER, "Archive").await.unwrap();
    let message = &snapshot.messages[0];
    assert_eq!(message.flags.system, Flags::SEEN);
    assert_eq!(keywords_of(&message.flags), ["$Forwarded", "$Junk"]);
    let known: Vec<&str> = snapshot.keywords.iter().map(|k| k.as_str()).collect();
    assert_eq!(known, ["$Forwarded", "$Junk"]);

    let stored = store
        .set_flags(
            USER,
            "Archive",
            message.uid,
            test_flags(Flags::EMPTY, &["$JUNK", "Todo"]),
        )
        .await
        .unwrap();
    assert_eq!(keywords_of(&stored), ["$Junk", "Todo"]);
    assert_eq!(
        fs::read_to_string(folder.join("dovecot-keywords")).unwrap(),
        "0 $Junk\n1 Todo\n2 $Forwarded\n3 not an atom\n",
        "the gap is filled, the rest kept as it was"
    );
    // `d` is not IMAP's to clear.
    assert_eq!(files(&folder.join("cur")), ["1.M1.dovecot,S=3:2,abd"]);
}

#[tokio::test]
async fn a_keyword_file_changed_by_dovecot_is_read_again() {
    let (store, _dir, user_dir) = user_store().await;
    let uid = append(&store, b"x\r\n").await;
    store
        .set_flags(USER, INBOX, uid, test_flags(Flags::EMPTY, &["$Label1"]))
        .await
        .unwrap();
    // Dovecot names a new letter and gives it to the message.
    fs::write(user_dir.join("dovecot-keywords"), "0 $Label1\n1 $Label2\n").unwrap();
    let cur = user_dir.join("cur");
    let name = files(&cur).remove(0);
    let renamed = name.replace(":2,a", ":2,ab");
    fs::rename(cur.join(&name), cur.join(&renamed)).unwrap();
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(
        keywords_of(&snapshot.messages[0].flags),
        ["$Label1", "$Label2"]
    );
    assert_eq!(snapshot.keywords.len(), 2);
}

/// Maildir's 36-hour rule: a store opening a folder removes what crashed deliveries left in
/// its `tmp/`, and leaves a delivery in progress alone.
#[tokio::test]
async fn opening_a_folder_removes_abandoned_tmp_files_only() {
    let (store, _dir, user_dir) = user_store().await;
    let tmp = user_dir.join("tmp");
    let now = std::time::SystemTime::now();
    let abandoned = fs::File::create(tmp.join("crashed-delivery")).unwrap();
    let long_ago = now - Duration::from_secs(37 * 3600);
    abandoned
        .set_times(
            fs::FileTimes::new()
                .set_accessed(long_ago)
                .set_modified(long_ago),
        )
        .unwrap();
    fs::write(tmp.join("delivery-in-progress"), b"From: a").unwrap();

    // A new store is a new process as far as the sweep goes.
    let store = Maildir::new(store.root().to_path_buf());
    store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(files(&tmp), ["delivery-in-progress"]);
}
