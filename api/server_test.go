package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/ogma-dev/ogma/api"
	"github.com/ogma-dev/ogma/pipeline/capability"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/seal/sealtest"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

type fixture struct {
	cluster *topictest.Cluster
	view    *control.View
	srv     *api.Server
	health  *api.Health
	tokens  map[string]string // tenant → token
	keys    *seal.Keyring     // signs the control records
}

// serve runs an API over a control topic holding two tenants: acme, whose
// OpenAI key was observed working, and globex, with no key.
func serve(t *testing.T) *fixture { return serveWith(t, nil) }

func serveWith(t *testing.T, integ *api.Integrations) *fixture {
	t.Helper()
	return serveDeps(t, func(_ *topictest.Cluster, d *api.Deps) { d.Integrations = integ })
}

// serveDeps is serve with collaborators that configure sets, given the
// cluster.
func serveDeps(t testing.TB, configure func(*topictest.Cluster, *api.Deps)) *fixture {
	t.Helper()
	c := topictest.New(t)
	l := c.Layout
	kr, _ := sealtest.Keyring(t)
	f := &fixture{cluster: c, health: &api.Health{}, tokens: map[string]string{}, keys: kr}
	var recs []*kgo.Record
	for _, id := range []string{"acme", "globex"} {
		tok, hash := control.NewToken()
		f.tokens[id] = tok
		recs = append(recs,
			control.TenantRecord(l, control.Tenant{ID: id, Name: id, Residency: control.ResidencyUS}),
			control.TokenRecord(l, control.Token{Hash: hash, Tenant: id, Name: "test"}))
	}
	recs = append(recs,
		control.IntegrationRecord(l, control.Integration{Tenant: "acme", Vendor: control.OpenAI, Generation: 2, Status: control.StatusOK}),
		control.ObservedRecord(l, control.Observed{Tenant: "acme", Vendor: control.OpenAI, Generation: 2, Admin: true, ProjectUsers: true}))
	if err := control.Publish(t.Context(), c.Dial, kr, recs...); err != nil {
		t.Fatal(err)
	}
	if err := control.Protect(t.Context(), c.Dial, l, kr); err != nil {
		t.Fatal(err)
	}

	view := &control.View{Keys: kr}
	caughtUp := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{}, 2)
	t.Cleanup(func() { cancel(); <-done; <-done })
	go func() { view.Run(ctx, c.Dial, l, func() { close(caughtUp) }); done <- struct{}{} }()
	<-caughtUp

	deps := api.Deps{View: view, Health: f.health}
	configure(c, &deps)
	if integ := deps.Integrations; integ != nil {
		integ.Layout, integ.Keyring = l, kr
		integ.Publish = func(ctx context.Context, recs ...*kgo.Record) error { return control.Publish(ctx, c.Dial, kr, recs...) }
	}
	srv, err := api.New(api.Config{HTTP: "127.0.0.1:0", GRPC: "127.0.0.1:0"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	go func() { srv.Run(ctx); done <- struct{}{} }()
	<-srv.Listening()
	f.srv, f.view = srv, view
	return f
}

func (f *fixture) get(t *testing.T, path, token string) (int, map[string]any) {
	t.Helper()
	return f.do(t, http.MethodGet, path, token, "")
}

// do sends a request with token and body (when not empty) and decodes the
// JSON answer.
func (f *fixture) do(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	status, b := f.send(t, method, path, token, body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, path, b)
	}
	return status, v
}

