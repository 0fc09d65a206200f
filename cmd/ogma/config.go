package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// A setting has one name in every form, derived mechanically from its flag:
// --kafka-brokers ↔ OGMA_KAFKA_BROKERS ↔ kafka.brokers (or kafka-brokers)
// in the YAML file. Precedence: flag > env > file > default.

// envName returns the environment variable of a flag.
func envName(flag string) string {
	return "OGMA_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flag))
}

// fileKey normalizes a YAML key path or flag name for matching.
func fileKey(s string) string { return strings.ReplaceAll(s, ".", "-") }

// noEnv lists flags that never take a value from the environment or the
// file: "config" names the file itself.
var noEnv = []string{"config", "help"}

// documentEnv appends each flag's environment variable to its usage, so that
// --help shows it.
func documentEnv(cmd *cobra.Command) {
	add := func(f *pflag.Flag) {
		if slices.Contains(noEnv, f.Name) || strings.Contains(f.Usage, "(env ") {
			return
		}
		f.Usage += " (env " + envName(f.Name) + ")"
	}
	cmd.Flags().VisitAll(add)
	cmd.PersistentFlags().VisitAll(add)
	for _, c := range cmd.Commands() {
		documentEnv(c)
	}
}

// applySettings fills every flag of cmd the user did not set from the
// environment, then from the YAML config file.
func applySettings(cmd *cobra.Command, lookupEnv func(string) (string, bool)) error {
	file := map[string]string{}
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path, _ = lookupEnv("OGMA_CONFIG")
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
		if err := flatten("", doc, file); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
	}
	known := map[string]bool{}
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		known[f.Name] = true
		if err != nil || f.Changed || slices.Contains(noEnv, f.Name) {
			return
		}
		if v, ok := lookupEnv(envName(f.Name)); ok {
			if serr := cmd.Flags().Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, serr)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if serr := cmd.Flags().Set(f.Name, v); serr != nil {
				err = fmt.Errorf("config file %s: %s: %w", path, f.Name, serr)
			}
		}
	})
	if err != nil {
		return err
	}
	for k := range file {
		if !known[k] && !knownAnywhere(cmd.Root(), k) {
			return fmt.Errorf("config file %s: unknown setting %q", path, k)
		}
	}
	return nil
}

// knownAnywhere reports whether any command has the flag, so one config file
// can serve every role.
func knownAnywhere(cmd *cobra.Command, name string) bool {
	if cmd.Flags().Lookup(name) != nil || cmd.PersistentFlags().Lookup(name) != nil {
		return true
	}
	for _, c := range cmd.Commands() {
		if knownAnywhere(c, name) {
			return true
		}
	}
	return false
}

// flatten turns nested YAML maps into flag-named keys: {kafka: {brokers: [a,
// b]}} becomes kafka-brokers = "a,b".
func flatten(prefix string, v any, out map[string]string) error {
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range t {
			key := fileKey(k)
			if prefix != "" {
				key = prefix + "-" + key
			}
			if err := flatten(key, sub, out); err != nil {
				return err
			}
		}
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = fmt.Sprint(e)
		}
		out[prefix] = strings.Join(parts, ",")
	case nil:
	default:
		out[prefix] = fmt.Sprint(t)
	}
	return nil
}
