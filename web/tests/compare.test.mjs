// The page as a comparison (issue #16, item 7), end to end in headless Chromium against a real
// server: the bars of bytes and requests per event against the panes' own figures, no
// placeholder that looks broken, a latency axis that holds still under a steady feed, the size
// of the feed's events as they arrived, and the guidance tied to the committed measured run.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { formatBytes, formatMicros, formatRatio } from '../stats.js';
import { COMMITTED_RESULTS, TRANSPORTS, allFigures, eventually, launchBrowser, startServer, watchErrors } from './helpers.mjs';

const LAPTOP = { width: 1440, height: 900 };
/** Where a figure is shown that must never read as broken. */
const WATCHED = [
  '.pane',
  '#cost-chart',
  '[data-field="payload-size"]',
  '[data-field="reference-note"]',
  '#latency-legend',
  '[data-panel="ws-handshake"]',
  '[data-panel="measured"]',
  '.measured-figures',
  '.meta',
];
/** Placeholders and leaked non-values. */
// A dash standing for a figure (alone, or between spaces); a dash inside a range ("12 ms–19 ms",
// the report's own notation) is text.
const BROKEN = /(^|\s)–(\s|$)|NaN|undefined|Infinity/;
/** How often the latency axis may change in 10 s of a steady feed (it may grow once). */
const MAX_AXIS_CHANGES = 2;

