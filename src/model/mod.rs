//! The reprogrammed model (R2DL): a frozen English BERT encoder reused for proteins through a
//! sparse map Θ from the protein vocabulary to English word embeddings (`V_T = Θ · V_S`).
//!
//! [`encoder`] holds the frozen English encoder and its fast paths; beside it, the reprogramming:
//! the protein vocabulary, Θ, the [`InputTable`] that alone knows the encoder's input rows, and
//! [`ReprogrammedModel`], which turns sequences into mean-pooled vectors or per-residue states
//! (long ones through windows). Loading models once per process and the compute pool are
//! [`crate::runtime`]'s.

mod batch;
mod checksum;
mod encoder;
mod error;
mod input_table;
mod pooling;
mod readout;
mod reprogrammed;
mod residues;
#[doc(hidden)]
pub mod testing;
mod theta;
mod vocab;

pub use batch::{Window, plan_batches, windows};
pub use checksum::{sha256_file, verify_sha256};
pub use encoder::{BertConfig, BertEncoder, PackedEncoder, Tape, mean_pool};
pub(crate) use encoder::{View, matmul};
pub use error::{FETCH_HINT, ModelError, Result};
pub use input_table::{InputTable, input_ids};
pub(crate) use readout::repeated_layer;
pub use readout::{MAX_SEGMENTS, Readout};
pub use reprogrammed::{BatchSettings, Embeddings, Engine, ReprogrammedModel};
pub use residues::{ResidueMap, ResidueOutputs};
pub use theta::{SparseRow, Theta};
pub use vocab::{EnglishTokens, InvalidResidue, NUM_RESIDUES, RESIDUES, tokenize_residues};
