// One client for the five transports, so that any difference the page shows comes from the
// transport and not from the code that drives it.
//
// Every transport is driven the same way: a cursor (the last seq seen) is the only state, every
// (re)connection asks for `since=<cursor>`, failures are retried with exponential backoff and
// jitter, and the same callbacks report events, missed-event notices, state changes and the
// life of each HTTP request (for the page's timeline). Short and long polling carry the cursor
// in each request. SSE lets `EventSource` reconnect by itself with `Last-Event-ID`, as browsers
// do, and opens `/sse?since=<cursor>` only when the page reconnects by hand or the browser gives
// up. WebSockets have no built-in resume, so the client reconnects with `/ws?since=<cursor>`.
// WebTransport (`wt`, over QUIC) neither: the client opens `/wt?since=<cursor>` on the server's
// UDP port and reads the server's one unidirectional stream, whose lines carry the same
// envelope as WebSocket messages (`#envelope`, one parser for both), an empty line being a
// heartbeat; talking back is a bidirectional stream per message, answered on that stream.
//
// The client uses only what a browser has (`fetch`, `EventSource`, `WebSocket`, `WebTransport`):
// the same clients real users have, with the same limits (no byte counts, no WebSocket framing,
// no response status for a failed `EventSource`, WebSocket or WebTransport handshake).

/** The transport names, as the server's `/stats` and the page's `data-transport` spell them. */
export const TRANSPORTS = Object.freeze(['short-poll', 'long-poll', 'sse', 'ws', 'wt']);

/** The transports that hold a connection of their own rather than make HTTP requests. */
export const SESSION_TRANSPORTS = Object.freeze(['ws', 'wt']);

/** Connection states reported through `onState`; `unavailable` (by the feed set) when a transport cannot run here. */
export const STATES = Object.freeze(['connecting', 'open', 'retrying', 'paused', 'closed', 'unavailable']);

/** Close code the client sends when the page drops a WebSocket on purpose (4000–4999: private use). */
const WS_DROPPED = 4000;
/** WebTransport closes with the codes a WebSocket would (the server's session uses `/ws`'s). */
const WT_DROPPED = WS_DROPPED;
/** How long a WebSocket publish waits for its `{"op":"published"}` before giving up. */
const PUBLISH_TIMEOUT_MS = 5000;

const noop = () => {};
let nextRequestId = 1;

/**
 * Starts following the feed over `options.transport`; see {@link FeedClient} for the options.
 * @returns {FeedClient}
 */
export function connect(options) {
  const client = new FeedClient(options);
  client.start();
  return client;
}

export class FeedClient {
  /**
   * @param {object} o
   * @param {'short-poll'|'long-poll'|'sse'|'ws'|'wt'} o.transport
   * @param {string} [o.baseUrl] where the server is; default: the page's own location.
   * @param {{port:number, path:string, certificate:{sha256:string}|null, certificates?:{sha256:string}[]}} [o.quic]
   *   WebTransport only: the server's `GET /quic` answer (its UDP port, and the hashes of the
   *   certificates it made: the one it serves, and those it renewed that have not expired). Asked
   *   again before each reconnection, since the server renews its certificate.
   * @param {string} [o.clientId] sent as `client=` so the server accounts for this client.
   * @param {number|null} [o.since] first cursor; `null` follows the feed from now on.
   * @param {(event: {seq:number, ts:number, data:any}, info: {gap:number, duplicate:boolean}) => void} [o.onEvent]
   *   `gap` counts seqs skipped without a notice (a bug somewhere if ever non-zero).
   * @param {(notice: {missed:number, next:number}) => void} [o.onMissed] events that fell out of
   *   the server's retention while this client was away.
   * @param {(state: string, detail: object) => void} [o.onState]
   * @param {(r: {type:'sent'|'event'|'message'|'done', id:number, kind:string, at:number, outcome?:string}) => void} [o.onRequest]
   *   the life of each HTTP request (a poll, a stream, a WebSocket handshake and its connection,
   *   a publish), on the `performance.now()` clock.
   * @param {number} [o.pollIntervalMs] short polling: pause between a response and the next request.
   * @param {number} [o.longPollTimeoutMs] long polling: how long the server may hold a request.
   * @param {{initialMs?: number, maxMs?: number}} [o.backoff]
   */
  constructor({
    transport,
    baseUrl = '',
    clientId = null,
    quic = null,
    since = null,
    onEvent = noop,
    onMissed = noop,
    onState = noop,
    onRequest = noop,
    pollIntervalMs = 1000,
    longPollTimeoutMs = 20_000,
    backoff = {},
  }) {
    if (!TRANSPORTS.includes(transport)) throw new TypeError(`unknown transport ${transport}`);
    this.transport = transport;
    this.baseUrl = baseUrl;
    this.clientId = clientId;
    this.quic = quic;
    /** WebTransport: sessions opened, so a reconnection asks `GET /quic` again first. */
    this.sessionsOpened = 0;
    /** The seq everything up to which has been received; the resume point. */
    this.cursor = since;
    /** The seq of the last event received, for display. */
    this.lastSeq = null;
    this.state = 'closed';
    this.pollIntervalMs = pollIntervalMs;
    this.longPollTimeoutMs = longPollTimeoutMs;
    this.backoff = { initialMs: 1000, maxMs: 15_000, ...backoff };
    this.callbacks = { onEvent, onMissed, onState, onRequest };

    // One generation per connection attempt: callbacks of an older one are ignored, which is
    // what makes pause, drop and retry safe against late responses.
    this.generation = 0;
    this.attempt = 0;
    this.timer = null;
    this.abort = null;
    this.source = null;
    this.socket = null;
    this.session = null;
    this.request = null;
    this.opened = false;
    this.pendingPublishes = [];
    /** When (`performance.now()`) this client last heard from the server: headers, an event, a message. */
    this.heardAt = null;
  }

