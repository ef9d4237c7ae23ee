//! [`FastaOptions`]: the typed options of FASTA tables and FASTA output, as DataFusion's own
//! formats have `CsvOptions` and `JsonOptions`.

use std::collections::HashMap;

use datafusion::common::config::ExtensionOptions;
use datafusion::common::parsers::CompressionTypeVariant;
use datafusion::common::{Result, config_err, extensions_options};

extensions_options! {
    /// Options of `CREATE EXTERNAL TABLE … STORED AS FASTA` and `COPY … STORED AS FASTA`, given
    /// as `OPTIONS ('format.<name>' '<value>')` (the `format.` prefix may be left out).
    pub struct FastaOptions {
        /// Compression of the files a directory listing picks (`*.fasta` or `*.fasta.gz`) and
        /// of output: 'uncompressed' (default), 'gzip', 'bzip2', 'xz' or 'zstd'. Gzip input is
        /// recognised by its content whatever this says.
        pub compression: CompressionTypeVariant, default = CompressionTypeVariant::UNCOMPRESSED
        /// Residues per sequence line when writing (default 60; a large value writes one line).
        pub line_width: usize, default = 60
    }
}

impl FastaOptions {
    /// The options named in a statement's `OPTIONS`; DataFusion's own `execution.*` sink
    /// options are passed over. Unknown names and bad values are errors.
    pub fn from_key_values(options: &HashMap<String, String>) -> Result<Self> {
        let mut parsed = Self::default();
        let mut keys: Vec<&String> = options.keys().collect();
        keys.sort();
        for key in keys {
            if key.starts_with("execution.") {
                continue;
            }
            let value = &options[key];
            match key.strip_prefix("format.").unwrap_or(key) {
                name @ ("compression" | "line_width") => {
                    if let Err(e) = parsed.set(name, value) {
                        return config_err!("FASTA option {name} cannot be '{value}': {e}");
                    }
                }
                other => {
                    return config_err!(
                        "unknown FASTA option '{other}' (known: format.compression, format.line_width)"
                    );
                }
            }
        }
        if parsed.line_width == 0 {
            return config_err!(
                "FASTA option line_width must be a positive integer, got '{}'",
                parsed.line_width
            );
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Result<FastaOptions> {
        let map = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        FastaOptions::from_key_values(&map)
    }

    #[test]
    fn options_parse_with_or_without_the_prefix_and_reject_the_unknown() {
        let defaults = options(&[]).unwrap();
        assert_eq!(defaults.compression, CompressionTypeVariant::UNCOMPRESSED);
        assert_eq!(defaults.line_width, 60);
        let set = options(&[
            ("format.compression", "gzip"),
            ("line_width", "80"),
            ("execution.keep_partition_by_columns", "false"),
        ])
        .unwrap();
        assert_eq!(set.compression, CompressionTypeVariant::GZIP);
        assert_eq!(set.line_width, 80);

        let err = |pairs: &[(&str, &str)]| options(pairs).unwrap_err().to_string();
        assert!(err(&[("format.wrap", "1")]).contains("unknown FASTA option 'wrap'"));
        assert!(err(&[("format.line_width", "0")]).contains("line_width must be a positive integer, got '0'"));
        assert!(
            err(&[("format.line_width", "wide")]).contains("wide"),
            "{}",
            err(&[("format.line_width", "wide")])
        );
        assert!(err(&[("format.compression", "rar")]).contains("rar"));
    }
}
