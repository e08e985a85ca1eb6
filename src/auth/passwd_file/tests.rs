//! Unit tests for [`PasswdFile`](super::PasswdFile).

use std::os::unix::fs::PermissionsExt;

use argon2::{Algorithm, Params, Version};
use tower::ServiceExt;

use super::*;

/// Argon2 with the smallest cost, so that tests do not spend seconds hashing in debug builds.
fn cheap_hash(password: &str, algorithm: Algorithm) -> String {
    let params = Params::new(Params::MIN_M_COST, 1, 1, None).unwrap();
    let hash = Argon2::new(algorithm, Version::default(), params)
        .hash_password(password.as_bytes())
        .unwrap();
    let scheme = match algorithm {
        Algorithm::Argon2i => "ARGON2I",
        _ => "ARGON2ID",
    };
    format!("{{{scheme}}}{hash}")
}

async fn login(users: &PasswdFile, user: &str, password: &str) -> Result<User, AuthError> {
    users
        .clone()
        .oneshot(Credentials::new(user, password))
        .await
}

fn ok(name: &str) -> Result<User, AuthError> {
    Ok(User::new(name))
}

const INVALID: Result<User, AuthError> = Err(AuthError::InvalidCredentials);

#[tokio::test]
async fn plain() {
    let users = PasswdFile::parse("alice:{PLAIN}wonderland\nbob:{cleartext}builder\n");
    assert_eq!(login(&users, "alice", "wonderland").await, ok("alice"));
    assert_eq!(login(&users, "bob", "builder").await, ok("bob"));
    assert_eq!(login(&users, "alice", "wonderlan").await, INVALID);
    assert_eq!(login(&users, "alice", "wonderland!").await, INVALID);
    assert_eq!(login(&users, "alice", "").await, INVALID);
    assert_eq!(login(&users, "alice", "builder").await, INVALID);
}

#[tokio::test]
async fn argon2() {
    let text = format!(
        "alice:{}\nbob:{}\n",
        cheap_hash("wonderland", Algorithm::Argon2id),
        cheap_hash("builder", Algorithm::Argon2i)
    );
    let users = PasswdFile::parse(&text);
    assert_eq!(users.len(), 2);
    assert_eq!(login(&users, "alice", "wonderland").await, ok("alice"));
    assert_eq!(login(&users, "alice", "wonderlan").await, INVALID);
    assert_eq!(login(&users, "bob", "builder").await, ok("bob"));
    assert_eq!(login(&users, "bob", "wonderland").await, INVALID);
}

#[tokio::test]
async fn default_hash_verifies() {
    let hash = PasswdFile::hash_password("wonderland");
    assert!(hash.starts_with("{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$"));
    let users = PasswdFile::parse(&format!("alice:{hash}\n"));
    assert_eq!(login(&users, "alice", "wonderland").await, ok("alice"));
    assert_ne!(
        hash,
        PasswdFile::hash_password("wonderland"),
        "salt is random"
    );
}

#[tokio::test]
async fn unknown_user() {
    let users = PasswdFile::parse("alice:{PLAIN}wonderland\n");
    assert_eq!(login(&users, "bob", "wonderland").await, INVALID);
    // Exact match, as in Dovecot by default.
    assert_eq!(login(&users, "Alice", "wonderland").await, INVALID);
    assert_eq!(login(&users, "", "").await, INVALID);
}

/// The decoy of the table in use: which user's entry it is.
fn decoy_user(users: &PasswdFile) -> Option<String> {
    let table = users.table();
    let decoy = table.decoy.as_ref()?;
    table
        .users
        .iter()
        .find(|(_, secret)| Arc::ptr_eq(secret, decoy))
        .map(|(name, _)| name.clone())
}

#[tokio::test]
async fn unknown_users_are_checked_against_the_most_common_cost() {
    let cheap = |password| cheap_hash(password, Algorithm::Argon2id);
    let users = PasswdFile::parse(&format!(
        "carol:{{PLAIN}}x\n\
         alice:{}\n\
         dave:{{PLAIN}}y\n\
         bob:{}\n\
         erin:{}\n",
        cheap("wonderland"),
        cheap("builder"),
        // Another cost: a class of its own.
        cheap_hash("x", Algorithm::Argon2i),
    ));
    assert_eq!(
        decoy_user(&users).as_deref(),
        Some("alice"),
        "first of the two Argon2id"
    );

    // The decoy is a real entry: its password must not let an unknown name in.
    assert_eq!(login(&users, "nobody", "wonderland").await, INVALID);
    assert_eq!(login(&users, "alice", "wonderland").await, ok("alice"));

    // Equally common: the first seen.
    let users =
        PasswdFile::parse("a:{PLAIN}x\nb:{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=\n");
    assert_eq!(decoy_user(&users).as_deref(), Some("a"));
    assert_eq!(decoy_user(&PasswdFile::parse("")), None);
    assert_eq!(login(&PasswdFile::parse(""), "a", "x").await, INVALID);
}

