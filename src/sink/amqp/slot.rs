//! One cached client per sink, shared by its concurrent attempts: opened on first use, and
//! dropped when an attempt sees the connection fail, so the next attempt reconnects. A generation
//! number keeps a late failure of an old client from dropping a newer one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::delivery::classify::AttemptResult;
use tokio::sync::Mutex;

/// A client opened with key `key` (index into the endpoint's keys; 0 for identities).
pub(crate) struct Opened<C> {
    pub(crate) key: usize,
    pub(crate) generation: u64,
    pub(crate) client: Arc<C>,
}

impl<C> Clone for Opened<C> {
    fn clone(&self) -> Self {
        Opened {
            key: self.key,
            generation: self.generation,
            client: self.client.clone(),
        }
    }
}

pub(crate) struct Slot<C> {
    current: Mutex<(u64, Option<Opened<C>>)>,
}

impl<C> Slot<C> {
    pub(crate) fn new() -> Self {
        Slot {
            current: Mutex::new((0, None)),
        }
    }

    /// The client for `key`, opening one (and replacing a client for another key) if needed.
    pub(crate) async fn get<E, F, Fut>(&self, key: usize, open: F) -> Result<Opened<C>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, E>>,
    {
        let mut current = self.current.lock().await;
        if let Some(opened) = &current.1
            && opened.key == key
        {
            return Ok(opened.clone());
        }
        current.1 = None;
        let client = open().await?;
        current.0 += 1;
        let opened = Opened {
            key,
            generation: current.0,
            client: Arc::new(client),
        };
        current.1 = Some(opened.clone());
        Ok(opened)
    }

    /// Forgets the client of `generation` (its connection failed), if it is still the current one.
    pub(crate) async fn discard(&self, generation: u64) {
        let mut current = self.current.lock().await;
        if current
            .1
            .as_ref()
            .is_some_and(|o| o.generation == generation)
        {
            current.1 = None;
        }
    }
}

/// Key indices to try: the preferred one first, then the others (ADT uses the secondary
/// connection string when the primary is refused).
pub(crate) fn key_order(preferred: usize, count: usize) -> impl Iterator<Item = usize> {
    let first = preferred.min(count.saturating_sub(1));
    (first..count).chain(0..first)
}

/// How long a send may wait for its settlement before the connection is checked.
const FIRST_CHECK: Duration = Duration::from_millis(500);
/// The longest pause between checks.
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// A check that takes longer than this finds the connection dead.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits for `send`, checking with `alive` while it waits whether the connection still stands.
///
/// `fe2o3-amqp` keeps an unsettled delivery's completion in the link, not in the connection, so
/// a send whose connection dies waits forever instead of failing. The worker's attempt timeout
/// would end it, but as a timeout; checking the connection reports a dropped connection as
/// `ConnectionError`, as soon as it is seen. A transfer the service is merely slow to settle
/// (the connection answers the check) is left to the worker's timeout.
pub(crate) async fn unless_connection_lost<S, A, AFut>(send: S, alive: A) -> AttemptResult
where
    S: Future<Output = AttemptResult>,
    A: Fn() -> AFut,
    AFut: Future<Output = bool>,
{
    let mut send = std::pin::pin!(send);
    let mut interval = FIRST_CHECK;
    loop {
        tokio::select! {
            result = &mut send => return result,
            () = tokio::time::sleep(interval) => {
                let standing = tokio::time::timeout(CHECK_TIMEOUT, alive()).await.unwrap_or(false);
                if !standing {
                    return AttemptResult::ConnectionError;
                }
                interval = (interval * 2).min(MAX_CHECK_INTERVAL);
            }
        }
    }
}
