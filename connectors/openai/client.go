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
	base    string
	timeout time.Duration
	http    *http.Client
	probes  chan struct{} // a token per probe running
}

// ErrRedirect is a redirect answer: a request that carries a key never
// follows one, since Go keeps the Authorization header for the same host
// on another port or scheme.
var ErrRedirect = errors.New("openai: the vendor answered with a redirect, which a request carrying a key never follows")

// maxResponse is the largest answer read; a larger one is ErrTooLarge,
// never a truncated page.
const maxResponse = 64 << 20

// ErrTooLarge is an answer larger than any page the vendor sends.
var ErrTooLarge = fmt.Errorf("openai: the answer is larger than %d MiB, more than any page", maxResponse>>20)

// NewClient returns a client for cfg. The base URL must be https, but on
// loopback (a simulator).
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("openai base url: %w", err)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback.Host(u.Hostname())) {
		return nil, fmt.Errorf("openai base url %s: keys are sent over https only (plain http only to loopback, such as a simulator)", cfg.BaseURL)
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

// attempts is how many times a request is sent when the vendor answers 5xx.
const attempts = 3

// get sends GET path?q with key and returns the body of a 2xx answer. A 5xx
// is tried again, after the vendor's Retry-After (at most 10 s) or a short
// backoff, up to [attempts] times. A 429 is returned at once with its
// Retry-After (see [APIError.Backoff]).
func (c *Client) get(ctx context.Context, key seal.Secret, path string, q url.Values) ([]byte, error) {
	for n := 1; ; n++ {
		body, retryAfter, err := c.once(ctx, key, path, q)
		var api *APIError
		if errors.As(err, &api) && api.Status == http.StatusTooManyRequests {
			// Rate limited: the caller backs this tenant off for the
			// vendor's Retry-After instead of waiting here, so other
			// tenants go on.
			api.RetryAfter = retryAfter
			return nil, err
		}
		if err == nil || n == attempts || !errors.As(err, &api) || api.Status < 500 {
			return body, err
		}
		wait := time.Duration(100<<n) * time.Millisecond
		if retryAfter > 0 {
			wait = min(retryAfter, 10*time.Second)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("openai GET %s: %w", path, ctx.Err())
		}
	}
}

func (c *Client) once(ctx context.Context, key seal.Secret, path string, q url.Values) ([]byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("openai GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+key.Reveal())
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error repeats the URL, which holds no key: keys go in headers.
		return nil, 0, fmt.Errorf("openai GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, 0, fmt.Errorf("openai GET %s: read body: %w", path, err)
	}
	if len(body) > maxResponse {
		return nil, 0, fmt.Errorf("openai GET %s: %w", path, ErrTooLarge)
	}
	if resp.StatusCode/100 != 2 {
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return nil, time.Duration(secs) * time.Second, parseError(path, resp.StatusCode, body)
	}
	return body, 0, nil
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
