#!/usr/bin/env node
// Background tabs in a real browser (issue #27, item 5): what each transport still sends and
// receives when its page is hidden, then frozen, then comes back, in Debian's Chromium with
// Chrome's background throttling left ON.
//
//   node scripts/background_tabs/run.mjs [--visible-s 120] [--hidden-s 540] [--frozen-s 240]
//        [--back-s 120] [--publish-every-ms 2000] [--out results/background-tabs]
//
// What it does (see results/background-tabs/README.md for why each choice):
// - one feedlab server (target/release/server, `--rate 0`: no ticker) per page, so that every
//   count, `/stats` and socket alike, belongs to one transport and one page; two variants, each
//   with its own five servers: `busy` (the benchmark POSTs one event every 2 s to each) and
//   `quiet` (nothing published: only polls, heartbeats and pings);
// - five pages per variant, each in its own Chromium window: the project's FeedClient for
//   short-poll, long-poll, SSE and WebSocket (web/feed-client.js, unchanged), and a
//   `setInterval` short poll; plus two timer-probe pages (with and without an open WebSocket);
// - Chromium is started by this script (not by Playwright's launch) with Playwright's switches
//   minus the three that turn background throttling off, then driven over CDP with
//   `connectOverCDP(…, {noDefaults: true})`: Playwright's own launch emulates focus on every
//   page (`Emulation.setFocusEmulationEnabled`), which keeps the page visible whatever happens;
// - stages: visible, hidden (each window's active tab switched to a blank tab:
//   `Target.activateTarget`), frozen (`Page.setWebLifecycleState {state: 'frozen'}`, still
//   hidden), back (`active`, then the page's tab activated again);
// - measures per stage: the server's `/stats` deltas, the client-side sockets of Chromium to each
//   server (`ss -tinpO` every 2 s: bytes and data segments each way, connections), and the page's
//   own log (events with their seq and publish time, requests, lifecycle events).

import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { renderReport } from './report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const require = createRequire(path.join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.FEEDLAB_CHROMIUM ?? '/usr/bin/chromium';
const SERVER = process.env.FEEDLAB_SERVER_BIN ?? path.join(ROOT, 'target/release/server');
/** The switches Playwright adds that turn background throttling off; left out here. */
const THROTTLING_OFF = [
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
  '--disable-renderer-backgrounding',
];

// --- options ---------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const settings = {
  visibleS: Number(opt('visible-s', 120)),
  hiddenS: Number(opt('hidden-s', 540)),
  frozenS: Number(opt('frozen-s', 240)),
  backS: Number(opt('back-s', 120)),
  publishEveryMs: Number(opt('publish-every-ms', 2000)),
  /** When the hidden stage is split in two: Chrome's intensive throttling starts after 5 min. */
  hiddenSplitS: Number(opt('hidden-split-s', 300)),
  sampleEveryMs: 2000,
};
/** `--headed`: a real window (run under `xvfb-run`), to check that headless behaves the same. */
const HEADED = argv.includes('--headed');
const OUT = path.resolve(ROOT, opt('out', 'results/background-tabs'));
const command = `node scripts/background_tabs/run.mjs ${argv.join(' ')}`.trim();

const PAGES = [
  { name: 'short-poll', transport: 'short-poll', mode: 'client' },
  { name: 'short-poll (setInterval)', transport: 'short-poll', mode: 'interval' },
  { name: 'long-poll', transport: 'long-poll', mode: 'client' },
  { name: 'sse', transport: 'sse', mode: 'client' },
  { name: 'ws', transport: 'ws', mode: 'client' },
];
const VARIANTS = ['busy', 'quiet'];

process.setMaxListeners(50);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...args) => console.log(new Date().toISOString().slice(11, 19), ...args);

// --- the machine -----------------------------------------------------------------------------

function machine() {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown';
  return {
    cpu,
    cores: os.cpus().length,
    kernel: `${os.type()} ${os.release()}`,
    memory_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
  };
}

