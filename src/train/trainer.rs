//! The R2DL training loop: Adam on V_T (the protein-token embeddings) and the output mapping,
//! cross-entropy or MSE through the frozen encoder ([`crate::model::Tape`]); every
//! `recode_every` steps and at each epoch's end V_T is re-coded over the English embeddings V_S
//! by OMP with `k` non-zeros per row (Θ), and V_T becomes `Θ · V_S`. Early stopping on the
//! validation score of the re-coded (sparse) model; a checkpoint after every epoch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::adam::Adam;
use super::data::{LabelledRows, positive_label, stratified_split};
use super::error::{Result, TrainError};
use super::evaluate::evaluate;
use super::residue;
use super::rng::Rng;
use crate::model::{Dictionary, InvalidResidue, NUM_RESIDUES, ReprogrammedModel, Theta, tokenize_residues};
use crate::predictor::metrics::Metrics;
use crate::predictor::{
    BaseModel, Head, HyperParameters, Kind, MANIFEST_FORMAT, Manifest, Predictor, Sparsity, TrainingData, TrainingLog,
    UNLABELLED, write_atomically,
};

/// What to train.
#[derive(Debug, Clone)]
pub struct TrainSpec {
    /// The predictor's name (`predict_<name>`).
    pub name: String,
    /// The task, or `None` to infer it from the labels.
    pub kind: Option<Kind>,
    /// The positive class of a binary task, or `None` to infer it.
    pub positive: Option<String>,
    /// Train on a stratified, seeded subsample of this many rows.
    pub limit: Option<usize>,
    /// Training settings.
    pub hyper: HyperParameters,
    /// The output folder (also holds the checkpoint).
    pub out: PathBuf,
    /// Continue from the checkpoint in `out`.
    pub resume: bool,
}

/// The labelled data: training rows and optional validation and test rows.
#[derive(Debug, Clone)]
pub struct Datasets {
    /// Training rows.
    pub train: LabelledRows,
    /// Validation rows; `None` holds out a seeded stratified share of `train`.
    pub valid: Option<LabelledRows>,
    /// Test rows, evaluated once at the end.
    pub test: Option<LabelledRows>,
}

/// What training reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Training starts (or resumes at `first_epoch`, 1-based).
    Start {
        /// Most epochs.
        epochs: usize,
        /// Steps per epoch.
        steps_per_epoch: usize,
        /// The first epoch to run.
        first_epoch: usize,
    },
    /// One optimiser step finished.
    Step {
        /// 1-based epoch.
        epoch: usize,
        /// Mean training loss of the epoch so far.
        loss: f64,
    },
    /// An epoch finished and was validated.
    Epoch {
        /// 1-based epoch.
        epoch: usize,
        /// Its validation score.
        score: ValidationScore,
        /// The best score so far.
        best: ValidationScore,
        /// Seconds it took.
        seconds: f64,
    },
}

/// A training example: residue tokens and its target.
struct Example {
    tokens: Vec<u8>,
    target: f32,
    /// Per-residue tasks: each residue's class, [`residue::NO_CLASS`] where it has no label.
    classes: Vec<u8>,
}

/// The task as training needs it.
struct Task {
    kind: Kind,
    labels: Vec<String>,
    positive: Option<String>,
    mean: f64,
    std: f64,
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

    fn outputs(&self) -> usize {
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

    /// Whether this score beats `other`: a higher metric, or the same metric and a lower loss.
    pub fn beats(&self, other: &Self) -> bool {
        self.metric > other.metric || (self.metric == other.metric && self.loss < other.loss)
    }
}

/// The trainable state: V_T, the output mapping and their optimiser states.
struct State {
    v_t: Vec<f32>,
    head: Head,
    adam_v_t: Adam,
    /// One per parameter vector of the head, in [`Head::parameters`] order.
    adam_head: Vec<Adam>,
}

/// Progress kept across epochs, saved with the checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointInfo {
    /// Epochs finished.
    epochs_done: usize,
    steps: usize,
    best_epoch: usize,
    best_score: ValidationScore,
    bad_epochs: usize,
    seconds: f64,
    /// Fingerprint of the training rows and settings: a checkpoint resumes only the same run.
    run: String,
}

const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
const CHECKPOINT_INFO: &str = "checkpoint.json";
const CHECKPOINT_BEST: &str = "checkpoint-best";