  /**
   * The request this client has sent and the server has not answered yet (no response headers,
   * no open stream or socket): `{kind, sentAt, since}`, or `null`. A request the browser keeps
   * queued for want of a connection stays here; see `stall.js` for how the page tells.
   */
  waiting() {
    const r = this.request;
    return r && !r.answered ? { id: r.id, kind: r.kind, sentAt: r.sentAt, since: r.since } : null;
  }

  /** Whether this client has an HTTP request in flight (answered or not); WebSockets and WebTransport are not counted. */
  inFlight() {
    return this.request !== null && !SESSION_TRANSPORTS.includes(this.request.kind);
  }

  /** Connects, from `since` if given. */
  start() {
    if (this.state === 'closed' || this.state === 'paused') this.#open();
  }

  /** Closes the connection and keeps the cursor; `resume` catches up from it. */
  pause() {
    if (this.state === 'paused' || this.state === 'closed') return;
    this.#teardown('closed');
    this.#setState('paused');
  }

  resume() {
    if (this.state !== 'paused') return;
    this.attempt = 0;
    this.#open();
  }

  /**
   * Breaks the connection as a network failure would, then reconnects with backoff and resumes
   * from the cursor. A browser cannot cut a TCP connection, so this closes the request, the
   * `EventSource` or the WebSocket from the client side.
   */
  drop() {
    if (this.state === 'paused' || this.state === 'closed') return;
    this.#teardown('dropped');
    this.#retry('dropped by the page');
  }

  close() {
    this.#teardown('closed');
    this.#setState('closed');
  }

  /** Changes the polling settings; they apply from the next request. */
  configure({ pollIntervalMs, longPollTimeoutMs } = {}) {
    if (pollIntervalMs !== undefined) this.pollIntervalMs = pollIntervalMs;
    if (longPollTimeoutMs !== undefined) this.longPollTimeoutMs = longPollTimeoutMs;
  }

  /**
   * Publishes `data` (any JSON value) the way this transport can: as a message on the open
   * WebSocket, on a stream of its own in the WebTransport session, or, for the one-way
   * transports, with a separate `POST /publish`.
   * @returns {Promise<{seq:number, via:'ws'|'wt'|'http'}>}
   */
  publish(data) {
    if (this.transport === 'ws') return this.#publishOverSocket(data);
    if (this.transport === 'wt') return this.#publishOverSession(data);
    return this.#publishOverHttp(data);
  }

  // --- connection life ---------------------------------------------------------------------

