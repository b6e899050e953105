// The live page end to end: a real server, headless Chromium, and only what a person would see
// (the panes' `data-field` figures), never the page's internals.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  OUTPUT_DIR,
  TRANSPORTS,
  allFigures,
  eventually,
  launchBrowser,
  startServer,
  watchErrors,
} from './helpers.mjs';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const LAPTOP = { width: 1440, height: 900 };
const PHONE = { width: 390, height: 844 };
const REPORT = '2025-01-02T03-04-05Z';

describe('live page', () => {
  let server;
  let browser;
  let page;
  let errors;
  let loadedAt;

  before(async () => {
    mkdirSync(OUTPUT_DIR, { recursive: true });
    server = await startServer({ reports: [REPORT] });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: LAPTOP });
    errors = watchErrors(page);
    loadedAt = Date.now();
    await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('all four panes receive events with increasing seq within 5 s', { timeout: 10_000 }, async () => {
    const seen = Object.fromEntries(TRANSPORTS.map((t) => [t, []]));
    await eventually(
      async () => {
        const figures = await allFigures(page);
        for (const t of TRANSPORTS) {
          const seq = figures[t]['last-seq'];
          if (typeof seq === 'number' && seq !== seen[t].at(-1)) seen[t].push(seq);
        }
        for (const t of TRANSPORTS) {
          assert.ok(seen[t].length >= 2, `${t} showed seqs ${JSON.stringify(seen[t])}`);
          assert.equal(figures[t].state, 'open', `${t} state`);
        }
        return true;
      },
      { timeoutMs: Math.max(0, 5000 - (Date.now() - loadedAt)), what: 'events in every pane' },
    );
    const figures = await allFigures(page);
    for (const t of TRANSPORTS) {
      const seqs = seen[t];
      assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `${t} seqs increase: ${seqs}`);
      assert.equal(figures[t].gaps, 0, `${t} gaps`);
      assert.equal(figures[t].duplicates, 0, `${t} duplicates`);
    }
  });

  test('requests, empty responses and bytes come from the server for this page', { timeout: 10_000 }, async () => {
    const figures = await eventually(
      async () => {
        const f = await allFigures(page);
        for (const t of TRANSPORTS) {
          assert.ok(f[t].requests >= 1, `${t} requests: ${f[t].requests}`);
          assert.equal(typeof f[t].empty, 'number', `${t} empty responses: ${f[t].empty}`);
          assert.match(String(f[t].bytes), /^\d+(\.\d+)? (B|kB|MB)$/, `${t} bytes`);
          assert.equal(f[t].open, t === 'short-poll' ? 0 : 1, `${t} open`);
        }
        // A request per poll versus one long response (SSE) or one upgrade (WS).
        assert.ok(f['short-poll'].requests > f.sse.requests, 'more short polls than SSE requests');
        return f;
      },
      { timeoutMs: 5000, what: 'server figures in every pane' },
    );
    const clientId = await page.textContent('#client-id');
    const stats = await (await fetch(`${server.url}stats/client/${clientId}`)).json();
    assert.equal(figures.sse.requests, 1, 'SSE: one request for the stream');
    assert.equal(figures.sse.requests, stats.transports.sse.requests);
    assert.equal(figures.ws.requests, 1, 'WS: one handshake');
    assert.equal(figures.ws.requests, stats.transports.ws.requests);
  });

  for (const via of ['ws', 'http']) {
    test(`a message published from the page (${via}) appears in all four panes`, { timeout: 10_000 }, async () => {
      const text = `hello ${via} ${Math.random().toString(36).slice(2, 8)}`;
      await page.fill('#publish-text', text);
      await page.click(`#publish button[data-via="${via}"]`);
      await eventually(
        async () => {
          const figures = await allFigures(page);
          for (const t of TRANSPORTS) assert.equal(figures[t]['last-message'], text, `${t} last message`);
          return true;
        },
        { timeoutMs: 5000, what: `"${text}" in every pane` },
      );
      const result = await page.textContent(`#publish-result [data-via="${via}"]`);
      assert.match(result, /seq \d+, acknowledged in/);
      assert.doesNotMatch(result, /…/, `every pane reported its arrival: ${result}`);
    });
  }

  test('"drop connection" reconnects and resumes from the last seq with zero gaps', { timeout: 40_000 }, async () => {
    for (const t of TRANSPORTS) {
      const pane = `.pane[data-transport="${t}"]`;
      const before = (await allFigures(page))[t];
      await page.click(`${pane} [data-action="drop"]`);
      await eventually(async () => (await allFigures(page))[t].state === 'retrying', {
        timeoutMs: 2000,
        what: `${t} retrying after the drop`,
      });
      // Reopened, and caught up past what was published while it was away.
      const after = await eventually(
        async () => {
          const f = (await allFigures(page))[t];
          assert.equal(f.state, 'open');
          assert.ok(f['last-seq'] >= before['last-seq'] + 5, `last seq ${f['last-seq']} vs ${before['last-seq']}`);
          return f;
        },
        { timeoutMs: 8000, what: `${t} open again and caught up` },
      );
      assert.equal(after.gaps, 0, `${t} gaps`);
      assert.equal(after.duplicates, 0, `${t} duplicates`);
      assert.equal(
        after.received - before.received,
        after['last-seq'] - before['last-seq'],
        `${t}: every seq between the drop and now arrived exactly once`,
      );
      assert.ok(after.reconnects > before.reconnects, `${t} counted the reconnection`);
    }
  });

  test('pause, then resume, catches up with zero gaps', { timeout: 20_000 }, async () => {
    const before = await allFigures(page);
    for (const t of TRANSPORTS) await page.click(`.pane[data-transport="${t}"] [data-action="pause"]`);
    await eventually(
      async () => {
        const f = await allFigures(page);
        return TRANSPORTS.every((t) => f[t].state === 'paused');
      },
      { timeoutMs: 2000, what: 'all panes paused' },
    );
    await page.waitForTimeout(1500);
    const paused = await allFigures(page);
    for (const t of TRANSPORTS) await page.click(`.pane[data-transport="${t}"] [data-action="pause"]`);
    await eventually(
      async () => {
        const f = await allFigures(page);
        for (const t of TRANSPORTS) {
          assert.equal(f[t].state, 'open', `${t} state`);
          assert.ok(f[t]['last-seq'] >= paused[t]['last-seq'] + 8, `${t} caught up`);
        }
        return true;
      },
      { timeoutMs: 6000, what: 'all panes open and caught up' },
    );
    const after = await allFigures(page);
    for (const t of TRANSPORTS) {
      assert.equal(after[t].gaps, 0, `${t} gaps`);
      assert.equal(after[t].duplicates, 0, `${t} duplicates`);
      assert.equal(after[t].received - before[t].received, after[t]['last-seq'] - before[t]['last-seq'], t);
    }
  });

  test('the WebSocket handshake panel shows a correct Sec-WebSocket-Accept for its key', { timeout: 10_000 }, async () => {
    const panel = '[data-panel="ws-handshake"]';
    await page.waitForFunction(
      (sel) => document.querySelector(`${sel} [data-field="ws-accept-check"]`)?.textContent.includes('✓'),
      panel,
      { timeout: 5000 },
    );
    const key = await page.textContent(`${panel} [data-field="ws-key"]`);
    const accept = await page.textContent(`${panel} [data-field="ws-accept"]`);
    assert.equal(Buffer.from(key, 'base64').length, 16, `key ${key} is 16 random bytes`);
    assert.equal(accept, createHash('sha1').update(key + WS_GUID).digest('base64'));
    assert.equal(await page.textContent(`${panel} [data-field="ws-accept-computed"]`), accept);
  });

  test('the feed controls change the server ticker', { timeout: 15_000 }, async () => {
    const control = async () => (await fetch(`${server.url}control`)).json();
    const set = async (selector, value) => {
      await page.fill(selector, String(value));
      await page.locator(selector).blur(); // `change` fires on blur
    };
    assert.equal((await control()).rate, 5);
    assert.equal(await page.isDisabled('#rate'), false);
    await set('#rate', 8);
    await eventually(async () => (await control()).rate === 8, { what: 'rate 8 on the server' });
    await set('#payload', 300);
    await eventually(async () => (await control()).payload_bytes === 300, { what: 'payload 300 on the server' });
    await set('#payload', 0);
    await set('#rate', 5);
    await eventually(async () => {
      const c = await control();
      return c.rate === 5 && c.payload_bytes === 0;
    }, { what: 'rate 5, payload 0 on the server' });
  });

  test('links the latest report under results/', async () => {
    const link = page.locator('#report-link');
    assert.equal(await link.isVisible(), true);
    assert.match(await link.textContent(), new RegExp(REPORT));
    const res = await fetch(new URL(await link.getAttribute('href'), server.url));
    assert.equal(res.status, 200);
  });

  test('screenshots: one screen on a laptop, one column on a phone', { timeout: 30_000 }, async () => {
    // Let the timeline fill its 20 s window, drops and pauses included.
    await page.waitForTimeout(Math.max(500, 21_000 - (Date.now() - loadedAt)));
    const laptop = path.join(OUTPUT_DIR, 'feedlab.png');
    await page.screenshot({ path: laptop });
    await page.screenshot({ path: path.join(OUTPUT_DIR, 'feedlab-full.png'), fullPage: true });
    // The README's picture is made by web/scripts/screenshot.mjs from the live page without this
    // test's fixtures; these are the test's own, under test-results/.

    const panesFit = await page.evaluate(() => {
      const bottom = Math.max(...[...document.querySelectorAll('.pane')].map((p) => p.getBoundingClientRect().bottom));
      return bottom <= window.innerHeight;
    });
    assert.ok(panesFit, 'the four panes fit in one laptop screen');

    await page.setViewportSize(PHONE);
    await page.waitForTimeout(500);
    await page.screenshot({ path: path.join(OUTPUT_DIR, 'feedlab-phone.png'), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no sideways scrolling on a phone (overflow ${overflow}px)`);
    await page.setViewportSize(LAPTOP);
  });

  test('"reset figures" starts the counts over, without losing the feed', { timeout: 10_000 }, async () => {
    await page.click('#reset-figures');
    const reset = await allFigures(page);
    for (const t of TRANSPORTS) {
      assert.ok(reset[t].received <= 1, `${t} received after reset: ${reset[t].received}`);
      assert.ok(reset[t].requests <= 2, `${t} requests after reset: ${reset[t].requests}`);
    }
    await eventually(
      async () => {
        const f = await allFigures(page);
        for (const t of TRANSPORTS) {
          assert.ok(f[t].received >= 3, `${t} received ${f[t].received}`);
          assert.equal(f[t].gaps, 0, `${t} gaps`);
        }
        return true;
      },
      { timeoutMs: 5000, what: 'counting again' },
    );
  });

  test('no console errors or uncaught exceptions', () => {
    assert.deepEqual(errors, []);
  });
});

describe('live page with feed control turned off on the server', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ args: ['--feed-control', 'off'] });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('disables the feed inputs and says why, and still follows the feed', { timeout: 15_000 }, async () => {
    const page = await browser.newPage({ viewport: LAPTOP });
    const errors = watchErrors(page);
    await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
    await page.waitForFunction(() => !document.querySelector('#control-note').hidden, null, { timeout: 5000 });
    assert.equal(await page.isDisabled('#rate'), true);
    assert.equal(await page.isDisabled('#payload'), true);
    assert.match(await page.textContent('#control-note'), /--feed-control/);
    assert.equal(await page.isVisible('#report-link'), false, 'no report, no link');
    await eventually(
      async () => {
        const f = await allFigures(page);
        return TRANSPORTS.every((t) => f[t].received > 0);
      },
      { timeoutMs: 5000, what: 'events in every pane' },
    );
    assert.deepEqual(errors, []);
  });
});
