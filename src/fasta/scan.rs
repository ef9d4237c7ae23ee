//! The one pass over a record's sequence lines: where the next header starts (and its line
//! ends), how many lines come before it, and whether those bytes need the careful line-by-line
//! path. Done 64 bytes at a time on x86-64 — with AVX-512BW, AVX2 or SSE2 (part of the baseline),
//! the best the CPU has, checked once — and eight bytes at a time in a `u64` elsewhere (SWAR:
//! portable, for ARM and every other CPU). `R2DL_FASTA_SCAN` forces one of these paths (see
//! [`ScanPath`]), for tests and benchmarks.

use std::sync::LazyLock;

/// What [`scan_body`] found in the text before the next header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyScan {
    /// Bytes before the next header line, or the whole text when it holds none.
    pub len: usize,
    /// Whether a header line starts at `len`.
    pub header: bool,
    /// What the header line at `len` holds, when `text` holds the line's end (every path
    /// describes it; the line reader finds the end itself when the text stops before it).
    pub header_line: Option<HeaderLine>,
    /// `\n` bytes in the first `len` bytes.
    pub newlines: u64,
    /// Whether the first `len` bytes are all ASCII.
    pub ascii: bool,
    /// Whether the first `len` bytes hold anything besides residues and `\n`: a byte outside
    /// `!`..=`~` (space, tab, CR, other controls, non-ASCII) or a `;`.
    pub unusual: bool,
}

/// A header line as the body scan saw it. Positions count from the header's `>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderLine {
    /// The `\n` that ends the line.
    pub end: usize,
    /// The first space or tab in the line, which ends the id unless the line starts with one.
    pub blank: Option<usize>,
    /// Whether the line is all ASCII.
    pub ascii: bool,
    /// The first carriage return in the line.
    pub carriage_return: Option<usize>,
}

impl HeaderLine {
    /// The description before any byte of the line is seen, which the vectorised scans add to.
    const UNSEEN: HeaderLine = HeaderLine {
        end: 0,
        blank: None,
        ascii: true,
        carriage_return: None,
    };
}

/// Calls the instance of a scan `f::<UNUSUAL>` that `flag` selects.
macro_rules! by_flag {
    ($($f:ident)::+, $text:expr, $flag:expr) => {
        if $flag { $($f)::+::<true>($text) } else { $($f)::+::<false>($text) }
    };
}

/// One implementation of [`scan_body`]. All give the same results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanPath {
    /// 64-byte registers and bit-mask compares (x86-64 with AVX-512F and AVX-512BW).
    Avx512,
    /// Two 32-byte registers per block (x86-64 with AVX2 and POPCNT, which every AVX2 CPU has).
    Avx2,
    /// Four 16-byte registers per block (every x86-64 CPU).
    Sse2,
    /// Eight bytes at a time in a `u64` (every CPU; the path of those without another).
    Swar,
    /// One byte at a time: every CPU, and the reference the others are tested against.
    Bytewise,
}

/// The environment variable that forces a [`ScanPath`] by its name (`avx512`, `avx2`, `sse2`,
/// `swar`, `bytewise`).
pub const SCAN_PATH_VARIABLE: &str = "R2DL_FASTA_SCAN";

impl ScanPath {
    /// Every path, fastest first.
    pub const ALL: [ScanPath; 5] = [Self::Avx512, Self::Avx2, Self::Sse2, Self::Swar, Self::Bytewise];

    /// The name `R2DL_FASTA_SCAN` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512",
            Self::Avx2 => "avx2",
            Self::Sse2 => "sse2",
            Self::Swar => "swar",
            Self::Bytewise => "bytewise",
        }
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Self::Avx512 => avx512::detected(),
                Self::Avx2 => {
                    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt")
                }
                Self::Sse2 | Self::Swar | Self::Bytewise => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            matches!(self, Self::Swar | Self::Bytewise)
        }
    }

    /// The fastest path this CPU can run.
    pub fn best() -> ScanPath {
        Self::ALL
            .into_iter()
            .find(|path| path.available())
            .unwrap_or(Self::Bytewise)
    }

    /// The path named by `R2DL_FASTA_SCAN`, or [`Self::best`] when it is unset; an error when
    /// it names no path, or one this CPU cannot run.
    pub fn from_environment() -> Result<ScanPath, String> {
        Self::from_setting(std::env::var_os(SCAN_PATH_VARIABLE).as_deref())
    }

    /// [`Self::from_environment`] for the variable's value `value`.
    fn from_setting(value: Option<&std::ffi::OsStr>) -> Result<ScanPath, String> {
        let Some(value) = value else {
            return Ok(Self::best());
        };
        let value = value.to_string_lossy();
        let names = |paths: &mut dyn Iterator<Item = ScanPath>| paths.map(Self::name).collect::<Vec<_>>().join(", ");
        let path = Self::ALL
            .into_iter()
            .find(|path| path.name() == value.trim())
            .ok_or_else(|| {
                let all = names(&mut Self::ALL.into_iter());
                format!("{SCAN_PATH_VARIABLE}={value:?} names no FASTA scan (one of: {all})")
            })?;
        if !path.available() {
            let present = names(&mut Self::ALL.into_iter().filter(|path| path.available()));
            return Err(format!(
                "{SCAN_PATH_VARIABLE}={value:?}: this CPU cannot run that FASTA scan (it can: {present})"
            ));
        }
        Ok(path)
    }

    /// [`scan_body`] by this path.
    ///
    /// # Safety
    /// The CPU must be able to run the path ([`Self::available`]).
    unsafe fn scan(self, text: &[u8], check_unusual: bool) -> BodyScan {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has the path's features (the caller's promise).
            Self::Avx512 => unsafe { by_flag!(avx512::scan_body, text, check_unusual) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Self::Avx2 => unsafe { by_flag!(lanes::avx2::scan_body, text, check_unusual) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Self::Sse2 => unsafe { by_flag!(lanes::sse2::scan_body, text, check_unusual) },
            Self::Swar => by_flag!(swar::scan_body, text, check_unusual),
            _ => {
                let scan = scan_body_bytewise(text);
                BodyScan {
                    unusual: scan.unusual && check_unusual,
                    ..scan
                }
            }
        }
    }
}

