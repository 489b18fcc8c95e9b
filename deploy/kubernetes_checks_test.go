package deploy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// What Latchkey needs of the decoded manifests, beyond what the API types
// enforce. kubernetes_test.go decodes them and runs these.

// check checks the Deployment and every object that points at it.
func (m *manifests) check(p *problems) {
	d := m.deployment
	at := m.where[d]
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		p.add(at, "spec.replicas must be 2 or more, so that one pod can go down without an outage")
	}
	podLabels := labels.Set(d.Spec.Template.Labels)
	checkSelector(p, at, "spec.selector", d.Spec.Selector, podLabels)

	pod := &d.Spec.Template.Spec
	i := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == appContainer })
	if i < 0 {
		p.add(at, "no container named %q", appContainer)
		return
	}
	app := &pod.Containers[i]
	appAt := fmt.Sprintf("%s: spec.template.spec.containers[%s]", at, app.Name)

	for _, c := range pod.InitContainers {
		m.checkContainer(p, fmt.Sprintf("%s: spec.template.spec.initContainers[%s]", at, c.Name), pod, &c)
	}
	for _, c := range pod.Containers {
		m.checkContainer(p, fmt.Sprintf("%s: spec.template.spec.containers[%s]", at, c.Name), pod, &c)
	}

	if len(app.Ports) != 1 || app.Ports[0].ContainerPort != appPort {
		p.add(appAt, "ports: want one containerPort %d, got %v", appPort, app.Ports)
	}
	for _, pr := range []struct {
		field    string
		probe    *corev1.Probe
		path     string
		required bool
	}{
		// Readiness asks the database; liveness only the process, so that
		// a database outage takes pods out of the Service instead of
		// restarting every one of them.
		{"readinessProbe", app.ReadinessProbe, "/readyz", true},
		{"livenessProbe", app.LivenessProbe, "/healthz", true},
		{"startupProbe", app.StartupProbe, "/healthz", false},
	} {
		if pr.probe == nil {
			if pr.required {
				p.add(appAt, "no %s", pr.field)
			}
			continue
		}
		g := pr.probe.HTTPGet
		if g == nil {
			p.add(appAt, "%s: want an httpGet of %s", pr.field, pr.path)
			continue
		}
		if g.Path != pr.path {
			p.add(appAt, "%s.httpGet.path is %q, want %q", pr.field, g.Path, pr.path)
		}
		if port, ok := containerPort(app, g.Port); !ok || port != appPort {
			p.add(appAt, "%s.httpGet.port %q is not the container port %d", pr.field, g.Port.String(), appPort)
		}
	}

	for _, name := range []string{"DATABASE_URL", "LATCHKEY_ENCRYPTION_KEYS"} {
		if !fromSecret(app, name) {
			p.add(appAt, "env: %s must come from a Secret (valueFrom.secretKeyRef)", name)
		}
	}
	checkNoDevFlag(p, appAt, append(app.Command, app.Args...))
	cfg := checkConfig(p, appAt+": env", m.env(app))

	// The kubelet sends SIGTERM after the preStop hook, then waits what is
	// left of the grace period before SIGKILL.
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.TerminationGracePeriodSeconds != nil {
		grace = *pod.TerminationGracePeriodSeconds
	}
	var preStop int64
	if l := app.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		preStop = l.PreStop.Sleep.Seconds
	}
	if need := time.Duration(preStop)*time.Second + cfg.ShutdownTimeout; time.Duration(grace)*time.Second <= need {
		p.add(at, "spec.template.spec.terminationGracePeriodSeconds is %d; it must be longer than the preStop sleep plus LATCHKEY_SHUTDOWN_TIMEOUT (%v), or the kubelet kills the server mid-shutdown", grace, need)
	}

	m.checkMigrate(p, at, pod, app)
	if m.service != nil {
		m.checkService(p, podLabels, app)
	}
	if m.hpa != nil {
		m.checkHPA(p, d, pod)
	}
	if m.pdb != nil {
		m.checkPDB(p, d, podLabels)
	}
	m.checkSecretExample(p)
}

