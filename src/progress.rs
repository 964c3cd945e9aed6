//! The live progress display of a real-time run on a terminal: events/s, and per endpoint
//! delivered, retrying and dead-lettered, redrawn from the run's counters four times a second.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::account::Accounts;
use crate::clock::Clock;

/// A running display.
pub struct Progress {
    done: CancellationToken,
    task: JoinHandle<()>,
}

impl Progress {
    /// Stops redrawing and clears the display (the summary table follows).
    pub async fn finish(self) {
        self.done.cancel();
        let _ = self.task.await;
    }
}

/// Starts the display.
pub fn spawn(accounts: Arc<Accounts>, clock: Clock) -> Progress {
    let done = CancellationToken::new();
    let stop = done.clone();
    let task = tokio::spawn(async move {
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
        let style = ProgressStyle::with_template("{prefix:<24} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let header = bars.add(
            ProgressBar::new_spinner()
                .with_style(style.clone())
                .with_prefix("twinroute"),
        );
        let endpoints: Vec<ProgressBar> = accounts
            .endpoint_names()
            .iter()
            .map(|name| {
                bars.add(
                    ProgressBar::new_spinner()
                        .with_style(style.clone())
                        .with_prefix(name.clone()),
                )
            })
            .collect();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let (mut last_generated, mut last_at) = (0u64, clock.elapsed());
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => break,
            }
            let (generated, now) = (accounts.generated.load(Relaxed), clock.elapsed());
            let seconds = (now - last_at).as_secs_f64().max(1e-3);
            let rate = (generated - last_generated.min(generated)) as f64 / seconds;
            (last_generated, last_at) = (generated, now);
            header.set_message(format!(
                "{:>6.1} s  {generated} events generated, {rate:.0}/s",
                now.as_secs_f64()
            ));
            for (bar, counters) in endpoints.iter().zip(&accounts.endpoints) {
                bar.set_message(format!(
                    "routed {}  delivered {}  retrying {}  dead-lettered {}  dropped {}",
                    counters.routed.load(Relaxed),
                    counters.delivered.load(Relaxed),
                    counters.retrying.load(Relaxed),
                    counters.dead_lettered.load(Relaxed),
                    counters.dropped.load(Relaxed),
                ));
            }
        }
        let _ = bars.clear();
    });
    Progress { done, task }
}
