//! Every failure becomes a `metav1.Status`: one error type, one place that renders it.
//!
//! Messages and reasons follow kube-apiserver's `apimachinery/pkg/api/errors` so that clients
//! (kubectl, client-go, kube-rs) print and branch on them as they do against a real cluster.

use kubox_apimachinery::validation::{self, FieldError};
use serde_json::{json, Value};

use http::StatusCode;

/// A failed request: an HTTP code, a reason and the Status body to send.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: StatusCode,
    /// metav1.StatusReason, e.g. `NotFound`.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// metav1.StatusDetails, if any.
    pub details: Option<Value>,
    /// Seconds to wait before retrying (429, 500 retry-after, 504).
    pub retry_after: Option<u64>,
}

/// Result alias for request handling.
pub type ApiResult<T> = Result<T, ApiError>;

/// The group/resource a message talks about, as kube-apiserver prints it (`deployments.apps`).
#[derive(Debug, Clone, Default)]
pub struct GroupResource {
    /// API group ("" for core).
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl GroupResource {
    /// New group/resource.
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

fn details(gr: &GroupResource, name: &str) -> Value {
    let mut d = json!({});
    if !name.is_empty() {
        d["name"] = json!(name);
    }
    if !gr.group.is_empty() {
        d["group"] = json!(gr.group);
    }
    if !gr.resource.is_empty() {
        d["kind"] = json!(gr.resource);
    }
    d
}

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// The same error with these `details.causes` (kept beside its other details).
    pub fn with_causes(mut self, causes: Vec<Value>) -> Self {
        let mut details = self.details.take().unwrap_or_else(|| json!({}));
        if details.get("retryAfterSeconds") == Some(&json!(0)) {
            if let Some(m) = details.as_object_mut() {
                m.remove("retryAfterSeconds");
            }
            self.retry_after = None;
        }
        details["causes"] = Value::Array(causes);
        self.details = Some(details);
        self
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// An error whose code and reason come from elsewhere (an admission webhook's `Status`):
    /// known reasons are kept, others become empty as an unknown reason reads in Go clients.
    pub fn with_code_and_reason(
        code: StatusCode,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        const KNOWN: &[&str] = &[
            "Unauthorized",
            "Forbidden",
            "NotFound",
            "AlreadyExists",
            "Conflict",
            "Gone",
            "Invalid",
            "ServerTimeout",
            "Timeout",
            "TooManyRequests",
            "BadRequest",
            "MethodNotAllowed",
            "NotAcceptable",
            "RequestEntityTooLarge",
            "UnsupportedMediaType",
            "InternalError",
            "Expired",
            "ServiceUnavailable",
        ];
        let reason = KNOWN.iter().find(|k| **k == reason).copied().unwrap_or("");
        Self::new(code, reason, message)
    }

    /// 404 for a named object.
    pub fn not_found(gr: &GroupResource, name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{gr} \"{name}\" not found"),
        )
        .with_details(details(gr, name))
    }

