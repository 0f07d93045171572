//! The API server's audit log (`<cluster>/logs/audit.log`: every write at metadata level, and
//! every request of wukong's ServiceAccount, reads too) as the witness of who did what.

use serde_json::Value;

use super::Cluster;

/// One request the API server recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub user: String,
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

/// The audit log's size now: writes after it are the ones to come.
pub fn offset(c: &Cluster) -> u64 {
    std::fs::metadata(c.dir.join("logs/audit.log"))
        .map(|m| m.len())
        .expect("the API server writes an audit log (restart an old test cluster)")
}

const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// Every completed write (create/update/patch/delete) recorded since `offset` in `namespace`,
/// in order; Leases excluded (leader election renews them).
pub fn writes(c: &Cluster, offset: u64, namespace: &str) -> Vec<Request> {
    requests(c, offset, namespace).into_iter().filter(|w| WRITES.contains(&w.verb.as_str())).collect()
}

/// Every completed request recorded since `offset` in `namespace` (reads only of the users the
/// audit policy records them for), in order; Leases excluded.
pub fn requests(c: &Cluster, offset: u64, namespace: &str) -> Vec<Request> {
    let log = std::fs::read(c.dir.join("logs/audit.log"))
        .expect("the API server writes an audit log (restart an old test cluster)");
    let text = String::from_utf8_lossy(&log[usize::try_from(offset).unwrap().min(log.len())..]).into_owned();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["stage"] == "ResponseComplete")
        .filter(|e| e["objectRef"]["namespace"] == namespace && e["objectRef"]["resource"] != "leases")
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            Request {
                user: s(&e["user"]["username"]),
                verb: s(&e["verb"]),
                resource: s(&e["objectRef"]["resource"]),
                subresource: s(&e["objectRef"]["subresource"]),
                name: s(&e["objectRef"]["name"]),
            }
        })
        .collect()
}

/// [`writes`] by `user`, as (verb, resource, subresource, name).
pub fn writes_by(c: &Cluster, offset: u64, namespace: &str, user: &str) -> Vec<(String, String, String, String)> {
    by(writes(c, offset, namespace), user)
}

/// [`requests`] by `user`, as (verb, resource, subresource, name).
pub fn requests_by(c: &Cluster, offset: u64, namespace: &str, user: &str) -> Vec<(String, String, String, String)> {
    by(requests(c, offset, namespace), user)
}

fn by(requests: Vec<Request>, user: &str) -> Vec<(String, String, String, String)> {
    requests.into_iter().filter(|w| w.user == user).map(|w| (w.verb, w.resource, w.subresource, w.name)).collect()
}
