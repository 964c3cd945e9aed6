//! twinroute: Azure Digital Twins' event-routing data plane as a program you can run anywhere.
//!
//! # Layout
//!
//! - [`clock`]: the one clock (epoch + tokio time) and ADT's timestamp format.
//! - [`seed`]: the master seed and the named random streams derived from it.
//! - [`event`]: ADT's seven notification types as typed values, serialized once.
//! - [`dtdl`]: DTDL v2/v3 models read into a resolved model store; values checked against
//!   their schemas.
//! - [`generator`]: the twin graph, the event mix and the rate shapes that drive a run.
//! - [`filter`]: ADT's route filter language: parsed and compiled once, matched without I/O.
//! - [`router`]: the compiled route table, built from the validated routes: which routes an
//!   event matches.
//! - [`source`]: the first stage: emits events when due, routes them, hands each endpoint its
//!   deliveries over its bounded queue.
//! - [`config`]: the instance file (ARM endpoint bodies, routes, workload) and its validation into
//!   settings: the one home of every validated setting, sinks' included; imports only leaf modules.
//! - [`delivery`]: retry/TTL policy, the failure-code table, and the per-endpoint worker.
//! - [`sink`]: the contract every endpoint kind implements: simulated endpoints and their faults,
//!   Event Grid topics and webhooks over HTTP, Event Hubs and Service Bus over AMQP; every sink
//!   built from its settings in one place (`sink::build`).
//! - [`deadletter`]: dead-letter stores (local folder, memory, Azure Blob / Azurite), opened
//!   from settings in one place (`deadletter::open`), and the dead-letter stage.
//! - [`account`]: the one ending of every (event, route) (a closed set of outcomes), counters and
//!   the ledger task.
//! - [`context`]: what every stage of a run shares (accounts, clock, abort token, seed).
//! - [`progress`]: the live progress display of real-time runs on a terminal.
//! - [`receive`]: `twinroute receive`, a downstream HTTP consumer with chaos knobs that verifies
//!   what arrives.
//! - [`report`]: the run report, assembled from what the stages counted, as JSON and as a table.
//! - [`engine`]: a run, wired downstream-first; its stop / drain / abort protocol; the runtime
//!   each clock mode needs (`run_blocking`).
//! - [`bench`]: the figures `twinroute bench` prints.
//! - [`secret`]: masking of keys, SAS signatures and connection strings as ARM does (`***`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod account;
pub mod bench;
pub mod clock;
pub mod config;
pub mod context;
pub mod deadletter;
pub mod delivery;
pub mod dtdl;
pub mod engine;
pub mod event;
pub mod filter;
pub mod generator;
pub mod progress;
pub mod receive;
pub mod report;
pub mod router;
pub mod secret;
pub mod seed;
pub mod sink;
pub mod source;
