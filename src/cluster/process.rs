//! The cluster's processes: Ballista's scheduler and executor with r2dl's sessions, functions and
//! codecs; and both in one process, for tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::common::Result;

use super::report::ReportingEngine;
use super::{ClusterError, ClusterParts, cluster_config};

fn scheduler_error(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Process {
        role: "scheduler",
        message: e.to_string(),
    }
}

fn executor_error(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Process {
        role: "executor",
        message: e.to_string(),
    }
}

/// Runs a scheduler listening on `bind` until the process ends: Ballista's, planning with
/// sessions that `parts` builds.
pub async fn run_scheduler(parts: ClusterParts, bind: SocketAddr) -> Result<(), ClusterError> {
    let builder = parts.clone();
    let config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        external_host: bind.ip().to_string(),
        override_config_producer: Some(Arc::new(cluster_config)),
        override_logical_codec: Some(parts.logical.clone()),
        override_physical_codec: Some(parts.physical.clone()),
        override_session_builder: Some(Arc::new(move |session| builder.session_state(session))),
        ..Default::default()
    };
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(scheduler_error)?;
    start_server(cluster, bind, Arc::new(config))
        .await
        .map_err(scheduler_error)
}

/// Where an executor listens and which scheduler it serves.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's host.
    pub scheduler_host: String,
    /// The scheduler's port.
    pub scheduler_port: u16,
    /// Where the executor serves its results (Arrow Flight); its gRPC port is the next one.
    pub bind: SocketAddr,
    /// Tasks run at once.
    pub concurrency: usize,
}

/// Runs an executor until the process ends: Ballista's, running tasks with the functions and
/// options of `parts`.
pub async fn run_executor(parts: ClusterParts, options: ExecutorOptions) -> Result<(), ClusterError> {
    let state = parts.session_state(cluster_config()).map_err(executor_error)?;
    let grpc_port = options
        .bind
        .port()
        .checked_add(1)
        .ok_or_else(|| executor_error("the port after --bind's (for gRPC) is beyond 65535"))?;
    let config = ExecutorProcessConfig {
        bind_host: options.bind.ip().to_string(),
        external_host: Some(options.bind.ip().to_string()),
        port: options.bind.port(),
        grpc_port,
        scheduler_host: options.scheduler_host,
        scheduler_port: options.scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        vcores: options.concurrency,
        // The scheduler hears from each executor every 5 s (Ballista's default is 60 s).
        executor_heartbeat_interval_seconds: 5,
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&state))),
        override_execution_engine: Some(Arc::new(ReportingEngine::new(options.bind.to_string()))),
        override_config_producer: Some(Arc::new(cluster_config)),
        override_logical_codec: Some(parts.logical.clone()),
        override_physical_codec: Some(parts.physical.clone()),
        ..Default::default()
    };
    start_executor_process(Arc::new(config)).await.map_err(executor_error)
}

/// A scheduler and executors in this process, on loopback ports: the same code as `r2dl
/// scheduler` and `r2dl executor` (Ballista's planning, protobuf and Arrow Flight paths), for
/// tests and trials. They run until the runtime that started them ends.
#[derive(Debug)]
pub struct InProcessCluster {
    url: String,
}

impl InProcessCluster {
    /// Starts a scheduler and `executors` executors, each running `concurrency` tasks at once.
    pub async fn start(parts: ClusterParts, executors: usize, concurrency: usize) -> Result<Self> {
        let scheduler = free_ports(1)?;
        let bind = SocketAddr::from(([127, 0, 0, 1], scheduler));
        let scheduler_parts = parts.clone();
        tokio::spawn(async move {
            if let Err(e) = run_scheduler(scheduler_parts, bind).await {
                eprintln!("{e}");
            }
        });
        connect(&format!("http://{bind}")).await?;
        for _ in 0..executors {
            let options = ExecutorOptions {
                scheduler_host: "127.0.0.1".into(),
                scheduler_port: scheduler,
                bind: SocketAddr::from(([127, 0, 0, 1], free_ports(2)?)),
                concurrency,
            };
            let executor_parts = parts.clone();
            tokio::spawn(async move {
                if let Err(e) = run_executor(executor_parts, options).await {
                    eprintln!("{e}");
                }
            });
        }
        Ok(Self {
            url: format!("df://{bind}"),
        })
    }

    /// The scheduler's address, for [`ClusterParts::client`].
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// The first of `count` consecutive loopback ports that are free now.
fn free_ports(count: u16) -> Result<u16, ClusterError> {
    for _ in 0..100 {
        let first = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| scheduler_error(format!("no free loopback port: {e}")))?
            .port();
        let free = (1..count).all(|i| {
            first
                .checked_add(i)
                .is_some_and(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        });
        if free {
            return Ok(first);
        }
    }
    Err(scheduler_error(format!("no {count} consecutive free loopback ports")))
}

/// A gRPC client of the scheduler at `url`, retried for up to ten seconds while it starts.
async fn connect(url: &str) -> Result<(), ClusterError> {
    let mut last = None;
    for _ in 0..100 {
        match SchedulerGrpcClient::connect(url.to_string()).await {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(scheduler_error(format!(
        "no scheduler answered at {url}: {}",
        last.map_or_else(String::new, |e| e.to_string())
    )))
}