function git(...args) {
  try {
    return execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

/** Playwright's own command line for a headless launch, read off the process it starts. */
async function playwrightDefaultArgs() {
  const server = await chromium.launchServer({ executablePath: CHROMIUM, headless: true });
  try {
    return readFileSync(`/proc/${server.process().pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } finally {
    await server.close();
  }
}

// --- servers ---------------------------------------------------------------------------------

async function startServer(webDir, resultsDir) {
  const child = spawn(
    SERVER,
    ['--bind', '127.0.0.1:0', '--web-dir', webDir, '--rate', '0', '--results-dir', resultsDir],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FEEDLAB_LOG: 'warn' } },
  );
  process.on('exit', () => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (c) => (stderr = (stderr + c).slice(-10_000)));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 15_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^feedlab listening on (http:\/\/\S+\/)\s*$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
  const port = Number(new URL(url).port);
  return { url, port, child, stderr: () => stderr, statsRequests: 0 };
}

/** One request on its own connection (no keep-alive), so the benchmark's own connections are countable. */
function request(url, { method = 'GET', body = null } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        agent: false,
        headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {},
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode, body: data }));
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout: ${url}`)));
    if (body) req.write(body);
    req.end();
  });
}

async function stats(server) {
  server.statsRequests += 1;
  const res = await request(new URL('stats', server.url));
  return JSON.parse(res.body);
}

// --- sockets (ss) ----------------------------------------------------------------------------

/**
 * Chromium's client-side TCP sockets to our servers, sampled every 2 s; per socket the largest
 * counters seen (a socket that closes between two samples loses what it did since the last one).
 */
function startSocketSampler(ports) {
  const byPort = new Map(ports.map((p) => [p, new Map()]));
  const filter = `( ${ports.map((p) => `dport = :${p}`).join(' or ')} )`;
  const sample = () => {
    let out = '';
    try {
      out = execFileSync('ss', ['-tinpHO', 'state', 'established', filter], { encoding: 'utf8' });
    } catch {
      return;
    }
    const at = Date.now();
    for (const line of out.split('\n')) {
      if (!line.includes('chromium')) continue;
      const m = /^\S+\s+\S+\s+127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:(\d+)/.exec(line);
      if (!m) continue;
      const local = Number(m[1]);
      const port = Number(m[2]);
      const num = (k) => Number(new RegExp(`\\b${k}:(\\d+)`).exec(line)?.[1] ?? 0);
      const sockets = byPort.get(port);
      if (!sockets) continue;
      let s = sockets.get(local);
      if (!s) {
        s = { local, firstSeen: at, samples: [] };
        sockets.set(local, s);
      }
      s.lastSeen = at;
      s.samples.push({
        at,
        bytesSent: num('bytes_sent'),
        bytesReceived: num('bytes_received'),
        dataSegsOut: num('data_segs_out'),
        dataSegsIn: num('data_segs_in'),
        segsOut: num('segs_out'),
        segsIn: num('segs_in'),
      });
    }
  };
  sample();
  const timer = setInterval(sample, settings.sampleEveryMs);
  return {
    stop: () => clearInterval(timer),
    sample,
    /** Totals over [from, to): counter growth of every socket between its last sample before `from` and its last sample before `to`. */
    window(port, from, to) {
      const keys = ['bytesSent', 'bytesReceived', 'dataSegsOut', 'dataSegsIn', 'segsOut', 'segsIn'];
      const total = Object.fromEntries(keys.map((k) => [k, 0]));
      let opened = 0;
      let openAtEnd = 0;
      for (const s of byPort.get(port).values()) {
        const before = s.samples.filter((x) => x.at < from).at(-1);
        const until = s.samples.filter((x) => x.at < to).at(-1);
        if (until && until.at >= to - settings.sampleEveryMs * 1.5 && s.lastSeen >= to - settings.sampleEveryMs * 1.5) openAtEnd += 1;
        if (!until || until === before) continue;
        if (!before) opened += 1;
        for (const k of keys) total[k] += until[k] - (before ? before[k] : 0);
      }
      return { ...total, connectionsSeen: opened, openAtEnd };
    },
    dump: () => Object.fromEntries([...byPort].map(([p, m]) => [p, [...m.values()]])),
  };
}

// --- Chromium --------------------------------------------------------------------------------

