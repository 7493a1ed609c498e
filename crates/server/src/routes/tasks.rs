//! The inbox: list, read, claim, unclaim, delegate and complete tasks.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::tz::TimeZone;
use runtime::instance_of;
use store::org::OrgStore;
use store::search::{CountQuery, SearchStore, TaskSearch};
use store::{InboxCursor, TaskRow};

use crate::auth::Principal;
use crate::authz::{self, Access};
use crate::dto::{
    AssigneeFilter, CompleteRequest, CountsDto, DelegateRequest, DoneStepDto, InboxPage, InboxScope, LabelDto, Problem,
    TaskDetail, TaskDto, TaskListQuery, TaskState,
};
use crate::error::Error;
use crate::extract::{Body, Id, Params};
use crate::state::AppState;
use crate::{idempotency, views};

/// The caller's tasks, by due time.
#[utoipa::path(
    get, path = "/api/v1/tasks", tag = "tasks", params(TaskListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the inbox", body = InboxPage),
        (status = 400, description = "Bad filter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`scope=dealer` by someone who does not manage the dealer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Another dealer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Params(q): Params<TaskListQuery>,
) -> Result<Json<InboxPage>, Error> {
    let dealer = authz::list_dealer(&p, q.dealer.as_deref(), true)?.unwrap_or_default();
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Error::BadRequest("`limit` must be between 1 and 200".into()));
    }
    if q.q.as_ref().is_some_and(|t| t.chars().count() > 200) {
        return Err(Error::BadRequest("`q` has more than 200 characters".into()));
    }
    let now = s.now();
    let now_ms = now.as_millisecond();
    let whole_dealer = q.scope == Some(InboxScope::Dealer);
    if whole_dealer {
        authz::dealer_overview(&p, Some(&dealer))?;
    }
    let (roles, user, all_assigned) = if p.is_hq() || whole_dealer {
        (s.catalogue().roles().keys().cloned().collect::<Vec<_>>(), None, true)
    } else {
        (p.roles.clone(), Some(p.user.clone()), false)
    };
    let pool = !matches!(q.assignee, Some(AssigneeFilter::Me)) && !matches!(q.state, Some(TaskState::Claimed));
    let assigned =
        !matches!(q.assignee, Some(AssigneeFilter::Nobody)) && !matches!(q.state, Some(TaskState::Unclaimed));
    let mut due_before = match &q.due_before {
        Some(d) => Some(views::parse_time("due_before", d)?.as_millisecond()),
        None => None,
    };
    if q.overdue == Some(true) {
        due_before = Some(due_before.map_or(now_ms + 1, |d| d.min(now_ms + 1)));
    }
    let search = TaskSearch {
        dealer: dealer.clone(),
        roles: if pool { roles.clone() } else { Vec::new() },
        user: if assigned { user.clone() } else { None },
        all_assigned: assigned && all_assigned,
        role: q.role.clone(),
        process_id: q.process.clone(),
        priority: q.priority.map(|x| x.as_str().to_string()),
        due_before,
        text: q.q.clone().filter(|t| !t.trim().is_empty()),
        after: q.cursor.as_deref().map(views::decode_task_cursor).transpose()?,
        limit,
    };
    let rows = s.runtime().store().search_tasks(&search).await?;
    let next_cursor = if rows.len() == limit as usize {
        rows.last().map(|t| views::encode_task_cursor(&InboxCursor::of(t)))
    } else {
        None
    };
    let counts = if q.counts == Some(false) {
        None
    } else {
        let zone = zone_of(&s, &p, &dealer).await?;
        let end_of_day = now
            .to_zoned(zone.clone())
            .date()
            .tomorrow()
            .and_then(|d| d.to_zoned(zone))
            .map_or(now_ms + 86_400_000, |z| z.timestamp().as_millisecond());
        let query = CountQuery {
            dealer,
            roles: roles.into_iter().filter(|r| q.role.as_ref().is_none_or(|x| x == r)).collect(),
            user,
            all_assigned,
            process_id: q.process.clone(),
            now: now_ms + 1,
            end_of_day,
        };
        let c = s.runtime().store().count_tasks(&query).await?;
        Some(CountsDto {
            mine: c.mine,
            unassigned: c.unassigned,
            overdue: c.overdue,
            due_today: c.due_today,
            total: c.total,
        })
    };
    let catalogue = s.catalogue();
    let items = rows.iter().map(|t| views::task_row(t, &catalogue, now)).collect();
    Ok(Json(InboxPage { items, next_cursor, counts, now: views::time(now) }))
}

