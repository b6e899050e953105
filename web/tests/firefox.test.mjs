// The page in Firefox: Debian's firefox-esr, driven through Marionette (Playwright cannot drive a
// stock Firefox). All four panes must open and receive events with increasing seq and no gap.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { TRANSPORTS, startServer } from './helpers.mjs';

const script = fileURLToPath(new URL('./firefox_check.py', import.meta.url));

/** Why Firefox cannot be driven here (test.sh installs both), or false. */
function skipReason() {
  if (!existsSync('/usr/bin/firefox-esr')) return 'firefox-esr is not installed (test.sh installs it)';
  const probe = spawnSync('python3', ['-c', 'import marionette_driver'], { stdio: 'ignore' });
  if (probe.status !== 0) return 'python3 cannot import marionette_driver (test.sh installs it with pip)';
  return false;
}

test('the page follows the feed in Firefox', { timeout: 120_000, skip: skipReason() }, async () => {
  const server = await startServer({ rate: 5 });
  try {
    const { stdout } = await promisify(execFile)('python3', [script, server.url], { timeout: 100_000 });
    const report = JSON.parse(stdout.trim().split('\n').pop());
    assert.match(report.userAgent, /Firefox\//);
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.panes.map((p) => p.transport), TRANSPORTS);
    for (const pane of report.panes) {
      assert.equal(pane.state, 'open', `${pane.transport} is open`);
      assert.ok(pane.received >= 3, `${pane.transport} received ${pane.received} events`);
      assert.ok(pane.lastSeq >= pane.received, `${pane.transport} seq increases`);
      assert.equal(pane.gaps, 0, `${pane.transport} has no gap`);
    }
  } finally {
    await server.stop();
  }
});
