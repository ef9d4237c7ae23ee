//! The R2DL training loop: Adam on V_T (the protein-token embeddings) and the output mapping,
//! cross-entropy or MSE through the frozen encoder ([`crate::model::Tape`]); every
//! `recode_every` steps and at each epoch's end V_T is re-coded over the English embeddings V_S
//! by OMP with `k` non-zeros per row (Θ), and V_T becomes `Θ · V_S`. Early stopping on the
//! validation score of the re-coded (sparse) model; a checkpoint after every epoch. For small
//! data: no hold-out (every row trains for the whole budget), a cosine learning-rate decay and
//! the weights averaged over the budget's last steps (`--holdout 0 --schedule cosine
//! --average-last F`).
//!
//! [`train`] runs a [`Trainer`]: `setup` (rows, task, manifest, initial or resumed state), then
//! `epoch` until the budget or the patience is spent (each a sequence of `step`s), then `finish`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::adam::Adam;
use super::checkpoint::{Average, CheckpointInfo, State, load_checkpoint, remove_checkpoint, save_checkpoint};
use super::data::{LabelledRows, grouped_split, stratified_split};
use super::dictionary::Dictionary;
use super::error::{Result, TrainError};
use super::evaluate::{decision_threshold, evaluate};
use super::novelty::{NOVELTY_K, homology_groups};
use super::objective::{ValidationScore, objective};
use super::residue;
use super::ridge::{self, FoldedMoments, Moments, ValidationErrors};
use super::rng::{Rng, Stream};
use super::task::{Example, Task, examples, task_of};
use crate::model::{InputTable, NUM_RESIDUES, PackedEncoder, Readout, ReprogrammedModel, Theta, input_ids};
use crate::predictor::context;
use crate::predictor::{
    BaseModel, FeatureMoments, Head, HyperParameters, InputScaling, Kind, MANIFEST_FORMAT, Manifest, Predictor,
    Sparsity, TrainingData, TrainingLog,
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
    /// Member `index` (1-based) of an ensemble of `members` starts (or is found finished).
    Member {
        /// 1-based.
        index: usize,
        /// The ensemble's size.
        members: usize,
    },
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
    /// The output mapping was fitted in closed form (`--ridge-head`), before the first epoch.
    HeadFitted {
        /// The penalty chosen (by cross-validation or on the validation rows).
        penalty: f64,
        /// The fit's validation score (with the initial Θ); `None` without validation rows.
        score: Option<ValidationScore>,
        /// Seconds the fit and its validation took.
        seconds: f64,
    },
    /// An epoch finished (and was validated, unless no rows are held out).
    Epoch {
        /// 1-based epoch.
        epoch: usize,
        /// Its validation score; `None` without validation rows.
        score: Option<ValidationScore>,
        /// The best score so far (`None` without validation rows).
        best: Option<ValidationScore>,
        /// Seconds it took.
        seconds: f64,
    },
}

/// Trains a predictor on `data` with the frozen `model` (on the CPU), reporting to `report`;
/// stops early, with a resumable checkpoint, when `stop` becomes true.
pub fn train(
    model: &ReprogrammedModel,
    data: &Datasets,
    spec: &TrainSpec,
    report: &mut dyn FnMut(Progress),
    stop: &AtomicBool,
) -> Result<Predictor> {
    let mut trainer = Trainer::setup(model, data, spec)?;
    if spec.hyper.ridge_head && !spec.resume {
        trainer.fit_head(report)?;
    }
    report(Progress::Start {
        epochs: spec.hyper.epochs,
        steps_per_epoch: trainer.train_set.len().div_ceil(spec.hyper.batch_size),
        first_epoch: trainer.info.epochs_done + 1,
    });
    while trainer.info.epochs_done < spec.hyper.epochs && trainer.info.bad_epochs < spec.hyper.patience.max(1) {
        trainer.epoch(report, stop)?;
    }
    trainer.finish()
}

/// Hidden units of the output mapping at most (4,096 × d weights: 6 MB at d = 384).
pub const MAX_HEAD_HIDDEN: usize = 4096;

/// The folds of the cross-validation that chooses the closed-form fit's penalty when
/// `--ridge-head` is given without `--ridge-folds`.
pub const DEFAULT_RIDGE_FOLDS: usize = 5;

/// The most folds `--ridge-folds` takes: each holds the square of the mapping's width in sums.
const MAX_RIDGE_FOLDS: usize = 20;

/// The most memory the cross-validation's sums may take (k + 3 sets of `width²` doubles): a
/// per-residue mapping with neighbours (11,520 features: 1.1 GB a set) chooses its penalty on
/// validation rows instead.
const MAX_CROSS_VALIDATION_BYTES: f64 = 6e9;

/// Sequences per optimiser step at most.
pub const MAX_BATCH_SIZE: usize = 4096;

