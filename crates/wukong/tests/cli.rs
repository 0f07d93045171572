//! `wukong render` and `wukong crd` as a user runs them.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn wukong(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wukong"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const INVALID: &str = r#"
apiVersion: vm.novasphere.dev/v1alpha1
kind: Wukong
metadata: {name: web-01, namespace: prod}
spec:
  cpu: 2
  memory: 4Gi
  networks:
    - name: mgmt
      type: bridge
      ipConfig: {mode: static}
"#;

#[test]
fn render_prints_the_nads_the_cloud_init_secret_then_the_vm_of_every_wukong() {
    let out = wukong(&["render", "-f", "examples/web-server-01.yaml"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let kinds: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("kind: ")).collect();
    assert_eq!(kinds, ["NetworkAttachmentDefinition", "NetworkAttachmentDefinition", "Secret", "VirtualMachine"]);
    assert!(stdout.contains("#   k8s.v1.cni.cncf.io/networks: '[{\"name\":\"web-server-01-mgmt-nad\""), "{stdout}");
}

#[test]
fn render_reads_several_documents_from_stdin() {
    let two = format!(
        "{}---\n{}",
        std::fs::read_to_string("../../examples/web-server-01.yaml").unwrap(),
        std::fs::read_to_string("../../examples/sriov.yaml").unwrap()
    );
    let out = wukong(&["render", "-f", "-"], Some(&two));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("name: web-server-01-vm") && stdout.contains("name: dpdk-router-vm"), "{stdout}");
}

#[test]
fn render_json_is_one_list() {
    let out = wukong(&["render", "-f", "examples/web-server-01.yaml", "-o", "json"], None);
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["kind"], "List");
    let kinds: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["NetworkAttachmentDefinition", "NetworkAttachmentDefinition", "Secret", "VirtualMachine"]);
}

#[test]
fn invalid_input_exits_2_names_the_wukong_field_and_fix_and_prints_nothing() {
    let out = wukong(&["render", "-f", "-"], Some(INVALID));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "stdout must stay empty: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Wukong prod/web-01 is invalid"), "{stderr}");
    assert!(stderr.contains("spec.networks[0].ipConfig.address"), "{stderr}");
    assert!(stderr.contains("set it in CIDR form, e.g. 192.168.100.10/24"), "{stderr}");
}

