//! Tests of the `kubectl bellwether` plugin.

mod binary;
mod lint;
mod show;
