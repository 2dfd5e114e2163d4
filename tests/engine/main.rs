//! The engine's rules as readable scenarios, and its invariants as property tests.

mod alerts;
mod analysis_runs;
mod audit;
mod autoscaling;
mod compare;
mod conditions;
mod fixtures;
mod invariants;
mod judge;
mod purity;
mod rules;
mod stats;
mod traffic;
mod trust;
mod workload;
mod world;
