// The live page: four panes driven by one client module, one render function, one timeline.
//
// Everything a pane shows comes either from its own `FeedClient` (events, seqs, gaps, latency)
// or from the server's accounting for this page's client id (requests, empty responses, bytes),
// because a browser cannot see an EventSource's bytes or a WebSocket's framing. All four panes
// are built from one template and rendered by one function, so any difference on screen comes
// from the transport, never from the page.

import { FeedClient, TRANSPORTS } from './feed-client.js';
import { expectedAccept } from './handshake.js';
import { LatencyChart } from './latency-chart.js';
import { LatencyHistogram, formatBytes, formatMicros, wallClockMicros } from './stats.js';
import { Timeline } from './timeline.js';

const TITLES = {
  'short-poll': 'Short polling',
  'long-poll': 'Long polling',
  sse: 'Server-Sent Events',
  ws: 'WebSocket',
};
const SHORT_LABELS = { 'short-poll': 'short poll', 'long-poll': 'long poll', sse: 'SSE', ws: 'WebSocket' };
/** The page's own ceilings for the ticker, below the server's: the page is for watching, not load. */
const PAGE_MAX_RATE = 1000;
const PAGE_MAX_PAYLOAD = 256 * 1024;
const STATS_PERIOD_MS = 1000;
const RENDER_PERIOD_MS = 250;
/** The feed inputs are refreshed from `GET /control` every this many stats rounds. */
const CONTROL_REFRESH_ROUNDS = 5;

const $ = (selector, root = document) => root.querySelector(selector);
const clientId = randomClientId();

/** What the page knows about one transport; the panes are drawn from this alone. */
function newModel() {
  return {
    state: 'connecting',
    detail: '',
    received: 0,
    gaps: 0,
    duplicates: 0,
    reconnects: 0,
    opened: false,
    lastSeq: null,
    latencyNow: null,
    latency: new LatencyHistogram(),
    lastMessage: '',
    /** The server's counters for this page's connections of this transport, and their value at the last reset. */
    server: null,
    baseline: null,
  };
}

const models = new Map(TRANSPORTS.map((t) => [t, newModel()]));
const panes = new Map();
const clients = new Map();
let timeline;
let chart;
/** The last message published each way (`ws`, `http`), to compare the two side by side. */
const publishes = new Map();

main().catch((err) => {
  document.body.prepend(banner(`The page failed to start: ${err.message}`));
  throw err;
});

async function main() {
  $('#client-id').textContent = clientId;
  const colors = transportColors();
  const lanes = TRANSPORTS.map((t) => ({ key: t, label: SHORT_LABELS[t], color: colors[t] }));

  for (const transport of TRANSPORTS) panes.set(transport, buildPane(transport));
  timeline = new Timeline($('#timeline'), {
    lanes: [...lanes, { key: 'publish', label: 'POST /publish', color: colors.publish }],
    caption: $('#timeline-title'),
  });
  chart = new LatencyChart($('#latency-chart'), { series: lanes });

  const [control, head] = await Promise.all([loadControl(), feedHead(), showLatestReport()]);
  const pollIntervalMs = Number($('#poll-interval').value);
  const longPollTimeoutMs = Number($('#long-poll-timeout').value);

  for (const transport of TRANSPORTS) {
    const model = models.get(transport);
    const client = new FeedClient({
      transport,
      clientId,
      // All four start from the same seq, so their counts stay comparable.
      since: head,
      pollIntervalMs,
      longPollTimeoutMs,
      onEvent: (event, info) => onEvent(transport, event, info),
      onMissed: ({ missed }) => {
        model.gaps += missed;
      },
      onState: (state, detail) => onState(transport, state, detail),
      onRequest: (r) => timeline.record(r.kind === 'publish' ? 'publish' : transport, r),
    });
    clients.set(transport, client);
  }
  wireControls(control);
  wirePublish();
  for (const client of clients.values()) client.start();

  timeline.start();
  chart.start();
  setInterval(renderAll, RENDER_PERIOD_MS);
  renderAll();
  pollServerStats();
}

// --- events from the clients ---------------------------------------------------------------

