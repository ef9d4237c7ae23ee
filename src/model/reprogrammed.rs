//! The reprogrammed model: the frozen English encoder fed with protein tokens through
//! `V_T = Θ · V_S`, mean-pooled into one vector per sequence.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::batch::{Window, for_each_window_batch};
use super::checksum::sha256_file;
use super::encoder::{BertConfig, BertEncoder, PackedEncoder, mean_pool};
use super::error::{ModelError, Result};
use super::input_table::{InputTable, PAD_ROW, input_ids};
use super::pooling;
use super::readout::Readout;
use super::theta::Theta;
use super::vocab::{EnglishTokens, InvalidResidue, tokenize_residues};

/// How sequences are grouped for the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// Most padded tokens in one encoder call.
    pub token_budget: usize,
    /// Most sequences (windows) in one encoder call.
    pub max_batch: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            token_budget: 8192,
            max_batch: 128,
        }
    }
}

/// Which implementation of the encoder runs inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The packed CPU encoder (no padding, fused kernels): the default on the CPU.
    Packed,
    /// The candle encoder on padded batches: the path for CUDA.
    Candle,
}

/// One vector per input row, flat, with the rows that have none (NULL in, or NULL by policy).
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// Vector width d.
    pub dim: usize,
    /// `rows × dim` values, row-major; zeros where `valid` is false.
    pub values: Vec<f32>,
    /// Whether each row has a vector.
    pub valid: Vec<bool>,
}

impl Embeddings {
    /// The vector of row `i`, if it has one.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        self.valid[i].then(|| &self.values[i * self.dim..(i + 1) * self.dim])
    }
}

/// The frozen encoder plus one Θ: turns protein sequences into vectors.
#[derive(Debug)]
pub struct ReprogrammedModel {
    dir: PathBuf,
    weights_sha256: String,
    encoder: BertEncoder,
    english: EnglishTokens,
    /// The input table ([`InputTable`]) on the encoder's device.
    input_table: Tensor,
    /// The packed CPU encoder and `input_table` as plain rows, when the model runs on the CPU.
    packed: Option<(Arc<PackedEncoder>, InputTable)>,
    engine: Engine,
    settings: BatchSettings,
    /// The hidden states that make the features.
    readout: Readout,
}

