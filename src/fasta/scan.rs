//! The one pass over a record's sequence lines: where the next header starts (and its line
//! ends), how many lines come before it, and whether those bytes need the careful line-by-line
//! path. Done 64 bytes at a time on x86-64, with AVX-512BW where the CPU has it (checked once)
//! and SSE2 (part of the baseline) otherwise; byte by byte elsewhere.

/// What [`scan_body`] found in the text before the next header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyScan {
    /// Bytes before the next header line, or the whole text when it holds none.
    pub len: usize,
    /// Whether a header line starts at `len`.
    pub header: bool,
    /// What the header line at `len` holds, when the scan looked (the AVX-512 and byte-wise
    /// scans do when `text` holds the line's end; the SSE2 scan leaves it to the line reader).
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
}

/// Calls the instance of a scan `f::<UNUSUAL>` that `flag` selects.
#[cfg(target_arch = "x86_64")]
macro_rules! by_flag {
    ($($f:ident)::+, $text:expr, $flag:expr) => {
        if $flag { $($f)::+::<true>($text) } else { $($f)::+::<false>($text) }
    };
}

/// Scans `text`, which starts at a line start, up to the first line that starts with `>`.
/// [`BodyScan::unusual`] is computed only when `check_unusual` is set (false otherwise).
pub(crate) fn scan_body(text: &[u8], check_unusual: bool) -> BodyScan {
    #[cfg(target_arch = "x86_64")]
    {
        static AVX512: std::sync::LazyLock<bool> = std::sync::LazyLock::new(avx512::detected);
        if *AVX512 {
            // SAFETY: the CPU has every feature `avx512::scan_body` is compiled for.
            return unsafe { by_flag!(avx512::scan_body, text, check_unusual) };
        }
        // SAFETY: SSE2 is part of the x86-64 baseline.
        unsafe { by_flag!(sse2::scan_body, text, check_unusual) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let scan = scan_body_bytewise(text);
        BodyScan {
            unusual: scan.unusual && check_unusual,
            ..scan
        }
    }
}

/// Byte-at-a-time [`scan_body`]: the portable path, and the reference the vectorised paths are
/// tested against.
#[cfg_attr(target_arch = "x86_64", allow(dead_code, reason = "the reference of the tests"))]
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
            let line = &text[i..];
            scan.header_line = memchr::memchr(b'\n', line).map(|end| HeaderLine {
                end,
                blank: memchr::memchr2(b' ', b'\t', &line[..end]),
                ascii: line[..end].is_ascii(),
            });
            break;
        }
        scan.newlines += u64::from(b == b'\n');
        scan.ascii &= b.is_ascii();
        scan.unusual |= b != b'\n' && !b.is_ascii_graphic() || b == b';';
        line_start = b == b'\n';
    }
    scan
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
        _mm512_loadu_si512, _mm512_maskz_loadu_epi8, _mm512_movepi8_mask, _mm512_set1_epi8,
    };

    use super::{BodyScan, HeaderLine};

    const BLOCK: usize = 64;

    /// Whether the CPU has the features [`scan_body`] is compiled for.
    pub(super) fn detected() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("popcnt")
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
        if line.blank.is_none() && blanks != 0 {
            line.blank = Some(offset + blanks.trailing_zeros() as usize);
        }
        line.ascii &= _mm512_movepi8_mask(v) & before == 0;
        (ends != 0).then(|| offset + ends.trailing_zeros() as usize)
    }

    /// The header line that starts `text`, if `text` holds its end.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    fn header_line(text: &[u8]) -> Option<HeaderLine> {
        let mut line = HeaderLine {
            end: 0,
            blank: None,
            ascii: true,
        };
        let (blocks, tail) = text.as_chunks::<BLOCK>();
        for (index, bytes) in blocks.iter().enumerate() {
            // SAFETY: `bytes` holds 64 readable bytes; the load is unaligned.
            let v = unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) };
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
            // SAFETY: `bytes` holds 64 readable bytes; the load is unaligned.
            let v = unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) };
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

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _MM_HINT_T0, _mm_add_epi8, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128,
        _mm_movemask_epi8, _mm_or_si128, _mm_prefetch, _mm_sad_epu8, _mm_set1_epi8, _mm_setzero_si128,
        _mm_storeu_si128, _mm_sub_epi8,
    };

    use super::BodyScan;

    const BLOCK: usize = 64;
    /// Blocks whose newlines the per-lane byte counters can take: a block adds at most 4.
    const BLOCKS_PER_FLUSH: usize = 63;

    /// The four 16-byte lanes of one 64-byte block.
    type Lanes = [__m128i; 4];

    #[inline]
    #[target_feature(enable = "sse2")]
    fn load(bytes: &[u8; BLOCK]) -> Lanes {
        let p = bytes.as_ptr().cast::<__m128i>();
        // SAFETY: `bytes` holds 64 readable bytes: unaligned 16-byte loads at 0, 16, 32, 48.
        unsafe {
            [
                _mm_loadu_si128(p),
                _mm_loadu_si128(p.add(1)),
                _mm_loadu_si128(p.add(2)),
                _mm_loadu_si128(p.add(3)),
            ]
        }
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    fn eq(lanes: Lanes, byte: u8) -> Lanes {
        let b = _mm_set1_epi8(byte as i8);
        [
            _mm_cmpeq_epi8(lanes[0], b),
            _mm_cmpeq_epi8(lanes[1], b),
            _mm_cmpeq_epi8(lanes[2], b),
            _mm_cmpeq_epi8(lanes[3], b),
        ]
    }

    /// Bytes outside `!`..=`~` other than `\n`, and `;`. The compare is signed, so non-ASCII
    /// bytes are negative and fall below `!`.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn unusual(lanes: Lanes) -> Lanes {
        let (bang, tilde) = (_mm_set1_epi8(b'!' as i8), _mm_set1_epi8(b'~' as i8));
        let (newline, semicolon) = (_mm_set1_epi8(b'\n' as i8), _mm_set1_epi8(b';' as i8));
        let one = |v| {
            let outside = _mm_or_si128(_mm_cmplt_epi8(v, bang), _mm_cmplt_epi8(tilde, v));
            _mm_or_si128(
                _mm_andnot_si128(_mm_cmpeq_epi8(v, newline), outside),
                _mm_cmpeq_epi8(v, semicolon),
            )
        };
        [one(lanes[0]), one(lanes[1]), one(lanes[2]), one(lanes[3])]
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    fn any(lanes: Lanes) -> __m128i {
        _mm_or_si128(_mm_or_si128(lanes[0], lanes[1]), _mm_or_si128(lanes[2], lanes[3]))
    }

    /// One bit per byte: the high bits of the four lanes.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn mask(lanes: Lanes) -> u64 {
        let m = |v| u64::from(_mm_movemask_epi8(v) as u16);
        m(lanes[0]) | (m(lanes[1]) << 16) | (m(lanes[2]) << 32) | (m(lanes[3]) << 48)
    }

    /// The sum of the per-lane newline counters.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn sum(counter: __m128i) -> u64 {
        let mut sums = [0u64; 2];
        let sad = _mm_sad_epu8(counter, _mm_setzero_si128());
        // SAFETY: `sums` is 16 writable bytes.
        unsafe { _mm_storeu_si128(sums.as_mut_ptr().cast(), sad) };
        sums[0] + sums[1]
    }

    /// A block as bit masks, one bit per byte.
    struct Masks {
        newlines: u64,
        headers: u64,
        high_bits: u64,
        unusual: u64,
    }

    /// The masks of a block that holds a `>`. Out of line (it runs about once per record), to
    /// keep the registers of the main loop free.
    #[inline(never)]
    #[target_feature(enable = "sse2")]
    fn masks<const UNUSUAL: bool>(bytes: &[u8; BLOCK], line_start: bool) -> Masks {
        let lanes = load(bytes);
        let newlines = mask(eq(lanes, b'\n'));
        Masks {
            newlines,
            headers: mask(eq(lanes, b'>')) & ((newlines << 1) | u64::from(line_start)),
            high_bits: mask(lanes),
            unusual: if UNUSUAL { mask(unusual(lanes)) } else { 0 },
        }
    }

    /// [`super::scan_body`] with SSE2; `UNUSUAL`: whether to compute [`BodyScan::unusual`].
    ///
    /// # Safety
    /// The CPU must have SSE2, which every x86-64 CPU has.
    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn scan_body<const UNUSUAL: bool>(text: &[u8]) -> BodyScan {
        let (blocks, tail) = text.as_chunks::<BLOCK>();
        // the tail, padded with a residue, which changes none of the results
        let mut padded = [b'A'; BLOCK];
        padded[..tail.len()].copy_from_slice(tail);
        let mut newlines = 0;
        // ORs of every byte and of every `unusual` result, over the blocks without a `>` …
        let (mut high_bits, mut odd) = (_mm_setzero_si128(), _mm_setzero_si128());
        // … and over the bytes before the header of those with one
        let (mut high_bits_masked, mut odd_masked) = (0u64, 0u64);
        // whether the byte before the current block ends a line (the text starts at one)
        let mut line_start = true;
        let groups = blocks
            .chunks(BLOCKS_PER_FLUSH)
            .chain(std::iter::once(std::slice::from_ref(&padded)));
        let mut offset = 0;
        for group in groups {
            let mut counter = _mm_setzero_si128();
            for bytes in group {
                _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().wrapping_add(super::PREFETCH_DISTANCE).cast());
                let lanes = load(bytes);
                if _mm_movemask_epi8(any(eq(lanes, b'>'))) == 0 {
                    let matches = eq(lanes, b'\n');
                    let four = _mm_add_epi8(
                        _mm_add_epi8(matches[0], matches[1]),
                        _mm_add_epi8(matches[2], matches[3]),
                    );
                    // a match is -1
                    counter = _mm_sub_epi8(counter, four);
                    high_bits = _mm_or_si128(high_bits, any(lanes));
                    if UNUSUAL {
                        odd = _mm_or_si128(odd, any(unusual(lanes)));
                    }
                } else {
                    let m = masks::<UNUSUAL>(bytes, line_start);
                    let before = match m.headers {
                        0 => u64::MAX,
                        headers => (1u64 << headers.trailing_zeros()) - 1,
                    };
                    newlines += u64::from((m.newlines & before).count_ones());
                    high_bits_masked |= m.high_bits & before;
                    odd_masked |= m.unusual & before;
                    if m.headers != 0 {
                        return BodyScan {
                            len: offset + m.headers.trailing_zeros() as usize,
                            header: true,
                            header_line: None,
                            newlines: newlines + sum(counter),
                            ascii: high_bits_masked == 0 && _mm_movemask_epi8(high_bits) == 0,
                            unusual: odd_masked != 0 || _mm_movemask_epi8(odd) != 0,
                        };
                    }
                }
                line_start = bytes[BLOCK - 1] == b'\n';
                offset += BLOCK;
            }
            newlines += sum(counter);
        }
        BodyScan {
            len: text.len(),
            header: false,
            header_line: None,
            newlines,
            ascii: high_bits_masked == 0 && _mm_movemask_epi8(high_bits) == 0,
            unusual: odd_masked != 0 || _mm_movemask_epi8(odd) != 0,
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

    type Scan = fn(&[u8], bool) -> BodyScan;

    /// The vectorised scans that this CPU can run, by name.
    fn vectorised() -> Vec<(&'static str, Scan)> {
        let mut scans: Vec<(&'static str, Scan)> = vec![("dispatch", scan_body)];
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: SSE2 is part of the x86-64 baseline.
            scans.push(("sse2", |text, unusual| unsafe {
                by_flag!(sse2::scan_body, text, unusual)
            }));
            if avx512::detected() {
                // SAFETY: the features were detected.
                scans.push(("avx512", |text, unusual| unsafe {
                    by_flag!(avx512::scan_body, text, unusual)
                }));
            }
        }
        scans
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn vectorised_scans_agree_with_the_bytewise_scan(text in texts()) {
            let want = scan_body_bytewise(&text);
            for (name, scan) in vectorised() {
                for unusual in [true, false] {
                    let got = scan(&text, unusual);
                    if name == "avx512" {
                        prop_assert_eq!(got.header_line, want.header_line);
                    }
                    // the header line is optional (the SSE2 scan leaves it out), but right when given
                    let line = if got.header_line.is_some() { want.header_line } else { None };
                    let want = BodyScan { unusual: want.unusual && unusual, header_line: line, ..want };
                    prop_assert_eq!(got, want, "{}", name);
                }
            }
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
        };
        assert_eq!(scan_body_bytewise(text).header_line, Some(line));
        assert!(scan.header_line.is_none() || scan.header_line == Some(line));
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
