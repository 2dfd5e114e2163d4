//! The chart's ValidatingAdmissionPolicy for requests (`templates/request-policy.yaml`), rendered by
//! Helm: its CEL, evaluated by the `cel` interpreter against admission requests as the API server
//! builds them (the Rollout after the write, the Rollout before it or null on create, and the user
//! who wrote).

use super::helm::{ADMISSION_POLICY_API, rendered, with_image};
use bellwether::api::FiringAlert;
use bellwether::controller::requests::annotation;
use bellwether::engine::{UserAction, UserRequest};
use cel::{Context, Program, Value as Cel};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::LazyLock;

/// The controller's ServiceAccount: release `t`'s, in namespace `bellwether`.
const CONTROLLER: &str = "system:serviceaccount:bellwether:t-bellwether";
/// A CI pipeline's account, listed in `requestPolicy.extraRequesters`.
const DEPLOYER: &str = "system:serviceaccount:ci:deployer";

/// The policy as Helm renders it where the cluster serves the API, with [`DEPLOYER`] in
/// `requestPolicy.extraRequesters`.
fn policy() -> Value {
    static POLICY: LazyLock<Value> = LazyLock::new(|| {
        let requesters = format!("requestPolicy.extraRequesters={{{DEPLOYER}}}");
        let rendered = rendered(&with_image(&[&requesters]), &[ADMISSION_POLICY_API]);
        rendered.get("ValidatingAdmissionPolicy", "t-bellwether-requests").clone()
    });
    POLICY.clone()
}

fn evaluate(context: &Context, expression: &str) -> Cel {
    let program =
        Program::compile(expression).unwrap_or_else(|e| panic!("{expression}\ndoes not compile: {e}"));
    program.execute(context).unwrap_or_else(|e| panic!("{expression}\nfails: {e}"))
}

/// A write to a Rollout: the object after it, the object before it (none on create), and who wrote.
struct Write {
    object: Value,
    old: Option<Value>,
    user: String,
}

/// The policy's answer to `write`: admitted, or the messages of the validations that refused it.
/// Every expression must evaluate without an error: the policy fails closed, so an error would
/// refuse every write to a Rollout.
fn admit(policy: &Value, write: &Write) -> Result<(), Vec<String>> {
    let mut context = Context::default();
    context.add_variable("object", &write.object).unwrap();
    context.add_variable("oldObject", write.old.clone().unwrap_or(Value::Null)).unwrap();
    let operation = if write.old.is_some() { "UPDATE" } else { "CREATE" };
    let request = json!({"operation": operation, "userInfo": {"username": write.user, "groups": ["system:authenticated"]}});
    context.add_variable("request", request).unwrap();
    let mut variables: HashMap<String, Cel> = HashMap::new();
    for variable in policy["spec"]["variables"].as_array().expect("variables") {
        let value = evaluate(&context, variable["expression"].as_str().expect("an expression"));
        variables.insert(variable["name"].as_str().expect("a name").to_string(), value);
        context.add_variable_from_value("variables", variables.clone());
    }
    let mut refusals = Vec::new();
    for validation in policy["spec"]["validations"].as_array().expect("validations") {
        assert_eq!(validation["reason"], "Forbidden");
        match evaluate(&context, validation["expression"].as_str().expect("an expression")) {
            Cel::Bool(true) => {}
            Cel::Bool(false) => {
                match evaluate(&context, validation["messageExpression"].as_str().expect("a message")) {
                    Cel::String(message) => refusals.push(message.to_string()),
                    other => panic!("a message that is not a string: {other:?}"),
                }
            }
            other => panic!("a validation that is not a bool: {other:?}"),
        }
    }
    if refusals.is_empty() { Ok(()) } else { Err(refusals) }
}

fn rollout(annotations: &[(&str, &str)]) -> Value {
    let annotations: serde_json::Map<String, Value> =
        annotations.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({
        "apiVersion": "bellwether.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
        "spec": {"replicas": 3},
    })
}

/// The annotation kubectl bellwether writes for `action` by `by`.
fn request(action: UserAction, by: &str, id: &str) -> (String, String) {
    annotation(&UserRequest {
        id: id.into(),
        action,
        by: by.into(),
        revision: Some("7f9c2d".into()),
        step: (action == UserAction::Promote).then_some(2),
        alert: None,
    })
}

/// `user` adds the annotation `key: value` to a Rollout that had `before`.
fn sends(user: &str, before: &[(&str, &str)], key: &str, value: &str) -> Write {
    let mut after = before.to_vec();
    after.push((key, value));
    Write { object: rollout(&after), old: Some(rollout(before)), user: user.into() }
}

#[test]
fn every_request_the_plugin_writes_passes_for_its_sender() {
    let policy = policy();
    for action in UserAction::ALL {
        for user in ["alice", "alice@example.com", "oidc:https://id.example.com#alice", DEPLOYER] {
            let (key, value) = request(action, user, "1733400000-a1");
            assert_eq!(admit(&policy, &sends(user, &[], &key, &value)), Ok(()), "{value} by {user}");
        }
    }
    let (key, value) = annotation(&UserRequest {
        id: "1".into(),
        action: UserAction::Resume,
        by: "alice".into(),
        revision: None,
        step: None,
        alert: None,
    });
    assert_eq!(admit(&policy, &sends("alice", &[], &key, &value)), Ok(()), "no revision or step: {value}");
}

