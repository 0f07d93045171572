# Real KubeVirt (virt-api, virt-controller) and CDI (cdi-controller, cdi-apiserver) next to the
# local control plane, as plain processes. Sourced by hack/local-cluster.sh, whose helpers
# (log, die, kc, start_proc, alive, pid_of, free_ports, envval, set_env_line) it uses.
#
# What a real install's operators would do is done here, from the components' own generators
# (build-virt.sh builds wukong-{kubevirt,cdi}-manifests inside their source trees):
#   - CRDs, RBAC and ServiceAccounts of the version built; a token per component;
#   - a serving certificate for 127.0.0.1 signed by the cluster CA, and the components' webhooks
#     registered by `url:` with that CA as their caBundle (failurePolicy Fail: `down` removes
#     them before it stops the processes);
#   - the KubeVirt CR (macvtap binding plugin registered, status phase Deployed, as virt-operator
#     reports it) and the CDI CR (its config authority, HonorWaitForFirstConsumer);
#   - a default StorageClass whose provisioner is in CDI's capability table, so CDI knows the
#     access and volume modes of its PVCs.
# Order matters: CDI's CRDs exist before KubeVirt starts (virt-api and virt-controller exit when
# the CDI API appears or goes), so a change of CDI restarts KubeVirt.

KUBEVIRT_NS=kubevirt   # where virt-api and virt-controller look without a service-account namespace file
CDI_NS=cdi             # likewise for CDI
STORAGE_CLASS="${WUKONG_STORAGE_CLASS:-wukong-local}"
STORAGE_PROVISIONER=kubevirt.io.hostpath-provisioner   # in CDI's table: ReadWriteOnce, Filesystem
KUBEVIRT_PROCS=(virt-api virt-controller)
CDI_PROCS=(cdi-controller cdi-apiserver)
VIRT_TOKEN_DURATION=8760h

virt_bin() { # virt_bin kubevirt|cdi: build if needed, print the bin dir
  local component="$1" version
  case "$component" in
    kubevirt) version="${WUKONG_KUBEVIRT_VERSION:-}" ;;
    cdi) version="${WUKONG_CDI_VERSION:-}" ;;
  esac
  "$HACK/local-cluster/build-virt.sh" "$component" ${version:+"$version"} | tail -1
}

virt_version() { # virt_version <bin dir>: the version recorded by build-virt.sh
  sed -n '1s/^[a-z]* \(v[^ ]*\) .*/\1/p' "$1/../versions.txt"
}

serving_cert() { # serving_cert <name>: a 127.0.0.1 serving certificate signed by the cluster CA
  local d="$PKI"
  [[ -s "$d/$1.crt" ]] && return 0
  openssl req -newkey rsa:2048 -nodes -keyout "$d/$1.key" -out "$d/$1.csr" -subj "/CN=$1" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$d/$1.ext"
  openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/$1.crt" -days 3650 -extfile "$d/$1.ext" 2>/dev/null
  rm -f "$d/$1.csr" "$d/$1.ext" "$d/ca.srl"
  chmod 600 "$d/$1.key"
}

token_kubeconfig() { # token_kubeconfig <namespace> <serviceaccount> <file>
  local token server
  token="$(kc create token "$2" -n "$1" --duration="$VIRT_TOKEN_DURATION")" || die "cannot create a token for $1/$2"
  server="$(envval WUKONG_CLUSTER_SERVER)"
  cat > "$3.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: wukong-local
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: $1-$2
  user:
    token: $token
contexts:
- name: $1-$2
  context: {cluster: wukong-local, user: $1-$2}
current-context: $1-$2
EOF
  chmod 600 "$3.tmp"; mv "$3.tmp" "$3"
}

apply_file() { # apply_file <file>: server-side, as the cluster's installer
  local out
  out="$(kc apply --server-side --force-conflicts --field-manager=wukong-local-cluster -f "$1" 2>&1)" \
    || die "kubectl apply --server-side -f $1 failed: $out"
}

wait_crds_of() { # wait_crds_of <file>: every CRD in it Established and served
  local n
  for n in $(kc create --dry-run=client -o name -f "$1"); do wait_served "$n"; done
}

purge_crds() { # purge_crds <file>: delete the CRDs of a stopped component, and with them its objects
  local crd resource
  kc delete --ignore-not-found --wait=false -f "$1" >/dev/null 2>&1 || true
  # Objects whose finalizers only the stopped component would remove (KubeVirt puts them on VMs
  # and VMIs) would hold their CRD's deletion forever: nobody will handle them now.
  for crd in $(kc create --dry-run=client -o name -f "$1" 2>/dev/null); do
    resource="${crd#*/}"
    kc get "$resource" -A -o jsonpath='{range .items[*]}{.metadata.namespace}{"/"}{.metadata.name}{"\n"}{end}' 2>/dev/null \
      | while IFS=/ read -r ns name; do
          [[ -n "$name" ]] || continue
          kc patch "$resource" "$name" ${ns:+-n "$ns"} --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
        done || true   # the kind may be gone already
  done
  kc wait --for=delete --timeout=60s -f "$1" >/dev/null 2>&1 || die "the CRDs of $1 are not gone after 60 s"
}

