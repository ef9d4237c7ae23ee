//! Trained predictors: a sparse Θ and an output mapping on top of the frozen base model, stored as
//! a folder (`manifest.json` + `predictor.safetensors`) and served as `predict_<name>()` in SQL.

pub mod catalog;
pub mod context;
mod error;
mod head;
mod manifest;
pub mod metrics;
pub mod sov;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

pub use catalog::{BrokenEntry, Catalog, CatalogEntry, UDFS_DIR, catalog_dirs};
pub use error::{BaseModelMismatch, PredictorError, Result};
pub use head::{Dense, FeatureMoments, Head, HeadGradients, InputScaling, softmax};
pub use manifest::{
    BaseModel, ENSEMBLE_FORMAT, HyperParameters, Kind, MANIFEST_FORMAT, Manifest, Member, Pool, READABLE_FORMATS,
    Schedule, Sparsity, TrainingData, TrainingLog, UNLABELLED, is_function_name,
};

use crate::model::{
    Embeddings, InvalidResidue, NUM_RESIDUES, Readout, ReprogrammedModel, ResidueOutputs, SparseRow, Theta,
};

/// The manifest's file name in a predictor folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The weights' file name in a predictor folder.
pub const WEIGHTS_FILE: &str = "predictor.safetensors";

/// A trained predictor: manifest, Θ and output mapping; an ensemble also holds its further
/// members, whose outputs are averaged with this one's.
#[derive(Debug, Clone)]
pub struct Predictor {
    /// What it is and how it was made (an ensemble's: its metrics are the ensemble's).
    pub manifest: Manifest,
    /// The reprogrammer.
    pub theta: Theta,
    /// The output mapping.
    pub head: Head,
    /// The other members of an ensemble (each with its own Θ and output mapping, so its own
    /// encoder pass), in the order of `manifest.members`; empty for a single predictor.
    pub further_members: Vec<Predictor>,
}

/// Predictions for a column of sequences: `width` outputs per row (class probabilities, or one
/// regression value), and which rows have them.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// Outputs per row.
    pub width: usize,
    /// `rows × width`, zeros where a row has none.
    pub values: Vec<f32>,
    /// Whether each row has outputs (NULL in, or NULL by the invalid-residue policy: none).
    pub valid: Vec<bool>,
}

impl Predictions {
    /// The element-wise mean of `first` and `rest` (the predictions of an ensemble's members for
    /// the same rows); a row has outputs where every part has them.
    pub fn mean(first: Predictions, rest: Vec<Predictions>) -> Predictions {
        let count = (1 + rest.len()) as f32;
        let mut sum = first;
        for part in rest {
            sum.values.iter_mut().zip(&part.values).for_each(|(s, v)| *s += v);
            sum.valid.iter_mut().zip(&part.valid).for_each(|(s, &v)| *s &= v);
        }
        for (row, &valid) in sum.values.chunks_exact_mut(sum.width.max(1)).zip(&sum.valid) {
            row.iter_mut().for_each(|v| *v = if valid { *v / count } else { 0.0 });
        }
        sum
    }
}

/// The element-wise mean of the per-residue outputs `first` and `rest` of the same rows (an
/// ensemble's members'); a row has outputs where every part has them.
pub fn mean_residue_outputs(first: ResidueOutputs, rest: Vec<ResidueOutputs>) -> ResidueOutputs {
    let count = (1 + rest.len()) as f32;
    let mut sum = first;
    for part in rest {
        for (total, row) in sum.rows.iter_mut().zip(part.rows) {
            match (total.as_mut(), row) {
                (Some(total), Some(row)) => total.iter_mut().zip(&row).for_each(|(s, v)| *s += v),
                _ => *total = None,
            }
        }
    }
    for row in sum.rows.iter_mut().flatten() {
        row.iter_mut().for_each(|v| *v /= count);
    }
    sum
}

