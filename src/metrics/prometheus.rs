//! Prometheus metric provider.
