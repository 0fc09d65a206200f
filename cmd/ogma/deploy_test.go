package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// deployDir is deploy/, from this package.
var deployDir = filepath.Join("..", "..", "deploy")

// checkOgmaCommand checks that args name an ogma command and parse as its
// flags, and that every OGMA_ variable of env is the variable of one of
// its flags, with a value that flag takes (issue 15: a deployment never
// sets what the binary ignores or refuses).
func checkOgmaCommand(t *testing.T, where string, args []string, env map[string]string) {
	t.Helper()
	root := newRootCmd(envOf(nil), runners{})
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root || cmd.RunE == nil {
		t.Errorf("%s: `ogma %s` is no command: %v", where, strings.Join(args, " "), err)
		return
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: `ogma %s`: %v", where, strings.Join(args, " "), err)
		return
	}
	if extra := cmd.Flags().Args(); len(extra) > 0 {
		t.Errorf("%s: `ogma %s` takes no arguments %q", where, cmd.CommandPath(), extra)
	}
	vars := map[string]bool{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) { vars[envName(f.Name)] = true })
	for name := range env {
		if strings.HasPrefix(name, "OGMA_") && !vars[name] {
			t.Errorf("%s: sets %s, which no flag of `%s` reads", where, name, cmd.CommandPath())
		}
	}
	if err := applySettings(cmd, envOf(env)); err != nil {
		t.Errorf("%s: `%s` refuses its environment: %v", where, cmd.CommandPath(), err)
	}
}

// The roles of the compose file, as a compose-spec loader reads it: every
// Ogma service's command, health check and environment is something the
// binary takes; the cluster is three KRaft brokers, ClickHouse and a Rekor
// stack; the processors' identities are distinct and stable; what must
// persist has a volume.
func TestComposeFileRunsEveryRoleWithFlagsOgmaHas(t *testing.T) {
	dir := filepath.Join(deployDir, "compose")
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
		cli.WithWorkingDirectory(dir), cli.WithProfiles([]string{"rekor-local"}), cli.WithName("ogma"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	env := func(s types.ServiceConfig) map[string]string {
		m := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				m[k] = *v
			}
		}
		return m
	}
	roles := map[string]string{}
	for name, s := range p.Services {
		if s.Image != "ogma:latest" {
			continue
		}
		checkOgmaCommand(t, name, s.Command, env(s))
		if name == "keys" {
			continue // a one-shot job
		}
		roles[name] = strings.Join(s.Command, " ")
		if s.HealthCheck == nil || len(s.HealthCheck.Test) < 3 || s.HealthCheck.Test[0] != "CMD" || s.HealthCheck.Test[1] != "/ogma" {
			t.Errorf("%s: health check %v, want the binary's own (the image has no shell)", name, s.HealthCheck)
		} else {
			checkOgmaCommand(t, name+"'s health check", s.HealthCheck.Test[2:], nil)
		}
		if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Source == "master-key" && v.ReadOnly }) {
			t.Errorf("%s: no read-only master key volume", name)
		}
	}
	want := map[string]string{"connect": "connect", "process-0": "process", "process-1": "process",
		"sink-clickhouse": "sink clickhouse", "sink-rekor": "sink rekor", "api": "api"}
	if !maps.Equal(roles, want) {
		t.Errorf("Ogma services = %v, want %v", roles, want)
	}
	ids := map[string]bool{}
	for _, name := range []string{"process-0", "process-1"} {
		e := env(p.Services[name])
		if e["OGMA_PROCESS_ID"] == "" || e["OGMA_PROCESS_ID"] != e["OGMA_PROCESS_INSTANCE_ID"] || ids[e["OGMA_PROCESS_ID"]] {
			t.Errorf("%s: process id %q, instance id %q: want one stable id per processor, none shared", name,
				e["OGMA_PROCESS_ID"], e["OGMA_PROCESS_INSTANCE_ID"])
		}
		ids[e["OGMA_PROCESS_ID"]] = true
		if !slices.ContainsFunc(p.Services[name].Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Type == types.VolumeTypeVolume && v.Target == e["OGMA_PROCESS_STATE_DIR"]
		}) {
			t.Errorf("%s: its state dir %s is on no volume", name, e["OGMA_PROCESS_STATE_DIR"])
		}
	}
	var brokers []string
	for name, s := range p.Services {
		if strings.HasPrefix(s.Image, "apache/kafka:") {
			if e := env(s); e["KAFKA_PROCESS_ROLES"] == "broker,controller" && e["KAFKA_MIN_INSYNC_REPLICAS"] == "2" {
				brokers = append(brokers, name)
			}
		}
	}
	if len(brokers) != 3 {
		t.Errorf("KRaft brokers = %v, want 3 with min.insync.replicas 2", brokers)
	}
	for _, name := range []string{"clickhouse", "trillian-db", "trillian-log-server", "trillian-log-signer", "rekor-server"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no %s service", name)
		}
	}
}

