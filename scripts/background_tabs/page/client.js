// What one background-tab page does: follow the feed over one transport and log, on the wall
// clock (`Date.now()`, comparable with the benchmark's), every event, every request, every state
// change and every lifecycle event the page saw. The benchmark reads `window.bg` when the page
// can run script (not while frozen).
//
// `?mode=`:
//   client    the project's FeedClient (web/feed-client.js) for `transport`, as the live page
//             drives it: short polls 1 s apart (a setTimeout armed after each response), long polls
//             held up to 20 s, EventSource, WebSocket.
//   interval  short polling as many pages write it: `setInterval(poll, 1000)`. Its timer chain
//             nests (each repetition raises the nesting level), so after 5 min hidden it is
//             subject to Chrome's intensive wake-up throttling; FeedClient's chain is not (each
//             setTimeout is armed from a fetch completion, nesting level 0).
//   probe     no feed: a chain of nested `setTimeout(…, 1000)` whose wake-ups show which timer
//             throttling the page is under; with `&ws=1` it also holds a WebSocket open to
//             /ws/echo (an open WebSocket opts a page out of Chrome's aggressive throttling).

import { FeedClient } from './feed-client.js';

const q = new URLSearchParams(location.search);
const mode = q.get('mode') ?? 'client';
const transport = q.get('transport');
const clientId = q.get('client');
const since = q.has('since') ? Number(q.get('since')) : null;

const now = () => Date.now();
const bg = (window.bg = {
  mode,
  transport,
  clientId,
  loadedAt: now(),
  events: [],
  requests: [],
  states: [],
  missed: [],
  lifecycle: [],
  ticks: [],
  errors: [],
});
document.getElementById('what').textContent = `${mode} ${transport ?? ''} ${clientId ?? ''}`;

const life = (type, extra = {}) =>
  bg.lifecycle.push({ type, at: now(), visibility: document.visibilityState, ...extra });
document.addEventListener('visibilitychange', () => life('visibilitychange'));
document.addEventListener('freeze', () => life('freeze'));
document.addEventListener('resume', () => life('resume'));
window.addEventListener('pagehide', (e) => life('pagehide', { persisted: e.persisted }));
window.addEventListener('pageshow', (e) => life('pageshow', { persisted: e.persisted }));
life('start', { wasDiscarded: document.wasDiscarded });

function record(event, gap = 0, duplicate = false) {
  bg.events.push({
    seq: event.seq,
    at: now(),
    sentMs: event.data?.sent_ms ?? null,
    visibility: document.visibilityState,
    gap,
    duplicate,
  });
}

if (mode === 'client') {
  const client = new FeedClient({
    transport,
    clientId,
    since,
    pollIntervalMs: 1000,
    longPollTimeoutMs: 20_000,
    onEvent: (event, info) => record(event, info.gap, info.duplicate),
    onMissed: (notice) => bg.missed.push({ ...notice, at: now() }),
    onState: (state, detail) => bg.states.push({ state, at: now(), reason: detail?.reason ?? null }),
    onRequest: (r) => {
      if (r.type === 'sent' || r.type === 'done') {
        bg.requests.push({ type: r.type, kind: r.kind, at: now(), outcome: r.outcome ?? null });
      }
    },
  });
  client.start();
  bg.cursor = () => client.cursor;
} else if (mode === 'interval') {
  let cursor = since;
  let busy = false;
  bg.cursor = () => cursor;
  setInterval(async () => {
    if (busy) return;
    busy = true;
    bg.requests.push({ type: 'sent', kind: 'short-poll', at: now(), outcome: null });
    try {
      const res = await fetch(`poll?since=${cursor}&client=${clientId}`, { cache: 'no-store' });
      const body = await res.json();
      for (const event of body.events) {
        const gap = event.seq - cursor - 1;
        if (event.seq > cursor) {
          record(event, Math.max(0, gap));
          cursor = event.seq;
        } else record(event, 0, true);
      }
      if (body.next > cursor) cursor = body.next;
      bg.requests.push({ type: 'done', kind: 'short-poll', at: now(), outcome: body.events.length ? 'events' : 'empty' });
    } catch (err) {
      bg.errors.push({ at: now(), message: String(err) });
      bg.requests.push({ type: 'done', kind: 'short-poll', at: now(), outcome: 'error' });
    } finally {
      busy = false;
    }
  }, 1000);
} else if (mode === 'probe') {
  const tick = () => {
    bg.ticks.push(now());
    setTimeout(tick, 1000);
  };
  setTimeout(tick, 1000);
  if (q.get('ws') === '1') {
    const url = new URL('ws/echo', location.href);
    url.protocol = 'ws:';
    const open = () => {
      const socket = new WebSocket(url);
      socket.onopen = () => bg.states.push({ state: 'open', at: now(), reason: 'ws/echo' });
      socket.onclose = (e) => {
        bg.states.push({ state: 'closed', at: now(), reason: `ws/echo ${e.code}` });
        setTimeout(open, 1000);
      };
      bg.socket = socket;
    };
    open();
  }
}