wait_https() { # wait_https <name> <url> [<body pattern>]
  local deadline=$((SECONDS + TIMEOUT)) body
  until body="$(curl -sk --max-time 2 "$2" 2>/dev/null)" && [[ -z "${3:-}" || "$body" == *$3* ]]; do
    alive "$1" || fail_start "$1" "exited"
    (( SECONDS < deadline )) || fail_start "$1" "not ready after ${TIMEOUT} s ($2)"
    sleep 0.5
  done
}

# ---------------------------------------------------------------- CDI

cdi_up() {
  local bin version d="$STATE/cdi" api_port metrics_port
  bin="$(virt_bin cdi)" || die "building CDI failed"
  version="$(virt_version "$bin")"
  if [[ "$(envval WUKONG_CLUSTER_CDI_BIN)" == "$bin" ]] && alive cdi-controller && alive cdi-apiserver; then
    log "CDI $version already running"; return 0
  fi
  cdi_down
  mkdir -p "$d/run/cdi/token/keys"
  log "CDI $version: CRDs, RBAC, CR, StorageClass $STORAGE_CLASS"
  kc create namespace "$CDI_NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
  "$bin/wukong-cdi-manifests" -what=crds > "$d/crds.yaml" || die "wukong-cdi-manifests -what=crds failed"
  apply_file "$d/crds.yaml"; wait_crds_of "$d/crds.yaml"
  "$bin/wukong-cdi-manifests" -what=rbac -namespace="$CDI_NS" > "$d/rbac.yaml" || die "wukong-cdi-manifests -what=rbac failed"
  apply_file "$d/rbac.yaml"
  cat > "$d/cr.yaml" <<EOF
apiVersion: cdi.kubevirt.io/v1beta1
kind: CDI
metadata:
  name: cdi
  # the CR's spec.config is copied into CDIConfig only with this annotation
  annotations: {cdi.kubevirt.io/configAuthority: ""}
spec:
  config:
    featureGates: [HonorWaitForFirstConsumer]
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $STORAGE_CLASS
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: $STORAGE_PROVISIONER
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
reclaimPolicy: Delete
EOF
  apply_file "$d/cr.yaml"
  # cdi-operator (not run here) reports the version it deployed; clients such as wukong read it
  # (CDI's size arithmetic changed in v1.63). The CDI CRD has no status subresource.
  kc patch cdi cdi --type=merge -p "{\"status\":{\"phase\":\"Deployed\",\"observedVersion\":\"$version\",\
\"targetVersion\":\"$version\",\"operatorVersion\":\"$version\"}}" >/dev/null || die "cannot set the CDI CR's status"
  token_kubeconfig "$CDI_NS" cdi-sa "$d/cdi-controller.kubeconfig"
  token_kubeconfig "$CDI_NS" cdi-apiserver "$d/cdi-apiserver.kubeconfig"
  serving_cert cdi-apiserver
  # cdi-controller reads the clone token keys from the fixed path /var/run/cdi/token/keys: it runs
  # in a mount namespace of its own where $d/run is /run, so nothing is written to the host's.
  if [[ ! -s "$d/run/cdi/token/keys/id_rsa" ]]; then
    openssl genrsa -traditional -out "$d/run/cdi/token/keys/id_rsa" 2048 2>/dev/null \
      || openssl genrsa -out "$d/run/cdi/token/keys/id_rsa" 2048 2>/dev/null
    openssl rsa -in "$d/run/cdi/token/keys/id_rsa" -pubout -out "$d/run/cdi/token/keys/id_rsa.pub" 2>/dev/null
  fi
  read -r api_port metrics_port <<<"$(free_ports 2)"
  local -a mountns=(unshare -m --propagation private)
  [[ "$(id -u)" == 0 ]] || mountns=(unshare -rm --propagation private)
  log "starting cdi-controller $version (metrics 127.0.0.1:$metrics_port)"
  # The images are only written into importer pods; nothing pulls them (there is no kubelet).
  start_proc cdi-controller "$bin/cdi-controller" env \
    IMPORTER_IMAGE="quay.io/kubevirt/cdi-importer:$version" CLONER_IMAGE="quay.io/kubevirt/cdi-cloner:$version" \
    UPLOADSERVER_IMAGE="quay.io/kubevirt/cdi-uploadserver:$version" \
    OVIRT_POPULATOR_IMAGE="quay.io/kubevirt/ovirt-populator:$version" \
    UPLOADPROXY_SERVICE=cdi-uploadproxy PULL_POLICY=IfNotPresent \
    CDI_METRICS_BIND_ADDRESS="127.0.0.1:$metrics_port" \
    "${mountns[@]}" sh -c 'mount --bind "$0/run" /run && exec "$@"' "$d" \
    "$bin/cdi-controller" --kubeconfig="$d/cdi-controller.kubeconfig" -v=1
  log "starting cdi-apiserver $version on https://127.0.0.1:$api_port"
  start_proc cdi-apiserver "$bin/cdi-apiserver" env \
    CERT_FILE="$PKI/cdi-apiserver.crt" KEY_FILE="$PKI/cdi-apiserver.key" \
    CDI_APISERVER_HOST=127.0.0.1 CDI_APISERVER_PORT="$api_port" \
    "$bin/cdi-apiserver" --kubeconfig="$d/cdi-apiserver.kubeconfig" -v=1
  wait_https cdi-apiserver "https://127.0.0.1:$api_port/healthz"
  "$bin/wukong-cdi-manifests" -what=webhooks -namespace="$CDI_NS" -url="https://127.0.0.1:$api_port" \
    -ca-file="$PKI/ca.crt" > "$d/webhooks.yaml" || die "wukong-cdi-manifests -what=webhooks failed"
  apply_file "$d/webhooks.yaml"
  # cdi-controller makes the CDIConfig once it leads: DataVolumes need it.
  local deadline=$((SECONDS + TIMEOUT))
  until kc get cdiconfig config -o jsonpath='{.status.filesystemOverhead.global}' 2>/dev/null | grep -q .; do
    alive cdi-controller || fail_start cdi-controller "exited"
    (( SECONDS < deadline )) || fail_start cdi-controller "made no CDIConfig in ${TIMEOUT} s"
    sleep 0.5
  done
  set_env_line WUKONG_CLUSTER_CDI_BIN "$bin"
  set_env_line WUKONG_CLUSTER_CDI_VERSION "$version"
  set_env_line WUKONG_CLUSTER_CDI_API_URL "https://127.0.0.1:$api_port"
  set_env_line WUKONG_CLUSTER_STORAGE_CLASS "$STORAGE_CLASS"
  log "CDI $version ready"
}

