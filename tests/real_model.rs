//! The default model (all-MiniLM-L6-v2, fetched as the README does) against the PyTorch +
//! transformers reference in `tests/data/reference/minilm_reference.json`, and all-mpnet-base-v2
//! (`--model all-mpnet-base-v2`, fetched by name) against `mpnet_reference.json`
//! (`scripts/reference_mpnet.py`).

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::Tensor;
use r2dl::model::{Engine, InvalidResidue, Readout, ReprogrammedModel, Theta, mean_pool};
use r2dl::runtime::{ModelSpec, shared_model};
use serde_json::Value;

const TOLERANCE: f32 = 1e-4;

fn model() -> Arc<ReprogrammedModel> {
    shared_model(&ModelSpec::default()).unwrap_or_else(|e| panic!("the default model loads: {e}"))
}

/// all-mpnet-base-v2, named as a user names it.
fn mpnet() -> Arc<ReprogrammedModel> {
    let spec = ModelSpec {
        dir: Some("all-mpnet-base-v2".into()),
        device: None,
    };
    shared_model(&spec).unwrap_or_else(|e| panic!("all-mpnet-base-v2 loads: {e}"))
}

fn reference() -> Value {
    reference_of("minilm_reference.json")
}

fn reference_of(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/reference")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).expect("reference file")).expect("reference JSON")
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn english_sentence_embeddings_match_sentence_transformers() {
    english_sentences_match(&model(), &reference());
}

#[test]
fn mpnet_english_sentence_embeddings_match_sentence_transformers() {
    let model = mpnet();
    assert_eq!((model.dim(), model.encoder().config().num_hidden_layers), (768, 12));
    english_sentences_match(&model, &reference_of("mpnet_reference.json"));
}

fn english_sentences_match(model: &ReprogrammedModel, reference: &Value) {
    assert_eq!(
        model.weights_sha256(),
        reference["model_safetensors_sha256"].as_str().unwrap_or_default()
    );
    let encoder = model.encoder();
    for case in reference["english"].as_array().expect("english cases") {
        let text = case["text"].as_str().expect("text");
        // the token ids as the model's own tokenizer.json gives them (Python tokenizers, stored
        // with the reference)
        let ids: Vec<u32> = case["input_ids"]
            .as_array()
            .expect("input_ids")
            .iter()
            .map(|v| v.as_u64().and_then(|v| u32::try_from(v).ok()).expect("a token id"))
            .collect();
        let n = ids.len();
        let ids = Tensor::new(ids.as_slice(), encoder.device()).unwrap();
        let embeddings = encoder
            .word_embeddings()
            .index_select(&ids, 0)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let mask = Tensor::ones((1, n), candle_core::DType::F32, encoder.device()).unwrap();
        let hidden = encoder.forward(&embeddings, &mask).unwrap();
        let pooled = mean_pool(&hidden, &mask)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let norm = pooled.iter().map(|v| v * v).sum::<f32>().sqrt();
        let normalised: Vec<f32> = pooled.iter().map(|v| v / norm).collect();
        let diff = max_abs_diff(&normalised, &floats(&case["embedding_l2_normalised"]));
        assert!(diff < TOLERANCE, "'{text}': max abs difference {diff}");
    }
}

#[test]
fn protein_one_hot_embeddings_match_the_reference() {
    protein_one_hot_embeddings_match(&model(), &reference());
}

/// MPNet's proteins go up to 510 residues: relative-position buckets of every distance, on
/// both engines.
#[test]
fn mpnet_protein_one_hot_embeddings_match_the_reference() {
    let model = mpnet();
    assert_eq!(model.max_residues(), 510);
    protein_one_hot_embeddings_match(&model, &reference_of("mpnet_reference.json"));
}

fn protein_one_hot_embeddings_match(model: &ReprogrammedModel, reference: &Value) {
    let english = model.english_tokens();
    for (residue, id) in reference["amino_acid_to_english_token_id"].as_object().expect("map") {
        let index = r2dl::model::RESIDUES
            .iter()
            .position(|r| residue.as_bytes() == [*r])
            .expect("residue");
        assert_eq!(
            u64::from(english.residue_letters[index]),
            id.as_u64().unwrap_or_default(),
            "{residue}"
        );
    }
    let cases = reference["protein_onehot"].as_array().expect("protein cases");
    let sequences: Vec<&str> = cases
        .iter()
        .map(|c| c["sequence"].as_str().expect("sequence"))
        .collect();
    assert_eq!(model.engine(), Engine::Packed);
    let candle = model
        .with_theta(&Theta::one_hot(english))
        .expect("same Θ")
        .with_engine(Engine::Candle);
    for model in [model, &candle] {
        check_protein_cases(model, cases, &sequences);
    }
}

fn check_protein_cases(model: &ReprogrammedModel, cases: &[Value], sequences: &[&str]) {
    let english = model.english_tokens();
    // all at once (batched together) and one by one give the reference
    let together = model
        .embed(sequences.iter().map(|s| Some(*s)), InvalidResidue::Error)
        .unwrap();
    for (i, case) in cases.iter().enumerate() {
        let expected_ids: Vec<u32> = case["input_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().unwrap_or_default() as u32)
            .collect();
        let mut ids = vec![english.cls];
        let mut tokens = Vec::new();
        r2dl::model::tokenize_residues(sequences[i], InvalidResidue::Error, &mut tokens).expect("valid");
        ids.extend(tokens.iter().map(|&t| english.residue_letters[t as usize]));
        ids.push(english.sep);
        assert_eq!(ids, expected_ids, "{}", sequences[i]);

        let expected = floats(&case["mean_pooled"]);
        let diff = max_abs_diff(together.row(i).expect("a vector"), &expected);
        assert!(
            diff < TOLERANCE,
            "{:?} {} in a batch: max abs difference {diff}",
            model.engine(),
            sequences[i]
        );
        let alone = model.embed([Some(sequences[i])], InvalidResidue::Error).unwrap();
        let diff = max_abs_diff(alone.row(0).expect("a vector"), &expected);
        assert!(
            diff < TOLERANCE,
            "{:?} {} alone: max abs difference {diff}",
            model.engine(),
            sequences[i]
        );
    }
}

#[test]
fn a_5000_residue_protein_is_the_residue_weighted_mean_of_its_windows() {
    let model = model();
    let alphabet = b"ACDEFGHIKLMNPQRSTVWY";
    let mut state = 7u64;
    let protein: String = (0..5000)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            alphabet[(state >> 33) as usize % alphabet.len()] as char
        })
        .collect();
    let whole = model.embed([Some(protein.as_str())], InvalidResidue::Error).unwrap();
    let whole = whole.row(0).expect("a vector");
    assert_eq!(whole.len(), 384);
    assert!(whole.iter().all(|v| v.is_finite()));

    let max = model.max_residues();
    let windows = r2dl::model::windows(protein.len(), max, max / 4);
    assert!(windows.len() > 1);
    let pieces: Vec<&str> = windows.iter().map(|&(s, l)| &protein[s..s + l]).collect();
    let each = model
        .embed(pieces.iter().map(|p| Some(*p)), InvalidResidue::Error)
        .unwrap();
    let total: f32 = windows.iter().map(|&(_, l)| l as f32).sum();
    let mut expected = vec![0f32; 384];
    for (i, &(_, len)) in windows.iter().enumerate() {
        for (e, v) in expected.iter_mut().zip(each.row(i).expect("a vector")) {
            *e += v * len as f32 / total;
        }
    }
    let diff = max_abs_diff(whole, &expected);
    assert!(diff < 1e-5, "max abs difference {diff}");
}

