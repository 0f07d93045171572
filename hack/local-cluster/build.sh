#!/usr/bin/env bash
# Builds the local Kubernetes control plane used by wukong's tests from Go
# modules (no source is vendored; go.mod/go.sum next to this script pin it):
#
#   etcd, kube-apiserver, kube-controller-manager, kubectl, multus (thin plugin)
#
# into a cache outside the repository:
#
#   ${WUKONG_CACHE:-$HOME/.cache/wukong}/cluster-k8s<K>-etcd<E>-multus<M>/bin
#
# The versions (and so the directory name) are read from go.mod, the single
# place where they are pinned. A build goes to a temporary directory that is
# renamed into place only when all five binaries are built, and a stamp file is
# written last, so an interrupted build never leaves a half-filled cache.
# When the stamp and the five binaries exist, nothing is built.
#
# Usage:
#   build.sh                    build if needed; the bin dir is stdout's last line
#   build.sh --print-bin-dir    print the bin dir only (no build, may not exist yet)
#   build.sh --force            rebuild even if the cache is complete
#   build.sh --check-replaces   verify go.mod replaces every k8s.io module that
#                               k8s.io/kubernetes requires at v0.0.0
#
# Environment: WUKONG_CACHE (cache root), GOPROXY/GOMODCACHE/GOCACHE as usual.
# Build logs go to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

BINARIES=(etcd kube-apiserver kube-controller-manager kubectl multus)

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go is not installed (need Go >= 1.24 and the Go module proxy)"

# go.sum is committed: never let the build edit go.mod/go.sum. -buildvcs=false
# because the main module lives inside wukong's git checkout, whose state has
# nothing to do with these binaries.
export GOFLAGS="-mod=readonly -buildvcs=false"
export CGO_ENABLED=0

modver() { go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$1"; }

K8S_VERSION="$(modver k8s.io/kubernetes)"                           # v1.33.5
ETCD_VERSION="$(modver go.etcd.io/etcd/server/v3)"                  # v3.5.21
MULTUS_VERSION="$(modver gopkg.in/k8snetworkplumbingwg/multus-cni.v4)" # v4.2.3
[[ -n "$K8S_VERSION" && -n "$ETCD_VERSION" && -n "$MULTUS_VERSION" ]] || die "could not read versions from $HERE/go.mod"

CACHE_ROOT="${WUKONG_CACHE:-$HOME/.cache/wukong}"
NAME="cluster-k8s${K8S_VERSION#v}-etcd${ETCD_VERSION#v}-multus${MULTUS_VERSION#v}"
DEST="$CACHE_ROOT/$NAME"
BIN_DIR="$DEST/bin"
STAMP="$DEST/.complete"

check_replaces() {
  local gomod missing=0 m
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
  [[ -f "$gomod" ]] || die "could not download the go.mod of k8s.io/kubernetes@$K8S_VERSION"
  for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) v0\.0\.0$#\1#p' "$gomod"); do
    if ! grep -qE "^[[:space:]]*${m//./\\.} => ${m//./\\.} v0\.${K8S_VERSION#v1.}\$" go.mod; then
      log "missing: replace $m => $m v0.${K8S_VERSION#v1.}"; missing=1
    fi
  done
  [[ $missing == 0 ]] || die "go.mod lacks staging replaces (see above)"
  log "go.mod replaces every k8s.io module k8s.io/kubernetes@$K8S_VERSION requires at v0.0.0"
}

complete() {
  [[ -f "$STAMP" ]] || return 1
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
}

FORCE=0
case "${1:-}" in
  --print-bin-dir) echo "$BIN_DIR"; exit 0 ;;
  --check-replaces) check_replaces; exit 0 ;;
  --force) FORCE=1 ;;
  "") ;;
  -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1" ;;
esac

if [[ $FORCE == 0 ]] && complete; then
  log "cache complete: $DEST"
  echo "$BIN_DIR"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
# Serialise concurrent builds of the same cache (e.g. parallel test runs).
exec 9>"$CACHE_ROOT/.$NAME.lock"
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
  log "waiting for a concurrent build (lock $CACHE_ROOT/.$NAME.lock)"
  flock 9
fi
if [[ $FORCE == 0 ]] && complete; then
  log "cache completed by a concurrent build: $DEST"
  echo "$BIN_DIR"
  exit 0
fi

TMP="$(mktemp -d "$CACHE_ROOT/.tmp-$NAME.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
chmod 755 "$TMP"; mkdir -p "$TMP/bin"

BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
K8S_LDFLAGS="-s -w \
 -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/component-base/version.buildDate=$BUILD_DATE \
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=$minor \
 -X k8s.io/client-go/pkg/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.buildDate=$BUILD_DATE"
MULTUS_PKG=gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/multus
MULTUS_LDFLAGS="-s -w \
 -X $MULTUS_PKG.version=${MULTUS_VERSION#v} \
 -X $MULTUS_PKG.commit=module-$MULTUS_VERSION \
 -X $MULTUS_PKG.releaseStatus=,released \
 -X $MULTUS_PKG.date=$BUILD_DATE"
ETCD_LDFLAGS="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$ETCD_VERSION"

start=$SECONDS
log "building k8s $K8S_VERSION, etcd $ETCD_VERSION, multus $MULTUS_VERSION with $(go version | cut -d' ' -f3) into $TMP (GOCACHE=$(go env GOCACHE))"
go mod download >&2   # fetch everything first, so network and compile errors are told apart

log "kube-apiserver, kube-controller-manager, kubectl"
go build -trimpath -ldflags "$K8S_LDFLAGS" -o "$TMP/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl >&2
log "etcd"
go build -trimpath -ldflags "$ETCD_LDFLAGS" -o "$TMP/bin/etcd" go.etcd.io/etcd/server/v3 >&2
log "multus"
go build -trimpath -ldflags "$MULTUS_LDFLAGS" -o "$TMP/bin/multus" gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus >&2

for b in "${BINARIES[@]}"; do [[ -x "$TMP/bin/$b" ]] || die "$b was not built"; done
"$TMP/bin/kube-apiserver" --version >&2
"$TMP/bin/etcd" --version >&2 | head -1 >&2 || true

cat > "$TMP/versions.txt" <<EOF
k8s.io/kubernetes $K8S_VERSION
go.etcd.io/etcd/server/v3 $ETCD_VERSION
gopkg.in/k8snetworkplumbingwg/multus-cni.v4 $MULTUS_VERSION
go $(go version | cut -d' ' -f3)
built $BUILD_DATE in $((SECONDS - start)) s
go.sum sha256 $(sha256sum go.sum | cut -d' ' -f1)
EOF

rm -rf "$DEST"
mv "$TMP" "$DEST"
trap - EXIT
date -u +%Y-%m-%dT%H:%M:%SZ > "$STAMP"
log "built in $((SECONDS - start)) s: $BIN_DIR"
echo "$BIN_DIR"
