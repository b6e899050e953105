// The README's picture of the live page, as a user sees it: a real server on the default ticker
// rate (2 events/s), serving this working copy of the page and the committed results/ (so the
// page's report card shows the committed reference run, as `cargo run -p server` from the
// repository's root does), in headless Chromium at a laptop's 1440 × 900, after the page has run
// for 20 s. No test fixtures: no fake report, nothing injected.
//
//   cargo build --release -p server && (cd web && npm ci)
//   node web/scripts/screenshot.mjs            # writes web/screenshot.png
//   node web/scripts/screenshot.mjs --out FILE --seconds 30
//
// The server is $FEEDLAB_SERVER_BIN, else target/release/server, else target/debug/server.

import path from 'node:path';
import { parseArgs } from 'node:util';

import { COMMITTED_RESULTS, WEB_DIR, launchBrowser, startServer, watchErrors } from '../tests/helpers.mjs';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: path.join(WEB_DIR, 'screenshot.png') },
    seconds: { type: 'string', default: '20' },
  },
});
const seconds = Number(values.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got ${values.seconds}`);

const SERVER_DEFAULT_RATE = 2; // `server --rate`'s default (server/src/config.rs)
const server = await startServer({ rate: SERVER_DEFAULT_RATE, resultsDir: COMMITTED_RESULTS });
const browser = await launchBrowser();
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const errors = watchErrors(page);
  await page.goto(server.url);
  await page.waitForTimeout(seconds * 1000);
  if (errors.length) throw new Error(`the page had errors:\n${errors.join('\n')}`);
  await page.screenshot({ path: values.out });
  console.log(`written: ${values.out} (${seconds} s of the live page at ${SERVER_DEFAULT_RATE} events/s, ${server.url})`);
} finally {
  await browser.close();
  await server.stop();
}
