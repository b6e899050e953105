//! What every handler shares: the feed, the counters, the settings, the stop signal.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{
    idempotency::{Answer, Key},
    redis_feed::RedisFeed,
    store::Store,
};

use crate::{
    accounting::{Accounting, Limits},
    config::Config,
    feed::Feed,
    origin::Origins,
    ticker::Ticker,
};

pub struct AppState {
    pub config: Config,
    pub feed: Arc<Feed>,
    pub accounting: Arc<Accounting>,
    pub origins: Origins,
    pub ticker: Ticker,
    /// Cancelled on shutdown: SSE streams end, held long-polls return, WebSockets close 1001.
    pub stop: CancellationToken,
    pub started: std::time::Instant,
    /// `--redis`: the shared feed this instance publishes to and tails.
    pub redis: Option<Arc<RedisFeed>>,
    /// `--shutdown-drain`: when each stream is ended once the server stops.
    pub drain: crate::shutdown::Drain,
    /// `--max-new-connections-per-sec`.
    pub new_connections: crate::connection::NewConnections,
    /// Named feeds (`?feed=NAME`), `--max-feeds` of them.
    pub feeds: Arc<crate::feeds::Feeds>,
    /// Inputs taken (`--max-input-rate`, `--max-input-bytes`).
    pub inputs: crate::input::Inputs,
    /// The QUIC listener's port and short-lived certificate, once it started (`--quic`):
    /// `GET /quic` tells pages where WebTransport is and the certificate's hash.
    pub quic: std::sync::OnceLock<QuicListening>,
}

impl AppState {
    /// # Errors
    /// `--data-dir` is set and its store cannot be opened or read, or `--redis` is set and
    /// Redis cannot be reached.
    pub async fn load(config: Config, stop: CancellationToken) -> anyhow::Result<Arc<Self>> {
        let retain = config.retain as usize;
        let feed = match &config.data_dir {
            Some(dir) => Feed::with_store(
                retain,
                config.key_policy(),
                Store::open(dir, config.retain)?,
            )?,
            None => Feed::with_keys(retain, config.key_policy()),
        };
        let redis = match &config.redis {
            Some(url) => Some(Arc::new(
                RedisFeed::connect(
                    url,
                    &config.redis_prefix,
                    config.retain,
                    crate::redis_feed::NamedSettings {
                        retain: config.feed_retain as u64,
                        idle: config.feed_idle,
                    },
                    config.key_policy(),
                    &feed,
                )
                .await?,
            )),
            None => None,
        };
        let state = Self::with_feed(config, stop, Arc::new(feed), redis);
        if let Some(redis) = &state.redis {
            redis.load_named(&state.feeds).await?;
        }
        Ok(state)
    }

    /// An in-memory feed (what tests and property checks use).
    pub fn new(config: Config, stop: CancellationToken) -> Arc<Self> {
        let feed = Arc::new(Feed::with_keys(config.retain as usize, config.key_policy()));
        Self::with_feed(config, stop, feed, None)
    }

    fn with_feed(
        config: Config,
        stop: CancellationToken,
        feed: Arc<Feed>,
        redis: Option<Arc<RedisFeed>>,
    ) -> Arc<Self> {
        let accounting = Arc::new(
            Accounting::new(config.max_tracked_clients).with_timings(config.client_timings),
        );
        let ticker = Ticker::new(
            config.rate,
            config.payload_bytes,
            config.payload,
            config.seed,
        );
        Arc::new(Self {
            origins: Origins::for_bind(&config.allowed_origins, config.bind),
            feed,
            accounting,
            ticker,
            stop,
            started: std::time::Instant::now(),
            redis,
            drain: crate::shutdown::Drain::new(config.shutdown_drain()),
            new_connections: crate::connection::NewConnections::new(&config),
            feeds: Arc::new(crate::feeds::Feeds::new(
                config.max_feeds,
                config.feed_retain,
                config.feed_idle,
                config.key_policy(),
            )),
            inputs: crate::input::Inputs::default(),
            quic: std::sync::OnceLock::new(),
            config,
        })
    }

    pub fn limits(&self) -> Limits {
        Limits {
            total: self.config.max_connections,
            per_transport: self.config.max_transport_connections,
            per_ip: self.config.max_connections_per_ip,
        }
    }

    /// Marks a streaming connection from `req` open, or refuses it with the limit it hit.
    pub fn open(
        &self,
        meter: &crate::accounting::Meter,
        req: &impl crate::incoming::Incoming,
    ) -> Result<crate::accounting::OpenGuard, crate::error::ApiError> {
        meter
            .open(&self.limits(), req.peer_ip())
            .map_err(crate::error::ApiError::TooManyConnections)
    }

