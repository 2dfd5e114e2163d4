//! The credentials the alert receiver requires: a bearer token or a user name and password, as
//! Alertmanager's `http_config` sends them.

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use hyper::header::{AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};

/// What a request must present.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Bearer(String),
    Basic {
        username: String,
        password: String,
    },
    /// Authentication explicitly turned off (`--alerts-insecure-no-auth`).
    Disabled,
}

impl std::fmt::Debug for Credentials {
    /// Never prints the secret itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(..)"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, ..)"),
            Self::Disabled => f.write_str("Disabled"),
        }
    }
}

impl Credentials {
    /// Whether the request's `Authorization` header carries these credentials.
    pub fn admit(&self, headers: &HeaderMap) -> bool {
        let presented = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        match self {
            Self::Disabled => true,
            Self::Bearer(token) => presented
                .and_then(|v| strip_scheme(v, "Bearer"))
                .is_some_and(|given| same(given.as_bytes(), token.as_bytes())),
            Self::Basic { username, password } => presented
                .and_then(|v| strip_scheme(v, "Basic"))
                .and_then(|encoded| BASE64_STANDARD.decode(encoded.trim()).ok())
                .is_some_and(|given| same(&given, format!("{username}:{password}").as_bytes())),
        }
    }

    /// Adds the `WWW-Authenticate` challenge to a refusal's headers.
    pub fn challenge(&self, headers: &mut HeaderMap) {
        let scheme = match self {
            Self::Basic { .. } => "Basic realm=\"bellwether\"",
            _ => "Bearer realm=\"bellwether\"",
        };
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(scheme));
    }
}

/// The credentials after an authentication scheme, which is case-insensitive.
fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = header.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest.trim_start())
}

/// Compares in time that depends on the lengths only, not on where the first difference is.
fn same(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_bearer_token_must_match_exactly() {
        let credentials = Credentials::Bearer("s3cret".into());
        assert!(credentials.admit(&headers("Bearer s3cret")));
        assert!(credentials.admit(&headers("bearer s3cret")));
        assert!(!credentials.admit(&headers("Bearer s3cre")));
        assert!(!credentials.admit(&headers("Bearer s3crets")));
        assert!(!credentials.admit(&headers("Basic czNjcmV0")));
        assert!(!credentials.admit(&HeaderMap::new()));
    }

    #[test]
    fn basic_auth_must_match_user_and_password() {
        let credentials = Credentials::Basic { username: "am".into(), password: "pa:ss".into() };
        // "am:pa:ss"
        assert!(credentials.admit(&headers("Basic YW06cGE6c3M=")));
        // "am:pa:sx"
        assert!(!credentials.admit(&headers("Basic YW06cGE6c3g=")));
        assert!(!credentials.admit(&headers("Basic not base64!")));
        assert!(!credentials.admit(&headers("Bearer YW06cGE6c3M=")));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let text = format!("{:?}", Credentials::Basic { username: "am".into(), password: "hunter2".into() });
        assert!(!text.contains("hunter2"));
        assert!(!format!("{:?}", Credentials::Bearer("tok".into())).contains("tok"));
    }
}
