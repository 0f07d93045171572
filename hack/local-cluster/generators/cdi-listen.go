package main

// Added by wukong's hack/local-cluster/build-virt.sh: upstream, cdi-controller's metrics and
// cdi-apiserver both listen on port 8443 (cdi-apiserver on every interface), fixed in the code.
// As plain processes on one host they could not both run, nor two control planes side by side.
// These read the address from the environment instead; unset, upstream's value is kept.

import (
	"os"
	"strconv"
)

func wukongListenAddress(env, upstream string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return upstream
}

func wukongListenPort(env string, upstream uint) uint {
	v := os.Getenv(env)
	if v == "" {
		return upstream
	}
	port, err := strconv.ParseUint(v, 10, 16)
	if err != nil {
		panic(env + ": not a port: " + v)
	}
	return uint(port)
}
