//! feedlab server: one ordered live feed over short polling, long polling, Server-Sent Events
//! and WebSockets, so the four can be compared on the same events.
//!
//! # Layout
//! - [`feed`]: the ordered, bounded log; every transport reads it with a cursor.
//! - [`feeds`]: named feeds (`?feed=job-42`), each a bounded log of its own.
//! - [`input`]: a game client's inputs, acknowledged and bounded per connection.
//! - [`event`]: each event encoded once per wire format and shared by every connection.
//! - [`transport`]: `/poll`, `/long-poll`, `/sse`, `/ws`, `/ws/echo`, one module each; [`query`]
//!   is what they read of a request.
//! - [`fast_path`]: streaming connections served on the socket itself (see its docs for why);
//!   [`incoming`] lets both it and actix-web's handlers run the same checks.
//! - [`publish`], [`control`], [`ticker`]: where events come from; [`idempotency`] makes a
//!   retried publish count once.
//! - [`accounting`], [`stats`], [`process`]: what it costs, as `/stats` and `/metrics`.
//! - [`origin`], [`error`]: who may connect, and how refusals read.
//! - [`quic`]: WebTransport (`/wt`) over QUIC beside actix-web (`--quic`).
//! - [`app`]: every route in one place; [`run`] serves them until a shutdown future resolves.

pub mod accounting;
pub mod app;
pub mod auth;
pub mod compress;
pub mod config;
pub mod connection;
pub mod control;
pub mod error;
pub mod event;
pub mod fast_path;
pub mod feed;
pub mod feeds;
pub mod idempotency;
pub mod incoming;
pub mod input;
pub mod origin;
pub mod process;
pub mod publish;
pub mod query;
pub mod quic;
pub mod quic_info;
pub mod redis_feed;
pub mod shutdown;
pub mod state;
pub mod static_files;
pub mod stats;
pub mod store;
pub mod testing;
pub mod ticker;
pub mod timings;
pub mod tls;
pub mod transport;

use std::{future::Future, io::Write as _, net::TcpListener, sync::Arc};

use actix_web::{web, App};
use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use transport::Transport;

use crate::state::AppState;

/// Serves on `listener` until `shutdown` resolves, then ends streams (SSE ends, long-polls
/// return 503, WebSockets close with 1001) one by one over `--shutdown-drain`
/// ([`shutdown`]), and waits up to `--shutdown-grace` for the rest.
///
/// # Errors
/// Invalid settings, or a listener actix cannot serve on.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let stop = CancellationToken::new();
    let state = AppState::load(config.clone(), stop.clone()).await?;
    let ticker = tokio::spawn(supervise_ticker(state.clone(), stop.clone()));
    let closer = {
        let (state, stop) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            stop.cancelled().await;
            state.drain.begin();
            state.feed.close();
            state.feeds.close();
        })
    };
    let sweeper = {
        let (state, stop) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            let every = state.feeds.sweep_every();
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(every) => state.feeds.sweep(),
                }
            }
        })
    };
    // The Redis tail outlives the stop: streams are served as before until their turn within
    // --shutdown-drain, events included (stopped with the stop, every stream of a draining
    // instance went quiet for the whole window and its events arrived late, elsewhere).
    let tail_stop = CancellationToken::new();
    let tail = state.redis.clone().map(|redis| {
        let (feed, feeds, stop) = (state.feed.clone(), state.feeds.clone(), tail_stop.clone());
        tokio::spawn(async move { redis.tail(feed, feeds, stop).await })
    });

    // Made once: the QUIC listener serves the same key as the TCP one.
    let tls = tls::server_config(&config)?;
    let quic = quic::Listener::start(listener.local_addr()?, tls.as_ref(), &state, stop.clone())?;
    let tls = tls.map(|tls| tls.tcp);
    let server = if config.fast_path && !config.h2c {
        fast_path_server(listener, &config, &state, tls)?
    } else {
        actix_web_server(listener, &config, &state, tls)?
    };
    let handle = server.handle();
    let mut serving = tokio::spawn(server);

    tokio::select! {
        _ = shutdown => {}
        result = &mut serving => {
            stop.cancel();
            tail_stop.cancel();
            return result.context("server task")?.context("server");
        }
    }
    tracing::info!("shutting down");
    stop.cancel();
    handle.stop(true).await;
    tail_stop.cancel();
    let _ = ticker.await;
    let _ = closer.await;
    let _ = sweeper.await;
    if let Some(tail) = tail {
        let _ = tail.await;
    }
    if let Some(quic) = quic {
        quic.stopped().await;
    }
    serving.await.context("server task")?.context("server")
}

