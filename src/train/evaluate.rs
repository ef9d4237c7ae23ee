//! A predictor's metrics on labelled rows (`r2dl eval`, and validation during training).

use super::data::LabelledRows;
use super::error::Result;
use crate::model::{InvalidResidue, ReprogrammedModel};
use crate::predictor::metrics::{self, Metrics};
use crate::predictor::{Kind, Predictor, UNLABELLED, sov};

/// Accuracy, MCC, AUROC, F1 (classification; per-residue tasks over every labelled residue,
/// with each class's precision and recall) or Spearman, Pearson, R², RMSE (regression) of
/// `predictor` on `rows`, run by `model` (the base model; the predictor's Θ is applied here).
pub fn evaluate(predictor: &Predictor, model: &ReprogrammedModel, rows: &LabelledRows) -> Result<Metrics> {
    predictor.check_base_model(model)?;
    let manifest = &predictor.manifest;
    let reprogrammed = model.with_theta(&predictor.theta)?;
    if manifest.kind == Kind::Residue {
        return evaluate_residues(predictor, &reprogrammed, rows);
    }
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

/// Per-residue metrics over every labelled residue of `rows`: accuracy (Q3 for three classes),
/// MCC, macro F1 and AUROC, log loss, each class's precision and recall, the segment overlap
/// score SOV99 (0–1, averaged over sequences; see [`sov`]) and how many residues and sequences
/// were scored.
fn evaluate_residues(predictor: &Predictor, model: &ReprogrammedModel, rows: &LabelledRows) -> Result<Metrics> {
    let labels = &predictor.manifest.labels;
    let classes = labels.len();
    let outputs = predictor.predict_residues(
        model,
        rows.sequences.iter().map(|s| Some(s.as_str())),
        InvalidResidue::Error,
    )?;
    let (mut truth, mut predicted, mut probabilities) = (Vec::new(), Vec::new(), Vec::new());
    // SOV99 per sequence over class indices (u8::MAX = unlabelled), averaged over sequences
    let (mut sov_sum, mut sov_sequences) = (0.0, 0usize);
    let (mut observed_classes, mut predicted_classes) = (Vec::new(), Vec::new());
    for (i, (label, row)) in rows.labels.iter().zip(&outputs.rows).enumerate() {
        let row = row.as_deref().unwrap_or_default();
        let residues = row.len() / classes;
        if label.chars().count() != residues {
            return Err(rows.record_error(
                i,
                format!(
                    "has a label of {} characters for a sequence of {residues} residues",
                    label.chars().count()
                ),
            ));
        }
        observed_classes.clear();
        predicted_classes.clear();
        for (c, p) in label.chars().zip(row.chunks_exact(classes)) {
            let best = (0..classes).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
            predicted_classes.push(u8::try_from(best).unwrap_or(u8::MAX));
            if c == UNLABELLED {
                observed_classes.push(u8::MAX);
                continue;
            }
            let class = labels
                .iter()
                .position(|l| l.starts_with(c) && l.len() == c.len_utf8())
                .ok_or_else(|| {
                    rows.record_error(
                        i,
                        format!("residue label '{c}' is not one of the predictor's labels {labels:?}"),
                    )
                })?;
            observed_classes.push(u8::try_from(class).unwrap_or(u8::MAX));
            truth.push(class);
            predicted.push(best);
            probabilities.extend(p.iter().map(|&v| f64::from(v)));
        }
        if let Some(score) = sov::sov99(&observed_classes, &predicted_classes, u8::MAX) {
            sov_sum += score;
            sov_sequences += 1;
        }
    }
    let mut out = metrics::classification(&truth, &predicted, &probabilities, classes, None);
    out.extend(metrics::per_class(&truth, &predicted, labels));
    // class indices past u8 would alias the unlabelled code; residue predictors have a handful
    if classes < usize::from(u8::MAX) && sov_sequences > 0 {
        out.insert("sov".into(), sov_sum / sov_sequences as f64);
    }
    out.insert("residues".into(), truth.len() as f64);
    out.insert("sequences".into(), rows.len() as f64);
    Ok(out)
}
