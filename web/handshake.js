// The WebSocket handshake check, done in the page so the reader can see it is nothing magic.
//
// RFC 6455 section 4.2.2: the server proves it understood the upgrade (and is not, say, a cache
// replaying an old answer) by hashing the client's random key with a fixed GUID. It is not
// security: anyone can compute it. The browser hides both headers from scripts, so the page
// gets them from the server's per-client report and recomputes the answer here.

export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** `base64(SHA-1(key + GUID))`: the `Sec-WebSocket-Accept` a server must answer to `key`. */
export async function expectedAccept(key) {
  const input = new TextEncoder().encode(key + WS_GUID);
  // `crypto.subtle` exists only in secure contexts (https, or http on localhost); a phone that
  // opens the page at http://<laptop-ip>:8080 gets the small fallback below instead.
  const digest = globalThis.crypto?.subtle
    ? new Uint8Array(await crypto.subtle.digest('SHA-1', input))
    : sha1(input);
  return btoa(String.fromCharCode(...digest));
}

/** SHA-1 (FIPS 180-4) of `bytes`, for pages served over plain HTTP to another host. */
function sha1(bytes) {
  const length = bytes.length;
  const blocks = Math.ceil((length + 9) / 64);
  const m = new Uint8Array(blocks * 64);
  m.set(bytes);
  m[length] = 0x80;
  const view = new DataView(m.buffer);
  view.setUint32(m.length - 8, Math.floor((length * 8) / 2 ** 32));
  view.setUint32(m.length - 4, (length * 8) >>> 0);
  const h = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
  const w = new Uint32Array(80);
  const rotl = (x, n) => (x << n) | (x >>> (32 - n));
  for (let block = 0; block < blocks; block += 1) {
    for (let i = 0; i < 16; i += 1) w[i] = view.getUint32(block * 64 + i * 4);
    for (let i = 16; i < 80; i += 1) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    let [a, b, c, d, e] = h;
    for (let i = 0; i < 80; i += 1) {
      const [f, k] =
        i < 20 ? [(b & c) | (~b & d), 0x5a827999]
        : i < 40 ? [b ^ c ^ d, 0x6ed9eba1]
        : i < 60 ? [(b & c) | (b & d) | (c & d), 0x8f1bbcdc]
        : [b ^ c ^ d, 0xca62c1d6];
      const t = (rotl(a, 5) + f + e + k + w[i]) >>> 0;
      [e, d, c, b, a] = [d, c, rotl(b, 30) >>> 0, a, t];
    }
    h[0] = (h[0] + a) >>> 0;
    h[1] = (h[1] + b) >>> 0;
    h[2] = (h[2] + c) >>> 0;
    h[3] = (h[3] + d) >>> 0;
    h[4] = (h[4] + e) >>> 0;
  }
  const out = new Uint8Array(20);
  const outView = new DataView(out.buffer);
  h.forEach((word, i) => outView.setUint32(i * 4, word));
  return out;
}

export { sha1 as sha1ForTests };
