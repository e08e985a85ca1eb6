//! Behaviour every [`Mailstore`] must have, written once and run against both stores (see
//! [`conformance_tests!`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::store::{
    Flags, INBOX, Keyword, Keywords, MAX_KEYWORDS, MailboxInfo, Mailstore, MessageFlags,
    MessageList, MessageUpload, StoreError, StoreResult, rfc822_size, test_flags,
};

/// Declares one `#[tokio::test]` per behaviour, each on a fresh store from `$make`, which
/// yields `(store, guard)`: the guard (a temporary directory, say) lives as long as the test.
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::store::conformance::conformance_tests!(@tests $make;
            append_snapshot_fetch,
            uids_never_reused,
            flags_round_trip,
            keywords_round_trip,
            keyword_limit_changes_nothing,
            invalid_names_rejected,
            inbox_is_case_insensitive,
            ensure_user_creates_special_use,
            unknown_user_or_mailbox,
            create_and_list,
            rename_moves_children,
            delete_keeps_children,
            recreated_mailbox_gets_new_uid_validity,
            subscriptions,
            recent_is_claimed_once,
            streamed_append_in_odd_chunks,
            streamed_append_gets_its_uid_at_commit,
            abandoned_upload_leaves_nothing,
            upload_length_is_kept,
            begin_append_fails_fast,
            watch_sees_streamed_append,
            every_change_raises_the_modseq,
            unchanged_since_is_checked_and_set_at_once,
            expunges_are_remembered_with_their_modseq,
            modseqs_move_with_a_renamed_mailbox,
            snapshots_share_the_list_while_nothing_changes,
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_appends_get_distinct_uids() {
            let (store, _guard) = $make;
            $crate::store::conformance::concurrent_appends(store).await;
        }
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $make;
                $crate::store::conformance::$name(&store).await;
            }
        )*
    };
}
pub(crate) use super::conformance_modseq::*;
pub(crate) use conformance_tests;

const USER: &str = "alice";

fn date(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

async fn append(store: &impl Mailstore, mailbox: &str, content: &'static [u8]) -> u32 {
    append_flagged(store, mailbox, content, Flags::EMPTY.into())
        .await
        .unwrap()
}

async fn append_flagged(
    store: &impl Mailstore,
    mailbox: &str,
    content: &'static [u8],
    flags: MessageFlags,
) -> StoreResult<u32> {
    let content = Bytes::from_static(content);
    store.append(USER, mailbox, content, flags, None).await
}

async fn names(store: &impl Mailstore) -> Vec<String> {
    let list = store.list_mailboxes(USER).await.unwrap();
    list.into_iter().map(|info| info.name).collect()
}

async fn info(store: &impl Mailstore, name: &str) -> Option<MailboxInfo> {
    let list = store.list_mailboxes(USER).await.unwrap();
    list.into_iter().find(|info| info.name == name)
}

pub(crate) async fn append_snapshot_fetch(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let crlf = Bytes::from_static(b"Subject: one\r\n\r\nbody\r\n");
    let bare_lf = Bytes::from_static(b"Subject: two\n\nbody\n");
    let binary = Bytes::from_static(b"Subject: three\r\n\r\n\0\xff\xfe\r\nno final newline");
    let delivered = date(1_700_000_000);
    let before = SystemTime::now() - Duration::from_secs(60);

    let one = store
        .append(
            USER,
            INBOX,
            crlf.clone(),
            Flags::SEEN.into(),
            Some(delivered),
        )
        .await
        .unwrap();
    let two = store
        .append(USER, INBOX, bare_lf.clone(), Flags::EMPTY.into(), None)
        .await
        .unwrap();
    let three = store
        .append(
            USER,
            INBOX,
            binary.clone(),
            (Flags::DRAFT | Flags::FLAGGED).into(),
            None,
        )
        .await
        .unwrap();
    assert!(one < two && two < three);

    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    let uids: Vec<u32> = snapshot.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [one, two, three]);
    assert!(snapshot.uid_next > three);
    let sizes: Vec<u64> = snapshot.messages.iter().map(|m| m.size).collect();
    assert_eq!(
        sizes,
        [
            crlf.len() as u64,
            bare_lf.len() as u64 + 3,
            binary.len() as u64
        ]
    );
    let flags: Vec<Flags> = snapshot.messages.iter().map(|m| m.flags.system).collect();
    assert_eq!(
        flags,
        [Flags::SEEN, Flags::EMPTY, Flags::DRAFT | Flags::FLAGGED]
    );
    assert_eq!(snapshot.messages[0].internal_date, delivered);
    assert!(snapshot.messages[1].internal_date > before);

    assert_eq!(store.fetch(USER, INBOX, one).await.unwrap(), crlf);
    assert_eq!(store.fetch(USER, INBOX, two).await.unwrap(), bare_lf);
    assert_eq!(store.fetch(USER, INBOX, three).await.unwrap(), binary);
    let missing = store.fetch(USER, INBOX, three + 100).await;
    assert!(matches!(missing, Err(StoreError::NoSuchMessage)));

    // A second snapshot sees the same thing.
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap(), snapshot);
}