#[test]
fn one_invalid_wukong_among_valid_ones_prints_nothing() {
    let input = format!("{}---\n{INVALID}", std::fs::read_to_string("../../examples/sriov.yaml").unwrap());
    let out = wukong(&["render", "-f", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_yaml_and_unknown_fields_exit_2() {
    let out = wukong(&["render", "-f", "-"], Some("spec: [unclosed"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("the input cannot be read") && stderr.contains("yaml:"), "{stderr}");
    assert!(out.stdout.is_empty());

    let unknown = INVALID.replace("ipConfig: {mode: static}", "vlan: 100");
    let out = wukong(&["render", "-f", "-"], Some(&unknown));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown field \"spec.networks[0].vlan\""), "{}", text(&out.stderr));
}

#[test]
fn a_missing_file_exits_2() {
    let out = wukong(&["render", "-f", "examples/does-not-exist.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read examples/does-not-exist.yaml"));
}

#[test]
fn an_unsupported_cni_version_is_refused() {
    let out = wukong(&["render", "-f", "examples/web-server-01.yaml", "--cni-version", "1.1.0"], None);
    assert_eq!(out.status.code(), Some(2), "clap exits 2 on a bad flag value");
    assert!(text(&out.stderr).contains("unsupported CNI version \"1.1.0\""));
}

#[test]
fn no_multus_renders_no_nad() {
    let out = wukong(&["render", "-f", "examples/web-server-01.yaml", "--no-multus"], None);
    assert!(out.status.success());
    assert!(!text(&out.stdout).contains("kind: NetworkAttachmentDefinition"));
}

#[test]
fn crd_prints_what_deploy_holds() {
    let out = wukong(&["crd"], None);
    assert!(out.status.success());
    let deployed = std::fs::read_to_string("../../deploy/crd.yaml").unwrap();
    assert!(
        text(&out.stdout) == deployed,
        "deploy/crd.yaml differs from `wukong crd`: run `make crd` and commit the result"
    );
}

/// `examples/web-server-01.yaml` with `edit` applied to its (YAML) text.
fn web_server_01(edit: impl FnOnce(String) -> String) -> String {
    edit(std::fs::read_to_string("../../examples/web-server-01.yaml").unwrap())
}

#[test]
fn render_diff_from_an_old_manifest_says_what_is_live_and_what_waits_for_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.yaml");
    std::fs::write(&old, web_server_01(|s| s)).unwrap();
    // data goes down, mgmt moves to VLAN 200, a backup network is added.
    let new = web_server_01(|s| {
        let s = s.replace("vlanId: 100", "vlanId: 200");
        let s = s.replace(
            "    - name: data\n      type: bridge\n",
            "    - name: data\n      type: bridge\n      linkState: down\n",
        );
        format!("{s}    - name: backup\n      type: bridge\n")
    });
    assert!(new.contains("linkState: down") && new.contains("vlanId: 200"), "{new}");
    let out = wukong(&["render", "--diff", "--from", old.to_str().unwrap(), "-f", "-"], Some(&new));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("Wukong default/web-server-01 (VirtualMachine default/web-server-01-vm runs):\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  network backup  added (bridge binding, NAD web-server-01-backup-nad)\n"), "{stdout}");
    assert!(stdout.contains("live: KubeVirt hot-plugs a bridge-bound interface into the running VM"), "{stdout}");
    assert!(stdout.contains("  network data    linkState - -> down; link up -> down\n"), "{stdout}");
    assert!(
        stdout.contains("network mgmt    vlanId 100 -> 200; NAD web-server-01-mgmt-nad -> NAD web-server-01-mgmt-"),
        "{stdout}"
    );
    assert!(stdout.contains("at a restart (KubeVirt reports RestartRequired)"), "{stdout}");
    assert!(stdout.contains("3 changes, 2 live, 1 at a restart (virtctl restart web-server-01-vm)"), "{stdout}");

    // With KubeVirt's LiveUpdateNADRef, the new VLAN reaches the VM through a migration.
    let out = wukong(
        &[
            "render",
            "--diff",
            "--from",
            old.to_str().unwrap(),
            "-f",
            "-",
            "-o",
            "json",
            "--kubevirt-feature-gates",
            "LiveUpdateNADRef",
        ],
        Some(&new),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let previews: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let applies: Vec<(&str, &str)> = previews[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["subject"].as_str().unwrap(), c["applies"].as_str().unwrap()))
        .collect();
    assert_eq!(applies, [("network mgmt", "Migration"), ("network data", "Live"), ("network backup", "Live")]);
}

#[test]
fn render_diff_flags_need_diff_and_from() {
    let out = wukong(&["render", "-f", "examples/web-server-01.yaml", "--from", "examples/web-server-01.yaml"], None);
    assert_eq!(out.status.code(), Some(2), "--from without --diff");
    let out = wukong(
        &["render", "--diff", "-f", "examples/web-server-01.yaml", "--kubevirt-feature-gates", "LiveUpdateNADRef"],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "KubeVirt facts are only assumed offline");
}

#[test]
fn the_warning_policy_is_what_deploy_holds() {
    let out = wukong(&["crd", "--warning-policy"], None);
    assert!(out.status.success());
    let deployed = std::fs::read_to_string("../../deploy/warning-policy.yaml").unwrap();
    assert!(
        text(&out.stdout) == deployed,
        "deploy/warning-policy.yaml differs from `wukong crd --warning-policy`: run `make crd` and commit the result"
    );
    assert!(deployed.contains("validationActions:\n  - Warn"), "{deployed}");
}

#[test]
fn render_prints_the_warnings_of_the_original_operators_forms_and_succeeds() {
    let manifest = r#"
apiVersion: vm.novasphere.dev/v1alpha1
kind: Wukong
metadata:
  name: wukong-sample
spec:
  cpu: 2
  memory: 2Gi
  networks:
    - name: default
      type: bridge
      ipConfig:
        mode: dhcp
  disks:
    - name: system
      size: 10Gi
      storageClassName: local-path
      boot: true
"#;
    let out = wukong(&["render", "-f", "-"], Some(manifest));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("warning: Wukong wukong-sample: network \"default\": type is ignored"), "{stderr}");
    assert!(stderr.contains("warning: Wukong wukong-sample: network \"default\": ipConfig is ignored"), "{stderr}");
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("kind: NetworkAttachmentDefinition"), "default is the pod network: {stdout}");
    assert!(stdout.contains("claimName") || stdout.contains("dataVolume:"), "{stdout}");
}
