//! The HTTP API of sopflow (`docs/api.md`): the task inbox for staff, instances, messages, the
//! process catalogue, administration and pack distribution, as an axum [`Router`] built by [`app`].
//!
//! - Every route is declared once, on its handler (`#[utoipa::path]`), and registered through
//!   `utoipa_axum`, so the router and the OpenAPI document at `/openapi.json` come from the
//!   same declaration; a test checks that they agree.
//! - Requests and answers are DTOs ([`dto`]), converted explicitly from the core's and the
//!   store's types ([`views`]).
//! - Every error is one type, [`Error`], answered as RFC 9457 problem+json.
//! - The caller is a [`Principal`] (bearer token, [`auth`]); what it may see and do is decided
//!   by one function per kind of resource in [`authz`], called by every handler.
//!
//! Architecture invariant: the server never decides a transition (the core does, through the
//! runtime), never reads the system time (the runtime's clock), never prints, and installs no
//! logging subscriber (it emits `tracing` events; the binary decides where they go).
//!
//! To serve more (static pages, other APIs), merge into the router: `app(state).merge(other)`.

pub mod auth;
pub mod authz;
pub mod demo;
pub mod dto;
mod error;
pub mod extract;
mod idempotency;
pub mod metrics;
pub mod packs;
pub mod reports;
mod routes;
mod state;
pub mod views;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

pub use auth::Principal;
pub use error::{Error, InternalCause, PROBLEM_BASE, PackProblem};
pub use state::{AppState, Catalogue, DEFAULT_MANAGER_ROLES, InstallHook, Options};

/// The API's description; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "sopflow",
        description = "The task inbox, instances, messages, processes and administration of sopflow. \
                       Every error is application/problem+json (RFC 9457).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    // Enums used only by query parameters, which reference them without registering them.
    components(schemas(dto::AssigneeFilter, dto::InboxScope, dto::TaskState, dto::Priority, dto::InstanceStatus, dto::Lang)),
    tags(
        (name = "tasks", description = "The inbox: tasks waiting for people."),
        (name = "instances", description = "Running and ended instances, their audit trail and trace."),
        (name = "messages", description = "Messages to waiting instances."),
        (name = "external tasks", description = "Jobs of `topic:` steps for external workers: fetch and lock, complete, fail."),
        (name = "processes", description = "The deployed processes."),
        (name = "me", description = "The caller and logging in."),
        (name = "reports", description = "Managers' and headquarters' views: workload, SLA breaches, KPIs."),
        (name = "admin", description = "Organisations, users, roles and tokens."),
        (name = "packs", description = "Publishing packs, installing them at dealers with overlays, compliance."),
        (name = "operations", description = "Health, readiness, metrics and the API description."),
        (name = "test", description = "Only on servers started with a virtual clock."),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("sft_…").build()),
        );
    }
}

/// The routes and the OpenAPI document, from the same declarations.
fn api(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let mut router = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(routes::router());
    if state.options().virtual_clock.is_some() {
        router = router.merge(routes::test_router());
    }
    router.split_for_parts()
}

/// The OpenAPI document of a server with this state (the test-clock endpoint is in it only
/// when the clock is virtual).
pub fn openapi(state: &AppState) -> utoipa::openapi::OpenApi {
    api(state).1
}

/// The application: every route, the problem+json fallbacks, metrics and request tracing.
pub fn app(state: AppState) -> Router {
    let (router, doc) = api(&state);
    let doc = Arc::new(doc);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = Arc::clone(&doc);
                async move { axum::Json(doc) }
            }),
        )
        .merge(web::routes()) // WEB INBOX (crates/web): the page at `/` and its assets; no fallback of its own.
        .fallback(|| async { Error::NoRoute })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .layer(TraceLayer::new_for_http().on_response(
            |response: &Response, latency: std::time::Duration, _span: &tracing::Span| {
                if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
                    tracing::error!(status = response.status().as_u16(), ?latency, %cause, "request failed");
                } else {
                    tracing::debug!(status = response.status().as_u16(), ?latency, "answered");
                }
            },
        ))
        .with_state(state)
}

/// Serves the application on a bound listener until `shutdown` resolves, then lets the
/// requests in flight finish. The runtime is not stopped here: the caller does that after.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}

/// Counts every answered request by method, route template and status.
async fn count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_string();
    let response = next.run(request).await;
    state.metrics().record(&method, &route, response.status().as_u16(), started.elapsed());
    response
}
