//! `manifest.json` of a predictor: what it predicts, what it was trained from and how, and how
//! well it does.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{PredictorError, Result};
use super::metrics::Metrics;

/// The manifest format this build writes for a single predictor.
pub const MANIFEST_FORMAT: &str = "r2dl-predictor/2";

/// The manifest format of an ensemble (`/2` with [`Manifest::members`]): an r2dl that reads only
/// `/2` refuses it rather than serving its first member alone.
pub const ENSEMBLE_FORMAT: &str = "r2dl-predictor/3";

/// The formats this build reads: `/1` is `/2` without the output mapping's hidden layer
/// (`hyper_parameters.head_hidden`), so it reads as a linear mapping; `/3` is an ensemble.
pub const READABLE_FORMATS: [&str; 3] = ["r2dl-predictor/1", MANIFEST_FORMAT, ENSEMBLE_FORMAT];

/// What a predictor predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Two classes: SQL gets the probability of the positive one (Float32).
    Binary,
    /// More classes: SQL gets the most probable label (Utf8).
    Multiclass,
    /// A number (Float64).
    Regression,
    /// One class per residue: SQL gets a string of the sequence's length, one class letter per
    /// residue (Utf8); the labels are single characters, [`UNLABELLED`] marks a residue
    /// without a label in training data.
    Residue,
}

/// The label character of a residue that has no label (not trained on, not scored), and the
/// output character of a position without a prediction (a terminal `*`).
pub const UNLABELLED: char = '-';

impl Kind {
    /// Every kind, in the order `--help` lists them.
    pub const ALL: [Kind; 4] = [Kind::Binary, Kind::Multiclass, Kind::Regression, Kind::Residue];
}

impl std::str::FromStr for Kind {
    type Err = String;

    /// A kind by its name (`binary`, `multiclass`, `regression`, `residue`), any case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.to_string().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let names: Vec<String> = Kind::ALL.iter().map(Kind::to_string).collect();
                format!("'{name}' is not a task kind; use one of {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Binary => "binary",
            Kind::Multiclass => "multiclass",
            Kind::Regression => "regression",
            Kind::Residue => "residue",
        })
    }
}

/// The frozen base model a predictor was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseModel {
    /// The model folder's name.
    pub name: String,
    /// SHA-256 of its `model.safetensors`.
    pub weights_sha256: String,
    /// Its hidden width d.
    pub hidden_size: usize,
    /// Its English vocabulary size |V_S|.
    pub vocab_size: usize,
}

/// How Θ was kept sparse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sparsity {
    /// `omp`: V_T re-coded over V_S by orthogonal matching pursuit.
    pub method: String,
    /// Most non-zeros per row of Θ.
    pub k: usize,
    /// Optimiser steps between re-codings.
    pub recode_every: usize,
    /// Non-zeros in the saved Θ.
    pub nonzeros: usize,
}

