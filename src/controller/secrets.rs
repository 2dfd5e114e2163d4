//! Prometheus credentials and headers, read from Secrets in the AnalysisRun's namespace, and the
//! reading of one Secret key that notifications share.

use super::error::Error;
use crate::api::{PrometheusProvider, SecretKeyRef};
use crate::metrics::prometheus::{Credentials, ResolvedAuth};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

/// The auth and headers `provider` names, with the Secret values read. A provider without any
/// reads nothing.
pub async fn resolve_auth(
    client: &Client,
    namespace: &str,
    provider: &PrometheusProvider,
) -> Result<ResolvedAuth, Error> {
    let mut resolved = ResolvedAuth::default();
    for header in &provider.headers {
        let value = read(client, namespace, &header.value_from).await?;
        resolved.headers.push((header.name.clone(), value));
    }
    if let Some(auth) = &provider.auth {
        resolved.credentials = match (&auth.bearer, &auth.basic) {
            (Some(token), _) => Some(Credentials::Bearer { token: read(client, namespace, token).await? }),
            (None, Some(basic)) => Some(Credentials::Basic {
                username: read(client, namespace, &basic.username).await?,
                password: read(client, namespace, &basic.password).await?,
            }),
            (None, None) => None,
        };
    }
    Ok(resolved)
}

/// The text under `key` of a Secret in `namespace`, trimmed.
pub async fn read(client: &Client, namespace: &str, key: &SecretKeyRef) -> Result<String, Error> {
    let failure =
        |reason: String| Error::Secret { namespace: namespace.into(), name: key.name.clone(), reason };
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&key.name)
        .await
        .map_err(|e| failure(e.to_string()))?
        .ok_or_else(|| failure("does not exist".into()))?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|data| data.get(&key.key))
        .map(|value| value.0.clone())
        .or_else(|| {
            secret.string_data.as_ref().and_then(|data| data.get(&key.key)).map(|v| v.clone().into_bytes())
        })
        .ok_or_else(|| failure(format!("has no key {:?}", key.key)))?;
    // Surrounding whitespace is almost always a trailing newline from `echo` or a file.
    String::from_utf8(bytes)
        .map(|value| value.trim().to_string())
        .map_err(|_| failure(format!("key {:?} is not UTF-8 text", key.key)))
}
