//! `--compression`: what loadgen offers, what it decodes, and what the decoding costs it.
//!
//! With compression on, loadgen offers what a browser offers — WebSocket
//! `Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits` (RFC 7692), HTTP
//! `Accept-Encoding: gzip, deflate, br` — and decodes whatever the server picks, so the bytes on
//! the socket are what a browser would receive and the latency includes decoding. Off (the
//! default) offers nothing, which is what every run before this flag measured.
//!
//! HTTP bodies are decoded here, chunk by chunk as hyper hands them over (SSE events are parsed
//! from the decoded stream, so each event is timed when its bytes arrive), with flate2 (gzip,
//! zlib `deflate`) and brotli-decompressor (`br`). Each decode call is timed on the thread's CPU
//! clock (`CLOCK_THREAD_CPUTIME_ID`), which counts only the decoding, not waiting. WebSocket
//! messages are inflated inside the WebSocket library ([`crate::client::ws`] says why); there
//! the clock covers each whole receive poll, and only with compression offered.

use std::{
    collections::BTreeMap,
    io::{self, Write},
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Mutex,
    },
};

use bytes::Bytes;
pub use feedlab_report::model::compression::{result, Counted, ACCEPT_ENCODING, WS_OFFER};

/// `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CompressionMode {
    /// Offer nothing (results stay comparable with runs before the flag).
    #[default]
    Off,
    /// Offer what a browser offers and decode what the server picks.
    On,
    /// Every phase twice, without and with compression, interleaved.
    Both,
}

impl CompressionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::On => "on",
            Self::Both => "both",
        }
    }

    /// Whether each run of a phase offers compression, in order.
    pub fn offers(self) -> &'static [bool] {
        match self {
            Self::Off => &[false],
            Self::On => &[true],
            Self::Both => &[false, true],
        }
    }
}

/// Largest body (poll) or chunk (SSE) loadgen decodes: a compressed body that inflates past
/// this is refused with `decode_too_big` instead of filling memory. The same 16 MiB as a
/// WebSocket message.
pub const MAX_DECODED: usize = 16 << 20;

/// One client's decoding, across its connections (per client, so never contended).
#[derive(Debug, Default)]
pub struct Decoding {
    /// Payload bytes after decoding: HTTP bodies, WebSocket message payloads (also counted with
    /// compression off, where they are the bytes as received).
    decoded: AtomicU64,
    /// Thread CPU time in the decode calls (HTTP) or receive polls (WebSocket), ns.
    cpu_ns: AtomicU64,
    /// What the server answered to the offer, by answer: the agreed WebSocket extension, the
    /// `Content-Encoding`, or `none`.
    answers: Mutex<BTreeMap<String, u64>>,
}

impl Decoding {
    pub fn add(&self, decoded: usize, cpu_ns: u64) {
        self.decoded.fetch_add(decoded as u64, Relaxed);
        self.cpu_ns.fetch_add(cpu_ns, Relaxed);
    }

    /// Counts one answer (one WebSocket handshake, one HTTP response).
    pub fn answer(&self, what: &str) {
        let mut a = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        match a.get_mut(what) {
            Some(n) => *n += 1,
            None => {
                a.insert(what.to_owned(), 1);
            }
        }
    }

    pub fn decoded(&self) -> u64 {
        self.decoded.load(Relaxed)
    }

    pub fn cpu_ns(&self) -> u64 {
        self.cpu_ns.load(Relaxed)
    }

