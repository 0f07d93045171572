//! Leader election on a `coordination.k8s.io` Lease, with a hard write deadline.
//!
//! The leader renews the Lease every `duration / 7` or so. Each successful renewal lets it write
//! until `renewal start + 2/3 duration` (the renew deadline): a leader whose renewals keep
//! failing stops writing then, even if every other request still works, a full third of the
//! lease before another replica may take over (`renewTime + duration`). The gate is checked
//! before every write, and losing the lease aborts the reconciles in flight.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tracing::{info, warn};

/// Whether this replica may write now.
#[derive(Debug, Default)]
pub struct LeaderGate {
    writable_until: Mutex<Option<Instant>>,
}

impl LeaderGate {
    pub fn can_write(&self) -> bool {
        self.writable_until.lock().expect("leader gate").is_some_and(|until| Instant::now() < until)
    }

    fn extend(&self, until: Instant) {
        *self.writable_until.lock().expect("leader gate") = Some(until);
    }

    fn close(&self) {
        *self.writable_until.lock().expect("leader gate") = None;
    }

    /// A gate that is open (tests of the reconcile, which run without an election).
    pub fn open_for(duration: Duration) -> Self {
        Self { writable_until: Mutex::new(Some(Instant::now() + duration)) }
    }
}

pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

/// What one round of the election found.
enum Round {
    Leading,
    Following,
}

impl Elector {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Self { api, name: name.to_string(), identity: identity.to_string(), duration }
    }

    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    fn retry_period(&self) -> Duration {
        (self.duration / 7).max(Duration::from_millis(200))
    }

    /// Runs the election until `stop` resolves, keeping `gate` and `leading` up to date; gives
    /// the Lease up on the way out.
    pub async fn run(self, gate: &LeaderGate, leading: watch::Sender<bool>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut last_renewal: Option<Instant> = None;
        loop {
            let started = Instant::now();
            match self.round().await {
                Ok(Round::Leading) => {
                    gate.extend(started + self.renew_deadline());
                    last_renewal = Some(started);
                    leading.send_if_modified(|l| !std::mem::replace(l, true));
                }
                Ok(Round::Following) => {
                    gate.close();
                    last_renewal = None;
                    leading.send_if_modified(|l| std::mem::replace(l, false));
                }
                Err(e) => {
                    let expired = last_renewal.is_none_or(|at| at.elapsed() >= self.renew_deadline());
                    warn!(lease = %self.name, error = %e, "cannot renew the leader lease");
                    if expired {
                        gate.close();
                        last_renewal = None;
                        leading.send_if_modified(|l| std::mem::replace(l, false));
                    }
                }
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(self.retry_period()) => {}
            }
        }
        if gate.can_write() || last_renewal.is_some() {
            gate.close();
            leading.send_if_modified(|l| std::mem::replace(l, false));
            self.release().await;
        }
    }

    async fn round(&self) -> kube::Result<Round> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    info!(lease = %self.name, identity = %self.identity, "acquired the leader lease");
                    Ok(Round::Leading)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Round::Following),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let transitions = spec.lease_transitions.unwrap_or(0);
        let next = if holder == self.identity {
            let acquired = spec.acquire_time.map_or(now, |t| t.0);
            self.spec(acquired, now, transitions)
        } else if holder.is_empty() || expired(&spec, now) {
            info!(lease = %self.name, identity = %self.identity, previous = %holder, "taking over the leader lease");
            self.spec(now, now, transitions + 1)
        } else {
            return Ok(Round::Following);
        };
        lease.spec = Some(next);
        // The replace carries the resourceVersion read above: a concurrent change fails it.
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(Round::Leading),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Round::Following),
            Err(e) => Err(e),
        }
    }

    fn spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX).max(1)),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Gives the Lease up, so the next replica need not wait for it to expire.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else { return };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => info!(lease = %self.name, "released the leader lease"),
            Err(e) => warn!(lease = %self.name, error = %e, "cannot release the leader lease"),
        }
    }
}

/// Whether a Lease held by someone else ran out (`renewTime + leaseDurationSeconds` passed).
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().map(|t| t.0) else { return true };
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    renewed.checked_add(duration).is_ok_and(|end| end <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_runs_out_after_its_duration_since_the_last_renewal() {
        let renewed = Timestamp::from_second(1_800_000_000).unwrap();
        let spec = LeaseSpec {
            holder_identity: Some("other".into()),
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        };
        assert!(!expired(&spec, renewed.checked_add(SignedDuration::from_secs(14)).unwrap()));
        assert!(expired(&spec, renewed.checked_add(SignedDuration::from_secs(15)).unwrap()));
        assert!(expired(&LeaseSpec::default(), renewed), "never renewed: free");
    }

    #[test]
    fn the_gate_closes_at_its_deadline() {
        let gate = LeaderGate::default();
        assert!(!gate.can_write());
        gate.extend(Instant::now() + Duration::from_secs(60));
        assert!(gate.can_write());
        gate.extend(Instant::now() - Duration::from_millis(1));
        assert!(!gate.can_write(), "a renewal that is too old no longer lets anyone write");
        assert!(LeaderGate::open_for(Duration::from_secs(1)).can_write());
    }
}