/// Checks the settings before anything is allocated or trained: counts positive and bounded
/// (`k` by the model width `dim`: OMP cannot use more atoms than dimensions), rates finite, the
/// readout's layers among the model's `layers`; gives the readout.
fn check_settings(hyper: &HyperParameters, dim: usize, layers: usize) -> Result<Readout> {
    let bounded = |name: &str, value: usize, least: usize, most: usize| {
        if (least..=most).contains(&value) {
            Ok(())
        } else {
            Err(TrainError::Settings(format!(
                "{name} must be between {least} and {most}, not {value}"
            )))
        }
    };
    // with a fitted output mapping, no epoch at all keeps the fit as it is
    bounded("--epochs", hyper.epochs, usize::from(!hyper.ridge_head), 1_000_000)?;
    bounded("--batch-size", hyper.batch_size, 1, MAX_BATCH_SIZE)?;
    bounded("--k", hyper.k, 1, dim)?;
    bounded("--recode-every", hyper.recode_every, 1, usize::MAX)?;
    bounded("--head-hidden", hyper.head_hidden, 0, MAX_HEAD_HIDDEN)?;
    bounded("--max-length", hyper.max_length, 1, usize::MAX)?;
    bounded("--context", hyper.context, 0, context::MAX_CONTEXT)?;
    for (name, rate) in [("--lr", hyper.lr_theta), ("--head-lr", hyper.lr_head)] {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(TrainError::Settings(format!(
                "{name} must be a positive number, not {rate}"
            )));
        }
    }
    if !(hyper.weight_decay.is_finite() && hyper.weight_decay >= 0.0) {
        return Err(TrainError::Settings(format!(
            "the weight decay must be a number ≥ 0, not {}",
            hyper.weight_decay
        )));
    }
    if !(hyper.valid_fraction >= 0.0 && hyper.valid_fraction < 1.0) {
        return Err(TrainError::Settings(format!(
            "--holdout must be at least 0 and below 1, not {}",
            hyper.valid_fraction
        )));
    }
    if !(0.0..=1.0).contains(&hyper.average_last) {
        return Err(TrainError::Settings(format!(
            "--average-last must be between 0 and 1, not {}",
            hyper.average_last
        )));
    }
    if hyper.ridge_folds > 0 && !hyper.ridge_head {
        return Err(TrainError::Settings(
            "--ridge-folds chooses the penalty of --ridge-head's fit: give --ridge-head too".into(),
        ));
    }
    if hyper.ridge_folds == 1 || hyper.ridge_folds > MAX_RIDGE_FOLDS {
        return Err(TrainError::Settings(format!(
            "--ridge-folds must be 0 (the validation rows choose the penalty) or between 2 and {MAX_RIDGE_FOLDS}, not {}",
            hyper.ridge_folds
        )));
    }
    if hyper.ridge_head && (hyper.head_hidden > 0 || hyper.pool.reads_residues()) {
        return Err(TrainError::Settings(
            "--ridge-head fits a linear output mapping of the mean-pooled features: drop --head-hidden and --pool"
                .into(),
        ));
    }
    if hyper.segments > 1 && hyper.pool.reads_residues() {
        return Err(TrainError::Settings(
            "--segments pools the features before the output mapping; --pool outputs and sum pool after it".into(),
        ));
    }
    let readout = match hyper.readout_layers.as_slice() {
        [] => Readout::last(),
        layers_read => Readout::of_layers(layers_read, layers)
            .map_err(|message| TrainError::Settings(format!("--readout: {message}")))?,
    };
    readout
        .with_segments(hyper.segments)
        .map_err(|message| TrainError::Settings(format!("--segments: {message}")))
}

/// The rows a run trains and validates on.
struct Splits {
    /// Training rows (after `--limit`, less the held-out share).
    train: LabelledRows,
    /// Validation rows: the given file, or a share of the training rows.
    valid: LabelledRows,
    /// Where the validation rows came from, for the manifest.
    valid_source: String,
}

/// One training run: the frozen model, the rows, the trainable state and its progress.
struct Trainer<'a> {
    model: &'a ReprogrammedModel,
    encoder: &'a PackedEncoder,
    /// The model's input table; training replaces its V_T rows.
    base_table: &'a InputTable,
    spec: &'a TrainSpec,
    kind: Kind,
    /// The labels and the regression's scale.
    task: Task,
    train_set: Vec<Example>,
    valid: LabelledRows,
    test: Option<&'a LabelledRows>,
    dictionary: Dictionary,
    manifest: Manifest,
    state: State,
    info: CheckpointInfo,
    best: Predictor,
    /// Residues per training input: a random crop of longer sequences.
    max_length: usize,
    /// Which head parameters get weight decay (the weights, not the biases).
    decays: Vec<bool>,
    /// The hidden states the output mapping reads.
    readout: Readout,
    /// Optimiser steps in the epoch budget: the learning-rate schedule's length.
    budget: usize,
    /// Steps after which the weights are averaged (`usize::MAX`: never).
    average_after: usize,
}