impl Predictor {
    /// Reads the predictor folder `dir` (an ensemble's with its members) and checks its files
    /// against each other.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut predictor = Self::load_one(dir)?;
        let members = predictor.manifest.members.clone();
        for member in &members {
            let member_dir = dir.join(&member.dir);
            let manifest_path = member_dir.join(MANIFEST_FILE);
            let actual = weights_sha256(&manifest_path)?;
            let bad = |message: String| PredictorError::Manifest {
                path: manifest_path.clone(),
                message,
            };
            if !actual.eq_ignore_ascii_case(&member.manifest_sha256) {
                return Err(bad(format!(
                    "its SHA-256 is {actual}, but the ensemble's {MANIFEST_FILE} says {}: the member was \
                     changed or damaged after training; restore it or retrain the ensemble",
                    member.manifest_sha256
                )));
            }
            let loaded = Self::load_one(&member_dir)?;
            let (first, other) = (&predictor.manifest, &loaded.manifest);
            if !other.members.is_empty() {
                return Err(bad("an ensemble's member cannot itself be an ensemble".into()));
            }
            if (
                &other.name,
                other.kind,
                &other.labels,
                &other.positive_label,
                &other.base_model,
            ) != (
                &first.name,
                first.kind,
                &first.labels,
                &first.positive_label,
                &first.base_model,
            ) {
                return Err(bad(format!(
                    "this member predicts something else than the ensemble '{}' (its name, kind, labels or \
                     base model differ)",
                    first.name
                )));
            }
            predictor.further_members.push(loaded);
        }
        Ok(predictor)
    }

    /// Reads one predictor's files: its manifest and weights, checked against each other.
    fn load_one(dir: &Path) -> Result<Self> {
        let manifest = Manifest::read(&dir.join(MANIFEST_FILE))?;
        let weights_path = dir.join(WEIGHTS_FILE);
        let weights = WeightsFile::read(weights_path.clone())?;
        if let Some(expected) = &manifest.predictor_sha256 {
            let actual = weights_sha256(&weights_path)?;
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(PredictorError::Weights {
                    path: weights_path,
                    message: format!(
                        "its SHA-256 is {actual}, but {MANIFEST_FILE} says {expected}: the weights were \
                         changed or damaged after training; restore them or retrain"
                    ),
                });
            }
        }
        let theta = weights.theta(manifest.base_model.vocab_size)?;
        let head = weights.head(&manifest)?;
        let theta_values = theta.rows().iter().flat_map(|row| &row.values);
        let head_values = head.parameters().into_iter().flat_map(|(_, values, _)| values);
        if let Some(bad) = theta_values.chain(head_values).find(|v| !v.is_finite()) {
            return Err(PredictorError::Weights {
                path: dir.join(WEIGHTS_FILE),
                message: format!("holds {bad}: the weights are damaged (or the training diverged); retrain it"),
            });
        }
        Ok(Self {
            manifest,
            theta,
            head,
            further_members: Vec::new(),
        })
    }

    /// This predictor and the further members of its ensemble, in order.
    pub fn members(&self) -> impl Iterator<Item = &Predictor> {
        std::iter::once(self).chain(&self.further_members)
    }

    /// Writes `manifest.json` and `predictor.safetensors` into `dir` (created if needed); an
    /// ensemble also writes each further member into its folder `members/<i>` and pins its
    /// manifest's SHA-256 in the ensemble's.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut members = Vec::with_capacity(self.further_members.len());
        for (i, member) in self.further_members.iter().enumerate() {
            let member_dir = Member::dir_of(i + 2);
            let single = Predictor {
                manifest: Manifest {
                    format: MANIFEST_FORMAT.into(),
                    members: Vec::new(),
                    ..member.manifest.clone()
                },
                further_members: Vec::new(),
                ..member.clone()
            };
            single.save(&dir.join(&member_dir))?;
            members.push(Member {
                manifest_sha256: weights_sha256(&dir.join(&member_dir).join(MANIFEST_FILE))?,
                dir: member_dir,
            });
        }
        let format = if members.is_empty() {
            MANIFEST_FORMAT
        } else {
            ENSEMBLE_FORMAT
        };
        let manifest = Manifest {
            format: format.into(),
            members,
            ..self.manifest.clone()
        };
        self.save_one(dir, manifest)
    }

    /// Writes this predictor's weights and `manifest` (completed by the weights' SHA-256).
    fn save_one(&self, dir: &Path, manifest: Manifest) -> Result<()> {
        let io = |path: PathBuf| move |source| PredictorError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        let path = dir.join(WEIGHTS_FILE);
        let weights_error = |e: candle_core::Error| PredictorError::Weights {
            path: path.clone(),
            message: e.to_string(),
        };
        let mut offsets = vec![0u32];
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        for row in self.theta.rows() {
            indices.extend_from_slice(&row.indices);
            values.extend_from_slice(&row.values);
            offsets.push(indices.len() as u32);
        }
        let cpu = &Device::Cpu;
        let mut layers = vec![("head", &self.head.output)];
        layers.extend(self.head.hidden.as_ref().map(|h| ("head.hidden", h)));
        let tensors: HashMap<String, Tensor> = [
            ("theta.offsets".to_string(), Tensor::new(offsets, cpu)),
            ("theta.indices".to_string(), Tensor::new(indices, cpu)),
            ("theta.values".to_string(), Tensor::new(values, cpu)),
        ]
        .into_iter()
        .chain(layers.into_iter().flat_map(|(prefix, layer)| {
            [
                (
                    format!("{prefix}.weight"),
                    Tensor::from_slice(&layer.weight, (layer.outputs(), layer.inputs), cpu),
                ),
                (format!("{prefix}.bias"), Tensor::new(layer.bias.as_slice(), cpu)),
            ]
        }))
        .chain(self.head.input.iter().flat_map(|input| {
            [
                ("head.input.shift".to_string(), Tensor::new(input.shift.as_slice(), cpu)),
                ("head.input.scale".to_string(), Tensor::new(input.scale.as_slice(), cpu)),
            ]
        }))
        .map(|(name, tensor)| tensor.map(|t| (name, t)))
        .collect::<candle_core::Result<_>>()
        .map_err(weights_error)?;
        write_atomically(&path, |tmp| {
            candle_core::safetensors::save(&tensors, tmp).map_err(weights_error)
        })?;
        let manifest = Manifest {
            predictor_sha256: Some(weights_sha256(&path)?),
            ..manifest
        };
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = serde_json::to_string_pretty(&manifest).map_err(|e| PredictorError::Manifest {
            path: manifest_path.clone(),
            message: e.to_string(),
        })?;
        write_atomically(&manifest_path, |tmp| {
            std::fs::write(tmp, format!("{text}\n")).map_err(io(tmp.to_path_buf()))
        })
    }

    /// Checks that `model` is the base model this predictor (and every member of its ensemble)
    /// was trained on.
    pub fn check_base_model(&self, model: &ReprogrammedModel) -> Result<()> {
        self.members().try_for_each(|member| member.check_base_model_one(model))
    }

    /// [`Self::check_base_model`] of this member alone.
    fn check_base_model_one(&self, model: &ReprogrammedModel) -> Result<()> {
        let base = &self.manifest.base_model;
        let vocab = model.encoder().config().vocab_size;
        let mismatch = |actual: String| {
            PredictorError::BaseModel(Box::new(BaseModelMismatch {
                name: self.manifest.name.clone(),
                expected_name: base.name.clone(),
                expected: base.weights_sha256.clone(),
                model: model.dir().to_path_buf(),
                actual,
            }))
        };
        if base.hidden_size != model.dim() || base.vocab_size != vocab {
            return Err(mismatch(format!("d = {} and |V_S| = {vocab}", model.dim())));
        }
        if base.weights_sha256 != model.weights_sha256() {
            return Err(mismatch(model.weights_sha256().to_string()));
        }
        let stored = &self.manifest.hyper_parameters.readout_layers;
        if !stored.is_empty() {
            Readout::of_layers(stored, model.encoder().config().num_hidden_layers).map_err(|message| {
                PredictorError::Readout {
                    name: self.manifest.name.clone(),
                    message,
                }
            })?;
        }
        Ok(())
    }

    /// The hidden states the output mapping reads, pooled in the stored segments.
    pub fn readout(&self) -> Readout {
        let hyper = &self.manifest.hyper_parameters;
        let layers = Readout::from_stored(&hyper.readout_layers);
        // the manifest's check keeps `segments` within range
        layers.clone().with_segments(hyper.segments).unwrap_or(layers)
    }

    /// `base` with this predictor's Θ and readout: the model its output mapping reads.
    pub fn model(&self, base: &ReprogrammedModel) -> crate::model::Result<ReprogrammedModel> {
        Ok(base.with_theta(&self.theta)?.with_readout(self.readout()))
    }

    /// The output mapping applied to pooled vectors: class probabilities (softmax), or the
    /// regression value in label units.
    pub fn outputs(&self, embeddings: &Embeddings) -> Predictions {
        self.finish(self.head.forward(&embeddings.values), embeddings.valid.clone())
    }

    /// Whether the output mapping reads each residue and its outputs are averaged or summed
    /// ([`Pool::reads_residues`]): then predictions come from [`Self::predict`], not from embeddings.
    pub fn pools_outputs(&self) -> bool {
        self.manifest.hyper_parameters.pool.reads_residues()
    }

    /// The output mapping applied to every residue's features, averaged or summed over each
    /// sequence's residues ([`Pool::reads_residues`]); a sequence without residues has no outputs.
    fn residue_pooled_outputs<'a>(
        &self,
        model: &ReprogrammedModel,
        sequences: impl IntoIterator<Item = Option<&'a str>>,
        policy: InvalidResidue,
    ) -> Result<Predictions> {
        let width = self.manifest.outputs();
        let map = |states: &[f32], _: &[usize]| self.head.forward(states);
        let residues = model.residue_outputs(sequences, policy, width, &map)?;
        let mut values = vec![0f32; residues.rows.len() * width];
        let mut valid = Vec::with_capacity(residues.rows.len());
        let pool = self.manifest.hyper_parameters.pool;
        for (pooled, row) in values.chunks_exact_mut(width).zip(&residues.rows) {
            let row = row.as_deref().filter(|r| !r.is_empty());
            if let Some(row) = row {
                pool.combine(row, pooled);
            }
            valid.push(row.is_some());
        }
        Ok(self.finish(values, valid))
    }

    /// Raw outputs of the mapping (`rows × width`) as predictions: class probabilities
    /// (softmax), or the regression value in label units; zeros where a row is not `valid`.
    fn finish(&self, mut values: Vec<f32>, valid: Vec<bool>) -> Predictions {
        let width = self.manifest.outputs();
        for (row, valid) in values.chunks_exact_mut(width).zip(&valid) {
            if !valid {
                row.fill(0.0);
            } else if self.manifest.kind == Kind::Regression {
                let (mean, std) = (
                    self.manifest.label_mean.unwrap_or(0.0),
                    self.manifest.label_std.unwrap_or(1.0),
                );
                row[0] = (f64::from(row[0]) * std + mean) as f32;
            } else {
                head::softmax(row);
            }
        }
        Predictions { width, values, valid }
    }

    /// Predictions for `sequences` by the base model `base`: each member's with its Θ, averaged
    /// over the members of an ensemble (probabilities, or regression values).
    pub fn predict_averaged(
        &self,
        base: &ReprogrammedModel,
        sequences: &[Option<&str>],
        policy: InvalidResidue,
    ) -> Result<Predictions> {
        let predict = |member: &Predictor| member.predict(&member.model(base)?, sequences.iter().copied(), policy);
        let first = predict(self)?;
        let rest = self.further_members.iter().map(predict).collect::<Result<Vec<_>>>()?;
        Ok(Predictions::mean(first, rest))
    }

    /// Per-residue class probabilities of `sequences` by the base model `base`, averaged over
    /// the members of an ensemble (see [`Self::predict_residues`]).
    pub fn predict_residues_averaged(
        &self,
        base: &ReprogrammedModel,
        sequences: &[Option<&str>],
        policy: InvalidResidue,
    ) -> Result<ResidueOutputs> {
        let predict =
            |member: &Predictor| member.predict_residues(&member.model(base)?, sequences.iter().copied(), policy);
        let first = predict(self)?;
        let rest = self.further_members.iter().map(predict).collect::<Result<Vec<_>>>()?;
        Ok(mean_residue_outputs(first, rest))
    }

    /// Predictions for `sequences`, by `model` (the base model with this predictor's Θ); this
    /// member's alone (see [`Self::predict_averaged`] for an ensemble's).
    pub fn predict<'a>(
        &self,
        model: &ReprogrammedModel,
        sequences: impl IntoIterator<Item = Option<&'a str>>,
        policy: InvalidResidue,
    ) -> Result<Predictions> {
        if self.pools_outputs() {
            return self.residue_pooled_outputs(model, sequences, policy);
        }
        Ok(self.outputs(&model.embed(sequences, policy)?))
    }

    /// Class probabilities of every residue of each sequence (per-residue predictors): the
    /// output mapping applied to each residue's features (with its neighbours' when the
    /// manifest's `context` says so), then the softmax; `labels`
    /// order, by `model` (the base model with this predictor's Θ).
    pub fn predict_residues<'a>(
        &self,
        model: &ReprogrammedModel,
        sequences: impl IntoIterator<Item = Option<&'a str>>,
        policy: InvalidResidue,
    ) -> Result<ResidueOutputs> {
        let width = self.manifest.outputs();
        let radius = self.manifest.hyper_parameters.context;
        let probabilities = |states: &[f32], lengths: &[usize]| {
            let segments = context::residue_segments(lengths);
            let features = context::expand(states, model.feature_width(), &segments, radius);
            let mut values = self.head.forward(&features);
            values.chunks_exact_mut(width).for_each(head::softmax);
            values
        };
        Ok(model.residue_outputs(sequences, policy, width, &probabilities)?)
    }

    /// The most probable class letter of each residue, from its probabilities (`residues ×
    /// labels`), with [`UNLABELLED`] appended for a terminal `*` of `sequence`, so that the
    /// string has one character per character of the sequence.
    pub fn residue_classes(&self, sequence: &str, probabilities: &[f32]) -> String {
        let labels = &self.manifest.labels;
        let mut out: String = probabilities
            .chunks_exact(labels.len())
            .map(|p| {
                let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
                labels[best].chars().next().unwrap_or(UNLABELLED)
            })
            .collect();
        if sequence.ends_with('*') {
            out.push(UNLABELLED);
        }
        out
    }
}

