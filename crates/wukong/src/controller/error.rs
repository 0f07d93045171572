//! The controller's errors. Each has one stable reason, used for the condition, the event and
//! the `reason` label of the failure metric.

use wukong_api::conditions::Reason;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request; retried with backoff.
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// An object from the API server could not be read or written as JSON.
    #[error("cannot convert {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub fn reason(&self) -> Reason {
        match self {
            Error::Kube(_) | Error::Json { .. } => Reason::ApiError,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
