//! SCRAM-SHA-256 against a passwd-file: the salts the look-up tells, and the proofs the file
//! accepts, from `{SCRAM-SHA-256}` entries made by `doveadm pw` and from `{PLAIN}` entries.

use tower::ServiceExt;

use super::*;
use crate::auth::scram::client_proof;
use crate::auth::{Secret as Presented, User};

/// The fixture's `{SCRAM-SHA-256}` entry for `pw-scramsha256` (see `dovecot_schemes.sh`).
const DOVEADM_SCRAM: &str = "{SCRAM-SHA-256}4096,hmhr2mpdN38WBwW9YwbXZQ==,\
    3Bp1uylbWF0kG4h3t3E0chfqPHD+4BpGFfJthGZea08=,+jyZvEdcfryGDQe/VGvkZjITEZMpA2NZrZiYTy4/Eng=";

fn users() -> PasswdFile {
    PasswdFile::parse(&format!(
        "scram:{DOVEADM_SCRAM}\n\
         plain:{{PLAIN}}pencil\n\
         hashed:{{SHA512-CRYPT}}$6$cyOwXIr5hoq1cxTB$0QqIkPyoAZk/sJWH.Ey0K6ZULgj8lplKo6PCWX6svBWRnIJZLuOHhKrxFdxSjTN/GzGYJvn4qr9JU2shPEKo60\n"
    ))
}

async fn lookup(users: &PasswdFile, user: &str) -> ScramParameters {
    users.clone().oneshot(ScramLookup::new(user)).await.unwrap()
}

/// Logs `user` in with a SCRAM proof of `password`, over the salt the look-up tells.
async fn scram_login(users: &PasswdFile, user: &str, password: &str) -> Result<User, AuthError> {
    let parameters = lookup(users, user).await;
    let auth_message = format!("n={user},r=abc,r=abcdef,s=c2FsdA==,i=4096,c=biws,r=abcdef");
    let proof = client_proof(password.as_bytes(), parameters, auth_message.as_bytes());
    let credentials = Credentials {
        user: user.into(),
        secret: Presented::Scram(proof.clone()),
        session: None,
    };
    let answer = users.clone().oneshot(credentials).await;
    assert_eq!(
        answer.is_ok(),
        proof.server_signature().is_some(),
        "a signature exactly when the proof was accepted"
    );
    answer
}

#[tokio::test]
async fn lookups_tell_stored_salts_and_made_up_ones() {
    let users = users();
    let scram = lookup(&users, "scram").await;
    assert_eq!(
        crate::auth::sasl::base64::encode(&scram.salt),
        "hmhr2mpdN38WBwW9YwbXZQ=="
    );
    assert_eq!(scram.iterations, 4096);

    for name in ["plain", "hashed", "nobody"] {
        let first = lookup(&users, name).await;
        assert_eq!(
            first,
            lookup(&users, name).await,
            "{name}: the same at every asking"
        );
        assert_eq!((first.salt.len(), first.iterations), (16, 4096), "{name}");
    }
    assert_ne!(
        lookup(&users, "plain").await,
        lookup(&users, "nobody").await
    );
    // Another PasswdFile makes up other salts: they come from a key of its own.
    assert_ne!(
        lookup(&users, "nobody").await,
        lookup(&self::users(), "nobody").await
    );
}

#[tokio::test]
async fn made_up_iterations_follow_the_stored_keys_most_users_have() {
    let many = DOVEADM_SCRAM.replacen("4096,", "8192,", 1);
    let users = PasswdFile::parse(&format!(
        "a:{many}\nb:{many}\nc:{{PLAIN}}x\nd:{DOVEADM_SCRAM}\n"
    ));
    assert_eq!(lookup(&users, "nobody").await.iterations, 8192);
    assert_eq!(lookup(&users, "c").await.iterations, 8192);
    assert_eq!(lookup(&users, "d").await.iterations, 4096);
}

#[tokio::test]
async fn proofs_verify_against_doveadm_keys_and_plain_passwords() {
    let users = users();
    assert_eq!(
        scram_login(&users, "scram", "pw-scramsha256").await,
        Ok(User::new("scram"))
    );
    assert_eq!(
        scram_login(&users, "plain", "pencil").await,
        Ok(User::new("plain"))
    );
    let invalid = Err(AuthError::InvalidCredentials);
    assert_eq!(scram_login(&users, "scram", "pw-scramsha25").await, invalid);
    assert_eq!(scram_login(&users, "plain", "pencil2").await, invalid);
    // Other hashes cannot serve SCRAM, even with the right password.
    assert_eq!(
        scram_login(&users, "hashed", "pw-sha512crypt").await,
        invalid
    );
    assert_eq!(scram_login(&users, "nobody", "pencil").await, invalid);
}

#[tokio::test]
async fn scram_entries_serve_plaintext_logins_too() {
    let users = users();
    let login = |user, password| users.clone().oneshot(Credentials::new(user, password));
    assert_eq!(
        login("scram", "pw-scramsha256").await,
        Ok(User::new("scram"))
    );
    assert_eq!(
        login("scram", "pw-scramsha256!").await,
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        login("hashed", "pw-sha512crypt").await,
        Ok(User::new("hashed"))
    );
}

#[tokio::test]
async fn tokens_are_no_passwords() {
    let users = users();
    let token = Credentials::with_token("plain", "pencil");
    assert_eq!(
        users.oneshot(token).await,
        Err(AuthError::InvalidCredentials)
    );
}

#[test]
fn the_scram_decoy_is_the_commonest_usable_entry() {
    let users = PasswdFile::parse(&format!(
        "h1:{{SHA256}}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=\n\
         h2:{{SHA256}}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=\n\
         s:{DOVEADM_SCRAM}\np1:{{PLAIN}}x\np2:{{PLAIN}}y\n"
    ));
    let table = users.table();
    let decoy = table.scram_decoy.as_ref().unwrap();
    assert!(Arc::ptr_eq(decoy, &table.users["p1"]));
    assert!(Arc::ptr_eq(
        table.decoy.as_ref().unwrap(),
        &table.users["h1"]
    ));
    assert!(
        PasswdFile::parse("h:{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=\n")
            .table()
            .scram_decoy
            .is_none()
    );
}