/// The path [`scan_body`] takes: `R2DL_FASTA_SCAN`'s, else the best. An unusable
/// `R2DL_FASTA_SCAN` falls back to the best here; readers refuse to open with it
/// ([`check_scan_path`]), so no scan runs under it.
static SELECTED: LazyLock<ScanPath> =
    LazyLock::new(|| ScanPath::from_environment().unwrap_or_else(|_| ScanPath::best()));

/// The path [`scan_body`] takes, or why `R2DL_FASTA_SCAN` cannot be followed.
pub fn check_scan_path() -> Result<ScanPath, String> {
    ScanPath::from_environment().map(|_| *SELECTED)
}

/// Scans `text`, which starts at a line start, up to the first line that starts with `>`.
/// [`BodyScan::unusual`] is computed only when `check_unusual` is set (false otherwise).
pub(crate) fn scan_body(text: &[u8], check_unusual: bool) -> BodyScan {
    // SAFETY: `SELECTED` holds a path this CPU can run.
    unsafe { SELECTED.scan(text, check_unusual) }
}

/// Byte-at-a-time [`scan_body`]: the portable path, and the reference the vectorised paths are
/// tested against.
pub(crate) fn scan_body_bytewise(text: &[u8]) -> BodyScan {
    let mut scan = BodyScan {
        len: text.len(),
        header: false,
        header_line: None,
        newlines: 0,
        ascii: true,
        unusual: false,
    };
    let mut line_start = true;
    for (i, &b) in text.iter().enumerate() {
        if b == b'>' && line_start {
            scan.len = i;
            scan.header = true;
            scan.header_line = header_line(&text[i..]);
            break;
        }
        scan.newlines += u64::from(b == b'\n');
        scan.ascii &= b.is_ascii();
        scan.unusual |= b != b'\n' && !b.is_ascii_graphic() || b == b';';
        line_start = b == b'\n';
    }
    scan
}

/// The header line that starts `text`, if `text` holds its end: the description of the paths
/// without one of their own (the SWAR and byte-wise scans).
fn header_line(text: &[u8]) -> Option<HeaderLine> {
    memchr::memchr(b'\n', text).map(|end| HeaderLine {
        end,
        blank: memchr::memchr2(b' ', b'\t', &text[..end]),
        ascii: is_ascii(&text[..end]),
        carriage_return: memchr::memchr(b'\r', &text[..end]),
    })
}

/// Sets `first`, unless already set, to the lowest bit of `bits` (one per byte of a block at
/// `offset` in a header line): how the vectorised header scans note a line's first blank or CR.
#[inline(always)]
fn first_in_line(first: &mut Option<usize>, bits: u64, offset: usize) {
    if first.is_none() && bits != 0 {
        *first = Some(offset + bits.trailing_zeros() as usize);
    }
}

/// Whether `bytes` are all ASCII: the OR of 8-byte words, then of the last few bytes (the
/// standard library's `is_ascii`, and a byte-wise fold, are several times slower on short
/// unaligned slices such as headers).
pub(crate) fn is_ascii(bytes: &[u8]) -> bool {
    let (words, tail) = bytes.as_chunks::<8>();
    let high = words.iter().fold(0u64, |acc, word| acc | u64::from_ne_bytes(*word));
    let tail = tail.iter().fold(0u8, |acc, &b| acc | b);
    high & 0x8080_8080_8080_8080 == 0 && tail < 0x80
}

/// Eight bytes at a time in a `u64`: each compare gives the high bit of every byte that matches,
/// exactly (no carry crosses a byte), so the bit tricks of the AVX-512 scan carry over with one
/// bit in eight. Portable: the path of CPUs without a vector path here.
mod swar {
    use super::BodyScan;

    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW: u64 = 0x7F7F_7F7F_7F7F_7F7F;

    /// The high bit of every byte of `x` that is 0.
    #[inline]
    fn zero_bytes(x: u64) -> u64 {
        // (x & 0x7F) + 0x7F sets the high bit of each byte with a low bit set, without a carry
        // into the next byte; OR-ing x adds the bytes whose high bit is set
        !(((x & LOW) + LOW) | x) & HIGH
    }

    /// The high bit of every byte of `x` equal to `byte`.
    #[inline]
    fn equal(x: u64, byte: u8) -> u64 {
        zero_bytes(x ^ (ONES * u64::from(byte)))
    }

    /// The high bit of every byte outside `!`..=`~` (controls, space, DEL, non-ASCII).
    #[inline]
    fn outside_graphic(x: u64) -> u64 {
        let low = x & LOW;
        // low + 0x5F reaches the high bit from `!` (0x21) up; low + 1 only from DEL (0x7F)
        (!(low + ONES * 0x5F) | (low + ONES) | x) & HIGH
    }

    /// What the words before the current one added up to.
    struct Totals {
        /// Per byte: line breaks counted since the last [`Totals::flush`] (at most
        /// [`WORDS_PER_FLUSH`] words, one per byte and word, fit).
        newlines_by_byte: u64,
        newlines: u64,
        high: u64,
        unusual: u64,
        /// The high bit of byte 0 when the byte before it ends a line.
        line_start: u64,
    }

    /// Words whose line breaks the byte-wise counters can take.
    const WORDS_PER_FLUSH: usize = 255;

    impl Totals {
        /// Moves the per-byte counts into the total (no `popcnt`: x86-64's baseline lacks it).
        fn flush(&mut self) {
            let pairs = (self.newlines_by_byte & 0x00FF_00FF_00FF_00FF)
                + ((self.newlines_by_byte >> 8) & 0x00FF_00FF_00FF_00FF);
            self.newlines += pairs.wrapping_mul(0x0001_0001_0001_0001) >> 48;
            self.newlines_by_byte = 0;
        }

