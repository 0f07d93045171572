# wukong: the two commands a fresh machine needs are `make demo` (the main job) and `make test`.
.PHONY: demo render test fuzz bench crd cluster-up cluster-down

EXAMPLE ?= examples/web-server-01.yaml

## demo: a local control plane, the controller, the examples applied, their status, NADs and VMs
demo:
	hack/install-deps.sh
	hack/demo.sh

## render: build wukong and print what the seed's example yields (NADs, then the VM)
render:
	cargo run -q -p wukong -- render -f $(EXAMPLE)

## test: fmt, clippy and every test (unit, snapshot, property, real control plane, real CNI)
test:
	hack/test.sh

## fuzz: the differential fuzzer, N cases from seed SEED: wukong render against the real API
## server (reuses or starts the control plane in target/test-cluster); report in target/fuzz-report.md
N ?= 5000
SEED ?= 14
fuzz:
	WUKONG_FUZZ_CASES=$(N) WUKONG_FUZZ_SEED=$(SEED) WUKONG_FUZZ_REPORT=$(CURDIR)/target/fuzz-report.md \
		cargo test -p wukong --test fuzz -- --nocapture

## bench: criterion benchmarks of the pure core
bench:
	cargo bench -p wukong-render --bench render

## bench-scale: N Wukongs (default 1000) converged by the controller vs. a bare client doing the
## same writes, on a private control plane (BENCH_NAMESPACES, BENCH_CONCURRENCY, BENCH_WORKERS,
## BENCH_CLUSTER_ARGS; see crates/wukong/benches/scale.rs)
N ?= 1000
bench-scale:
	N=$(N) cargo bench -p wukong --bench scale

## crd: regenerate deploy/crd.yaml and deploy/warning-policy.yaml from the API (a test fails when they drift)
crd:
	cargo run -q -p wukong -- crd > deploy/crd.yaml
	cargo run -q -p wukong -- crd --warning-policy > deploy/warning-policy.yaml

## cluster-up / cluster-down: a local control plane in .local-cluster/ for manual use
cluster-up:
	hack/local-cluster.sh up
cluster-down:
	hack/local-cluster.sh down
