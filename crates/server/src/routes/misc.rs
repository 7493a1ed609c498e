//! The caller (`/me`, login), messages, the process catalogue, operations (health, readiness,
//! metrics) and the test clock.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use runtime::Delivered;
use store::Store;
use store::org::{OrgStore, TokenRow};

use crate::auth::{self, Principal};
use crate::authz;
use crate::dto::{
    ClockDto, ClockRequest, GraphDto, GraphFormat, GraphQuery, Health, LabelDto, LoginRequest, LoginResponse, MeDto,
    MessageRequest, MessageResult, OrganisationDto, Preferences, Problem, ProcessDto, RoleDto,
};
use crate::error::Error;
use crate::extract::{Body, Id, Params};
use crate::state::AppState;
use crate::views;

/// The caller, their organisation and roles.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = MeDto),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn me(State(s): State<AppState>, p: Principal) -> Result<Json<MeDto>, Error> {
    let org = s.org().organisation(&p.organisation).await?.ok_or(Error::Unauthorized)?;
    Ok(Json(MeDto {
        id: p.user.clone(),
        name: p.name.clone(),
        organisation: OrganisationDto { id: org.id, kind: p.kind, name: org.name, time_zone: org.time_zone },
        roles: p.roles.iter().map(|r| role_dto(&s, r)).collect(),
        admin: p.admin,
        manager: p.manager,
        lang: p.lang,
    }))
}

/// A role with its names from the catalogue (its id when it is not in it).
pub fn role_dto(s: &AppState, id: &str) -> RoleDto {
    views::role(id, &s.catalogue())
}

/// Remember the caller's language.
#[utoipa::path(
    put, path = "/api/v1/me/preferences", tag = "me",
    request_body = Preferences,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Saved", body = Preferences),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn preferences(
    State(s): State<AppState>,
    p: Principal,
    body: Body<Preferences>,
) -> Result<Json<Preferences>, Error> {
    let mut user = s.org().user(&p.user).await?.ok_or(Error::Unauthorized)?;
    user.lang = Some(body.value.lang.as_str().to_string());
    s.org().put_user(&user).await?;
    s.forget_authentications();
    Ok(Json(body.value))
}

/// Log in with a password; answers a bearer token.
#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "me",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown user or wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(State(s): State<AppState>, body: Body<LoginRequest>) -> Result<Json<LoginResponse>, Error> {
    let req = body.value;
    let user = s.org().user(&req.username).await?;
    let phc =
        user.as_ref().filter(|u| u.active && u.organisation == req.organisation).and_then(|u| u.password_hash.clone());
    // Verify even for an unknown user, against a fixed hash, so the answer takes as long.
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || {
        let phc = phc.unwrap_or_else(|| {
            DUMMY_PHC.get_or_init(|| auth::hash_password("no user has this password").unwrap_or_default()).clone()
        });
        auth::verify_password(&password, &phc)
    })
    .await
    .map_err(|e| Error::Internal(format!("the password check failed: {e}")))?;
    let Some(user) = user.filter(|_| ok) else { return Err(Error::Unauthorized) };
    let (token, hash, id) = auth::new_token()?;
    let now = s.now();
    let expires = now.checked_add(s.options().login_ttl).unwrap_or(now);
    s.org()
        .put_token(&TokenRow {
            id,
            hash,
            user_id: user.id,
            label: "login".into(),
            created_at: now.as_millisecond(),
            expires_at: Some(expires.as_millisecond()),
            revoked_at: None,
        })
        .await?;
    Ok(Json(LoginResponse { token, expires_at: views::time(expires) }))
}