// checkContainer checks what every container of the pod needs: a pinned
// image, resources, a locked-down security context, and references to
// ConfigMaps and Secrets that exist.
func (m *manifests) checkContainer(p *problems, at string, pod *corev1.PodSpec, c *corev1.Container) {
	if err := checkImage(c.Image); err != nil {
		p.add(at, "%v", err)
	}
	for _, r := range []struct {
		field string
		list  corev1.ResourceList
		name  corev1.ResourceName
	}{
		{"resources.requests.cpu", c.Resources.Requests, corev1.ResourceCPU},
		{"resources.requests.memory", c.Resources.Requests, corev1.ResourceMemory},
		{"resources.limits.cpu", c.Resources.Limits, corev1.ResourceCPU},
		{"resources.limits.memory", c.Resources.Limits, corev1.ResourceMemory},
	} {
		if q, ok := r.list[r.name]; !ok || q.IsZero() {
			p.add(at, "%s is not set", r.field)
		}
	}

	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	// A container's setting wins over the pod's.
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = psc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		p.add(at, "securityContext.runAsNonRoot (or the pod's) must be true")
	}
	uid := sc.RunAsUser
	if uid == nil {
		uid = psc.RunAsUser
	}
	if uid != nil && *uid == 0 {
		p.add(at, "securityContext.runAsUser is 0 (root)")
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p.add(at, "securityContext.seccompProfile (or the pod's) must be RuntimeDefault")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p.add(at, "securityContext.allowPrivilegeEscalation must be false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		p.add(at, "securityContext.readOnlyRootFilesystem must be true")
	}
	if sc.Privileged != nil && *sc.Privileged {
		p.add(at, "securityContext.privileged must not be true")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		p.add(at, "securityContext.capabilities.drop must include ALL")
	} else if len(sc.Capabilities.Add) > 0 {
		p.add(at, "securityContext.capabilities.add %v: the server needs none", sc.Capabilities.Add)
	}

	for _, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil && (r.Optional == nil || !*r.Optional) {
			if !m.secretHas(r.Name, r.Key) {
				p.add(at, "env %s: Secret %q has no key %q in %s", e.Name, r.Name, r.Key, k8sDir)
			}
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil && (r.Optional == nil || !*r.Optional) {
			if cm, ok := m.configMaps[r.Name]; !ok {
				p.add(at, "env %s: no ConfigMap %q in %s", e.Name, r.Name, k8sDir)
			} else if _, ok := cm.Data[r.Key]; !ok {
				p.add(at, "env %s: ConfigMap %q has no key %q", e.Name, r.Name, r.Key)
			}
		}
	}
	for _, e := range c.EnvFrom {
		if r := e.ConfigMapRef; r != nil && m.configMaps[r.Name] == nil {
			p.add(at, "envFrom: no ConfigMap %q in %s", r.Name, k8sDir)
		}
		if r := e.SecretRef; r != nil && m.secrets[r.Name] == nil {
			p.add(at, "envFrom: no Secret %q in %s", r.Name, k8sDir)
		}
	}
}

// secretHas reports whether the Secret name (the example standing in for
// the real one) has key.
func (m *manifests) secretHas(name, key string) bool {
	s, ok := m.secrets[name]
	if !ok {
		return false
	}
	_, inData := s.Data[key]
	_, inString := s.StringData[key]
	return inData || inString
}

