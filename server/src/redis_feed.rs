//! Scale-out on Redis (`--redis`): several server instances serve one feed.
//!
//! WebSockets and SSE pin a client to one process, which is what makes them hard to scale out.
//! The way out is to keep the feed's state outside the process: every publish goes into one
//! Redis Stream (with a bounded length), seq is assigned there, and every instance tails the
//! stream and fans out to its own clients from its local ring. Seq is the same everywhere, so
//! a client whose instance dies resumes on any other with its last seq, losing nothing.

use std::sync::{
    atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed},
    Arc,
};

use anyhow::Context as _;
use redis::{
    aio::ConnectionManager,
    streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply},
    AsyncCommands, Script,
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{
    feed::{now_us, Feed},
    idempotency::{Answer, Key, KeyPolicy},
};

/// Assigns the next seq and appends the event in one atomic step. The counter never goes below
/// the publishing instance's own head (ARGV[4]): a Redis that restarted without persistence
/// must not hand out seqs the instances have already served.
///
/// With an idempotency key (ARGV[5], the body's fingerprint, non-empty), the key's record
/// (KEYS[3] = `<seq>:<fingerprint>`) is checked first: if it exists, nothing is added and the
/// first publish's seq and fingerprint are returned. Otherwise the record is set in the same
/// step as the XADD, expiring after the window (ARGV[6], ms), and listed in KEYS[4], which
/// holds at most ARGV[7] keys: past that the oldest record is deleted. Returns {seq, ''} for a
/// fresh publish, {seq, fingerprint} for a key seen before.
const PUBLISH: &str = r"
if ARGV[5] ~= '' then
  local prev = redis.call('GET', KEYS[3])
  if prev then
    local sep = string.find(prev, ':', 1, true)
    return {tonumber(string.sub(prev, 1, sep - 1)), string.sub(prev, sep + 1)}
  end
end
local seq = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[4])
if seq <= floor then
  seq = floor + 1
  redis.call('SET', KEYS[1], seq)
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'ts', ARGV[1], 'data', ARGV[2])
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[3], seq .. ':' .. ARGV[5], 'PX', ARGV[6])
  redis.call('RPUSH', KEYS[4], KEYS[3])
  if redis.call('LLEN', KEYS[4]) > tonumber(ARGV[7]) then
    redis.call('DEL', redis.call('LPOP', KEYS[4]))
  end
end
return {seq, ''}
";

#[derive(Debug, Default)]
pub struct RedisStatus {
    pub connected: AtomicBool,
    /// Events published in Redis that this instance has not appended yet.
    pub lag_events: AtomicI64,
    /// Microseconds between an event's publish time and its arrival here (the last one).
    pub last_delay_us: AtomicU64,
    pub errors: AtomicU64,
}

#[derive(Debug, Serialize)]
pub struct RedisView {
    pub url: String,
    pub connected: bool,
    pub lag_events: i64,
    pub last_delay_us: u64,
    pub errors: u64,
}

pub struct RedisFeed {
    url: String,
    publisher: ConnectionManager,
    tailer: ConnectionManager,
    script: Script,
    counter_key: String,
    stream_key: String,
    prefix: String,
    keys: KeyPolicy,
    retain: u64,
    pub status: Arc<RedisStatus>,
}

