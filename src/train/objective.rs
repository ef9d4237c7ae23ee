//! What training minimises — softmax cross-entropy or squared error of the output mapping — and
//! what early stopping maximises ([`ValidationScore`]).

use serde::{Deserialize, Serialize};

use crate::predictor::Kind;
use crate::predictor::metrics::Metrics;

/// What early stopping compares: the task's metric on the validation rows — AUROC (binary),
/// accuracy (multi-class), Spearman (regression) — and, between equal metrics (common on small
/// validation sets, where AUROC reaches 1), the lower validation loss (log loss, or RMSE).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValidationScore {
    /// The metric early stopping maximises (`f64::MIN` when undefined).
    pub metric: f64,
    /// The tie-breaking loss (`f64::MAX` when undefined).
    pub loss: f64,
}

impl ValidationScore {
    /// Worse than any measured score.
    pub const WORST: Self = Self {
        metric: f64::MIN,
        loss: f64::MAX,
    };

    /// The score of `kind` in `metrics`; undefined values count as the worst (and stay finite,
    /// so that checkpoints store them as JSON numbers).
    pub fn of(kind: Kind, metrics: &Metrics) -> Self {
        let (metric, loss) = match kind {
            Kind::Binary => ("auroc", "log_loss"),
            Kind::Multiclass | Kind::Residue => ("accuracy", "log_loss"),
            Kind::Regression => ("spearman", "rmse"),
        };
        let finite = |key: &str| metrics.get(key).copied().filter(|v| v.is_finite());
        Self {
            metric: finite(metric).unwrap_or(f64::MIN),
            loss: finite(loss).unwrap_or(f64::MAX),
        }
    }

    /// The metric for people: `undefined` where it could not be measured (a constant prediction
    /// has no Spearman correlation; one class alone has no AUROC).
    pub fn metric_text(&self) -> String {
        Self::text(self.metric, f64::MIN)
    }

    /// The loss for people, `undefined` where it could not be measured.
    pub fn loss_text(&self) -> String {
        Self::text(self.loss, f64::MAX)
    }

    fn text(value: f64, undefined: f64) -> String {
        if value == undefined {
            "undefined".to_owned()
        } else {
            format!("{value:.4}")
        }
    }

    /// Whether this score beats `other`: a higher metric, or the same metric and a lower loss.
    pub fn beats(&self, other: &Self) -> bool {
        self.metric > other.metric || (self.metric == other.metric && self.loss < other.loss)
    }
}

/// Mean loss and `∂loss/∂logits` of a batch: softmax cross-entropy against class indices, or the
/// squared error against standardised values.
pub(super) fn objective(kind: Kind, logits: &[f32], targets: &[f32], outputs: usize) -> (f64, Vec<f32>) {
    let n = targets.len() as f32;
    let mut grad = logits.to_vec();
    let mut loss = 0.0;
    for (row, &target) in grad.chunks_exact_mut(outputs).zip(targets) {
        if kind == Kind::Regression {
            let error = row[0] - target;
            loss += f64::from(error * error);
            row[0] = 2.0 * error / n;
        } else {
            crate::predictor::softmax(row);
            let class = target as usize;
            loss -= f64::from(row[class].max(1e-12).ln());
            row[class] -= 1.0;
            row.iter_mut().for_each(|g| *g /= n);
        }
    }
    (loss / f64::from(n), grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_ties_are_broken_by_the_lower_loss() {
        let score = |metric, loss| ValidationScore { metric, loss };
        assert!(score(0.9, 0.5).beats(&score(0.8, 0.1)));
        assert!(score(1.0, 0.2).beats(&score(1.0, 0.3)));
        assert!(!score(1.0, 0.3).beats(&score(1.0, 0.3)));
        assert!(score(0.0, 9.0).beats(&ValidationScore::WORST));
        let undefined = ValidationScore::of(Kind::Binary, &Metrics::new());
        assert_eq!(undefined, ValidationScore::WORST);
        // undefined values stay finite: checkpoints store them as JSON numbers
        let json = serde_json::to_string(&undefined).unwrap();
        assert_eq!(serde_json::from_str::<ValidationScore>(&json).unwrap(), undefined);
        // …and read as words, not as ±1.8e308
        assert_eq!(
            (undefined.metric_text(), undefined.loss_text()),
            ("undefined".into(), "undefined".into())
        );
        assert_eq!(
            (score(0.5, 0.25).metric_text(), score(0.5, 0.25).loss_text()),
            ("0.5000".into(), "0.2500".into())
        );
    }
}
