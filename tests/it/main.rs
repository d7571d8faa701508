//! The integration tests, one binary: every module below was its own test target, each linking
//! the whole crate. Run one module with `cargo test --test it -- recovery::`.

mod common;
#[path = "support/mutation.rs"]
mod mutation;

mod bmc;
mod config;
mod crash;
mod demo;
mod drills;
mod exporter;
mod fence;
mod receiver;
mod receiver_tls;
mod recovery;
mod sim_behaviour;
mod sim_conformance;
mod sim_rrd;
mod stream_equivalence;
mod wire_fuzz;
mod xapi_client;
mod xapi_fixtures;
mod xapi_streaming;
mod xapi_tls;
