// Captures the request heads Debian's Chromium sends for each kind of request a feedlab client
// makes, and writes them to loadgen/fixtures/chromium-request-heads.json.
//
//   node scripts/browser_heads/capture.mjs            (from the repository root)
//
// Needs `cd web && npm ci` (for playwright-core) and /usr/bin/chromium (or $FEEDLAB_CHROMIUM);
// `openssl` on PATH for the HTTP/2 part. Network: loopback only.
//
// HTTP/1.1: a raw TCP server (node:net) on a free loopback port sees the exact bytes of each
// request head. Chromium loads a tiny page from it and, from that page, makes the requests the
// live page (web/feed-client.js) makes: a short poll, a long poll, an EventSource, a WebSocket and
// a publish, each with the options feed-client.js uses. This runs twice in one browser context:
// first with no cookie, then after a same-origin response has set cookies (sized by the sourced
// default in loadgen/fixtures/README.md), so the second pass shows where `Cookie` goes.
// Both passes run against http://127.0.0.1 (which Chromium treats as a secure context, as it
// would an https origin) and again against http://feedlab.test (mapped to 127.0.0.1, but plain
// http to a name Chromium does not trust, as a LAN server would be: fewer headers).
//
// HTTP/2: Chromium speaks h2 only over TLS with ALPN, so a TLS server (self-signed certificate
// made with openssl into a temporary directory) offers `h2` and hands the decrypted stream to
// Node's http2 server. The script records each stream's header list as Node sees it (pseudo-
// headers included, in order) and the size of the HEADERS frame(s) on the wire, read from the
// decrypted byte stream. WebSocket over h2 is RFC 8441 extended CONNECT, which the server enables.
//
// Exits non-zero if any expected request is not seen within 10 s of its pass starting.
// HEADS_DEBUG=1 prints what arrives and the page's console.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(path.join(ROOT, 'web', 'package.json'));
const { chromium } = require('playwright-core');

// Options, for comparisons only (the committed fixture is the default, headless run):
//   --headed      launch a headed browser (needs a display: xvfb-run node scripts/...)
//   --out PATH    write there instead of the fixture
const argv = process.argv.slice(2);
const HEADED = argv.includes('--headed');
const OUT = argv.includes('--out')
  ? path.resolve(argv[argv.indexOf('--out') + 1])
  : path.join(ROOT, 'loadgen', 'fixtures', 'chromium-request-heads.json');
const EXECUTABLE = process.env.FEEDLAB_CHROMIUM ?? '/usr/bin/chromium';
const WAIT_MS = 10_000;
const KINDS = ['document', 'poll', 'long_poll', 'sse', 'ws', 'publish'];

// The same switches web/tests/helpers.mjs launches the project's test browser with.
const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
// Plus one switch of our own: a name that resolves to loopback but, unlike 127.0.0.1, is not a
// "potentially trustworthy" origin over plain http, as a LAN or internet server would not be.
const INSECURE_HOST = 'feedlab.test';
const EXTRA_ARGS = [`--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`];

