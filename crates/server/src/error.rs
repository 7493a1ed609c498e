//! The one HTTP error type: every failure of a request becomes an RFC 9457
//! `application/problem+json` body with a stable `type`. Domain refusals are 4xx with what the
//! caller needs to fix; internal failures are a bare 500 whose cause travels only in a response
//! extension, for the trace layer to log (never to the client).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use machine::{FieldError, Rejection};
use runtime::Refused;
use runtime::distribution::Refusal;

use crate::dto::{FieldErrorDto, Problem};

/// The base of every problem `type`.
pub const PROBLEM_BASE: &str = "https://sopflow.dev/problems/";

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No token, or an unknown, revoked or expired one.
    #[error("authentication is required")]
    Unauthorized,
    /// Visible, but not the caller's to act on.
    #[error("{0}")]
    Forbidden(String),
    /// Does not exist, or is not visible to the caller.
    #[error("not found")]
    NotFound,
    /// No route has this path.
    #[error("no such endpoint")]
    NoRoute,
    /// The route exists, but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Someone else was first, or the thing has ended.
    #[error("{0}")]
    Conflict(String),
    /// The body or the form is invalid; every field error is listed.
    #[error("{detail}")]
    Validation {
        /// A summary.
        detail: String,
        /// Every field error.
        errors: Vec<FieldError>,
    },
    /// An `Idempotency-Key` reused for a different request.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyMismatch,
    /// Malformed JSON, bad query or path parameters.
    #[error("{0}")]
    BadRequest(String),
    /// A pack archive, its signature or a dealer's overlay was refused; nothing was stored or
    /// deployed. Each reason has its own stable `type` ([`PackProblem`]); conflicts of an
    /// overlay are listed in `errors` with their `file:line:col`.
    #[error("{detail}")]
    Pack {
        /// Why.
        problem: PackProblem,
        /// What happened in this case.
        detail: String,
        /// Every diagnostic, if any.
        errors: Vec<FieldError>,
    },
    /// The body is larger than the endpoint accepts.
    #[error("the body is larger than the {limit} bytes this endpoint accepts")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The engine is shutting down or overloaded.
    #[error("the service is unavailable: {0}")]
    Unavailable(String),
    /// A bug or a failure of the database: 500, no details for the client.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a pack or an overlay was refused: each reason is a stable problem `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackProblem {
    /// The server trusts no publisher key (`sopflow serve --trust`).
    NoTrustedKeys,
    /// Not a readable pack archive, or over a size limit.
    Unreadable,
    /// The contents differ from the signed listing.
    Tampered,
    /// Unsigned, or the signature does not match.
    BadSignature,
    /// Signed by a key this server does not trust.
    Untrusted,
    /// The pack in the archive is not valid.
    InvalidPack,
    /// The overlay cannot be read, or is for another dealer.
    InvalidOverlay,
    /// The overlay does not apply to this version (each conflict listed).
    OverlayConflicts,
    /// An older version than the installed one, without `force`.
    Downgrade,
    /// The version is published with another archive.
    VersionTaken,
    /// No such version is published.
    NotPublished,
    /// The installed version cannot be read again, or someone installed meanwhile.
    InstallationConflict,
}

impl PackProblem {
    fn status(self) -> StatusCode {
        match self {
            PackProblem::Unreadable => StatusCode::BAD_REQUEST,
            PackProblem::Tampered
            | PackProblem::BadSignature
            | PackProblem::Untrusted
            | PackProblem::InvalidPack
            | PackProblem::InvalidOverlay
            | PackProblem::NotPublished => StatusCode::UNPROCESSABLE_ENTITY,
            PackProblem::NoTrustedKeys
            | PackProblem::OverlayConflicts
            | PackProblem::Downgrade
            | PackProblem::VersionTaken
            | PackProblem::InstallationConflict => StatusCode::CONFLICT,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            PackProblem::NoTrustedKeys => "pack-no-trusted-keys",
            PackProblem::Unreadable => "pack-unreadable",
            PackProblem::Tampered => "pack-tampered",
            PackProblem::BadSignature => "pack-bad-signature",
            PackProblem::Untrusted => "pack-untrusted",
            PackProblem::InvalidPack => "pack-invalid",
            PackProblem::InvalidOverlay => "overlay-invalid",
            PackProblem::OverlayConflicts => "overlay-conflicts",
            PackProblem::Downgrade => "pack-downgrade",
            PackProblem::VersionTaken => "pack-version-taken",
            PackProblem::NotPublished => "pack-not-published",
            PackProblem::InstallationConflict => "installation-conflict",
        }
    }

