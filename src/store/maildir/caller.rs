//! Whether the async caller of a blocking store operation still waits for its answer.
//!
//! File work runs on tokio's blocking pool, where a dropped future cannot stop it. Most of it
//! is short, but a wait for a lock another program holds may last minutes (Dovecot's stale
//! time); when the session that asked is gone (its client left, the server's hard stop), that
//! wait would hold a blocking thread, and the process's exit, for nothing. So the wait asks
//! [`is_gone`] between its retries and gives up.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    /// The flag of the operation running on this blocking thread, if any.
    static CURRENT: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Run `op` on the blocking pool, telling it through [`is_gone`] when this future is dropped.
pub(super) async fn on_blocking_pool<T: Send + 'static>(
    op: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let gone = Arc::new(AtomicBool::new(false));
    let _watch = SetOnDrop(gone.clone());
    tokio::task::spawn_blocking(move || {
        CURRENT.with(|current| *current.borrow_mut() = Some(gone));
        let _clear = ClearOnDrop;
        op()
    })
    .await
}

/// Whether the caller of the operation running on this thread has stopped waiting. False
/// outside [`on_blocking_pool`].
pub(super) fn is_gone() -> bool {
    CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .is_some_and(|gone| gone.load(Ordering::Relaxed))
    })
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Clears the thread's flag however the operation ends (a panic included): the pool runs
/// other work on this thread next.
struct ClearOnDrop;

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        CURRENT.with(|current| current.borrow_mut().take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_operation_learns_that_its_caller_left() {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let call = on_blocking_pool(move || {
            let before = is_gone();
            started_tx.send(()).unwrap();
            // Waits as a lock wait does, asking between retries.
            while !is_gone() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            done_tx.send(before).unwrap();
        });
        let call = tokio::spawn(call);
        started_rx.await.unwrap();
        call.abort();
        let was_gone_at_start = done_rx
            .await
            .expect("the operation ends once its caller left");
        assert!(!was_gone_at_start);
    }

    #[tokio::test]
    async fn a_finished_operation_leaves_the_thread_clean() {
        let seen = on_blocking_pool(is_gone).await.unwrap();
        assert!(!seen);
        assert!(!is_gone(), "outside the pool there is no caller to lose");
    }
}