pub(crate) async fn uids_never_reused(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let a = append(store, INBOX, b"a\r\n").await;
    let b = append(store, INBOX, b"b\r\n").await;
    let c = append(store, INBOX, b"c\r\n").await;
    let validity = store.snapshot(USER, INBOX).await.unwrap().uid_validity;

    // Unknown UIDs are ignored.
    store.expunge(USER, INBOX, &[b, c + 1000]).await.unwrap();
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    let uids: Vec<u32> = snapshot.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [a, c]);
    assert_eq!(snapshot.uid_next, c + 1);
    assert!(matches!(
        store.fetch(USER, INBOX, b).await,
        Err(StoreError::NoSuchMessage)
    ));

    // Expunging the newest message does not bring its UID back.
    store.expunge(USER, INBOX, &[c]).await.unwrap();
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap().uid_next, c + 1);
    let d = append(store, INBOX, b"d\r\n").await;
    assert_eq!(d, c + 1);
    store.expunge(USER, INBOX, &[a, d]).await.unwrap();
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert!(snapshot.messages.is_empty());
    assert_eq!(snapshot.uid_next, d + 1);
    assert_eq!(snapshot.uid_validity, validity);
}

pub(crate) async fn flags_round_trip(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let uid = append(store, INBOX, b"Subject: f\r\n\r\n").await;
    let all = Flags::SEEN | Flags::ANSWERED | Flags::FLAGGED | Flags::DELETED | Flags::DRAFT;
    for flags in [
        Flags::SEEN | Flags::FLAGGED,
        all,
        Flags::ANSWERED,
        Flags::EMPTY,
    ] {
        let stored = store.set_flags(USER, INBOX, uid, flags.into()).await;
        assert_eq!(stored.unwrap(), MessageFlags::from(flags));
        let snapshot = store.snapshot(USER, INBOX).await.unwrap();
        assert_eq!(snapshot.messages[0].flags, MessageFlags::from(flags));
        assert_eq!(
            store.fetch(USER, INBOX, uid).await.unwrap(),
            &b"Subject: f\r\n\r\n"[..]
        );
    }
    let missing = store
        .set_flags(USER, INBOX, uid + 1, Flags::SEEN.into())
        .await;
    assert!(matches!(missing, Err(StoreError::NoSuchMessage)));
}

/// The names of a set of keywords, as spelled.
fn spelled(keywords: &Keywords) -> Vec<&str> {
    keywords.iter().map(Keyword::as_str).collect()
}

pub(crate) async fn keywords_round_trip(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let labelled = test_flags(Flags::SEEN, &["$Label1", "NonJunk"]);
    let uid = append_flagged(store, INBOX, b"k\r\n", labelled.clone())
        .await
        .unwrap();
    let other = append(store, INBOX, b"plain\r\n").await;
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(snapshot.messages[0].flags, labelled);
    assert_eq!(snapshot.messages[1].flags, MessageFlags::default());
    assert_eq!(spelled(&snapshot.keywords), ["$Label1", "NonJunk"]);

    // Case-insensitive: the mailbox's first spelling is kept.
    let stored = store
        .set_flags(
            USER,
            INBOX,
            other,
            test_flags(Flags::EMPTY, &["nonjunk", "Todo"]),
        )
        .await
        .unwrap();
    assert_eq!(spelled(&stored.keywords), ["NonJunk", "Todo"]);
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(snapshot.messages[1].flags, stored);
    assert_eq!(
        spelled(&snapshot.messages[1].flags.keywords),
        ["NonJunk", "Todo"]
    );

    // Replacing clears keywords too; the mailbox still knows them.
    for uid in [uid, other] {
        store
            .set_flags(USER, INBOX, uid, Flags::DELETED.into())
            .await
            .unwrap();
    }
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert!(
        snapshot
            .messages
            .iter()
            .all(|m| m.flags == Flags::DELETED.into())
    );
    assert_eq!(spelled(&snapshot.keywords), ["$Label1", "NonJunk", "Todo"]);

    // Each mailbox knows its own.
    assert!(
        store
            .snapshot(USER, "Sent")
            .await
            .unwrap()
            .keywords
            .is_empty()
    );
}

