#!/usr/bin/env bash
# Builds the real KubeVirt and CDI components the local control plane runs as plain processes:
#
#   kubevirt   virt-api, virt-controller, wukong-kubevirt-manifests
#   cdi        cdi-controller, cdi-apiserver, wukong-cdi-manifests
#
# (the manifests tools are generators/*/main.go, compiled inside the source tree: they print the
# CRDs, RBAC and webhook configurations from the component's own generator code) into
#
#   ${WUKONG_CACHE:-$HOME/.cache/wukong}/<component>-<version>-<inputs>/bin
#
# once per version (<inputs> is a hash of this recipe and the generators, so a change to them
# rebuilds). No cgo; the Go module proxy is not used: everything comes from the source tree's
# vendor/ directory.
#
# Source, in this order:
#   1. $WUKONG_SHARED/third_party/<component>/<archive> (machines without GitHub: the minimal
#      source subset of the release tag; its sha256 must match virt-sources.txt)
#   2. git clone --depth 1 --branch <version> of the upstream repository (its commit must match)
#
# cdi-controller (metrics) and cdi-apiserver both listen on port 8443 upstream, fixed in the
# code: the build adds generators/cdi-listen.go and points the two listeners at it, so their
# addresses come from CDI_METRICS_BIND_ADDRESS and CDI_APISERVER_HOST/CDI_APISERVER_PORT
# (unset: upstream's). Nothing else of the upstream source is changed.
#
# Usage:
#   build-virt.sh kubevirt|cdi [VERSION]                  build if needed; last line: the bin dir
#   build-virt.sh kubevirt|cdi [VERSION] --print-bin-dir  the bin dir only (may not exist yet)
#   build-virt.sh kubevirt|cdi [VERSION] --force          rebuild
#   build-virt.sh versions kubevirt|cdi                   the supported versions, default first
#
# Environment: WUKONG_CACHE, WUKONG_SHARED (default <repo>/../shared), GOCACHE as usual.
# Build logs go to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SHARED="$(realpath -m "${WUKONG_SHARED:-$REPO/../shared}")"
SOURCES="$HERE/virt-sources.txt"
CACHE_ROOT="${WUKONG_CACHE:-$HOME/.cache/wukong}"
RECIPE=1   # bump when the build below changes in a way the inputs hash cannot see

log() { printf 'build-virt.sh: %s\n' "$*" >&2; }
die() { printf 'build-virt.sh: error: %s\n' "$*" >&2; exit 1; }

versions() { awk -v c="$1" '$1 == c { print $2 }' "$SOURCES"; }
field() { # field <component> <version> <column>
  awk -v c="$1" -v v="$2" -v n="$3" '$1 == c && $2 == v { print $n }' "$SOURCES"
}

[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
if [[ "$1" == versions ]]; then
  [[ -n "${2:-}" ]] || die "versions needs kubevirt or cdi"
  versions "$2"; exit 0
fi
COMPONENT="$1"; shift
case "$COMPONENT" in
  kubevirt) REPO_URL=https://github.com/kubevirt/kubevirt; ARCHIVE_PREFIX=kv-src; TREE_PREFIX=kubevirt
            BINARIES=(virt-api virt-controller wukong-kubevirt-manifests) ;;
  cdi) REPO_URL=https://github.com/kubevirt/containerized-data-importer; ARCHIVE_PREFIX=cdi-src
       TREE_PREFIX=containerized-data-importer
       BINARIES=(cdi-controller cdi-apiserver wukong-cdi-manifests) ;;
  -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown component '$COMPONENT' (kubevirt or cdi)" ;;
esac

VERSION=""; MODE=build
while (( $# )); do
  case "$1" in
    --print-bin-dir) MODE=print ;;
    --force) MODE=force ;;
    v*) VERSION="$1" ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
[[ -n "$VERSION" ]] || VERSION="$(versions "$COMPONENT" | head -1)"
COMMIT="$(field "$COMPONENT" "$VERSION" 3)"
ARCHIVE_SHA="$(field "$COMPONENT" "$VERSION" 4)"
[[ -n "$COMMIT" ]] || die "$COMPONENT $VERSION is not in $SOURCES (supported: $(versions "$COMPONENT" | tr '\n' ' '))"

inputs_hash() {
  { echo "recipe $RECIPE"; cat "$HERE/generators/$COMPONENT/main.go"
    [[ $COMPONENT != cdi ]] || cat "$HERE/generators/cdi-listen.go"; } | sha256sum | cut -c1-10
}
DEST="$CACHE_ROOT/$COMPONENT-$VERSION-$(inputs_hash)"
BIN_DIR="$DEST/bin"
STAMP="$DEST/.complete"

if [[ $MODE == print ]]; then echo "$BIN_DIR"; exit 0; fi

complete() {
  [[ -f "$STAMP" ]] || return 1
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
}
if [[ $MODE == build ]] && complete; then
  log "cache complete: $DEST"; echo "$BIN_DIR"; exit 0
fi

command -v go >/dev/null 2>&1 || die "go is not installed (need Go >= 1.24)"
mkdir -p "$CACHE_ROOT"
NAME="$(basename "$DEST")"
exec 9>"$CACHE_ROOT/.$NAME.lock"
if ! flock -n 9; then log "waiting for a concurrent build (lock $CACHE_ROOT/.$NAME.lock)"; flock 9; fi
if [[ $MODE == build ]] && complete; then
  log "cache completed by a concurrent build: $DEST"; echo "$BIN_DIR"; exit 0
fi

TMP="$(mktemp -d "$CACHE_ROOT/.tmp-$NAME.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/bin" "$TMP/src"
start=$SECONDS

