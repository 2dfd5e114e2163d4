//! A real Alertmanager for tests, routing every alert to one webhook receiver.
//!
//! [`Alertmanager::start`] writes a configuration that sends each alert, in a group of its own, to
//! the [`Receiver`]'s URL with its credentials (`send_resolved: true`, no group wait, a 1s group
//! interval and a 1h repeat interval), and starts the server on a free 127.0.0.1 port without a
//! gossip cluster. A test then posts alerts with [`Alertmanager::post_alerts`] and resolves them
//! with [`Alertmanager::resolve`], as Prometheus would.
//! An alert posted without `endsAt` resolves by itself after Alertmanager's `resolve_timeout`
//! (5m), so a test that keeps one firing longer posts it again.
//!
//! The server is stopped when the value is dropped, and by a watchdog process once the test process
//! has exited, as for the Prometheus server of `prometheus.rs`, whose helpers this module uses.
//!
//! Needs Alertmanager on PATH, as `prometheus-alertmanager` (Debian's name) or `alertmanager`.

#![allow(dead_code)]

use std::fs;
use std::process::Command;

use crate::process::{Server, find_binary, request};

const INSTALL_HINT: &str = "install it with `apt-get install -y prometheus-alertmanager` \
     (Debian/Ubuntu), or run ./scripts/test, which installs it when missing";

/// Where Alertmanager sends its notifications, and how it authenticates there.
#[derive(Clone, Debug)]
pub struct Receiver {
    /// The webhook URL, such as `http://127.0.0.1:41234/alerts`.
    pub url: String,
    pub auth: ReceiverAuth,
}

/// The credentials Alertmanager sends with each notification.
#[derive(Clone, Debug)]
pub enum ReceiverAuth {
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic ...`.
    Basic {
        username: String,
        password: String,
    },
}

impl Receiver {
    pub fn none(url: &str) -> Self {
        Receiver { url: url.into(), auth: ReceiverAuth::None }
    }

    pub fn bearer(url: &str, token: &str) -> Self {
        Receiver { url: url.into(), auth: ReceiverAuth::Bearer(token.into()) }
    }

    pub fn basic(url: &str, username: &str, password: &str) -> Self {
        Receiver {
            url: url.into(),
            auth: ReceiverAuth::Basic { username: username.into(), password: password.into() },
        }
    }
}

/// A running Alertmanager.
pub struct Alertmanager {
    server: Server,
}

impl Alertmanager {
    /// Starts a server that routes every alert to `receiver`, or explains why it could not.
    pub fn start(receiver: &Receiver) -> Result<Self, String> {
        let binary = find_binary("prometheus-alertmanager")
            .or_else(|_| find_binary("alertmanager"))
            .map_err(|_| {
                format!(
                    "neither `prometheus-alertmanager` nor `alertmanager` was found on PATH; \
                     the Alertmanager tests need one: {INSTALL_HINT}"
                )
            })?;
        let dir = crate::process::temporary_dir("alertmanager")?;
        let config = dir.path().join("alertmanager.yml");
        let data = dir.path().join("data");
        let log = dir.path().join("alertmanager.log");
        fs::write(&config, config_text(receiver))
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let server = Server::start("alertmanager", dir, log, |port| {
            let mut command = Command::new(&binary);
            command
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!("--web.external-url=http://127.0.0.1:{port}"))
                // No gossip cluster: it would bind 9094 and wait for peers.
                .arg("--cluster.listen-address=");
            command
        })?;
        Ok(Self { server })
    }

    /// Posts `alerts`, a JSON array of `{labels, annotations, startsAt?, endsAt?, generatorURL}`, to
    /// `/api/v2/alerts`, as Prometheus does for its firing alerts.
    pub fn post_alerts(&self, alerts: &serde_json::Value) -> Result<(), String> {
        let (status, body) = self.request("POST", "/api/v2/alerts", &alerts.to_string())?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("Alertmanager answered {status} to the alerts posted: {body}"))
        }
    }

    /// Posts `alerts` again with `endsAt` now, which resolves them: the receiver is then sent
    /// `status: resolved` for each at the next group interval.
    pub fn resolve(&self, alerts: &serde_json::Value) -> Result<(), String> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut resolved = alerts.clone();
        for alert in resolved.as_array_mut().ok_or("the alerts to resolve are not a JSON array")? {
            let alert = alert.as_object_mut().ok_or("an alert to resolve is not a JSON object")?;
            // The start the server already has is kept; a later one posted here would be after
            // the end.
            alert.remove("startsAt");
            alert.insert("endsAt".into(), now.clone().into());
        }
        self.post_alerts(&resolved)
    }

    /// The base URL of the server's HTTP API, such as `http://127.0.0.1:41234`.
    pub fn address(&self) -> &str {
        self.server.address()
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// Sends one request and returns the status code and body of the answer.
    fn request(&self, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
        let addr = self.server.socket_address()?;
        request(addr, method, path, "application/json", body.as_bytes())
            .map_err(|e| format!("{method} {path} to Alertmanager: {e}"))
    }
}

/// The configuration: every alert in a group of its own, sent to `receiver` at once, its
/// resolution a group interval (1s) after it is posted, and not repeated within the hour.
fn config_text(receiver: &Receiver) -> String {
    // A JSON string is a YAML scalar, so any URL or secret is quoted safely.
    let quote = |text: &str| serde_json::Value::from(text).to_string();
    let mut lines = vec![
        "route:".to_string(),
        "  receiver: webhook".into(),
        "  group_by: ['...']".into(),
        "  group_wait: 0s".into(),
        "  group_interval: 1s".into(),
        "  repeat_interval: 1h".into(),
        "receivers:".into(),
        "  - name: webhook".into(),
        "    webhook_configs:".into(),
        format!("      - url: {}", quote(&receiver.url)),
        "        send_resolved: true".into(),
    ];
    match &receiver.auth {
        ReceiverAuth::None => {}
        ReceiverAuth::Bearer(token) => lines.extend([
            "        http_config:".into(),
            "          authorization:".into(),
            "            type: Bearer".into(),
            format!("            credentials: {}", quote(token)),
        ]),
        ReceiverAuth::Basic { username, password } => lines.extend([
            "        http_config:".into(),
            "          basic_auth:".into(),
            format!("            username: {}", quote(username)),
            format!("            password: {}", quote(password)),
        ]),
    }
    lines.join("\n") + "\n"
}
