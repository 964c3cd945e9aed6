//! Delivery: what happens to one routed event at one endpoint, from first attempt to its ending.
//!
//! - [`policy`]: retry schedules and the pure decisions (plain data, no runtime): "retry after /
//!   give up" after an attempt ([`policy::RetryPolicy::decide`]), "may it start" before one
//!   ([`policy::RetryPolicy::before_attempt`]), and what an answer amounts to under the attempt
//!   timeout ([`policy::within_timeout`]).
//! - [`classify`]: an attempt's result → delivered / retry no sooner than / never retried,
//!   Event Grid's failure-code table in one function.
//! - [`outcome`]: how a delivery ended: the closed set of terminal outcomes and the ending the
//!   accounts record.
//! - [`routed`]: [`routed::Delivery`], one routed event on its way to one endpoint (a leaf every
//!   sink, the worker and the dead-letter writer share).
//! - [`worker`]: the per-endpoint worker that runs attempts against a sink and keeps the
//!   retry schedule.

pub mod classify;
pub mod outcome;
pub mod policy;
pub mod routed;
pub mod worker;