    /// The feed a request names (`?feed=NAME`, made on first use), or the main feed.
    ///
    /// # Errors
    /// 429 past `--max-feeds`.
    pub fn feed_of(&self, name: Option<&str>) -> Result<Arc<Feed>, crate::error::ApiError> {
        match name {
            None => Ok(self.feed.clone()),
            Some(name) => self.feeds.get(name),
        }
    }

    /// Publishes `data_json` to the named feed `name` (the main feed without one), once per
    /// `key`, and when `end`, as the feed's terminal event.
    ///
    /// # Errors
    /// As [`AppState::publish_once`]; 409 after the feed's terminal event.
    pub async fn publish_to(
        &self,
        name: Option<&str>,
        data_json: &str,
        key: Option<&Key>,
        end: bool,
    ) -> Result<Published, crate::error::ApiError> {
        if name.is_none() && !end {
            return self.publish_once(data_json, key).await;
        }
        if name.is_none() {
            return Err(crate::error::ApiError::BadRequest(
                "`end` ends a named feed (`feed=NAME`); the main feed never ends".into(),
            ));
        }
        let feed = self.feed_of(name)?;
        let answer = match &self.redis {
            Some(redis) => redis
                .publish(name, data_json, key, end, feed.head())
                .await
                .map_err(|e| crate::error::ApiError::Upstream(format!("redis: {e}")))?,
            None => feed.publish_ending(data_json, key, end)?,
        };
        self.answered(answer)
    }

    /// Publishes `data_json` (one compact JSON value) and counts it.
    ///
    /// # Errors
    /// The store failed; nothing was published.
    pub async fn publish(&self, data_json: &str) -> Result<u64, crate::error::ApiError> {
        Ok(self.publish_once(data_json, None).await?.seq)
    }

    /// Publishes `data_json` once per idempotency `key` (see [`crate::idempotency`]): a retry
    /// within the window answers with the first seq and adds nothing.
    ///
    /// # Errors
    /// The store failed (nothing was published), or the key was first used for another body.
    pub async fn publish_once(
        &self,
        data_json: &str,
        key: Option<&Key>,
    ) -> Result<Published, crate::error::ApiError> {
        let answer = match &self.redis {
            Some(redis) => redis
                .publish(None, data_json, key, false, self.feed.head())
                .await
                .map_err(|e| crate::error::ApiError::Upstream(format!("redis: {e}")))?,
            None => self.feed.publish_once(data_json, key)?,
        };
        self.answered(answer)
    }

    /// A publish's answer, counted.
    fn answered(&self, answer: Answer) -> Result<Published, crate::error::ApiError> {
        match answer {
            Answer::Fresh(seq) => {
                self.accounting
                    .published
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(Published {
                    seq,
                    replayed: false,
                })
            }
            Answer::Replay(seq) => Ok(Published {
                seq,
                replayed: true,
            }),
            Answer::Conflict(seq) => Err(crate::error::ApiError::KeyReused { seq }),
            Answer::Ended(seq) => Err(crate::error::ApiError::PublishAfterEnd { seq }),
        }
    }
}

/// The answer to a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub seq: u64,
    /// The idempotency key had been used for this same publish: nothing was added.
    pub replayed: bool,
}

/// The QUIC listener, once it is up (`--quic`), as `GET /quic` tells pages.
#[derive(Debug)]
pub struct QuicListening {
    /// Its UDP port: `--bind`'s, as bound.
    pub port: u16,
    /// The certificates it made (`--tls-self-signed`), newest (the one it serves) first, then
    /// those it served before and that have not expired: a page that trusts by hash may name
    /// them all. Empty when it serves `--tls-cert`'s.
    pub certs: parking_lot::RwLock<Vec<crate::tls::QuicCert>>,
}

impl QuicListening {
    /// The certificate served now, if the server made it.
    pub fn current(&self) -> Option<crate::tls::QuicCert> {
        self.certs.read().first().cloned()
    }

    /// The certificates a page may trust by hash at `now`: the one served, and the ones before
    /// it that have not expired, newest first.
    pub fn accepted(&self, now: std::time::SystemTime) -> Vec<crate::tls::QuicCert> {
        self.certs
            .read()
            .iter()
            .filter(|c| c.not_after > now)
            .cloned()
            .collect()
    }

    /// `cert` is served from now on; the expired ones are forgotten.
    pub fn renewed(&self, cert: crate::tls::QuicCert) {
        let now = std::time::SystemTime::now();
        let mut certs = self.certs.write();
        certs.retain(|c| c.not_after > now);
        certs.insert(0, cert);
    }
}
