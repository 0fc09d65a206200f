// Package openai reads an OpenAI organization through its read-only Admin
// API: a client that only ever sends GET, the classification of the
// vendor's errors, and the streams the connector polls (usage reports and
// directory lists). Vendor shapes and quirks: ../shared/vendor-apis.md §1.
package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/connectors/vendorhttp"
	"github.com/ogma-dev/ogma/pipeline/seal"
)

// Vendor is this vendor's name in envelopes, cursors and control records.
const Vendor = "openai"

// DefaultBaseURL is the vendor's API origin; paths start with /v1.
const DefaultBaseURL = "https://api.openai.com"

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

// ErrRedirect and ErrTooLarge are the answers no page comes in:
// [vendorhttp.ErrRedirect], [vendorhttp.ErrTooLarge].
var (
	ErrRedirect = vendorhttp.ErrRedirect
	ErrTooLarge = vendorhttp.ErrTooLarge
)

// NewClient returns a client for cfg. The base URL must be https, but on
// loopback (a simulator).
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	hc, err := vendorhttp.New(vendorhttp.Config{Vendor: Vendor, BaseURL: cfg.BaseURL, Timeout: cfg.Timeout, HTTP: cfg.HTTP,
		Authorize: func(r *http.Request, key seal.Secret) { r.Header.Set("Authorization", "Bearer "+key.Reveal()) },
		Refuse: func(path string, status int, retryAfter time.Duration, body []byte) error {
			e := parseError(path, status, body)
			e.RetryAfter = retryAfter
			return e
		}})
	if err != nil {
		return nil, err
	}
	if cfg.MaxProbes == 0 {
		cfg.MaxProbes = 4
	}
	return &Client{http: hc, base: hc.Base(), probes: make(chan struct{}, cfg.MaxProbes)}, nil
}

// ErrInvalidKey is matched by an [*APIError] whose code is invalid_api_key:
// the key is malformed, revoked or unknown.
var ErrInvalidKey = errors.New("openai: invalid api key")

// APIError is an error answer of the vendor.
type APIError struct {
	Method, Path string
	Status       int
	Type, Code   string
	Param        string
	// Message is the vendor's message. Error leaves it out of 401 and 403
	// answers, which may quote part of the key.
	Message string
	// MissingScopes lists the scopes a "Missing scopes" answer names.
	MissingScopes []string
	// RetryAfter is a 429's Retry-After.
	RetryAfter time.Duration
}

// Backoff returns how long to leave the tenant alone after a 429: the
// vendor's Retry-After, or a minute when it gave none.
func (e *APIError) Backoff() time.Duration {
	if e.Status != http.StatusTooManyRequests {
		return 0
	}
	if e.RetryAfter > 0 {
		return e.RetryAfter
	}
	return time.Minute
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("openai %s %s: %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	switch {
	case len(e.MissingScopes) > 0:
		s += ": missing scopes " + strings.Join(e.MissingScopes, ", ")
	case e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden && e.Message != "":
		s += ": " + e.Message
	}
	return s
}

// Is makes errors.Is(err, ErrInvalidKey) true for invalid-key answers.
// The connector asks poll.ErrKeyInvalid, vendor-neutral.
func (e *APIError) Is(target error) bool {
	return (target == ErrInvalidKey || target == poll.ErrKeyInvalid) && e.Code == "invalid_api_key"
}

// Scopes returns the scopes a "Missing scopes" answer names: the connector
// skips a stream the key may not read.
func (e *APIError) Scopes() []string { return e.MissingScopes }

// HTTPStatus returns the answer's status, for [vendorhttp.Status].
func (e *APIError) HTTPStatus() int { return e.Status }

// RetryAfterDuration returns the answer's Retry-After.
func (e *APIError) RetryAfterDuration() time.Duration { return e.RetryAfter }

// get sends GET path?q with key; see [vendorhttp.Client.Get].
func (c *Client) get(ctx context.Context, key seal.Secret, path string, q url.Values) ([]byte, error) {
	return c.http.Get(ctx, key, path, q)
}

func parseError(path string, status int, body []byte) *APIError {
	e := &APIError{Method: http.MethodGet, Path: path, Status: status}
	var env struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil {
		e.Message, e.Type = env.Error.Message, env.Error.Type
		if env.Error.Param != nil {
			e.Param = *env.Error.Param
		}
		if env.Error.Code != nil {
			e.Code = *env.Error.Code
		}
	}
	// A scope refusal is a 401 or 403; a 400 or a 5xx whose message happens
	// to say "Missing scopes:" is an error like any other, never a stream
	// to skip.
	if _, rest, ok := strings.Cut(e.Message, "Missing scopes:"); ok && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
		rest, _, _ = strings.Cut(rest, ". ")
		for s := range strings.SplitSeq(strings.TrimSuffix(strings.TrimSpace(rest), "."), ",") {
			if s = strings.TrimSpace(s); s != "" {
				e.MissingScopes = append(e.MissingScopes, s)
			}
		}
	}
	return e
}
