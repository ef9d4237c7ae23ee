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
    let all: Vec<usize> = (0..rows.len()).collect();
    Ok(evaluate_subsets(predictor, model, rows, &[&all])?
        .pop()
        .unwrap_or_default())
}

/// The metrics of [`evaluate`] on each of `subsets` (row indices of `rows`), from one pass of
/// the model over all rows.
pub fn evaluate_subsets(
    predictor: &Predictor,
    model: &ReprogrammedModel,
    rows: &LabelledRows,
    subsets: &[&[usize]],
) -> Result<Vec<Metrics>> {
    predictor.check_base_model(model)?;
    let manifest = &predictor.manifest;
    let sequences: Vec<Option<&str>> = rows.sequences.iter().map(|s| Some(s.as_str())).collect();
    if manifest.kind == Kind::Residue {
        let scored = score_residues(predictor, model, rows)?;
        return Ok(subsets
            .iter()
            .map(|subset| residue_metrics(&scored, subset, &manifest.labels))
            .collect());
    }
    let predictions = predictor.predict_averaged(model, &sequences, InvalidResidue::Error)?;
    if manifest.kind == Kind::Regression {
        let mut truth = Vec::with_capacity(rows.len());
        for (i, label) in rows.labels.iter().enumerate() {
            match label.parse::<f64>() {
                Ok(v) if v.is_finite() => truth.push(v),
                _ => return Err(rows.record_error(i, format!("label '{label}' is not a number"))),
            }
        }
        let predicted: Vec<f64> = predictions.values.iter().map(|&v| f64::from(v)).collect();
        let pick = |values: &[f64], subset: &[usize]| subset.iter().map(|&i| values[i]).collect::<Vec<_>>();
        return Ok(subsets
            .iter()
            .map(|subset| metrics::regression(&pick(&truth, subset), &pick(&predicted, subset)))
            .collect());
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
    let outputs: Vec<&[f32]> = predictions.values.chunks_exact(classes).collect();
    let positive = manifest.positive_index();
    let score = |subset: &[usize]| {
        let truth: Vec<usize> = subset.iter().map(|&i| truth[i]).collect();
        let predicted: Vec<usize> = subset.iter().map(|&i| argmax(outputs[i])).collect();
        let probabilities: Vec<f64> = subset
            .iter()
            .flat_map(|&i| outputs[i].iter().map(|&v| f64::from(v)))
            .collect();
        let mut scores = metrics::classification(&truth, &predicted, &probabilities, classes, positive);
        // binary predictors call a row positive at the stored threshold: measure that too
        if let (Some(threshold), Some(positive), 2) = (manifest.decision_threshold, positive, classes) {
            let called: Vec<usize> = subset
                .iter()
                .map(|&i| {
                    if f64::from(outputs[i][positive]) >= threshold {
                        positive
                    } else {
                        1 - positive
                    }
                })
                .collect();
            let at = metrics::classification(&truth, &called, &probabilities, classes, Some(positive));
            for key in ["accuracy", "mcc", "f1"] {
                if let Some(&value) = at.get(key) {
                    scores.insert(format!("{key}_at_threshold"), value);
                }
            }
        }
        scores
    };
    Ok(subsets.iter().map(|subset| score(subset)).collect())
}

/// The MCC-maximising decision threshold of a binary `predictor` on `rows` (see
/// [`metrics::best_mcc_threshold`]); `None` for other kinds or when `rows` hold one class.
pub fn decision_threshold(
    predictor: &Predictor,
    model: &ReprogrammedModel,
    rows: &LabelledRows,
) -> Result<Option<f64>> {
    let manifest = &predictor.manifest;
    let (Kind::Binary, Some(positive)) = (manifest.kind, manifest.positive_index()) else {
        return Ok(None);
    };
    let sequences: Vec<Option<&str>> = rows.sequences.iter().map(|s| Some(s.as_str())).collect();
    let predictions = predictor.predict_averaged(model, &sequences, InvalidResidue::Error)?;
    let scores: Vec<f64> = predictions
        .values
        .chunks_exact(manifest.labels.len())
        .map(|p| f64::from(p[positive]))
        .collect();
    let is_positive: Vec<bool> = rows
        .labels
        .iter()
        .map(|l| Some(l) == manifest.positive_label.as_ref())
        .collect();
    Ok(metrics::best_mcc_threshold(&scores, &is_positive).map(|(cut, _)| cut))
}

/// The index of the largest value (0 when empty).
fn argmax(values: &[f32]) -> usize {
    (0..values.len())
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap_or(0)
}

/// One sequence of a per-residue task, scored: its labelled residues' classes, predicted
/// classes and probabilities, and its SOV99 (when defined).
struct ScoredSequence {
    truth: Vec<usize>,
    predicted: Vec<usize>,
    probabilities: Vec<f64>,
    sov: Option<f64>,
}

/// Every sequence of a per-residue task scored from one pass of the base model `model` (per
/// member of an ensemble); a label string that does not fit its sequence, or uses another class,
/// is an error naming the record.
fn score_residues(
    predictor: &Predictor,
    model: &ReprogrammedModel,
    rows: &LabelledRows,
) -> Result<Vec<ScoredSequence>> {
    let labels = &predictor.manifest.labels;
    let classes = labels.len();
    let sequences: Vec<Option<&str>> = rows.sequences.iter().map(|s| Some(s.as_str())).collect();
    let outputs = predictor.predict_residues_averaged(model, &sequences, InvalidResidue::Error)?;
    let mut scored = Vec::with_capacity(rows.len());
    // SOV99 per sequence over class indices (u8::MAX = unlabelled)
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
        let mut sequence = ScoredSequence {
            truth: Vec::new(),
            predicted: Vec::new(),
            probabilities: Vec::new(),
            sov: None,
        };
        observed_classes.clear();
        predicted_classes.clear();
        for (c, p) in label.chars().zip(row.chunks_exact(classes)) {
            let best = argmax(p);
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
            sequence.truth.push(class);
            sequence.predicted.push(best);
            sequence.probabilities.extend(p.iter().map(|&v| f64::from(v)));
        }
        // class indices past u8 would alias the unlabelled code; residue predictors have a handful
        if classes < usize::from(u8::MAX) {
            sequence.sov = sov::sov99(&observed_classes, &predicted_classes, u8::MAX);
        }
        scored.push(sequence);
    }
    Ok(scored)
}