# ---------------------------------------------------------------- source
archive="$SHARED/third_party/$COMPONENT/$ARCHIVE_PREFIX-$VERSION.tar.xz"
if [[ -f "$archive" ]]; then
  log "source: $archive"
  sum="$(sha256sum "$archive" | cut -d' ' -f1)"
  [[ "$sum" == "$ARCHIVE_SHA" ]] || die "$archive has sha256 $sum, virt-sources.txt pins $ARCHIVE_SHA"
  tar -xJf "$archive" -C "$TMP/src"
  TREE="$TMP/src/$TREE_PREFIX-$VERSION"
  SOURCE_DESC="archive $(basename "$archive") sha256 $sum"
else
  log "source: no $archive; git clone --depth 1 --branch $VERSION $REPO_URL"
  command -v git >/dev/null 2>&1 || die "git is needed to clone $REPO_URL"
  TREE="$TMP/src/$TREE_PREFIX-$VERSION"
  git -c advice.detachedHead=false clone -q --depth 1 --branch "$VERSION" "$REPO_URL" "$TREE" >&2 \
    || die "cannot clone $REPO_URL at $VERSION (no $archive either)"
  got="$(git -C "$TREE" rev-parse HEAD)"
  [[ "$got" == "$COMMIT" ]] || die "$REPO_URL $VERSION is commit $got, virt-sources.txt pins $COMMIT"
  SOURCE_DESC="git $REPO_URL $VERSION commit $got"
fi
[[ -f "$TREE/go.mod" && -d "$TREE/vendor" ]] || die "$TREE is not a $COMPONENT source tree with vendor/"

# ---------------------------------------------------------------- build
export GOFLAGS="-mod=vendor -buildvcs=false" GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0
BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
case "$COMPONENT" in
  kubevirt)
    mkdir -p "$TREE/tools/wukong-kubevirt-manifests"
    cp "$HERE/generators/kubevirt/main.go" "$TREE/tools/wukong-kubevirt-manifests/"
    pkg=kubevirt.io/client-go/version
    ldflags="-s -w -X $pkg.gitVersion=$VERSION -X $pkg.gitCommit=$COMMIT -X $pkg.gitTreeState=clean -X $pkg.buildDate=$BUILD_DATE"
    targets=(./cmd/virt-api ./cmd/virt-controller ./tools/wukong-kubevirt-manifests) ;;
  cdi)
    mkdir -p "$TREE/tools/wukong-cdi-manifests"
    cp "$HERE/generators/cdi/main.go" "$TREE/tools/wukong-cdi-manifests/"
    ctl="$TREE/cmd/cdi-controller/controller.go" api="$TREE/cmd/cdi-apiserver/apiserver.go"
    cp "$HERE/generators/cdi-listen.go" "$TREE/cmd/cdi-controller/zz_wukong_listen.go"
    cp "$HERE/generators/cdi-listen.go" "$TREE/cmd/cdi-apiserver/zz_wukong_listen.go"
    # The metrics address is set on the manager's options just before the manager is made
    # (v1.64 sets ":8443" in them; v1.62 leaves controller-runtime's default ":8080").
    sed -i 's|^\tmgr, err := manager.New(|\topts.Metrics.BindAddress = wukongListenAddress("CDI_METRICS_BIND_ADDRESS", opts.Metrics.BindAddress)\n&|' "$ctl"
    sed -i -e 's|apiserver.NewCdiAPIServer(defaultHost,|apiserver.NewCdiAPIServer(wukongListenAddress("CDI_APISERVER_HOST", defaultHost),|' \
      -e 's|^\t\tdefaultPort,$|\t\twukongListenPort("CDI_APISERVER_PORT", defaultPort),|' "$api"
    grep -q 'wukongListenAddress("CDI_METRICS_BIND_ADDRESS"' "$ctl" || die "cannot point cdi-controller's metrics listener at the environment: $ctl changed"
    grep -q 'wukongListenPort("CDI_APISERVER_PORT"' "$api" || die "cannot point cdi-apiserver's listener at the environment: $api changed"
    ldflags="-s -w -X kubevirt.io/containerized-data-importer/pkg/version.gitVersion=$VERSION -X kubevirt.io/containerized-data-importer/pkg/version.gitCommit=$COMMIT -X kubevirt.io/containerized-data-importer/pkg/version.gitTreeState=clean -X kubevirt.io/containerized-data-importer/pkg/version.buildDate=$BUILD_DATE"
    targets=(./cmd/cdi-controller ./cmd/cdi-apiserver ./tools/wukong-cdi-manifests) ;;
esac
log "building $COMPONENT $VERSION (${targets[*]}) with $(go version | cut -d' ' -f3), GOCACHE=$(go env GOCACHE)"
(cd "$TREE" && go build -trimpath -ldflags "$ldflags" -o "$TMP/bin/" "${targets[@]}") >&2
for b in "${BINARIES[@]}"; do [[ -x "$TMP/bin/$b" ]] || die "$b was not built"; done

cat > "$TMP/versions.txt" <<EOF
$COMPONENT $VERSION commit $COMMIT
source $SOURCE_DESC
go $(go version | cut -d' ' -f3)
built $BUILD_DATE in $((SECONDS - start)) s
EOF
rm -rf "$TMP/src"
rm -rf "$DEST"
mv "$TMP" "$DEST"
trap - EXIT
date -u +%Y-%m-%dT%H:%M:%SZ > "$STAMP"
log "built $COMPONENT $VERSION in $((SECONDS - start)) s: $BIN_DIR"
echo "$BIN_DIR"