        /// Adds the bytes of `x` selected by `valid` (whole bytes) up to the first header line,
        /// and returns where in the word that header starts, if one does.
        #[inline(always)]
        fn word<const UNUSUAL: bool>(&mut self, x: u64, valid: u64) -> Option<usize> {
            let ends = equal(x, b'\n') & valid;
            let headers = equal(x, b'>') & ((ends << 8) | self.line_start) & valid;
            self.line_start = ends >> 56;
            // the bytes below the first header (its bit is the 8th of its byte), or all of them
            let before = if headers == 0 {
                valid
            } else {
                (1u64 << (headers.trailing_zeros() - 7)) - 1
            };
            self.newlines_by_byte += (ends & before) >> 7;
            self.high |= x & HIGH & before;
            if UNUSUAL {
                self.unusual |= ((outside_graphic(x) & !ends) | equal(x, b';')) & before;
            }
            (headers != 0).then(|| headers.trailing_zeros() as usize / 8)
        }

        /// The scan of `text`'s bytes before `len`: all of them, or up to the header line that
        /// starts there (`header`).
        fn scan(mut self, text: &[u8], len: usize, header: bool) -> BodyScan {
            self.flush();
            BodyScan {
                len,
                header,
                header_line: if header { super::header_line(&text[len..]) } else { None },
                newlines: self.newlines,
                ascii: self.high == 0,
                unusual: self.unusual != 0,
            }
        }
    }

    /// [`super::scan_body`] eight bytes at a time; `UNUSUAL`: whether to compute
    /// [`BodyScan::unusual`].
    pub(super) fn scan_body<const UNUSUAL: bool>(text: &[u8]) -> BodyScan {
        let mut totals = Totals {
            newlines_by_byte: 0,
            newlines: 0,
            high: 0,
            unusual: 0,
            // the text starts at a line start
            line_start: 0x80,
        };
        let (words, tail) = text.as_chunks::<8>();
        for (run, chunk) in words.chunks(WORDS_PER_FLUSH).enumerate() {
            for (index, word) in chunk.iter().enumerate() {
                if let Some(at) = totals.word::<UNUSUAL>(u64::from_le_bytes(*word), u64::MAX) {
                    return totals.scan(text, (run * WORDS_PER_FLUSH + index) * 8 + at, true);
                }
            }
            totals.flush();
        }
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        let valid = (1u64 << (8 * tail.len())) - 1; // tail.len() < 8
        match totals.word::<UNUSUAL>(u64::from_le_bytes(last), valid) {
            Some(at) => totals.scan(text, text.len() - tail.len() + at, true),
            None => totals.scan(text, text.len(), false),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn byte_compares_are_exact_in_every_byte() {
            // every byte value, in every position of a word, next to every kind of neighbour
            for byte in 0..=255u8 {
                for position in 0..8 {
                    for fill in [0x00, 0x01, b'\n', b'>', 0x7F, 0x80, 0xFF] {
                        let mut bytes = [fill; 8];
                        bytes[position] = byte;
                        let x = u64::from_le_bytes(bytes);
                        let bit = |on: bool| if on { 0x80u64 << (8 * position) } else { 0 };
                        let mine = 0xFFu64 << (8 * position);
                        assert_eq!(zero_bytes(x) & mine, bit(byte == 0), "{byte:#x} at {position}");
                        assert_eq!(equal(x, b'>') & mine, bit(byte == b'>'), "{byte:#x} at {position}");
                        let graphic = byte.is_ascii_graphic();
                        assert_eq!(outside_graphic(x) & mine, bit(!graphic), "{byte:#x} at {position}");
                    }
                }
            }
        }
    }
}

/// How far ahead of the block being scanned the vectorised scans prefetch, in bytes: a mapped
/// file comes straight from memory, and the hardware prefetcher stops at every page boundary
/// (measured on the 1 GB benchmark file: 1024 and 2048 bytes both cut the scan's wall time by
/// about a fifth, 2048 slightly more).
#[cfg(target_arch = "x86_64")]
const PREFETCH_DISTANCE: usize = 2048;

/// A 64-byte block is one AVX-512 register, and each comparison gives its bit mask directly.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512i, _MM_HINT_T0, _mm_prefetch, _mm512_cmpeq_epi8_mask, _mm512_cmpgt_epi8_mask, _mm512_cmplt_epi8_mask,
        _mm512_maskz_loadu_epi8, _mm512_movepi8_mask, _mm512_set1_epi8,
    };

    use super::{BodyScan, HeaderLine};

    const BLOCK: usize = 64;

    /// Whether the CPU has the features [`scan_body`] is compiled for.
    pub(super) fn detected() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("popcnt")
    }

    /// Loads 64 bytes: a copy of the array, which compiles to an unaligned load (see
    /// `lanes::Block::load` for why not `_mm512_loadu_si512`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    fn load(bytes: &[u8; BLOCK]) -> __m512i {
        // SAFETY: every bit pattern is a valid register.
        unsafe { std::mem::transmute::<[u8; BLOCK], __m512i>(*bytes) }
    }

    /// What the blocks before the current one added up to.
    struct Totals {
        newlines: u64,
        high_bits: u64,
        unusual: u64,
        /// Bit 0: whether the byte before the current block ends a line.
        line_start: u64,
    }

    /// Adds the bytes of `v` selected by `valid` (the first n bits) up to the first header line,
    /// and returns where in the block that header starts, if one does.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    fn block<const UNUSUAL: bool>(v: __m512i, valid: u64, totals: &mut Totals) -> Option<usize> {
        let set = |b: u8| _mm512_set1_epi8(b as i8);
        let ends = _mm512_cmpeq_epi8_mask(v, set(b'\n'));
        let headers = _mm512_cmpeq_epi8_mask(v, set(b'>')) & ((ends << 1) | totals.line_start);
        // the bits below the first header, or all of them
        let before = headers.wrapping_sub(1) & !headers & valid;
        totals.newlines += u64::from((ends & before).count_ones());
        totals.high_bits |= _mm512_movepi8_mask(v) & before;
        if UNUSUAL {
            // signed compares: non-ASCII bytes are negative, so below `!`
            let outside = _mm512_cmplt_epi8_mask(v, set(b'!')) | _mm512_cmpgt_epi8_mask(v, set(b'~'));
            totals.unusual |= ((outside & !ends) | _mm512_cmpeq_epi8_mask(v, set(b';'))) & before;
        }
        totals.line_start = ends >> 63;
        (headers != 0).then(|| headers.trailing_zeros() as usize)
    }

    /// Adds the bytes of `v` selected by `valid`, at `offset` in a header line, up to the line's
    /// end to `line`, and returns where that end is, if it is in this block.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    fn header_block(v: __m512i, valid: u64, offset: usize, line: &mut HeaderLine) -> Option<usize> {
        let set = |b: u8| _mm512_set1_epi8(b as i8);
        let ends = _mm512_cmpeq_epi8_mask(v, set(b'\n')) & valid;
        let before = ends.wrapping_sub(1) & !ends & valid;
        let blanks = (_mm512_cmpeq_epi8_mask(v, set(b' ')) | _mm512_cmpeq_epi8_mask(v, set(b'\t'))) & before;
        super::first_in_line(&mut line.blank, blanks, offset);
        let returns = _mm512_cmpeq_epi8_mask(v, set(b'\r')) & before;
        super::first_in_line(&mut line.carriage_return, returns, offset);
        line.ascii &= _mm512_movepi8_mask(v) & before == 0;
        (ends != 0).then(|| offset + ends.trailing_zeros() as usize)
    }

    /// The header line that starts `text`, if `text` holds its end.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    fn header_line(text: &[u8]) -> Option<HeaderLine> {
        let mut line = HeaderLine::UNSEEN;
        let (blocks, tail) = text.as_chunks::<BLOCK>();
        for (index, bytes) in blocks.iter().enumerate() {
            let v = load(bytes);
            if let Some(end) = header_block(v, u64::MAX, index * BLOCK, &mut line) {
                return Some(HeaderLine { end, ..line });
            }
        }
        let valid = (1u64 << tail.len()) - 1;
        // SAFETY: the masked load reads only the `tail.len()` bytes of `tail` (the others are 0).
        let v = unsafe { _mm512_maskz_loadu_epi8(valid, tail.as_ptr().cast()) };
        let end = header_block(v, valid, text.len() - tail.len(), &mut line)?;
        Some(HeaderLine { end, ..line })
    }

    /// [`super::scan_body`] with AVX-512; `UNUSUAL`: whether to compute [`BodyScan::unusual`].
    ///
    /// # Safety
    /// The CPU must have what [`detected`] checks.
    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    pub(super) unsafe fn scan_body<const UNUSUAL: bool>(text: &[u8]) -> BodyScan {
        let mut totals = Totals {
            newlines: 0,
            high_bits: 0,
            unusual: 0,
            // the text starts at a line start
            line_start: 1,
        };
        let scan = |len: usize, header: bool, totals: &Totals| BodyScan {
            len,
            header,
            header_line: if header { header_line(&text[len..]) } else { None },
            newlines: totals.newlines,
            ascii: totals.high_bits == 0,
            unusual: totals.unusual != 0,
        };
        let (blocks, tail) = text.as_chunks::<BLOCK>();
        for (index, bytes) in blocks.iter().enumerate() {
            // a prefetch never faults, even past the end of the text
            _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().wrapping_add(super::PREFETCH_DISTANCE).cast());
            let v = load(bytes);
            if let Some(at) = block::<UNUSUAL>(v, u64::MAX, &mut totals) {
                return scan(index * BLOCK + at, true, &totals);
            }
        }
        let valid = (1u64 << tail.len()) - 1;
        // SAFETY: the masked load reads only the `tail.len()` bytes of `tail` (the others are 0).
        let v = unsafe { _mm512_maskz_loadu_epi8(valid, tail.as_ptr().cast()) };
        if let Some(at) = block::<UNUSUAL>(v, valid, &mut totals) {
            return scan(text.len() - tail.len() + at, true, &totals);
        }
        scan(text.len(), false, &totals)
    }
}

