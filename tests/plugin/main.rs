//! Tests of the `kubectl bellwether` plugin.

mod binary;
mod ci_doc;
mod cluster;
mod complete;
mod convert;
mod errors;
mod examples;
mod filenames;
mod flags;
mod lint;
mod reference;
mod show;
mod status;
mod workflow;
mod workflows;