/// The time zone a dealer's days are counted in.
async fn zone_of(s: &AppState, p: &Principal, dealer: &str) -> Result<TimeZone, Error> {
    let name = if !p.is_hq() && p.organisation == dealer {
        p.time_zone.clone()
    } else {
        s.org().organisation(dealer).await?.map_or_else(|| "UTC".to_string(), |o| o.time_zone)
    };
    Ok(TimeZone::get(&name).unwrap_or(TimeZone::UTC))
}

/// A task the caller may see: 404 when it does not exist or is not theirs to see; 409 when it
/// was in their dealer but is closed now.
async fn visible_task(s: &AppState, p: &Principal, id: &str) -> Result<(TaskRow, Access), Error> {
    if let Some(t) = s.runtime().task(id).await? {
        let access = authz::task(p, &t);
        access.read()?;
        return Ok((t, access));
    }
    match s.runtime().instance(instance_of(id)).await? {
        Some(view) if authz::instance(p, &view.instance.dealer) != Access::Hidden => {
            Err(Error::Conflict(format!("the task `{id}` is not open (completed, cancelled or never opened)")))
        }
        _ => Err(Error::NotFound),
    }
}

/// The task as its instance holds it after a command.
async fn task_after(s: &AppState, id: &str) -> Result<TaskDto, Error> {
    let view = s.runtime().instance(instance_of(id)).await?.ok_or(Error::NotFound)?;
    let task = view.instance.task(id).ok_or_else(|| Error::Conflict(format!("the task `{id}` is no longer open")))?;
    Ok(views::task_of(&view.instance, task, &view.process, &s.catalogue(), s.now()))
}

/// A task with its form's JSON Schema and its instance's context.
#[utoipa::path(
    get, path = "/api/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "The task id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The task", body = TaskDetail),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No longer open", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(State(s): State<AppState>, p: Principal, Id(id): Id) -> Result<Json<TaskDetail>, Error> {
    let (row, access) = visible_task(&s, &p, &id).await?;
    let now = s.now();
    let view = s.runtime().instance(&row.instance_id).await?.ok_or(Error::NotFound)?;
    let audit = s.runtime().audit(&row.instance_id).await?;
    let done = audit
        .iter()
        .filter(|a| a.kind == "task_completed")
        .map(|a| {
            let step = a.step.clone().unwrap_or_default();
            let title = view
                .process
                .step_idx(&step)
                .map(|i| LabelDto::from(&view.process.step(i).title))
                .unwrap_or(LabelDto { zh: step.clone(), en: step.clone() });
            let actor: serde_json::Value = serde_json::from_str(&a.actor).unwrap_or_default();
            DoneStepDto {
                step,
                title,
                by: actor.get("id").and_then(|v| v.as_str()).map(str::to_string),
                at: views::time_ms(a.at),
            }
        })
        .collect();
    Ok(Json(TaskDetail {
        task: views::task_row(&row, &s.catalogue(), now),
        form_schema: views::form_schema(&view.process, &row.step),
        can_act: access == Access::Act,
        data: view.instance.data.clone(),
        done,
        now: views::time(now),
    }))
}

