//go:build tools

// Package tools pins the Go packages whose binaries hack/local-cluster/build.sh
// builds (the local Kubernetes control plane used by wukong's tests). Nothing
// here is compiled into wukong; the blank imports only make `go mod tidy` keep
// every module these programs need in go.mod/go.sum, so `go build` runs with
// GOFLAGS=-mod=readonly.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
