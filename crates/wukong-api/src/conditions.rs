//! Condition types and reasons of a Wukong's status.
//!
//! A reason is stable: the same word is the condition's reason, the event's reason and the
//! `reason` label of the failure metric.

/// All networks are attached as the spec says.
pub const NETWORKS_READY: &str = "NetworksReady";
/// The VirtualMachine is stored and KubeVirt reports it ready.
pub const VIRTUAL_MACHINE_READY: &str = "VirtualMachineReady";
/// Both of the above.
pub const READY: &str = "Ready";
/// Changes of the spec wait for a restart of the running VM (KubeVirt's `RestartRequired` on
/// the VM, or a change KubeVirt applies only to a new instance without saying so). Present
/// only while true; `status.pendingChanges` lists the changes.
pub const RESTART_REQUIRED: &str = "RestartRequired";
/// The spec uses fields wukong ignores (the original operator's forms). Present only while true.
pub const FIELDS_IGNORED: &str = "FieldsIgnored";

/// Why a condition has its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    // NetworksReady
    /// Every secondary network has its NAD (generated or existing).
    NetworksAttached,
    /// The VM only uses the pod network.
    PodNetworkOnly,
    /// The NAD CRD is absent: secondary networks fell back to the pod network.
    MultusNotInstalled,
    /// A NAD with a generated name exists and is not controlled by this Wukong.
    NadConflict,
    /// A `nadName` names a NAD that does not exist.
    NadNotFound,
    /// A `nadName` names a NAD in a namespace that is not allow-listed.
    NadNamespaceForbidden,

    // VirtualMachineReady
    /// KubeVirt reports the VM ready.
    VirtualMachineRunning,
    /// The VM is stored; KubeVirt has not (yet) reported it running.
    VirtualMachineNotRunning,
    /// The VM is stored and asked to be stopped.
    VirtualMachineStopped,
    /// The VM is not written until its networks are ready.
    WaitingForNetworks,
    /// The VirtualMachine CRD is absent.
    KubeVirtNotInstalled,
    /// A VM with the generated name exists and is not controlled by this Wukong.
    VirtualMachineConflict,
    /// A network needs a KubeVirt network binding plugin the KubeVirt CR does not register.
    BindingNotRegistered,
    /// KubeVirt reports that it cannot run the VM (e.g. `Synchronized=False FailedCreate`).
    VirtualMachineFailure,

    // Any condition
    /// The spec breaks an admission rule (stored under an older CRD, for example).
    InvalidSpec,
    /// Everything is as the spec says.
    Reconciled,
    /// A Secret the spec names does not exist.
    SecretNotFound,
    /// A Secret with the cloud-init Secret's name exists and is not controlled by this Wukong.
    SecretConflict,
    /// The API server refused or failed a request; retried with backoff.
    ApiError,
    /// The API server refused to store a child (schema, a webhook, RBAC): Ready=False with its
    /// message, no hot retry.
    ApplyFailed,
    /// The API server refused to delete a child wukong no longer wants.
    DeleteFailed,
    /// The API server (or the StorageClass) refused to grow a disk's PVC.
    ExpansionFailed,

    // RestartRequired, FieldsIgnored
    /// Changes wait for a restart of the running VM.
    RestartRequired,
    /// The spec uses fields wukong ignores; the message says which and what to write instead.
    FieldsIgnored,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NetworksAttached => "NetworksAttached",
            Reason::PodNetworkOnly => "PodNetworkOnly",
            Reason::MultusNotInstalled => "MultusNotInstalled",
            Reason::NadConflict => "NADConflict",
            Reason::NadNotFound => "NADNotFound",
            Reason::NadNamespaceForbidden => "NADNamespaceForbidden",
            Reason::VirtualMachineRunning => "VirtualMachineRunning",
            Reason::VirtualMachineNotRunning => "VirtualMachineNotRunning",
            Reason::VirtualMachineStopped => "VirtualMachineStopped",
            Reason::WaitingForNetworks => "WaitingForNetworks",
            Reason::KubeVirtNotInstalled => "KubeVirtNotInstalled",
            Reason::VirtualMachineConflict => "VirtualMachineConflict",
            Reason::BindingNotRegistered => "BindingNotRegistered",
            Reason::VirtualMachineFailure => "VirtualMachineFailure",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::Reconciled => "Reconciled",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::SecretConflict => "SecretConflict",
            Reason::ApiError => "ApiError",
            Reason::ApplyFailed => "ApplyFailed",
            Reason::DeleteFailed => "DeleteFailed",
            Reason::ExpansionFailed => "ExpansionFailed",
            Reason::RestartRequired => "RestartRequired",
            Reason::FieldsIgnored => "FieldsIgnored",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
