// Where a tab's panes get their feed from: its own `FeedSet`, or the shared worker's.
//
// Both answer to the same calls (`start`, `close`, `pause`, `resume`, `drop`, `configure`,
// `publish`) and report through the same callbacks, so the page does not know which it drew.

import { FeedSet } from './feed-set.js';

/**
 * @param {'own'|'shared'} mode
 * @param {object} options `FeedSet`'s options (`clientId` is the tab's, used in `own` mode), plus
 *   `onShared({clientId, tabs})`: the shared worker's client id and how many tabs follow it.
 */
export function openSource(mode, options) {
  return mode === 'shared' ? new SharedSource(options) : new FeedSet(options);
}

export const sharedAvailable = typeof SharedWorker === 'function';

/** The shared worker's clients, seen from one tab. */
class SharedSource {
  constructor({ clientId: _ownId, onShared = () => {}, ...options }) {
    this.options = options;
    this.onShared = onShared;
    this.clientId = null;
    this.publishes = new Map();
    this.nextId = 1;
    this.port = null;
  }

  start() {
    const worker = new SharedWorker(new URL('shared-worker.js', import.meta.url), { type: 'module', name: 'feedlab' });
    this.port = worker.port;
    this.port.onmessage = (m) => this.#receive(m.data);
    const { pollIntervalMs, longPollTimeoutMs } = this.options;
    this.hello = () => this.port?.postMessage({ op: 'hello', settings: { pollIntervalMs, longPollTimeoutMs } });
    this.hello();
    // A tab that goes away says so, or the worker would keep its connections for nobody; one
    // that comes back from the back/forward cache says hello again.
    this.bye = () => this.port?.postMessage({ op: 'bye' });
    this.back = (e) => {
      if (e.persisted) this.hello();
    };
    addEventListener('pagehide', this.bye);
    addEventListener('pageshow', this.back);
  }

  close() {
    removeEventListener('pagehide', this.bye);
    removeEventListener('pageshow', this.back);
    this.bye?.();
    this.port?.close();
    this.port = null;
    for (const p of this.publishes.values()) p.reject(new Error('stopped following the shared connections'));
    this.publishes.clear();
  }

  pause(t) {
    this.port?.postMessage({ op: 'pause', t });
  }

  resume(t) {
    this.port?.postMessage({ op: 'resume', t });
  }

  drop(t) {
    this.port?.postMessage({ op: 'drop', t });
  }

  configure(options) {
    this.port?.postMessage({ op: 'configure', options });
  }

  publish(via, data) {
    if (!this.port) return Promise.reject(new Error('not following the shared connections'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.publishes.set(id, { resolve, reject });
      this.port.postMessage({ op: 'publish', id, via, data });
    });
  }

  #receive(m) {
    const o = this.options;
    switch (m.op) {
      case 'welcome':
        this.clientId = m.clientId;
        this.onShared({ clientId: m.clientId, tabs: m.tabs });
        for (const [t, { state, detail }] of Object.entries(m.states)) o.onState?.(t, state, detail);
        if (m.report) o.onServer?.(m.report);
        o.onHeld?.(m.held);
        break;
      case 'event':
        o.onEvent?.(m.t, m.event, m.info);
        break;
      case 'missed':
        o.onMissed?.(m.t, m.notice);
        break;
      case 'state':
        o.onState?.(m.t, m.state, m.detail);
        break;
      case 'request':
        o.onRequest?.(m.t, { ...m.r, at: m.r.at - performance.timeOrigin });
        break;
      case 'server':
        o.onServer?.(m.report);
        break;
      case 'held':
        o.onHeld?.(m.held);
        this.onShared({ clientId: this.clientId, tabs: m.tabs });
        break;
      case 'published': {
        const p = this.publishes.get(m.id);
        this.publishes.delete(m.id);
        if (m.error) p?.reject(new Error(m.error));
        else p?.resolve(m.result);
        break;
      }
    }
  }
}
