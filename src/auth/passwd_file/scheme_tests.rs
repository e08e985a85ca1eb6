//! The password schemes against Dovecot's own hashes (`tests/fixtures/dovecot_schemes.txt`,
//! made by `doveadm pw` and checked with `doveadm pw -t`; see the script beside it), and the
//! malformed and over-cost hashes each scheme refuses at load time.

use tower::ServiceExt;

use super::crypt::CryptFormat;
use super::digests::Algorithm;
use super::secret::Cost;
use super::*;

/// `user password field` lines.
const VECTORS: &str = include_str!("../../../tests/fixtures/dovecot_schemes.txt");

struct Vector {
    user: &'static str,
    password: &'static str,
    field: &'static str,
}

fn vectors() -> Vec<Vector> {
    VECTORS
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let mut words = line.split(' ');
            let (Some(user), Some(password), Some(field), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                panic!("fixture line {line:?}");
            };
            Vector {
                user,
                password,
                field,
            }
        })
        .collect()
}

/// A passwd-file with one line per vector, the field changed by `field`.
fn passwd_file(vectors: &[Vector], field: impl Fn(&str) -> String) -> PasswdFile {
    let text: String = vectors
        .iter()
        .map(|v| format!("{}:{}\n", v.user, field(v.field)))
        .collect();
    let users = PasswdFile::parse(&text);
    assert_eq!(users.len(), vectors.len(), "every vector is usable");
    users
}

async fn logs_in(users: &PasswdFile, user: &str, password: &str) -> bool {
    match users
        .clone()
        .oneshot(Credentials::new(user, password))
        .await
    {
        Ok(found) => {
            assert_eq!(found.name, user);
            true
        }
        Err(AuthError::InvalidCredentials) => false,
        Err(other) => panic!("{user}: {other:?}"),
    }
}

#[tokio::test]
async fn dovecot_hashes_verify() {
    let vectors = vectors();
    assert!(vectors.len() >= 40, "{} vectors", vectors.len());
    let users = passwd_file(&vectors, str::to_owned);
    for v in &vectors {
        assert!(logs_in(&users, v.user, v.password).await, "{}", v.user);
        let mut shorter = v.password.to_owned();
        shorter.pop();
        let longer = format!("{}x", v.password);
        for wrong in [&shorter, &longer, "", "pw-"] {
            assert!(
                !logs_in(&users, v.user, wrong).await,
                "{} {wrong:?}",
                v.user
            );
        }
    }
}

#[tokio::test]
async fn each_user_is_checked_against_their_own_line() {
    // One user's password must not open the next one's account.
    let vectors = vectors();
    let users = passwd_file(&vectors, str::to_owned);
    let cheap: Vec<&Vector> = vectors
        .iter()
        .filter(|v| !v.field.contains("argon2"))
        .collect();
    for (v, other) in cheap.iter().zip(cheap.iter().skip(1)) {
        if v.password != other.password {
            assert!(!logs_in(&users, v.user, other.password).await, "{}", v.user);
        }
    }
}

#[tokio::test]
async fn scheme_names_are_case_insensitive() {
    let vectors = vectors();
    let lower = |field: &str| match field.split_once('}') {
        Some((scheme, data)) => format!("{}}}{data}", scheme.to_ascii_lowercase()),
        None => field.to_owned(),
    };
    let users = passwd_file(&vectors, lower);
    for v in vectors.iter().filter(|v| !v.field.contains("argon2")) {
        assert!(logs_in(&users, v.user, v.password).await, "{}", v.user);
    }
}

/// The fixture's field for `user`.
pub(super) fn field_of(user: &str) -> &'static str {
    vectors()
        .into_iter()
        .find(|v| v.user == user)
        .unwrap_or_else(|| panic!("no vector {user}"))
        .field
}

/// The reason `field` is refused, or `None` if it is accepted.
fn refusal(field: &str) -> Option<&'static str> {
    Secret::parse(field).err()
}