impl<'a> Trainer<'a> {
    /// Checks the settings, splits and checks the rows, and builds the manifest and the initial
    /// state (or the checkpoint's, when resuming).
    fn setup(model: &'a ReprogrammedModel, data: &'a Datasets, spec: &'a TrainSpec) -> Result<Self> {
        let hyper = &spec.hyper;
        let readout = check_settings(hyper, model.dim(), model.encoder().config().num_hidden_layers)?;
        let (encoder, base_table) = model.packed().ok_or_else(|| {
            TrainError::Settings("training runs on the CPU (the packed encoder); drop --device".into())
        })?;
        if data.train.is_empty() {
            return Err(TrainError::Data {
                source_name: data.train.source.clone(),
                message: "has no rows".into(),
            });
        }
        let kind = spec.kind.unwrap_or_else(|| super::data::infer_kind_of(&data.train));
        if hyper.pool.reads_residues() && kind == Kind::Residue {
            return Err(TrainError::Settings(
                "--pool outputs and sum are for whole-protein tasks; a per-residue predictor already maps each residue"
                    .into(),
            ));
        }
        if hyper.context > 0 && kind != Kind::Residue {
            return Err(TrainError::Settings(
                "--context is for per-residue tasks: the output mapping of a whole-protein task reads pooled features"
                    .into(),
            ));
        }
        if hyper.segments > 1 && kind == Kind::Residue {
            return Err(TrainError::Settings(
                "--segments is for whole-protein tasks: a per-residue predictor maps each residue's features".into(),
            ));
        }
        let splits = split(data, spec, kind)?;
        if hyper.ridge_head && hyper.ridge_folds == 0 && splits.valid.is_empty() {
            return Err(TrainError::Settings(
                "--ridge-folds 0 chooses the penalty on validation rows: give --valid or a --holdout above 0".into(),
            ));
        }
        // every residue of every file is checked before the labels are
        for rows in [Some(&data.train), data.valid.as_ref(), data.test.as_ref()]
            .into_iter()
            .flatten()
        {
            examples(rows, None)?;
            if hyper.pool.reads_residues() {
                residue::check_every_row_has_residues(rows)?;
            }
        }
        let task = task_of(kind, &splits.train, spec.positive.as_deref())?;
        let train_set = training_examples(data, &splits, &task)?;
        let mut manifest = draft_manifest(model, data, spec, &task, &splits);
        manifest.hyper_parameters.readout_layers = readout.stored().to_vec();
        let run = run_fingerprint(&manifest, spec, &splits.train)?;

        let mapped_width = readout.pooled_width(model.dim()) * (2 * hyper.context + 1);
        if hyper.ridge_head {
            cross_validation_fits(mapped_width, hyper.ridge_folds)?;
        }
        let (dictionary, mut state) = initial_state(model, hyper, task.outputs(), mapped_width)?;
        if hyper.standardise && !spec.resume {
            let table = base_table.with_residues(&state.v_t);
            let features = MappingInputs {
                encoder,
                table: &table,
                readout: &readout,
                width: readout.count() * model.dim(),
                context: hyper.context,
                reads_residues: kind == Kind::Residue || hyper.pool.reads_residues(),
                max_length: hyper.max_length.clamp(1, model.max_residues()),
                batch_size: hyper.batch_size,
            };
            let scaling = features.measure(&train_set);
            state.head.input = Some(scaling.clone());
            state.average.head.input = Some(scaling);
        }
        let mut info = CheckpointInfo {
            epochs_done: 0,
            steps: 0,
            best_epoch: 0,
            best_score: ValidationScore::WORST,
            bad_epochs: 0,
            seconds: 0.0,
            averaged_steps: 0,
            ridge_penalty: None,
            run,
        };
        let mut best = Predictor {
            manifest: manifest.clone(),
            theta: Theta::one_hot(model.english_tokens()),
            head: state.head.clone(),
            further_members: Vec::new(),
        };
        if spec.resume {
            (state, info, best.theta, best.head) = load_checkpoint(&spec.out, &info.run, &state)?;
            // the standardisation was measured once, at the start; the kept predictor has it
            state.head.input.clone_from(&best.head.input);
            state.average.head.input.clone_from(&best.head.input);
        }
        let decays = state.head.parameters().iter().map(|&(_, _, decays)| decays).collect();
        let budget = hyper.epochs * train_set.len().div_ceil(hyper.batch_size);
        let averaged = (hyper.average_last * budget as f64).round() as usize;
        Ok(Self {
            model,
            encoder,
            base_table,
            spec,
            kind,
            task,
            train_set,
            valid: splits.valid,
            test: data.test.as_ref(),
            dictionary,
            manifest,
            state,
            info,
            best,
            // a training input never exceeds the model's positions, whatever --max-length says
            max_length: hyper.max_length.clamp(1, model.max_residues()),
            decays,
            readout,
            budget,
            average_after: if averaged == 0 {
                usize::MAX
            } else {
                budget - averaged.min(budget)
            },
        })
    }

