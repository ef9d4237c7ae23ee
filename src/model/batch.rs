//! Planning model work for a column of sequences: long sequences cut into overlapping windows,
//! windows sorted by length and grouped into batches under a token budget.

/// A stretch of one row's residues that the encoder sees as one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The row (index into the input column).
    pub row: usize,
    /// First residue.
    pub start: usize,
    /// Residues in the window.
    pub len: usize,
}

/// Cuts `len` residues into windows of at most `max_len` that overlap by about `overlap`, the
/// last one ending at the sequence's end. A sequence that fits is one window (also when empty).
pub fn windows(len: usize, max_len: usize, overlap: usize) -> Vec<(usize, usize)> {
    assert!(max_len > 0, "a window holds at least one residue");
    if len <= max_len {
        return vec![(0, len)];
    }
    let stride = max_len.saturating_sub(overlap).max(1);
    let mut out = Vec::with_capacity(len.div_ceil(stride));
    let mut start = 0;
    loop {
        if start + max_len >= len {
            out.push((len - max_len, max_len));
            return out;
        }
        out.push((start, max_len));
        start += stride;
    }
}

/// How far the windows of [`for_each_window_batch`] overlap: a quarter of their length.
fn overlap(max_len: usize) -> usize {
    max_len / 4
}

/// For a sequence of `len` residues that [`for_each_window_batch`] cuts into more than one
/// window of at most `max_len`, how many windows hold each residue; `None` when one window holds
/// them all.
pub(crate) fn window_coverage(len: usize, max_len: usize) -> Option<Vec<u32>> {
    if len <= max_len {
        return None;
    }
    let mut coverage = vec![0u32; len];
    for (start, window) in windows(len, max_len, overlap(max_len)) {
        coverage[start..start + window].iter_mut().for_each(|c| *c += 1);
    }
    Some(coverage)
}

/// Groups windows into batches: longest first, each batch's padded size (`count × (longest +
/// extra)`) within `token_budget` and its count within `max_batch`. Returns window indices.
pub fn plan_batches(windows: &[Window], extra_tokens: usize, token_budget: usize, max_batch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..windows.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(windows[i].len));
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0;
    for i in order {
        let tokens = windows[i].len + extra_tokens;
        if current.is_empty() {
            longest = tokens;
        }
        if !current.is_empty() && ((current.len() + 1) * longest > token_budget || current.len() >= max_batch) {
            batches.push(std::mem::take(&mut current));
            longest = tokens;
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Cuts every row's residue tokens into [`windows`] of at most `max_len` (overlapping by a
/// quarter), plans them into batches ([`plan_batches`], two extra tokens each for `[CLS]` and
/// `[SEP]`) and calls `visit` with each batch's windows and their tokens, in batch order.
/// `None` rows have no windows.
pub fn for_each_window_batch<E>(
    rows: &[Option<Vec<u8>>],
    max_len: usize,
    token_budget: usize,
    max_batch: usize,
    mut visit: impl FnMut(&[Window], &[&[u8]]) -> Result<(), E>,
) -> Result<(), E> {
    let mut pieces = Vec::new();
    for (row, tokens) in rows.iter().enumerate() {
        if let Some(tokens) = tokens {
            for (start, len) in windows(tokens.len(), max_len, overlap(max_len)) {
                pieces.push(Window { row, start, len });
            }
        }
    }
    for batch in plan_batches(&pieces, 2, token_budget, max_batch) {
        let batch: Vec<Window> = batch.iter().map(|&i| pieces[i]).collect();
        let inputs: Vec<&[u8]> = batch
            .iter()
            .map(|w| rows[w.row].as_deref().map_or(&[][..], |t| &t[w.start..w.start + w.len]))
            .collect();
        visit(&batch, &inputs)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sequences_are_one_window() {
        assert_eq!(windows(0, 510, 128), [(0, 0)]);
        assert_eq!(windows(510, 510, 128), [(0, 510)]);
    }

    #[test]
    fn long_sequences_are_covered_by_overlapping_windows() {
        for len in [511, 1000, 5000, 5001] {
            let w = windows(len, 510, 128);
            assert_eq!(w[0].0, 0);
            assert_eq!(w.last().map(|&(s, l)| s + l), Some(len));
            for pair in w.windows(2) {
                assert!(
                    pair[1].0 > pair[0].0 && pair[1].0 < pair[0].0 + pair[0].1,
                    "{len}: {w:?}"
                );
            }
            assert!(w.iter().all(|&(_, l)| l == 510));
        }
    }

    #[test]
    fn coverage_counts_the_windows_over_each_residue() {
        assert_eq!(window_coverage(10, 10), None);
        // 14 residues in windows of 8 overlapping by 2: [0, 8) and [6, 14)
        let twice: Vec<u32> = (0..14).map(|i| if (6..8).contains(&i) { 2 } else { 1 }).collect();
        assert_eq!(window_coverage(14, 8), Some(twice));
        for len in [511, 1000, 5001] {
            let coverage = window_coverage(len, 510).unwrap();
            assert!(coverage.iter().all(|&c| (1..=3).contains(&c)), "{len}");
        }
    }

    #[test]
    fn batches_hold_every_window_once_within_the_budget() {
        let lens = [5, 300, 40, 40, 510, 1, 0, 77, 77, 200];
        let ws: Vec<Window> = lens
            .iter()
            .enumerate()
            .map(|(row, &len)| Window { row, start: 0, len })
            .collect();
        let batches = plan_batches(&ws, 2, 1024, 4);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
        for b in &batches {
            let longest = b.iter().map(|&i| lens[i] + 2).max().unwrap_or(0);
            assert!(b.len() <= 4 && (b.len() == 1 || b.len() * longest <= 1024), "{b:?}");
        }
        // a window longer than the budget still gets a batch of its own
        assert_eq!(plan_batches(&ws[4..5], 2, 100, 4), [vec![0]]);
    }
}
