//! Instances: start, list, view, audit trail, trace, graph; and the administrator's commands
//! (cancel, retry or skip an incident).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::tz::TimeZone;
use machine::{Actor, Event};
use runtime::{InstanceView, instance_of};
use store::search::{InstanceSearch, SearchStore};

use crate::auth::Principal;
use crate::authz;
use crate::dto::{
    AuditDto, CancelRequest, CommandResult, GraphDto, GraphFormat, GraphQuery, InstanceDto, InstanceListQuery,
    InstancePage, InstanceStatus, InstanceSummaryDto, Problem, StartRequest, TraceDto, TraceLineDto,
};
use crate::error::Error;
use crate::extract::{Body, Id, Params};
use crate::state::AppState;
use crate::{idempotency, views};

/// An instance the caller may read (404 otherwise).
async fn readable(s: &AppState, p: &Principal, id: &str) -> Result<InstanceView, Error> {
    let view = s.runtime().instance(id).await?.ok_or(Error::NotFound)?;
    authz::instance(p, &view.instance.dealer).read()?;
    Ok(view)
}

/// Start an instance of the newest deployment of a process for the caller's dealer.
#[utoipa::path(
    post, path = "/api/v1/instances", tag = "instances",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key start once")),
    request_body = StartRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Started", body = InstanceDto),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Headquarters cannot start a dealer's instance", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown process or invalid data (every field listed)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start(
    State(s): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    body: Body<StartRequest>,
) -> Result<Response, Error> {
    let key = idempotency::key(&headers)?;
    idempotency::once(&s, &p, key, "POST /api/v1/instances", &body.digest, || async {
        let dealer = authz::own_dealer(&p)?.to_string();
        let req = body.value;
        if req.business_key.as_ref().is_some_and(|k| k.chars().count() > 200) {
            return Err(Error::invalid("/business_key", "has more than 200 characters"));
        }
        let applied = s
            .runtime()
            .start(runtime::StartRequest {
                dealer,
                process_id: req.process,
                data: req.data,
                business_key: req.business_key,
                by: Actor::User { id: p.user.clone(), role: None },
                id: None,
            })
            .await??;
        let view = s.runtime().instance(&applied.instance).await?.ok_or(Error::NotFound)?;
        let dto = views::instance(&view.instance, &view.process, &s.catalogue(), s.now());
        Ok((StatusCode::CREATED, serde_json::to_value(dto).map_err(|e| Error::Internal(e.to_string()))?))
    })
    .await
}

/// A page of instances, newest first.
#[utoipa::path(
    get, path = "/api/v1/instances", tag = "instances", params(InstanceListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of instances", body = InstancePage),
        (status = 400, description = "Bad filter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Another dealer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Params(q): Params<InstanceListQuery>,
) -> Result<Json<InstancePage>, Error> {
    let dealer = authz::list_dealer(&p, q.dealer.as_deref(), false)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Error::BadRequest("`limit` must be between 1 and 200".into()));
    }
    let search = InstanceSearch {
        dealer,
        process_id: q.process,
        status: q.status.map(|st| match st {
            InstanceStatus::Running => "running".to_string(),
            InstanceStatus::Incident => "incident".to_string(),
            InstanceStatus::Ended => "ended".to_string(),
        }),
        text: q.q.filter(|t| !t.trim().is_empty()),
        before: q.cursor.as_deref().map(views::decode_id_cursor).transpose()?,
        limit,
    };
    let rows = s.runtime().store().search_instances(&search).await?;
    let next_cursor =
        if rows.len() == limit as usize { rows.last().map(|r| views::encode_id_cursor(&r.id)) } else { None };
    let items = rows
        .into_iter()
        .map(|r| InstanceSummaryDto {
            id: r.id,
            dealer: r.dealer,
            process: r.process_id,
            business_key: r.business_key,
            status: match r.status.as_str() {
                "ended" => InstanceStatus::Ended,
                "incident" => InstanceStatus::Incident,
                _ => InstanceStatus::Running,
            },
            outcome: r.outcome,
            parent: r.parent_id,
            started_at: views::time_ms(r.started_at),
            ended_at: r.ended_at.map(views::time_ms),
        })
        .collect();
    Ok(Json(InstancePage { items, next_cursor }))
}

/// An instance: data, position, open tasks, timers, incidents, parent and children.
#[utoipa::path(
    get, path = "/api/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "The instance id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The instance", body = InstanceDto),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or not visible", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(State(s): State<AppState>, p: Principal, Id(id): Id) -> Result<Json<InstanceDto>, Error> {
    let view = readable(&s, &p, &id).await?;
    Ok(Json(views::instance(&view.instance, &view.process, &s.catalogue(), s.now())))
}

/// The instance's audit trail, with its hash chain checked.
#[utoipa::path(
    get, path = "/api/v1/instances/{id}/audit", tag = "instances",
    params(("id" = String, Path, description = "The instance id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The audit trail", body = AuditDto),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or not visible", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn audit(State(s): State<AppState>, p: Principal, Id(id): Id) -> Result<Json<AuditDto>, Error> {
    readable(&s, &p, &id).await?;
    let rows = s.runtime().audit(&id).await?;
    let broken = store::audit::verify_chain(&rows).err().map(|b| b.to_string());
    Ok(Json(AuditDto {
        chain: id,
        verified: broken.is_none(),
        broken,
        entries: rows.iter().map(views::audit_entry).collect(),
    }))
}