    /// Replaces the output mapping by its least-squares fit on the features of every training
    /// row (per-residue tasks: every labelled residue) under the initial Θ — the penalty chosen
    /// by k-fold cross-validation over those rows (`--ridge-folds`, each example's rows in one
    /// fold) or on the validation rows; for classes, a fit of the one-hot labels whose scale
    /// (the softmax temperature) is then chosen for the least cross-entropy on rows the fit has
    /// not seen (the validation rows, or without them each training row under its fold's
    /// out-of-fold fit) — validates it as "epoch 0", the one kept unless a later epoch beats it,
    /// and saves a checkpoint.
    fn fit_head(&mut self, report: &mut dyn FnMut(Progress)) -> Result<()> {
        let started = Instant::now();
        let valid_set = examples(&self.valid, Some(&self.task))?;
        let valid_set: Vec<&Example> = valid_set.iter().collect();
        let train_set: Vec<&Example> = self.train_set.iter().collect();
        let (dim, outputs) = (self.state.head.dim(), self.state.head.outputs());
        let folds = self.spec.hyper.ridge_folds;
        // each fold's out-of-fold fit under the chosen penalty, when cross-validated
        let mut out_of_fold = None;
        let (mut fit, penalty) = if folds >= 2 {
            // k-fold cross-validation over the training rows: the fit of them all under the
            // penalty with the least error on each fold when fitted to the others
            let mut moments = FoldedMoments::new(dim, outputs, folds);
            self.for_each_fit_row(&train_set, &mut |x, y| moments.add(x, &y.values(outputs), &y.folds));
            moments.best().map(|chosen| {
                out_of_fold = Some(chosen.out_of_fold);
                (chosen.fit, chosen.penalty)
            })
        } else {
            let mut moments = Moments::new(dim, outputs);
            self.for_each_fit_row(&train_set, &mut |x, y| moments.add(x, &y.values(outputs)));
            let mut errors = ValidationErrors::new(&moments);
            self.for_each_fit_row(&valid_set, &mut |x, y| errors.add(x, &y.values(outputs)));
            errors.best()
        }
        .ok_or_else(|| TrainError::Settings("the least-squares fit of the output mapping has no solution".into()))?;
        if self.kind != Kind::Regression {
            // the scores of rows the fit has not seen: the validation rows', or without them
            // each training row's under the fit of the other folds
            let mut logits = Vec::new();
            let mut classes = Vec::new();
            match out_of_fold.filter(|_| valid_set.is_empty()) {
                None => self.for_each_fit_row(&valid_set, &mut |x, y| {
                    logits.extend(fit.forward(x));
                    classes.extend_from_slice(y.targets);
                }),
                Some(fits) => {
                    self.for_each_fit_row(&train_set, &mut |x, y| {
                        let outputs_of: Vec<Option<Vec<f32>>> =
                            fits.iter().map(|fit| fit.as_ref().map(|fit| fit.forward(x))).collect();
                        for (i, (&fold, &class)) in y.folds.iter().zip(y.targets).enumerate() {
                            if let Some(scores) = &outputs_of[fold] {
                                logits.extend_from_slice(&scores[i * outputs..(i + 1) * outputs]);
                                classes.push(class);
                            }
                        }
                    });
                }
            }
            let temperature = ridge::temperature(&logits, &classes, outputs);
            fit.weight
                .iter_mut()
                .chain(&mut fit.bias)
                .for_each(|v| *v *= temperature);
        }
        self.state.head.output = fit;
        self.state.average.head.output = self.state.head.output.clone();
        let candidate = Predictor {
            manifest: self.manifest.clone(),
            theta: self.best.theta.clone(),
            head: self.state.head.clone(),
            further_members: Vec::new(),
        };
        // without validation rows (the penalty cross-validated), any epoch replaces the fit
        let score = if self.valid.is_empty() {
            ValidationScore::WORST
        } else {
            ValidationScore::of(self.kind, &evaluate(&candidate, self.model, &self.valid)?)
        };
        self.best.head = candidate.head;
        let info = &mut self.info;
        (info.best_score, info.best_epoch, info.ridge_penalty) = (score, 0, Some(penalty));
        let seconds = started.elapsed().as_secs_f64();
        info.seconds += seconds;
        save_checkpoint(&self.spec.out, &self.state, &self.info, &self.best)?;
        report(Progress::HeadFitted {
            penalty,
            score: (!self.valid.is_empty()).then_some(score),
            seconds,
        });
        Ok(())
    }

