// Latency percentiles and the clock they are measured with.
//
// A pane runs for as long as the tab stays open, so keeping every sample and sorting it for each
// refresh would grow without bound. A histogram with log-spaced buckets keeps the memory fixed and
// the relative error under 1 %, from a microsecond (loopback SSE) to minutes (a paused pane
// catching up), which is all a p50/p99 on screen needs.

/// Relative width of a bucket: 1 + 2 × the worst-case error of a reported percentile.
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
/// Smallest distinct value, in microseconds; anything below lands in bucket 0.
const MIN_US = 1;
/// Largest distinct value: 1000 s. Anything above lands in the last bucket.
const MAX_US = 1e9;
const BUCKETS = Math.ceil(Math.log(MAX_US / MIN_US) / LOG_GROWTH) + 1;

export class LatencyHistogram {
  constructor() {
    this.counts = new Uint32Array(BUCKETS);
    this.count = 0;
    this.min = Infinity;
    this.max = -Infinity;
  }

  /** Records one latency in microseconds. Negative values (clock skew) count as zero. */
  record(us) {
    const v = Math.max(0, us);
    this.counts[bucketOf(v)] += 1;
    this.count += 1;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /**
   * The value below which a fraction `q` (0..1) of the samples fall, in microseconds; the exact
   * min and max at the ends, a bucket's geometric middle elsewhere. `null` with no samples.
   */
  quantile(q) {
    if (this.count === 0) return null;
    if (q <= 0) return this.min;
    if (q >= 1) return this.max;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i += 1) {
      seen += this.counts[i];
      if (seen >= rank) {
        const middle = i === 0 ? MIN_US : MIN_US * GROWTH ** (i - 0.5);
        return Math.min(this.max, Math.max(this.min, middle));
      }
    }
    return this.max;
  }

  reset() {
    this.counts.fill(0);
    this.count = 0;
    this.min = Infinity;
    this.max = -Infinity;
  }
}

function bucketOf(us) {
  if (us <= MIN_US) return 0;
  const i = Math.ceil(Math.log(us / MIN_US) / LOG_GROWTH);
  return Math.min(BUCKETS - 1, i);
}

/**
 * Wall-clock time in microseconds since the Unix epoch, with sub-millisecond resolution.
 *
 * The server stamps each event with its wall clock (`ts`, µs). `Date.now()` has only millisecond
 * resolution, which would round every loopback latency to 0 or 1 ms, so this reads the
 * monotonic `performance.now()` plus an offset to the wall clock. `Date.now()` truncates, so each
 * reading of the offset is up to 1 ms low: the highest one seen is the best estimate, and it is
 * only lowered when the wall clock falls behind by more than 2 ms (a clock step, a slewing NTP).
 */
export function wallClockMicros() {
  const now = performance.now();
  const offset = Date.now() - now;
  if (offset > clockOffset || offset < clockOffset - 2) clockOffset = offset;
  return (clockOffset + now) * 1000;
}
let clockOffset = -Infinity;

/** A latency in microseconds to three significant digits: "850 µs", "12.3 ms", "573 ms", "1.52 s". */
export function formatMicros(us) {
  if (us === null || us === undefined || Number.isNaN(us)) return '–';
  const sign = us < 0 ? '−' : '';
  const v = Math.abs(us);
  if (v < 999.5) return `${sign}${Math.round(v)} µs`;
  if (v < 9_995) return `${sign}${(v / 1e3).toFixed(2)} ms`;
  if (v < 99_950) return `${sign}${(v / 1e3).toFixed(1)} ms`;
  if (v < 999_500) return `${sign}${Math.round(v / 1e3)} ms`;
  return `${sign}${(v / 1e6).toFixed(2)} s`;
}

/** A byte count as "512 B", "12.4 kB", "3.10 MB" (decimal units, as network tools use). */
export function formatBytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  if (n < 1000) return `${Math.round(n)} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(2)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/** A ratio such as requests per event to three significant digits: "1.00", "0.270", "0.0123", "0". */
export function formatRatio(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  if (Math.abs(v) >= 100) return String(Math.round(v));
  return v.toPrecision(3);
}

/**
 * What the server counted for one transport, per event delivered: the one computation behind the
 * panes' "bytes/event" and the comparison chart, so the two cannot disagree. `server` holds the
 * counters of `GET /stats/client/ID` (since the last reset); `null` while none have arrived.
 * The ratios are `null` until an event has been delivered.
 */
export function perEvent(server) {
  if (!server) return null;
  const events = server.events_delivered;
  return {
    bytes: server.bytes_written,
    requests: server.requests,
    events,
    bytesPerEvent: events > 0 ? server.bytes_written / events : null,
    requestsPerEvent: events > 0 ? server.requests / events : null,
  };
}
