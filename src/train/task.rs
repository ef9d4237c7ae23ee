//! The task as training sees it: the kind, its classes or the regression's scale, and the rows
//! as examples (residue tokens with a target, or a class per residue).

use super::data::{LabelledRows, positive_label};
use super::error::{Result, TrainError};
use super::residue;
use crate::model::{InvalidResidue, tokenize_residues};
use crate::predictor::{Kind, UNLABELLED};

/// A training example: residue tokens and its target.
pub(super) struct Example {
    pub(super) tokens: Vec<u8>,
    pub(super) target: f32,
    /// Per-residue tasks: each residue's class, [`residue::NO_CLASS`] where it has no label.
    pub(super) classes: Vec<u8>,
}

/// The task as training needs it.
pub(super) struct Task {
    pub(super) kind: Kind,
    pub(super) labels: Vec<String>,
    pub(super) positive: Option<String>,
    pub(super) mean: f64,
    pub(super) std: f64,
}

impl Task {
    /// Per-residue tasks: the classes of row `i`'s residues (`tokens` of them), from its label
    /// string.
    fn residue_classes(&self, rows: &LabelledRows, i: usize, tokens: usize) -> Result<Vec<u8>> {
        let label = &rows.labels[i];
        let length = label.chars().count();
        if length != tokens {
            return Err(rows.record_error(
                i,
                format!("has a label of {length} characters for a sequence of {tokens} residues; a per-residue label has one character per residue"),
            ));
        }
        label
            .chars()
            .map(|c| {
                if c == UNLABELLED {
                    return Ok(residue::NO_CLASS);
                }
                let class = self
                    .labels
                    .iter()
                    .position(|l| l.starts_with(c) && l.len() == c.len_utf8());
                class.map(|k| k as u8).ok_or_else(|| {
                    rows.record_error(
                        i,
                        format!(
                            "residue label '{c}' is not one of the training labels {:?}",
                            self.labels
                        ),
                    )
                })
            })
            .collect()
    }

    /// Outputs of the output mapping: one per class, or one value.
    pub(super) fn outputs(&self) -> usize {
        if self.kind == Kind::Regression {
            1
        } else {
            self.labels.len()
        }
    }

    /// The training target of row `i` of `rows`: a class index, or the standardised value.
    fn target(&self, rows: &LabelledRows, i: usize) -> Result<f32> {
        let label = &rows.labels[i];
        if self.kind == Kind::Regression {
            let value: f64 = label
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| rows.record_error(i, format!("label '{label}' is not a number")))?;
            Ok(((value - self.mean) / self.std) as f32)
        } else {
            let class = self.labels.iter().position(|l| l == label).ok_or_else(|| {
                rows.record_error(
                    i,
                    format!("label '{label}' is not one of the training labels {:?}", self.labels),
                )
            })?;
            Ok(class as f32)
        }
    }
}

/// The task of `kind` from the training rows' labels.
pub(super) fn task_of(kind: Kind, rows: &LabelledRows, positive: Option<&str>) -> Result<Task> {
    let mut labels: Vec<String> = rows.labels.clone();
    labels.sort();
    labels.dedup();
    let data_error = |message: String| TrainError::Data {
        source_name: rows.source.clone(),
        message,
    };
    let classes = |labels: Vec<String>, positive: Option<String>| Task {
        kind,
        labels,
        positive,
        mean: 0.0,
        std: 1.0,
    };
    match kind {
        Kind::Regression => regression_task(rows),
        Kind::Binary => {
            let [a, b] = <[String; 2]>::try_from(labels.clone()).map_err(|_| {
                data_error(format!(
                    "a binary task needs exactly 2 labels, the training rows have {}: {labels:?}",
                    labels.len()
                ))
            })?;
            let pair = [a, b];
            let positive = match positive {
                Some(p) if pair.iter().any(|l| l == p) => p.to_string(),
                Some(p) => return Err(data_error(format!("positive label '{p}' is not among {pair:?}"))),
                None => positive_label(&pair),
            };
            Ok(classes(pair.to_vec(), Some(positive)))
        }
        Kind::Residue => Ok(classes(residue_classes(rows).map_err(data_error)?, None)),
        Kind::Multiclass if labels.len() < 2 => Err(data_error(format!(
            "classification needs at least 2 labels, the training rows have {labels:?}"
        ))),
        Kind::Multiclass => Ok(classes(labels, None)),
    }
}

/// A regression: the labels' mean and standard deviation standardise the targets.
fn regression_task(rows: &LabelledRows) -> Result<Task> {
    let mut values = Vec::with_capacity(rows.len());
    for (i, label) in rows.labels.iter().enumerate() {
        match label.parse::<f64>() {
            Ok(v) if v.is_finite() => values.push(v),
            _ => return Err(rows.record_error(i, format!("label '{label}' is not a number"))),
        }
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / values.len() as f64;
    Ok(Task {
        kind: Kind::Regression,
        labels: Vec::new(),
        positive: None,
        mean,
        std: variance.sqrt().max(1e-12),
    })
}

/// The residue classes of per-residue labels (every character but [`UNLABELLED`]), sorted.
fn residue_classes(rows: &LabelledRows) -> std::result::Result<Vec<String>, String> {
    let mut classes: Vec<String> = rows
        .labels
        .iter()
        .flat_map(|l| l.chars())
        .filter(|&c| c != UNLABELLED)
        .map(String::from)
        .collect();
    classes.sort();
    classes.dedup();
    if classes.len() < 2 {
        return Err(format!(
            "a per-residue task needs at least 2 residue classes, the training rows have {classes:?}"
        ));
    }
    if classes.len() > usize::from(residue::NO_CLASS) {
        return Err(format!(
            "a per-residue task has at most {} classes, the training rows have {}",
            residue::NO_CLASS,
            classes.len()
        ));
    }
    Ok(classes)
}

/// The rows as residue tokens and targets (0 without a task); a bad residue is an error naming
/// the record.
pub(super) fn examples(rows: &LabelledRows, task: Option<&Task>) -> Result<Vec<Example>> {
    let mut out = Vec::with_capacity(rows.len());
    for (i, sequence) in rows.sequences.iter().enumerate() {
        let mut tokens = Vec::new();
        match tokenize_residues(sequence, InvalidResidue::Error, &mut tokens) {
            Ok(true) => {}
            Ok(false) => return Err(rows.record_error(i, "has an empty sequence".into())),
            Err(bad) => {
                return Err(rows.record_error(
                    i,
                    format!(
                        "invalid residue {:?} at position {} of the sequence",
                        bad.character,
                        bad.position + 1
                    ),
                ));
            }
        }
        let (target, classes) = match task {
            Some(task) if task.kind == Kind::Residue => (0.0, task.residue_classes(rows, i, tokens.len())?),
            Some(task) => (task.target(rows, i)?, Vec::new()),
            None => (0.0, Vec::new()),
        };
        out.push(Example {
            tokens,
            target,
            classes,
        });
    }
    Ok(out)
}