pub(crate) async fn keyword_limit_changes_nothing(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let names: Vec<String> = (1..=MAX_KEYWORDS).map(|i| format!("$Label{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let all = test_flags(Flags::EMPTY, &names);
    let uid = append_flagged(store, INBOX, b"full\r\n", all.clone())
        .await
        .unwrap();
    let before = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(before.keywords.len(), MAX_KEYWORDS);
    assert_eq!(before.messages[0].flags, all);

    let one_more = test_flags(Flags::SEEN, &["$Label1", "OneTooMany"]);
    let too_many = |result: StoreResult<()>| matches!(result, Err(StoreError::TooManyKeywords));
    let set = store.set_flags(USER, INBOX, uid, one_more.clone()).await;
    assert!(too_many(set.map(drop)));
    let appended = append_flagged(store, INBOX, b"x\r\n", one_more.clone()).await;
    assert!(too_many(appended.map(drop)));
    let streamed = upload(store, INBOX, b"y\r\n", 0).await.unwrap();
    assert!(too_many(streamed.commit(one_more, None).await.map(drop)));
    assert_eq!(
        store.snapshot(USER, INBOX).await.unwrap(),
        before,
        "nothing changed"
    );

    // Known keywords still work, in any spelling; another mailbox has room of its own.
    let known = test_flags(Flags::SEEN, &["$LABEL26"]);
    let stored = store.set_flags(USER, INBOX, uid, known).await.unwrap();
    assert_eq!(spelled(&stored.keywords), ["$Label26"]);
    let own_room = test_flags(Flags::EMPTY, &["OneTooMany"]);
    append_flagged(store, "Sent", b"z\r\n", own_room)
        .await
        .unwrap();
}

pub(crate) async fn invalid_names_rejected(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let invalid = |result: Result<_, StoreError>| matches!(result, Err(StoreError::InvalidName));
    for bad in [
        "", "/", "/a", "a/", "a//b", ".", "..", "a/../b", "a\tb", "a*", "%", "a\u{0}",
    ] {
        assert!(
            invalid(store.snapshot(USER, bad).await.map(drop)),
            "{bad:?}"
        );
        assert!(invalid(store.create_mailbox(USER, bad).await), "{bad:?}");
        assert!(invalid(store.delete_mailbox(USER, bad).await), "{bad:?}");
        assert!(
            invalid(store.rename_mailbox(USER, "Sent", bad).await),
            "{bad:?}"
        );
        assert!(
            invalid(store.rename_mailbox(USER, bad, "x").await),
            "{bad:?}"
        );
        assert!(
            invalid(store.set_subscribed(USER, bad, true).await),
            "{bad:?}"
        );
        let appended = store
            .append(
                USER,
                bad,
                Bytes::from_static(b"x"),
                Flags::EMPTY.into(),
                None,
            )
            .await;
        assert!(invalid(appended.map(drop)), "{bad:?}");
    }
    for bad in ["", ".hidden", "..", "a/b", "a\nb"] {
        assert!(invalid(store.ensure_user(bad).await), "{bad:?}");
        assert!(
            invalid(store.snapshot(bad, INBOX).await.map(drop)),
            "{bad:?}"
        );
        assert!(
            invalid(store.list_mailboxes(bad).await.map(drop)),
            "{bad:?}"
        );
    }
    assert_eq!(store.list_mailboxes(USER).await.unwrap().len(), 5);

    // Dots are fine inside names.
    store.create_mailbox(USER, "john.doe").await.unwrap();
    store.create_mailbox(USER, "v1.2/notes.txt").await.unwrap();
    let uid = append(store, "john.doe", b"dotted\r\n").await;
    assert_eq!(
        store.fetch(USER, "john.doe", uid).await.unwrap(),
        &b"dotted\r\n"[..]
    );
    let names = names(store).await;
    assert!(names.contains(&"john.doe".to_owned()));
    assert!(names.contains(&"v1.2".to_owned()));
    assert!(names.contains(&"v1.2/notes.txt".to_owned()));
}

pub(crate) async fn inbox_is_case_insensitive(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let uid = append(store, "inbox", b"x\r\n").await;
    for name in ["INBOX", "Inbox", "iNbOx"] {
        let snapshot = store.snapshot(USER, name).await.unwrap();
        assert_eq!(snapshot.messages[0].uid, uid);
    }
    assert!(matches!(
        store.create_mailbox(USER, "Inbox").await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        store.delete_mailbox(USER, "inbox").await,
        Err(StoreError::NotAllowed)
    ));
    assert!(matches!(
        store.rename_mailbox(USER, "Inbox", "Old").await,
        Err(StoreError::NotAllowed)
    ));
    assert!(matches!(
        store.rename_mailbox(USER, "Sent", "inbox").await,
        Err(StoreError::AlreadyExists)
    ));
    store.create_mailbox(USER, "inbox/Lists").await.unwrap();
    assert!(names(store).await.contains(&"INBOX/Lists".to_owned()));
    append(store, "Inbox/Lists", b"y\r\n").await;
}

pub(crate) async fn ensure_user_creates_special_use(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let expected = [
        (INBOX, None),
        ("Drafts", Some("\\Drafts")),
        ("Junk", Some("\\Junk")),
        ("Sent", Some("\\Sent")),
        ("Trash", Some("\\Trash")),
    ]
    .map(|(name, special_use)| MailboxInfo {
        name: name.to_owned(),
        special_use,
        subscribed: true,
    });
    assert_eq!(store.list_mailboxes(USER).await.unwrap(), expected);

    // Idempotent, and keeps mail.
    let uid = append(store, "Sent", b"sent\r\n").await;
    store.ensure_user(USER).await.unwrap();
    assert_eq!(store.list_mailboxes(USER).await.unwrap(), expected);
    assert_eq!(
        store.snapshot(USER, "Sent").await.unwrap().messages[0].uid,
        uid
    );

    // A mailbox the user deleted is not created again.
    store.delete_mailbox(USER, "Junk").await.unwrap();
    store.ensure_user(USER).await.unwrap();
    assert_eq!(names(store).await, [INBOX, "Drafts", "Sent", "Trash"]);
    // Special use goes by name.
    store.create_mailbox(USER, "Junk").await.unwrap();
    assert_eq!(
        info(store, "Junk").await.unwrap().special_use,
        Some("\\Junk")
    );
}

pub(crate) async fn unknown_user_or_mailbox(store: &impl Mailstore) {
    let no_mailbox =
        |result: Result<_, StoreError>| matches!(result, Err(StoreError::NoSuchMailbox));
    assert!(no_mailbox(store.snapshot("nobody", INBOX).await.map(drop)));
    assert!(no_mailbox(store.list_mailboxes("nobody").await.map(drop)));
    assert!(no_mailbox(store.create_mailbox("nobody", "x").await));
    assert!(no_mailbox(
        store.set_subscribed("nobody", INBOX, true).await
    ));
    let appended = store
        .append(
            "nobody",
            INBOX,
            Bytes::from_static(b"x"),
            Flags::EMPTY.into(),
            None,
        )
        .await;
    assert!(no_mailbox(appended.map(drop)));

    store.ensure_user(USER).await.unwrap();
    assert!(no_mailbox(store.snapshot(USER, "Nope").await.map(drop)));
    assert!(no_mailbox(store.fetch(USER, "Nope", 1).await.map(drop)));
    assert!(no_mailbox(store.uid_validity(USER, "Nope").await.map(drop)));
    assert!(no_mailbox(store.expunge(USER, "Nope", &[1]).await));
    assert!(no_mailbox(
        store
            .set_flags(USER, "Nope", 1, Flags::SEEN.into())
            .await
            .map(drop)
    ));
    let appended = store
        .append(
            USER,
            "Nope",
            Bytes::from_static(b"x"),
            Flags::EMPTY.into(),
            None,
        )
        .await;
    assert!(no_mailbox(appended.map(drop)));
}

pub(crate) async fn create_and_list(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    store.create_mailbox(USER, "Archive/2024").await.unwrap();
    store.create_mailbox(USER, "Archive-old").await.unwrap();
    store.create_mailbox(USER, "Archive/2023").await.unwrap();
    assert_eq!(
        names(store).await,
        [
            INBOX,
            "Archive",
            "Archive/2023",
            "Archive/2024",
            "Archive-old",
            "Drafts",
            "Junk",
            "Sent",
            "Trash"
        ]
    );
    let created = info(store, "Archive/2024").await.unwrap();
    assert!(!created.subscribed);
    assert_eq!(created.special_use, None);
    for existing in ["Archive", "Archive/2024", "Sent", "INBOX"] {
        assert!(
            matches!(
                store.create_mailbox(USER, existing).await,
                Err(StoreError::AlreadyExists)
            ),
            "{existing}"
        );
    }
    let snapshot = store.snapshot(USER, "Archive").await.unwrap();
    assert!(snapshot.messages.is_empty());
    assert_eq!(snapshot.uid_next, 1);
    assert_ne!(snapshot.uid_validity, 0);
}

pub(crate) async fn rename_moves_children(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    store.create_mailbox(USER, "Archive/2024").await.unwrap();
    let uid = append(store, "Archive/2024", b"kept\r\n").await;
    let before = store.snapshot(USER, "Archive/2024").await.unwrap();

    store.rename_mailbox(USER, "Archive", "Old").await.unwrap();
    let names_now = names(store).await;
    assert!(names_now.contains(&"Old".to_owned()));
    assert!(names_now.contains(&"Old/2024".to_owned()));
    assert!(!names_now.iter().any(|name| name.starts_with("Archive")));
    // UIDs and UIDVALIDITY move with the mailbox.
    assert_eq!(store.snapshot(USER, "Old/2024").await.unwrap(), before);
    assert_eq!(
        store.fetch(USER, "Old/2024", uid).await.unwrap(),
        &b"kept\r\n"[..]
    );
    assert!(matches!(
        store.snapshot(USER, "Archive/2024").await,
        Err(StoreError::NoSuchMailbox)
    ));

    // Missing parents of the new name are created.
    store
        .rename_mailbox(USER, "Old/2024", "Deep/er/2024")
        .await
        .unwrap();
    let names_now = names(store).await;
    for name in ["Deep", "Deep/er", "Deep/er/2024", "Old"] {
        assert!(names_now.contains(&name.to_owned()), "{name}");
    }
    assert!(!names_now.contains(&"Old/2024".to_owned()));

    // Into its own subtree.
    store
        .rename_mailbox(USER, "Deep", "Deep/inner")
        .await
        .unwrap();
    let names_now = names(store).await;
    for name in ["Deep", "Deep/inner", "Deep/inner/er", "Deep/inner/er/2024"] {
        assert!(names_now.contains(&name.to_owned()), "{name}");
    }
    assert_eq!(
        store.snapshot(USER, "Deep/inner/er/2024").await.unwrap(),
        before
    );

    let err = store.rename_mailbox(USER, "Old", "Sent").await;
    assert!(matches!(err, Err(StoreError::AlreadyExists)));
    let err = store.rename_mailbox(USER, "Nope", "Other").await;
    assert!(matches!(err, Err(StoreError::NoSuchMailbox)));
    let err = store.rename_mailbox(USER, "Old", "Old").await;
    assert!(matches!(err, Err(StoreError::AlreadyExists)));
}

pub(crate) async fn delete_keeps_children(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    store.create_mailbox(USER, "A/B").await.unwrap();
    append(store, "A", b"x\r\n").await;
    store.delete_mailbox(USER, "A").await.unwrap();
    let names_now = names(store).await;
    assert!(!names_now.contains(&"A".to_owned()));
    assert!(names_now.contains(&"A/B".to_owned()));
    assert!(matches!(
        store.snapshot(USER, "A").await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.delete_mailbox(USER, "A").await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.delete_mailbox(USER, INBOX).await,
        Err(StoreError::NotAllowed)
    ));
    store.delete_mailbox(USER, "A/B").await.unwrap();
}

pub(crate) async fn recreated_mailbox_gets_new_uid_validity(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    store.create_mailbox(USER, "Tmp").await.unwrap();
    append(store, "Tmp", b"x\r\n").await;
    let old = store.snapshot(USER, "Tmp").await.unwrap();
    store.delete_mailbox(USER, "Tmp").await.unwrap();
    store.create_mailbox(USER, "Tmp").await.unwrap();
    let new = store.snapshot(USER, "Tmp").await.unwrap();
    assert!(new.messages.is_empty());
    assert_ne!(new.uid_validity, old.uid_validity);
    assert_eq!(
        store.uid_validity(USER, "Tmp").await.unwrap(),
        new.uid_validity,
        "the UIDVALIDITY read alone is the snapshot's"
    );

    // Renaming another mailbox onto a freed name must not revive the old UIDs either.
    store.rename_mailbox(USER, "Tmp", "Tmp2").await.unwrap();
    store.create_mailbox(USER, "Tmp").await.unwrap();
    let again = store.snapshot(USER, "Tmp").await.unwrap();
    assert_ne!(again.uid_validity, new.uid_validity);
    assert_ne!(again.uid_validity, old.uid_validity);
}

pub(crate) async fn subscriptions(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    store.create_mailbox(USER, "Lists/rust").await.unwrap();
    assert!(!info(store, "Lists").await.unwrap().subscribed);
    store.set_subscribed(USER, "Lists", true).await.unwrap();
    store
        .set_subscribed(USER, "Lists/rust", true)
        .await
        .unwrap();
    store.set_subscribed(USER, "Lists", true).await.unwrap();
    assert!(info(store, "Lists").await.unwrap().subscribed);

    // Subscriptions follow a rename.
    store
        .rename_mailbox(USER, "Lists", "Mailing")
        .await
        .unwrap();
    assert!(info(store, "Mailing").await.unwrap().subscribed);
    assert!(info(store, "Mailing/rust").await.unwrap().subscribed);

    store.set_subscribed(USER, "Mailing", false).await.unwrap();
    assert!(!info(store, "Mailing").await.unwrap().subscribed);
    assert!(matches!(
        store.set_subscribed(USER, "Nope", true).await,
        Err(StoreError::NoSuchMailbox)
    ));
    store.set_subscribed(USER, "Nope", false).await.unwrap();

    // A subscription outlives its mailbox (RFC 3501 6.3.9).
    store.delete_mailbox(USER, "Trash").await.unwrap();
    store.create_mailbox(USER, "Trash").await.unwrap();
    assert!(info(store, "Trash").await.unwrap().subscribed);
    store.set_subscribed(USER, "inbox", false).await.unwrap();
    assert!(!info(store, INBOX).await.unwrap().subscribed);
}

pub(crate) async fn recent_is_claimed_once(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    // Nothing claimed yet: what is delivered before any session looks is recent.
    let one = append(store, INBOX, b"one\r\n").await;
    let two = append(store, INBOX, b"two\r\n").await;
    assert_eq!(store.first_recent_uid(USER, INBOX).await.unwrap(), one);
    assert_eq!(store.claim_recent(USER, "inbox", two).await.unwrap(), one);
    assert_eq!(store.first_recent_uid(USER, INBOX).await.unwrap(), two + 1);
    // Claimed once: the next claim of the same messages finds none recent, and a claim
    // never goes back.
    assert_eq!(store.claim_recent(USER, INBOX, two).await.unwrap(), two + 1);
    assert_eq!(store.claim_recent(USER, INBOX, one).await.unwrap(), two + 1);
    let three = append(store, INBOX, b"three\r\n").await;
    assert_eq!(store.claim_recent(USER, INBOX, three).await.unwrap(), three);
    // Never past UIDNEXT, whatever the caller says.
    assert_eq!(
        store.claim_recent(USER, INBOX, u32::MAX - 1).await.unwrap(),
        three + 1
    );
    assert_eq!(
        store.first_recent_uid(USER, INBOX).await.unwrap(),
        three + 1
    );
    // Per mailbox; it moves with a rename, a new mailbox starts afresh.
    let sent = append(store, "Sent", b"sent\r\n").await;
    assert_eq!(store.first_recent_uid(USER, "Sent").await.unwrap(), sent);
    store.claim_recent(USER, "Sent", sent).await.unwrap();
    store.rename_mailbox(USER, "Sent", "Old").await.unwrap();
    assert_eq!(store.first_recent_uid(USER, "Old").await.unwrap(), sent + 1);
    store.create_mailbox(USER, "Sent").await.unwrap();
    assert_eq!(store.first_recent_uid(USER, "Sent").await.unwrap(), 1);
    assert!(matches!(
        store.claim_recent(USER, "Nope", 1).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.first_recent_uid(USER, "Nope").await,
        Err(StoreError::NoSuchMailbox)
    ));
}

pub(crate) async fn concurrent_appends<S: Mailstore + Clone>(store: S) {
    store.ensure_user(USER).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let content = Bytes::from(format!("Subject: {i}\r\n\r\n{i}\r\n"));
                let uid = store
                    .append(USER, INBOX, content.clone(), Flags::EMPTY.into(), None)
                    .await
                    .unwrap();
                (uid, content)
            })
        })
        .collect();
    let mut appended = Vec::new();
    for task in tasks {
        appended.push(task.await.unwrap());
    }
    appended.sort();
    let uids: Vec<u32> = appended.iter().map(|(uid, _)| *uid).collect();
    let mut distinct = uids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 20);
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(
        snapshot.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        uids
    );
    for (uid, content) in appended {
        assert_eq!(store.fetch(USER, INBOX, uid).await.unwrap(), content);
    }
}

