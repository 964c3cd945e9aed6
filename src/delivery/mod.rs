//! Delivery: what happens to one routed event at one endpoint, from first attempt to its ending.
//!
//! - [`policy`]: retry schedules and [`policy::RetryPolicy::decide`], the pure "retry after /
//!   give up" function (plain data, no runtime).
//! - [`classify`]: an attempt's result → delivered / retry no sooner than / never retried,
//!   Event Grid's failure-code table in one function.
//! - [`routed`]: [`routed::Delivery`], one routed event on its way to one endpoint (a leaf every
//!   sink, the worker and the dead-letter writer share).
//! - [`worker`]: the per-endpoint worker that runs attempts against a sink and keeps the
//!   retry schedule.

pub mod classify;
pub mod policy;
pub mod routed;
pub mod worker;
