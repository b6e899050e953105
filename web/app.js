// The live page: a pane per transport driven by one client module, one render function, one
// timeline. The fifth, WebTransport, runs when the server's QUIC listener serves it (`--quic`);
// otherwise its pane is a strip that says why.
//
// Under the panes the transports are compared at a glance: what each event costs as bars on one
// axis per metric (`cost-chart.js`), latency on one chart (`latency-chart.js`), and the size of
// the feed's events as they arrived, since every per-event figure depends on it. The guidance at
// the bottom is tied to the measured reference run (`measured.js`).
//
// Under each pane's server counts, what that pane's own traffic would cost a phone's radio on a
// chosen profile, as the server's radio model computes it (`radio.js`): so a quiet feed shows
// its heartbeats, not its events, waking the radio.
//
// Everything a pane shows comes either from its own `FeedClient` (events, seqs, gaps, latency)
// or from the server's accounting for this page's client id (requests, empty responses, bytes),
// because a browser cannot see an EventSource's bytes or a WebSocket's framing. All the panes
// are built from one template and rendered by one function, so any difference on screen comes
// from the transport, never from the page.
//
// The clients run in this tab or, when the person chooses to share them across tabs, in a shared
// worker (`feed-source.js`); either reports the same way, so the panes are drawn the same. The
// "Tabs and connections" card says how many tabs of the page are open, what each way of running
// costs in connections, and, when a pane is `stalled` (`stall.js`), which limit was hit and how
// to lift it.

import { SESSION_TRANSPORTS, TRANSPORTS } from './feed-client.js';
import { openSource, sharedAvailable } from './feed-source.js';
import { expectedAccept } from './handshake.js';
import { CostChart } from './cost-chart.js';
import { LatencyChart } from './latency-chart.js';
import { loadReportIndex, showMeasured } from './measured.js';
import { DEFAULT_PROFILE, RADIO_PERIOD_MS, fetchRadio, radioWords } from './radio.js';
import { LatencyHistogram, formatBytes, formatMicros, perEvent, wallClockMicros } from './stats.js';
import {
  HTTP1_CONNECTIONS_PER_HOST,
  TabCensus,
  connectionPerRequest,
  onModeChange,
  pageProtocol,
  protocolName,
  readMode,
  writeMode,
} from './tabs.js';
import { Timeline } from './timeline.js';

const TITLES = {
  'short-poll': 'Short polling',
  'long-poll': 'Long polling',
  sse: 'Server-Sent Events',
  ws: 'WebSocket',
  wt: 'WebTransport',
};
const SHORT_LABELS = { 'short-poll': 'short poll', 'long-poll': 'long poll', sse: 'SSE', ws: 'WebSocket', wt: 'WebTransport' };
/** The page's own ceilings for the ticker, below the server's: the page is for watching, not load. */
const PAGE_MAX_RATE = 1000;
/** How each pane that does not `POST /publish` talks back. */
const TALK_HOW = { ws: 'a message on the open socket', wt: 'a stream of its own in the session' };
const PAGE_MAX_PAYLOAD = 256 * 1024;
const RENDER_PERIOD_MS = 250;
/** How often the feed inputs are refreshed from `GET /control`. */
const CONTROL_REFRESH_MS = 5000;

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
    /** Messages this pane sent its own way, and the last one: when, acknowledged, back, cost. */
    talk: { sent: 0, last: null },
  };
}

const models = new Map(TRANSPORTS.map((t) => [t, newModel()]));
const panes = new Map();
/** The clients this tab follows the feed with: its own `FeedSet`, or the shared worker's. */
let source = null;
let mode = readMode();
/** HTTP requests in flight, and how many of them are stalled, as the source last reported. */
let held = { inFlight: 0, stalled: 0 };
/** In shared mode: the shared worker's client id and how many tabs follow it. */
let shared = null;
let census;
let protocol = 'http/1.1';
let timeline;
let chart;
let costs;
/** The last ticker event received, measured: `{seq, dataBytes, envelopeBytes, padBytes}`. */
let eventSize = null;
/** The committed report the page compares with, once loaded (see `measured.js`). */
let reference = null;
let shownKey = null;
/** The last message published each way (`ws`, `http`), to compare the two side by side. */
const publishes = new Map();
/** The server's last answer to `GET /stats/client/ID/radio` for the chosen profile. */
let radio = null;