/// Trains a predictor on `data` with the frozen `model` (on the CPU), reporting to `report`;
/// stops early, with a resumable checkpoint, when `stop` becomes true.
pub fn train(
    model: &ReprogrammedModel,
    data: &Datasets,
    spec: &TrainSpec,
    report: &mut dyn FnMut(Progress),
    stop: &AtomicBool,
) -> Result<Predictor> {
    let hyper = &spec.hyper;
    if hyper.batch_size == 0 || hyper.epochs == 0 || hyper.k == 0 || hyper.recode_every == 0 {
        return Err(TrainError::Settings(
            "epochs, batch size, k and recode-every must be positive".into(),
        ));
    }
    let (encoder, base_table) = model
        .packed()
        .ok_or_else(|| TrainError::Settings("training runs on the CPU (the packed encoder); drop --device".into()))?;
    let d = model.dim();
    let table_rows = base_table.len() / d;

    // the rows: subsample, validation split, task
    let all = &data.train;
    if all.is_empty() {
        return Err(TrainError::Data {
            source_name: all.source.clone(),
            message: "has no rows".into(),
        });
    }
    let kind = spec.kind.unwrap_or_else(|| super::data::infer_kind_of(all));
    let stratify = !matches!(kind, Kind::Regression | Kind::Residue);
    let mut rng = Rng::new(hyper.seed, 0);
    let pool = match spec.limit {
        Some(n) if n < all.len() => all.select(&stratified_split(&all.labels, n, stratify, &mut rng).0),
        _ => all.clone(),
    };
    let (train_rows, valid_rows, valid_source) = match &data.valid {
        Some(valid) => (pool.clone(), valid.clone(), valid.source.clone()),
        None => {
            if pool.len() < 2 {
                return Err(TrainError::Settings(
                    "need at least 2 rows to hold one out for validation".into(),
                ));
            }
            let n_valid = ((pool.len() as f64 * hyper.valid_fraction).round() as usize).clamp(1, pool.len() - 1);
            let (valid, train) = stratified_split(&pool.labels, n_valid, stratify, &mut Rng::new(hyper.seed, 1));
            (
                pool.select(&train),
                pool.select(&valid),
                format!("{} of {}", valid.len(), all.source),
            )
        }
    };
    for rows in [Some(all), data.valid.as_ref(), data.test.as_ref()]
        .into_iter()
        .flatten()
    {
        examples(rows, None)?;
    }
    let task = task_of(kind, &train_rows, spec.positive.as_deref())?;
    let train_set = examples(&train_rows, Some(&task))?;
    if kind == Kind::Residue {
        // every label string fits its sequence and uses the training classes, before any epoch
        for rows in [Some(&valid_rows), data.test.as_ref()].into_iter().flatten() {
            examples(rows, Some(&task))?;
        }
    }

    // the manifest, completed as training goes
    let vocab_size = model.encoder().config().vocab_size;
    let mut manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        name: spec.name.clone(),
        kind,
        labels: task.labels.clone(),
        positive_label: task.positive.clone(),
        label_mean: (kind == Kind::Regression).then_some(task.mean),
        label_std: (kind == Kind::Regression).then_some(task.std),
        base_model: BaseModel {
            name: model
                .dir()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            weights_sha256: model.weights_sha256().into(),
            hidden_size: d,
            vocab_size,
        },
        sparsity: Sparsity {
            method: "omp".into(),
            k: hyper.k,
            recode_every: hyper.recode_every,
            nonzeros: 0,
        },
        hyper_parameters: hyper.clone(),
        training_data: TrainingData {
            source: all.source.clone(),
            sha256: all.fingerprint(),
            rows: all.len(),
            limit: spec.limit,
            train_rows: train_rows.len(),
            valid_rows: valid_rows.len(),
            valid_source,
            test_source: data.test.as_ref().map(|t| t.source.clone()),
        },
        training: TrainingLog {
            epochs_run: 0,
            best_epoch: 0,
            steps: 0,
            seconds: 0.0,
        },
        metrics: BTreeMap::new(),
        created_by: format!("r2dl {}", env!("CARGO_PKG_VERSION")),
    };
    // what a resumed run must share with the checkpoint's: all but the epoch budget and the
    // patience, which may grow on resuming
    let fixed = HyperParameters {
        epochs: 0,
        patience: 0,
        ..hyper.clone()
    };
    let run = format!(
        "{}|{}|{:?}|{}",
        manifest.training_data.sha256,
        serde_json::to_string(&fixed).unwrap_or_default(),
        spec.limit,
        train_rows.fingerprint()
    );

    let v_s: Vec<f32> = model
        .encoder()
        .word_embeddings()
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .map_err(crate::model::ModelError::from)?;
    let dictionary = Dictionary::new(v_s, d);
    let one_hot = Theta::one_hot(model.english_tokens());
    let mut init_rng = Rng::new(hyper.seed, 2);
    let head = Head::with_hidden(task.outputs(), d, hyper.head_hidden, || init_rng.unit() as f32);
    let mut state = State {
        v_t: dictionary.reconstruct(&one_hot),
        adam_v_t: Adam::new(NUM_RESIDUES * d),
        adam_head: head.parameters().iter().map(|(_, p, _)| Adam::new(p.len())).collect(),
        head,
    };
    let mut info = CheckpointInfo {
        epochs_done: 0,
        steps: 0,
        best_epoch: 0,
        best_score: ValidationScore::WORST,
        bad_epochs: 0,
        seconds: 0.0,
        run,
    };
    let mut best = Predictor {
        manifest: manifest.clone(),
        theta: one_hot,
        head: state.head.clone(),
    };
    if spec.resume {
        (state, info, best.theta, best.head) = load_checkpoint(&spec.out, &info.run, &state)?;
    }

    // a training input never exceeds the model's positions, whatever --max-length says
    let max_length = hyper.max_length.clamp(1, model.max_residues());
    let steps_per_epoch = train_set.len().div_ceil(hyper.batch_size);
    // which head parameters get weight decay (the weights, not the biases)
    let decays: Vec<bool> = state.head.parameters().iter().map(|&(_, _, decays)| decays).collect();
    report(Progress::Start {
        epochs: hyper.epochs,
        steps_per_epoch,
        first_epoch: info.epochs_done + 1,
    });
    while info.epochs_done < hyper.epochs && info.bad_epochs < hyper.patience.max(1) {
        let epoch = info.epochs_done + 1;
        let started = Instant::now();
        let mut epoch_rng = Rng::new(hyper.seed, 1000 + epoch as u64);
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        epoch_rng.shuffle(&mut order);
        let mut loss_sum = 0.0;
        for (step, batch) in order.chunks(hyper.batch_size).enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Err(TrainError::Interrupted {
                    dir: spec.out.clone(),
                    epochs_done: info.epochs_done,
                });
            }
            let crops: Vec<(usize, usize)> = batch
                .iter()
                .map(|&i| crop(train_set[i].tokens.len(), max_length, &mut epoch_rng))
                .collect();
            let unlabelled = |(&i, &(start, len)): (&usize, &(usize, usize))| {
                train_set[i].classes[start..start + len]
                    .iter()
                    .all(|&c| c == residue::NO_CLASS)
            };
            if kind == Kind::Residue && batch.iter().zip(&crops).all(unlabelled) {
                // nothing to learn from: no residue of these windows has a label
                continue;
            }
            let inputs: Vec<Vec<u32>> = batch
                .iter()
                .zip(&crops)
                .map(|(&i, &(start, len))| input_ids(&train_set[i].tokens[start..start + len]))
                .collect();
            let mut table = state.v_t.clone();
            table.extend_from_slice(&base_table[NUM_RESIDUES * d..]);
            let tape = encoder.record(&table, &inputs);
            let (loss, grads, d_table) = if kind == Kind::Residue {
                // the output mapping reads each labelled residue's last hidden state
                let classes: Vec<&[u8]> = batch
                    .iter()
                    .zip(&crops)
                    .map(|(&i, &(start, len))| &train_set[i].classes[start..start + len])
                    .collect();
                let labelled = residue::LabelledStates::gather(tape.hidden(), tape.lengths(), &classes, d);
                let logits = state.head.forward(&labelled.states);
                let (loss, d_logits) = objective(Kind::Multiclass, &logits, &labelled.targets, state.head.outputs());
                let grads = state.head.backward(&labelled.states, &d_logits);
                let d_hidden = labelled.scatter(&grads.pooled, tape.hidden().len());
                let d_table = tape.backward_hidden(d_hidden, table_rows);
                (loss, grads, d_table)
            } else {
                let targets: Vec<f32> = batch.iter().map(|&i| train_set[i].target).collect();
                let logits = state.head.forward(tape.pooled());
                let (loss, d_logits) = objective(kind, &logits, &targets, state.head.outputs());
                let grads = state.head.backward(tape.pooled(), &d_logits);
                let d_table = tape.backward(&grads.pooled, table_rows);
                (loss, grads, d_table)
            };
            state
                .adam_v_t
                .step(&mut state.v_t, &d_table[..NUM_RESIDUES * d], hyper.lr_theta, 0.0);
            for (((params, grad), adam), decays) in state
                .head
                .parameters_mut()
                .into_iter()
                .zip(&grads.parameters)
                .zip(&mut state.adam_head)
                .zip(&decays)
            {
                let weight_decay = if *decays { hyper.weight_decay } else { 0.0 };
                adam.step(params, grad, hyper.lr_head, weight_decay);
            }
            info.steps += 1;
            if info.steps.is_multiple_of(hyper.recode_every) {
                state.v_t = dictionary.reconstruct(&recode(&dictionary, &state.v_t, hyper.k, vocab_size)?);
            }
            loss_sum += loss;
            report(Progress::Step {
                epoch,
                loss: loss_sum / (step + 1) as f64,
            });
        }
        let theta = recode(&dictionary, &state.v_t, hyper.k, vocab_size)?;
        state.v_t = dictionary.reconstruct(&theta);
        let candidate = Predictor {
            manifest: manifest.clone(),
            theta,
            head: state.head.clone(),
        };
        let score = ValidationScore::of(kind, &evaluate(&candidate, model, &valid_rows)?);
        if score.beats(&info.best_score) {
            (info.best_score, info.best_epoch, info.bad_epochs) = (score, epoch, 0);
            best.theta = candidate.theta;
            best.head = candidate.head;
        } else {
            info.bad_epochs += 1;
        }
        let seconds = started.elapsed().as_secs_f64();
        info.seconds += seconds;
        info.epochs_done = epoch;
        save_checkpoint(&spec.out, &state, &info, &best)?;
        report(Progress::Epoch {
            epoch,
            score,
            best: info.best_score,
            seconds,
        });
    }

    manifest.training = TrainingLog {
        epochs_run: info.epochs_done,
        best_epoch: info.best_epoch,
        steps: info.steps,
        seconds: info.seconds,
    };
    manifest.sparsity.nonzeros = best.theta.rows().iter().map(|r| r.indices.len()).sum();
    best.manifest = manifest;
    let valid_metrics = evaluate(&best, model, &valid_rows)?;
    best.manifest.metrics.insert("valid".into(), valid_metrics);
    if let Some(test) = &data.test {
        let test_metrics = evaluate(&best, model, test)?;
        best.manifest.metrics.insert("test".into(), test_metrics);
    }
    best.save(&spec.out)?;
    // the run is complete: its checkpoint has nothing left to resume
    for file in [CHECKPOINT_FILE, CHECKPOINT_INFO] {
        let _ = std::fs::remove_file(spec.out.join(file));
    }
    let _ = std::fs::remove_dir_all(spec.out.join(CHECKPOINT_BEST));
    Ok(best)
}

