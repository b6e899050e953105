// Cross-site WebSocket hijacking, shown and stopped.
//
// The attack: the same-origin policy does not cover WebSockets, and a browser attaches the
// cookies it holds for a host to every WebSocket handshake to that host, whichever page opens it.
// Cookies belong to a host, not to a port, and two ports of one host are even the same *site*, so
// SameSite=Lax (the default) or Strict does not hold them back: a page served from
// 127.0.0.1:<other port> can open ws://127.0.0.1:<feedlab port>/ws as the user and read the feed.
//
// The defence: the server checks the handshake's `Origin` before upgrading and answers 403 to
// anything but its own origin and the `--allowed-origin` list.
//
// Here an attacker page on a second origin (a Node server on another loopback port) opens
// feedlab's `/ws` in headless Chromium, which holds a cookie for 127.0.0.1. DevTools leaves
// cookies out of WebSocket handshakes, so Chromium's own network log (`--log-net-log`, sensitive
// fields included) is what shows the handshake really carried the cookie and the foreign Origin.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { eventually, launchBrowser, paneFigures, startServer, watchErrors } from './helpers.mjs';

const COOKIE = { name: 'session', value: 'user-secret', domain: '127.0.0.1', path: '/', sameSite: 'Lax' };

/** The attacker's page: opens the WebSocket named by `?target=` and records what happens. */
const ATTACKER_PAGE = `<!doctype html><title>nothing to see</title><script>
  const seen = (window.hijack = { opened: false, closeCode: null, messages: [] });
  const ws = new WebSocket(new URLSearchParams(location.search).get('target'));
  ws.onopen = () => { seen.opened = true; };
  ws.onmessage = (e) => { seen.messages.push(e.data); };
  ws.onclose = (e) => { seen.closeCode = e.code; };
</script>`;

describe('cross-site WebSocket hijacking', () => {
  let attacker; // http.Server on 127.0.0.1:<random port>: a second origin
  let attackerOrigin;

  before(async () => {
    attacker = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(ATTACKER_PAGE);
    });
    await new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerOrigin = `http://127.0.0.1:${attacker.address().port}`;
  });

  after(() => {
    attacker?.closeAllConnections();
    attacker?.close();
  });

  test('by default the handshake carries the cookie and is refused with 403', { timeout: 30_000 }, async () => {
    const server = await startServer({ rate: 5 });
    const browser = await cookiedBrowser();
    let handshakes;
    try {
      const { page, errors } = browser;
      const target = wsUrl(server);
      await page.goto(`${attackerOrigin}/?target=${encodeURIComponent(target)}`, { timeout: 10_000 });
      const seen = await eventually(() => page.evaluate(() => window.hijack.closeCode !== null && window.hijack), {
        what: 'the attacker page\'s WebSocket closes',
      });
      assert.deepEqual(seen, { opened: false, closeCode: 1006, messages: [] });
      assert.deepEqual(errors, [
        `console.error: WebSocket connection to '${target}' failed: ` +
          `Error during WebSocket handshake: Unexpected response code: 403 (${attackerOrigin}/?target=${encodeURIComponent(target)})`,
      ]);

      // The server's side: refused before the upgrade, so never counted as a WebSocket request.
      const { ws } = (await getJson(`${server.url}stats`)).transports;
      assert.equal(ws.requests, 0, 'ws requests');
      assert.equal(ws.open, 0, 'open ws');

      // The same handshake outside the browser, cookie and all: 403 with the reason.
      const refused = await handshake(server, { origin: attackerOrigin, cookie: 'session=user-secret' });
      assert.equal(refused.status, 403);
      assert.match(JSON.parse(refused.body).error, new RegExp(`origin "${attackerOrigin}" is not allowed`));

      // The defence does not break the real page, served from feedlab's own origin.
      await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
      await eventually(async () => (await paneFigures(page, 'ws')).state === 'open', {
        what: 'the live page\'s own WebSocket opens',
      });
      assert.equal(errors.length, 1, `no further page errors: ${errors.slice(1).join('\n')}`);
    } finally {
      handshakes = await browser.close();
      await server.stop();
    }

    const hijack = handshakes.filter((h) => h.headers.origin === attackerOrigin);
    assert.equal(hijack.length, 1, `one cross-site handshake: ${JSON.stringify(handshakes)}`);
    assert.equal(hijack[0].line, 'GET /ws?since=0 HTTP/1.1');
    assert.equal(hijack[0].headers.host, new URL(server.url).host);
    assert.equal(hijack[0].headers.cookie, 'session=user-secret', 'the browser sent the user\'s cookie');
    assert.equal(hijack[0].failure, 'Error during WebSocket handshake: Unexpected response code: 403');
    const own = handshakes.filter((h) => h.headers.origin === server.url.replace(/\/$/, ''));
    assert.equal(own.length, 1, 'the live page opened its WebSocket once');
    assert.equal(own[0].failure, undefined);
  });

  test('with --allowed-origin for that page the same handshake opens and reads the feed', { timeout: 30_000 }, async () => {
    const server = await startServer({ rate: 0, args: ['--allowed-origin', attackerOrigin] });
    const browser = await cookiedBrowser();
    let handshakes;
    try {
      const { page, errors } = browser;
      await page.goto(`${attackerOrigin}/?target=${encodeURIComponent(wsUrl(server))}`, { timeout: 10_000 });
      await eventually(() => page.evaluate(() => window.hijack.opened), { what: 'the attacker page\'s WebSocket opens' });

      const secret = { account: 'alice', balance: 1234 };
      const published = await postJson(`${server.url}publish`, secret); // from Node: no Origin
      const messages = await eventually(() => page.evaluate(() => window.hijack.messages.length > 0 && window.hijack.messages), {
        what: 'the published event reaches the attacker page',
      });
      const event = JSON.parse(messages[0]);
      assert.equal(event.seq, published.seq);
      assert.deepEqual(event.data, secret);
      assert.equal(await page.evaluate(() => window.hijack.closeCode), null, 'still open');

      const { ws } = (await getJson(`${server.url}stats`)).transports;
      assert.equal(ws.requests, 1, 'ws requests');
      assert.equal(ws.open, 1, 'open ws');
      assert.deepEqual(errors, []);
    } finally {
      handshakes = await browser.close();
      await server.stop();
    }

    assert.equal(handshakes.length, 1, JSON.stringify(handshakes));
    assert.equal(handshakes[0].headers.origin, attackerOrigin);
    assert.equal(handshakes[0].headers.cookie, 'session=user-secret', 'the browser sent the user\'s cookie');
    assert.equal(handshakes[0].failure, undefined);
  });
});

