//! r2dl on Apache DataFusion Ballista (feature `cluster`): a scheduler, executors and clients
//! that all know r2dl's tables, scans, options and model functions.
//!
//! Stock Ballista binaries cannot run r2dl's queries: they know neither FASTA nor `predict_*`.
//! The processes started here are Ballista's own scheduler and executor, given what
//! [`R2dl`](crate::R2dl) adds to a session and r2dl's [codecs](R2dlLogicalCodec):
//!
//! - a client plans a statement logically (resolving `FROM 'x.fasta'` to a [`FastaTable`]) and
//!   sends the logical plan with every `r2dl.*` setting;
//! - the scheduler, whose sessions r2dl builds, plans it physically (byte ranges of each FASTA
//!   file become tasks) and splits it into stages;
//! - executors decode each task's plan, scan their byte ranges and run the model functions —
//!   only if their model and predictor files hash as the scheduler's do.
//!
//! On one machine a model query runs as one partition, the model using every core. On a
//! cluster the parallelism is across executors: a model query's files are split into byte
//! ranges (at most `datafusion.execution.target_partitions`, whatever their size), each a task
//! that an executor runs with its own cores. Files are read by path, so every executor must see
//! them (and the model and `udfs/`) at the same paths: a shared file system.
//!
//! [`FastaTable`]: crate::datasource::FastaTable

mod codec;
mod process;
mod report;

use std::path::PathBuf;
use std::sync::Arc;

use ballista::extension::SessionContextExt;
use ballista_core::config::BALLISTA_ADAPTIVE_PLANNER_ENABLED;
use ballista_core::extension::SessionConfigExt;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{SessionConfig, SessionContext};

pub use codec::{R2dlLogicalCodec, R2dlPhysicalCodec};
pub use process::{ExecutorOptions, InProcessCluster, run_executor, run_scheduler};

use crate::R2dl;

/// What can go wrong between the processes of a cluster, beyond what DataFusion reports.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A cluster address that is not `df://HOST:PORT`.
    #[error("'{url}' is not a cluster address: {reason} (expected df://HOST:PORT, e.g. df://127.0.0.1:50050)")]
    Url {
        /// The address given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A plan names a model function this process does not serve.
    #[error(
        "this process serves no function {function} (it serves: {served}); start every scheduler and executor with the same --model and --udfs as the client"
    )]
    MissingFunction {
        /// The function's name.
        function: String,
        /// The model functions this process serves.
        served: String,
    },
    /// A model function's files differ between the sender of a plan and this process.
    #[error(
        "{function} would compute with other weights on this process than where the query was planned: {detail}; give every process the same model and udfs/"
    )]
    WeightsDiffer {
        /// The function's name.
        function: String,
        /// Which file differs, and both hashes.
        detail: String,
    },
    /// A model or predictor file that could not be read to hash it.
    #[error("cannot read {path} to check that every process has the same weights: {source}")]
    WeightFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An r2dl plan message that cannot be read.
    #[error("a malformed r2dl plan message: {0}")]
    Message(String),
    /// Something r2dl does not run on a cluster.
    #[error("not on a cluster yet: {0}")]
    Unsupported(String),
    /// A scheduler or executor that failed to start or stopped.
    #[error("{role}: {message}")]
    Process {
        /// `scheduler` or `executor`.
        role: &'static str,
        /// Ballista's error.
        message: String,
    },
}

/// The scheduler's address in a `df://HOST:PORT` cluster URL.
pub fn scheduler_address(url: &str) -> Result<(String, u16), ClusterError> {
    let error = |reason: &str| ClusterError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("df://")
        .ok_or_else(|| error("it does not start with df://"))?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| error("it names no port"))?;
    if host.is_empty() {
        return Err(error("it names no host"));
    }
    let port = port
        .parse()
        .map_err(|_| error("the port is not a number from 1 to 65535"))?;
    if port == 0 {
        return Err(error("port 0 is not a scheduler's port"));
    }
    Ok((host.to_string(), port))
}

