//! cloud-init (KubeVirt `cloudInitNoCloud`): the guest's user, SSH keys and addresses.
//!
//! Credentials never go into the VM spec: user data and network data live in a Secret
//! `<wukong>-cloudinit` (keys `userdata` and `networkdata`) that the VM references on a disk and
//! volume named `cloudinit`. The VM gets that disk only when there is something to say: a
//! `cloudInitUser`, an `sshKeySecret`, or an attached network with an `ipConfig`.
//!
//! **User data** (`#cloud-config`): `hostname` is the Wukong's name; `cloudInitUser` becomes the
//! image's default user (`system_info.default_user`, and `users: [default]`, so the image's own
//! default user is not created) with `passwd` (the `passwordHash`, a crypt(3) hash: plain
//! passwords are refused at admission), `lock_passwd` (`lockPasswd`, else locked exactly when
//! there is no hash: cloud-init locks by default), `sudo` (default `ALL=(ALL) NOPASSWD:ALL`; an
//! empty string gives no sudo rule), `shell` (default `/bin/bash`) and `groups`.
//!
//! **SSH keys** never pass through wukong: the VM names the `sshKeySecret` Secret in
//! `accessCredentials` (propagation `noCloud`), KubeVirt mounts it into the launcher pod and
//! hands its keys to cloud-init as NoCloud meta-data `public-keys`, which cloud-init installs for
//! the default user: the `cloudInitUser` above, else the image's own. So wukong never reads a
//! user's Secret, and a changed key reaches the guest when KubeVirt starts a new instance.
//!
//! **Network data** (cloud-init network config version 2, the subset cloud-init documents in
//! `doc/rtd/reference/network-config-format-v2.rst`; no top-level `network:` key, as the NoCloud
//! `network-config` file takes it), one `ethernets` entry per attached network with an
//! `ipConfig`, keyed by the network name and matched by the interface's fixed MAC
//! (`match.macaddress`, lower case). No `set-name`: the guest keeps its own interface names
//! (and IFNAMSIZ never bites).
//! - static: `addresses: [<address>]`; with a gateway, `routes: [{to: 0.0.0.0/0 (::/0 for
//!   IPv6), via: <gateway>, metric: 100 + n}]` where n counts the secondary networks with a
//!   gateway in spec order (1, 2, ...): netplan refuses two default routes with the same metric,
//!   and the pod network's DHCP route (metric 100) stays the preferred one. `to: default` is
//!   netplan-only, so the explicit prefixes are used.
//! - dhcp: `dhcp4: true`. A dhcp ipConfig carries no address to tell the family; the CNI `dhcp`
//!   IPAM that serves it is DHCPv4 only, and IPv6 guests get their address by router
//!   advertisement, which is on by default.
//! - `dnsServers` → `nameservers.addresses` (static and dhcp).
//! - The pod network is listed too, as `default` with `dhcp4: true`: once network data is given,
//!   cloud-init no longer writes its fallback config (DHCP on the first NIC), so an unlisted pod
//!   interface would stay without an address. KubeVirt's masquerade interface has no fixed MAC
//!   of its own, so whenever network data is written the VM fixes the pod interface's MAC too
//!   ([`NetworkPlan::pod_mac`]: derived like the secondary ones, from the network name `default`).
//!
//! Every string scalar is written double-quoted (JSON escaping is valid YAML), so MAC addresses,
//! hashes and names like `on` or `12:34:56:00:00:01` are never read as booleans or numbers by
//! YAML 1.1 parsers (cloud-init uses PyYAML). Output is deterministic, byte for byte.
//!
//! cloud-init applies users, keys and network config once per instance: a changed Secret reaches
//! a running guest only when KubeVirt starts a new instance of the VM.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use wukong_api::{IpMode, Wukong};

use crate::names;
use crate::plan::NetworkPlan;

/// Name of the VM disk and volume that carry cloud-init.
pub const VOLUME: &str = "cloudinit";
/// Key of the user data in the Secret (KubeVirt reads `userdata` or `userData`).
pub const USER_DATA_KEY: &str = "userdata";
/// Key of the network data in the Secret (KubeVirt reads `networkdata` or `networkData`).
pub const NETWORK_DATA_KEY: &str = "networkdata";
/// sudoers rule of `cloudInitUser` when `sudo` is not set.
pub const DEFAULT_SUDO: &str = "ALL=(ALL) NOPASSWD:ALL";
/// Login shell of `cloudInitUser` when `shell` is not set.
pub const DEFAULT_SHELL: &str = "/bin/bash";
/// Metric of the first secondary default route; the n-th gets `ROUTE_METRIC_BASE + n`.
pub const ROUTE_METRIC_BASE: u32 = 100;

