//! What each setting of the chart renders, by real Helm (`helm.rs`): the controller's flags, RBAC,
//! the alert receiver, the image, NOTES.txt, and the values the schema refuses.

use super::helm::{
    ADMISSION_POLICY_API, IMAGE, NAMESPACE, Rendered, lint, problems, rendered, template, with_image,
};
use super::{chart, parse_controller_args, read};
use bellwether::cli::controller::LogFormat;
use bellwether_testkit::controller_calls::{CONTROLLER_CALLS, JOB_METRIC_CALLS};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, BTreeSet};

const FULLNAME: &str = "t-bellwether";
const SERVICE_ACCOUNT: &str = "t-bellwether";

fn count(args: &[String], flag: &str) -> usize {
    args.iter().filter(|a| *a == flag || a.starts_with(&format!("{flag}="))).count()
}

/// `helm template` refuses `sets`; its message.
fn refused(sets: &[&str]) -> String {
    match template(sets, &[]) {
        Ok(rendered) => panic!("helm template renders {sets:?}:\n{:?}", rendered.names()),
        Err(message) => message,
    }
}

#[test]
fn the_readmes_extra_args_example_overrides_the_chart_flag() {
    // The chart README's example, with the flag the chart sets from leaderElection too.
    let rendered = rendered(
        &with_image(&[
            "watchNamespace=shop",
            "instanceId=blue",
            "replicas=2",
            "podDisruptionBudget.enabled=true",
            "extraArgs={--lease-duration-seconds=20}",
        ]),
        &[],
    );
    let args = rendered.args();
    assert_eq!(count(&args, "--lease-duration-seconds"), 1, "{args:?}");
    assert!(args.contains(&"--lease-duration-seconds=20".to_string()), "{args:?}");
    let parsed = parse_controller_args(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert_eq!(parsed.lease_duration_seconds, 20);
    assert!(parsed.leader_elect);
    for documented in [
        "--namespace=shop",
        "--instance-id=blue",
        "--leader-elect",
        "--leader-elect-namespace=bellwether",
        "--identity=$(POD_NAME)",
    ] {
        assert!(args.contains(&documented.to_string()), "no {documented} in {args:?}");
    }
}

#[test]
fn extra_args_override_only_the_flags_they_name() {
    let rendered = rendered(
        &with_image(&[
            "replicas=2",
            "watchNamespace=shop",
            "alerts.enabled=true",
            "alerts.authSecret=bellwether-alerts",
            "readableSecrets[0].namespace=shop",
            "readableSecrets[0].name=prometheus-token",
            "webAllowedUrlPrefixes[0]=https://slo.example.com/api/",
            "webAllowedUrlPrefixes[1]=http://metrics.shop:8080",
            // Flags whose names end another flag's, one as two arguments, and a repeatable one.
            "extraArgs={--leader-elect-namespace=elsewhere,--alerts-auth-secret-namespace=secrets,--log-format,text,--readable-secret=shop/extra}",
        ]),
        &[],
    );
    let args = rendered.args();
    for (flag, times) in [
        ("--namespace", 1),
        ("--leader-elect-namespace", 1),
        ("--alerts-auth-secret", 1),
        ("--alerts-auth-secret-namespace", 1),
        ("--log-format", 1),
        ("--readable-secret", 2),
        ("--web-allowed-url-prefix", 2),
    ] {
        assert_eq!(count(&args, flag), times, "{flag} in {args:?}");
    }
    let parsed = parse_controller_args(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert_eq!(parsed.namespace.as_deref(), Some("shop"));
    assert_eq!(parsed.leader_elect_namespace.as_deref(), Some("elsewhere"));
    assert_eq!(parsed.alerts_auth_secret.as_deref(), Some("bellwether-alerts"));
    assert_eq!(parsed.alerts_auth_secret_namespace.as_deref(), Some("secrets"));
    assert_eq!(parsed.log_format, LogFormat::Text);
    assert_eq!(
        parsed.readable_secrets,
        [("shop".to_string(), "prometheus-token".to_string()), ("shop".into(), "extra".into())]
    );
    let prefixes: Vec<String> = parsed.web_allowed_url_prefixes.iter().map(ToString::to_string).collect();
    assert_eq!(prefixes, ["https://slo.example.com/api/", "http://metrics.shop:8080/"]);
    // A switch the chart sets is given once too.
    let args = rendered_args(&["replicas=2", "extraArgs={--leader-elect}"]);
    assert_eq!(count(&args, "--leader-elect"), 1, "{args:?}");
    assert!(parse_controller_args(&args).is_ok());
}

fn rendered_args(sets: &[&str]) -> Vec<String> {
    rendered(&with_image(sets), &[]).args()
}

#[test]
fn replicas_leader_election_and_sharding() {
    let replicas = |r: &Rendered| r.get("Deployment", FULLNAME)["spec"]["replicas"].clone();
    let single = rendered(&[IMAGE], &[]);
    assert_eq!(replicas(&single), json!(1));
    let args = single.args();
    for flag in
        ["--leader-elect", "--shards", "--leader-elect-namespace", "--identity", "--lease-duration-seconds"]
    {
        assert_eq!(count(&args, flag), 0, "{flag} with one replica: {args:?}");
    }
    assert!(!single.has("Role", "t-bellwether-leader-election"));

    let elected = rendered(&with_image(&["replicas=3", "leaderElection.leaseDurationSeconds=40"]), &[]);
    assert_eq!(replicas(&elected), json!(3));
    let parsed = parse_controller_args(&elected.args()).unwrap();
    assert!(parsed.leader_elect && parsed.shards.is_none());
    assert_eq!(
        (parsed.lease_duration_seconds, parsed.leader_elect_namespace.as_deref()),
        (40, Some(NAMESPACE))
    );
    assert!(elected.has("Role", "t-bellwether-leader-election"));

    let sharded = rendered(&with_image(&["replicas=5", "sharding.replicas=3", "sharding.shards=32"]), &[]);
    assert_eq!(replicas(&sharded), json!(3), "sharding.replicas, not replicas");
    let parsed = parse_controller_args(&sharded.args()).unwrap();
    assert_eq!((parsed.shards, parsed.leader_elect), (Some(32), false));
    let role = sharded.get("Role", "t-bellwether-leader-election");
    assert_eq!(role["metadata"]["namespace"], NAMESPACE);
    assert!(
        grants_of(role)
            .iter()
            .all(|(group, resource, _)| group == "coordination.k8s.io" && resource == "leases")
    );
}

/// One permission: API group, resource (with subresource), verb.
type Grant = (String, String, String);

fn grants_of(role: &Json) -> BTreeSet<Grant> {
    let strings = |rule: &Json, key: &str| -> Vec<String> {
        rule[key].as_array().into_iter().flatten().map(|s| s.as_str().unwrap().to_string()).collect()
    };
    let mut grants = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        for group in strings(rule, "apiGroups") {
            for resource in strings(rule, "resources") {
                for verb in strings(rule, "verbs") {
                    grants.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    grants
}

/// The roles bound to the controller's ServiceAccount, with the namespace each grants in (None:
/// cluster-wide).
fn controller_roles(rendered: &Rendered) -> Vec<(Option<String>, &Json)> {
    let mut roles = Vec::new();
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        for binding in rendered.all(kind) {
            let subjects = binding["subjects"].as_array().expect("subjects");
            assert_eq!(subjects.len(), 1, "bound to the controller alone");
            if subjects[0]
                != json!({"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE})
            {
                continue;
            }
            let role_kind = binding["roleRef"]["kind"].as_str().unwrap();
            let name = binding["roleRef"]["name"].as_str().unwrap();
            let namespace = binding["metadata"]["namespace"].as_str().map(str::to_string);
            roles.push((namespace.clone(), rendered.get_in(role_kind, name, namespace.as_deref())));
        }
    }
    roles
}

fn controller_grants(rendered: &Rendered) -> BTreeSet<Grant> {
    controller_roles(rendered).into_iter().flat_map(|(_, role)| grants_of(role)).collect()
}

/// The calls the controller makes, with those of job metrics when it runs them.
fn calls(job_metrics: bool) -> BTreeSet<Grant> {
    let job_calls = if job_metrics { JOB_METRIC_CALLS } else { &[] };
    CONTROLLER_CALLS
        .iter()
        .chain(job_calls)
        .flat_map(|(group, resource, verbs)| {
            verbs.iter().map(|verb| (group.to_string(), resource.to_string(), verb.to_string()))
        })
        .collect()
}

#[test]
fn rbac_grants_exactly_the_calls_the_controller_makes() {
    let everything = [
        "replicas=2",
        "alerts.enabled=true",
        "alerts.authSecret=bellwether-alerts",
        "readableSecrets[0].namespace=shop",
        "readableSecrets[0].name=prometheus-token",
        "jobMetrics=true",
    ];
    for scope in [None, Some("watchNamespace=shop")] {
        let sets: Vec<&str> = everything.iter().copied().chain(scope).collect();
        let rendered = rendered(&with_image(&sets), &[]);
        let (granted, calls) = (controller_grants(&rendered), calls(true));
        let extra: Vec<_> = granted.difference(&calls).collect();
        let missing: Vec<_> = calls.difference(&granted).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{sets:?}: granted but not used: {extra:?}\nused but not granted: {missing:?}"
        );
        if scope.is_some() {
            // Only ClusterAnalysisTemplates, which are cluster-scoped, keep a ClusterRole.
            let cluster = rendered.get("ClusterRole", FULLNAME);
            assert_eq!(
                grants_of(cluster).into_iter().map(|(_, resource, _)| resource).collect::<BTreeSet<_>>(),
                BTreeSet::from(["clusteranalysistemplates".to_string()])
            );
            assert_eq!(rendered.get("Role", FULLNAME)["metadata"]["namespace"], "shop");
        }
    }
    // Without leader election, alerts, readable Secrets or job metrics: neither Leases, nor any
    // Secret, nor Jobs.
    let granted = controller_grants(&rendered(&[IMAGE], &[]));
    let unused: BTreeSet<Grant> = calls(false)
        .into_iter()
        .filter(|(_, resource, _)| resource != "leases" && resource != "secrets")
        .collect();
    assert_eq!(granted, unused);
    // rbac.create=false: no RBAC at all.
    let none = rendered(&with_image(&["rbac.create=false"]), &[]);
    assert!(
        none.objects.iter().all(|o| !o.value["apiVersion"].as_str().unwrap().starts_with("rbac.")),
        "{:?}",
        none.names()
    );
}

#[test]
fn job_metrics_pass_the_flag_and_grant_jobs_only_when_set() {
    let jobs = |rendered: &Rendered| -> BTreeSet<Grant> {
        controller_grants(rendered).into_iter().filter(|(group, _, _)| group == "batch").collect()
    };
    let default = rendered(&[IMAGE], &[]);
    assert!(!parse_controller_args(&default.args()).unwrap().job_metrics);
    assert!(jobs(&default).is_empty(), "{:?}", jobs(&default));
    assert!(!default.notes.contains("job metrics"), "{}", default.notes);
    for scope in [None, Some("watchNamespace=shop")] {
        let sets: Vec<&str> = ["jobMetrics=true"].into_iter().chain(scope).collect();
        let on = rendered(&with_image(&sets), &[]);
        assert!(parse_controller_args(&on.args()).unwrap().job_metrics);
        let verbs: BTreeSet<&str> = ["get", "list", "create", "delete"].into();
        assert_eq!(
            jobs(&on),
            verbs.iter().map(|verb| ("batch".to_string(), "jobs".to_string(), verb.to_string())).collect()
        );
        assert!(on.notes.contains("It runs the Jobs of job metrics"), "{}", on.notes);
        if scope.is_some() {
            let role = on.get("Role", FULLNAME);
            assert!(grants_of(role).iter().any(|(group, _, _)| group == "batch"), "in the watched namespace");
            assert!(!grants_of(on.get("ClusterRole", FULLNAME)).iter().any(|(group, _, _)| group == "batch"));
        }
    }
    assert!(refused(&with_image(&["jobMetrics=yes"])).contains("/jobMetrics"));
}

#[test]
fn secrets_and_config_maps_are_readable_by_name_only() {
    let rendered = rendered(
        &with_image(&[
            "alerts.enabled=true",
            "alerts.authSecret=bellwether-alerts",
            "readableSecrets[0].namespace=shop",
            "readableSecrets[0].name=prometheus-token",
            "readableSecrets[1].namespace=payments",
            "readableSecrets[1].name=slack-webhook",
            "readableSecrets[2].namespace=shop",
            "readableSecrets[2].name=prometheus-headers",
        ]),
        &[],
    );
    let mut readable = BTreeMap::<(Option<String>, String), Vec<String>>::new();
    for (namespace, role) in controller_roles(&rendered) {
        for rule in role["rules"].as_array().unwrap() {
            let resources: Vec<&str> =
                rule["resources"].as_array().unwrap().iter().filter_map(Json::as_str).collect();
            if resources.iter().any(|r| *r == "secrets" || *r == "configmaps") {
                assert_eq!(resources.len(), 1, "a Secret or ConfigMap rule names nothing else: {rule}");
                let names: Vec<String> = serde_json::from_value(rule["resourceNames"].clone())
                    .unwrap_or_else(|_| panic!("{rule} is not limited by resourceNames"));
                assert!(!names.is_empty());
                readable.entry((namespace.clone(), resources[0].to_string())).or_default().extend(names);
            }
        }
    }
    let expected = BTreeMap::from([
        ((None, "configmaps".to_string()), vec![bellwether::api::NAMESPACE_CONFIGMAP.to_string()]),
        (
            (Some("shop".to_string()), "secrets".into()),
            vec!["prometheus-token".to_string(), "prometheus-headers".into()],
        ),
        ((Some("payments".to_string()), "secrets".into()), vec!["slack-webhook".to_string()]),
        ((Some(NAMESPACE.to_string()), "secrets".into()), vec!["bellwether-alerts".to_string()]),
    ]);
    assert_eq!(readable, expected);
    // The controller is told the same list, and refuses every other Secret.
    let parsed = parse_controller_args(&rendered.args()).unwrap();
    assert_eq!(
        parsed.readable_secrets,
        [
            ("shop".to_string(), "prometheus-token".to_string()),
            ("payments".into(), "slack-webhook".into()),
            ("shop".into(), "prometheus-headers".into())
        ]
    );
    assert_eq!(parsed.cluster_secrets_namespace.as_deref(), Some(NAMESPACE));
    // By default: no Secret at all.
    let default = super::helm::rendered(&[IMAGE], &[]);
    assert!(!controller_grants(&default).iter().any(|(_, resource, _)| resource == "secrets"));
    assert!(parse_controller_args(&default.args()).unwrap().readable_secrets.is_empty());
}

#[test]
fn people_never_get_to_write_analysis_runs_or_any_status() {
    let rendered = rendered(&[IMAGE], &[]);
    let aggregated: Vec<&Json> = rendered
        .all("ClusterRole")
        .into_iter()
        .filter(|role| {
            role["metadata"]["labels"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with("rbac.authorization.k8s.io/aggregate-to-"))
        })
        .collect();
    assert_eq!(aggregated.len(), 2, "the view and edit additions");
    let grants: BTreeSet<Grant> = aggregated.iter().flat_map(|role| grants_of(role)).collect();
    assert!(
        grants.contains(&("bellwether.dev".into(), "rollouts".into(), "patch".into())),
        "the plugin's requests"
    );
    assert!(grants.contains(&("bellwether.dev".into(), "analysisruns".into(), "get".into())));
    let writes: Vec<&Grant> = grants
        .iter()
        .filter(|(_, resource, verb)| {
            (resource.starts_with("analysisruns") || resource.ends_with("/status"))
                && !["get", "list", "watch"].contains(&verb.as_str())
        })
        .collect();
    assert!(writes.is_empty(), "the chart lets people write verdicts: {writes:?}");
    assert!(grants.iter().all(|(group, _, _)| group == "bellwether.dev"), "only Bellwether's own resources");
    let off = super::helm::rendered(&with_image(&["rbac.aggregateToDefaultRoles=false"]), &[]);
    assert!(!off.has("ClusterRole", "t-bellwether-view") && !off.has("ClusterRole", "t-bellwether-edit"));
}

#[test]
fn the_pod_is_locked_down() {
    let rendered = rendered(&[IMAGE], &[]);
    let pod = &rendered.get("Deployment", FULLNAME)["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let container = &pod["containers"][0]["securityContext"];
    assert_eq!(container["runAsNonRoot"], true);
    assert_eq!(container["readOnlyRootFilesystem"], true);
    assert_eq!(container["allowPrivilegeEscalation"], false);
    assert_eq!(container["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(container["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["serviceAccountName"], SERVICE_ACCOUNT);
}

fn container(rendered: &Rendered) -> &Json {
    &rendered.get("Deployment", FULLNAME)["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn the_alert_receiver_is_off_by_default() {
    let rendered = rendered(&with_image(&["alerts.tls.secretName=bellwether-alerts-tls"]), &[]);
    assert!(rendered.args().iter().all(|a| !a.starts_with("--alerts")), "{:?}", rendered.args());
    let ports: Vec<&str> = container(&rendered)["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(ports, ["http-metrics", "health"]);
    assert!(!rendered.has("Service", "t-bellwether-alerts") && !rendered.has("Role", "t-bellwether-alerts"));
    let pod = &rendered.get("Deployment", FULLNAME)["spec"]["template"]["spec"];
    assert!(
        pod.get("volumes").is_none() && container(&rendered).get("volumeMounts").is_none(),
        "no TLS volume"
    );
}

#[test]
fn the_alert_receiver_with_a_secret_and_tls() {
    let rendered = rendered(
        &with_image(&[
            "alerts.enabled=true",
            "alerts.port=9443",
            "alerts.authSecret=bellwether-alerts",
            "alerts.tls.secretName=bellwether-alerts-tls",
            "alerts.service.port=443",
        ]),
        &[],
    );
    let parsed = parse_controller_args(&rendered.args()).unwrap();
    assert_eq!(parsed.alerts_addr, Some("0.0.0.0:9443".parse().unwrap()));
    assert_eq!(parsed.alerts_auth_secret.as_deref(), Some("bellwether-alerts"));
    assert_eq!(parsed.alerts_auth_secret_namespace.as_deref(), Some(NAMESPACE));
    assert!(!parsed.alerts_insecure_no_auth);
    let defaults = super::controller_defaults();
    assert_eq!(parsed.alerts_max_body_bytes, defaults.alerts_max_body_bytes);
    assert_eq!(parsed.alerts_rate_limit, defaults.alerts_rate_limit);
    // TLS: the Secret mounted as a directory (a renewed certificate reaches the pod), read-only.
    let mount = &container(&rendered)["volumeMounts"][0];
    assert_eq!(mount["readOnly"], true);
    assert!(mount.get("subPath").is_none());
    let directory = mount["mountPath"].as_str().unwrap();
    assert_eq!(parsed.alerts_tls_cert_file, Some(format!("{directory}/tls.crt").into()));
    assert_eq!(parsed.alerts_tls_key_file, Some(format!("{directory}/tls.key").into()));
    let pod = &rendered.get("Deployment", FULLNAME)["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"],
        json!([{"name": mount["name"], "secret": {"secretName": "bellwether-alerts-tls"}}])
    );
    // The port, and the Service Alertmanager posts to.
    assert!(
        container(&rendered)["ports"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "alerts", "containerPort": 9443, "protocol": "TCP"}))
    );
    let service = rendered.get("Service", "t-bellwether-alerts");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "alerts", "port": 443, "targetPort": "alerts", "protocol": "TCP"}])
    );
    // Get on the one Secret, by name, in the release namespace.
    let role = rendered.get("Role", "t-bellwether-alerts");
    assert_eq!(role["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["bellwether-alerts"], "verbs": ["get"]}])
    );
    assert!(
        controller_roles(&rendered).iter().any(|(_, r)| r["metadata"]["name"] == "t-bellwether-alerts"),
        "bound to the controller"
    );
}

#[test]
fn the_alert_receiver_without_credentials() {
    let rendered = rendered(&with_image(&["alerts.enabled=true", "alerts.insecureNoAuth=true"]), &[]);
    let args = rendered.args();
    assert_eq!(count(&args, "--alerts-insecure-no-auth"), 1);
    assert_eq!(count(&args, "--alerts-auth-secret") + count(&args, "--alerts-auth-secret-namespace"), 0);
    assert!(parse_controller_args(&args).unwrap().alerts_insecure_no_auth);
    assert!(!rendered.has("Role", "t-bellwether-alerts"), "no Secret to read");
    assert!(
        rendered.notes.contains("anyone who can reach this Service can abort canaries"),
        "{}",
        rendered.notes
    );
}

#[test]
fn the_alert_receiver_refuses_to_render_without_exactly_one_kind_of_credentials() {
    let neither = refused(&with_image(&["alerts.enabled=true"]));
    assert!(neither.contains("alerts.authSecret") && neither.contains("alerts.insecureNoAuth"), "{neither}");
    let both =
        refused(&with_image(&["alerts.enabled=true", "alerts.authSecret=s", "alerts.insecureNoAuth=true"]));
    assert!(both.contains("exclusive"), "{both}");
}

#[test]
fn the_image_must_be_set_and_is_named_as_given() {
    // helm lint only logs what `required` and `fail` say: it cannot catch this.
    let message = refused(&[]);
    assert!(
        message.contains("image.repository is not set") && message.contains("Dockerfile"),
        "the refusal does not say what to do: {message}"
    );
    let image =
        |sets: &[&str]| container(&rendered(&with_image(sets), &[]))["image"].as_str().unwrap().to_string();
    assert_eq!(image(&[]), format!("registry.example.com/bellwether:{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(image(&["image.tag=0.2.0-rc.1"]), "registry.example.com/bellwether:0.2.0-rc.1");
    assert_eq!(
        read(&chart().join("values.yaml")).matches("  repository: \"\"\n").count(),
        1,
        "no default image"
    );
}

#[test]
fn values_that_kubernetes_or_the_controller_would_refuse_are_refused() {
    for (set, why) in [
        ("watchNamespace=Shop_1", "/watchNamespace"),
        ("watchNamespace=shop.example", "/watchNamespace"),
        ("instanceId=Blue Team", "/instanceId"),
        ("instanceId=blue-", "/instanceId"),
        ("image.repository=Registry.example.com/Bellwether", "/image/repository"),
        ("image.repository=registry.example.com/bellwether:0.1.0", "/image/repository"),
        ("image.tag=0.1.0 beta", "/image/tag"),
        ("readableSecrets[0].namespace=Shop", "/readableSecrets/0/namespace"),
        ("serviceAccount.name=Bellwether_Controller", "/serviceAccount/name"),
        ("alerts.authSecret=alerts token", "/alerts/authSecret"),
        ("alerts.tls.secretName=-tls", "/alerts/tls/secretName"),
        ("alerts.port=8081", "/alerts/port"),
        ("podLabels.team=platform team", "/podLabels/team"),
        ("podLabels.my team=platform", "'my team'"),
        ("podAnnotations.example\\.com/=x", "'example.com/'"),
        ("nodeSelector.kubernetes\\.io/os=linux os", "/nodeSelector"),
        ("priorityClassName=High", "/priorityClassName"),
        ("imagePullSecrets[0].name=Registry", "/imagePullSecrets/0/name"),
        ("metrics.serviceMonitor.interval=30 seconds", "/metrics/serviceMonitor/interval"),
        ("podDisruptionBudget.minAvailable=half", "/podDisruptionBudget/minAvailable"),
        ("requestPolicy.extraRequesters={ci\"deployer}", "/requestPolicy/extraRequesters/0"),
        ("extraArgs={}", "/extraArgs/0"),
        ("prometheusAuth.readSecrets=true", "prometheusAuth"),
        ("replica=2", "replica"),
    ] {
        let sets = with_image(&[set]);
        let message = refused(&sets);
        assert!(
            message.contains("don't meet the specifications of the schema") && message.contains(why),
            "{set}: {message}"
        );
        assert!(lint(&sets).is_err(), "helm lint passes {set}");
    }
    // What the patterns let through.
    for set in [
        "image.repository=localhost:5000/platform/bell_wether",
        "instanceId=Blue.Team-2",
        "podDisruptionBudget.minAvailable=50%",
        "metrics.serviceMonitor.interval=1h30m",
    ] {
        let rendered = rendered(&with_image(&[set]), &[]);
        assert_eq!(problems(&rendered), Vec::<String>::new(), "{set}");
    }
}

#[test]
fn notes_say_what_was_installed_how_to_check_it_and_what_next() {
    let notes = rendered(&[IMAGE], &[]).notes;
    for expected in [
        "installed as release t in namespace bellwether",
        "image registry.example.com/bellwether:",
        "of every namespace without a bellwether.dev/instance-id label",
        "It may read no Secret",
        "kubectl -n bellwether rollout status deployment/t-bellwether",
        "kubectl -n bellwether logs deployment/t-bellwether",
        "does not serve ValidatingAdmissionPolicy",
        "docs/install.md walks through each step",
    ] {
        assert!(notes.contains(expected), "no {expected:?} in NOTES.txt:\n{notes}");
    }
    assert!(!notes.contains("Alertmanager"), "{notes}");
    let notes = rendered(
        &with_image(&[
            "watchNamespace=shop",
            "instanceId=blue",
            "alerts.enabled=true",
            "alerts.authSecret=bellwether-alerts",
            "alerts.tls.secretName=bellwether-alerts-tls",
            "readableSecrets[0].namespace=shop",
            "readableSecrets[0].name=prometheus-token",
        ]),
        &[ADMISSION_POLICY_API],
    )
    .notes;
    for expected in [
        "in namespace shop labelled bellwether.dev/instance-id=blue",
        "the Secrets shop/prometheus-token, and no other",
        "https://t-bellwether-alerts.bellwether.svc:8082/v1/alerts",
        "the Secret bellwether-alerts",
    ] {
        assert!(notes.contains(expected), "no {expected:?} in NOTES.txt:\n{notes}");
    }
    assert!(!notes.contains("does not serve ValidatingAdmissionPolicy"), "{notes}");
}

#[test]
fn the_request_policy_exists_where_the_cluster_serves_it_and_binds_this_releases_rollouts() {
    let policy = "ValidatingAdmissionPolicy";
    let binding_kind = "ValidatingAdmissionPolicyBinding";
    assert!(rendered(&[IMAGE], &[]).all(policy).is_empty(), "rendered where the cluster does not serve it");
    let off = rendered(&with_image(&["requestPolicy.enabled=false"]), &[ADMISSION_POLICY_API]);
    assert!(off.all(policy).is_empty() && off.all(binding_kind).is_empty());

    let everywhere = rendered(&[IMAGE], &[ADMISSION_POLICY_API]);
    let binding = everywhere.get(binding_kind, "t-bellwether-requests");
    assert_eq!(
        binding["spec"]["policyName"],
        everywhere.get(policy, "t-bellwether-requests")["metadata"]["name"]
    );
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
    assert_eq!(
        binding["spec"]["matchResources"],
        json!({"objectSelector": {"matchExpressions": [{"key": "bellwether.dev/instance-id", "operator": "DoesNotExist"}]}}),
        "without an instance ID, the Rollouts that have none, in every namespace"
    );
    let scoped = rendered(
        &with_image(&[
            "watchNamespace=shop",
            "instanceId=blue",
            "requestPolicy.validationActions={Warn,Audit}",
        ]),
        &[ADMISSION_POLICY_API],
    );
    let binding = scoped.get(binding_kind, "t-bellwether-requests");
    assert_eq!(binding["spec"]["validationActions"], json!(["Warn", "Audit"]));
    assert_eq!(
        binding["spec"]["matchResources"],
        json!({
            "objectSelector": {"matchLabels": {"bellwether.dev/instance-id": "blue"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}},
        })
    );
}

/// The `helm` commands in a code block of the chart's README under "Check the chart", joined
/// across `\` line ends, each with what a `# fails: TEXT` comment says its error must contain.
fn readme_commands() -> Vec<(Vec<String>, Option<String>)> {
    let readme = read(&chart().join("README.md"));
    let section = readme.split("\n## Check the chart\n").nth(1).expect("a section \"Check the chart\"");
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("a sh block");
    let mut commands = Vec::new();
    for line in block.replace("\\\n", " ").lines().filter(|l| !l.trim().is_empty()) {
        let (command, comment) = line.split_once('#').map_or((line, None), |(c, m)| (c, Some(m.trim())));
        let fails = comment.map(|m| {
            m.strip_prefix("fails: ")
                .unwrap_or_else(|| panic!("a comment other than `fails: ...`: {m}"))
                .to_string()
        });
        commands.push((shell_words(command), fails));
    }
    commands
}

/// `line` split into words as a shell would, for the plain words and single-quoted ones the
/// README uses; anything else is refused rather than guessed at.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => words.extend(word.take()),
            '"' | '\\' | '$' | '`' | '*' | '?' | ';' | '&' | '|' | '<' | '>' if !quoted => {
                panic!("{c:?} in a README command: extend shell_words to read {line:?}")
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(!quoted, "an unclosed quote in {line:?}");
    words.extend(word);
    words
}

#[test]
fn shell_words_reads_the_readmes_quoting() {
    assert_eq!(
        shell_words("helm template t  charts/bellwether --set 'extraArgs={--a=1}' --set x=''"),
        ["helm", "template", "t", "charts/bellwether", "--set", "extraArgs={--a=1}", "--set", "x="]
    );
    assert!(std::panic::catch_unwind(|| shell_words("helm --set \"a=b\"")).is_err());
    assert!(std::panic::catch_unwind(|| shell_words("helm --set 'a=b")).is_err());
}

#[test]
fn the_commands_in_the_charts_readme_do_what_it_says() {
    let commands = readme_commands();
    assert!(commands.len() >= 5, "{commands:?}");
    for (words, fails) in commands {
        assert_eq!(words[0], "helm", "{words:?}");
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let (ok, stdout, stderr) = super::helm::run_tools(&args, "");
        match (fails, ok) {
            (None, true) if args[0] == "template" => {
                let rendered = super::helm::parse_rendered(&stdout);
                assert_eq!(problems(&rendered), Vec::<String>::new(), "{words:?}");
            }
            (None, true) => {}
            (None, false) => panic!("{words:?} fails:\n{stdout}\n{stderr}"),
            (Some(expected), false) => {
                assert!(
                    format!("{stdout}{stderr}").contains(&expected),
                    "{words:?} fails without saying {expected:?}:\n{stdout}\n{stderr}"
                )
            }
            (Some(expected), true) => {
                panic!("{words:?} succeeds, though the README says it fails: {expected}")
            }
        }
    }
}
