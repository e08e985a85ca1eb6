//! The mod-sequence rules (RFC 7162) every store that keeps them must follow, run against
//! both stores by [`conformance_tests!`](super::conformance::conformance_tests).

use bytes::Bytes;

use crate::store::{Flags, FlagsUpdate, INBOX, MailboxSnapshot, Mailstore, MessageFlags};

const USER: &str = "alice";

async fn append(store: &impl Mailstore, mailbox: &str, flags: Flags) -> u32 {
    let content = Bytes::from_static(b"Subject: m\r\n\r\nbody\r\n");
    store
        .append(USER, mailbox, content, flags.into(), None)
        .await
        .unwrap()
}

async fn snapshot(store: &impl Mailstore, mailbox: &str) -> MailboxSnapshot {
    store.snapshot(USER, mailbox).await.unwrap()
}

/// The mod-sequence of message `uid` in `snapshot`.
fn modseq_of(snapshot: &MailboxSnapshot, uid: u32) -> u64 {
    let message = snapshot.messages.iter().find(|m| m.uid == uid);
    message.expect("the message is there").modseq
}

/// The highest covers every message.
fn assert_highest_covers(snapshot: &MailboxSnapshot) {
    for message in &snapshot.messages {
        assert!(
            message.modseq >= 1 && message.modseq <= snapshot.highest_modseq,
            "{message:?} against {}",
            snapshot.highest_modseq
        );
    }
}

pub(crate) async fn every_change_raises_the_modseq(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let empty = snapshot(store, INBOX).await;
    assert!(empty.highest_modseq >= 1, "positive even when empty");

    let a = append(store, INBOX, Flags::EMPTY).await;
    let b = append(store, INBOX, Flags::SEEN).await;
    let appended = snapshot(store, INBOX).await;
    assert_highest_covers(&appended);
    assert!(appended.highest_modseq > empty.highest_modseq);
    let (a_then, b_then) = (modseq_of(&appended, a), modseq_of(&appended, b));
    assert!(a_then > empty.highest_modseq && b_then > a_then);

    // A flag change stamps that message only.
    store
        .set_flags(USER, INBOX, a, Flags::FLAGGED.into())
        .await
        .unwrap();
    let flagged = snapshot(store, INBOX).await;
    assert_highest_covers(&flagged);
    assert!(modseq_of(&flagged, a) > appended.highest_modseq);
    assert_eq!(modseq_of(&flagged, a), flagged.highest_modseq);
    assert_eq!(modseq_of(&flagged, b), b_then);

    // Flags already so change nothing.
    store
        .set_flags(USER, INBOX, a, Flags::FLAGGED.into())
        .await
        .unwrap();
    assert_eq!(snapshot(store, INBOX).await, flagged);

    // An expunge raises the mailbox's value, and leaves the others' alone.
    store.expunge(USER, INBOX, &[b]).await.unwrap();
    let expunged = snapshot(store, INBOX).await;
    assert!(expunged.highest_modseq > flagged.highest_modseq);
    assert_eq!(modseq_of(&expunged, a), modseq_of(&flagged, a));

    // Each mailbox counts on its own.
    let sent = snapshot(store, "Sent").await;
    append(store, "Sent", Flags::EMPTY).await;
    assert!(snapshot(store, "Sent").await.highest_modseq > sent.highest_modseq);
    assert_eq!(snapshot(store, INBOX).await, expunged);
}