// The Kubernetes manifests decode strictly into their typed objects; each
// workload runs an ogma command with flags it has, reads secrets from
// files, is ready by /healthz and scraped for /metrics; processors are a
// StatefulSet whose pod names are their stable ids; every workload has a
// disruption budget.
func TestKubernetesManifestsDecodeStrictlyAndRunOgmaCommands(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(deployDir, "k8s", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/k8s")
	}
	kinds := map[string]int{}
	budgets := map[string]bool{}
	var workloads []string
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitYAML(b) {
			where := fmt.Sprintf("%s#%d", filepath.Base(file), i+1)
			j, err := yaml.YAMLToJSONStrict(doc)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			var head struct{ APIVersion, Kind string }
			json.Unmarshal(j, &head)
			var obj any
			switch head.APIVersion + " " + head.Kind {
			case "v1 Namespace":
				obj = &corev1.Namespace{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			case "apps/v1 StatefulSet":
				obj = &appsv1.StatefulSet{}
			case "policy/v1 PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			default:
				t.Errorf("%s: unexpected %s %s", where, head.APIVersion, head.Kind)
				continue
			}
			dec := json.NewDecoder(bytes.NewReader(j))
			dec.DisallowUnknownFields()
			if err := dec.Decode(obj); err != nil {
				t.Errorf("%s: %s does not decode strictly: %v", where, head.Kind, err)
				continue
			}
			kinds[head.Kind]++
			switch o := obj.(type) {
			case *appsv1.Deployment:
				workloads = append(workloads, o.Name)
				checkPod(t, o.Name, o.Spec.Template)
			case *appsv1.StatefulSet:
				workloads = append(workloads, o.Name)
				checkPod(t, o.Name, o.Spec.Template)
				checkProcessIdentity(t, o)
			case *policyv1.PodDisruptionBudget:
				budgets[o.Spec.Selector.MatchLabels["app.kubernetes.io/component"]] = true
			}
		}
	}
	slices.Sort(workloads)
	if want := []string{"ogma-api", "ogma-connect", "ogma-process", "ogma-sink-clickhouse", "ogma-sink-rekor"}; !slices.Equal(workloads, want) {
		t.Errorf("workloads = %v, want %v", workloads, want)
	}
	for _, w := range workloads {
		if !budgets[strings.TrimPrefix(w, "ogma-")] {
			t.Errorf("%s has no PodDisruptionBudget", w)
		}
	}
	if kinds["StatefulSet"] != 1 {
		t.Errorf("kinds = %v, want the processors as the one StatefulSet", kinds)
	}
}