// Cookies the second pass carries: COOKIE_COUNT first-party cookies of COOKIE_SIZE bytes each
// (name=value), joined by "; " into a Cookie value of COOKIE_COUNT*COOKIE_SIZE + 2*(COOKIE_COUNT-1)
// bytes. The numbers are the Web Almanac 2024 medians (see loadgen/fixtures/README.md). Values are
// fixed, not random, so that reruns produce the same bytes.
const COOKIE_COUNT = 7;
const COOKIE_SIZE = 39;
const COOKIE_NAMES = ['session', 'csrftoken', 'consent', 'prefs', 'locale', 'ab', 'visitor'];
const COOKIES = COOKIE_NAMES.slice(0, COOKIE_COUNT).map((name) => {
  const valueLen = COOKIE_SIZE - name.length - 1;
  const value = createHash('sha256').update(`feedlab-${name}`).digest('hex').repeat(2).slice(0, valueLen);
  return `${name}=${value}`;
});
const COOKIE_HEADER_BYTES = COOKIES.join('; ').length;

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>feedlab request heads</title>
<script>
// The requests web/feed-client.js makes, with the same options.
async function runAll(wsBase) {
  const poll = await fetch('/poll?since=0', { cache: 'no-store' });
  await poll.text();
  const longPoll = await fetch('/long-poll?since=0', { cache: 'no-store' });
  await longPoll.text();
  await new Promise((resolve, reject) => {
    const es = new EventSource('/sse?since=0');
    es.onopen = () => { es.close(); resolve(); };
    es.onerror = () => { es.close(); reject(new Error('EventSource failed')); };
  });
  await new Promise((resolve, reject) => {
    const ws = new WebSocket(wsBase + '/ws?since=0');
    ws.onopen = () => { ws.close(1000); resolve(); };
    ws.onerror = () => reject(new Error('WebSocket failed'));
  });
  const pub = await fetch('/publish', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ data: { text: 'hi' } }),
  });
  await pub.text();
}
// Sets the cookies with a same-origin fetch, so that the next navigation carries them.
async function login() {
  const res = await fetch('/login', { method: 'POST' });
  await res.text();
}
</script>
<p>feedlab request heads</p>
`;

function kindOf(method, target) {
  const p = target.split('?')[0];
  if (method === 'GET' && p === '/') return 'document';
  if (p === '/poll') return 'poll';
  if (p === '/long-poll') return 'long_poll';
  if (p === '/sse') return 'sse';
  if (p === '/ws') return 'ws';
  if (p === '/publish') return 'publish';
  return null;
}

/** Records requests by pass ("without_cookie", "with_cookie") and kind; the first of each kind in each pass. */
class Recorder {
  constructor() {
    this.pass = null;
    this.seen = {};
    this.others = [];
  }
  record(method, target, entry) {
    const kind = kindOf(method, target);
    if (!kind || !this.pass) {
      this.others.push({ pass: this.pass, method, target });
      return;
    }
    const bucket = (this.seen[this.pass] ??= {});
    if (!bucket[kind]) bucket[kind] = entry; // the first of each kind in a pass
  }
  /** Resolves once every kind has been seen in `pass`; rejects after WAIT_MS. */
  async waitAll(pass) {
    const deadline = Date.now() + WAIT_MS;
    const missing = () => KINDS.filter((k) => !this.seen[pass]?.[k]);
    while (missing().length) {
      if (Date.now() > deadline) throw new Error(`pass ${pass}: not seen within ${WAIT_MS} ms: ${missing().join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${WAIT_MS} ms`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// --- HTTP/1.1: raw bytes ----------------------------------------------------------------------

function parseHead(buf) {
  const text = buf.toString('latin1');
  const lines = text.slice(0, -4).split('\r\n');
  const requestLine = lines[0];
  const [method, target, version] = requestLine.split(' ');
  const headers = lines.slice(1).map((line) => {
    const i = line.indexOf(':');
    return [line.slice(0, i), line.slice(i + 1).replace(/^[ \t]+/, '')];
  });
  return { method, target, version, requestLine, headers, text };
}

function wsAccept(key) {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

function h1Response(status, headers, body = '') {
  const b = Buffer.from(body);
  const lines = [`HTTP/1.1 ${status}`, ...headers, `Content-Length: ${b.length}`, '', ''];
  return Buffer.concat([Buffer.from(lines.join('\r\n')), b]);
}

/** Serves one HTTP/1.1 connection (plain, or TLS with ALPN http/1.1), recording each head. */
function serveH1(socket, recorder, { scheme }) {
  let buf = Buffer.alloc(0);
  let upgraded = false;
  socket.on('error', () => {});
  socket.on('data', (chunk) => {
    if (process.env.HEADS_DEBUG) console.error(scheme, JSON.stringify(chunk.toString('latin1').slice(0, 400)));
    if (upgraded) {
      // WebSocket frames from the client: a close frame (opcode 8) gets one back, then we close.
      if ((chunk[0] & 0x0f) === 8) socket.end(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
      return;
    }
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const headBuf = buf.subarray(0, end + 4);
      const head = parseHead(headBuf);
      const lengthHeader = head.headers.find(([n]) => n.toLowerCase() === 'content-length');
      const bodyLen = lengthHeader ? Number(lengthHeader[1]) : 0;
      if (buf.length < end + 4 + bodyLen) return;
      const body = buf.subarray(end + 4, end + 4 + bodyLen).toString('utf8');
      buf = buf.subarray(end + 4 + bodyLen);
      recorder.record(head.method, head.target, {
        protocol: scheme === 'https' ? 'HTTP/1.1 over TLS' : 'HTTP/1.1',
        method: head.method,
        target: head.target,
        request_line: head.requestLine,
        headers: head.headers,
        head_bytes: headBuf.length,
        ...(bodyLen ? { body_bytes: bodyLen, body } : {}),
        raw: head.text,
      });
      if (answerH1(socket, head, recorder)) {
        upgraded = true;
        return;
      }
    }
  });
}

/** Answers one request; true if the connection switched to WebSocket. */
function answerH1(socket, head, recorder) {
  const p = head.target.split('?')[0];
  const json = ['Content-Type: application/json', 'Cache-Control: no-store'];
  if (head.method === 'GET' && p === '/') {
    socket.write(h1Response('200 OK', ['Content-Type: text/html; charset=utf-8', 'Cache-Control: no-store'], PAGE));
  } else if (p === '/login') {
    const set = COOKIES.map((c) => `Set-Cookie: ${c}; Path=/; SameSite=Lax`);
    socket.write(h1Response('200 OK', [...json, ...set], '{}'));
  } else if (p === '/poll' || p === '/long-poll') {
    socket.write(h1Response('200 OK', json, '{"events":[],"next":0}'));
  } else if (p === '/publish') {
    socket.write(h1Response('200 OK', json, '{"seq":1}'));
  } else if (p === '/sse') {
    // Headers only, no Content-Length: the stream stays open until the page closes it.
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\r\n: hi\n\n');
  } else if (p === '/ws') {
    const key = head.headers.find(([n]) => n.toLowerCase() === 'sec-websocket-key')?.[1] ?? '';
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${wsAccept(key)}\r\n\r\n`,
    );
    return true;
  } else if (p === '/favicon.ico') {
    socket.write(h1Response('204 No Content', [], ''));
  } else {
    socket.write(h1Response('404 Not Found', ['Content-Type: text/plain'], 'not found'));
  }
  return false;
}

