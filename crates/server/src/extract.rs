//! Extractors that turn malformed requests into problem documents instead of axum's plain-text
//! rejections: a JSON body ([`Body`], which also keeps the body's digest for idempotency),
//! query parameters ([`Params`]) and path segments ([`Id`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::Error;

/// A JSON body, parsed with the path of the first error, and its SHA-256.
#[derive(Debug)]
pub struct Body<T> {
    /// The parsed body.
    pub value: T,
    /// SHA-256 of the raw bytes (hex).
    pub digest: String,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(Error::BadRequest("the body must be JSON (`Content-Type: application/json`)".into()));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Error::BadRequest(format!("cannot read the body: {e}")))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let value = match serde_path_to_error::deserialize(de) {
            Ok(v) => v,
            Err(e) => {
                let path = pointer(&e.path().to_string());
                let inner = e.into_inner();
                return Err(if inner.is_data() {
                    Error::invalid(&path, inner.to_string())
                } else {
                    Error::BadRequest(format!("the body is not valid JSON: {inner}"))
                });
            }
        };
        Ok(Body { value, digest })
    }
}

/// `a.b[0]` (serde_path_to_error's notation) as a JSON pointer `/a/b/0`.
fn pointer(path: &str) -> String {
    if path == "." || path.is_empty() {
        return "/".into();
    }
    let mut out = String::new();
    for part in path.split('.') {
        let mut rest = part;
        while let Some(open) = rest.find('[') {
            let (name, tail) = rest.split_at(open);
            if !name.is_empty() {
                out.push('/');
                out.push_str(name);
            }
            let close = tail.find(']').unwrap_or(tail.len());
            out.push('/');
            out.push_str(tail.get(1..close).unwrap_or(""));
            rest = tail.get(close + 1..).unwrap_or("");
        }
        if !rest.is_empty() {
            out.push('/');
            out.push_str(rest);
        }
    }
    out
}

/// Query parameters; a bad one is a 400 problem.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| Error::BadRequest(format!("bad query parameters: {}", e.body_text())))
    }
}

/// The `{id}` of a path; a bad one is a 400 problem.
#[derive(Debug)]
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let axum::extract::Path(id) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::BadRequest(format!("bad path: {}", e.body_text())))?;
        Ok(Id(id))
    }
}

#[cfg(test)]
mod tests {
    use super::pointer;

    #[test]
    fn turns_serde_paths_into_json_pointers() {
        assert_eq!(pointer("."), "/");
        assert_eq!(pointer("form"), "/form");
        assert_eq!(pointer("form.items[2].price"), "/form/items/2/price");
    }
}
