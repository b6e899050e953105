//! gzip for the HTTP transports (SSE, polls, long-polls), without giving up "encode each event
//! once and share the bytes".
//!
//! A gzip member (RFC 1952) is a 10-byte header, a deflate stream (RFC 1951), and a trailer
//! holding the CRC32 and length of the uncompressed data. A deflate stream may be cut into any
//! number of non-final blocks; a *sync flush* ends the blocks written so far on a byte boundary
//! (with an empty stored block). So an event compressed on its own, by a compressor in fresh
//! state, with a sync flush, is a [`Piece`] that can be written, as it is, into the middle of
//! any member: it does not refer to earlier bytes, and it ends where the next piece can begin.
//! Each event is compressed once, on its first gzip'd delivery (not by the publisher, which does
//! not know whether anyone will ask), and every connection shares the bytes. What is per
//! connection is a [`Member`]: a running CRC32 combined from each piece's CRC32 and length
//! (`crc32fast`'s `combine`, no pass over the data), and the trailer at the end.
//!
//! The price of sharing: no piece can refer to another, so repetition *across* events (the JSON
//! keys every event repeats) is not compressed, and every piece pays the sync flush's 4-5 bytes.
//! [`GzStream`] is the other trade, one compressor per response with its history (`--http-gzip
//! stream`): smaller output, but that compressor's memory (zlib-rs's state, about 320 KiB at the default window)
//! and CPU for every connection. The book (docs/src/results/compression.md) has the numbers for each payload kind
//! (`cargo run -p server --example gzip_sizes`).
//!
//! `br` (Brotli) is not offered: it would need a second codec for the same trade (a Brotli
//! stream cannot be stitched from independently compressed pieces the way deflate blocks can,
//! so shared mode would not exist for it), and every client that sends `br` also sends `gzip`.

use std::cell::RefCell;

use actix_web::http::header::{self, AcceptEncoding, Encoding, HeaderMap};
use bytes::{BufMut as _, Bytes, BytesMut};
use crc32fast::Hasher;
use flate2::{Compress, Compression, FlushCompress};

/// `--http-gzip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpGzip {
    /// Each event compressed once into a piece every gzip'd response shares.
    Shared,
    /// One compressor per response, with its history: better ratio, per-connection memory.
    Stream,
    /// Never compress.
    Off,
}

/// Deflate level of events and streams: zlib's default, the usual speed/size balance (on
/// events of a few hundred bytes the levels above it find next to nothing more).
pub const LEVEL: u32 = 6;

/// The gzip header: deflate, no name or comment, no modification time, OS "unknown".
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The `Content-Encoding` this response gets: gzip when `mode` allows it and the request's
/// `Accept-Encoding` accepts gzip with a non-zero q-value (actix-web's parser and negotiation,
/// RFC 9110 section 12.5.3). An unparsable header is treated as no header: identity.
pub fn negotiate(mode: HttpGzip, headers: &HeaderMap) -> Option<HttpGzip> {
    if mode == HttpGzip::Off {
        return None;
    }
    let items = header::from_comma_delimited(headers.get_all(header::ACCEPT_ENCODING)).ok()?;
    if items.is_empty() {
        return None;
    }
    let supported = [Encoding::gzip(), Encoding::identity()];
    (AcceptEncoding(items).negotiate(supported.iter()) == Some(Encoding::gzip())).then_some(mode)
}

/// Some data as raw deflate blocks that end on a byte boundary and refer to nothing before them:
/// a piece of any gzip member, shared by every response that carries the data.
#[derive(Debug, Clone)]
pub struct Piece {
    deflate: Bytes,
    crc: u32,
    len: u64,
}

thread_local! {
    /// One compressor of each level per thread, reset before each piece: fresh state without
    /// allocating (and zeroing) a new one per event.
    static COMPRESSED: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(LEVEL), false));
    static STORED: RefCell<Compress> = RefCell::new(Compress::new(Compression::none(), false));
}

impl Piece {
    /// `data` compressed at [`LEVEL`].
    pub fn compressed(data: &[u8]) -> Self {
        COMPRESSED.with(|c| Self::deflate(&mut c.borrow_mut(), data))
    }

    /// `data` in stored (uncompressed) blocks: for the few bytes around events (a poll body's
    /// brackets and commas), where a compressed block would be no smaller.
    pub fn stored(data: &[u8]) -> Self {
        STORED.with(|c| Self::deflate(&mut c.borrow_mut(), data))
    }

    fn deflate(c: &mut Compress, data: &[u8]) -> Self {
        c.reset();
        Self {
            deflate: sync_flushed(c, data).into(),
            crc: crc32fast::hash(data),
            len: data.len() as u64,
        }
    }

    /// The deflate bytes, shared.
    pub fn bytes(&self) -> &Bytes {
        &self.deflate
    }

    /// Bytes of the data before compression.
    pub fn raw_len(&self) -> u64 {
        self.len
    }
}