/// A hash to verify unknown users against, made once.
static DUMMY_PHC: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Deliver a message to the caller's dealer's instances waiting for it (or keep it for the
/// next one that waits).
#[utoipa::path(
    post, path = "/api/v1/messages", tag = "messages",
    request_body = MessageRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Delivered or kept", body = MessageResult),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Headquarters cannot message a dealer's instances", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn message(
    State(s): State<AppState>,
    p: Principal,
    body: Body<MessageRequest>,
) -> Result<(StatusCode, Json<MessageResult>), Error> {
    let dealer = authz::own_dealer(&p)?.to_string();
    let m = body.value;
    if m.name.trim().is_empty() {
        return Err(Error::invalid("/name", "must not be empty"));
    }
    let delivered = s.runtime().deliver_message(&dealer, &m.name, m.key.as_deref(), m.payload).await?;
    let result = match delivered {
        Delivered::To(ids) => MessageResult { delivered_to: ids, buffered: false },
        Delivered::Buffered => MessageResult { delivered_to: Vec::new(), buffered: true },
    };
    Ok((StatusCode::ACCEPTED, Json(result)))
}

/// The deployed processes.
#[utoipa::path(
    get, path = "/api/v1/processes", tag = "processes",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The processes", body = Vec<ProcessDto>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn processes(State(s): State<AppState>, _p: Principal) -> Json<Vec<ProcessDto>> {
    Json(
        s.catalogue()
            .processes()
            .values()
            .map(|p| {
                let mut roles: Vec<String> = p
                    .steps
                    .iter()
                    .filter_map(|st| match &st.kind {
                        model::StepKind::Task { task, .. } => Some(task.roles.clone()),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                roles.sort();
                roles.dedup();
                ProcessDto {
                    id: p.id.clone(),
                    version: p.version,
                    hash: p.hash.0.clone(),
                    title: LabelDto::from(&p.title),
                    pack: p.pack.as_ref().map(|x| x.id.clone()),
                    pack_version: p.pack.as_ref().map(|x| x.version.clone()),
                    roles,
                }
            })
            .collect(),
    )
}

/// A deployed process as a Mermaid flowchart (JSON), or as an SVG diagram when `Accept`
/// prefers `image/svg+xml`.
#[utoipa::path(
    get, path = "/api/v1/processes/{id}/graph", tag = "processes",
    params(("id" = String, Path, description = "The process id"), GraphQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The flowchart", content((GraphDto = "application/json"), (String = "image/svg+xml"))),
        (status = 400, description = "Bad language", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such process", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn process_graph(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    Params(q): Params<GraphQuery>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let catalogue = s.catalogue();
    let process = catalogue.process(&id).ok_or(Error::NotFound)?;
    let lang = q.lang.unwrap_or(p.lang);
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if views::graph_format(accept) == GraphFormat::Svg {
        let options = web::diagram::Options { lang: lang.as_str().to_string(), ..Default::default() };
        return Ok(views::svg_response(web::diagram::svg(process, &options)));
    }
    let options = model::mermaid::Options { lang: lang.as_str().to_string(), highlight: Vec::new() };
    Ok(views::mermaid_response(GraphDto {
        process: process.id.clone(),
        version: process.version,
        lang,
        mermaid: model::mermaid::flowchart(process, &options),
    }))
}

/// The process is up.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Up", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// The database answers and its migrations ran.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(s): State<AppState>) -> Result<Json<Health>, Error> {
    // One read of a table of each migration set: the runtime's and the directory's.
    s.runtime().store().next_timer_at().await.map_err(|e| Error::Unavailable(e.to_string()))?;
    s.org().organisation("").await.map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok(Json(Health { status: "ok".into() }))
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "The metrics, in the Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(s): State<AppState>) -> Result<Response, Error> {
    let text = s.metrics().render(&s).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

/// Move the virtual clock forward and wait until the timers now due have fired.
#[utoipa::path(
    post, path = "/api/v1/test/clock", tag = "test",
    request_body = ClockRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new time", body = ClockDto),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of advance and set, or a bad value", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn clock(
    State(s): State<AppState>,
    _p: Principal,
    body: Body<ClockRequest>,
) -> Result<Json<ClockDto>, Error> {
    let Some(clock) = s.options().virtual_clock.clone() else { return Err(Error::NoRoute) };
    match (&body.value.advance, &body.value.set) {
        (Some(a), None) => {
            let by: SignedDuration =
                a.parse().map_err(|e| Error::invalid("/advance", format!("not an ISO 8601 duration: {e}")))?;
            if by.is_negative() || by > SignedDuration::from_hours(24 * 366) {
                return Err(Error::invalid("/advance", "must be between 0 and one year"));
            }
            clock.advance(by);
        }
        (None, Some(at)) => {
            let at: Timestamp = at.parse().map_err(|e| Error::invalid("/set", format!("not an RFC 3339 time: {e}")))?;
            clock.set(at);
        }
        _ => return Err(Error::invalid("/", "give exactly one of `advance` and `set`")),
    }
    settle_timers(&s).await?;
    Ok(Json(ClockDto { now: views::time(s.now()) }))
}

/// Waits (up to 10 s) until no armed timer is due at the current virtual time.
async fn settle_timers(s: &AppState) -> Result<(), Error> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = s.now_ms();
        match s.runtime().store().next_timer_at().await? {
            Some(at) if at <= now && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            _ => return Ok(()),
        }
    }
}
