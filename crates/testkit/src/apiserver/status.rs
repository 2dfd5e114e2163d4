//! Errors as the API server reports them: a `metav1.Status` with an HTTP code and a reason.

use super::resources::Resource;
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `(field, message)` pairs, reported as `details.causes`.
    pub causes: Vec<(String, String)>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String) -> Self {
        Self { code, reason, message, causes: Vec::new() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into())
    }

    pub fn not_found(resource: &Resource, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", resource.qualified_plural()))
    }

    /// A path that names no resource this server serves.
    pub fn no_route(path: &str) -> Self {
        Self::new(404, "NotFound", format!("the server could not find the requested resource ({path})"))
    }

    /// A body over the size limit, worded as the API server words it.
    pub fn too_large(limit: usize) -> Self {
        Self::new(413, "RequestEntityTooLarge", format!("Request entity too large: limit is {limit}"))
    }

    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(405, "MethodNotAllowed", format!("the server does not allow this method ({method})"))
    }

    pub fn already_exists(resource: &Resource, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", resource.qualified_plural()))
    }

    /// A request RBAC does not allow `user`, worded as the API server words it.
    pub fn forbidden(user: &str, resource: &Resource, name: &str, verb: &str, namespace: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!(
                "{} \"{name}\" is forbidden: User \"{user}\" cannot {verb} resource \"{}\" in API group \"{}\" in the namespace \"{namespace}\"",
                resource.qualified_plural(),
                resource.plural,
                resource.group
            ),
        )
    }

    /// Whether [`Self::injected`] can answer with `code`.
    pub fn can_inject(code: u16) -> bool {
        matches!(code, 403 | 429 | 500 | 503)
    }

    /// The error a test asked for in place of the answer to `user`'s `verb` of `resource`, worded
    /// as the API server words it.
    pub fn injected(
        code: u16,
        user: &str,
        resource: &Resource,
        name: &str,
        verb: &str,
        namespace: &str,
    ) -> Self {
        match code {
            403 => Self::forbidden(user, resource, name, verb, namespace),
            429 => Self::new(429, "TooManyRequests", "the server has received too many requests".into()),
            503 => Self::new(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request".into(),
            ),
            _ => Self::new(
                500,
                "InternalError",
                "Internal error occurred: etcdserver: request timed out".into(),
            ),
        }
    }

    pub fn conflict(resource: &Resource, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply \
                 your changes to the latest version and try again",
                resource.qualified_plural()
            ),
        )
    }

    /// A server-side apply that would change fields other managers own, as `(manager, field)`.
    pub fn apply_conflict(conflicts: &[(&String, &Vec<String>)]) -> Self {
        let list: Vec<String> = conflicts
            .iter()
            .map(|(manager, path)| format!("conflict with \"{manager}\": .{}", path.join(".")))
            .collect();
        let message = match list.as_slice() {
            [one] => format!("Apply failed with 1 conflict: {one}"),
            many => format!("Apply failed with {} conflicts: {}", many.len(), many.join("\n")),
        };
        Self::new(409, "Conflict", message)
    }

    pub fn gone(message: String) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format: {content_type}"),
        )
    }

    pub fn invalid(resource: &Resource, name: &str, causes: Vec<(String, String)>) -> Self {
        let kind = match resource.group {
            "" => resource.kind.to_string(),
            group => format!("{}.{group}", resource.kind),
        };
        let list: Vec<String> = causes
            .iter()
            .map(
                |(field, message)| {
                    if field.is_empty() { message.clone() } else { format!("{field}: {message}") }
                },
            )
            .collect();
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{kind} \"{name}\" is invalid: [{}]", list.join(", ")),
            causes,
        }
    }

    /// A patch that cannot be applied, such as a JSON patch whose `test` fails.
    pub fn unprocessable_patch(message: String) -> Self {
        Self::new(422, "Invalid", message)
    }

    pub fn to_status(&self) -> Value {
        let causes: Vec<Value> = self
            .causes
            .iter()
            .map(
                |(field, message)| json!({"reason": "FieldValueInvalid", "field": field, "message": message}),
            )
            .collect();
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": {"causes": causes},
            "code": self.code,
        })
    }
}
