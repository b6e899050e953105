// What each pane's own connection would cost a phone's radio.
//
// A radio wakes for any packet, and the packets that wake it on a quiet feed are the ones a page
// never sees: an SSE comment, a WebSocket ping and the browser's pong, a poll's empty answer. The
// server writes and reads them all, so it keeps their times for this page's client id and runs
// the radio model over them (feedlab-radio, the RRC simulation loadgen's report uses):
// `GET /stats/client/ID/radio?profile=NAME`. This module asks and words the answer; it models
// nothing, so the page and the report cannot disagree about the radio.

/** How often the figures are asked for: they cover minutes, so faster would show nothing new. */
export const RADIO_PERIOD_MS = 2000;
export const DEFAULT_PROFILE = 'lte';

/** What a write with no event is, per transport, and what the client sends. */
const NO_EVENT = { 'short-poll': 'empty answers', 'long-poll': 'empty answers', sse: 'heartbeats', ws: 'pings', wt: 'heartbeats' };
const FROM_CLIENT = { 'short-poll': 'polls', 'long-poll': 'polls', sse: 'its request', ws: 'upgrade, pongs, sends', wt: 'CONNECT, sends' };

/** The server's radio figures for `clientId` on `profile`, or `null` (not seen yet, away). */
export async function fetchRadio(clientId, profile) {
  try {
    const url = `stats/client/${encodeURIComponent(clientId)}/radio?profile=${encodeURIComponent(profile)}`;
    const res = await fetch(url, { cache: 'no-store' });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

/**
 * The words a pane shows for its transport's `figures` (one entry of the answer's `transports`):
 * wake-ups per hour, radio-on share, what woke the radio, energy per hour, and a sentence saying
 * which of those wake-ups the feed's own events account for.
 */
export function radioWords(transport, figures) {
  const woken = figures.woken_by ?? {};
  const byEvent = woken.event ?? 0;
  const byNoEvent = woken.no_event ?? 0;
  const byClient = woken.client ?? 0;
  const parts = [
    `${NO_EVENT[transport]} ${byNoEvent}`,
    `events ${byEvent}`,
    `${FROM_CLIENT[transport]} ${byClient}`,
  ];
  const others = byNoEvent + byClient;
  let why;
  if (figures.wake_ups === 0) why = 'No wake-up in this window: the radio stayed up or asleep.';
  else if (figures.wake_ups === 1 && figures.radio_on_share > 0.99)
    why = 'Woken once; everything since came before the tail ran out, so the radio never slept.';
  else if (others > byEvent)
    why = `${others} of ${figures.wake_ups} wake-ups came from ${NO_EVENT[transport]} or ${FROM_CLIENT[transport]}, not from events: each keeps the radio up for its tail.`;
  else why = `Events woke the radio ${byEvent} of ${figures.wake_ups} times.`;
  return {
    wakeUps: `${Math.round(figures.wake_ups_per_hour).toLocaleString('en-US')} /h`,
    radioOn: `${(100 * figures.radio_on_share).toFixed(1)} %`,
    wokenBy: parts.join(' · '),
    energy: `${Math.round(figures.energy_per_hour_j).toLocaleString('en-US')} J/h`,
    window: `last ${Math.round(figures.window_s)} s, ${figures.wake_ups} wake-up${figures.wake_ups === 1 ? '' : 's'}`,
    why,
  };
}
