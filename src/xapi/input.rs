//! What the XML-RPC decoders read from: any byte source (a body in memory, or an HTTP body as
//! its chunks arrive), checked on the way in so that no answer costs more memory than its
//! largest single value.
//!
//! [`Checked`] hands bytes to the XML reader only once they are known to be UTF-8 (so the first
//! bad byte is reported at its exact offset however the body was chunked), and refuses to feed
//! one token (a text run, a tag, a comment) past [`MAX_VALUE_BYTES`]: the XML reader gathers a
//! token whole before the decoder sees it, so without this a single 200 MB string inside an
//! otherwise valid answer would be held whole.

use std::io::{self, Read};

/// Longest single value or token an answer may hold. No XAPI field comes near it: the largest
/// real ones are a VM's `NVRAM` (its UEFI variable store, base64, well under 1 MiB) and
/// `last_booted_record` (a serialised record, tens of KiB). 4 MiB leaves room for those while
/// keeping what one hostile value can cost to a few megabytes.
pub const MAX_VALUE_BYTES: usize = 4 * 1024 * 1024;

/// Why a [`Checked`] source stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The byte at this offset is not part of valid UTF-8.
    NotUtf8(u64),
    /// One token ran past the limit; it started before this offset.
    TooLong(u64),
    /// The underlying source failed (a transport error, the body limit).
    Source(String),
}

/// A byte source checked as it is read; see the module documentation.
pub struct Checked<S> {
    inner: S,
    /// Bytes handed out so far.
    offset: u64,
    /// The start of a character split across reads, held back until it is complete.
    carry: [u8; 3],
    carry_len: usize,
    /// First invalid byte, once found: everything before it has been handed out.
    bad_at: Option<u64>,
    /// Bytes handed out since the decoder last started a token.
    since_mark: usize,
    limit: usize,
    stop: Option<Stop>,
}

impl<S: Read> Checked<S> {
    /// Checks `inner` with the default [`MAX_VALUE_BYTES`].
    pub fn new(inner: S) -> Self {
        Checked::with_limit(inner, MAX_VALUE_BYTES)
    }

    /// Checks `inner`, refusing tokens longer than `limit` bytes.
    pub fn with_limit(inner: S, limit: usize) -> Self {
        Checked {
            inner,
            offset: 0,
            carry: [0; 3],
            carry_len: 0,
            bad_at: None,
            since_mark: 0,
            limit,
            stop: None,
        }
    }

    /// The decoder starts a new token: the per-token count restarts.
    #[inline]
    pub fn mark(&mut self) {
        self.since_mark = 0;
    }

    /// Why reading stopped, once it has.
    pub fn stop(&self) -> Option<&Stop> {
        self.stop.as_ref()
    }

    /// The largest token this source lets through.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn fail(&mut self, stop: Stop) -> io::Error {
        let message = match &stop {
            Stop::NotUtf8(at) => format!("not UTF-8 at byte {at}"),
            Stop::TooLong(at) => {
                format!("a token longer than {} bytes before byte {at}", self.limit)
            }
            Stop::Source(message) => message.clone(),
        };
        self.stop = Some(stop);
        io::Error::new(io::ErrorKind::InvalidData, message)
    }

    fn hand_out(&mut self, n: usize) -> io::Result<usize> {
        self.offset += n as u64;
        self.since_mark += n;
        Ok(n)
    }
}

impl<S: Read> Read for Checked<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(stop) = &self.stop {
            let stop = stop.clone();
            return Err(self.fail(stop));
        }
        if let Some(at) = self.bad_at {
            return Err(self.fail(Stop::NotUtf8(at)));
        }
        if self.since_mark > self.limit {
            return Err(self.fail(Stop::TooLong(self.offset)));
        }
        if out.len() < 4 {
            // A whole character must fit; the XML reader's buffer is kilobytes.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Checked reads into buffers of at least 4 bytes",
            ));
        }
        let mut n = self.carry_len;
        out[..n].copy_from_slice(&self.carry[..n]);
        self.carry_len = 0;
        loop {
            let got = match self.inner.read(&mut out[n..]) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.fail(Stop::Source(e.to_string()))),
            };
            n += got;
            let valid = match std::str::from_utf8(&out[..n]) {
                Ok(_) => return self.hand_out(n),
                Err(e) => e,
            };
            let good = valid.valid_up_to();
            if valid.error_len().is_some() || got == 0 {
                // A bad byte, or the source ended inside a character.
                self.bad_at = Some(self.offset + good as u64);
                if good == 0 {
                    return Err(self.fail(Stop::NotUtf8(self.offset)));
                }
                return self.hand_out(good);
            }
            if good > 0 {
                let tail = &out[good..n];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carry_len = tail.len();
                return self.hand_out(good);
            }
            // Only the start of one character so far: read on to complete it.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that hands out its bytes in the given piece sizes.
    struct Pieces<'a> {
        bytes: &'a [u8],
        sizes: std::iter::Cycle<std::vec::IntoIter<usize>>,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self
                .sizes
                .next()
                .unwrap()
                .min(out.len())
                .min(self.bytes.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn read_all(bytes: &[u8], sizes: Vec<usize>, limit: usize) -> (Vec<u8>, Option<Stop>) {
        let mut checked = Checked::with_limit(
            Pieces {
                bytes,
                sizes: sizes.into_iter().cycle(),
            },
            limit,
        );
        let mut got = Vec::new();
        let mut out = [0; 16];
        loop {
            match checked.read(&mut out) {
                Ok(0) => return (got, None),
                Ok(n) => got.extend_from_slice(&out[..n]),
                Err(_) => return (got, checked.stop().cloned()),
            }
        }
    }

    #[test]
    fn characters_split_across_reads_pass_whole() {
        let text = "caf\u{e9} \u{20ac}\u{1f600} plain".as_bytes();
        for size in 1..=5 {
            assert_eq!(read_all(text, vec![size], 1 << 20), (text.to_vec(), None));
        }
    }

    #[test]
    fn the_first_bad_byte_is_found_however_the_bytes_arrive() {
        for bad in [&[0xFF_u8][..], &[0xC3, b'x'], &[0x80], &[0xE2, 0x82]] {
            let mut body = b"ok \xC3\xA9 ".to_vec();
            let at = body.len();
            body.extend_from_slice(bad);
            body.extend_from_slice(b" after");
            for size in 1..=7 {
                let (got, stop) = read_all(&body, vec![size], 1 << 20);
                assert_eq!(got, &body[..at], "{bad:?} in pieces of {size}");
                assert_eq!(stop, Some(Stop::NotUtf8(at as u64)));
            }
        }
        // A body that ends inside a character.
        assert_eq!(
            read_all(b"ab\xE2\x82", vec![1], 1 << 20),
            (b"ab".to_vec(), Some(Stop::NotUtf8(2)))
        );
    }

    #[test]
    fn a_token_past_the_limit_stops_the_read() {
        let body = vec![b'x'; 1000];
        let (got, stop) = read_all(&body, vec![7], 100);
        assert!(matches!(stop, Some(Stop::TooLong(_))));
        assert!(got.len() > 100 && got.len() <= 100 + 16, "{}", got.len());
    }
}
