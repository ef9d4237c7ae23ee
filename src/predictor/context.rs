//! The neighbours a per-residue output mapping reads (`r2dl train --context R`): each residue's
//! features followed by those of the R residues on either side, so that the mapping is a
//! convolution of width 2R + 1 over the residues — the shape of TAPE's secondary-structure head
//! (convolutions over the last hidden states) and of the classical window predictors. Without
//! it a residue's class is read from its own state alone.
//!
//! Rows are laid out as the encoder gives them: runs of one input's consecutive residues
//! (`segments`); neighbours never cross a run's ends (those places read zeros), so a residue at a
//! sequence's or a window's end sees only its own side.

use std::borrow::Cow;
use std::ops::Range;

/// Most neighbours on each side.
pub const MAX_CONTEXT: usize = 32;

/// The runs of residue rows of inputs packed end to end as `[CLS] residues [SEP]` of `lengths`
/// tokens each.
pub fn token_segments(lengths: &[usize]) -> Vec<Range<usize>> {
    let mut start = 0;
    lengths
        .iter()
        .map(|&n| {
            let run = (start + 1).min(start + n)..(start + n).saturating_sub(1).max(start);
            start += n;
            run
        })
        .collect()
}

/// The runs of residue rows of inputs of `lengths` residues packed end to end (no `[CLS]`,
/// `[SEP]`).
pub fn residue_segments(lengths: &[usize]) -> Vec<Range<usize>> {
    let mut start = 0;
    lengths
        .iter()
        .map(|&n| {
            start += n;
            start - n..start
        })
        .collect()
}

/// `rows` (`[n, width]`) as the mapping reads them with `radius` neighbours: `[n, (2·radius + 1)
/// · width]`, row i holding rows i − radius … i + radius of its segment in that order, zeros
/// where one falls outside the segment and for rows outside every segment. Radius 0 borrows
/// `rows` as they are.
pub fn expand<'r>(rows: &'r [f32], width: usize, segments: &[Range<usize>], radius: usize) -> Cow<'r, [f32]> {
    if radius == 0 {
        return Cow::Borrowed(rows);
    }
    let span = 2 * radius + 1;
    let mut out = vec![0f32; rows.len() * span];
    for (i, slot, j) in neighbours(segments, radius) {
        let at = (i * span + slot) * width;
        out[at..at + width].copy_from_slice(&rows[j * width..(j + 1) * width]);
    }
    Cow::Owned(out)
}

/// The gradient of the rows (`[n, width]`) from the gradient of their expansion `d_expanded`
/// (`[n, (2·radius + 1) · width]`): the adjoint of [`expand`], each neighbour's share summed
/// back onto the row it was copied from.
pub fn fold(d_expanded: &[f32], width: usize, segments: &[Range<usize>], radius: usize) -> Vec<f32> {
    if radius == 0 {
        return d_expanded.to_vec();
    }
    let span = 2 * radius + 1;
    let mut out = vec![0f32; d_expanded.len() / span];
    for (i, slot, j) in neighbours(segments, radius) {
        let at = (i * span + slot) * width;
        out[j * width..(j + 1) * width]
            .iter_mut()
            .zip(&d_expanded[at..at + width])
            .for_each(|(g, d)| *g += d);
    }
    out
}

/// Every (row i, slot, neighbour j) with j = i + slot − `radius` inside i's segment: where
/// [`expand`] copies row j to and [`fold`] sums its gradient back from.
fn neighbours(segments: &[Range<usize>], radius: usize) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    segments.iter().flat_map(move |segment| {
        segment.clone().flat_map(move |i| {
            (0..=2 * radius).filter_map(move |slot| {
                (i + slot)
                    .checked_sub(radius)
                    .filter(|j| segment.contains(j))
                    .map(|j| (i, slot, j))
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_of_tokens_skip_cls_and_sep_and_of_residues_cover_every_row() {
        assert_eq!(token_segments(&[5, 2, 3]), [1..4, 6..6, 8..9]);
        assert_eq!(residue_segments(&[3, 0, 2]), [0..3, 3..3, 3..5]);
    }

    #[test]
    fn each_row_reads_its_neighbours_within_its_segment_and_zeros_beyond() {
        // two sequences of residues, one value per row: 1 2 3 | 4 5
        let rows = [1.0, 2.0, 3.0, 4.0, 5.0];
        let segments = residue_segments(&[3, 2]);
        let expanded = expand(&rows, 1, &segments, 1);
        assert_eq!(
            expanded.as_ref(),
            [
                0.0, 1.0, 2.0, 1.0, 2.0, 3.0, 2.0, 3.0, 0.0, 0.0, 4.0, 5.0, 4.0, 5.0, 0.0
            ]
        );
        // [CLS] a b [SEP] with width 2: the special tokens' rows stay zero and are not read
        let tokens = [9.0, 9.0, 1.0, 2.0, 3.0, 4.0, 9.0, 9.0];
        let expanded = expand(&tokens, 2, &token_segments(&[4]), 1);
        assert_eq!(&expanded[..6], [0.0; 6]);
        assert_eq!(&expanded[6..12], [0.0, 0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(&expanded[12..18], [1.0, 2.0, 3.0, 4.0, 0.0, 0.0]);
        assert_eq!(&expanded[18..], [0.0; 6]);
        assert!(matches!(expand(&rows, 1, &segments, 0), Cow::Borrowed(_)));
    }

    #[test]
    fn fold_is_the_adjoint_of_expand() {
        // ⟨expand(x), y⟩ = ⟨x, fold(y)⟩ for any x and y
        let width = 3;
        let segments = token_segments(&[6, 3, 9]);
        let n = 18;
        let x: Vec<f32> = (0..n * width).map(|i| ((i * 7919) % 23) as f32 - 11.0).collect();
        for radius in [1, 2, 5] {
            let span = 2 * radius + 1;
            let y: Vec<f32> = (0..n * width * span)
                .map(|i| ((i * 104_729) % 17) as f32 - 8.0)
                .collect();
            let left: f32 = expand(&x, width, &segments, radius)
                .iter()
                .zip(&y)
                .map(|(a, b)| a * b)
                .sum();
            let folded = fold(&y, width, &segments, radius);
            let right: f32 = x.iter().zip(&folded).map(|(a, b)| a * b).sum();
            assert_eq!(left, right, "radius {radius}");
            assert_eq!(folded.len(), x.len());
        }
    }
}
