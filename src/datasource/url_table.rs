//! `SELECT … FROM 'path/x.fasta'`: file names as tables. FASTA names are served here (with
//! clear errors for missing files); everything else goes to DataFusion's own factory
//! (Parquet, CSV, JSON, Arrow).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{TableProvider, UrlTableFactory};
use datafusion::common::Result;
use datafusion::datasource::dynamic_file::DynamicListTableFactory;

use super::table::{fasta_table, is_fasta_name};

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
        self.fallback.try_new(url).await
    }
}
