//! Pack distribution: headquarters publishes signed archives, dealers install them with their
//! overlay, headquarters reads every dealer's deviations. The work is the runtime's
//! (`runtime::distribution`, shared with the `sopflow pack` commands); the handlers decide who
//! may call them and shape the answers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use machine::Actor;
use packs::upgrade::ProcessChange;
use runtime::distribution::{InstallRequest, OverlayChoice, Source, stored_overlay_path};
use store::packs::{InstallationRow, PackStore, PublicationRow};

use crate::auth::Principal;
use crate::authz;
use crate::dto::{
    ArchiveBytes, ComplianceDto, ComplianceQuery, DealerComplianceDto, DeployedDto, DeviationDto, InstallationDto,
    InstallationHistoryDto, InstallationListQuery, InstalledDto, LabelDto, NewInstallation, PackProcessDto,
    PackVersionDto, Problem, ProcessChangeDto, PublicationDto, PublicationListQuery, PublishedDto,
};
use crate::error::Error;
use crate::extract::{Body, Params};
use crate::state::AppState;
use crate::views;

/// The largest archive accepted for publication. The packs crate bounds what an archive may
/// unpack to; this bounds what is read from the network before that.
pub const MAX_ARCHIVE_BYTES: usize = 16 << 20;

fn publication_dto(p: PublicationRow) -> PublicationDto {
    PublicationDto {
        pack: p.pack_id,
        version: p.version,
        digest: p.digest,
        signer: p.signer,
        published_at: views::time_ms(p.published_at),
        published_by: p.published_by,
    }
}

fn installation_dto(r: InstallationRow) -> InstallationDto {
    InstallationDto {
        seq: r.seq,
        dealer: r.dealer,
        pack: r.pack_id,
        version: r.version,
        digest: r.digest,
        signer: r.signer,
        action: r.action,
        overlay: r.overlay,
        installed_at: views::time_ms(r.installed_at),
        installed_by: r.installed_by,
    }
}

fn user(p: &Principal) -> Actor {
    Actor::User { id: p.user.clone(), role: None }
}

/// Two path segments; a bad one is a 400 problem.
#[derive(Debug)]
pub struct TwoIds(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for TwoIds {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let Path((a, b)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::BadRequest(format!("bad path: {}", e.body_text())))?;
        Ok(TwoIds(a, b))
    }
}

/// Publish a signed pack archive (headquarters administrators). The archive is verified
/// against the server's trusted publisher keys and its pack validated before anything is
/// stored; publishing the same archive again changes nothing.
#[utoipa::path(
    post, path = "/api/v1/packs", tag = "packs",
    request_body(content = ArchiveBytes, content_type = "application/octet-stream"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Published", body = PublishedDto),
        (status = 200, description = "The same archive was published before; nothing changed", body = PublishedDto),
        (status = 400, description = "Not a readable pack archive", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a headquarters administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No key is trusted, or the version is published with another archive", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The archive is too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Altered, unsigned, untrusted or invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn publish(
    State(s): State<AppState>,
    p: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PublishedDto>), Error> {
    authz::publish_packs(&p)?;
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge { limit: MAX_ARCHIVE_BYTES }
        } else {
            Error::BadRequest(format!("cannot read the body: {e}"))
        }
    })?;
    let trusted = &s.options().trusted_keys;
    let published = s.runtime().publish_pack(&bytes, trusted, &p.organisation, &user(&p)).await??;
    let status = if published.new { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(PublishedDto { publication: publication_dto(published.row), new: published.new })))
}

/// The published pack versions, by pack then publication order.
#[utoipa::path(
    get, path = "/api/v1/packs", tag = "packs",
    params(PublicationListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The publications", body = Vec<PublicationDto>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn publications(
    State(s): State<AppState>,
    _p: Principal,
    Params(q): Params<PublicationListQuery>,
) -> Result<Json<Vec<PublicationDto>>, Error> {
    let rows = s.runtime().store().publications(q.pack.as_deref()).await?;
    Ok(Json(rows.into_iter().map(publication_dto).collect()))
}

async fn published(s: &AppState, pack: &str, version: &str) -> Result<(PublicationRow, Vec<u8>), Error> {
    let store = s.runtime().store();
    let publication = store.publication(pack, version).await?.ok_or(Error::NotFound)?;
    let archive = store
        .archive(&publication.digest)
        .await?
        .ok_or_else(|| Error::Internal(format!("the archive {} of a publication is not stored", publication.digest)))?;
    Ok((publication, archive.bytes))
}

