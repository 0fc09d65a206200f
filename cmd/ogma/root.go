package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/ogma-dev/ogma/pipeline/broker"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// common holds the settings every role shares.
type common struct {
	logLevel        string
	logFormat       string
	kafkaBrokers    []string
	kafkaPartitions int32
	kafkaSec        kafkaSecurity
	chSec           clickhouseSecurity
	masterKeyFile   string
	dataDir         string

	env    func(string) (string, bool)
	stdout io.Writer
	stderr io.Writer
}

// runners replace roles' run functions, for tests that only parse; a nil
// field runs the real role.
type runners struct {
	dev     func(context.Context, *devConfig) error
	connect func(context.Context, *connectConfig) error
	process func(context.Context, *processConfig) error
	sink    func(context.Context, *sinkConfig) error
	rekor   func(context.Context, *anchorConfig) error
	api     func(context.Context, *apiConfig) error
}

func newRootCmd(env func(string) (string, bool), r runners) *cobra.Command {
	c := &common{env: env}
	root := &cobra.Command{
		Use:           "ogma",
		Short:         "Ogma audits AI-vendor usage from the vendors' read-only Admin APIs",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			c.stdout, c.stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return applySettings(cmd, env)
		},
	}
	pf := root.PersistentFlags()
	pf.String("config", "", "YAML config file; keys are flag names, nested or dotted (kafka.brokers) (env OGMA_CONFIG)")
	pf.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&c.logFormat, "log-format", "json", "log format: json or text")
	pf.StringSliceVar(&c.kafkaBrokers, "kafka-brokers", nil, "Kafka seed brokers, host:port[,host:port]")
	pf.BoolVar(&c.kafkaSec.tls, "kafka-tls", false, "connect to Kafka over TLS (the system's roots, or --kafka-tls-ca)")
	pf.StringVar(&c.kafkaSec.tlsCA, "kafka-tls-ca", "", "PEM file of the CAs that sign the brokers' certificates (implies --kafka-tls)")
	pf.StringVar(&c.kafkaSec.sasl, "kafka-sasl", "", "SASL mechanism: scram-sha-256, scram-sha-512, or plain (over TLS only); the password comes from OGMA_KAFKA_SASL_PASSWORD or --kafka-sasl-password-file")
	pf.StringVar(&c.kafkaSec.user, "kafka-sasl-user", "", "SASL user")
	pf.StringVar(&c.kafkaSec.passwordFile, "kafka-sasl-password-file", "", "file holding the SASL password (or set OGMA_KAFKA_SASL_PASSWORD)")
	pf.Int32Var(&c.kafkaPartitions, "kafka-partitions", 0,
		"partition count N of the partitioned topics; 0 takes the one recorded in ogma.control ("+fmt.Sprint(topic.DefaultPartitions)+" for a new installation)")
	pf.StringVar(&c.masterKeyFile, "master-key-file", "", "file of the installation master key that seals admin keys and signs access records (Tink keyset)")
	pf.StringVar(&c.dataDir, "data-dir", ".ogma", "directory for the local state of ogma dev: embedded Kafka, master key, API token")

	root.AddCommand(
		newDevCmd(c, r.dev),
		newConnectCmd(c, r.connect),
		newProcessCmd(c, r.process),
		newSinkCmd(c, r.sink, r.rekor),
		newAPICmd(c, r.api),
		newSimCmd(c, nil),
		newTenantCmd(c, nil),
		newTokenCmd(c, nil),
		newKeysCmd(c),
		newExportCmd(c),
		newVerifyCmd(c),
		newIntegrationsCmd(c),
		newHealthcheckCmd(),
		newDashboardsCmd(c),
	)
	documentEnv(root)
	return root
}

// logger builds the process logger on stderr.
func (c *common) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(c.stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(c.stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", c.logFormat)
}

// dial returns the connection to the configured Kafka cluster; with km,
// each client it makes carries kprom's metrics.
func (c *common) dial(log *slog.Logger, km *kafkaMetrics) (topic.Dial, error) {
	if len(c.kafkaBrokers) == 0 {
		addrs, ok := broker.Running(filepath.Join(c.dataDir, "kafka"))
		if !ok {
			return nil, fmt.Errorf("no Kafka: set --kafka-brokers (OGMA_KAFKA_BROKERS), or start `ogma dev` (make run) on data dir %s, "+
				"whose embedded broker the other commands find there", c.dataDir)
		}
		log.Debug("using the embedded broker of ogma dev", "data_dir", c.dataDir, "brokers", addrs)
		c.kafkaBrokers = addrs
		if c.masterKeyFile == "" {
			c.masterKeyFile = filepath.Join(c.dataDir, "master.key") // and its master key
		}
	}
	base, err := c.kafkaOpts(log)
	if err != nil {
		return nil, err
	}
	seeds := topic.Seeds(c.kafkaBrokers, base...)
	if km == nil {
		return seeds, nil
	}
	return func(opts ...kgo.Opt) (*kgo.Client, error) {
		hooks, release := km.opt()
		cl, err := seeds(append(opts, hooks)...)
		if err != nil {
			release()
		}
		return cl, err
	}, nil
}

// kafkaSecurity is how every Kafka client of a role authenticates.
type kafkaSecurity struct {
	tls          bool
	tlsCA        string
	sasl         string
	user         string
	passwordFile string
}

// kafkaOpts is kafkaBase with the TLS and SASL settings.
func (c *common) kafkaOpts(log *slog.Logger) ([]kgo.Opt, error) {
	opts := c.kafkaBase(log)
	k := c.kafkaSec
	if k.tls || k.tlsCA != "" {
		cfg, err := tlsConfig(k.tlsCA, "--kafka-tls-ca")
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if k.sasl == "" {
		return opts, nil
	}
	pass, err := c.secret("OGMA_KAFKA_SASL_PASSWORD", k.passwordFile, "--kafka-sasl-password-file")
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(k.sasl) {
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: k.user, Pass: pass.Reveal()}.AsSha256Mechanism()))
	case "scram-sha-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: k.user, Pass: pass.Reveal()}.AsSha512Mechanism()))
	case "plain":
		if !k.tls && k.tlsCA == "" {
			return nil, errors.New("--kafka-sasl plain sends the password as it is: it needs --kafka-tls")
		}
		opts = append(opts, kgo.SASL(plain.Auth{User: k.user, Pass: pass.Reveal()}.AsMechanism()))
	default:
		return nil, fmt.Errorf("--kafka-sasl %q: want scram-sha-256, scram-sha-512 or plain", k.sasl)
	}
	return opts, nil
}

