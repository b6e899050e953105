// The live page across an emulated network: `loadgen link` starts the server behind a 300 ms
// link (two network namespaces joined by TUN devices and loadgen's forwarder, real kernel TCP
// at both ends) and forwards a loopback port through it; headless Chromium opens that URL. All
// four panes must follow the feed, and what a person sees must be the network's doing: push
// (SSE, WebSocket) arrives one way after publishing, long polling waits for the request that
// is still on its way back, short polling for its next poll.
//
// Needs root and /dev/net/tun (it creates namespaces); skipped, saying so, elsewhere.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';

import { TRANSPORTS, WEB_DIR, allFigures, eventually, launchBrowser, serverBinary, watchErrors } from './helpers.mjs';

const RTT_MS = 300;
const RATE = 10; // events/s: faster than one per RTT, so long polling's wait shows

/** `loadgen` next to the server binary (both built by the workspace), or `$FEEDLAB_LOADGEN_BIN`. */
function loadgenBinary() {
  return process.env.FEEDLAB_LOADGEN_BIN ?? path.join(path.dirname(serverBinary()), 'loadgen');
}

function skipReason() {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  if (!existsSync(loadgenBinary())) return `no loadgen binary at ${loadgenBinary()}`;
  return false;
}

/** "152 ms", "812 µs", "1.20 s" → ms. */
function ms(text) {
  const m = /^([\d.]+)\s*(µs|ms|s)$/.exec(String(text).trim());
  if (!m) return NaN;
  return Number(m[1]) * { µs: 1e-3, ms: 1, s: 1e3 }[m[2]];
}

describe('live page across a 300 ms link', { skip: skipReason() }, () => {
  let link;
  let url;
  let browser;
  let page;
  let errors;

  before(async () => {
    link = spawn(
      loadgenBinary(),
      [
        'link',
        '--network',
        `rtt=${RTT_MS}ms`,
        '--server-bin',
        serverBinary(),
        '--',
        '--web-dir',
        WEB_DIR,
        '--rate',
        String(RATE),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    link.stderr.on('data', (c) => {
      stderr = (stderr + c).slice(-10_000);
    });
    url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`loadgen link printed no URL; stderr:\n${stderr}`)), 30_000);
      createInterface({ input: link.stdout }).on('line', (line) => {
        const m = /^feedlab listening on (http:\/\/\S+\/)\s*$/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      link.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`loadgen link exited (${code}); stderr:\n${stderr}`));
      });
    });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    errors = watchErrors(page);
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 20_000 });
  });

  after(async () => {
    await browser?.close();
    if (link && link.exitCode === null) {
      const exited = new Promise((resolve) => link.once('exit', resolve));
      link.kill('SIGTERM');
      await exited;
    }
  });

  test('the four panes follow the feed, polling visibly slower than push', { timeout: 60_000 }, async (t) => {
    const figures = await eventually(
      async () => {
        const f = await allFigures(page);
        for (const t of TRANSPORTS) {
          assert.equal(f[t].state, 'open', `${t} state`);
          assert.ok(f[t].received >= 40, `${t} received ${f[t].received}`);
        }
        return f;
      },
      { timeoutMs: 40_000, what: '40 events in every pane' },
    );
    const p50 = Object.fromEntries(TRANSPORTS.map((tr) => [tr, ms(figures[tr]['latency-p50'])]));
    t.diagnostic(`p50 (ms): ${JSON.stringify(p50)}`);
    for (const tr of TRANSPORTS) {
      assert.equal(figures[tr].gaps, 0, `${tr} gaps`);
      assert.equal(figures[tr].duplicates, 0, `${tr} duplicates`);
      // Nothing can beat the link's one-way delay.
      assert.ok(p50[tr] >= RTT_MS / 2 - 5, `${tr} p50 ${p50[tr]} ms under the one-way delay`);
    }
    const push = Math.max(p50.sse, p50.ws);
    assert.ok(push < RTT_MS / 2 + 60, `push p50 ${push} ms: about one way`);
    assert.ok(p50['long-poll'] > push + 50, `long-poll p50 ${p50['long-poll']} ms vs push ${push} ms`);
    assert.ok(p50['short-poll'] > push + 100, `short-poll p50 ${p50['short-poll']} ms vs push ${push} ms`);
    assert.deepEqual(errors, []);
  });
});
