//! The page (`web/`) and the load generator's reports (`results/`).
//!
//! The page is built into the binary, so `cargo run -p server` works from any directory;
//! `--web-dir` serves a working copy from disk instead, for editing the page without rebuilding.

use std::{path::Path, time::SystemTime};

use actix_web::{http::header, web, HttpRequest, HttpResponse};

use rust_embed::RustEmbed;

use crate::{error::ApiError, state::AppState};

#[derive(RustEmbed)]
#[folder = "../web/"]
#[exclude = "node_modules/*"]
#[exclude = "tests/*"]
#[exclude = "test-results/*"]
#[exclude = "package.json"]
#[exclude = "package-lock.json"]
#[exclude = "screenshot.png"]
struct Page;

/// Serves `path` from the built-in page; `index.html` for `/`.
pub async fn embedded(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let path = req.match_info().query("path");
    let path = if path.is_empty() { "index.html" } else { path };
    let file = Page::get(path).ok_or_else(|| ApiError::NotFound(format!("/{path}")))?;
    Ok(HttpResponse::Ok()
        .content_type(file.metadata.mimetype())
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(file.data.into_owned()))
}

/// `GET /results/<path>`: the files of the reports under `--results-dir`, by actix-files, looked
/// up per request (the directory may appear, or fill, while the server runs). Its path parser
/// refuses `..`, hidden (`.`-prefixed) segments and encoded slashes; a file that is not there is a
/// 404 with the usual JSON reason. Mount it after `/results/index.json`.
pub fn results(dir: &Path) -> actix_files::Files {
    actix_files::Files::new("/results", dir)
        .prefer_utf8(true)
        .default_handler(actix_web::dev::fn_service(
            |req: actix_web::dev::ServiceRequest| async {
                let err = ApiError::NotFound(req.path().to_owned());
                let res = actix_web::ResponseError::error_response(&err);
                Ok(req.into_response(res))
            },
        ))
}

/// `GET /results/index.json`: reports under `--results-dir`, newest first, with the path of each
/// one's `report.json` when it has one: the page reads it for the measured figures, and asking for
/// a file that is not there would log an error in the browser's console.
pub async fn results_index(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(list_reports(&state.config.results_dir))
}

pub fn list_reports(dir: &Path) -> Vec<serde_json::Value> {
    let mut found: Vec<(SystemTime, String, bool, bool, bool, bool)> = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let html = path.join("report.html").is_file();
        let md = path.join("report.md").is_file();
        let json = path.join("report.json").is_file();
        // `loadgen --scenario …` writes one report per scenario below and, here, the
        // recommendations of them all.
        let decision = path.join("decision.json").is_file();
        if !(html || md || decision) {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let modified = path
            .join(if html {
                "report.html"
            } else if md {
                "report.md"
            } else {
                "decision.json"
            })
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        found.push((modified, name, html, md, json, decision));
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    found
        .into_iter()
        .map(|(modified, name, html, md, json, decision)| {
            let secs = modified
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            serde_json::json!({
                "name": name,
                "html": html.then(|| format!("/results/{name}/report.html")),
                "md": md.then(|| format!("/results/{name}/report.md")),
                "json": json.then(|| format!("/results/{name}/report.json")),
                "decision": decision.then(|| format!("/results/{name}/decision.json")),
                "modified_unix_s": secs,
            })
        })
        .collect()
}