#[test]
fn malformed_hashes_are_refused_at_load() {
    let sha512 = field_of("sha512crypt").trim_start_matches("{SHA512-CRYPT}");
    let sha256 = field_of("sha256crypt").trim_start_matches("{SHA256-CRYPT}");
    let blf = field_of("blfcrypt").trim_start_matches("{BLF-CRYPT}");
    let md5 = field_of("md5crypt").trim_start_matches("{MD5-CRYPT}");
    let pbkdf2 = field_of("pbkdf2").trim_start_matches("{PBKDF2}");
    let argon2 = field_of("argon2id").trim_start_matches("{ARGON2ID}");
    let ssha512 = field_of("ssha512").trim_start_matches("{SSHA512}");
    let sha256_digest = field_of("sha256").trim_start_matches("{SHA256}");
    let scram = field_of("scramsha256").to_owned();
    let cut = |s: &str| s[..s.len() - 1].to_owned();
    let cases: Vec<(String, &str)> = vec![
        // The prefix.
        ("{SHA512-CRYPT".into(), "unterminated"),
        ("{PLAIN}".into(), "empty"),
        ("".into(), "empty"),
        ("{SCRAM-SHA-1}4096,c2FsdA==,a2V5,a2V5".into(), "unsupported"),
        ("{DES-CRYPT}abJnggxhB/yWI".into(), "unsupported"),
        ("{SHA256.B32}abc".into(), "encoding"),
        (format!("{{ARGON2ID.HEX}}{argon2}"), "encoding"),
        (format!("{{SHA512-CRYPT.B64}}{sha512}"), "encoding"),
        // crypt(3) strings.
        ("abJnggxhB/yWI".into(), "not a supported crypt"),
        ("{CRYPT}$y$j9T$salt$hash".into(), "yescrypt"),
        (
            format!("{{CRYPT}}{}", blf.replacen("$2y$", "$2x$", 1)),
            "$2x$",
        ),
        (format!("{{SHA512-CRYPT}}{blf}"), "another format"),
        (format!("{{BLF-CRYPT}}{sha512}"), "another format"),
        (format!("{{SHA256-CRYPT}}{sha512}"), "another format"),
        (format!("{{MD5-CRYPT}}{sha256}"), "another format"),
        // SHA-crypt.
        (cut(sha512), "wrong length"),
        (format!("{sha512}$"), "wrong fields"),
        (
            sha512.replacen("$6$", "$6$rounds=999$", 1),
            "rounds not between",
        ),
        (
            sha512.replacen("$6$", "$6$rounds=05000$", 1),
            "rounds not between",
        ),
        (
            sha512.replacen("$6$", "$6$rounds=x$", 1),
            "rounds not between",
        ),
        (
            sha512.replacen("$6$", "$6$0123456789abcdefX", 1),
            "salt longer",
        ),
        (format!("{}_", cut(sha256)), "wrong length or alphabet"),
        (format!("{}Z", sha256), "wrong length"),
        // bcrypt.
        (cut(blf), "malformed bcrypt"),
        (blf.replacen("$05$", "$+5$", 1), "bcrypt cost"),
        (blf.replacen("$05$", "$03$", 1), "bcrypt cost"),
        (blf.replacen("$05$", "$32$", 1), "bcrypt cost"),
        // MD5-CRYPT.
        (cut(md5), "MD5-CRYPT hash"),
        (
            format!("{{MD5-CRYPT}}{}", md5.replacen("$1$", "$1$longsalt1", 1)),
            "salt longer",
        ),
        // PBKDF2.
        (
            format!("{{PBKDF2}}{}", pbkdf2.replacen("$1$", "$2$", 1)),
            "$1$ prefix",
        ),
        (
            format!("{{PBKDF2}}{}", &pbkdf2[..pbkdf2.len() - 2]),
            "40 hex digits",
        ),
        (format!("{{PBKDF2}}{pbkdf2}0"), "invalid hex"),
        (
            format!("{{PBKDF2}}{}", pbkdf2.replacen("$5000$", "$0$", 1)),
            "positive",
        ),
        (
            format!("{{PBKDF2}}{}", pbkdf2.replacen("$5000$", "$-1$", 1)),
            "positive",
        ),
        (format!("{{PBKDF2}}{pbkdf2}$"), "wrong fields"),
        // Argon2.
        (format!("{{ARGON2ID}}{}", cut(argon2)), "malformed PHC"),
        (format!("{{ARGON2I}}{argon2}"), "does not match"),
        (
            format!("{{ARGON2ID}}{}", argon2.replacen("m=65536", "m=1", 1)),
            "parameters",
        ),
        // Digests.
        (format!("{{SSHA512}}{}", cut(ssha512)), "base64"),
        (format!("{{SSHA512}}{}==", "A".repeat(86)), "without a salt"),
        (
            format!("{{SHA256}}{}", &sha256_digest[..40]),
            "wrong length",
        ),
        ("{SHA256}".to_owned() + &"0".repeat(63), "base64"),
        ("{SHA256.HEX}".to_owned() + &"g".repeat(64), "hex"),
        ("{PLAIN.HEX}0".into(), "hex"),
        // SCRAM-SHA-256.
        ("{SCRAM-SHA-256}4096,c2FsdA==,a2V5,a2V5".into(), "32 bytes"),
        (scram.replacen("4096,", "4095,", 1), "at least 4096"),
        (scram.replacen("4096,", "04096,", 1), "at least 4096"),
        (scram.replacen(",", ",,", 1), "wrong fields"),
        (format!("{scram},"), "wrong fields"),
        (scram.replacen("4096,", "4096,!", 1), "salt not base64"),
        (format!("{}A", cut(&scram)), "32 bytes"),
        // A plain password no login can present.
        (format!("{{PLAIN}}{}", "x".repeat(257)), "256 bytes"),
    ];
    for (field, why) in &cases {
        match refusal(field) {
            None => panic!("{field:?} accepted, expected a refusal for {why:?}"),
            Some(reason) => assert!(reason.contains(why), "{field:?}: {reason:?}, not {why:?}"),
        }
    }
}