main().catch((err) => {
  document.body.prepend(banner(`The page failed to start: ${err.message}`));
  throw err;
});

async function main() {
  // The scripts arrived: the note about pages whose scripts never do can go.
  $('#boot-note')?.remove();
  $('#client-id').textContent = clientId;
  protocol = pageProtocol();
  census = new TabCensus({ id: clientId, onChange: renderTabs });
  const colors = transportColors();
  const lanes = TRANSPORTS.map((t) => ({ key: t, label: SHORT_LABELS[t], color: colors[t] }));

  for (const transport of TRANSPORTS) panes.set(transport, buildPane(transport));
  timeline = new Timeline($('#timeline'), {
    lanes: [...lanes, { key: 'publish', label: 'POST /publish', color: colors.publish }],
    caption: $('#timeline-title'),
  });
  chart = new LatencyChart($('#latency-chart'), { series: lanes, legend: $('#latency-legend') });
  costs = new CostChart($('#cost-chart'), { series: lanes });

  wireTabs();
  wireControls();
  wirePublish();
  wireRadio();
  // The clients start at once: over HTTP/1.1 the requests below may wait behind other tabs'
  // connections, and the panes must still come up and say so.
  openFeed();
  loadControl().then(fillControls);
  // One look at the reports for both the header's link and the measured guidance.
  loadReportIndex().then(async (reports) => {
    showLatestReport(reports);
    reference = await showMeasured({ panel: $('[data-panel="measured"]'), titles: TITLES, reports });
    renderAll();
  });
  setInterval(refreshControlInputs, CONTROL_REFRESH_MS);

  timeline.start();
  chart.start();
  setInterval(renderAll, RENDER_PERIOD_MS);
  renderAll();
}

/** Starts following the feed the way `mode` says, with fresh figures. */
function openFeed() {
  for (const t of TRANSPORTS) models.set(t, newModel());
  chart.clear();
  costs.reset();
  held = { inFlight: 0, stalled: 0 };
  shared = null;
  shownKey = null;
  radio = null;
  source = openSource(mode, {
    clientId,
    pollIntervalMs: Number($('#poll-interval').value),
    longPollTimeoutMs: Number($('#long-poll-timeout').value),
    onEvent,
    onMissed: (transport, { missed }) => {
      models.get(transport).gaps += missed;
    },
    onState,
    onRequest: (transport, r) => timeline.record(r.kind === 'publish' ? 'publish' : transport, r),
    onServer,
    onHeld: (h) => {
      held = h;
      renderTabs();
    },
    onShared: (s) => {
      shared = s;
      $('#client-id').textContent = s.clientId ?? '…';
      renderTabs();
    },
  });
  $('#client-id').textContent = mode === 'shared' ? '…' : clientId;
  source.start();
  renderAll();
  renderTabs();
}

function switchMode(next, { store }) {
  if (next === mode) return;
  if (store) writeMode(next);
  mode = next;
  source?.close();
  openFeed();
}

// --- events from the clients ---------------------------------------------------------------

function onEvent(transport, event, { gap, duplicate }) {
  const model = models.get(transport);
  if (duplicate) {
    model.duplicates += 1;
    return;
  }
  const latency = wallClockMicros() - event.ts;
  if (event.data?.source === 'ticker' && (eventSize === null || event.seq > eventSize.seq)) eventSize = measureEvent(event);
  model.received += 1;
  model.gaps += gap;
  model.lastSeq = event.seq;
  model.latencyNow = latency;
  model.latency.record(latency);
  chart.record(transport, event.seq, event.ts, latency);

  const data = event.data;
  if (data?.source !== 'ticker') {
    model.lastMessage = typeof data?.text === 'string' ? data.text : JSON.stringify(data);
    const talk = model.talk.last;
    if (talk && data?.via === transport && data.nonce === talk.nonce && talk.roundTripMs === null) {
      talk.roundTripMs = performance.now() - talk.sentAt;
    }
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
    // A stalled request that finally got its connection is not a reconnection.
    if (model.opened && model.state !== 'open' && model.state !== 'stalled') model.reconnects += 1;
    model.opened = true;
  }
  const stallChanged = (state === 'stalled') !== (model.state === 'stalled');
  model.state = state;
  model.detail =
    state === 'retrying' && detail.delayMs !== undefined
      ? `retry in ${(detail.delayMs / 1000).toFixed(1)} s: ${detail.reason}`
      : (detail.reason ?? '');
  renderPane(transport);
  // The message about the limit comes and goes with the stalled panes, not a second later.
  if (stallChanged) renderTabs();
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
    if (models.get(transport).state === 'paused') source?.resume(transport);
    else source?.pause(transport);
  });
  drop.addEventListener('click', () => source?.drop(transport));
  const send = $('[data-action="send"]', pane);
  send.addEventListener('click', () => talkBack(transport));

  $('#panes').append(pane);
  return { element: pane, fields, pause, drop, send };
}

