//! Evaluation metrics: accuracy, MCC, AUROC and F1 for classification; Spearman, Pearson, R² and
//! RMSE for regression.

use std::collections::BTreeMap;

/// Named metric values, in a stable order.
pub type Metrics = BTreeMap<String, f64>;

/// Ranks (1-based) with ties given their average rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let average = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = average;
        }
        i = j + 1;
    }
    ranks
}

/// Area under the ROC curve of `scores` for `positive` rows (Mann–Whitney, ties count half);
/// NaN when one class is absent.
pub fn auroc(scores: &[f64], positive: &[bool]) -> f64 {
    let ranks = ranks(scores);
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    let rank_sum: f64 = ranks.iter().zip(positive).filter(|(_, p)| **p).map(|(r, _)| r).sum();
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// Pearson's correlation; NaN when either side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        cov += (x - ma) * (y - mb);
        va += (x - ma) * (x - ma);
        vb += (y - mb) * (y - mb);
    }
    cov / (va * vb).sqrt()
}

/// Spearman's rank correlation.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// Classification metrics from true and predicted class indices, and for two classes the
/// probability of class `positive`. Multi-class MCC is Gorodkin's R_K; F1 is the positive
/// class's (binary) or the macro average over classes that occur in truth or prediction; AUROC
/// is one-vs-rest, macro-averaged over the classes present in `truth` (NaN when none can be
/// scored), when `probabilities` (`n × classes`) is given.
pub fn classification(
    truth: &[usize],
    predicted: &[usize],
    probabilities: &[f64],
    classes: usize,
    positive: Option<usize>,
) -> Metrics {
    let n = truth.len();
    let mut confusion = vec![0f64; classes * classes];
    for (&t, &p) in truth.iter().zip(predicted) {
        confusion[t * classes + p] += 1.0;
    }
    let correct: f64 = (0..classes).map(|c| confusion[c * classes + c]).sum();
    let actual = |c: usize| (0..classes).map(|p| confusion[c * classes + p]).sum::<f64>();
    let called = |c: usize| (0..classes).map(|t| confusion[t * classes + c]).sum::<f64>();
    let f1_of = |c: usize| {
        let tp = confusion[c * classes + c];
        let denominator = actual(c) + called(c);
        if denominator == 0.0 {
            0.0
        } else {
            2.0 * tp / denominator
        }
    };
    // Gorodkin's R_K (the binary MCC for two classes)
    let s = n as f64;
    let (mut tk, mut pk, mut tt) = (0.0, 0.0, 0.0);
    for c in 0..classes {
        tk += called(c) * actual(c);
        pk += called(c) * called(c);
        tt += actual(c) * actual(c);
    }
    let mcc_denominator = ((s * s - pk) * (s * s - tt)).sqrt();
    let mcc = if mcc_denominator == 0.0 {
        0.0
    } else {
        (correct * s - tk) / mcc_denominator
    };
    let mut metrics = Metrics::new();
    metrics.insert("n".into(), s);
    metrics.insert("accuracy".into(), correct / s);
    metrics.insert("mcc".into(), mcc);
    // macro averages run over the classes that occur (in truth or prediction; for AUROC, in truth
    // with both outcomes): with 1,195 folds most classes are absent from a test split
    let seen: Vec<usize> = (0..classes).filter(|&c| actual(c) + called(c) > 0.0).collect();
    match positive {
        Some(c) => metrics.insert("f1".into(), f1_of(c)),
        None => metrics.insert(
            "f1".into(),
            seen.iter().map(|&c| f1_of(c)).sum::<f64>() / seen.len().max(1) as f64,
        ),
    };
    if probabilities.len() == n * classes && n > 0 {
        let one_vs_rest = |c: usize| {
            let scores: Vec<f64> = probabilities.chunks_exact(classes).map(|p| p[c]).collect();
            let is: Vec<bool> = truth.iter().map(|&t| t == c).collect();
            auroc(&scores, &is)
        };
        let auc = match positive {
            Some(c) => one_vs_rest(c),
            None => {
                let scored: Vec<usize> = (0..classes).filter(|&c| actual(c) > 0.0 && actual(c) < s).collect();
                scored.iter().map(|&c| one_vs_rest(c)).sum::<f64>() / scored.len() as f64
            }
        };
        metrics.insert("auroc".into(), auc);
        // mean cross-entropy of the true class, each probability floored at 1e-7 (float32's reach)
        let log_loss = truth
            .iter()
            .zip(probabilities.chunks_exact(classes))
            .map(|(&t, p)| -p[t].max(1e-7).ln())
            .sum::<f64>()
            / s;
        metrics.insert("log_loss".into(), log_loss);
        if classes > 5 {
            metrics.insert("top5_accuracy".into(), top_k_accuracy(truth, probabilities, classes, 5));
        }
    }
    metrics
}

