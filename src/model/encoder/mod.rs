//! The frozen English encoder (BERT family), run from input embeddings: the candle encoder (any
//! device, padded batches), the packed CPU encoder with fused kernels, and the recorded pass of
//! the packed encoder that gives training its input gradients. The packed inference pass and the
//! recorded pass share one forward per layer ([`packed`]).

mod bert;
mod config;
mod gradient;
mod kernels;
mod packed;

pub use bert::{BertEncoder, mean_pool};
pub use config::BertConfig;
pub use gradient::Tape;
pub use packed::PackedEncoder;
pub(crate) use packed::{View, matmul};