describe('the page as a comparison', () => {
  let server;
  let browser;
  let page;
  let errors;

  before(async () => {
    // The committed results: the guidance links to the run the book quotes.
    server = await startServer({ rate: 20, resultsDir: COMMITTED_RESULTS });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: LAPTOP });
    errors = watchErrors(page);
    // Every change to the watched parts is checked as it happens, from the first parse on, so a
    // placeholder shown for one frame is caught too.
    await page.addInitScript(
      ({ watched, broken }) => {
        const pattern = new RegExp(broken);
        window.brokenSeen = [];
        const check = () => {
          for (const el of document.querySelectorAll(watched.join(','))) {
            // The template's panes are checked once cloned, not in the <template>.
            const text = el.textContent;
            const m = pattern.exec(text);
            if (m && window.brokenSeen.length < 20) {
              window.brokenSeen.push(`${el.dataset.transport ?? el.id ?? el.className}: …${text.slice(Math.max(0, m.index - 40), m.index + 20)}…`);
            }
          }
        };
        new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true });
      },
      { watched: WATCHED, broken: BROKEN.source },
    );
    await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('no figure shows "–", NaN or undefined in the first seconds, and unknown ones say why', { timeout: 15_000 }, async () => {
    // The first moments: panes built, nothing counted yet. What is unknown is said in words.
    const early = await page.evaluate(() =>
      [...document.querySelectorAll('.pane dd.pending, .cost-value.pending')].map((el) => el.textContent),
    );
    for (const text of early) assert.match(text, /[a-z]{3,}/, `a pending figure says why: "${text}"`);
    await page.waitForTimeout(4000);
    assert.deepEqual(await page.evaluate(() => window.brokenSeen), []);
    // By now every figure is known except those of a message never sent.
    const pending = await page.evaluate(() =>
      // A pane for a transport the page cannot follow here (WebTransport without --quic) shows no figures.
      [...document.querySelectorAll('.pane:not([data-state="unavailable"]) dd.pending')].map((el) => `${el.closest('.pane').dataset.transport} ${el.dataset.field}: ${el.textContent}`),
    );
    assert.deepEqual(
      pending.filter((p) => !/talk-/.test(p)),
      [],
      'every event figure known after 4 s at 20 events/s',
    );
    assert.ok(pending.every((p) => /not sent$/.test(p)), pending.join('; '));
  });

  test('one comparison: four bars per metric, the values the panes show', { timeout: 15_000 }, async () => {
    const shown = await eventually(
      async () => {
        const s = await page.evaluate(() => {
          const panes = {};
          for (const pane of document.querySelectorAll('.pane[data-transport]')) {
            const field = (name) => pane.querySelector(`[data-field="${name}"]`).textContent.trim();
            panes[pane.dataset.transport] = { bytesPerEvent: field('bytes-per-event'), requests: field('requests'), bytes: field('bytes') };
          }
          const groups = {};
          for (const group of document.querySelectorAll('#cost-chart [data-metric]')) {
            groups[group.dataset.metric] = {
              axisMax: Number(group.dataset.axisMax),
              ticks: [...group.querySelectorAll('.cost-axis span')].map((t) => t.textContent),
              // The transports the page follows (WebTransport's row is hidden without --quic).
              rows: [...group.querySelectorAll('.cost-row')].filter((row) => row.checkVisibility()).map((row) => ({
                transport: row.dataset.transport,
                value: row.querySelector('[data-field="value"]').textContent,
                basis: row.querySelector('[data-field="basis"]').textContent,
                raw: Number(row.dataset.value),
                width: row.querySelector('.cost-bar').getBoundingClientRect().width,
                track: row.querySelector('.cost-track').getBoundingClientRect().width,
              })),
            };
          }
          return { panes, groups };
        });
        for (const g of Object.values(s.groups)) {
          for (const row of g.rows) assert.ok(row.raw > 0, `${row.transport}: ${row.value}`);
        }
        return s;
      },
      { timeoutMs: 8000, what: 'eight bars with values' },
    );
    assert.deepEqual(Object.keys(shown.groups), ['bytes-per-event', 'requests-per-event']);
    for (const [metric, g] of Object.entries(shown.groups)) {
      assert.deepEqual(g.rows.map((r) => r.transport), TRANSPORTS, `${metric}: one bar per transport`);
      assert.ok(g.ticks.length >= 3 && g.ticks[0] === '0', `${metric} ticks ${g.ticks}`);
      for (const row of g.rows) {
        // The bar's length is its value on the axis, and the axis holds every bar.
        assert.ok(row.raw <= g.axisMax, `${metric} ${row.transport} ${row.raw} within ${g.axisMax}`);
        assert.ok(Math.abs(row.width / row.track - row.raw / g.axisMax) < 0.02, `${metric} ${row.transport} bar length`);
      }
    }
    for (const row of shown.groups['bytes-per-event'].rows) {
      const pane = shown.panes[row.transport];
      assert.equal(row.value, pane.bytesPerEvent, `${row.transport}: the bar says what the pane says`);
      assert.ok(row.basis.startsWith(`${pane.bytes} ÷ `), `${row.transport} basis ${row.basis} from ${pane.bytes}`);
      assert.match(row.value, /^\d+(\.\d+)? (B|kB)$/);
    }
    for (const row of shown.groups['requests-per-event'].rows) {
      const pane = shown.panes[row.transport];
      const m = /^([\d,]+) requests? ÷ ([\d,]+) events?$/.exec(row.basis);
      assert.ok(m, `${row.transport} basis ${row.basis}`);
      const [requests, events] = [m[1], m[2]].map((n) => Number(n.replaceAll(',', '')));
      assert.equal(m[1], pane.requests, `${row.transport}: the requests the pane counts`);
      assert.equal(row.value, formatRatio(requests / events), `${row.transport} requests per event`);
    }
    const perEvent = Object.fromEntries(shown.groups['requests-per-event'].rows.map((r) => [r.transport, r.raw]));
    // What the comparison is for: a long poll per event; a stream's one request spread over all.
    assert.ok(perEvent['long-poll'] > 0.5, `long polling ${perEvent['long-poll']}`);
    for (const t of ['short-poll', 'sse', 'ws']) assert.ok(perEvent[t] < perEvent['long-poll'], `${t} below long polling`);
  });

  test('the latency axis holds still under a steady feed, with a legend beside the chart', { timeout: 25_000 }, async () => {
    const range = () => page.evaluate(() => document.querySelector('#latency-chart').dataset.yRange);
    await eventually(async () => (await range()) !== undefined, { what: 'the latency chart drawn' });
    const seen = [await range()];
    for (let i = 0; i < 100; i += 1) {
      await page.waitForTimeout(100);
      const now = await range();
      if (now !== seen.at(-1)) seen.push(now);
    }
    assert.ok(seen.length - 1 <= MAX_AXIS_CHANGES, `the axis changed ${seen.length - 1} times in 10 s: ${seen.join(' → ')}`);
    for (const r of seen) {
      const [min, max] = r.split(' ').map(Number);
      for (const bound of [min, max]) {
        const exponent = Math.log10(bound);
        assert.ok(Math.abs(exponent - Math.round(exponent)) < 1e-9, `${bound} ms is a power of ten`);
      }
      assert.ok(max / min >= 10, `at least a decade: ${r}`);
    }
    const legend = await page.evaluate(() => {
      const box = (el) => el.getBoundingClientRect();
      const chart = box(document.querySelector('#latency-chart canvas'));
      const items = [...document.querySelectorAll('#latency-legend [data-series]')].filter((el) => el.checkVisibility()).map((el) => ({
        key: el.dataset.series,
        text: el.textContent,
        color: getComputedStyle(el.querySelector('.key')).backgroundColor,
        overlaps: box(el).bottom > chart.top && box(el).top < chart.bottom && box(el).right > chart.left && box(el).left < chart.right,
      }));
      const paneColor = (t) => getComputedStyle(document.querySelector(`.pane[data-transport="${t}"]`)).borderTopColor;
      return { items, paneColors: Object.fromEntries(items.map((i) => [i.key, paneColor(i.key)])) };
    });
    assert.deepEqual(legend.items.map((i) => i.key), TRANSPORTS);
    for (const item of legend.items) {
      assert.equal(item.overlaps, false, `${item.key}'s legend entry lies outside the plot`);
      assert.equal(item.color, legend.paneColors[item.key], `${item.key}: the colour of its pane`);
    }
  });

  test('the size of the feed\'s events, as received, beside the figures', { timeout: 20_000 }, async () => {
    const read = () =>
      page.evaluate(() => {
        const el = document.querySelector('[data-field="payload-size"]');
        return { text: el.textContent, seq: Number(el.dataset.seq), envelope: Number(el.dataset.envelopeBytes), data: Number(el.dataset.dataBytes) };
      });
    const check = async (shown) => {
      // The same event, read raw off an SSE stream from Node: its `data:` line is the envelope.
      const raw = await rawEvent(server.url, shown.seq);
      assert.equal(shown.envelope, Buffer.byteLength(raw.envelope), `seq ${shown.seq}: envelope`);
      assert.equal(shown.data, Buffer.byteLength(raw.data), `seq ${shown.seq}: data`);
      assert.ok(shown.text.includes(`${formatBytes(shown.data)} of data`), shown.text);
      assert.ok(shown.text.includes(`${formatBytes(shown.envelope)} with the`), shown.text);
      return raw;
    };
    const first = await eventually(async () => {
      const s = await read();
      return s.seq > 0 ? s : null;
    }, { what: 'an event size shown' });
    const raw = await check(first);
    assert.ok(!raw.data.includes('xxx'), 'no padding by default');

    // More padding: the size shown grows by exactly that much.
    const res = await fetch(`${server.url}control`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ payload_bytes: 300 }),
    });
    assert.equal(res.status, 200);
    const padded = await eventually(async () => {
      const s = await read();
      return s.data >= first.data + 300 ? s : null;
    }, { what: 'padded events shown' });
    await check(padded);
    assert.ok(padded.data - first.data >= 300 && padded.data - first.data <= 302, `${first.data} → ${padded.data}`);
    assert.match(padded.text, /300 B of it padding/);

    // And it says the report's run differs, with the report's own size.
    const report = JSON.parse(readFileSync(path.join(COMMITTED_RESULTS, 'reference', 'report.json'), 'utf8'));
    const t = Object.values(report.transports)[0];
    const note = await page.textContent('[data-field="reference-note"]');
    assert.ok(note.includes(`${formatBytes(t.data_bytes_per_event)} of data per event`), note);
    assert.ok(note.includes(`${t.clients} clients`), note);
  });

  test('the guidance links to the measured run, and every link resolves', { timeout: 15_000 }, async () => {
    const report = JSON.parse(readFileSync(path.join(COMMITTED_RESULTS, 'reference', 'report.json'), 'utf8'));
    const measured = await eventually(
      async () => {
        const m = await page.evaluate(() => ({
          panel: document.querySelector('[data-panel="measured"]').textContent,
          none: document.querySelector('[data-panel="measured"] [data-field="no-recommendation"]') !== null,
          recommendations: document.querySelectorAll('[data-panel="measured"] .recommendation').length,
          figures: Object.fromEntries(
            [...document.querySelectorAll('.tradeoff-grid [data-topic]')].map((a) => [
              a.dataset.topic,
              a.querySelector('.measured-figures')?.textContent ?? null,
            ]),
          ),
          links: [...document.querySelectorAll('[data-panel="measured"] a, .measured-figures a')].map((a) => a.href),
        }));
        assert.match(m.panel, /results\/reference/);
        return m;
      },
      { what: 'the measured run shown' },
    );
    // The committed scenario run's decision, when the reference run itself ranks nothing.
    const decisionPath = path.join(COMMITTED_RESULTS, 'scenarios', 'decision.json');
    const decision = existsSync(decisionPath) ? JSON.parse(readFileSync(decisionPath, 'utf8')) : null;
    if (report.recommendations.length === 0 && decision?.recommendations?.length > 0) {
      assert.equal(measured.none, false);
      assert.equal(measured.recommendations, decision.recommendations.length);
      assert.match(measured.panel, /results\/scenarios\/decision\.md/);
      for (const r of decision.recommendations) assert.ok(measured.panel.includes(r.scenario), r.scenario);
    } else if (report.recommendations.length === 0) {
      assert.equal(measured.none, true, 'says the run made no recommendation');
      assert.equal(measured.recommendations, 0);
    } else {
      assert.equal(measured.recommendations, report.recommendations.length);
    }
    for (const t of TRANSPORTS) {
      const p50 = report.transports[t].spread.latency_p50_us.median;
      const bytes = report.transports[t].spread.bytes_per_event.median;
      assert.ok(measured.figures[t].includes(`p50 ${formatMicros(p50)}`), `${t}: ${measured.figures[t]}`);
      assert.ok(measured.figures[t].includes(`${formatBytes(bytes)} per event`), `${t}: ${measured.figures[t]}`);
    }
    assert.ok(measured.links.length >= 6, `links ${measured.links}`);
    for (const href of new Set(measured.links)) {
      const res = await fetch(href);
      assert.equal(res.status, 200, href);
      await res.arrayBuffer();
    }
  });

  test('no console errors or uncaught exceptions', () => {
    assert.deepEqual(errors, []);
  });
});

