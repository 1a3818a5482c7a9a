//! The gateway's one error type. Handlers return it; it becomes an HTTP status exactly once, at
//! the edge: a translated page for the console (`web`), `application/problem+json` for the API
//! (`api`). Internal causes are logged where they happen and never shown to the caller.

use serde::Serialize;

/// One problem with one field of a submitted record or form (line is 0 outside a file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// The field, e.g. `event.date` or `national_ref`.
    pub field: String,
    /// The line of the file it came from, 0 when not from a file.
    pub line: u64,
    /// What is wrong, as the node or the gateway said it.
    pub reason: String,
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No valid session or token. Retry after logging in.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller's roles do not allow this. Not retryable.
    #[error("your role does not allow this")]
    Forbidden,
    /// A form came without the right anti-forgery token. Retry from a freshly loaded page.
    #[error("the form has expired or did not come from this console")]
    Csrf,
    /// Too many failed logins for this name. Retry after the given seconds.
    #[error("too many failed logins; try again in {0} seconds")]
    Throttled(u64),
    /// Input failed validation; every problem is listed. Not retryable unchanged.
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<FieldProblem>),
    /// A malformed request outside a record. Not retryable unchanged.
    #[error("{0}")]
    BadRequest(String),
    /// The request is larger than the gateway or the node takes (the limit is named). Retry
    /// in smaller parts.
    #[error("too large: {0}")]
    TooLarge(String),
    /// No such record, request or page. Not retryable.
    #[error("not found: {0}")]
    NotFound(String),
    /// The change conflicts with the current state (edited meanwhile, duplicate, wrong state).
    /// Retry after reloading.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The node could not be reached or is overloaded. Retrying later helps.
    #[error("the node is unavailable; try again shortly")]
    NodeUnavailable,
    /// The gateway's own store failed. Retrying later may help.
    #[error("the gateway store is unavailable")]
    Store,
    /// A bug or unexpected failure; details are in the log. Not retryable.
    #[error("internal error")]
    Internal,
}

impl GatewayError {
    /// The HTTP status.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            GatewayError::Unauthenticated => S::UNAUTHORIZED,
            GatewayError::Forbidden | GatewayError::Csrf => S::FORBIDDEN,
            GatewayError::Throttled(_) => S::TOO_MANY_REQUESTS,
            GatewayError::Invalid(_) => S::UNPROCESSABLE_ENTITY,
            GatewayError::BadRequest(_) => S::BAD_REQUEST,
            GatewayError::TooLarge(_) => S::PAYLOAD_TOO_LARGE,
            GatewayError::NotFound(_) => S::NOT_FOUND,
            GatewayError::Conflict(_) => S::CONFLICT,
            GatewayError::NodeUnavailable | GatewayError::Store => S::SERVICE_UNAVAILABLE,
            GatewayError::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short stable name for the problem `type` and for tests.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::Unauthenticated => "unauthenticated",
            GatewayError::Forbidden => "forbidden",
            GatewayError::Csrf => "csrf",
            GatewayError::Throttled(_) => "throttled",
            GatewayError::Invalid(_) => "invalid",
            GatewayError::BadRequest(_) => "bad-request",
            GatewayError::TooLarge(_) => "too-large",
            GatewayError::NotFound(_) => "not-found",
            GatewayError::Conflict(_) => "conflict",
            GatewayError::NodeUnavailable => "node-unavailable",
            GatewayError::Store => "store-unavailable",
            GatewayError::Internal => "internal",
        }
    }

    /// The catalogue key of the translated title shown in the console.
    pub fn title_key(&self) -> &'static str {
        match self {
            GatewayError::Unauthenticated => "error.unauthenticated",
            GatewayError::Forbidden => "error.forbidden",
            GatewayError::Csrf => "error.csrf",
            GatewayError::Throttled(_) => "error.throttled",
            GatewayError::Invalid(_) => "error.invalid",
            GatewayError::BadRequest(_) => "error.bad_request",
            GatewayError::TooLarge(_) => "error.too_large",
            GatewayError::NotFound(_) => "error.not_found",
            GatewayError::Conflict(_) => "error.conflict",
            GatewayError::NodeUnavailable => "error.node_unavailable",
            GatewayError::Store => "error.store",
            GatewayError::Internal => "error.internal",
        }
    }

    /// Detail safe to show the caller (the node's own wording for argument problems).
    pub fn detail(&self) -> String {
        match self {
            GatewayError::BadRequest(m)
            | GatewayError::TooLarge(m)
            | GatewayError::NotFound(m)
            | GatewayError::Conflict(m) => m.clone(),
            GatewayError::Throttled(s) => format!("retry after {s} seconds"),
            other => other.to_string(),
        }
    }
}

impl From<crate::store::StoreError> for GatewayError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::UserExists(_) => GatewayError::Conflict(e.to_string()),
            crate::store::StoreError::NoUser(_) => GatewayError::NotFound(e.to_string()),
            _ => {
                tracing::error!(error = %e, "gateway store failure");
                GatewayError::Store
            }
        }
    }
}
