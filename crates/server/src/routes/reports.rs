//! Managers' reads: the workload of a dealer (or every dealer) with its SLA breaches, and the
//! KPIs of a period.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use jiff::SignedDuration;
use store::org::OrgStore;
use store::report::{Load, OverdueQuery, ReportStore, WorkloadQuery};

use crate::auth::Principal;
use crate::authz;
use crate::dto::{
    DealerLoadDto, KpiDto, KpiParams, LabelDto, LoadDto, PersonLoadDto, Problem, RoleLoadDto, WorkloadDto,
    WorkloadParams,
};
use crate::error::Error;
use crate::extract::Params;
use crate::state::AppState;
use crate::{reports, views};

/// The most SLA breaches a workload lists.
const MAX_BREACHES: u32 = 100;

/// Open work by role and by person (or by dealer), with the SLA breaches.
#[utoipa::path(
    get, path = "/api/v1/workload", tag = "reports", params(WorkloadParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The open work, counted", body = WorkloadDto),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a manager or administrator of the dealer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Another dealer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn workload(
    State(s): State<AppState>,
    p: Principal,
    Params(q): Params<WorkloadParams>,
) -> Result<Json<WorkloadDto>, Error> {
    let dealer = authz::dealer_overview(&p, q.dealer.as_deref())?;
    let minutes = q.due_soon_minutes.unwrap_or(60);
    if !(1..=10_080).contains(&minutes) {
        return Err(Error::BadRequest("`due_soon_minutes` must be between 1 and 10080".into()));
    }
    let now = s.now();
    let soon = now.checked_add(SignedDuration::from_mins(i64::from(minutes))).unwrap_or(now);
    let store = s.runtime().store();
    let query = WorkloadQuery { dealer: dealer.clone(), now: now.as_millisecond(), soon: soon.as_millisecond() };
    let counted = store.workload(&query).await?;
    let breaches = store
        .overdue_tasks(&OverdueQuery {
            dealer: dealer.clone(),
            now: now.as_millisecond(),
            after: None,
            limit: MAX_BREACHES,
        })
        .await?;
    let names: BTreeMap<String, String> = match &dealer {
        Some(d) if !counted.by_assignee.is_empty() => {
            s.org().users(Some(d)).await?.into_iter().map(|u| (u.id, u.name)).collect()
        }
        _ => BTreeMap::new(),
    };
    Ok(Json(WorkloadDto {
        dealer,
        now: views::time(now),
        due_soon_until: views::time(soon),
        total: load(counted.total),
        by_role: counted
            .by_role
            .iter()
            .map(|g| {
                let role = views::role(&g.key, &s.catalogue());
                RoleLoadDto { role: g.key.clone(), title: LabelDto { zh: role.zh, en: role.en }, load: load(g.load) }
            })
            .collect(),
        by_person: counted
            .by_assignee
            .iter()
            .map(|g| PersonLoadDto {
                user: g.key.clone(),
                name: names.get(&g.key).cloned().unwrap_or_else(|| g.key.clone()),
                load: load(g.load),
            })
            .collect(),
        by_dealer: counted
            .by_dealer
            .iter()
            .map(|g| DealerLoadDto { dealer: g.key.clone(), load: load(g.load) })
            .collect(),
        breaches: breaches.iter().map(|t| views::task_row(t, &s.catalogue(), now)).collect(),
    }))
}

fn load(l: Load) -> LoadDto {
    LoadDto { open: l.open, overdue: l.overdue, due_soon: l.due_soon }
}

/// The KPIs of a period, computed from the instances and audit trails the engine recorded.
#[utoipa::path(
    get, path = "/api/v1/kpis", tag = "reports", params(KpiParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The KPIs", body = KpiDto),
        (status = 400, description = "Bad period", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a manager or administrator of the dealer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Another dealer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn kpis(
    State(s): State<AppState>,
    p: Principal,
    Params(q): Params<KpiParams>,
) -> Result<Json<KpiDto>, Error> {
    let dealer = authz::dealer_overview(&p, q.dealer.as_deref())?;
    let now = s.now();
    let period = reports::period(q.from.as_deref(), q.to.as_deref(), now)?;
    let report = reports::kpi_report(s.runtime().store(), dealer.as_deref(), period, now).await?;
    Ok(Json(reports::kpi_dto(dealer, &report, now)))
}
