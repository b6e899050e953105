// The page over HTTP/3: a server with `--tls-self-signed --quic --quic-http3`, and Chromium with
// QUIC on and forced for the server's origin (`--origin-to-force-quic-on`), trusting the server's
// key by its SPKI hash (`--ignore-certificate-errors-spki-list`; both of the server's
// certificates are on that one key). The polls and the SSE stream must really go over HTTP/3:
// the server counts each request by HTTP version, and the page's own resource timings say `h3`.

import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { allFigures, chromiumMissing, eventually, launchBrowser, startServer, watchErrors } from './helpers.mjs';

const HTTP_PANES = ['short-poll', 'long-poll', 'sse'];

describe('the page over HTTP/3 (server --quic --quic-http3)', { skip: chromiumMissing() }, () => {
  let dir;
  let server;
  let browser;
  let page;
  let errors;
  let spki;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'feedlab-h3-'));
    const certPath = path.join(dir, 'cert.pem');
    server = await startServer({
      rate: 5,
      args: ['--tls-self-signed', '--tls-write-cert', certPath, '--quic', '--quic-http3'],
    });
    const key = new X509Certificate(readFileSync(certPath)).publicKey.export({ type: 'spki', format: 'der' });
    spki = createHash('sha256').update(key).digest('base64');
    const { host } = new URL(server.url);
    browser = await launchBrowser({
      quic: true,
      args: [`--origin-to-force-quic-on=${host}`, `--ignore-certificate-errors-spki-list=${spki}`],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    errors = watchErrors(page);
    await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the polls and SSE follow the feed, and the server counted them as HTTP/3', { timeout: 30_000 }, async () => {
    await eventually(
      async () => {
        const all = await allFigures(page);
        for (const t of [...HTTP_PANES, 'ws']) {
          assert.equal(all[t].state, 'open', `${t} state (${all[t]['state-detail']})`);
          assert.ok(all[t].received >= 3, `${t} events: ${all[t].received}`);
          assert.equal(all[t].gaps, 0, `${t} gaps`);
        }
        return true;
      },
      { timeoutMs: 20_000, what: 'every TCP-era pane following the feed' },
    );
    const clientId = await page.textContent('#client-id');
    const mine = await page.evaluate(async (id) => (await fetch(`stats/client/${id}`, { cache: 'no-store' })).json(), clientId);
    for (const t of HTTP_PANES) {
      const c = mine.transports[t];
      assert.ok(c.requests >= 1, `${t} requests: ${c.requests}`);
      assert.equal(c.requests_by_version['http/3'], c.requests, `${t}: every request over HTTP/3 ${JSON.stringify(c.requests_by_version)}`);
    }
    // WebSocket over HTTP/3 (RFC 9220) is not served: the socket stays on TCP.
    assert.equal(mine.transports.ws.requests_by_version['http/3'], 0, 'ws over TCP');
    assert.equal(mine.transports.ws.requests_by_version['http/1.1'], mine.transports.ws.requests, 'ws over HTTP/1.1');

    const protocols = await page.evaluate(() => ({
      page: performance.getEntriesByType('navigation')[0]?.nextHopProtocol,
      feed: performance
        .getEntriesByType('resource')
        .filter((r) => /\/(poll|long-poll|sse)\?/.test(r.name))
        .map((r) => r.nextHopProtocol),
    }));
    assert.equal(protocols.page, 'h3', 'the page itself came over HTTP/3');
    assert.ok(protocols.feed.length > 0 && protocols.feed.every((p) => p === 'h3'), `feed requests: ${protocols.feed}`);
  });

  test('the WebTransport pane says this server serves HTTP/3 instead', async () => {
    const wt = (await allFigures(page)).wt;
    assert.equal(wt.state, 'unavailable');
    assert.match(wt['state-detail'], /--quic-http3/);
    const quic = await page.evaluate(async () => (await fetch('quic', { cache: 'no-store' })).json());
    assert.equal(quic.serves, 'http3');
    assert.equal(quic.certificate.spki_sha256, spki, 'one key for the TCP and the QUIC certificate');
  });

  test('no console errors or uncaught exceptions', () => {
    assert.deepEqual(errors, []);
  });
});
