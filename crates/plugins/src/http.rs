//! The `http` action, and the one HTTP caller that every outbound call goes through (the action,
//! the `webhook` and `sms` channels of `notify`, and script plugins' `http_request`).
//!
//! The caller enforces what the configuration grants: the host must match the allow-list
//! before any connection is made (redirects are followed only to allowed hosts), a secret is
//! sent only when granted and is taken from the configuration by name, and each call has a
//! timeout. Failures are classified for the runtime, which retries with the step's backoff
//! policy: a timeout, a connection failure, a 429 or a 5xx may pass and is
//! [`Error::Retryable`]; a refused host, a missing secret or another 4xx will not and is
//! [`Error::Permanent`]. This module does not retry by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use plugin_api::{Action, ActionInfo, BoxFuture, Capability, Error, Invocation};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{HostPattern, SecretHeader, Secrets};

/// What the `http` action (and `http_request` in a script) is asked to do.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// The URL; only `http` and `https`.
    pub url: String,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body.
    #[serde(default)]
    pub body: Option<Value>,
    /// A header whose value is a secret from the configuration.
    #[serde(default)]
    pub secret_header: Option<SecretHeader>,
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body: JSON when it parses as JSON, else the text.
    pub body: Value,
}

impl HttpResponse {
    /// The action's output.
    pub fn to_json(&self) -> Value {
        json!({ "status": self.status, "body": self.body })
    }
}

/// Makes HTTP calls within what was granted.
#[derive(Debug, Clone)]
pub struct HttpCaller {
    client: reqwest::Client,
    allow: Arc<Vec<HostPattern>>,
    secrets: Arc<Secrets>,
    allowed_secrets: Arc<BTreeSet<String>>,
    timeout: Duration,
    max_response_bytes: usize,
}