    fn title(self) -> &'static str {
        match self {
            PackProblem::NoTrustedKeys => "No publisher key is trusted",
            PackProblem::Unreadable => "Not a readable pack archive",
            PackProblem::Tampered => "The archive was altered",
            PackProblem::BadSignature => "The signature is missing or wrong",
            PackProblem::Untrusted => "Signed by an untrusted key",
            PackProblem::InvalidPack => "The pack is not valid",
            PackProblem::InvalidOverlay => "The overlay is not valid",
            PackProblem::OverlayConflicts => "The overlay does not apply",
            PackProblem::Downgrade => "Older than the installed version",
            PackProblem::VersionTaken => "The version is already published",
            PackProblem::NotPublished => "Not published",
            PackProblem::InstallationConflict => "The installation changed",
        }
    }
}

/// One diagnostic as a problem's error: where (`file:line:col`) and what (`[code] message`).
fn diagnostic_error(d: &model::Diagnostic) -> FieldError {
    FieldError { path: format!("{}:{}", d.file.display(), d.span), message: format!("[{}] {}", d.code, d.message) }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        let detail = r.to_string();
        let pack = |problem, errors| Error::Pack { problem, detail: detail.clone(), errors };
        match &r {
            Refusal::NoTrustedKeys => pack(PackProblem::NoTrustedKeys, Vec::new()),
            Refusal::Overlay(d) => pack(PackProblem::InvalidOverlay, d.iter().map(diagnostic_error).collect()),
            Refusal::OverlayConflicts(d) => {
                pack(PackProblem::OverlayConflicts, d.iter().map(diagnostic_error).collect())
            }
            Refusal::OverlayOfOtherDealer { .. } => pack(PackProblem::InvalidOverlay, Vec::new()),
            Refusal::VersionTaken { .. } => pack(PackProblem::VersionTaken, Vec::new()),
            Refusal::NotPublished { .. } => pack(PackProblem::NotPublished, Vec::new()),
            Refusal::InstalledUnreadable { .. } | Refusal::Concurrent { .. } => {
                pack(PackProblem::InstallationConflict, Vec::new())
            }
            Refusal::Pack(e) => match e {
                packs::Error::Archive(_) | packs::Error::Io { .. } => pack(PackProblem::Unreadable, Vec::new()),
                packs::Error::Tampered { .. } => pack(PackProblem::Tampered, Vec::new()),
                packs::Error::Unsigned | packs::Error::BadSignature | packs::Error::BadKey { .. } => {
                    pack(PackProblem::BadSignature, Vec::new())
                }
                packs::Error::Untrusted { .. } => pack(PackProblem::Untrusted, Vec::new()),
                packs::Error::Downgrade { .. } => pack(PackProblem::Downgrade, Vec::new()),
                packs::Error::OtherPack { .. } => pack(PackProblem::InvalidPack, Vec::new()),
                packs::Error::Invalid { diagnostics } => {
                    pack(PackProblem::InvalidPack, diagnostics.iter().map(diagnostic_error).collect())
                }
            },
        }
    }
}