    pub fn answers(&self) -> BTreeMap<String, u64> {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// CPU time this thread has used, ns: a decode call runs on one thread without awaiting, so
/// the difference across it is the call's own CPU, whatever else the runtime does meanwhile.
pub fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// A `Vec` that refuses to grow past [`MAX_DECODED`], so a decoder writing into it cannot
/// inflate without bound.
#[derive(Debug, Default)]
pub struct Bounded(Vec<u8>);

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.len() + buf.len() > MAX_DECODED {
            return Err(io::Error::other(DecodeError::TooBig));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a body could not be decoded: the error kind the report counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A `Content-Encoding` loadgen did not offer.
    Unsupported,
    /// Inflates past [`MAX_DECODED`].
    TooBig,
    /// Not valid data of its encoding.
    Corrupt,
}

impl DecodeError {
    pub fn kind(self) -> &'static str {
        match self {
            Self::Unsupported => "decode_unsupported",
            Self::TooBig => "decode_too_big",
            Self::Corrupt => "decode_corrupt",
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl std::error::Error for DecodeError {}

fn decode_error(e: &io::Error) -> DecodeError {
    match e.get_ref().and_then(|i| i.downcast_ref::<DecodeError>()) {
        Some(d) => *d,
        None => DecodeError::Corrupt,
    }
}

/// Decodes one HTTP body as its chunks arrive.
pub enum BodyDecoder {
    Identity,
    Gzip(flate2::write::GzDecoder<Bounded>),
    Deflate(flate2::write::ZlibDecoder<Bounded>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Bounded>>),
}

/// brotli-decompressor's internal buffer, bytes (its own examples use 4 KiB).
const BROTLI_BUFFER: usize = 4096;

impl BodyDecoder {
    /// The decoder for a response's `Content-Encoding` (absent or `identity`: none).
    ///
    /// # Errors
    /// [`DecodeError::Unsupported`] for an encoding loadgen did not offer.
    pub fn for_encoding(encoding: Option<&str>) -> Result<Self, DecodeError> {
        match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "identity") => Ok(Self::Identity),
            Some("gzip" | "x-gzip") => Ok(Self::Gzip(flate2::write::GzDecoder::new(
                Bounded::default(),
            ))),
            Some("deflate") => Ok(Self::Deflate(flate2::write::ZlibDecoder::new(
                Bounded::default(),
            ))),
            Some("br") => Ok(Self::Brotli(Box::new(
                brotli_decompressor::DecompressorWriter::new(Bounded::default(), BROTLI_BUFFER),
            ))),
            Some(_) => Err(DecodeError::Unsupported),
        }
    }

    /// The name the report counts this answer under.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Identity => "none",
            Self::Gzip(_) => "gzip",
            Self::Deflate(_) => "deflate",
            Self::Brotli(_) => "br",
        }
    }

    /// Decodes the next chunk: what it adds to the body, counted (with its CPU) on `decoding`.
    ///
    /// # Errors
    /// When the chunk is not valid data of its encoding or inflates past [`MAX_DECODED`].
    pub fn feed(&mut self, chunk: Bytes, decoding: &Decoding) -> Result<Bytes, DecodeError> {
        // Not even the clock without an encoding: a run without compression makes no extra
        // system calls.
        let start = match self {
            Self::Identity => 0,
            _ => thread_cpu_ns(),
        };
        let out = match self {
            Self::Identity => Ok(chunk),
            Self::Gzip(d) => d
                .write_all(&chunk)
                .and_then(|()| d.flush())
                .map(|()| Bytes::from(std::mem::take(&mut d.get_mut().0))),
            Self::Deflate(d) => d
                .write_all(&chunk)
                .and_then(|()| d.flush())
                .map(|()| Bytes::from(std::mem::take(&mut d.get_mut().0))),
            Self::Brotli(d) => d
                .write_all(&chunk)
                .and_then(|()| d.flush())
                .map(|()| Bytes::from(std::mem::take(&mut d.get_mut().0))),
        }
        .map_err(|e| decode_error(&e))?;
        let cpu = match self {
            Self::Identity => 0,
            _ => thread_cpu_ns().saturating_sub(start),
        };
        decoding.add(out.len(), cpu);
        Ok(out)
    }
}

/// Decodes a whole body (a poll's answer).
///
/// # Errors
/// As [`BodyDecoder::feed`].
pub fn decode_body(
    encoding: Option<&str>,
    body: Bytes,
    decoding: &Decoding,
) -> Result<Bytes, DecodeError> {
    let mut d = BodyDecoder::for_encoding(encoding)?;
    decoding.answer(d.name());
    d.feed(body, decoding)
}

/// A response's `Content-Encoding`, when it is text.
pub fn content_encoding(headers: &hyper::HeaderMap) -> Option<&str> {
    headers
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
}

