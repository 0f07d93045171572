//! The controller's settings, as a plain value (the command line builds one, tests too).

use std::collections::BTreeSet;
use std::time::Duration;

use wukong_render::CniVersion;
use wukong_render::decide::Policy;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Only Wukongs of this namespace (None: all namespaces).
    pub namespace: Option<String>,
    /// Namespaces, besides a Wukong's own, that `nadName` may point into.
    pub nad_namespaces: BTreeSet<String>,
    pub cni_version: CniVersion,
    /// Wukongs reconciled at once.
    pub concurrency: u16,
    /// How often the optional kinds are discovered again.
    pub discovery_interval: Duration,
    /// Safety-net resync of a converged Wukong.
    pub resync: Duration,
    pub lease_name: String,
    pub lease_namespace: String,
    /// This replica's name in the Lease.
    pub identity: String,
    /// How long a Lease holds without renewal; writes stop at two thirds of it.
    pub lease_duration: Duration,
}

impl Config {
    pub fn policy(&self) -> Policy {
        Policy { cni_version: self.cni_version, nad_namespaces: self.nad_namespaces.clone() }
    }

    /// How long a served kind must stay missing before it counts as gone: three discoveries.
    pub fn kind_absence(&self) -> Duration {
        self.discovery_interval * 2
    }
}