/// Why the instance went where it went: one line per event (guards tried and their values,
/// who did what, which timer fired).
#[utoipa::path(
    get, path = "/api/v1/instances/{id}/trace", tag = "instances",
    params(("id" = String, Path, description = "The instance id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The trace", body = TraceDto),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or not visible", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn trace(State(s): State<AppState>, p: Principal, Id(id): Id) -> Result<Json<TraceDto>, Error> {
    readable(&s, &p, &id).await?;
    let tz = TimeZone::get(&p.time_zone).unwrap_or(TimeZone::UTC);
    let mut lines = Vec::new();
    for row in s.runtime().audit(&id).await? {
        let entry: serde_json::Value = serde_json::from_str(&row.entry).unwrap_or_default();
        let events: Vec<Event> =
            entry.get("events").cloned().and_then(|e| serde_json::from_value(e).ok()).unwrap_or_default();
        for event in &events {
            lines.push(TraceLineDto {
                at: views::time_ms(row.at),
                chain_seq: row.chain_seq,
                text: machine::trace::line(event, &tz),
            });
        }
    }
    Ok(Json(TraceDto { instance: id, lines }))
}

/// The instance's process as a Mermaid flowchart, its current steps highlighted.
#[utoipa::path(
    get, path = "/api/v1/instances/{id}/graph", tag = "instances",
    params(("id" = String, Path, description = "The instance id"), GraphQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The flowchart, current steps highlighted (SVG: visited steps marked too)", content((GraphDto = "application/json"), (String = "image/svg+xml"))),
        (status = 400, description = "Bad language", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or not visible", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn graph(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    Params(q): Params<GraphQuery>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let view = readable(&s, &p, &id).await?;
    let lang = q.lang.unwrap_or(p.lang);
    let current: Vec<String> = view.instance.tokens.iter().map(|t| view.process.step(t.step).id.clone()).collect();
    let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok());
    if views::graph_format(accept) == GraphFormat::Svg {
        let audit = s.runtime().audit(&id).await?;
        let visited = views::visited_steps(&audit).into_iter().filter(|v| !current.contains(v)).collect();
        let options = web::diagram::Options { lang: lang.as_str().to_string(), current, visited };
        return Ok(views::svg_response(web::diagram::svg(&view.process, &options)));
    }
    let options = model::mermaid::Options { lang: lang.as_str().to_string(), highlight: current };
    Ok(views::mermaid_response(GraphDto {
        process: view.process.id.clone(),
        version: view.process.version,
        lang,
        mermaid: model::mermaid::flowchart(&view.process, &options),
    }))
}

/// Cancel an instance (administrators of its dealer).
#[utoipa::path(
    post, path = "/api/v1/instances/{id}/cancel", tag = "instances",
    params(("id" = String, Path, description = "The instance id")),
    request_body = CancelRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled", body = CommandResult),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator of the dealer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already ended", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    body: Body<CancelRequest>,
) -> Result<Json<CommandResult>, Error> {
    let view = s.runtime().instance(&id).await?.ok_or(Error::NotFound)?;
    authz::instance_admin(&p, &view.instance.dealer)?;
    let by = Actor::User { id: p.user.clone(), role: None };
    let applied = s.runtime().cancel(&id, by, &body.value.reason).await??;
    Ok(Json(CommandResult { instance: applied.instance, ended: applied.ended }))
}

async fn incident_command(s: &AppState, p: &Principal, id: &str, retry: bool) -> Result<Json<CommandResult>, Error> {
    let view = s.runtime().instance(instance_of(id)).await?.ok_or(Error::NotFound)?;
    authz::instance_admin(p, &view.instance.dealer)?;
    let applied = if retry {
        s.runtime().retry_incident(id, p.machine_user()).await??
    } else {
        s.runtime().skip_incident(id, p.machine_user()).await??
    };
    Ok(Json(CommandResult { instance: applied.instance, ended: applied.ended }))
}

/// Retry what an incident stopped (administrators of the instance's dealer).
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/retry", tag = "instances",
    params(("id" = String, Path, description = "The incident id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Retried", body = CommandResult),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator of the dealer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such open incident, or not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The instance has ended", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry_incident(State(s): State<AppState>, p: Principal, Id(id): Id) -> Result<Json<CommandResult>, Error> {
    incident_command(&s, &p, &id, true).await
}

/// Skip the step an incident stopped (administrators of the instance's dealer).
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/skip", tag = "instances",
    params(("id" = String, Path, description = "The incident id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Skipped", body = CommandResult),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator of the dealer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such open incident, or not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The instance has ended", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn skip_incident(State(s): State<AppState>, p: Principal, Id(id): Id) -> Result<Json<CommandResult>, Error> {
    incident_command(&s, &p, &id, false).await
}