function renderAll() {
  for (const transport of TRANSPORTS) renderPane(transport);
  costs.render(new Map(TRANSPORTS.map((t) => [t, perEvent(serverFigures(models.get(t)))])));
  showFollowed();
  renderEventSize();
}

/** The charts show the transports this page follows: one it cannot (its pane says why) is left out. */
function showFollowed() {
  for (const el of document.querySelectorAll('#cost-chart .cost-row[data-transport], #latency-legend [data-series]')) {
    const hide = models.get(el.dataset.transport ?? el.dataset.series)?.state === 'unavailable';
    if ((el.style.display === 'none') !== hide) el.style.display = hide ? 'none' : '';
  }
}

/**
 * The size of the feed's own events as they arrived, and how it differs from the reference run's:
 * bytes per event depend on it, so the page's figures and the report's differ with it.
 */
function renderEventSize() {
  const el = $('[data-field="payload-size"]');
  const text = eventSize
    ? `Events of this feed carry ${formatBytes(eventSize.dataBytes)} of data (${formatBytes(eventSize.padBytes)} of it padding, ` +
      `the payload setting), ${formatBytes(eventSize.envelopeBytes)} with the {seq, ts, data} envelope: measured from seq ` +
      `${eventSize.seq} as it arrived.`
    : 'Event size: waiting for the first event of the feed.';
  if (el.textContent !== text) el.textContent = text;
  el.dataset.seq = eventSize ? String(eventSize.seq) : '';
  el.dataset.envelopeBytes = eventSize ? String(eventSize.envelopeBytes) : '';
  el.dataset.dataBytes = eventSize ? String(eventSize.dataBytes) : '';

  const note = $('[data-field="reference-note"]');
  const ref = reference?.figures;
  const refText = ref
    ? `Not the report's figures: the reference run (${reference.name}) sent ${formatBytes(ref.dataBytes)} of data per event ` +
      `to ${ref.clients} clients per transport at ${ref.rate} events/s and counts bytes both ways, so its bytes per ` +
      `event differ from these; its figures are under "What each one costs".`
    : '';
  if (note.textContent !== refText) note.textContent = refText;
  note.hidden = refText === '';
}

/**
 * Bytes of one event as the server sent it. The server writes compact JSON and `JSON.stringify`
 * writes the same bytes back for what the ticker sends (integers, ASCII strings, keys in order).
 */
function measureEvent(event) {
  const size = (v) => new TextEncoder().encode(JSON.stringify(v)).length;
  return {
    seq: event.seq,
    dataBytes: size(event.data),
    envelopeBytes: size({ seq: event.seq, ts: event.ts, data: event.data }),
    padBytes: typeof event.data.pad === 'string' ? event.data.pad.length : 0,
  };
}