/// A message of about `len` octets mixing CRLF, bare LF and lone CR line endings, and binary.
pub(crate) fn mixed_message(len: usize) -> Vec<u8> {
    let mut message = b"Subject: streamed\r\nX-Bare: lf\n\r\n".to_vec();
    let endings: [&[u8]; 5] = [b"\r\n", b"\n", b"\r", b"\n\n", b"\r\r\n"];
    let mut line = 0usize;
    while message.len() < len {
        message.extend(format!("line {line} ").bytes());
        message.extend((0..line % 97).map(|i| (i * 7 + line) as u8));
        message.extend_from_slice(endings[line % endings.len()]);
        line += 1;
    }
    message
}

/// Chunk sizes that cut lines (and CRLFs) everywhere, and cross the 64 KiB buffer of
/// [`Maildir`](crate::store::Maildir)'s uploads.
const CHUNK_SIZES: [usize; 14] = [
    1, 2, 3, 5, 7, 13, 64, 1000, 4093, 8192, 65535, 65536, 65537, 100_000,
];

/// Streams `content` to `mailbox` in chunks of [`CHUNK_SIZES`], starting at `first` of them.
async fn upload<S: Mailstore>(
    store: &S,
    mailbox: &str,
    content: &[u8],
    first: usize,
) -> StoreResult<S::Upload> {
    let mut upload = store
        .begin_append(USER, mailbox, content.len() as u64)
        .await?;
    let mut rest = content;
    for &size in CHUNK_SIZES.iter().cycle().skip(first) {
        if rest.is_empty() {
            break;
        }
        let (chunk, after) = rest.split_at(size.min(rest.len()));
        upload.write(chunk).await?;
        rest = after;
    }
    Ok(upload)
}

