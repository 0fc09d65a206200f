// Package rekortest finds the real Rekor that tests anchor in: the local
// stack of deploy/rekor-local, which `make test` starts.
package rekortest

import (
	"crypto"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/sinks/rekor"
)

// Local is where `make rekor-local` serves the local stack.
const Local = "http://127.0.0.1:3000"

// URL returns the Rekor to test against: $OGMA_TEST_REKOR_URL, which `make
// test` sets after starting the local stack (a test then fails if it does
// not answer), else the local stack if it answers. Without either the test
// is skipped, saying how to run it.
func URL(tb testing.TB) string {
	tb.Helper()
	url, set := os.LookupEnv("OGMA_TEST_REKOR_URL")
	if !set {
		url = Local
	}
	if _, err := fetchKey(url); err != nil {
		if set {
			tb.Fatalf("OGMA_TEST_REKOR_URL=%s does not answer: %v", url, err)
		}
		tb.Skipf("no Rekor answers at %s: `make rekor-local` starts one (make test does)", url)
	}
	return url
}

// LogKeyPEM returns the public key of the log at url (PEM).
func LogKeyPEM(tb testing.TB, url string) []byte {
	tb.Helper()
	pemBytes, err := fetchKey(url)
	if err != nil {
		tb.Fatal(err)
	}
	return pemBytes
}

// LogKey returns the public key of the log at url, as a verifier pins it.
func LogKey(tb testing.TB, url string) crypto.PublicKey {
	tb.Helper()
	k, err := rekor.ParseLogKey(LogKeyPEM(tb, url))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func fetchKey(url string) ([]byte, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url + "/api/v1/log/publicKey")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/api/v1/log/publicKey: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}
