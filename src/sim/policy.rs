//! Who judges a simulated analysis. Bellwether's own judgments are one [`Policy`]; the accuracy
//! benchmark plugs in the policies of other canary tools to compare them on the same traffic,
//! through the same AnalysisRun core.

pub use crate::engine::Bellwether;
use crate::engine::Judge;

/// A way to judge a metric from its samples so far, with a name for tables.
pub trait Policy: Judge {
    /// A short name for tables, for example `bellwether`.
    fn name(&self) -> &str;
}

impl Policy for Bellwether {
    fn name(&self) -> &str {
        "bellwether"
    }
}