/// Share of rows whose true class is among the `k` most probable (`probabilities`: `n × classes`).
pub fn top_k_accuracy(truth: &[usize], probabilities: &[f64], classes: usize, k: usize) -> f64 {
    let hits = truth
        .iter()
        .zip(probabilities.chunks_exact(classes))
        .filter(|(t, p)| {
            // the true class is in the top k when fewer than k classes score higher
            let own = p[**t];
            p.iter().filter(|&&q| q > own).count() < k
        })
        .count();
    hits as f64 / truth.len().max(1) as f64
}

/// Precision and recall of each class, as `precision_<label>` and `recall_<label>`; left out
/// where undefined (a class never predicted, or never true), so that manifests stay valid JSON.
pub fn per_class(truth: &[usize], predicted: &[usize], labels: &[String]) -> Metrics {
    let classes = labels.len();
    let (mut tp, mut called, mut actual) = (vec![0f64; classes], vec![0f64; classes], vec![0f64; classes]);
    for (&t, &p) in truth.iter().zip(predicted) {
        actual[t] += 1.0;
        called[p] += 1.0;
        if t == p {
            tp[t] += 1.0;
        }
    }
    let mut metrics = Metrics::new();
    for (c, label) in labels.iter().enumerate() {
        if called[c] > 0.0 {
            metrics.insert(format!("precision_{label}"), tp[c] / called[c]);
        }
        if actual[c] > 0.0 {
            metrics.insert(format!("recall_{label}"), tp[c] / actual[c]);
        }
    }
    metrics
}

