//! r2dl's session options: `SET r2dl.invalid_residue = 'null'`.

use datafusion::common::config::{ConfigExtension, ConfigOptions};
use datafusion::common::{DataFusionError, extensions_options};

use crate::model::InvalidResidue;

extensions_options! {
    /// Options of the model functions, set with `SET r2dl.<name> = <value>`.
    pub struct R2dlOptions {
        /// What `embed` and `predict_*` do with a character that is not a residue (a digit, `-`,
        /// `.`): 'error' (default: fail, naming it), 'null' (NULL result) or 'unknown' (read as X).
        pub invalid_residue: String, default = "error".to_string()
    }
}

impl ConfigExtension for R2dlOptions {
    const PREFIX: &'static str = "r2dl";
}

/// The invalid-residue policy the session's options choose.
pub fn invalid_residue_policy(options: &ConfigOptions) -> Result<InvalidResidue, DataFusionError> {
    let Some(r2dl) = options.extensions.get::<R2dlOptions>() else {
        return Ok(InvalidResidue::default());
    };
    r2dl.invalid_residue.parse().map_err(DataFusionError::Configuration)
}
