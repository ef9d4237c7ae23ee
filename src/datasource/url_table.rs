//! `SELECT … FROM 'path/x.fasta'`: file names as tables. FASTA names are served here (with
//! clear errors for missing files); everything else goes to DataFusion's own factory
//! (Parquet, CSV, JSON, Arrow).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{TableProvider, UrlTableFactory};
use datafusion::common::{Result, plan_err};
use datafusion::datasource::dynamic_file::DynamicListTableFactory;

use super::table::{extension_of, fasta_table, is_fasta_name};

/// A [`UrlTableFactory`] that knows FASTA file names and delegates the rest.
#[derive(Debug)]
pub struct FastaUrlTableFactory {
    fallback: Arc<DynamicListTableFactory>,
}

impl FastaUrlTableFactory {
    /// Serves FASTA names itself and everything else through `fallback`.
    pub fn new(fallback: Arc<DynamicListTableFactory>) -> Self {
        Self { fallback }
    }
}

#[async_trait]
impl UrlTableFactory for FastaUrlTableFactory {
    async fn try_new(&self, url: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if is_fasta_name(url) {
            return fasta_table(url).map(Some);
        }
        if !url.contains("://") && Path::new(url).is_dir() {
            match directory_format(Path::new(url))? {
                Some(format) if format == "fasta" => return fasta_table(url).map(Some),
                Some(_) => {}
                None => return plan_err!("directory '{url}' holds no FASTA, Parquet, CSV, JSON, Avro or Arrow files"),
            }
        }
        self.fallback.try_new(url).await
    }
}

/// The data formats DataFusion reads by extension, after any compression suffix.
const TABLE_FORMATS: [&str; 6] = ["parquet", "csv", "json", "ndjson", "avro", "arrow"];

/// The one format of the data files in directory `dir` (`fasta` for FASTA names; files whose
/// names start with `.` or `_`, and names of no data format, are not data). Several formats are
/// an error listing them: reading one kind and dropping the others would lose rows unsaid.
fn directory_format(dir: &Path) -> Result<Option<String>> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()) else {
            continue;
        };
        if name.starts_with(['.', '_']) || !path.is_file() {
            continue;
        }
        let format = if is_fasta_name(&name) {
            Some("fasta")
        } else {
            extension_of(&name, &TABLE_FORMATS, &[".gz", ".bz2", ".xz", ".zst"])
        };
        if let Some(format) = format {
            *counts.entry(format.to_string()).or_default() += 1;
        }
    }
    let mut formats = counts.keys();
    match (formats.next(), formats.next()) {
        (first, None) => Ok(first.cloned()),
        _ => {
            let listed: Vec<String> = counts.iter().map(|(f, n)| format!("{n} {f}")).collect();
            plan_err!(
                "directory '{}' mixes file formats ({}); a table reads one: name the files with a glob such as '{}/*.{}'",
                dir.display(),
                listed.join(", "),
                dir.display().to_string().trim_end_matches('/'),
                counts.keys().next().map_or("fasta", String::as_str)
            )
        }
    }
}
