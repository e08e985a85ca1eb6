//! The layer around any policy: on-the-spot and waiting checks, permits, panics, shadow mode.

use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::FutureExt;
use tower::{Service, ServiceExt};
use tower_mail::{
    BoxError, CloseReason, CloseReport, Connection, GENERIC_MESSAGE, Protocol, Reject, Session,
};

use super::{Policy, PolicyLayer};

/// Refuses `192.0.2.66`; counts how it was asked; its permit counts itself while alive.
#[derive(Clone, Default)]
struct Counting {
    on_the_spot: bool,
    panics: bool,
    now_calls: Arc<AtomicUsize>,
    check_calls: Arc<AtomicUsize>,
    live_permits: Arc<AtomicUsize>,
}

struct LivePermit(Arc<AtomicUsize>);

impl Drop for LivePermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Counting {
    fn decide(&self, session: &Session) -> Result<LivePermit, Reject> {
        if self.panics {
            panic!("policy bug");
        }
        if session.remote_addr().ip().to_string() == "192.0.2.66" {
            return Err(Reject::new("Go away"));
        }
        self.live_permits.fetch_add(1, Ordering::SeqCst);
        Ok(LivePermit(self.live_permits.clone()))
    }
}

impl Policy for Counting {
    type Permit = LivePermit;
    type Future = Ready<Result<LivePermit, Reject>>;

    fn name(&self) -> &'static str {
        "counting"
    }

    fn check(&self, session: &Arc<Session>) -> Self::Future {
        self.check_calls.fetch_add(1, Ordering::SeqCst);
        ready(self.decide(session))
    }

    fn check_now(&self, session: &Arc<Session>) -> Option<Result<LivePermit, Reject>> {
        self.now_calls.fetch_add(1, Ordering::SeqCst);
        self.on_the_spot.then(|| self.decide(session))
    }
}

fn connection(ip: &str) -> Connection {
    let (_client, server) = tokio::io::duplex(64);
    Connection::from_parts(
        Arc::new(Session::new(
            Protocol::Pop3,
            format!("{ip}:40000").parse().unwrap(),
            "127.0.0.1:110".parse().unwrap(),
        )),
        tower_mail::Transport::new(server),
    )
}

/// A session service that reports how many permits were alive while it ran.
fn inner(
    live: Arc<AtomicUsize>,
) -> impl Service<Connection, Response = (CloseReport, usize), Error = BoxError, Future: Send> + Clone
{
    tower::service_fn(move |c: Connection| {
        let live = live.load(Ordering::SeqCst);
        ready(Ok::<_, BoxError>((
            CloseReport::new(c.session(), CloseReason::Logout),
            live,
        )))
    })
}

/// Drive one connection through the layer without a runtime: no timer may be needed.
fn serve(policy: &Counting, layer: PolicyLayer<Counting>, ip: &str) -> Result<usize, BoxError> {
    let mut service = tower::Layer::layer(&layer, inner(policy.live_permits.clone()));
    let ready = service.ready().now_or_never().expect("ready at once")?;
    let answer = ready.call(connection(ip)).now_or_never();
    answer
        .expect("decided without waiting")
        .map(|(_, live)| live)
}

fn refusal(err: BoxError) -> Reject {
    *err.downcast::<Reject>().expect("a refusal")
}

#[test]
fn a_policy_that_decides_on_the_spot_is_never_asked_for_a_future() {
    let policy = Counting {
        on_the_spot: true,
        ..Counting::default()
    };
    let layer = PolicyLayer::from_policy(policy.clone());
    // Outside any runtime: a timer here would panic, so none was armed.
    assert_eq!(serve(&policy, layer.clone(), "192.0.2.1").unwrap(), 1);
    let reject = refusal(serve(&policy, layer, "192.0.2.66").unwrap_err());
    assert_eq!(reject.message(), "Go away");
    assert_eq!(reject.layer(), "counting");
    assert_eq!(policy.now_calls.load(Ordering::SeqCst), 2);
    assert_eq!(policy.check_calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        policy.live_permits.load(Ordering::SeqCst),
        0,
        "the permit went with the session"
    );
}

