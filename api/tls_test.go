package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/api"
	"github.com/ogma-dev/ogma/pipeline/control"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ogma test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// Tokens and keys cross the API's listeners: with a certificate both speak
// TLS only — the REST face through its gateway too — and without one a
// listener beyond loopback is refused unless --insecure says a proxy
// terminates TLS.
func TestListenersSpeakTLSOrStayOnLoopback(t *testing.T) {
	view := &control.View{}
	for _, cfg := range []api.Config{{HTTP: "0.0.0.0:0", GRPC: "127.0.0.1:0"}, {HTTP: "127.0.0.1:0", GRPC: ":0"}} {
		if _, err := api.New(cfg, api.Deps{View: view}); err == nil || !strings.Contains(err.Error(), "--insecure") {
			t.Errorf("New(%+v) without TLS = %v, want a refusal", cfg, err)
		}
		cfg.Insecure = true
		if _, err := api.New(cfg, api.Deps{View: view}); err != nil {
			t.Errorf("New(%+v) = %v", cfg, err)
		}
	}

	f := serve(t) // for a tenant and its token
	certFile, keyFile, pool := selfSigned(t)
	srv, err := api.New(api.Config{HTTP: "127.0.0.1:0", GRPC: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile},
		api.Deps{View: f.view})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-srv.Listening()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+srv.HTTPAddr()+"/me/capabilities", nil)
	req.Header.Set("Authorization", "Bearer "+f.tokens["acme"])
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("https: %v", err)
	}
	var caps map[string]any
	json.NewDecoder(resp.Body).Decode(&caps)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || caps["tenant"] != "acme" {
		t.Errorf("GET /me/capabilities over TLS = %d %v, want acme's", resp.StatusCode, caps)
	}
	if resp, err := http.Get("http://" + srv.HTTPAddr() + "/healthz"); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Error("plain http was served on the TLS listener")
		}
		resp.Body.Close()
	}
}
