//! Scale-out on Redis (`--redis`): several server instances serve one feed, and the named feeds.
//!
//! WebSockets and SSE pin a client to one process, which is what makes them hard to scale out.
//! The way out is to keep the feed's state outside the process: every publish goes into one
//! Redis Stream (with a bounded length), seq is assigned there, and every instance tails the
//! stream and fans out to its own clients from its local ring. Seq is the same everywhere, so
//! a client whose instance dies resumes on any other with its last seq, losing nothing.
//!
//! A named feed (`?feed=job-42`) is the same in small: its own counter, its own stream of
//! `--feed-retain` events and its own terminal event in Redis, all forgotten `--feed-idle` after
//! its last publish. Every publish to a named feed is also added to one stream of all named
//! feeds' events (bounded by `--retain`), which every instance tails with the main one in the
//! same blocking read: each instance mirrors every named feed into its own [`Feeds`] (as many as
//! its `--max-feeds`), so a job's log can be followed, resumed and ended on any instance. An
//! instance that starts, or finds a hole in a feed, reads the feed's own stream to catch up; at
//! start it loads every feed published to within `--feed-idle`.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
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
    feeds::Feeds,
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
///
/// A feed that has ended (KEYS[5] holds its terminal seq) takes nothing more: {seq, '!'}.
/// ARGV[8] = '1' makes this publish the terminal event. A named feed (ARGV[9], its name,
/// non-empty) is also added to the stream of every named feed's events (KEYS[6], ARGV[11]
/// entries) and to the names by last publish (KEYS[7], µs), from which names older than its
/// keys' life (ARGV[10], ms) go; its own keys expire after that life.
const PUBLISH: &str = r"
if ARGV[5] ~= '' then
  local prev = redis.call('GET', KEYS[3])
  if prev then
    local sep = string.find(prev, ':', 1, true)
    return {tonumber(string.sub(prev, 1, sep - 1)), string.sub(prev, sep + 1)}
  end
end
local ended = redis.call('GET', KEYS[5])
if ended then
  return {tonumber(ended), '!'}
end
local seq = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[4])
if seq <= floor then
  seq = floor + 1
  redis.call('SET', KEYS[1], seq)
end
local fields = {'ts', ARGV[1], 'data', ARGV[2]}
if ARGV[8] == '1' then
  table.insert(fields, 'end')
  table.insert(fields, '1')
  redis.call('SET', KEYS[5], seq)
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', unpack(fields))
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[3], seq .. ':' .. ARGV[5], 'PX', ARGV[6])
  redis.call('RPUSH', KEYS[4], KEYS[3])
  if redis.call('LLEN', KEYS[4]) > tonumber(ARGV[7]) then
    redis.call('DEL', redis.call('LPOP', KEYS[4]))
  end
