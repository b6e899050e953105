'use strict';
// Socket.IO as a fan-out peer: one Node process, Socket.IO's server on node:http (its default
// WebSocket server, ws). A client connects to the main namespace with auth {"channel": C} and
// is joined to the room C; POST /pub/<channel> emits the body (a JSON envelope) to the room as
// the event "message", and answers {"seq":N}. Transports: WebSocket, and Engine.IO's long
// polling.
//
// Fairness (scripts/peers/README.md): perMessageDeflate and httpCompression off; heartbeats
// off in effect (pingInterval and pingTimeout at --ping-ms, 1e9 ms by default: feedlab sends
// no heartbeat on a busy connection; 2^31 ms would overflow Node's timers); the memory advice
// of Socket.IO's "Memory usage" page applied (the first HTTP request of each session
// discarded); ws's native add-ons (bufferutil, utf-8-validate) installed, as its "Performance
// tuning" page advises. Socket.IO buffers a slow consumer's packets without bound: nothing is
// dropped (`drops` stays 0).

const http = require('node:http');
const { Server } = require('socket.io');
const common = require('./common');

const opt = common.options({ host: '127.0.0.1', port: 0, ping_ms: 1e9 });
const seqs = new Map();
let published = 0;

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/peer/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        peer: 'socketio',
        versions: common.versions(['socket.io', 'engine.io', 'ws', 'bufferutil', 'utf-8-validate']),
        ping_ms: opt.ping_ms,
        subscribers: { all: io.engine.clientsCount },
        published,
        drops: 0,
      }),
    );
    return;
  }
  const m = /^\/pub\/([^/?]+)$/.exec(req.url || '');
  if (!m || req.method !== 'POST' || !common.CHANNEL.test(m[1])) {
    if (!req.url.startsWith('/socket.io/')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('POST /pub/<channel>, Socket.IO at /socket.io/, GET /peer/stats\n');
    }
    return;
  }
  const channel = m[1];
  const chunks = [];
  let size = 0;
  req.on('data', (d) => {
    size += d.length;
    if (size > common.MAX_BODY) {
      res.writeHead(413, { 'content-type': 'text/plain' });
      res.end(`publish body over ${common.MAX_BODY} bytes\n`);
      req.destroy();
    } else chunks.push(d);
  });
  req.on('end', () => {
    if (size > common.MAX_BODY) return;
    let envelope;
    try {
      envelope = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`the body is not JSON: ${e.message}\n`);
      return;
    }
    const seq = (seqs.get(channel) || 0) + 1;
    seqs.set(channel, seq);
    published += 1;
    io.to(channel).emit('message', envelope);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`{"seq":${seq}}`);
  });
});
server.keepAliveTimeout = 60_000;

const io = new Server(server, {
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  pingInterval: opt.ping_ms,
  pingTimeout: opt.ping_ms,
  maxHttpBufferSize: 64 * 1024,
  transports: ['polling', 'websocket'],
});

// Socket.IO's memory advice: drop the reference to each session's first HTTP request.
io.engine.on('connection', (rawSocket) => {
  rawSocket.request = null;
});

io.on('connection', (socket) => {
  const channel = socket.handshake.auth && socket.handshake.auth.channel;
  if (typeof channel !== 'string' || !common.CHANNEL.test(channel)) {
    socket.disconnect(true);
    return;
  }
  socket.join(channel);
});

server.listen(opt.port, opt.host, () => common.listening(opt.host, server.address().port));
common.stopOn(() => io.close());
