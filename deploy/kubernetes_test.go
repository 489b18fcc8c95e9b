package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	k8sDir = "kubernetes"
	// secretExample stands in for the Secret made with kubectl: the checks
	// read its keys, and it must never be listed in kustomization.yaml.
	secretExample = "secret.example.yaml"
	appContainer  = "latchkey"
)

// readManifests reads every YAML file of kubernetes/, by name.
func readManifests(t *testing.T) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	files := make(map[string][]byte)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml") {
			files[e.Name()] = readFile(t, path.Join(k8sDir, e.Name()))
		}
	}
	return files
}

func TestKubernetes(t *testing.T) {
	reportAll(t, checkKubernetes(readManifests(t)))
}

// TestKubernetesChecksCatch breaks one file at a time and wants the checks
// to name what broke.
func TestKubernetesChecksCatch(t *testing.T) {
	tests := []struct {
		name, file, old, new string
		want                 string
	}{
		{"misspelt field", "deployment.yaml", "maxSurge: 1", "maxSurg: 1", `unknown field "spec.strategy.rollingUpdate.maxSurg"`},
		{"duplicate field", "service.yaml", "  type: ClusterIP\n", "  type: ClusterIP\n  type: NodePort\n", `key "type" already set`},
		{"field of the wrong type", "hpa.yaml", "maxReplicas: 6", "maxReplicas: six", "maxReplicas"},
		{"unknown apiVersion", "hpa.yaml", "autoscaling/v2", "autoscaling/v3", "autoscaling/v3"},
		{"one replica", "deployment.yaml", "replicas: 2", "replicas: 1", "spec.replicas"},
		{"readiness on liveness path", "deployment.yaml", "path: /readyz", "path: /healthz", "readinessProbe.httpGet.path"},
		{"probe on another port", "deployment.yaml", "path: /readyz\n              port: http", "path: /readyz\n              port: 9090", "readinessProbe.httpGet.port"},
		{"probe on unknown port name", "deployment.yaml", "path: /healthz\n              port: http\n            periodSeconds: 10", "path: /healthz\n              port: web\n            periodSeconds: 10", "livenessProbe.httpGet.port"},
		{"misspelt probe", "deployment.yaml", "readinessProbe:", "readinesProbe:", `unknown field "spec.template.spec.containers[0].readinesProbe"`},
		{"no readiness probe", "deployment.yaml", "          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: http\n            periodSeconds: 5\n            timeoutSeconds: 3\n            failureThreshold: 2\n", "", "no readinessProbe"},
		{"secret key missing", "deployment.yaml", "key: LATCHKEY_ENCRYPTION_KEYS", "key: ENCRYPTION_KEYS", `no key "ENCRYPTION_KEYS"`},
		{"secret renamed", "secret.example.yaml", "  name: latchkey\n  labels", "  name: latchkey-secrets\n  labels", `Secret "latchkey"`},
		{"configmap renamed", "configmap.yaml", "  name: latchkey\n  labels", "  name: latchkey-config\n  labels", `ConfigMap "latchkey"`},
		{"encryption key inline", "deployment.yaml", "            - name: LATCHKEY_ENCRYPTION_KEYS\n              valueFrom:\n                secretKeyRef:\n                  name: latchkey\n                  key: LATCHKEY_ENCRYPTION_KEYS", "            - name: LATCHKEY_ENCRYPTION_KEYS\n              value: k1:AAAA", "LATCHKEY_ENCRYPTION_KEYS must come from a Secret"},
		{"dev mode in config", "configmap.yaml", "LATCHKEY_LOG_LEVEL: info", "LATCHKEY_LOG_LEVEL: info\n  LATCHKEY_DEV: \"true\"", "dev mode"},
		{"dev flag", "deployment.yaml", `args: ["serve"]`, `args: ["serve", "-dev"]`, "dev mode"},
		{"bad config value", "configmap.yaml", "LATCHKEY_SHUTDOWN_TIMEOUT: 15s", "LATCHKEY_SHUTDOWN_TIMEOUT: soon", "LATCHKEY_SHUTDOWN_TIMEOUT"},
		{"grace too short", "deployment.yaml", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 15", "terminationGracePeriodSeconds"},
		{"root allowed", "deployment.yaml", "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot"},
		{"writable root", "deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"privilege escalation", "deployment.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"},
		{"capabilities kept", "deployment.yaml", `drop: ["ALL"]`, `drop: ["NET_RAW"]`, "capabilities.drop"},
		{"no seccomp", "deployment.yaml", "type: RuntimeDefault", "type: Unconfined", "seccompProfile"},
		{"no memory limit", "deployment.yaml", "cpu: \"1\"\n              memory: 256Mi", "cpu: \"1\"", "resources.limits.memory"},
		{"latest image", "deployment.yaml", "latchkey:0.1.0\n          args: [\"serve\"]", "latchkey:latest\n          args: [\"serve\"]", "latest"},
		{"migrate on another image", "deployment.yaml", "latchkey:0.1.0\n          args: [\"migrate\"]", "latchkey:0.0.9\n          args: [\"migrate\"]", "same image"},
		{"no migrate step", "deployment.yaml", `args: ["migrate"]`, `args: ["serve"]`, "migrate"},
		{"selector misses pods", "deployment.yaml", "    matchLabels:\n      app.kubernetes.io/name: latchkey", "    matchLabels:\n      app.kubernetes.io/name: latchkey-web", "spec.selector"},
		{"service selector", "service.yaml", "    app.kubernetes.io/name: latchkey\n  ports", "    app.kubernetes.io/name: web\n  ports", "spec.selector"},
		{"service target port", "service.yaml", "targetPort: http", "targetPort: 8081", "targetPort"},
		{"hpa target", "hpa.yaml", "    name: latchkey\n  minReplicas", "    name: web\n  minReplicas", "scaleTargetRef"},
		{"hpa without cpu", "hpa.yaml", "name: cpu", "name: memory", "cpu"},
		{"hpa without cpu request", "deployment.yaml", "cpu: 100m\n", "", "resources.requests.cpu"},
		{"pdb selector", "pdb.yaml", "      app.kubernetes.io/name: latchkey", "      app.kubernetes.io/name: web", "spec.selector"},
		{"pdb blocks drains", "pdb.yaml", "maxUnavailable: 1", "maxUnavailable: 0", "disruption"},
		{"real secret value", "secret.example.yaml", "k1:CHANGE-ME-base64-of-32-random-bytes", "k1:dGhpcyBpcyBub3QgYSBwbGFjZWhvbGRlciEhISE=", "placeholder"},
		{"kustomization misses a file", "kustomization.yaml", "  - pdb.yaml\n", "", "pdb.yaml is not listed"},
		{"kustomization applies the example", "kustomization.yaml", "  - pdb.yaml\n", "  - pdb.yaml\n  - secret.example.yaml\n", "placeholders"},
		{"kustomization names a missing file", "kustomization.yaml", "  - hpa.yaml\n", "  - hpa.yaml\n  - ingress.yaml\n", "ingress.yaml"},
		{"kustomization unknown field", "kustomization.yaml", "resources:", "resource:", "resource"},
		{"kustomization image name", "kustomization.yaml", "  - name: registry.example.com/latchkey\n", "  - name: latchkey\n", "images"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := readManifests(t)
			files[tt.file] = mutate(t, tt.file, files[tt.file], tt.old, tt.new)
			wantProblem(t, checkKubernetes(files), tt.want)
		})
	}
}

// checkKubernetes decodes every document of files (kubernetes/ by file
// name) strictly into the Kubernetes API types, then checks them together.
func checkKubernetes(files map[string][]byte) []error {
	var p problems
	m := decodeManifests(&p, files)
	if m == nil {
		return p
	}
	m.check(&p)
	checkKustomization(&p, files, m)
	return p
}

// manifests are the decoded objects, with where each came from.
type manifests struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	pdb        *policyv1.PodDisruptionBudget
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	where      map[runtime.Object]string // "kubernetes/hpa.yaml, document 1, HorizontalPodAutoscaler latchkey"
}