/// Take a task.
#[utoipa::path(
    post, path = "/api/v1/tasks/{id}/claim", tag = "tasks",
    params(("id" = String, Path, description = "The task id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Claimed", body = TaskDto),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Visible, not yours to act on", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Someone else has it, or it is closed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn claim(State(s): State<AppState>, p: Principal, Id(id): Id) -> Result<Json<TaskDto>, Error> {
    let (_, access) = visible_task(&s, &p, &id).await?;
    access.act()?;
    s.runtime().claim(&id, p.machine_user()).await??;
    Ok(Json(task_after(&s, &id).await?))
}

/// Give a task back to the pool.
#[utoipa::path(
    post, path = "/api/v1/tasks/{id}/unclaim", tag = "tasks",
    params(("id" = String, Path, description = "The task id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Back in the pool", body = TaskDto),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Visible, not yours to act on", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not yours, or closed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn unclaim(State(s): State<AppState>, p: Principal, Id(id): Id) -> Result<Json<TaskDto>, Error> {
    let (_, access) = visible_task(&s, &p, &id).await?;
    access.act()?;
    s.runtime().unclaim(&id, p.machine_user()).await??;
    Ok(Json(task_after(&s, &id).await?))
}

/// Hand a task to another user of the dealer who holds one of its roles.
#[utoipa::path(
    post, path = "/api/v1/tasks/{id}/delegate", tag = "tasks",
    params(("id" = String, Path, description = "The task id")),
    request_body = DelegateRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Delegated", body = TaskDto),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Visible, not yours to act on", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Someone else has it, or it is closed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No such delegate, or they hold none of its roles", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delegate(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    body: Body<DelegateRequest>,
) -> Result<Json<TaskDto>, Error> {
    let (task, access) = visible_task(&s, &p, &id).await?;
    access.act()?;
    let to = s
        .org()
        .user(&body.value.to)
        .await?
        .filter(|u| u.active && u.organisation == task.dealer)
        .ok_or_else(|| Error::invalid("/to", "there is no such active user in this dealer"))?;
    let to = machine::User::new(to.id, to.roles);
    s.runtime().delegate(&id, p.machine_user(), to).await??;
    Ok(Json(task_after(&s, &id).await?))
}

/// Complete a task with its form; on any invalid field nothing changes.
#[utoipa::path(
    post, path = "/api/v1/tasks/{id}/complete", tag = "tasks",
    params(
        ("id" = String, Path, description = "The task id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key act once"),
    ),
    request_body = CompleteRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Completed: the instance afterwards", body = crate::dto::InstanceDto),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Visible, not yours to act on", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Someone else has it, or it is closed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every invalid field of the form", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn complete(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    headers: HeaderMap,
    body: Body<CompleteRequest>,
) -> Result<Response, Error> {
    let key = idempotency::key(&headers)?;
    let request = format!("POST /api/v1/tasks/{id}/complete");
    let runtime_key = key.as_ref().map(|k| format!("{}:{k}", p.user));
    idempotency::once(&s, &p, key, &request, &body.digest, || async {
        // Who may complete is checked in the writer lane against the instance as it stands
        // (the same answers as `visible_task` and `Access::act`, without reading the task first).
        let form = serde_json::Value::Object(body.value.form);
        let gate = Some(authz::completion_gate(&p, &id));
        let applied = s.runtime().complete_gated(&id, p.machine_user(), form, runtime_key, gate).await??;
        // The instance as the completion left it; a repeated request (same key) reads it.
        let dto = match &applied.state {
            Some(after) => {
                let process = s.runtime().process(&after.process_hash).await?;
                views::instance(after, &process, &s.catalogue(), s.now())
            }
            None => {
                let view = s.runtime().instance(&applied.instance).await?.ok_or(Error::NotFound)?;
                views::instance(&view.instance, &view.process, &s.catalogue(), s.now())
            }
        };
        Ok((StatusCode::OK, serde_json::to_value(dto).map_err(|e| Error::Internal(e.to_string()))?))
    })
    .await
}
