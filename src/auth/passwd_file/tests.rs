//! Unit tests for [`PasswdFile`](super::PasswdFile).

use std::os::unix::fs::PermissionsExt;

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

#[tokio::test]
async fn unknown_user_pays_for_an_argon2_decoy() {
    let users = PasswdFile::parse(&format!(
        "carol:{{PLAIN}}x\nalice:{}\n",
        cheap_hash("wonderland", Algorithm::Argon2id)
    ));
    let table = users.table();
    let Some(Decoy { template, hash }) = &table.decoy else {
        panic!("an Argon2 decoy for a file with Argon2 users");
    };
    assert_eq!(template.params.to_string(), "m=8,t=1,p=1");
    assert!(hash.get().is_none(), "decoy is lazy");

    assert_eq!(login(&users, "bob", "wonderland").await, INVALID);
    let decoy = hash.get().unwrap().as_ref().expect("decoy computed");
    assert_eq!(decoy.params, template.params);
    assert_eq!(decoy.algorithm, template.algorithm);
}

#[tokio::test]
async fn format_details() {
    let text = "# comment\n\
                \n   \n\
                u:{PLAIN}pw:1000:1000::/home/u::\n\
                crlf:{PLAIN}pw\r\n\
                nocrypt:$6$salt$hash\n\
                unknown:{SHA512-CRYPT}$6$salt$hash\n\
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
    assert_eq!(login(&users, "unknown", "$6$salt$hash").await, INVALID);
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

#[test]
fn plain_eq_compares_whole_values() {
    assert!(plain_eq(b"secret", b"secret"));
    assert!(!plain_eq(b"secreT", b"secret"));
    assert!(!plain_eq(b"secret", b"secrets"));
    assert!(!plain_eq(b"secrets", b"secret"));
    assert!(
        !plain_eq(b"secretsecret", b"secret"),
        "wrap-around is no match"
    );
    assert!(!plain_eq(b"", b"secret"));
    assert!(!plain_eq(b"", b""));
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