    /// Runs the frozen encoder (initial Θ) over `examples` and gives `visit` the rows the
    /// least-squares fit sees, as the output mapping reads them (standardised when it is): each
    /// example's pooled features (per-residue tasks: each labelled residue's features, from its
    /// first `max_length` residues), `rows × width`, with their targets.
    fn for_each_fit_row(&self, examples: &[&Example], visit: &mut dyn FnMut(&[f32], FitTargets<'_>)) {
        let table = self.base_table.with_residues(&self.state.v_t);
        let head = &self.state.head;
        let inputs = self.mapping_inputs(&table);
        let width = inputs.mapped_width();
        let (folds, seed) = (self.spec.hyper.ridge_folds, self.spec.hyper.seed);
        inputs.for_each_batch(examples, &mut |encoded, batch| {
            let (states, targets, rows) = match encoded {
                Encoded::Tokens(features, lengths) => {
                    let classes: Vec<&[u8]> = batch
                        .iter()
                        .map(|example| &example.classes[..example.tokens.len().min(self.max_length)])
                        .collect();
                    let labelled = residue::LabelledStates::gather(features, lengths, &classes, width);
                    let rows = classes
                        .iter()
                        .map(|classes| classes.iter().filter(|&&class| class != residue::NO_CLASS).count())
                        .collect();
                    (labelled.states, labelled.targets, rows)
                }
                Encoded::Pooled(pooled) => (
                    pooled.to_vec(),
                    batch.iter().map(|example| example.target).collect(),
                    vec![1; batch.len()],
                ),
            };
            // every row of an example in its example's fold
            let folds: Vec<usize> = match folds {
                0 => Vec::new(),
                k => batch
                    .iter()
                    .zip(rows)
                    .flat_map(|(example, rows): (&&Example, usize)| {
                        std::iter::repeat_n(fold_of(example, seed, k), rows)
                    })
                    .collect(),
            };
            let scaled = match &head.input {
                Some(input) => input.apply(&states),
                None => states,
            };
            let targets = FitTargets {
                targets: &targets,
                classes: self.kind != Kind::Regression,
                folds,
            };
            visit(&scaled, targets);
        });
    }

    /// What the output mapping reads, under the input `table`.
    fn mapping_inputs<'t>(&'t self, table: &'t InputTable) -> MappingInputs<'t> {
        let hyper = &self.spec.hyper;
        MappingInputs {
            encoder: self.encoder,
            table,
            readout: &self.readout,
            width: self.readout.count() * self.model.dim(),
            context: hyper.context,
            reads_residues: self.kind == Kind::Residue || hyper.pool.reads_residues(),
            max_length: self.max_length,
            batch_size: hyper.batch_size,
        }
    }

    /// One epoch: the steps over the shuffled rows, re-coding, validation, the checkpoint.
    fn epoch(&mut self, report: &mut dyn FnMut(Progress), stop: &AtomicBool) -> Result<()> {
        let spec = self.spec;
        let hyper = &spec.hyper;
        let epoch = self.info.epochs_done + 1;
        let started = Instant::now();
        let mut rng = Rng::stream(hyper.seed, Stream::Epoch(epoch));
        let mut order: Vec<usize> = (0..self.train_set.len()).collect();
        rng.shuffle(&mut order);
        let mut loss_sum = 0.0;
        for (step, batch) in order.chunks(hyper.batch_size).enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Err(TrainError::Interrupted {
                    dir: self.spec.out.clone(),
                    epochs_done: self.info.epochs_done,
                });
            }
            let Some(loss) = self.step(batch, &mut rng)? else {
                continue;
            };
            if !loss.is_finite() || !self.state_is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    step: step + 1,
                    loss,
                });
            }
            loss_sum += loss;
            report(Progress::Step {
                epoch,
                loss: loss_sum / (step + 1) as f64,
            });
        }
        let theta = self.recode(&self.state.v_t)?;
        self.state.v_t = self.dictionary.reconstruct(&theta);
        // the averaged weights, once averaging has begun, are the candidate
        let candidate = if self.info.averaged_steps > 0 {
            Predictor {
                manifest: self.manifest.clone(),
                theta: self.recode(&self.state.average.v_t)?,
                head: self.state.average.head.clone(),
                further_members: Vec::new(),
            }
        } else {
            Predictor {
                manifest: self.manifest.clone(),
                theta,
                head: self.state.head.clone(),
                further_members: Vec::new(),
            }
        };
        // without validation rows every epoch's weights replace the last: the final ones are kept
        let score = if self.valid.is_empty() {
            None
        } else {
            Some(ValidationScore::of(
                self.kind,
                &evaluate(&candidate, self.model, &self.valid)?,
            ))
        };
        let info = &mut self.info;
        if score.is_none_or(|score| score.beats(&info.best_score)) {
            info.best_score = score.unwrap_or(ValidationScore::WORST);
            (info.best_epoch, info.bad_epochs) = (epoch, 0);
            self.best.theta = candidate.theta;
            self.best.head = candidate.head;
        } else {
            info.bad_epochs += 1;
        }
        let seconds = started.elapsed().as_secs_f64();
        info.seconds += seconds;
        info.epochs_done = epoch;
        save_checkpoint(&self.spec.out, &self.state, &self.info, &self.best)?;
        report(Progress::Epoch {
            epoch,
            score,
            best: score.map(|_| self.info.best_score),
            seconds,
        });
        Ok(())
    }

    /// Whether every trainable value is still a number.
    fn state_is_finite(&self) -> bool {
        let head = self.state.head.parameters();
        let mut values = self
            .state
            .v_t
            .iter()
            .chain(head.iter().flat_map(|(_, values, _)| values.iter()));
        values.all(|v| v.is_finite())
    }

    /// One optimiser step on the rows `batch` of the training set (each cropped to
    /// `max_length` by `rng`); its mean loss, or `None` when no residue of a per-residue batch
    /// has a label.
    fn step(&mut self, batch: &[usize], rng: &mut Rng) -> Result<Option<f64>> {
        let hyper = &self.spec.hyper;
        let crops: Vec<(usize, usize)> = batch
            .iter()
            .map(|&i| crop(self.train_set[i].tokens.len(), self.max_length, rng))
            .collect();
        let window = |(&i, &(start, len)): (&usize, &(usize, usize))| (&self.train_set[i], start..start + len);
        let windows: Vec<_> = batch.iter().zip(&crops).map(window).collect();
        if self.kind == Kind::Residue
            && windows
                .iter()
                .all(|(example, range)| example.classes[range.clone()].iter().all(|&c| c == residue::NO_CLASS))
        {
            return Ok(None);
        }
        let inputs: Vec<Vec<u32>> = windows
            .iter()
            .map(|(example, range)| input_ids(&example.tokens[range.clone()]).collect())
            .collect();
        let table = self.base_table.with_residues(&self.state.v_t);
        let tape = self.encoder.record(table.values(), &inputs, &self.readout);
        let head = &self.state.head;
        let (loss, grads, d_table) = if self.kind == Kind::Residue {
            // the output mapping reads each labelled residue's features
            let classes: Vec<&[u8]> = windows
                .iter()
                .map(|(example, range)| &example.classes[range.clone()])
                .collect();
            // with its neighbours' ([`context`])
            let segments = context::token_segments(tape.lengths());
            let radius = hyper.context;
            let features = context::expand(tape.features(), tape.width(), &segments, radius);
            let width = tape.width() * (2 * radius + 1);
            let labelled = residue::LabelledStates::gather(&features, tape.lengths(), &classes, width);
            let logits = head.forward(&labelled.states);
            let (loss, d_logits) = objective(Kind::Multiclass, &logits, &labelled.targets, head.outputs());
            let grads = head.backward(&labelled.states, &d_logits);
            let d_expanded = labelled.scatter(&grads.pooled, features.len());
            let d_features = context::fold(&d_expanded, tape.width(), &segments, radius);
            (loss, grads.parameters, tape.backward_features(d_features, table.rows()))
        } else if hyper.pool.reads_residues() {
            // the output mapping reads every residue's features; its outputs are averaged or summed
            let targets: Vec<f32> = windows.iter().map(|(example, _)| example.target).collect();
            let residues = residue::ResidueStates::gather(tape.features(), tape.lengths(), tape.width());
            let outputs = head.forward(&residues.states);
            let logits = residues.pool(&outputs, head.outputs(), hyper.pool);
            let (loss, d_logits) = objective(self.kind, &logits, &targets, head.outputs());
            let d_outputs = residues.spread(&d_logits, head.outputs(), hyper.pool);
            let grads = head.backward(&residues.states, &d_outputs);
            let d_features = residues.scatter(&grads.pooled, tape.features().len());
            (loss, grads.parameters, tape.backward_features(d_features, table.rows()))
        } else {
            let targets: Vec<f32> = windows.iter().map(|(example, _)| example.target).collect();
            let logits = head.forward(tape.pooled());
            let (loss, d_logits) = objective(self.kind, &logits, &targets, head.outputs());
            let grads = head.backward(tape.pooled(), &d_logits);
            (loss, grads.parameters, tape.backward(&grads.pooled, table.rows()))
        };
        let state = &mut self.state;
        let rate = hyper.schedule.factor(self.info.steps, self.budget);
        let d_v_t = InputTable::residue_rows(&d_table, self.model.dim());
        state.adam_v_t.step(&mut state.v_t, d_v_t, hyper.lr_theta * rate, 0.0);
        let params = state.head.parameters_mut().into_iter().zip(&grads);
        for ((params, grad), (adam, decays)) in params.zip(state.adam_head.iter_mut().zip(&self.decays)) {
            let weight_decay = if *decays { hyper.weight_decay } else { 0.0 };
            adam.step(params, grad, hyper.lr_head * rate, weight_decay);
        }
        self.info.steps += 1;
        if self.info.steps.is_multiple_of(hyper.recode_every) {
            self.state.v_t = self.dictionary.reconstruct(&self.recode(&self.state.v_t)?);
        }
        if self.info.steps > self.average_after {
            self.info.averaged_steps += 1;
            let state = &mut self.state;
            state.average.add(&state.v_t, &state.head, self.info.averaged_steps);
        }
        Ok(Some(loss))
    }

    /// Θ coding `v_t` by OMP (`k` non-zeros per row over V_S).
    fn recode(&self, v_t: &[f32]) -> Result<Theta> {
        let rows = self.dictionary.code(v_t, self.spec.hyper.k);
        Ok(Theta::from_rows(rows, self.model.encoder().config().vocab_size)?)
    }

    /// The best predictor with its training log and validation (and test) metrics, saved; the
    /// checkpoint removed.
    fn finish(self) -> Result<Predictor> {
        let info = &self.info;
        let mut best = self.best;
        best.manifest = self.manifest;
        best.manifest.training = TrainingLog {
            epochs_run: info.epochs_done,
            best_epoch: info.best_epoch,
            steps: info.steps,
            seconds: info.seconds,
            ridge_penalty: info.ridge_penalty,
        };
        best.manifest.sparsity.nonzeros = best.theta.rows().iter().map(|r| r.indices.len()).sum();
        if !self.valid.is_empty() {
            best.manifest.decision_threshold = decision_threshold(&best, self.model, &self.valid)?;
            let valid_metrics = evaluate(&best, self.model, &self.valid)?;
            best.manifest.metrics.insert("valid".into(), valid_metrics);
        }
        if let Some(test) = self.test {
            let test_metrics = evaluate(&best, self.model, test)?;
            best.manifest.metrics.insert("test".into(), test_metrics);
        }
        best.save(&self.spec.out)?;
        remove_checkpoint(&self.spec.out)?;
        Ok(best)
    }
}