pub(crate) async fn streamed_append_in_odd_chunks(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let delivered = date(1_650_000_000);
    let mut messages = vec![
        mixed_message(300 * 1024),
        mixed_message(70 * 1024),
        mixed_message(1000),
        Vec::new(),
        b"\n".to_vec(),
    ];
    for (first, content) in messages.iter().enumerate() {
        let uid = upload(store, INBOX, content, first)
            .await
            .unwrap()
            .commit(Flags::SEEN.into(), Some(delivered))
            .await
            .unwrap();
        assert_eq!(store.fetch(USER, INBOX, uid).await.unwrap(), &content[..]);
        let snapshot = store.snapshot(USER, INBOX).await.unwrap();
        let meta = snapshot.messages.iter().find(|m| m.uid == uid).unwrap();
        assert_eq!(meta.size, rfc822_size(content), "message {first}");
        assert_eq!(meta.internal_date, delivered);
    }

    // CR and LF of one CRLF in different chunks, bare LFs at chunk starts and ends.
    let chunks: [&[u8]; 9] = [
        b"Subject: split\r",
        b"\n",
        b"\n",
        b"body\r",
        b"\nbare\n",
        b"\r",
        b"lone CR\r",
        b"\r\n",
        b"\nend",
    ];
    let whole = chunks.concat();
    let mut upload = store
        .begin_append(USER, INBOX, whole.len() as u64)
        .await
        .unwrap();
    for chunk in chunks {
        upload.write(chunk).await.unwrap();
        upload.write(b"").await.unwrap();
    }
    let uid = upload.commit(Flags::EMPTY.into(), None).await.unwrap();
    assert_eq!(store.fetch(USER, INBOX, uid).await.unwrap(), whole);
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    let meta = snapshot.messages.last().unwrap();
    assert_eq!((meta.uid, meta.size), (uid, rfc822_size(&whole)));
    assert_eq!(meta.size, whole.len() as u64 + 3);
    messages.push(whole);

    // The same as delivered whole.
    for content in &messages {
        let uid = store
            .append(
                USER,
                "Sent",
                Bytes::from(content.clone()),
                Flags::EMPTY.into(),
                None,
            )
            .await
            .unwrap();
        let snapshot = store.snapshot(USER, "Sent").await.unwrap();
        assert_eq!(snapshot.messages.last().unwrap().size, rfc822_size(content));
        assert_eq!(store.fetch(USER, "Sent", uid).await.unwrap(), &content[..]);
    }
}

