//! Bellwether: a progressive-delivery canary controller for Kubernetes.
//!
//! Data flows one way: watches and metric queries produce an observation, [`engine`] turns
//! (spec, status, observation, now) into a decision, and the controller carries out its actions.
//!
//! The pure layers are crates of their own, so that the compiler keeps them apart: [`api`] (the
//! resources and the languages of their fields) and [`engine`] (the decisions), neither with a
//! client, a runtime or I/O. This crate is the shell around them: the controller, the metric
//! providers, the HTTP server, the command line and the simulation.

pub use bellwether_api as api;
pub use bellwether_engine as engine;

pub mod cli;
pub mod controller;
pub mod demo;
pub mod metrics;
pub mod server;
pub mod sim;