function wsUrl(server) {
  return `${server.url.replace(/^http/, 'ws')}ws?since=0`;
}

/**
 * Headless Chromium holding the user's cookie for 127.0.0.1, with its network log (cookies
 * included) in a temporary file. `close()` closes it, which completes the log, and returns the
 * WebSocket handshakes it sent.
 */
async function cookiedBrowser() {
  const dir = mkdtempSync(path.join(tmpdir(), 'feedlab-cswsh-'));
  const netLog = path.join(dir, 'netlog.json');
  const browser = await launchBrowser({ args: [`--log-net-log=${netLog}`, '--net-log-capture-mode=IncludeSensitive'] });
  const context = await browser.newContext();
  await context.addCookies([COOKIE]);
  const page = await context.newPage();
  const errors = watchErrors(page);
  return {
    page,
    errors,
    async close() {
      await browser.close();
      try {
        return wsHandshakes(JSON.parse(readFileSync(netLog, 'utf8')));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * The WebSocket handshakes in a Chromium net log: `{line, headers, failure}` with header names
 * lower-cased and `failure` the browser's reason when the upgrade failed.
 */
function wsHandshakes(log) {
  const types = log.constants.logEventTypes;
  const bySource = new Map();
  for (const e of log.events) {
    if (e.type === types.HTTP_TRANSACTION_SEND_REQUEST_HEADERS) {
      const headers = Object.fromEntries(
        e.params.headers.map((h) => {
          const colon = h.indexOf(':');
          return [h.slice(0, colon).trim().toLowerCase(), h.slice(colon + 1).trim()];
        }),
      );
      if (headers.upgrade === 'websocket') bySource.set(e.source.id, { line: e.params.line.trim(), headers });
    } else if (e.type === types.WEBSOCKET_UPGRADE_FAILURE && bySource.has(e.source.id)) {
      bySource.get(e.source.id).failure = e.params.message;
    }
  }
  return [...bySource.values()];
}

/** A WebSocket opening handshake sent by hand: resolves with the status (101 or a refusal) and body. */
function handshake(server, { origin, cookie }) {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: '/ws?since=0',
      timeout: 5000,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        Origin: origin,
        Cookie: cookie,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('handshake: no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

async function getJson(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200, `GET ${url}`);
  return res.json();
}

async function postJson(url, value) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(value),
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(res.status, 200, `POST ${url}`);
  return res.json();
}