/// Every route, as actix-web serves them (and [`quic::bridge`] over HTTP/3).
pub(crate) fn app(
    state: &Arc<AppState>,
) -> App<
    impl actix_service::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let web_dir = state.config.web_dir.clone();
    App::new()
        .app_data(web::Data::from(state.clone()))
        .route(
            "/results/index.json",
            web::get().to(static_files::results_index),
        )
        .service(static_files::results(&state.config.results_dir))
        .configure(|cfg| app::configure(cfg, web_dir.as_deref()))
        .wrap_fn(app::cors)
        .wrap_fn(app::alt_svc)
        .wrap_fn(app::account)
        .wrap_fn(app::admission)
}

/// The app as actix-http serves it (as `actix_web::HttpServer` builds it), answering with
/// `app_config`'s idea of the connection.
macro_rules! app_service {
    ($state:expr, $app_config:expr) => {{
        use actix_service::{map_config, IntoServiceFactory as _, ServiceFactoryExt as _};
        let app_config: actix_web::dev::AppConfig = $app_config;
        map_config(
            app($state)
                .into_factory()
                .map_err(|err| err.error_response()),
            move |_| app_config.clone(),
        )
    }};
}

/// actix-http for connections of type `$io` on `$addr`, with the settings
/// `actix_web::HttpServer` would give it, what `$customize` adds to its builder `$b`, and
/// WebSocket handshakes taken off actix-http once answered ([`transport::ws::takeover`]). Its
/// `.tcp()` (or TLS, or h2c) is the caller's.
macro_rules! http_service {
    (
        $io:ty, $config:expr, $state:expr, $graceful:expr, $addr:expr, $app_config:expr,
        |$b:ident| $customize:expr
    ) => {{
        let (config, state): (&Config, &Arc<AppState>) = ($config, $state);
        let app_config: actix_web::dev::AppConfig = $app_config;
        let signal = $graceful.clone();
        let make_app = {
            let (state, app_config) = (state.clone(), app_config.clone());
            move || app_service!(&state, app_config.clone())
        };
        let $b = actix_http::HttpService::build()
            .graceful_shutdown_signal(move || {
                let signal = signal.clone();
                async move { signal.notified().await }
            })
            .keep_alive(config.keep_alive)
            .client_request_timeout(config.request_timeout)
            .client_disconnect_timeout(config.close_timeout)
            // actix keeps polling a body until its write buffer holds this much; with one
            // batch of at most --max-write-bytes on top, a client that stopped reading pins at
            // most twice that.
            .h1_write_buffer_size(config.max_write_bytes as usize)
            .local_addr($addr);
        let builder: actix_http::HttpServiceBuilder<$io, _> = $customize;
        builder
            .upgrade(transport::ws::takeover::factory::<$io, _, _>(
                make_app.clone(),
                state.clone(),
            ))
            .finish(make_app())
    }};
}

