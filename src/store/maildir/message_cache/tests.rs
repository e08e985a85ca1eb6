use super::*;

fn entry(uid: u32, data: &str) -> (u32, String, u64, Bytes) {
    (
        uid,
        format!("base{uid}"),
        100 + u64::from(uid),
        Bytes::from(data.to_owned()),
    )
}

fn all_live(_: u32, _: &[u8]) -> bool {
    true
}

fn file(dir: &Path) -> Vec<u8> {
    fs::read(dir.join(FILE_NAME)).unwrap()
}

#[test]
fn entries_survive_a_reload_and_answer_only_for_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut cache = MessageCache::load(dir.path(), &MemoryUse::default());
    cache
        .add(dir.path(), [entry(1, "one"), entry(2, "two")], all_live)
        .unwrap();
    cache
        .add(dir.path(), [entry(3, "three")], all_live)
        .unwrap();
    let loaded = MessageCache::load(dir.path(), &MemoryUse::default());
    assert_eq!(loaded.get(1, "base1", 101).unwrap(), "one");
    assert_eq!(loaded.get(3, "base3", 103).unwrap(), "three");
    assert!(
        loaded.get(1, "other", 101).is_none(),
        "another file's base name"
    );
    assert!(loaded.get(1, "base1", 999).is_none(), "another size");
    assert!(loaded.get(4, "base4", 104).is_none());
}

#[test]
fn a_damaged_record_ends_what_is_read_and_the_file_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut cache = MessageCache::load(dir.path(), &MemoryUse::default());
    cache.add(dir.path(), [entry(1, "one")], all_live).unwrap();
    cache.add(dir.path(), [entry(2, "two")], all_live).unwrap();
    cache
        .add(dir.path(), [entry(3, "three")], all_live)
        .unwrap();
    let mut bytes = file(dir.path());
    // Flip a byte of the second record's data: its checksum fails.
    let at = bytes.windows(3).position(|w| w == b"two").unwrap();
    bytes[at] ^= 0x20;
    fs::write(dir.path().join(FILE_NAME), &bytes).unwrap();

    let mut loaded = MessageCache::load(dir.path(), &MemoryUse::default());
    assert_eq!(loaded.get(1, "base1", 101).unwrap(), "one");
    assert!(loaded.get(2, "base2", 102).is_none(), "damaged");
    assert!(loaded.get(3, "base3", 103).is_none(), "after the damage");
    loaded
        .add(dir.path(), [entry(4, "four")], all_live)
        .unwrap();
    let reloaded = MessageCache::load(dir.path(), &MemoryUse::default());
    assert_eq!(reloaded.get(1, "base1", 101).unwrap(), "one");
    assert_eq!(reloaded.get(4, "base4", 104).unwrap(), "four");
    assert!(!reloaded.rewrite, "the rewritten file is whole");
}

#[test]
fn a_torn_tail_keeps_the_records_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cache = MessageCache::load(dir.path(), &MemoryUse::default());
    cache
        .add(dir.path(), [entry(1, "one"), entry(2, "two")], all_live)
        .unwrap();
    let bytes = file(dir.path());
    fs::write(dir.path().join(FILE_NAME), &bytes[..bytes.len() - 2]).unwrap();
    let loaded = MessageCache::load(dir.path(), &MemoryUse::default());
    assert_eq!(loaded.get(1, "base1", 101).unwrap(), "one");
    assert!(loaded.get(2, "base2", 102).is_none());
}

#[test]
fn a_file_of_another_version_or_garbage_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut cache = MessageCache::load(dir.path(), &MemoryUse::default());
    cache.add(dir.path(), [entry(1, "one")], all_live).unwrap();
    let mut bytes = file(dir.path());
    bytes[HEADER.len() - 2] = b'9';
    fs::write(dir.path().join(FILE_NAME), &bytes).unwrap();
    assert!(
        MessageCache::load(dir.path(), &MemoryUse::default())
            .get(1, "base1", 101)
            .is_none()
    );
    fs::write(dir.path().join(FILE_NAME), b"\xff\xfe garbage").unwrap();
    assert!(
        MessageCache::load(dir.path(), &MemoryUse::default())
            .entries
            .is_empty()
    );
}

#[test]
fn an_oversized_entry_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut cache = MessageCache::load(dir.path(), &MemoryUse::default());
    let huge = "x".repeat(MAX_ENTRY + 1);
    cache
        .add(dir.path(), [entry(1, &huge), entry(2, "two")], all_live)
        .unwrap();
    assert!(cache.get(1, "base1", 101).is_none());
    assert_eq!(cache.get(2, "base2", 102).unwrap(), "two");
}

#[test]
fn entries_of_gone_messages_are_dropped_and_compacted_away() {
    let dir = tempfile::tempdir().unwrap();
    let mut cache = MessageCache::load(dir.path(), &MemoryUse::default());
    let big = "y".repeat(60 * 1024);
    let many: Vec<_> = (1..=40).map(|uid| entry(uid, &big)).collect();
    cache.add(dir.path(), many, all_live).unwrap();
    let full = file(dir.path()).len();
    // Messages 1..=39 are expunged; one more entry is added.
    cache
        .add(dir.path(), [entry(41, "new")], |uid, _| uid >= 40)
        .unwrap();
    assert!(file(dir.path()).len() < full / 10, "compacted");
    let loaded = MessageCache::load(dir.path(), &MemoryUse::default());
    assert!(loaded.get(1, "base1", 101).is_none());
    assert_eq!(loaded.get(40, "base40", 140).unwrap(), big.as_str());
    assert_eq!(loaded.get(41, "base41", 141).unwrap(), "new");
}

#[test]
fn the_memory_of_caches_is_counted_until_they_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let memory = MemoryUse::with_budget(100);
    let mut cache = MessageCache::load(dir.path(), &memory);
    assert_eq!(memory.used(), 0, "no file yet");
    let data = "z".repeat(150);
    cache.add(dir.path(), [entry(1, &data)], all_live).unwrap();
    assert!(memory.used() >= 150 && memory.over_budget());
    drop(cache);
    assert_eq!(memory.used(), 0);
    let loaded = MessageCache::load(dir.path(), &memory);
    assert_eq!(
        memory.used(),
        file(dir.path()).len() as u64,
        "the file as read"
    );
    drop(loaded);
    assert_eq!(memory.used(), 0);
}
