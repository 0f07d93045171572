//! Which optional kinds (Multus NAD, KubeVirt VM, VMI and CR, CDI DataVolume) the API server
//! serves.
//!
//! A kind that is absent is not watched: a failing watch would stall every trigger of the
//! controller behind one shared backoff.

use kube::Client;
use wukong_render::decide::Kinds;

/// Asks the API server's discovery which of the optional kinds exist.
pub async fn discover(client: &Client) -> Result<Kinds, kube::Error> {
    Ok(Kinds {
        nad: serves(client, "k8s.cni.cncf.io/v1", "network-attachment-definitions").await?,
        vm: serves(client, "kubevirt.io/v1", "virtualmachines").await?,
        vmi: serves(client, "kubevirt.io/v1", "virtualmachineinstances").await?,
        data_volume: serves(client, "cdi.kubevirt.io/v1beta1", "datavolumes").await?,
        kubevirt_config: serves(client, "kubevirt.io/v1", "kubevirts").await?,
    })
}

async fn serves(client: &Client, group_version: &str, plural: &str) -> Result<bool, kube::Error> {
    match client.list_api_group_resources(group_version).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == plural)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}
