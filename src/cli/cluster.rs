//! `r2dl scheduler` and `r2dl executor`: the processes of a cluster (Apache DataFusion
//! Ballista's, with r2dl's tables and functions), and client sessions for `--cluster`.

use std::net::SocketAddr;

use datafusion::prelude::{SessionConfig, SessionContext};
use r2dl::cluster::{ClusterParts, ExecutorOptions, run_executor, run_scheduler, scheduler_address};

use super::{CliError, ModelArgs};

/// Arguments of `r2dl scheduler`.
#[derive(Debug, clap::Args)]
pub struct SchedulerArgs {
    /// Where to listen for clients and executors.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
    bind: SocketAddr,
    #[command(flatten)]
    model: ModelArgs,
}

/// Arguments of `r2dl executor`.
#[derive(Debug, clap::Args)]
pub struct ExecutorArgs {
    /// The scheduler to serve: `HOST:PORT` or `df://HOST:PORT`.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
    scheduler: String,
    /// Where to serve results (Arrow Flight); the next port serves gRPC.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50051")]
    bind: SocketAddr,
    /// Tasks run at once (each model task already uses every core of this machine).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    #[command(flatten)]
    model: ModelArgs,
}

/// What r2dl adds to every process of the cluster, with this model and these predictors.
fn parts(model: &ModelArgs) -> Result<ClusterParts, CliError> {
    Ok(ClusterParts::new(model.r2dl())?)
}

/// Runs `r2dl scheduler` until the process is stopped.
pub async fn scheduler(args: SchedulerArgs) -> Result<(), CliError> {
    let parts = parts(&args.model)?;
    eprintln!("r2dl scheduler listening on {}", args.bind);
    run_scheduler(parts, args.bind)
        .await
        .map_err(|e| CliError::DataFusion(e.into()))
}

/// Runs `r2dl executor` until the process is stopped.
pub async fn executor(args: ExecutorArgs) -> Result<(), CliError> {
    let parts = parts(&args.model)?;
    let url = if args.scheduler.contains("://") {
        args.scheduler.clone()
    } else {
        format!("df://{}", args.scheduler)
    };
    let (scheduler_host, scheduler_port) = scheduler_address(&url).map_err(|e| CliError::DataFusion(e.into()))?;
    eprintln!(
        "r2dl executor on {} serving the scheduler at {scheduler_host}:{scheduler_port}, {} task(s) at once",
        args.bind, args.concurrency
    );
    let options = ExecutorOptions {
        scheduler_host,
        scheduler_port,
        bind: args.bind,
        concurrency: usize::from(args.concurrency),
    };
    run_executor(parts, options)
        .await
        .map_err(|e| CliError::DataFusion(e.into()))
}

/// A session whose statements run on the cluster at `url`.
pub async fn client(url: &str, model: &ModelArgs, config: SessionConfig) -> Result<SessionContext, CliError> {
    Ok(parts(model)?.client(url, config).await?)
}
