// Eight tabs of one browser profile, as a person opens them: over HTTP/1.1 the browser's six
// connections per host run out and the page must say so; sharing one set of connections across
// tabs, or HTTP/2, must let every pane of every tab follow the feed with no gaps.
//
// Only what a person sees is asserted (the panes' state and counts, the stall message); what the
// server saw is read from its `/stats` over a connection of the test's own (one per read,
// subtracted). With FEEDLAB_TABS_RESULTS=<dir> the run's numbers and screenshots are written
// there (results/tabs/ keeps one such run); otherwise to web/test-results/tabs/.

import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { OUTPUT_DIR, TRANSPORTS, allFigures, eventually, launchBrowser, startServer } from './helpers.mjs';

const TABS = 8;
const RATE = 5;
const LAPTOP = { width: 1440, height: 900 };
/** A person opens tabs one after another, not all in the same millisecond. */
const OPEN_EVERY_MS = 300;
/** When the panes are read after the last tab opened, and the window a starving pane shows no event in. */
const SETTLE_MS = 7000;
/** Longer than the stall rule's 2 s plus the short poll's 1 s pause, so a starving pane has had time to say so. */
const WINDOW_MS = 4500;
/** How long every pane of every tab must follow the feed, once it does. */
const FOLLOW_MS = 4000;
const OUT = process.env.FEEDLAB_TABS_RESULTS ?? path.join(OUTPUT_DIR, 'tabs');

const run = {
  command: 'cd web && FEEDLAB_TABS_RESULTS=../results/tabs node --test tests/tabs.test.mjs',
  conditions: `${TABS} tabs of one headless Chromium profile (one browser context), opened ${OPEN_EVERY_MS} ms apart; ` +
    `server --rate ${RATE} on loopback; events counted ${SETTLE_MS / 1000} s after the last tab opened`,
  chromium: null,
  phases: {},
};

