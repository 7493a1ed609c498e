//! Administration: the role catalogue, organisations, users and API tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use store::org::{OrgStore, OrganisationRow, TokenRow, UserRow};

use crate::auth::{self, Principal};
use crate::authz;
use crate::dto::{
    CreatedToken, NewOrganisation, NewToken, NewUser, OrgKind, OrganisationDto, Problem, RoleDto, SetRoles, TokenDto,
    TokenListQuery, UserDto, UserListQuery,
};
use crate::error::Error;
use crate::extract::{Body, Id, Params};
use crate::routes::misc::role_dto;
use crate::state::AppState;
use crate::views;

/// Whether an id is usable: 1 to 64 letters, digits, `.`, `_` or `-`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn user_dto(u: UserRow) -> UserDto {
    UserDto {
        id: u.id,
        organisation: u.organisation,
        name: u.name,
        roles: u.roles,
        admin: u.admin,
        active: u.active,
        has_password: u.password_hash.is_some(),
    }
}

fn org_dto(o: OrganisationRow) -> OrganisationDto {
    OrganisationDto {
        kind: if o.kind == "hq" { OrgKind::Hq } else { OrgKind::Dealer },
        id: o.id,
        name: o.name,
        time_zone: o.time_zone,
    }
}

fn token_dto(t: TokenRow) -> TokenDto {
    TokenDto {
        id: t.id,
        user: t.user_id,
        label: t.label,
        created_at: views::time_ms(t.created_at),
        expires_at: t.expires_at.map(views::time_ms),
        revoked_at: t.revoked_at.map(views::time_ms),
    }
}

/// Every role id must be in the catalogue.
fn check_roles(s: &AppState, roles: &[String]) -> Result<(), Error> {
    let errors: Vec<machine::FieldError> = roles
        .iter()
        .enumerate()
        .filter(|(_, r)| !s.catalogue().roles().contains_key(*r))
        .map(|(i, r)| machine::FieldError {
            path: format!("/roles/{i}"),
            message: format!("`{r}` is not in the role catalogue"),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation { detail: format!("{} unknown role(s)", errors.len()), errors })
    }
}

/// The role catalogue of the deployed packs.
#[utoipa::path(
    get, path = "/api/v1/roles", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The roles", body = Vec<RoleDto>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn roles(State(s): State<AppState>, _p: Principal) -> Json<Vec<RoleDto>> {
    Json(s.catalogue().roles().keys().map(|r| role_dto(&s, r)).collect())
}

/// The organisations the caller may see: their own; every one for headquarters.
#[utoipa::path(
    get, path = "/api/v1/organisations", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The organisations", body = Vec<OrganisationDto>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn organisations(State(s): State<AppState>, p: Principal) -> Result<Json<Vec<OrganisationDto>>, Error> {
    let all = s.org().organisations().await?;
    Ok(Json(all.into_iter().filter(|o| p.is_hq() || o.id == p.organisation).map(org_dto).collect()))
}

/// Create an organisation (headquarters administrators).
#[utoipa::path(
    post, path = "/api/v1/organisations", tag = "admin",
    request_body = NewOrganisation,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = OrganisationDto),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a headquarters administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_organisation(
    State(s): State<AppState>,
    p: Principal,
    body: Body<NewOrganisation>,
) -> Result<(StatusCode, Json<OrganisationDto>), Error> {
    authz::manage_organisations(&p)?;
    let o = body.value;
    if !valid_id(&o.id) {
        return Err(Error::invalid("/id", "use 1 to 64 letters, digits, `.`, `_` or `-`"));
    }
    let time_zone = o.time_zone.unwrap_or_else(|| "Asia/Shanghai".into());
    if jiff::tz::TimeZone::get(&time_zone).is_err() {
        return Err(Error::invalid("/time_zone", format!("`{time_zone}` is not an IANA time zone")));
    }
    let row = OrganisationRow {
        name: o.name.unwrap_or_else(|| o.id.clone()),
        id: o.id,
        kind: o.kind.as_str().into(),
        time_zone,
        created_at: s.now_ms(),
    };
    if !s.org().put_organisation(&row).await? {
        return Err(Error::Conflict(format!("the organisation `{}` exists", row.id)));
    }
    Ok((StatusCode::CREATED, Json(org_dto(row))))
}

