//! How the features of an input's tokens become one vector: their mean (R2DL's mean pooling),
//! or the means of `K` consecutive segments of equal length, side by side (`K × width` values).
//! A mean over the whole protein cannot tell where a residue sits; segment means can, which is
//! what a property set by a few positions of one fold (GFP's fluorescence) needs.
//!
//! Segments are equal stretches of the input, not equal counts of tokens: token `i` of `n`
//! spans `[i/n, (i+1)/n)`, segment `s` of `K` spans `[s/K, (s+1)/K)`, and a segment's mean weighs
//! each token by the share of the segment it covers. So every segment has a mean even when the
//! input has fewer tokens than segments, and a token on a boundary counts in both, in part.

/// The segments that token `i` of `n` overlaps, each with the token's weight in that segment's
/// mean (a segment's weights sum to 1).
pub(crate) fn segment_weights(i: usize, n: usize, segments: usize) -> impl Iterator<Item = (usize, f32)> {
    // in units of 1/(n·K): token i covers [i·K, (i+1)·K), segment s covers [s·n, (s+1)·n)
    let (start, end) = (i * segments, (i + 1) * segments);
    (start / n..end.div_ceil(n).min(segments)).filter_map(move |s| {
        let covered = end.min((s + 1) * n).saturating_sub(start.max(s * n));
        (covered > 0).then(|| (s, covered as f32 / n as f32))
    })
}

/// Pools the packed features `x` (`[tokens, width]`, the inputs of `lengths` end to end) into
/// `segments` means per input: `lengths.len() × segments · width`. One segment is the plain mean.
pub(crate) fn pool(x: &[f32], lengths: &[usize], width: usize, segments: usize) -> Vec<f32> {
    let mut pooled = vec![0f32; lengths.len() * segments * width];
    let mut offset = 0;
    for (&n, out) in lengths.iter().zip(pooled.chunks_exact_mut(segments * width)) {
        let rows = x[offset * width..(offset + n) * width].chunks_exact(width);
        if segments == 1 {
            for row in rows {
                out.iter_mut().zip(row).for_each(|(m, v)| *m += v);
            }
            out.iter_mut().for_each(|m| *m /= n.max(1) as f32);
        } else {
            for (i, row) in rows.enumerate() {
                add_token(out, row, i, n, segments, 1.0);
            }
        }
        offset += n;
    }
    pooled
}

/// Adds `scale ×` the features `state` of token `i` of `n` to the segment means `out`
/// (`segments × state.len()`).
pub(crate) fn add_token(out: &mut [f32], state: &[f32], i: usize, n: usize, segments: usize, scale: f32) {
    let width = state.len();
    for (s, weight) in segment_weights(i, n, segments) {
        let w = scale * weight;
        out[s * width..(s + 1) * width]
            .iter_mut()
            .zip(state)
            .for_each(|(m, v)| *m += w * v);
    }
}

/// The gradient of every token's features (`[tokens, width]`) from that of [`pool`]'s output
/// (`lengths.len() × segments · width`): each segment's gradient goes back to its tokens by their
/// weights in its mean.
pub(crate) fn spread(d_pooled: &[f32], lengths: &[usize], width: usize, segments: usize) -> Vec<f32> {
    let tokens: usize = lengths.iter().sum();
    let mut d_features = Vec::with_capacity(tokens * width);
    for (&n, g) in lengths.iter().zip(d_pooled.chunks_exact(segments * width)) {
        for i in 0..n {
            if segments == 1 {
                d_features.extend(g.iter().map(|v| v / n as f32));
                continue;
            }
            let at = d_features.len();
            d_features.resize(at + width, 0.0);
            for (s, weight) in segment_weights(i, n, segments) {
                d_features[at..]
                    .iter_mut()
                    .zip(&g[s * width..(s + 1) * width])
                    .for_each(|(d, v)| *d += weight * v);
            }
        }
    }
    d_features
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(i: usize, n: usize, k: usize) -> Vec<(usize, f32)> {
        segment_weights(i, n, k).collect()
    }

    #[test]
    fn each_segment_weighs_its_tokens_by_the_share_they_cover() {
        // as many tokens as segments: one token each
        assert_eq!(weights(2, 5, 5), [(2, 1.0)]);
        // twice as many: two halves
        assert_eq!(weights(3, 10, 5), [(1, 0.5)]);
        // a token over a boundary: 3 tokens in 2 segments, the middle one half in each
        assert_eq!(weights(1, 3, 2), [(0, 1.0 / 3.0), (1, 1.0 / 3.0)]);
        // fewer tokens than segments: one token fills several
        assert_eq!(weights(0, 2, 4), [(0, 1.0), (1, 1.0)]);
        for (n, k) in [(1, 1), (1, 7), (7, 3), (240, 10), (241, 10), (13, 13), (5, 64)] {
            let mut sums = vec![0f32; k];
            for i in 0..n {
                for (s, w) in segment_weights(i, n, k) {
                    assert!(w > 0.0 && s < k, "n {n}, k {k}");
                    sums[s] += w;
                }
            }
            assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "n {n}, k {k}: {sums:?}");
        }
    }

    #[test]
    fn one_segment_is_the_mean_and_more_are_means_of_stretches() {
        // two inputs of width 2: 4 tokens and 2 tokens
        let x = [1., 10., 2., 20., 3., 30., 4., 40., 5., 50., 7., 70.];
        assert_eq!(pool(&x, &[4, 2], 2, 1), [2.5, 25., 6., 60.]);
        assert_eq!(pool(&x, &[4, 2], 2, 2), [1.5, 15., 3.5, 35., 5., 50., 7., 70.]);
        // three segments of four tokens: the middle one is half token 1, half token 2
        let three = pool(&x, &[4, 2], 2, 3);
        let expected_first = [1.0 * 0.75 + 2.0 * 0.25, 3.0 * 0.5 + 2.0 * 0.5, 4.0 * 0.75 + 3.0 * 0.25];
        for (s, e) in expected_first.iter().enumerate() {
            assert!((three[2 * s] - e).abs() < 1e-6, "segment {s}: {three:?}");
        }
    }

    #[test]
    fn spreading_is_the_transpose_of_pooling() {
        // <pool(x), g> = <x, spread(g)> for any x and g: spread is pool's adjoint
        let lengths = [5, 1, 12];
        let (width, tokens) = (3, 18);
        let x: Vec<f32> = (0..tokens * width).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();
        for segments in [1, 2, 4, 7] {
            let g: Vec<f32> = (0..lengths.len() * segments * width)
                .map(|i| ((i * 5 % 13) as f32) / 3.0 - 2.0)
                .collect();
            let pooled = pool(&x, &lengths, width, segments);
            let spread = spread(&g, &lengths, width, segments);
            let left: f32 = pooled.iter().zip(&g).map(|(a, b)| a * b).sum();
            let right: f32 = x.iter().zip(&spread).map(|(a, b)| a * b).sum();
            assert!(
                (left - right).abs() < 1e-3 * left.abs().max(1.0),
                "{segments}: {left} vs {right}"
            );
        }
    }
}
