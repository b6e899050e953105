// The page's pure modules, tested in Node without a browser: percentiles, the handshake hash,
// the stall rule, the charts' sticky axes and the per-event costs;
// and the vendored chart library, which must be the version the lockfile names.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { expectedAccept, sha1ForTests } from '../handshake.js';
import { ALIVE_WITHIN_MS, STALL_AFTER_MS, answersLongPoll, stallOf } from '../stall.js';
import { StickyBound, decadeCeil, decadeFloor, niceCeil } from '../scale.js';
import { LatencyHistogram, formatBytes, formatMicros, formatRatio, perEvent } from '../stats.js';

describe('LatencyHistogram', () => {
  test('percentiles are within 1 % of the exact ones', () => {
    const h = new LatencyHistogram();
    const samples = [];
    // Log-uniform from 1 µs to 1.2 s, like latencies that span orders of magnitude; a fixed
    // linear congruential generator keeps the test reproducible.
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 20_000; i += 1) {
      const v = Math.exp(random() * 14);
      samples.push(v);
      h.record(v);
    }
    samples.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const exact = samples[Math.ceil(q * samples.length) - 1];
      const approx = h.quantile(q);
      assert.ok(Math.abs(approx - exact) / exact < 0.01, `q=${q}: ${approx} vs ${exact}`);
    }
    assert.equal(h.quantile(0), samples[0]);
    assert.equal(h.quantile(1), samples.at(-1));
  });

  test('is empty until a sample arrives, and after reset', () => {
    const h = new LatencyHistogram();
    assert.equal(h.quantile(0.5), null);
    h.record(250);
    assert.equal(h.quantile(0.5), 250);
    h.reset();
    assert.equal(h.quantile(0.99), null);
  });

  test('clock skew (a negative latency) counts as zero, huge values are kept', () => {
    const h = new LatencyHistogram();
    h.record(-40);
    h.record(5e12);
    assert.equal(h.quantile(0), 0);
    assert.equal(h.quantile(1), 5e12);
  });
});

describe('formatting', () => {
  test('latencies keep three significant digits, sub-millisecond included', () => {
    assert.equal(formatMicros(null), '–');
    assert.equal(formatMicros(412.4), '412 µs');
    assert.equal(formatMicros(999.7), '1.00 ms');
    assert.equal(formatMicros(1234), '1.23 ms');
    assert.equal(formatMicros(48_760), '48.8 ms');
    assert.equal(formatMicros(572_640), '573 ms');
    assert.equal(formatMicros(2_500_000), '2.50 s');
    assert.equal(formatMicros(-204), '−204 µs');
  });

  test('bytes use decimal units', () => {
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(12_400), '12.4 kB');
    assert.equal(formatBytes(3_100_000), '3.10 MB');
  });
});

