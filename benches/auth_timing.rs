//! How long `PasswdFile` takes to refuse an unknown user and a wrong password, for two slow
//! schemes: the two must be indistinguishable (issue 13). The tests prove the same work is
//! done (`passwd_file::timing_tests`); this measures it, and prints the ratio of the means.
//!
//! ```text
//! cargo bench -p tower-mail --bench auth_timing
//! ```
//!
//! Each file has three users of the measured scheme and one of another, so the unknown user is
//! checked against the decoy the most common entries give.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;
use tower_mail::auth::{Credentials, PasswdFile};

/// `(name, a passwd-file line's password field)`: Dovecot's own hashes from the test fixture,
/// SHA512-CRYPT (5,000 rounds) and BLF-CRYPT (cost 5).
const SCHEMES: [(&str, &str); 2] = [
    (
        "sha512-crypt",
        "{SHA512-CRYPT}$6$cyOwXIr5hoq1cxTB$0QqIkPyoAZk/sJWH.Ey0K6ZULgj8lplKo6PCWX6svBWRnIJZLuOHhKrxFdxSjTN/GzGYJvn4qr9JU2shPEKo60",
    ),
    (
        "blf-crypt",
        "{BLF-CRYPT}$2y$05$pt8/6OZkAwWb3XkchCVSzu2i8c4jP30IPTy1A6tK6Tmc7N4Ax4GFa",
    ),
];

/// Refusals of each kind taken in turns for the printed ratio.
const INTERLEAVED_ROUNDS: u32 = 500;

fn users(field: &str) -> PasswdFile {
    PasswdFile::parse(&format!(
        "alice:{field}\nbob:{field}\ncarol:{field}\nother:{{SSHA}}tv3nVtC/qLXSUzmIaVxIjZgEpRKzJxa5\n"
    ))
}

/// Mean time of `iters` refused logins of `user`.
fn refusals(
    runtime: &tokio::runtime::Runtime,
    users: &PasswdFile,
    user: &str,
    iters: u64,
) -> Duration {
    let started = Instant::now();
    for _ in 0..iters {
        let answer = runtime.block_on(
            users
                .clone()
                .oneshot(Credentials::new(black_box(user), "not the password")),
        );
        assert!(answer.is_err());
    }
    started.elapsed()
}

fn unknown_vs_wrong(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (scheme, field) in SCHEMES {
        let users = users(field);
        let mut group = c.benchmark_group(format!("refusal/{scheme}"));
        for (case, user) in [("wrong_password", "bob"), ("unknown_user", "nobody")] {
            group.bench_function(case, |b| {
                b.iter_custom(|iters| refusals(&runtime, &users, user, iters))
            });
        }
        group.finish();
        // Criterion's two runs are seconds apart, and a shared machine's load drifts in
        // between: the ratio comes from refusals taken in turns instead.
        let (mut wrong, mut unknown) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..INTERLEAVED_ROUNDS {
            wrong += refusals(&runtime, &users, "bob", 1);
            unknown += refusals(&runtime, &users, "nobody", 1);
        }
        let rounds = f64::from(INTERLEAVED_ROUNDS);
        println!(
            "{scheme}, {INTERLEAVED_ROUNDS} refusals of each in turns: wrong password {:.0} µs, \
             unknown user {:.0} µs (means), ratio unknown/wrong {:.3}",
            wrong.as_secs_f64() / rounds * 1e6,
            unknown.as_secs_f64() / rounds * 1e6,
            unknown.as_secs_f64() / wrong.as_secs_f64()
        );
    }
}

criterion_group! {
    name = benches;
    // Hashes take milliseconds: fewer samples than the default keep a run under a minute.
    config = Criterion::default().sample_size(30);
    targets = unknown_vs_wrong
}
criterion_main!(benches);