function chromiumArgs(userDataDir) {
  return [
    // Playwright's switches (chromiumSwitches in playwright-core) that matter for a page's life,
    // minus THROTTLING_OFF; the list Playwright really uses is recorded in the report.
    '--disable-field-trial-config',
    '--disable-background-networking',
    '--disable-back-forward-cache',
    '--disable-breakpad',
    '--disable-component-extensions-with-background-pages',
    '--disable-component-update',
    '--no-default-browser-check',
    '--disable-default-apps',
    '--disable-dev-shm-usage',
    '--disable-extensions',
    '--disable-hang-monitor',
    '--disable-popup-blocking',
    '--disable-prompt-on-repost',
    '--force-color-profile=srgb',
    '--metrics-recording-only',
    '--no-first-run',
    '--password-store=basic',
    '--use-mock-keychain',
    '--no-service-autorun',
    '--disable-search-engine-choice-screen',
    '--disable-sync',
    '--no-sandbox',
    // as web/tests/helpers.mjs
    '--disable-gpu',
    '--disable-quic',
    // Playwright's headless additions (it passes `--headless`, which is the new headless mode)
    ...(HEADED ? [] : ['--headless=new', '--hide-scrollbars']),
    '--mute-audio',
    `--user-data-dir=${userDataDir}`,
    '--remote-debugging-port=0',
    'about:blank',
  ];
}

