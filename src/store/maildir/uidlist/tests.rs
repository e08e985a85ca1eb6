use super::super::dotlock::LockTimes;
use super::parse::parse;
use super::*;

const GUID: &str = "3085f01b7f11094c501100008c4a11c1";

fn parsed(text: &str) -> UidList {
    let parsed = parse(text.as_bytes()).unwrap();
    assert_eq!(parsed.skipped, 0, "{text:?}");
    parsed.list
}

fn entries(list: &UidList) -> Vec<(u32, &str)> {
    list.entries
        .iter()
        .map(|(&uid, base)| (uid, base.as_str()))
        .collect()
}

fn lock(dir: &Path) -> DotLock {
    DotLock::acquire(&dir.join(FILE_NAME), LockTimes::UIDLIST).unwrap()
}

proptest::proptest! {
    /// Any list this store can hold is read back as written: UIDs with gaps, base names of any
    /// printable characters a file name may hold (spaces and commas too; not `/`, nor `:`,
    /// the info separator, nor a leading `.` of hidden files; each file once), the recent mark.
    #[test]
    fn any_list_round_trips(
        names in proptest::collection::hash_set("[!--0-9;-~][ -.0-9;-~]{0,40}", 0..40),
        gaps in proptest::collection::vec(0u32..1000, 40),
        first_recent_step in 0u32..3,
    ) {
        let mut list = UidList::fresh(0);
        for (name, gap) in names.into_iter().zip(gaps) {
            let uid = list.assign(name);
            if gap % 3 == 0 {
                list.entries.remove(&uid);
            }
            list.uid_next += gap;
        }
        list.first_recent_uid = list.uid_next.saturating_sub(first_recent_step).max(1);
        let text = list.render();
        proptest::prop_assert_eq!(parsed(&text), list);
    }
}

#[test]
fn round_trip() {
    let mut list = UidList::fresh(0);
    assert_eq!(list.assign("a,S=1".into()), 1);
    assert_eq!(list.assign("b c".into()), 2);
    list.entries.remove(&2);
    list.first_recent_uid = 2;
    let text = list.render();
    assert_eq!(
        text,
        format!("3 V{} N3 G{} r2\n1 :a,S=1\n", list.uid_validity, list.guid)
    );
    assert_eq!(parsed(&text), list);
}

#[test]
fn reads_dovecot_version_3_with_gaps_and_fields() {
    // The example of Dovecot's documentation: a gap in the UIDs, a `W` field, file names as
    // last seen (with their flags), and a next UID above the last line's.
    let text = format!(
        "3 V1275660208 N25022 G{GUID}\n\
         25006 :1276528487.M364837P9451.kurkku,S=1355,W=1394:2,\n\
         25017 W2481 :1276533073.M242911P3632.kurkku:2,F\n"
    );
    let list = parsed(&text);
    assert_eq!(list.uid_validity, 1275660208);
    assert_eq!(list.uid_next, 25022);
    assert_eq!(list.first_recent_uid, 1, "Dovecot keeps \\Recent elsewhere");
    assert_eq!(
        entries(&list),
        [
            (25006, "1276528487.M364837P9451.kurkku,S=1355,W=1394"),
            (25017, "1276533073.M242911P3632.kurkku"),
        ]
    );
    // Written back as Dovecot writes it: bases only, its fields and GUID kept.
    assert_eq!(
        list.render(),
        format!(
            "3 V1275660208 N25022 G{GUID} r1\n\
             25006 :1276528487.M364837P9451.kurkku,S=1355,W=1394\n\
             25017 W2481 :1276533073.M242911P3632.kurkku\n"
        )
    );
}

#[test]
fn keeps_header_fields_it_does_not_know() {
    let list = parsed(&format!("3 N9 Pformat%u G{GUID} V5 r4 Xother\n"));
    assert_eq!(
        (list.uid_validity, list.uid_next, list.first_recent_uid),
        (5, 9, 4)
    );
    assert_eq!(
        list.render(),
        format!("3 V5 N9 G{GUID} Pformat%u Xother r4\n")
    );
}

#[test]
fn reads_version_1_and_the_legacy_format() {
    // Dovecot's and Courier's version 1: names may carry their flags.
    let v1 = parsed("1 1275660208 25022\n25006 1276528487.M36P9.kurkku,S=1355:2,S\n");
    assert_eq!((v1.uid_validity, v1.uid_next), (1275660208, 25022));
    assert_eq!(entries(&v1), [(25006, "1276528487.M36P9.kurkku,S=1355")]);
    // Earlier tower-mail's: a base may contain spaces.
    let legacy = parsed("1 V5 N9\n4 a b\n");
    assert_eq!((legacy.uid_validity, legacy.uid_next), (5, 9));
    assert_eq!(entries(&legacy), [(4, "a b")]);
    assert_eq!(legacy.guid.len(), 32, "a GUID is made up for Dovecot");
}

#[test]
fn lines_appended_past_the_header_raise_uid_next() {
    // Dovecot appends new messages without rewriting the header.
    let list = parsed(&format!("3 V5 N3 G{GUID}\n1 :a\n3 :b\n7 :c\n"));
    assert_eq!(list.uid_next, 8);
}

