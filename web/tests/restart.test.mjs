// A server that dies (SIGKILL) and comes back on the same port and `--data-dir`: the page's four
// clients reconnect by themselves and resume from their last seq, with no gap and no duplicate.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { TRANSPORTS, allFigures, eventually, launchBrowser, startServer, watchErrors } from './helpers.mjs';

test('after kill -9 and a restart, all four panes reconnect and resume with zero gaps', { timeout: 60_000 }, async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'feedlab-web-data-'));
  const args = ['--data-dir', dataDir];
  let server = await startServer({ rate: 10, args });
  const port = Number(new URL(server.url).port);
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 10_000 });
    const before = await eventually(
      async () => {
        const all = await allFigures(page);
        return TRANSPORTS.every((t) => all[t].received >= 5 && all[t].state === 'open') && all;
      },
      { timeoutMs: 10_000, what: 'all four panes following the feed' },
    );

    await server.kill9();
    await eventually(
      async () => {
        const all = await allFigures(page);
        return TRANSPORTS.every((t) => all[t].state !== 'open');
      },
      { timeoutMs: 8000, what: 'every pane noticing the server is gone' },
    );

    server = await startServer({ rate: 10, args, port });
    const head = Math.max(...TRANSPORTS.map((t) => before[t]['last-seq']));
    const after = await eventually(
      async () => {
        const all = await allFigures(page);
        for (const t of TRANSPORTS) {
          assert.equal(all[t].state, 'open', `${t} open again`);
          assert.ok(all[t]['last-seq'] >= head + 10, `${t} at ${all[t]['last-seq']}, head was ${head}`);
        }
        return all;
      },
      { timeoutMs: 20_000, what: 'every pane reconnected and following the restarted server' },
    );
    for (const t of TRANSPORTS) {
      assert.equal(after[t].gaps, 0, `${t} gaps`);
      assert.equal(after[t].duplicates, 0, `${t} duplicates`);
      assert.equal(
        after[t].received - before[t].received,
        after[t]['last-seq'] - before[t]['last-seq'],
        `${t}: every seq across the restart arrived exactly once`,
      );
      assert.ok(after[t].reconnects > before[t].reconnects, `${t} counted its reconnection`);
    }
    // Refused connections while the server was down are logged by the browser; the page itself
    // must not have thrown.
    assert.deepEqual(errors.filter((e) => e.startsWith('uncaught')), []);
  } finally {
    await browser.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