impl HttpCaller {
    /// A caller allowed to reach `allow` and to send the secrets named in `allowed_secrets`.
    pub fn new(
        allow: Vec<HostPattern>,
        secrets: Arc<Secrets>,
        allowed_secrets: BTreeSet<String>,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Result<HttpCaller, reqwest::Error> {
        let allow = Arc::new(allow);
        let for_redirects = Arc::clone(&allow);
        // A redirect to a host that is not allowed would bypass the allow-list.
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let allowed = attempt.url().host_str().is_some_and(|h| for_redirects.iter().any(|p| p.matches(h)));
            if allowed && attempt.previous().len() < 5 { attempt.follow() } else { attempt.stop() }
        });
        // Building fails only when the TLS backend cannot start. There is no fallback client:
        // one without this redirect policy would leave the allow-list.
        let client = reqwest::Client::builder().redirect(redirects).timeout(timeout).build()?;
        Ok(HttpCaller {
            client,
            allow,
            secrets,
            allowed_secrets: Arc::new(allowed_secrets),
            timeout,
            max_response_bytes,
        })
    }

    /// The hosts this caller may reach.
    pub fn allow(&self) -> &[HostPattern] {
        &self.allow
    }

    /// Checks a URL against the allow-list; returns it parsed.
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, Error> {
        let parsed = reqwest::Url::parse(url).map_err(|e| Error::Permanent(format!("`{url}` is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::Permanent(format!("`{url}` is not an http or https URL")));
        }
        let host = parsed.host_str().unwrap_or_default();
        if !self.allow.iter().any(|p| p.matches(host)) {
            return Err(Error::Permanent(format!(
                "the host `{host}` is not granted: the configuration allows {}",
                if self.allow.is_empty() {
                    "no host".to_owned()
                } else {
                    self.allow.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                }
            )));
        }
        Ok(parsed)
    }

    /// Makes one call.
    pub async fn call(&self, request: &HttpRequest, idempotency_key: Option<&str>) -> Result<HttpResponse, Error> {
        let url = self.check_url(&request.url)?;
        let method = match request.method.to_ascii_uppercase().as_str() {
            "GET" => reqwest::Method::GET,
            "POST" => reqwest::Method::POST,
            "PUT" => reqwest::Method::PUT,
            "PATCH" => reqwest::Method::PATCH,
            "DELETE" => reqwest::Method::DELETE,
            other => return Err(Error::Permanent(format!("`{other}` is not a supported HTTP method"))),
        };
        let mut builder = self.client.request(method, url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(key) = idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        if let Some(secret) = &request.secret_header {
            builder = builder.header(secret.name.as_str(), self.secret_value(secret)?);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(|e| self.transport_error(&request.url, &e))?;
        let status = response.status();
        let body = self.read_body(response).await?;
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Error::Retryable(format!("{} answered {status}: {}", request.url, short(&body))));
        }
        if status.is_client_error() {
            return Err(Error::Permanent(format!("{} answered {status}: {}", request.url, short(&body))));
        }
        Ok(HttpResponse { status: status.as_u16(), body })
    }

    fn secret_value(&self, header: &SecretHeader) -> Result<String, Error> {
        if !self.allowed_secrets.contains(&header.secret) {
            return Err(Error::Permanent(format!("the secret `{}` is not granted", header.secret)));
        }
        let value = self.secrets.get(&header.secret).ok_or_else(|| {
            Error::Permanent(format!("the secret `{}` is not defined in the configuration", header.secret))
        })?;
        Ok(format!("{}{value}", header.prefix.as_deref().unwrap_or_default()))
    }

    fn transport_error(&self, url: &str, err: &reqwest::Error) -> Error {
        if err.is_timeout() {
            Error::Retryable(format!("{url} did not answer within {} s", self.timeout.as_secs_f64()))
        } else if err.is_builder() {
            Error::Permanent(format!("the request to {url} cannot be made: {err}"))
        } else if err.is_redirect() {
            Error::Permanent(format!("{url} redirected to a host that is not granted"))
        } else {
            Error::Retryable(format!("{url} could not be reached: {err}"))
        }
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Value, Error> {
        let mut bytes = Vec::new();
        loop {
            let chunk = response.chunk().await.map_err(|e| {
                if e.is_timeout() {
                    Error::Retryable(format!("the answer did not arrive within {} s", self.timeout.as_secs_f64()))
                } else {
                    Error::Retryable(format!("the answer was cut off: {e}"))
                }
            })?;
            let Some(chunk) = chunk else { break };
            if bytes.len() + chunk.len() > self.max_response_bytes {
                return Err(Error::Permanent(format!(
                    "the answer is larger than the limit of {} bytes",
                    self.max_response_bytes
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())))
    }
}

fn short(body: &Value) -> String {
    const MAX: usize = 200;
    let text = match body {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > MAX { format!("{}…", text.chars().take(MAX).collect::<String>()) } else { text }
}

/// The built-in `http` action: one webhook call.
#[derive(Debug)]
pub struct HttpAction {
    info: ActionInfo,
    caller: HttpCaller,
}

impl HttpAction {
    /// The action, calling through `caller`.
    pub fn new(caller: HttpCaller) -> HttpAction {
        let mut capabilities: Vec<Capability> =
            caller.allow().iter().map(|p| Capability::Http { host: p.to_string() }).collect();
        capabilities.extend(caller.allowed_secrets.iter().map(|s| Capability::Secret { name: s.clone() }));
        HttpAction {
            info: ActionInfo {
                name: "http".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: "Calls a web service (a webhook, a DMS) on an allowed host.".into(),
                input_schema: input_schema(),
                output_schema: output_schema(),
                capabilities,
            },
            caller,
        }
    }
}

impl Action for HttpAction {
    fn info(&self) -> &ActionInfo {
        &self.info
    }

    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<Value, Error>> {
        Box::pin(async move {
            let request: HttpRequest = serde_json::from_value(invocation.input)
                .map_err(|e| Error::Permanent(format!("the input is not an HTTP request: {e}")))?;
            let response = self.caller.call(&request, Some(&invocation.idempotency_key)).await?;
            Ok(response.to_json())
        })
    }
}

/// The JSON Schema of an HTTP request (the `http` action's input, `http_request`'s argument).
pub fn input_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["method", "url"],
        "properties": {
            "method": { "type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"] },
            "url": { "type": "string", "minLength": 1 },
            "headers": { "type": "object", "additionalProperties": { "type": "string" } },
            "body": {},
            "secret_header": {
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "secret"],
                "properties": {
                    "name": { "type": "string" },
                    "secret": { "type": "string" },
                    "prefix": { "type": "string" }
                }
            }
        }
    })
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "required": ["status", "body"],
        "properties": { "status": { "type": "integer" }, "body": {} }
    })
}
