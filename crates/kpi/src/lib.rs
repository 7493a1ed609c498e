//! The KPIs the after-sales sources set targets for, computed from what the engine recorded:
//! each instance's outcome, final data and the events of its audit trail, plus the open tasks.
//!
//! Pure: the caller (the runtime, the CLI, the server) reads the records from the store for one
//! dealer and period and hands them in; nothing here reads a clock or a database. The
//! definitions name the processes and variables of the standard pack (`service_order`,
//! `follow_up_call`, `complaint`, `rework_count`, `level_rank`); [`Definitions`] lets another
//! pack name its own.

use std::collections::BTreeMap;

use jiff::Timestamp;
use machine::Event;
use serde::Serialize;
use serde_json::{Map, Value};

/// What an instance left behind, as read back from the store.
#[derive(Debug, Clone)]
pub struct InstanceRecord {
    /// The instance id.
    pub id: String,
    /// The process id.
    pub process: String,
    /// The outcome, once ended.
    pub outcome: Option<String>,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// Its data at the end (or now).
    pub data: Map<String, Value>,
    /// Its audit trail: when each change happened and its events.
    pub changes: Vec<(Timestamp, Vec<Event>)>,
}

/// An open task, for the overdue count.
#[derive(Debug, Clone)]
pub struct OpenTask {
    /// Its candidate roles.
    pub roles: Vec<String>,
    /// When it is due.
    pub due_at: Option<Timestamp>,
}

/// Which processes, steps and variables the KPIs read.
#[derive(Debug, Clone)]
pub struct Definitions {
    /// The service order process.
    pub service_order: String,
    /// The step whose completion is the vehicle's exit (follow-up coverage counts from it).
    pub exit_step: String,
    /// The follow-up call process.
    pub follow_up: String,
    /// The complaint process.
    pub complaint: String,
    /// The step a service order enters once its final inspection passed (first-time fix is
    /// judged there).
    pub after_inspection_step: String,
    /// The service order variable counting reworks after failed inspections.
    pub rework_variable: String,
    /// The complaint variable giving the level's rank (1 = grumble .. 4 = strong).
    pub complaint_rank_variable: String,
    /// The rank from which a complaint counts as major.
    pub major_rank: i64,
}

impl Default for Definitions {
    fn default() -> Self {
        Definitions {
            service_order: "service_order".into(),
            exit_step: "handover".into(),
            follow_up: "follow_up_call".into(),
            complaint: "complaint".into(),
            after_inspection_step: "cleaning".into(),
            rework_variable: "rework_count".into(),
            complaint_rank_variable: "level_rank".into(),
            major_rank: 3,
        }
    }
}

/// A period, `from` included, `to` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    /// The start.
    pub from: Timestamp,
    /// The end.
    pub to: Timestamp,
}

impl Period {
    fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }
}

/// A ratio with its target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratio {
    /// What is counted.
    pub numerator: u64,
    /// Out of how many.
    pub denominator: u64,
    /// The ratio, when there is anything to divide by.
    pub value: Option<f64>,
    /// The target the sources set, if any: `at_least` or `at_most` a value.
    pub target: Option<Target>,
    /// Whether the target is met (when there is a value and a target).
    pub met: Option<bool>,
}

/// A target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// At least this ratio.
    AtLeast(f64),
    /// At most this ratio.
    AtMost(f64),
}

impl Ratio {
    fn new(numerator: u64, denominator: u64, target: Option<Target>) -> Ratio {
        let value = (denominator > 0).then(|| numerator as f64 / denominator as f64);
        let met = match (value, target) {
            (Some(v), Some(Target::AtLeast(t))) => Some(v >= t),
            (Some(v), Some(Target::AtMost(t))) => Some(v <= t),
            _ => None,
        };
        Ratio { numerator, denominator, value, target, met }
    }
}

/// SLA compliance of one step: tasks completed in the period that had a due time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepSla {
    /// The process.
    pub process: String,
    /// The step (or the timer id of a side task).
    pub step: String,
    /// Completed by their due time, out of all completed with one.
    pub on_time: Ratio,
    /// Due times that passed while the task was open (every breach, also of tasks still open).
    pub breaches: u64,
}