#[test]
fn a_bad_line_costs_only_that_line() {
    let mut text = format!(
        "3 V5 N4 G{GUID}\n\
         1 :one\n\
         x :not-a-uid\n\
         2 no-colon\n\
         3 :sub/dir\n\
         4 :\n\
         9 W1 no-name-either\n"
    )
    .into_bytes();
    text.extend(b"5 :\xff\xfe\n");
    text.extend(
        format!(
            "0 :zero\n\
             6 :six\n\
             6 :six-again\n\
             5 :backwards\n\
             7 :.hidden\n\
             8 :{}\n\
             10 :ten\n\
             11 :trunc",
            "y".repeat(9000)
        )
        .bytes(),
    );
    let parsed = parse(&text).unwrap();
    let list = parsed.list;
    // The truncated last line is a name like any other: if no file has it, its UID is
    // dropped at the next listing, and the real file gets a new UID above it.
    assert_eq!(
        entries(&list),
        [(1, "one"), (6, "six"), (10, "ten"), (11, "trunc")]
    );
    assert_eq!(parsed.skipped, 11);
    assert_eq!(list.uid_next, 12);
    // A bad line's UID, where readable, is never handed out again.
    let list = parse(format!("3 V5 N2 G{GUID}\n1 :one\n40 no colon\n").as_bytes())
        .unwrap()
        .list;
    assert_eq!(list.uid_next, 41);
}

#[test]
fn a_file_listed_again_keeps_its_later_uid() {
    // Dovecot appends such a line when an expunged file comes back.
    let list = parsed(&format!("3 V5 N9 G{GUID}\n1 :a\n2 :b\n3 W9 :a:2,S\n"));
    assert_eq!(entries(&list), [(2, "b"), (3, "a")]);
    assert!(list.render().contains("\n3 W9 :a\n"));
}

#[test]
fn unusable_headers() {
    for (text, validity) in [
        ("", None),
        ("garbage", None),
        ("2 V5 N1\n", None),
        ("3 N5\n1 :a\n", None),
        ("3 V0 N5\n", None),
        ("1 V0 N1\n", None),
        ("\u{ff}", None),
        ("3 V5\n1 :a\n", Some(5)),
        ("3 V5 N0\n", Some(5)),
        ("1 V5 N9 Q1\n", Some(5)),
        ("1 5\n", Some(5)),
        ("1 5 9 13\n", Some(5)),
    ] {
        assert_eq!(parse(text.as_bytes()).err(), Some(validity), "{text:?}");
    }
    assert!(parse(b"\xff\xfe").is_err());
}

#[test]
fn odd_header_values_are_repaired() {
    // A GUID Dovecot would refuse is replaced; a recent mark past UIDNEXT is lowered to it.
    let list = parsed("3 V5 N9 Gnot-hex r99\n");
    assert_eq!(list.guid.len(), 32);
    assert_ne!(list.guid, "not-hex");
    assert_eq!(list.first_recent_uid, 9);
    assert_eq!(parsed("3 V5 N9 r0\n").first_recent_uid, 1);
    assert_eq!(parsed("3 V5 N9 rx\n").first_recent_uid, 1);
}

#[test]
fn renumbering_starts_recent_over_and_keeps_fields_with_their_file() {
    let mut list = parsed(&format!("3 V5 N9 G{GUID} r9\n7 W3 :a\n8 :b\n"));
    list.uid_next = u32::MAX;
    let uid = list.assign("c".into());
    assert_ne!(list.uid_validity, 5);
    assert_eq!(entries(&list), [(1, "a"), (2, "b"), (3, "c")]);
    assert_eq!(uid, 3);
    assert_eq!(list.first_recent_uid, 1);
    assert!(list.render().contains("\n1 W3 :a\n"));
}

#[test]
fn files_missing_legacy_and_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        UidList::read(dir.path()).unwrap(),
        Loaded::Missing
    ));

    // An earlier tower-mail's list is read, and replaced at the first write.
    let legacy = dir.path().join(LEGACY_FILE_NAME);
    fs::write(&legacy, "1 V5 N3\n1 a\n2 b\n").unwrap();
    let Loaded::Ok(mut list) = UidList::read(dir.path()).unwrap() else {
        panic!("legacy list not read");
    };
    assert!(list.is_legacy());
    assert_eq!(entries(&list), [(1, "a"), (2, "b")]);
    list.write(dir.path(), &lock(dir.path())).unwrap();
    assert!(!legacy.exists());
    assert!(!list.is_legacy());
    let Loaded::Ok(again) = UidList::read(dir.path()).unwrap() else {
        panic!("written list not read");
    };
    assert_eq!(again, list);

    // Dovecot's list wins over a legacy one left beside it.
    fs::write(&legacy, "1 V6 N3\n1 x\n").unwrap();
    let Loaded::Ok(read) = UidList::read(dir.path()).unwrap() else {
        panic!("list not read");
    };
    assert_eq!(read.uid_validity, 5);

    fs::write(dir.path().join(FILE_NAME), b"\xff\xfe").unwrap();
    let Loaded::Corrupt(None, path) = UidList::read(dir.path()).unwrap() else {
        panic!("corrupt list not reported");
    };
    assert_eq!(path, dir.path().join(FILE_NAME));
}

#[test]
fn pop3_uidls_kept_by_a_migration() {
    let list = parsed(&format!(
        "3 V5 N9 G{GUID}\n1 W3 Pcourier.1 :a\n2 :b\n3 P :c\n4 W9 :d\n"
    ));
    let expected = HashMap::from([(1, "courier.1".to_owned()), (3, String::new())]);
    assert_eq!(list.pop3_uidls(), expected);
}