describe(`${TABS} tabs of one profile`, () => {
  let browser;

  before(async () => {
    mkdirSync(OUT, { recursive: true });
    browser = await launchBrowser();
    run.chromium = browser.version();
  });

  after(async () => {
    await browser?.close();
    writeFileSync(path.join(OUT, 'run.json'), `${JSON.stringify(run, null, 2)}\n`);
    writeFileSync(path.join(OUT, 'run.md'), markdown(run));
  });

  test('HTTP/1.1: the starving panes say stalled and the page names the limit; sharing one set of connections lets every tab follow', { timeout: 120_000 }, async () => {
    const server = await startServer({ rate: RATE });
    const context = await browser.newContext({ viewport: LAPTOP });
    try {
      const stats = statsReader(server.url);
      const errors = [];
      const pages = await openTabs(context, server.url, errors);
      await sleep(SETTLE_MS - WINDOW_MS);
      const first = await readTabs(pages);
      await sleep(WINDOW_MS);
      const second = await readTabs(pages);
      const alerts = await Promise.all(pages.map((p) => stallAlert(p)));

      // Starving: an HTTP pane that received nothing in the window, or a tab whose panes never came.
      const starving = [];
      // Tabs whose panes came up only between the two reads are judged by the next run's reads, not this one.
      for (const [i, figures] of second.entries()) {
        if (!figures || !first[i]) continue;
        for (const t of TRANSPORTS) {
          if (t === 'ws') continue;
          if (figures[t].received === first[i]?.[t]?.received) starving.push({ tab: i + 1, transport: t, state: figures[t].state });
        }
      }
      const unrendered = second.flatMap((f, i) => (f ? [] : [i + 1]));
      assert.ok(starving.length + unrendered.length > 0, 'over HTTP/1.1, 8 tabs starve some panes of connections');
      for (const s of starving) {
        assert.equal(s.state, 'stalled', `tab ${s.tab}'s ${s.transport} pane received nothing for ${WINDOW_MS} ms and must say stalled, not ${s.state}`);
      }
      // The WebSocket is outside the six-per-host pool: it keeps going in every rendered tab.
      for (const [i, figures] of second.entries()) {
        if (figures && first[i]) assert.ok(figures.ws.received > first[i].ws.received, `tab ${i + 1}'s WebSocket pane follows`);
      }
      const stalledTabs = second.flatMap((f, i) => (f && TRANSPORTS.some((t) => f[t].state === 'stalled') ? [i] : []));
      assert.ok(stalledTabs.length > 0, 'some tab shows a stalled pane');
      for (const i of stalledTabs) {
        const alert = alerts[i];
        assert.ok(alert.visible, `tab ${i + 1} shows the stall message`);
        assert.match(alert.text, /at most 6 connections to one server/, `tab ${i + 1} names the limit`);
        assert.match(alert.text, /share one set of connections across tabs/i, `tab ${i + 1} offers sharing`);
        assert.match(alert.text, /HTTP\/2 \(server --tls-self-signed/, `tab ${i + 1} offers HTTP/2`);
      }
      const shown = stalledTabs.at(-1);
      await pages[shown].screenshot({ path: path.join(OUT, 'http1-stalled.png') });
      run.phases.http1 = {
        what: 'HTTP/1.1, each tab its own connections',
        tabs: tabRows(second, first),
        unrendered,
        stall_message_tab: shown + 1,
        stall_message: alerts[shown].text,
        server: await stats.read(),
      };

      // A person clicks the button in the message; every tab switches and the queue drains.
      await pages[shown].locator('.stall-alert button[data-mode="shared"]').click();
      await everyPaneFollows(pages, 'after sharing one set across tabs');
      const before = await readTabs(pages);
      const serverBefore = await stats.read();
      await sleep(FOLLOW_MS);
      const afterWindow = await readTabs(pages);
      assertFollowed(before, afterWindow, 'shared');
      const status = await pages[0].locator('[data-field="tabs-status"]').textContent();
      assert.match(status, new RegExp(`^${TABS} tabs of this page open .*${TABS} sharing`), status);
      await pages[shown].screenshot({ path: path.join(OUT, 'http1-shared.png') });
      const serverAfter = await stats.read();
      run.phases.shared = {
        what: 'HTTP/1.1, one set of connections shared by all tabs (SharedWorker)',
        window_ms: FOLLOW_MS,
        tabs: tabRows(afterWindow, before),
        server: serverAfter,
        connections_during_window: serverAfter.browser_connections - serverBefore.browser_connections,
      };
      // One SSE stream and one WebSocket for all eight tabs.
      assert.equal(serverAfter.transports.sse.open, 1, 'one SSE stream for all tabs');
      assert.equal(serverAfter.transports.ws.open, 1, 'one WebSocket for all tabs');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await server.stop();
    }
  });

  // The bounds are for a loaded machine (a build beside the suite: 8 tabs of 4 panes each then
  // took over 40 s to all follow); what is asserted is that every pane follows, not how soon.
  test('HTTP/2: every pane of every tab follows the feed, nothing stalls', { timeout: 120_000 }, async () => {
    const server = await startServer({ rate: RATE, args: ['--tls-self-signed'] });
    const url = server.url.replace(/^http:/, 'https:');
    const context = await browser.newContext({ viewport: LAPTOP, ignoreHTTPSErrors: true });
    try {
      const stats = statsReader(url);
      const errors = [];
      const pages = await openTabs(context, url, errors);
      await everyPaneFollows(pages, 'over HTTP/2');
      const before = await readTabs(pages);
      await sleep(FOLLOW_MS);
      const afterWindow = await readTabs(pages);
      assertFollowed(before, afterWindow, 'own');
      const protocol = await pages[0].evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
      assert.equal(protocol, 'h2');
      for (const page of pages) assert.equal(await page.locator('.stall-alert').isVisible(), false);
      await pages.at(-1).screenshot({ path: path.join(OUT, 'http2.png') });
      const server2 = await stats.read();
      run.phases.http2 = {
        what: 'HTTP/2 (server --tls-self-signed), each tab its own connections',
        window_ms: FOLLOW_MS,
        protocol,
        tabs: tabRows(afterWindow, before),
        server: server2,
      };
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await server.stop();
    }
  });
});

test('a tab whose scripts never arrive says why it may be, after 3 s', { timeout: 20_000 }, async () => {
  // What a tab looks like when the page's HTML got a connection and its scripts did not: held
  // here by never answering app.js, as a full connection pool would.
  const server = await startServer({ rate: RATE });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: LAPTOP });
    await page.route('**/app.js', () => {});
    // Not 'domcontentloaded': that waits for the module script, which never comes.
    await page.goto(server.url, { waitUntil: 'commit' });
    const note = page.locator('#boot-note');
    await note.waitFor({ state: 'attached', timeout: 2000 });
    assert.equal(await note.isVisible(), false, 'hidden at first');
    await eventually(async () => note.isVisible(), { timeoutMs: 6000, what: 'the note shows' });
    assert.match(await note.innerText(), /at most 6 per server for all the tabs of a profile/);
  } finally {
    await browser.close();
    await server.stop();
  }
});

// --- tabs ------------------------------------------------------------------------------------

/** Opens `TABS` tabs on `url` without waiting for any to load: a tab that cannot load must not stop the others. */
async function openTabs(context, url, errors) {
  const pages = [];
  for (let i = 0; i < TABS; i += 1) {
    const page = await context.newPage();
    page.on('pageerror', (err) => errors.push(`tab ${i + 1}: uncaught ${err.stack ?? err.message}`));
    page.goto(url, { waitUntil: 'commit', timeout: 60_000 }).catch(() => {});
    pages.push(page);
    await sleep(OPEN_EVERY_MS);
  }
  return pages;
}

/** Every tab's panes (`null` for a tab whose page has not rendered them), each read within 2 s. */
function readTabs(pages) {
  return Promise.all(
    pages.map(async (page) => {
      const figures = await Promise.race([allFigures(page).catch(() => null), sleep(2000).then(() => null)]);
      return figures && TRANSPORTS.every((t) => figures[t]) ? figures : null;
    }),
  );
}

