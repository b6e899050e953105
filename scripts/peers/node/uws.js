'use strict';
// uWebSockets.js as a fan-out peer: Node's fastest WebSocket server, its own pub/sub doing the
// fan-out (app.publish to a topic per channel). POST /pub/<channel> publishes the body as one
// text frame to every subscriber and answers {"seq":N}; GET /sub/<channel> upgrades. SSE is
// node:http's (http.js), as issue 29 asks.
//
// The native binary must be what runs: uWebSockets.js has no JavaScript fallback, and this
// process checks /proc/self/maps for the `.node` file it loaded and refuses to start without
// it; the path is in GET /peer/stats and in the line it prints on stderr at start.
//
// Fairness (scripts/peers/README.md): compression DISABLED, no automatic pings and no idle
// timeout (feedlab sends no heartbeat on a busy connection), and a slow consumer's buffer
// bounded at --max-backpressure bytes: past it uWS skips the message for that socket, and
// `drops` (the `dropped` handler) counts every skip.

const fs = require('node:fs');
const common = require('./common');

const opt = common.options({ host: '127.0.0.1', port: 0, max_backpressure: 1 << 20 });

let uWS;
try {
  uWS = require('uWebSockets.js');
} catch (e) {
  console.error(`uWebSockets.js does not load here: ${e.message}`);
  process.exit(3);
}

/** The uWebSockets.js binary this process mapped, or null. */
function nativeBinary() {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  const m = /\s(\/\S*uws_[^/\s]*\.node)$/m.exec(maps);
  return m ? m[1] : null;
}

const binary = nativeBinary();
if (!binary) {
  console.error('uWebSockets.js loaded without its native binary: refusing to measure a fallback');
  process.exit(3);
}
const pkg = (() => {
  try {
    return JSON.parse(fs.readFileSync(require.resolve('uWebSockets.js/package.json'), 'utf8'));
  } catch {
    return {};
  }
})();
console.error(`uWebSockets.js ${pkg.version || '?'} (${pkg.name || '?'}) native binary ${binary}`);

const seqs = new Map(); // channel -> last seq
let drops = 0;
let subscribers = 0;
let published = 0;

const app = uWS.App();
app.ws('/sub/:channel', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  idleTimeout: 0,
  sendPingsAutomatically: false,
  maxBackpressure: opt.max_backpressure,
  closeOnBackpressureLimit: false,
  upgrade: (res, req, context) => {
    const channel = req.getParameter(0);
    if (!common.CHANNEL.test(channel)) {
      res.writeStatus('404 Not Found').end();
      return;
    }
    res.upgrade(
      { channel },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    subscribers += 1;
    ws.subscribe(ws.getUserData().channel);
  },
  dropped: () => {
    drops += 1;
  },
  close: () => {
    subscribers -= 1;
  },
});

app.post('/pub/:channel', (res, req) => {
  const channel = req.getParameter(0);
  if (!common.CHANNEL.test(channel)) {
    res.writeStatus('404 Not Found').end();
    return;
  }
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  const chunks = [];
  let size = 0;
  res.onData((ab, last) => {
    size += ab.byteLength;
    if (size > common.MAX_BODY) {
      if (!aborted && last) res.cork(() => res.writeStatus('413 Payload Too Large').end(`publish body over ${common.MAX_BODY} bytes\n`));
      return;
    }
    // The ArrayBuffer is only valid during this call: copy it.
    chunks.push(Buffer.from(ab.slice(0)));
    if (!last) return;
    const body = Buffer.concat(chunks);
    const seq = (seqs.get(channel) || 0) + 1;
    seqs.set(channel, seq);
    published += 1;
    app.publish(channel, body, false, false);
    if (!aborted) {
      res.cork(() => res.writeHeader('content-type', 'application/json').end(`{"seq":${seq}}`));
    }
  });
});

app.get('/peer/stats', (res) => {
  res.writeHeader('content-type', 'application/json').end(
    JSON.stringify({
      peer: 'node-uws',
      versions: { ...common.versions([]), 'uWebSockets.js': pkg.version || null },
      package: pkg.name || null,
      native_binary: binary,
      websocket: 'uWebSockets.js',
      max_backpressure: opt.max_backpressure,
      subscribers: { ws: subscribers },
      published,
      drops,
    }),
  );
});

app.any('/*', (res) => {
  res.writeStatus('404 Not Found').end('POST /pub/<channel>, GET /sub/<channel> (WebSocket), GET /peer/stats\n');
});

let token = null;
app.listen(opt.host, opt.port, (t) => {
  if (!t) {
    console.error(`cannot listen on ${opt.host}:${opt.port}`);
    process.exit(1);
  }
  token = t;
  common.listening(opt.host, uWS.us_socket_local_port(t));
});
common.stopOn(() => token && uWS.us_listen_socket_close(token));
