//! Noticing a dead connection in every wait: token exchange, link attach, settlement.
//!
//! `fe2o3-amqp` keeps a pending CBS answer, a link attach and an unsettled transfer in the link,
//! not in the connection: when the socket is cut, each of those waits forever. So every wait on a
//! connection goes through its [`Watch`], and one watcher task per connection checks, while
//! something waits and nothing on the connection has answered for [`QUIET`], whether the
//! connection still stands (by beginning and ending a probe session on it, which fails at once
//! on a connection whose socket is gone, and within [`PROBE_TIMEOUT`] on one that stopped
//! answering). A failed check ends every wait on that connection with `ConnectionError` at once,
//! so the endpoint reconnects once, not once per waiting attempt.
//!
//! The policy ([`probe_due`]) is a pure function: at most one check per connection per
//! [`QUIET`], and none while answers keep arriving (a busy connection is alive), so a healthy
//! endpoint under load is never probed. A cut is noticed within `QUIET` + [`TICK`] of the last
//! answer (0.9 s), plus the probe's own failure.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a connection may wait without any answer before it is checked.
pub(crate) const QUIET: Duration = Duration::from_millis(800);
/// How often the watcher looks.
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// A check that takes longer than this finds the connection dead.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether to check the connection now: something waits, and neither an answer nor a check has
/// been seen for [`QUIET`].
pub(crate) fn probe_due(waiting: usize, since_last_sign_of_life: Duration) -> bool {
    waiting > 0 && since_last_sign_of_life >= QUIET
}

/// The waits on one connection and whether it has been found dead.
pub(crate) struct Watch {
    dead: CancellationToken,
    waiting: AtomicUsize,
    /// Milliseconds from `started` to the last answer, check or first wait.
    last_sign_of_life: AtomicU64,
    started: Instant,
    probes: AtomicU64,
}

/// What a watched wait gives when its connection is found dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dead;

impl Watch {
    pub(crate) fn new() -> Self {
        Watch {
            dead: CancellationToken::new(),
            waiting: AtomicUsize::new(0),
            last_sign_of_life: AtomicU64::new(0),
            started: Instant::now(),
            probes: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn alive_now(&self) {
        self.last_sign_of_life
            .fetch_max(self.now_ms(), Ordering::Relaxed);
    }

    /// Whether the connection has been found dead.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.is_cancelled()
    }

    /// How many checks the watcher has made.
    #[cfg(test)]
    pub(crate) fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    /// Waits for `wait`, unless the connection is found dead first.
    pub(crate) async fn wait<T>(&self, wait: impl Future<Output = T>) -> Result<T, Dead> {
        if self.is_dead() {
            return Err(Dead);
        }
        // A connection that was idle is not quiet: its quiet time starts with this wait.
        if self.waiting.fetch_add(1, Ordering::AcqRel) == 0 {
            self.alive_now();
        }
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _waiting = Waiting(&self.waiting);
        tokio::select! {
            biased;
            () = self.dead.cancelled() => Err(Dead),
            value = wait => {
                self.alive_now();
                Ok(value)
            }
        }
    }

    /// Checks the connection with `probe` whenever [`probe_due`] says so, until a check fails
    /// (then every wait ends `Dead`) or the task is aborted (its connection is closed).
    pub(crate) async fn run<P, PFut>(self: Arc<Self>, probe: P)
    where
        P: Fn() -> PFut,
        PFut: Future<Output = bool>,
    {
        loop {
            tokio::time::sleep(TICK).await;
            let since = self
                .now_ms()
                .saturating_sub(self.last_sign_of_life.load(Ordering::Relaxed));
            if !probe_due(
                self.waiting.load(Ordering::Acquire),
                Duration::from_millis(since),
            ) {
                continue;
            }
            self.probes.fetch_add(1, Ordering::Relaxed);
            let standing = tokio::time::timeout(PROBE_TIMEOUT, probe())
                .await
                .unwrap_or(false);
            if !standing {
                tracing::debug!("the connection is gone: ending every wait on it");
                self.dead.cancel();
                return;
            }
            self.alive_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_only_while_something_waits_on_a_quiet_connection() {
        assert!(!probe_due(0, Duration::from_secs(60)));
        assert!(!probe_due(5, QUIET - Duration::from_millis(1)));
        assert!(probe_due(1, QUIET));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_check_ends_every_wait_within_a_second() {
        let watch = Arc::new(Watch::new());
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let watcher = tokio::spawn(watch.clone().run({
            let alive = alive.clone();
            move || {
                let alive = alive.load(Ordering::Relaxed);
                async move { alive }
            }
        }));
        // A wait on a connection that answers its checks goes on, checked once per QUIET.
        let held = tokio::time::timeout(
            Duration::from_secs(10),
            watch.wait(std::future::pending::<()>()),
        )
        .await;
        assert!(
            held.is_err(),
            "a slow answer is left to the caller's timeout"
        );
        let probes = watch.probes();
        assert!((10..=13).contains(&probes), "{probes} checks in 10 s");
        // The connection dies: every wait on it ends within a second.
        alive.store(false, Ordering::Relaxed);
        let start = Instant::now();
        let (a, b) = tokio::join!(
            watch.wait(std::future::pending::<()>()),
            watch.wait(std::future::pending::<()>())
        );
        assert_eq!((a, b), (Err(Dead), Err(Dead)));
        assert!(
            start.elapsed() <= Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(watch.wait(async {}).await, Err(Dead), "dead stays dead");
        watcher.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn answers_that_keep_coming_are_never_checked() {
        let watch = Arc::new(Watch::new());
        let watcher = tokio::spawn(watch.clone().run(|| async { false }));
        // 100 waits of 300 ms each, back to back, with another always waiting beside them.
        let background = watch.wait(tokio::time::sleep(Duration::from_secs(30)));
        let foreground = async {
            for _ in 0..100 {
                watch
                    .wait(tokio::time::sleep(Duration::from_millis(300)))
                    .await
                    .unwrap();
            }
        };
        let (background, ()) = tokio::join!(background, foreground);
        assert_eq!(background, Ok(()));
        assert_eq!(watch.probes(), 0);
        watcher.abort();
    }
}