pub(crate) async fn streamed_append_gets_its_uid_at_commit(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let first = append(store, INBOX, b"first\r\n").await;
    let content = mixed_message(200 * 1024);
    let delivered = date(1_600_000_000);
    let pending = upload(store, INBOX, &content, 3).await.unwrap();

    // Meanwhile the mailbox is usable, and the upload is not in it.
    let before = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(before.messages.len(), 1);
    assert_eq!(before.uid_next, first + 1);
    let second = append(store, INBOX, b"second\r\n").await;
    assert_eq!(second, first + 1);

    let flags = MessageFlags::from(Flags::FLAGGED | Flags::ANSWERED);
    let uid = pending
        .commit(flags.clone(), Some(delivered))
        .await
        .unwrap();
    assert_eq!(uid, second + 1);
    let snapshot = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(snapshot.uid_next, uid + 1);
    assert_eq!(snapshot.uid_validity, before.uid_validity);
    let uids: Vec<u32> = snapshot.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [first, second, uid]);
    let meta = &snapshot.messages[2];
    assert_eq!(meta.flags, flags);
    assert_eq!(meta.internal_date, delivered);
    assert_eq!(meta.size, rfc822_size(&content));
    assert_eq!(store.fetch(USER, INBOX, uid).await.unwrap(), content);

    // Without a date: now.
    let before = SystemTime::now() - Duration::from_secs(60);
    let uid = upload(store, "Drafts", b"draft\r\n", 0)
        .await
        .unwrap()
        .commit(Flags::DRAFT.into(), None)
        .await
        .unwrap();
    let snapshot = store.snapshot(USER, "Drafts").await.unwrap();
    assert_eq!(snapshot.messages[0].uid, uid);
    assert_eq!(snapshot.messages[0].flags, Flags::DRAFT.into());
    assert!(snapshot.messages[0].internal_date > before);
}

