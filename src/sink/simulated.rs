//! A simulated endpoint: delivery happens in-process, its latency and faults drawn from the
//! endpoint's [`FaultModel`] with the run's seed. No network, so it runs under virtual time.

use std::time::Duration;

use super::fault::{FaultModel, SimResult};
use super::{Answer, Attempt, Sink};
use crate::config::FaultSettings;
use crate::delivery::routed::Delivery;
use crate::seed::{self, SeededRng};

/// An in-process endpoint answering from a fault model.
pub struct SimulatedSink {
    model: FaultModel,
    rng: SeededRng,
}

impl SimulatedSink {
    /// The endpoint `name` with `faults`, drawing from the run's `seed`.
    pub fn new(name: &str, faults: FaultSettings, seed: u64) -> Self {
        SimulatedSink {
            model: FaultModel::new(faults),
            rng: seed::stream(seed, &format!("endpoint:{name}:faults")),
        }
    }
}

impl Sink for SimulatedSink {
    fn attempt(&mut self, batch: &[Delivery], now: Duration) -> Attempt {
        // What a real sink sends: the bytes are made here (once per event, whichever endpoint
        // asks first), so a simulated run pays for serialization as a real one does.
        let bytes: usize = batch.iter().map(|d| d.event.json().len()).sum();
        std::hint::black_box(bytes);
        let simulated = self.model.attempt(now, &mut self.rng);
        let answer = Answer {
            result: simulated.result.attempt_result(),
            received: simulated.result.endpoint_received(),
        };
        let silent = matches!(simulated.result, SimResult::Timeout | SimResult::LostAck);
        if simulated.latency.is_zero() && !silent {
            Attempt::Now(answer)
        } else {
            Attempt::After(simulated.latency, answer)
        }
    }
}
