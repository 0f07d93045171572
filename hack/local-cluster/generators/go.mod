// These programs are compiled inside KubeVirt's and CDI's source trees (build-virt.sh copies them
// there), against the packages of the release built. This file only keeps them out of the
// hack/local-cluster module, which does not require KubeVirt or CDI.
module wukong.local/generators

go 1.24