// --- HTTP/2 over TLS ---------------------------------------------------------------------------

/** Reads HTTP/2 frames off the decrypted client byte stream; HEADERS sizes per stream id. */
let h2Connections = 0;
class H2FrameTap {
  constructor() {
    this.connection = ++h2Connections;
    this.buf = Buffer.alloc(0);
    this.prefaceLeft = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    this.byStream = new Map();
  }
  push(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.prefaceLeft) {
      const n = Math.min(this.prefaceLeft, this.buf.length);
      this.buf = this.buf.subarray(n);
      this.prefaceLeft -= n;
    }
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) return;
      const type = this.buf[3];
      const flags = this.buf[4];
      const id = this.buf.readUInt32BE(5) & 0x7fffffff;
      if (type === 0x1 || type === 0x9) {
        // HEADERS or CONTINUATION: header block fragment = payload minus padding and priority.
        let block = len;
        if (type === 0x1) {
          if (flags & 0x8) block -= 1 + this.buf[9];
          if (flags & 0x20) block -= 5;
        }
        const s = this.byStream.get(id) ?? {
          connection: this.connection,
          stream_id: id,
          frames: 0,
          frame_bytes: 0,
          header_block_bytes: 0,
          priority: false,
        };
        s.frames += 1;
        s.frame_bytes += 9 + len;
        s.header_block_bytes += block;
        if (type === 0x1 && flags & 0x20) s.priority = true;
        this.byStream.set(id, s);
      }
      this.buf = this.buf.subarray(9 + len);
    }
  }
}

