//! r2dl: protein sequences in SQL.
//!
//! FASTA files (plain, gzip, BGZF) become streaming Apache DataFusion tables with the schema
//! `id Utf8 NOT NULL, description Utf8, sequence Utf8 NOT NULL`; Parquet and CSV files with the
//! same columns work through DataFusion's own readers.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::common::Result<()> {
//! let ctx = r2dl::session_context(Default::default())?;
//! let df = ctx.sql("SELECT count(*) AS n FROM 'sample_data/sample.fasta'").await?;
//! let batches = df.collect().await?;
//! assert_eq!(batches[0].num_rows(), 1);
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "cluster")]
pub mod cluster;
pub mod datasource;
pub mod fasta;
pub mod model;
pub mod options;
pub mod predictor;
pub mod runtime;
mod session;
pub mod train;
pub mod udf;

pub use session::R2dl;

use std::sync::Arc;

use datafusion::catalog::DynamicFileCatalog;
use datafusion::catalog::UrlTableFactory;
use datafusion::common::Result;
use datafusion::datasource::dynamic_file::DynamicListTableFactory;
use datafusion::prelude::{SessionConfig, SessionContext};

use datasource::FastaUrlTableFactory;

/// Lets queries name files as tables (`FROM 'x.fasta.gz'`, `FROM 'y.parquet'`), with FASTA names
/// handled by r2dl and every other name by DataFusion (like `SessionContext::enable_url_table`).
/// [`R2dl::session_context`] does this; use it on a context built from [`R2dl::configure`].
pub fn enable_file_tables(ctx: SessionContext) -> SessionContext {
    let catalogs = Arc::clone(ctx.state_ref().read().catalog_list());
    let fallback = Arc::new(DynamicListTableFactory::default());
    let factory = Arc::new(FastaUrlTableFactory::new(Arc::clone(&fallback)));
    let catalog_list = Arc::new(DynamicFileCatalog::new(catalogs, factory as Arc<dyn UrlTableFactory>));
    let session_id = ctx.session_id();
    let ctx: SessionContext = ctx
        .into_state_builder()
        .with_session_id(session_id)
        .with_catalog_list(catalog_list)
        .build()
        .into();
    fallback.session_store().with_state(ctx.state_weak_ref());
    ctx
}

/// The message of a DataFusion error as r2dl reports it: without the wrapping layers that say
/// nothing to a user (`External error: `), so a bad residue or a malformed FASTA record reads the
/// same from the CLI, from Python and from a cluster's executors.
pub fn error_message(error: &datafusion::common::DataFusionError) -> String {
    use datafusion::common::DataFusionError;
    match error {
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::Shared(inner) => error_message(inner),
        DataFusionError::Context(context, inner) => format!("{context}: {}", error_message(inner)),
        other => {
            let text = other.to_string();
            cluster_task_message(&text).unwrap_or(text)
        }
    }
}

/// The message of a task that failed on a cluster's executor, which Ballista passes on as
/// `Job … failed: … Task failed due to runtime execution error: DataFusionError(Execution("…"))`
/// (r2dl's executors put the task's own message there; Ballista quotes it in Rust's debug form).
fn cluster_task_message(text: &str) -> Option<String> {
    const START: &str = "runtime execution error: DataFusionError(Execution(\"";
    let rest = &text[text.find(START)? + START.len()..];
    let quoted = &rest[..rest.rfind("\"))")?];
    let mut message = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            message.push(c);
            continue;
        }
        match chars.next()? {
            'n' => message.push('\n'),
            't' => message.push('\t'),
            'r' => message.push('\r'),
            '0' => message.push('\0'),
            'u' => {
                let code: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                message.push(char::from_u32(u32::from_str_radix(&code, 16).ok()?)?);
            }
            other => message.push(other),
        }
    }
    Some(message)
}

/// A session with everything r2dl provides, the default model and the predictors found by
/// [`predictor::catalog_dirs`]: `R2dl::new().session_context(config)`.
pub fn session_context(config: SessionConfig) -> Result<SessionContext> {
    R2dl::new().session_context(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_errors_from_a_cluster_read_as_local_ones() {
        let local = "/data/x.fasta:1: expected a \"header\"\tline, found 'MKV' é\u{7}";
        let wrapped = format!(
            "Job 03 failed: Job failed due to stage 0 failed: Task failed due to runtime execution error: \
             DataFusionError(Execution({local:?}))"
        );
        let error = datafusion::common::DataFusionError::Execution(wrapped);
        assert_eq!(error_message(&error), local);
        let plain = datafusion::common::DataFusionError::Execution("no such table".into());
        assert_eq!(error_message(&plain), "Execution error: no such table");
    }
}
