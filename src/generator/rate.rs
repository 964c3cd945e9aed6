//! Rate shapes and the open-model schedule they give.
//!
//! The schedule decides when each event is due, whatever the speed of whoever consumes them:
//! a pipeline that falls behind shows up as lag (events due but not yet emitted), never as a
//! quietly slower rate.

use std::time::Duration;

/// Events per second as a function of time since the start.
#[derive(Clone, Debug, PartialEq)]
pub enum RateShape {
    /// A steady rate.
    Constant {
        /// Events per second.
        events_per_second: f64,
    },
    /// A linear change from one rate to another, then steady at the second.
    Ramp {
        /// Rate at the start.
        from: f64,
        /// Rate at the end of the ramp and after.
        to: f64,
        /// Length of the ramp.
        over: Duration,
    },
    /// A sequence of steady rates; the last one holds after its duration.
    Steps(Vec<Step>),
    /// A base rate with a burst.
    Spike {
        /// Rate outside the burst.
        base: f64,
        /// Rate during the burst.
        spike: f64,
        /// When the burst starts.
        at: Duration,
        /// How long the burst lasts.
        duration: Duration,
    },
    /// `mean + amplitude · sin(2πt / period)`, never below zero.
    Sine {
        /// Mean rate.
        mean: f64,
        /// Swing around the mean.
        amplitude: f64,
        /// Period of one cycle.
        period: Duration,
    },
}

/// One step of a [`RateShape::Steps`] shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Events per second during the step.
    pub events_per_second: f64,
    /// How long the step lasts.
    pub duration: Duration,
}

impl RateShape {
    /// The rate `t` seconds after the start.
    pub fn rate_at(&self, t: f64) -> f64 {
        match self {
            RateShape::Constant { events_per_second } => *events_per_second,
            RateShape::Ramp { from, to, over } => {
                let over = over.as_secs_f64();
                if t >= over || over == 0.0 {
                    *to
                } else {
                    from + (to - from) * (t / over)
                }
            }
            RateShape::Steps(steps) => {
                let mut end = 0.0;
                for step in steps {
                    end += step.duration.as_secs_f64();
                    if t < end {
                        return step.events_per_second;
                    }
                }
                steps.last().map_or(0.0, |step| step.events_per_second)
            }
            RateShape::Spike {
                base,
                spike,
                at,
                duration,
            } => {
                let start = at.as_secs_f64();
                if t >= start && t < start + duration.as_secs_f64() {
                    *spike
                } else {
                    *base
                }
            }
            RateShape::Sine {
                mean,
                amplitude,
                period,
            } => {
                let phase = std::f64::consts::TAU * t / period.as_secs_f64();
                (mean + amplitude * phase.sin()).max(0.0)
            }
        }
    }

    /// The highest rate the shape reaches (for sizing and progress).
    pub fn peak(&self) -> f64 {
        match self {
            RateShape::Constant { events_per_second } => *events_per_second,
            RateShape::Ramp { from, to, .. } => from.max(*to),
            RateShape::Steps(steps) => steps
                .iter()
                .map(|s| s.events_per_second)
                .fold(0.0, f64::max),
            RateShape::Spike { base, spike, .. } => base.max(*spike),
            RateShape::Sine {
                mean, amplitude, ..
            } => mean + amplitude.abs(),
        }
    }
}

/// A shape whose rate falls to (almost) 0 for good: from when, and how many events it yields
/// before that (the area under the rate, so the schedule's own count may differ by one).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IdleForGood {
    /// Seconds after the start from which the rate stays below the schedule's idle threshold.
    pub from: f64,
    /// Events due before then.
    pub events_before: f64,
}

