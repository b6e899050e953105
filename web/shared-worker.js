// "One set of connections for all tabs": a SharedWorker holds the four clients once for every
// tab of the page in this browser profile, and relays what they report to each tab.
//
// This is the usual application fix for the six-connections-per-host limit of HTTP/1.1: the
// number of connections stops growing with the number of tabs (one SSE stream, one long poll, one
// WebSocket, brief polls), so a seventh tab costs nothing. A SharedWorker rather than an elected
// leader tab: it needs no election and no hand-over when the leading tab closes, it is not
// throttled like a background tab, and it lives exactly as long as some tab uses it.
//
// Messages are plain objects `{op, ...}`; times cross as wall-clock milliseconds (each realm's
// `performance.now()` has its own origin).

import { FeedSet } from './feed-set.js';

const ports = new Set();
let set = null;
/** What a tab that joins late needs at once: each transport's state, the last server report. */
let states = {};
let lastReport = null;
let lastHeld = { inFlight: 0, stalled: 0 };
let settings = null;

const clientId = `shared-${Array.from(crypto.getRandomValues(new Uint8Array(10)), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('')}`;

function post(message) {
  for (const port of ports) port.postMessage(message);
}

function startSet() {
  states = {};
  lastReport = null;
  set = new FeedSet({
    clientId,
    ...settings,
    onEvent: (t, event, info) => post({ op: 'event', t, event, info }),
    onMissed: (t, notice) => post({ op: 'missed', t, notice }),
    onState: (t, state, detail) => {
      states[t] = { state, detail };
      post({ op: 'state', t, state, detail });
    },
    onRequest: (t, r) => post({ op: 'request', t, r: { ...r, at: r.at + performance.timeOrigin } }),
    onServer: (report) => {
      lastReport = report;
      post({ op: 'server', report });
    },
    onHeld: (held) => {
      lastHeld = held;
      post({ op: 'held', held, tabs: ports.size });
    },
  });
  set.start();
}

async function command(port, message) {
  switch (message.op) {
    case 'hello':
      // Also from a tab back from the back/forward cache, which said bye when it left.
      ports.add(port);
      // The first tab's settings start the set; later tabs follow it as it is.
      settings ??= message.settings;
      if (!set) startSet();
      port.postMessage({ op: 'welcome', clientId, states, report: lastReport, held: lastHeld, tabs: ports.size });
      post({ op: 'held', held: lastHeld, tabs: ports.size });
      break;
    case 'bye':
      ports.delete(port);
      if (ports.size === 0) {
        // No tab follows any more: let go of every connection.
        set?.close();
        set = null;
        settings = null;
      } else {
        post({ op: 'held', held: lastHeld, tabs: ports.size });
      }
      break;
    case 'pause':
    case 'resume':
    case 'drop':
      set?.[message.op](message.t);
      break;
    case 'configure':
      set?.configure(message.options);
      break;
    case 'publish':
      try {
        const result = await set.publish(message.via, message.data);
        port.postMessage({ op: 'published', id: message.id, result });
      } catch (err) {
        port.postMessage({ op: 'published', id: message.id, error: err.message });
      }
      break;
  }
}

globalThis.onconnect = (e) => {
  const port = e.ports[0];
  port.onmessage = (m) => command(port, m.data);
};