/// actix-web's server, every connection through actix-http (h2c, `--fast-path false`):
/// what `actix_web::HttpServer` builds, built here because it offers no way to take upgraded
/// connections off actix-http ([`transport::ws::takeover`]).
fn actix_web_server(
    listener: TcpListener,
    config: &Config,
    state: &Arc<AppState>,
    tls: Option<rustls::ServerConfig>,
) -> anyhow::Result<actix_web::dev::Server> {
    use actix_web::rt::net::TcpStream;
    type TlsStream = actix_tls::accept::rustls_0_23::TlsStream<TcpStream>;
    let mut builder = actix_server::Server::build()
        .disable_signals()
        .shutdown_timeout(grace_secs(config))
        .max_concurrent_connections(config.max_connections.saturating_add(1_024));
    if let Some(workers) = config.workers {
        builder = builder.workers(workers.max(1));
    }
    let graceful = builder.graceful_shutdown_signal();
    let addr = listener.local_addr()?;
    let app_config =
        actix_web::dev::AppConfig::__priv_test_new(tls.is_some(), addr.to_string(), addr);
    let on_connect = {
        let (accepted, user_timeout) = (state.clone(), config.send_timeout);
        move |conn: &dyn std::any::Any, data: &mut actix_http::Extensions| {
            accepted
                .accounting
                .connections_accepted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            connection::configure(conn, user_timeout);
            if !accepted.new_connections.admit() {
                data.insert(connection::OverRate);
            }
        }
    };
    let (config, state) = (config.clone(), state.clone());
    let builder = match tls {
        Some(tls) => builder.listen("feedlab", listener, move || {
            let handshake =
                actix_http::TlsAcceptorConfig::default().handshake_timeout(config.request_timeout);
            http_service!(
                TlsStream,
                &config,
                &state,
                graceful,
                addr,
                app_config.clone(),
                |b| {
                    let on_connect = on_connect.clone();
                    b.on_connect_ext(move |io: &TlsStream, data: &mut actix_http::Extensions| {
                        on_connect(io as &dyn std::any::Any, data)
                    })
                }
            )
            .rustls_0_23_with_config(tls.clone(), handshake)
        }),
        // HTTP/1.x, and HTTP/2 with prior knowledge (h2c) when asked for (see `--h2c`).
        None if config.h2c => builder.listen("feedlab", listener, move || {
            http_service!(
                TcpStream,
                &config,
                &state,
                graceful,
                addr,
                app_config.clone(),
                |b| {
                    let on_connect = on_connect.clone();
                    b.on_connect_ext(move |io: &TcpStream, data: &mut actix_http::Extensions| {
                        on_connect(io as &dyn std::any::Any, data)
                    })
                }
            )
            .tcp_auto_h2c()
        }),
        None => builder.listen("feedlab", listener, move || {
            http_service!(
                TcpStream,
                &config,
                &state,
                graceful,
                addr,
                app_config.clone(),
                |b| {
                    let on_connect = on_connect.clone();
                    b.on_connect_ext(move |io: &TcpStream, data: &mut actix_http::Extensions| {
                        on_connect(io as &dyn std::any::Any, data)
                    })
                }
            )
            .tcp()
        }),
    }
    .context("serving on the listener")?;
    Ok(builder.run())
}

/// The same app and settings on actix-server directly, behind the [`fast_path::FrontDoor`]:
/// streaming connections it recognises are served on their sockets, the rest by actix-http.
/// With TLS, behind the [`fast_path::tls::TlsFrontDoor`]: the same after rustls' handshake, and
/// HTTP/2 (by ALPN) to actix-http.
fn fast_path_server(
    listener: TcpListener,
    config: &Config,
    state: &Arc<AppState>,
    tls: Option<rustls::ServerConfig>,
) -> anyhow::Result<actix_web::dev::Server> {
    use actix_web::rt::net::TcpStream;
    let mut builder = actix_server::Server::build()
        .disable_signals()
        .shutdown_timeout(grace_secs(config))
        .max_concurrent_connections(config.max_connections.saturating_add(1_024));
    if let Some(workers) = config.workers {
        builder = builder.workers(workers.max(1));
    }
    let graceful = builder.graceful_shutdown_signal();
    let addr = listener.local_addr()?;
    let (config, state) = (config.clone(), state.clone());
    if let Some(tls) = tls {
        let tls = fast_path::tls::server_config(tls);
        let app_config = actix_web::dev::AppConfig::__priv_test_new(true, addr.to_string(), addr);
        let builder = builder
            .listen("feedlab", listener, move || {
                // As below, for the connections the fast path leaves to actix-http after the
                // handshake (HTTP/2 by ALPN, requests it does not take).
                let http = |over_rate: bool| {
                    http_service!(
                        fast_path::tls::TlsConn,
                        &config,
                        &state,
                        graceful,
                        addr,
                        app_config.clone(),
                        |b| if over_rate {
                            b.on_connect_ext(|_, data| {
                                data.insert(connection::OverRate);
                            })
                        } else {
                            b
                        }
                    )
                };
                fast_path::tls::TlsFrontDoor {
                    http: http(false),
                    over_rate: http(true),
                    state: state.clone(),
                    tls: tls.clone(),
                }
            })
            .context("serving on the listener")?;
        return Ok(builder.run());
    }
    let builder = builder
        .listen("feedlab", listener, move || {
            // actix-http for the connections the fast path leaves to it, and the same for those
            // accepted past `--max-new-connections-per-sec`, marked so every request on them is
            // refused (`app::admission`). The front door has counted and configured them.
            let http = |over_rate: bool| {
                http_service!(
                    TcpStream,
                    &config,
                    &state,
                    graceful,
                    addr,
                    actix_web::dev::AppConfig::default(),
                    // Only there: connection data costs every connection an allocation.
                    |b| if over_rate {
                        b.on_connect_ext(|_, data| {
                            data.insert(connection::OverRate);
                        })
                    } else {
                        b
                    }
                )
                .tcp()
            };
            fast_path::FrontDoor {
                http: http(false),
                over_rate: http(true),
                state: state.clone(),
            }
        })
        .context("serving on the listener")?;
    Ok(builder.run())
}

