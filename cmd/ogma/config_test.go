package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// parseConnect parses args as `ogma connect …` without running it and
// returns the resulting config.
func parseConnect(t *testing.T, env map[string]string, args ...string) (*connectConfig, error) {
	t.Helper()
	var got *connectConfig
	root := newRootCmd(envOf(env), runners{connect: func(_ context.Context, cfg *connectConfig) error {
		got = cfg
		return nil
	}})
	root.SetArgs(append([]string{"connect"}, args...))
	root.SetOut(new(strings.Builder))
	root.SetErr(new(strings.Builder))
	err := root.Execute()
	return got, err
}

// Issue 2: one name per setting in every form; precedence flag > env >
// file > default.
func TestSettingPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ogma.yaml")
	os.WriteFile(file, []byte("kafka:\n  brokers: [file:1, file:2]\nusage.interval: 5m\nbackfill-days: 30\nlog:\n  level: warn\n"), 0o600)
	cases := []struct {
		name        string
		env         map[string]string
		args        []string
		wantBrokers string
		wantUsage   string
		wantDays    int
		wantLevel   string
	}{
		{"defaults", nil, nil, "", "15m0s", 90, "info"},
		{"file", nil, []string{"--config", file}, "file:1,file:2", "5m0s", 30, "warn"},
		{"file named by env", map[string]string{"OGMA_CONFIG": file}, nil, "file:1,file:2", "5m0s", 30, "warn"},
		{"env beats file", map[string]string{"OGMA_KAFKA_BROKERS": "env:1", "OGMA_BACKFILL_DAYS": "7"},
			[]string{"--config", file}, "env:1", "5m0s", 7, "warn"},
		{"flag beats env", map[string]string{"OGMA_KAFKA_BROKERS": "env:1", "OGMA_USAGE_INTERVAL": "1m"},
			[]string{"--config", file, "--kafka-brokers", "flag:1", "--usage-interval", "2m"}, "flag:1", "2m0s", 30, "warn"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConnect(t, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(cfg.kafkaBrokers, ","); got != tc.wantBrokers {
				t.Errorf("kafka brokers = %q, want %q", got, tc.wantBrokers)
			}
			if got := cfg.usageEvery.String(); got != tc.wantUsage {
				t.Errorf("usage interval = %s, want %s", got, tc.wantUsage)
			}
			if cfg.poll.BackfillDays != tc.wantDays {
				t.Errorf("backfill days = %d, want %d", cfg.poll.BackfillDays, tc.wantDays)
			}
			if cfg.logLevel != tc.wantLevel {
				t.Errorf("log level = %s, want %s", cfg.logLevel, tc.wantLevel)
			}
		})
	}
}

func TestSettingErrorsNameTheSource(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("kafka:\n  brokerz: x\n"), 0o600)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown file key", nil, []string{"--config", bad}, `unknown setting "kafka-brokerz"`},
		{"bad env value", map[string]string{"OGMA_BACKFILL_DAYS": "many"}, nil, "OGMA_BACKFILL_DAYS"},
		{"missing file", nil, []string{"--config", filepath.Join(dir, "nope.yaml")}, "config file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConnect(t, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// --help names each setting's environment variable.
func TestHelpShowsEnvNames(t *testing.T) {
	root := newRootCmd(envOf(nil), runners{})
	var out strings.Builder
	root.SetOut(&out)
	root.SetArgs([]string{"dev", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OGMA_KAFKA_BROKERS", "OGMA_CLICKHOUSE_DB", "OGMA_MASTER_KEY_FILE", "OGMA_DATA_DIR", "OGMA_HTTP"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ogma dev --help does not mention %s", want)
		}
	}
}
