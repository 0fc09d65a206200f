package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const readme = "../../README.md"

var envSuffix = regexp.MustCompile(` \(env OGMA_[A-Z_]+\)$`)

// flagTable renders every setting of every command as the README's
// configuration table.
func flagTable() string {
	root := newRootCmd(envOf(nil), runners{})
	var b strings.Builder
	b.WriteString("| command | flag | environment | default | meaning |\n| --- | --- | --- | --- | --- |\n")
	row := func(cmd string, f *pflag.Flag) {
		def := f.DefValue
		if def == "" || def == "[]" {
			def = " "
		} else {
			def = "`" + def + "`"
		}
		env := "`" + envName(f.Name) + "`"
		if f.Name == "config" {
			env = "`OGMA_CONFIG`"
		}
		usage := strings.ReplaceAll(envSuffix.ReplaceAllString(f.Usage, ""), "|", "\\|")
		fmt.Fprintf(&b, "| %s | `--%s` | %s | %s | %s |\n", cmd, f.Name, env, def, usage)
	}
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) { row("all", f) })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			sub.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
				if f.Name != "help" {
					row("`"+sub.CommandPath()+"`", f)
				}
			})
			walk(sub)
		}
	}
	walk(root)
	return b.String()
}

// The README's configuration table is generated from the commands, so it
// lists every flag with its environment name (STYLE §13).
func TestReadmeListsEveryFlag(t *testing.T) {
	checkReadmeBlock(t, "flags", flagTable())
}

// checkReadmeBlock checks that the README's <!-- name:begin --> …
// <!-- name:end --> block holds want, or writes it there with
// OGMA_UPDATE_GOLDEN set.
func checkReadmeBlock(t *testing.T, name, want string) {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := "<!-- "+name+":begin -->\n", "<!-- "+name+":end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README has no %q … %q block", begin, end)
	}
	if got := s[i+len(begin) : j]; got != want {
		if os.Getenv("OGMA_UPDATE_GOLDEN") != "" {
			os.WriteFile(readme, []byte(s[:i+len(begin)]+want+s[j:]), 0o644)
			return
		}
		t.Errorf("README's %s block is stale; run make update-golden", name)
	}
}
