'use strict';
// Node's own HTTP server as a fan-out peer: SSE over node:http, WebSockets over `ws` on the same
// port, one process. POST /pub/<channel> sends the body to every subscriber of the channel as
// it is (an SSE record `id: N\ndata: <body>\n\n`, the bytes feedlab's server sends, or one
// WebSocket text frame) and answers {"seq":N}. GET /sub/<channel> subscribes (an upgrade:
// WebSocket; else SSE). Nothing is kept for a client that comes back later.
//
// Fairness (scripts/peers/README.md): permessage-deflate off, no heartbeats (feedlab sends
// none on a busy stream), no limit on a slow consumer's buffer (node and ws buffer without
// bound, so nothing is dropped: `drops` stays 0 and the memory shows it).

const http = require('node:http');
const { WebSocketServer } = require('ws');
const common = require('./common');

const opt = common.options({ host: '127.0.0.1', port: 0 });
const channels = new Map(); // id -> { seq, sse: Set<res>, ws: Set<WebSocket> }
let published = 0;

function channel(id) {
  let c = channels.get(id);
  if (!c) {
    c = { seq: 0, sse: new Set(), ws: new Set() };
    channels.set(id, c);
  }
  return c;
}

function gone(id) {
  const c = channels.get(id);
  if (c && c.seq === 0 && c.sse.size === 0 && c.ws.size === 0) channels.delete(id);
}

function route(url) {
  const m = /^\/(pub|sub)\/([^/?]+)(?:\?.*)?$/.exec(url || '');
  return m && common.CHANNEL.test(m[2]) ? { kind: m[1], id: m[2] } : null;
}

function publish(c, body) {
  c.seq += 1;
  published += 1;
  if (c.sse.size) {
    const record = common.sseRecord(c.seq, body);
    for (const res of c.sse) res.write(record);
  }
  for (const ws of c.ws) ws.send(body, { binary: false, compress: false });
}

function stats() {
  let sse = 0;
  let ws = 0;
  for (const c of channels.values()) {
    sse += c.sse.size;
    ws += c.ws.size;
  }
  return {
    peer: 'node-http',
    versions: common.versions(['ws', 'bufferutil', 'utf-8-validate']),
    websocket: 'ws',
    subscribers: { sse, ws },
    published,
    drops: 0,
  };
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/peer/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats()));
    return;
  }
  const r = route(req.url);
  if (r && r.kind === 'pub' && req.method === 'POST') {
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
      const c = channel(r.id);
      publish(c, Buffer.concat(chunks));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"seq":${c.seq}}`);
    });
    return;
  }
  if (r && r.kind === 'sub' && req.method === 'GET') {
    const c = channel(r.id);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    c.sse.add(res);
    res.on('close', () => {
      c.sse.delete(res);
      gone(r.id);
    });
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('POST /pub/<channel>, GET /sub/<channel> (SSE or WebSocket), GET /peer/stats\n');
});
// The publisher keeps one connection; SSE streams are responses, not requests, so no request
// timeout applies to them.
server.keepAliveTimeout = 60_000;

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: 64 * 1024,
});
server.on('upgrade', (req, socket, head) => {
  const r = route(req.url);
  if (!r || r.kind !== 'sub') {
    socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const c = channel(r.id);
    c.ws.add(ws);
    ws.on('error', () => {});
    ws.on('close', () => {
      c.ws.delete(ws);
      gone(r.id);
    });
  });
});

server.listen(opt.port, opt.host, () => common.listening(opt.host, server.address().port));
common.stopOn(() => server.close());
