#!/usr/bin/env bash
# `make test`: every check and every test, against real components.
#   1. installs what the tests need (hack/install-deps.sh)
#   2. cargo fmt --check, cargo clippy -D warnings
#   3. builds the control plane, KubeVirt and CDI (cached outside the repo; the oldest supported
#      KubeVirt/CDI pair too, which one test runs in a control plane of its own) and starts a
#      private control plane for the test run in target/test-cluster, with KubeVirt and CDI;
#      stops it at the end, pass or fail
#   4. cargo test --workspace: unit, snapshot and property tests, then the integration tests
#      against the control plane, KubeVirt, CDI, the CNI plugins and Multus
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

hack/install-deps.sh
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy -D warnings" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== the pure core builds alone (no client or runtime features leak into it)" >&2
cargo check -p wukong-render --locked
echo "== cargo build" >&2
cargo build --workspace --locked

export WUKONG_CLUSTER_DIR="$REPO/target/test-cluster"
export WUKONG_BIN="$REPO/target/debug/wukong"
trap 'hack/local-cluster.sh down >/dev/null 2>&1 || true' EXIT
echo "== KubeVirt and CDI: the oldest supported pair (built once, cached)" >&2
while read -r component version; do
  hack/local-cluster/build-virt.sh "$component" "$version" >/dev/null
done < <(for c in kubevirt cdi; do hack/local-cluster/build-virt.sh versions "$c" | tail -n +2 | sed "s/^/$c /"; done)
echo "== local control plane (real etcd, kube-apiserver, kube-controller-manager, KubeVirt, CDI)" >&2
hack/local-cluster.sh up >/dev/null

echo "== cargo test" >&2
cargo test --workspace --locked -- "$@"
