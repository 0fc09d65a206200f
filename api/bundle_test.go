package api_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/sinks/rekor"
)

// Issue 14: the Integrity screen's download — GET /v1/integrity/bundle
// streams the tenant's evidence bundle as ogma export writes it, and it
// verifies; only with the tenant's token.
func TestEvidenceBundleDownload(t *testing.T) {
	o := newIdentityOrg(t)
	o.usage(t, day1, [2]string{"u_ann", "key_ann"}, [2]string{"", "key_bob"})
	wait.Until(t, "the usage in the ledger", func() bool {
		return len(o.attribution(t, day1, day1.Add(24*time.Hour), 300)) == 2
	})
	status, body := o.send(t, http.MethodGet, "/v1/integrity/bundle", o.tokens["acme"], "")
	if status != http.StatusOK || !bytes.HasPrefix(body, []byte(`{"bundle":{`)) {
		t.Fatalf("GET /v1/integrity/bundle: %d %.300s", status, body)
	}
	rep, err := rekor.VerifyBundle(t.Context(), bytes.NewReader(body), rekor.TrustRoots{})
	if err != nil || rep.Failure != nil || rep.Events == 0 || rep.Tenant != "acme" {
		t.Errorf("the downloaded bundle: %+v, %v; want acme's events, verified", rep, err)
	}
	if status, _ := o.send(t, http.MethodGet, "/v1/integrity/bundle", "", ""); status != http.StatusUnauthorized {
		t.Errorf("the bundle without a token: %d, want 401", status)
	}
}