#[tokio::test]
async fn a_policy_without_an_answer_on_the_spot_is_asked_through_its_future() {
    let policy = Counting::default();
    let layer = PolicyLayer::from_policy(policy.clone());
    let mut service = tower::Layer::layer(&layer, inner(policy.live_permits.clone()));
    let (_, live) = service
        .ready()
        .await
        .unwrap()
        .call(connection("192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(live, 1, "the permit is held while the inner service runs");
    let err = service
        .ready()
        .await
        .unwrap()
        .call(connection("192.0.2.66"))
        .await
        .unwrap_err();
    assert_eq!(refusal(err).message(), "Go away");
    assert_eq!(policy.now_calls.load(Ordering::SeqCst), 2);
    assert_eq!(policy.check_calls.load(Ordering::SeqCst), 2);
    assert_eq!(policy.live_permits.load(Ordering::SeqCst), 0);
}

#[test]
fn a_panicking_check_refuses_only_its_connection_with_the_generic_text() {
    for on_the_spot in [true, false] {
        let policy = Counting {
            on_the_spot,
            panics: true,
            ..Counting::default()
        };
        let layer = PolicyLayer::from_policy(policy.clone());
        let reject = refusal(serve(&policy, layer, "192.0.2.1").unwrap_err());
        assert_eq!(reject.message(), GENERIC_MESSAGE);
        assert_eq!(reject.layer(), "counting");
    }
}

#[test]
fn shadow_mode_lets_an_on_the_spot_refusal_in_without_a_permit() {
    let policy = Counting {
        on_the_spot: true,
        ..Counting::default()
    };
    let layer = PolicyLayer::from_policy(policy.clone()).shadow();
    assert_eq!(serve(&policy, layer, "192.0.2.66").unwrap(), 0);
}

#[test]
fn a_function_policy_decides_on_the_spot_under_its_own_name() {
    let refuse_66 = |session: &Session| match session.remote_addr().ip().to_string().as_str() {
        "192.0.2.66" => Err(Reject::new("Go away")),
        "192.0.2.67" => Err(Reject::new("Named").with_layer("its_own")),
        _ => Ok(()),
    };
    // Driven outside any runtime, as above.
    let run = |layer: &PolicyLayer<super::PolicyFn<_>>, ip: &str| {
        let mut service = tower::Layer::layer(layer, inner(Arc::default()));
        let ready = service.ready().now_or_never().expect("ready at once")?;
        ready
            .call(connection(ip))
            .now_or_never()
            .expect("decided without waiting")
            .map(|_| ())
    };
    let layer = PolicyLayer::from_fn("no_66", refuse_66);
    run(&layer, "192.0.2.1").expect("let in");
    let reject = refusal(run(&layer, "192.0.2.66").unwrap_err());
    assert_eq!((reject.message(), reject.layer()), ("Go away", "no_66"));
    let reject = refusal(run(&layer, "192.0.2.67").unwrap_err());
    assert_eq!((reject.message(), reject.layer()), ("Named", "its_own"));
    run(&layer.clone().shadow(), "192.0.2.66").expect("shadow mode lets it in");
    let panicking = PolicyLayer::from_fn("buggy", |_: &Session| -> Result<(), Reject> {
        panic!("policy bug")
    });
    let mut service = tower::Layer::layer(&panicking, inner(Arc::default()));
    let ready = service.ready().now_or_never().unwrap().unwrap();
    let err = ready.call(connection("192.0.2.1")).now_or_never().unwrap();
    let reject = refusal(err.unwrap_err());
    assert_eq!(
        (reject.message(), reject.layer()),
        (GENERIC_MESSAGE, "buggy")
    );
}
