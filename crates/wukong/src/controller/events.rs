//! Events, published as `events.k8s.io/v1` objects, one per status transition.
//!
//! kube's `Recorder` keeps every event it sent for six minutes (to count repeats as a series)
//! and scans that cache under one lock on every publish: at a thousand Wukongs it held
//! thousands of events and serialized the reconciles. wukong publishes only on transitions, so
//! a repeat is rare and stands as an event of its own.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType};

/// Who publishes: `reportingController` and `reportingInstance` of every event.
#[derive(Clone)]
pub struct Publisher {
    client: kube::Client,
    controller: String,
    instance: String,
}

impl Publisher {
    pub fn new(client: kube::Client, controller: &str, instance: Option<&str>) -> Self {
        Publisher { client, controller: controller.into(), instance: instance.unwrap_or(controller).into() }
    }

    /// Creates the event about `regarding`, in its namespace.
    pub async fn publish(&self, event: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        api.create(&PostParams::default(), &build(&self.controller, &self.instance, event, regarding, Timestamp::now()))
            .await
            .map(|_| ())
    }
}

/// The event object (pure: what is sent).
fn build(controller: &str, instance: &str, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
    let object = regarding.name.as_deref().unwrap_or(controller);
    K8sEvent {
        metadata: ObjectMeta {
            // The object's name and the time: unique per publish, as kubectl's events are.
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        action: Some(event.action.clone()),
        reason: Some(event.reason.clone()),
        note: event.note.clone(),
        type_: Some(match event.type_ {
            EventType::Normal => "Normal".into(),
            EventType::Warning => "Warning".into(),
        }),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        related: event.secondary.clone(),
        reporting_controller: Some(controller.into()),
        reporting_instance: Some(instance.into()),
        ..K8sEvent::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_its_object_reporter_and_reason() {
        let regarding = ObjectReference {
            api_version: Some("vm.novasphere.dev/v1alpha1".into()),
            kind: Some("Wukong".into()),
            name: Some("web".into()),
            namespace: Some("prod".into()),
            uid: Some("u1".into()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: "ApplyFailed".into(),
            note: Some("apply VirtualMachine prod/web-vm: denied".into()),
            action: "Reconcile".into(),
            secondary: None,
        };
        let now: Timestamp = "2026-12-01T05:00:00Z".parse().unwrap();
        let e = build("wukong", "wukong-0", &event, &regarding, now);
        assert_eq!(e.metadata.name.as_deref(), Some(format!("web.{:x}", now.as_nanosecond()).as_str()));
        assert_eq!(e.metadata.namespace.as_deref(), Some("prod"));
        assert_eq!((e.type_.as_deref(), e.reason.as_deref()), (Some("Warning"), Some("ApplyFailed")));
        assert_eq!(e.note, event.note);
        assert_eq!(e.regarding, Some(regarding));
        assert_eq!(
            (e.reporting_controller.as_deref(), e.reporting_instance.as_deref()),
            (Some("wukong"), Some("wukong-0"))
        );
        assert_eq!(e.event_time, Some(MicroTime(now)));
    }
}
