// The clients the page follows the feed with, and everything that goes with them: the feed head
// they all start from, the server's per-client counters, and the stall watch. WebTransport joins
// them when the server's QUIC listener serves it (`GET /quic`) and the browser has it; otherwise
// its pane is `unavailable`, with the reason.
//
// One set runs either in the tab (each tab its own connections) or in the shared worker (one set
// of connections for every tab of the profile); both report through the same callbacks, so the
// page draws the same panes from either and the two modes differ only in where the connections
// are held.

import { FeedClient, SESSION_TRANSPORTS, TRANSPORTS } from './feed-client.js';
import { answersLongPoll, stallOf, stallText } from './stall.js';

const STATS_PERIOD_MS = 1000;
const STALL_CHECK_MS = 250;
/** How long to wait for the feed head before following the feed from whatever comes next. */
const HEAD_TIMEOUT_MS = 2000;
const HTTP_TRANSPORTS = TRANSPORTS.filter((t) => !SESSION_TRANSPORTS.includes(t));
const noop = () => {};

export class FeedSet {
  /**
   * @param {object} o
   * @param {string} o.clientId the `client=` the server accounts these connections under.
   * @param {string} [o.baseUrl]
   * @param {number} o.pollIntervalMs
   * @param {number} o.longPollTimeoutMs
   * @param {(t: string, event: object, info: object) => void} [o.onEvent]
   * @param {(t: string, notice: object) => void} [o.onMissed]
   * @param {(t: string, state: string, detail: object) => void} [o.onState] the client's states,
   *   plus `stalled` (see `stall.js`) while its request waits for a connection.
   * @param {(t: string, r: object) => void} [o.onRequest] see `FeedClient`'s `onRequest`.
   * @param {(report: object) => void} [o.onServer] `GET /stats/client/ID`, once a second.
   * @param {(held: {inFlight: number, stalled: number}) => void} [o.onHeld] HTTP requests in
   *   flight (each needs a connection over HTTP/1.1) and how many of them are stalled.
   */
  constructor({ clientId, baseUrl = '', pollIntervalMs, longPollTimeoutMs, ...callbacks }) {
    this.clientId = clientId;
    this.baseUrl = baseUrl;
    this.settings = { pollIntervalMs, longPollTimeoutMs };
    this.cb = { onEvent: noop, onMissed: noop, onState: noop, onRequest: noop, onServer: noop, onHeld: noop, ...callbacks };
    this.clients = new Map();
    /** Per transport: the state last reported, the client's own, and the stalled request's id. */
    this.shown = new Map(TRANSPORTS.map((t) => [t, { state: 'connecting', own: 'connecting', stalledId: null }]));
    /** Long polls' `dueAt` (see `stall.js`), by request id. */
    this.due = new Map();
    this.head = { seq: null, at: null };
    this.statsHeardAt = null;
    this.statsInFlight = false;
    this.held = { inFlight: 0, stalled: 0 };
    this.closed = false;
    this.timers = [];
  }

