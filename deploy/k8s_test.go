package deploy

import (
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// No Kubernetes cluster runs here, so the manifests are checked the way
// the API server would reject them (strict decoding into the API types:
// a misspelt or misplaced field is an error) and against the broker they
// run (flags it has, ports it listens on, probe paths it serves).

// k8sObjects are the decoded manifests of deploy/k8s, by kind.
type k8sObjects struct {
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	pdbs         []*policyv1.PodDisruptionBudget
	accounts     []*corev1.ServiceAccount
	bindings     []*rbacv1.ClusterRoleBinding
	roles        []*rbacv1.ClusterRole
	namespaces   []*corev1.Namespace
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func loadK8s(t *testing.T) k8sObjects {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s (%v)", err)
	}
	var objs k8sObjects
	// kinds maps each kind the manifests may hold to a constructor that
	// files the decoded object under objs.
	kinds := map[string]func() any{
		"apps/v1 StatefulSet":                             collect(&objs.statefulSets),
		"v1 Service":                                      collect(&objs.services),
		"policy/v1 PodDisruptionBudget":                   collect(&objs.pdbs),
		"v1 ServiceAccount":                               collect(&objs.accounts),
		"rbac.authorization.k8s.io/v1 ClusterRoleBinding": collect(&objs.bindings),
		"rbac.authorization.k8s.io/v1 ClusterRole":        collect(&objs.roles),
		"v1 Namespace":                                    collect(&objs.namespaces),
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSeparator.Split(string(raw), -1) {
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s document %d: %v", file, i+1, err)
			}
			if meta.Kind == "" && strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			newObj, known := kinds[meta.APIVersion+" "+meta.Kind]
			if !known {
				t.Fatalf("%s document %d: unexpected %q %q; add it to the test", file, i+1, meta.APIVersion, meta.Kind)
			}
			obj := newObj()
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", file, i+1, meta.Kind, err)
			}
		}
	}
	return objs
}

// collect returns a constructor of a new T that is also appended to list.
func collect[T any](list *[]*T) func() any {
	return func() any {
		o := new(T)
		*list = append(*list, o)
		return o
	}
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestK8sManifests(t *testing.T) {
	objs := loadK8s(t)
	if len(objs.statefulSets) != 1 {
		t.Fatalf("want one StatefulSet, got %d", len(objs.statefulSets))
	}
	sts := objs.statefulSets[0]
	ns := sts.Namespace
	podLabels := labels.Set(sts.Spec.Template.Labels)
	selects := func(what string, sel *metav1.LabelSelector) {
		t.Helper()
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil || s.Empty() || !s.Matches(podLabels) {
			t.Errorf("%s selector %v does not select the StatefulSet's pods %v (%v)", what, sel, podLabels, err)
		}
	}
	selects("StatefulSet", sts.Spec.Selector)
	replicas := int(*sts.Spec.Replicas)
	if replicas < 3 {
		t.Errorf("replicas %d: want at least 3 (a Raft quorum survives one loss)", replicas)
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q: want Parallel, or barge-0 waits for readiness that needs the others", sts.Spec.PodManagementPolicy)
	}

	// Services: the governing one is headless and publishes not-ready pods.
	var headless, client *corev1.Service
	for _, s := range objs.services {
		if s.Namespace != ns {
			t.Errorf("service %s in namespace %q, StatefulSet in %q", s.Name, s.Namespace, ns)
		}
		if s.Name == sts.Spec.ServiceName {
			headless = s
		} else {
			client = s
		}
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
			t.Errorf("service %s selector %v does not select the pods %v", s.Name, s.Spec.Selector, podLabels)
		}
	}
	switch {
	case headless == nil:
		t.Fatalf("no Service named %q (the StatefulSet's serviceName)", sts.Spec.ServiceName)
	case headless.Spec.ClusterIP != corev1.ClusterIPNone:
		t.Errorf("service %s: clusterIP %q, want None", headless.Name, headless.Spec.ClusterIP)
	case !headless.Spec.PublishNotReadyAddresses:
		t.Errorf("service %s: publishNotReadyAddresses must be true: brokers find each other before any is ready", headless.Name)
	}
	if client == nil || client.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Errorf("want a client Service with a cluster IP besides the headless one")
	}

	// The PDB.
	if len(objs.pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, got %d", len(objs.pdbs))
	}
	pdb := objs.pdbs[0]
	selects("PodDisruptionBudget", pdb.Spec.Selector)
	if mu := pdb.Spec.MaxUnavailable; mu == nil || *mu != intstr.FromInt32(1) {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", mu)
	} else if int(mu.IntVal) > replicas/2 {
		t.Errorf("maxUnavailable %d would let a drain break the quorum of %d", mu.IntVal, replicas)
	}

	// The service account the init container reads nodes with.
	pod := sts.Spec.Template.Spec
	sa := pod.ServiceAccountName
	if !slices.ContainsFunc(objs.accounts, func(a *corev1.ServiceAccount) bool { return a.Name == sa && a.Namespace == ns }) {
		t.Errorf("no ServiceAccount %s/%s", ns, sa)
	}
	bound := false
	for _, b := range objs.bindings {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == ns {
				bound = bound || slices.ContainsFunc(objs.roles, func(r *rbacv1.ClusterRole) bool {
					return r.Name == b.RoleRef.Name && slices.ContainsFunc(r.Rules, func(p rbacv1.PolicyRule) bool {
						return slices.Contains(p.Resources, "nodes") && slices.Contains(p.Verbs, "get")
					})
				})
			}
		}
	}
	if !bound {
		t.Errorf("ServiceAccount %s may not get nodes: the init container cannot read the zone label", sa)
	}
	if pod.Affinity == nil || pod.Affinity.PodAntiAffinity == nil ||
		len(pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Errorf("want required pod anti-affinity: two brokers on one node lose two replicas at once")
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("container %s has no cpu and memory requests", c.Name)
		}
	}

	checkBrokerContainer(t, sts, headless)
}