/// The targets of rows of a least-squares fit (standardised values, or class indices), with the
/// cross-validation fold of each row.
struct FitTargets<'t> {
    /// One per row: the regression's value, or the class index.
    targets: &'t [f32],
    /// Whether `targets` are class indices.
    classes: bool,
    /// One per row, the cross-validation fold of its example; empty without `--ridge-folds`.
    folds: Vec<usize>,
}

impl FitTargets<'_> {
    /// `rows × outputs` target values: the value itself, or the class's one-hot row.
    fn values(&self, outputs: usize) -> Vec<f32> {
        if !self.classes {
            return self.targets.to_vec();
        }
        let mut values = vec![0f32; self.targets.len() * outputs];
        for (row, &class) in values.chunks_exact_mut(outputs).zip(self.targets) {
            row[class as usize] = 1.0;
        }
        values
    }
}

/// Refuses a cross-validation of `folds` folds whose sums (k + 3 sets of `width²` doubles)
/// would exceed [`MAX_CROSS_VALIDATION_BYTES`], naming the way out.
fn cross_validation_fits(width: usize, folds: usize) -> Result<()> {
    let bytes = (folds + 3) as f64 * (width as f64).powi(2) * 8.0;
    if folds < 2 || bytes <= MAX_CROSS_VALIDATION_BYTES {
        return Ok(());
    }
    Err(TrainError::Settings(format!(
        "--ridge-folds {folds} would hold {} sums of {width}² values ({:.1} GB) for a mapping this wide: \
         give --ridge-folds 0 (the validation rows choose the penalty) or fewer folds",
        folds + 3,
        bytes / 1e9
    )))
}