/// `data` through `c` as raw deflate ending in a sync flush (an empty stored block,
/// `00 00 ff ff`), so the output ends on a byte boundary and decodes without what follows it;
/// `c`'s history is kept (reset it first for bytes that depend on nothing before them). The one
/// deflate loop of the server: gzip pieces and streams here, permessage-deflate messages in
/// [`crate::transport::ws::deflate`].
pub fn sync_flushed(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let start = c.total_in();
    loop {
        let at = (c.total_in() - start) as usize;
        out.reserve(data.len() - at + data.len() / 8 + 64);
        // flate2 fails only on a misused stream (after `finish`), which this never does.
        c.compress_vec(&data[at..], &mut out, FlushCompress::Sync)
            .expect("raw deflate of an in-memory buffer");
        // Done when all input is in and the flush did not fill the buffer (a full buffer may
        // hold back the rest of the flush).
        if (c.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
            return out;
        }
    }
}

/// One response's gzip member made of shared [`Piece`]s: [`GZIP_HEADER`], the pieces in
/// order, then [`Member::trailer`].
#[derive(Debug, Default)]
pub struct Member {
    crc: Hasher,
}

impl Member {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `piece`'s CRC32 and length to the member's; returns its bytes to write.
    pub fn push(&mut self, piece: &Piece) -> Bytes {
        self.crc
            .combine(&Hasher::new_with_initial_len(piece.crc, piece.len));
        piece.deflate.clone()
    }

    /// Ends the member: the final (empty, fixed-Huffman) deflate block, then CRC32 and length
    /// modulo 2^32, little-endian.
    pub fn trailer(&self) -> [u8; 10] {
        let mut out = [0u8; 10];
        out[0] = 0x03;
        out[2..6].copy_from_slice(&self.crc.clone().finalize().to_le_bytes());
        out[6..].copy_from_slice(&(self.crc.total_len() as u32).to_le_bytes());
        out
    }
}

/// One response's own compressor (`--http-gzip stream`): everything written so far is the
/// history the next bytes are compressed against; [`GzStream::flush`] hands out what a client
/// can decode up to now.
pub struct GzStream {
    encoder: flate2::write::GzEncoder<Vec<u8>>,
}

impl Default for GzStream {
    fn default() -> Self {
        Self::new()
    }
}

impl GzStream {
    pub fn new() -> Self {
        Self {
            encoder: flate2::GzBuilder::new()
                .operating_system(0xff)
                .write(Vec::new(), Compression::new(LEVEL)),
        }
    }

    /// Compresses `data` (holding it until the next flush).
    pub fn write(&mut self, data: &[u8]) {
        use std::io::Write as _;
        // Writing into a Vec fails only when memory does.
        self.encoder
            .write_all(data)
            .expect("gzip into a Vec cannot fail");
    }

    /// Everything written so far, decodable (a sync flush); the gzip header comes with the first.
    pub fn flush(&mut self) -> Bytes {
        use std::io::Write as _;
        self.encoder.flush().expect("gzip into a Vec cannot fail");
        std::mem::take(self.encoder.get_mut()).into()
    }

    /// The rest of the member: the final block and the trailer.
    pub fn finish(&mut self) -> Bytes {
        self.encoder
            .try_finish()
            .expect("gzip into a Vec cannot fail");
        std::mem::take(self.encoder.get_mut()).into()
    }
}

/// A whole body in one gzip member, the way `mode` compresses: the parts' pieces (each the
/// caller's shared one, or stored) stitched together, or one compressor over all of it.
/// Returns the body and its length before compression.
pub fn member_body<'a>(mode: HttpGzip, parts: impl Iterator<Item = Part<'a>>) -> (Bytes, u64) {
    match mode {
        HttpGzip::Stream | HttpGzip::Off => {
            let mut gz = GzStream::new();
            let mut raw = 0;
            for part in parts {
                let data = part.data();
                raw += data.len() as u64;
                gz.write(data);
            }
            (gz.finish(), raw)
        }
        HttpGzip::Shared => {
            let mut member = Member::new();
            let mut body = BytesMut::with_capacity(256);
            body.put_slice(&GZIP_HEADER);
            for part in parts {
                let piece = match part {
                    Part::Shared { piece, .. } => member.push(piece),
                    Part::Own(data) => member.push(&Piece::stored(data)),
                };
                body.put_slice(&piece);
            }
            body.put_slice(&member.trailer());
            (body.freeze(), member.crc.total_len())
        }
    }
}

/// A part of a [`member_body`].
pub enum Part<'a> {
    /// Data with its shared piece (an event's).
    Shared { data: &'a [u8], piece: &'a Piece },
    /// Bytes of this response only (brackets, separators, a cursor): stored as they are.
    Own(&'a [u8]),
}