/// The SSE2 and AVX2 scans: one loop over 64-byte blocks held in four 16-byte or two 32-byte
/// registers. Blocks with no `>` only add per-lane byte counters and ORs; only blocks that hold
/// a `>` are turned into bit masks.
#[cfg(target_arch = "x86_64")]
mod lanes {
    use super::{BodyScan, HeaderLine};

    pub(super) const BLOCK: usize = 64;

    /// A 64-byte block in vector registers, and what the scan does with them.
    ///
    /// # Safety
    /// Every method needs the implementor's CPU feature. They are always inlined, so they are
    /// compiled with that feature only when called from a function that enables it (such as the
    /// implementor's `scan_body`), which is the only place they may be called from.
    pub(super) trait Block: Copy {
        /// One register of the block.
        type Lane: Copy;
        /// Blocks whose newlines the per-lane byte counters can take (a block adds at most one
        /// per lane to each byte counter, which holds 255).
        const BLOCKS_PER_FLUSH: usize;
        /// Loads 64 bytes. A copy of the array into the registers, which compiles to unaligned
        /// loads: the `_mm*_loadu_*` functions go through `ptr::copy_nonoverlapping`, whose
        /// checks in builds with debug assertions (`cargo run`, the tests) took a fifth of the
        /// AVX2 scan's time.
        unsafe fn load(bytes: &[u8; BLOCK]) -> Self;
        /// `0xFF` where a byte equals `byte`, else 0.
        unsafe fn eq(self, byte: u8) -> Self;
        /// `0xFF` where a byte is outside `!`..=`~` and not `\n`, or is `;`. The compares are
        /// signed, so non-ASCII bytes are negative and fall below `!`.
        unsafe fn unusual(self) -> Self;
        /// The OR of the registers.
        unsafe fn any(self) -> Self::Lane;
        /// The byte-wise sum of the registers.
        unsafe fn add(self) -> Self::Lane;
        /// One bit per byte: its high bit.
        unsafe fn mask(self) -> u64;
        /// A register of zeros.
        unsafe fn zero() -> Self::Lane;
        /// Byte-wise OR.
        unsafe fn or(a: Self::Lane, b: Self::Lane) -> Self::Lane;
        /// Byte-wise wrapping difference.
        unsafe fn sub(a: Self::Lane, b: Self::Lane) -> Self::Lane;
        /// Whether any byte has its high bit set.
        unsafe fn any_high(lane: Self::Lane) -> bool;
        /// The sum of the bytes of a register, as unsigned.
        unsafe fn sum(counter: Self::Lane) -> u64;
    }

