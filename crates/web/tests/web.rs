//! The web crate's tests: the embedded app is served with the right headers and caching, and
//! processes are drawn as SVG with the current step highlighted.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(path: &str, if_none_match: Option<&str>) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::get(path);
    if let Some(tag) = if_none_match {
        req = req.header(header::IF_NONE_MATCH, tag);
    }
    let res = web::routes::<()>().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn header(h: &axum::http::HeaderMap, name: header::HeaderName) -> &str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The `/assets/<version>` prefix the page points at.
fn asset_base(html: &str) -> String {
    let start = html.find("/assets/").expect("index.html links its assets");
    let rest = &html[start + "/assets/".len()..];
    format!("/assets/{}", &rest[..rest.find('/').unwrap()])
}

#[tokio::test]
async fn serves_the_page_at_root_and_at_every_client_side_route() {
    for path in ["/", "/login", "/tasks", "/tasks/01J-t3", "/instances/01J", "/manager", "/manager/breaches"] {
        let (status, h, body) = get(path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&h, header::CONTENT_TYPE), "text/html; charset=utf-8", "{path}");
        assert_eq!(header(&h, header::CACHE_CONTROL), "no-cache", "{path}");
        assert!(header(&h, header::CONTENT_SECURITY_POLICY).contains("script-src 'self'"), "{path}");
        assert!(!header(&h, header::ETAG).is_empty(), "{path}");
        assert!(!body.contains("{{ASSET_BASE}}"), "the asset base is filled in");
        assert!(body.contains(&format!("{}/app.js", asset_base(&body))), "{path}");
    }
}