/// `--shutdown-grace` in whole seconds for actix-server, rounded up (so a drain of all of it is
/// not cut short), at least 1.
fn grace_secs(config: &Config) -> u64 {
    let grace = config.shutdown_grace;
    (grace.as_secs() + u64::from(grace.subsec_nanos() > 0)).max(1)
}

/// What `server` does: parse nothing (the caller did), log, bind, print the URLs, serve until
/// SIGINT/SIGTERM.
///
/// # Errors
/// When the address cannot be bound or the settings are invalid.
pub fn main_with(config: Config) -> anyhow::Result<()> {
    init_tracing(&config.log);
    actix_rt::System::new().block_on(async move {
        let listener = connection::listen_serving(config.bind, config.backlog, config.quic.enabled)
            .with_context(|| format!("binding {}", config.bind))?;
        let addr = listener.local_addr()?;
        print_urls(addr, config.tls());
        run(listener, config, shutdown::signal()).await
    })
}

fn print_urls(addr: std::net::SocketAddr, tls: bool) {
    let (http, ws) = if tls {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    let base = format!("{http}://{addr}");
    let ws = format!("{ws}://{addr}");
    let mut out = std::io::stdout().lock();
    // The first line is read by tests and by loadgen to learn the port.
    let _ = writeln!(out, "{}", feedlab_wire::listening::line(http, addr));
    let _ = writeln!(out, "  page         {base}/");
    let _ = writeln!(out, "  short-poll   {base}/poll?since=0");
    let _ = writeln!(out, "  long-poll    {base}/long-poll?since=0");
    let _ = writeln!(out, "  sse          {base}/sse?since=0");
    let _ = writeln!(out, "  ws           {ws}/ws?since=0");
    let _ = writeln!(out, "  ws echo      {ws}/ws/echo");
    let _ = writeln!(out, "  publish      POST {base}/publish");
    let _ = writeln!(out, "  stats        {base}/stats  {base}/metrics");
    let _ = out.flush();
}

fn init_tracing(filter: &str) {
    // actix-http's dispatcher logs a client's broken connection as an error (it did so for
    // every WebSocket hung up on before they were taken off it, `transport::ws::takeover`):
    // silenced unless the filter names actix_http itself.
    let filter = if filter.contains("actix_http") {
        filter.to_owned()
    } else {
        format!("{filter},actix_http::h1::dispatcher=off")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the ticker until `stop` is cancelled. A panic in it is a bug, but not a silent
/// stop: it is logged and the ticker starts again (after a second, so a bug that panics at
/// once cannot spin).
async fn supervise_ticker(state: std::sync::Arc<AppState>, stop: CancellationToken) {
    loop {
        let task = tokio::spawn(run_ticker(state.clone(), stop.clone()));
        match task.await {
            Err(e) if e.is_panic() => {
                tracing::error!("ticker panicked (a bug; restarting it): {e}");
                state
                    .accounting
                    .ticker_restarts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
            _ => return,
        }
    }
}

/// Publishes at the current rate until `stop` is cancelled.
async fn run_ticker(state: std::sync::Arc<AppState>, stop: CancellationToken) {
    let mut rx = state.ticker.subscribe();
    let mut tick: u64 = 0;
    loop {
        let current = *rx.borrow_and_update();
        if current.rate <= 0.0 {
            tokio::select! {
                _ = stop.cancelled() => return,
                r = rx.changed() => if r.is_err() { return },
            }
            continue;
        }
        let payload = feedlab_wire::payload::Payload::new(
            current.payload,
            current.payload_bytes,
            state.ticker.seed(),
        );
        // Settings are checked where they come in (flags, /control); a rate that still made
        // no interval would run as the slowest allowed one, never panic.
        let period = std::time::Duration::try_from_secs_f64(1.0 / current.rate)
            .unwrap_or(std::time::Duration::MAX)
            .clamp(
                std::time::Duration::from_secs_f64(1.0 / config::MAX_TICKER_RATE),
                std::time::Duration::from_secs_f64(1.0 / config::MIN_TICKER_RATE),
            );
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                r = rx.changed() => { if r.is_err() { return } break; }
                _ = interval.tick() => {
                    tick += 1;
                    let data = format!(
                        "{{\"source\":\"ticker\",\"tick\":{tick},\"sent_us\":{},{}}}",
                        feed::now_us(),
                        payload.fields(tick)
                    );
                    if let Err(e) = state.publish(&data).await {
                        tracing::error!("ticker: {e}");
                    }
                }
            }
        }
    }
}
