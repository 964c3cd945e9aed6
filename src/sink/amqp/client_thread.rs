//! A sink's AMQP client runs on a dedicated OS thread with its own current-thread tokio runtime;
//! `Sink::attempt` hands the work to it over a channel and awaits the answer.
//!
//! On a multi-thread runtime, the `fe2o3-amqp` sender under both sinks intermittently never saw
//! the settlement of a transfer the broker had received (after ~100–150 transfers); on a
//! current-thread runtime it never did. Whatever runtime the caller (the engine's worker) runs
//! on, the client's connection, session, links and sends all live on this one thread.
//!
//! The thread ends when the sink is dropped (the channel closes): its runtime is dropped with it,
//! which cancels sends still in flight, and their attempts answer `ConnectionError`. An attempt
//! whose future is dropped (the worker's timeout) cancels its send on the thread.

use std::future::Future;
use std::io;

use crate::delivery::classify::AttemptResult;
use crate::sink::{Answer, Attempt};
use tokio::sync::{mpsc, oneshot};

type Job<R> = (R, oneshot::Sender<AttemptResult>);

/// The sending half of a client thread: requests of type `R`.
pub(crate) struct ClientThread<R> {
    jobs: mpsc::UnboundedSender<Job<R>>,
}

impl<R: Send + 'static> ClientThread<R> {
    /// Starts a thread named `name` that runs `handle` for each request, concurrently.
    pub(crate) fn spawn<H, Fut>(name: &str, handle: H) -> io::Result<Self>
    where
        H: Fn(R) -> Fut + Send + 'static,
        Fut: Future<Output = AttemptResult> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job<R>>();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some((request, answer)) = queue.recv().await {
                        let send = handle(request);
                        tokio::spawn(async move {
                            let mut answer = answer;
                            tokio::select! {
                                result = send => {
                                    let _ = answer.send(result);
                                }
                                // The attempt was given up (dropped): stop sending.
                                () = answer.closed() => {}
                            }
                        });
                    }
                });
                // Dropping the runtime here cancels what is still in flight.
            })?;
        Ok(ClientThread { jobs })
    }

    /// Hands `request` to the thread; the attempt answers with its result.
    pub(crate) fn attempt(&self, request: R) -> Attempt {
        let (answer, result) = oneshot::channel();
        let queued = self.jobs.send((request, answer)).is_ok();
        Attempt::Pending(Box::pin(async move {
            let result = if queued {
                result.await.unwrap_or(AttemptResult::ConnectionError)
            } else {
                AttemptResult::ConnectionError
            };
            Answer::observed(result)
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn pending(attempt: Attempt) -> std::pin::Pin<Box<dyn Future<Output = Answer> + Send>> {
        match attempt {
            Attempt::Pending(future) => future,
            _ => panic!("a client thread answers later"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_come_back_and_dropping_the_sender_ends_the_thread() {
        let (started, mut starts) = mpsc::unbounded_channel::<()>();
        let thread = ClientThread::spawn("test-client", move |hang: bool| {
            let started = started.clone();
            async move {
                let _ = started.send(());
                if hang {
                    std::future::pending::<()>().await;
                }
                AttemptResult::status(200)
            }
        })
        .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), pending(thread.attempt(false)))
            .await
            .unwrap();
        assert_eq!(answer.result, AttemptResult::status(200));
        assert!(answer.received);
        let stuck = pending(thread.attempt(true));
        // Both requests reached the thread before it is told to end.
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(5), starts.recv())
                .await
                .unwrap()
                .unwrap();
        }
        drop(thread);
        let answer = tokio::time::timeout(Duration::from_secs(5), stuck)
            .await
            .expect("the thread ended and dropped the stuck send");
        assert_eq!(answer.result, AttemptResult::ConnectionError);
        // The handler (and its sender) went with the thread's runtime.
        assert!(
            tokio::time::timeout(Duration::from_secs(5), starts.recv())
                .await
                .unwrap()
                .is_none()
        );
    }
}