// send sends a request with token and body (when not empty) and returns
// the status and the body.
func (f *fixture) send(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, "http://"+f.srv.HTTPAddr()+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestCapabilitiesScopedToTokenTenant(t *testing.T) {
	f := serve(t)
	cases := []struct {
		name       string
		token      string
		wantStatus int
		want       map[string]any
	}{
		{"acme sees its observed OpenAI flags", f.tokens["acme"], 200, map[string]any{
			"tenant":    "acme",
			"openai":    map[string]any{"admin": true, "costs": false, "audit_logs": false, "project_users": true, "per_user_breakdown": false},
			"anthropic": nil,
		}},
		{"globex has no OpenAI block", f.tokens["globex"], 200, map[string]any{"tenant": "globex", "openai": nil, "anthropic": nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.get(t, "/me/capabilities", tc.token)
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %v", status, tc.wantStatus, body)
			}
			if diff := cmp.Diff(tc.want, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
		// Naming the other tenant in the request changes nothing: the
		// token alone decides.
		t.Run(tc.name+", naming another tenant", func(t *testing.T) {
			other := "globex"
			if tc.want["tenant"] == "globex" {
				other = "acme"
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet,
				"http://"+f.srv.HTTPAddr()+"/me/capabilities?tenant="+other+"&tenant_id="+other, nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			req.Header.Set("X-Tenant", other)
			req.Header.Set("Grpc-Metadata-Tenant", other)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			status := resp.StatusCode
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %v", status, tc.wantStatus, body)
			}
			if diff := cmp.Diff(tc.want, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

// Issue 2: a bearer token on every call except /healthz; 401 without it.
func TestUnauthenticatedCallsGet401(t *testing.T) {
	f := serve(t)
	for _, token := range []string{"", "ogma_not-a-token"} {
		if status, body := f.get(t, "/me/capabilities", token); status != http.StatusUnauthorized {
			t.Errorf("token %q: status = %d, want 401: %v", token, status, body)
		}
	}
	if status, _ := f.get(t, "/healthz", ""); status != http.StatusOK {
		t.Errorf("/healthz without a token = %d, want 200", status)
	}
}

func TestHealthzWaitsForEveryRole(t *testing.T) {
	f := serve(t)
	ready := f.health.Add("connector")
	status, body := f.get(t, "/healthz", "")
	if status != http.StatusServiceUnavailable || body["waiting"].([]any)[0] != "connector" {
		t.Errorf("/healthz with a role starting = %d %v, want 503 naming it", status, body)
	}
	ready()
	if status, _ := f.get(t, "/healthz", ""); status != http.StatusOK {
		t.Errorf("/healthz once every role is ready = %d, want 200", status)
	}
}

// A role that reports a problem — the sink refusing a tenant — makes the
// process degraded, naming it, until the report is cleared.
func TestHealthzDegradedNamesProblems(t *testing.T) {
	f := serve(t)
	f.health.Report("sink_clickhouse", "tenant demo refused: its ledger is not this installation's")
	status, body := f.get(t, "/healthz", "")
	problems, _ := body["problems"].(map[string]any)
	if status != http.StatusServiceUnavailable || body["status"] != "degraded" ||
		fmt.Sprint(problems["sink_clickhouse"]) != "[tenant demo refused: its ledger is not this installation's]" {
		t.Errorf("/healthz with a problem = %d %v, want 503 degraded naming it", status, body)
	}
	f.health.Report("sink_clickhouse")
	if status, _ := f.get(t, "/healthz", ""); status != http.StatusOK {
		t.Errorf("/healthz once the problem is cleared = %d, want 200", status)
	}
}

// grpcurl works: server reflection lists the service without a token.
func TestReflectionListsService(t *testing.T) {
	f := serve(t)
	conn, err := grpc.NewClient(f.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	found := false
	for _, n := range names {
		found = found || n == "ogma.v1.OgmaService"
	}
	if !found {
		t.Errorf("reflection lists %v, want ogma.v1.OgmaService among them", names)
	}
}

// failing is a vendor probe that always fails the same way.
type failing struct{ err error }

func (f failing) Probe(context.Context, seal.Secret, time.Time) (capability.Checklist, error) {
	return capability.Checklist{}, f.err
}

func (f *fixture) put(t *testing.T, token, body string) (int, map[string]any) {
	t.Helper()
	return f.do(t, http.MethodPut, "/v1/integrations/openai", token, body)
}

// Issue 4: a vendor that cannot be reached, or that fails, is a 4xx with a
// stable code and a sentence, never a generic failure.
func TestVendorFailuresHaveStableCodes(t *testing.T) {
	cases := []struct {
		code   string
		status int
	}{
		{capability.CodeVendorUnreachable, http.StatusFailedDependency},
		{capability.CodeVendorError, http.StatusFailedDependency},
	}
	for _, tc := range cases {
		f := serveWith(t, &api.Integrations{Probers: map[string]api.Prober{stream.OpenAI: failing{capability.Refuse(tc.code, "OpenAI is down.", nil)}}})
		status, body := f.put(t, f.tokens["acme"], `{"admin_key":"sk-admin-abcdefghijklmnop"}`)
		if status != tc.status || body["code"] != tc.code || body["message"] != "OpenAI is down." {
			t.Errorf("PUT with %s = %d %v", tc.code, status, body)
		}
	}
}

// Ready waits for the roles expected up front too, not only those that
// added themselves before the others started.
func TestHealthReadyWaitsForExpectedRoles(t *testing.T) {
	h := &api.Health{}
	h.Expect("connector", "processor")
	h.Add("connector")()
	select {
	case <-h.Ready():
		t.Fatal("ready while the processor has not even started")
	default:
	}
	h.Add("processor")()
	select {
	case <-h.Ready():
	default:
		t.Fatalf("not ready once every role is; waiting for %v", h.Waiting())
	}
}

// countingReader yields n bytes of 'x' and counts what was read; the
// transport reads it on its own goroutine.
type countingReader struct {
	n    int64
	read atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	done := c.read.Load()
	if done >= c.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), c.n-done)
	for i := range p[:k] {
		p[i] = 'x'
	}
	c.read.Add(k)
	return int(k), nil
}

// The REST face authenticates before it reads: a 100 MiB body without a
// token gets 401 having cost nothing, and with a token a body is bounded.
func TestRESTAuthenticatesBeforeReadingTheBody(t *testing.T) {
	f := serve(t)
	post := func(token string, body *countingReader) (int, map[string]any) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, "http://"+f.srv.HTTPAddr()+"/v1/links", body)
		req.ContentLength = body.n
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil // the server answered and closed before the body was sent
		}
		defer resp.Body.Close()
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	huge := &countingReader{n: 100 << 20}
	if status, body := post("", huge); status != 0 && (status != http.StatusUnauthorized || body["code"] != "unauthenticated") {
		t.Errorf("100 MiB without a token = %d %v, want 401", status, body)
	}
	if n := huge.read.Load(); n > 16<<20 {
		t.Errorf("the server read %d MiB of a body without a token", n>>20)
	}
	tooBig := &countingReader{n: 2 << 20}
	if status, body := post(f.tokens["acme"], tooBig); status != http.StatusRequestEntityTooLarge || body["code"] != "body_too_large" {
		t.Errorf("a 2 MiB body with a token = %d %v, want 413 body_too_large", status, body)
	}
}

// A failed store query tells the client that it failed, not the store's
// error, which names servers, databases and tables; the log has it.
func TestStoreErrorsStayInTheLog(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	f := serveDeps(t, func(_ *topictest.Cluster, d *api.Deps) { d.Usage, d.Identity = store, store })
	conn, err := ch.Open(&ch.Options{Addr: []string{cfg.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(t.Context(), "DROP DATABASE "+cfg.Database); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/usage?start=2026-11-01&end=2026-11-02", "/v1/people", "/v1/links"} {
		status, body := f.get(t, path, f.tokens["acme"])
		msg := fmt.Sprint(body["message"])
		if status != http.StatusServiceUnavailable || body["code"] != "unavailable" || strings.Contains(msg, cfg.Database) || strings.Contains(msg, "code:") {
			t.Errorf("GET %s with its store gone = %d %v, want 503 unavailable saying nothing of the store", path, status, body)
		}
	}
}

// A known path asked with a method it does not take is a client's mistake:
// 405 method_not_allowed naming the path, never a 500.
func TestWrongMethodIsMethodNotAllowed(t *testing.T) {
	f := serve(t)
	for _, c := range []struct{ method, path string }{
		{http.MethodDelete, "/me/capabilities"},
		{http.MethodGet, "/v1/integrity:verify"},
		{http.MethodPut, "/v1/integrity/keys"},
		{http.MethodPost, "/v1/usage"},
	} {
		status, body := f.do(t, c.method, c.path, f.tokens["acme"], "{}")
		if status != http.StatusMethodNotAllowed || body["code"] != "method_not_allowed" ||
			!strings.Contains(fmt.Sprint(body["message"]), c.path) {
			t.Errorf("%s %s = %d %v, want 405 method_not_allowed naming the path", c.method, c.path, status, body)
		}
	}
	// The answer names the methods the path takes.
	for path, want := range map[string]string{"/v1/integrations/openai": "DELETE, GET, PUT", "/v1/integrations/anthropic:validate": "POST",
		"/v1/people/p_1": "GET", "/v1/links/openai/user/u1": "DELETE"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPatch, "http://"+f.srv.HTTPAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer "+f.tokens["acme"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != want {
			t.Errorf("PATCH %s = %d, Allow %q; want 405, Allow %q", path, resp.StatusCode, resp.Header.Get("Allow"), want)
		}
	}
	if status, body := f.do(t, http.MethodGet, "/v1/nowhere", f.tokens["acme"], ""); status != http.StatusNotFound {
		t.Errorf("GET of an unknown path = %d %v, want 404", status, body)
	}
}

// Issue 13: a client's mistake gets the client's status and a code naming
// it — never a 500. Each row: a request, the status and code it gets.
func TestClientMistakesAreTheClients(t *testing.T) {
	f := serve(t)
	tok := f.tokens["acme"]
	cases := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/v1/usage", "{}", 405, "method_not_allowed"},
		{"DELETE", "/v1/costs", "", 405, "method_not_allowed"},
		{"GET", "/v1/usage?start=2026-11-01&end=2026-11-02&group_by=planet", "", 400, "malformed_request"},
		{"GET", "/v1/usage?start=2026-11-01&end=2026-11-02&group_by=day,day", "", 400, "malformed_request"},
		{"GET", "/v1/usage?start=2026-11-01&end=2026-11-02&vendor=mistral", "", 400, "malformed_request"},
		{"GET", "/v1/usage?start=2026-11-01&start=2026-11-03&end=2026-11-04", "", 400, "malformed_request"},
		{"GET", "/v1/usage?start=yesterday&end=2026-11-02", "", 400, "malformed_request"},
		{"GET", "/v1/costs?start=2026-11-01&end=2026-11-02&group_by=model", "", 400, "malformed_request"},
		{"GET", "/v1/costs?start=2026-11-02&end=2026-11-01", "", 400, "malformed_request"},
		{"GET", "/v1/insights/forecast?month=2026-13", "", 400, "malformed_request"},
		{"POST", "/v1/integrations/mistral:validate", `{"admin_key":"k"}`, 404, "unknown_vendor"},
		{"PUT", "/v1/integrations/openai", `{"admin_key":"k","extra":1}`, 400, "malformed_request"},
		{"PUT", "/v1/integrations/openai", `{"admin_key":`, 400, "malformed_request"},
		{"PUT", "/v1/integrations/openai", `{"admin_key":"` + strings.Repeat("k", 2<<20) + `"}`, 413, "body_too_large"},
	}
	for _, tc := range cases {
		status, body := f.do(t, tc.method, tc.path, tok, tc.body)
		if status != tc.status || body["code"] != tc.code {
			t.Errorf("%s %s = %d %v, want %d %s", tc.method, tc.path, status, body, tc.status, tc.code)
		}
	}
}

// Issue 13: a call that fails inside Ogma answers with a request id — the
// X-Request-Id header and request_id in the body — and every log line of
// it carries that id; a client's own plain id is kept.
func TestServerFaultsCarryARequestID(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	var logs lockedBuffer
	f := serveDeps(t, func(_ *topictest.Cluster, d *api.Deps) {
		d.Usage, d.Logger = store, slog.New(slog.NewTextHandler(&logs, nil))
	})
	// The store's database goes: its queries fail.
	conn, err := ch.Open(&ch.Options{Addr: []string{cfg.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(t.Context(), "DROP DATABASE "+cfg.Database); err != nil {
		t.Fatal(err)
	}

	for _, sent := range []string{"", "client-id-42", "bad id with spaces"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+f.srv.HTTPAddr()+"/v1/usage?start=2026-11-01&end=2026-11-02", nil)
		req.Header.Set("Authorization", "Bearer "+f.tokens["acme"])
		if sent != "" {
			req.Header.Set("X-Request-Id", sent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		id := resp.Header.Get("X-Request-Id")
		switch {
		case resp.StatusCode < 500 || id == "" || body["request_id"] != id:
			t.Errorf("sent %q: %d %v, header id %q: want a 5xx whose body names the header's id", sent, resp.StatusCode, body, id)
		case sent == "client-id-42" && id != sent, sent == "bad id with spaces" && id == sent:
			t.Errorf("sent %q, answered with id %q", sent, id)
		}
		for _, line := range []string{"msg=\"usage query failed\"", "msg=\"call failed\"", "msg=\"request failed\""} {
			if !logs.hasLine(line, "request_id="+id) {
				t.Errorf("no log line %s with request_id=%s:\n%s", line, id, logs.String())
			}
		}
	}
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// hasLine reports whether one line holds every part.
func (l *lockedBuffer) hasLine(parts ...string) bool {
	for line := range strings.SplitSeq(l.String(), "\n") {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			return true
		}
	}
	return false
}
