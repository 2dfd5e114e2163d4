//! Bellwether: a progressive-delivery canary controller for Kubernetes.
//!
//! Data flows one way: watches and metric queries produce an observation, [`engine`] turns
//! (spec, status, observation, now) into a decision, and the controller carries out its actions.

pub mod api;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod metrics;
pub mod server;
pub mod sim;
