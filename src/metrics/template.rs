//! Query templating: substitutes variables into PromQL, escaped for where they land.
