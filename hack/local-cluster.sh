#!/usr/bin/env bash
# A real, local Kubernetes control plane for wukong's tests: etcd,
# kube-apiserver and kube-controller-manager (garbage collector, namespace,
# service account controllers) on loopback, and next to them the real CDI
# (cdi-controller, cdi-apiserver) and KubeVirt (virt-api, virt-controller) as
# plain processes; no kubelet, no scheduler, no Docker: pods are created, never run.
# The binaries come from hack/local-cluster/build.sh (built from Go modules) and
# hack/local-cluster/build-virt.sh (KubeVirt and CDI from their release sources)
# into ${WUKONG_CACHE:-$HOME/.cache/wukong}; how KubeVirt and CDI are set up:
# hack/local-cluster/virt.sh.
#
# Usage:
#   hack/local-cluster.sh up [--no-crds] [--without SET]... [--only SET]...
#   hack/local-cluster.sh crds [--only nad|wukong]... [--without nad|wukong]...
#   hack/local-cluster.sh status
#   hack/local-cluster.sh env
#   hack/local-cluster.sh down
#   hack/local-cluster.sh kill|start etcd|kube-apiserver
#
#   up      builds the binaries if needed, creates certificates and kubeconfigs,
#           starts etcd, kube-apiserver and kube-controller-manager in the
#           background, waits for /readyz, installs the CRDs and waits until they
#           are Established and served, then starts CDI and KubeVirt (CDI first:
#           KubeVirt's processes exit when CDI's API appears or goes). Safe to run
#           again: a healthy cluster is kept (CRDs are re-applied, components that
#           are not running are started), a stale one is stopped and recreated.
#           `--without X` leaves set X out and, on a running cluster, removes it
#           if present (e.g. `--without nad` gives a control plane without the
#           Multus CRD). stdout: the `env` lines; progress goes to stderr.
#   crds    installs CRD sets nad and wukong into the running cluster.
#   status  prints the processes, the API server URL and /readyz; exit 1 when not up.
#   env     prints `export KUBECONFIG=...` etc. (eval "$(hack/local-cluster.sh env)").
#   down    removes the webhooks of KubeVirt and CDI (they fail closed), stops exactly
#           the recorded processes (TERM, then KILL) and removes the state.
#   kill    SIGKILLs etcd or kube-apiserver, as a crash would (fault tests); `start` starts
#           it again on its recorded ports and state and waits until it serves.
#
# Sets: nad      = the Multus NAD CRD, $WUKONG_SHARED/crds/network-attachment-definitions.yaml
#       wukong   = output of `$WUKONG_BIN crd`
#       cdi      = CDI: its CRDs, RBAC, CR, a default StorageClass, cdi-controller and
#                  cdi-apiserver with its webhooks
#       kubevirt = KubeVirt: its CRDs, RBAC, CR, virt-api with its webhooks, virt-controller
#
# Environment:
#   WUKONG_CLUSTER_DIR      state directory (default <repo>/.local-cluster); use a
#                           private one to run a second cluster next to a user's
#   WUKONG_SHARED           shared data directory (default <repo>/../shared)
#   WUKONG_BIN              wukong binary (default <repo>/target/debug/wukong; the
#                           default one is built with `cargo build -q -p wukong`
#                           when missing)
#   WUKONG_CACHE            binary cache root (see hack/local-cluster/build.sh)
#   WUKONG_CLUSTER_TIMEOUT  seconds to wait for the control plane (default 120)
#   WUKONG_KCM_CONTROLLERS  kube-controller-manager --controllers value
#   WUKONG_KUBEVIRT_VERSION, WUKONG_CDI_VERSION
#                           releases to run (default: the first of each in
#                           hack/local-cluster/virt-sources.txt; the others listed there
#                           are the oldest supported pair)
#   WUKONG_KUBEVIRT_FEATURE_GATES  comma-separated feature gates for the KubeVirt CR
#   WUKONG_STORAGE_CLASS    name of the default StorageClass (default wukong-local)
#
# Files in the state directory:
#   cluster.env        written once the control plane is ready (absent if `up`
#                      failed); KEY=VALUE lines (unquoted, value = rest of the line):
#                      KUBECONFIG, WUKONG_CLUSTER_SERVER, WUKONG_CLUSTER_BIN_DIR,
#                      WUKONG_CLUSTER_KUBECTL, WUKONG_CLUSTER_MULTUS, WUKONG_CLUSTER_CA_CERT,
#                      WUKONG_CLUSTER_CA_KEY, WUKONG_CLUSTER_ADMIN_CERT, WUKONG_CLUSTER_ADMIN_KEY,
#                      WUKONG_CLUSTER_ETCD_URL, WUKONG_CLUSTER_DIR, WUKONG_CLUSTER_K8S_VERSION,
#                      WUKONG_CLUSTER_CRDS (installed sets), WUKONG_CLUSTER_KUBEVIRT_VERSION,
#                      WUKONG_CLUSTER_VIRT_API_URL, WUKONG_CLUSTER_CDI_VERSION,
#                      WUKONG_CLUSTER_CDI_API_URL, WUKONG_CLUSTER_STORAGE_CLASS (empty when
#                      the component is not running), WUKONG_CLUSTER_{KUBEVIRT,CDI}_BIN
#   kubeconfig         admin (O=system:masters), certificates embedded
#   pki/               ca, apiserver, admin, kube-controller-manager, front-proxy (the
#                      request-header CA), service-account keys, serving certificates of
#                      virt-api, virt-controller and cdi-apiserver
#   kubevirt/ cdi/     generated CRDs, RBAC, webhooks, CRs and the components' kubeconfigs
#   logs/*.log pids/*.pid etcd/ (data, --unsafe-no-fsync) crds/ (generated CRDs)
#   logs/audit.log     the API server's audit log of every write (JSON lines, metadata level)
#   run.env            like cluster.env, written as soon as the ports are chosen
set -euo pipefail

HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HACK/.." && pwd)"
STATE="$(realpath -m "${WUKONG_CLUSTER_DIR:-$REPO/.local-cluster}")"
SHARED="$(realpath -m "${WUKONG_SHARED:-$REPO/../shared}")"
TIMEOUT="${WUKONG_CLUSTER_TIMEOUT:-120}"
KCM_CONTROLLERS="${WUKONG_KCM_CONTROLLERS:-garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller}"
COMPONENTS=(etcd kube-apiserver kube-controller-manager)
ALL_SETS=(nad wukong cdi kubevirt)
CRD_SETS=(nad wukong)

PKI="$STATE/pki"; LOGS="$STATE/logs"; PIDS="$STATE/pids"
KUBECONFIG_FILE="$STATE/kubeconfig"; ENV_FILE="$STATE/cluster.env"
RUN_ENV="$STATE/run.env"   # same content, written as soon as the ports are known

log() { printf 'local-cluster: %s\n' "$*" >&2; }
die() { printf 'local-cluster: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites

APT_UPDATED=0
need() { # need <command> <debian package>
  command -v "$1" >/dev/null 2>&1 && return 0
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing missing Debian package $2 (for $1)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >&2; then
      [[ $APT_UPDATED == 1 ]] || { apt-get update -q >&2; APT_UPDATED=1; }
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >&2
    fi
    command -v "$1" >/dev/null 2>&1 || die "$1 still missing after installing $2"
  else
    die "$1 is missing: install the Debian package $2"
  fi
}

need_tools() {
  need openssl openssl
  need curl curl
  need setsid util-linux
  need flock util-linux
  need base64 coreutils
}

# ---------------------------------------------------------------- state helpers

bin_dir() { "$HACK/local-cluster/build.sh" --print-bin-dir; }

envval() { # envval KEY -> value from run.env
  [[ -f "$RUN_ENV" ]] || return 1
  sed -n "s/^$1=//p" "$RUN_ENV" | tail -1
}

pid_of() { [[ -f "$PIDS/$1.pid" ]] && cat "$PIDS/$1.pid"; }

# alive <component>: the recorded pid runs and is really our process (its
# command line names the binary and this state directory), never a reused pid.
alive() {
  local pid cmd
  pid="$(pid_of "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  cmd="$( { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null)" || return 1
  [[ "$cmd" == *"/$1 "* && "$cmd" == *"$STATE/"* ]]
}

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

readyz() { # prints the body, fails unless it is "ok"
  local server body
  server="$(envval WUKONG_CLUSTER_SERVER)" || return 1
  body="$(curl -sS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "$server/readyz" 2>&1)" || { echo "$body"; return 1; }
  echo "$body"
  [[ "$body" == ok ]]
}

stop_proc() { # stop_proc <component>: TERM the recorded process, wait, then KILL
  local c="$1" pid waited
  if alive "$c"; then
    pid="$(pid_of "$c")"
    log "stopping $c (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    waited=0
    while alive "$c" && (( waited < 100 )); do sleep 0.1; waited=$((waited + 1)); done
    if alive "$c"; then
      log "$c (pid $pid) did not exit after 10 s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
      waited=0
      while [[ -d /proc/$pid ]] && (( waited < 50 )); do sleep 0.1; waited=$((waited + 1)); done
    fi
  fi
  rm -f "$PIDS/$c.pid"
}

stop_all() { # every recorded process, KubeVirt and CDI before the control plane
  local c
  for c in "${KUBEVIRT_PROCS[@]}" "${CDI_PROCS[@]}" kube-controller-manager kube-apiserver etcd; do stop_proc "$c"; done
}

lock_state() {
  mkdir -p "$STATE"
  exec 8>"$STATE/.lock"
  flock 8
}

# ---------------------------------------------------------------- ports

# free_ports N: N distinct free loopback TCP ports (kept bound until all are chosen).
free_ports() {
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
  else
    local ports=() p tries=0
    while (( ${#ports[@]} < $1 )); do
      (( tries++ < 1000 )) || die "no free loopback port found"
      p=$(( 20000 + RANDOM % 30000 ))
      [[ " ${ports[*]} " == *" $p "* ]] && continue
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then ports+=("$p"); fi
    done
    echo "${ports[*]}"
  fi
}

# ---------------------------------------------------------------- certificates

gen_pki() {
  mkdir -p "$PKI"
  local d="$PKI" o=(-days 3650)
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" "${o[@]}" \
    -subj "/CN=wukong-local-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  sign() { # sign <name> <subject> <extensions>
    openssl req -newkey rsa:2048 -nodes -keyout "$d/$1.key" -out "$d/$1.csr" -subj "$2" 2>/dev/null
    printf '%s\n' "$3" > "$d/$1.ext"
    openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
      -out "$d/$1.crt" "${o[@]}" -extfile "$d/$1.ext" 2>/dev/null
    rm -f "$d/$1.csr" "$d/$1.ext"
  }
  sign apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  sign admin "/O=system:masters/CN=wukong-admin" "$client"
  sign kube-controller-manager "/CN=system:kube-controller-manager" "$client"
  # The request-header CA (kube-apiserver --requestheader-client-ca-file): extension API servers
  # such as virt-api and cdi-apiserver read it from kube-system/extension-apiserver-authentication
  # and refuse to start without it.
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/front-proxy-ca.key" -out "$d/front-proxy-ca.crt" "${o[@]}" \
    -subj "/CN=wukong-local-front-proxy-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout "$d/front-proxy-client.key" -out "$d/front-proxy-client.csr" \
    -subj "/CN=front-proxy-client" 2>/dev/null
  printf '%s\n' "$client" > "$d/front-proxy-client.ext"
  openssl x509 -req -in "$d/front-proxy-client.csr" -CA "$d/front-proxy-ca.crt" -CAkey "$d/front-proxy-ca.key" \
    -CAcreateserial -out "$d/front-proxy-client.crt" "${o[@]}" -extfile "$d/front-proxy-client.ext" 2>/dev/null
  rm -f "$d/front-proxy-client.csr" "$d/front-proxy-client.ext" "$d/front-proxy-ca.srl"
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  rm -f "$d/ca.srl"
  chmod 600 "$d"/*.key
  openssl verify -CAfile "$d/ca.crt" "$d/apiserver.crt" "$d/admin.crt" "$d/kube-controller-manager.crt" >/dev/null \
    || die "generated certificates do not verify"
}

write_kubeconfig() { # write_kubeconfig <file> <server> <user> <cert> <key>
  local b64="base64 -w0"
  cat > "$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: wukong-local
  cluster:
    server: $2
    certificate-authority-data: $($b64 < "$PKI/ca.crt")
users:
- name: $3
  user:
    client-certificate-data: $($b64 < "$4")
    client-key-data: $($b64 < "$5")
contexts:
- name: $3@wukong-local
  context:
    cluster: wukong-local
    user: $3
    namespace: default
current-context: $3@wukong-local
EOF
  chmod 600 "$1.tmp"
  mv "$1.tmp" "$1"
}

write_env() { # write_env <installed crd sets>: run.env only
  cat > "$RUN_ENV.tmp" <<EOF
KUBECONFIG=$KUBECONFIG_FILE
WUKONG_CLUSTER_DIR=$STATE
WUKONG_CLUSTER_SERVER=https://127.0.0.1:$API_PORT
WUKONG_CLUSTER_ETCD_URL=http://127.0.0.1:$ETCD_PORT
WUKONG_CLUSTER_ETCD_PEER_PORT=$ETCD_PEER_PORT
WUKONG_CLUSTER_BIN_DIR=$BIN
WUKONG_CLUSTER_KUBECTL=$BIN/kubectl
WUKONG_CLUSTER_MULTUS=$BIN/multus
WUKONG_CLUSTER_CA_CERT=$PKI/ca.crt
WUKONG_CLUSTER_CA_KEY=$PKI/ca.key
WUKONG_CLUSTER_ADMIN_CERT=$PKI/admin.crt
WUKONG_CLUSTER_ADMIN_KEY=$PKI/admin.key
WUKONG_CLUSTER_K8S_VERSION=$("$BIN/kube-apiserver" --version | sed 's/^Kubernetes //')
WUKONG_CLUSTER_CRDS=$1
EOF
  mv "$RUN_ENV.tmp" "$RUN_ENV"
}

set_env_line() { # set_env_line KEY VALUE: in run.env (and cluster.env when published)
  [[ -f "$RUN_ENV" ]] || return 0
  { grep -v "^$1=" "$RUN_ENV" || true; printf '%s=%s\n' "$1" "$2"; } > "$RUN_ENV.tmp"
  mv "$RUN_ENV.tmp" "$RUN_ENV"
  [[ ! -f "$ENV_FILE" ]] || publish_env
}

publish_env() { # cluster.env exists only while the control plane is known to be ready
  cp "$RUN_ENV" "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

set_env_crds() { # rewrite the WUKONG_CLUSTER_CRDS line
  [[ -f "$RUN_ENV" ]] || return 0
  sed "s/^WUKONG_CLUSTER_CRDS=.*/WUKONG_CLUSTER_CRDS=$1/" "$RUN_ENV" > "$RUN_ENV.tmp"
  mv "$RUN_ENV.tmp" "$RUN_ENV"
  publish_env
}

# ---------------------------------------------------------------- processes

start_bg() { # start_bg <component> <args...>: $BIN/<component>, see start_proc
  local c="$1"; shift
  start_proc "$c" "$BIN/$c" "$BIN/$c" "$@"
}

# start_proc <component> <binary> <command...>: detached, logs and pid in the state dir. The
# command may be a chain of exec-ing wrappers (env, unshare, sh -c 'exec ...') ending in <binary>:
# the pid stays the same, and alive() checks the final command line.
start_proc() {
  local c="$1"; shift 2
  # setsid: own session, so the caller's Ctrl-C or exit does not reach it;
  # fd 8 (the state lock) and stdio are not inherited. The pid is written by
  # the process that then execs the binary, so it is exact even if setsid forks.
  rm -f "$PIDS/$c.pid"
  # shellcheck disable=SC2016  # $$, $0 and $@ belong to the inner bash
  setsid bash -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$PIDS/$c.pid" "$@" \
    </dev/null >>"$LOGS/$c.log" 2>&1 8>&- &
  local _
  for _ in $(seq 50); do [[ -s "$PIDS/$c.pid" ]] && break; sleep 0.1; done
  for _ in $(seq 20); do alive "$c" && break; sleep 0.1; done
  sleep 0.3
  alive "$c" || fail_start "$c" "exited right after start"
}

fail_start() { # fail_start <component> <reason>
  rm -f "$ENV_FILE"
  log "$1 $2; last lines of $LOGS/$1.log:"
  tail -n 40 "$LOGS/$1.log" >&2 || true
  stop_all
  die "$1 $2 (state kept in $STATE for inspection; run 'down' to remove it)"
}

wait_until() { # wait_until <component> <deadline> <cmd...>
  local c="$1" deadline="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    alive "$c" || fail_start "$c" "exited"
    (( SECONDS < deadline )) || fail_start "$c" "not ready after ${TIMEOUT} s"
    sleep 0.5
  done
}

start_etcd() { # start_etcd <deadline>: on the recorded ports and data directory
  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  start_bg etcd \
    --name=wukong-local \
    --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="wukong-local=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state=new \
    --unsafe-no-fsync=true \
    --log-level=warn
  wait_until etcd "$1" curl -sSf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

}

write_audit_policy() {
  # An audit log of every write, and of every request of wukong's ServiceAccount (metadata
  # only), lets tests prove from the API server's side which requests a client sent, e.g. that a
  # converged controller writes nothing.
  cat >"$STATE/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # every request of wukong's own ServiceAccount, reads too (tests and the scale benchmark
  # count them)
  - level: Metadata
    users: ["system:serviceaccount:wukong-system:wukong"]
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
POLICY
}

start_apiserver() { # on the recorded ports; the cluster's certificates
  local server="https://127.0.0.1:$API_PORT"
  log "starting kube-apiserver on $server"
  start_bg kube-apiserver \
    --audit-policy-file="$STATE/audit-policy.yaml" \
    --audit-log-path="$STATE/logs/audit.log" \
    --audit-log-format=json \
    --audit-log-mode=blocking \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$API_PORT" \
    --endpoint-reconciler-type=none \
    --cert-dir="$STATE/apiserver" \
    --tls-cert-file="$PKI/apiserver.crt" \
    --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" \
    --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --service-cluster-ip-range=10.0.0.0/24 \
    --service-account-issuer="$server" \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --allow-privileged=true \
    --profiling=false \
    --v=1
}

start_cluster() {
  rm -rf "$STATE/etcd" "$PKI" "$LOGS" "$PIDS" "$STATE/crds" "$ENV_FILE" "$RUN_ENV" "$KUBECONFIG_FILE" \
    "$STATE/kube-controller-manager.kubeconfig" "$STATE/apiserver" "$STATE/kcm"
  mkdir -p "$LOGS" "$PIDS" "$STATE/etcd" "$STATE/apiserver" "$STATE/kcm"
  chmod 700 "$STATE/etcd"
  log "generating certificates in $PKI"
  gen_pki

  read -r ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT <<<"$(free_ports 4)"
  local server="https://127.0.0.1:$API_PORT" deadline=$((SECONDS + TIMEOUT))
  write_kubeconfig "$KUBECONFIG_FILE" "$server" wukong-admin "$PKI/admin.crt" "$PKI/admin.key"
  write_kubeconfig "$STATE/kube-controller-manager.kubeconfig" "$server" system:kube-controller-manager \
    "$PKI/kube-controller-manager.crt" "$PKI/kube-controller-manager.key"

  start_etcd "$deadline"
  write_audit_policy
  start_apiserver
  # run.env now, so readyz() (and a concurrent `status`) can find the server
  write_env ""
  wait_until kube-apiserver "$deadline" readyz

  log "starting kube-controller-manager (127.0.0.1:$KCM_PORT)"
  local kcmkc="$STATE/kube-controller-manager.kubeconfig"
  start_bg kube-controller-manager \
    --kubeconfig="$kcmkc" \
    --authentication-kubeconfig="$kcmkc" \
    --authorization-kubeconfig="$kcmkc" \
    --authentication-skip-lookup=true \
    --client-ca-file="$PKI/ca.crt" \
    --bind-address=127.0.0.1 \
    --secure-port="$KCM_PORT" \
    --cert-dir="$STATE/kcm" \
    --controllers="$KCM_CONTROLLERS" \
    --use-service-account-credentials=true \
    --root-ca-file="$PKI/ca.crt" \
    --service-account-private-key-file="$PKI/sa.key" \
    --leader-elect=false \
    --profiling=false \
    --v=1
  wait_until kube-controller-manager "$deadline" curl -sSfk --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz"
  # the `default` namespace gets its ServiceAccount once the controllers run
  wait_until kube-controller-manager "$deadline" kc get serviceaccount default -n default
  publish_env
  log "control plane ready in $((SECONDS - deadline + TIMEOUT)) s"
}

# ---------------------------------------------------------------- CRDs

WUKONG_BIN_DEFAULT="$REPO/target/debug/wukong"

crd_files() { # crd_files <set>: files to apply (generated ones in $STATE/crds)
  case "$1" in
    nad) echo "$SHARED/crds/network-attachment-definitions.yaml" ;;
    wukong)
      local wb="${WUKONG_BIN:-$WUKONG_BIN_DEFAULT}"
      if [[ ! -x "$wb" ]]; then
        [[ "$wb" == "$WUKONG_BIN_DEFAULT" ]] || die "WUKONG_BIN=$wb is not an executable"
        [[ -f "$REPO/Cargo.toml" ]] || die "$wb is missing and there is no Cargo.toml in $REPO to build it"
        log "building $wb (cargo build -q -p wukong)"
        (cd "$REPO" && cargo build -q -p wukong) >&2 || die "cargo build -q -p wukong failed"
        [[ -x "$wb" ]] || die "cargo build did not produce $wb"
      fi
      mkdir -p "$STATE/crds"
      "$wb" crd > "$STATE/crds/wukong.yaml.tmp" || die "'$wb crd' failed"
      [[ -s "$STATE/crds/wukong.yaml.tmp" ]] || die "'$wb crd' printed nothing"
      mv "$STATE/crds/wukong.yaml.tmp" "$STATE/crds/wukong.yaml"
      echo "$STATE/crds/wukong.yaml" ;;
    *) die "unknown CRD set '$1' (nad, wukong)" ;;
  esac
}

crd_names() { # names of the CRDs of a set, as installed (customresourcedefinition.apiextensions.k8s.io/<name>)
  case "$1" in
    nad) echo customresourcedefinition.apiextensions.k8s.io/network-attachment-definitions.k8s.cni.cncf.io ;;
    wukong) [[ -f "$STATE/crds/wukong.yaml" ]] && kc create --dry-run=client -o name -f "$STATE/crds/wukong.yaml" 2>/dev/null ;;
  esac
}

