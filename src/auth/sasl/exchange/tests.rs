//! Every mechanism through the engine, with an authentication service that counts its calls:
//! RFC 7677's SCRAM example, and the hostile inputs each mechanism must refuse at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::Protocol;
use crate::auth::{AuthError, Credentials, Secret, User};
#[cfg(feature = "scram")]
use crate::auth::{ScramKeys, ScramLookup, ScramParameters};

const INVALID: Failure = Failure::Refused(AuthError::InvalidCredentials);

/// `user` may log in with the password `pencil`, its SCRAM proof (RFC 7677's salt), or the
/// token `good-token`; `calls` counts every login the service was asked about.
fn service(calls: Arc<AtomicUsize>) -> impl Authenticator {
    tower::service_fn(move |credentials: Credentials| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let accepted = credentials.user == "user"
                && match &credentials.secret {
                    Secret::Password(password) => password == "pencil",
                    Secret::Token(token) => token == "good-token",
                    #[cfg(feature = "scram")]
                    Secret::Scram(proof) => proof.verify(&ScramKeys::derive(
                        b"pencil",
                        proof.salt(),
                        proof.iterations(),
                    )),
                };
            if accepted {
                Ok(User::new("user"))
            } else {
                Err(AuthError::InvalidCredentials)
            }
        }
    })
}

#[cfg(feature = "scram")]
fn rfc7677_salt() -> Vec<u8> {
    crate::auth::sasl::base64::decode(b"W22ZaJ0SNY7soEsUEjb6gQ==").unwrap()
}

fn mechanisms() -> Mechanisms {
    let mechanisms = Mechanisms::new().oauth();
    #[cfg(feature = "scram")]
    let mechanisms = mechanisms.scram(tower::service_fn(|_: ScramLookup| async {
        Ok::<_, AuthError>(ScramParameters::new(rfc7677_salt(), 4096))
    }));
    mechanisms
}

fn session() -> Arc<Session> {
    Arc::new(Session::new(
        Protocol::Imap,
        "127.0.0.1:50000".parse().unwrap(),
        "127.0.0.1:143".parse().unwrap(),
    ))
}

/// An exchange of `name`, and the counter of its service's calls.
fn new_exchange(name: &str) -> (Exchange<impl Authenticator>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let exchange = Exchange::new(name, &mechanisms(), service(calls.clone()), session())
        .expect("offered mechanism");
    (exchange, calls)
}

fn challenge(step: Step) -> Vec<u8> {
    match step {
        Step::Challenge(challenge) => challenge,
        Step::Done(outcome) => panic!("expected a challenge, got {outcome:?}"),
    }
}

fn done(step: Step) -> Result<User, Failure> {
    match step {
        Step::Done(outcome) => outcome,
        Step::Challenge(challenge) => {
            panic!(
                "expected the end, got {:?}",
                String::from_utf8_lossy(&challenge)
            )
        }
    }
}

#[test]
fn only_offered_mechanisms_start() {
    let calls = Arc::new(AtomicUsize::new(0));
    let plain_only = Mechanisms::new().without_login();
    for name in ["plain", "PLAIN", "Plain"] {
        assert!(Exchange::new(name, &plain_only, service(calls.clone()), session()).is_some());
    }
    for name in [
        "LOGIN",
        "SCRAM-SHA-256",
        "OAUTHBEARER",
        "XOAUTH2",
        "CRAM-MD5",
        "",
    ] {
        assert!(
            Exchange::new(name, &plain_only, service(calls.clone()), session()).is_none(),
            "{name}"
        );
    }
    for name in ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "GSSAPI"] {
        assert!(Exchange::new(name, &mechanisms(), service(calls.clone()), session()).is_none());
    }
}