/// The cross-validation fold (of `folds`) of an example: a hash of its residues and the seed,
/// so that the same sequence given twice lands in one fold, whatever the order of the rows.
fn fold_of(example: &Example, seed: u64, folds: usize) -> usize {
    // FNV-1a over the residues, then SplitMix64's finaliser with the seed
    let hash = example.tokens.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &t| {
        (h ^ u64::from(t)).wrapping_mul(0x0100_0000_01b3)
    });
    (super::rng::mix(hash ^ seed.wrapping_mul(super::rng::GOLDEN_GAMMA)) % folds as u64) as usize
}

/// Training rows the standardisation of the output mapping's inputs is measured on (`--standardise`).
const SCALING_ROWS: usize = 1024;

/// A batch through the frozen encoder, as the output mapping reads it.
enum Encoded<'e> {
    /// Every token's features as the mapping reads them (`[tokens, width]`, the inputs end to
    /// end; per-residue tasks: with the neighbours' of each residue) and the inputs' lengths in
    /// tokens (`[CLS] residues [SEP]`).
    Tokens(&'e [f32], &'e [usize]),
    /// Each input's mean-pooled features, `inputs × width`.
    Pooled(&'e [f32]),
}

/// What the output mapping reads, for measuring its input standardisation and fitting it.
struct MappingInputs<'m> {
    encoder: &'m PackedEncoder,
    /// The input table with the initial V_T.
    table: &'m InputTable,
    readout: &'m Readout,
    /// Features per token or row from the encoder: the readout's layers × d.
    width: usize,
    /// Neighbours on each side a per-residue mapping reads with each residue ([`context`]).
    context: usize,
    /// Whether the mapping reads every residue's features (per-residue tasks, pooled outputs)
    /// rather than their mean.
    reads_residues: bool,
    max_length: usize,
    batch_size: usize,
}

impl MappingInputs<'_> {
    /// Features per token or row as the mapping reads them: with the neighbours' of each residue,
    /// or in the readout's segments.
    fn mapped_width(&self) -> usize {
        self.width * (2 * self.context + 1) * self.readout.segments()
    }

    /// The mean and spread of each feature the output mapping reads, over up to
    /// [`SCALING_ROWS`] training rows spread evenly over `examples` (each cut to its first
    /// `max_length` residues).
    fn measure(&self, examples: &[Example]) -> InputScaling {
        let every = examples.len().div_ceil(SCALING_ROWS).max(1);
        let chosen: Vec<&Example> = examples.iter().step_by(every).collect();
        let mut moments = FeatureMoments::default();
        let width = self.mapped_width();
        self.for_each_batch(&chosen, &mut |encoded, _| match encoded {
            Encoded::Tokens(features, lengths) => {
                moments.add(&residue::ResidueStates::gather(features, lengths, width).states, width)
            }
            Encoded::Pooled(pooled) => moments.add(pooled, width),
        });
        moments.scaling()
    }

    /// Runs the frozen encoder over `examples` (each cut to its first `max_length` residues) by
    /// its inference pass, a batch at a time, and gives `visit` what the mapping reads of each
    /// batch, with the batch's examples.
    fn for_each_batch(&self, examples: &[&Example], visit: &mut dyn FnMut(Encoded<'_>, &[&Example])) {
        for batch in examples.chunks(self.batch_size.max(1)) {
            let inputs: Vec<Vec<u32>> = batch
                .iter()
                .map(|example| input_ids(&example.tokens[..example.tokens.len().min(self.max_length)]).collect())
                .collect();
            if self.reads_residues {
                self.encoder
                    .encode_then(self.table.values(), &inputs, self.readout, |features, lengths| {
                        let segments = context::token_segments(lengths);
                        let features = context::expand(features, self.width, &segments, self.context);
                        visit(Encoded::Tokens(&features, lengths), batch)
                    });
            } else {
                let pooled = self.encoder.encode_pooled(self.table.values(), &inputs, self.readout);
                visit(Encoded::Pooled(&pooled), batch);
            }
        }
    }
}

/// The dictionary V_S that Θ codes over, and the state training starts from: V_T of the one-hot
/// Θ (each residue on its own English letter token), a seeded output mapping reading `features`
/// values, fresh Adam moments.
fn initial_state(
    model: &ReprogrammedModel,
    hyper: &HyperParameters,
    outputs: usize,
    features: usize,
) -> Result<(Dictionary, State)> {
    let v_s: Vec<f32> = model
        .encoder()
        .word_embeddings()
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .map_err(crate::model::ModelError::from)?;
    let d = model.dim();
    let dictionary = Dictionary::new(v_s, d);
    let mut init_rng = Rng::stream(hyper.seed, Stream::HeadInit);
    let head = Head::with_hidden(outputs, features, hyper.head_hidden, || init_rng.unit() as f32);
    let v_t = dictionary.reconstruct(&Theta::one_hot(model.english_tokens()));
    let state = State {
        average: Average {
            v_t: v_t.clone(),
            head: head.clone(),
        },
        v_t,
        adam_v_t: Adam::new(NUM_RESIDUES * d),
        adam_head: head.parameters().iter().map(|(_, p, _)| Adam::new(p.len())).collect(),
        head,
    };
    Ok((dictionary, state))
}