/** A Duplex that feeds `tlsSocket`'s decrypted bytes to http2 and writes its answers back. */
function tappedDuplex(tlsSocket, tap) {
  const d = new Duplex({
    read() {
      tlsSocket.resume();
    },
    write(chunk, _enc, cb) {
      if (tlsSocket.destroyed) return cb();
      tlsSocket.write(chunk, cb);
    },
    final(cb) {
      tlsSocket.end();
      cb();
    },
    destroy(err, cb) {
      tlsSocket.destroy();
      cb(err);
    },
  });
  tlsSocket.on('data', (chunk) => {
    tap.push(chunk);
    if (!d.push(chunk)) tlsSocket.pause();
  });
  tlsSocket.on('end', () => d.push(null));
  tlsSocket.on('close', () => d.destroy());
  tlsSocket.on('error', () => {});
  return d;
}

function makeCert(dir) {
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) };
}

function h2Entry(rawHeaders, frameStats) {
  const headers = [];
  for (let i = 0; i < rawHeaders.length; i += 2) headers.push([rawHeaders[i], rawHeaders[i + 1]]);
  const get = (n) => headers.find(([k]) => k === n)?.[1];
  return {
    protocol: 'HTTP/2 over TLS',
    method: get(':method'),
    target: get(':path') ?? null,
    ...(get(':protocol') ? { extended_connect_protocol: get(':protocol') } : {}),
    headers,
    // Sum of name and value lengths, as if written without framing or compression.
    header_list_text_bytes: headers.reduce((s, [k, v]) => s + Buffer.byteLength(k) + Buffer.byteLength(v), 0),
    // RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE accounting: each field counts 32 + name + value.
    header_list_size: headers.reduce((s, [k, v]) => s + 32 + Buffer.byteLength(k) + Buffer.byteLength(v), 0),
    // On the wire (HPACK-compressed; depends on what earlier requests on the connection put in
    // the dynamic table, so see connection and stream_id for the order): HEADERS (+ CONTINUATION)
    // frames, 9-byte frame headers included; header_block_bytes is the HPACK block alone.
    wire: frameStats ?? null,
  };
}

function kindOfH2(method, pathStr, protocol) {
  if (method === 'CONNECT' && protocol === 'websocket') return 'ws';
  return kindOf(method, pathStr ?? '');
}

