// The page's other two workloads, as a person sees them: a game (each pane shows the state's
// age, its stalls and input → acknowledgement, the WebSocket on binary messages) and a job's log
// (each pane follows its own job, reloads halfway through the first burst and resumes with no
// line lost or repeated, and after the job's end is refused, 204, as EventSource needs).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { TRANSPORTS, allFigures, eventually, launchBrowser, startServer, watchErrors } from './helpers.mjs';

describe('the game and the job on the page', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ rate: 0 });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the game: every pane gets states and acknowledgements and shows their age and stalls', { timeout: 40_000 }, async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors = watchErrors(page);
    await page.goto(`${server.url}usecases.html?workload=game&tick=20&inputs=5`, { waitUntil: 'domcontentloaded' });
    const figures = await eventually(
      async () => {
        const f = await allFigures(page);
        for (const t of TRANSPORTS) {
          assert.ok(f[t].states >= 20, `${t} states: ${f[t].states}`);
          assert.ok(f[t].acked >= 3, `${t} acknowledged: ${f[t].acked}`);
          assert.equal(typeof f[t]['age-p99'], 'number', `${t} age p99`);
          assert.equal(typeof f[t]['ack-p50'], 'number', `${t} ack p50`);
          assert.equal(typeof f[t].stalls, 'number', `${t} stalls`);
        }
        return f;
      },
      { timeoutMs: 25_000, what: 'states and acknowledgements in every pane' },
    );
    // The state's age on loopback is milliseconds, not seconds, on every transport but the
    // short poll (which waits for its next poll).
    for (const t of ['long-poll', 'sse', 'ws']) {
      assert.ok(figures[t]['age-p50'] < 1000, `${t} age p50 ${figures[t]['age-p50']} ms`);
    }
    // The WebSocket's binary message carries the state's bytes, smaller than base64 in JSON.
    assert.ok(figures.ws['state-bytes'] <= 300 + 20, `binary state ${figures.ws['state-bytes']} B`);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('the job: a reload halfway resumes with nothing lost or repeated, and the end stops every pane', { timeout: 40_000 }, async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors = watchErrors(page);
    await page.goto(`${server.url}usecases.html?workload=job&lines=30&burst=600&quiet=800&bursts=2`, {
      waitUntil: 'domcontentloaded',
    });
    const figures = await eventually(
      async () => {
        const f = await allFigures(page);
        for (const t of TRANSPORTS) {
          assert.equal(f[t].state, 'done', `${t} state`);
          assert.match(String(f[t]['after-end']), /^204/, `${t} after the end`);
        }
        return f;
      },
      { timeoutMs: 25_000, what: 'every job done and refused after its end' },
    );
    for (const t of TRANSPORTS) {
      const f = figures[t];
      assert.equal(f.lines, 60, `${t} lines`);
      assert.equal(f.lost, 0, `${t} lost`);
      assert.equal(f.repeated, 0, `${t} repeated`);
      assert.equal(f.reloads, 1, `${t} reloads`);
      assert.equal(typeof f['first-after-reload'], 'number', `${t} first line after the reload`);
    }
    // The log shows where it resumed, and its last line is the end.
    const marks = await page.$$eval('.pane .log li.resumed', (els) => els.length);
    assert.equal(marks, 4);
    const ends = await page.$$eval('.pane .log li.end', (els) => els.length);
    assert.equal(ends, 4);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