/// The users of an organisation (administrators).
#[utoipa::path(
    get, path = "/api/v1/users", tag = "admin", params(UserListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The users", body = Vec<UserDto>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Another organisation", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn users(
    State(s): State<AppState>,
    p: Principal,
    Params(q): Params<UserListQuery>,
) -> Result<Json<Vec<UserDto>>, Error> {
    let org = q.organisation.unwrap_or_else(|| p.organisation.clone());
    authz::manage(&p, &org)?;
    Ok(Json(s.org().users(Some(&org)).await?.into_iter().map(user_dto).collect()))
}

/// Create a user (administrators of its organisation).
#[utoipa::path(
    post, path = "/api/v1/users", tag = "admin",
    request_body = NewUser,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = UserDto),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Another organisation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body (unknown role, short password, ...)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_user(
    State(s): State<AppState>,
    p: Principal,
    body: Body<NewUser>,
) -> Result<(StatusCode, Json<UserDto>), Error> {
    let u = body.value;
    let org = u.organisation.clone().unwrap_or_else(|| p.organisation.clone());
    authz::manage(&p, &org)?;
    if s.org().organisation(&org).await?.is_none() {
        return Err(Error::invalid("/organisation", format!("there is no organisation `{org}`")));
    }
    if !valid_id(&u.id) {
        return Err(Error::invalid("/id", "use 1 to 64 letters, digits, `.`, `_` or `-`"));
    }
    check_roles(&s, &u.roles)?;
    if s.org().user(&u.id).await?.is_some() {
        return Err(Error::Conflict(format!("the user `{}` exists", u.id)));
    }
    let password_hash = match u.password {
        Some(pw) => Some(
            tokio::task::spawn_blocking(move || auth::check_policy(&pw).and_then(|()| auth::hash_password(&pw)))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(|e| Error::invalid("/password", e.to_string()))?,
        ),
        None => None,
    };
    let row = UserRow {
        name: u.name.unwrap_or_else(|| u.id.clone()),
        id: u.id,
        organisation: org,
        roles: u.roles,
        admin: u.admin,
        password_hash,
        lang: None,
        active: true,
        created_at: s.now_ms(),
    };
    s.org().put_user(&row).await?;
    Ok((StatusCode::CREATED, Json(user_dto(row))))
}

/// A user (administrators of its organisation).
#[utoipa::path(
    get, path = "/api/v1/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "The user id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserDto),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or another organisation", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn user(State(s): State<AppState>, p: Principal, Id(id): Id) -> Result<Json<UserDto>, Error> {
    let u = s.org().user(&id).await?.ok_or(Error::NotFound)?;
    if u.id != p.user {
        authz::manage(&p, &u.organisation)?;
    }
    Ok(Json(user_dto(u)))
}

/// Set a user's roles (administrators of its organisation).
#[utoipa::path(
    put, path = "/api/v1/users/{id}/roles", tag = "admin",
    params(("id" = String, Path, description = "The user id")),
    request_body = SetRoles,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Saved", body = UserDto),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or another organisation", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown role", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_roles(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    body: Body<SetRoles>,
) -> Result<Json<UserDto>, Error> {
    let mut u = s.org().user(&id).await?.ok_or(Error::NotFound)?;
    authz::manage(&p, &u.organisation)?;
    check_roles(&s, &body.value.roles)?;
    u.roles = body.value.roles;
    if let Some(admin) = body.value.admin {
        u.admin = admin;
    }
    s.org().put_user(&u).await?;
    s.forget_authentications();
    Ok(Json(user_dto(u)))
}

/// A user's tokens (their own; administrators: their organisation's users').
#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "admin", params(TokenListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tokens, without their secrets", body = Vec<TokenDto>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or another organisation", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn tokens(
    State(s): State<AppState>,
    p: Principal,
    Params(q): Params<TokenListQuery>,
) -> Result<Json<Vec<TokenDto>>, Error> {
    let user = q.user.unwrap_or_else(|| p.user.clone());
    if user != p.user {
        let u = s.org().user(&user).await?.ok_or(Error::NotFound)?;
        authz::manage(&p, &u.organisation)?;
    }
    Ok(Json(s.org().tokens(&user).await?.into_iter().map(token_dto).collect()))
}

/// Create a token (for oneself; administrators: for their organisation's users). The token is
/// shown once.
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "admin",
    request_body = NewToken,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = CreatedToken),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or another organisation", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_token(
    State(s): State<AppState>,
    p: Principal,
    body: Body<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), Error> {
    let req = body.value;
    let u = s.org().user(&req.user).await?.ok_or(Error::NotFound)?;
    if u.id != p.user {
        authz::manage(&p, &u.organisation)?;
    }
    if req.expires_in_days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(Error::invalid("/expires_in_days", "must be between 1 and 3650"));
    }
    let (token, hash, id) = auth::new_token()?;
    let now = s.now_ms();
    let expires_at = req.expires_in_days.map(|d| now + i64::from(d) * 86_400_000);
    s.org()
        .put_token(&TokenRow {
            id: id.clone(),
            hash,
            user_id: u.id.clone(),
            label: req.label.unwrap_or_else(|| "api".into()),
            created_at: now,
            expires_at,
            revoked_at: None,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { id, token, user: u.id, expires_at: expires_at.map(views::time_ms) })))
}

/// Revoke a token (its owner, or an administrator of the owner's organisation).
#[utoipa::path(
    delete, path = "/api/v1/tokens/{id}", tag = "admin",
    params(("id" = String, Path, description = "The token's public id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found or another organisation", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_token(State(s): State<AppState>, p: Principal, Id(id): Id) -> Result<StatusCode, Error> {
    let t = s.org().token(&id).await?.ok_or(Error::NotFound)?;
    if t.user_id != p.user {
        let u = s.org().user(&t.user_id).await?.ok_or(Error::NotFound)?;
        authz::manage(&p, &u.organisation)?;
    }
    s.org().revoke_token(&id, s.now_ms()).await?;
    s.forget_authentications();
    Ok(StatusCode::NO_CONTENT)
}