describe('WebSocket accept', () => {
  test('matches the example of RFC 6455 section 1.3', async () => {
    assert.equal(await expectedAccept('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  test('the fallback SHA-1 (pages on plain http to another host) agrees with Node', () => {
    for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
      const bytes = Uint8Array.from({ length }, (_, i) => (i * 31 + 7) & 0xff);
      const ours = Buffer.from(sha1ForTests(bytes)).toString('hex');
      assert.equal(ours, createHash('sha1').update(bytes).digest('hex'), `length ${length}`);
    }
  });
});

describe('vendored uPlot', () => {
  const installed = new URL('../node_modules/uplot/', import.meta.url);
  const vendor = new URL('../vendor/', import.meta.url);

  test('is the copy of the locked npm package (refresh with `npm run vendor`)', { skip: existsSync(installed) ? false : 'node_modules/uplot is not installed (npm ci; test.sh runs it)' }, () => {
    for (const [ours, theirs] of [
      ['uPlot.esm.js', 'dist/uPlot.esm.js'],
      ['uPlot.min.css', 'dist/uPlot.min.css'],
      ['uPlot.LICENSE', 'LICENSE'],
    ]) {
      assert.ok(
        readFileSync(new URL(ours, vendor)).equals(readFileSync(new URL(theirs, installed))),
        `vendor/${ours} differs from node_modules/uplot/${theirs}`,
      );
    }
  });
});

describe('stall rule', () => {
  const sentAt = 1000;
  const poll = { kind: 'short-poll', sentAt, since: 10 };
  const at = (ms) => sentAt + ms;

  test('a request with no headers while the server answers elsewhere is stalled once it waited long enough', () => {
    assert.equal(stallOf(poll, at(STALL_AFTER_MS - 1), { heardAt: at(STALL_AFTER_MS - 100) }), null);
    assert.deepEqual(stallOf(poll, at(STALL_AFTER_MS + 500), { heardAt: at(STALL_AFTER_MS) }), { waitedMs: STALL_AFTER_MS + 500 });
    assert.ok(stallOf({ ...poll, kind: 'sse' }, at(5000), { heardAt: at(4900) }));
  });

  test('claims nothing when no other channel shows the server alive since the request was sent', () => {
    // The server may be down or slow: no sign of life at all, only before the request, or too long ago.
    assert.equal(stallOf(poll, at(10_000), { heardAt: null }), null);
    assert.equal(stallOf(poll, at(10_000), { heardAt: sentAt - 1 }), null);
    assert.equal(stallOf(poll, at(10_000), { heardAt: at(10_000 - ALIVE_WITHIN_MS - 1) }), null);
    assert.equal(stallOf(null, at(10_000), { heardAt: at(9999) }), null);
  });

  test('a long poll counts from when it should have been answered, not from when it was sent', () => {
    const long = { kind: 'long-poll', sentAt, since: 10 };
    const alive = { heardAt: at(29_900), longPollTimeoutMs: 20_000 };
    // A quiet feed: held legitimately until its timeout, then stalled past it.
    assert.equal(stallOf(long, at(20_000 + STALL_AFTER_MS - 1), alive), null);
    assert.ok(stallOf(long, at(20_000 + STALL_AFTER_MS + 1), alive));
    // An event past its cursor was seen elsewhere at 3 s: due then.
    assert.equal(stallOf({ ...long, dueAt: at(3000) }, at(3000 + STALL_AFTER_MS - 1), alive), null);
    assert.ok(stallOf({ ...long, dueAt: at(3000) }, at(3000 + STALL_AFTER_MS + 1), alive));
  });

  test('which events a waiting long poll would be answered with', () => {
    const long = { kind: 'long-poll', sentAt, since: 10 };
    assert.equal(answersLongPoll(long, 10, at(5)), false);
    assert.equal(answersLongPoll(long, 11, at(5)), true);
    assert.equal(answersLongPoll({ ...long, since: null }, 11, sentAt - 1), false);
    assert.equal(answersLongPoll({ ...long, since: null }, 11, at(1)), true);
    assert.equal(answersLongPoll(poll, 11, at(1)), false);
  });
});

describe('axis bounds (scale.js)', () => {
  test('round values: 1, 1.5, 2, 3, 5, 7.5 × 10ⁿ, and whole decades', () => {
    assert.deepEqual([0.9, 1, 1.2, 1.6, 2.9, 3, 4, 6, 8].map(niceCeil), [1, 1, 1.5, 2, 3, 3, 5, 7.5, 10]);
    assert.equal(niceCeil(261), 300);
    assert.equal(niceCeil(0.0123), 0.015);
    assert.equal(decadeCeil(0.3), 1);
    assert.equal(decadeCeil(1000), 1000);
    assert.equal(decadeFloor(0.3), 0.1);
    assert.equal(decadeFloor(1), 1);
  });

  test('grows at once to hold a value, shrinks only after the data fitted less for the whole delay', () => {
    const b = new StickyBound({ side: 'max', round: niceCeil, initial: 1, shrinkAfterMs: 10_000 });
    assert.equal(b.update(null, 0), 1, 'no data: the initial bound');
    assert.equal(b.update(260, 0), 300, 'grows at once');
    assert.equal(b.update(1200, 1000), 1500);
    // The data falls back: the axis holds for the delay, then fits what the calm period needed.
    assert.equal(b.update(140, 2000), 1500);
    assert.equal(b.update(290, 6000), 1500);
    assert.equal(b.update(140, 11_999), 1500);
    assert.equal(b.update(140, 12_000), 300, 'the largest value of the calm period, not the last');
    // A value that comes and goes inside the delay never moves the axis down.
    const flapping = new StickyBound({ side: 'max', round: niceCeil, initial: 1, shrinkAfterMs: 10_000 });
    let changes = 0;
    let last = flapping.update(900, 0);
    for (let t = 500; t <= 9500; t += 500) {
      const v = flapping.update(t % 3000 === 0 ? 900 : 90, t);
      if (v !== last) changes += 1;
      last = v;
    }
    assert.equal(changes, 0);
    assert.equal(last, 1000);
  });

  test('a lower bound moves the other way, and never past its initial value', () => {
    const b = new StickyBound({ side: 'min', round: decadeFloor, initial: 0.1, shrinkAfterMs: 5000 });
    assert.equal(b.update(0.5, 0), 0.1, 'not tighter than the initial bound');
    assert.equal(b.update(0.02, 100), 0.01, 'grows downwards at once');
    assert.equal(b.update(0.4, 200), 0.01);
    assert.equal(b.update(0.4, 5200), 0.1);
    b.reset();
    assert.equal(b.value, 0.1);
  });
});

describe('per-event costs (stats.js)', () => {
  test('bytes and requests per event delivered, unknown before the first event', () => {
    assert.equal(perEvent(null), null);
    const none = perEvent({ bytes_written: 180, requests: 1, events_delivered: 0 });
    assert.equal(none.bytesPerEvent, null);
    assert.equal(none.requestsPerEvent, null);
    const some = perEvent({ bytes_written: 14_100, requests: 27, events_delivered: 100 });
    assert.equal(some.bytesPerEvent, 141);
    assert.equal(some.requestsPerEvent, 0.27);
  });

  test('ratios keep three significant digits', () => {
    assert.equal(formatRatio(0.27), '0.270');
    assert.equal(formatRatio(1.005), '1.00');
    assert.equal(formatRatio(0.0123456), '0.0123');
    assert.equal(formatRatio(0), '0');
    assert.equal(formatRatio(250.4), '250');
  });
});