pub(crate) async fn unchanged_since_is_checked_and_set_at_once(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let uid = append(store, INBOX, Flags::EMPTY).await;
    let seen = modseq_of(&snapshot(store, INBOX).await, uid);
    let seen_flags = MessageFlags::from(Flags::SEEN);

    let update = store
        .update_flags(USER, INBOX, uid, seen_flags.clone(), Some(seen))
        .await
        .unwrap();
    let FlagsUpdate::Stored { flags, modseq } = update else {
        panic!("unchanged since {seen}, yet refused: {update:?}");
    };
    assert_eq!(flags, seen_flags);
    assert!(modseq > seen);
    let now = snapshot(store, INBOX).await;
    assert_eq!(modseq_of(&now, uid), modseq);
    assert_eq!(now.highest_modseq, modseq);

    // The same condition again: the message changed since.
    let flagged = MessageFlags::from(Flags::FLAGGED);
    let update = store
        .update_flags(USER, INBOX, uid, flagged.clone(), Some(seen))
        .await
        .unwrap();
    assert_eq!(update, FlagsUpdate::Modified { modseq });
    assert_eq!(snapshot(store, INBOX).await, now, "nothing changed");
    // 0 is older than any message.
    let update = store
        .update_flags(USER, INBOX, uid, flagged.clone(), Some(0))
        .await
        .unwrap();
    assert_eq!(update, FlagsUpdate::Modified { modseq });

    // A condition met by flags already so stores nothing and keeps the value.
    let update = store
        .update_flags(USER, INBOX, uid, seen_flags.clone(), Some(modseq))
        .await
        .unwrap();
    let stored = FlagsUpdate::Stored {
        flags: seen_flags,
        modseq,
    };
    assert_eq!(update, stored);
    // Without a condition the change is made.
    let update = store
        .update_flags(USER, INBOX, uid, flagged, None)
        .await
        .unwrap();
    assert!(matches!(update, FlagsUpdate::Stored { modseq: m, .. } if m > modseq));
}

pub(crate) async fn expunges_are_remembered_with_their_modseq(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let mut uids = Vec::new();
    for _ in 0..6 {
        uids.push(append(store, INBOX, Flags::EMPTY).await);
    }
    let start = snapshot(store, INBOX).await.highest_modseq;
    assert_eq!(
        store.expunged_since(USER, INBOX, start).await.unwrap(),
        Some(vec![])
    );

    store
        .expunge(USER, INBOX, &[uids[1], uids[2], uids[4]])
        .await
        .unwrap();
    let between = snapshot(store, INBOX).await.highest_modseq;
    store.expunge(USER, INBOX, &[uids[5]]).await.unwrap();
    let end = snapshot(store, INBOX).await.highest_modseq;
    assert!(start < between && between < end);

    let since = |modseq| store.expunged_since(USER, INBOX, modseq);
    let all = vec![uids[1]..=uids[2], uids[4]..=uids[5]];
    assert_eq!(since(start).await.unwrap(), Some(all));
    assert_eq!(since(between).await.unwrap(), Some(vec![uids[5]..=uids[5]]));
    assert_eq!(since(end).await.unwrap(), Some(vec![]));

    // Expunging what is gone already is no change.
    store.expunge(USER, INBOX, &[uids[1]]).await.unwrap();
    assert_eq!(snapshot(store, INBOX).await.highest_modseq, end);
    assert!(matches!(
        store.expunged_since(USER, "Nope", start).await,
        Err(crate::store::StoreError::NoSuchMailbox)
    ));
}

pub(crate) async fn modseqs_move_with_a_renamed_mailbox(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    store.create_mailbox(USER, "Lists").await.unwrap();
    let kept = append(store, "Lists", Flags::EMPTY).await;
    let gone = append(store, "Lists", Flags::EMPTY).await;
    let before_expunge = snapshot(store, "Lists").await.highest_modseq;
    store.expunge(USER, "Lists", &[gone]).await.unwrap();
    let before = snapshot(store, "Lists").await;

    store
        .rename_mailbox(USER, "Lists", "Archive")
        .await
        .unwrap();
    assert_eq!(snapshot(store, "Archive").await, before);
    let history = store.expunged_since(USER, "Archive", before_expunge).await;
    assert_eq!(history.unwrap(), Some(vec![gone..=gone]));
    store
        .set_flags(USER, "Archive", kept, Flags::SEEN.into())
        .await
        .unwrap();
    assert!(snapshot(store, "Archive").await.highest_modseq > before.highest_modseq);
}
