//! Tests of the `kubectl bellwether` plugin.

mod binary;
mod examples;
mod lint;
mod show;
