// Package anthropic reads an Anthropic (Claude) organization through its
// read-only Admin API: a client that only ever sends GET, the
// classification of the vendor's errors, the key probe, and the streams the
// connector polls (the messages usage and cost reports, Claude Code
// activity, and the directory lists). Vendor shapes and quirks:
// ../shared/vendor-apis.md §2 and vendor-api-notes.md C.
package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/internal/loopback"
	"github.com/ogma-dev/ogma/pipeline/seal"
)

// DefaultBaseURL is the vendor's API origin; admin paths start with
// /v1/organizations.
const DefaultBaseURL = "https://api.anthropic.com"

// Version is the anthropic-version header every request sends.
const Version = "2023-06-01"

// ClientConfig configures a [Client].
type ClientConfig struct {
	// BaseURL is the API origin. Default [DefaultBaseURL]; a simulator's
	// address in tests and `ogma dev`.
	BaseURL string
	// Timeout bounds each request. Default 60 s.
	Timeout time.Duration
	// HTTP is the client to send with. Default a new http.Client. It is
	// copied: the copy never follows a redirect.
	HTTP *http.Client
	// MaxProbes bounds the probes running at once. Default 4.
	MaxProbes int
}

// Client sends GET requests to the Admin API. It is safe for concurrent use.
type Client struct {
	base    string
	timeout time.Duration
	http    *http.Client
	probes  chan struct{}
}

// ErrRedirect is a redirect answer: a request carrying a key never follows
// one.
var ErrRedirect = errors.New("anthropic: the vendor answered with a redirect, which a request carrying a key never follows")

const maxResponse = 64 << 20

// ErrTooLarge is an answer larger than any page the vendor sends.
var ErrTooLarge = fmt.Errorf("anthropic: the answer is larger than %d MiB, more than any page", maxResponse>>20)

// NewClient returns a client for cfg. The base URL must be https, but on
// loopback (a simulator).
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("anthropic base url: %w", err)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback.Host(u.Hostname())) {
		return nil, fmt.Errorf("anthropic base url %s: keys are sent over https only (plain http only to loopback, such as a simulator)", cfg.BaseURL)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	hc := &http.Client{}
	if cfg.HTTP != nil {
		c := *cfg.HTTP
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return ErrRedirect }
	if cfg.MaxProbes == 0 {
		cfg.MaxProbes = 4
	}
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), timeout: cfg.Timeout, http: hc,
		probes: make(chan struct{}, cfg.MaxProbes)}, nil
}

// APIError is an error answer of the vendor:
// {"type":"error","error":{"type":…,"message":…},"request_id":…}.
type APIError struct {
	Path      string
	Status    int
	Type      string
	Message   string
	RequestID string
	// RetryAfter is a 429's retry-after.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("anthropic GET %s: %d", e.Path, e.Status)
	if e.Type != "" {
		s += " " + e.Type
	}
	if e.Message != "" && e.Status != http.StatusUnauthorized {
		s += ": " + e.Message
	}
	return s
}

// Is makes errors.Is(err, poll.ErrKeyInvalid) true for authentication_error:
// the key is malformed, revoked or expired.
func (e *APIError) Is(target error) bool {
	return target == poll.ErrKeyInvalid && e.Type == "authentication_error"
}

// Scopes names what a permission_error lacks: the connector skips a stream
// the key may not read (soft-skip is for permission_error only).
func (e *APIError) Scopes() []string {
	if e.Type == "permission_error" {
		return []string{"permission on " + e.Path}
	}
	return nil
}

// Backoff returns how long to leave the tenant alone after a 429: the
// vendor's retry-after, or a minute when it gave none.
func (e *APIError) Backoff() time.Duration {
	if e.Status != http.StatusTooManyRequests {
		return 0
	}
	if e.RetryAfter > 0 {
		return e.RetryAfter
	}
	return time.Minute
}

const attempts = 3

// get sends GET path?q with key and returns the body of a 2xx answer. A 5xx
// (and 529, overloaded) is tried again up to [attempts] times; a 429 is
// returned at once with its retry-after.
func (c *Client) get(ctx context.Context, key seal.Secret, path string, q url.Values) ([]byte, error) {
	for n := 1; ; n++ {
		body, err := c.once(ctx, key, path, q)
		var api *APIError
		if err == nil || n == attempts || !errors.As(err, &api) || api.Status < 500 {
			return body, err
		}
		wait := time.Duration(100<<n) * time.Millisecond
		if api.RetryAfter > 0 {
			wait = min(api.RetryAfter, 10*time.Second)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("anthropic GET %s: %w", path, ctx.Err())
		}
	}
}

func (c *Client) once(ctx context.Context, key seal.Secret, path string, q url.Values) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("anthropic GET %s: %w", path, err)
	}
	req.Header.Set("x-api-key", key.Reveal())
	req.Header.Set("anthropic-version", Version)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Ogma (https://github.com/ogma-dev/ogma)")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("anthropic GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("anthropic GET %s: read body: %w", path, err)
	}
	if len(body) > maxResponse {
		return nil, fmt.Errorf("anthropic GET %s: %w", path, ErrTooLarge)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Path: path, Status: resp.StatusCode, RequestID: resp.Header.Get("request-id")}
		var env struct {
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &env) == nil {
			e.Type, e.Message = env.Error.Type, env.Error.Message
		}
		secs, _ := strconv.Atoi(resp.Header.Get("retry-after"))
		e.RetryAfter = time.Duration(secs) * time.Second
		return nil, e
	}
	return body, nil
}