    /// A block as bit masks, one bit per byte.
    struct Masks {
        newlines: u64,
        headers: u64,
        high_bits: u64,
        unusual: u64,
    }

    /// The masks of a block that holds a `>`. Each block type calls it through its own
    /// `#[inline(never)]` instance (`lane_scan!`): it runs about once per record, and kept out of
    /// the loop it leaves the loop's registers free.
    ///
    /// # Safety
    /// As for [`Block`]'s methods.
    #[inline(always)]
    unsafe fn masks<B: Block, const UNUSUAL: bool>(bytes: &[u8; BLOCK], line_start: bool) -> Masks {
        // SAFETY (for the block): the caller's CPU has `B`'s feature.
        unsafe {
            let lanes = B::load(bytes);
            let newlines = lanes.eq(b'\n').mask();
            Masks {
                newlines,
                headers: lanes.eq(b'>').mask() & ((newlines << 1) | u64::from(line_start)),
                high_bits: lanes.mask(),
                unusual: if UNUSUAL { lanes.unusual().mask() } else { 0 },
            }
        }
    }

    /// A last partial block, padded with a residue: no `>`, line end, blank or unusual byte,
    /// so the padding changes none of the results.
    #[inline(always)]
    fn padded(tail: &[u8]) -> [u8; BLOCK] {
        let mut block = [b'A'; BLOCK];
        block[..tail.len()].copy_from_slice(tail);
        block
    }

    /// What the blocks before the current one added up to.
    struct Totals<B: Block> {
        /// Where the current block starts in the text.
        offset: usize,
        /// Newlines counted out of the byte counters, and in blocks with a `>`.
        newlines: u64,
        /// Per-lane byte counters of newlines, flushed every [`Block::BLOCKS_PER_FLUSH`] blocks.
        counter: B::Lane,
        /// ORs of every byte and of every `unusual` result, over the blocks without a `>` …
        high_bits: B::Lane,
        odd: B::Lane,
        /// … and over the bytes before the header of those with one.
        high_bits_masked: u64,
        odd_masked: u64,
        /// Whether the byte before the current block ends a line (the text starts at one).
        line_start: bool,
    }

    impl<B: Block> Totals<B> {
        /// # Safety
        /// As for [`Block`]'s methods.
        #[inline(always)]
        unsafe fn new() -> Self {
            // SAFETY: the caller's CPU has `B`'s feature.
            let zero = unsafe { B::zero() };
            Self {
                offset: 0,
                newlines: 0,
                counter: zero,
                high_bits: zero,
                odd: zero,
                high_bits_masked: 0,
                odd_masked: 0,
                line_start: true,
            }
        }

        /// Adds the block `bytes` up to its first header line, and returns where in the text that
        /// header starts, if one does. `masks` is `B`'s out-of-line instance of [`masks`].
        ///
        /// # Safety
        /// As for [`Block`]'s methods.
        #[inline(always)]
        unsafe fn block<const UNUSUAL: bool>(
            &mut self,
            bytes: &[u8; BLOCK],
            masks: unsafe fn(&[u8; BLOCK], bool) -> Masks,
        ) -> Option<usize> {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // SAFETY: the caller's CPU has `B`'s feature.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().wrapping_add(super::PREFETCH_DISTANCE).cast());
                let lanes = B::load(bytes);
                if !B::any_high(lanes.eq(b'>').any()) {
                    // a match is -1
                    self.counter = B::sub(self.counter, lanes.eq(b'\n').add());
                    self.high_bits = B::or(self.high_bits, lanes.any());
                    if UNUSUAL {
                        self.odd = B::or(self.odd, lanes.unusual().any());
                    }
                } else {
                    let m = masks(bytes, self.line_start);
                    let before = match m.headers {
                        0 => u64::MAX,
                        headers => (1u64 << headers.trailing_zeros()) - 1,
                    };
                    self.newlines += u64::from((m.newlines & before).count_ones());
                    self.high_bits_masked |= m.high_bits & before;
                    self.odd_masked |= m.unusual & before;
                    if m.headers != 0 {
                        return Some(self.offset + m.headers.trailing_zeros() as usize);
                    }
                }
                self.line_start = bytes[BLOCK - 1] == b'\n';
                self.offset += BLOCK;
                None
            }
        }

        /// Moves the byte counters into [`Self::newlines`].
        ///
        /// # Safety
        /// As for [`Block`]'s methods.
        #[inline(always)]
        unsafe fn flush(&mut self) {
            // SAFETY: the caller's CPU has `B`'s feature.
            unsafe {
                self.newlines += B::sum(self.counter);
                self.counter = B::zero();
            }
        }

