//! What managers and headquarters read beyond single tasks: a dealer's workload and SLA
//! breaches, and the KPIs computed by the `kpi` crate from the records the engine kept.
//!
//! The counting is the store's ([`ReportStore`]: SQL aggregations, never a load of every
//! task); the KPI rules are the `kpi` crate's. This module only reads the records in bounded
//! batches and converts them, so the CLI (`sopflow kpi`) and the API compute the same report.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use store::report::{OverdueQuery, PeriodQuery, ReportStore};
use store::{InboxCursor, InstanceRow};

use std::collections::BTreeMap;

use crate::dto::{CountDto, KpiDto, RatioDto, StepSlaDto, TargetDto};
use crate::error::Error;
use crate::views;

/// How many instances are read per batch (with their audit trails in one more query).
const BATCH: u32 = 200;

/// The longest period a KPI report covers: bounds the records one request reads.
pub const MAX_PERIOD: SignedDuration = SignedDuration::from_hours(24 * 400);

/// A moment in a query: an RFC 3339 time, or a date (midnight UTC).
pub fn parse_moment(name: &str, value: &str) -> Result<Timestamp, Error> {
    if let Ok(t) = value.parse::<Timestamp>() {
        return Ok(t);
    }
    value
        .parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| Error::BadRequest(format!("`{name}` is neither an RFC 3339 time nor a date (YYYY-MM-DD)")))
}

/// The period of a report: `to` defaults to now, `from` to 30 days before `to`; `from` must
/// come before `to`, at most [`MAX_PERIOD`] apart.
pub fn period(from: Option<&str>, to: Option<&str>, now: Timestamp) -> Result<kpi::Period, Error> {
    let to = to.map(|v| parse_moment("to", v)).transpose()?.unwrap_or(now);
    let from = match from {
        Some(v) => parse_moment("from", v)?,
        None => to.checked_sub(SignedDuration::from_hours(24 * 30)).unwrap_or(Timestamp::MIN),
    };
    if from >= to {
        return Err(Error::BadRequest("`from` must come before `to`".into()));
    }
    if to.duration_since(from) > MAX_PERIOD {
        return Err(Error::BadRequest("the period is longer than 400 days".into()));
    }
    Ok(kpi::Period { from, to })
}

/// The KPI report of a dealer (every dealer with `None`) over a period, at `now`: the
/// instances alive in the period with their audit trails, and the overdue open tasks, read in
/// batches and handed to [`kpi::compute`].
pub async fn kpi_report(
    store: &impl ReportStore,
    dealer: Option<&str>,
    period: kpi::Period,
    now: Timestamp,
) -> Result<kpi::Report, store::Error> {
    let mut records = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = PeriodQuery {
            dealer: dealer.map(str::to_string),
            from: period.from.as_millisecond(),
            to: period.to.as_millisecond(),
            after: after.clone(),
            limit: BATCH,
        };
        let rows = store.instances_in_period(&query).await?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut changes: std::collections::HashMap<String, Vec<(Timestamp, Vec<machine::Event>)>> =
            std::collections::HashMap::new();
        for a in store.audit_of_chains(&ids).await? {
            let Ok(entry) = serde_json::from_str::<Value>(&a.entry) else { continue };
            let events = kpi::events_of_entry(&entry);
            if let (false, Ok(at)) = (events.is_empty(), Timestamp::from_millisecond(a.at)) {
                changes.entry(a.chain).or_default().push((at, events));
            }
        }
        for row in &rows {
            records.push(record(row, changes.remove(&row.id).unwrap_or_default()));
        }
        if rows.len() < BATCH as usize {
            break;
        }
        after = ids.last().cloned();
    }

    let mut open_tasks = Vec::new();
    let mut cursor: Option<InboxCursor> = None;
    loop {
        let query = OverdueQuery {
            dealer: dealer.map(str::to_string),
            now: now.as_millisecond(),
            after: cursor.clone(),
            limit: 1000,
        };
        let rows = store.overdue_tasks(&query).await?;
        cursor = rows.last().map(InboxCursor::of);
        let done = rows.len() < 1000;
        open_tasks.extend(rows.into_iter().map(|t| kpi::OpenTask {
            roles: t.roles,
            due_at: t.due_at.and_then(|d| Timestamp::from_millisecond(d).ok()),
        }));
        if done {
            break;
        }
    }
    Ok(kpi::compute(&kpi::Definitions::default(), period, &records, &open_tasks, now))
}

/// What one stored instance left behind, for the KPIs.
fn record(row: &InstanceRow, changes: Vec<(Timestamp, Vec<machine::Event>)>) -> kpi::InstanceRecord {
    let snapshot: Value = serde_json::from_str(&row.snapshot).unwrap_or(Value::Null);
    kpi::InstanceRecord {
        id: row.id.clone(),
        process: row.process_id.clone(),
        outcome: row.outcome.clone(),
        started_at: Timestamp::from_millisecond(row.started_at).unwrap_or(Timestamp::UNIX_EPOCH),
        ended_at: row.ended_at.and_then(|e| Timestamp::from_millisecond(e).ok()),
        data: snapshot.get("data").and_then(Value::as_object).cloned().unwrap_or_default(),
        changes,
    }
}

/// The report as the API shows it.
pub fn kpi_dto(dealer: Option<String>, r: &kpi::Report, now: Timestamp) -> KpiDto {
    let counts = |m: &BTreeMap<String, u64>| m.iter().map(|(k, v)| CountDto { key: k.clone(), count: *v }).collect();
    KpiDto {
        dealer,
        from: views::time(r.period.from),
        to: views::time(r.period.to),
        now: views::time(now),
        followup_coverage: ratio(&r.followup_coverage),
        followup_success_rate: ratio(&r.followup_success_rate),
        followup_failure_reasons: counts(&r.followup_failure_reasons),
        complaint_rate: ratio(&r.complaint_rate),
        major_complaint_rate: ratio(&r.major_complaint_rate),
        first_time_fix_rate: ratio(&r.first_time_fix_rate),
        sla: r
            .sla
            .iter()
            .map(|x| StepSlaDto {
                process: x.process.clone(),
                step: x.step.clone(),
                on_time: ratio(&x.on_time),
                breaches: x.breaches,
            })
            .collect(),
        overdue_by_role: counts(&r.overdue_by_role),
    }
}

fn ratio(r: &kpi::Ratio) -> RatioDto {
    RatioDto {
        numerator: r.numerator,
        denominator: r.denominator,
        value: r.value,
        target: r.target.map(|t| match t {
            kpi::Target::AtLeast(v) => TargetDto { kind: "at_least".into(), value: v },
            kpi::Target::AtMost(v) => TargetDto { kind: "at_most".into(), value: v },
        }),
        met: r.met,
    }
}
