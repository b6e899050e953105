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

/// The files a report directory may hold, by their key in `/results/index.json`. A directory
/// is listed when it has one of the first two or, for a `loadgen --scenario …` run (one report
/// per scenario below, the recommendations of them all here), `decision.json`; its time is
/// that of the first of them it has, in this order.
const REPORT_FILES: [(&str, &str); 4] = [
    ("html", "report.html"),
    ("md", "report.md"),
    ("decision", "decision.json"),
    ("json", "report.json"),
];

/// A report directory found under `--results-dir`.
struct Found {
    modified: SystemTime,
    name: String,
    /// Which of [`REPORT_FILES`] it holds.
    has: [bool; 4],
}

pub fn list_reports(dir: &Path) -> Vec<serde_json::Value> {
    let mut found: Vec<Found> = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let has = REPORT_FILES.map(|(_, file)| path.join(file).is_file());
        let Some(listed) = (0..3).find(|&i| has[i]) else {
            continue;
        };
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let modified = path
            .join(REPORT_FILES[listed].1)
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        found.push(Found {
            modified,
            name,
            has,
        });
    }
    found.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| b.name.cmp(&a.name))
    });
    found
        .into_iter()
        .map(|f| {
            let secs = f
                .modified
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut entry = serde_json::json!({
                "name": f.name,
                "modified_unix_s": secs,
            });
            for ((key, file), has) in REPORT_FILES.iter().zip(f.has) {
                entry[*key] = has.then(|| format!("/results/{}/{file}", f.name)).into();
            }
            entry
        })
        .collect()
}
