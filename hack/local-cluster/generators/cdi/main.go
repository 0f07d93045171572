// wukong-cdi-manifests prints what the local control plane needs to run CDI's cdi-controller
// and cdi-apiserver as plain processes, taken from cdi-operator's own resource factories, so
// the objects always match the version built:
//
//	-what=crds      the operator's CRDs, then cdis.cdi.kubevirt.io
//	-what=rbac      ServiceAccounts, Roles and RoleBindings of the controller and the apiserver
//	                in -namespace, and the cluster-wide roles and bindings
//	-what=webhooks  cdi-apiserver's webhook configurations, each webhook pointed at -url<path>
//	                with -ca-file as its CA bundle (no Service exists; the upload APIService,
//	                which needs one, is left out)
//
// hack/local-cluster/build-virt.sh copies this directory into the CDI source tree (it imports
// kubevirt.io/containerized-data-importer/pkg/...) and builds it next to cdi-controller.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kubevirt.io/containerized-data-importer/pkg/operator/resources"
	"kubevirt.io/containerized-data-importer/pkg/operator/resources/cluster"
	"kubevirt.io/containerized-data-importer/pkg/operator/resources/namespaced"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "wukong-cdi-manifests: "+format+"\n", args...)
	os.Exit(1)
}

// emitYAML writes obj as one YAML document. Status and creationTimestamp are dropped: they are
// the API server's to set.
func emitYAML(obj interface{}) {
	raw, err := json.Marshal(obj)
	if err != nil {
		fail("marshal: %v", err)
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(raw, &doc); err != nil {
		fail("unmarshal: %v", err)
	}
	delete(doc, "status")
	if meta, ok := doc["metadata"].(map[string]interface{}); ok {
		delete(meta, "creationTimestamp")
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		fail("yaml: %v", err)
	}
	fmt.Print("---\n" + string(out))
}

func clusterResources(namespace string) []client.Object {
	objs, err := cluster.CreateAllStaticResources(&cluster.FactoryArgs{Namespace: namespace})
	if err != nil {
		fail("cluster resources: %v", err)
	}
	return objs
}

func printCRDs(namespace string) {
	for _, o := range clusterResources(namespace) {
		if crd, ok := o.(*extv1.CustomResourceDefinition); ok {
			emitYAML(crd)
		}
	}
	var cdi extv1.CustomResourceDefinition
	if err := k8syaml.NewYAMLToJSONDecoder(strings.NewReader(resources.CDICRDs["cdi"])).Decode(&cdi); err != nil {
		fail("cdis CRD: %v", err)
	}
	emitYAML(&cdi)
}

func printRBAC(namespace string) {
	var objs []client.Object
	for _, group := range []string{"controller", "apiserver"} {
		group, err := namespaced.CreateResourceGroup(group, &namespaced.FactoryArgs{Namespace: namespace})
		if err != nil {
			fail("namespaced resources: %v", err)
		}
		objs = append(objs, group...)
	}
	objs = append(objs, clusterResources(namespace)...)
	// Accounts and roles before the bindings that name them; nothing else (no CRDs, no
	// Deployments or Services: the components run as processes).
	kinds := []func(client.Object) bool{
		func(o client.Object) bool { _, ok := o.(*corev1.ServiceAccount); return ok },
		func(o client.Object) bool { _, ok := o.(*rbacv1.ClusterRole); return ok },
		func(o client.Object) bool { _, ok := o.(*rbacv1.Role); return ok },
		func(o client.Object) bool { _, ok := o.(*rbacv1.ClusterRoleBinding); return ok },
		func(o client.Object) bool { _, ok := o.(*rbacv1.RoleBinding); return ok },
	}
	for _, is := range kinds {
		for _, o := range objs {
			if is(o) {
				emitYAML(o)
			}
		}
	}
}

func pointAt(client *admissionv1.WebhookClientConfig, base string, ca []byte) {
	path := ""
	if client.Service != nil && client.Service.Path != nil {
		path = *client.Service.Path
	}
	url := strings.TrimSuffix(base, "/") + path
	client.Service = nil
	client.URL = &url
	client.CABundle = ca
}

func printWebhooks(namespace, base, caFile string) {
	if base == "" || caFile == "" {
		fail("-what=webhooks needs -url and -ca-file")
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		fail("%v", err)
	}
	// Without a client the factories look up no CA bundle in the cluster: -ca-file is used.
	objs, err := cluster.CreateAllDynamicResources(&cluster.FactoryArgs{Namespace: namespace})
	if err != nil {
		fail("dynamic resources: %v", err)
	}
	for _, o := range objs {
		switch w := o.(type) {
		case *admissionv1.ValidatingWebhookConfiguration:
			for i := range w.Webhooks {
				pointAt(&w.Webhooks[i].ClientConfig, base, ca)
			}
			emitYAML(w)
		case *admissionv1.MutatingWebhookConfiguration:
			for i := range w.Webhooks {
				pointAt(&w.Webhooks[i].ClientConfig, base, ca)
			}
			emitYAML(w)
		}
	}
}

func main() {
	what := flag.String("what", "", "crds | rbac | webhooks")
	namespace := flag.String("namespace", "cdi", "the namespace CDI is installed in")
	url := flag.String("url", "", "webhooks: cdi-apiserver's base URL, e.g. https://127.0.0.1:18445")
	caFile := flag.String("ca-file", "", "webhooks: the CA (PEM) of cdi-apiserver's serving certificate")
	flag.Parse()
	switch *what {
	case "crds":
		printCRDs(*namespace)
	case "rbac":
		printRBAC(*namespace)
	case "webhooks":
		printWebhooks(*namespace, *url, *caFile)
	default:
		fail("-what must be crds, rbac or webhooks, not %q", *what)
	}
}
