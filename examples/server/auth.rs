//! The authentication stack: the user file wrapped once in the auth policies of `[auth]` and
//! `[layers.auto_ban]`, and that one stack (clones of it) given to the IMAP and the POP3
//! service, so that per-user sessions, failure delays and bans count across both protocols.

use std::time::Duration;

use tower::ServiceBuilder;
use tower_mail::auth::{Authenticator, PasswdFile};
use tower_mail_layers::auth::{
    AutoBanLayer, FailureDelayLayer, UserSessionsLayer, VerifyLimitLayer,
};
use tower_mail_layers::ip_block::IpBlock;

use crate::config;

/// Outermost first, in the order `tower_mail_layers::auth` recommends:
///
/// 1. per-user sessions: counts only logins everything below let through;
/// 2. failure delay: above the verification bound, so a delayed answer holds no slot;
/// 3. auto-ban: below the delay, so the ban falls when the failure is known, not when it is
///    answered;
/// 4. verification bound: right over the password hashes.
pub fn build(
    users: PasswdFile,
    section: &config::Auth,
    auto_ban: AutoBanLayer<IpBlock>,
) -> Result<impl Authenticator, String> {
    if !section.redis.is_empty() {
        return Err(
            "auth.redis: sharing per-user counts and failure counters through Redis is not \
             supported yet; remove the key or leave it empty"
                .into(),
        );
    }
    let verify = match section.max_concurrent_verifications {
        0 => VerifyLimitLayer::per_core(),
        n => VerifyLimitLayer::new(n),
    };
    let delay = FailureDelayLayer::new()
        .base(Duration::from_millis(section.failure_delay_ms))
        .max(Duration::from_millis(
            section.failure_delay_max_ms.max(section.failure_delay_ms),
        ));
    Ok(ServiceBuilder::new()
        .layer(UserSessionsLayer::new(section.max_sessions_per_user))
        .layer(delay)
        .layer(auto_ban)
        .layer(verify)
        .service(users))
}