wait_served() { # wait_served <crd resource name>: Established and its API answers a list
  local name="$1" group plural version deadline=$((SECONDS + 60))
  kc wait --for condition=established --timeout=60s "$name" >&2 || die "$name is not Established"
  read -r group plural version <<<"$(kc get "$name" -o jsonpath='{.spec.group} {.spec.names.plural} {.spec.versions[?(@.storage==true)].name}')"
  until kc get --raw "/apis/$group/$version/$plural?limit=1" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || die "/apis/$group/$version/$plural is not served 60 s after $name became Established"
    sleep 0.5
  done
}

install_crds() { # install_crds <set>...
  local set f out names=() n
  for set in "$@"; do
    for f in $(crd_files "$set"); do
      [[ -f "$f" ]] || die "CRD file $f not found (set WUKONG_SHARED to the shared/ directory)"
      log "applying $f"
      # server-side: the KubeVirt CRDs exceed the 256 KiB last-applied annotation of client-side apply
      out="$(kc apply --server-side --force-conflicts --field-manager=wukong-local-cluster -o name -f "$f" 2>&1)" \
        || die "kubectl apply --server-side -f $f failed: $out"
      mapfile -t -O "${#names[@]}" names <<<"$out"
    done
  done
  for n in "${names[@]}"; do wait_served "$n"; log "established and served: ${n#*/}"; done
}

