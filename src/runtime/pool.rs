//! The compute pool: model work runs on r2dl's own threads (one per core), off DataFusion's
//! async ones.

use std::sync::OnceLock;

/// Runs `work` on r2dl's compute pool (one thread per core), telling tokio first when called from
/// one of its multi-threaded workers, so that other tasks move off this thread meanwhile.
pub fn run_on_compute_pool<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("r2dl-compute-{i}"))
            .build()
            .ok()
    });
    let run = move || match pool {
        Some(pool) => pool.install(work),
        None => work(),
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    }
}
