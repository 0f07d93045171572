// wukong-kubevirt-manifests prints what the local control plane needs to run KubeVirt's
// virt-api and virt-controller as plain processes, taken from KubeVirt's own generator code
// (virt-operator's install strategy), so the objects always match the version built:
//
//	-what=crds      every CRD of the install strategy, then kubevirts.kubevirt.io
//	-what=rbac      the strategy's ServiceAccounts, ClusterRoles, Roles and their bindings
//	-what=webhooks  virt-api's validating and mutating webhook configurations, each webhook
//	                pointed at -url<path> with -ca-file as its CA bundle (no Service exists)
//
// hack/local-cluster/build-virt.sh copies this directory into the KubeVirt source tree
// (it imports kubevirt.io/kubevirt/pkg/...) and builds it next to virt-api.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	virtv1 "kubevirt.io/api/core/v1"

	"kubevirt.io/kubevirt/pkg/virt-operator/resource/generate/components"
	"kubevirt.io/kubevirt/pkg/virt-operator/resource/generate/install"
	operatorutil "kubevirt.io/kubevirt/pkg/virt-operator/util"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "wukong-kubevirt-manifests: "+format+"\n", args...)
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

func installStrategy(namespace string) *install.Strategy {
	kv := &virtv1.KubeVirt{ObjectMeta: metav1.ObjectMeta{Name: "kubevirt", Namespace: namespace}}
	// No monitoring namespace: no ServiceMonitor or PrometheusRule (their CRDs do not exist).
	strategy, err := install.GenerateCurrentInstallStrategy(operatorutil.GetTargetConfigFromKV(kv), "", namespace)
	if err != nil {
		fail("install strategy: %v", err)
	}
	return strategy
}

func printCRDs(namespace string) {
	for _, crd := range installStrategy(namespace).CRDs() {
		emitYAML(crd)
	}
	kubevirt, err := components.NewKubeVirtCrd()
	if err != nil {
		fail("kubevirts CRD: %v", err)
	}
	emitYAML(kubevirt)
}

func printRBAC(namespace string) {
	s := installStrategy(namespace)
	// Accounts and roles before the bindings that name them.
	for _, o := range s.ServiceAccounts() {
		emitYAML(o)
	}
	for _, o := range s.ClusterRoles() {
		emitYAML(o)
	}
	for _, o := range s.Roles() {
		emitYAML(o)
	}
	for _, o := range s.ClusterRoleBindings() {
		emitYAML(o)
	}
	for _, o := range s.RoleBindings() {
		emitYAML(o)
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
	validating := components.NewVirtAPIValidatingWebhookConfiguration(namespace)
	for i := range validating.Webhooks {
		pointAt(&validating.Webhooks[i].ClientConfig, base, ca)
	}
	mutating := components.NewVirtAPIMutatingWebhookConfiguration(namespace)
	for i := range mutating.Webhooks {
		pointAt(&mutating.Webhooks[i].ClientConfig, base, ca)
	}
	emitYAML(validating)
	emitYAML(mutating)
}

func main() {
	what := flag.String("what", "", "crds | rbac | webhooks")
	namespace := flag.String("namespace", "kubevirt", "the namespace KubeVirt is installed in")
	url := flag.String("url", "", "webhooks: virt-api's base URL, e.g. https://127.0.0.1:18443")
	caFile := flag.String("ca-file", "", "webhooks: the CA (PEM) of virt-api's serving certificate")
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
