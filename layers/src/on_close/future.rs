use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project::{pin_project, pinned_drop};
use tower_mail::{BoxError, CloseReason, CloseReport, Session};

use super::CloseHook;

/// Response future of [`OnClose`](super::OnClose), and of every layer that must see each
/// connection end exactly once (logging, metrics). Its drop guard calls the hook if the future
/// is dropped before it finished.
#[pin_project(PinnedDrop)]
pub struct OnCloseFuture<Fut, H: CloseHook> {
    #[pin]
    inner: Fut,
    // `Some` until the hook has run: taking it is what makes the hook run exactly once.
    pending: Option<(Arc<Session>, H)>,
}

impl<Fut, H: CloseHook> OnCloseFuture<Fut, H> {
    /// Run `inner`, reporting its end to `hook` exactly once.
    pub fn new(inner: Fut, session: Arc<Session>, hook: H) -> Self {
        OnCloseFuture {
            inner,
            pending: Some((session, hook)),
        }
    }
}

/// Run the hook, if it has not run, with the report `report` makes (or lends: the report a
/// session returned is lent, not copied, as it goes on to the caller).
fn run_hook<'r, H: CloseHook>(
    pending: &mut Option<(Arc<Session>, H)>,
    report: impl FnOnce(&Session) -> Cow<'r, CloseReport>,
) {
    if let Some((session, hook)) = pending.take() {
        let report = report(&session);
        if std::panic::catch_unwind(AssertUnwindSafe(|| hook.on_close(&session, &report))).is_err()
        {
            tracing::error!(session_id = %session.id(), "on_close hook panicked");
        }
    }
}

impl<Fut, E, H> Future for OnCloseFuture<Fut, H>
where
    Fut: Future<Output = Result<CloseReport, E>>,
    E: Into<BoxError>,
    H: CloseHook,
{
    type Output = Result<CloseReport, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(report))) => {
                run_hook(this.pending, |_| Cow::Borrowed(&report));
                Poll::Ready(Ok(report))
            }
            Ok(Poll::Ready(Err(err))) => {
                let err = err.into();
                run_hook(this.pending, |session| {
                    Cow::Owned(CloseReport::from_error(session, &err))
                });
                Poll::Ready(Err(err))
            }
            Err(panic) => {
                run_hook(this.pending, |session| {
                    Cow::Owned(CloseReport::new(session, CloseReason::Panic))
                });
                std::panic::resume_unwind(panic)
            }
        }
    }
}

#[pinned_drop]
impl<Fut, H: CloseHook> PinnedDrop for OnCloseFuture<Fut, H> {
    fn drop(self: Pin<&mut Self>) {
        run_hook(self.project().pending, |session| {
            Cow::Owned(CloseReport::dropped(session))
        });
    }
}