// newDecoder decodes the kinds these manifests use, by apiVersion and kind,
// in strict mode: an unknown or repeated field is an error instead of being
// dropped, so a misspelt field fails here rather than being ignored on some
// clusters. A kind not registered here fails too; register its group when
// adding one.
func newDecoder() (runtime.Decoder, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme, policyv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer(), nil
}

// decodeManifests decodes every file but kustomization.yaml, which is not a
// Kubernetes object. It returns nil if there is nothing to check further.
func decodeManifests(p *problems, files map[string][]byte) *manifests {
	dec, err := newDecoder()
	if err != nil {
		p.add(k8sDir, "%v", err)
		return nil
	}
	m := &manifests{
		configMaps: make(map[string]*corev1.ConfigMap),
		secrets:    make(map[string]*corev1.Secret),
		where:      make(map[runtime.Object]string),
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "kustomization.yaml" {
			continue
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(files[name])))
		for n := 1; ; n++ {
			doc, err := r.Read()
			if err == io.EOF {
				break
			}
			at := fmt.Sprintf("%s/%s, document %d", k8sDir, name, n)
			if err != nil {
				p.add(at, "%v", err)
				break
			}
			if j, err := yaml.YAMLToJSON(doc); err == nil && string(j) == "null" {
				continue // only comments
			}
			obj, gvk, err := dec.Decode(doc, nil, nil)
			if err != nil {
				p.add(at, "%v", err)
				continue
			}
			if meta, ok := obj.(metav1.Object); ok {
				at = fmt.Sprintf("%s, %s %s", at, gvk.Kind, meta.GetName())
			}
			m.where[obj] = at
			switch o := obj.(type) {
			case *appsv1.Deployment:
				setOnce(p, at, &m.deployment, o)
			case *corev1.Service:
				setOnce(p, at, &m.service, o)
			case *autoscalingv2.HorizontalPodAutoscaler:
				setOnce(p, at, &m.hpa, o)
			case *policyv1.PodDisruptionBudget:
				setOnce(p, at, &m.pdb, o)
			case *corev1.ConfigMap:
				m.configMaps[o.Name] = o
			case *corev1.Secret:
				m.secrets[o.Name] = o
			default:
				p.add(at, "no check knows this kind; add one to kubernetes_test.go")
			}
		}
	}
	for _, k := range []struct {
		kind    string
		missing bool
	}{
		{"Deployment", m.deployment == nil},
		{"Service", m.service == nil},
		{"HorizontalPodAutoscaler", m.hpa == nil},
		{"PodDisruptionBudget", m.pdb == nil},
	} {
		if k.missing {
			p.add(k8sDir, "no %s", k.kind)
		}
	}
	if m.deployment == nil {
		return nil
	}
	return m
}