/// `<wukong>-cloudinit`, the Secret holding user data and network data.
pub fn secret_name(wukong: &str) -> String {
    format!("{wukong}{SECRET_SUFFIX}")
}

/// The end of the cloud-init Secret's name (`<wukong>-cloudinit`).
pub const SECRET_SUFFIX: &str = "-cloudinit";

/// Whether the VM gets the cloud-init disk: a user, SSH keys (KubeVirt propagates them through
/// it) or guest addresses to configure.
pub fn needed(wukong: &Wukong, plan: &NetworkPlan<'_>) -> bool {
    let spec = &wukong.spec;
    spec.cloud_init_user.is_some() || spec.ssh_key_secret.is_some() || configures_network(plan)
}

/// Whether network data is written: some attached network has an `ipConfig`.
pub fn configures_network(plan: &NetworkPlan<'_>) -> bool {
    plan.attached().any(|n| n.spec.ip_config.is_some())
}

/// The `#cloud-config` user data.
pub fn user_data(wukong: &Wukong) -> String {
    let spec = &wukong.spec;
    let mut top = vec![("hostname".into(), Node::Str(names::name_of(wukong).into()))];
    if let Some(user) = &spec.cloud_init_user {
        let mut u = vec![("name".into(), Node::Str(user.name.as_str().into()))];
        if let Some(hash) = &user.password_hash {
            u.push(("passwd".into(), Node::Str(hash.into())));
        }
        u.push(("lock_passwd".into(), Node::Bool(user.lock_passwd.unwrap_or(user.password_hash.is_none()))));
        let sudo = user.sudo.as_deref().unwrap_or(DEFAULT_SUDO);
        if !sudo.is_empty() {
            u.push(("sudo".into(), Node::Str(sudo.into())));
        }
        u.push(("shell".into(), Node::Str(user.shell.as_deref().unwrap_or(DEFAULT_SHELL).into())));
        if !user.groups.is_empty() {
            u.push(("groups".into(), Node::List(user.groups.iter().map(|g| Node::Str(g.into())).collect())));
        }
        top.push(("system_info".into(), Node::Map(vec![("default_user".into(), Node::Map(u))])));
        top.push(("users".into(), Node::List(vec![Node::Str("default".into())])));
    }
    let mut out = String::with_capacity(512);
    out.push_str("#cloud-config\n");
    emit(&Node::Map(top), 0, &mut out);
    out
}

/// The network data (version 2), or `None` when no attached network has an `ipConfig`.
pub fn network_data(plan: &NetworkPlan<'_>) -> Option<String> {
    if !configures_network(plan) {
        return None;
    }
    // Written straight out (in the layout `emit` gives): it runs on every reconcile.
    let mut out = String::with_capacity(64 + 256 * plan.networks.len());
    out.push_str("version: 2\nethernets:\n");
    ethernet(&mut out, names::POD_NETWORK, &plan.pod_mac);
    out.push_str("    dhcp4: true\n");
    let mut routes = 0;
    for net in plan.attached() {
        let Some(ip) = &net.spec.ip_config else { continue };
        ethernet(&mut out, net.name(), &net.mac);
        match ip.mode {
            IpMode::Dhcp => out.push_str("    dhcp4: true\n"),
            IpMode::Static => {
                if let Some(address) = &ip.address {
                    out.push_str("    addresses:\n      - ");
                    push_quoted(&mut out, address);
                    out.push('\n');
                }
                if let Some(gateway) = &ip.gateway {
                    routes += 1;
                    let to = if gateway.contains(':') { "\"::/0\"" } else { "\"0.0.0.0/0\"" };
                    out.push_str("    routes:\n      - to: ");
                    out.push_str(to);
                    out.push_str("\n        via: ");
                    push_quoted(&mut out, gateway);
                    let _ = writeln!(out, "\n        metric: {}", ROUTE_METRIC_BASE + routes);
                }
            }
        }
        if !ip.dns_servers.is_empty() {
            out.push_str("    nameservers:\n      addresses:\n");
            for server in &ip.dns_servers {
                out.push_str("        - ");
                push_quoted(&mut out, server);
                out.push('\n');
            }
        }
    }
    Some(out)
}

/// `  <id>:` and its `match: {macaddress}` (lower case, as every MAC wukong writes).
fn ethernet(out: &mut String, id: &str, mac: &str) {
    out.push_str("  ");
    push_key(out, id);
    out.push_str(":\n    match:\n      macaddress: ");
    push_quoted(out, &mac.to_ascii_lowercase());
    out.push('\n');
}