impl RateShape {
    /// When the rate falls to 0 for good, if it does: a constant 0, a ramp or spike ending at 0,
    /// steps whose last step is 0. A sine comes back, whatever its mean.
    pub fn idle_for_good(&self) -> Option<IdleForGood> {
        let idle = |rate: f64| rate < IDLE_RATE;
        match self {
            RateShape::Constant { events_per_second } => {
                idle(*events_per_second).then_some(IdleForGood {
                    from: 0.0,
                    events_before: 0.0,
                })
            }
            RateShape::Ramp { from, to, over } => idle(*to).then(|| IdleForGood {
                from: over.as_secs_f64(),
                events_before: (from + to) / 2.0 * over.as_secs_f64(),
            }),
            RateShape::Steps(steps) => {
                let (last, before) = steps.split_last()?;
                idle(last.events_per_second).then(|| IdleForGood {
                    from: before.iter().map(|s| s.duration.as_secs_f64()).sum(),
                    events_before: before
                        .iter()
                        .map(|s| s.events_per_second * s.duration.as_secs_f64())
                        .sum(),
                })
            }
            RateShape::Spike {
                base,
                spike,
                at,
                duration,
            } => idle(*base).then(|| IdleForGood {
                from: (at.as_secs_f64() + duration.as_secs_f64()),
                events_before: spike * duration.as_secs_f64(),
            }),
            RateShape::Sine { .. } => (self.peak() < IDLE_RATE).then_some(IdleForGood {
                from: 0.0,
                events_before: 0.0,
            }),
        }
    }
}

impl RateShape {
    /// An upper bound on when event number `events` is due, in seconds after the start (for a
    /// sine whose rate touches 0, an estimate: see below); `None` if the shape never yields that
    /// many (its rate falls to 0 for good first).
    ///
    /// Event `n` is due about when the area under the rate reaches `n - 1`; this returns when it
    /// reaches `n`, a margin of one gap for the schedule's midpoint rounding. Stretches below the
    /// schedule's idle threshold count as yielding nothing.
    pub fn time_to_reach(&self, events: u64) -> Option<f64> {
        let area = events as f64;
        match self {
            RateShape::Constant { events_per_second } => {
                piecewise(std::iter::empty(), *events_per_second, area)
            }
            RateShape::Ramp { from, to, over } => {
                let over = over.as_secs_f64();
                let ramp_area = (from + to) / 2.0 * over;
                if over > 0.0 && area <= ramp_area {
                    // from·t + k·t² = area with k = (to − from) / (2·over): the root in 0..over,
                    // written so that it holds for a rising, falling or flat ramp.
                    let k = (to - from) / (2.0 * over);
                    let root = (from * from + 4.0 * k * area).max(0.0).sqrt();
                    let t = if from + root > 0.0 {
                        2.0 * area / (from + root)
                    } else {
                        over
                    };
                    Some(t.min(over))
                } else {
                    piecewise([(0.0, over)], *to, (area - ramp_area.max(0.0)).max(0.0))
                }
            }
            RateShape::Steps(steps) => {
                let (last, before) = steps.split_last()?;
                piecewise(
                    before
                        .iter()
                        .map(|step| (step.events_per_second, step.duration.as_secs_f64())),
                    last.events_per_second,
                    area,
                )
            }
            RateShape::Spike {
                base,
                spike,
                at,
                duration,
            } => piecewise(
                [(*base, at.as_secs_f64()), (*spike, duration.as_secs_f64())],
                *base,
                area,
            ),
            RateShape::Sine {
                mean,
                amplitude,
                period,
            } => {
                // Every whole period yields the same area, so `area` is reached within one
                // period after `area / average`. (Where the rate touches 0 the schedule's
                // midpoint step can jump over the next peak, so for such a sine this is an
                // estimate, not a bound.)
                let average = clipped_sine_average(*mean, amplitude.abs());
                (average >= IDLE_RATE && self.peak() >= IDLE_RATE)
                    .then(|| area / average + period.as_secs_f64())
            }
        }
    }
}

/// When steady `segments` (rate, seconds), then `then` for ever, yield `area` events.
fn piecewise(segments: impl IntoIterator<Item = (f64, f64)>, then: f64, area: f64) -> Option<f64> {
    let mut start = 0.0;
    let mut left = area;
    for (rate, length) in segments {
        if rate >= IDLE_RATE {
            if rate * length >= left {
                return Some(start + left / rate);
            }
            left -= rate * length;
        }
        start += length;
    }
    (then >= IDLE_RATE).then(|| start + left / then)
}

/// The average of `max(0, mean + amplitude · sin θ)` over a period.
fn clipped_sine_average(mean: f64, amplitude: f64) -> f64 {
    if mean >= amplitude {
        mean
    } else if mean <= -amplitude {
        0.0
    } else {
        // (1/π) · (√(a² − m²) + m · (π/2 + asin(m/a))): the rectified-sine integral.
        ((amplitude * amplitude - mean * mean).sqrt()
            + mean * (std::f64::consts::FRAC_PI_2 + (mean / amplitude).asin()))
            / std::f64::consts::PI
    }
}