async function stallAlert(page) {
  const alert = page.locator('.stall-alert');
  try {
    const text = await alert.locator('p').textContent({ timeout: 1000 });
    return { visible: await alert.isVisible(), text: text.trim().replace(/\s+/g, ' ') };
  } catch {
    return { visible: false, text: '' };
  }
}

async function everyPaneFollows(pages, what) {
  await eventually(
    async () => {
      const tabs = await readTabs(pages);
      for (const [i, f] of tabs.entries()) {
        assert.ok(f, `tab ${i + 1} rendered its panes`);
        for (const t of TRANSPORTS) {
          assert.equal(f[t].state, 'open', `tab ${i + 1} ${t}`);
          assert.ok(f[t].received >= 2, `tab ${i + 1} ${t} received ${f[t].received}`);
        }
      }
      return true;
    },
    { timeoutMs: 60_000, what: `every pane of every tab following ${what}` },
  );
}

/** Every pane of every tab stayed open, received events all through the window, with no gap or duplicate. */
function assertFollowed(before, afterWindow, mode) {
  for (const [i, f] of afterWindow.entries()) {
    assert.ok(f, `tab ${i + 1} rendered`);
    for (const t of TRANSPORTS) {
      const got = f[t].received - before[i][t].received;
      // At 5 events/s the window holds about 20; short polling gets them in 1 s batches.
      assert.ok(got >= (RATE * FOLLOW_MS) / 1000 / 2, `${mode}: tab ${i + 1} ${t} received ${got} in ${FOLLOW_MS} ms`);
      assert.equal(f[t].state, 'open', `${mode}: tab ${i + 1} ${t} state`);
      assert.equal(f[t].gaps, 0, `${mode}: tab ${i + 1} ${t} gaps`);
      assert.equal(f[t].duplicates, 0, `${mode}: tab ${i + 1} ${t} duplicates`);
    }
  }
}

function tabRows(tabs, earlier) {
  return tabs.map((f, i) =>
    f
      ? Object.fromEntries(
          TRANSPORTS.map((t) => [
            t,
            { received: f[t].received, in_window: f[t].received - (earlier[i]?.[t]?.received ?? 0), state: f[t].state, gaps: f[t].gaps },
          ]),
        )
      : null,
  );
}

// --- the server's view -----------------------------------------------------------------------

/** Reads `/stats` over a new connection each time (no keep-alive), so the test's own reads can be subtracted. */
function statsReader(base) {
  let reads = 0;
  return {
    async read() {
      reads += 1;
      const stats = await getJson(new URL('stats', base));
      const browser = stats.connections.accepted - reads;
      return {
        connections_accepted: stats.connections.accepted,
        browser_connections: browser,
        // Each WebSocket is a connection of its own (an upgrade); the rest carried HTTP requests.
        websocket_connections: stats.transports.ws.requests,
        http_connections: browser - stats.transports.ws.requests,
        transports: Object.fromEntries(
          Object.entries(stats.transports).map(([t, c]) => [t, { open: c.open, requests: c.requests }]),
        ),
      };
    },
  };
}

function getJson(url) {
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.get(url, { agent: false, rejectUnauthorized: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

// --- the record --------------------------------------------------------------------------------

function markdown(r) {
  const lines = [`Command: \`${r.command}\``, '', `Conditions: ${r.conditions}; Chromium ${r.chromium}.`, ''];
  for (const phase of Object.values(r.phases)) {
    lines.push(`### ${phase.what}`, '');
    lines.push(phase.window_ms ? `Events received in a ${phase.window_ms / 1000} s window, state at its end:` : 'Events received since the tab opened, and state:', '');
    lines.push('| tab | short poll | long poll | SSE | WebSocket |', '|---|---|---|---|---|');
    for (const [i, tab] of phase.tabs.entries()) {
      const cells = tab
        ? TRANSPORTS.map((t) => `${phase.window_ms ? tab[t].in_window : tab[t].received} ${tab[t].state}${tab[t].gaps ? ` (${tab[t].gaps} gaps)` : ''}`)
        : ['page did not render its panes', '', '', ''];
      lines.push(`| ${i + 1} | ${cells.join(' | ')} |`);
    }
    const s = phase.server;
    lines.push(
      '',
      `Server: ${s.browser_connections} TCP connections accepted from the browser since it started ` +
        `(${s.http_connections} for HTTP requests, ${s.websocket_connections} WebSockets)` +
        (phase.connections_during_window !== undefined ? ` (${phase.connections_during_window} during the window)` : '') +
        `; open now: ${TRANSPORTS.map((t) => `${t} ${s.transports[t].open}`).join(', ')}; requests so far: ` +
        `${TRANSPORTS.map((t) => `${t} ${s.transports[t].requests}`).join(', ')}.`,
      '',
    );
    if (phase.stall_message) lines.push(`Tab ${phase.stall_message_tab}'s message: "${phase.stall_message}"`, '');
  }
  return `${lines.join('\n')}\n`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
