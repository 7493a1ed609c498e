//! `Idempotency-Key` on requests that must act once (start an instance, complete a task): the
//! first request with a key reserves it, runs, and records its answer; a retry with the same
//! key and the same request gets that answer again (with `Idempotent-Replayed: true`) without
//! acting; the same key with a different request is refused; a retry while the first is still
//! running is a 409. A request that failed records nothing (it changed nothing), so it may be
//! retried with the same key.
//!
//! Keys are per user and remembered for a day.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use store::org::{Begun, IdempotencyRow, OrgStore};

use crate::auth::Principal;
use crate::error::Error;
use crate::state::AppState;

/// Counts keyed requests: every 256th purges the expired keys.
static PURGE_EVERY: AtomicU64 = AtomicU64::new(0);

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The key of a request, if it has one (1 to 200 visible ASCII characters).
pub fn key(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let Some(v) = headers.get(HEADER) else { return Ok(None) };
    let k = v.to_str().map_err(|_| Error::BadRequest("`Idempotency-Key` must be visible ASCII".into()))?;
    if k.is_empty() || k.len() > 200 {
        return Err(Error::BadRequest("`Idempotency-Key` must have 1 to 200 characters".into()));
    }
    Ok(Some(k.to_string()))
}

/// Runs `act` once per key: see the module documentation.
pub async fn once<F, Fut>(
    state: &AppState,
    principal: &Principal,
    key: Option<String>,
    request: &str,
    body_digest: &str,
    act: F,
) -> Result<Response, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, Value), Error>>,
{
    let Some(key) = key else {
        let (status, body) = act().await?;
        return Ok((status, Json(body)).into_response());
    };
    let org = state.org();
    let now = state.now_ms();
    let request_hash = hex::encode(Sha256::digest(format!("{request}\n{body_digest}")));
    let row = IdempotencyRow {
        scope: principal.user.clone(),
        key: key.clone(),
        request_hash,
        status: 0,
        response: None,
        created_at: now,
    };
    // Forget old keys now and then; a key is only needed while a client may retry.
    if PURGE_EVERY.fetch_add(1, Ordering::Relaxed).is_multiple_of(256) {
        org.idempotency_purge(now - state.options().idempotency_ttl.as_millis() as i64).await?;
    }
    match org.idempotency_begin(&row).await? {
        Begun::Fresh => {}
        Begun::Replay(found) => {
            let status =
                u16::try_from(found.status).ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
            let body: Value =
                found.response.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
            let mut response = (status, Json(body)).into_response();
            response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(response);
        }
        Begun::Mismatch => return Err(Error::IdempotencyMismatch),
        Begun::InProgress => {
            return Err(Error::Conflict("a request with this Idempotency-Key is still being answered".into()));
        }
    }
    match act().await {
        Ok((status, body)) => {
            org.idempotency_finish(&row.scope, &key, i64::from(status.as_u16()), &body.to_string()).await?;
            Ok((status, Json(body)).into_response())
        }
        Err(e) => {
            org.idempotency_abort(&row.scope, &key).await?;
            Err(e)
        }
    }
}