function onEvent(transport, event, { gap, duplicate }) {
  const model = models.get(transport);
  if (duplicate) {
    model.duplicates += 1;
    return;
  }
  const latency = wallClockMicros() - event.ts;
  model.received += 1;
  model.gaps += gap;
  model.lastSeq = event.seq;
  model.latencyNow = latency;
  model.latency.record(latency);
  chart.record(transport, event.seq, event.ts, latency);

  const data = event.data;
  if (data?.source !== 'ticker') {
    model.lastMessage = typeof data?.text === 'string' ? data.text : JSON.stringify(data);
    const published = publishes.get(data?.via);
    if (published && data.nonce === published.nonce && published.seen[transport] === undefined) {
      published.seen[transport] = performance.now() - published.sentAt;
      showPublishResults();
    }
  }
}

function onState(transport, state, detail) {
  const model = models.get(transport);
  if (state === 'open') {
    if (model.opened && model.state !== 'open') model.reconnects += 1;
    model.opened = true;
  }
  model.state = state;
  model.detail =
    state === 'retrying' && detail.delayMs !== undefined
      ? `retry in ${(detail.delayMs / 1000).toFixed(1)} s: ${detail.reason}`
      : (detail.reason ?? '');
  renderPane(transport);
}

// --- panes -----------------------------------------------------------------------------------

function buildPane(transport) {
  const pane = $('#pane-template').content.firstElementChild.cloneNode(true);
  pane.dataset.transport = transport;
  $('.pane-title', pane).textContent = TITLES[transport];
  const fields = new Map([...pane.querySelectorAll('[data-field]')].map((el) => [el.dataset.field, el]));

  const pause = $('[data-action="pause"]', pane);
  const drop = $('[data-action="drop"]', pane);
  pause.addEventListener('click', () => {
    const client = clients.get(transport);
    if (!client) return;
    if (client.state === 'paused') client.resume();
    else client.pause();
  });
  drop.addEventListener('click', () => clients.get(transport)?.drop());

  $('#panes').append(pane);
  return { element: pane, fields, pause, drop };
}

function renderAll() {
  for (const transport of TRANSPORTS) renderPane(transport);
}

/** The one render function: the same words and figures for every transport. */
function renderPane(transport) {
  const { element, fields, pause, drop } = panes.get(transport);
  const m = models.get(transport);
  const server = serverFigures(m);
  const set = (name, text) => {
    const el = fields.get(name);
    if (el && el.textContent !== text) el.textContent = text;
  };
  // "3.74 ms": the unit in a smaller type, so four figures fit side by side on a laptop.
  const setQuantity = (name, text) => {
    const el = fields.get(name);
    if (!el || el.textContent === text) return;
    const split = text.lastIndexOf(' ');
    if (split < 0) {
      el.textContent = text;
      return;
    }
    const unit = document.createElement('span');
    unit.className = 'unit';
    unit.textContent = text.slice(split);
    el.replaceChildren(text.slice(0, split), unit);
  };

  element.dataset.state = m.state;
  set('state', m.state);
  set('state-detail', m.detail);
  set('how', howText(transport));
  set('received', count(m.received));
  set('last-seq', m.lastSeq === null ? '–' : String(m.lastSeq));
  set('gaps', count(m.gaps));
  set('duplicates', count(m.duplicates));
  setQuantity('latency-now', formatMicros(m.latencyNow));
  setQuantity('latency-p50', formatMicros(m.latency.quantile(0.5)));
  setQuantity('latency-p99', formatMicros(m.latency.quantile(0.99)));
  set('reconnects', count(m.reconnects));
  set('requests', server ? count(server.requests) : '–');
  set('empty', server ? count(server.empty_responses) : '–');
  setQuantity('bytes', server ? formatBytes(server.bytes_written) : '–');
  setQuantity(
    'bytes-per-event',
    server && server.events_delivered > 0 ? formatBytes(server.bytes_written / server.events_delivered) : '–',
  );
  set('open', server ? count(server.open) : '–');
  set('last-message', m.lastMessage);
  element.classList.toggle('has-gaps', m.gaps > 0 || m.duplicates > 0);

  const paused = m.state === 'paused';
  const pauseText = paused ? 'Resume' : 'Pause';
  if (pause.textContent !== pauseText) pause.textContent = pauseText;
  pause.setAttribute('aria-pressed', String(paused));
  drop.disabled = paused || m.state === 'closed';
}

/** The server's counters since the last reset; `open` is a gauge and is not reset. */
function serverFigures(m) {
  if (!m.server) return null;
  if (!m.baseline) return m.server;
  const delta = { ...m.server };
  for (const key of ['requests', 'empty_responses', 'bytes_written', 'events_delivered']) {
    delta[key] = m.server[key] - m.baseline[key];
  }
  return delta;
}

