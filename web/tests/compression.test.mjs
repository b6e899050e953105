// Compression as a browser gets it, by default negotiation only: Chromium offers
// permessage-deflate on the page's WebSocket and sends `Accept-Encoding: gzip, …` with its
// EventSource, and the server (defaults: `--ws-deflate shared`, `--http-gzip shared`) answers
// both compressed. Every event must still arrive intact: what the browser decoded is compared,
// event by event, with the same events read uncompressed from `/poll`.
//
// The browser's own view comes from the DevTools protocol (handshake headers, the decoded
// WebSocket frames and EventSource messages), the server's from `/stats`, whose
// `payload_bytes_uncompressed` exceeds `bytes_written` only when the bytes on the wire were
// compressed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { allFigures, eventually, launchBrowser, startServer, watchErrors } from './helpers.mjs';

describe('compression, negotiated by the browser', () => {
  let server;
  let browser;
  let page;
  let errors;
  const wsFrames = [];
  const sseMessages = [];
  const handshakes = [];
  const sseResponses = [];

  before(async () => {
    // Chat messages: realistic JSON that compresses (padding would compress to nothing).
    server = await startServer({ rate: 20, args: ['--payload', 'chat'] });
    browser = await launchBrowser();
    page = await browser.newPage();
    errors = watchErrors(page);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.webSocketHandshakeResponseReceived', (e) => handshakes.push(e.response));
    cdp.on('Network.webSocketFrameReceived', (e) => wsFrames.push(e.response.payloadData));
    cdp.on('Network.eventSourceMessageReceived', (e) => sseMessages.push(e));
    cdp.on('Network.responseReceived', (e) => {
      if (new URL(e.response.url).pathname === '/sse') sseResponses.push(e.response);
    });
    await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Header `name` of a DevTools response, whatever its case. */
  const header = (response, name) =>
    Object.entries(response.headers).find(([k]) => k.toLowerCase() === name)?.[1];

  test('the WebSocket agrees permessage-deflate and the EventSource gets gzip', { timeout: 15_000 }, async () => {
    await eventually(
      () => {
        assert.ok(handshakes.length > 0, 'a WebSocket handshake');
        assert.ok(sseResponses.length > 0, 'an EventSource response');
        return true;
      },
      { timeoutMs: 5000, what: 'the handshake and the stream' },
    );
    const extensions = header(handshakes[0], 'sec-websocket-extensions') ?? '';
    assert.match(extensions, /^permessage-deflate\b/, `Sec-WebSocket-Extensions: ${extensions}`);
    assert.match(extensions, /server_no_context_takeover/, 'the shared form, the default');
    assert.equal(header(sseResponses[0], 'content-encoding'), 'gzip');
  });

  test('every event arrives intact in both panes, and the wire carried fewer bytes', { timeout: 20_000 }, async () => {
    // A few seconds of the feed on both connections (counted from what the browser decoded:
    // the feed's seq was already past zero when the page opened).
    await eventually(
      () => {
        const ws = wsFrames.filter((f) => JSON.parse(f).seq !== undefined).length;
        assert.ok(ws >= 30 && sseMessages.length >= 30, `${ws} WebSocket, ${sseMessages.length} EventSource events`);
        return true;
      },
      { timeoutMs: 10_000, what: 'thirty events on each' },
    );
    const figures = await allFigures(page);
    for (const t of ['sse', 'ws']) {
      assert.equal(figures[t].gaps, 0, `${t} gaps`);
      assert.equal(figures[t].duplicates, 0, `${t} duplicates`);
    }

    // What the browser decoded, against the events as the server holds them, uncompressed.
    const events = wsFrames.map((f) => JSON.parse(f)).filter((m) => typeof m.seq === 'number');
    const records = sseMessages.map((m) => ({ id: Number(m.eventId), data: m.data }));
    assert.ok(events.length >= 20, `${events.length} WebSocket events`);
    assert.ok(records.length >= 20, `${records.length} EventSource messages`);
    const first = Math.min(events[0].seq, records[0].id);
    const res = await fetch(new URL(`poll?since=${first - 1}`, server.url), {
      headers: { 'Accept-Encoding': 'identity' },
    });
    assert.equal(res.headers.get('content-encoding'), null);
    const body = await res.text();
    // The exact JSON text of each event, as the poll body carries it.
    const exact = new Map();
    for (const e of JSON.parse(body).events) exact.set(e.seq, JSON.stringify(e));
    const wsText = wsFrames.filter((f) => JSON.parse(f).seq !== undefined);
    for (const text of wsText) {
      const seq = JSON.parse(text).seq;
      if (exact.has(seq)) assert.equal(text, exact.get(seq), `WebSocket event ${seq}, byte for byte`);
    }
    for (const { id, data } of records) {
      if (exact.has(id)) assert.equal(data, exact.get(id), `EventSource event ${id}, byte for byte`);
    }
    assert.ok(
      wsText.filter((t) => exact.has(JSON.parse(t).seq)).length >= 20 &&
        records.filter((r) => exact.has(r.id)).length >= 20,
      'at least twenty events of each compared',
    );
    assert.equal(typeof events[0].data?.text, 'string', 'chat payloads');

    const stats = await (await fetch(new URL('stats', server.url))).json();
    for (const t of ['sse', 'ws']) {
      const c = stats.transports[t];
      assert.ok(
        c.payload_bytes_uncompressed > c.bytes_written,
        `${t}: ${c.bytes_written} B written, ${c.payload_bytes_uncompressed} B uncompressed`,
      );
    }
    assert.deepEqual(errors, []);
  });
});
