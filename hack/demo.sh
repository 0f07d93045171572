#!/usr/bin/env bash
# `make demo`: wukong end to end on a local control plane, then everything stopped again.
#   builds wukong, starts etcd + kube-apiserver + kube-controller-manager with the NAD and Wukong
#   CRDs and the real KubeVirt (virt-api, virt-controller) and CDI (cdi-controller,
#   cdi-apiserver) next to them (hack/local-cluster.sh), runs `wukong controller`, applies
#   examples/, waits, and prints the Wukongs with their status, the NADs with their CNI configs,
#   the VMs, and what KubeVirt and CDI made of them: VMIs, launcher pods with their Multus
#   networks annotation, DataVolumes and PVCs.
# No node exists: launcher pods are created and never run, so no VM boots; NADs are stored, not
# wired by Multus (its end-to-end test does that in network namespaces).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

export WUKONG_CLUSTER_DIR="$REPO/target/demo-cluster"
export WUKONG_BIN="$REPO/target/debug/wukong"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building wukong"
cargo build -q -p wukong

controller_pid=""
cleanup() {
  [[ -n "$controller_pid" ]] && kill "$controller_pid" 2>/dev/null && wait "$controller_pid" 2>/dev/null || true
  hack/local-cluster.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "starting a local control plane (etcd, kube-apiserver, kube-controller-manager) with KubeVirt and CDI (built on first use)"
eval "$(hack/local-cluster.sh up)"
k() { "$WUKONG_CLUSTER_KUBECTL" "$@"; }

say "the NADs some examples name with nadName already exist"
k create namespace web >/dev/null
k create namespace infra >/dev/null
k apply -f - >/dev/null <<'YAML'
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: office-lan, namespace: default}
spec: {config: '{"cniVersion":"0.3.1","name":"office-lan","type":"bridge","bridge":"br-office"}'}
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: vlan42, namespace: infra}
spec: {config: '{"cniVersion":"0.3.1","name":"vlan42","type":"bridge","bridge":"br-infra","vlan":42}'}
YAML

say "the StorageClass examples/full-vm.yaml names (fast-ssd), of a provisioner CDI knows"
k apply -f - >/dev/null <<'YAML'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast-ssd}
provisioner: kubevirt.io.hostpath-provisioner
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
YAML

say "the SSH keys examples/full-vm.yaml names (sshKeySecret: db-ssh-keys)"
k -n default create secret generic db-ssh-keys \
  --from-literal=admin='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemoKeyOnlyForTheLocalDemo admin@demo' >/dev/null

say "running wukong controller (log: $WUKONG_CLUSTER_DIR/logs/wukong.log)"
"$WUKONG_BIN" controller --metrics-addr 127.0.0.1:0 --discovery-interval 5s --nad-namespaces infra \
  >"$WUKONG_CLUSTER_DIR/logs/wukong.log" 2>&1 &
controller_pid=$!

