// The WebTransport pane in Chromium: a server with `--tls-self-signed --quic`, whose QUIC
// listener serves a second, short-lived ECDSA certificate that the page trusts by its hash
// (`serverCertificateHashes`); and, without `--quic`, the pane saying why it is not there.
//
// Only what a person sees is asserted (the panes' `data-field` figures), against the server's
// own counts (`/stats`), which the test reads through the page (Node's `fetch` would refuse the
// self-signed certificate).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { allFigures, chromiumMissing, eventually, launchBrowser, startServer, watchErrors } from './helpers.mjs';

const LAPTOP = { width: 1440, height: 900 };
const MAX_VALIDITY_MS = 14 * 24 * 3600 * 1000;

describe('WebTransport pane (server --quic)', { skip: chromiumMissing() }, () => {
  let server;
  let browser;
  let context;
  let page;
  let errors;

  /** `GET path` (JSON) as the page sees it. */
  const fromPage = (path, init) =>
    page.evaluate(async ([p, i]) => {
      const res = await fetch(p, { cache: 'no-store', ...i });
      return res.json();
    }, [path, init]);

  before(async () => {
    server = await startServer({ rate: 5, args: ['--tls-self-signed', '--quic'] });
    // QUIC on: WebTransport runs over it. The page's own certificate is accepted the way a
    // person would click through; the QUIC one only by its hash (see the last test).
    browser = await launchBrowser({ quic: true });
    context = await browser.newContext({ viewport: LAPTOP, ignoreHTTPSErrors: true });
    page = await context.newPage();
    errors = watchErrors(page);
    await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('follows the feed over WebTransport: events in order, no gaps', { timeout: 20_000 }, async () => {
    const seen = [];
    const figures = await eventually(
      async () => {
        const f = (await allFigures(page)).wt;
        const seq = f['last-seq'];
        if (typeof seq === 'number' && seq !== seen.at(-1)) seen.push(seq);
        assert.equal(f.state, 'open', `wt state (${f['state-detail']})`);
        assert.ok(seen.length >= 5, `wt showed seqs ${JSON.stringify(seen)}`);
        return f;
      },
      { timeoutMs: 15_000, what: 'events in the WebTransport pane' },
    );
    assert.ok(seen.every((s, i) => i === 0 || s > seen[i - 1]), `seqs increase: ${seen}`);
    assert.equal(figures.gaps, 0, 'gaps');
    assert.equal(figures.duplicates, 0, 'duplicates');
    assert.match(figures.how, /QUIC/);
  });

  test("the pane's counts equal the server's /stats for wt", { timeout: 20_000 }, async (t) => {
    // A still feed, so nothing is in flight when the two are compared.
    const rate = (r) => fromPage('control', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ rate: r }) });
    await rate(0);
    t.after(() => rate(5));
    const clientId = await page.textContent('#client-id');
    const [f, stats] = await eventually(
      async () => {
        const figures = (await allFigures(page)).wt;
        const all = await fromPage('stats');
        const mine = await fromPage(`stats/client/${clientId}`);
        const wt = all.transports.wt;
        assert.equal(figures.received, wt.events_delivered, 'events: pane against /stats');
        assert.equal(figures.requests, wt.requests, 'sessions: pane against /stats');
        // `open` too: the session is counted under its client once its CONNECT names it.
        assert.deepEqual(mine.transports.wt, wt, 'this page is the only WebTransport client');
        return [figures, wt];
      },
      { timeoutMs: 10_000, what: "the pane's counts equal /stats" },
    );
    assert.ok(f.received >= 5, `events received: ${f.received}`);
    assert.equal(stats.requests, 1, 'one session');
    assert.equal(stats.open, 1, 'open now');
    assert.ok(stats.bytes_written > f.received, 'bytes counted');
    assert.equal(stats.requests_by_version['http/3'], 1, 'the CONNECT came over HTTP/3');
  });

  test('"drop connection" reconnects with since and resumes with zero gaps', { timeout: 30_000 }, async () => {
    const before = (await allFigures(page)).wt;
    await page.click('.pane[data-transport="wt"] [data-action="drop"]');
    await eventually(async () => (await allFigures(page)).wt.state === 'retrying', {
      timeoutMs: 2000,
      what: 'wt retrying after the drop',
    });
    const after = await eventually(
      async () => {
        const f = (await allFigures(page)).wt;
        assert.equal(f.state, 'open');
        assert.ok(f['last-seq'] >= before['last-seq'] + 5, `last seq ${f['last-seq']} vs ${before['last-seq']}`);
        return f;
      },
      { timeoutMs: 15_000, what: 'wt open again and caught up' },
    );
    assert.equal(after.gaps, 0, 'gaps');
    assert.equal(after.duplicates, 0, 'duplicates');
    assert.equal(after.received - before.received, after['last-seq'] - before['last-seq'], 'every seq once');
    assert.ok(after.reconnects > before.reconnects, 'counted the reconnection');
  });

  test('talks back on a stream of its own and sees its message come back', { timeout: 15_000 }, async () => {
    await page.click('.pane[data-transport="wt"] [data-action="send"]');
    const f = await eventually(
      async () => {
        const wt = (await allFigures(page)).wt;
        assert.match(String(wt['talk-round-trip']), /^\d+(\.\d+)? (µs|ms|s)$/, `round trip: ${wt['talk-round-trip']}`);
        return wt;
      },
      { timeoutMs: 10_000, what: 'the WebTransport message back from the feed' },
    );
    assert.equal(f['talk-requests'], 0, 'no HTTP request');
    assert.match(f['talk-how'], /stream/);
    assert.match(f['last-message'], /talking back from WebTransport/);
  });

  test('the QUIC certificate is valid for at most 14 days and trusted by its hash alone', { timeout: 20_000 }, async () => {
    const quic = await fromPage('quic');
    assert.equal(quic.serves, 'webtransport');
    assert.equal(quic.why, null);
    const validity = Date.parse(quic.certificate.not_after) - Date.parse(quic.certificate.not_before);
    assert.ok(validity > 0 && validity <= MAX_VALIDITY_MS, `validity ${validity} ms`);
    assert.deepEqual(quic.certificates, [quic.certificate], 'not renewed yet: the one served is the one listed');
    // A page of its own, so the refusal's console message is not the main page's.
    const probe = await context.newPage();
    await probe.goto(server.url + 'healthz');
    const url = `https://127.0.0.1:${quic.port}${quic.path}`;
    const outcome = await probe.evaluate(async ([u, hash]) => {
      const value = Uint8Array.from(atob(hash), (c) => c.charCodeAt(0));
      const open = async (options) => {
        const t = new WebTransport(u, options);
        try {
          await t.ready;
          t.close();
          return 'open';
        } catch (err) {
          return `refused: ${err.message}`;
        }
      };
      return {
        withHash: await open({ serverCertificateHashes: [{ algorithm: 'sha-256', value }] }),
        without: await open({}),
      };
    }, [url, quic.certificate.sha256]);
    await probe.close();
    assert.equal(outcome.withHash, 'open', 'with the hash from GET /quic');
    assert.match(outcome.without, /^refused/, 'without it, the self-signed certificate is refused');
  });

  test('no console errors or uncaught exceptions', () => {
    assert.deepEqual(errors, []);
  });
});

