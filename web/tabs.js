// The page across tabs: which way this browser profile follows the feed, and how many tabs of the
// page are open and what they hold.
//
// The choice is stored per origin (`localStorage`), because the limit it works around is per
// profile: one tab sharing while the others each hold their own would not help. Changing it in one
// tab changes it in all of them (the `storage` event). The census goes over a `BroadcastChannel`:
// each tab says once a second which mode it is in and how many HTTP requests it has in flight
// (each needs a connection of its own over HTTP/1.1) and how many of them are stalled; a tab not
// heard from for `GONE_AFTER_MS` (closed, crashed) is dropped.

const MODE_KEY = 'feedlab.tabs-mode';
export const MODES = Object.freeze(['own', 'shared']);
const CHANNEL = 'feedlab-tabs';
const BEAT_MS = 1000;
const GONE_AFTER_MS = 3500;

/** HTTP/1.1 browsers' connections per host and profile (Chromium, Firefox and Safari alike). */
export const HTTP1_CONNECTIONS_PER_HOST = 6;

export function readMode() {
  try {
    const mode = localStorage.getItem(MODE_KEY);
    return MODES.includes(mode) ? mode : 'own';
  } catch {
    return 'own';
  }
}

/** Stores `mode` for every tab of this origin; the others hear it through `onModeChange`. */
export function writeMode(mode) {
  try {
    localStorage.setItem(MODE_KEY, mode);
  } catch {
    // Storage is off: the choice holds for this tab only.
  }
}

/** Calls `callback(mode)` when another tab changes the choice. */
export function onModeChange(callback) {
  addEventListener('storage', (e) => {
    if (e.key === MODE_KEY) callback(MODES.includes(e.newValue) ? e.newValue : 'own');
  });
}

/** The protocol the page itself came over (`http/1.1`, `h2`, `h3`), from Navigation Timing. */
export function pageProtocol() {
  const nav = performance.getEntriesByType?.('navigation')?.[0];
  return nav?.nextHopProtocol || (location.protocol === 'https:' ? 'unknown (TLS)' : 'http/1.1');
}

export function protocolName(p) {
  return { 'http/1.1': 'HTTP/1.1', 'http/1.0': 'HTTP/1.0', h2: 'HTTP/2', h3: 'HTTP/3' }[p] ?? p;
}

/** Whether `protocol` gives each request its own connection (so the six-per-host limit applies). */
export function connectionPerRequest(protocol) {
  return protocol === 'http/1.1' || protocol === 'http/1.0';
}

/** This tab's entry in the census, and everyone else's. */
export class TabCensus {
  constructor({ id, onChange = () => {} }) {
    this.self = { id, mode: 'own', inFlight: 0, stalled: 0 };
    this.others = new Map();
    this.onChange = onChange;
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL) : null;
    if (this.channel) {
      this.channel.onmessage = (m) => this.#receive(m.data);
      this.channel.postMessage({ op: 'hello', tab: this.self });
      setInterval(() => this.#beat(), BEAT_MS);
      addEventListener('pagehide', () => this.channel.postMessage({ op: 'bye', id }));
    }
  }

  /** Updates what this tab says about itself (`mode`, `inFlight`, `stalled`). */
  update(fields) {
    const changed = Object.entries(fields).some(([k, v]) => this.self[k] !== v);
    Object.assign(this.self, fields);
    if (changed) {
      this.channel?.postMessage({ op: 'tab', tab: this.self });
      this.onChange();
    }
  }

  /** Every tab of the page open in this profile, this one first. */
  tabs() {
    return [this.self, ...[...this.others.values()].map((o) => o.tab)];
  }

  #beat() {
    this.channel.postMessage({ op: 'tab', tab: this.self });
    const now = performance.now();
    let changed = false;
    for (const [id, o] of this.others) {
      if (now - o.seenAt > GONE_AFTER_MS) {
        this.others.delete(id);
        changed = true;
      }
    }
    if (changed) this.onChange();
  }

  #receive(m) {
    if (m.op === 'bye') {
      this.others.delete(m.id);
    } else {
      this.others.set(m.tab.id, { tab: m.tab, seenAt: performance.now() });
      // A newcomer hears from everyone at once instead of after a beat.
      if (m.op === 'hello') this.channel.postMessage({ op: 'tab', tab: this.self });
    }
    this.onChange();
  }
}
