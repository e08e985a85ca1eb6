//! Behaviour every [`Mailstore`] must have, written once and run against both stores (see
//! [`conformance_tests!`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::store::{Flags, INBOX, MailboxInfo, Mailstore, StoreError};

/// Declares one `#[tokio::test]` per behaviour, each on a fresh store from `$make`, which
/// yields `(store, guard)`: the guard (a temporary directory, say) lives as long as the test.
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::store::maildir::conformance::conformance_tests!(@tests $make;
            append_snapshot_fetch,
            uids_never_reused,
            flags_round_trip,
            invalid_names_rejected,
            inbox_is_case_insensitive,
            ensure_user_creates_special_use,
            unknown_user_or_mailbox,
            create_and_list,
            rename_moves_children,
            delete_keeps_children,
            recreated_mailbox_gets_new_uid_validity,
            subscriptions,
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_appends_get_distinct_uids() {
            let (store, _guard) = $make;
            $crate::store::maildir::conformance::concurrent_appends(store).await;
        }
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $make;
                $crate::store::maildir::conformance::$name(&store).await;
            }
        )*
    };
}
pub(crate) use conformance_tests;

const USER: &str = "alice";

fn date(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

async fn append(store: &impl Mailstore, mailbox: &str, content: &'static [u8]) -> u32 {
    store
        .append(
            USER,
            mailbox,
            Bytes::from_static(content),
            Flags::EMPTY,
            None,
        )
        .await
        .unwrap()
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
        .append(USER, INBOX, crlf.clone(), Flags::SEEN, Some(delivered))
        .await
        .unwrap();
    let two = store
        .append(USER, INBOX, bare_lf.clone(), Flags::EMPTY, None)
        .await
        .unwrap();
    let three = store
        .append(
            USER,
            INBOX,
            binary.clone(),
            Flags::DRAFT | Flags::FLAGGED,
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
    let flags: Vec<Flags> = snapshot.messages.iter().map(|m| m.flags).collect();
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
        store.set_flags(USER, INBOX, uid, flags).await.unwrap();
        let snapshot = store.snapshot(USER, INBOX).await.unwrap();
        assert_eq!(snapshot.messages[0].flags, flags);
        assert_eq!(
            store.fetch(USER, INBOX, uid).await.unwrap(),
            &b"Subject: f\r\n\r\n"[..]
        );
    }
    let missing = store.set_flags(USER, INBOX, uid + 1, Flags::SEEN).await;
    assert!(matches!(missing, Err(StoreError::NoSuchMessage)));
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
            .append(USER, bad, Bytes::from_static(b"x"), Flags::EMPTY, None)
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
            Flags::EMPTY,
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
        store.set_flags(USER, "Nope", 1, Flags::SEEN).await
    ));
    let appended = store
        .append(USER, "Nope", Bytes::from_static(b"x"), Flags::EMPTY, None)
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

pub(crate) async fn concurrent_appends<S: Mailstore + Clone>(store: S) {
    store.ensure_user(USER).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let content = Bytes::from(format!("Subject: {i}\r\n\r\n{i}\r\n"));
                let uid = store
                    .append(USER, INBOX, content.clone(), Flags::EMPTY, None)
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