/// Training settings (`r2dl train` options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HyperParameters {
    /// Most passes over the training rows.
    pub epochs: usize,
    /// Sequences per optimiser step.
    pub batch_size: usize,
    /// Adam learning rate of V_T (Θ · V_S).
    pub lr_theta: f32,
    /// AdamW learning rate of the output mapping.
    pub lr_head: f32,
    /// Decoupled weight decay of the output mapping.
    pub weight_decay: f32,
    /// Non-zeros per row of Θ.
    pub k: usize,
    /// Optimiser steps between OMP re-codings of V_T.
    pub recode_every: usize,
    /// Epochs without a better validation score before stopping.
    pub patience: usize,
    /// Seed of every random choice (split, subsample, order, crops, initial output mapping).
    pub seed: u64,
    /// Seed of the `--limit` subsample and the validation hold-out when it is not `seed`: the
    /// members of an ensemble share their rows and differ in everything else (left out of the
    /// manifest when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
    /// Longest training input in residues (longer ones: a random window per epoch).
    pub max_length: usize,
    /// Share of the training rows held out for validation when no validation file is given; 0:
    /// none — every row trains, for the whole epoch budget, and the last (averaged) weights are
    /// kept (no early stopping).
    pub valid_fraction: f64,
    /// Hidden ReLU units of the output mapping (0: a linear mapping).
    #[serde(default)]
    pub head_hidden: usize,
    /// The layers whose hidden states the output mapping reads, concatenated (0 = embeddings);
    /// empty (and left out of the manifest): the last layer alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readout_layers: Vec<usize>,
    /// How both learning rates change over the step budget (left out of the manifest when
    /// constant).
    #[serde(default, skip_serializing_if = "Schedule::is_constant")]
    pub schedule: Schedule,
    /// The share of the step budget, at its end, over which the weights (V_T and the output
    /// mapping) are averaged after every step; the average is what is validated and kept. 0 (left
    /// out of the manifest): no averaging.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub average_last: f64,
    /// Where a whole-protein predictor combines the residues: before the output mapping (its
    /// features, R2DL's mean pooling; left out of the manifest) or after it (the mean or the sum
    /// of its outputs).
    #[serde(default, skip_serializing_if = "Pool::is_features")]
    pub pool: Pool,
    /// Whether the output mapping standardises its inputs by the training rows' mean and
    /// standard deviation of each feature, measured once before training (left out of the
    /// manifest when not).
    #[serde(default, skip_serializing_if = "is_false")]
    pub standardise: bool,
    /// Whether the (linear) output mapping starts from its least-squares fit on the frozen
    /// features of every training row (the penalty chosen as `ridge_folds` says), rather than
    /// from zero (left out of the manifest when not).
    #[serde(default, skip_serializing_if = "is_false")]
    pub ridge_head: bool,
    /// With `ridge_head`: the folds of the cross-validation over the training rows that
    /// chooses the fit's penalty; 0 (left out of the manifest, and what predictors trained
    /// before it had): the validation rows choose it.
    #[serde(default, skip_serializing_if = "is_zero_count")]
    pub ridge_folds: usize,
    /// Per-residue predictors: the neighbours on each side whose features the output mapping
    /// reads with each residue's own ([`super::context`]); 0 (left out of the manifest): the
    /// residue's alone.
    #[serde(default, skip_serializing_if = "is_zero_count")]
    pub context: usize,
    /// Whole-protein predictors: the stretches of equal length whose pooled features the output
    /// mapping reads side by side ([`crate::model::Readout::with_segments`]); 1 (left out of the
    /// manifest): the whole protein's mean.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub segments: usize,
}

fn one() -> usize {
    1
}

fn is_one(value: &usize) -> bool {
    *value == 1
}

fn is_zero_count(value: &usize) -> bool {
    *value == 0
}

fn is_false(value: &bool) -> bool {
    !value
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

/// How the learning rates change over the step budget (`epochs × steps per epoch`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The given rates throughout.
    #[default]
    Constant,
    /// Half a cosine from the given rates down to zero at the end of the budget.
    Cosine,
}

impl Schedule {
    fn is_constant(&self) -> bool {
        *self == Schedule::Constant
    }

    /// The factor on the learning rates at 0-based `step` of `budget` steps.
    pub fn factor(self, step: usize, budget: usize) -> f32 {
        match self {
            Schedule::Constant => 1.0,
            Schedule::Cosine => {
                let done = step.min(budget) as f64 / budget.max(1) as f64;
                (0.5 * (1.0 + (std::f64::consts::PI * done).cos())) as f32
            }
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;

    /// `constant` or `cosine`, any case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_lowercase().as_str() {
            "constant" => Ok(Schedule::Constant),
            "cosine" => Ok(Schedule::Cosine),
            _ => Err(format!("'{name}' is not a schedule; use constant or cosine")),
        }
    }
}

/// How a whole-protein predictor combines a sequence's residues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// The mean of the tokens' features is mapped to the outputs: R2DL's mean pooling.
    #[default]
    Features,
    /// The output mapping maps each residue's features, and its outputs (logits, or the
    /// standardised value) are averaged over the residues: an additive model over residues that
    /// sees each residue's own state (a substitution moves one residue's features a lot and the
    /// mean of 200 residues' features very little). No output for a sequence without residues.
    Outputs,
    /// As [`Pool::Outputs`], but the residues' outputs are summed: a substitution moves the
    /// output by its own term, not by that term divided by the sequence's length.
    Sum,
}

impl Pool {
    fn is_features(&self) -> bool {
        *self == Pool::Features
    }

