//! The controller's errors: what was being done to which object, and whether retrying can help.
//! Each has one stable reason, used for the condition, the event and the `reason` label of the
//! failure metric.

use std::fmt;

use wukong_api::conditions::{self, Reason};
use wukong_render::status::Failure;

/// The step of a reconcile an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading what is not watched (the owner's liveness, a Secret's existence).
    Observe,
    ApplyNad,
    ApplySecret,
    ApplyVm,
    DeleteNad,
    DeleteSecret,
    ExpandPvc,
    PatchStatus,
    /// Removing what the original operator wrote (its finalizer, fields of the VM it made).
    Takeover,
}

impl Stage {
    fn verb(self) -> &'static str {
        match self {
            Stage::Observe => "read",
            Stage::ApplyNad | Stage::ApplySecret | Stage::ApplyVm => "apply",
            Stage::DeleteNad | Stage::DeleteSecret => "delete",
            Stage::ExpandPvc => "expand",
            Stage::PatchStatus => "patch the status of",
            Stage::Takeover => "take over",
        }
    }
}

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The API server refuses the request as it is (400, 403, 422, ...): a retry gets the same
    /// answer. Reported in the Wukong's status; retried slowly in case the cause goes away.
    Permanent,
    /// What was observed changed under the request (409): observe again, soon.
    Conflict,
    /// Anything else (5xx, 429, timeouts, the API server away): retried with backoff, and the
    /// status is left as it was.
    Transient,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("{} {object}: {}", stage.verb(), api_message(source))]
    Api {
        stage: Stage,
        /// `Kind namespace/name` (with the new size for an expansion).
        object: String,
        #[source]
        source: kube::Error,
    },
    /// An object from the API server could not be read or written as JSON.
    #[error("cannot convert {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// This replica lost (or never had) the leader lease: it writes nothing.
    #[error("not the leader (the lease was not renewed in time): nothing is written")]
    NotLeader,
    /// A watch has not listed its kind yet (just started, or its list keeps failing): nothing
    /// is decided from a store that would take every child for absent.
    #[error("the watch of {0} objects has not listed them yet: nothing is decided before it has")]
    NotSynced(&'static str),
}

/// A 422 whose only complaint is `metadata.uid`: the object under that name is another one.
fn replaced_meanwhile(status: &kube::core::Status) -> bool {
    let causes = status.details.as_ref().map(|d| d.causes.as_slice()).unwrap_or_default();
    status.code == 422 && !causes.is_empty() && causes.iter().all(|c| c.field == "metadata.uid")
}

/// The API server's own message when it sent one (a Status), else the error.
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

impl Error {
    pub fn api(stage: Stage, object: impl fmt::Display, source: kube::Error) -> Self {
        Error::Api { stage, object: object.to_string(), source }
    }

    pub fn class(&self) -> Class {
        match self {
            // An apply carrying the observed uid onto an object replaced meanwhile is refused
            // as an immutable field: the observation is out of date, like a 409.
            Error::Api { source: kube::Error::Api(status), .. } if replaced_meanwhile(status) => Class::Conflict,
            Error::Api { source: kube::Error::Api(status), .. } => match status.code {
                409 => Class::Conflict,
                // 404: a namespace being deleted, an owner gone; 408/429: load; 410: a watch
                // too old (not for writes, but never permanent)
                404 | 408 | 410 | 429 => Class::Transient,
                400..=499 => Class::Permanent,
                _ => Class::Transient,
            },
            Error::Api { .. } | Error::Json { .. } | Error::NotLeader | Error::NotSynced(_) => Class::Transient,
        }
    }

    pub fn reason(&self) -> Reason {
        match (self, self.class()) {
            (Error::Api { stage, .. }, Class::Permanent) => match stage {
                Stage::ApplyNad | Stage::ApplySecret | Stage::ApplyVm | Stage::Takeover => Reason::ApplyFailed,
                Stage::DeleteNad | Stage::DeleteSecret => Reason::DeleteFailed,
                Stage::ExpandPvc => Reason::ExpansionFailed,
                Stage::Observe | Stage::PatchStatus => Reason::ApiError,
            },
            _ => Reason::ApiError,
        }
    }