function howText(transport) {
  const client = clients.get(transport);
  switch (transport) {
    case 'short-poll':
      return `GET /poll?since=N every ${seconds(client?.pollIntervalMs)}`;
    case 'long-poll':
      return `GET /long-poll?since=N, held ≤ ${seconds(client?.longPollTimeoutMs)}`;
    case 'sse':
      return 'GET /sse: one response that never ends';
    case 'ws':
      return 'GET /ws → 101, then frames both ways';
  }
  return '';
}

// --- the server's view: per-client counters and the WebSocket handshake ----------------------

async function pollServerStats() {
  let shownKey = null;
  for (let round = 1; ; round += 1) {
    await sleep(STATS_PERIOD_MS);
    // Another page (or curl) may change the ticker too; keep the inputs honest.
    if (round % CONTROL_REFRESH_ROUNDS === 0) refreshControlInputs();
    // The server knows this client only once one of its requests has arrived.
    if (![...models.values()].some((m) => m.opened)) continue;
    let report;
    try {
      const res = await fetch(`stats/client/${clientId}`, { cache: 'no-store' });
      if (!res.ok) continue;
      report = await res.json();
    } catch {
      continue; // The server is away; the panes already say so.
    }
    for (const transport of TRANSPORTS) {
      const counters = report.transports?.[transport];
      if (counters) models.get(transport).server = counters;
    }
    const handshake = report.ws_handshake;
    if (handshake?.key && handshake.key !== shownKey) {
      shownKey = handshake.key;
      await showHandshake(handshake);
    }
  }
}

async function showHandshake({ key, accept }) {
  const panel = $('[data-panel="ws-handshake"]');
  const field = (name) => $(`[data-field="${name}"]`, panel);
  const computed = await expectedAccept(key);
  const ok = computed === accept;
  field('ws-key').textContent = key;
  field('ws-accept').textContent = accept;
  field('ws-accept-computed').textContent = computed;
  const check = field('ws-accept-check');
  check.textContent = ok ? '✓ matches' : '✗ does not match';
  check.dataset.ok = String(ok);
}

// --- controls --------------------------------------------------------------------------------

async function loadControl() {
  try {
    const res = await fetch('control', { cache: 'no-store' });
    if (!res.ok) return null;
    return await res.json();
  } catch {
    return null;
  }
}

/** The seq every client starts after; `null` (from now on) if the server cannot say. */
async function feedHead() {
  try {
    const res = await fetch('stats', { cache: 'no-store' });
    if (!res.ok) return null;
    const head = (await res.json()).feed?.head;
    return Number.isInteger(head) ? head : null;
  } catch {
    return null;
  }
}

async function showLatestReport() {
  const link = $('#report-link');
  try {
    const res = await fetch('results/index.json', { cache: 'no-store' });
    if (!res.ok) return;
    const reports = await res.json();
    const latest = Array.isArray(reports) ? reports.find((r) => r.html || r.md) : null;
    if (!latest) return;
    const path = latest.html ?? latest.md;
    if (typeof path !== 'string' || !path.startsWith('/results/')) return;
    // The index gives absolute paths; keep them relative to the page, as every other URL is.
    link.href = path.slice(1);
    link.textContent = `Latest report: ${latest.name}`;
    link.hidden = false;
  } catch {
    // No reports: the link stays hidden.
  }
}

async function refreshControlInputs() {
  const control = await loadControl();
  if (!control) return;
  for (const [input, value] of [[$('#rate'), control.rate], [$('#payload'), control.payload_bytes]]) {
    if (document.activeElement !== input) input.value = String(value);
  }
}