  async start() {
    const [since, quic] = await Promise.all([this.#feedHead(), this.#quic()]);
    if (this.closed) return;
    for (const transport of TRANSPORTS) {
      const absent = transport === 'wt' ? whyNoWebTransport(quic) : null;
      if (absent) {
        this.#state(transport, 'unavailable', { reason: absent });
        continue;
      }
      const client = new FeedClient({
        transport,
        baseUrl: this.baseUrl,
        clientId: this.clientId,
        quic,
        // All four start from the same seq, so their counts stay comparable.
        since,
        ...this.settings,
        onEvent: (event, info) => this.#event(transport, event, info),
        onMissed: (notice) => this.cb.onMissed(transport, notice),
        onState: (state, detail) => this.#state(transport, state, detail),
        onRequest: (r) => this.cb.onRequest(transport, r),
      });
      this.clients.set(transport, client);
    }
    for (const client of this.clients.values()) client.start();
    this.timers.push(setInterval(() => this.#watch(), STALL_CHECK_MS));
    this.#pollStats();
  }

  /** Closes every connection (queued requests are abandoned, freeing their place in the queue). */
  close() {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    for (const client of this.clients.values()) client.close();
  }

  pause(transport) {
    this.clients.get(transport)?.pause();
  }

  resume(transport) {
    this.clients.get(transport)?.resume();
  }

  drop(transport) {
    this.clients.get(transport)?.drop();
  }

  /** `{pollIntervalMs}` goes to the short poll, `{longPollTimeoutMs}` to the long poll. */
  configure(options) {
    Object.assign(this.settings, options);
    if (options.pollIntervalMs !== undefined) this.clients.get('short-poll')?.configure(options);
    if (options.longPollTimeoutMs !== undefined) this.clients.get('long-poll')?.configure(options);
  }

  /**
   * Over the open WebSocket (`via: 'ws'`) or with `POST /publish` (`'http'`, made by the SSE
   * client), or by the named transport's own client, its own way (a pane talking back).
   */
  publish(via, data) {
    const client = this.clients.get(via === 'http' ? 'sse' : via);
    if (!client) return Promise.reject(new Error('not connected yet'));
    return client.publish(data);
  }

  // --- what the clients report ---------------------------------------------------------------

  #event(transport, event, info) {
    if (this.head.seq === null || event.seq > this.head.seq) this.head = { seq: event.seq, at: performance.now() };
    this.cb.onEvent(transport, event, info);
  }

  #state(transport, state, detail) {
    const shown = this.shown.get(transport);
    shown.own = state;
    shown.stalledId = null;
    shown.state = state;
    this.cb.onState(transport, state, detail);
  }

  /** Re-applies the stall rule to every HTTP client's unanswered request. */
  #watch() {
    const now = performance.now();
    let inFlight = this.statsInFlight ? 1 : 0;
    let stalled = 0;
    for (const transport of HTTP_TRANSPORTS) {
      const client = this.clients.get(transport);
      if (client.inFlight()) inFlight += 1;
      const waiting = client.waiting();
      const shown = this.shown.get(transport);
      if (waiting?.kind === 'long-poll' && !this.due.has(waiting.id) && this.head.seq !== null) {
        if (answersLongPoll(waiting, this.head.seq, this.head.at)) this.due.set(waiting.id, now);
      }
      const stall = stallOf(waiting && { ...waiting, dueAt: this.due.get(waiting.id) }, now, {
        heardAt: this.#heardAtExcept(transport),
        longPollTimeoutMs: this.settings.longPollTimeoutMs,
      });
      if (stall) {
        stalled += 1;
        shown.state = 'stalled';
        shown.stalledId = waiting.id;
        this.cb.onState(transport, 'stalled', { reason: stallText(stall), waitedMs: stall.waitedMs });
      } else if (shown.stalledId !== null) {
        // Answered at last (or given up): back to what the client itself says.
        shown.stalledId = null;
        shown.state = shown.own;
        this.cb.onState(transport, shown.own, { reason: 'got a connection after waiting for one' });
      }
    }
    for (const id of this.due.keys()) {
      if (!HTTP_TRANSPORTS.some((t) => this.clients.get(t).waiting()?.id === id)) this.due.delete(id);
    }
    if (inFlight !== this.held.inFlight || stalled !== this.held.stalled) {
      this.held = { inFlight, stalled };
      this.cb.onHeld(this.held);
    }
  }

  /** The latest time any channel but `transport`'s heard from the server. */
  #heardAtExcept(transport) {
    let latest = this.statsHeardAt;
    for (const [t, client] of this.clients) {
      if (t !== transport && client.heardAt !== null && (latest === null || client.heardAt > latest)) latest = client.heardAt;
    }
    return latest;
  }

  // --- the server's side ---------------------------------------------------------------------

  /** The seq every client starts after; `null` (from now on) if the server does not say in time. */
  async #feedHead() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), HEAD_TIMEOUT_MS);
    try {
      const res = await fetch(this.#url('stats'), { cache: 'no-store', signal: abort.signal });
      if (!res.ok) return null;
      const head = (await res.json()).feed?.head;
      return Number.isInteger(head) ? head : null;
    } catch {
      return null; // Slow, away, or the request is queued behind other tabs' connections.
    } finally {
      clearTimeout(timer);
    }
  }

  async #pollStats() {
    while (!this.closed) {
      await new Promise((resolve) => setTimeout(resolve, STATS_PERIOD_MS));
      // The server knows this client only once one of its requests has arrived.
      if (this.closed || ![...this.clients.values()].some((c) => c.opened)) continue;
      this.statsInFlight = true;
      try {
        const res = await fetch(this.#url(`stats/client/${this.clientId}`), { cache: 'no-store' });
        if (res.ok) {
          const report = await res.json();
          this.statsHeardAt = performance.now();
          if (!this.closed) this.cb.onServer(report);
        }
      } catch {
        // The server is away; the panes already say so.
      } finally {
        this.statsInFlight = false;
      }
    }
  }

  /** `GET /quic`: whether and where the server serves WebTransport; `null` if it does not say. */
  async #quic() {
    // QUIC needs TLS: a server reached over http:// has none, so there is nothing to ask (and over
    // HTTP/1.1 one request fewer for the browser's six connections).
    if (new URL(this.#url('quic')).protocol !== 'https:') {
      return { serves: null, why: 'the page came over http://; WebTransport needs the server on TLS with --quic (--tls-self-signed --quic)' };
    }
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), HEAD_TIMEOUT_MS);
    try {
      const res = await fetch(this.#url('quic'), { cache: 'no-store', signal: abort.signal });
      return res.ok ? await res.json() : null;
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  #url(path) {
    return new URL(path, this.baseUrl || globalThis.document?.baseURI || globalThis.location.href).href;
  }
}

/** Why this page cannot follow the feed over WebTransport, from `GET /quic`'s answer; `null` if it can. */
export function whyNoWebTransport(quic) {
  if (!quic) return 'the server did not answer GET /quic';
  if (quic.why) return `not here: ${quic.why}`;
  if (quic.serves !== 'webtransport') return 'not here: the server does not serve WebTransport';
  if (typeof WebTransport !== 'function') {
    return globalThis.isSecureContext === false
      ? 'not here: WebTransport needs a page opened over https://'
      : 'not here: this browser has no WebTransport';
  }
  return null;
}