describe('WebTransport pane across a renewal of the QUIC certificate', { skip: chromiumMissing() }, () => {
  test('a reconnection after the renewal trusts the new certificate', { timeout: 60_000 }, async () => {
    // Valid for 20 s, renewed with 8 s left (about 10 s in, the next 20 s in, after the first
    // expired): the page loads on the first certificate.
    const server = await startServer({ rate: 5, args: ['--tls-self-signed', '--quic', '--quic-cert-validity', '20s', '--quic-cert-renew-before', '8s'] });
    const browser = await launchBrowser({ quic: true });
    try {
      const context = await browser.newContext({ viewport: LAPTOP, ignoreHTTPSErrors: true });
      const page = await context.newPage();
      const errors = watchErrors(page);
      const quicNow = () => page.evaluate(async () => (await fetch('quic', { cache: 'no-store' })).json());
      await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
      const first = (await quicNow()).certificate.sha256;
      await eventually(async () => (await allFigures(page)).wt.state === 'open', {
        timeoutMs: 10_000,
        what: 'wt open on the first certificate',
      });
      const renewed = await eventually(
        async () => {
          const quic = await quicNow();
          assert.notEqual(quic.certificate.sha256, first, 'renewed');
          return quic;
        },
        { timeoutMs: 30_000, what: 'the certificate renewed' },
      );
      assert.deepEqual(renewed.certificates.map((c) => c.sha256), [renewed.certificate.sha256, first]);
      // The session opened on the first certificate goes on; a new one must trust the second.
      const before = (await allFigures(page)).wt;
      await page.click('.pane[data-transport="wt"] [data-action="drop"]');
      const after = await eventually(
        async () => {
          const f = (await allFigures(page)).wt;
          assert.equal(f.state, 'open', `wt state (${f['state-detail']})`);
          assert.ok(f.reconnects > before.reconnects, 'reconnected');
          assert.ok(f['last-seq'] >= before['last-seq'] + 3, `last seq ${f['last-seq']} vs ${before['last-seq']}`);
          return f;
        },
        { timeoutMs: 20_000, what: 'wt open again on the renewed certificate' },
      );
      assert.equal(after.gaps, 0, 'gaps');
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.stop();
    }
  });
});

describe('WebTransport pane (server without --quic)', { skip: chromiumMissing() }, () => {
  test('is a strip that says why, and the page has no errors', { timeout: 20_000 }, async () => {
    const server = await startServer({ rate: 5 });
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: LAPTOP });
      const errors = watchErrors(page);
      await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
      const wt = await eventually(
        async () => {
          const all = await allFigures(page);
          assert.equal(all.sse.state, 'open', 'the other panes follow the feed');
          assert.equal(all.wt.state, 'unavailable');
          return all.wt;
        },
        { timeoutMs: 10_000, what: 'the WebTransport pane unavailable' },
      );
      assert.match(wt['state-detail'], /--quic/);
      const visible = await page.isVisible('.pane[data-transport="wt"] [data-field="received"]');
      assert.equal(visible, false, 'no figures for a transport that is not there');
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.stop();
    }
  });
});
