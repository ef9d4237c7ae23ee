//! A predictor's metrics on labelled rows (`r2dl eval`, and validation during training).

use super::data::LabelledRows;
use super::error::Result;
use crate::model::{InvalidResidue, ReprogrammedModel};
use crate::predictor::metrics::{self, Metrics};
use crate::predictor::{Kind, Predictor};

/// Accuracy, MCC, AUROC, F1 (classification) or Spearman, Pearson, R², RMSE (regression) of
/// `predictor` on `rows`, run by `model` (the base model; the predictor's Θ is applied here).
pub fn evaluate(predictor: &Predictor, model: &ReprogrammedModel, rows: &LabelledRows) -> Result<Metrics> {
    predictor.check_base_model(model)?;
    let manifest = &predictor.manifest;
    let reprogrammed = model.with_theta(&predictor.theta)?;
    let predictions = predictor.predict(
        &reprogrammed,
        rows.sequences.iter().map(|s| Some(s.as_str())),
        InvalidResidue::Error,
    )?;
    if manifest.kind == Kind::Regression {
        let mut truth = Vec::with_capacity(rows.len());
        for (i, label) in rows.labels.iter().enumerate() {
            match label.parse::<f64>() {
                Ok(v) if v.is_finite() => truth.push(v),
                _ => return Err(rows.record_error(i, format!("label '{label}' is not a number"))),
            }
        }
        let predicted: Vec<f64> = predictions.values.iter().map(|&v| f64::from(v)).collect();
        return Ok(metrics::regression(&truth, &predicted));
    }
    let classes = manifest.labels.len();
    let mut truth = Vec::with_capacity(rows.len());
    for (i, label) in rows.labels.iter().enumerate() {
        let class = manifest.labels.iter().position(|l| l == label).ok_or_else(|| {
            rows.record_error(
                i,
                format!(
                    "label '{label}' is not one of the predictor's labels {:?}",
                    manifest.labels
                ),
            )
        })?;
        truth.push(class);
    }
    let predicted: Vec<usize> = predictions
        .values
        .chunks_exact(classes)
        .map(|p| (0..classes).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0))
        .collect();
    let probabilities: Vec<f64> = predictions.values.iter().map(|&v| f64::from(v)).collect();
    Ok(metrics::classification(
        &truth,
        &predicted,
        &probabilities,
        classes,
        manifest.positive_index(),
    ))
}