/// The task of `kind` from the training rows' labels.
fn task_of(kind: Kind, rows: &LabelledRows, positive: Option<&str>) -> Result<Task> {
    let mut labels: Vec<String> = rows.labels.clone();
    labels.sort();
    labels.dedup();
    let data_error = |message: String| TrainError::Data {
        source_name: rows.source.clone(),
        message,
    };
    match kind {
        Kind::Regression => {
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
                kind,
                labels: Vec::new(),
                positive: None,
                mean,
                std: variance.sqrt().max(1e-12),
            })
        }
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
            Ok(Task {
                kind,
                labels: pair.to_vec(),
                positive: Some(positive),
                mean: 0.0,
                std: 1.0,
            })
        }
        Kind::Residue => {
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
                return Err(data_error(format!(
                    "a per-residue task needs at least 2 residue classes, the training rows have {classes:?}"
                )));
            }
            if classes.len() > usize::from(residue::NO_CLASS) {
                return Err(data_error(format!(
                    "a per-residue task has at most {} classes, the training rows have {}",
                    residue::NO_CLASS,
                    classes.len()
                )));
            }
            Ok(Task {
                kind,
                labels: classes,
                positive: None,
                mean: 0.0,
                std: 1.0,
            })
        }
        Kind::Multiclass if labels.len() < 2 => Err(data_error(format!(
            "classification needs at least 2 labels, the training rows have {labels:?}"
        ))),
        Kind::Multiclass => Ok(Task {
            kind,
            labels,
            positive: None,
            mean: 0.0,
            std: 1.0,
        }),
    }
}