    /// Whether the output mapping reads each residue ([`Pool::Outputs`], [`Pool::Sum`]).
    pub fn reads_residues(self) -> bool {
        self != Pool::Features
    }

    /// Adds the rows of `residues` (each residue's outputs, `count × width`) into `pooled`
    /// (`width` values, zeros on entry) and, for [`Pool::Outputs`], divides by their count.
    pub fn combine(self, residues: &[f32], pooled: &mut [f32]) {
        let width = pooled.len();
        for residue in residues.chunks_exact(width) {
            pooled.iter_mut().zip(residue).for_each(|(p, v)| *p += v);
        }
        let count = residues.len() / width.max(1);
        if self == Pool::Outputs && count > 0 {
            pooled.iter_mut().for_each(|p| *p /= count as f32);
        }
    }

    /// The share of a pooled output's gradient that each of `count` residues gets.
    pub fn residue_share(self, count: usize) -> f32 {
        match self {
            Pool::Outputs => 1.0 / count.max(1) as f32,
            _ => 1.0,
        }
    }
}

impl std::str::FromStr for Pool {
    type Err = String;

    /// `features`, `outputs` or `sum`, any case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_lowercase().as_str() {
            "features" => Ok(Pool::Features),
            "outputs" => Ok(Pool::Outputs),
            "sum" => Ok(Pool::Sum),
            _ => Err(format!("'{name}' is not a pooling; use features, outputs or sum")),
        }
    }
}

impl HyperParameters {
    /// The seed of the subsample and the validation hold-out.
    pub fn split_seed(&self) -> u64 {
        self.split_seed.unwrap_or(self.seed)
    }
}

impl Default for HyperParameters {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 32,
            lr_theta: 1e-2,
            lr_head: 1e-2,
            weight_decay: 1e-4,
            k: 16,
            recode_every: 10,
            patience: 3,
            seed: 1,
            split_seed: None,
            max_length: 510,
            valid_fraction: 0.1,
            head_hidden: 0,
            readout_layers: Vec::new(),
            schedule: Schedule::Constant,
            average_last: 0.0,
            pool: Pool::Features,
            standardise: false,
            ridge_head: false,
            ridge_folds: 0,
            context: 0,
            segments: 1,
        }
    }
}

/// Where the training rows came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    /// The training file or query.
    pub source: String,
    /// SHA-256 over the training rows used (`sequence \t label \n`, in order).
    pub sha256: String,
    /// Rows read from the source.
    pub rows: usize,
    /// `--limit`, when set.
    pub limit: Option<usize>,
    /// Rows trained on.
    pub train_rows: usize,
    /// Rows validated on.
    pub valid_rows: usize,
    /// The validation file or query, or `split of train`.
    pub valid_source: String,
    /// The test file or query, if any.
    pub test_source: Option<String>,
}

/// What training took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingLog {
    /// Epochs run.
    pub epochs_run: usize,
    /// The epoch whose parameters were kept (1-based).
    pub best_epoch: usize,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Wall-clock seconds of the training epochs (validation included).
    pub seconds: f64,
    /// The penalty of the least-squares fit the output mapping started from (`--ridge-head`;
    /// left out of the manifest otherwise). A best epoch of 0 means that fit was kept as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ridge_penalty: Option<f64>,
}

/// A predictor's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The SQL function is `predict_<name>`.
    pub name: String,
    /// What it predicts.
    pub kind: Kind,
    /// Class labels in output order (empty for regression).
    #[serde(default)]
    pub labels: Vec<String>,
    /// The class whose probability a binary predictor returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_label: Option<String>,
    /// Regression targets are learned standardised: `value = output · label_std + label_mean`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_mean: Option<f64>,
    /// See `label_mean`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_std: Option<f64>,
    /// Binary tasks: the P(positive) at or above which a row is called positive — the cut that
    /// maximised the MCC on the validation rows (absent in older predictors: 0.5 applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_threshold: Option<f64>,
    /// SHA-256 of the predictor's `predictor.safetensors`: written by [`super::Predictor::save`],
    /// verified by [`super::Predictor::load`], so weights changed or damaged after training are an
    /// error (absent in predictors written before r2dl wrote it: those load unverified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictor_sha256: Option<String>,
    /// The further members of an ensemble (format [`ENSEMBLE_FORMAT`]): this folder is the first
    /// member, these are the others, and `predict_<name>` averages the outputs of all of them.
    /// Empty (and left out) for a single predictor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
    /// The frozen base model.
    pub base_model: BaseModel,
    /// Θ's sparsity.
    pub sparsity: Sparsity,
    /// Training settings.
    pub hyper_parameters: HyperParameters,
    /// The training rows.
    pub training_data: TrainingData,
    /// What training took.
    pub training: TrainingLog,
    /// Metrics by split (`valid`, `test`). An undefined (NaN or infinite) metric is left out when
    /// written: JSON has no NaN, and a `null` would make the manifest unreadable.
    #[serde(serialize_with = "finite_metrics")]
    pub metrics: BTreeMap<String, Metrics>,
    /// The r2dl version that wrote it.
    pub created_by: String,
}