async function startH2(recorder, dir) {
  const { key, cert } = makeCert(dir);
  const h2 = http2.createServer({ settings: { enableConnectProtocol: true } });
  h2.on('session', (session) => session.on('error', () => {}));
  h2.on('stream', (stream, headers, _flags, rawHeaders) => {
    stream.on('error', () => {});
    const session = stream.session;
    // Node wraps a plain Duplex in a JSStreamSocket, whose `stream` is ours.
    const tap = session.socket?.feedlabTap ?? session.socket?.stream?.feedlabTap;
    // The HEADERS frame has been parsed by the time the stream event fires, and the tap saw the
    // bytes first.
    const frames = tap?.byStream.get(stream.id) ?? null;
    const method = headers[':method'];
    const p = headers[':path'];
    const kind = kindOfH2(method, p, headers[':protocol']);
    if (kind) recorder.record(method, kind === 'ws' ? '/ws' : p, h2Entry(rawHeaders, frames));
    else recorder.record(method, p ?? '', null);
    const json = { ':status': 200, 'content-type': 'application/json', 'cache-control': 'no-store' };
    const pp = (p ?? '').split('?')[0];
    if (kind === 'ws') {
      stream.respond({ ':status': 200 });
      stream.on('data', () => {});
      stream.on('end', () => stream.end());
    } else if (method === 'GET' && pp === '/') {
      stream.respond({ ':status': 200, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      stream.end(PAGE);
    } else if (pp === '/login') {
      stream.respond({ ...json, 'set-cookie': COOKIES.map((c) => `${c}; Path=/; SameSite=Lax`) });
      stream.end('{}');
    } else if (kind === 'poll' || kind === 'long_poll') {
      stream.respond(json);
      stream.end('{"events":[],"next":0}');
    } else if (kind === 'publish') {
      stream.on('data', () => {});
      stream.on('end', () => {
        stream.respond(json);
        stream.end('{"seq":1}');
      });
    } else if (kind === 'sse') {
      stream.respond({ ':status': 200, 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      stream.write(': hi\n\n');
    } else if (pp === '/favicon.ico') {
      stream.respond({ ':status': 204 });
      stream.end();
    } else {
      stream.respond({ ':status': 404 });
      stream.end();
    }
  });

  const server = tls.createServer({ key, cert, ALPNProtocols: ['h2', 'http/1.1'] }, (socket) => {
    if (socket.alpnProtocol === 'h2') {
      const tap = new H2FrameTap();
      const duplex = tappedDuplex(socket, tap);
      duplex.feedlabTap = tap;
      h2.emit('connection', duplex);
    } else {
      serveH1(socket, recorder, { scheme: 'https' });
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

// --- driving Chromium ---------------------------------------------------------------------------

async function runPasses(context, origin, wsBase, recorder) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); if (process.env.HEADS_DEBUG) console.error('console', m.text()); });
  for (const pass of ['without_cookie', 'with_cookie']) {
    recorder.pass = pass;
    const run = withTimeout(
      (async () => {
        await page.goto(`${origin}/`, { timeout: WAIT_MS });
        await page.evaluate((base) => window.runAll(base), wsBase);
      })(),
      `pass ${pass}: the page`,
    );
    await Promise.all([run, recorder.waitAll(pass)]);
    recorder.pass = null;
    if (pass === 'without_cookie') await page.evaluate(() => window.login());
  }
  await page.close();
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
}

function byKind(seen) {
  const out = {};
  for (const kind of ['poll', 'long_poll', 'sse', 'ws', 'publish', 'document']) {
    out[kind] = { without_cookie: seen.without_cookie[kind], with_cookie: seen.with_cookie[kind] };
  }
  return out;
}

async function main() {
  const chromiumVersion = execFileSync(EXECUTABLE, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] })
    .toString()
    .trim();

  // HTTP/1.1 on plain TCP. One server for both origins: each connection goes to the recorder of
  // the origin under test.
  const h1 = new Recorder();
  const h1insecure = new Recorder();
  let current = h1;
  const server = net.createServer((socket) => serveH1(socket, current, { scheme: 'http' }));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const insecureOrigin = `http://${INSECURE_HOST}:${server.address().port}`;

  const launchArgs = HEADED ? LAUNCH_ARGS.filter((a) => a !== '--headless') : LAUNCH_ARGS;
  const browser = await chromium.launch({
    executablePath: EXECUTABLE,
    timeout: 30_000,
    headless: !HEADED,
    args: [...launchArgs, ...EXTRA_ARGS],
  });
  // The browser's command line as the kernel has it (Playwright adds its own switches; Debian's
  // /usr/bin/chromium wrapper adds those of /etc/chromium.d).
  let commandLine = null;
  try {
    commandLine = execFileSync('ps', ['-o', 'args=', '--ppid', String(process.pid)])
      .toString()
      .trim()
      .split('\n')[0]
      .replace(/(playwright_chromiumdev_profile-)\w+/, '$1XXXXXX'); // a fresh temporary profile
  } catch {
    // ps missing: leave it out.
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'feedlab-heads-'));
  let h2Result = null;
  let h2Error = null;
  let tlsServer = null;
  try {
    const context = await browser.newContext();
    await runPasses(context, origin, `ws://127.0.0.1:${server.address().port}`, h1);
    await context.close();

    // The same over plain http to a name that is not loopback to Chromium.
    current = h1insecure;
    const insecureContext = await browser.newContext();
    await runPasses(insecureContext, insecureOrigin, `ws://${INSECURE_HOST}:${server.address().port}`, h1insecure);
    await insecureContext.close();

    // HTTP/2 over TLS.
    const h2rec = new Recorder();
    try {
      tlsServer = await startH2(h2rec, dir);
      const port = tlsServer.address().port;
      const h2context = await browser.newContext({ ignoreHTTPSErrors: true });
      await runPasses(h2context, `https://127.0.0.1:${port}`, `wss://127.0.0.1:${port}`, h2rec);
      await h2context.close();
      h2Result = { origin: `https://127.0.0.1:${port}`, requests: byKind(h2rec.seen) };
    } catch (err) {
      h2Error = err;
    }
  } finally {
    await browser.close();
    server.close();
    tlsServer?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (h2Error) throw h2Error;

  const fixture = {
    chromium: chromiumVersion,
    browser_version: browser.version(),
    captured: new Date().toISOString().slice(0, 10),
    command: 'node scripts/browser_heads/capture.mjs',
    headless: !HEADED,
    launch: {
      executable: EXECUTABLE,
      args: launchArgs,
      extra_args: EXTRA_ARGS,
      via: `playwright-core ${require('playwright-core/package.json').version} chromium.launch (default context, no overrides)`,
      command_line: commandLine,
    },
    origin,
    notes: [
      'Host, Origin and Referer name the capture server (127.0.0.1 and a free port): substitute the target server\'s.',
      'poll and long_poll are fetched with { cache: "no-store" }, as web/feed-client.js does; that adds Pragma and Cache-Control.',
      'with_cookie: after a same-origin response set the cookies in "cookie"; without_cookie: a fresh context.',
      'document: the page navigation itself, for reference (with_cookie is a second navigation).',
      'head_bytes: request line through the blank line, exactly as received; body not included.',
    ],
    cookie: {
      cookies: COOKIES.length,
      cookie_bytes_each: COOKIE_SIZE,
      header_value_bytes: COOKIE_HEADER_BYTES,
      value: COOKIES.join('; '),
      source: 'HTTP Archive Web Almanac 2024, Cookies chapter: medians of 7 first-party cookies per site and 39 bytes per first-party cookie (desktop, top 1M). See loadgen/fixtures/README.md.',
    },
    requests: byKind(h1.seen),
    insecure_origin: {
      origin: insecureOrigin,
      note:
        'Plain http to a host name (mapped to 127.0.0.1 by --host-resolver-rules) that Chromium does not treat as ' +
        'potentially trustworthy, as it would not a LAN or internet server: no sec-ch-ua* (client hints) and no ' +
        'Sec-Fetch-* headers, and Accept-Encoding without br and zstd.',
      requests: byKind(h1insecure.seen),
    },
    h2: h2Result,
  };
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(fixture, null, 2)}\n`);

  const rows = [];
  const pair = (v) => `${String(v.without_cookie.head_bytes).padStart(4)} / ${String(v.with_cookie.head_bytes).padStart(4)} B`;
  for (const [kind, v] of Object.entries(fixture.requests)) {
    const h2v = fixture.h2?.requests[kind];
    rows.push(
      `${kind.padEnd(10)} h1 ${pair(v)}   insecure h1 ${pair(fixture.insecure_origin.requests[kind])}` +
        (h2v
          ? `   h2 list ${h2v.without_cookie.header_list_text_bytes} / ${h2v.with_cookie.header_list_text_bytes} B,` +
            ` wire ${h2v.without_cookie.wire?.frame_bytes} / ${h2v.with_cookie.wire?.frame_bytes} B`
          : ''),
    );
  }
  console.log(`${chromiumVersion}\nwrote ${path.relative(ROOT, OUT)} (without / with cookie)\n${rows.join('\n')}`);
}

main().catch((err) => {
  console.error(`capture failed: ${err.stack ?? err}`);
  process.exit(1);
});
