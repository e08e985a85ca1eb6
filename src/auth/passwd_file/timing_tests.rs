//! An unknown user and a wrong password cannot be told apart by the work the file does: the
//! unknown user's secret runs through the same check against an entry of the same scheme and
//! cost parameters as the users most entries are. Asserted on the work itself, not on clocks
//! (a timing test on a shared 2-core machine proves nothing); `benches/auth_timing.rs`
//! measures the times.

use tower::ServiceExt;

use super::crypt::CryptFormat;
use super::scheme_tests::field_of;
use super::secret::Cost;
use super::*;
use crate::auth::scram::client_proof;

/// The fixture users of each family the test makes the most common in turn: bcrypt cost 5,
/// SHA-512-crypt with 10,000 rounds, PBKDF2 with 5,000 rounds, Argon2id at 64 MiB × 3.
const FAMILIES: [&str; 4] = ["blfcrypt", "sha512rounds", "pbkdf2", "argon2id"];

/// Users with other schemes and costs beside the majority: a file mid-migration.
const OTHERS: [&str; 6] = [
    "blfcost4",
    "sha256crypt",
    "pbkdf2rounds",
    "argon2i",
    "ssha512",
    "clear",
];

/// A file where `majority` has three entries (three users with its scheme and cost) and every
/// other family, and each of [`OTHERS`], one.
fn mixed_file(majority: &str) -> PasswdFile {
    let mut text = String::new();
    // A lone entry of another family first: the decoy must follow the count, not the order.
    for lone in FAMILIES.iter().chain(&OTHERS).filter(|u| **u != majority) {
        text += &format!("{lone}:{}\n", field_of(lone));
    }
    for n in 0..3 {
        text += &format!("{majority}-{n}:{}\n", field_of(majority));
    }
    PasswdFile::parse(&text)
}

/// What a password check of `user` does: the cost of the entry it runs against, and whether it
/// runs on the blocking pool (the slow schemes) or inline.
fn password_work(users: &PasswdFile, user: &str) -> (Cost, bool) {
    let check = Check::Password("not the password".into());
    let (_, secret) = check.against(&users.table(), user);
    let secret = secret.expect("every check runs against an entry");
    (secret.cost(), secret.is_costly())
}

#[test]
fn an_unknown_user_costs_what_a_wrong_password_of_most_users_costs() {
    for majority in FAMILIES {
        let users = mixed_file(majority);
        let wrong_password = password_work(&users, &format!("{majority}-1"));
        assert!(wrong_password.1, "{majority} is a slow scheme");
        for unknown in ["nobody", "", "BLFCRYPT-1", &"x".repeat(300)] {
            assert_eq!(
                password_work(&users, unknown),
                wrong_password,
                "{majority}: {unknown:?} is checked like a wrong password"
            );
        }
    }
}

#[test]
fn the_decoy_is_a_real_entry_of_the_majority_and_not_a_copy_of_its_cost_alone() {
    let users = mixed_file("sha512rounds");
    let table = users.table();
    let decoy = table.decoy.as_ref().unwrap();
    // The decoy is one of the three entries itself, so its salt and hash are real ones: the
    // hashing is the same, not a look-alike.
    assert!(
        (0..3).any(|n| Arc::ptr_eq(decoy, &table.users[&format!("sha512rounds-{n}")])),
        "the decoy is a majority entry"
    );
    assert_eq!(
        decoy.cost(),
        Cost::ShaCrypt {
            format: CryptFormat::Sha512,
            rounds: 10_000
        }
    );
}

#[tokio::test]
async fn the_decoy_check_runs_and_never_logs_an_unknown_user_in() {
    let users = mixed_file("pbkdf2");
    // The decoy's own password, presented for a name the file does not have: the check runs
    // to a match, and the name still decides.
    let check = Check::Password("pw-pbkdf2".into());
    let (name, secret) = check.against(&users.table(), "nobody");
    assert_eq!(name, None);
    assert!(
        Check::Password("pw-pbkdf2".into())
            .run(secret.unwrap())
            .await
            .unwrap(),
        "the decoy check is a real verification"
    );
    let answer = users
        .clone()
        .oneshot(Credentials::new("nobody", "pw-pbkdf2"))
        .await;
    assert_eq!(answer, Err(AuthError::InvalidCredentials));
}

/// The known limit, as the documentation states it: a user whose scheme or cost differs from
/// the most common one costs something else, and so can be told from an unknown name.
#[test]
fn users_of_a_minority_cost_are_told_apart_as_documented() {
    let users = mixed_file("argon2id");
    assert_ne!(
        password_work(&users, "blfcost4"),
        password_work(&users, "nobody")
    );
}

/// What a SCRAM proof check of `user` does: the cost of the entry, and whether keys are
/// derived (PBKDF2 on the blocking pool) or only compared.
fn scram_work(users: &PasswdFile, user: &str) -> (Cost, bool) {
    let parameters = ScramParameters::new(vec![7; 16], 4096);
    let check = Check::Scram(client_proof(
        b"guess",
        parameters,
        b"n=x,r=a,r=ab,s=Bw==,i=4096",
    ));
    let (_, secret) = check.against(&users.table(), user);
    let secret = secret.expect("every check runs against an entry");
    (secret.cost(), secret.scram_is_costly())
}

#[test]
fn an_unknown_scram_user_costs_what_a_wrong_proof_of_most_users_costs() {
    // Stored keys most common: a proof is compared with the keys, no derivation.
    let scram = field_of("scramsha256");
    let users = PasswdFile::parse(&format!(
        "s1:{scram}\ns2:{scram}\np:{{PLAIN}}x\nh:{}\n",
        field_of("sha512crypt")
    ));
    let wrong_proof = scram_work(&users, "s1");
    assert_eq!(wrong_proof, (Cost::Scram { iterations: 4096 }, false));
    // A user whose entry cannot serve SCRAM is an unknown user to the mechanism.
    for unknown in ["nobody", "h"] {
        assert_eq!(scram_work(&users, unknown), wrong_proof, "{unknown}");
    }

    // {PLAIN} most common: the keys are derived at each check, for the unknown user too.
    let users = PasswdFile::parse(&format!("p1:{{PLAIN}}x\np2:{{PLAIN}}y\ns:{scram}\n"));
    let wrong_proof = scram_work(&users, "p2");
    assert_eq!(wrong_proof, (Cost::Plain, true));
    assert_eq!(scram_work(&users, "nobody"), wrong_proof);
}
