//! What every stage of a run shares, handed to each as the engine builds it. A leaf: the stages
//! import it without importing the engine that builds them.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::account::Accounts;
use crate::clock::Clock;

/// The handles every stage of a run holds.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// Where every ending is recorded.
    pub accounts: Arc<Accounts>,
    /// The run's clock.
    pub clock: Clock,
    /// Cancelled when a drain timeout runs out: every stage then ends or spills what it holds
    /// ([`crate::engine`], "Stopping").
    pub abort: CancellationToken,
    /// The master seed: each stage draws its own named stream from it ([`crate::seed::stream`]).
    pub seed: u64,
}