/// The Secret `<wukong>-cloudinit` the VM's cloud-init volume references, or `None` when the VM
/// needs no cloud-init ([`needed`]). Labelled and owned like every child, so it is garbage
/// collected with the Wukong.
pub fn secret(wukong: &Wukong, plan: &NetworkPlan<'_>) -> Option<Secret> {
    if !needed(wukong, plan) {
        return None;
    }
    let name = names::name_of(wukong);
    let mut data = BTreeMap::from([(USER_DATA_KEY.to_string(), ByteString(user_data(wukong).into_bytes()))]);
    if let Some(network) = network_data(plan) {
        data.insert(NETWORK_DATA_KEY.to_string(), ByteString(network.into_bytes()));
    }
    Some(Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(name)),
            namespace: Some(names::namespace_of(wukong).to_string()),
            labels: Some(names::child_labels(name, None)),
            owner_references: names::owner_reference(wukong).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        type_: Some("Opaque".to_string()),
        ..Secret::default()
    })
}

/// A YAML document, kept in insertion order. Borrows what it can from the spec: rendering runs
/// on every reconcile.
enum Node<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    List(Vec<Node<'a>>),
    Map(Vec<(Cow<'a, str>, Node<'a>)>),
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Writes a block-style YAML node at `indent`. Maps and lists must be non-empty here (callers
/// never build empty ones; [`emit_value`] writes `[]`/`{}` for safety).
fn emit(node: &Node<'_>, indent: usize, out: &mut String) {
    emit_after(node, indent, false, out);
}

/// As [`emit`]; `after_dash` when the line already holds `- ` (a map's first key goes there).
fn emit_after(node: &Node<'_>, indent: usize, after_dash: bool, out: &mut String) {
    match node {
        Node::Map(entries) => {
            for (i, (k, v)) in entries.iter().enumerate() {
                if !(after_dash && i == 0) {
                    pad(out, indent);
                }
                push_key(out, k);
                out.push(':');
                emit_value(v, indent, out);
            }
        }
        Node::List(items) => {
            for item in items {
                pad(out, indent);
                match item {
                    Node::Map(m) if !m.is_empty() => {
                        out.push_str("- ");
                        emit_after(item, indent + 2, true, out);
                    }
                    _ => {
                        out.push('-');
                        emit_value(item, indent, out);
                    }
                }
            }
        }
        scalar => {
            pad(out, indent);
            push_scalar(out, scalar);
            out.push('\n');
        }
    }
}

/// Writes what follows `key:` or `-`: a scalar on the same line, a collection below.
fn emit_value(node: &Node<'_>, indent: usize, out: &mut String) {
    match node {
        Node::List(l) if l.is_empty() => out.push_str(" []\n"),
        Node::Map(m) if m.is_empty() => out.push_str(" {}\n"),
        Node::List(_) | Node::Map(_) => {
            out.push('\n');
            emit(node, indent + 2, out);
        }
        scalar => {
            out.push(' ');
            push_scalar(out, scalar);
            out.push('\n');
        }
    }
}

fn push_scalar(out: &mut String, node: &Node<'_>) {
    match node {
        Node::Str(s) => push_quoted(out, s),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::List(_) | Node::Map(_) => unreachable!("collections are not scalars"),
    }
}

/// A mapping key: plain when it cannot be read as anything but that string, else quoted.
fn push_key(out: &mut String, k: &str) {
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && !matches!(k, "y" | "n" | "yes" | "no" | "true" | "false" | "on" | "off" | "null");
    if plain { out.push_str(k) } else { push_quoted(out, k) }
}

/// A YAML double-quoted scalar. Besides `"` and `\`, every character a YAML parser could take
/// for a line break or drop (controls, NEL, LS, PS, BOM) is escaped.
fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_that_yaml_1_1_would_retype_are_quoted() {
        let quote = |s: &str| {
            let mut out = String::new();
            push_quoted(&mut out, s);
            out
        };
        let key = |s: &str| {
            let mut out = String::new();
            push_key(&mut out, s);
            out
        };
        assert_eq!(quote("12:34:56:00:00:01"), "\"12:34:56:00:00:01\"");
        assert_eq!(key("on"), "\"on\"");
        assert_eq!(key("mgmt"), "mgmt");
        assert_eq!(key("Mgmt"), "\"Mgmt\"");
        assert_eq!(quote("a\"b\\c\u{2028}\u{7f}"), "\"a\\\"b\\\\c\\u2028\\u007f\"");
    }

    #[test]
    fn lists_of_maps_start_on_the_dash() {
        let mut out = String::new();
        let route = || Node::Map(vec![("to".into(), Node::Str("x".into())), ("on".into(), Node::Bool(true))]);
        emit(&Node::Map(vec![("routes".into(), Node::List(vec![route(), route()]))]), 2, &mut out);
        assert_eq!(out, "  routes:\n    - to: \"x\"\n      \"on\": true\n    - to: \"x\"\n      \"on\": true\n");
    }
}