// setOnce sets *dst to o, reporting a second object of the same kind: each
// check below is written for one Latchkey Deployment and what points at it.
func setOnce[T any](p *problems, at string, dst **T, o *T) {
	if *dst != nil {
		p.add(at, "a second object of this kind; the checks expect one")
		return
	}
	*dst = o
}

// kustomization is the part of kustomize's Kustomization these files use.
// kustomize's own types come with a module far larger than this check;
// decoding strictly into this subset still catches a misspelt field, and a
// field used later must be added here.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images"`
}

// checkKustomization checks that kustomization.yaml lists every manifest
// except the Secret example, and that its image override names the image
// the Deployment uses.
func checkKustomization(p *problems, files map[string][]byte, m *manifests) {
	at := k8sDir + "/kustomization.yaml"
	b, ok := files["kustomization.yaml"]
	if !ok {
		p.add(at, "missing")
		return
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		p.add(at, "%v", err)
		return
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		p.add(at, "apiVersion and kind are %q %q, want kustomize.config.k8s.io/v1beta1 Kustomization", k.APIVersion, k.Kind)
	}
	for _, r := range k.Resources {
		switch {
		case r == secretExample:
			p.add(at, "resources lists %s: applying it would replace the real Secret with placeholders", r)
		case files[r] == nil:
			p.add(at, "resources lists %s, which is not in %s", r, k8sDir)
		}
	}
	for name := range files {
		if name != "kustomization.yaml" && name != secretExample && !slices.Contains(k.Resources, name) {
			p.add(at, "%s is not listed in resources, so kubectl apply -k would skip it", name)
		}
	}
	var images []string
	for _, c := range append(m.deployment.Spec.Template.Spec.InitContainers, m.deployment.Spec.Template.Spec.Containers...) {
		images = append(images, c.Image)
	}
	for _, img := range k.Images {
		if !slices.ContainsFunc(images, func(ref string) bool { return repository(ref) == repository(img.Name) }) {
			p.add(at, "images: %q is not an image of the Deployment %v, so the override would change nothing", img.Name, images)
		}
		if img.NewTag == "latest" {
			p.add(at, "images[%s].newTag is latest: pin a version", img.Name)
		}
	}
}