/// Below this rate the schedule steps over time instead of dividing by (almost) zero.
const IDLE_RATE: f64 = 1e-3;
/// Time step while the rate is idle.
const IDLE_STEP: f64 = 0.01;
/// A shape that stays idle this long is treated as finished.
const IDLE_LIMIT: f64 = 366.0 * 86_400.0;

/// The due times of successive events under a rate shape.
///
/// Event `i + 1` is due `1 / r` after event `i`, with `r` the rate at the midpoint of that gap
/// (a midpoint step follows ramps and sines closely at any rate worth generating).
#[derive(Clone, Debug)]
pub struct Schedule {
    shape: RateShape,
    next: f64,
    /// From when the rate is 0 for good, if ever: the schedule ends there at once instead of
    /// stepping through [`IDLE_LIMIT`] of idle time.
    idle_from: Option<f64>,
}

impl Schedule {
    /// A schedule whose first event is due at the start.
    pub fn new(shape: RateShape) -> Self {
        let idle_from = shape.idle_for_good().map(|idle| idle.from);
        Schedule {
            shape,
            next: 0.0,
            idle_from,
        }
    }

    /// The due time of the next event, or `None` if the shape has gone idle for good.
    pub fn next_due(&mut self) -> Option<Duration> {
        let mut t = self.next;
        let idle_since = t;
        while self.shape.rate_at(t) < IDLE_RATE {
            if self.idle_from.is_some_and(|from| t >= from) {
                return None;
            }
            t += IDLE_STEP;
            if t - idle_since > IDLE_LIMIT {
                return None;
            }
        }
        let due = t;
        let first_guess = 1.0 / self.shape.rate_at(t);
        let midpoint_rate = self.shape.rate_at(t + first_guess / 2.0);
        let gap = if midpoint_rate >= IDLE_RATE {
            1.0 / midpoint_rate
        } else {
            first_guess
        };
        self.next = t + gap;
        Some(Duration::from_secs_f64(due))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_until(shape: RateShape, seconds: f64) -> usize {
        let mut schedule = Schedule::new(shape);
        std::iter::from_fn(|| schedule.next_due())
            .take_while(|due| due.as_secs_f64() < seconds)
            .count()
    }

    #[test]
    fn constant_rate_spaces_events_evenly() {
        let mut schedule = Schedule::new(RateShape::Constant {
            events_per_second: 4.0,
        });
        let dues: Vec<f64> = (0..5)
            .map(|_| schedule.next_due().unwrap().as_secs_f64())
            .collect();
        assert_eq!(dues, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn ramp_integrates_to_the_area_under_it() {
        // 0 → 200 ev/s over 10 s: 1000 events in the first 10 s, then 200/s.
        let n = count_until(
            RateShape::Ramp {
                from: 0.0,
                to: 200.0,
                over: Duration::from_secs(10),
            },
            10.0,
        );
        assert!((990..=1010).contains(&n), "{n}");
        let n = count_until(
            RateShape::Ramp {
                from: 0.0,
                to: 200.0,
                over: Duration::from_secs(10),
            },
            12.0,
        );
        assert!((1390..=1410).contains(&n), "{n}");
    }

    #[test]
    fn spike_and_steps_follow_their_segments() {
        let spike = RateShape::Spike {
            base: 10.0,
            spike: 1000.0,
            at: Duration::from_secs(5),
            duration: Duration::from_secs(2),
        };
        let n = count_until(spike, 10.0);
        assert!((2075..=2085).contains(&n), "{n}"); // 8 s × 10 + 2 s × 1000
        let steps = RateShape::Steps(vec![
            Step {
                events_per_second: 100.0,
                duration: Duration::from_secs(1),
            },
            Step {
                events_per_second: 0.0,
                duration: Duration::from_secs(2),
            },
            Step {
                events_per_second: 10.0,
                duration: Duration::from_secs(1),
            },
        ]);
        let n = count_until(steps, 4.0);
        assert!((109..=111).contains(&n), "{n}");
    }

    #[test]
    fn sine_averages_to_its_mean() {
        let sine = RateShape::Sine {
            mean: 100.0,
            amplitude: 100.0,
            period: Duration::from_secs(10),
        };
        let n = count_until(sine, 20.0);
        assert!((1980..=2020).contains(&n), "{n}");
    }

    #[test]
    fn a_shape_idle_for_good_ends_where_it_goes_idle() {
        let steps = RateShape::Steps(vec![
            Step {
                events_per_second: 10.0,
                duration: Duration::from_secs(2),
            },
            Step {
                events_per_second: 0.0,
                duration: Duration::from_secs(1),
            },
        ]);
        assert_eq!(
            steps.idle_for_good(),
            Some(IdleForGood {
                from: 2.0,
                events_before: 20.0
            })
        );
        let mut schedule = Schedule::new(steps);
        let dues: Vec<Duration> = std::iter::from_fn(|| schedule.next_due()).collect();
        assert_eq!(dues.len(), 20);
        // Ended at once: the next call does not step through a year of idle time.
        assert_eq!(schedule.idle_from, Some(2.0));
        let spike = RateShape::Spike {
            base: 0.0,
            spike: 10.0,
            at: Duration::from_secs(1),
            duration: Duration::from_secs(1),
        };
        assert_eq!(spike.idle_for_good().map(|i| i.events_before), Some(10.0));
        let ramp = RateShape::Ramp {
            from: 100.0,
            to: 0.0,
            over: Duration::from_secs(4),
        };
        assert_eq!(ramp.idle_for_good().map(|i| i.from), Some(4.0));
        for busy in [
            RateShape::Constant {
                events_per_second: 1.0,
            },
            RateShape::Sine {
                mean: 0.0,
                amplitude: 5.0,
                period: Duration::from_secs(1),
            },
        ] {
            assert_eq!(busy.idle_for_good(), None, "{busy:?}");
        }
    }

    /// `time_to_reach(n)` is never earlier than the schedule's n-th due time, and not much later.
    #[test]
    fn time_to_reach_bounds_the_schedule_from_above_and_closely() {
        let secs = Duration::from_secs;
        let shapes = [
            RateShape::Constant {
                events_per_second: 250.0,
            },
            RateShape::Ramp {
                from: 0.0,
                to: 200.0,
                over: secs(10),
            },
            RateShape::Ramp {
                from: 300.0,
                to: 20.0,
                over: secs(10),
            },
            RateShape::Steps(vec![
                Step {
                    events_per_second: 100.0,
                    duration: secs(1),
                },
                Step {
                    events_per_second: 0.0,
                    duration: secs(2),
                },
                Step {
                    events_per_second: 40.0,
                    duration: secs(1),
                },
            ]),
            RateShape::Spike {
                base: 10.0,
                spike: 1000.0,
                at: secs(5),
                duration: secs(2),
            },
            RateShape::Sine {
                mean: 100.0,
                amplitude: 60.0,
                period: secs(10),
            },
        ];
        for shape in shapes {
            let mut schedule = Schedule::new(shape.clone());
            let dues: Vec<f64> = (0..3001)
                .map(|_| schedule.next_due().unwrap().as_secs_f64())
                .collect();
            // Within two periods for a sine, else by about the next event's due time (one gap; at
            // the foot of a ramp from 0 the midpoint rule runs early by a fraction of a second).
            let slack = match shape {
                RateShape::Sine { period, .. } => 2.0 * period.as_secs_f64(),
                _ => 0.0,
            };
            for n in 1..=3000u64 {
                let (due, next) = (dues[n as usize - 1], dues[n as usize]);
                let bound = shape.time_to_reach(n).unwrap();
                assert!(
                    bound + 1e-6 >= due,
                    "{shape:?}: event {n} due at {due}, bound {bound}"
                );
                assert!(
                    bound <= next + slack + 0.5,
                    "{shape:?}: event {n} due at {due}, the next at {next}, bound {bound}"
                );
            }
        }
        let ending = RateShape::Spike {
            base: 0.0,
            spike: 10.0,
            at: secs(1),
            duration: secs(1),
        };
        assert!(ending.time_to_reach(10).is_some());
        assert_eq!(ending.time_to_reach(11), None);
        assert!((clipped_sine_average(0.0, 2.0) - 2.0 / std::f64::consts::PI).abs() < 1e-12);
    }

    #[test]
    fn a_shape_that_never_produces_ends() {
        let mut schedule = Schedule::new(RateShape::Constant {
            events_per_second: 0.0,
        });
        assert_eq!(schedule.next_due(), None);
    }
}
