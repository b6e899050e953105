// What the browser tests share: a real server on a free loopback port, headless Chromium, and
// readers for the page's `data-transport` / `data-field` hooks.
//
// The server is the release binary the rest of the project builds (never a mock), started with
// `--bind 127.0.0.1:0` so tests never fight over a port, and serving this working copy of the
// page with `--web-dir` so a page edit needs no Rust rebuild.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const WEB_DIR = fileURLToPath(new URL('..', import.meta.url));
/** The reports committed with the project. */
export const COMMITTED_RESULTS = fileURLToPath(new URL('../../results/', import.meta.url));
export const OUTPUT_DIR = path.join(WEB_DIR, 'test-results');
export const TRANSPORTS = ['short-poll', 'long-poll', 'sse', 'ws'];

const LISTENING = /^feedlab listening on (https?:\/\/\S+\/)\s*$/;
const START_TIMEOUT_MS = 15_000;

/** `$FEEDLAB_SERVER_BIN`, else the workspace's release build, else its debug build. */
export function serverBinary() {
  if (process.env.FEEDLAB_SERVER_BIN) return process.env.FEEDLAB_SERVER_BIN;
  const candidates = ['release', 'debug'].map((profile) =>
    fileURLToPath(new URL(`../../target/${profile}/server`, import.meta.url)),
  );
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `no server binary at ${candidates.join(' or ')}: run \`cargo build --release -p server\` ` +
        'or set FEEDLAB_SERVER_BIN',
    );
  }
  return found;
}

/**
 * Starts the server (ticker at `rate` events/s) with the page's test settings plus `args`; resolves once it prints its
 * address. Its results directory is a fresh temporary one holding `reports` (names of fake
 * report directories), so the page's "latest report" link has something to find; or
 * `resultsDir`, served as it is and left alone (the committed `results/`, say).
 */
export async function startServer({ rate = 5, args = [], reports = [], port = 0, resultsDir: given = null } = {}) {
  const resultsDir = given ?? mkdtempSync(path.join(tmpdir(), 'feedlab-web-results-'));
  const removeResults = () => {
    if (!given) rmSync(resultsDir, { recursive: true, force: true });
  };
  for (const name of reports) {
    mkdirSync(path.join(resultsDir, name));
    writeFileSync(path.join(resultsDir, name, 'report.html'), `<!doctype html><title>${name}</title>`);
  }
  const child = spawn(
    serverBinary(),
    ['--bind', `127.0.0.1:${port}`, '--web-dir', WEB_DIR, '--rate', String(rate), '--results-dir', resultsDir, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FEEDLAB_LOG: process.env.FEEDLAB_LOG ?? 'warn' } },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`server printed no address within ${START_TIMEOUT_MS} ms; stderr:\n${stderr}`));
    }, START_TIMEOUT_MS);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = LISTENING.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening; stderr:\n${stderr}`));
    });
  }).catch((err) => {
    child.kill('SIGKILL');
    removeResults();
    throw err;
  });

  return {
    url,
    stderr: () => stderr,
    /** SIGKILL, as a crash would: no shutdown, no goodbye to clients. */
    async kill9() {
      process.off('exit', killOnExit);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      removeResults();
    },
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      removeResults();
    },
  };
}

/** The Chromium the tests drive: `$FEEDLAB_CHROMIUM`, else the system's. */
export const CHROMIUM = process.env.FEEDLAB_CHROMIUM ?? '/usr/bin/chromium';

/** A test's `skip` when there is no Chromium to drive (reported as a skip, never a pass); else `false`. */
export function chromiumMissing() {
  return existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (install chromium, or set FEEDLAB_CHROMIUM)`;
}

/**
 * Headless Chromium from the system (`/usr/bin/chromium`, or `$FEEDLAB_CHROMIUM`), plus `args`.
 * QUIC is off (`--disable-quic`) unless `quic`: the server's `Alt-Svc` must not move a test that
 * is about TCP onto HTTP/3.
 */
export function launchBrowser({ args = [], quic = false } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      ...(quic ? [] : ['--disable-quic']),
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...args,
    ],
  });
}

/** Collects console errors and uncaught exceptions of `page`, which every test run must not have. */
export function watchErrors(page) {
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console.error: ${msg.text()} (${msg.location().url})`);
  });
  page.on('pageerror', (err) => errors.push(`uncaught: ${err.stack ?? err.message}`));
  return errors;
}

/**
 * Every `data-field` of every pane, read in one `evaluate` (so within one frame), keyed by
 * transport; numbers as numbers (thousands separators removed), the rest as text.
 */
export function allFigures(page) {
  return page.evaluate(() => {
    const all = {};
    for (const pane of document.querySelectorAll('.pane[data-transport]')) {
      const out = {};
      for (const el of pane.querySelectorAll('[data-field]')) {
        const text = el.textContent.trim();
        const number = Number(text.replaceAll(',', ''));
        out[el.dataset.field] = text !== '' && Number.isFinite(number) ? number : text;
      }
      all[pane.dataset.transport] = out;
    }
    return all;
  });
}

export async function paneFigures(page, transport) {
  return (await allFigures(page))[transport];
}

/**
 * Calls `check` every 100 ms until it returns a truthy value (which is returned) or `timeoutMs`
 * passes; `check` may throw (an assertion) to say why it is not done yet, and the last reason is
 * the error's message.
 */
export async function eventually(check, { timeoutMs = 5000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not met within ${timeoutMs} ms (last: ${describe(last)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function describe(value) {
  if (value instanceof Error) return value.message;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
