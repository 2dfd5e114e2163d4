//! Values read from Secrets: Prometheus credentials and headers (in the AnalysisRun's namespace),
//! notification URLs, and the alert receiver's credentials.
//!
//! A [`SecretReader`] fetches each Secret once, however many of its keys a task needs (a bearer
//! token and a header, a username and a password, several webhooks in one Secret).

use super::error::Error;
use crate::api::{PrometheusProvider, SecretKeyRef};
use crate::metrics::prometheus::{Credentials, ResolvedAuth};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use std::collections::HashMap;

/// Reads keys of Secrets in one namespace, fetching each Secret at most once.
pub struct SecretReader {
    api: Api<Secret>,
    namespace: String,
    /// Each Secret fetched so far, `None` when it does not exist.
    fetched: HashMap<String, Option<Secret>>,
}

impl SecretReader {
    pub fn new(client: &Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client.clone(), namespace),
            namespace: namespace.into(),
            fetched: HashMap::new(),
        }
    }

    /// The text under `key`, trimmed.
    pub async fn read(&mut self, key: &SecretKeyRef) -> Result<String, Error> {
        let failure = |reason: String| Error::Secret {
            namespace: self.namespace.clone(),
            name: key.name.clone(),
            reason,
        };
        if !self.fetched.contains_key(&key.name) {
            let secret = self.api.get_opt(&key.name).await.map_err(|e| failure(e.to_string()))?;
            self.fetched.insert(key.name.clone(), secret);
        }
        let secret = self.fetched[&key.name].as_ref().ok_or_else(|| failure("does not exist".into()))?;
        let bytes = secret
            .data
            .as_ref()
            .and_then(|data| data.get(&key.key))
            .map(|value| value.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|data| data.get(&key.key))
                    .map(|v| v.clone().into_bytes())
            })
            .ok_or_else(|| failure(format!("has no key {:?}", key.key)))?;
        // Surrounding whitespace is almost always a trailing newline from `echo` or a file.
        String::from_utf8(bytes)
            .map(|value| value.trim().to_string())
            .map_err(|_| failure(format!("key {:?} is not UTF-8 text", key.key)))
    }
}

/// The auth and headers `provider` names, with the Secret values read. A provider without any
/// reads nothing.
pub async fn resolve_auth(
    client: &Client,
    namespace: &str,
    provider: &PrometheusProvider,
) -> Result<ResolvedAuth, Error> {
    let mut secrets = SecretReader::new(client, namespace);
    let mut resolved = ResolvedAuth::default();
    for header in &provider.headers {
        let value = secrets.read(&header.value_from).await?;
        resolved.headers.push((header.name.clone(), value));
    }
    if let Some(auth) = &provider.auth {
        resolved.credentials = match (&auth.bearer, &auth.basic) {
            (Some(token), _) => Some(Credentials::Bearer { token: secrets.read(token).await? }),
            (None, Some(basic)) => Some(Credentials::Basic {
                username: secrets.read(&basic.username).await?,
                password: secrets.read(&basic.password).await?,
            }),
            (None, None) => None,
        };
    }
    Ok(resolved)
}