/// A published pack version: its manifest and processes.
#[utoipa::path(
    get, path = "/api/v1/packs/{id}/{version}", tag = "packs",
    params(("id" = String, Path, description = "The pack id"), ("version" = String, Path, description = "The version")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The version", body = PackVersionDto),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not published", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn version(
    State(s): State<AppState>,
    _p: Principal,
    TwoIds(pack, version): TwoIds,
) -> Result<Json<PackVersionDto>, Error> {
    let (publication, bytes) = published(&s, &pack, &version).await?;
    let loaded = s
        .runtime()
        .stored_pack(&bytes)
        .map_err(|e| Error::Internal(format!("the published archive {} no longer loads: {e}", publication.digest)))?;
    let processes = loaded
        .processes
        .iter()
        .map(|p| PackProcessDto {
            id: p.id.clone(),
            version: p.version,
            title: LabelDto::from(&p.title),
            hash: p.hash.0.clone(),
        })
        .collect();
    Ok(Json(PackVersionDto { publication: publication_dto(publication), manifest: loaded.manifest_json, processes }))
}

/// The archive of a published version, as it was published (for `sopflow pack pull`, which
/// verifies it again against its own trusted keys).
#[utoipa::path(
    get, path = "/api/v1/packs/{id}/{version}/archive", tag = "packs",
    params(("id" = String, Path, description = "The pack id"), ("version" = String, Path, description = "The version")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The archive", body = ArchiveBytes, content_type = "application/octet-stream"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not published", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn archive(
    State(s): State<AppState>,
    _p: Principal,
    TwoIds(pack, version): TwoIds,
) -> Result<Response, Error> {
    let (_, bytes) = published(&s, &pack, &version).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Install a published pack version at the caller's dealer (dealer administrators): a first
/// installation, an upgrade (the overlay installed now is re-applied unless another is given),
/// a downgrade with `force`, or an overlay change. An overlay that does not apply is refused
/// with each conflict at its `file:line:col`; then nothing is deployed or recorded.
#[utoipa::path(
    post, path = "/api/v1/installations", tag = "packs",
    request_body = NewInstallation,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Installed and deployed", body = InstalledDto),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a dealer administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The overlay does not apply, a downgrade without force, or someone installed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not published, or an invalid overlay", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn install(
    State(s): State<AppState>,
    p: Principal,
    body: Body<NewInstallation>,
) -> Result<(StatusCode, Json<InstalledDto>), Error> {
    let dealer = authz::install_packs(&p)?.to_string();
    let b = body.value;
    let overlay = match (b.overlay, b.remove_overlay) {
        (Some(_), true) => return Err(Error::invalid("/remove_overlay", "give an overlay or remove it, not both")),
        (Some(text), false) => OverlayChoice::Replace { path: stored_overlay_path(&dealer), text },
        (None, true) => OverlayChoice::Remove,
        (None, false) => OverlayChoice::Keep,
    };
    let req = InstallRequest {
        dealer,
        source: Source::Published { pack: b.pack, version: b.version },
        overlay,
        force: b.force,
        by: user(&p),
    };
    let installed = s.runtime().install_pack(req, &s.options().trusted_keys).await??;
    s.learn(&installed.pack);
    if let Some(hook) = &s.options().on_install {
        let archive = s.runtime().store().archive(&installed.row.digest).await?;
        match archive.map(|a| packs::Archive::read(&a.bytes)) {
            Some(Ok(archive)) => {
                if let Err(e) = (hook.0)(&archive) {
                    tracing::warn!("after installing {}: {e}", installed.row.pack_id);
                }
            }
            _ => tracing::warn!("the archive {} just installed cannot be read back", installed.row.digest),
        }
    }
    let dto = InstalledDto {
        installation: installation_dto(installed.row),
        deployed: installed
            .deployed
            .into_iter()
            .map(|d| DeployedDto { process: d.process_id, hash: d.hash, new: d.new })
            .collect(),
        changes: installed
            .changes
            .iter()
            .map(|c| {
                let (change, process) = change_word(c);
                ProcessChangeDto { process: process.to_string(), change: change.to_string() }
            })
            .collect(),
        warnings: installed.warnings.iter().map(ToString::to_string).collect(),
    };
    Ok((StatusCode::CREATED, Json(dto)))
}

/// The current installations: the caller's dealer's; headquarters: every dealer's.
#[utoipa::path(
    get, path = "/api/v1/installations", tag = "packs",
    params(InstallationListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The installations, by dealer then pack", body = Vec<InstallationDto>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Another dealer (for a dealer user)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn installations(
    State(s): State<AppState>,
    p: Principal,
    Params(q): Params<InstallationListQuery>,
) -> Result<Json<Vec<InstallationDto>>, Error> {
    let dealer = authz::list_dealer(&p, q.dealer.as_deref(), false)?;
    let rows = s.runtime().store().installations(dealer.as_deref(), q.pack.as_deref()).await?;
    Ok(Json(rows.into_iter().map(installation_dto).collect()))
}

/// A dealer's installation of a pack, with its history (every install, upgrade and overlay
/// change, oldest first).
#[utoipa::path(
    get, path = "/api/v1/installations/{dealer}/{pack}", tag = "packs",
    params(("dealer" = String, Path, description = "The dealer"), ("pack" = String, Path, description = "The pack id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The installation", body = InstallationHistoryDto),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not installed, or another dealer's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn installation(
    State(s): State<AppState>,
    p: Principal,
    TwoIds(dealer, pack): TwoIds,
) -> Result<Json<InstallationHistoryDto>, Error> {
    authz::installation(&p, &dealer).read()?;
    let history = s.runtime().store().installation_history(&dealer, &pack).await?;
    let current = history.last().cloned().ok_or(Error::NotFound)?;
    Ok(Json(InstallationHistoryDto {
        current: installation_dto(current),
        history: history.into_iter().map(installation_dto).collect(),
    }))
}

/// Every dealer's deviations from a pack's standard (headquarters): what each dealer's overlay
/// changes in the version it installed, most severe first.
#[utoipa::path(
    get, path = "/api/v1/compliance", tag = "packs",
    params(ComplianceQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report", body = ComplianceDto),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not headquarters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn compliance(
    State(s): State<AppState>,
    p: Principal,
    Params(q): Params<ComplianceQuery>,
) -> Result<Json<ComplianceDto>, Error> {
    authz::compliance(&p)?;
    let report = s.runtime().compliance(&q.pack).await?;
    let mut dealers = Vec::new();
    let mut deviations = Vec::new();
    for d in report {
        dealers.push(DealerComplianceDto {
            dealer: d.installation.dealer.clone(),
            version: d.installation.version.clone(),
            has_overlay: d.installation.overlay.is_some(),
            n_deviations: d.deviations.len(),
        });
        deviations.extend(d.deviations.into_iter().map(|x| DeviationDto {
            dealer: x.dealer,
            process: x.process,
            kind: serde_json::to_value(x.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            target: x.path,
            standard: x.standard,
            dealer_value: x.dealer_value,
            severity: x.severity.as_str().to_string(),
        }));
    }
    Ok(Json(ComplianceDto { pack: q.pack, dealers, deviations }))
}

/// The word and the process of a change.
fn change_word(c: &ProcessChange) -> (&'static str, &str) {
    match c {
        ProcessChange::Added { process, .. } => ("added", process),
        ProcessChange::Removed { process, .. } => ("removed", process),
        ProcessChange::Changed { process, .. } => ("changed", process),
        ProcessChange::Unchanged { process, .. } => ("unchanged", process),
    }
}

/// One instance moved (or not) by [`migrate`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct MigrationDto {
    /// The instance.
    pub instance: String,
    /// Its process.
    pub process: String,
    /// Whether it now runs on the installed version.
    pub moved: bool,
    /// Why it did not move (it stays on its version).
    pub reason: Option<String>,
}

/// Move the caller's dealer's running instances of a pack onto the version installed now,
/// along the pack's migration map for the version installed before (dealer administrators).
/// Each move is recorded in the instance's audit trail; an instance that cannot move stays on
/// its version and is listed with the reason.
#[utoipa::path(
    post, path = "/api/v1/installations/{pack}/migrate", tag = "packs",
    params(("pack" = String, Path, description = "The pack id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The instances looked at", body = Vec<MigrationDto>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a dealer administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The pack is not installed at the dealer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn migrate(
    State(s): State<AppState>,
    p: Principal,
    crate::extract::Id(pack): crate::extract::Id,
) -> Result<Json<Vec<MigrationDto>>, Error> {
    let dealer = authz::install_packs(&p)?.to_string();
    if s.runtime().store().installation(&dealer, &pack).await?.is_none() {
        return Err(Error::NotFound);
    }
    let moved = s.runtime().migrate_installed(&dealer, &pack, &p.user).await??;
    Ok(Json(
        moved
            .into_iter()
            .map(|m| MigrationDto {
                instance: m.instance,
                process: m.process,
                moved: m.result.is_ok(),
                reason: m.result.err(),
            })
            .collect(),
    ))
}