#[tokio::test]
async fn leaves_unknown_paths_to_the_server() {
    for path in ["/api/v1/tasks", "/nothing", "/assets"] {
        let (status, _, _) = get(path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn answers_not_modified_when_the_page_is_unchanged() {
    let (_, h, _) = get("/", None).await;
    let etag = header(&h, header::ETAG).to_string();
    let (status, h2, body) = get("/tasks", Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(header(&h2, header::ETAG), etag);
    assert!(body.is_empty());
    let (status, _, _) = get("/", Some("\"something-else\"")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn serves_assets_with_their_content_type_and_a_long_cache_under_the_current_version() {
    let (_, _, html) = get("/", None).await;
    let base = asset_base(&html);
    for (file, ty) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let (status, h, body) = get(&format!("{base}/{file}"), None).await;
        assert_eq!(status, StatusCode::OK, "{file}");
        assert_eq!(header(&h, header::CONTENT_TYPE), ty, "{file}");
        assert_eq!(header(&h, header::CACHE_CONTROL), "public, max-age=31536000, immutable", "{file}");
        assert_eq!(header(&h, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert!(!body.is_empty());
        let etag = header(&h, header::ETAG).to_string();
        let (status, _, _) = get(&format!("{base}/{file}"), Some(&format!("W/{etag}"))).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{file}");
    }
    // A module imports its siblings by relative path, so they resolve under the same version.
    let (status, _, _) = get(&format!("{base}/views/inbox.js"), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn serves_an_old_version_revalidated_and_refuses_unknown_files() {
    let (status, h, _) = get("/assets/0000/app.js", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, header::CACHE_CONTROL), "no-cache");
    let (_, _, html) = get("/", None).await;
    let base = asset_base(&html);
    for file in ["nope.js", "index.html", "../Cargo.toml", "%2e%2e/Cargo.toml"] {
        let (status, _, _) = get(&format!("{base}/{file}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{file}");
    }
}

#[test]
fn ships_no_large_or_generated_files() {
    // No build step means no bundles: every asset is a hand-written, reviewable file.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut stack = vec![dir];
    let mut total = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let len = entry.metadata().unwrap().len();
            total += len;
            assert!(len < 64 * 1024, "{} is {len} bytes", path.display());
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert!(!name.contains(".min."), "{name} looks generated");
            if name.ends_with(".js") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(text.starts_with("//"), "{name} starts with a comment saying what it is for");
                assert!(!text.contains("http://") && !text.contains("https://"), "{name} reaches outside");
            }
        }
    }
    assert!(total < 400 * 1024, "the app is {total} bytes");
}

fn standard(id: &str) -> Arc<model::Process> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/standard");
    let pack = model::load_pack(&root, &model::FsFiles, &model::Options::default());
    assert!(!pack.has_errors(), "{:?}", pack.diagnostics);
    pack.processes.iter().find(|p| p.id == id).cloned().expect("the process is in the pack")
}

fn options(lang: &str, current: &[&str]) -> web::diagram::Options {
    web::diagram::Options {
        lang: lang.into(),
        current: current.iter().map(|s| s.to_string()).collect(),
        visited: vec!["entry".into(), "greet".into()],
    }
}

#[test]
fn draws_every_step_of_the_service_order_with_the_current_one_highlighted() {
    let p = standard("service_order");
    let svg = web::diagram::svg(&p, &options("en", &["reception"]));
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    for step in &p.steps {
        assert!(svg.contains(&format!("data-step=\"{}\"", step.id)), "{} is drawn", step.id);
    }
    assert_eq!(svg.matches(" current\"").count(), 1);
    assert!(svg.contains("<g class=\"step task current\" data-step=\"reception\" aria-current=\"step\">"));
    assert!(svg.contains("<g class=\"step task visited\" data-step=\"greet\">"));
    assert!(
        svg.contains("<desc id=\"diagram-desc\">Now at: Reception: verify, fit the covers, listen to the fault</desc>")
    );
    // Loops (rework, the covers check) are drawn going back up.
    assert!(svg.contains("class=\"edge loop\""));
    // Inlined under a strict CSP, an SVG may not carry styles of its own.
    assert!(!svg.contains("<style") && !svg.contains("style="));
    // Every element that opens is closed.
    assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
}

#[test]
fn draws_in_chinese_with_the_role_names_of_the_catalogue() {
    let p = standard("service_order");
    let svg = web::diagram::svg(&p, &options("zh", &["quote"]));
    assert!(svg.contains("<title id=\"diagram-title\">維修工單（預約至回訪）</title>"));
    assert!(svg.contains("服務顧問"));
    assert!(svg.contains("目前位置：出具報價單並承諾完工時間"));
    assert!(svg.contains(">否則<"));
    assert!(!svg.contains(">else<"));
}

#[test]
fn draws_the_same_bytes_for_the_same_process() {
    let p = standard("parts_purchase");
    let a = web::diagram::svg(&p, &options("en", &[]));
    let b = web::diagram::svg(&p, &options("en", &[]));
    assert_eq!(a, b);
    assert!(!a.contains(" current\""));
}

#[test]
fn escapes_text_from_the_definition() {
    // Guards written in the YAML become edge labels when a branch has no label of its own.
    let p = standard("service_order");
    let svg = web::diagram::svg(&p, &options("en", &[]));
    let labels: Vec<&str> =
        svg.split("<text").skip(1).map(|t| &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()]).collect();
    for l in labels {
        assert!(!l.contains('<') && !l.contains('"'), "{l}");
    }
}

#[test]
fn keeps_boxes_of_one_layer_apart() {
    for id in ["service_order", "appointment", "complaint", "parts_purchase", "agency_service"] {
        let p = standard(id);
        let svg = web::diagram::svg(&p, &options("zh", &[]));
        let mut boxes: Vec<(f64, f64, f64, f64)> = Vec::new();
        for part in svg.split("<rect class=\"shape\" ").skip(1) {
            let attr = |name: &str| -> f64 {
                let k = format!("{name}=\"");
                let s = &part[part.find(&k).unwrap() + k.len()..];
                s[..s.find('"').unwrap()].parse().unwrap()
            };
            boxes.push((attr("x"), attr("y"), attr("width"), attr("height")));
        }
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                let overlap = a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3;
                assert!(!overlap, "{id}: {a:?} overlaps {b:?}");
            }
        }
    }
}