/// The KPIs of one dealer over one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The period.
    pub period: Period,
    /// Vehicles that left in the period and got a follow-up call, out of all that left
    /// (target 100%: 001「眾泰汽車客戶進行100%回訪」).
    pub followup_coverage: Ratio,
    /// Follow-up calls that reached the customer, out of those that ended in the period
    /// (target at least 80%: 001「回訪成功率要求達到80%以上」).
    pub followup_success_rate: Ratio,
    /// Why follow-ups failed: reason -> count.
    pub followup_failure_reasons: BTreeMap<String, u64>,
    /// Complaints opened, out of service orders started, in the period.
    pub complaint_rate: Ratio,
    /// Major complaints (rank at least `major_rank`), out of service orders started
    /// (target at most 1%: 001「重大問題客戶投訴率不高于1%」).
    pub major_complaint_rate: Ratio,
    /// Service orders that passed their final inspection in the period without any rework, out
    /// of all that passed it (一次修復率; the sources set no figure: 001「一次修復率」).
    pub first_time_fix_rate: Ratio,
    /// SLA compliance per step with a due time, worst first.
    pub sla: Vec<StepSla>,
    /// Open tasks past their due time, by candidate role, at `now`.
    pub overdue_by_role: BTreeMap<String, u64>,
}

/// Computes the report. `instances` are the dealer's instances that started or ended in the
/// period (more do no harm: each figure filters by its own moment).
pub fn compute(
    defs: &Definitions,
    period: Period,
    instances: &[InstanceRecord],
    open_tasks: &[OpenTask],
    now: Timestamp,
) -> Report {
    fn of<'a>(instances: &'a [InstanceRecord], process: &'a str) -> impl Iterator<Item = &'a InstanceRecord> {
        instances.iter().filter(move |i| i.process == process)
    }

    // Follow-up coverage: orders whose exit step was completed in the period, and of those, how
    // many started a follow-up child.
    let mut exits = 0;
    let mut covered = 0;
    for order in of(instances, &defs.service_order) {
        let exit = order.changes.iter().find(|(at, events)| {
            period.contains(*at)
                && events.iter().any(|e| matches!(e, Event::TaskCompleted { step, .. } if *step == defs.exit_step))
        });
        if exit.is_some() {
            exits += 1;
            let followed = order.changes.iter().any(|(_, events)| {
                events.iter().any(|e| matches!(e, Event::ChildStarted { process, .. } if *process == defs.follow_up))
            });
            covered += u64::from(followed);
        }
    }

    let mut reached = 0;
    let mut ended_calls = 0;
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for call in of(instances, &defs.follow_up).filter(|c| c.ended_at.is_some_and(|t| period.contains(t))) {
        match call.outcome.as_deref() {
            Some("completed") => {
                reached += 1;
                ended_calls += 1;
            }
            Some("failed") => {
                ended_calls += 1;
                let reason = call.data.get("failure_reason").and_then(Value::as_str).unwrap_or("unknown");
                *reasons.entry(reason.to_string()).or_default() += 1;
            }
            _ => {}
        }
    }

    let orders_started = of(instances, &defs.service_order).filter(|o| period.contains(o.started_at)).count() as u64;
    let complaints: Vec<&InstanceRecord> =
        of(instances, &defs.complaint).filter(|c| period.contains(c.started_at)).collect();
    let major = complaints
        .iter()
        .filter(|c| {
            c.data.get(&defs.complaint_rank_variable).and_then(Value::as_i64).is_some_and(|r| r >= defs.major_rank)
        })
        .count() as u64;

    let mut fixed = 0;
    let mut inspected = 0;
    for order in of(instances, &defs.service_order) {
        let passed = order.changes.iter().any(|(at, events)| {
            period.contains(*at)
                && events
                    .iter()
                    .any(|e| matches!(e, Event::Entered { step, .. } if *step == defs.after_inspection_step))
        });
        if passed {
            inspected += 1;
            let reworks = order.data.get(&defs.rework_variable).and_then(Value::as_i64).unwrap_or(0);
            fixed += u64::from(reworks == 0);
        }
    }

    // SLA per step, from the completion events (they carry the due time the task had) and the
    // breach events.
    let mut per_step: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    for inst in instances {
        for (at, events) in &inst.changes {
            for e in events {
                match e {
                    Event::TaskCompleted { step, due_at: Some(due), .. } if period.contains(*at) => {
                        let slot = per_step.entry((inst.process.clone(), step.clone())).or_default();
                        slot.1 += 1;
                        slot.0 += u64::from(*at <= *due);
                    }
                    Event::SlaBreached { step, .. } if period.contains(*at) => {
                        per_step.entry((inst.process.clone(), step.clone())).or_default().2 += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    let mut sla: Vec<StepSla> = per_step
        .into_iter()
        .map(|((process, step), (met, total, breaches))| StepSla {
            process,
            step,
            on_time: Ratio::new(met, total, None),
            breaches,
        })
        .collect();
    sla.sort_by(|a, b| {
        let va = a.on_time.value.unwrap_or(1.0);
        let vb = b.on_time.value.unwrap_or(1.0);
        va.total_cmp(&vb)
            .then_with(|| b.breaches.cmp(&a.breaches))
            .then_with(|| (&a.process, &a.step).cmp(&(&b.process, &b.step)))
    });

    let mut overdue_by_role: BTreeMap<String, u64> = BTreeMap::new();
    for t in open_tasks.iter().filter(|t| t.due_at.is_some_and(|d| d < now)) {
        for r in &t.roles {
            *overdue_by_role.entry(r.clone()).or_default() += 1;
        }
    }

    Report {
        period,
        followup_coverage: Ratio::new(covered, exits, Some(Target::AtLeast(1.0))),
        followup_success_rate: Ratio::new(reached, ended_calls, Some(Target::AtLeast(0.8))),
        followup_failure_reasons: reasons,
        complaint_rate: Ratio::new(complaints.len() as u64, orders_started, None),
        major_complaint_rate: Ratio::new(major, orders_started, Some(Target::AtMost(0.01))),
        first_time_fix_rate: Ratio::new(fixed, inspected, None),
        sla,
        overdue_by_role,
    }
}

/// Reads the events of one stored audit entry (the `events` member of its JSON).
pub fn events_of_entry(entry: &Value) -> Vec<Event> {
    entry
        .get("events")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|e| serde_json::from_value(e.clone()).ok()).collect())
        .unwrap_or_default()
}

/// The report as a short text table, for the command line.
pub fn render(report: &Report) -> String {
    let pct = |r: &Ratio| match r.value {
        Some(v) => format!("{:>6.1}%  ({}/{})", v * 100.0, r.numerator, r.denominator),
        None => "     -   (0/0)".to_string(),
    };
    let target = |r: &Ratio| match (r.target, r.met) {
        (Some(Target::AtLeast(t)), Some(met)) => {
            format!("  target >= {:.0}%: {}", t * 100.0, if met { "met" } else { "MISSED" })
        }
        (Some(Target::AtMost(t)), Some(met)) => {
            format!("  target <= {:.0}%: {}", t * 100.0, if met { "met" } else { "MISSED" })
        }
        _ => String::new(),
    };
    let mut out = String::new();
    out.push_str(&format!("period {} .. {}\n", report.period.from, report.period.to));
    for (name, r) in [
        ("follow-up coverage", &report.followup_coverage),
        ("follow-up success rate", &report.followup_success_rate),
        ("complaint rate", &report.complaint_rate),
        ("major complaint rate", &report.major_complaint_rate),
        ("first-time-fix rate", &report.first_time_fix_rate),
    ] {
        out.push_str(&format!("{name:<24}{}{}\n", pct(r), target(r)));
    }
    if !report.followup_failure_reasons.is_empty() {
        let reasons: Vec<String> = report.followup_failure_reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push_str(&format!("follow-up failures       {}\n", reasons.join(", ")));
    }
    out.push_str("SLA compliance (worst first):\n");
    for s in &report.sla {
        out.push_str(&format!(
            "  {:<40}{}  breaches {}\n",
            format!("{}.{}", s.process, s.step),
            pct(&s.on_time),
            s.breaches
        ));
    }
    out.push_str("overdue tasks by role:\n");
    for (role, n) in &report.overdue_by_role {
        out.push_str(&format!("  {role:<40}{n}\n"));
    }
    out
}
