//! The segment overlap score SOV99 (Zemla, Venclovas, Fidelis & Rost 1999, Proteins 34:220) of a
//! predicted per-residue class string against the observed one.
//!
//! For each class, every observed segment `s1` (a maximal run of that class) is paired with each
//! predicted segment `s2` of the same class that shares a residue with it; the pair scores
//! `(minov + δ) / maxov · len(s1)`, where `minov` is the length of the overlap, `maxov` the length
//! of the span both cover, and `δ = min(maxov − minov, minov, ⌊len(s1)/2⌋, ⌊len(s2)/2⌋)`. The
//! normaliser `N` adds `len(s1)` once per pair and once for every observed segment no predicted
//! segment overlaps. `SOV = Σ score / N`, as a fraction (0–1) rather than SOV99's percentage.
//!
//! Unlabelled residues ([`UNLABELLED`](super::manifest::UNLABELLED)) end segments in both
//! strings: they are masked out of the prediction too, so a predicted segment that runs into an
//! unresolved stretch is neither rewarded nor penalised for the residues nobody observed.

/// A maximal run of one class: `[start, end)` in residues.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    class: u8,
    start: usize,
    end: usize,
}

impl Segment {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// The segments of `classes`, skipping positions where `masked` holds.
fn segments(classes: &[u8], masked: impl Fn(usize) -> bool) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for (i, &class) in classes.iter().enumerate() {
        if masked(i) {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.class == class && last.end == i => last.end = i + 1,
            _ => out.push(Segment {
                class,
                start: i,
                end: i + 1,
            }),
        }
    }
    out
}

/// SOV99's score and normaliser `(Σ score, N)` of one sequence; `observed` and `predicted` are
/// byte strings of equal length, `unlabelled` the observed byte that carries no label.
/// `N` is 0 when no residue is labelled.
fn sov99_terms(observed: &[u8], predicted: &[u8], unlabelled: u8) -> (f64, f64) {
    debug_assert_eq!(observed.len(), predicted.len());
    let masked = |i: usize| observed[i] == unlabelled;
    let truth = segments(observed, masked);
    let guess = segments(predicted, masked);
    let (mut score, mut normaliser) = (0.0, 0.0);
    for s1 in &truth {
        let mut overlapped = false;
        for s2 in guess
            .iter()
            .filter(|s2| s2.class == s1.class && s2.start < s1.end && s1.start < s2.end)
        {
            overlapped = true;
            let minov = s1.end.min(s2.end) - s1.start.max(s2.start);
            let maxov = s1.end.max(s2.end) - s1.start.min(s2.start);
            let delta = (maxov - minov).min(minov).min(s1.len() / 2).min(s2.len() / 2);
            score += (minov + delta) as f64 / maxov as f64 * s1.len() as f64;
            normaliser += s1.len() as f64;
        }
        if !overlapped {
            normaliser += s1.len() as f64;
        }
    }
    (score, normaliser)
}

/// SOV99 of one sequence (0–1), or `None` when it has no labelled residue.
pub fn sov99(observed: &[u8], predicted: &[u8], unlabelled: u8) -> Option<f64> {
    let (score, normaliser) = sov99_terms(observed, predicted, unlabelled);
    (normaliser > 0.0).then(|| score / normaliser)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sov(observed: &str, predicted: &str) -> f64 {
        sov99(observed.as_bytes(), predicted.as_bytes(), b'-').expect("labelled residues")
    }

    #[test]
    fn a_perfect_prediction_scores_one_and_a_disjoint_one_zero() {
        assert_eq!(sov("CCHHHHCCEEEC", "CCHHHHCCEEEC"), 1.0);
        assert_eq!(sov("HHHHHH", "EEEEEE"), 0.0);
    }

    #[test]
    fn scores_hand_worked_examples() {
        // Observed CHHHHHHHHHHC against two predictions with nearly the same Q3 but different
        // segments. Prediction 1: one shortened helix. H: s1 = 10, s2 = 8, minov 8, maxov 10, δ = min(2, 8, 5, 4) = 2
        //   → (8 + 2)/10 · 10 = 10; C: two observed 1-residue coils, each overlapped by a 2-residue
        //   predicted coil: minov 1, maxov 2, δ = min(1, 1, 0, 1) = 0 → 0.5 each; N = 10 + 1 + 1.
        let one = sov("CHHHHHHHHHHC", "CCHHHHHHHHCC");
        assert!((one - 11.0 / 12.0).abs() < 1e-12, "{one}");
        // Prediction 2: the helix broken in two (4 + 4 with a coil between): each pair minov 4,
        // maxov 10, δ = min(6, 4, 5, 2) = 2 → 6/10 · 10 twice, N counts s1 twice (20), plus coils
        // scored 1 each (N 2): (12 + 2) / 22.
        let two = sov("CHHHHHHHHHHC", "CHHHHCCHHHHC");
        // the coil segments: observed C at 0 overlaps predicted C at 0 (1,1): full; at 11 likewise.
        assert!((two - 14.0 / 22.0).abs() < 1e-12, "{two}");
    }

    #[test]
    fn unlabelled_residues_break_segments_and_are_masked_in_the_prediction() {
        // The observed helix is cut by an unresolved residue into two segments of 2; the predicted
        // helix spanning the gap is cut the same way, so both pairs are perfect.
        assert_eq!(sov("HH-HH", "HHHHH"), 1.0);
        assert_eq!(sov99(b"---", b"HHH", b'-'), None);
    }

    #[test]
    fn an_unpredicted_segment_counts_in_the_normaliser_only() {
        // E (3 residues) is never predicted: N gains 3, the score nothing; H is perfect.
        let s = sov("HHHEEE", "HHHHHH");
        // H: s1 = 3, s2 = 6 → minov 3, maxov 6, δ = min(3, 3, 1, 3) = 1 → 4/6 · 3 = 2; N = 3 + 3.
        assert!((s - 2.0 / 6.0).abs() < 1e-12, "{s}");
    }
}