// secret reads a secret from the environment variable env or, when that
// is unset, the file named by the flag; never from a flag's value.
func (c *common) secret(env, file, flag string) (seal.Secret, error) {
	if v, ok := c.env(env); ok && v != "" {
		return seal.NewSecret(v), nil
	}
	if file == "" {
		return seal.Secret{}, fmt.Errorf("no secret: set %s or %s", env, flag)
	}
	return readSecretFile(file)
}

// kafkaBase is the client options every Kafka client of a role shares.
func (c *common) kafkaBase(log *slog.Logger) []kgo.Opt {
	// kgo's info lines come per connection and per transaction: below
	// debug, only its warnings and errors are worth a line.
	h := log.With("component", "kafka").Handler()
	if !h.Enabled(context.Background(), slog.LevelDebug) {
		h = atLeast{Handler: h, min: slog.LevelWarn}
	}
	return []kgo.Opt{kgo.WithLogger(kslog.New(slog.New(h)))}
}

// atLeast drops records below min.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(as []slog.Attr) slog.Handler {
	return atLeast{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h atLeast) WithGroup(name string) slog.Handler {
	return atLeast{Handler: h.Handler.WithGroup(name), min: h.min}
}

// kafka is every role's start: the logger, the connection to Kafka (its
// clients measured by km, if set), and the topics and partition count
// checked (or, for a new installation, created and recorded).
func (c *common) kafka(ctx context.Context, km *kafkaMetrics) (*slog.Logger, topic.Dial, topic.Layout, error) {
	log, err := c.logger()
	if err != nil {
		return nil, nil, topic.Layout{}, err
	}
	dial, err := c.dial(log, km)
	if err != nil {
		return nil, nil, topic.Layout{}, err
	}
	layout, err := topic.Ensure(ctx, dial, c.kafkaPartitions)
	return log, dial, layout, err
}

// controlWriter returns what a command that writes access records to
// ogma.control needs: Kafka, and the master key that signs them, with
// signing turned on ([control.Protect]).
func (c *common) controlWriter(ctx context.Context) (topic.Dial, topic.Layout, *seal.Keyring, error) {
	_, dial, layout, err := c.kafka(ctx, nil)
	if err != nil {
		return nil, topic.Layout{}, nil, err
	}
	kr, err := c.keyring()
	if err != nil {
		return nil, topic.Layout{}, nil, err
	}
	if err := control.Protect(ctx, dial, layout, kr); err != nil {
		return nil, topic.Layout{}, nil, err
	}
	return dial, layout, kr, nil
}

// controlState opens ogma.control for writing, as controlWriter, and
// reads its state.
func (c *common) controlState(ctx context.Context) (topic.Dial, topic.Layout, *seal.Keyring, *control.State, error) {
	dial, layout, kr, err := c.controlWriter(ctx)
	if err != nil {
		return nil, topic.Layout{}, nil, nil, err
	}
	st, err := control.Load(ctx, dial, layout, kr)
	return dial, layout, kr, st, err
}

// keyring loads the master key named by --master-key-file.
func (c *common) keyring() (*seal.Keyring, error) {
	if c.masterKeyFile == "" {
		return nil, errors.New("no master key: set OGMA_MASTER_KEY_FILE (or --master-key-file) to the installation master key file")
	}
	return seal.LoadKeyring(c.masterKeyFile)
}

// readSecretFile reads a secret (an admin key) from a file, trimmed.
func readSecretFile(path string) (seal.Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return seal.Secret{}, fmt.Errorf("read key file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return seal.Secret{}, fmt.Errorf("key file %s is empty", filepath.Base(path))
	}
	return seal.NewSecret(s), nil
}

// privateDir creates dir if needed and makes it and everything under it
// private to this user (directories 0700, files 0600): it holds the
// master key, the API token, Kafka's log and the processor's state, and
// kfake and Pebble create their files 0644.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		fi, err := d.Info()
		if err != nil || fi.Mode().Perm()&^want == 0 || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chmod(path, fi.Mode().Perm()&want)
	})
	if err != nil {
		return fmt.Errorf("data dir %s: make it private: %w", dir, err)
	}
	return nil
}

// tlsConfig is a client TLS config trusting the CAs of the PEM file ca
// (named by flag in errors), or the system's roots when ca is empty.
func tlsConfig(ca, flag string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s holds no PEM certificate", flag, ca)
	}
	return cfg, nil
}
