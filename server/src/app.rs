//! Every route in one place, and the wrappers every request passes through: the refusal of
//! connections past `--max-new-connections-per-sec`, CORS (the same allow-list as the WebSocket
//! `Origin` check) and byte accounting of response heads and bodies.

use actix_web::{
    body::{BodySize, MessageBody},
    dev::{Service, ServiceRequest, ServiceResponse},
    http::{header, Method},
    web, Error, HttpMessage, HttpRequest, HttpResponse, Route,
};
use std::future::Future;

use crate::{
    accounting::{response_head_len, Meter, Uncompressed},
    connection::OverRate,
    control,
    error::ApiError,
    publish,
    state::AppState,
    static_files, stats,
    transport::{echo, long_poll, poll, sse, ws},
};

pub fn configure(cfg: &mut web::ServiceConfig, web_dir: Option<&std::path::Path>) {
    cfg.service(with_preflight("/poll", web::get().to(poll::handler)))
        .service(with_preflight(
            "/long-poll",
            web::get().to(long_poll::handler),
        ))
        .service(with_preflight("/sse", web::get().to(sse::handler)))
        .service(web::resource("/ws").route(web::get().to(ws::handler)))
        .service(web::resource("/ws/echo").route(web::get().to(echo::handler)))
        .service(with_preflight("/publish", web::post().to(publish::handler)))
        .service(with_preflight(
            "/input",
            web::post().to(crate::transport::input::handler),
        ))
        .service(
            with_preflight("/control", web::post().to(control::post))
                .route(web::get().to(control::get)),
        )
        .route(
            "/healthz",
            web::get().to(|| async { HttpResponse::Ok().body("ok") }),
        )
        .service(with_preflight("/stats", web::get().to(stats::stats)))
        .route("/stats/client/{id}", web::get().to(stats::client))
        .route(
            "/stats/client/{id}/radio",
            web::get().to(stats::client_radio),
        )
        .route("/metrics", web::get().to(stats::metrics))
        .route("/quic", web::get().to(crate::quic_info::handler))
        .route(
            "/results/index.json",
            web::get().to(static_files::results_index),
        );
    match web_dir {
        Some(dir) => {
            cfg.service(actix_files::Files::new("/", dir).index_file("index.html"));
        }
        None => {
            cfg.route("/{path:.*}", web::get().to(static_files::embedded));
        }
    }
}

fn with_preflight(path: &str, route: Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .route(web::method(Method::OPTIONS).to(preflight))
}

async fn preflight(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.origins.check(&req)?;
    Ok(HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "content-type, last-event-id",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
        .finish())
}

/// Answers every request on a connection accepted past `--max-new-connections-per-sec`
/// ([`OverRate`] in its connection data, set where it was accepted) with 503, a `Retry-After`
/// drawn from `--new-connections-retry-after-min`..`-max`, and `Connection: close`; upgrades
/// included, since a handshake is a request. Both servers hand such connections to actix-web, so
/// this one answer serves every way in. `/healthz`, `/stats` and `/metrics` are still answered:
/// monitoring must see an instance in a storm as alive, and see the refusals.
pub fn admission<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> futures_util::future::Either<std::future::Ready<Result<ServiceResponse<B>, Error>>, S::Future>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    use futures_util::future::Either;
    let over = req.conn_data::<OverRate>().is_some()
        && !matches!(req.path(), "/healthz" | "/stats" | "/metrics");
    let state = req.app_data::<web::Data<AppState>>().filter(|_| over);
    let Some(state) = state else {
        return Either::Right(srv.call(req));
    };
    state
        .accounting
        .refused_new_connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let limit = &state.new_connections;
    Either::Left(std::future::ready(Err(ApiError::NewConnectionRate {
        per_sec: limit.per_sec(),
        retry_after: limit.retry_after(),
    }
    .into())))
}

/// Adds `Access-Control-Allow-Origin` for allowed cross-site origins; foreign ones get no CORS
/// headers, so the browser keeps the response from the page.
pub fn cors<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
{
    let allowed = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.origins.check(req.request()).ok().flatten());
    let fut = srv.call(req);
    async move {
        let mut res = fut.await?;
        if let Some(origin) = allowed {
            if let Ok(value) = header::HeaderValue::from_str(&origin) {
                let headers = res.headers_mut();
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
                // Appended: a gzip'd response already varies on Accept-Encoding.
                headers.append(header::VARY, header::HeaderValue::from_static("Origin"));
            }
        }
        Ok(res)
    }
}

/// Adds `Alt-Svc: h3=":PORT"` when the QUIC endpoint serves HTTP/3 on this listener's port
/// (`--quic --quic-http3`, [`crate::quic_info::alt_svc`]), so a browser tries HTTP/3 next time.
pub fn alt_svc<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
{
    let value = req.app_data::<web::Data<AppState>>().and_then(|state| {
        crate::quic_info::alt_svc(&state.config, req.app_config().local_addr().port())
    });
    let fut = srv.call(req);
    async move {
        let mut res = fut.await?;
        if let Some(value) = value.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
            res.headers_mut().insert(header::ALT_SVC, value);
        }
        Ok(res)
    }
}

/// Counts the response head (and a sized body) against the request's transport meter, if its
/// handler set one; a gzip'd body counts at its size before compression too, when its handler
/// left that ([`Uncompressed`]). Streaming bodies count their own chunks.
pub fn account<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody,
{
    let fut = srv.call(req);
    async move {
        let res = fut.await?;
        let meter = res.request().extensions().get::<Meter>().cloned();
        if let Some(meter) = meter {
            let body = match res.response().body().size() {
                BodySize::Sized(n) => n,
                _ => 0,
            };
            let head = response_head_len(res.request(), res.response());
            let raw = res
                .request()
                .extensions()
                .get::<Uncompressed>()
                .map_or(body, |u| u.0);
            meter.delivered_as(0, head + body, head + raw);
        }
        Ok(res)
    }
}
