//! One FASTA table over a file, a directory or a glob: the provider behind `FROM 'x.fasta'` and
//! `fasta_scan('path')`.

use std::path::Path;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::{Result, plan_err};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};

use super::file_format::{FASTA_EXTENSIONS, FastaFormat};
use crate::fasta::fasta_schema;

/// Whether a file name ends in a FASTA extension, optionally followed by `.gz` or `.bgz`.
pub fn is_fasta_name(name: &str) -> bool {
    extension_of(name, &FASTA_EXTENSIONS, &[".gz", ".bgz"]).is_some()
}

/// Which of `extensions` the (case-insensitive) file name ends in, optionally followed by one
/// of the `compressions` suffixes.
pub(super) fn extension_of<'e>(name: &str, extensions: &[&'e str], compressions: &[&str]) -> Option<&'e str> {
    let name = name.to_ascii_lowercase();
    let stem = compressions
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(&name);
    extensions
        .iter()
        .find(|ext| stem.strip_suffix(**ext).is_some_and(|rest| rest.ends_with('.')))
        .copied()
}

fn is_gzip_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with(".gz") || name.ends_with(".bgz")
}

/// A FASTA table over `location`: a file (any name), a glob, a URL of a registered object store,
/// or a local directory (its files with FASTA names, see [`is_fasta_name`]).
pub fn fasta_table(location: &str) -> Result<Arc<dyn TableProvider>> {
    let local = !location.contains("://");
    let paths = if local && Path::new(location).is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(location)? {
            let path = entry?.path();
            if path.is_file() && path.file_name().and_then(|n| n.to_str()).is_some_and(is_fasta_name) {
                files.push(path);
            }
        }
        if files.is_empty() {
            let extensions = FASTA_EXTENSIONS.join(", .");
            return plan_err!("no FASTA files (.{extensions}, optionally .gz) in directory '{location}'");
        }
        files.sort();
        files
            .iter()
            .map(|p| ListingTableUrl::parse(p.to_string_lossy()))
            .collect::<Result<Vec<_>>>()?
    } else {
        if local && !location.contains(['*', '?', '[']) {
            match std::fs::metadata(location) {
                Err(_) => return plan_err!("no such file: '{location}'"),
                Ok(meta) if !meta.is_file() => {
                    return plan_err!(
                        "'{location}' is not a regular file (a pipe, socket or device): tables are read from files, \
                         in byte ranges and possibly more than once; save the stream to a file first"
                    );
                }
                Ok(_) => {}
            }
        }
        vec![ListingTableUrl::parse(location)?]
    };
    // Gzip is detected from the content; naming it here keeps DataFusion from splitting the
    // compressed file into byte ranges.
    let compression = if paths.iter().all(|p| is_gzip_name(p.as_str())) {
        FileCompressionType::GZIP
    } else {
        FileCompressionType::UNCOMPRESSED
    };
    let format = FastaFormat::new("fasta").with_compression(compression);
    let options = ListingOptions::new(Arc::new(format)).with_file_extension("");
    let config = ListingTableConfig::new_with_multi_paths(paths)
        .with_listing_options(options)
        .with_schema(fasta_schema());
    Ok(Arc::new(ListingTable::try_new(config)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_fasta_names() {
        for name in ["a.fasta", "b.FA", "x/y.faa.gz", "p.fna.bgz", "q.fas"] {
            assert!(is_fasta_name(name), "{name}");
        }
        for name in ["a.fastq", "fasta", "a.parquet", "a.csv.gz", "afa", "x.gz"] {
            assert!(!is_fasta_name(name), "{name}");
        }
    }
}
