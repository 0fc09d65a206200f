// Package vendorhttp is the HTTP side every vendor client shares: GET
// only, https but to loopback (a simulator), never a redirect (a request
// carries a key), answers bounded in size, a deadline on each request, and
// 5xx answers tried again. Each vendor's client adds its credential headers
// and reads its own error envelope.
package vendorhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/internal/loopback"
	"github.com/ogma-dev/ogma/pipeline/seal"
)

// Config configures a [Client].
type Config struct {
	// Vendor names the vendor in errors ("openai").
	Vendor string
	// BaseURL is the API origin.
	BaseURL string
	// Timeout bounds each request. Default 60 s.
	Timeout time.Duration
	// HTTP is the client to send with. Default a new http.Client. It is
	// copied: the copy never follows a redirect.
	HTTP *http.Client
	// Authorize sets the request's credential headers from the key.
	Authorize func(r *http.Request, key seal.Secret)
	// Refuse turns a non-2xx answer into the vendor's error, which should
	// implement [Status] to be tried again on 5xx.
	Refuse func(path string, status int, retryAfter time.Duration, body []byte) error
}

// Status is a vendor error that says its HTTP status and Retry-After.
type Status interface {
	HTTPStatus() int
	RetryAfterDuration() time.Duration
}

// MaxResponse is the largest answer read; a larger one is [ErrTooLarge],
// never a truncated page.
const MaxResponse = 64 << 20

// ErrRedirect is a redirect answer: a request that carries a key never
// follows one, since Go keeps credential headers for the same host on
// another port or scheme.
var ErrRedirect = errors.New("the vendor answered with a redirect, which a request carrying a key never follows")

// ErrTooLarge is an answer larger than any page a vendor sends.
var ErrTooLarge = fmt.Errorf("the answer is larger than %d MiB, more than any page", MaxResponse>>20)

// Client sends GET requests to one vendor. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string
	http *http.Client
}

// New returns a client for cfg. The base URL must be https, but on
// loopback.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("%s base url: %w", cfg.Vendor, err)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback.Host(u.Hostname())) {
		return nil, fmt.Errorf("%s base url %s: keys are sent over https only (plain http only to loopback, such as a simulator)", cfg.Vendor, cfg.BaseURL)
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
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/"), http: hc}, nil
}

// Base returns the API origin, for messages.
func (c *Client) Base() string { return c.base }

// attempts is how many times a request is sent when the vendor answers 5xx.
const attempts = 3

// Get sends GET path?q with key and returns the body of a 2xx answer. A 5xx
// is tried again, after the vendor's Retry-After (at most 10 s) or a short
// backoff, up to three times. A 429 is returned at once: the caller backs
// the tenant off for its Retry-After instead of waiting here, so other
// tenants go on.
func (c *Client) Get(ctx context.Context, key seal.Secret, path string, q url.Values) ([]byte, error) {
	for n := 1; ; n++ {
		body, err := c.once(ctx, key, path, q)
		var st Status
		if err == nil || n == attempts || !errors.As(err, &st) || st.HTTPStatus() < 500 {
			return body, err
		}
		wait := time.Duration(100<<n) * time.Millisecond
		if ra := st.RetryAfterDuration(); ra > 0 {
			wait = min(ra, 10*time.Second)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("%s GET %s: %w", c.cfg.Vendor, path, ctx.Err())
		}
	}
}

func (c *Client) once(ctx context.Context, key seal.Secret, path string, q url.Values) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s GET %s: %w", c.cfg.Vendor, path, err)
	}
	c.cfg.Authorize(req, key)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error repeats the URL, which holds no key: keys go in headers.
		return nil, fmt.Errorf("%s GET %s: %w", c.cfg.Vendor, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%s GET %s: read body: %w", c.cfg.Vendor, path, err)
	}
	if len(body) > MaxResponse {
		return nil, fmt.Errorf("%s GET %s: %w", c.cfg.Vendor, path, ErrTooLarge)
	}
	if resp.StatusCode/100 != 2 {
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return nil, c.cfg.Refuse(path, resp.StatusCode, time.Duration(secs)*time.Second, body)
	}
	return body, nil
}