#[test]
fn a_request_in_another_users_name_is_refused() {
    let policy = policy();
    let (key, value) = request(UserAction::Abort, "alice", "1");
    let refusals = admit(&policy, &sends("mallory", &[], &key, &value)).expect_err("mallory signs as alice");
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(refusals[0].contains(r#"must name its sender, "by":"mallory""#), "{}", refusals[0]);
    // A name that the other's starts with, or that starts with the other's.
    for by in ["alice", "mallory2", "mallor", ""] {
        let (key, value) = request(UserAction::Promote, by, "1");
        assert!(admit(&policy, &sends("mallory", &[], &key, &value)).is_err(), "{value}");
    }
}

#[test]
fn a_request_with_no_by_or_in_another_form_is_refused() {
    let policy = policy();
    for value in [
        r#"{"action":"abort"}"#,
        r#"{"action":"abort","by":null}"#,
        r#"{"by":"mallory","action":"abort"}"#,
        r#"{"action": "abort", "by": "mallory"}"#,
        // A second `by` that a JSON reader would take instead, or one smuggled into another field.
        r#"{"action":"abort","by":"mallory","by":"alice"}"#,
        r#"{"action":"abort","by":"alice","revision":"\",\"by\":\"mallory\""}"#,
        r#"{"action":"abort","by":"alice","x":"\",\"by\":\"mallory\""}"#,
        r#"{"action":"abort","by":"alice","alert":{"name":"x","labels":{},"by":"mallory"}}"#,
        r#"{"action":"abort","by":"mall\u006fry"}"#,
        r#"{"action":"abort","by":"mallory"}trailing"#,
        r#" {"action":"abort","by":"mallory"}"#,
        r#"["abort","alice",null,null,{"action":"abort","by":"mallory"}]"#,
        "not json",
        "",
    ] {
        let refused = admit(&policy, &sends("mallory", &[], "requests.bellwether.dev/1", value));
        assert!(refused.is_err(), "{value} was admitted");
    }
}

#[test]
fn a_user_whose_name_json_would_escape_cannot_send_requests() {
    let policy = policy();
    // A quote in the name could end the `by` string early: this one would send a request as "a".
    let user = r#"a","revision":"x"#;
    let forged = r#"{"action":"abort","by":"a","revision":"x"}"#;
    assert!(admit(&policy, &sends(user, &[], "requests.bellwether.dev/1", forged)).is_err());
    // The plugin escapes what JSON must: a value the policy cannot read verbatim.
    for user in [user, r"back\slash"] {
        let (key, value) = request(UserAction::Abort, user, "1");
        assert!(admit(&policy, &sends(user, &[], &key, &value)).is_err(), "{user}: {value}");
    }
}

#[test]
fn only_people_the_controller_and_listed_accounts_may_send_requests() {
    let policy = policy();
    for user in
        ["system:serviceaccount:shop:default", "system:node:worker-1", "system:kube-controller-manager"]
    {
        let (key, value) = request(UserAction::Promote, user, "1");
        let refusals = admit(&policy, &sends(user, &[], &key, &value)).expect_err(user);
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert!(
            refusals[0].starts_with(&format!("{user} may not send Bellwether requests")),
            "{}",
            refusals[0]
        );
        assert!(refusals[0].contains("requestPolicy.extraRequesters"), "{}", refusals[0]);
    }
    let (key, value) = request(UserAction::Promote, DEPLOYER, "1");
    assert_eq!(admit(&policy, &sends(DEPLOYER, &[], &key, &value)), Ok(()));
}

#[test]
fn the_controller_sends_the_aborts_alerts_ask_for() {
    let policy = policy();
    let (key, value) = annotation(&UserRequest {
        id: "alert-1".into(),
        action: UserAction::Abort,
        by: "alertmanager".into(),
        revision: Some("7f9c2d".into()),
        step: None,
        alert: Some(FiringAlert {
            name: "CheckoutErrors".into(),
            labels: [("severity".to_string(), "page".to_string())].into(),
            generator_url: "http://prometheus/graph?g0.expr=up".into(),
            starts_at: None,
        }),
    });
    assert_eq!(admit(&policy, &sends(CONTROLLER, &[], &key, &value)), Ok(()));
    assert!(
        admit(&policy, &sends("alice", &[], &key, &value)).is_err(),
        "only the controller speaks for alerts"
    );
}

#[test]
fn writes_that_leave_others_requests_as_they_were_pass() {
    let policy = policy();
    let (key, value) = request(UserAction::Promote, "alice", "1");
    let pending = [(key.as_str(), value.as_str())];
    // Bob changes the spec (or another annotation) while Alice's request waits.
    let mut after = rollout(&pending);
    after["spec"]["replicas"] = json!(5);
    assert_eq!(
        admit(&policy, &Write { object: after, old: Some(rollout(&pending)), user: "bob".into() }),
        Ok(())
    );
    assert_eq!(admit(&policy, &sends("bob", &pending, "team", "payments")), Ok(()));
    // The controller removes it once handled; so may anyone who could patch the Rollout anyway.
    for user in [CONTROLLER, "bob"] {
        let removal = Write { object: rollout(&[]), old: Some(rollout(&pending)), user: user.into() };
        assert_eq!(admit(&policy, &removal), Ok(()));
    }
    // Rewriting Alice's request is sending one.
    let (_, abort) = request(UserAction::Abort, "alice", "1");
    let rewrite =
        Write { object: rollout(&[(&key, &abort)]), old: Some(rollout(&pending)), user: "bob".into() };
    assert!(admit(&policy, &rewrite).is_err());
    // A service account may edit a Rollout that carries a request, as long as it sends none.
    let mut scaled = rollout(&pending);
    scaled["spec"]["replicas"] = json!(9);
    let autoscaler = "system:serviceaccount:kube-system:horizontal-pod-autoscaler";
    assert_eq!(
        admit(&policy, &Write { object: scaled, old: Some(rollout(&pending)), user: autoscaler.into() }),
        Ok(())
    );
}

#[test]
fn creating_a_rollout_with_a_request_is_checked_too() {
    let policy = policy();
    let (key, value) = request(UserAction::Pause, "alice", "1");
    let create = |user: &str| Write { object: rollout(&[(&key, &value)]), old: None, user: user.into() };
    assert_eq!(admit(&policy, &create("alice")), Ok(()));
    assert!(admit(&policy, &create("bob")).is_err());
    let bare =
        json!({"apiVersion": "bellwether.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"}});
    for user in ["bob", "system:serviceaccount:argocd:argocd-application-controller"] {
        assert_eq!(admit(&policy, &Write { object: bare.clone(), old: None, user: user.into() }), Ok(()));
        let update = Write { object: bare.clone(), old: Some(bare.clone()), user: user.into() };
        assert_eq!(admit(&policy, &update), Ok(()), "no annotations at all");
    }
}

#[test]
fn the_policy_matches_rollouts_and_fails_closed() {
    let policy = policy();
    assert_eq!(policy["kind"], "ValidatingAdmissionPolicy");
    assert_eq!(policy["spec"]["failurePolicy"], "Fail");
    let rule = &policy["spec"]["matchConstraints"]["resourceRules"][0];
    assert_eq!(rule["apiGroups"], json!(["bellwether.dev"]));
    assert_eq!(rule["resources"], json!(["rollouts"]));
    assert_eq!(rule["operations"], json!(["CREATE", "UPDATE"]));
}

/// `rollout` labelled as belonging to the installation `instance`.
fn of_instance(mut rollout: Value, instance: &str) -> Value {
    rollout["metadata"]["labels"] = json!({"bellwether.dev/instance-id": instance});
    rollout
}

/// Out of this installation's reach (labelled for another), a forged request meets no policy; the
/// write that brings the Rollout back must not take it for one already checked.
#[test]
fn a_request_added_out_of_reach_is_checked_when_the_rollout_comes_back() {
    let policy = policy();
    let (key, forged) = request(UserAction::Promote, "alice", "1");
    let elsewhere = of_instance(rollout(&[(&key, &forged)]), "x");
    let back =
        Write { object: rollout(&[(&key, &forged)]), old: Some(elsewhere.clone()), user: "mallory".into() };
    let refusals = admit(&policy, &back).expect_err("the forged request comes back unchecked");
    assert!(refusals[0].contains(r#""by":"mallory""#), "{refusals:?}");
    // Alice's own request, brought back by Alice, passes; so does a label change with no request.
    let by_alice = Write { object: rollout(&[(&key, &forged)]), old: Some(elsewhere), user: "alice".into() };
    assert_eq!(admit(&policy, &by_alice), Ok(()));
    let relabel =
        Write { object: rollout(&[]), old: Some(of_instance(rollout(&[]), "x")), user: "mallory".into() };
    assert_eq!(admit(&policy, &relabel), Ok(()));
    // Within reach all along, under the same label, an unchanged request is not sent again.
    let labelled = of_instance(rollout(&[(&key, &forged)]), "x");
    let same = Write { object: labelled.clone(), old: Some(labelled), user: "mallory".into() };
    assert_eq!(admit(&policy, &same), Ok(()));
}

/// `bellwether` and `alertmanager` are who the audit trail names for the controller's own
/// decisions and for alerts: a person so named could pass off a request as theirs.
#[test]
fn the_names_bellwether_gives_itself_and_alerts_are_not_for_people() {
    let policy = policy();
    for user in ["bellwether", "alertmanager"] {
        let (key, value) = request(UserAction::Abort, user, "1");
        assert!(admit(&policy, &sends(user, &[], &key, &value)).is_err(), "{user}");
    }
}
