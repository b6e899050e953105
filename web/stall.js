// Telling a request the browser never sent from a slow server.
//
// Over HTTP/1.1 a browser opens at most six connections to one host for a whole profile (every
// tab of the page, and any worker), and each `EventSource` stream and each held long poll keeps
// one for as long as it is open. A seventh request is not refused: it waits in the browser's
// queue, with no error, no event and no timeout, and script cannot see that queue. A page that
// only watches its own requests therefore cannot tell "queued in the browser" from "the server is
// slow" — and shows `open` over a frozen pane.
//
// What the page can see is the server answering on *other* channels while one request waits:
// the WebSocket (Chromium and Firefox keep WebSockets out of the six-per-host pool), another
// transport's events, a stats response. The rule, checked a few times a second:
//
// * a request has had no response headers (a fetch that has not resolved, an `EventSource` that
//   has not opened) for `STALL_AFTER_MS`, and
// * the server was heard from on another channel *after* the request was sent, within the last
//   `ALIVE_WITHIN_MS` — so it is up and answering — and
// * the server would already have answered this request: short polls and SSE get their headers at
//   once; a long poll with `since=N` is answered as soon as an event past N exists, so it counts
//   from the moment another channel showed such an event (`dueAt`), or from the end of its hold
//   (`timeout_ms`) on a quiet feed.
//
// Then the request is `stalled`: waiting for a connection the browser will not give. The rule
// cannot prove where a request waits (a proxy that accepted it and holds it would look the same),
// so the page states what it measured — how long, and that the server answered elsewhere
// meanwhile — beside the likely cause. With no other channel alive it claims nothing.
//
// WebSockets are never judged (their own pool, and the evidence for the others); nor is an
// `EventSource` between the browser's own reconnection attempts, which the page cannot see as
// requests: that pane says `retrying` instead.
//
// Pure functions on `performance.now()` times, so the rule is tested without a browser.

/** How long a request may wait for its response headers before the page calls it stalled. */
export const STALL_AFTER_MS = 2000;
/** How recent a sign of life from another channel must be to count the server as up. */
export const ALIVE_WITHIN_MS = 3000;

/**
 * @param {{kind: string, sentAt: number, since: number|null, dueAt?: number|null}} waiting the
 *   unanswered request (see `FeedClient.waiting()`), with `dueAt` for a long poll: when another
 *   channel first showed an event it would be answered with, if one has.
 * @param {number} now
 * @param {{heardAt: number|null, longPollTimeoutMs?: number}} evidence `heardAt`: the latest
 *   time another channel heard from the server.
 * @returns {{waitedMs: number}|null} `null` when the request is not (or not provably) stalled.
 */
export function stallOf(waiting, now, { heardAt, longPollTimeoutMs = Infinity }) {
  if (!waiting) return null;
  const waitedMs = now - waiting.sentAt;
  if (waitedMs < STALL_AFTER_MS) return null;
  const alive = heardAt !== null && heardAt > waiting.sentAt && now - heardAt <= ALIVE_WITHIN_MS;
  if (!alive) return null;
  if (waiting.kind === 'long-poll') {
    const answerBy = Math.min(waiting.dueAt ?? Infinity, waiting.sentAt + longPollTimeoutMs);
    if (now - answerBy < STALL_AFTER_MS) return null;
  }
  return { waitedMs };
}

/**
 * Whether an event with `seq`, seen at `seenAt` on any channel, is one the long poll `waiting`
 * would be answered with: past its cursor, or (following from now, `since` null) published after
 * it was sent.
 */
export function answersLongPoll(waiting, seq, seenAt) {
  if (!waiting || waiting.kind !== 'long-poll') return false;
  return waiting.since === null ? seenAt > waiting.sentAt : seq > waiting.since;
}

/** The page's words for a stalled request. */
export function stallText({ waitedMs }) {
  return `no response headers for ${(waitedMs / 1000).toFixed(1)} s while the server answered other requests: waiting for a connection`;
}