        /// The scan of the bytes before `len`: the whole text, or up to the header line that starts
        /// there (`header`), described by `header_line` when the text holds its end.
        ///
        /// # Safety
        /// As for [`Block`]'s methods.
        #[inline(always)]
        unsafe fn scan(mut self, len: usize, header: bool, header_line: Option<HeaderLine>) -> BodyScan {
            // SAFETY: the caller's CPU has `B`'s feature.
            unsafe {
                self.flush();
                BodyScan {
                    len,
                    header,
                    header_line,
                    newlines: self.newlines,
                    ascii: self.high_bits_masked == 0 && !B::any_high(self.high_bits),
                    unusual: self.odd_masked != 0 || B::any_high(self.odd),
                }
            }
        }
    }

    /// [`super::scan_body`] over blocks of `B`; `UNUSUAL`: whether to compute
    /// [`BodyScan::unusual`]. `masks` and `header_line` are `B`'s out-of-line instances of
    /// [`masks`] and [`header_line`].
    ///
    /// # Safety
    /// The CPU must have `B`'s feature, and the caller must enable it.
    #[inline(always)]
    unsafe fn scan_body<B: Block, const UNUSUAL: bool>(
        text: &[u8],
        masks: unsafe fn(&[u8; BLOCK], bool) -> Masks,
        header_line: unsafe fn(&[u8]) -> Option<HeaderLine>,
    ) -> BodyScan {
        let (blocks, tail) = text.as_chunks::<BLOCK>();
        // SAFETY (for the function): the caller's CPU has `B`'s feature, and enables it.
        unsafe {
            let mut totals = Totals::<B>::new();
            let header = 'found: {
                for group in blocks.chunks(B::BLOCKS_PER_FLUSH) {
                    for bytes in group {
                        if let Some(at) = totals.block::<UNUSUAL>(bytes, masks) {
                            break 'found Some(at);
                        }
                    }
                    totals.flush();
                }
                if tail.is_empty() {
                    break 'found None;
                }
                totals.block::<UNUSUAL>(&padded(tail), masks)
            };
            match header {
                Some(at) => totals.scan(at, true, header_line(&text[at..])),
                None => totals.scan(text.len(), false, None),
            }
        }
    }

    /// Adds the block `bytes`, at `offset` in a header line, up to the line's end to `line`, and
    /// returns where that end is, if it is in this block.
    ///
    /// # Safety
    /// As for [`Block`]'s methods.
    #[inline(always)]
    unsafe fn header_block<B: Block>(bytes: &[u8; BLOCK], offset: usize, line: &mut HeaderLine) -> Option<usize> {
        // SAFETY: the caller's CPU has `B`'s feature.
        unsafe {
            let lanes = B::load(bytes);
            let ends = lanes.eq(b'\n').mask();
            let before = ends.wrapping_sub(1) & !ends;
            let blanks = (lanes.eq(b' ').mask() | lanes.eq(b'\t').mask()) & before;
            super::first_in_line(&mut line.blank, blanks, offset);
            let returns = lanes.eq(b'\r').mask() & before;
            super::first_in_line(&mut line.carriage_return, returns, offset);
            line.ascii &= lanes.mask() & before == 0;
            (ends != 0).then(|| offset + ends.trailing_zeros() as usize)
        }
    }

    /// The header line that starts `text`, if `text` holds its end.
    ///
    /// # Safety
    /// As for [`Block`]'s methods.
    #[inline(always)]
    unsafe fn header_line<B: Block>(text: &[u8]) -> Option<HeaderLine> {
        let mut line = HeaderLine::UNSEEN;
        let (blocks, tail) = text.as_chunks::<BLOCK>();
        // SAFETY: the caller's CPU has `B`'s feature.
        unsafe {
            for (index, bytes) in blocks.iter().enumerate() {
                if let Some(end) = header_block::<B>(bytes, index * BLOCK, &mut line) {
                    return Some(HeaderLine { end, ..line });
                }
            }
            let end = header_block::<B>(&padded(tail), text.len() - tail.len(), &mut line)?;
            Some(HeaderLine { end, ..line })
        }
    }

    /// Defines `$name::scan_body` over the block type `$block`, compiled with `$feature`.
    macro_rules! lane_scan {
        ($name:ident, $block:ty, $feature:literal) => {
            pub(super) mod $name {
                use super::super::{BodyScan, HeaderLine};
                use super::{BLOCK, Masks};

                #[inline(never)]
                #[target_feature(enable = $feature)]
                unsafe fn masks<const UNUSUAL: bool>(bytes: &[u8; BLOCK], line_start: bool) -> Masks {
                    // SAFETY: this function is compiled with the block's feature, which the
                    // caller's CPU has.
                    unsafe { super::masks::<$block, UNUSUAL>(bytes, line_start) }
                }

                #[inline(never)]
                #[target_feature(enable = $feature)]
                unsafe fn header_line(text: &[u8]) -> Option<HeaderLine> {
                    // SAFETY: as above.
                    unsafe { super::header_line::<$block>(text) }
                }

                #[doc = concat!("[`super::super::scan_body`] with ", $feature, ".")]
                ///
                /// # Safety
                /// The CPU must have the feature.
                #[target_feature(enable = $feature)]
                pub(in super::super) unsafe fn scan_body<const UNUSUAL: bool>(text: &[u8]) -> BodyScan {
                    // SAFETY: compiled with the block's feature, which the caller's CPU has.
                    unsafe { super::scan_body::<$block, UNUSUAL>(text, masks::<UNUSUAL>, header_line) }
                }
            }
        };
    }

    lane_scan!(sse2, super::Sse2, "sse2");
    lane_scan!(avx2, super::Avx2, "avx2,popcnt");

    use std::arch::x86_64::{
        __m128i, __m256i, _mm_add_epi8, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_movemask_epi8,
        _mm_or_si128, _mm_sad_epu8, _mm_set1_epi8, _mm_setzero_si128, _mm_storeu_si128, _mm_sub_epi8, _mm256_add_epi8,
        _mm256_andnot_si256, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_sad_epu8, _mm256_set1_epi8, _mm256_setzero_si256, _mm256_storeu_si256, _mm256_sub_epi8,
    };

    /// Four 16-byte registers.
    #[derive(Clone, Copy)]
    pub(super) struct Sse2([__m128i; 4]);

    impl Block for Sse2 {
        type Lane = __m128i;
        const BLOCKS_PER_FLUSH: usize = 255 / 4;

        #[inline(always)]
        unsafe fn load(bytes: &[u8; BLOCK]) -> Self {
            // SAFETY: every bit pattern is a valid register; see `Block::load`.
            Self(unsafe { std::mem::transmute::<[u8; BLOCK], [__m128i; 4]>(*bytes) })
        }

        #[inline(always)]
        unsafe fn eq(self, byte: u8) -> Self {
            // SAFETY: the CPU has SSE2 (the trait's contract).
            unsafe {
                let b = _mm_set1_epi8(byte as i8);
                let [v0, v1, v2, v3] = self.0;
                Self([
                    _mm_cmpeq_epi8(v0, b),
                    _mm_cmpeq_epi8(v1, b),
                    _mm_cmpeq_epi8(v2, b),
                    _mm_cmpeq_epi8(v3, b),
                ])
            }
        }

        #[inline(always)]
        unsafe fn unusual(self) -> Self {
            // SAFETY: the CPU has SSE2 (the trait's contract).
            unsafe {
                let (bang, tilde) = (_mm_set1_epi8(b'!' as i8), _mm_set1_epi8(b'~' as i8));
                let (newline, semicolon) = (_mm_set1_epi8(b'\n' as i8), _mm_set1_epi8(b';' as i8));
                let one = |v| {
                    let outside = _mm_or_si128(_mm_cmplt_epi8(v, bang), _mm_cmplt_epi8(tilde, v));
                    _mm_or_si128(
                        _mm_andnot_si128(_mm_cmpeq_epi8(v, newline), outside),
                        _mm_cmpeq_epi8(v, semicolon),
                    )
                };
                let [v0, v1, v2, v3] = self.0;
                Self([one(v0), one(v1), one(v2), one(v3)])
            }
        }

        #[inline(always)]
        unsafe fn any(self) -> __m128i {
            // SAFETY: the CPU has SSE2 (the trait's contract).
            unsafe {
                let [a, b, c, d] = self.0;
                _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d))
            }
        }

        #[inline(always)]
        unsafe fn add(self) -> __m128i {
            // SAFETY: the CPU has SSE2 (the trait's contract).
            unsafe {
                let [a, b, c, d] = self.0;
                _mm_add_epi8(_mm_add_epi8(a, b), _mm_add_epi8(c, d))
            }
        }

        #[inline(always)]
        unsafe fn mask(self) -> u64 {
            // SAFETY: the CPU has SSE2 (the trait's contract).
            unsafe {
                let m = |v| u64::from(_mm_movemask_epi8(v) as u16);
                let [a, b, c, d] = self.0;
                m(a) | (m(b) << 16) | (m(c) << 32) | (m(d) << 48)
            }
        }

        #[inline(always)]
        unsafe fn zero() -> __m128i {
            // SAFETY: the CPU has SSE2 (the trait's contract).
            unsafe { _mm_setzero_si128() }
        }

        #[inline(always)]
        unsafe fn or(a: __m128i, b: __m128i) -> __m128i {
            // SAFETY: the CPU has SSE2 (the trait's contract).
            unsafe { _mm_or_si128(a, b) }
        }

        #[inline(always)]
        unsafe fn sub(a: __m128i, b: __m128i) -> __m128i {
            // SAFETY: the CPU has SSE2 (the trait's contract).
            unsafe { _mm_sub_epi8(a, b) }
        }

        #[inline(always)]
        unsafe fn any_high(lane: __m128i) -> bool {
            // SAFETY: the CPU has SSE2 (the trait's contract).
            unsafe { _mm_movemask_epi8(lane) != 0 }
        }

        #[inline(always)]
        unsafe fn sum(counter: __m128i) -> u64 {
            let mut sums = [0u64; 2];
            // SAFETY: the CPU has SSE2 (the trait's contract); `sums` is 16 writable bytes.
            unsafe {
                let sad = _mm_sad_epu8(counter, _mm_setzero_si128());
                _mm_storeu_si128(sums.as_mut_ptr().cast(), sad);
            }
            sums.iter().sum()
        }
    }

    /// Two 32-byte registers.
    #[derive(Clone, Copy)]
    pub(super) struct Avx2([__m256i; 2]);

    impl Block for Avx2 {
        type Lane = __m256i;
        const BLOCKS_PER_FLUSH: usize = 255 / 2;

        #[inline(always)]
        unsafe fn load(bytes: &[u8; BLOCK]) -> Self {
            // SAFETY: every bit pattern is a valid register; see `Block::load`.
            Self(unsafe { std::mem::transmute::<[u8; BLOCK], [__m256i; 2]>(*bytes) })
        }

        #[inline(always)]
        unsafe fn eq(self, byte: u8) -> Self {
            // SAFETY: the CPU has AVX2 (the trait's contract).
            unsafe {
                let b = _mm256_set1_epi8(byte as i8);
                Self([_mm256_cmpeq_epi8(self.0[0], b), _mm256_cmpeq_epi8(self.0[1], b)])
            }
        }

        #[inline(always)]
        unsafe fn unusual(self) -> Self {
            // SAFETY: the CPU has AVX2 (the trait's contract).
            unsafe {
                let (bang, tilde) = (_mm256_set1_epi8(b'!' as i8), _mm256_set1_epi8(b'~' as i8));
                let (newline, semicolon) = (_mm256_set1_epi8(b'\n' as i8), _mm256_set1_epi8(b';' as i8));
                let one = |v| {
                    let outside = _mm256_or_si256(_mm256_cmpgt_epi8(bang, v), _mm256_cmpgt_epi8(v, tilde));
                    _mm256_or_si256(
                        _mm256_andnot_si256(_mm256_cmpeq_epi8(v, newline), outside),
                        _mm256_cmpeq_epi8(v, semicolon),
                    )
                };
                Self([one(self.0[0]), one(self.0[1])])
            }
        }

        #[inline(always)]
        unsafe fn any(self) -> __m256i {
            // SAFETY: the CPU has AVX2 (the trait's contract).
            unsafe { _mm256_or_si256(self.0[0], self.0[1]) }
        }

        #[inline(always)]
        unsafe fn add(self) -> __m256i {
            // SAFETY: the CPU has AVX2 (the trait's contract).
            unsafe { _mm256_add_epi8(self.0[0], self.0[1]) }
        }

        #[inline(always)]
        unsafe fn mask(self) -> u64 {
            // SAFETY: the CPU has AVX2 (the trait's contract).
            unsafe {
                let m = |v| u64::from(_mm256_movemask_epi8(v) as u32);
                m(self.0[0]) | (m(self.0[1]) << 32)
            }
        }

        #[inline(always)]
        unsafe fn zero() -> __m256i {
            // SAFETY: the CPU has AVX2 (the trait's contract).
            unsafe { _mm256_setzero_si256() }
        }

        #[inline(always)]
        unsafe fn or(a: __m256i, b: __m256i) -> __m256i {
            // SAFETY: the CPU has AVX2 (the trait's contract).
            unsafe { _mm256_or_si256(a, b) }
        }

        #[inline(always)]
        unsafe fn sub(a: __m256i, b: __m256i) -> __m256i {
            // SAFETY: the CPU has AVX2 (the trait's contract).
            unsafe { _mm256_sub_epi8(a, b) }
        }

        #[inline(always)]
        unsafe fn any_high(lane: __m256i) -> bool {
            // SAFETY: the CPU has AVX2 (the trait's contract).
            unsafe { _mm256_movemask_epi8(lane) != 0 }
        }

        #[inline(always)]
        unsafe fn sum(counter: __m256i) -> u64 {
            let mut sums = [0u64; 4];
            // SAFETY: the CPU has AVX2 (the trait's contract); `sums` is 32 writable bytes.
            unsafe {
                let sad = _mm256_sad_epu8(counter, _mm256_setzero_si256());
                _mm256_storeu_si256(sums.as_mut_ptr().cast(), sad);
            }
            sums.iter().sum()
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Texts from a small alphabet heavy in the bytes the scan looks for, and long header-free
    /// bodies with one odd byte.
    fn texts() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            8 => Just(b'A'),
            4 => Just(b'\n'),
            1 => Just(b'>'),
            1 => Just(b' '),
            1 => Just(b'\t'),
            1 => Just(b';'),
            1 => Just(b'\r'),
            1 => Just(0xC3u8),
            1 => Just(b'~'),
            1 => Just(0x7Fu8),
        ];
        let mixed = prop::collection::vec(byte, 0..700);
        let bodies = (0usize..200, 1usize..90, any::<u16>()).prop_map(|(lines, width, odd)| {
            let mut text = Vec::new();
            for _ in 0..lines {
                text.extend(std::iter::repeat_n(b'K', width));
                text.push(b'\n');
            }
            if !text.is_empty() {
                let at = usize::from(odd) % text.len();
                text[at] = b"> \xC3"[usize::from(odd) % 3];
            }
            text
        });
        prop_oneof![mixed, bodies]
    }

    /// A scan under test.
    type Scan = Box<dyn Fn(&[u8], bool) -> BodyScan>;

    /// The scans this CPU can run, by name: each path, and the dispatch.
    fn scans() -> Vec<(&'static str, Scan)> {
        let mut scans: Vec<(&'static str, Scan)> = vec![("dispatch", Box::new(scan_body))];
        for path in ScanPath::ALL.into_iter().filter(|path| path.available()) {
            // SAFETY: the CPU can run the path.
            scans.push((
                path.name(),
                Box::new(move |text, unusual| unsafe { path.scan(text, unusual) }),
            ));
        }
        scans
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn every_scan_agrees_with_the_bytewise_scan(text in texts()) {
            let want = scan_body_bytewise(&text);
            for (name, scan) in scans() {
                for unusual in [true, false] {
                    let got = scan(&text, unusual);
                    let want = BodyScan { unusual: want.unusual && unusual, ..want };
                    prop_assert_eq!(got, want, "{}", name);
                }
            }
        }
    }

    #[test]
    fn the_environment_picks_a_path_the_cpu_can_run() {
        use std::ffi::OsStr;
        assert_eq!(ScanPath::from_setting(None), Ok(ScanPath::best()));
        assert!(ScanPath::best().available());
        for path in ScanPath::ALL {
            let chosen = ScanPath::from_setting(Some(OsStr::new(path.name())));
            match chosen {
                Ok(chosen) => assert!(chosen == path && path.available()),
                Err(message) => {
                    assert!(!path.available(), "{message}");
                    assert!(
                        message.contains("cannot run") && message.contains("bytewise"),
                        "{message}"
                    );
                }
            }
        }
        let message = ScanPath::from_setting(Some(OsStr::new("avx9"))).unwrap_err();
        assert!(
            message.contains("R2DL_FASTA_SCAN=\"avx9\" names no FASTA scan"),
            "{message}"
        );
        assert!(message.contains("avx512, avx2, sse2, swar, bytewise"), "{message}");
        // every x86-64 CPU has SSE2; AVX2 and AVX-512 are named when present
        #[cfg(target_arch = "x86_64")]
        {
            assert!(ScanPath::Sse2.available());
            assert_eq!(
                ScanPath::Avx2.available(),
                std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt")
            );
        }
    }

    fn scan_body_checked(text: &[u8]) -> BodyScan {
        scan_body(text, true)
    }

    #[test]
    fn stops_at_the_first_line_that_starts_with_a_header_mark() {
        let text = b"AC>D\nGG\n>x y\tz\nTT\n";
        let scan = scan_body_checked(text);
        let want = BodyScan {
            len: 8,
            header: true,
            header_line: None,
            newlines: 2,
            ascii: true,
            unusual: false,
        };
        assert_eq!(
            BodyScan {
                header_line: None,
                ..scan
            },
            want
        );
        let line = HeaderLine {
            end: 6,
            blank: Some(2),
            ascii: true,
            carriage_return: None,
        };
        assert_eq!(scan_body_bytewise(text).header_line, Some(line));
        assert_eq!(scan.header_line, Some(line));
        assert_eq!(scan_body_checked(b">x").len, 0);
        // a header line without its end is not described
        assert_eq!(scan_body_bytewise(b"A\n>x").header_line, None);
        let long = "ACDEFGHIKL\n".repeat(700);
        let scan = scan_body_checked(long.as_bytes());
        assert_eq!((scan.len, scan.header, scan.newlines), (long.len(), false, 700));
    }

    #[test]
    fn flags_bytes_that_need_the_careful_path() {
        assert!(!scan_body_checked(b"MKV\nLLA").unusual);
        for odd in [&b"MK V\n"[..], b"MK\tV\n", b"MKV\r\n", b"MKV;x\n", b"MK\x00V\n"] {
            let scan = scan_body_checked(odd);
            assert!(scan.unusual && scan.ascii, "{odd:?}");
        }
        let scan = scan_body_checked("MKé\n".repeat(40).as_bytes());
        assert!(scan.unusual && !scan.ascii);
        // what follows the header does not count
        let scan = scan_body_checked("MK\n>é \n".as_bytes());
        assert!(!scan.unusual && scan.ascii && scan.header);
    }

    #[test]
    fn ascii_fold_matches_the_standard_library() {
        for text in [
            "",
            "sp|P1 protein",
            "é",
            &"x".repeat(300),
            &format!("{}é", "x".repeat(300)),
        ] {
            assert_eq!(is_ascii(text.as_bytes()), text.is_ascii(), "{text}");
        }
    }
}