# cdi_down [--purge]: webhooks first (they fail closed), then the processes; --purge also
# removes CDI's CRDs (DataVolumes go with them).
cdi_down() {
  local d="$STATE/cdi"
  [[ -s "$d/webhooks.yaml" ]] && kc delete --ignore-not-found -f "$d/webhooks.yaml" >/dev/null 2>&1 || true
  stop_proc cdi-apiserver; stop_proc cdi-controller
  if [[ "${1:-}" == --purge && -s "$d/crds.yaml" ]]; then
    log "deleting CDI's CRDs"
    purge_crds "$d/crds.yaml"
  fi
  set_env_line WUKONG_CLUSTER_CDI_BIN ""
  set_env_line WUKONG_CLUSTER_CDI_VERSION ""
  set_env_line WUKONG_CLUSTER_CDI_API_URL ""
}

# ---------------------------------------------------------------- KubeVirt

kubevirt_up() {
  local bin version d="$STATE/kubevirt" api_port ctl_port gates="[]"
  bin="$(virt_bin kubevirt)" || die "building KubeVirt failed"
  version="$(virt_version "$bin")"
  if [[ "$(envval WUKONG_CLUSTER_KUBEVIRT_BIN)" == "$bin" ]] && alive virt-api && alive virt-controller; then
    log "KubeVirt $version already running"; return 0
  fi
  kubevirt_down
  mkdir -p "$d"
  log "KubeVirt $version: CRDs, RBAC, KubeVirt CR"
  kc create namespace "$KUBEVIRT_NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
  "$bin/wukong-kubevirt-manifests" -what=crds -namespace="$KUBEVIRT_NS" > "$d/crds.yaml" 2>"$LOGS/kubevirt-manifests.log" \
    || die "wukong-kubevirt-manifests -what=crds failed (see $LOGS/kubevirt-manifests.log)"
  apply_file "$d/crds.yaml"; wait_crds_of "$d/crds.yaml"
  "$bin/wukong-kubevirt-manifests" -what=rbac -namespace="$KUBEVIRT_NS" > "$d/rbac.yaml" 2>>"$LOGS/kubevirt-manifests.log" \
    || die "wukong-kubevirt-manifests -what=rbac failed (see $LOGS/kubevirt-manifests.log)"
  apply_file "$d/rbac.yaml"
  [[ -z "${WUKONG_KUBEVIRT_FEATURE_GATES:-}" ]] || gates="[$(sed 's/[^,]*/"&"/g' <<<"$WUKONG_KUBEVIRT_FEATURE_GATES")]"
  cat > "$d/cr.yaml" <<EOF
apiVersion: kubevirt.io/v1
kind: KubeVirt
metadata: {name: kubevirt, namespace: $KUBEVIRT_NS}
spec:
  configuration:
    developerConfiguration: {featureGates: $gates}
    network:
      binding:
        # KubeVirt's macvtap binding plugin, which wukong's macvlan networks use
        macvtap: {domainAttachmentType: tap}
EOF
  apply_file "$d/cr.yaml"
  # virt-api and virt-controller ignore a KubeVirt CR whose status.phase is empty: virt-operator
  # (not run here) reports it Deployed, with the version it deployed.
  kc -n "$KUBEVIRT_NS" patch kubevirt kubevirt --subresource=status --type=merge -p "{\"status\":{\"phase\":\"Deployed\",\
\"defaultArchitecture\":\"amd64\",\"observedKubeVirtVersion\":\"$version\",\"targetKubeVirtVersion\":\"$version\",\
\"operatorVersion\":\"$version\"}}" >/dev/null || die "cannot set the KubeVirt CR's status"
  kc -n "$KUBEVIRT_NS" create configmap kubevirt-ca --from-file=ca-bundle="$PKI/ca.crt" --dry-run=client -o yaml \
    | kc apply -f - >/dev/null
  token_kubeconfig "$KUBEVIRT_NS" kubevirt-apiserver "$d/virt-api.kubeconfig"
  token_kubeconfig "$KUBEVIRT_NS" kubevirt-controller "$d/virt-controller.kubeconfig"
  serving_cert virt-api
  serving_cert virt-controller
  read -r api_port ctl_port <<<"$(free_ports 2)"
  log "starting virt-api $version on https://127.0.0.1:$api_port"
  start_proc virt-api "$bin/virt-api" "$bin/virt-api" \
    --kubeconfig="$d/virt-api.kubeconfig" --listen=127.0.0.1 --port="$api_port" \
    --tls-cert-file="$PKI/virt-api.crt" --tls-key-file="$PKI/virt-api.key" \
    --handler-cert-file="$PKI/virt-api.crt" --handler-key-file="$PKI/virt-api.key" \
    --subresources-only=false
  wait_https virt-api "https://127.0.0.1:$api_port/healthz"
  "$bin/wukong-kubevirt-manifests" -what=webhooks -namespace="$KUBEVIRT_NS" -url="https://127.0.0.1:$api_port" \
    -ca-file="$PKI/ca.crt" > "$d/webhooks.yaml" 2>>"$LOGS/kubevirt-manifests.log" \
    || die "wukong-kubevirt-manifests -what=webhooks failed"
  apply_file "$d/webhooks.yaml"
  log "starting virt-controller $version (https://127.0.0.1:$ctl_port)"
  # The images are only written into launcher pods; nothing pulls them (there is no kubelet).
  # It logs one fatal line about the VM-export CA file it cannot read, and runs on.
  start_proc virt-controller "$bin/virt-controller" "$bin/virt-controller" \
    --kubeconfig="$d/virt-controller.kubeconfig" --listen=127.0.0.1 --port="$ctl_port" \
    --prom-cert-file="$PKI/virt-controller.crt" --prom-key-file="$PKI/virt-controller.key" \
    --launcher-image="quay.io/kubevirt/virt-launcher:$version" \
    --exporter-image="quay.io/kubevirt/virt-exportserver:$version"
  wait_https virt-controller "https://127.0.0.1:$ctl_port/leader" '"leader": "true"'
  set_env_line WUKONG_CLUSTER_KUBEVIRT_BIN "$bin"
  set_env_line WUKONG_CLUSTER_KUBEVIRT_VERSION "$version"
  set_env_line WUKONG_CLUSTER_VIRT_API_URL "https://127.0.0.1:$api_port"
  log "KubeVirt $version ready"
}

# kubevirt_down [--purge]: webhooks first (they fail closed), then the processes; --purge also
# removes KubeVirt's CRDs.
kubevirt_down() {
  local d="$STATE/kubevirt"
  [[ -s "$d/webhooks.yaml" ]] && kc delete --ignore-not-found -f "$d/webhooks.yaml" >/dev/null 2>&1 || true
  stop_proc virt-controller; stop_proc virt-api
  if [[ "${1:-}" == --purge && -s "$d/crds.yaml" ]]; then
    log "deleting KubeVirt's CRDs"
    purge_crds "$d/crds.yaml"
  fi
  set_env_line WUKONG_CLUSTER_KUBEVIRT_BIN ""
  set_env_line WUKONG_CLUSTER_KUBEVIRT_VERSION ""
  set_env_line WUKONG_CLUSTER_VIRT_API_URL ""
}