#[tokio::test]
async fn plain_inline_or_after_an_empty_challenge() {
    let (mut inline, calls) = new_exchange("PLAIN");
    let user = done(inline.start(Some(b"\0user\0pencil".to_vec())).await).unwrap();
    assert_eq!(user.name, "user");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let (mut asked, _) = new_exchange("PLAIN");
    assert_eq!(challenge(asked.start(None).await), b"");
    let wrong = done(asked.respond(b"user\0user\0guess".to_vec()).await);
    assert_eq!(wrong.unwrap_err(), INVALID);
}

#[tokio::test]
async fn plain_refuses_malformed_and_impersonation_without_asking() {
    let (mut malformed, calls) = new_exchange("PLAIN");
    assert_eq!(
        done(malformed.start(Some(b"user\0pencil".to_vec())).await).unwrap_err(),
        Failure::Malformed("Invalid SASL PLAIN response")
    );
    let (mut other, _) = new_exchange("PLAIN");
    assert_eq!(
        done(other.start(Some(b"root\0user\0pencil".to_vec())).await).unwrap_err(),
        INVALID
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn login_asks_user_name_then_password() {
    let (mut exchange, calls) = new_exchange("LOGIN");
    assert_eq!(challenge(exchange.start(None).await), b"Username:");
    assert_eq!(
        challenge(exchange.respond(b"user".to_vec()).await),
        b"Password:"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "nothing to check before the password"
    );
    let user = done(exchange.respond(b"pencil".to_vec()).await).unwrap();
    assert_eq!(user.name, "user");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn login_takes_the_user_name_as_initial_response() {
    let (mut exchange, _) = new_exchange("LOGIN");
    assert_eq!(
        challenge(exchange.start(Some(b"user".to_vec())).await),
        b"Password:"
    );
    let wrong = done(exchange.respond(b"pencil2".to_vec()).await);
    assert_eq!(wrong.unwrap_err(), INVALID);
}

#[tokio::test]
async fn login_refuses_empty_and_non_utf8_responses() {
    for bad in [&b""[..], b"\xff\xfe"] {
        let (mut exchange, calls) = new_exchange("LOGIN");
        challenge(exchange.start(None).await);
        assert_eq!(
            done(exchange.respond(bad.to_vec()).await).unwrap_err(),
            Failure::Malformed("Invalid SASL LOGIN response")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }
}

#[tokio::test]
async fn no_step_after_the_end() {
    let (mut exchange, _) = new_exchange("PLAIN");
    done(exchange.start(Some(b"\0user\0pencil".to_vec())).await).unwrap();
    assert_eq!(
        done(exchange.respond(b"\0user\0pencil".to_vec()).await).unwrap_err(),
        Failure::Malformed("Authentication already ended")
    );
}

#[tokio::test]
async fn the_challenge_count_is_bounded() {
    let (mut exchange, _) = new_exchange("LOGIN");
    for _ in 0..MAX_CHALLENGES {
        challenge(exchange.challenge(Vec::new()));
    }
    assert_eq!(
        done(exchange.challenge(Vec::new())).unwrap_err(),
        Failure::Malformed("Too many authentication steps")
    );
    assert!(matches!(exchange.mechanism, Mechanism::Ended));
}

#[tokio::test]
async fn oauthbearer_accepts_a_good_token() {
    let (mut exchange, calls) = new_exchange("OAUTHBEARER");
    assert_eq!(challenge(exchange.start(None).await), b"");
    let message = b"n,a=user,\x01host=localhost\x01port=143\x01auth=Bearer good-token\x01\x01";
    assert_eq!(
        done(exchange.respond(message.to_vec()).await).unwrap().name,
        "user"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn oauthbearer_reports_a_refused_token_then_fails() {
    let (mut exchange, calls) = new_exchange("OAUTHBEARER");
    let message = b"n,a=user,\x01auth=Bearer bad-token\x01\x01";
    let error = challenge(exchange.start(Some(message.to_vec())).await);
    let json: serde_json::Value = serde_json::from_slice(&error).unwrap();
    assert_eq!(json["status"], "invalid_token");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        done(exchange.respond(b"\x01".to_vec()).await).unwrap_err(),
        INVALID
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the dummy response checks nothing"
    );
}

#[tokio::test]
async fn a_password_is_no_token() {
    let (mut exchange, _) = new_exchange("XOAUTH2");
    let message = b"user=user\x01auth=Bearer pencil\x01\x01";
    let error = challenge(exchange.start(Some(message.to_vec())).await);
    let json: serde_json::Value = serde_json::from_slice(&error).unwrap();
    assert_eq!(json["status"], "401");
    assert_eq!(
        done(exchange.respond(Vec::new()).await).unwrap_err(),
        INVALID
    );
}

#[tokio::test]
async fn xoauth2_accepts_a_good_token() {
    let (mut exchange, _) = new_exchange("XOAUTH2");
    let message = b"user=user\x01auth=Bearer good-token\x01\x01";
    assert_eq!(
        done(exchange.start(Some(message.to_vec())).await)
            .unwrap()
            .name,
        "user"
    );
}

#[tokio::test]
async fn malformed_token_messages_fail_without_asking() {
    let (mut exchange, calls) = new_exchange("OAUTHBEARER");
    let step = exchange.start(Some(b"n,,\x01auth=Bearer good-token\x01\x01".to_vec()));
    assert!(matches!(done(step.await), Err(Failure::Malformed(_))));
    let (mut exchange, _) = new_exchange("XOAUTH2");
    let step = exchange.start(Some(
        b"user=user\x01auth=Bearer good token\x01\x01".to_vec(),
    ));
    assert!(matches!(done(step.await), Err(Failure::Malformed(_))));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[cfg(feature = "scram")]
mod scram {
    use super::*;

    const CLIENT_FIRST: &[u8] = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &[u8] =
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
        p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    /// An exchange with RFC 7677's server nonce.
    fn rfc_exchange() -> (Exchange<impl Authenticator>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let exchange = Exchange::scram_with_nonce(
            &mechanisms(),
            service(calls.clone()),
            session(),
            SERVER_NONCE,
        );
        (exchange, calls)
    }

    /// The client-final-message of RFC 7677 with the proof replaced.
    fn with_proof(proof: &str) -> Vec<u8> {
        let text = std::str::from_utf8(CLIENT_FINAL).unwrap();
        let (without_proof, _) = text.rsplit_once(",p=").unwrap();
        format!("{without_proof},p={proof}").into_bytes()
    }

    #[tokio::test]
    async fn rfc7677_example_exchange() {
        let (mut exchange, calls) = rfc_exchange();
        assert_eq!(challenge(exchange.start(None).await), b"");
        assert_eq!(
            challenge(exchange.respond(CLIENT_FIRST.to_vec()).await),
            SERVER_FIRST
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0, "the look-up is no login");
        assert_eq!(
            challenge(exchange.respond(CLIENT_FINAL.to_vec()).await),
            SERVER_FINAL
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            done(exchange.respond(Vec::new()).await).unwrap().name,
            "user"
        );
    }

    #[tokio::test]
    async fn the_client_first_message_may_be_the_initial_response() {
        let (mut exchange, _) = rfc_exchange();
        assert_eq!(
            challenge(exchange.start(Some(CLIENT_FIRST.to_vec())).await),
            SERVER_FIRST
        );
    }

    #[tokio::test]
    async fn a_wrong_proof_is_a_failed_login_the_service_saw() {
        let (mut exchange, calls) = rfc_exchange();
        challenge(exchange.start(Some(CLIENT_FIRST.to_vec())).await);
        let wrong = with_proof("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_eq!(done(exchange.respond(wrong).await).unwrap_err(), INVALID);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "counted by the layers");
    }

    #[tokio::test]
    async fn a_replayed_final_message_fails_with_a_fresh_nonce() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut exchange = Exchange::new(
            "SCRAM-SHA-256",
            &mechanisms(),
            service(calls.clone()),
            session(),
        )
        .unwrap();
        let server_first = challenge(exchange.start(Some(CLIENT_FIRST.to_vec())).await);
        assert_ne!(server_first, SERVER_FIRST, "the server nonce is random");
        assert!(server_first.starts_with(b"r=rOprNGfwEbeRWgbNEkqO"));
        assert_eq!(
            done(exchange.respond(CLIENT_FINAL.to_vec()).await).unwrap_err(),
            INVALID
        );
    }

    #[tokio::test]
    async fn hostile_final_messages_fail_at_once() {
        let cases: [(Vec<u8>, &str); 6] = [
            (with_proof("not base64!"), "Invalid SCRAM message"),
            (
                with_proof("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ=="),
                "Invalid SCRAM message",
            ),
            (b"c=biws,r=x".to_vec(), "Invalid SCRAM message"),
            (b"\xff".to_vec(), "Invalid SCRAM message"),
            (
                b"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA".to_vec(),
                "SCRAM channel binding does not match",
            ),
            (
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,c=biws,p=AAAA".to_vec(),
                "Invalid SCRAM message",
            ),
        ];
        for (message, reason) in cases {
            let (mut exchange, calls) = rfc_exchange();
            challenge(exchange.start(Some(CLIENT_FIRST.to_vec())).await);
            assert_eq!(
                done(exchange.respond(message.clone()).await).unwrap_err(),
                Failure::Malformed(reason),
                "{:?}",
                String::from_utf8_lossy(&message)
            );
            assert_eq!(calls.load(Ordering::SeqCst), 0);
        }
    }

    #[tokio::test]
    async fn hostile_first_messages_fail_at_once() {
        let cases: [(&[u8], Failure); 5] = [
            (
                b"p=tls-unique,,n=user,r=abc",
                Failure::Malformed("Channel binding is not supported"),
            ),
            (
                b"n,,m=ext,n=user,r=abc",
                Failure::Malformed("SCRAM extensions are not supported"),
            ),
            (b"n,,n=user", Failure::Malformed("Invalid SCRAM message")),
            (b"x,,n=user,r=abc", Failure::Malformed("Invalid GS2 header")),
            (b"n,a=admin,n=user,r=abc", INVALID),
        ];
        for (message, failure) in cases {
            let (mut exchange, _) = rfc_exchange();
            assert_eq!(
                done(exchange.start(Some(message.to_vec())).await).unwrap_err(),
                failure,
                "{:?}",
                String::from_utf8_lossy(message)
            );
        }
    }

    #[tokio::test]
    async fn y_flag_and_matching_authzid_are_accepted() {
        let (mut exchange, _) = rfc_exchange();
        let first = b"y,a=user,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = challenge(exchange.start(Some(first.to_vec())).await);
        assert_eq!(server_first, SERVER_FIRST);
    }

    #[tokio::test]
    async fn the_last_response_must_be_empty() {
        let (mut exchange, calls) = rfc_exchange();
        challenge(exchange.start(Some(CLIENT_FIRST.to_vec())).await);
        challenge(exchange.respond(CLIENT_FINAL.to_vec()).await);
        assert_eq!(
            done(exchange.respond(b"more".to_vec()).await).unwrap_err(),
            Failure::Malformed("SCRAM expects an empty last response")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_service_that_does_not_verify_cannot_log_anyone_in() {
        let lenient = tower::service_fn(|c: Credentials| async move { Ok(User::new(c.user)) });
        let mut exchange =
            Exchange::scram_with_nonce(&mechanisms(), lenient, session(), SERVER_NONCE);
        challenge(exchange.start(Some(CLIENT_FIRST.to_vec())).await);
        let forged = with_proof("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_eq!(
            done(exchange.respond(forged).await).unwrap_err(),
            Failure::Refused(AuthError::Unavailable)
        );
    }
}