  #open() {
    const generation = ++this.generation;
    this.opened = false;
    this.#setState('connecting');
    switch (this.transport) {
      case 'short-poll':
      case 'long-poll':
        this.#pollLoop(generation);
        break;
      case 'sse':
        this.#openEventSource(generation);
        break;
      case 'ws':
        this.#openSocket(generation);
        break;
      case 'wt':
        this.#openSession(generation);
        break;
    }
  }

  /** Stops whatever is running; the current request, if any, ends with `outcome`. */
  #teardown(outcome) {
    this.generation += 1;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.abort) this.abort.abort();
    this.abort = null;
    if (this.source) this.source.close();
    this.source = null;
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
      if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) {
        socket.close(WS_DROPPED, outcome === 'dropped' ? 'dropped by the page' : 'closed by the page');
      }
    }
    if (this.session) {
      const session = this.session;
      this.session = null;
      try {
        session.close({ closeCode: WT_DROPPED, reason: outcome === 'dropped' ? 'dropped by the page' : 'closed by the page' });
      } catch {
        // Already closed or failed: nothing left to close.
      }
    }
    this.#endRequest(outcome);
    for (const p of this.pendingPublishes.splice(0)) p.reject(new Error('connection closed'));
  }

  /**
   * Waits (exponential backoff with jitter: a random delay between half and all of
   * `initialMs × 2^attempt`, capped) and connects again. The jitter keeps many clients that lost
   * the same server from all coming back in the same millisecond.
   */
  #retry(reason) {
    const generation = this.generation;
    const ceiling = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.attempt);
    const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.attempt += 1;
    const probe = !this.opened && (this.transport === 'sse' || SESSION_TRANSPORTS.includes(this.transport));
    this.#setState('retrying', { reason, delayMs, attempt: this.attempt });
    this.timer = setTimeout(async () => {
      if (generation !== this.generation) return;
      if (probe) await this.#checkCursor();
      if (generation === this.generation) this.#open();
    }, delayMs);
  }

  /** A response arrived or a stream opened: the connection works, the backoff starts over. */
  #succeeded() {
    this.attempt = 0;
    this.opened = true;
    if (this.state !== 'open') this.#setState('open');
  }

  #fail(generation, reason) {
    if (generation !== this.generation) return;
    this.#teardown('error');
    this.#retry(reason);
  }

  /**
   * `EventSource` and `WebSocket` hide the status of a refused handshake, so after one fails
   * the client asks the feed directly whether its cursor is still valid: a `409` means the feed
   * was reset (an in-memory server restarted) and the client starts over from the head.
   */
  async #checkCursor() {
    if (this.cursor === null) return;
    try {
      const res = await fetch(this.#url('poll', { since: this.cursor, client: null }), { cache: 'no-store' });
      if (res.status === 409) this.#resetCursor();
    } catch {
      // The server is still unreachable; the reconnection attempt will say so.
    }
  }

  #resetCursor() {
    this.cursor = null;
    this.#setState(this.state, { reason: 'feed was reset (409): following it from its head' });
  }

  // --- short and long polling --------------------------------------------------------------

  async #pollLoop(generation) {
    const long = this.transport === 'long-poll';
    while (generation === this.generation) {
      const params = { since: this.cursor };
      if (long) params.timeout_ms = this.longPollTimeoutMs;
      const abort = new AbortController();
      this.abort = abort;
      this.#beginRequest(long ? 'long-poll' : 'short-poll');
      let res;
      let body = null;
      try {
        res = await fetch(this.#url(long ? 'long-poll' : 'poll', params), {
          cache: 'no-store',
          signal: abort.signal,
        });
        if (generation === this.generation) this.#answered();
        if (res.status === 200) body = await res.json();
        else if (res.status !== 204) await res.body?.cancel();
      } catch (err) {
        this.#fail(generation, err.name === 'AbortError' ? 'aborted' : 'network error');
        return;
      }
      if (generation !== this.generation) return;
      this.abort = null;
      if (res.status === 409) {
        this.#resetCursor();
        this.#fail(generation, 'feed was reset (409)');
        return;
      }
      if (res.status !== 200 && res.status !== 204) {
        this.#fail(generation, `HTTP ${res.status}`);
        return;
      }
      this.#succeeded();
      const at = performance.now();
      if (body) this.#batch(body, at);
      this.#endRequest(body && body.events.length > 0 ? 'events' : 'empty', at);
      if (!long) {
        // A pause or drop clears this timer; the loop then stays suspended here, unreferenced.
        await new Promise((resolve) => {
          this.timer = setTimeout(resolve, this.pollIntervalMs);
        });
      }
    }
  }

  /** A poll body: `{"events":[…],"next":M,"missed":K}`. */
  #batch({ events, next, missed }, at) {
    if (missed > 0) {
      this.#missed({ missed, next: events.length > 0 ? events[0].seq - 1 : next });
    }
    for (const event of events) this.#deliver(event, at);
    if (this.cursor === null || next > this.cursor) this.cursor = next;
  }

  // --- Server-Sent Events ------------------------------------------------------------------

  #openEventSource(generation) {
    const source = new EventSource(this.#url('sse', { since: this.cursor }));
    this.source = source;
    this.#beginRequest('sse');
    source.onopen = () => {
      if (generation !== this.generation) return;
      // After an automatic reconnection, the browser's new request is the one now open.
      if (!this.request) this.#beginRequest('sse');
      this.#answered();
      this.#succeeded();
    };
    source.onmessage = (m) => {
      if (generation !== this.generation) return;
      this.#deliver(JSON.parse(m.data), performance.now());
    };
    source.addEventListener('missed', (m) => {
      if (generation !== this.generation) return;
      this.#missed(JSON.parse(m.data));
    });
    source.onerror = () => {
      if (generation !== this.generation) return;
      if (source.readyState === EventSource.CONNECTING) {
        // The browser reconnects by itself after the server's `retry:` hint, sending
        // `Last-Event-ID`; the page only watches.
        this.#endRequest('error');
        this.opened = false;
        this.#setState('retrying', { reason: 'EventSource reconnecting with Last-Event-ID' });
      } else {
        // Closed for good (an HTTP error status, a wrong content type): reconnect by hand.
        this.#fail(generation, 'EventSource closed');
      }
    };
  }

  // --- WebSocket ---------------------------------------------------------------------------

  #openSocket(generation) {
    const url = new URL(this.#url('ws', { since: this.cursor }));
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url);
    this.socket = socket;
    this.#beginRequest('ws');
    socket.onopen = () => {
      if (generation !== this.generation) return;
      this.#answered();
      this.#succeeded();
    };
    socket.onmessage = (m) => {
      if (generation !== this.generation) return;
      this.#envelope(m.data);
    };
    socket.onclose = (e) => {
      if (generation !== this.generation) return;
      this.#fail(generation, e.code === 1006 ? 'connection lost' : `closed by the server (${e.code})`);
    };
  }

  /**
   * One WebSocket message or one line of the WebTransport feed stream: the same envelope, an
   * event (`{seq, ts, data}`), a `missed` notice, or a publish's acknowledgement.
   */
  #envelope(text) {
    this.heardAt = performance.now();
    const message = JSON.parse(text);
    if (message.op === 'missed') this.#missed(message);
    else if (message.op === 'published') this.pendingPublishes.shift()?.resolve({ seq: message.seq, via: this.transport });
    else if (message.op === undefined) this.#deliver(message, performance.now());
  }

  // --- WebTransport ------------------------------------------------------------------------

  /**
   * Opens `/wt?since=<cursor>` on the server's QUIC port, with the hashes of its certificates
   * when the server made them itself, and reads its feed stream line by line.
   */
  async #openSession(generation) {
    // The server renews a certificate it made before it expires (`--quic-cert-renew-before`):
    // a page open across a renewal holds only the older hashes, so it asks again first.
    if (this.sessionsOpened++ > 0 && this.quic?.certificate) {
      const fresh = await this.#quicAgain();
      if (generation !== this.generation) return;
      if (fresh?.serves === 'webtransport') this.quic = fresh;
    }
    const url = new URL(this.#url(this.quic?.path?.replace(/^\//, '') ?? 'wt', { since: this.cursor }));
    url.protocol = 'https:';
    if (this.quic?.port) url.port = String(this.quic.port);
    const options = {};
    const certificates = this.quic?.certificates ?? [this.quic?.certificate].filter(Boolean);
    if (certificates.length) {
      options.serverCertificateHashes = certificates.map((c) => ({ algorithm: 'sha-256', value: base64Bytes(c.sha256) }));
    }
    let session;
    try {
      session = new WebTransport(url.href, options);
    } catch (err) {
      this.#beginRequest('wt');
      this.#fail(generation, `WebTransport refused the URL: ${err.message}`);
      return;
    }
    this.session = session;
    this.#beginRequest('wt');
    session.closed.then(
      (info) => this.#fail(generation, `closed by the server (${info?.closeCode ?? 0}${info?.reason ? `: ${info.reason}` : ''})`),
      () => this.#fail(generation, 'connection lost'),
    );
    try {
      await session.ready;
    } catch {
      return; // `closed` rejects too, and says so.
    }
    if (generation !== this.generation) return;
    this.#answered();
    this.#succeeded();
    try {
      const streams = session.incomingUnidirectionalStreams.getReader();
      const { value: stream, done } = await streams.read();
      streams.releaseLock();
      if (done || generation !== this.generation) return;
      const lines = stream.pipeThrough(new TextDecoderStream()).getReader();
      let pending = '';
      for (;;) {
        const { value, done: ended } = await lines.read();
        if (ended || generation !== this.generation) break;
        pending += value;
        let end;
        while ((end = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, end);
          pending = pending.slice(end + 1);
          if (generation !== this.generation) return;
          // An empty line is the server's heartbeat: the session is alive, nothing to show.
          if (line === '') this.heardAt = performance.now();
          else this.#envelope(line);
        }
      }
    } catch {
      // The session ended under the read: `closed` says how.
    }
  }

  /**
   * Talks back on a bidirectional stream of its own: the `/ws` message written and finished,
   * the server's answer read to its end.
   */
  async #publishOverSession(data) {
    const session = this.session;
    if (!session || this.state !== 'open') throw new Error('the WebTransport session is not open');
    const stream = await session.createBidirectionalStream();
    const writer = stream.writable.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify({ op: 'publish', data })));
    await writer.close();
    this.#emit('message', this.request);
    const reply = await withTimeout(new Response(stream.readable).text(), PUBLISH_TIMEOUT_MS, 'no answer to publish');
    const message = JSON.parse(reply);
    if (message.op !== 'published') throw new Error(`unexpected answer: ${reply.slice(0, 100)}`);
    return { seq: message.seq, via: 'wt' };
  }

  // --- WebSocket publishing ------------------------------------------------------------------

  #publishOverSocket(data) {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error('the WebSocket is not open'));
    }
    return new Promise((resolve, reject) => {
      const pending = { resolve, reject };
      this.pendingPublishes.push(pending);
      socket.send(JSON.stringify({ op: 'publish', data }));
      this.#emit('message', this.request);
      setTimeout(() => {
        const i = this.pendingPublishes.indexOf(pending);
        if (i >= 0) {
          this.pendingPublishes.splice(i, 1);
          reject(new Error('no answer to publish'));
        }
      }, PUBLISH_TIMEOUT_MS);
    });
  }

  async #publishOverHttp(data) {
    const id = nextRequestId++;
    this.callbacks.onRequest({ type: 'sent', id, kind: 'publish', at: performance.now() });
    let outcome = 'error';
    try {
      const res = await fetch(this.#url('publish', {}), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(data),
      });
      const body = await res.json();
      if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
      outcome = 'events';
      return { seq: body.seq, via: 'http' };
    } finally {
      this.callbacks.onRequest({ type: 'done', id, kind: 'publish', at: performance.now(), outcome });
    }
  }

  // --- shared --------------------------------------------------------------------------------

  #deliver(event, at) {
    this.heardAt = at;
    if (this.cursor !== null && event.seq <= this.cursor) {
      this.#emit('event', this.request, at);
      this.callbacks.onEvent(event, { gap: 0, duplicate: true });
      return;
    }
    const gap = this.cursor === null ? 0 : event.seq - this.cursor - 1;
    this.cursor = event.seq;
    this.lastSeq = event.seq;
    this.#emit('event', this.request, at);
    this.callbacks.onEvent(event, { gap, duplicate: false });
  }

  #missed({ missed, next }) {
    if (this.cursor === null || next > this.cursor) this.cursor = next;
    this.callbacks.onMissed({ missed, next });
  }

  #setState(state, detail = {}) {
    this.state = state;
    this.callbacks.onState(state, detail);
  }

  #beginRequest(kind) {
    this.request = { id: nextRequestId++, kind, sentAt: performance.now(), since: this.cursor, answered: false };
    this.#emit('sent', this.request);
  }

  /** Response headers arrived (or the stream or socket opened) for the current request. */
  #answered() {
    if (this.request) this.request.answered = true;
    this.heardAt = performance.now();
  }

  #endRequest(outcome, at = performance.now()) {
    if (!this.request) return;
    this.#emit('done', this.request, at, outcome);
    this.request = null;
  }

  #emit(type, request, at = performance.now(), outcome = undefined) {
    if (!request) return;
    this.callbacks.onRequest({ type, id: request.id, kind: request.kind, at, outcome });
  }

  /** `GET /quic` again, or `null` when it does not answer in time. */
  async #quicAgain() {
    try {
      const res = await withTimeout(fetch(this.#url('quic'), { cache: 'no-store' }), PUBLISH_TIMEOUT_MS, 'GET /quic timed out');
      return res.ok ? await res.json() : null;
    } catch {
      return null;
    }
  }

  /** A URL relative to the page (or `baseUrl`), so the page works behind any host, port or prefix. */
  #url(path, params) {
    // A page resolves against its document; a worker (the shared mode) against its script.
    const url = new URL(path, this.baseUrl || globalThis.document?.baseURI || globalThis.location.href);
    const query = { ...params };
    if (!('client' in query)) query.client = this.clientId;
    for (const [key, value] of Object.entries(query)) {
      if (value !== null && value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.href;
  }
}

/** The bytes of a base64 string (a `GET /quic` certificate's hash). */
function base64Bytes(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function withTimeout(promise, ms, why) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(why)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
