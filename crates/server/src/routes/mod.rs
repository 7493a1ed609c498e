//! The handlers, grouped by resource, and the tables that register them: each `routes!` takes
//! a handler's path and method from its `#[utoipa::path]`, so the router and the OpenAPI
//! document cannot disagree.

pub mod admin;
pub mod external;
pub mod instances;
pub mod misc;
pub mod packs;
pub mod reports;
pub mod tasks;

use axum::extract::DefaultBodyLimit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// Every route of the API.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(misc::healthz))
        .routes(routes!(misc::readyz))
        .routes(routes!(misc::metrics))
        .routes(routes!(misc::login))
        .routes(routes!(misc::me))
        .routes(routes!(misc::preferences))
        .routes(routes!(tasks::list))
        .routes(routes!(tasks::get))
        .routes(routes!(tasks::claim))
        .routes(routes!(tasks::unclaim))
        .routes(routes!(tasks::delegate))
        .routes(routes!(tasks::complete))
        .routes(routes!(instances::start, instances::list))
        .routes(routes!(instances::get))
        .routes(routes!(instances::audit))
        .routes(routes!(instances::trace))
        .routes(routes!(instances::graph))
        .routes(routes!(instances::cancel))
        .routes(routes!(instances::retry_incident))
        .routes(routes!(instances::skip_incident))
        .routes(routes!(misc::message))
        .routes(routes!(external::fetch_and_lock))
        .routes(routes!(external::complete))
        .routes(routes!(external::failure))
        .routes(routes!(misc::processes))
        .routes(routes!(misc::process_graph))
        .routes(routes!(reports::workload))
        .routes(routes!(reports::kpis))
        .routes(routes!(admin::roles))
        .routes(routes!(admin::organisations, admin::create_organisation))
        .routes(routes!(admin::users, admin::create_user))
        .routes(routes!(admin::user))
        .routes(routes!(admin::set_roles))
        .routes(routes!(admin::tokens, admin::create_token))
        .routes(routes!(admin::revoke_token))
        .merge(
            // Archives are larger than any JSON body; only publication reads that much.
            OpenApiRouter::new()
                .routes(routes!(packs::publish, packs::publications))
                .layer(DefaultBodyLimit::max(packs::MAX_ARCHIVE_BYTES)),
        )
        .routes(routes!(packs::version))
        .routes(routes!(packs::archive))
        .routes(routes!(packs::install, packs::installations))
        .routes(routes!(packs::installation))
        .routes(routes!(packs::migrate))
        .routes(routes!(packs::compliance))
}

/// The routes that exist only on a server with a virtual clock.
pub fn test_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(misc::clock))
}