/// The base session configuration of every cluster process: Ballista's settings and r2dl's
/// options, so that settings a client sends (`SET r2dl.invalid_residue = 'null'`) reach the
/// scheduler and the executors instead of being dropped as unknown.
pub fn cluster_config() -> SessionConfig {
    let mut config = SessionConfig::new_with_ballista();
    crate::options::register_options(config.options_mut());
    config
}

/// The pieces of r2dl that every process of one cluster shares.
#[derive(Debug, Clone)]
pub struct ClusterParts {
    r2dl: R2dl,
    functions: Vec<Arc<ScalarUDF>>,
    logical: Arc<R2dlLogicalCodec>,
    physical: Arc<R2dlPhysicalCodec>,
}

impl ClusterParts {
    /// `r2dl`'s functions and codecs, with model queries planned for a cluster. The predictor
    /// catalog is read once, here: every session the process builds afterwards serves the same
    /// functions its codecs vouch for.
    pub fn new(r2dl: R2dl) -> Result<Self> {
        let catalog = r2dl.catalog().map_err(|e| DataFusionError::External(Box::new(e)))?;
        let r2dl = r2dl.with_catalog(catalog).distributed(true);
        let functions = r2dl.functions()?;
        Ok(Self {
            logical: Arc::new(R2dlLogicalCodec::new(&functions)),
            physical: Arc::new(R2dlPhysicalCodec::new(&functions)),
            functions,
            r2dl,
        })
    }

    /// A session state for `config`, as the scheduler plans with and executors run with:
    /// DataFusion's defaults, Ballista's settings, everything r2dl adds, and r2dl's codecs.
    pub fn session_state(&self, config: SessionConfig) -> Result<SessionState> {
        let config = config
            .upgrade_for_ballista()
            .with_ballista_logical_extension_codec(self.logical.clone())
            .with_ballista_physical_extension_codec(self.physical.clone())
            // Ballista's adaptive planner plans with DataFusion's default physical planner and
            // its own rule list, passing over the session's query planner and physical rules —
            // r2dl's split of model queries and its scan-limit rule; the static planner uses both.
            .set_bool(BALLISTA_ADAPTIVE_PLANNER_ENABLED, false);
        let builder = SessionStateBuilder::new().with_config(config).with_default_features();
        Ok(self.r2dl.configure(builder)?.build())
    }

    /// A client session whose statements run on the cluster at `url` (`df://HOST:PORT`), with
    /// r2dl's file tables (`FROM 'x.fasta'`).
    pub async fn client(&self, url: &str, config: SessionConfig) -> Result<SessionContext> {
        let (host, port) = scheduler_address(url)?;
        let state = self.session_state(config)?;
        let ctx = SessionContext::remote_with_state(&format!("df://{host}:{port}"), state).await?;
        // Ballista's upgrade of the state replaces its scalar functions with Ballista's list;
        // the client needs r2dl's to plan (the scheduler and executors have their own).
        for function in &self.functions {
            ctx.register_udf(function.as_ref().clone());
        }
        Ok(crate::enable_file_tables(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_addresses_are_df_host_port() {
        assert_eq!(
            scheduler_address("df://127.0.0.1:50050").expect("valid"),
            ("127.0.0.1".to_string(), 50050)
        );
        assert_eq!(
            scheduler_address("df://node-1:7").expect("valid"),
            ("node-1".to_string(), 7)
        );
        for (url, reason) in [
            ("http://127.0.0.1:50050", "df://"),
            ("df://127.0.0.1", "no port"),
            ("df://:50050", "no host"),
            ("df://h:x", "not a number"),
            ("df://h:0", "port 0"),
        ] {
            let error = scheduler_address(url).expect_err(url).to_string();
            assert!(error.contains(reason) && error.contains(url), "{url}: {error}");
        }
    }
}
