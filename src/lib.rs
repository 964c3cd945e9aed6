//! twinroute: Azure Digital Twins' event-routing data plane as a program you can run anywhere.
//!
//! # Layout
//!
//! - [`clock`]: the one clock (epoch + tokio time) and ADT's timestamp format.
//! - [`seed`]: the master seed and the named random streams derived from it.
//! - [`event`]: ADT's seven notification types as typed values, serialized once.
//! - [`generator`]: the twin graph, the event mix and the rate shapes that drive a run.
//! - [`config`]: the instance file: ARM endpoint bodies, routes, workload; validation to settings.
//! - [`secret`]: masking of keys, SAS signatures and connection strings as ARM does (`***`).

pub mod clock;
pub mod config;
pub mod event;
pub mod generator;
pub mod secret;
pub mod seed;
