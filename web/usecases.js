// The seed's other use cases on the live page: a game (`?workload=game`) and a job's log
// (`?workload=job`), each followed by all four transports at once, showing what a person sees.
//
// Game: this page is also the game loop. A WebSocket of its own publishes the world's state
// (random bytes as `{"bin":"<base64>"}`) to a named feed at a fixed tick; each pane follows that
// feed its transport's way (the WebSocket with `encoding=binary`, getting the raw bytes) and sends
// inputs its way (binary messages up the WebSocket, `POST /input` for the others). Each pane shows
// the state's age when it arrived, the stalls (no state for more than 100 ms), input →
// acknowledgement, and the bytes a state took.
//
// Job: each pane follows a job of its own (its own named feed), whose lines this page publishes in
// bursts. Halfway through the first burst the pane reloads: it drops its connection and comes back
// from its cursor; the log marks where it resumed, and the counts say whether a line was lost or
// repeated. The job ends with its terminal event; the pane then tries once more, as a reloaded page
// would, and shows the answer (204: EventSource stops).
//
// The settings come from the URL, so a test can run a short job: `tick`, `inputs` (per second),
// `lines`, `burst` and `quiet` (ms), `bursts`.

const TRANSPORTS = ['short-poll', 'long-poll', 'sse', 'ws'];
const TITLES = { 'short-poll': 'Short polling', 'long-poll': 'Long polling', sse: 'Server-Sent Events', ws: 'WebSocket' };
const STALL_MS = 100;

const params = new URLSearchParams(location.search);
const workload = params.get('workload') === 'job' ? 'job' : 'game';
const num = (name, fallback) => {
  const v = Number(params.get(name));
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const id = Math.random().toString(36).slice(2, 10);
const base = new URL('.', location.href);
const wsBase = base.href.replace(/^http/, 'ws');

const $ = (sel, root = document) => root.querySelector(sel);
const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;

/** The `q` quantile of `values` (kept to the last 2,000), or null. */
function quantile(values, q) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
function keep(values, v) {
  values.push(v);
  if (values.length > 2000) values.splice(0, values.length - 2000);
}
const ms = (us) => (us == null ? '–' : (us / 1000).toFixed(1));

function pane(transport, template, way) {
  const el = $(template).content.firstElementChild.cloneNode(true);
  el.dataset.transport = transport;
  $('.pane-title', el).textContent = TITLES[transport];
  $('.way', el).textContent = way;
  $('#panes').append(el);
  const fields = Object.fromEntries([...el.querySelectorAll('[data-field]')].map((f) => [f.dataset.field, f]));
  return { el, set: (name, text) => { fields[name].textContent = String(text); }, fields };
}

/** One poll loop: `GET path()` until `stop()`; every body goes to `onBody`; 204 to `onNothing`. */
async function pollLoop({ path, every = 0, onBody, onNothing = () => {}, stop }) {
  while (!stop()) {
    const started = performance.now();
    try {
      const res = await fetch(path(), { cache: 'no-store' });
      // Stopped while the request was out (a reload): its answer belongs to no one.
      if (stop()) return;
      if (res.status === 200) onBody(await res.json());
      else if (res.status === 204) {
        if (onNothing(res) === false) return;
      } else await new Promise((r) => setTimeout(r, 500));
    } catch {
      await new Promise((r) => setTimeout(r, 500));
    }
    const wait = every - (performance.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

function base64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}
function randomBytes(min, max) {
  const n = min + Math.floor(Math.random() * (max - min + 1));
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A WebSocket for publishing to `feed` (`{"op":"publish"}` on a session of that feed). */
function publisher(feed) {
  const ws = new WebSocket(`${wsBase}ws?feed=${feed}`);
  const ready = new Promise((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`publisher for ${feed} failed`));
  });
  return {
    ready,
    send: (data, end = false) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify({ op: 'publish', data, ...(end ? { end: true } : {}) }));
    },
    close: () => ws.close(),
  };
}

// --- game ----------------------------------------------------------------------------------------

function game() {
  const tick = num('tick', 20);
  const inputsPerSec = num('inputs', 10);
  const feed = `game-${id}`;
  $('[data-field="explain"]').textContent =
    `This page runs the game loop: ${tick} states a second (100–300 random bytes each) into feed ${feed}; ` +
    `each pane follows it and sends ${inputsPerSec} inputs a second. The WebSocket gets the state's bytes as ` +
    'binary messages; the others carry them as base64 in JSON. A stall is more than 100 ms without a state.';
  const loop = publisher(feed);
  loop.ready.then(() => {
    setInterval(() => loop.send({ bin: base64(randomBytes(100, 300)) }), 1000 / tick);
  });
  for (const transport of TRANSPORTS) player(transport, feed, tick, inputsPerSec);
}

