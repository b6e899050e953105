// Each pane's phone-radio figures: on a quiet feed it is the heartbeat, not an event, that wakes
// the radio, and the figures follow the chosen profile (they come from the server's radio model
// over the times it wrote to and read from this page's own connections).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { allFigures, eventually, launchBrowser, startServer, watchErrors } from './helpers.mjs';

/** `"3,290 /h"` → 3290. */
const perHour = (text) => Number(String(text).replace(/[^0-9.]/g, ''));
/** `"heartbeats 4 · events 0 · its request 1"` → {heartbeats: 4, events: 0, 'its request': 1}. */
const woken = (text) =>
  Object.fromEntries(
    String(text)
      .split(' · ')
      .map((part) => {
        const m = /^(.*) (\d+)$/.exec(part);
        return m ? [m[1], Number(m[2])] : [part, NaN];
      }),
  );

describe('phone radio figures', () => {
  let server;
  let browser;
  let page;
  let errors;

  before(async () => {
    // No ticker: the feed is quiet, and a 1 s heartbeat is all an SSE stream or WebSocket carries.
    server = await startServer({ rate: 0, args: ['--heartbeat', '1s'] });
    browser = await launchBrowser();
    page = await browser.newPage();
    errors = watchErrors(page);
    await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('a quiet pane shows heartbeat wake-ups, and the numbers follow the profile', { timeout: 40_000 }, async () => {
    // Wi-Fi's tail (0.25 s) ends between 1 s heartbeats: every heartbeat wakes the radio.
    await page.selectOption('#radio-profile', 'wifi', { timeout: 10_000 });
    const wifi = await eventually(
      async () => {
        const f = await allFigures(page);
        for (const [t, keepalive] of [['sse', 'heartbeats'], ['ws', 'pings']]) {
          assert.equal(f[t]['radio-profile'], 'wifi');
          const by = woken(f[t]['radio-woken-by']);
          assert.ok(by[keepalive] >= 3, `${t}: ${f[t]['radio-woken-by']}`);
          assert.equal(by.events, 0, `${t}: a quiet feed has no event to wake the radio`);
          assert.match(f[t]['radio-why'], new RegExp(`from ${keepalive}`));
        }
        const polls = woken(f['short-poll']['radio-woken-by']);
        assert.ok(polls.polls >= 2, `short-poll: ${f['short-poll']['radio-woken-by']}`);
        return f;
      },
      { timeoutMs: 15_000, what: 'heartbeat wake-ups on Wi-Fi' },
    );
    const timers = await page.textContent('[data-field="radio-timers"]');
    assert.match(timers, /tail 0\.25 s/);

    // LTE's tail (10.12 s) outlasts a 1 s heartbeat: the radio stays up and hardly wakes again.
    await page.selectOption('#radio-profile', 'lte');
    await eventually(
      async () => {
        const f = await allFigures(page);
        assert.equal(f.sse['radio-profile'], 'lte');
        for (const t of ['sse', 'ws']) {
          const lte = perHour(f[t]['radio-wake-ups']);
          const before = perHour(wifi[t]['radio-wake-ups']);
          assert.ok(lte < before / 2, `${t}: ${lte}/h on LTE against ${before}/h on Wi-Fi`);
          assert.ok(parseFloat(f[t]['radio-on']) > parseFloat(wifi[t]['radio-on']), `${t} radio-on`);
        }
        return true;
      },
      { timeoutMs: 10_000, what: 'fewer wake-ups on LTE' },
    );
    assert.match(await page.textContent('[data-field="radio-timers"]'), /tail 10\.12 s/);
    assert.deepEqual(errors, []);
  });
});