    /// 404 for a path that serves nothing.
    pub fn path_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// 409 AlreadyExists.
    pub fn already_exists(gr: &GroupResource, name: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{gr} \"{name}\" already exists"),
        )
        .with_details(details(gr, name))
    }

    /// 409 Conflict on an optimistic-concurrency failure.
    pub fn conflict(gr: &GroupResource, name: &str, why: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("Operation cannot be fulfilled on {gr} \"{name}\": {why}"),
        )
        .with_details(details(gr, name))
    }

    /// The message kube-apiserver uses when the resourceVersion of an update is stale.
    pub fn stale_update(gr: &GroupResource, name: &str) -> Self {
        Self::conflict(
            gr,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 422 Invalid with causes.
    pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Self {
        let status = validation::invalid_status(kind, group, name, errors);
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            validation::invalid_message(kind, group, name, errors),
        )
        .with_details(status["details"].clone())
    }

    /// 409 Conflict of a server-side apply (kube's `NewApplyConflict`): the message as given,
    /// one cause per conflicting field.
    pub fn apply_conflict(message: String, causes: Vec<Value>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
            .with_details(serde_json::json!({"causes": causes}))
    }

    /// Is this a server-side apply conflict (not a stale resourceVersion to retry)?
    pub fn is_apply_conflict(&self) -> bool {
        self.details
            .as_ref()
            .is_some_and(|d| d["causes"][0]["reason"].as_str() == Some("FieldManagerConflict"))
    }

    /// 403 Forbidden.
    pub fn forbidden(gr: &GroupResource, name: &str, why: &str) -> Self {
        let msg = if gr.resource.is_empty() && gr.group.is_empty() {
            format!("forbidden: {why}")
        } else if name.is_empty() {
            format!("{gr} is forbidden: {why}")
        } else {
            format!("{gr} \"{name}\" is forbidden: {why}")
        };
        Self::new(StatusCode::FORBIDDEN, "Forbidden", msg).with_details(details(gr, name))
    }

    /// 401: no credential, or one nobody accepts (kube-apiserver says no more than that).
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_supported(gr: &GroupResource, verb: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{verb} is not supported on resources of kind \"{gr}\""),
        )
        .with_details(details(gr, ""))
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable() -> Self {
        Self::new(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
    }

    /// 406 NotAcceptable with kube's message for a conversion the object does not allow.
    pub fn not_acceptable_conversion(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", message.into())
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type:?})"),
        )
    }

    /// 413 RequestEntityTooLarge for a body over `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::entity_too_large(format!("limit is {limit}"))
    }

    /// 413 RequestEntityTooLarge (`Request entity too large: <why>`, kube's
    /// `NewRequestEntityTooLargeError`).
    pub fn entity_too_large(why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("Request entity too large: {why}"),
        )
    }

    /// 410 Expired (resourceVersion too old).
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Expired", message)
    }

    /// 410 for a continue token whose snapshot has been compacted.
    pub fn continue_expired() -> Self {
        Self::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
    }

    /// 429 TooManyRequests.
    pub fn too_many_requests(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message);
        e.retry_after = Some(retry_after);
        e.details = Some(json!({"retryAfterSeconds": retry_after}));
        e
    }

    /// 504 Timeout: a resourceVersion newer than the store's, not reached in time.
    pub fn too_large_resource_version(requested: i64, current: i64) -> Self {
        let mut e = Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            format!("Too large resource version: {requested}, current: {current}"),
        );
        e.retry_after = Some(1);
        e.details = Some(
            json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
        );
        e
    }

    /// 500: a bug or a broken disk. Logged where it is made.
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(%message, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
        .with_details(json!({"causes": [{"message": message}]}))
    }

    /// 500 without a reason, the message as it is: how kube-apiserver answers an error that is
    /// not an API status, such as a failed conversion webhook.
    pub fn conversion_failed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "", message)
    }

    /// 504 Timeout (kube's `NewTimeoutError`: `Timeout: <message>`).
    pub fn timeout(message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            format!("Timeout: {message}"),
        )
        .with_details(json!({"retryAfterSeconds": 0}))
    }

    /// 431: the request line and headers are larger than the server reads.
    pub fn header_fields_too_large(size: usize, limit: usize) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "",
            format!("Request Header Fields Too Large: the request line and headers are {size} bytes, more than the {limit} allowed"),
        )
    }

    /// 414: a request target longer than the HTTP layer can take.
    pub fn uri_too_long(limit: usize) -> Self {
        Self::new(
            StatusCode::URI_TOO_LONG,
            "",
            format!("Request-URI Too Long: the request target is more than the {limit} bytes this server takes"),
        )
    }

    /// 503 ServiceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        )
    }

    /// The Status object for this error.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        if self.reason.is_empty() {
            if let Some(m) = s.as_object_mut() {
                m.remove("reason");
            }
        }
        s
    }
}

/// The Status of a successful delete that returns no object.
pub fn success_status(gr: &GroupResource, name: &str, uid: Option<&str>) -> Value {
    let mut d = details(gr, name);
    if let Some(uid) = uid {
        d["uid"] = json!(uid);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})
}

/// Storage errors, translated per verb in one table (k8s.io/apiserver/pkg/storage/errors).
pub fn from_store(err: kubox_storage::StoreError, gr: &GroupResource, name: &str) -> ApiError {
    use kubox_storage::StoreError as E;
    match err {
        E::NotFound(_) => ApiError::not_found(gr, name),
        E::AlreadyExists(_) => ApiError::already_exists(gr, name),
        E::Conflict { .. } => ApiError::stale_update(gr, name),
        E::Compacted {
            requested,
            compact_revision,
        } => ApiError::gone(format!(
            "too old resource version: {requested} ({compact_revision})"
        )),
        E::FutureRevision { requested, current } => {
            ApiError::too_large_resource_version(requested, current)
        }
        E::Unavailable(m) => {
            // The store will be back (an etcd that went away, a store closing): ask to retry.
            let mut e = ApiError::unavailable(m);
            e.retry_after = Some(1);
            e.details = Some(json!({"retryAfterSeconds": 1}));
            e
        }
        E::InvalidContinue(m) => ApiError::bad_request(format!("continue key is not valid: {m}")),
        E::Internal(m) => ApiError::internal(m),
    }
}