/// A further member of an ensemble: a predictor folder inside the ensemble's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its folder, relative to the ensemble's (`members/2`).
    pub dir: String,
    /// SHA-256 of its `manifest.json` (which holds the SHA-256 of its weights), so that the
    /// ensemble's manifest pins every member's weights.
    pub manifest_sha256: String,
}

impl Member {
    /// The folder of member `index` (1-based; the first member is the ensemble's own folder).
    pub fn dir_of(index: usize) -> String {
        format!("members/{index}")
    }
}

/// Serialises metrics by split without their non-finite values.
fn finite_metrics<S: serde::Serializer>(metrics: &BTreeMap<String, Metrics>, serializer: S) -> Result<S::Ok, S::Error> {
    let finite: BTreeMap<&String, BTreeMap<&String, f64>> = metrics
        .iter()
        .map(|(split, m)| {
            (
                split,
                m.iter().filter(|(_, v)| v.is_finite()).map(|(k, &v)| (k, v)).collect(),
            )
        })
        .collect();
    serde::Serialize::serialize(&finite, serializer)
}

impl Manifest {
    /// Reads and checks `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| PredictorError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |message: String| PredictorError::Manifest {
            path: path.to_path_buf(),
            message,
        };
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if !READABLE_FORMATS.contains(&manifest.format.as_str()) {
            return Err(bad(format!(
                "format is '{}'; this r2dl reads {}",
                manifest.format,
                READABLE_FORMATS.map(|f| format!("'{f}'")).join(" and ")
            )));
        }
        if !is_function_name(&manifest.name) {
            return Err(bad(format!(
                "name '{}' is not usable in `predict_<name>`: use lower-case letters, digits and _",
                manifest.name
            )));
        }
        let is_ensemble = manifest.format == ENSEMBLE_FORMAT;
        match (is_ensemble, manifest.members.is_empty()) {
            (true, true) => return Err(bad(format!("format '{ENSEMBLE_FORMAT}' (an ensemble) needs members"))),
            (false, false) => {
                return Err(bad(format!(
                    "format '{}' cannot list members; an ensemble's format is '{ENSEMBLE_FORMAT}'",
                    manifest.format
                )));
            }
            _ => {}
        }
        if let Some(member) = manifest.members.iter().find(|m| !is_member_dir(&m.dir)) {
            return Err(bad(format!(
                "member folder '{}' is not a relative path inside the predictor's folder",
                member.dir
            )));
        }
        if let Some(layer) = crate::model::repeated_layer(&manifest.hyper_parameters.readout_layers) {
            return Err(bad(format!("readout_layers names layer {layer} twice")));
        }
        let context = manifest.hyper_parameters.context;
        if context > super::context::MAX_CONTEXT || (context > 0 && manifest.kind != Kind::Residue) {
            return Err(bad(format!(
                "context is {context}; it is for per-residue predictors, at most {}",
                super::context::MAX_CONTEXT
            )));
        }
        let segments = manifest.hyper_parameters.segments;
        if !(1..=crate::model::MAX_SEGMENTS).contains(&segments)
            || (segments > 1 && (manifest.kind == Kind::Residue || manifest.hyper_parameters.pool.reads_residues()))
        {
            return Err(bad(format!(
                "segments is {segments}; it is 1 to {} and pools a whole-protein predictor's features",
                crate::model::MAX_SEGMENTS
            )));
        }
        let classes = manifest.labels.len();
        match manifest.kind {
            Kind::Binary if classes != 2 => Err(bad(format!("a binary predictor needs 2 labels, not {classes}"))),
            Kind::Binary
                if !manifest
                    .positive_label
                    .as_ref()
                    .is_some_and(|p| manifest.labels.contains(p)) =>
            {
                Err(bad("a binary predictor needs a positive_label among its labels".into()))
            }
            Kind::Multiclass if classes < 2 => Err(bad(format!("a multi-class predictor needs labels, not {classes}"))),
            Kind::Residue if classes < 2 => Err(bad(format!("a per-residue predictor needs labels, not {classes}"))),
            Kind::Residue
                if manifest
                    .labels
                    .iter()
                    .any(|l| l.chars().count() != 1 || l.starts_with(UNLABELLED)) =>
            {
                Err(bad(format!(
                    "a per-residue predictor's labels are single characters other than '{UNLABELLED}', not {:?}",
                    manifest.labels
                )))
            }
            Kind::Regression if manifest.label_mean.is_none() || manifest.label_std.is_none() => {
                Err(bad("a regression predictor needs label_mean and label_std".into()))
            }
            _ => Ok(manifest),
        }
    }

    /// Width of the output mapping: one per class, or 1 for regression.
    pub fn outputs(&self) -> usize {
        match self.kind {
            Kind::Regression => 1,
            _ => self.labels.len(),
        }
    }

    /// Width of what the output mapping reads: d for each readout layer, for the residue and
    /// each of its `context` neighbours on either side, or for each segment pooled.
    pub fn feature_width(&self) -> usize {
        let hyper = &self.hyper_parameters;
        self.base_model.hidden_size * hyper.readout_layers.len().max(1) * (2 * hyper.context + 1) * hyper.segments
    }

    /// Index of the positive label (binary predictors).
    pub fn positive_index(&self) -> Option<usize> {
        let positive = self.positive_label.as_ref()?;
        self.labels.iter().position(|l| l == positive)
    }
}