/// Adds what one client's decoder counted to its transport's totals.
pub fn count(into: &mut Counted, d: &Decoding) {
    into.bytes_decoded += d.decoded();
    into.cpu_ns += d.cpu_ns();
    for (k, v) in d.answers() {
        *into.answers.entry(k).or_default() += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_decodes_chunk_by_chunk_as_the_bytes_arrive() {
        let text = b"data: {\"seq\":1}\n\n".repeat(50);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&text[..400]).unwrap();
        e.flush().unwrap();
        let first = e.get_ref().len();
        e.write_all(&text[400..]).unwrap();
        let all = e.finish().unwrap();
        let decoding = Decoding::default();
        let mut d = BodyDecoder::for_encoding(Some("gzip")).unwrap();
        // The first flushed chunk already yields the first 400 bytes: SSE events are not held
        // back until the body ends.
        let a = d
            .feed(Bytes::copy_from_slice(&all[..first]), &decoding)
            .unwrap();
        assert_eq!(&a[..], &text[..400]);
        let b = d
            .feed(Bytes::copy_from_slice(&all[first..]), &decoding)
            .unwrap();
        assert_eq!(&b[..], &text[400..]);
        assert_eq!(decoding.decoded(), text.len() as u64);
    }

    #[test]
    fn each_offered_encoding_decodes_and_others_are_refused() {
        let body = b"{\"events\":[],\"next\":7}".repeat(20);
        let decoding = Decoding::default();
        let gz = decode_body(Some("gzip"), gzip(&body).into(), &decoding).unwrap();
        assert_eq!(&gz[..], &body[..]);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&body).unwrap();
        let de = decode_body(Some("deflate"), z.finish().unwrap().into(), &decoding).unwrap();
        assert_eq!(&de[..], &body[..]);
        let mut br = Vec::new();
        brotli_compress(&body, &mut br);
        let b = decode_body(Some("br"), br.into(), &decoding).unwrap();
        assert_eq!(&b[..], &body[..]);
        let plain = decode_body(None, Bytes::from(body.clone()), &decoding).unwrap();
        assert_eq!(&plain[..], &body[..]);
        assert_eq!(
            decode_body(Some("zstd"), Bytes::new(), &decoding).unwrap_err(),
            DecodeError::Unsupported
        );
        assert_eq!(
            decode_body(
                Some("gzip"),
                Bytes::from_static(b"not gzip at all"),
                &decoding
            )
            .unwrap_err(),
            DecodeError::Corrupt
        );
        let answers = decoding.answers();
        assert_eq!(answers["gzip"], 2);
        assert_eq!(answers["none"], 1);
    }

    /// A brotli stream of `data` with one uncompressed meta-block (RFC 7932 §9.2): enough to
    /// check decoding without a brotli encoder among the dependencies.
    fn brotli_compress(data: &[u8], out: &mut Vec<u8>) {
        assert!(!data.is_empty() && data.len() <= 1 << 16);
        // WBITS = 16: a single 0 bit. Then the meta-block header: ISLAST = 0, MNIBBLES = 4
        // (code 0), MLEN - 1 in 16 bits, ISUNCOMPRESSED = 1; pad to a byte; the bytes; then an
        // empty last meta-block (ISLAST = 1, ISLASTEMPTY = 1).
        let mut bits: u64 = 0;
        let mut n = 0;
        let put = |v: u64, w: u32, bits: &mut u64, n: &mut u32| {
            *bits |= v << *n;
            *n += w;
        };
        let mlen = (data.len() - 1) as u64;
        put(0, 1, &mut bits, &mut n);
        put(0, 1, &mut bits, &mut n);
        put(0, 2, &mut bits, &mut n);
        put(mlen, 16, &mut bits, &mut n);
        put(1, 1, &mut bits, &mut n);
        let bytes = n.div_ceil(8);
        out.extend_from_slice(&bits.to_le_bytes()[..bytes as usize]);
        out.extend_from_slice(data);
        out.push(0b11);
    }

    #[test]
    fn a_bomb_is_refused_before_it_fills_memory() {
        let zeros = vec![0u8; MAX_DECODED + 1];
        let decoding = Decoding::default();
        assert_eq!(
            decode_body(Some("gzip"), gzip(&zeros).into(), &decoding).unwrap_err(),
            DecodeError::TooBig
        );
    }

    #[test]
    fn modes_offer_in_order() {
        assert_eq!(CompressionMode::Off.offers(), [false]);
        assert_eq!(CompressionMode::Both.offers(), [false, true]);
    }
}
