//! Values read from Secrets: metric providers' credentials and headers (from the namespace of the
//! template that names them), notification URLs, and the alert receiver's credentials.
//!
//! A [`SecretReader`] fetches each Secret once, however many of its keys a task needs (a bearer
//! token and a header, a username and a password, several webhooks in one Secret), and only the
//! Secrets that [`ReadableSecrets`] lists: the ones the controller was granted, by name. A Secret
//! outside that list is refused before any request, with a message that says how to grant it, so
//! that RBAC scoped by name and the controller agree on what may be read.

use super::error::Error;
use crate::api::SecretKeyRef;
use crate::metrics::prometheus::{Credentials, ResolvedAuth};
use crate::metrics::provider::Provider;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The Secrets the controller may read, as `namespace/name` (`--readable-secret`). Cheap to clone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadableSecrets(Arc<BTreeSet<(String, String)>>);

impl ReadableSecrets {
    /// From `namespace/name` pairs.
    pub fn new(secrets: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(Arc::new(secrets.into_iter().collect()))
    }

    pub fn allows(&self, namespace: &str, name: &str) -> bool {
        self.0.contains(&(namespace.to_string(), name.to_string()))
    }
}

/// Reads `--readable-secret`'s `NAMESPACE/NAME`.
pub fn parse_readable_secret(text: &str) -> Result<(String, String), String> {
    match text.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((namespace.to_string(), name.to_string()))
        }
        _ => Err(format!("{text:?} is not NAMESPACE/NAME")),
    }
}

/// Reads keys of Secrets in one namespace, fetching each Secret at most once.
pub struct SecretReader {
    api: Api<Secret>,
    namespace: String,
    readable: ReadableSecrets,
    /// Each Secret fetched so far, `None` when it does not exist.
    fetched: HashMap<String, Option<Secret>>,
}

impl SecretReader {
    pub fn new(client: &Client, namespace: &str, readable: &ReadableSecrets) -> Self {
        Self {
            api: Api::namespaced(client.clone(), namespace),
            namespace: namespace.into(),
            readable: readable.clone(),
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
        if !self.readable.allows(&self.namespace, &key.name) {
            return Err(failure(format!(
                "is not among the Secrets Bellwether was granted (--readable-secret {}/{}; the chart's \
                 readableSecrets)",
                self.namespace, key.name
            )));
        }
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
    readable: &ReadableSecrets,
    provider: Provider<'_>,
) -> Result<ResolvedAuth, Error> {
    let mut secrets = SecretReader::new(client, namespace, readable);
    let mut resolved = ResolvedAuth::default();
    for header in provider.headers().iter() {
        let value = match (&header.value, &header.value_from) {
            (Some(value), _) => value.clone(),
            (None, Some(key)) => secrets.read(key).await?,
            // Refused by the schema and by the engine's check of the template.
            (None, None) => continue,
        };
        resolved.headers.push((header.name.clone(), value));
    }
    if let Some(auth) = provider.auth() {
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