pub(crate) async fn abandoned_upload_leaves_nothing(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let content = mixed_message(150 * 1024);
    let before = store.snapshot(USER, INBOX).await.unwrap();

    // Dropped halfway, dropped complete, dropped before any write.
    let half = upload(store, INBOX, &content[..content.len() / 2], 0)
        .await
        .unwrap();
    drop(half);
    let mut full = store
        .begin_append(USER, INBOX, content.len() as u64)
        .await
        .unwrap();
    full.write(&content).await.unwrap();
    drop(full);
    drop(store.begin_append(USER, INBOX, 10).await.unwrap());
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap(), before);

    // The next delivery gets the UID the abandoned ones never had.
    let uid = append(store, INBOX, b"kept\r\n").await;
    assert_eq!(uid, before.uid_next);
}

pub(crate) async fn upload_length_is_kept(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let before = store.snapshot(USER, INBOX).await.unwrap();

    // Committing fewer octets than announced delivers nothing.
    let mut short = store.begin_append(USER, INBOX, 10).await.unwrap();
    short.write(b"12345").await.unwrap();
    assert!(matches!(
        short.commit(Flags::EMPTY.into(), None).await,
        Err(StoreError::Io(_))
    ));

    // Writing more fails at once and breaks the upload.
    let mut long = store.begin_append(USER, INBOX, 4).await.unwrap();
    long.write(b"123").await.unwrap();
    assert!(matches!(long.write(b"45").await, Err(StoreError::Io(_))));
    assert!(matches!(long.write(b"4").await, Err(StoreError::Io(_))));
    assert!(matches!(
        long.commit(Flags::EMPTY.into(), None).await,
        Err(StoreError::Io(_))
    ));
    assert_eq!(store.snapshot(USER, INBOX).await.unwrap(), before);
}