// checkBrokerContainer checks the barge container's command line against
// `barge serve --help`, its ports against its flags, and its probes
// against a running broker.
func checkBrokerContainer(t *testing.T, sts *appsv1.StatefulSet, headless *corev1.Service) {
	pod := sts.Spec.Template.Spec
	var c *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "barge" {
			c = &pod.Containers[i]
		}
	}
	if c == nil {
		t.Fatal("no container named barge")
	}
	if !slices.Equal(c.Command, []string{"barge", "serve"}) {
		t.Errorf("command %q, want [barge serve]", c.Command)
	}
	known := serveFlags(t)
	env := map[string]bool{}
	for _, e := range c.Env {
		env[e.Name] = true
	}
	envRef := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	flags := map[string]string{}
	for _, a := range c.Args {
		name, val, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !ok {
			t.Errorf("arg %q: want --flag=value", a)
			continue
		}
		if !known[name] {
			t.Errorf("arg %q: barge serve --help lists no --%s", a, name)
		}
		flags[name] = val
		for _, m := range envRef.FindAllStringSubmatch(val, -1) {
			if !env[m[1]] {
				t.Errorf("arg %q uses $(%s), which the container does not define", a, m[1])
			}
		}
	}

	// Ports: each listening flag's port is a named container port, and the
	// services' target ports name container ports.
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	for flag, portName := range map[string]string{"kafka": "kafka", "raft": "raft", "gossip": "gossip", "http": "http"} {
		v, ok := flags[flag]
		if !ok {
			t.Errorf("no --%s arg", flag)
			continue
		}
		if p, ok := ports[portName]; !ok || p.ContainerPort != portOf(t, v) {
			t.Errorf("--%s=%s: container port %q is %d", flag, v, portName, p.ContainerPort)
		}
	}
	if p := ports["gossip-udp"]; p.Protocol != corev1.ProtocolUDP || p.ContainerPort != ports["gossip"].ContainerPort {
		t.Errorf("gossip is TCP and UDP: want a UDP container port %d, got %+v", ports["gossip"].ContainerPort, p)
	}
	for _, s := range []*corev1.Service{headless} {
		for _, sp := range s.Spec.Ports {
			if _, ok := ports[sp.TargetPort.StrVal]; !ok {
				t.Errorf("service %s port %s targets %q, not a container port", s.Name, sp.Name, sp.TargetPort.String())
			}
		}
	}

	// Per-ordinal addresses through the headless service.
	domain := "." + sts.Spec.ServiceName + ".$(POD_NAMESPACE).svc.cluster.local:"
	if want := "$(POD_NAME)" + domain + strconv.Itoa(int(ports["kafka"].ContainerPort)); flags["advertise"] != want {
		t.Errorf("--advertise=%s, want %s", flags["advertise"], want)
	}
	var wantJoin []string
	for i := range int(*sts.Spec.Replicas) {
		wantJoin = append(wantJoin, sts.Name+"-"+strconv.Itoa(i)+domain+strconv.Itoa(int(ports["gossip"].ContainerPort)))
	}
	if got := flags["join"]; got != strings.Join(wantJoin, ",") {
		t.Errorf("--join=%s\nwant    %s", got, strings.Join(wantJoin, ","))
	}
	if flags["bootstrap-expect"] != strconv.Itoa(int(*sts.Spec.Replicas)) {
		t.Errorf("--bootstrap-expect=%s, want the replica count %d", flags["bootstrap-expect"], *sts.Spec.Replicas)
	}

	// The init container writes the --config file serve reads id and rack from.
	cfgDir := path.Dir(flags["config"])
	mounted := func(c corev1.Container) bool {
		return slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == cfgDir })
	}
	if flags["config"] == "" || !mounted(*c) {
		t.Errorf("--config=%s is not on a volume of the barge container", flags["config"])
	}
	if len(pod.InitContainers) != 1 || !mounted(pod.InitContainers[0]) {
		t.Fatalf("want one init container that mounts %s", cfgDir)
	}
	script := strings.Join(pod.InitContainers[0].Args, "\n")
	for _, key := range []string{"id", "rack"} {
		if !known[key] || !strings.Contains(script, key+": ") || !strings.Contains(script, flags["config"]) {
			t.Errorf("init container should write %q into %s:\n%s", key, flags["config"], script)
		}
	}

	// Shutdown fits the grace period.
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	shutdown, err := time.ParseDuration(flags["shutdown-timeout"])
	if err != nil || grace < shutdown+30*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v: want --shutdown-timeout (%s) plus 30s at least (%v)", grace, flags["shutdown-timeout"], err)
	}

	// Probes: on the HTTP port, at paths a running broker answers 200.
	probes := map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe}
	wantPath := map[string]string{"readiness": "/readyz", "liveness": "/healthz", "startup": "/healthz"}
	addr := startBroker(t)
	for kind, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", kind)
			continue
		}
		if p.HTTPGet.Path != wantPath[kind] || p.HTTPGet.Port.StrVal != "http" {
			t.Errorf("%s probe GET %s on %s, want %s on http", kind, p.HTTPGet.Path, p.HTTPGet.Port.String(), wantPath[kind])
		}
		if code, err := httpStatus(addr, p.HTTPGet.Path); err != nil || code != http.StatusOK {
			t.Errorf("%s probe: a ready broker answers GET %s with %d (%v), want 200", kind, p.HTTPGet.Path, code, err)
		}
	}
}
