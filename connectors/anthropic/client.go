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
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/connectors/vendorhttp"
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
	http   *vendorhttp.Client
	base   string
	probes chan struct{} // a token per probe running
}

// NewClient returns a client for cfg. The base URL must be https, but on
// loopback (a simulator).
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	hc, err := vendorhttp.New(vendorhttp.Config{Vendor: "anthropic", BaseURL: cfg.BaseURL, Timeout: cfg.Timeout, HTTP: cfg.HTTP,
		Authorize: func(r *http.Request, key seal.Secret) {
			r.Header.Set("x-api-key", key.Reveal())
			r.Header.Set("anthropic-version", Version)
			r.Header.Set("User-Agent", "Ogma (https://github.com/ogma-dev/ogma)")
		},
		Refuse: parseError})
	if err != nil {
		return nil, err
	}
	if cfg.MaxProbes == 0 {
		cfg.MaxProbes = 4
	}
	return &Client{http: hc, base: hc.Base(), probes: make(chan struct{}, cfg.MaxProbes)}, nil
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

// HTTPStatus returns the answer's status, for [vendorhttp.Status].
func (e *APIError) HTTPStatus() int { return e.Status }

// RetryAfterDuration returns the answer's retry-after.
func (e *APIError) RetryAfterDuration() time.Duration { return e.RetryAfter }

// get sends GET path?q with key; see [vendorhttp.Client.Get].
func (c *Client) get(ctx context.Context, key seal.Secret, path string, q url.Values) ([]byte, error) {
	return c.http.Get(ctx, key, path, q)
}

// parseError reads the vendor's error envelope.
func parseError(path string, status int, retryAfter time.Duration, body []byte) error {
	e := &APIError{Path: path, Status: status, RetryAfter: retryAfter}
	var env struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(body, &env) == nil {
		e.Type, e.Message, e.RequestID = env.Error.Type, env.Error.Message, env.RequestID
	}
	return e
}