/// The `--limit` subsample of the training rows, and the validation rows: the given ones, or a
/// seeded share (stratified for classifications) held out of the subsample.
fn split(data: &Datasets, spec: &TrainSpec, kind: Kind) -> Result<Splits> {
    let hyper = &spec.hyper;
    let all = &data.train;
    let stratify = !matches!(kind, Kind::Regression | Kind::Residue);
    let pool = match spec.limit {
        Some(n) if n < all.len() => {
            let mut rng = Rng::stream(hyper.split_seed(), Stream::Subsample);
            all.select(&stratified_split(&all.labels, n, stratify, &mut rng).0)
        }
        _ => all.clone(),
    };
    if let Some(valid) = &data.valid {
        return Ok(Splits {
            valid_source: valid.source.clone(),
            valid: valid.clone(),
            train: pool,
        });
    }
    if hyper.valid_fraction == 0.0 {
        return Ok(Splits {
            valid_source: "none (--holdout 0: every row trains, the last weights are kept)".into(),
            valid: pool.select(&[]),
            train: pool,
        });
    }
    if pool.len() < 2 {
        return Err(TrainError::Settings(
            "need at least 2 rows to hold one out for validation".into(),
        ));
    }
    let n_valid = ((pool.len() as f64 * hyper.valid_fraction).round() as usize).clamp(1, pool.len() - 1);
    // homology-aware: rows linked by shared 5-mers stay on one side, so that the validation rows
    // are new to the training rows and early stopping picks the epoch that generalises
    let groups = homology_groups(&pool.sequences, NOVELTY_K);
    let mut rng = Rng::stream(hyper.split_seed(), Stream::ValidationSplit);
    let (mut valid, mut train) = grouped_split(&pool.labels, &groups, n_valid, stratify, &mut rng);
    let mut how = "homology-aware";
    if valid.is_empty() {
        // no group is small enough: a plain random share
        let mut rng = Rng::stream(hyper.split_seed(), Stream::ValidationSplit);
        (valid, train) = stratified_split(&pool.labels, n_valid, stratify, &mut rng);
        how = "random; no group of related rows was small enough";
    }
    Ok(Splits {
        valid_source: format!("{} of {} ({how})", valid.len(), all.source),
        valid: pool.select(&valid),
        train: pool.select(&train),
    })
}

/// The validation rows of `spec` on `data` (as training splits them off).
pub(super) fn validation_rows(data: &Datasets, spec: &TrainSpec) -> Result<LabelledRows> {
    let kind = spec.kind.unwrap_or_else(|| super::data::infer_kind_of(&data.train));
    Ok(split(data, spec, kind)?.valid)
}

/// The training examples; for per-residue tasks also checks, before the first epoch, that each
/// validation and test label string fits its sequence and uses the training classes.
fn training_examples(data: &Datasets, splits: &Splits, task: &Task) -> Result<Vec<Example>> {
    let train_set = examples(&splits.train, Some(task))?;
    if task.kind == Kind::Residue {
        for rows in [Some(&splits.valid), data.test.as_ref()].into_iter().flatten() {
            examples(rows, Some(task))?;
        }
    }
    Ok(train_set)
}

/// The manifest of the predictor being trained, before its training log and metrics.
fn draft_manifest(
    model: &ReprogrammedModel,
    data: &Datasets,
    spec: &TrainSpec,
    task: &Task,
    splits: &Splits,
) -> Manifest {
    let (hyper, all, kind) = (&spec.hyper, &data.train, task.kind);
    Manifest {
        format: MANIFEST_FORMAT.into(),
        name: spec.name.clone(),
        kind,
        labels: task.labels.clone(),
        positive_label: task.positive.clone(),
        label_mean: (kind == Kind::Regression).then_some(task.mean),
        label_std: (kind == Kind::Regression).then_some(task.std),
        decision_threshold: None,
        predictor_sha256: None,
        members: Vec::new(),
        base_model: BaseModel {
            name: model.dir().file_name().map_or_else(
                || model.dir().display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            weights_sha256: model.weights_sha256().into(),
            hidden_size: model.dim(),
            vocab_size: model.encoder().config().vocab_size,
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
            train_rows: splits.train.len(),
            valid_rows: splits.valid.len(),
            valid_source: splits.valid_source.clone(),
            test_source: data.test.as_ref().map(|t| t.source.clone()),
        },
        training: TrainingLog {
            epochs_run: 0,
            best_epoch: 0,
            steps: 0,
            seconds: 0.0,
            ridge_penalty: None,
        },
        metrics: BTreeMap::new(),
        created_by: format!("r2dl {}", env!("CARGO_PKG_VERSION")),
    }
}

/// What a resumed run must share with the checkpoint's: the data, the limit, the training rows
/// and every setting but the epoch budget and the patience (which may grow on resuming).
fn run_fingerprint(manifest: &Manifest, spec: &TrainSpec, train_rows: &LabelledRows) -> Result<String> {
    let fixed = HyperParameters {
        epochs: 0,
        patience: 0,
        ..spec.hyper.clone()
    };
    let settings = serde_json::to_string(&fixed).map_err(|e| TrainError::Settings(e.to_string()))?;
    Ok(format!(
        "{}|{}|{:?}|{}",
        manifest.training_data.sha256,
        settings,
        spec.limit,
        train_rows.fingerprint()
    ))
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

#[cfg(test)]
mod tests;
