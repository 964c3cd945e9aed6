//! One cached client per sink, shared by its concurrent attempts, and the attempt logic both
//! AMQP sinks share ([`Slot::attempt`]): open on first use with the key in force, send, and on a
//! refusal move to the endpoint's next key (ADT uses the secondary connection string when the
//! primary is refused).
//!
//! A client whose connection failed, or whose key was refused, is retired: the next attempt
//! opens a fresh one. Attempts still running on the retired client finish on it (a refusal is
//! each transfer's own answer, not a reason to cut the others off), and the client is closed
//! when the last of them lets go of it. A generation number keeps a late failure of an old
//! client from retiring a newer one, so concurrent attempts that all see the primary key
//! refused move the endpoint to the secondary once, not back and forth. Attempts that waited for
//! an open that failed take its answer rather than opening again, so an endpoint reconnects
//! once per round of attempts, not once per waiting attempt.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::delivery::classify::AttemptResult;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// How long closing a retired client may take before it is left to the OS.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection-owning client that can be closed.
pub(crate) trait Closable: Send + Sync + 'static {
    /// Closes the connection (best effort: errors are of no use to anyone by then).
    fn close(self) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// A client in use: closed (in the background, on the current runtime) when dropped.
pub(crate) struct Client<C: Closable> {
    client: Option<C>,
    /// Cancelled when the client's key is refused: attempts still waiting on it give up at once
    /// and move to the next key (an Event Hubs producer authorizes concurrent sends one after
    /// another, so 64 attempts on a refused key would otherwise take 64 round trips to learn it).
    refused: CancellationToken,
}

impl<C: Closable> std::ops::Deref for Client<C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.client.as_ref().expect("present until dropped")
    }
}

impl<C: Closable> Drop for Client<C> {
    fn drop(&mut self) {
        let (Some(client), Ok(runtime)) =
            (self.client.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(async move {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, client.close()).await;
        });
    }
}

/// A client opened with key `key` (index into the endpoint's keys; 0 for identities).
struct Opened<C: Closable> {
    key: usize,
    generation: u64,
    client: Arc<Client<C>>,
}

impl<C: Closable> Clone for Opened<C> {
    fn clone(&self) -> Self {
        Opened {
            key: self.key,
            generation: self.generation,
            client: self.client.clone(),
        }
    }
}

struct State<C: Closable> {
    /// The key the next client is opened with.
    key: usize,
    generation: u64,
    current: Option<Opened<C>>,
    /// How many opens have failed, and the last one's answer.
    failed_opens: u64,
    last_failure: AttemptResult,
}

pub(crate) struct Slot<C: Closable> {
    /// How many keys the endpoint has (primary, secondary; 1 for identities).
    keys: usize,
    state: Mutex<State<C>>,
    /// `State::failed_opens`, readable without the lock.
    failed_opens: AtomicU64,
}

fn refused(result: AttemptResult) -> bool {
    matches!(result, AttemptResult::Status { status: 401, .. })
}

impl<C: Closable> Slot<C> {
    /// An empty slot for an endpoint with `keys` keys.
    pub(crate) fn new(keys: usize) -> Self {
        Slot {
            keys: keys.max(1),
            state: Mutex::new(State {
                key: 0,
                generation: 0,
                current: None,
                failed_opens: 0,
                last_failure: AttemptResult::ConnectionError,
            }),
            failed_opens: AtomicU64::new(0),
        }
    }

    /// One attempt: `send` on the current client (opened with `open(key)` if there is none),
    /// trying each of the endpoint's keys at most once while the answer is a refusal (401).
    pub(crate) async fn attempt<O, OFut, S, SFut>(&self, open: O, send: S) -> AttemptResult
    where
        O: Fn(usize) -> OFut,
        OFut: Future<Output = Result<C, AttemptResult>>,
        S: Fn(Arc<Client<C>>) -> SFut,
        SFut: Future<Output = AttemptResult>,
    {
        let mut result = AttemptResult::status(401);
        for _ in 0..self.keys {
            result = match self.current(&open).await {
                Ok(opened) => {
                    let result = tokio::select! {
                        biased;
                        result = send(opened.client.clone()) => result,
                        () = opened.client.refused.cancelled() => AttemptResult::status(401),
                    };
                    if refused(result) || result == AttemptResult::ConnectionError {
                        self.retire(&opened, result).await;
                    }
                    result
                }
                Err(result) => result,
            };
            if !refused(result) {
                break;
            }
        }
        result
    }

    /// The current client, opening one with the key in force if there is none. A refused open
    /// moves to the next key. Attempts that waited while an open failed take its answer instead
    /// of opening again: a broker that is down costs one connection try per round of attempts,
    /// not one per waiting attempt.
    async fn current<O, OFut>(&self, open: O) -> Result<Opened<C>, AttemptResult>
    where
        O: Fn(usize) -> OFut,
        OFut: Future<Output = Result<C, AttemptResult>>,
    {
        let failures_seen = self.failed_opens.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if let Some(opened) = &state.current {
            return Ok(opened.clone());
        }
        if state.failed_opens != failures_seen {
            return Err(state.last_failure);
        }
        let key = state.key;
        match open(key).await {
            Ok(client) => {
                state.generation += 1;
                let opened = Opened {
                    key,
                    generation: state.generation,
                    client: Arc::new(Client {
                        client: Some(client),
                        refused: CancellationToken::new(),
                    }),
                };
                state.current = Some(opened.clone());
                Ok(opened)
            }
            Err(result) => {
                if refused(result) {
                    state.key = (key + 1) % self.keys;
                }
                state.failed_opens += 1;
                state.last_failure = result;
                self.failed_opens
                    .store(state.failed_opens, Ordering::Release);
                Err(result)
            }
        }
    }

    /// Retires `opened` after `result` (a refusal also moves to the next key), unless a newer
    /// client has already replaced it.
    async fn retire(&self, opened: &Opened<C>, result: AttemptResult) {
        if refused(result) {
            opened.client.refused.cancel();
        }
        let mut state = self.state.lock().await;
        if state
            .current
            .as_ref()
            .is_some_and(|current| current.generation == opened.generation)
        {
            state.current = None;
            if refused(result) {
                state.key = (opened.key + 1) % self.keys;
            }
        }
    }
}
