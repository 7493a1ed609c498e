//! The server's tests: router tests with `oneshot` on the memory store (authorisation with two
//! dealers and headquarters, form validation, idempotency, problem documents, the OpenAPI
//! document, pack distribution), and end-to-end tests against a listening server on SQLite and,
//! when `DATABASE_URL` is set, PostgreSQL: a repair job, and the standard pack's service order
//! from the appointment to the follow-up call driven by the demo users.

#[path = "server/harness.rs"]
mod harness;

#[path = "server/authorisation.rs"]
mod authorisation;
#[path = "server/distribution.rs"]
mod distribution;
#[path = "server/end_to_end.rs"]
mod end_to_end;
#[path = "server/external_tasks.rs"]
mod external_tasks;
#[path = "server/forms.rs"]
mod forms;
#[path = "server/idempotency.rs"]
mod idempotency;
#[path = "server/openapi.rs"]
mod openapi;
#[path = "server/problems.rs"]
mod problems;
#[path = "server/reports.rs"]
mod reports;
#[path = "server/service_order.rs"]
mod service_order;