function wireControls(control) {
  const rate = $('#rate');
  const payload = $('#payload');
  const note = $('#control-note');
  const pollInterval = $('#poll-interval');
  const longPollTimeout = $('#long-poll-timeout');

  if (control) {
    rate.max = String(Math.min(PAGE_MAX_RATE, control.max_rate ?? PAGE_MAX_RATE));
    payload.max = String(Math.min(PAGE_MAX_PAYLOAD, control.max_payload_bytes ?? PAGE_MAX_PAYLOAD));
    rate.value = String(control.rate);
    payload.value = String(control.payload_bytes);
    if (control.long_poll_max_ms) longPollTimeout.max = String(control.long_poll_max_ms);
  }
  const enabled = Boolean(control?.control_enabled);
  rate.disabled = payload.disabled = !enabled;
  if (!enabled) {
    note.textContent = control
      ? 'The server does not let pages change its feed (--feed-control).'
      : 'The server did not answer GET /control.';
    note.hidden = false;
  }

  const change = async (input, key) => {
    if (!input.reportValidity()) return;
    try {
      const res = await fetch('control', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ [key]: Number(input.value) }),
      });
      const body = await res.json();
      if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
      rate.value = String(body.rate);
      payload.value = String(body.payload_bytes);
      note.hidden = true;
    } catch (err) {
      note.textContent = `Not changed: ${err.message}`;
      note.hidden = false;
    }
  };
  rate.addEventListener('change', () => change(rate, 'rate'));
  payload.addEventListener('change', () => change(payload, 'payload_bytes'));

  pollInterval.addEventListener('change', () => {
    if (pollInterval.reportValidity()) clients.get('short-poll').configure({ pollIntervalMs: Number(pollInterval.value) });
  });
  longPollTimeout.addEventListener('change', () => {
    if (longPollTimeout.reportValidity()) {
      clients.get('long-poll').configure({ longPollTimeoutMs: Number(longPollTimeout.value) });
    }
  });
  $('#controls').addEventListener('submit', (e) => e.preventDefault());

  $('#reset-figures').addEventListener('click', () => {
    for (const m of models.values()) {
      Object.assign(m, { received: 0, gaps: 0, duplicates: 0, reconnects: 0, latencyNow: null });
      m.latency.reset();
      m.baseline = m.server;
    }
    chart.clear();
    renderAll();
  });
}

// --- publishing ------------------------------------------------------------------------------

function wirePublish() {
  const form = $('#publish');
  const text = $('#publish-text');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const via = e.submitter?.dataset.via ?? 'ws';
    const nonce = randomToken(8);
    const data = { source: 'page', client: clientId, via, nonce, text: text.value };
    const mine = { nonce, sentAt: performance.now(), ackMs: null, seq: null, error: null, seen: {} };
    publishes.set(via, mine);
    showPublishResults();
    try {
      // The WebSocket pane publishes on its own connection; the one-way transports need a
      // separate request, which the SSE client makes as any of them would.
      const { seq } = await clients.get(via === 'ws' ? 'ws' : 'sse').publish(data);
      mine.seq = seq;
      mine.ackMs = performance.now() - mine.sentAt;
    } catch (err) {
      mine.error = err.message;
    }
    showPublishResults();
  });
}

/** One line per way of publishing: acknowledged after how long, and seen by each pane when. */
function showPublishResults() {
  const out = $('#publish-result');
  out.replaceChildren();
  for (const [via, how] of [['ws', 'WebSocket message'], ['http', 'POST /publish']]) {
    const p = publishes.get(via);
    if (!p) continue;
    const line = document.createElement('p');
    line.dataset.via = via;
    const head = document.createElement('strong');
    head.textContent = how;
    let status;
    if (p.error) status = ` failed: ${p.error}`;
    else if (p.seq === null) status = ' sent…';
    else status = `: seq ${p.seq}, acknowledged in ${formatMicros(p.ackMs * 1000)}`;
    const seen = TRANSPORTS.map((t) =>
      p.seen[t] === undefined ? `${SHORT_LABELS[t]} …` : `${SHORT_LABELS[t]} +${formatMicros(p.seen[t] * 1000)}`,
    );
    line.append(head, `${status}; seen by ${seen.join(' · ')}`);
    if (p.error) line.className = 'bad';
    out.append(line);
  }
}

// --- small helpers ---------------------------------------------------------------------------

function transportColors() {
  const style = getComputedStyle(document.documentElement);
  const color = (name) => style.getPropertyValue(`--${name}`).trim();
  return Object.fromEntries([...TRANSPORTS, 'publish'].map((t) => [t, color(t)]));
}

/** A fresh id per page load (the server accepts 1–64 of `[A-Za-z0-9_-]`). */
function randomClientId() {
  return `page-${randomToken(10)}`;
}

function randomToken(length) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

function count(n) {
  return n.toLocaleString('en-US');
}

function seconds(ms) {
  if (ms === undefined) return '…';
  return ms < 1000 ? `${ms} ms` : `${+(ms / 1000).toFixed(2)} s`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function banner(text) {
  const p = document.createElement('p');
  p.className = 'banner';
  p.textContent = text;
  return p;
}
