//! Tests of the `kubectl bellwether` plugin.

mod lint;