describe('the guidance with a run that made recommendations', () => {
  let server;
  let browser;
  let dir;

  before(async () => {
    // A run with one scenario's recommendation, in the shape loadgen writes (report.schema.json).
    dir = mkdtempSync(path.join(tmpdir(), 'feedlab-web-recommend-'));
    mkdirSync(path.join(dir, 'scenario-run'));
    writeFileSync(path.join(dir, 'scenario-run', 'report.html'), '<!doctype html><title>scenario run</title>');
    const ranking = [
      { transport: 'sse', rank: 1, meets_requirements: true, reason: 'p99 1.3 ms within 100 ms; 213 B per event' },
      { transport: 'ws', rank: 1, meets_requirements: true, reason: 'p99 1.4 ms within 100 ms; 194 B per event' },
      { transport: 'long-poll', rank: 3, meets_requirements: true, reason: '436 B per event' },
      { transport: 'short-poll', rank: 4, meets_requirements: false, reason: 'p99 988 ms over the 100 ms budget' },
    ];
    writeFileSync(
      path.join(dir, 'scenario-run', 'report.json'),
      JSON.stringify({
        transports: {},
        recommendations: [{ scenario: 'dashboard', requirements: 'p99 under 100 ms, nothing lost', ranking, summary: 'SSE or WebSocket.' }],
      }),
    );
    server = await startServer({ resultsDir: dir });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('shows the scenario\'s recommendation with every transport\'s reason, best first', { timeout: 15_000 }, async () => {
    const page = await browser.newPage({ viewport: LAPTOP });
    const errors = watchErrors(page);
    await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
    const box = page.locator('[data-panel="measured"] .recommendation[data-scenario="dashboard"]');
    await box.waitFor({ timeout: 5000 });
    assert.match(await box.locator('h3').textContent(), /dashboard: SSE or WebSocket\./);
    const items = await box.locator('li').evaluateAll((lis) => lis.map((li) => [li.dataset.transport, li.textContent]));
    assert.deepEqual(items.map(([t]) => t), ['sse', 'ws', 'long-poll', 'short-poll']);
    assert.match(items[3][1], /misses the requirements\): p99 988 ms over the 100 ms budget/);
    const href = await page.locator('[data-panel="measured"] a').first().getAttribute('href');
    assert.equal((await fetch(new URL(href, server.url))).status, 200);
    // No per-transport results in this report: no figures under the headings, and no broken ones.
    assert.equal(await page.locator('.measured-figures').count(), 0);
    await eventually(async () => (await allFigures(page)).sse.received > 0, { what: 'the feed followed' });
    assert.deepEqual(errors, []);
  });
});

/** Event `seq` as the server writes it on an SSE stream: the envelope and its `data` member, raw. */
async function rawEvent(base, seq) {
  const controller = new AbortController();
  const res = await fetch(`${base}sse?since=${seq - 1}`, { signal: controller.signal });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended before seq ${seq}: ${text}`);
      text += decoder.decode(value, { stream: true });
      const m = new RegExp(`id: ${seq}\\ndata: (.*)\\n`).exec(text);
      if (m) {
        const envelope = m[1];
        const prefix = `{"seq":${seq},"ts":`;
        assert.ok(envelope.startsWith(prefix), envelope.slice(0, 60));
        const start = envelope.indexOf('"data":') + '"data":'.length;
        return { envelope, data: envelope.slice(start, -1) };
      }
    }
  } finally {
    controller.abort();
  }
}
