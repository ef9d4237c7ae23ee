//! r2dl's session options: `SET r2dl.invalid_residue = 'null'`, `SET r2dl.fasta_mmap = false`.

use datafusion::common::config::{ConfigExtension, ConfigOptions};
use datafusion::common::{DataFusionError, extensions_options};

use crate::model::InvalidResidue;

extensions_options! {
    /// Options of the model functions and the FASTA scan, set with `SET r2dl.<name> = <value>`.
    pub struct R2dlOptions {
        /// What `embed` and `predict_*` do with a character that is not a residue (a digit, `-`,
        /// `.`): 'error' (default: fail, naming it), 'null' (NULL result) or 'unknown' (read as X).
        pub invalid_residue: String, default = "error".to_string()
        /// Whether FASTA scans read plain local files through a memory map (default true),
        /// which spares the copy out of the page cache. A file truncated by another process
        /// while it is being read then kills the process (SIGBUS); set false where that can happen.
        pub fasta_mmap: bool, default = true
    }
}

impl ConfigExtension for R2dlOptions {
    const PREFIX: &'static str = "r2dl";
}

/// Whether the session's options let FASTA scans map files (see [`R2dlOptions::fasta_mmap`]).
pub fn fasta_mmap(options: &ConfigOptions) -> bool {
    options
        .extensions
        .get::<R2dlOptions>()
        .is_none_or(|r2dl| r2dl.fasta_mmap)
}

/// The invalid-residue policy the session's options choose.
pub fn invalid_residue_policy(options: &ConfigOptions) -> Result<InvalidResidue, DataFusionError> {
    let Some(r2dl) = options.extensions.get::<R2dlOptions>() else {
        return Ok(InvalidResidue::default());
    };
    r2dl.invalid_residue.parse().map_err(|_| {
        DataFusionError::Configuration(format!(
            "r2dl.invalid_residue is 'error', 'null' or 'unknown', not '{}'",
            r2dl.invalid_residue
        ))
    })
}

/// Adds the `r2dl.*` options to a session's options, unless they are there already.
pub fn register_options(options: &mut ConfigOptions) {
    if options.extensions.get::<R2dlOptions>().is_none() {
        options.extensions.insert(R2dlOptions::default());
    }
}