function player(transport, feed, tick, inputsPerSec) {
  const way = {
    ws: 'binary messages both ways (encoding=binary)',
    sse: 'EventSource down, POST /input up',
    'long-poll': 'held GETs down, POST /input up',
    'short-poll': `a GET every ${Math.round(1000 / tick)} ms, POST /input up`,
  }[transport];
  const p = pane(transport, '#game-pane', way);
  const ages = [];
  const acks = [];
  const sent = new Map();
  let states = 0;
  let acked = 0;
  let stalls = 0;
  let last = null;
  let bytesPerState = null;
  const client = `page-${id}-${transport}`;

  const state = (tsUs, bytes) => {
    const now = nowUs();
    keep(ages, Math.max(0, now - tsUs));
    if (last != null && now - last > STALL_MS * 1000) stalls += 1;
    last = now;
    states += 1;
    if (bytes) bytesPerState = bytes;
  };
  const ack = (n) => {
    const at = sent.get(n);
    if (at == null) return;
    sent.delete(n);
    acked += 1;
    keep(acks, nowUs() - at);
  };

  let n = 0;
  if (transport === 'ws') {
    const ws = new WebSocket(`${wsBase}ws?feed=${feed}&encoding=binary&client=${client}`);
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (m) => {
      if (!(m.data instanceof ArrayBuffer)) return;
      const v = new DataView(m.data);
      if (v.getUint8(0) === 0x01 && m.data.byteLength >= 18) {
        state(Number(v.getBigUint64(9)), m.data.byteLength);
      } else if (v.getUint8(0) === 0x02) ack(v.getUint32(1));
    };
    ws.onopen = () => {
      setInterval(() => {
        const body = randomBytes(20, 40);
        const msg = new Uint8Array(5 + body.length);
        msg[0] = 0x10;
        new DataView(msg.buffer).setUint32(1, n);
        msg.set(body, 5);
        sent.set(n, nowUs());
        n += 1;
        if (ws.readyState === WebSocket.OPEN) ws.send(msg);
      }, 1000 / inputsPerSec);
    };
  } else {
    // Inputs one after another, as a game's fetches would go on a busy HTTP/1.1 page.
    (async () => {
      for (;;) {
        const due = performance.now() + 1000 / inputsPerSec;
        const k = n++;
        sent.set(k, nowUs());
        try {
          const res = await fetch(`input?client=${client}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ n: k, d: base64(randomBytes(20, 40)) }),
          });
          if (res.ok) ack((await res.json()).ack);
        } catch {
          /* counted as not acknowledged */
        }
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    })();
    const onEvent = (e, bytes) => state(e.ts, bytes);
    if (transport === 'sse') {
      const es = new EventSource(`sse?feed=${feed}&client=${client}`);
      es.onmessage = (m) => onEvent(JSON.parse(m.data), m.data.length + 16);
    } else {
      let cursor = null;
      const since = () => (cursor == null ? '' : `&since=${cursor}`);
      pollLoop({
        path: () =>
          transport === 'long-poll'
            ? `long-poll?feed=${feed}&client=${client}&timeout_ms=20000${since()}`
            : `poll?feed=${feed}&client=${client}${since()}`,
        every: transport === 'short-poll' ? 1000 / tick : 0,
        onBody: (b) => {
          for (const e of b.events) onEvent(e, JSON.stringify(e).length);
          cursor = b.next;
        },
        stop: () => false,
      });
    }
  }
  setInterval(() => {
    const sinceLast = last == null ? 0 : (nowUs() - last) / 1000;
    p.set('age-p50', ms(quantile(ages, 0.5)));
    p.set('age-p99', ms(quantile(ages, 0.99)));
    p.set('stalls', stalls);
    p.set('ack-p50', ms(quantile(acks, 0.5)));
    p.set('ack-p99', ms(quantile(acks, 0.99)));
    p.set('states', states);
    p.set('acked', acked);
    p.set('state-bytes', bytesPerState ?? '–');
    p.el.classList.toggle('stalled', sinceLast > STALL_MS);
    p.fields['age-bar'].style.width = `${Math.min(100, sinceLast)}%`;
  }, 100);
}

// --- job -----------------------------------------------------------------------------------------

function job() {
  const lines = num('lines', 40);
  const burst = num('burst', 1000);
  const quiet = num('quiet', 3000);
  const bursts = num('bursts', 2);
  $('[data-field="explain"]').textContent =
    `Each pane follows its own job: ${bursts} bursts of ${lines} lines over ${burst} ms, ${quiet} ms apart, then the end. ` +
    'Halfway through the first burst the pane reloads (drops its connection and resumes from its cursor); ' +
    'a dashed line marks where. Reload again with the button. After the end the pane tries once more, as a reloaded page would.';
  for (const transport of TRANSPORTS) follower(transport, { lines, burst, quiet, bursts });
}

function follower(transport, job) {
  const feed = `job-${id}-${transport}`;
  const way = {
    ws: 'WebSocket, resumed with since=',
    sse: 'EventSource, resumed with since= (Last-Event-ID on its own reconnects)',
    'long-poll': 'held GETs with since=',
    'short-poll': 'a GET every 500 ms with since=',
  }[transport];
  const p = pane(transport, '#job-pane', way);
  const log = $('.log', p.el);
  const seen = new Map();
  let cursor = 0;
  let reloads = 0;
  let ended = false;
  let reloadedAt = null;
  let markNext = false;
  let close = () => {};
  const total = job.lines * job.bursts;

  const render = () => {
    const unique = [...seen.keys()].filter((s) => s <= total).length;
    p.set('lines', unique);
    p.set('repeated', [...seen.values()].reduce((a, k) => a + k - 1, 0));
    p.set('lost', ended ? total - unique : 0);
    p.set('reloads', reloads);
  };
  const line = (e) => {
    seen.set(e.seq, (seen.get(e.seq) ?? 0) + 1);
    cursor = Math.max(cursor, e.seq);
    if (reloadedAt != null) {
      p.set('first-after-reload', (performance.now() - reloadedAt).toFixed(0));
      reloadedAt = null;
    }
    const li = document.createElement('li');
    li.value = e.seq;
    li.textContent = e.end ? 'job done' : e.data.line;
    if (markNext) li.classList.add('resumed');
    if (e.end) li.classList.add('end');
    markNext = false;
    log.append(li);
    log.scrollTop = log.scrollHeight;
    if (e.end) {
      ended = true;
      p.set('state', 'done');
    }
    render();
  };
  const afterEnd = (status) => {
    p.set('after-end', status === 204 ? '204: stopped' : String(status));
  };

  const connect = () => {
    p.set('state', ended ? 'done' : 'following');
    if (transport === 'ws') {
      const ws = new WebSocket(`${wsBase}ws?feed=${feed}&since=${cursor}`);
      let live = true;
      ws.onmessage = (m) => {
        const e = JSON.parse(m.data);
        if (live && e.seq != null) line(e);
      };
      ws.onclose = (c) => {
        if (ended && c.code === 1000) {
          // A reloaded page after the end asks again. Its handshake would be answered 204 (and
          // the browser would log the failed socket), so the same question goes as a GET.
          fetch(`poll?feed=${feed}&since=${cursor}`, { cache: 'no-store' }).then((r) => afterEnd(r.status));
        }
      };
      close = () => {
        live = false;
        ws.close();
      };
    } else if (transport === 'sse') {
      const es = new EventSource(`sse?feed=${feed}&since=${cursor}`);
      es.onmessage = (m) => line(JSON.parse(m.data));
      es.onerror = () => {
        // After the end EventSource reconnected once with Last-Event-ID, got 204 and closed.
        if (ended && es.readyState === EventSource.CLOSED) afterEnd(204);
      };
      close = () => es.close();
    } else {
      let stopped = false;
      pollLoop({
        path: () =>
          transport === 'long-poll'
            ? `long-poll?feed=${feed}&since=${cursor}&timeout_ms=20000`
            : `poll?feed=${feed}&since=${cursor}`,
        every: transport === 'short-poll' ? 500 : 0,
        onBody: (b) => b.events.forEach(line),
        onNothing: (res) => {
          if (res.headers.get('feed-ended')) {
            afterEnd(res.status);
            return false;
          }
          return true;
        },
        stop: () => stopped,
      });
      close = () => {
        stopped = true;
      };
    }
  };
  const reload = () => {
    if (ended) return;
    close();
    reloads += 1;
    p.set('state', 'reloading');
    render();
    setTimeout(() => {
      markNext = true;
      reloadedAt = performance.now();
      connect();
    }, 300);
  };
  $('[data-action="reload"]', p.el).addEventListener('click', reload);

  // The job itself: its lines in bursts, from a publisher of its own.
  const pub = publisher(feed);
  pub.ready.then(async () => {
    connect();
    let i = 0;
    for (let b = 0; b < job.bursts; b += 1) {
      for (let k = 0; k < job.lines; k += 1) {
        pub.send({ i, line: `step ${b}.${k}: compiling module ${i}` });
        i += 1;
        if (b === 0 && k === Math.floor(job.lines / 2)) reload();
        await new Promise((r) => setTimeout(r, job.burst / job.lines));
      }
      if (b + 1 < job.bursts) await new Promise((r) => setTimeout(r, job.quiet));
    }
    pub.send({ done: true }, true);
  });
}

// -------------------------------------------------------------------------------------------------

for (const a of document.querySelectorAll('[data-workload]')) {
  if (a.dataset.workload === workload) a.setAttribute('aria-current', 'page');
}
$('[data-field="tagline"]').textContent =
  workload === 'game'
    ? 'A multiplayer game: inputs up, the world\'s state down at a fixed tick, on all four transports.'
    : 'A job\'s progress log: bursts of lines, a reload in the middle, an end, on all four transports.';
if (workload === 'game') game();
else job();
