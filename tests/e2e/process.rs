//! The controller process itself: how it starts and stops.

use crate::harness::{Cluster, Controller};

/// A SIGTERM can come at any time, also before the watch caches have synced, when no pass has
/// started: the process must still exit rather than wait for passes that will never come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_stopped_before_its_caches_sync_exits() {
    let cluster = Cluster::start("early-stop").await;
    for _ in 0..5 {
        Controller::start(&cluster, &[]).stop().await;
    }
}
