//! `wukong controller`: reconciles Wukongs into NADs and VirtualMachines.
//!
//! Only the leader (a Lease, [`leader`]) runs the controller, and only while its lease is fresh
//! does it write; losing the lease aborts the reconciles in flight. The optional kinds are
//! discovered when it starts and re-checked every `discovery_interval`; when they change (a kind
//! that disappears must stay missing a while first, [`wukong_render::kinds`]) the watches are
//! rebuilt without restarting the process.
//!
//! Files, one stage each: [`config`] (settings), [`leader`] (election), [`discovery`],
//! [`watches`] (reflectors, stores, triggers), [`observe`], [`apply`], [`reconcile`], [`state`]
//! (what HTTP and tests see), [`metrics`], [`http`].

mod apply;
pub mod config;
mod context;
mod discovery;
mod error;
mod events;
pub mod http;
pub mod leader;
mod metrics;
mod observe;
mod reconcile;
mod state;
#[cfg(test)]
mod tests;
mod watches;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use kube::Client;
use kube::api::Api;
use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};
use wukong_render::decide::Kinds;
use wukong_render::kinds::KindsTracker;

pub use config::Config;
pub use discovery::discover;
pub use metrics::Metrics;
pub use state::State;

use context::{Context, Memory};
use leader::{Elector, LeaderGate};

/// Runs the controller until `shutdown` resolves: waits for the lease, then reconciles.
pub async fn run(
    config: Config,
    client: Client,
    state: Arc<State>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shutdown = shutdown.shared();
    let gate = Arc::new(LeaderGate::default());
    let (leading_tx, mut leading) = watch::channel(false);
    let (stop_election, election_stopped) = oneshot::channel::<()>();
    let elector = Elector::new(
        Api::namespaced(client.clone(), &config.lease_namespace),
        &config.lease_name,
        &config.identity,
        config.lease_duration,
    );
    let election_gate = gate.clone();
    let election = tokio::spawn(async move {
        elector.run(&election_gate, leading_tx, election_stopped.map(|_| ())).await;
    });
    info!(identity = %config.identity, lease = %format!("{}/{}", config.lease_namespace, config.lease_name), "waiting for the leader lease");
    // Kept across leaderships and rebuilds: what was written, by Wukong uid.
    let memory = Arc::new(Memory::default());
    loop {
        tokio::select! {
            _ = shutdown.clone() => break,
            changed = leading.wait_for(|l| *l) => { changed?; }
        }
        info!(identity = %config.identity, "leading");
        state.set_leader(true);
        let outcome = lead(&config, &client, &state, &gate, &memory, &mut leading, shutdown.clone()).await;
        state.set_leader(false);
        match outcome {
            Stop::Shutdown => break,
            Stop::LostLease => warn!(identity = %config.identity, "lost the leader lease: writes stopped, standing by"),
        }
    }
    // Only now, after the last write, is the lease given up for the next replica.
    let _ = stop_election.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), election).await;
    info!("stopped");
    Ok(())
}

enum Stop {
    Shutdown,
    LostLease,
}

/// Leads until the lease is lost or shutdown; rebuilds the watches when the kinds change.
async fn lead(
    config: &Config,
    client: &Client,
    state: &Arc<State>,
    gate: &Arc<LeaderGate>,
    memory: &Arc<Memory>,
    leading: &mut watch::Receiver<bool>,
    shutdown: futures::future::Shared<impl Future<Output = ()>>,
) -> Stop {
    loop {
        let kinds = tokio::select! {
            _ = shutdown.clone() => return Stop::Shutdown,
            _ = leading.wait_for(|l| !*l) => return Stop::LostLease,
            kinds = discover_until_ok(client) => kinds,
        };
        state.set_kinds(kinds);
        info!(?kinds, "optional kinds discovered");
        let watches = watches::build(client, config, kinds, memory.clone());
        state.set_store(watches.stores.wukongs.clone(), memory.clone());
        report_ready(state.clone(), watches.stores.wukongs.clone());
        let ctx = Arc::new(Context {
            client: client.clone(),
            kinds,
            policy: config.policy(),
            metrics: state.metrics.clone(),
            events: events::Publisher::new(client.clone(), "wukong", Some(&config.identity)),
            gate: gate.clone(),
            stores: watches.stores,
            memory: memory.clone(),
            requeue: config.resync,
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let controller = watches
            .controller
            .graceful_shutdown_on(stop_rx.map(|_| ()))
            .run(reconcile::reconcile, reconcile::error_policy, ctx)
            .for_each(|result| async move {
                if let Err(e) = result {
                    warn!(error = %e, "controller");
                }
            });
        tokio::pin!(controller);
        let stop = tokio::select! {
            _ = &mut controller => None,
            _ = kinds_changed(client, kinds, config) => None,
            // In-flight reconciles are dropped, not drained: the gate closed already.
            _ = leading.wait_for(|l| !*l) => return Stop::LostLease,
            _ = shutdown.clone() => Some(Stop::Shutdown),
        };
        let _ = stop_tx.send(());
        // In-flight reconciles finish (still gated by the lease); new ones are not started.
        if tokio::time::timeout(Duration::from_secs(30), &mut controller).await.is_err() {
            error!("reconciles did not finish within 30 s of the stop");
        }
        if let Some(stop) = stop {
            return stop;
        }
        info!("optional kinds changed: rebuilding the watches");
    }
}

/// Marks the controller ready once its Wukong store listed everything.
fn report_ready(state: Arc<State>, store: kube::runtime::reflector::Store<watches::WukongObject>) {
    tokio::spawn(async move {
        // The store's readiness wakes only its last waiter (the controller's own runner), so
        // poll it again until the memoized result is there.
        loop {
            match tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()).await {
                Ok(Ok(())) => {
                    info!("listed every Wukong: ready");
                    state.set_synced();
                    return;
                }
                Ok(Err(e)) => return warn!(error = %e, "the Wukong store never became ready"),
                Err(_) => continue,
            }
        }
    });
}

async fn discover_until_ok(client: &Client) -> Kinds {
    let mut delay = Duration::from_millis(500);
    loop {
        match discover(client).await {
            Ok(kinds) => return kinds,
            Err(e) => {
                warn!(error = %e, retry_in = ?delay, "discovery failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Resolves when the kinds to act on differ from `current`: at once for a kind that appears,
/// only after a sustained absence for one that disappears.
async fn kinds_changed(client: &Client, current: Kinds, config: &Config) {
    let started = Instant::now();
    let absent_for = u64::try_from(config.kind_absence().as_millis()).unwrap_or(u64::MAX);
    let mut tracker = KindsTracker::new(current, absent_for);
    loop {
        tokio::time::sleep(config.discovery_interval).await;
        let seen = match discover(client).await {
            Ok(kinds) => Some(kinds),
            Err(e) => {
                warn!(error = %e, "discovery failed; keeping the current watches");
                None
            }
        };
        let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let kinds = tracker.observe(seen, now);
        if seen.is_some_and(|s| s != kinds) {
            info!(seen = ?seen, acting_on = ?kinds, "a kind is missing: not acted on until the absence lasts");
        }
        if kinds != current {
            return;
        }
    }
}