pub(crate) async fn begin_append_fails_fast(store: &impl Mailstore) {
    let no_mailbox =
        |result: Result<_, StoreError>| matches!(result, Err(StoreError::NoSuchMailbox));
    assert!(no_mailbox(
        store.begin_append("nobody", INBOX, 1).await.map(drop)
    ));
    store.ensure_user(USER).await.unwrap();
    assert!(no_mailbox(
        store.begin_append(USER, "Nope", 1).await.map(drop)
    ));
    assert!(no_mailbox(
        store.begin_append(USER, "Nope/Child", 1).await.map(drop)
    ));
    for bad in ["", "a//b", "..", "a*"] {
        let begun = store.begin_append(USER, bad, 1).await.map(drop);
        assert!(matches!(begun, Err(StoreError::InvalidName)), "{bad:?}");
    }
    let begun = store.begin_append(".hidden", INBOX, 1).await.map(drop);
    assert!(matches!(begun, Err(StoreError::InvalidName)));

    // A mailbox that goes away during the upload takes the message with it.
    store.create_mailbox(USER, "Gone").await.unwrap();
    let mut upload = store.begin_append(USER, "Gone", 3).await.unwrap();
    upload.write(b"abc").await.unwrap();
    store.delete_mailbox(USER, "Gone").await.unwrap();
    assert!(no_mailbox(
        upload.commit(Flags::EMPTY.into(), None).await.map(drop)
    ));
    store.create_mailbox(USER, "Moved").await.unwrap();
    let mut upload = store.begin_append(USER, "Moved", 3).await.unwrap();
    upload.write(b"abc").await.unwrap();
    store.rename_mailbox(USER, "Moved", "Away").await.unwrap();
    assert!(no_mailbox(
        upload.commit(Flags::EMPTY.into(), None).await.map(drop)
    ));
    assert!(
        store
            .snapshot(USER, "Away")
            .await
            .unwrap()
            .messages
            .is_empty()
    );

    // Case-insensitive INBOX, as everywhere.
    let uid = upload_commit(store, "inbox", b"x\r\n").await;
    assert_eq!(
        store.snapshot(USER, INBOX).await.unwrap().messages[0].uid,
        uid
    );
}

async fn upload_commit(store: &impl Mailstore, mailbox: &str, content: &[u8]) -> u32 {
    upload(store, mailbox, content, 0)
        .await
        .unwrap()
        .commit(Flags::EMPTY.into(), None)
        .await
        .unwrap()
}

pub(crate) async fn watch_sees_streamed_append(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let mut watch = store.watch(USER, INBOX);
    let mut other = store.watch(USER, "Sent");
    let content = mixed_message(100 * 1024);
    let upload = upload(store, INBOX, &content, 5).await.unwrap();
    let quiet = Duration::from_millis(50);
    assert!(
        tokio::time::timeout(quiet, watch.changed()).await.is_err(),
        "nothing to see before the commit"
    );
    let uid = upload.commit(Flags::EMPTY.into(), None).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), watch.changed())
        .await
        .expect("the commit wakes the watch");
    assert!(tokio::time::timeout(quiet, other.changed()).await.is_err());
    assert_eq!(
        store.snapshot(USER, INBOX).await.unwrap().messages[0].uid,
        uid
    );

    // An abandoned upload is no change.
    drop(store.begin_append(USER, INBOX, 1).await.unwrap());
    assert!(tokio::time::timeout(quiet, watch.changed()).await.is_err());
}

/// Sessions of one mailbox share one list of its messages: each snapshot hands out the list
/// the one before did while the messages stay the same, and a list of their own after a
/// change, which leaves the lists handed out before as they were.
pub(crate) async fn snapshots_share_the_list_while_nothing_changes(store: &impl Mailstore) {
    store.ensure_user(USER).await.unwrap();
    let first_uid = append(store, INBOX, b"Subject: a\r\n\r\nA\r\n").await;
    append(store, INBOX, b"Subject: b\r\n\r\nB\r\n").await;
    let first = store.snapshot(USER, INBOX).await.unwrap();
    let again = store.snapshot(USER, INBOX).await.unwrap();
    assert!(MessageList::ptr_eq(&first.messages, &again.messages));

    store
        .set_flags(USER, INBOX, first_uid, Flags::SEEN.into())
        .await
        .unwrap();
    let changed = store.snapshot(USER, INBOX).await.unwrap();
    assert!(!MessageList::ptr_eq(&first.messages, &changed.messages));
    assert_eq!(changed.messages[0].flags, Flags::SEEN.into());
    assert_eq!(first.messages[0].flags, MessageFlags::default());
    let again = store.snapshot(USER, INBOX).await.unwrap();
    assert!(MessageList::ptr_eq(&changed.messages, &again.messages));

    store.expunge(USER, INBOX, &[first_uid]).await.unwrap();
    let expunged = store.snapshot(USER, INBOX).await.unwrap();
    assert_eq!(expunged.messages.len(), 1);
    assert_eq!(again.messages.len(), 2);
}
