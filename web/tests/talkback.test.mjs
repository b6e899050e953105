// Each pane talks back its own way: the WebSocket pane sends a message on its open socket, the
// other three `POST /publish`. A person sees, per pane, the message come back (round trip) and
// what it cost going up: no request and a frame's few bytes on the socket, a request and its
// head for a POST.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { TRANSPORTS, allFigures, eventually, launchBrowser, startServer, watchErrors } from './helpers.mjs';

/** "185 B" or "1.2 KiB" as bytes. */
function bytes(text) {
  const m = /^([\d.,]+)\s*(B|KiB|MiB)$/.exec(String(text).trim());
  if (!m) return null;
  const scale = { B: 1, KiB: 1024, MiB: 1024 * 1024 }[m[2]];
  return Number(m[1].replaceAll(',', '')) * scale;
}

describe('talking back from the panes', () => {
  let server;
  let browser;
  let page;
  let errors;

  before(async () => {
    server = await startServer({ rate: 1 });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    errors = watchErrors(page);
    await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
    await eventually(
      async () => {
        const figures = await allFigures(page);
        for (const t of TRANSPORTS) assert.equal(figures[t].state, 'open', `${t} state`);
        return true;
      },
      { timeoutMs: 10_000, what: 'all four panes open' },
    );
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('every pane sends its own way and shows the round trip and what going up cost', { timeout: 30_000 }, async () => {
    for (const t of TRANSPORTS) {
      await page.click(`.pane[data-transport="${t}"] [data-action="send"]`);
    }
    const shown = await eventually(
      async () => {
        const figures = await allFigures(page);
        for (const t of TRANSPORTS) {
          const f = figures[t];
          assert.equal(f['talk-sent'], 1, `${t} sent`);
          assert.match(String(f['talk-round-trip']), /^\d[\d.]*\s*(µs|ms|s)$/, `${t} round trip`);
          assert.ok(bytes(f['talk-bytes-up']) > 0, `${t} bytes up: ${f['talk-bytes-up']}`);
        }
        return figures;
      },
      { timeoutMs: 15_000, what: 'every pane got its own message back' },
    );
    assert.equal(shown.ws['talk-requests'], 0, 'a WebSocket message is no request');
    for (const t of ['short-poll', 'long-poll', 'sse']) {
      assert.equal(shown[t]['talk-requests'], 1, `${t}: one POST per message`);
      assert.match(shown[t]['talk-how'], /POST \/publish/);
      // A POST carries a request head (method, path, the browser's headers) besides the body;
      // the socket carries a frame header and a mask.
      assert.ok(
        bytes(shown[t]['talk-bytes-up']) > bytes(shown.ws['talk-bytes-up']) + 100,
        `${t} ${shown[t]['talk-bytes-up']} against ws ${shown.ws['talk-bytes-up']}`,
      );
    }
    assert.match(shown.ws['talk-how'], /socket/);
    // The messages are in the feed: every pane saw all four.
    const lastMessages = await page.$$eval('.pane [data-field="last-message"]', (els) => els.map((e) => e.textContent));
    // The four TCP panes, and WebTransport's strip (this server runs without --quic).
    assert.ok(lastMessages.length === 5);
    const server2 = await (await fetch(`${server.url}stats`)).json();
    const posted = ['http/1.0', 'http/1.1', 'http/2'].reduce((n, w) => n + server2.publishes[w].messages, 0);
    assert.equal(server2.publishes.ws.messages, 1, 'one message over the socket');
    assert.equal(posted, 3, 'three POSTs');
    assert.deepEqual(errors, []);
  });
});
