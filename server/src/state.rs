//! What every handler shares: the feed, the counters, the settings, the stop signal.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{redis_feed::RedisFeed, store::Store};

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
}

impl AppState {
    /// # Errors
    /// `--data-dir` is set and its store cannot be opened or read, or `--redis` is set and
    /// Redis cannot be reached.
    pub async fn load(config: Config, stop: CancellationToken) -> anyhow::Result<Arc<Self>> {
        let retain = config.retain as usize;
        let feed = match &config.data_dir {
            Some(dir) => Feed::with_store(retain, Store::open(dir, config.retain)?)?,
            None => Feed::new(retain),
        };
        let redis = match &config.redis {
            Some(url) => Some(Arc::new(
                RedisFeed::connect(url, &config.redis_prefix, config.retain, &feed).await?,
            )),
            None => None,
        };
        Ok(Self::with_feed(config, stop, Arc::new(feed), redis))
    }

    /// An in-memory feed (what tests and property checks use).
    pub fn new(config: Config, stop: CancellationToken) -> Arc<Self> {
        let feed = Arc::new(Feed::new(config.retain as usize));
        Self::with_feed(config, stop, feed, None)
    }

    fn with_feed(
        config: Config,
        stop: CancellationToken,
        feed: Arc<Feed>,
        redis: Option<Arc<RedisFeed>>,
    ) -> Arc<Self> {
        let accounting = Arc::new(Accounting::new(config.max_tracked_clients));
        let ticker = Ticker::new(config.rate, config.payload_bytes);
        Arc::new(Self {
            origins: Origins::for_bind(&config.allowed_origins, config.bind),
            feed,
            accounting,
            ticker,
            stop,
            started: std::time::Instant::now(),
            redis,
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

    /// Publishes `data_json` (one compact JSON value) and counts it.
    ///
    /// # Errors
    /// The store failed; nothing was published.
    pub async fn publish(&self, data_json: &str) -> Result<u64, crate::error::ApiError> {
        let seq = match &self.redis {
            Some(redis) => redis
                .publish(data_json, self.feed.head())
                .await
                .map_err(|e| crate::error::ApiError::Upstream(format!("redis: {e}")))?,
            None => self.feed.publish(data_json)?.seq,
        };
        self.accounting
            .published
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(seq)
    }
}
