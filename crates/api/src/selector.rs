//! Label selectors in the string form the API's `labelSelector` parameters and the `scale`
//! subresource use.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// `selector` as a label selector string: `app=web,tier in (a,b),!legacy`. Match labels come
/// first, sorted; expressions follow in order. An expression with an unknown operator is left
/// out, which can only widen what the string selects; validation refuses such a selector first.
pub fn selector_string(selector: &LabelSelector) -> String {
    let labels = selector.match_labels.iter().flatten().map(|(key, value)| format!("{key}={value}"));
    let expressions = selector.match_expressions.iter().flatten().filter_map(|expr| {
        let values = expr.values.clone().unwrap_or_default().join(",");
        match expr.operator.as_str() {
            "In" => Some(format!("{} in ({values})", expr.key)),
            "NotIn" => Some(format!("{} notin ({values})", expr.key)),
            "Exists" => Some(expr.key.clone()),
            "DoesNotExist" => Some(format!("!{}", expr.key)),
            _ => None,
        }
    });
    labels.chain(expressions).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::selector_string;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

    fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(ToString::to_string).collect()),
        }
    }

    #[test]
    fn labels_then_every_operator() {
        let selector = LabelSelector {
            match_labels: Some([("tier".into(), "web".into()), ("app".into(), "shop".into())].into()),
            match_expressions: Some(vec![
                requirement("zone", "In", &["a", "b"]),
                requirement("track", "NotIn", &["canary"]),
                requirement("team", "Exists", &[]),
                requirement("legacy", "DoesNotExist", &[]),
            ]),
        };
        assert_eq!(
            selector_string(&selector),
            "app=shop,tier=web,zone in (a,b),track notin (canary),team,!legacy"
        );
    }

    #[test]
    fn an_empty_selector_is_an_empty_string() {
        assert_eq!(selector_string(&LabelSelector::default()), "");
    }
}
