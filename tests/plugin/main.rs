//! Tests of the `kubectl bellwether` plugin.

mod binary;
mod convert;
mod examples;
mod lint;
mod show;