end
if ARGV[9] ~= '' then
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[11], '*', 'feed', ARGV[9], 'seq', seq, unpack(fields))
  redis.call('ZADD', KEYS[7], ARGV[1], ARGV[9])
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', '(' .. (tonumber(ARGV[1]) - tonumber(ARGV[10]) * 1000))
  for _, i in ipairs({1, 2, 4, 5}) do
    redis.call('PEXPIRE', KEYS[i], ARGV[10])
  end
end
return {seq, ''}
";

/// What the named feeds keep in Redis (`--feed-retain`, `--feed-idle`).
#[derive(Debug, Clone, Copy)]
pub struct NamedSettings {
    pub retain: u64,
    pub idle: Duration,
}

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
    stream_key: String,
    prefix: String,
    keys: KeyPolicy,
    retain: u64,
    named: NamedSettings,
    /// Every named feed's events, in publish order.
    all_key: String,
    /// Named feeds by last publish.
    names_key: String,
    /// Where the tail of `all_key` starts: its last entry when this instance connected.
    all_from: String,
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
        named: NamedSettings,
        keys: KeyPolicy,
        feed: &Feed,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).with_context(|| format!("redis URL {url:?}"))?;
        let publisher = ConnectionManager::new(client.clone())
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let tailer = ConnectionManager::new(client).await?;
        let mut conn = tailer.clone();
        let all_key = format!("{prefix}:feeds:events");
        let last: StreamRangeReply = conn
            .xrevrange_count(&all_key, "+", "-", 1)
            .await
            .context("reading the named feeds' stream")?;
        let this = Self {
            url: url.to_owned(),
            publisher,
            tailer,
            script: Script::new(PUBLISH),
            stream_key: format!("{prefix}:events"),
            prefix: prefix.to_owned(),
            keys,
            retain,
            named,
            all_key,
            names_key: format!("{prefix}:feeds"),
            all_from: last.ids.first().map_or("0-0".into(), |e| e.id.clone()),
            status: Arc::new(RedisStatus::default()),
        };
        let recent: StreamRangeReply = conn
            .xrevrange_count(&this.stream_key, "+", "-", retain as usize)
            .await
            .context("reading the stream")?;
        for entry in recent.ids.iter().rev() {
            let (seq, ts, data, end) = parse(entry)?;
            feed.append(seq, ts, &data, end);
        }
        this.status.connected.store(true, Relaxed);
        Ok(this)
    }

    /// Loads every named feed published to within `--feed-idle` (newest first, as many as
    /// `feeds` takes); after [`RedisFeed::connect`], before [`RedisFeed::tail`].
    ///
    /// # Errors
    /// Redis cannot be reached or answers nonsense.
    pub async fn load_named(&self, feeds: &Feeds) -> anyhow::Result<()> {
        let mut conn = self.tailer.clone();
        let since = now_us().saturating_sub(self.named.idle.as_micros() as u64);
        let names: Vec<String> = conn
            .zrevrangebyscore_limit(&self.names_key, "+inf", since, 0, feeds.max() as isize)
            .await
            .context("reading the named feeds")?;
        for name in names {
            if let Ok(feed) = feeds.get(&name) {
                self.catch_up(&mut conn, &name, &feed).await?;
            }
        }
        Ok(())
    }

    /// Appends to `feed` (the named feed `name`) what its stream in Redis holds past its head.
    async fn catch_up(
        &self,
        conn: &mut ConnectionManager,
        name: &str,
        feed: &Feed,
    ) -> anyhow::Result<()> {
        let from = format!("{}-0", feed.head() + 1);
        let entries: StreamRangeReply = conn
            .xrange_count(
                format!("{}:events", self.feed_base(name)),
                from,
                "+",
                self.named.retain as usize,
            )
            .await
            .with_context(|| format!("reading feed {name}"))?;
        for entry in &entries.ids {
            let (seq, ts, data, end) = parse(entry)?;
            feed.append(seq, ts, &data, end);
        }
        Ok(())
    }

    /// Where the named feed `name`'s keys start (braces, which no name has: no name can reach
    /// another's keys).
    fn feed_base(&self, name: &str) -> String {
        format!("{}:feed:{{{name}}}", self.prefix)
    }

    /// Publishes through Redis to the named feed `name` (the main feed without one), as its
    /// terminal event when `end`, unless `key` was used within the window (on any instance);
    /// returns the seq Redis assigned, or the first publish's, or the terminal event's when the
    /// feed has ended.
    ///
    /// # Errors
    /// Redis is unreachable; the event was not published.
    pub async fn publish(
        &self,
        name: Option<&str>,
        data_json: &str,
        key: Option<&Key>,
        end: bool,
        local_head: u64,
    ) -> Result<Answer, redis::RedisError> {
        let mut conn = self.publisher.clone();
        let base = match name {
            Some(name) => self.feed_base(name),
            None => self.prefix.clone(),
        };
        let (record, body) = match key {
            Some(k) => (format!("{base}:idem:{}", k.id_hex()), k.body_hex()),
            None => (format!("{base}:idem:-"), String::new()),
        };
        let (retain, life_ms) = match name {
            Some(_) => (
                self.named.retain,
                u64::try_from(self.named.idle.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            ),
            None => (self.retain, 0),
        };
        let result = self
            .script
            .key(format!("{base}:seq"))
            .key(format!("{base}:events"))
            .key(record)
            .key(format!("{base}:idem-order"))
            .key(format!("{base}:ended"))
            .key(&self.all_key)
            .key(&self.names_key)
            .arg(now_us())
            .arg(data_json)
            .arg(retain)
            .arg(local_head)
            .arg(&body)
            .arg(
                u64::try_from(self.keys.window.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            )
            .arg(self.keys.max_keys)
            .arg(if end { "1" } else { "" })
            .arg(name.unwrap_or(""))
            .arg(life_ms)
            .arg(self.retain)
            .invoke_async::<(u64, String)>(&mut conn)
            .await;
        match result {
            Ok((seq, first)) if first == "!" => Ok(Answer::Ended(seq)),
            Ok((seq, first)) if first.is_empty() => Ok(Answer::Fresh(seq)),
            Ok((seq, first)) if first == body => Ok(Answer::Replay(seq)),
            Ok((seq, _)) => Ok(Answer::Conflict(seq)),
            Err(e) => {
                self.status.errors.fetch_add(1, Relaxed);
                Err(e)
            }
        }
    }

    /// Tails the main stream into `feed` and the named feeds' into `feeds` until `stop`;
    /// survives Redis restarts (reconnects, resumes from the last seq it appended).
    pub async fn tail(&self, feed: Arc<Feed>, feeds: Arc<Feeds>, stop: CancellationToken) {
        let mut conn = self.tailer.clone();
        let options = StreamReadOptions::default().block(1000).count(1000);
        let mut all_from = self.all_from.clone();
        loop {
            let ids = [format!("{}-0", feed.head()), all_from.clone()];
            let keys = [&self.stream_key, &self.all_key];
            let read = tokio::select! {
                _ = stop.cancelled() => return,
                read = conn.xread_options::<_, _, StreamReadReply>(&keys, &ids, &options) => read,
            };
            let reply = match read {
                Ok(reply) => reply,
                Err(e) => {
                    self.status.connected.store(false, Relaxed);
                    self.status.errors.fetch_add(1, Relaxed);
                    tracing::warn!("redis tail: {e}; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                    continue;
                }
            };
            self.status.connected.store(true, Relaxed);
            for key in reply.keys {
                let named = key.key == self.all_key;
                for entry in key.ids {
                    if named {
                        all_from.clone_from(&entry.id);
                        if let Err(e) = self.mirror(&mut conn, &feeds, &entry).await {
                            self.status.errors.fetch_add(1, Relaxed);
                            tracing::error!("redis: a named feed's event: {e:#}");
                        }
                        continue;
                    }
                    match parse(&entry) {
                        Ok((seq, ts, data, end)) => {
                            feed.append(seq, ts, &data, end);
                            self.status
                                .last_delay_us
                                .store(now_us().saturating_sub(ts), Relaxed);
                        }
                        Err(e) => tracing::error!("redis: skipping a malformed entry: {e:#}"),
                    }
                }
            }
            if let Ok(Some(published)) = conn
                .get::<_, Option<i64>>(format!("{}:seq", self.prefix))
                .await
            {
                self.status
                    .lag_events
                    .store(published - feed.head() as i64, Relaxed);
            }
        }
    }

    /// One entry of the named feeds' stream into its feed here: appended when it follows the
    /// feed's head, else the feed catches up from its own stream (a feed new here, or a hole).
    /// A feed this instance cannot hold (`--max-feeds`) is left to the others, counted refused.
    async fn mirror(
        &self,
        conn: &mut ConnectionManager,
        feeds: &Feeds,
        entry: &StreamId,
    ) -> anyhow::Result<()> {
        let name: String = entry.get("feed").context("entry without feed")?;
        let seq: u64 = entry.get("seq").context("entry without seq")?;
        let Ok(feed) = feeds.get(&name) else {
            return Ok(());
        };
        let head = feed.head();
        if seq <= head {
            // Caught up already, from the feed's own stream.
            return Ok(());
        }
        if seq == head + 1 {
            let (ts, data, end) = fields(entry)?;
            feed.append(seq, ts, &data, end);
            return Ok(());
        }
        self.catch_up(conn, &name, &feed).await
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

/// (seq, ts, data, end) of a stream entry `<seq>-0` with fields `ts`, `data` and, on a
/// terminal event, `end`.
fn parse(entry: &StreamId) -> anyhow::Result<(u64, u64, String, bool)> {
    let seq = entry
        .id
        .split('-')
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("entry id {:?}", entry.id))?;
    let (ts, data, end) = fields(entry)?;
    Ok((seq, ts, data, end))
}

/// The fields every entry has: (ts, data, end).
fn fields(entry: &StreamId) -> anyhow::Result<(u64, String, bool)> {
    let ts: u64 = entry.get("ts").context("entry without ts")?;
    let data: String = entry.get("data").context("entry without data")?;
    let end = entry.get::<String>("end").is_some_and(|e| e == "1");
    Ok((ts, data, end))
}
