//! The web inbox: a single-page app for staff and managers, served by `sopflow serve` itself.
//!
//! The app is hand-written JavaScript modules, HTML and CSS under `assets/`, embedded in the
//! binary at compile time: no build step, no CDN, nothing fetched from the internet. It talks
//! only to the public `/api/v1` like every other client, so it has no privileged path into the
//! engine. [`routes`] serves it; [`diagram::svg`] draws a process as SVG for the server to
//! route, since a diagram of an instance needs the server's state and authorisation.
//!
//! Architecture invariant: this crate holds no state, reads no clock, does no I/O beyond the
//! embedded files, and knows nothing about authentication; the API decides what a user sees.

pub mod diagram;

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// The routes of the web app, to merge into the server's router.
///
/// - `/` and the client-side routes (`/login`, `/tasks...`, `/instances...`, `/manager...`,
///   `/processes...`) answer the app's `index.html`, so a reload or a shared link works.
/// - `/assets/{version}/{path}` answers an embedded file. `{version}` is a digest of all the
///   embedded files, written into `index.html`; a new build changes it, so assets can be cached
///   for a year (`immutable`) while `index.html` itself is revalidated on every load.
///
/// Every answer carries an `ETag` and honours `If-None-Match`. The router has no fallback of
/// its own, so unknown paths keep the server's problem+json 404.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut router = Router::new().route("/assets/{version}/{*path}", get(asset));
    for path in SPA_ROUTES {
        router = router.route(path, get(index));
    }
    router
}

/// The paths the app routes on the client: each answers `index.html`.
const SPA_ROUTES: &[&str] = &[
    "/",
    "/login",
    "/tasks",
    "/tasks/{*rest}",
    "/instances",
    "/instances/{*rest}",
    "/manager",
    "/manager/{*rest}",
    "/processes",
    "/processes/{*rest}",
];

#[derive(rust_embed::RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// The placeholder in `index.html` replaced by `/assets/<version>`.
const ASSET_BASE: &str = "{{ASSET_BASE}}";

/// The security headers of the page: scripts, styles and connections from this origin only
/// (the app uses no inline script or style, so none is allowed), no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// A digest of every embedded file: the asset version, and the ETag of `index.html`.
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut names: Vec<_> = Assets::iter().collect();
        names.sort();
        let mut hasher = Sha256::new();
        for name in names {
            if let Some(file) = Assets::get(&name) {
                hasher.update(name.as_bytes());
                hasher.update(file.metadata.sha256_hash());
            }
        }
        hex::encode(hasher.finalize())[..16].to_string()
    })
}

/// `index.html` with the asset base filled in, built once.
fn index_html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| {
        let raw = Assets::get("index.html").map(|f| f.data.into_owned()).unwrap_or_default();
        String::from_utf8_lossy(&raw).replace(ASSET_BASE, &format!("/assets/{}", version()))
    })
}

async fn index(headers: HeaderMap) -> Response {
    let etag = format!("\"{}\"", version());
    if not_modified(&headers, &etag) {
        return revalidated(&etag, "no-cache");
    }
    let mut res = (StatusCode::OK, index_html()).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    insert_etag(h, &etag);
    res
}

async fn asset(Path((asset_version, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    // `index.html` is only served through the page routes, where its asset base is filled in.
    let Some(file) = Assets::get(&path).filter(|_| path != "index.html") else {
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "not found").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..12]));
    // A page of an older build may still ask for its version: answer the current file, but do
    // not let a cache keep it under that version's name for long.
    let cache = if asset_version == version() { "public, max-age=31536000, immutable" } else { "no-cache" };
    if not_modified(&headers, &etag) {
        return revalidated(&etag, cache);
    }
    let mut res = Response::new(Body::from(file.data.into_owned()));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&path)));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    insert_etag(h, &etag);
    res
}

/// The content type by extension. The app ships few kinds of file, so a table beats a MIME
/// database; anything else is opaque bytes, and `nosniff` stops a browser from guessing.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |tag| {
            let tag = tag.trim();
            tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag
        },
    )
}

fn revalidated(etag: &str, cache: &'static str) -> Response {
    let mut res = StatusCode::NOT_MODIFIED.into_response();
    insert_etag(res.headers_mut(), etag);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}

fn insert_etag(headers: &mut HeaderMap, etag: &str) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, v);
    }
}