/// Whether `dir` names a folder inside the predictor's own: relative, without `..`.
fn is_member_dir(dir: &str) -> bool {
    let path = Path::new(dir);
    !dir.is_empty() && path.components().all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Whether `name` makes a plain SQL identifier after `predict_`.
pub fn is_function_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_name_and_say_which_exist() {
        for kind in Kind::ALL {
            assert_eq!(kind.to_string().parse::<Kind>(), Ok(kind));
            assert_eq!(kind.to_string().to_uppercase().parse::<Kind>(), Ok(kind));
        }
        let error = "regresion".parse::<Kind>().unwrap_err();
        assert!(error.contains("binary, multiclass, regression, residue"), "{error}");
    }

    #[test]
    fn the_cosine_schedule_falls_from_one_to_zero_and_the_constant_one_stays() {
        let cosine = |step| Schedule::Cosine.factor(step, 10);
        assert_eq!((cosine(0), cosine(10), cosine(20)), (1.0, 0.0, 0.0));
        assert!((cosine(5) - 0.5).abs() < 1e-6);
        assert!((1..=10).all(|step| cosine(step) < cosine(step - 1)));
        assert!((0..20).all(|step| Schedule::Constant.factor(step, 10) == 1.0));
        assert_eq!("Cosine".parse::<Schedule>(), Ok(Schedule::Cosine));
        assert!("linear".parse::<Schedule>().unwrap_err().contains("constant or cosine"));
    }

    #[test]
    fn settings_of_older_manifests_read_as_constant_and_unaveraged_and_are_written_the_same() {
        let defaults = HyperParameters::default();
        let mut json = serde_json::to_value(&defaults).unwrap();
        let fields = json.as_object_mut().unwrap();
        assert!(!fields.contains_key("schedule") && !fields.contains_key("average_last"));
        fields.remove("head_hidden");
        assert_eq!(serde_json::from_value::<HyperParameters>(json).unwrap(), defaults);
        let tuned = HyperParameters {
            schedule: Schedule::Cosine,
            average_last: 0.5,
            ..defaults
        };
        let json = serde_json::to_string(&tuned).unwrap();
        assert!(json.contains(r#""schedule":"cosine""#) && json.contains(r#""average_last":0.5"#));
        assert_eq!(serde_json::from_str::<HyperParameters>(&json).unwrap(), tuned);
    }
}
