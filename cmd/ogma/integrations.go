package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/internal/loopback"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

type integrationsConfig struct {
	*common
	apiURL    string
	tokenFile string
	keyFile   string
	keyStdin  bool
	stdin     io.Reader
	poll      time.Duration
}

func newIntegrationsCmd(c *common) *cobra.Command {
	cmd := &cobra.Command{Use: "integrations", Short: "Connect vendor keys through the API"}
	cfg := &integrationsConfig{common: c, poll: 500 * time.Millisecond}
	connect := &cobra.Command{Use: "connect", Short: "Connect a vendor's admin key"}
	for _, v := range stream.Vendors() {
		vc := &cobra.Command{
			Use:   v.Name,
			Short: "Validate, seal and backfill " + v.KeyName + ", showing the backfill until it is done",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				cfg.stdin = cmd.InOrStdin()
				return runIntegrationConnect(cmd.Context(), cfg, v)
			},
		}
		f := vc.Flags()
		f.StringVar(&cfg.apiURL, "api-url", "http://127.0.0.1:8080", "the Ogma API's REST address")
		f.StringVar(&cfg.tokenFile, "token-file", "", "file holding the API bearer token (default <data-dir>/token; or set OGMA_TOKEN)")
		f.StringVar(&cfg.keyFile, "key-file", "", "file holding "+v.KeyName+" ("+v.KeyExample+")")
		f.BoolVar(&cfg.keyStdin, "key-stdin", false, "read "+v.KeyName+" from standard input")
		connect.AddCommand(vc)
	}
	cmd.AddCommand(connect)
	return cmd
}

func (cfg *integrationsConfig) token() (string, error) {
	if t, ok := cfg.env("OGMA_TOKEN"); ok && strings.TrimSpace(t) != "" {
		return strings.TrimSpace(t), nil
	}
	path := cfg.tokenFile
	if path == "" {
		path = cfg.dataDir + "/token"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("API token: set OGMA_TOKEN or --token-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func runIntegrationConnect(ctx context.Context, cfg *integrationsConfig, v stream.Vendor) error {
	var key []byte
	var err error
	switch {
	case cfg.keyFile != "" && cfg.keyStdin:
		return errors.New("give the key by --key-file or --key-stdin, not both")
	case cfg.keyFile != "":
		key, err = os.ReadFile(cfg.keyFile)
	case cfg.keyStdin:
		key, err = io.ReadAll(io.LimitReader(cfg.stdin, 4096))
	default:
		return errors.New("no key: give --key-file FILE or --key-stdin (never the key itself as a flag)")
	}
	if err != nil {
		return fmt.Errorf("read key: %w", err)
	}
	token, err := cfg.token()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"admin_key": strings.TrimSpace(string(key))})
	var checklist map[string]struct {
		Value  bool   `json:"value"`
		Reason string `json:"reason"`
	}
	if err := cfg.call(ctx, http.MethodPut, "/v1/integrations/"+v.Name, token, body, &checklist); err != nil {
		return err
	}
	w := cfg.stdout
	fmt.Fprintln(w, "Connected. Capability checklist:")
	for _, name := range slices.Sorted(maps.Keys(checklist)) {
		f := checklist[name]
		fmt.Fprintf(w, "  %-19s %-5v %s\n", name, f.Value, f.Reason)
	}

	var bar *progressbar.ProgressBar
	for {
		var in struct {
			Status   string `json:"status"`
			Action   string `json:"action"`
			Backfill struct {
				Done  int `json:"done"`
				Total int `json:"total"`
			} `json:"backfill"`
		}
		if err := cfg.call(ctx, http.MethodGet, "/v1/integrations/"+v.Name, token, nil, &in); err != nil {
			return err
		}
		if bar == nil {
			bar = progressbar.NewOptions(in.Backfill.Total, progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription("backfill (days)"), progressbar.OptionShowCount())
		}
		bar.Set(in.Backfill.Done)
		if in.Status == "key_invalid" {
			return errors.New(in.Action)
		}
		if in.Backfill.Done >= in.Backfill.Total {
			bar.Finish()
			fmt.Fprintln(w, "\nBackfill done.")
			if in.Action != "" {
				fmt.Fprintln(w, in.Action)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.poll):
		}
	}
}

// apiClient sends the CLI's API requests. They carry a token, and an
// admin key when connecting one: a redirect is never followed.
var apiClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
	return errors.New("the API answered with a redirect, which a request carrying a token never follows; check --api-url")
}}

// call sends one API request and decodes the answer, turning an API error
// into its code and sentence.
func (cfg *integrationsConfig) call(ctx context.Context, method, path, token string, body []byte, out any) error {
	u, err := url.Parse(cfg.apiURL)
	if err != nil {
		return fmt.Errorf("--api-url: %w", err)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback.Host(u.Hostname())) {
		return fmt.Errorf("--api-url %s: a token is sent over https only (plain http only to loopback)", cfg.apiURL)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(cfg.apiURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		var e struct{ Code, Message string }
		json.Unmarshal(b, &e)
		return fmt.Errorf("%s: %s", e.Code, e.Message)
	}
	return json.Unmarshal(b, out)
}