#[tokio::test]
async fn format_details() {
    let text = "# comment\n\
                \n   \n\
                u:{PLAIN}pw:1000:1000::/home/u::\n\
                crlf:{PLAIN}pw\r\n\
                nocrypt:$6$salt$hash\n\
                unknown:{SCRAM-SHA-1}4096,c2FsdA==,a2V5,a2V5\n\
                unterminated:{PLAIN\n\
                empty:{PLAIN}\n\
                nopassword\n\
                :{PLAIN}noname\n\
                badphc:{ARGON2ID}$argon2id$nonsense\n\
                twice:{PLAIN}first\n\
                twice:{PLAIN}second\n\
                broken:nocrypt\n\
                broken:{PLAIN}later\n\
                #u:{PLAIN}commented\n";
    let users = PasswdFile::parse(text);
    assert_eq!(users.len(), 3, "{users:?}");
    assert_eq!(login(&users, "u", "pw").await, ok("u"));
    assert_eq!(login(&users, "crlf", "pw").await, ok("crlf"));
    assert_eq!(login(&users, "twice", "first").await, ok("twice"));
    assert_eq!(login(&users, "twice", "second").await, INVALID);
    assert_eq!(login(&users, "broken", "later").await, INVALID);
    assert_eq!(login(&users, "nocrypt", "$6$salt$hash").await, INVALID);
    assert_eq!(
        login(&users, "unknown", "4096,c2FsdA==,a2V5,a2V5").await,
        INVALID
    );
    assert_eq!(login(&users, "empty", "").await, INVALID);
    assert_eq!(login(&users, "", "noname").await, INVALID);
}

#[test]
fn argon2_scheme_must_match_phc_algorithm() {
    let argon2i = cheap_hash("pw", Algorithm::Argon2i);
    let mislabelled = argon2i.replacen("{ARGON2I}", "{ARGON2ID}", 1);
    assert_eq!(PasswdFile::parse(&format!("a:{argon2i}\n")).len(), 1);
    assert_eq!(PasswdFile::parse(&format!("a:{mislabelled}\n")).len(), 0);
}

#[tokio::test]
async fn ensure_user_creates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/dirs/passwd");

    assert!(PasswdFile::ensure_user(&path, "demo", "s3cret-pw").unwrap());
    let mode = fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("demo:{ARGON2ID}$argon2id$"), "{text}");
    assert!(text.ends_with('\n') && text.lines().count() == 1);
    assert!(!text.contains("s3cret-pw"));

    let users = PasswdFile::open(&path).unwrap();
    assert_eq!(login(&users, "demo", "s3cret-pw").await, ok("demo"));

    // An existing file is left alone, whatever it holds.
    assert!(!PasswdFile::ensure_user(&path, "other", "pw").unwrap());
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    let existing = dir.path().join("existing");
    fs::write(&existing, "").unwrap();
    assert!(!PasswdFile::ensure_user(&existing, "demo", "pw").unwrap());
    assert_eq!(fs::read_to_string(&existing).unwrap(), "");
}

#[test]
fn ensure_user_refuses_unwritable_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    for user in ["", "a:b", "a\nb:{PLAIN}x", "#a"] {
        let err = PasswdFile::ensure_user(&path, user, "pw").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
    let err = PasswdFile::ensure_user(&path, "demo", &"x".repeat(257)).unwrap_err();
    assert_eq!(
        err.kind(),
        io::ErrorKind::InvalidInput,
        "no login could present it"
    );
    assert!(!path.exists());
}