/// Regression metrics of `predicted` against `truth`.
pub fn regression(truth: &[f64], predicted: &[f64]) -> Metrics {
    let n = truth.len() as f64;
    let mean = truth.iter().sum::<f64>() / n;
    let ss_res: f64 = truth.iter().zip(predicted).map(|(t, p)| (t - p) * (t - p)).sum();
    let ss_tot: f64 = truth.iter().map(|t| (t - mean) * (t - mean)).sum();
    let mut metrics = Metrics::new();
    metrics.insert("n".into(), n);
    metrics.insert("spearman".into(), spearman(truth, predicted));
    metrics.insert("pearson".into(), pearson(truth, predicted));
    metrics.insert("r2".into(), 1.0 - ss_res / ss_tot);
    metrics.insert("rmse".into(), (ss_res / n).sqrt());
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_counts_pairs_and_ties() {
        assert_eq!(auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), 0.75);
        assert_eq!(auroc(&[0.5, 0.5], &[false, true]), 0.5);
        assert!(auroc(&[0.5], &[true]).is_nan());
    }

    #[test]
    fn binary_metrics_match_hand_counts() {
        // tp 2, fn 1, fp 1, tn 2
        let truth = [1, 1, 1, 0, 0, 0];
        let predicted = [1, 1, 0, 1, 0, 0];
        let m = classification(&truth, &predicted, &[], 2, Some(1));
        assert!((m["accuracy"] - 4.0 / 6.0).abs() < 1e-12);
        assert!((m["f1"] - 2.0 / 3.0).abs() < 1e-12);
        // (tp·tn − fp·fn) / √((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (4 − 1) / 9
        assert!((m["mcc"] - 1.0 / 3.0).abs() < 1e-12, "{m:?}");
        assert!(!m.contains_key("auroc"));
    }

    #[test]
    fn log_loss_is_the_mean_cross_entropy_of_the_true_class() {
        let probabilities = [0.2, 0.8, 0.6, 0.4, 1.0, 0.0];
        let m = classification(&[1, 0, 1], &[1, 0, 0], &probabilities, 2, Some(1));
        // the certain miss is floored at 1e-7
        let expected = -(0.8f64.ln() + 0.6f64.ln() + 1e-7f64.ln()) / 3.0;
        assert!((m["log_loss"] - expected).abs() < 1e-12, "{m:?}");
    }

    #[test]
    fn top_k_and_per_class_metrics_match_hand_counts() {
        // three rows over 6 classes: true class ranked 1st, 6th and 3rd
        let mut probabilities = vec![0.0; 18];
        probabilities[..6].copy_from_slice(&[0.5, 0.1, 0.1, 0.1, 0.1, 0.1]);
        probabilities[6..12].copy_from_slice(&[0.3, 0.2, 0.2, 0.1, 0.15, 0.05]);
        probabilities[12..].copy_from_slice(&[0.1, 0.4, 0.3, 0.2, 0.0, 0.0]);
        let truth = [0, 5, 3];
        assert!((top_k_accuracy(&truth, &probabilities, 6, 1) - 1.0 / 3.0).abs() < 1e-12);
        assert!((top_k_accuracy(&truth, &probabilities, 6, 5) - 2.0 / 3.0).abs() < 1e-12);
        let m = classification(&truth, &[0, 0, 1], &probabilities, 6, None);
        assert!((m["top5_accuracy"] - 2.0 / 3.0).abs() < 1e-12, "{m:?}");

        let labels: Vec<String> = ["C", "E", "H"].map(String::from).to_vec();
        let m = per_class(&[0, 0, 1, 2, 2], &[0, 1, 1, 2, 0], &labels);
        assert_eq!((m["precision_C"], m["recall_C"]), (0.5, 0.5));
        assert_eq!((m["precision_E"], m["recall_E"]), (0.5, 1.0));
        assert_eq!((m["precision_H"], m["recall_H"]), (1.0, 0.5));
    }

    #[test]
    fn macro_averages_skip_classes_that_do_not_occur() {
        // 4 classes, class 3 never true nor predicted (a fold absent from the test split)
        let truth = [0, 1, 2, 0];
        let predicted = [0, 1, 1, 0];
        let probabilities = [
            0.7, 0.1, 0.1, 0.1, //
            0.1, 0.7, 0.1, 0.1, //
            0.1, 0.5, 0.3, 0.1, //
            0.6, 0.2, 0.1, 0.1,
        ];
        let m = classification(&truth, &predicted, &probabilities, 4, None);
        // F1: class 0 = 1, class 1 = 2·1/(1+2) = 2/3, class 2 = 0 → mean over 3 classes
        assert!((m["f1"] - (1.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12, "{m:?}");
        // AUROC one-vs-rest: classes 0, 1, 2 separate perfectly by their own column
        assert_eq!(m["auroc"], 1.0, "{m:?}");
    }

    #[test]
    fn regression_metrics() {
        let truth = [1.0, 2.0, 3.0, 4.0];
        let m = regression(&truth, &truth);
        assert_eq!((m["r2"], m["rmse"], m["spearman"]), (1.0, 0.0, 1.0));
        let m = regression(&truth, &[1.0, 3.0, 2.0, 10.0]);
        assert!((m["spearman"] - 0.8).abs() < 1e-12);
        assert!((m["rmse"] - (38.0f64 / 4.0).sqrt()).abs() < 1e-12);
    }
}

/// The cut on `scores` (P(positive)) that maximises the MCC of calling rows with a score at or
/// above it positive, placed halfway between two neighbouring scores (ties of MCC go to the cut
/// nearest 0.5), and that MCC; `None` when one class is absent.
pub fn best_mcc_threshold(scores: &[f64], positive: &[bool]) -> Option<(f64, f64)> {
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut best: Option<(f64, f64)> = None;
    for (k, &i) in order.iter().enumerate() {
        if positive[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        // a cut between equal scores cannot separate them
        let next = order.get(k + 1).map(|&j| scores[j]);
        if next == Some(scores[i]) {
            continue;
        }
        let cut = next.map_or(scores[i] - 1e-6, |next| (scores[i] + next) / 2.0);
        let (fn_, tn) = (n_pos - tp, n_neg - fp);
        let denominator = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
        let mcc = if denominator == 0.0 {
            0.0
        } else {
            (tp * tn - fp * fn_) / denominator
        };
        let better = best.is_none_or(|(best_cut, best_mcc)| {
            mcc > best_mcc + 1e-12 || ((mcc - best_mcc).abs() <= 1e-12 && (cut - 0.5).abs() < (best_cut - 0.5).abs())
        });
        if better {
            best = Some((cut, mcc));
        }
    }
    best
}

#[cfg(test)]
mod threshold_tests {
    use super::*;

    #[test]
    fn the_mcc_threshold_separates_what_can_be_separated() {
        // positives score 0.2–0.3, negatives 0.05–0.1: argmax (0.5) calls everything negative
        let scores = [0.3, 0.25, 0.2, 0.1, 0.08, 0.05];
        let positive = [true, true, true, false, false, false];
        let (cut, mcc) = best_mcc_threshold(&scores, &positive).unwrap();
        assert!((cut - 0.15).abs() < 1e-12, "{cut}");
        assert!((mcc - 1.0).abs() < 1e-12);
        // one overlap: the best cut makes one mistake
        let positive = [true, true, false, true, false, false];
        let (cut, mcc) = best_mcc_threshold(&scores, &positive).unwrap();
        assert!(cut > 0.08 && cut < 0.25, "{cut}");
        assert!(mcc > 0.3 && mcc < 1.0, "{mcc}");
        assert_eq!(best_mcc_threshold(&scores, &[true; 6]), None);
    }
}