/// Per-residue metrics over every labelled residue of the sequences `subset`: accuracy (Q3 for
/// three classes), MCC, macro F1 and AUROC, log loss, each class's precision and recall, the
/// segment overlap score SOV99 (0–1, averaged over sequences; see [`sov`]) and how many residues
/// and sequences were scored.
fn residue_metrics(scored: &[ScoredSequence], subset: &[usize], labels: &[String]) -> Metrics {
    let picked = || subset.iter().map(|&i| &scored[i]);
    let truth: Vec<usize> = picked().flat_map(|s| s.truth.iter().copied()).collect();
    let predicted: Vec<usize> = picked().flat_map(|s| s.predicted.iter().copied()).collect();
    let probabilities: Vec<f64> = picked().flat_map(|s| s.probabilities.iter().copied()).collect();
    let sovs: Vec<f64> = picked().filter_map(|s| s.sov).collect();
    let mut out = metrics::classification(&truth, &predicted, &probabilities, labels.len(), None);
    out.extend(metrics::per_class(&truth, &predicted, labels));
    if !sovs.is_empty() {
        out.insert("sov".into(), sovs.iter().sum::<f64>() / sovs.len() as f64);
    }
    out.insert("residues".into(), truth.len() as f64);
    out.insert("sequences".into(), subset.len() as f64);
    out
}
