//! Streaming encoders: a body is fed piece by piece as it arrives and compressed output is
//! handed on as the encoder produces it, so memory per response is the encoder's own state
//! (its window) plus one output buffer, whatever the body's size. Levels and windows are
//! the ones bench/compress measured: a front process compresses every response on its way
//! out, so CPU per byte and memory per stream weigh more than the last percent of ratio.

use std::io::Write;

use super::Codec;

/// Levels from bench/compress (its table is in bench/README.md), on a JSON API answer
/// and a JavaScript bundle: zstd 1 is the cheapest per MiB (1.2-1.4 ms) with a better
/// ratio (0.15-0.16) than gzip at level 4, in 155 KiB per stream; zstd 3 gains 2-6% for
/// 5.5x the memory. gzip 2 costs 1.4-1.8x level 1 (nginx's default) for 24% smaller
/// output. brotli 1 (2.9-3.1 ms/MiB, 0.16-0.18, 400 KiB); brotli 4 gains 6-15% for 2.5x
/// the CPU and 3.6x the memory. Precompressed siblings are where the high levels belong.
pub const GZIP_LEVEL: u32 = 2;
pub const ZSTD_LEVEL: i32 = 1;
pub const BR_QUALITY: u32 = 1;
/// Windows of 256 KiB (brotli, zstd): enough for a page and its scripts, a few hundred
/// KiB of state per response being compressed instead of several MiB.
const BR_LGWIN: u32 = 18;
const ZSTD_WINDOW_LOG: u32 = 18;
/// Brotli's own output buffer.
const BR_BUFFER: usize = 4096;

pub struct Encoder(Inner);

enum Inner {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl Encoder {
    pub fn new(codec: Codec) -> std::io::Result<Encoder> {
        Ok(Encoder(match codec {
            Codec::Gzip => Inner::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Codec::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?;
                e.window_log(ZSTD_WINDOW_LOG)?;
                Inner::Zstd(e)
            }
            Codec::Br => Inner::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BR_BUFFER,
                BR_QUALITY,
                BR_LGWIN,
            ))),
        }))
    }

    fn sink(&mut self) -> &mut Vec<u8> {
        match &mut self.0 {
            Inner::Gzip(e) => e.get_mut(),
            Inner::Zstd(e) => e.get_mut(),
            Inner::Br(e) => e.get_mut(),
        }
    }

    /// Compresses `input`; output the encoder has ready goes to `out` (perhaps none yet).
    pub fn write(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
        match &mut self.0 {
            Inner::Gzip(e) => e.write_all(input)?,
            Inner::Zstd(e) => e.write_all(input)?,
            Inner::Br(e) => e.write_all(input)?,
        }
        let v = self.sink();
        if !v.is_empty() {
            out(v);
            v.clear();
        }
        Ok(())
    }

    /// Ends the stream: the rest of the output, and the trailer.
    pub fn finish(self, out: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
        let v = match self.0 {
            Inner::Gzip(e) => e.finish()?,
            Inner::Zstd(e) => e.finish()?,
            Inner::Br(e) => e.into_inner(),
        };
        if !v.is_empty() {
            out(&v);
        }
        Ok(())
    }
}

/// A whole body at once (fixed answers at start-up, small files).
pub fn compress_all(codec: Codec, input: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = Encoder::new(codec)?;
    let mut v = Vec::with_capacity(input.len() / 3 + 64);
    e.write(input, &mut |b| v.extend_from_slice(b))?;
    e.finish(&mut |b| v.extend_from_slice(b))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    pub fn decode(codec: Codec, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match codec {
            Codec::Gzip => {
                flate2::read::GzDecoder::new(data)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Codec::Zstd => {
                out = zstd::stream::decode_all(data).unwrap();
            }
            Codec::Br => {
                brotli::Decompressor::new(data, 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            }
        }
        out
    }

    fn text(n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        let mut i = 0u64;
        while v.len() < n {
            v.extend_from_slice(
                format!("{{\"id\": {i}, \"name\": \"item {}\"}},\n", i * 7919 % 1000).as_bytes(),
            );
            i += 1;
        }
        v.truncate(n);
        v
    }

    #[test]
    fn every_codec_round_trips_fed_whole_or_in_pieces() {
        let body = text(1_000_000);
        for c in Codec::ALL {
            let whole = compress_all(c, &body).unwrap();
            assert_eq!(decode(c, &whole), body, "{c:?}");
            assert!(whole.len() < body.len() / 4, "{c:?}: {}", whole.len());
            let mut e = Encoder::new(c).unwrap();
            let mut out = Vec::new();
            for piece in body.chunks(1000) {
                e.write(piece, &mut |b| out.extend_from_slice(b)).unwrap();
            }
            assert!(!out.is_empty(), "{c:?}: output comes before the end");
            e.finish(&mut |b| out.extend_from_slice(b)).unwrap();
            assert_eq!(decode(c, &out), body, "{c:?} streamed");
            assert_eq!(decode(c, &compress_all(c, b"").unwrap()), b"");
        }
    }
}
