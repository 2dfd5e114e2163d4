//! Command-line front ends: the admin commands of `bellwether` and the `kubectl bellwether` plugin.

pub mod analyze;
pub mod cluster;
pub mod complete;
pub mod controller;
pub mod convert;
pub mod crds;
pub mod demo;
pub mod edit;
pub mod history;
pub mod kube_error;
pub mod lint;
pub mod manifests;
pub mod rollout_ref;
pub mod show;
pub mod simulate;
pub mod status;
pub mod steer;