// env is the environment c would start with, the Secret's values taken
// from the example.
func (m *manifests) env(c *corev1.Container) map[string]string {
	env := make(map[string]string)
	for _, e := range c.EnvFrom {
		if r := e.ConfigMapRef; r != nil && m.configMaps[r.Name] != nil {
			for k, v := range m.configMaps[r.Name].Data {
				env[e.Prefix+k] = v
			}
		}
		if r := e.SecretRef; r != nil && m.secrets[r.Name] != nil {
			for k, v := range secretData(m.secrets[r.Name]) {
				env[e.Prefix+k] = v
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			if s := m.secrets[r.Name]; s != nil {
				env[e.Name] = secretData(s)[r.Key]
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			if cm := m.configMaps[r.Name]; cm != nil {
				env[e.Name] = cm.Data[r.Key]
			}
		}
	}
	return env
}

// secretData is a Secret's values, stringData over data as the API server
// merges them.
func secretData(s *corev1.Secret) map[string]string {
	out := make(map[string]string)
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

// fromSecret reports whether c takes the variable name from a Secret key.
func fromSecret(c *corev1.Container, name string) bool {
	for _, e := range c.Env {
		if e.Name == name {
			return e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
		}
	}
	return false
}

// containerPort resolves a probe's or Service's port, a number or a name,
// to one of c's container ports.
func containerPort(c *corev1.Container, port intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if port.Type == intstr.String && cp.Name == port.StrVal ||
			port.Type == intstr.Int && cp.ContainerPort == port.IntVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// checkSelector reports a selector that is empty or does not select the
// pod template's labels.
func checkSelector(p *problems, at, field string, ls *metav1.LabelSelector, pod labels.Set) {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	switch {
	case err != nil:
		p.add(at, "%s: %v", field, err)
	case ls == nil || sel.Empty():
		p.add(at, "%s is empty, which selects every pod (or none)", field)
	case !sel.Matches(pod):
		p.add(at, "%s %s does not select the Deployment's pods %v", field, sel, pod)
	}
}

// checkMigrate checks the step that applies migrations: an init container
// (deployment.yaml says why not a Job) running `latchkey migrate` from the
// server's own image, so the schema always matches the code about to run.
func (m *manifests) checkMigrate(p *problems, at string, pod *corev1.PodSpec, app *corev1.Container) {
	var found bool
	for _, c := range pod.InitContainers {
		if len(c.Command) > 0 || len(c.Args) == 0 || c.Args[0] != "migrate" {
			continue
		}
		found = true
		cat := fmt.Sprintf("%s: spec.template.spec.initContainers[%s]", at, c.Name)
		if c.Image != app.Image {
			p.add(cat, "image %q: migrations must run from the same image as the server (%q)", c.Image, app.Image)
		}
		if !fromSecret(&c, "DATABASE_URL") {
			p.add(cat, "env: DATABASE_URL must come from a Secret (valueFrom.secretKeyRef)")
		}
		checkConfig(p, cat+": env", m.env(&c))
	}
	if !found {
		p.add(at, "no init container runs migrate (args: [\"migrate\"], with the image's entrypoint)")
	}
}

func (m *manifests) checkService(p *problems, pod labels.Set, app *corev1.Container) {
	s := m.service
	at := m.where[s]
	checkSelector(p, at, "spec.selector", &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, pod)
	if len(s.Spec.Ports) == 0 {
		p.add(at, "spec.ports is empty")
	}
	for _, sp := range s.Spec.Ports {
		target := sp.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(sp.Port) // the API's default
		}
		if _, ok := containerPort(app, target); !ok {
			p.add(at, "spec.ports[%s].targetPort %q is not a port of container %q", sp.Name, target.String(), app.Name)
		}
	}
}

func (m *manifests) checkHPA(p *problems, d *appsv1.Deployment, pod *corev1.PodSpec) {
	h := m.hpa
	at := m.where[h]
	if ref := h.Spec.ScaleTargetRef; ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
		p.add(at, "spec.scaleTargetRef is %s %s %q, want apps/v1 Deployment %q", ref.APIVersion, ref.Kind, ref.Name, d.Name)
	}
	minReplicas := int32(1) // the API's default
	if h.Spec.MinReplicas != nil {
		minReplicas = *h.Spec.MinReplicas
	}
	if minReplicas < 2 {
		p.add(at, "spec.minReplicas is %d; want 2 or more, as the Deployment", minReplicas)
	}
	if h.Spec.MaxReplicas < minReplicas {
		p.add(at, "spec.maxReplicas %d is below spec.minReplicas %d", h.Spec.MaxReplicas, minReplicas)
	}
	cpu := slices.ContainsFunc(h.Spec.Metrics, func(ms autoscalingv2.MetricSpec) bool {
		return ms.Type == autoscalingv2.ResourceMetricSourceType && ms.Resource != nil &&
			ms.Resource.Name == corev1.ResourceCPU &&
			ms.Resource.Target.Type == autoscalingv2.UtilizationMetricType &&
			ms.Resource.Target.AverageUtilization != nil
	})
	if !cpu {
		p.add(at, "spec.metrics: want a Resource metric on cpu with an averageUtilization target")
	}
	// Utilization is a percentage of the request: without one the HPA
	// cannot compute it and does nothing.
	for _, c := range pod.Containers {
		if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
			p.add(m.where[d], "spec.template.spec.containers[%s].resources.requests.cpu is needed by the HPA's CPU target", c.Name)
		}
	}
}

func (m *manifests) checkPDB(p *problems, d *appsv1.Deployment, pod labels.Set) {
	b := m.pdb
	at := m.where[b]
	checkSelector(p, at, "spec.selector", b.Spec.Selector, pod)
	// At the fewest replicas the HPA keeps, a node drain must still be
	// allowed to evict one pod, or it blocks forever.
	n := 1
	if d.Spec.Replicas != nil {
		n = int(*d.Spec.Replicas)
	}
	if m.hpa != nil && m.hpa.Spec.MinReplicas != nil {
		n = int(*m.hpa.Spec.MinReplicas)
	}
	allowed := n
	switch {
	case b.Spec.MaxUnavailable != nil && b.Spec.MinAvailable != nil:
		p.add(at, "spec sets both minAvailable and maxUnavailable; the API allows one")
	case b.Spec.MaxUnavailable != nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(b.Spec.MaxUnavailable, n, true)
		if err != nil {
			p.add(at, "spec.maxUnavailable: %v", err)
		}
		allowed = v
	case b.Spec.MinAvailable != nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(b.Spec.MinAvailable, n, true)
		if err != nil {
			p.add(at, "spec.minAvailable: %v", err)
		}
		allowed = n - v
	}
	if allowed < 1 {
		p.add(at, "with %d replicas the budget allows no disruption, so node drains would block", n)
	}
}

// checkSecretExample keeps the example an example: every value must say
// CHANGE-ME, so a real key or password pasted in fails here instead of
// landing in git.
func (m *manifests) checkSecretExample(p *problems) {
	for _, s := range m.secrets {
		at := m.where[s]
		if !strings.Contains(at, secretExample) {
			p.add(at, "a Secret outside %s: create Secrets with kubectl (see README.md), never from a file in git", secretExample)
			continue
		}
		for k, v := range secretData(s) {
			if !strings.Contains(v, "CHANGE-ME") {
				p.add(at, "stringData.%s does not look like a placeholder (no CHANGE-ME); never keep a real value here", k)
			}
		}
	}
}
