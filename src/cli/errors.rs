//! Errors as the user sees them: `error: …` and, where a fix is known, `hint: …`.

use std::io;
use std::path::PathBuf;

use datafusion::common::DataFusionError;

use r2dl::fasta::{FastaError, FastaErrorKind};

/// Anything `r2dl` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A failure in DataFusion or below it (parsing, planning, reading, writing).
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// Reading the SQL file.
    #[error("cannot read SQL from '{path}': {source}")]
    SqlFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Finding, fetching or loading the model.
    #[error(transparent)]
    Model(#[from] r2dl::model::ModelError),
    /// Reading labelled data or training.
    #[error(transparent)]
    Train(#[from] r2dl::train::TrainError),
    /// Reading or checking a predictor.
    #[error(transparent)]
    Predictor(#[from] r2dl::predictor::PredictorError),
    /// Writing an output file.
    #[error("cannot write '{}': {source}", path.display())]
    Write {
        /// The file asked for.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Writing results to standard output.
    #[error("cannot write output: {0}")]
    Output(#[source] io::Error),
    /// An unusable command line.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: &'static str,
    },
}

/// Prints `error: …` (and `hint: …`) to standard error.
pub fn report(error: &CliError) {
    eprintln!("error: {}", message(error));
    if let Some(hint) = hint(error) {
        eprintln!("hint: {hint}");
    }
}

fn message(error: &CliError) -> String {
    match error {
        CliError::DataFusion(e) => r2dl::error_message(e),
        other => other.to_string(),
    }
}

fn fasta_error(error: &DataFusionError) -> Option<&FastaError> {
    match error {
        DataFusionError::External(inner) => inner.downcast_ref::<FastaError>(),
        DataFusionError::Shared(inner) => fasta_error(inner),
        DataFusionError::Context(_, inner) => fasta_error(inner),
        _ => None,
    }
}

fn hint(error: &CliError) -> Option<&'static str> {
    let e = match error {
        CliError::Usage { hint, .. } => return Some(hint),
        CliError::DataFusion(e) => e,
        _ => return None,
    };
    if let Some(fasta) = fasta_error(e) {
        return match fasta.kind {
            FastaErrorKind::MissingHeader { .. } => Some(
                "FASTA records start with a '>' header line; is this file FASTA? (Parquet and CSV files need .parquet / .csv names)",
            ),
            FastaErrorKind::EmptyId => Some("every header needs an id right after '>', e.g. '>P12345 description'"),
            FastaErrorKind::InvalidUtf8(_) => {
                Some("FASTA files must be UTF-8 (ASCII for sequences); check the file's encoding")
            }
            FastaErrorKind::Gzip(_) => Some("the compressed file looks truncated or damaged; `gzip -t FILE` checks it"),
            _ => None,
        };
    }
    let text = e.to_string();
    if text.contains("table '") && text.contains("not found") {
        Some("to read a file, quote its path in single quotes: SELECT * FROM 'proteins.fasta'")
    } else if text.contains("no such file") {
        Some("relative paths are resolved from the current directory")
    } else {
        None
    }
}