/// The cause of a 500, attached to the response for the trace layer to log.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl Error {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound | Error::NoRoute => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Validation { .. } | Error::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Pack { problem, .. } => problem.status(),
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable suffix of the problem `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Unauthorized => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound => "not-found",
            Error::NoRoute => "no-route",
            Error::MethodNotAllowed => "method-not-allowed",
            Error::Conflict(_) => "conflict",
            Error::Validation { .. } => "validation-failed",
            Error::IdempotencyMismatch => "idempotency-mismatch",
            Error::BadRequest(_) => "bad-request",
            Error::Pack { problem, .. } => problem.kind(),
            Error::TooLarge { .. } => "too-large",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Error::Unauthorized => "Authentication required",
            Error::Forbidden(_) => "Not yours to act on",
            Error::NotFound => "Not found",
            Error::NoRoute => "No such endpoint",
            Error::MethodNotAllowed => "Method not allowed",
            Error::Conflict(_) => "Conflict",
            Error::Validation { .. } => "The request has errors",
            Error::IdempotencyMismatch => "Idempotency-Key reused",
            Error::BadRequest(_) => "Bad request",
            Error::Pack { problem, .. } => problem.title(),
            Error::TooLarge { .. } => "Body too large",
            Error::Unavailable(_) => "Service unavailable",
            Error::Internal(_) => "Internal error",
        }
    }

    /// A body-level validation error with one message.
    pub fn invalid(path: &str, message: impl Into<String>) -> Error {
        let message = message.into();
        Error::Validation {
            detail: format!("{path}: {message}"),
            errors: vec![FieldError { path: path.to_string(), message }],
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        let detail = match self {
            // Internal causes are logged, not shown.
            Error::Internal(_) => None,
            Error::Unauthorized => Some("send `Authorization: Bearer <token>` with a valid token".to_string()),
            other => Some(other.to_string()),
        };
        let errors = match self {
            Error::Validation { errors, .. } | Error::Pack { errors, .. } => {
                errors.iter().map(|e| FieldErrorDto { path: e.path.clone(), message: e.message.clone() }).collect()
            }
            _ => Vec::new(),
        };
        Problem {
            r#type: format!("{PROBLEM_BASE}{}", self.kind()),
            title: self.title().to_string(),
            status: self.status().as_u16(),
            detail,
            errors,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if matches!(self, Error::Unauthorized) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Error::Internal(cause) = self {
            response.extensions_mut().insert(InternalCause(cause));
        }
        response
    }
}

impl From<runtime::Error> for Error {
    fn from(e: runtime::Error) -> Error {
        match e {
            runtime::Error::ShuttingDown => Error::Unavailable("the engine is shutting down".into()),
            runtime::Error::Contention(_) => {
                Error::Conflict("the instance kept changing under concurrent writes; try again".into())
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Error {
        Error::Internal(e.to_string())
    }
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Error {
        match r {
            Refused::Rejected(rejection) => rejection.into(),
            Refused::TaskGone { task } => {
                Error::Conflict(format!("the task `{task}` was already completed or cancelled"))
            }
            Refused::NoSuchInstance(_) => Error::NotFound,
            Refused::NotDeployed { process, .. } => {
                Error::invalid("/process", format!("the process `{process}` is not deployed for your dealer"))
            }
            Refused::AlreadyExists(id) => Error::Conflict(format!("the instance `{id}` already exists")),
            r @ Refused::CannotMigrate(_) => Error::Conflict(r.to_string()),
            Refused::Denied(runtime::Denied::Hidden) => Error::NotFound,
            Refused::Denied(runtime::Denied::Forbidden(why)) => Error::Forbidden(why),
            Refused::Denied(runtime::Denied::Conflict(why)) => Error::Conflict(why),
        }
    }
}

impl From<Rejection> for Error {
    fn from(r: Rejection) -> Error {
        match r {
            Rejection::InvalidForm(errors) => Error::Validation {
                detail: format!("{} field(s) of the form are invalid; nothing was changed", errors.len()),
                errors,
            },
            Rejection::InvalidData(errors) => Error::Validation {
                detail: format!("{} field(s) of the data are invalid; nothing was started", errors.len()),
                errors,
            },
            Rejection::DelegateLacksRole { .. } => Error::invalid("/to", r.to_string()),
            Rejection::NotCandidate { .. } => Error::Forbidden(r.to_string()),
            Rejection::NoSuchIncident(_) => Error::NotFound,
            Rejection::Ended
            | Rejection::NoSuchTask(_)
            | Rejection::ClaimedByOther { .. }
            | Rejection::NotAssignee(_)
            | Rejection::NotWaiting(_)
            | Rejection::Stale(_) => Error::Conflict(r.to_string()),
        }
    }
}
