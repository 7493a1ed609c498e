//! Prometheus metrics in the text exposition format, hand-rolled: a handful of counters and
//! one latency histogram do not justify a metrics framework and its registry.
//!
//! HTTP requests are counted by a middleware, by method, route template (never the raw path,
//! so ids do not explode the label set) and status. What the engine does on its own (timers
//! fired, SLA breaches, incidents, completions, instances started and ended) is counted from
//! the audit trail: each scrape reads the entries appended since the previous one (bounded per
//! scrape), so every node of a shared database reports the same totals and nothing in the
//! runtime has to know about metrics. Counters start at the server's start.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use store::Store;

use crate::error::Error;
use crate::state::AppState;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 9] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 2.5];

/// Audit entries read per scrape at most (the rest are read by the next scrape).
const TAIL_PAGES: usize = 20;
const TAIL_PAGE: u32 = 5_000;

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    n_requests: AtomicU64,
    micros_total: AtomicU64,
    tail: tokio::sync::Mutex<Tail>,
}

#[derive(Debug, Default)]
struct Tail {
    after: Option<i64>,
    counts: BTreeMap<&'static str, u64>,
}

/// The engine counters read from the audit trail: (metric, help, event).
const ENGINE: [(&str, &str, &str); 6] = [
    ("sopflow_task_completions_total", "Tasks completed.", "task_completed"),
    ("sopflow_timers_fired_total", "Timers fired.", "timer_fired"),
    ("sopflow_sla_breaches_total", "Task due times passed while open.", "sla_breached"),
    ("sopflow_incidents_total", "Incidents raised.", "incident_raised"),
    ("sopflow_instances_started_total", "Instances started.", "started"),
    ("sopflow_instances_ended_total", "Instances ended.", "ended"),
];

impl Metrics {
    /// No counts yet.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Counts one answered request.
    pub fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        let mut map = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        drop(map);
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.n_requests.fetch_add(1, Ordering::Relaxed);
        self.micros_total.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// The exposition text, after reading the audit entries appended since the last scrape.
    pub async fn render(&self, state: &AppState) -> Result<String, Error> {
        let engine = self.read_tail(state).await?;
        let mut out = String::new();
        let _ = writeln!(out, "# HELP sopflow_http_requests_total HTTP requests answered.");
        let _ = writeln!(out, "# TYPE sopflow_http_requests_total counter");
        let requests = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for ((method, route, status), n) in &requests {
            let _ = writeln!(
                out,
                "sopflow_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let _ = writeln!(out, "# HELP sopflow_http_request_duration_seconds Time to answer a request.");
        let _ = writeln!(out, "# TYPE sopflow_http_request_duration_seconds histogram");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "sopflow_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let n = self.n_requests.load(Ordering::Relaxed);
        let _ = writeln!(out, "sopflow_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "sopflow_http_request_duration_seconds_sum {}",
            self.micros_total.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "sopflow_http_request_duration_seconds_count {n}");
        for (name, help, event) in ENGINE {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", engine.get(event).copied().unwrap_or(0));
        }
        Ok(out)
    }

    async fn read_tail(&self, state: &AppState) -> Result<BTreeMap<&'static str, u64>, Error> {
        let store = state.runtime().store();
        let mut tail = self.tail.lock().await;
        let mut after = match tail.after {
            Some(a) => a,
            // Start at the end of the trail as it is now: counters count from the server's start.
            None => store.stats().await?.audit,
        };
        for _ in 0..TAIL_PAGES {
            let rows = store.audit_since(after, TAIL_PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for row in &rows {
                let entry: Value = serde_json::from_str(&row.entry).unwrap_or(Value::Null);
                for e in entry.get("events").and_then(Value::as_array).into_iter().flatten() {
                    let Some(kind) = e.get("event").and_then(Value::as_str) else { continue };
                    if let Some((_, _, event)) = ENGINE.iter().find(|(_, _, ev)| *ev == kind) {
                        *tail.counts.entry(event).or_default() += 1;
                    }
                }
            }
            if rows.len() < TAIL_PAGE as usize {
                break;
            }
        }
        tail.after = Some(after);
        Ok(tail.counts.clone())
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
