use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project::{pin_project, pinned_drop};
use tower_mail::{BoxError, CloseReason, CloseReport, Session};

/// Response future of [`OnClose`](super::OnClose). Its drop guard calls the hook if the
/// future is dropped before it finished.
#[pin_project(PinnedDrop)]
pub struct OnCloseFuture<Fut, F>
where
    F: Fn(&Session, &CloseReport),
{
    #[pin]
    inner: Fut,
    // `Some` until the hook has run: taking it is what makes the hook run exactly once.
    pending: Option<(Arc<Session>, F)>,
}

impl<Fut, F: Fn(&Session, &CloseReport)> OnCloseFuture<Fut, F> {
    pub(super) fn new(inner: Fut, session: Arc<Session>, hook: F) -> Self {
        OnCloseFuture {
            inner,
            pending: Some((session, hook)),
        }
    }
}

fn run_hook<F: Fn(&Session, &CloseReport)>(
    pending: &mut Option<(Arc<Session>, F)>,
    report: impl FnOnce(&Session) -> CloseReport,
) {
    if let Some((session, hook)) = pending.take() {
        let report = report(&session);
        if std::panic::catch_unwind(AssertUnwindSafe(|| hook(&session, &report))).is_err() {
            tracing::error!(session_id = %session.id(), "on_close hook panicked");
        }
    }
}

impl<Fut, E, F> Future for OnCloseFuture<Fut, F>
where
    Fut: Future<Output = Result<CloseReport, E>>,
    E: Into<BoxError>,
    F: Fn(&Session, &CloseReport),
{
    type Output = Result<CloseReport, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(report))) => {
                run_hook(this.pending, |_| report.clone());
                Poll::Ready(Ok(report))
            }
            Ok(Poll::Ready(Err(err))) => {
                let err = err.into();
                run_hook(this.pending, |session| {
                    CloseReport::from_error(session, &err)
                });
                Poll::Ready(Err(err))
            }
            Err(panic) => {
                run_hook(this.pending, |session| {
                    CloseReport::new(session, CloseReason::Panic)
                });
                std::panic::resume_unwind(panic)
            }
        }
    }
}

#[pinned_drop]
impl<Fut, F: Fn(&Session, &CloseReport)> PinnedDrop for OnCloseFuture<Fut, F> {
    fn drop(self: Pin<&mut Self>) {
        run_hook(self.project().pending, CloseReport::dropped);
    }
}
