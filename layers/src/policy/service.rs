use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};

use tower_mail::{BoxError, Connection, GENERIC_MESSAGE, Reject};
use tower_service::Service;

use super::layer::Options;
use super::{Policy, PolicyFuture};

/// Checks each connection against a policy before passing it on. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct PolicyService<S, P> {
    pub(super) inner: S,
    pub(super) policy: P,
    pub(super) options: Options,
}

impl<S, P> Service<Connection> for PolicyService<S, P>
where
    S: Service<Connection> + Clone,
    S::Error: Into<BoxError>,
    P: Policy,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = PolicyFuture<S, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, conn: Connection) -> Self::Future {
        let name = self.policy.name();
        let started = std::panic::catch_unwind(AssertUnwindSafe(|| {
            match self.policy.check_now(conn.session()) {
                Some(verdict) => Started::Decided(verdict),
                None => Started::Waiting(self.policy.check(conn.session())),
            }
        }));
        let verdict = match started {
            Ok(Started::Decided(verdict)) => verdict,
            Ok(Started::Waiting(check)) => {
                // The instance that poll_ready made ready must be the one called once the
                // check passes; leave a fresh clone behind for the next poll_ready (tower's
                // usual pattern for async pre-checks). A verdict on the spot needs neither:
                // the ready instance is called right here.
                let fresh = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, fresh);
                return PolicyFuture::checking(check, self.options, name, inner, conn);
            }
            Err(_) => {
                tracing::error!(session_id = %conn.session().id(), layer = name, "policy check panicked");
                Err(Reject::new(GENERIC_MESSAGE).with_layer(name))
            }
        };
        PolicyFuture::after_check(verdict, self.options, name, &mut self.inner, conn)
    }
}

/// How a check began: decided on the spot, or with a future to wait on.
enum Started<T, F> {
    Decided(T),
    Waiting(F),
}