impl ReprogrammedModel {
    /// Loads the model folder `dir` onto `device` with the one-hot Θ (see
    /// [`crate::runtime::shared_model`], which also checks the default model's published SHA-256).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let weights_sha256 = sha256_file(&dir.join("model.safetensors"))?;
        let english = EnglishTokens::from_model_dir(dir)?;
        let encoder = BertEncoder::load(dir, &config, device)?;
        let theta = Theta::one_hot(&english);
        let input_table = InputTable::tensor(&encoder, &english, &theta)?;
        let packed = match device {
            Device::Cpu => Some((
                Arc::new(PackedEncoder::from_encoder(&encoder)?),
                InputTable::from_tensor(&input_table)?,
            )),
            _ => None,
        };
        let engine = if packed.is_some() {
            Engine::Packed
        } else {
            Engine::Candle
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            weights_sha256,
            encoder,
            english,
            input_table,
            packed,
            engine,
            settings: Default::default(),
            readout: Readout::last(),
        })
    }

    /// The same encoder (sharing its weights) with another Θ (a trained predictor's).
    pub fn with_theta(&self, theta: &Theta) -> Result<Self> {
        let table = InputTable::tensor(&self.encoder, &self.english, theta)?;
        let packed = match &self.packed {
            Some((encoder, _)) => Some((Arc::clone(encoder), InputTable::from_tensor(&table)?)),
            None => None,
        };
        Ok(Self {
            dir: self.dir.clone(),
            weights_sha256: self.weights_sha256.clone(),
            encoder: self.encoder.clone(),
            english: self.english.clone(),
            input_table: table,
            packed,
            engine: self.engine,
            settings: self.settings,
            readout: self.readout.clone(),
        })
    }

    /// Chooses the encoder implementation; [`Engine::Packed`] needs the CPU.
    pub fn with_engine(mut self, engine: Engine) -> Self {
        self.engine = if self.packed.is_some() { engine } else { Engine::Candle };
        self
    }

    /// The encoder implementation in use.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Reads the hidden states `readout` names (a predictor's) instead of the current ones.
    pub fn with_readout(mut self, readout: Readout) -> Self {
        self.readout = readout;
        self
    }

    /// The hidden states the features are made of.
    pub fn readout(&self) -> &Readout {
        &self.readout
    }

    /// Width of each token's features: d for each layer the readout reads.
    pub fn feature_width(&self) -> usize {
        self.readout.count() * self.dim()
    }

    /// Width of a sequence's pooled features ([`Self::embed`]): the token features' width for
    /// each segment the readout pools in.
    pub fn pooled_width(&self) -> usize {
        self.readout.pooled_width(self.dim())
    }

    /// How sequences are batched.
    pub fn batch_settings(&self) -> BatchSettings {
        self.settings
    }

    /// Changes how sequences are batched.
    pub fn with_batch_settings(mut self, settings: BatchSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The model folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// SHA-256 of `model.safetensors`.
    pub fn weights_sha256(&self) -> &str {
        &self.weights_sha256
    }

    /// The frozen encoder.
    pub fn encoder(&self) -> &BertEncoder {
        &self.encoder
    }

    /// The packed CPU encoder and this model's input table, when the model runs on the CPU.
    pub fn packed(&self) -> Option<(&PackedEncoder, &InputTable)> {
        self.packed.as_ref().map(|(encoder, table)| (encoder.as_ref(), table))
    }

    /// The base model's special and letter tokens.
    pub fn english_tokens(&self) -> &EnglishTokens {
        &self.english
    }

    /// Width of the encoder's hidden states (d).
    pub fn dim(&self) -> usize {
        self.encoder.config().hidden_size
    }

    /// Residues in one encoder input (the model's positions less [CLS] and [SEP]).
    pub fn max_residues(&self) -> usize {
        self.encoder.config().max_tokens() - 2
    }

    /// Embeds each sequence: the mask-aware mean of its features (the last hidden state, or the
    /// readout's states) over `[CLS] residues [SEP]`, or with a readout of K segments the K
    /// means of its equal stretches. Longer sequences than [`Self::max_residues`] are cut into
    /// overlapping windows whose vectors are averaged by residue count (with segments: each
    /// token's features averaged over the windows that hold it, then pooled over the whole
    /// sequence). Results come back in input order.
    pub fn embed<'a>(
        &self,
        sequences: impl IntoIterator<Item = Option<&'a str>>,
        policy: InvalidResidue,
    ) -> Result<Embeddings> {
        self.embed_tokens(&tokenize_column(sequences, policy)?)
    }

    /// [`Self::embed`] on residue tokens (`None` rows stay without a vector).
    pub fn embed_tokens(&self, rows: &[Option<Vec<u8>>]) -> Result<Embeddings> {
        if self.readout.segments() > 1 {
            return self.embed_in_segments(rows);
        }
        let dim = self.feature_width();
        let mut values = vec![0f32; rows.len() * dim];
        let mut weights = vec![0f32; rows.len()];
        self.for_each_window_batch(rows, |batch, inputs| {
            let pooled = self.encode_flat(inputs)?;
            for (w, vector) in batch.iter().zip(pooled.chunks_exact(dim)) {
                let whole = w.start == 0 && rows[w.row].as_ref().is_some_and(|t| t.len() == w.len);
                let weight = if whole { 1.0 } else { w.len as f32 };
                weights[w.row] += weight;
                let out = &mut values[w.row * dim..(w.row + 1) * dim];
                for (o, v) in out.iter_mut().zip(vector) {
                    *o += weight * v;
                }
            }
            Ok::<_, ModelError>(())
        })?;
        for (row, &weight) in weights.iter().enumerate() {
            if weight > 0.0 {
                values[row * dim..(row + 1) * dim].iter_mut().for_each(|v| *v /= weight);
            }
        }
        let valid = rows.iter().map(Option::is_some).collect();
        Ok(Embeddings { dim, values, valid })
    }

    /// [`for_each_window_batch`] with this model's positions and batch settings: `visit` gets
    /// each batch of windows of `rows` and their residue tokens.
    pub(super) fn for_each_window_batch(
        &self,
        rows: &[Option<Vec<u8>>],
        visit: impl FnMut(&[Window], &[&[u8]]) -> Result<()>,
    ) -> Result<()> {
        let settings = self.settings;
        for_each_window_batch(
            rows,
            self.max_residues(),
            settings.token_budget,
            settings.max_batch,
            visit,
        )
    }

    /// Pooled features (`inputs × pooled width`, row-major) of residue-token inputs that fit the
    /// model, by the engine in use.
    fn encode_flat(&self, inputs: &[&[u8]]) -> Result<Vec<f32>> {
        match (&self.packed, self.engine) {
            (Some((encoder, table)), Engine::Packed) => {
                let ids: Vec<Vec<u32>> = inputs.iter().map(|tokens| input_ids(tokens).collect()).collect();
                Ok(encoder.encode_pooled(table.values(), &ids, &self.readout))
            }
            _ => Ok(self.encode(inputs)?.flatten_all()?.to_vec1()?),
        }
    }

    /// Pooled features (`[inputs, pooled width]`) of residue-token inputs that fit the model,
    /// padded into one batch and run by the candle encoder.
    pub fn encode(&self, inputs: &[&[u8]]) -> Result<Tensor> {
        let (ids, mask) = self.batch_ids(inputs)?;
        let hidden = self.forward_ids(&ids, &mask)?;
        let segments = self.readout.segments();
        if segments == 1 {
            return mean_pool(&hidden, &mask);
        }
        // each input's valid tokens end to end, pooled in segments
        let lengths: Vec<usize> = inputs.iter().map(|tokens| tokens.len() + 2).collect();
        let states: Vec<f32> = hidden
            .to_vec3::<f32>()?
            .iter()
            .zip(&lengths)
            .flat_map(|(input, &n)| input[..n].concat())
            .collect();
        let pooled = pooling::pool(&states, &lengths, self.feature_width(), segments);
        Ok(Tensor::from_vec(
            pooled,
            (inputs.len(), self.pooled_width()),
            self.encoder.device(),
        )?)
    }

    /// Input-table ids `[batch, tokens]` (with [CLS], [SEP], [PAD]) and the mask of valid tokens.
    pub fn batch_ids(&self, inputs: &[&[u8]]) -> Result<(Tensor, Tensor)> {
        let width = inputs.iter().map(|t| t.len()).max().unwrap_or(0) + 2;
        let mut ids = Vec::with_capacity(inputs.len() * width);
        let mut mask = Vec::with_capacity(inputs.len() * width);
        for tokens in inputs {
            ids.extend(input_ids(tokens));
            mask.extend(std::iter::repeat_n(1f32, tokens.len() + 2));
            ids.extend(std::iter::repeat_n(PAD_ROW, width - tokens.len() - 2));
            mask.extend(std::iter::repeat_n(0f32, width - tokens.len() - 2));
        }
        let device = self.encoder.device();
        let shape = (inputs.len(), width);
        Ok((
            Tensor::from_vec(ids, shape, device)?,
            Tensor::from_vec(mask, shape, device)?,
        ))
    }

    /// The features (`[batch, tokens, width]`: the last hidden state, or the readout's states)
    /// for input-table ids, with this model's Θ.
    pub fn forward_ids(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, tokens) = ids.dims2()?;
        let embeddings = self
            .input_table
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((batch, tokens, self.dim()))?;
        self.encoder.forward_features(&embeddings, mask, &self.readout)
    }
}