/// The rows as residue tokens and targets (0 without a task); a bad residue is an error naming
/// the record.
fn examples(rows: &LabelledRows, task: Option<&Task>) -> Result<Vec<Example>> {
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

/// The stretch `(start, len)` of `tokens` residues that training sees: all of them, or a random
/// window of `max_length` when longer.
fn crop(tokens: usize, max_length: usize, rng: &mut Rng) -> (usize, usize) {
    if tokens > max_length {
        (rng.below(tokens - max_length + 1), max_length)
    } else {
        (0, tokens)
    }
}

/// `[CLS] tokens [SEP]` input-table ids.
fn input_ids(tokens: &[u8]) -> Vec<u32> {
    let cls = NUM_RESIDUES as u32;
    std::iter::once(cls)
        .chain(tokens.iter().map(|&t| u32::from(t)))
        .chain(std::iter::once(cls + 1))
        .collect()
}

/// Mean loss and `∂loss/∂logits` of a batch: softmax cross-entropy against class indices, or the
/// squared error against standardised values.
fn objective(kind: Kind, logits: &[f32], targets: &[f32], outputs: usize) -> (f64, Vec<f32>) {
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

/// Θ from V_T by OMP.
fn recode(dictionary: &Dictionary, v_t: &[f32], k: usize, vocab: usize) -> Result<Theta> {
    Ok(Theta::from_rows(dictionary.code(v_t, k), vocab)?)
}

fn tensor(values: &[f32]) -> candle_core::Result<Tensor> {
    Tensor::new(values, &Device::Cpu)
}

/// Writes the state, the best predictor so far and the progress into `dir`.
fn save_checkpoint(dir: &Path, state: &State, info: &CheckpointInfo, best: &Predictor) -> Result<()> {
    let path = dir.join(CHECKPOINT_FILE);
    let checkpoint_error = |e: candle_core::Error| TrainError::Checkpoint {
        path: path.clone(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| TrainError::Checkpoint {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let best_dir = dir.join(CHECKPOINT_BEST);
    best.save(&best_dir)?;
    let mut named = vec![
        ("v_t".to_string(), state.v_t.as_slice()),
        ("adam.v_t.m".to_string(), &state.adam_v_t.m),
        ("adam.v_t.v".to_string(), &state.adam_v_t.v),
    ];
    for ((name, values, _), adam) in state.head.parameters().into_iter().zip(&state.adam_head) {
        named.push((name.to_string(), values));
        named.push((format!("adam.{name}.m"), &adam.m));
        named.push((format!("adam.{name}.v"), &adam.v));
    }
    let mut tensors = std::collections::HashMap::new();
    for (name, values) in named {
        tensors.insert(name, tensor(values).map_err(checkpoint_error)?);
    }
    let steps: Vec<u32> = std::iter::once(&state.adam_v_t)
        .chain(&state.adam_head)
        .map(|adam| adam.t)
        .collect();
    tensors.insert(
        "adam.t".into(),
        Tensor::new(steps, &Device::Cpu).map_err(checkpoint_error)?,
    );
    write_atomically(&path, |tmp| {
        candle_core::safetensors::save(&tensors, tmp).map_err(|e| crate::predictor::PredictorError::Weights {
            path: tmp.to_path_buf(),
            message: e.to_string(),
        })
    })?;
    let info_path = dir.join(CHECKPOINT_INFO);
    let text = serde_json::to_string_pretty(info).unwrap_or_default();
    write_atomically(&info_path, |tmp| {
        std::fs::write(tmp, text).map_err(|source| crate::predictor::PredictorError::Io {
            path: tmp.to_path_buf(),
            source,
        })
    })?;
    Ok(())
}

/// Reads the checkpoint in `dir`; it must come from the same run (data and settings).
fn load_checkpoint(dir: &Path, run: &str, shape: &State) -> Result<(State, CheckpointInfo, Theta, Head)> {
    let info_path = dir.join(CHECKPOINT_INFO);
    let bad = |path: &Path, message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(&info_path)
        .map_err(|e| bad(&info_path, format!("{e}; nothing to resume (train without --resume)")))?;
    let info: CheckpointInfo = serde_json::from_str(&text).map_err(|e| bad(&info_path, e.to_string()))?;
    if info.run != run {
        return Err(bad(
            &info_path,
            "comes from another run (different data, limit or settings); train without --resume".into(),
        ));
    }
    let path = dir.join(CHECKPOINT_FILE);
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| bad(&path, e.to_string()))?;
    let get = |name: &str, len: usize| -> Result<Vec<f32>> {
        let values: Vec<f32> = tensors
            .get(name)
            .ok_or_else(|| bad(&path, format!("no tensor '{name}'")))?
            .to_vec1()
            .map_err(|e| bad(&path, e.to_string()))?;
        if values.len() != len {
            return Err(bad(
                &path,
                format!("'{name}' has {} values, expected {len}", values.len()),
            ));
        }
        Ok(values)
    };
    let t: Vec<u32> = tensors
        .get("adam.t")
        .ok_or_else(|| bad(&path, "no tensor 'adam.t'".into()))?
        .to_vec1()
        .map_err(|e| bad(&path, e.to_string()))?;
    if t.len() != 1 + shape.adam_head.len() {
        return Err(bad(
            &path,
            format!(
                "'adam.t' has {} values, expected {}",
                t.len(),
                1 + shape.adam_head.len()
            ),
        ));
    }
    let adam = |name: &str, len: usize, t: u32| -> Result<Adam> {
        Ok(Adam {
            m: get(&format!("adam.{name}.m"), len)?,
            v: get(&format!("adam.{name}.v"), len)?,
            t,
        })
    };
    let n_v_t = shape.v_t.len();
    let mut head = shape.head.clone();
    let mut adam_head = Vec::with_capacity(shape.adam_head.len());
    let names: Vec<&str> = shape.head.parameters().iter().map(|&(name, _, _)| name).collect();
    for ((params, name), &t) in head.parameters_mut().into_iter().zip(names).zip(&t[1..]) {
        *params = get(name, params.len())?;
        adam_head.push(adam(name, params.len(), t)?);
    }
    let state = State {
        v_t: get("v_t", n_v_t)?,
        adam_v_t: adam("v_t", n_v_t, t[0])?,
        adam_head,
        head,
    };
    let best = Predictor::load(&dir.join(CHECKPOINT_BEST))?;
    Ok((state, info, best.theta, best.head))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use candle_core::Device;

    use super::*;
    use crate::model::testing::write_tiny_bert;

    /// `n` rows of 4–8 residues: row `i` draws from `alphabet(i)` and is labelled `label(i, counts)`
    /// (`counts`: how often each of the alphabet's four residues was drawn).
    fn synthetic_rows(
        n: usize,
        seed: u64,
        alphabet: impl Fn(usize) -> &'static [u8; 4],
        label: impl Fn(usize, &[usize; 4]) -> String,
    ) -> LabelledRows {
        let mut rng = Rng::new(seed, 9);
        let mut rows = LabelledRows {
            source: format!("synthetic-{seed}"),
            ..Default::default()
        };
        for i in 0..n {
            let mut counts = [0; 4];
            let sequence: String = (0..4 + rng.below(5))
                .map(|_| {
                    let r = rng.below(4);
                    counts[r] += 1;
                    alphabet(i)[r] as char
                })
                .collect();
            rows.labels.push(label(i, &counts));
            rows.sequences.push(sequence);
        }
        rows
    }

    /// Separable rows: basic residues are `pos`, acidic ones `neg`.
    fn rows(n: usize, seed: u64) -> LabelledRows {
        const GROUPS: [(&[u8; 4], &str); 2] = [(b"KRHA", "pos"), (b"DESA", "neg")];
        synthetic_rows(n, seed, |i| GROUPS[i % 2].0, |i, _| GROUPS[i % 2].1.into())
    }

    fn spec(out: &Path) -> TrainSpec {
        TrainSpec {
            name: "tiny".into(),
            kind: None,
            positive: None,
            limit: None,
            hyper: HyperParameters {
                epochs: 4,
                batch_size: 8,
                lr_theta: 0.05,
                lr_head: 0.05,
                k: 3,
                recode_every: 2,
                patience: 10,
                ..Default::default()
            },
            out: out.to_path_buf(),
            resume: false,
        }
    }

    #[test]
    fn training_learns_is_deterministic_sparse_and_resumable() {
        learns_deterministically_sparsely_and_resumably(0);
    }

    #[test]
    fn training_with_a_hidden_layer_learns_is_deterministic_sparse_and_resumable() {
        learns_deterministically_sparsely_and_resumably(8);
    }

    fn learns_deterministically_sparsely_and_resumably(head_hidden: usize) {
        let spec = |out: &Path| {
            let mut spec = spec(out);
            spec.hyper.head_hidden = head_hidden;
            spec
        };
        let dir = tempfile::tempdir().unwrap();
        write_tiny_bert(dir.path(), "", 3).unwrap();
        let model = ReprogrammedModel::load(dir.path(), &Device::Cpu).unwrap();
        let data = Datasets {
            train: rows(64, 1),
            valid: None,
            test: Some(rows(40, 2)),
        };
        let out = tempfile::tempdir().unwrap();
        let never = AtomicBool::new(false);
        let mut epochs = Vec::new();
        let first = train(&model, &data, &spec(out.path()), &mut |p| epochs.push(p), &never).unwrap();
        let m = &first.manifest;
        assert_eq!((m.kind, m.positive_label.as_deref()), (Kind::Binary, Some("pos")));
        assert_eq!((m.training_data.train_rows, m.training_data.valid_rows), (58, 6));
        assert!(m.metrics["test"]["auroc"] > 0.9, "{:?}", m.metrics);
        assert!(first.theta.rows().iter().all(|r| r.indices.len() <= 3));
        assert!(first.theta != Theta::one_hot(model.english_tokens()), "Θ moved");
        assert_eq!(first.head.hidden_units(), head_hidden);
        assert_eq!(epochs.iter().filter(|p| matches!(p, Progress::Epoch { .. })).count(), 4);
        // what was saved loads back as the same predictor, with no checkpoint left behind
        let loaded = Predictor::load(out.path()).unwrap();
        assert_eq!((&loaded.theta, &loaded.head), (&first.theta, &first.head));
        let mut manifest = loaded.manifest.clone();
        for (split, metrics) in &first.manifest.metrics {
            for (name, value) in metrics {
                assert!((manifest.metrics[split][name] - value).abs() < 1e-12, "{split} {name}");
            }
        }
        // serde_json's default float parser may differ in the last bit: floats compare with a tolerance
        assert!((manifest.training.seconds - first.manifest.training.seconds).abs() < 1e-9);
        manifest.metrics = first.manifest.metrics.clone();
        manifest.training.seconds = first.manifest.training.seconds;
        assert_eq!(manifest, first.manifest);
        assert!(!out.path().join(CHECKPOINT_FILE).exists());
        #[cfg(unix)]
        {
            // the folder's files have the usual permissions (safetensors alone would make them private)
            use std::os::unix::fs::PermissionsExt;
            let mode = |name: &str| {
                let path = out.path().join(name);
                std::fs::metadata(path).unwrap().permissions().mode() & 0o777
            };
            std::fs::write(out.path().join("usual"), "").unwrap();
            assert_eq!(mode("predictor.safetensors"), mode("usual"));
            assert_eq!(mode("manifest.json"), mode("usual"));
            std::fs::remove_file(out.path().join("usual")).unwrap();
        }

        // the same seed gives the same predictor
        let again = train(&model, &data, &spec(out.path()), &mut |_| {}, &never).unwrap();
        assert_eq!((&again.theta, &again.head), (&first.theta, &first.head));

        // interrupted after epoch 2, resumed: the same predictor as one uninterrupted run
        // a run stopped as Ctrl-C does, once epoch `after` is checkpointed
        let interrupted_after = |after: usize| {
            let stop = AtomicBool::new(false);
            let on_epoch = &mut |p: Progress| {
                if matches!(p, Progress::Epoch { epoch, .. } if epoch == after) {
                    stop.store(true, Ordering::Relaxed);
                }
            };
            train(&model, &data, &spec(out.path()), on_epoch, &stop)
        };
        let interrupted = interrupted_after(2);
        assert!(matches!(interrupted, Err(TrainError::Interrupted { .. })));
        assert!(out.path().join(CHECKPOINT_FILE).exists());
        let mut resumed_spec = spec(out.path());
        resumed_spec.resume = true;
        let mut starts = Vec::new();
        let resumed = train(&model, &data, &resumed_spec, &mut |p| starts.push(p), &never).unwrap();
        assert!(
            matches!(starts[0], Progress::Start { first_epoch: 3, .. }),
            "{:?}",
            starts[0]
        );
        assert_eq!((&resumed.theta, &resumed.head), (&first.theta, &first.head));

        // a checkpoint of other settings does not resume
        let interrupted = interrupted_after(1);
        assert!(matches!(interrupted, Err(TrainError::Interrupted { .. })));
        let mut other = spec(out.path());
        other.hyper.seed = 99;
        other.resume = true;
        let error = train(&model, &data, &other, &mut |_| {}, &never)
            .unwrap_err()
            .to_string();
        assert!(error.contains("another run"), "{error}");
    }

    fn tiny_model(dir: &Path) -> ReprogrammedModel {
        write_tiny_bert(dir, "", 3).unwrap();
        ReprogrammedModel::load(dir, &Device::Cpu).unwrap()
    }

    #[test]
    fn regression_learns_a_composition_score_in_label_units() {
        let dir = tempfile::tempdir().unwrap();
        let model = tiny_model(dir.path());
        // label: 10 + 5 × the share of K and R, so standardising and back are exercised
        let label = |c: &[usize; 4]| {
            let n: usize = c.iter().sum();
            format!("{}", 10.0 + 5.0 * (c[0] + c[1]) as f64 / n as f64)
        };
        let data = Datasets {
            train: synthetic_rows(96, 1, |_| b"KRDE", |_, c| label(c)),
            valid: None,
            test: Some(synthetic_rows(60, 2, |_| b"KRDE", |_, c| label(c))),
        };
        let out = tempfile::tempdir().unwrap();
        let mut spec = spec(out.path());
        spec.hyper.epochs = 8;
        let predictor = train(&model, &data, &spec, &mut |_| {}, &AtomicBool::new(false)).unwrap();
        let m = &predictor.manifest;
        assert_eq!(m.kind, Kind::Regression);
        let test = &m.metrics["test"];
        assert!(test["spearman"] > 0.6, "{test:?}");
        // predictions are in label units, not standardised ones
        assert!(test["rmse"] < 1.5, "{test:?}");
        let reprogrammed = model.with_theta(&predictor.theta).unwrap();
        let values = predictor
            .predict(&reprogrammed, [Some("KRKRKR"), Some("DEDEDE")], InvalidResidue::Error)
            .unwrap()
            .values;
        assert!(values[0] > values[1] && (9.0..16.0).contains(&values[1]), "{values:?}");
    }

    #[test]
    fn multiclass_learns_three_labels() {
        let dir = tempfile::tempdir().unwrap();
        let model = tiny_model(dir.path());
        // each row is drawn from one group's residues (with the neutral A)
        const GROUPS: [(&[u8; 4], &str); 3] = [(b"KRHA", "basic"), (b"DEDA", "acidic"), (b"LIVA", "hydrophobic")];
        let rows = |n, seed| synthetic_rows(n, seed, |i| GROUPS[i % 3].0, |i, _| GROUPS[i % 3].1.into());
        let data = Datasets {
            train: rows(120, 1),
            valid: None,
            test: Some(rows(60, 2)),
        };
        let out = tempfile::tempdir().unwrap();
        let mut spec = spec(out.path());
        spec.hyper.epochs = 8;
        let predictor = train(&model, &data, &spec, &mut |_| {}, &AtomicBool::new(false)).unwrap();
        let m = &predictor.manifest;
        assert_eq!((m.kind, m.positive_label.as_deref()), (Kind::Multiclass, None));
        assert_eq!(m.labels, ["acidic", "basic", "hydrophobic"]);
        let test = &m.metrics["test"];
        assert!(test["accuracy"] > 0.8, "{test:?}");
        let loaded = Predictor::load(out.path()).unwrap();
        assert_eq!(loaded.manifest.labels, m.labels);
    }

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
    }

    #[test]
    fn bad_rows_name_their_record() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_bert(dir.path(), "", 3).unwrap();
        let model = ReprogrammedModel::load(dir.path(), &Device::Cpu).unwrap();
        let mut train_rows = rows(10, 1);
        train_rows.sequences[6] = "MK1T".into();
        let data = Datasets {
            train: train_rows,
            valid: Some(rows(4, 2)),
            test: None,
        };
        let out = tempfile::tempdir().unwrap();
        let error = train(&model, &data, &spec(out.path()), &mut |_| {}, &AtomicBool::new(false))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("record 7") && error.contains("'1'") && error.contains("position 3"),
            "{error}"
        );
    }
}
