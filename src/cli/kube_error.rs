//! A failed call to the API server, in words for the person who ran the command.
//!
//! kube's own `Display` of an API error ends in a `Debug` dump of the whole `Status`, and a
//! connection failure reads `ServiceError: client error (Connect)`, its cause two levels down. What
//! a person needs is the server's message and why it refused, or the reason the connection failed.

use std::error::Error;

/// The error in words: the server's message and reason for a refusal (`rollouts.bellwether.dev
/// "web" is forbidden: User "bob" cannot patch … (Forbidden)`), the root cause for a connection that
/// failed (`Connection refused (os error 111)`).
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let message = status.message.trim();
            let message = if message.is_empty() { "no message" } else { message };
            // A Kubernetes reason is one CamelCase word; kube fills in a sentence of its own when
            // the answer was not a Status (such as a proxy's error page), which says nothing more.
            if !status.reason.is_empty() && status.reason.chars().all(|c| c.is_ascii_alphabetic()) {
                format!("{message} ({}, HTTP {})", status.reason, status.code)
            } else {
                format!("{message} (HTTP {})", status.code)
            }
        }
        _ if is_unreachable(error) => root_cause(error).to_string(),
        other => other.to_string(),
    }
}

/// Whether the call failed before the API server answered: no connection, TLS refused, no answer
/// in time.
pub fn is_unreachable(error: &kube::Error) -> bool {
    matches!(error, kube::Error::HyperError(_) | kube::Error::Service(_))
}

/// The client error behind `error`, found along its chain of sources.
pub fn find<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a kube::Error> {
    let mut next = Some(error);
    while let Some(current) = next {
        // A `#[source]` field of type `Box<kube::Error>` is seen as the box itself.
        if let Some(found) = current.downcast_ref::<kube::Error>() {
            return Some(found);
        }
        if let Some(found) = current.downcast_ref::<Box<kube::Error>>() {
            return Some(found);
        }
        next = current.source();
    }
    None
}

/// The innermost cause, which names what went wrong (`Connection refused`, `timed out`, an
/// untrusted certificate) where the outer ones only say where.
fn root_cause<'a>(error: &'a (dyn Error + 'static)) -> &'a (dyn Error + 'static) {
    let mut root = error;
    while let Some(source) = root.source() {
        root = source;
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    #[test]
    fn a_refusal_is_the_servers_message_and_reason_without_a_debug_dump() {
        let status = Status::failure(
            "rollouts.bellwether.dev \"web\" is forbidden: User \"bob\" cannot patch resource \"rollouts\"",
            "Forbidden",
        )
        .with_code(403);
        let described = describe(&kube::Error::Api(status.boxed()));
        assert_eq!(
            described,
            "rollouts.bellwether.dev \"web\" is forbidden: User \"bob\" cannot patch resource \"rollouts\" \
             (Forbidden, HTTP 403)"
        );
    }

    #[test]
    fn an_answer_that_is_no_status_shows_its_text_and_code() {
        let status = Status::failure("404 page not found\n", "Failed to parse error data").with_code(404);
        assert_eq!(describe(&kube::Error::Api(status.boxed())), "404 page not found (HTTP 404)");
    }

    #[test]
    fn a_connection_failure_is_its_root_cause() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let error = kube::Error::Service(Box::new(refused));
        assert!(is_unreachable(&error));
        assert_eq!(describe(&error), "Connection refused");
    }

    #[test]
    fn the_client_error_is_found_behind_a_boxed_source() {
        #[derive(Debug, thiserror::Error)]
        #[error("reading Rollout shop/web")]
        struct Reading(#[source] Box<kube::Error>);
        let status = Status::failure("gone", "NotFound").with_code(404);
        let error = Reading(Box::new(kube::Error::Api(status.boxed())));
        assert!(matches!(find(&error), Some(kube::Error::Api(s)) if s.code == 404));
        assert!(find(&std::io::Error::other("no client here")).is_none());
    }
}