/// SHA-256 of a predictor's file (its weights, or a member's manifest), as a manifest records it.
fn weights_sha256(path: &Path) -> Result<String> {
    crate::model::sha256_file(path).map_err(|e| PredictorError::Weights {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes `path` through a temporary file in the same folder and a rename, so that a crash
/// never leaves half a file.
pub(crate) fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    // safetensors makes its files readable by their owner only: give the file the permissions of
    // one created the usual way (the umask's)
    let io = |source| PredictorError::Io {
        path: tmp.clone(),
        source,
    };
    let usual = std::fs::File::create(&tmp)
        .and_then(|file| file.metadata())
        .map_err(io)?
        .permissions();
    write(&tmp)?;
    std::fs::set_permissions(&tmp, usual).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|source| PredictorError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The tensors of a predictor's weights file, read with checks whose errors name the file.
struct WeightsFile {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
}

impl WeightsFile {
    fn read(path: PathBuf) -> Result<Self> {
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| match e {
            candle_core::Error::Io(source) => PredictorError::Io {
                path: path.clone(),
                source,
            },
            other => PredictorError::Weights {
                path: path.clone(),
                message: other.to_string(),
            },
        })?;
        Ok(Self { path, tensors })
    }

    fn bad(&self, message: String) -> PredictorError {
        PredictorError::Weights {
            path: self.path.clone(),
            message,
        }
    }

    /// Tensor `name`, which must have `dtype` and `rank`.
    fn get(&self, name: &str, dtype: DType, rank: usize) -> Result<&Tensor> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| self.bad(format!("no tensor '{name}'")))?;
        if tensor.dtype() != dtype || tensor.rank() != rank {
            return Err(self.bad(format!(
                "'{name}' is {:?} of shape {:?}, expected {dtype:?} of rank {rank}",
                tensor.dtype(),
                tensor.dims()
            )));
        }
        Ok(tensor)
    }

    fn u32s(&self, name: &str) -> Result<Vec<u32>> {
        self.get(name, DType::U32, 1)?
            .to_vec1()
            .map_err(|e| self.bad(e.to_string()))
    }

    fn f32s(&self, name: &str) -> Result<Vec<f32>> {
        self.get(name, DType::F32, 1)?
            .to_vec1()
            .map_err(|e| self.bad(e.to_string()))
    }

    /// Θ from its compressed rows (`theta.offsets`, `theta.indices`, `theta.values`).
    fn theta(&self, vocab_size: usize) -> Result<Theta> {
        let (offsets, indices, values) = (
            self.u32s("theta.offsets")?,
            self.u32s("theta.indices")?,
            self.f32s("theta.values")?,
        );
        if offsets.len() != NUM_RESIDUES + 1 || indices.len() != values.len() {
            return Err(self.bad(format!(
                "Θ has {} offsets, {} indices and {} values; expected {} offsets and as many indices as values",
                offsets.len(),
                indices.len(),
                values.len(),
                NUM_RESIDUES + 1
            )));
        }
        let mut rows = Vec::with_capacity(NUM_RESIDUES);
        for pair in offsets.windows(2) {
            let (start, end) = (pair[0] as usize, pair[1] as usize);
            if start > end || end > indices.len() {
                return Err(self.bad(format!("Θ offsets are not increasing within 0..={}", indices.len())));
            }
            rows.push(SparseRow {
                indices: indices[start..end].to_vec(),
                values: values[start..end].to_vec(),
            });
        }
        Theta::from_rows(rows, vocab_size).map_err(|e| self.bad(e.to_string()))
    }

    /// A layer `[outputs, inputs]` from its two tensors, checked against the manifest.
    fn dense(&self, prefix: &str, outputs: usize, inputs: usize) -> Result<Dense> {
        let weight = self.get(&format!("{prefix}.weight"), DType::F32, 2)?;
        let bias = self.f32s(&format!("{prefix}.bias"))?;
        if weight.dims() != [outputs, inputs] || bias.len() != outputs {
            return Err(self.bad(format!(
                "{prefix}.weight is {:?} with {} biases; the manifest needs [{outputs}, {inputs}] and {outputs}",
                weight.dims(),
                bias.len(),
            )));
        }
        let weight = weight
            .flatten_all()
            .and_then(|w| w.to_vec1())
            .map_err(|e| self.bad(e.to_string()))?;
        Ok(Dense { weight, bias, inputs })
    }

    /// The output mapping the manifest describes: linear, or with a hidden layer.
    fn head(&self, manifest: &Manifest) -> Result<Head> {
        let (dim, units, outputs) = (
            manifest.feature_width(),
            manifest.hyper_parameters.head_hidden,
            manifest.outputs(),
        );
        if units == 0 {
            if self.tensors.contains_key("head.hidden.weight") {
                return Err(
                    self.bad("has a hidden layer (head.hidden.weight) but the manifest's head_hidden is 0".into())
                );
            }
            return Ok(Head {
                input: self.input_scaling(manifest)?,
                hidden: None,
                output: self.dense("head", outputs, dim)?,
            });
        }
        Ok(Head {
            input: self.input_scaling(manifest)?,
            hidden: Some(self.dense("head.hidden", units, dim)?),
            output: self.dense("head", outputs, units)?,
        })
    }

    /// The standardisation of the mapping's inputs when the manifest says it has one
    /// (`head.input.shift`, `head.input.scale`, a value per feature).
    fn input_scaling(&self, manifest: &Manifest) -> Result<Option<InputScaling>> {
        let stored = self.tensors.contains_key("head.input.shift");
        if stored != manifest.hyper_parameters.standardise {
            return Err(self.bad(format!(
                "{} head.input.shift but the manifest's standardise is {}",
                if stored { "has" } else { "lacks" },
                manifest.hyper_parameters.standardise
            )));
        }
        if !stored {
            return Ok(None);
        }
        let (shift, scale) = (self.f32s("head.input.shift")?, self.f32s("head.input.scale")?);
        let dim = manifest.feature_width();
        if shift.len() != dim || scale.len() != dim {
            return Err(self.bad(format!(
                "head.input.shift and head.input.scale hold {} and {} values; the manifest needs {dim}",
                shift.len(),
                scale.len()
            )));
        }
        Ok(Some(InputScaling { shift, scale }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rewrites the manifest in `dir` by `change`.
    fn edit_manifest(dir: &Path, change: impl FnOnce(&mut Manifest)) {
        let path = dir.join(MANIFEST_FILE);
        let mut manifest: Manifest = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        change(&mut manifest);
        std::fs::write(&path, serde_json::to_string(&manifest).unwrap()).unwrap();
    }

    #[test]
    fn predictions_of_members_average_where_every_member_has_them() {
        let part = |values: Vec<f32>, valid: Vec<bool>| Predictions {
            width: 2,
            values,
            valid,
        };
        let mean = Predictions::mean(
            part(vec![0.2, 0.8, 0.0, 0.0, 0.4, 0.6], vec![true, false, true]),
            vec![part(vec![0.4, 0.6, 0.5, 0.5, 0.1, 0.9], vec![true, true, true])],
        );
        let expected = [0.3, 0.7, 0.0, 0.0, 0.25, 0.75];
        assert!(
            mean.values.iter().zip(expected).all(|(v, e)| (v - e).abs() < 1e-6),
            "{mean:?}"
        );
        assert_eq!(mean.valid, [true, false, true]);
        let residues = |rows: Vec<Option<Vec<f32>>>| ResidueOutputs { width: 1, rows };
        let mean = mean_residue_outputs(
            residues(vec![Some(vec![1.0, 2.0]), None]),
            vec![
                residues(vec![Some(vec![3.0, 4.0]), Some(vec![1.0])]),
                residues(vec![Some(vec![5.0, 0.0]), Some(vec![1.0])]),
            ],
        );
        assert_eq!(mean.rows, [Some(vec![3.0, 2.0]), None]);
    }

    #[test]
    fn an_ensemble_round_trips_and_its_members_are_pinned() {
        let shipped = Predictor::load(Path::new("udfs/toxicity")).unwrap();
        let mut second = shipped.clone();
        second.head.output.bias[0] += 0.5;
        let ensemble = Predictor {
            further_members: vec![second.clone()],
            ..shipped.clone()
        };
        let dir = tempfile::tempdir().unwrap();
        ensemble.save(dir.path()).unwrap();
        let loaded = Predictor::load(dir.path()).unwrap();
        assert_eq!(loaded.manifest.format, ENSEMBLE_FORMAT);
        assert_eq!(loaded.manifest.members.len(), 1);
        assert_eq!(loaded.manifest.members[0].dir, "members/2");
        assert_eq!(loaded.further_members.len(), 1);
        assert_eq!((&loaded.theta, &loaded.head), (&shipped.theta, &shipped.head));
        let member = &loaded.further_members[0];
        assert_eq!((&member.theta, &member.head), (&second.theta, &second.head));
        // the member's folder is a single predictor of its own
        let alone = Predictor::load(&dir.path().join("members/2")).unwrap();
        assert_eq!(
            (alone.manifest.format.as_str(), alone.further_members.len()),
            (MANIFEST_FORMAT, 0)
        );

        // a member changed after training is refused, naming its manifest
        let member_dir = dir.path().join("members/2");
        edit_manifest(&member_dir, |m| m.decision_threshold = Some(0.9));
        let message = Predictor::load(dir.path()).unwrap_err().to_string();
        assert!(
            message.contains("members/2") && message.contains("SHA-256") && message.contains("retrain the ensemble"),
            "{message}"
        );
        // so is a member of another task, even with its checksum updated
        edit_manifest(&member_dir, |m| {
            m.decision_threshold = None;
            m.labels.reverse();
            m.positive_label = Some(m.labels[1].clone());
        });
        let sha = crate::model::sha256_file(&member_dir.join(MANIFEST_FILE)).unwrap();
        edit_manifest(dir.path(), |m| m.members[0].manifest_sha256 = sha);
        let message = Predictor::load(dir.path()).unwrap_err().to_string();
        assert!(message.contains("predicts something else"), "{message}");

        // the format and the member list go together; members stay inside the folder
        edit_manifest(dir.path(), |m| m.members.clear());
        let message = Predictor::load(dir.path()).unwrap_err().to_string();
        assert!(message.contains("needs members"), "{message}");
        edit_manifest(dir.path(), |m| {
            m.members = vec![Member {
                dir: "../amp".into(),
                manifest_sha256: String::new(),
            }]
        });
        let message = Predictor::load(dir.path()).unwrap_err().to_string();
        assert!(message.contains("'../amp' is not a relative path inside"), "{message}");
        edit_manifest(dir.path(), |m| m.format = MANIFEST_FORMAT.into());
        let message = Predictor::load(dir.path()).unwrap_err().to_string();
        assert!(message.contains("cannot list members"), "{message}");
    }

    #[test]
    fn undefined_metrics_are_left_out_of_the_manifest() {
        let mut predictor = Predictor::load(Path::new("udfs/toxicity")).unwrap();
        let test = predictor.manifest.metrics.entry("test".into()).or_default();
        test.insert("auroc".into(), f64::NAN);
        test.insert("accuracy".into(), 0.5);
        let dir = tempfile::tempdir().unwrap();
        predictor.save(dir.path()).unwrap();
        let loaded = Predictor::load(dir.path()).unwrap();
        assert_eq!(loaded.manifest.metrics["test"].get("accuracy"), Some(&0.5));
        assert!(!loaded.manifest.metrics["test"].contains_key("auroc"));
    }

    #[test]
    fn weights_changed_after_training_fail_the_manifest_checksum() {
        let shipped = Predictor::load(Path::new("udfs/toxicity")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        shipped.save(dir.path()).unwrap();
        let weights = dir.path().join(WEIGHTS_FILE);
        let recorded = Manifest::read(&dir.path().join(MANIFEST_FILE))
            .unwrap()
            .predictor_sha256;
        assert_eq!(recorded, Some(crate::model::sha256_file(&weights).unwrap()));
        Predictor::load(dir.path()).unwrap();

        // the weights file replaced by another valid one (one bias nudged): refused, named
        let mut changed = shipped.clone();
        changed.head.output.bias[0] += 0.5;
        let other = tempfile::tempdir().unwrap();
        changed.save(other.path()).unwrap();
        std::fs::copy(other.path().join(WEIGHTS_FILE), &weights).unwrap();
        let message = Predictor::load(dir.path()).unwrap_err().to_string();
        assert!(
            message.contains("predictor.safetensors") && message.contains("SHA-256") && message.contains("restore"),
            "{message}"
        );
        // one flipped bit anywhere: refused before the tensors are interpreted
        let mut bytes = std::fs::read(&weights).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(other.path().join(WEIGHTS_FILE), &bytes).unwrap();
        let message = Predictor::load(other.path()).unwrap_err().to_string();
        assert!(message.contains("SHA-256"), "{message}");

        // a manifest written before the checksum existed loads unverified
        edit_manifest(dir.path(), |m| m.predictor_sha256 = None);
        assert_eq!(Predictor::load(dir.path()).unwrap().head, changed.head);
    }

    #[test]
    fn hidden_layers_round_trip_and_mismatched_shapes_or_formats_are_refused() {
        // toxicity's Θ with mappings of the last layer's 384 states (the shipped one reads every layer)
        let mut shipped = Predictor::load(Path::new("udfs/toxicity")).unwrap();
        shipped.manifest.hyper_parameters.readout_layers.clear();
        let dir = tempfile::tempdir().unwrap();

        // a linear predictor written in the first format reads back as a linear mapping
        let mut linear = shipped.clone();
        linear.head = Head::zeros(2, 384);
        linear.head.output.bias = vec![0.25, -0.25];
        linear.manifest.hyper_parameters.head_hidden = 0;
        linear.save(dir.path()).unwrap();
        edit_manifest(dir.path(), |m| m.format = READABLE_FORMATS[0].into());
        let loaded = Predictor::load(dir.path()).unwrap();
        assert_eq!(loaded.manifest.format, "r2dl-predictor/1");
        assert_eq!(loaded.head, linear.head);
        assert_eq!((loaded.head.hidden_units(), loaded.head.dim()), (0, 384));

        let mut value = 0.0f32;
        let mut predictor = shipped.clone();
        predictor.head = Head::with_hidden(2, 384, 5, || {
            value = (value + 0.37) % 1.0;
            value
        });
        predictor
            .head
            .output
            .weight
            .iter_mut()
            .enumerate()
            .for_each(|(i, w)| *w = i as f32 * 1e-3);
        predictor.manifest.format = MANIFEST_FORMAT.into();
        predictor.manifest.hyper_parameters.head_hidden = 5;
        predictor.save(dir.path()).unwrap();
        let loaded = Predictor::load(dir.path()).unwrap();
        assert_eq!((&loaded.theta, &loaded.head), (&predictor.theta, &predictor.head));
        let unhashed = |m: &Manifest| Manifest {
            predictor_sha256: None,
            ..m.clone()
        };
        assert_eq!(unhashed(&loaded.manifest), unhashed(&predictor.manifest));

        let error = |change: fn(&mut Manifest)| {
            edit_manifest(dir.path(), change);
            let message = Predictor::load(dir.path()).unwrap_err().to_string();
            predictor.save(dir.path()).unwrap();
            message
        };
        let message = error(|m| m.hyper_parameters.head_hidden = 4);
        assert!(
            message.contains("head.hidden.weight is [5, 384]") && message.contains("[4, 384]"),
            "{message}"
        );
        let message = error(|m| m.hyper_parameters.head_hidden = 0);
        assert!(message.contains("has a hidden layer"), "{message}");
        let message = error(|m| m.format = "r2dl-predictor/9".into());
        assert!(
            message.contains("'r2dl-predictor/9'") && message.contains("'r2dl-predictor/2'"),
            "{message}"
        );
        let message = error(|m| m.hyper_parameters.standardise = true);
        assert!(message.contains("lacks head.input.shift"), "{message}");
        // neighbours are for per-residue predictors; a mapping stored without them is too narrow
        let message = error(|m| m.hyper_parameters.context = 1);
        assert!(
            message.contains("context is 1") && message.contains("per-residue"),
            "{message}"
        );
        let message = error(|m| {
            m.kind = Kind::Residue;
            m.labels = vec!["C".into(), "H".into()];
            m.hyper_parameters.context = 1;
        });
        assert!(message.contains("[5, 1152]"), "{message}");
        // segments widen what the mapping reads; they are whole-protein pooling, within bounds
        let message = error(|m| m.hyper_parameters.segments = 3);
        assert!(message.contains("[1152]") || message.contains("1152"), "{message}");
        let message = error(|m| m.hyper_parameters.segments = 0);
        assert!(message.contains("segments is 0; it is 1 to 64"), "{message}");
        let message = error(|m| m.hyper_parameters.segments = 65);
        assert!(message.contains("segments is 65; it is 1 to 64"), "{message}");
        let message = error(|m| {
            m.kind = Kind::Residue;
            m.labels = vec!["C".into(), "H".into()];
            m.hyper_parameters.segments = 2;
        });
        assert!(
            message.contains("segments is 2") && message.contains("whole-protein"),
            "{message}"
        );

        // a standardised mapping round-trips, and its standardisation changes the outputs
        let mut standardised = predictor.clone();
        standardised.head.input = Some(InputScaling {
            shift: vec![0.01; 384],
            scale: vec![3.0; 384],
        });
        standardised.manifest.hyper_parameters.standardise = true;
        standardised.save(dir.path()).unwrap();
        let loaded = Predictor::load(dir.path()).unwrap();
        assert_eq!(loaded.head, standardised.head);
        // the mapping reads (x − 0.01) · 3
        let x: Vec<f32> = (0..384).map(|i| ((i * 5) % 11) as f32 * 0.1 - 0.5).collect();
        let scaled: Vec<f32> = x.iter().map(|v| (v - 0.01) * 3.0).collect();
        let outputs = loaded.head.forward(&x);
        assert!(outputs.iter().any(|v| *v != 0.0), "{outputs:?}");
        assert_eq!(outputs, predictor.head.forward(&scaled));
        edit_manifest(dir.path(), |m| m.hyper_parameters.standardise = false);
        let message = Predictor::load(dir.path()).unwrap_err().to_string();
        assert!(message.contains("has head.input.shift"), "{message}");
    }
}