// checkPod checks one workload's pod template.
func checkPod(t *testing.T, name string, pod corev1.PodTemplateSpec) {
	t.Helper()
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			t.Errorf("%s: %s comes from a secret as an environment value; mount secrets as files", name, e.Name)
		case e.ValueFrom != nil:
			env[e.Name] = "from-" + e.ValueFrom.FieldRef.FieldPath
		default:
			env[e.Name] = e.Value
		}
	}
	checkOgmaCommand(t, name, c.Args, env)
	if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: may run as root", name)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("%s: readiness is not /healthz", name)
	}
	if pod.Annotations["prometheus.io/scrape"] != "true" || pod.Annotations["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: not scraped for /metrics: %v", name, pod.Annotations)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("%s: no resource requests", name)
	}
	mounted := func(path string) bool {
		return slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return strings.HasPrefix(path, m.MountPath+"/") })
	}
	for _, k := range []string{"OGMA_MASTER_KEY_FILE", "OGMA_CLICKHOUSE_PASSWORD_FILE"} {
		if v, ok := env[k]; ok && !mounted(v) {
			t.Errorf("%s: %s=%s is on no mounted volume", name, k, v)
		}
	}
}

// checkProcessIdentity checks that each processor pod's transactional id
// and group instance id are its own stable name.
func checkProcessIdentity(t *testing.T, s *appsv1.StatefulSet) {
	t.Helper()
	for _, e := range s.Spec.Template.Spec.Containers[0].Env {
		if (e.Name == "OGMA_PROCESS_ID" || e.Name == "OGMA_PROCESS_INSTANCE_ID") &&
			(e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name") {
			t.Errorf("%s: %s is not the pod's stable name", s.Name, e.Name)
		}
	}
	if len(s.Spec.VolumeClaimTemplates) == 0 {
		t.Errorf("%s: the processors' state has no volume of its own", s.Name)
	}
}

// splitYAML splits a multi-document YAML file.
func splitYAML(b []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	flush := func() {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(cur.String(), "")) != "" {
			docs = append(docs, slices.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	for sc.Scan() {
		if sc.Text() == "---" {
			flush()
			continue
		}
		cur.WriteString(sc.Text() + "\n")
	}
	flush()
	return docs
}

// The container image builds the binary as `make build` does: static
// (no cgo), with the same flags, from ./cmd/ogma, and runs it as a
// non-root user in an image without a shell.
func TestDockerfileBuildsAsMakeBuildDoes(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	flags := regexp.MustCompile(`(?m)^GO_BUILD_FLAGS\s*:=\s*(.+)$`).FindSubmatch(mk)
	makeBuild := regexp.MustCompile(`(?m)^\t@?(CGO_ENABLED=\S+) \$\(GO\) build \$\(GO_BUILD_FLAGS\) -o \S+ (\S+)$`).FindSubmatch(mk)
	if flags == nil || makeBuild == nil {
		t.Fatal("the Makefile's build target does not build with GO_BUILD_FLAGS")
	}
	want := strings.Join([]string{string(makeBuild[1]), "go build", strings.TrimSpace(string(flags[1])), string(makeBuild[2])}, " ")
	dockerBuild := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=\S+) go build (.+) -o \S+ (\S+)$`).FindSubmatch(df)
	if dockerBuild == nil {
		t.Fatal("deploy/Dockerfile has no RUN … go build … -o … line")
	}
	if got := strings.Join([]string{string(dockerBuild[1]), "go build", string(dockerBuild[2]), string(dockerBuild[3])}, " "); got != want {
		t.Errorf("deploy/Dockerfile builds with\n\t%s\nmake build with\n\t%s", got, want)
	}
	if string(makeBuild[1]) != "CGO_ENABLED=0" {
		t.Errorf("make build sets %s, want a static binary (CGO_ENABLED=0)", makeBuild[1])
	}
	stages := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllSubmatch(df, -1)
	last := string(stages[len(stages)-1][1])
	if !strings.Contains(last, "distroless/static") || !strings.HasSuffix(last, ":nonroot") {
		t.Errorf("the image is FROM %s, want distroless static as nonroot (no shell)", last)
	}
	if !regexp.MustCompile(`(?m)^USER nonroot`).Match(df) || !regexp.MustCompile(`(?m)^ENTRYPOINT \["/ogma"\]`).Match(df) {
		t.Error("the image does not run /ogma as nonroot")
	}
}