impl Part<'_> {
    fn data(&self) -> &[u8] {
        match self {
            Part::Shared { data, .. } => data,
            Part::Own(data) => data,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use actix_web::http::header::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    fn gunzip(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("a valid gzip member");
        out
    }

    fn stitched(datas: &[Vec<u8>], stored_every: usize) -> (Bytes, u64) {
        let pieces: Vec<Piece> = datas.iter().map(|d| Piece::compressed(d)).collect();
        member_body(
            HttpGzip::Shared,
            datas.iter().zip(&pieces).enumerate().map(|(i, (d, p))| {
                if stored_every > 0 && i % stored_every == 0 {
                    Part::Own(d)
                } else {
                    Part::Shared { data: d, piece: p }
                }
            }),
        )
    }

    #[test]
    fn a_member_of_shared_pieces_decodes_to_the_concatenation() {
        let datas: Vec<Vec<u8>> = vec![
            b"id: 1\ndata: {\"seq\":1}\n\n".to_vec(),
            Vec::new(),
            b",".to_vec(),
            "x".repeat(70_000).into_bytes(),
            b"\xff\x00binary".to_vec(),
        ];
        let (body, raw) = stitched(&datas, 2);
        assert_eq!(gunzip(&body), datas.concat());
        assert_eq!(raw, datas.concat().len() as u64);
        // The CRC in the trailer is the whole data's (GzDecoder checks it, but say it here too).
        let crc = crc32fast::hash(&datas.concat());
        assert_eq!(&body[body.len() - 8..body.len() - 4], &crc.to_le_bytes());
    }

    #[test]
    fn a_piece_is_the_same_bytes_whatever_came_before() {
        let a = Piece::compressed(b"{\"seq\":1,\"data\":\"hello\"}");
        let _ = Piece::compressed(&b"hello hello hello".repeat(100));
        let b = Piece::compressed(b"{\"seq\":1,\"data\":\"hello\"}");
        assert_eq!(a.bytes(), b.bytes());
        // And it ends on a sync flush's empty stored block, so a decoder has all of it.
        assert!(a.bytes().ends_with(&[0, 0, 0xff, 0xff]));
    }

    #[test]
    fn a_member_cut_before_its_trailer_still_yields_every_piece() {
        let datas = [b"first\n".to_vec(), b"second\n".to_vec()];
        let (body, _) = stitched(&datas, 0);
        let mut d = flate2::Decompress::new(false);
        let mut out = Vec::with_capacity(100);
        d.decompress_vec(
            &body[10..body.len() - 10],
            &mut out,
            flate2::FlushDecompress::Sync,
        )
        .unwrap();
        assert_eq!(out, b"first\nsecond\n");
    }

    #[test]
    fn stream_mode_decodes_and_is_smaller_on_repetitive_events() {
        let datas: Vec<Vec<u8>> = (0..50)
            .map(|i| {
                format!("{{\"seq\":{i},\"data\":{{\"sym\":\"NOVA\",\"bid\":{i}.5}}}}").into_bytes()
            })
            .collect();
        let (stream, raw) = member_body(
            HttpGzip::Stream,
            datas.iter().map(|d| Part::Own(d.as_slice())),
        );
        assert_eq!(gunzip(&stream), datas.concat());
        assert_eq!(raw, datas.concat().len() as u64);
        let (shared, _) = stitched(&datas, 0);
        assert!(
            stream.len() < shared.len() / 2,
            "{} vs {}",
            stream.len(),
            shared.len()
        );
    }

    #[test]
    fn gz_stream_flushes_are_decodable_as_they_come() {
        let mut gz = GzStream::new();
        gz.write(b"one\n");
        let first = gz.flush();
        let mut d = flate2::Decompress::new(false);
        let mut out = Vec::with_capacity(100);
        d.decompress_vec(&first[10..], &mut out, flate2::FlushDecompress::Sync)
            .unwrap();
        assert_eq!(out, b"one\n");
        gz.write(b"two\n");
        let all = [first, gz.flush(), gz.finish()].concat();
        assert_eq!(gunzip(&all), b"one\ntwo\n");
    }

    #[test]
    fn negotiation_follows_q_values() {
        let neg = |mode, v: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            }
            negotiate(mode, &h)
        };
        use HttpGzip::*;
        assert_eq!(neg(Shared, Some("gzip, deflate, br")), Some(Shared));
        assert_eq!(
            neg(Stream, Some("br;q=1.0, gzip;q=0.8, *;q=0.1")),
            Some(Stream)
        );
        assert_eq!(neg(Shared, Some("GZIP")), Some(Shared));
        assert_eq!(neg(Off, Some("gzip")), None);
        assert_eq!(neg(Shared, None), None);
        assert_eq!(neg(Shared, Some("")), None);
        assert_eq!(neg(Shared, Some("gzip;q=0")), None);
        assert_eq!(neg(Shared, Some("gzip;q=0.000")), None);
        assert_eq!(neg(Shared, Some("identity")), None);
        assert_eq!(neg(Shared, Some("br, deflate")), None);
        assert_eq!(neg(Shared, Some("gzip;q=nonsense")), None);
        assert_eq!(neg(Shared, Some("identity;q=1, gzip;q=0.5")), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_event_set_stitches_into_a_valid_member(
            datas in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..40),
            stored_every in 0usize..4,
        ) {
            let (body, raw) = stitched(&datas, stored_every);
            prop_assert_eq!(gunzip(&body), datas.concat());
            prop_assert_eq!(raw, datas.concat().len() as u64);
        }
    }
}