/// A readout of several layers on MiniLM: both engines give the same features, and the block of
/// the last layer is the reference-checked `embed` vector (per sequence and per residue).
#[test]
fn multi_layer_features_agree_across_engines_and_end_with_the_last_layer() {
    let model = model();
    let sequences = ["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "GIGKFLHSAKKFGKAFVGEIMNS", "W"];
    let d = model.dim();
    let readout = Readout::of_layers(&[0, 3, 6], 6).expect("MiniLM has six layers");
    let packed = model
        .with_theta(&Theta::one_hot(model.english_tokens()))
        .expect("same Θ")
        .with_readout(readout);
    assert_eq!(packed.feature_width(), 3 * d);
    let candle = packed
        .with_theta(&Theta::one_hot(model.english_tokens()))
        .expect("same Θ")
        .with_engine(Engine::Candle);
    let plain = model.embed(sequences.map(Some), InvalidResidue::Error).unwrap();
    let features = packed.embed(sequences.map(Some), InvalidResidue::Error).unwrap();
    let from_candle = candle.embed(sequences.map(Some), InvalidResidue::Error).unwrap();
    for i in 0..sequences.len() {
        let (row, other) = (features.row(i).unwrap(), from_candle.row(i).unwrap());
        assert!(max_abs_diff(row, other) < TOLERANCE, "engines differ on row {i}");
        assert!(
            max_abs_diff(&row[2 * d..], plain.row(i).unwrap()) < 1e-5,
            "last block of row {i}"
        );
        // the embeddings' and the middle layer's blocks are other vectors
        assert!(max_abs_diff(&row[..d], &row[2 * d..]) > 0.1 && max_abs_diff(&row[d..2 * d], &row[2 * d..]) > 0.1);
    }
    let keep = |states: &[f32], _: &[usize]| states.to_vec();
    let residues = packed
        .residue_outputs(sequences.map(Some), InvalidResidue::Error, 3 * d, &keep)
        .unwrap();
    let last = model
        .residue_outputs(sequences.map(Some), InvalidResidue::Error, d, &keep)
        .unwrap();
    for (wide, narrow) in residues.rows.iter().zip(&last.rows) {
        let (wide, narrow) = (wide.as_deref().unwrap(), narrow.as_deref().unwrap());
        for (w, n) in wide.chunks_exact(3 * d).zip(narrow.chunks_exact(d)) {
            assert!(max_abs_diff(&w[2 * d..], n) < 1e-5);
        }
    }
}
