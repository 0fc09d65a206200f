package ogma

import (
	"os/exec"
	"strings"
	"testing"
)

// Roles import only the model floor (DESIGN.md "Dependencies point down"):
// no package of pipeline's model imports a role, and no role imports
// another — save cmd/ogma, which wires them all, and the API's query side,
// which reads the sinks' stores; any other import breaks the build.
func TestRolesImportOnlyTheModelFloor(t *testing.T) {
	const mod = "github.com/ogma-dev/ogma/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// role names the role a package belongs to, "" for the model floor.
	role := func(pkg string) string {
		p := strings.TrimPrefix(pkg, mod)
		parts := strings.Split(p, "/")
		switch {
		case parts[0] == "cmd" || parts[0] == "api":
			return parts[0]
		case parts[0] == "connectors":
			return "connectors" // a vendor's connector plugs into the shared scheduler
		case parts[0] == "sinks" && len(parts) > 1:
			return "sinks/" + parts[1]
		case p == "pipeline/process" || strings.HasPrefix(p, "pipeline/process/"):
			return "pipeline/process"
		}
		return ""
	}
	allowed := map[[2]string]string{
		{"api", "sinks/clickhouse"}: "the query side reads the ClickHouse store",
		{"api", "sinks/rekor"}:      "server-side verification runs the verifier",
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from := role(fields[0])
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			to := role(imp)
			switch {
			case to == "" || to == from || from == "cmd":
			case allowed[[2]string{from, to}] != "":
			case from == "":
				t.Errorf("%s (the model floor) imports %s (role %s)", fields[0], imp, to)
			default:
				t.Errorf("%s (role %s) imports %s (role %s)", fields[0], from, imp, to)
			}
		}
	}
}