async function startChromium() {
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'feedlab-bg-profile-'));
  const args = chromiumArgs(userDataDir);
  const child = spawn(CHROMIUM, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  process.on('exit', () => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (c) => (stderr = (stderr + c).slice(-20_000)));
  const portFile = path.join(userDataDir, 'DevToolsActivePort');
  for (let i = 0; i < 300 && !existsSync(portFile); i++) await sleep(100);
  await sleep(200);
  const port = readFileSync(portFile, 'utf8').split('\n')[0];
  const browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`, { noDefaults: true });
  // The wrapper /usr/bin/chromium execs the binary: same pid.
  const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  return { browser, child, userDataDir, cmdline, stderr: () => stderr };
}

// --- the run ---------------------------------------------------------------------------------

async function main() {
  const started = new Date();
  log('command:', command);
  if (!existsSync(SERVER)) throw new Error(`no server binary at ${SERVER}: cargo build --release -p server`);
  const chromiumVersion = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8' }).trim();
  const playwrightArgs = await playwrightDefaultArgs();
  log(chromiumVersion);

  // The pages: feed-client.js from web/ unchanged, next to this benchmark's client page.
  const webDir = mkdtempSync(path.join(os.tmpdir(), 'feedlab-bg-web-'));
  const resultsDir = mkdtempSync(path.join(os.tmpdir(), 'feedlab-bg-results-'));
  cpSync(path.join(ROOT, 'web/feed-client.js'), path.join(webDir, 'feed-client.js'));
  cpSync(path.join(HERE, 'page'), webDir, { recursive: true });

  const entries = [];
  for (const variant of VARIANTS) {
    for (const page of PAGES) entries.push({ variant, ...page, id: `${variant}-${page.mode}-${page.transport}` });
  }
  const probes = [
    { variant: 'probe', name: 'timer probe', mode: 'probe', transport: null, id: 'probe' },
    { variant: 'probe', name: 'timer probe + open WebSocket', mode: 'probe', transport: null, id: 'probe-ws', ws: true },
  ];
  const all = [...entries, ...probes];
  for (const e of all) e.server = await startServer(webDir, resultsDir);
  log(`${all.length} servers up`);

  const { browser, child, userDataDir, cmdline, stderr: chromeStderr } = await startChromium();
  const context = browser.contexts()[0];
  const bcdp = await browser.newBrowserCDPSession();
  log('chromium pid', child.pid);

  // Each page in its own window, with a blank tab behind it to switch to.
  for (const e of all) {
    const q = new URLSearchParams({ mode: e.mode, client: e.id.replace(/[^A-Za-z0-9_-]/g, '-') });
    if (e.transport) q.set('transport', e.transport);
    if (e.mode !== 'probe') q.set('since', '0');
    if (e.ws) q.set('ws', '1');
    const url = `${e.server.url}client.html?${q}`;
    const pageEvent = context.waitForEvent('page');
    const { targetId } = await bcdp.send('Target.createTarget', { url, newWindow: true });
    e.page = await pageEvent;
    e.targetId = targetId;
    e.cdp = await context.newCDPSession(e.page);
    e.console = [];
    e.page.on('console', (m) => e.console.push({ at: Date.now(), type: m.type(), text: m.text() }));
    e.windowId = (await e.cdp.send('Browser.getWindowForTarget')).windowId;
    const blankEvent = context.waitForEvent('page');
    const blank = await bcdp.send('Target.createTarget', { url: 'about:blank', background: true, windowId: e.windowId });
    const blankPage = await blankEvent;
    const blankCdp = await context.newCDPSession(blankPage);
    e.blankId = blank.targetId;
    e.blankWindowId = (await blankCdp.send('Browser.getWindowForTarget')).windowId;
    await blankCdp.detach();
    await e.page.waitForFunction(() => window.bg !== undefined, null, { timeout: 15_000 });
    if (e.blankWindowId !== e.windowId) throw new Error(`${e.id}: the blank tab opened in another window`);
  }
  const ports = all.map((e) => e.server.port);
  const sockets = startSocketSampler(ports);

  /** What the page says about itself; `null` when it cannot answer (frozen) within 3 s. */
  const pageState = (e) =>
    Promise.race([
      e.page.evaluate(() => ({
        visibility: document.visibilityState,
        hidden: document.hidden,
        hasFocus: document.hasFocus(),
        wasDiscarded: document.wasDiscarded,
        at: Date.now(),
      })),
      sleep(3000).then(() => null),
    ]).catch((err) => ({ error: String(err) }));

  const boundaries = [];
  const mark = async (name) => {
    const at = Date.now();
    sockets.sample();
    const snap = { name, at, servers: {}, pages: {} };
    await Promise.all(
      all.map(async (e) => {
        snap.servers[e.id] = await stats(e.server);
        snap.pages[e.id] = await pageState(e);
      }),
    );
    boundaries.push(snap);
    const vis = [...new Set(Object.values(snap.pages).map((p) => (p ? p.visibility ?? p.error : 'no answer (frozen?)')))];
    log(`mark ${name}: pages report ${vis.join(', ')}`);
    return snap;
  };

  // Publishing: one event every publishEveryMs to each busy server.
  const publishes = Object.fromEntries(entries.filter((e) => e.variant === 'busy').map((e) => [e.id, []]));
  let publishing = true;
  let n = 0;
  const publisher = (async () => {
    let next = Date.now();
    while (publishing) {
      n += 1;
      const sentMs = Date.now();
      await Promise.all(
        entries
          .filter((e) => e.variant === 'busy')
          .map(async (e) => {
            const res = await request(new URL('publish', e.server.url), {
              method: 'POST',
              body: JSON.stringify({ n, sent_ms: sentMs }),
            });
            publishes[e.id].push({ seq: JSON.parse(res.body).seq, at: sentMs });
          }),
      );
      next += settings.publishEveryMs;
      await sleep(Math.max(0, next - Date.now()));
    }
  })();

  const stages = [];
  const stage = (name, from, to, extra = {}) => stages.push({ name, from, to, ...extra });
  const lifecycle = [];
  const cdpAll = async (what, fn) => {
    const at = Date.now();
    await Promise.all(all.map(fn));
    lifecycle.push({ what, at, done: Date.now() });
    log(what);
  };

  // 1. visible
  const m0 = await mark('start');
  await sleep(settings.visibleS * 1000);
  // 2. hidden: the window's active tab becomes the blank one (what a user switching tabs does).
  await cdpAll('hide: Target.activateTarget(blank tab) in every window', (e) =>
    bcdp.send('Target.activateTarget', { targetId: e.blankId }),
  );
  const m1 = await mark('hidden');
  stage('visible', m0.at, m1.at);
  const split = Math.min(settings.hiddenSplitS, settings.hiddenS);
  await sleep(split * 1000);
  const m2 = await mark('hidden+5min');
  stage('hidden 0–5 min', m1.at, m2.at);
  let m3 = m2;
  if (settings.hiddenS > split) {
    await sleep((settings.hiddenS - split) * 1000);
    m3 = await mark('hidden-end');
    stage('hidden after 5 min', m2.at, m3.at);
  }
  // Read the pages' logs once before freezing, in case they never come back.
  const beforeFreeze = {};
  for (const e of all) beforeFreeze[e.id] = await e.page.evaluate(() => ({ ...window.bg, cursor: window.bg.cursor?.() ?? null }));
  // 3. frozen, still hidden
  await cdpAll("freeze: Page.setWebLifecycleState {state:'frozen'}", (e) =>
    e.cdp.send('Page.setWebLifecycleState', { state: 'frozen' }),
  );
  const m4 = await mark('frozen');
  await sleep(settings.frozenS * 1000);
  // 4. back: unfrozen and shown again
  const m5 = await mark('frozen-end');
  stage('frozen', m4.at, m5.at);
  await cdpAll("back: Page.setWebLifecycleState {state:'active'}, then Target.activateTarget(page)", async (e) => {
    await e.cdp.send('Page.setWebLifecycleState', { state: 'active' });
    await bcdp.send('Target.activateTarget', { targetId: e.targetId });
  });
  const backAt = lifecycle.at(-1).at;
  const m6 = await mark('back');
  await sleep(settings.backS * 1000);
  publishing = false;
  await publisher;
  const m7 = await mark('end');
  stage('back', backAt, m7.at);
  sockets.sample();
  sockets.stop();

  const pageLogs = {};
  for (const e of all) pageLogs[e.id] = await e.page.evaluate(() => ({ ...window.bg, cursor: window.bg.cursor?.() ?? null }));
  await browser.close().catch(() => {});
  const exited = new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
  for (const e of all) e.server.child.kill('SIGTERM');
  await sleep(500);
  try {
    rmSync(userDataDir, { recursive: true, force: true, maxRetries: 5 });
  } catch (err) {
    log(`could not remove ${userDataDir}: ${err.message}`);
  }
  rmSync(webDir, { recursive: true, force: true });
  rmSync(resultsDir, { recursive: true, force: true });

  // --- figures per page × stage -------------------------------------------------------------
  const at = (name) => boundaries.find((b) => b.name === name);
  const snapAt = (t) => boundaries.reduce((best, b) => (Math.abs(b.at - t) < Math.abs(best.at - t) ? b : best));
  const results = [];
  for (const e of all) {
    const pl = pageLogs[e.id];
    const pubs = publishes[e.id] ?? [];
    const pubAt = new Map(pubs.map((p) => [p.seq, p.at]));
    const rows = [];
    for (const s of stages) {
      const minutes = (s.to - s.from) / 60_000;
      const a = snapAt(s.from);
      const b = snapAt(s.to);
      const t = e.transport;
      const sa = t ? a.servers[e.id].transports[t] : null;
      const sb = t ? b.servers[e.id].transports[t] : null;
      const statsOwn = b.servers[e.id].connections.accepted - a.servers[e.id].connections.accepted;
      const sock = sockets.window(e.server.port, s.from, s.to);
      const published = pubs.filter((p) => p.at >= s.from && p.at < s.to);
      const received = pl.events.filter((x) => x.at >= s.from && x.at < s.to);
      const publishedSeqs = new Set(published.map((p) => p.seq));
      const receivedInStage = new Set(received.map((x) => x.seq));
      const delays = received
        .map((x) => x.at - (pubAt.get(x.seq) ?? x.sentMs ?? x.at))
        .sort((p, q) => p - q);
      const sent = pl.requests.filter((r) => r.type === 'sent' && r.at >= s.from && r.at < s.to);
      const ticks = pl.ticks.filter((x) => x >= s.from && x < s.to);
      const gaps = ticks.slice(1).map((x, i) => x - ticks[i]).sort((p, q) => p - q);
      rows.push({
        stage: s.name,
        from: s.from,
        to: s.to,
        minutes,
        server: t
          ? {
              requests: sb.requests - sa.requests,
              events_delivered: sb.events_delivered - sa.events_delivered,
              empty_responses: sb.empty_responses - sa.empty_responses,
              bytes_written: sb.bytes_written - sa.bytes_written,
              messages_received: sb.messages_received - sa.messages_received,
              open_at_end: sb.open,
              // minus the benchmark's own /stats and /publish connections (one each, no keep-alive)
              tcp_connections_accepted_from_browser:
                statsOwn - countOwn(boundaries, a, b) - published.length,
            }
          : null,
        sockets: sock,
        page: {
          requests_sent: sent.length,
          events_published: published.length,
          events_received: received.length,
          published_in_stage_received_in_stage: published.filter((p) => receivedInStage.has(p.seq)).length,
          received_late_from_earlier_stages: received.filter((x) => !publishedSeqs.has(x.seq) && (pubAt.get(x.seq) ?? Infinity) < s.from).length,
          gaps: received.reduce((sum, x) => sum + (x.gap || 0), 0),
          duplicates: received.filter((x) => x.duplicate).length,
          delay_ms: delays.length
            ? { p50: delays[Math.floor(delays.length / 2)], max: delays.at(-1), min: delays[0] }
            : null,
          timer_ticks: ticks.length,
          timer_gap_ms: gaps.length ? { p50: gaps[Math.floor(gaps.length / 2)], max: gaps.at(-1) } : null,
        },
      });
    }
    // Catching up on return: the newest event published before `back`, and when the page had it.
    let catchUp = null;
    if (pubs.length) {
      const head = pubs.filter((p) => p.at < backAt).at(-1);
      const got = pl.events.find((x) => x.seq >= head.seq && x.at >= backAt);
      const missedWhileFrozen = pubs.filter((p) => p.at >= m4.at && p.at < backAt);
      const deliveredWhileFrozen = pl.events.filter((x) => x.at >= m4.at && x.at < backAt).length;
      const frozenSeqs = new Set(missedWhileFrozen.map((p) => p.seq));
      const resumed = pl.events.filter((x) => frozenSeqs.has(x.seq) && x.at >= backAt);
      const receivedSeqs = new Set(pl.events.map((x) => x.seq));
      catchUp = {
        head_seq_at_back: head.seq,
        caught_up_ms: got ? got.at - backAt : null,
        published_while_frozen: missedWhileFrozen.length,
        received_while_frozen_by_page_clock: deliveredWhileFrozen,
        resumed_after_back: resumed.length,
        never_received: pubs.filter((p) => p.at < m7.at - 5000 && !receivedSeqs.has(p.seq)).length,
      };
    }
    results.push({
      id: e.id,
      variant: e.variant,
      name: e.name,
      transport: e.transport,
      mode: e.mode,
      stages: rows,
      catch_up: catchUp,
      lifecycle: pl.lifecycle,
      states: pl.states,
      missed_notices: pl.missed,
      errors: pl.errors,
      events_total: pl.events.length,
      console: e.console,
      sockets: sockets.dump()[e.server.port].map((x) => ({
        local: x.local,
        first_seen: x.firstSeen,
        last_seen: x.lastSeen,
        last: x.samples.at(-1),
      })),
      ticks: e.mode === 'probe' ? pl.ticks : undefined,
      requests_log: pl.requests.filter((r) => r.type === 'sent').map((r) => r.at),
      events_log: pl.events.map((x) => [x.seq, x.at]),
    });
  }

  const report = {
    title: 'Background tabs in a real browser (issue #27, item 5)',
    command,
    date: started.toISOString(),
    finished: new Date().toISOString(),
    commit: git('rev-parse', 'HEAD'),
    branch: git('rev-parse', '--abbrev-ref', 'HEAD'),
    machine: machine(),
    chromium: { version: chromiumVersion, cmdline, playwright_default_cmdline: playwrightArgs, removed: THROTTLING_OFF },
    playwright_core: require('playwright-core/package.json').version,
    settings,
    headed: HEADED,
    display: HEADED ? process.env.DISPLAY ?? null : null,
    hidden_how: 'each page in its own window with a blank tab behind it; Target.activateTarget(blank) makes the page an inactive tab',
    frozen_how: "Page.setWebLifecycleState {state:'frozen'} on the page's CDP session, while hidden; back: {state:'active'} then Target.activateTarget(page)",
    lifecycle,
    boundaries: boundaries.map((b) => ({
      name: b.name,
      at: b.at,
      pages: b.pages,
      feed_head: Object.fromEntries(Object.entries(b.servers).map(([k, v]) => [k, v.feed.head])),
    })),
    stages,
    results,
    chromium_stderr_tail: chromeStderr().slice(-3000),
  };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(path.join(OUT, 'results.json'), `${JSON.stringify(report, null, 1)}\n`);
  writeFileSync(path.join(OUT, 'report.md'), renderReport(report));
  log(`wrote ${path.join(OUT, 'report.md')} and results.json in ${Math.round((Date.now() - started) / 1000)} s`);
  process.exit(0);
}

/** The benchmark's own /stats connections to one server between two marks: one per mark. */
function countOwn(boundaries, a, b) {
  return boundaries.filter((x) => x.at >= a.at && x.at < b.at).length;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