delete_crds() { # delete_crds <set>...: make sure these CRD sets are absent
  local set n
  for set in "$@"; do
    for n in $(crd_names "$set"); do
      if kc get "$n" >/dev/null 2>&1; then
        log "deleting ${n#*/} (--without $set)"
        kc delete "$n" --wait=true --timeout=60s >&2
      fi
    done
  done
}

installed_sets() { # the CRD sets whose CRDs all exist, and the components that run
  local set n ok out=()
  for set in "${CRD_SETS[@]}"; do
    ok=1
    n="$(crd_names "$set")" || true
    [[ -n "$n" ]] || ok=0
    for n in $n; do kc get "$n" >/dev/null 2>&1 || ok=0; done
    [[ $ok == 1 ]] && out+=("$set")
  done
  if alive cdi-controller && alive cdi-apiserver; then out+=(cdi); fi
  if alive virt-api && alive virt-controller; then out+=(kubevirt); fi
  echo "${out[*]}"
}

in_list() { # in_list <word> <words...>
  local w="$1"; shift
  [[ " $* " == *" $w "* ]]
}

# apply_sets: makes the sets of WITHOUT absent and those of SETS present, in dependency order:
# KubeVirt stops before CDI changes (its processes exit when CDI's API appears or goes) and
# starts after it.
apply_sets() {
  local want_kubevirt=0 cdi_changes=0 set crd_sets=() crd_without=()
  in_list kubevirt "${SETS[@]}" && want_kubevirt=1
  if in_list cdi "${WITHOUT[@]}" && kc get crd datavolumes.cdi.kubevirt.io >/dev/null 2>&1; then cdi_changes=1; fi
  if in_list cdi "${SETS[@]}" && ! { [[ "$(envval WUKONG_CLUSTER_CDI_BIN)" == "$(virt_bin cdi)" ]] \
      && alive cdi-controller && alive cdi-apiserver; }; then cdi_changes=1; fi
  if in_list kubevirt "${WITHOUT[@]}"; then
    kubevirt_down --purge
  elif (( cdi_changes )) && { alive virt-api || alive virt-controller; }; then
    log "CDI changes: KubeVirt stops meanwhile"
    kubevirt_down; want_kubevirt=1
  fi
  for set in "${CRD_SETS[@]}"; do
    in_list "$set" "${WITHOUT[@]}" && crd_without+=("$set")
    in_list "$set" "${SETS[@]}" && crd_sets+=("$set")
  done
  (( ${#crd_without[@]} == 0 )) || delete_crds "${crd_without[@]}"
  (( ${#crd_sets[@]} == 0 )) || install_crds "${crd_sets[@]}"
  if in_list cdi "${WITHOUT[@]}"; then cdi_down --purge; elif in_list cdi "${SETS[@]}"; then cdi_up; fi
  (( want_kubevirt == 0 )) || kubevirt_up
}

# parse_sets <args...>: sets SETS (to install) and WITHOUT (to keep absent)
parse_sets() {
  local only=() without=() s
  NO_CRDS=0
  while (( $# )); do
    case "$1" in
      --no-crds) NO_CRDS=1 ;;
      --without) [[ $# -ge 2 ]] || die "--without needs nad, wukong, cdi or kubevirt"; without+=("$2"); shift ;;
      --without=*) without+=("${1#*=}") ;;
      --only) [[ $# -ge 2 ]] || die "--only needs nad, wukong, cdi or kubevirt"; only+=("$2"); shift ;;
      --only=*) only+=("${1#*=}") ;;
      *) die "unknown argument: $1" ;;
    esac
    shift
  done
  for s in "${without[@]}" "${only[@]}"; do
    [[ " ${ALL_SETS[*]} " == *" $s "* ]] || die "unknown set '$s' (nad, wukong, cdi, kubevirt)"
  done
  (( ${#only[@]} )) || only=("${ALL_SETS[@]}")
  SETS=(); WITHOUT=("${without[@]}")
  for s in "${only[@]}"; do [[ " ${without[*]} " == *" $s "* ]] || SETS+=("$s"); done
}

# ---------------------------------------------------------------- KubeVirt and CDI

# shellcheck source=local-cluster/virt.sh
source "$HACK/local-cluster/virt.sh"

# ---------------------------------------------------------------- commands

load_running() { # fills BIN, API_PORT, ETCD_PORT, KUBECTL from cluster.env
  BIN="$(envval WUKONG_CLUSTER_BIN_DIR)" || return 1
  KUBECTL="$BIN/kubectl"
  local s; s="$(envval WUKONG_CLUSTER_SERVER)"; API_PORT="${s##*:}"
  s="$(envval WUKONG_CLUSTER_ETCD_URL)"; ETCD_PORT="${s##*:}"
  ETCD_PEER_PORT="$(envval WUKONG_CLUSTER_ETCD_PEER_PORT)"
}

healthy() {
  local c
  [[ -f "$ENV_FILE" ]] || return 1
  # a cluster started before the request-header CA existed cannot serve KubeVirt or CDI
  [[ -f "$PKI/front-proxy-ca.crt" ]] || return 1
  for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
  readyz >/dev/null 2>&1
}

cmd_up() {
  parse_sets "$@"
  need_tools
  BIN="$("$HACK/local-cluster/build.sh" | tail -1)"
  [[ -x "$BIN/kube-apiserver" ]] || die "build.sh did not produce binaries in '$BIN'"
  KUBECTL="$BIN/kubectl"
  lock_state
  if healthy && load_running && [[ "$(envval WUKONG_CLUSTER_BIN_DIR)" == "$BIN" ]]; then
    log "already running: $(envval WUKONG_CLUSTER_SERVER) (state $STATE)"
  else
    if [[ -d "$PIDS" || -f "$RUN_ENV" ]]; then
      log "found a stale or outdated cluster in $STATE: cleaning it"
      stop_all
    fi
    start_cluster
  fi
  [[ $NO_CRDS == 1 ]] || apply_sets
  set_env_crds "$(installed_sets)"
  cmd_status >&2 || true
  print_env
}

cmd_crds() {
  parse_sets "$@"
  [[ $NO_CRDS == 0 ]] || die "--no-crds makes no sense here"
  need_tools
  lock_state
  { healthy && load_running; } || die "no running cluster in $STATE (run: $0 up)"
  apply_sets
  set_env_crds "$(installed_sets)"
}

cmd_status() {
  local c up=1 r
  if [[ ! -f "$RUN_ENV" ]]; then
    echo "no cluster in $STATE"
    return 1
  fi
  [[ -f "$ENV_FILE" ]] || { echo "state: incomplete (up failed or is still starting; see $LOGS)"; up=0; }
  for c in "${COMPONENTS[@]}"; do
    if alive "$c"; then echo "$c: running (pid $(pid_of "$c"))"; else echo "$c: NOT running"; up=0; fi
  done
  echo "server: $(envval WUKONG_CLUSTER_SERVER)"
  echo "kubeconfig: $KUBECONFIG_FILE"
  r="$(readyz 2>&1)" || up=0
  echo "readyz: ${r:-<no answer>}"
  echo "sets: $(envval WUKONG_CLUSTER_CRDS)"
  for c in "${CDI_PROCS[@]}" "${KUBEVIRT_PROCS[@]}"; do
    if alive "$c"; then echo "$c: running (pid $(pid_of "$c"))"
    elif [[ -f "$PIDS/$c.pid" ]]; then echo "$c: NOT running (see $LOGS/$c.log)"; up=0; fi
  done
  [[ -z "$(envval WUKONG_CLUSTER_CDI_VERSION)" ]] || echo "cdi: $(envval WUKONG_CLUSTER_CDI_VERSION), webhooks at $(envval WUKONG_CLUSTER_CDI_API_URL), default StorageClass $(envval WUKONG_CLUSTER_STORAGE_CLASS)"
  [[ -z "$(envval WUKONG_CLUSTER_KUBEVIRT_VERSION)" ]] || echo "kubevirt: $(envval WUKONG_CLUSTER_KUBEVIRT_VERSION), webhooks at $(envval WUKONG_CLUSTER_VIRT_API_URL)"
  [[ $up == 1 ]]
}

print_env() {
  local line
  [[ -f "$ENV_FILE" ]] || die "no cluster in $STATE (run: $0 up)"
  while IFS= read -r line; do
    printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
  done < "$ENV_FILE"
}

# kill <component>: SIGKILL, as a crash would (fault tests); start <component>: start it again
# with its recorded ports and state, and wait until it serves. For etcd and kube-apiserver.
cmd_kill() {
  local c="${1:-}" pid
  [[ "$c" == etcd || "$c" == kube-apiserver ]] || die "kill: etcd or kube-apiserver, not '$c'"
  alive "$c" || die "$c is not running"
  pid="$(pid_of "$c")"
  kill -KILL "$pid"
  while [[ -d /proc/$pid ]]; do sleep 0.05; done
  log "killed $c (pid $pid)"
}

cmd_start() {
  local c="${1:-}"
  [[ "$c" == etcd || "$c" == kube-apiserver ]] || die "start: etcd or kube-apiserver, not '$c'"
  load_running || die "no cluster in $STATE"
  alive "$c" && { log "$c is running"; return 0; }
  case "$c" in
    etcd) start_etcd $((SECONDS + TIMEOUT)) ;;
    kube-apiserver)
      start_apiserver
      local deadline=$((SECONDS + TIMEOUT))
      wait_until kube-apiserver "$deadline" readyz ;;
  esac
  log "started $c"
}

cmd_down() {
  if [[ ! -d "$STATE" ]]; then log "nothing to do: $STATE does not exist"; return 0; fi
  need flock util-linux
  lock_state
  # webhooks first: they fail closed, and nothing may be left pointing at a stopped process
  if healthy && load_running; then kubevirt_down; cdi_down; fi
  stop_all
  rm -rf "$STATE"
  log "stopped; removed $STATE"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  crds) shift; cmd_crds "$@" ;;
  status) shift; cmd_status ;;
  env) shift; print_env ;;
  down) shift; cmd_down ;;
  kill) shift; cmd_kill "$@" ;;
  start) shift; cmd_start "$@" ;;
  -h|--help|help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' ;;
  *) sed -n '8,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