/** The one render function: the same words and figures for every transport. */
function renderPane(transport) {
  const { element, fields, pause, drop, send } = panes.get(transport);
  const m = models.get(transport);
  const server = serverFigures(m);
  const set = (name, text) => {
    const el = fields.get(name);
    if (!el) return;
    el.classList.remove('pending');
    if (el.textContent !== text) el.textContent = text;
  };
  // A figure not known yet says why, in muted type, instead of a placeholder that looks broken.
  const pending = (name, text) => {
    const el = fields.get(name);
    if (!el) return;
    el.classList.add('pending');
    if (el.textContent !== text) el.textContent = text;
  };
  // "3.74 ms": the unit in a smaller type, so four figures fit side by side on a laptop.
  const setQuantity = (name, text) => {
    const el = fields.get(name);
    if (!el) return;
    el.classList.remove('pending');
    if (el.textContent === text) return;
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
  const noEvent = m.state === 'paused' ? 'paused' : 'no event yet';
  if (m.lastSeq === null) pending('last-seq', noEvent);
  else set('last-seq', String(m.lastSeq));
  set('gaps', count(m.gaps));
  set('duplicates', count(m.duplicates));
  for (const [name, us] of [
    ['latency-now', m.latencyNow],
    ['latency-p50', m.latency.quantile(0.5)],
    ['latency-p99', m.latency.quantile(0.99)],
  ]) {
    if (us === null) pending(name, noEvent);
    else setQuantity(name, formatMicros(us));
  }
  set('reconnects', count(m.reconnects));
  const cost = perEvent(server);
  if (cost) {
    set('requests', count(cost.requests));
    set('empty', count(server.empty_responses));
    setQuantity('bytes', formatBytes(cost.bytes));
    if (cost.bytesPerEvent === null) pending('bytes-per-event', 'no event yet');
    else setQuantity('bytes-per-event', formatBytes(cost.bytesPerEvent));
    set('open', count(server.open));
  } else {
    // `GET /stats/client/ID` has not answered yet (it asks once a second).
    for (const name of ['requests', 'empty', 'bytes', 'bytes-per-event']) pending(name, 'asking');
  }
  fields.get('open-note').hidden = !cost;
  renderRadio(transport, set, pending, setQuantity);
  set('last-message', m.lastMessage);
  const talk = m.talk.last;
  set('talk-how', TALK_HOW[transport] ?? 'a POST /publish of its own');
  set('talk-sent', count(m.talk.sent));
  if (!talk) {
    for (const name of ['talk-round-trip', 'talk-requests', 'talk-bytes-up']) pending(name, 'not sent');
  } else {
    if (talk.error) set('talk-round-trip', 'failed');
    else if (talk.roundTripMs === null) pending('talk-round-trip', 'on its way');
    else setQuantity('talk-round-trip', formatMicros(talk.roundTripMs * 1000));
    set('talk-requests', String(talk.requests));
    if (talk.bytesUp !== null) setQuantity('talk-bytes-up', formatBytes(talk.bytesUp));
    else pending('talk-bytes-up', talk.error ? 'not counted' : 'counting');
  }
  element.classList.toggle('has-gaps', m.gaps > 0 || m.duplicates > 0);

  const paused = m.state === 'paused';
  const pauseText = paused ? 'Resume' : 'Pause';
  if (pause.textContent !== pauseText) pause.textContent = pauseText;
  pause.setAttribute('aria-pressed', String(paused));
  const unavailable = m.state === 'unavailable';
  drop.disabled = paused || m.state === 'closed' || unavailable;
  pause.disabled = unavailable;
  send.disabled = unavailable;
}

/** The pane's radio figures: from the server's model of its own connection's traffic. */
function renderRadio(transport, set, pending, setQuantity) {
  const figures = radio?.transports?.[transport];
  set('radio-profile', radio?.profile?.name ?? $('#radio-profile').value);
  if (!figures) {
    const why = radio ? 'no traffic yet' : 'asking';
    for (const name of ['radio-wake-ups', 'radio-on', 'radio-energy', 'radio-woken-by']) pending(name, why);
    set('radio-window', why);
    set('radio-why', '');
    return;
  }
  const w = radioWords(transport, figures);
  setQuantity('radio-wake-ups', w.wakeUps);
  setQuantity('radio-on', w.radioOn);
  setQuantity('radio-energy', w.energy);
  set('radio-woken-by', w.wokenBy);
  set('radio-window', w.window);
  set('radio-why', w.why);
}

/** The profile selector, and the figures for this page's client id every few seconds. */
function wireRadio() {
  const select = $('#radio-profile');
  const ask = async () => {
    const id = mode === 'shared' ? shared?.clientId : clientId;
    if (!id) return;
    const asked = select.value || DEFAULT_PROFILE;
    const answer = await fetchRadio(id, asked);
    if (!answer || (select.value || DEFAULT_PROFILE) !== asked) return;
    radio = answer;
    fillProfiles(select, answer.profiles);
    const p = answer.profile;
    $('[data-field="radio-timers"]').textContent =
      `${p.title}. Timers: ${p.timers.replace(/^[^:]*: /, '')}.${p.estimate ? ' An estimate, not a published table.' : ''}`;
    renderAll();
  };
  select.addEventListener('change', () => {
    radio = null;
    renderAll();
    ask();
  });
  setInterval(ask, RADIO_PERIOD_MS);
}

/** The selector's options, once, from the server's list of profiles. */
function fillProfiles(select, profiles) {
  if (!profiles || select.dataset.filled) return;
  const chosen = select.value;
  select.replaceChildren(
    ...profiles.map((p) => {
      const option = document.createElement('option');
      option.value = p.name;
      option.textContent = p.estimate ? `${p.name} (estimate)` : p.name;
      option.title = p.title;
      return option;
    }),
  );
  select.value = chosen;
  select.dataset.filled = 'true';
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
  switch (transport) {
    case 'short-poll':
      return `GET /poll?since=N every ${seconds(Number($('#poll-interval').value))}`;
    case 'long-poll':
      return `GET /long-poll?since=N, held ≤ ${seconds(Number($('#long-poll-timeout').value))}`;
    case 'sse':
      return 'GET /sse: one response that never ends';
    case 'ws':
      return 'GET /ws → 101, then frames both ways';
    case 'wt':
      return 'CONNECT /wt over QUIC (UDP), then one stream of events';
  }
  return '';
}

// --- tabs: the census, the choice between own and shared connections, the stall message -----

function wireTabs() {
  for (const button of document.querySelectorAll('[data-mode]')) {
    button.addEventListener('click', () => switchMode(button.dataset.mode, { store: true }));
  }
  if (!sharedAvailable) {
    for (const button of document.querySelectorAll('button[data-mode="shared"]')) {
      button.disabled = true;
      button.title = 'This browser has no SharedWorker';
    }
  }
  // Another tab chose: follow it, since the limit is the profile's, not the tab's.
  onModeChange((next) => switchMode(next, { store: false }));
  setInterval(renderTabs, RENDER_PERIOD_MS * 4);
}

/** The "Tabs and connections" card, from the census and what the source holds. */
function renderTabs() {
  const card = $('[data-panel="tabs"]');
  if (!card || !census) return;
  const stalledPanes = TRANSPORTS.filter((t) => models.get(t).state === 'stalled');
  census.update({ mode, inFlight: mode === 'own' ? held.inFlight : 0, stalled: stalledPanes.length });
  const tabs = census.tabs();
  const ownTabs = tabs.filter((t) => t.mode === 'own');
  const sharedTabs = tabs.length - ownTabs.length;
  const wantedOwn = ownTabs.reduce((n, t) => n + t.inFlight, 0);
  // The shared worker's requests, as far as this tab knows them (it hears them only when sharing).
  const wanted = wantedOwn + (mode === 'shared' ? held.inFlight : 0);
  const perRequest = connectionPerRequest(protocol);
  const field = (name) => $(`[data-field="${name}"]`);
  const set = (name, text) => {
    const el = field(name);
    if (el.textContent !== text) el.textContent = text;
  };

  card.dataset.mode = mode;
  card.dataset.protocol = protocol;
  for (const choice of card.querySelectorAll('[data-choice]')) {
    const active = choice.dataset.choice === mode || (choice.dataset.choice === 'h2' && !perRequest);
    choice.classList.toggle('active', active);
  }
  for (const button of document.querySelectorAll('button[data-mode]')) {
    const current = button.dataset.mode === mode;
    button.setAttribute('aria-pressed', String(current));
    button.textContent = current ? 'In use' : button.dataset.label;
  }

  set(
    'tabs-status',
    `${plural(tabs.length, 'tab')} of this page open in this browser profile (${ownTabs.length} on their own ` +
      `connections, ${sharedTabs} sharing) · this page came over ${protocolName(protocol)}`,
  );

  const unit = perRequest ? 'request' : 'stream';
  const waitingNow = held.stalled > 0 ? ` (${held.stalled} waiting for a connection)` : '';
  const ownNow =
    mode === 'own' ? `This tab: ${plural(held.inFlight, 'HTTP request')} in flight now${waitingNow} + 1 WebSocket. ` : '';
  set(
    'cost-own',
    `${ownNow}Each tab: up to 4 HTTP requests at once (SSE stream and long poll held, short poll and ` +
      `stats brief) + 1 WebSocket.` +
      (perRequest && ownTabs.length > 0
        ? ` Now ${plural(ownTabs.length, 'tab')} on their own have ${plural(wantedOwn, 'request')} in flight, ` +
          `for the ${HTTP1_CONNECTIONS_PER_HOST} connections HTTP/1.1 allows.`
        : ''),
  );
  set(
    'cost-shared',
    mode === 'shared' && shared
      ? `In use: ${plural(held.inFlight, `HTTP ${unit}`)} in flight + 1 WebSocket for all ${plural(shared.tabs, 'tab')} that follow; each tab: 0.`
      : 'Up to 4 HTTP requests (2 held) + 1 WebSocket for all tabs together, however many; each tab: 0.',
  );
  set(
    'cost-h2',
    perRequest
      ? 'One TCP connection carries every HTTP request of every tab, plus 1 per WebSocket (the server speaks WebSocket over HTTP/1.1 only).'
      : `In use: this page came over ${protocolName(protocol)}; its HTTP requests are streams on one connection, plus 1 WebSocket per tab.`,
  );

  const alert = field('stall-message');
  const show = stalledPanes.length > 0;
  alert.hidden = !show;
  card.classList.toggle('stalled', show);
  if (show) {
    const names = stalledPanes.map((t) => SHORT_LABELS[t]).join(', ');
    const text = perRequest
      ? `This tab's requests are waiting for a connection the browser will not give. ` +
        `Over ${protocolName(protocol)} a browser opens at most ${HTTP1_CONNECTIONS_PER_HOST} connections to one server ` +
        `for all the tabs of a profile, and every SSE stream and held long poll keeps one for as long as it is open: ` +
        `${plural(tabs.length, 'tab')} of this page have ${plural(wanted, 'HTTP request')} in flight now. ` +
        `WebSockets are not counted against that limit, ` +
        `which is why the WebSocket pane keeps going. To lift it, share one set of connections across tabs, or open the page ` +
        `over HTTP/2 (server --tls-self-signed, then https://).`
      : `Requests are waiting for response headers while the server answers others. ` +
        `This page came over ${protocolName(protocol)}, so the browser's ${HTTP1_CONNECTIONS_PER_HOST}-connection limit ` +
        `does not apply; the server's limit on concurrent streams, or a proxy, may be holding them.`;
    set('stall-panes', `Stalled: ${names}.`);
    set('stall-text', text);
  }
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

// --- the server's view: per-client counters and the WebSocket handshake ----------------------

/** `GET /stats/client/ID` for the connections the panes follow, once a second. */
async function onServer(report) {
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

async function showHandshake({ key, accept }) {
  const panel = $('[data-panel="ws-handshake"]');
  const field = (name) => $(`[data-field="${name}"]`, panel);
  const computed = await expectedAccept(key);
  const ok = computed === accept;
  for (const name of ['ws-key', 'ws-accept', 'ws-accept-computed']) field(name).classList.remove('pending');
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

/** The header's link to the newest report; hidden when there is none. */
function showLatestReport(reports) {
  const link = $('#report-link');
  const latest = reports.find((r) => r.html || r.md);
  if (!latest) return;
  const path = latest.html ?? latest.md;
  if (typeof path !== 'string' || !path.startsWith('/results/')) return;
  // The index gives absolute paths; keep them relative to the page, as every other URL is.
  link.href = path.slice(1);
  link.textContent = `Latest report: ${latest.name}`;
  link.hidden = false;
}

let refreshing = false;
/** Changes this page sent with `POST /control`: a refresh that was asked before one is stale. */
let controlChanges = 0;

/** Another page (or curl) may change the ticker too; keep the inputs honest. */
async function refreshControlInputs() {
  // One at a time: in a tab whose requests are stalled, they would pile up in the browser's queue.
  if (refreshing) return;
  refreshing = true;
  const changesBefore = controlChanges;
  const control = await loadControl().finally(() => {
    refreshing = false;
  });
  // An answer from before this page's own change would put the old value back in the input.
  if (!control || controlChanges !== changesBefore) return;
  for (const [input, value] of [[$('#rate'), control.rate], [$('#payload'), control.payload_bytes]]) {
    if (document.activeElement !== input) input.value = String(value);
  }
}

/** The feed inputs as `GET /control` says, once it answers. */
function fillControls(control) {
  const rate = $('#rate');
  const payload = $('#payload');
  const note = $('#control-note');
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
}

function wireControls() {
  const rate = $('#rate');
  const payload = $('#payload');
  const note = $('#control-note');
  const pollInterval = $('#poll-interval');
  const longPollTimeout = $('#long-poll-timeout');
  // Until `GET /control` answers, the feed inputs cannot be used.
  rate.disabled = payload.disabled = true;

  const change = async (input, key) => {
    if (!input.reportValidity()) return;
    controlChanges += 1;
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
    if (pollInterval.reportValidity()) source?.configure({ pollIntervalMs: Number(pollInterval.value) });
  });
  longPollTimeout.addEventListener('change', () => {
    if (longPollTimeout.reportValidity()) source?.configure({ longPollTimeoutMs: Number(longPollTimeout.value) });
  });
  $('#controls').addEventListener('submit', (e) => e.preventDefault());

  $('#reset-figures').addEventListener('click', () => {
    for (const m of models.values()) {
      Object.assign(m, { received: 0, gaps: 0, duplicates: 0, reconnects: 0, latencyNow: null });
      m.latency.reset();
      m.baseline = m.server;
    }
    chart.clear();
    costs.reset();
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
      const { seq } = await source.publish(via, data);
      mine.seq = seq;
      mine.ackMs = performance.now() - mine.sentAt;
    } catch (err) {
      mine.error = err.message;
    }
    showPublishResults();
  });
}

/**
 * A pane talks back its own way: the WebSocket pane sends a message on its open socket, the
 * WebTransport pane on a bidirectional stream of its session, the others `POST /publish`. Its round trip is send → its own receipt of the message from the feed;
 * its cost is the requests it took (none on the socket) and the bytes up: the frame's size for
 * the WebSocket (payload, header, the 4-byte mask every browser frame carries), and for a POST
 * what the server read for this page's client id (head and body; the browser does not show a
 * request's head size).
 */
async function talkBack(transport) {
  const model = models.get(transport);
  const nonce = randomToken(8);
  const data = { source: 'page', client: clientId, via: transport, nonce, text: `talking back from ${SHORT_LABELS[transport]}` };
  const id = shared?.clientId ?? clientId;
  const http = !SESSION_TRANSPORTS.includes(transport);
  const before = http ? await postedBytes(id) : null;
  const talk = { nonce, sentAt: performance.now(), roundTripMs: null, requests: http ? 1 : 0, bytesUp: null, error: null };
  model.talk.sent += 1;
  model.talk.last = talk;
  const message = JSON.stringify({ op: 'publish', data });
  if (transport === 'ws') talk.bytesUp = wsFrameBytes(message);
  // The message is the stream's whole payload; QUIC's stream frame and packet are not counted.
  if (transport === 'wt') talk.bytesUp = new TextEncoder().encode(message).length;
  renderPane(transport);
  try {
    await source.publish(transport, data);
    if (http) {
      const after = await postedBytes(id);
      if (before !== null && after !== null) talk.bytesUp = after - before;
    }
  } catch (err) {
    talk.error = err.message;
  }
  renderPane(transport);
}

/** Bytes of a masked client WebSocket frame carrying `text`. */
function wsFrameBytes(text) {
  const len = new TextEncoder().encode(text).length;
  const header = len < 126 ? 2 : len < 65536 ? 4 : 10;
  return header + 4 + len;
}

/** What the server read of this client's `POST /publish` requests so far, over every HTTP version. */
async function postedBytes(id) {
  try {
    const res = await fetch(`stats/client/${encodeURIComponent(id)}`, { cache: 'no-store' });
    if (!res.ok) return null;
    const body = await res.json();
    return Object.entries(body.publishes ?? {})
      .filter(([way]) => way !== 'ws')
      .reduce((sum, [, c]) => sum + c.bytes_read, 0);
  } catch {
    return null;
  }
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
    const seen = TRANSPORTS.filter((t) => models.get(t).state !== 'unavailable').map((t) =>
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

function banner(text) {
  const p = document.createElement('p');
  p.className = 'banner';
  p.textContent = text;
  return p;
}