/// The residue tokens of each sequence: `None` for NULL, or for a bad residue under
/// [`InvalidResidue::Null`]; a bad residue under [`InvalidResidue::Error`] is an error naming the
/// row, the sequence and the position.
pub(super) fn tokenize_column<'a>(
    sequences: impl IntoIterator<Item = Option<&'a str>>,
    policy: InvalidResidue,
) -> Result<Vec<Option<Vec<u8>>>> {
    let mut tokens: Vec<Option<Vec<u8>>> = Vec::new();
    let mut scratch = Vec::new();
    for (row, sequence) in sequences.into_iter().enumerate() {
        let Some(sequence) = sequence else {
            tokens.push(None);
            continue;
        };
        match tokenize_residues(sequence, policy, &mut scratch) {
            Ok(true) => tokens.push(Some(scratch.clone())),
            Ok(false) => tokens.push(None),
            Err(bad) => {
                return Err(ModelError::InvalidResidue {
                    row: row + 1,
                    sequence: abbreviate(sequence, 30),
                    position: bad.position + 1,
                    character: bad.character,
                });
            }
        }
    }
    Ok(tokens)
}

/// The first `max` characters of `text`, with `…` when it is longer.
fn abbreviate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SparseRow;
    use crate::model::batch::windows;
    use crate::model::testing::write_tiny_bert;

    fn tiny(prefix: &str) -> (tempfile::TempDir, ReprogrammedModel) {
        let dir = tempfile::tempdir().expect("temp dir");
        write_tiny_bert(dir.path(), prefix, 3).expect("tiny model");
        let model = ReprogrammedModel::load(dir.path(), &Device::Cpu).expect("loads");
        (dir, model)
    }

    fn max_diff(a: &Embeddings, b: &Embeddings) -> f32 {
        assert_eq!(a.valid, b.valid);
        a.values
            .iter()
            .zip(&b.values)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    const SEQUENCES: [Option<&str>; 6] = [
        Some("MKT"),
        None,
        Some("ACDEFGHIKLMNPQRSTVWYXBZJUO"),
        Some(""),
        Some("gly*"),
        Some("WWWWWWWWW"),
    ];

    #[test]
    fn batching_does_not_change_results_and_rows_keep_their_order() {
        let (_dir, model) = tiny("");
        let batched = model.embed(SEQUENCES, InvalidResidue::Error).unwrap();
        assert_eq!(batched.valid, [true, false, true, true, true, true]);
        assert!(batched.values.iter().all(|v| v.is_finite()));
        let one_by_one = model.with_batch_settings(BatchSettings {
            token_budget: 1,
            max_batch: 1,
        });
        let single = one_by_one.embed(SEQUENCES, InvalidResidue::Error).unwrap();
        assert!(max_diff(&batched, &single) < 1e-5);
        let reversed: Vec<_> = SEQUENCES.iter().rev().copied().collect();
        let reversed = one_by_one.embed(reversed, InvalidResidue::Error).unwrap();
        for i in 0..SEQUENCES.len() {
            assert_eq!(reversed.row(SEQUENCES.len() - 1 - i), single.row(i));
        }
        // NULL rows keep zeros and distinct sequences get distinct vectors
        assert_eq!(batched.row(1), None);
        assert_ne!(batched.row(0), batched.row(5));
    }

    /// A tiny random-weight MPNet model.
    fn tiny_mpnet() -> (tempfile::TempDir, ReprogrammedModel) {
        let dir = tempfile::tempdir().expect("temp dir");
        crate::model::testing::write_tiny_mpnet(dir.path(), 3).expect("tiny model");
        let model = ReprogrammedModel::load(dir.path(), &Device::Cpu).expect("loads");
        (dir, model)
    }

    #[test]
    fn the_packed_and_candle_encoders_agree() {
        for (_dir, model) in [tiny(""), tiny_mpnet()] {
            the_packed_and_candle_encoders_agree_on(&model);
        }
    }

    #[test]
    fn mpnet_reads_its_specials_positions_and_relative_bias() {
        let (_dir, mpnet) = tiny_mpnet();
        let english = mpnet.english_tokens();
        // <s> 0, <pad> 1, </s> 2 as special_tokens_map.json names them; letters after them
        assert_eq!((english.cls, english.pad, english.sep), (0, 1, 2));
        assert_eq!(english.residue_letters[0], 5, "'a'");
        // 14 positions less the two MPNet skips, less <s> and </s>: the BERT twin's 10
        assert_eq!(mpnet.max_residues(), 10);
        let (_dir, bert) = tiny("");
        assert_eq!(bert.max_residues(), 10);
        // the relative bias takes part: zeroing its table changes the embeddings
        let before = mpnet.embed(SEQUENCES, InvalidResidue::Error).unwrap();
        let dir = tempfile::tempdir().unwrap();
        crate::model::testing::write_tiny_mpnet(dir.path(), 3).unwrap();
        let path = dir.path().join("model.safetensors");
        let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        let name = "encoder.relative_attention_bias.weight";
        let zeros = tensors[name].zeros_like().unwrap();
        tensors.insert(name.into(), zeros);
        candle_core::safetensors::save(&tensors, &path).unwrap();
        let zeroed = ReprogrammedModel::load(dir.path(), &Device::Cpu).unwrap();
        let after = zeroed.embed(SEQUENCES, InvalidResidue::Error).unwrap();
        assert!(max_diff(&before, &after) > 1e-3);
    }

    fn the_packed_and_candle_encoders_agree_on(model: &ReprogrammedModel) {
        assert_eq!(model.engine(), Engine::Packed);
        let candle = model
            .with_theta(&Theta::one_hot(model.english_tokens()))
            .unwrap()
            .with_engine(Engine::Candle);
        let long = "MKTAYIAKQRQISFVKSHFSRQLEE";
        let input: Vec<_> = SEQUENCES.iter().copied().chain([Some(long)]).collect();
        let packed = model.embed(input.clone(), InvalidResidue::Error).unwrap();
        let padded = candle.embed(input.clone(), InvalidResidue::Error).unwrap();
        assert!(max_diff(&packed, &padded) < 1e-5, "{}", max_diff(&packed, &padded));
        // pooled in segments (more than the empty sequence has tokens; the long one in windows)
        let segmented = Readout::last().with_segments(3).unwrap();
        let packed = model
            .with_theta(&Theta::one_hot(model.english_tokens()))
            .unwrap()
            .with_readout(segmented.clone())
            .embed(input.clone(), InvalidResidue::Error)
            .unwrap();
        let padded = candle
            .with_readout(segmented)
            .embed(input, InvalidResidue::Error)
            .unwrap();
        assert_eq!(packed.dim, 3 * model.dim());
        assert!(max_diff(&packed, &padded) < 1e-5, "{}", max_diff(&packed, &padded));
    }

    #[test]
    fn long_sequences_average_their_windows_by_residue_count() {
        let (_dir, model) = tiny("");
        let protein = "MKTAYIAKQRQISFVKSHFSRQLEE";
        assert!(protein.len() > model.max_residues());
        let whole = model.embed([Some(protein)], InvalidResidue::Error).unwrap();
        let max = model.max_residues();
        let ws = windows(protein.len(), max, max / 4);
        let parts = model
            .embed(ws.iter().map(|&(s, l)| Some(&protein[s..s + l])), InvalidResidue::Error)
            .unwrap();
        let total: f32 = ws.iter().map(|&(_, l)| l as f32).sum();
        for j in 0..model.dim() {
            let expected: f32 = ws
                .iter()
                .enumerate()
                .map(|(i, &(_, l))| parts.values[i * model.dim() + j] * l as f32)
                .sum();
            assert!((whole.values[j] - expected / total).abs() < 1e-5);
        }
    }

    #[test]
    fn segments_pool_each_stretch_of_the_whole_sequence_across_windows() {
        let (_dir, model) = tiny("");
        let layers = model.encoder().config().num_hidden_layers;
        let readout = Readout::of_layers(&[0, layers], layers)
            .unwrap()
            .with_segments(3)
            .unwrap();
        let model = model
            .with_theta(&Theta::one_hot(model.english_tokens()))
            .unwrap()
            .with_readout(readout);
        let width = model.feature_width();
        assert_eq!(model.pooled_width(), 3 * width);
        // the features of every token of one input, `[CLS]` and `[SEP]` included
        let tokens_of = |residues: &[u8]| -> Vec<Vec<f32>> {
            let (ids, mask) = model.batch_ids(&[residues]).unwrap();
            let hidden = model.forward_ids(&ids, &mask).unwrap().to_vec3::<f32>().unwrap();
            hidden[0].clone()
        };
        let protein = "MKTAYIAKQRQISFVKSHFSRQLEE";
        let residues = tokenize_column([Some(protein)], InvalidResidue::Error).unwrap()[0]
            .clone()
            .unwrap();
        let max = model.max_residues();
        // each token of the protein: the mean of its features in the windows that hold it
        let n = residues.len() + 2;
        let (mut sums, mut counts) = (vec![vec![0f32; width]; n], vec![0f32; n]);
        for (start, len) in windows(residues.len(), max, max / 4) {
            let states = tokens_of(&residues[start..start + len]);
            for (j, state) in states.iter().enumerate() {
                let position = match j {
                    0 if start > 0 => continue,
                    0 => 0,
                    j if j == len + 1 && start + len < residues.len() => continue,
                    j if j == len + 1 => n - 1,
                    j => start + j,
                };
                sums[position].iter_mut().zip(state).for_each(|(s, v)| *s += v);
                counts[position] += 1.0;
            }
        }
        let stitched: Vec<f32> = sums
            .iter()
            .zip(&counts)
            .flat_map(|(sum, &count)| sum.iter().map(move |v| v / count))
            .collect();
        let expected = crate::model::pooling::pool(&stitched, &[n], width, 3);
        let whole = model.embed([Some(protein)], InvalidResidue::Error).unwrap();
        assert_eq!(whole.dim, 3 * width);
        let diff = whole
            .values
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-5, "{diff}");
        // a protein in one window: the candle pass pools the same stretches
        let short = &residues[..7];
        let one = model.embed_tokens(&[Some(short.to_vec())]).unwrap();
        let candle = model
            .encode(&[short])
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let reference = crate::model::pooling::pool(&tokens_of(short).concat(), &[9], width, 3);
        for ((a, b), c) in one.values.iter().zip(&candle).zip(&reference) {
            assert!((a - b).abs() < 1e-5 && (a - c).abs() < 1e-5, "{a} {b} {c}");
        }
        // the stretches differ: where a residue sits is in the features
        assert!(
            whole.values[..width]
                .iter()
                .zip(&whole.values[2 * width..])
                .any(|(a, b)| (a - b).abs() > 1e-3)
        );
    }

    #[test]
    fn bad_residues_follow_the_policy() {
        let (_dir, model) = tiny("");
        let input = [Some("ACD"), Some("AC-D")];
        let error = model.embed(input, InvalidResidue::Error).unwrap_err().to_string();
        assert!(error.contains("'-' at position 3 of sequence 'AC-D' (row 2"), "{error}");
        assert_eq!(model.embed(input, InvalidResidue::Null).unwrap().valid, [true, false]);
        let unknown = model.embed(input, InvalidResidue::Unknown).unwrap();
        let x = model.embed([Some("ACD"), Some("ACXD")], InvalidResidue::Error).unwrap();
        assert_eq!(unknown, x);
    }

    #[test]
    fn theta_sets_the_residue_embeddings_and_task_model_prefixes_load() {
        let (_dir, model) = tiny("");
        let (_dir2, prefixed) = tiny("bert.");
        let one_hot = model.embed(SEQUENCES, InvalidResidue::Error).unwrap();
        assert_eq!(prefixed.embed(SEQUENCES, InvalidResidue::Error).unwrap(), one_hot);

        let english = model.english_tokens();
        let same = Theta::from_rows(Theta::one_hot(english).rows().to_vec(), 34).unwrap();
        assert_eq!(
            model
                .with_theta(&same)
                .unwrap()
                .embed(SEQUENCES, InvalidResidue::Error)
                .unwrap(),
            one_hot
        );
        let mut rows = same.rows().to_vec();
        rows[0] = SparseRow {
            indices: vec![english.residue_letters[0], 31],
            values: vec![0.5, 0.5],
        };
        let mixed = model.with_theta(&Theta::from_rows(rows, 34).unwrap()).unwrap();
        let changed = mixed.embed([Some("AAA"), Some("CCC")], InvalidResidue::Error).unwrap();
        let before = model.embed([Some("AAA"), Some("CCC")], InvalidResidue::Error).unwrap();
        assert_ne!(changed.row(0), before.row(0));
        assert_eq!(changed.row(1), before.row(1));
        assert!(Theta::from_rows(vec![], 34).is_err());
    }

    #[test]
    fn missing_or_broken_model_folders_say_how_to_fix_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = ReprogrammedModel::load(dir.path(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("config.json not found") && error.contains("r2dl fetch-model"),
            "{error}"
        );
        write_tiny_bert(dir.path(), "", 1).unwrap();
        std::fs::write(dir.path().join("model.safetensors"), b"not safetensors").unwrap();
        let error = ReprogrammedModel::load(dir.path(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(error.contains("model.safetensors: unreadable safetensors"), "{error}");
    }
}