#[test]
fn costs_up_to_the_limits_are_accepted() {
    let sha512 = field_of("sha512crypt").trim_start_matches("{SHA512-CRYPT}");
    let blf = field_of("blfcrypt").trim_start_matches("{BLF-CRYPT}");
    let pbkdf2 = field_of("pbkdf2");
    let argon2 = field_of("argon2id");
    let scram = field_of("scramsha256");
    let accepted_refused = [
        (
            sha512.replacen("$6$", "$6$rounds=200000$", 1),
            sha512.replacen("$6$", "$6$rounds=200001$", 1),
        ),
        (
            blf.replacen("$05$", "$13$", 1),
            blf.replacen("$05$", "$14$", 1),
        ),
        (
            pbkdf2.replacen("$5000$", "$2000000$", 1),
            pbkdf2.replacen("$5000$", "$2000001$", 1),
        ),
        (
            argon2.replacen("m=65536,t=3", "m=262144,t=2", 1),
            argon2.replacen("m=65536,t=3", "m=262145,t=1", 1),
        ),
        (
            argon2.replacen("m=65536,t=3", "m=65536,t=8", 1),
            argon2.replacen("m=65536,t=3", "m=65536,t=9", 1),
        ),
        (
            scram.replacen("4096,", "1000000,", 1),
            scram.replacen("4096,", "1000001,", 1),
        ),
    ];
    for (accepted, refused) in accepted_refused {
        assert_eq!(refusal(&accepted), None, "{accepted}");
        let reason = refusal(&refused).unwrap_or_else(|| panic!("{refused} accepted"));
        assert!(reason.contains("limit"), "{refused}: {reason}");
    }
}

#[tokio::test]
async fn passwords_longer_than_256_bytes_fail_for_everyone() {
    let longest = "p".repeat(256);
    let users = PasswdFile::parse(&format!(
        "plain:{{PLAIN}}{longest}\n{}:{}\n",
        "sha512crypt",
        field_of("sha512crypt")
    ));
    assert!(logs_in(&users, "plain", &longest).await);
    let too_long = format!("{longest}p");
    assert!(!logs_in(&users, "plain", &too_long).await);
    assert!(!logs_in(&users, "sha512crypt", &too_long).await);
    assert!(!logs_in(&users, "nobody", &too_long).await);
}

#[test]
fn secrets_cost_what_their_parameters_say() {
    let cost = |field: &str| Secret::parse(field).ok().map(|s| (s.cost(), s.is_costly()));
    assert_eq!(
        cost(field_of("sha512rounds")),
        Some((
            Cost::ShaCrypt {
                format: CryptFormat::Sha512,
                rounds: 10_000
            },
            true
        ))
    );
    assert_eq!(
        cost(field_of("sha256crypt")),
        Some((
            Cost::ShaCrypt {
                format: CryptFormat::Sha256,
                rounds: 5000
            },
            true
        ))
    );
    assert_eq!(
        cost(field_of("blfcost4")),
        Some((Cost::Bcrypt { cost: 4 }, true))
    );
    assert_eq!(
        cost(field_of("pbkdf2rounds")),
        Some((Cost::Pbkdf2 { rounds: 1000 }, true))
    );
    assert_eq!(cost(field_of("md5")), Some((Cost::Md5Crypt, true)));
    assert_eq!(
        cost(field_of("argon2id")),
        Some((
            Cost::Argon2 {
                memory: 65536,
                passes: 3,
                lanes: 1
            },
            true
        ))
    );
    assert_eq!(
        cost(field_of("ssha")),
        Some((Cost::Digest(Algorithm::Sha1), false))
    );
    assert_eq!(
        cost(field_of("plainmd5")),
        Some((Cost::Digest(Algorithm::Md5), false))
    );
    assert_eq!(cost(field_of("clear")), Some((Cost::Plain, false)));
    assert_eq!(
        cost(&field_of("scramsha256").replacen("4096,", "10000,", 1)),
        Some((Cost::Scram { iterations: 10_000 }, true))
    );
}
