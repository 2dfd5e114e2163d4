//! The controller: the kube-rs shell that turns the cluster into the engine's observation and the
//! engine's actions into API calls. It decides nothing itself.
//!
//! Each translation is a pure function over the objects as JSON, so that it is tested without an
//! API server; the reconcilers fetch the objects and apply what these build.

pub mod analysis_runs;
pub mod leader;
pub mod replica_sets;
pub mod routes;