impl RedisFeed {
    /// Connects (two connections: publishing, and the blocking tail) and loads the stream's last
    /// `retain` events into `feed`.
    ///
    /// # Errors
    /// Redis cannot be reached or answers nonsense.
    pub async fn connect(
        url: &str,
        prefix: &str,
        retain: u64,
        keys: KeyPolicy,
        feed: &Feed,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).with_context(|| format!("redis URL {url:?}"))?;
        let publisher = ConnectionManager::new(client.clone())
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let tailer = ConnectionManager::new(client).await?;
        let this = Self {
            url: url.to_owned(),
            publisher,
            tailer,
            script: Script::new(PUBLISH),
            counter_key: format!("{prefix}:seq"),
            stream_key: format!("{prefix}:events"),
            prefix: prefix.to_owned(),
            keys,
            retain,
            status: Arc::new(RedisStatus::default()),
        };
        let mut conn = this.tailer.clone();
        let recent: StreamRangeReply = conn
            .xrevrange_count(&this.stream_key, "+", "-", retain as usize)
            .await
            .context("reading the stream")?;
        for entry in recent.ids.iter().rev() {
            let (seq, ts, data) = parse(entry)?;
            feed.append(seq, ts, &data);
        }
        this.status.connected.store(true, Relaxed);
        Ok(this)
    }

    /// Publishes through Redis, unless `key` was used within the window (on any instance);
    /// returns the seq Redis assigned, or the first publish's.
    ///
    /// # Errors
    /// Redis is unreachable; the event was not published.
    pub async fn publish(
        &self,
        data_json: &str,
        key: Option<&Key>,
        local_head: u64,
    ) -> Result<Answer, redis::RedisError> {
        let mut conn = self.publisher.clone();
        let (record, body) = match key {
            Some(k) => (format!("{}:idem:{}", self.prefix, k.id_hex()), k.body_hex()),
            None => (format!("{}:idem:-", self.prefix), String::new()),
        };
        let result = self
            .script
            .key(&self.counter_key)
            .key(&self.stream_key)
            .key(record)
            .key(format!("{}:idem-order", self.prefix))
            .arg(now_us())
            .arg(data_json)
            .arg(self.retain)
            .arg(local_head)
            .arg(&body)
            .arg(
                u64::try_from(self.keys.window.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            )
            .arg(self.keys.max_keys)
            .invoke_async::<(u64, String)>(&mut conn)
            .await;
        match result {
            Ok((seq, first)) if first.is_empty() => Ok(Answer::Fresh(seq)),
            Ok((seq, first)) if first == body => Ok(Answer::Replay(seq)),
            Ok((seq, _)) => Ok(Answer::Conflict(seq)),
            Err(e) => {
                self.status.errors.fetch_add(1, Relaxed);
                Err(e)
            }
        }
    }

    /// Tails the stream into `feed` until `stop`; survives Redis restarts (reconnects, resumes
    /// from the last seq it appended).
    pub async fn tail(&self, feed: Arc<Feed>, stop: CancellationToken) {
        let mut conn = self.tailer.clone();
        let options = StreamReadOptions::default().block(1000).count(1000);
        loop {
            let last_id = [format!("{}-0", feed.head())];
            let keys = [&self.stream_key];
            let read = tokio::select! {
                _ = stop.cancelled() => return,
                read = conn.xread_options::<_, _, StreamReadReply>(&keys, &last_id, &options) => read,
            };
            match read {
                Ok(reply) => {
                    self.status.connected.store(true, Relaxed);
                    for key in reply.keys {
                        for entry in key.ids {
                            match parse(&entry) {
                                Ok((seq, ts, data)) => {
                                    feed.append(seq, ts, &data);
                                    self.status
                                        .last_delay_us
                                        .store(now_us().saturating_sub(ts), Relaxed);
                                }
                                Err(e) => {
                                    tracing::error!("redis: skipping a malformed entry: {e:#}")
                                }
                            }
                        }
                    }
                    if let Ok(Some(published)) = conn.get::<_, Option<i64>>(&self.counter_key).await
                    {
                        self.status
                            .lag_events
                            .store(published - feed.head() as i64, Relaxed);
                    }
                }
                Err(e) => {
                    self.status.connected.store(false, Relaxed);
                    self.status.errors.fetch_add(1, Relaxed);
                    tracing::warn!("redis tail: {e}; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
                    }
                }
            }
        }
    }

    pub fn view(&self) -> RedisView {
        RedisView {
            url: self.url.clone(),
            connected: self.status.connected.load(Relaxed),
            lag_events: self.status.lag_events.load(Relaxed),
            last_delay_us: self.status.last_delay_us.load(Relaxed),
            errors: self.status.errors.load(Relaxed),
        }
    }
}

/// (seq, ts, data) of a stream entry `<seq>-0` with fields `ts` and `data`.
fn parse(entry: &StreamId) -> anyhow::Result<(u64, u64, String)> {
    let seq = entry
        .id
        .split('-')
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("entry id {:?}", entry.id))?;
    let ts: u64 = entry.get("ts").context("entry without ts")?;
    let data: String = entry.get("data").context("entry without data")?;
    Ok((seq, ts, data))
}