#[tokio::test]
async fn reload_swaps_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    fs::write(&path, "alice:{PLAIN}old\n").unwrap();
    let users = PasswdFile::open(&path).unwrap();
    let clone = users.clone();
    assert_eq!(login(&users, "alice", "old").await, ok("alice"));

    fs::write(&path, "alice:{PLAIN}new\nbob:{PLAIN}b\n").unwrap();
    users.reload().unwrap();
    assert_eq!(clone.len(), 2, "clones share the table");
    assert_eq!(login(&clone, "alice", "old").await, INVALID);
    assert_eq!(login(&clone, "alice", "new").await, ok("alice"));
    assert_eq!(login(&clone, "bob", "b").await, ok("bob"));

    // A failed reload keeps the current table.
    fs::remove_file(&path).unwrap();
    assert_eq!(users.reload().unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(login(&users, "alice", "new").await, ok("alice"));

    let parsed = PasswdFile::parse("");
    assert_eq!(
        parsed.reload().unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

/// Replaces the file at `path` the way installers and editors do: a new file renamed over it.
fn replace(path: &Path, text: &str) {
    let new = path.with_extension("new");
    fs::write(&new, text).unwrap();
    fs::rename(&new, path).unwrap();
}

#[tokio::test]
async fn reload_if_changed_sees_renames_and_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    fs::write(&path, "alice:{PLAIN}old1\n").unwrap();
    let users = PasswdFile::open(&path).unwrap().check_interval(None);
    assert!(!users.reload_if_changed().unwrap(), "unchanged");

    replace(&path, "alice:{PLAIN}new1\n");
    assert!(users.reload_if_changed().unwrap(), "renamed over");
    assert_eq!(login(&users, "alice", "new1").await, ok("alice"));
    assert_eq!(login(&users, "alice", "old1").await, INVALID);
    assert!(!users.reload_if_changed().unwrap());

    // The same size, in place: the times tell, or, this soon after the last write, the content.
    fs::write(&path, "alice:{PLAIN}new2\n").unwrap();
    assert!(users.reload_if_changed().unwrap(), "rewritten in place");
    assert_eq!(login(&users, "alice", "new2").await, ok("alice"));

    // Rewritten within one tick of the filesystem's clock: only the content tells.
    fs::write(&path, "alice:{PLAIN}new3\n").unwrap();
    users.source().unwrap().pretend_same_tick_rewrite().unwrap();
    assert!(
        users.reload_if_changed().unwrap(),
        "same stamp, other content"
    );
    assert_eq!(login(&users, "alice", "new3").await, ok("alice"));

    let parsed = PasswdFile::parse("");
    let err = parsed.reload_if_changed().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_broken_file_keeps_the_users_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    fs::write(&path, "alice:{PLAIN}old\n").unwrap();
    let users = PasswdFile::open(&path).unwrap().check_interval(None);

    fs::write(&path, b"alice:{PLAIN}new\n\xff\n").unwrap();
    let err = users.reload_if_changed().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "not UTF-8");
    assert_eq!(login(&users, "alice", "old").await, ok("alice"));
    let err = users.reload_if_changed().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "still broken");
    assert_eq!(
        users.reload().unwrap_err().kind(),
        io::ErrorKind::InvalidData
    );

    replace(&path, "alice:{PLAIN}new\n");
    assert!(users.reload_if_changed().unwrap());
    assert_eq!(login(&users, "alice", "new").await, ok("alice"));

    fs::remove_file(&path).unwrap();
    let err = users.reload_if_changed().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert_eq!(login(&users, "alice", "new").await, ok("alice"));
}

#[tokio::test(start_paused = true)]
async fn logins_look_at_the_file_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    fs::write(&path, "alice:{PLAIN}one\n").unwrap();
    let users = PasswdFile::open(&path)
        .unwrap()
        .check_interval(Some(Duration::from_secs(10)));

    replace(&path, "alice:{PLAIN}two\n");
    assert_eq!(login(&users, "alice", "two").await, INVALID, "not due yet");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(login(&users, "alice", "two").await, ok("alice"), "due");

    replace(&path, "alice:{PLAIN}three\n");
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(login(&users, "alice", "three").await, INVALID);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(login(&users, "bob", "x").await, INVALID, "any login looks");
    assert_eq!(login(&users, "alice", "three").await, ok("alice"));

    let users = users.check_interval(Some(Duration::ZERO));
    replace(&path, "alice:{PLAIN}four\n");
    assert_eq!(
        login(&users, "alice", "four").await,
        ok("alice"),
        "every login"
    );

    let users = users.check_interval(None);
    replace(&path, "alice:{PLAIN}five\n");
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(login(&users, "alice", "five").await, INVALID, "never");
    assert_eq!(login(&users, "alice", "four").await, ok("alice"));
}

#[tokio::test(start_paused = true)]
async fn open_looks_every_two_seconds_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    fs::write(&path, "alice:{PLAIN}one\n").unwrap();
    let users = PasswdFile::open(&path).unwrap();

    replace(&path, "alice:{PLAIN}two\n");
    let almost = PasswdFile::DEFAULT_CHECK_INTERVAL - Duration::from_millis(1);
    tokio::time::advance(almost).await;
    assert_eq!(login(&users, "alice", "two").await, INVALID);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(login(&users, "alice", "two").await, ok("alice"));
}

#[test]
fn debug_hides_passwords() {
    let creds = Credentials::new("alice", "wonderland");
    assert!(!format!("{creds:?}").contains("wonderland"));

    let hash = cheap_hash("builder", Algorithm::Argon2id);
    let phc = hash.trim_start_matches("{ARGON2ID}");
    let users = PasswdFile::parse(&format!("alice:{{PLAIN}}wonderland\nbob:{hash}\n"));
    let debug = format!("{users:?} {users:#?}");
    assert!(!debug.contains("wonderland"), "{debug}");
    assert!(!debug.contains(phc), "{debug}");
    assert!(!debug.contains("builder"), "{debug}");
}