say "applying examples/"
for f in examples/*.yaml; do k apply --server-side -f "$f"; done

say "waiting until every Wukong has a status for its current spec"
deadline=$((SECONDS + 60))
until [[ -z "$(k get wukongs -A -o jsonpath='{range .items[?(@.status.observedGeneration!=@.metadata.generation)]}{.metadata.name}{"\n"}{end}' 2>/dev/null)" ]] \
  && [[ "$(k get wukongs -A -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c .)" == "$(k get wukongs -A --no-headers | wc -l)" ]]; do
  ((SECONDS < deadline)) || { echo "timed out; controller log:"; tail -20 "$WUKONG_CLUSTER_DIR/logs/wukong.log"; exit 1; }
  sleep 1
done

say "Wukongs"
k get wukongs -A
say "their conditions"
k get wukongs -A -o go-template='{{range .items}}{{.metadata.namespace}}/{{.metadata.name}}:{{"\n"}}{{range .status.conditions}}  {{.type}}={{.status}} {{.reason}}: {{.message}}{{"\n"}}{{end}}{{end}}'
say "NetworkAttachmentDefinitions and their CNI configs"
k get network-attachment-definitions.k8s.cni.cncf.io -A -o go-template='{{range .items}}{{.metadata.namespace}}/{{.metadata.name}}{{if .metadata.ownerReferences}} (owned by Wukong {{(index .metadata.ownerReferences 0).name}}){{end}}:{{"\n"}}{{.spec.config}}{{"\n\n"}}{{end}}'
say "the cloud-init Secret of db-01 (user data; the SSH key came from db-ssh-keys)"
k -n default get secret db-01-cloudinit -o go-template='{{index .data "userdata" | base64decode}}'
say "VirtualMachines: networks and interfaces"
# (An empty map such as `bridge: {}` is false in a Go template, hence the printf comparisons.)
k get virtualmachines.kubevirt.io -A -o go-template='{{range .items}}{{.metadata.namespace}}/{{.metadata.name}} runStrategy={{.spec.runStrategy}}{{"\n"}}{{range $i := .spec.template.spec.domain.devices.interfaces}}  interface {{$i.name}}: {{if eq (printf "%v" (index $i "masquerade")) "map[]"}}masquerade{{end}}{{if eq (printf "%v" (index $i "bridge")) "map[]"}}bridge{{end}}{{if eq (printf "%v" (index $i "sriov")) "map[]"}}sriov{{end}}{{with $i.binding}}{{.name}} plugin{{end}} binding{{with $i.macAddress}}, mac {{.}}{{end}}{{"\n"}}{{end}}{{range .spec.template.spec.networks}}  network {{.name}}: {{with .multus}}NAD {{.networkName}}{{else}}the pod network{{end}}{{"\n"}}{{end}}{{end}}'

say "what KubeVirt made of them: VirtualMachineInstances"
k get virtualmachineinstances.kubevirt.io -A
say "virt-launcher pods, with the networks annotation virt-controller wrote for Multus"
k get pods -A -l kubevirt.io=virt-launcher -o go-template='{{range .items}}{{.metadata.namespace}}/{{.metadata.name}} ({{.status.phase}}{{if index .metadata.annotations "kubevirt.io/ephemeral-provisioning"}}, the temporary pod that lets WaitForFirstConsumer volumes bind{{end}}){{"\n"}}{{with index .metadata.annotations "k8s.v1.cni.cncf.io/networks"}}  k8s.v1.cni.cncf.io/networks: {{.}}{{"\n"}}{{end}}{{end}}'
say "what wukong render predicted for the same annotations"
for f in examples/*.yaml; do
  printf '%s: ' "$f"; "$WUKONG_BIN" render -f "$f" | sed -n "s/^#   k8s.v1.cni.cncf.io\/networks: '\(.*\)'\$/\1/p" | head -1
done
say "what CDI made of db-01's disks: DataVolumes and PVCs"
k get datavolumes.cdi.kubevirt.io -A
k get pvc -A -o custom-columns='PVC:.metadata.name,PHASE:.status.phase,REQUESTED:.spec.resources.requests.storage,CLASS:.spec.storageClassName,ACCESS:.spec.accessModes'

cat <<'NOTE'

Note: KubeVirt's virt-api admitted every VM above and virt-controller made the instances and the
virt-launcher pods, but this local control plane has no node (no scheduler, kubelet or
virt-handler): the pods stay Pending and no VM boots, so the Wukongs report what KubeVirt says
(VirtualMachineReady=False, "KubeVirt reports it Starting ..."). Likewise no storage provisioner
binds the PVCs CDI made, so db-01's DataVolumes wait (WaitForFirstConsumer) and its VM waits for
them. The NADs are stored but not wired by Multus. In a cluster with nodes, the same objects
start the VMs on their networks.
NOTE
say "stopping the controller and the control plane"