    /// A permanent refusal as the status reports it: the condition it holds down, its reason,
    /// and the request with the API server's words. None for what a retry may fix.
    pub fn failure(&self) -> Option<Failure> {
        let Error::Api { stage, .. } = self else { return None };
        if self.class() != Class::Permanent {
            return None;
        }
        let condition = match stage {
            Stage::ApplyNad | Stage::DeleteNad => conditions::NETWORKS_READY,
            Stage::ApplySecret | Stage::ApplyVm | Stage::DeleteSecret | Stage::Takeover => {
                conditions::VIRTUAL_MACHINE_READY
            }
            Stage::ExpandPvc => conditions::READY,
            Stage::Observe | Stage::PatchStatus => return None,
        };
        Some(Failure { condition, reason: self.reason(), message: self.to_string() })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    fn refused(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure(message, "Invalid").with_code(code)))
    }

    #[test]
    fn the_api_servers_answer_says_whether_a_retry_can_help() {
        let e = |code| Error::api(Stage::ApplyVm, "VirtualMachine prod/web-vm", refused(code, "x")).class();
        assert_eq!([e(422), e(400), e(403)], [Class::Permanent; 3]);
        assert_eq!(e(409), Class::Conflict);
        // The uid precondition of an apply onto an object replaced meanwhile: 422 on metadata.uid.
        let mut replaced = Status::failure("metadata.uid: field is immutable", "Invalid").with_code(422);
        replaced.details = Some(kube::core::response::StatusDetails {
            causes: vec![kube::core::response::StatusCause {
                reason: "FieldValueInvalid".into(),
                message: "field is immutable".into(),
                field: "metadata.uid".into(),
            }],
            name: "web-vm".into(),
            group: "kubevirt.io".into(),
            kind: "virtualmachines".into(),
            uid: String::new(),
            retry_after_seconds: 0,
        });
        let replaced = Error::api(Stage::ApplyVm, "VirtualMachine prod/web-vm", kube::Error::Api(Box::new(replaced)));
        assert_eq!(replaced.class(), Class::Conflict);
        assert_eq!(replaced.failure(), None, "not reported: observed again");
        assert_eq!([e(404), e(429), e(500), e(503), e(504)], [Class::Transient; 5]);
        assert_eq!(Error::NotLeader.class(), Class::Transient);
        assert_eq!(Error::NotSynced("NetworkAttachmentDefinition").class(), Class::Transient);
    }

    #[test]
    fn a_permanent_refusal_names_the_request_and_quotes_the_server() {
        let e = Error::api(
            Stage::ApplyVm,
            "VirtualMachine prod/web-vm",
            refused(422, "admission webhook \"virtualmachine-validator.kubevirt.io\" denied the request: spec.x"),
        );
        let failure = e.failure().unwrap();
        assert_eq!((failure.condition, failure.reason), (conditions::VIRTUAL_MACHINE_READY, Reason::ApplyFailed));
        assert_eq!(
            failure.message,
            "apply VirtualMachine prod/web-vm: admission webhook \"virtualmachine-validator.kubevirt.io\" denied the request: spec.x"
        );
        let expand = Error::api(
            Stage::ExpandPvc,
            "PersistentVolumeClaim prod/db-data to 40Gi",
            refused(403, "only dynamically provisioned pvc can be resized"),
        );
        assert_eq!(expand.failure().unwrap().condition, conditions::READY);
        assert_eq!(expand.reason(), Reason::ExpansionFailed);
        // A transient error reports nothing: the status does not flap.
        assert_eq!(Error::api(Stage::ApplyNad, "x", refused(503, "busy")).failure(), None);
    }
}
