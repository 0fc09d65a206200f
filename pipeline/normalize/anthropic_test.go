package normalize_test

import (
	"strings"
	"testing"

	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// vendor-api-notes.md C2: the cost report's amount is a decimal string in
// cents; read as dollars it is 100× too much. Parsed exactly, exponent
// forms too; anything else is refused (and deadlettered), never zero.
func TestAnthropicCostIsCents(t *testing.T) {
	cases := []struct {
		amount, want string
	}{
		{`"41280.000000"`, "412.8"},
		{`"123.45"`, "1.2345"},
		{`"0.000001"`, "0.00000001"},
		{`"1.5e3"`, "15"},
		{`" 7 "`, "0.07"},
		{`"0"`, "0"},
	}
	for _, tc := range cases {
		c, err := normalize.CostColumns(stream.Anthropic, []byte(`{"amount":`+tc.amount+`,"currency":"USD","description":"d","workspace_id":null}`))
		if err != nil || c.Amount.String() != tc.want || c.Currency != "usd" {
			t.Errorf("CostColumns(amount %s) = %s %s, %v; want %s usd", tc.amount, c.Amount, c.Currency, err, tc.want)
		}
	}
	for _, bad := range []string{`"abc"`, `412.8`, `null`, `""`, `"1,5"`} {
		if c, err := normalize.CostColumns(stream.Anthropic, []byte(`{"amount":`+bad+`,"currency":"USD"}`)); err == nil {
			t.Errorf("CostColumns(amount %s) = %s, want an error", bad, c.Amount)
		}
	}
}

// Anthropic's input is counted whole, as OpenAI's is: uncached + cache
// reads + both cache writes (nested; there is no flat
// cache_creation_input_tokens); its web searches are calls.
func TestAnthropicUsageColumns(t *testing.T) {
	u, err := normalize.UsageColumns(stream.Anthropic, []byte(`{"uncached_input_tokens":1500,
		"cache_creation":{"ephemeral_1h_input_tokens":1000,"ephemeral_5m_input_tokens":500},"cache_read_input_tokens":200,
		"output_tokens":500,"server_tool_use":{"web_search_requests":10},"api_key_id":"apikey_1","workspace_id":null,
		"model":"claude-opus-4-6","service_tier":"standard","account_id":"user_1"}`))
	want := normalize.Usage{Model: "claude-opus-4-6", UserID: "user_1", APIKeyID: "apikey_1", ServiceTier: "standard",
		InputTokens: 3200, InputCachedTokens: 200, InputCacheWrite5m: 500, InputCacheWrite1h: 1000, OutputTokens: 500, Calls: 10}
	if err != nil || u != want {
		t.Errorf("UsageColumns = %+v, %v; want %+v", u, err, want)
	}
}

// A Claude Code row's key names its actor by a digest, never by the email
// its data holds: keys stay in the chain when a person's data is erased.
func TestClaudeCodeKeyHoldsNoEmail(t *testing.T) {
	raw := &envelope.Raw{V: envelope.Version, Tenant: "acme", Vendor: stream.Anthropic, Stream: "claude_code",
		Bucket:   &envelope.Bucket{Start: 1764547200, End: 1764633600, Width: "1d", Rows: 1},
		GroupSet: stream.Must(stream.Anthropic, "claude_code").GroupSet,
		Data: []byte(`{"date":"2025-12-01T00:00:00Z","actor":{"type":"user_actor","email_address":"Dev@Company.com"},
			"customer_type":"api","terminal_type":"vscode","core_metrics":{"num_sessions":5}}`)}
	f, err := normalize.Normalize(raw)
	if err != nil {
		t.Fatal(err)
	}
	if k := string(f.Key); strings.Contains(strings.ToLower(k), "dev@company.com") || !strings.Contains(k, `"actor":"`) {
		t.Errorf("key %s: want the actor as a digest, without the email", k)
	}
	raw.Data = []byte(`{"actor":{"type":"user_actor","email_address":"dev@company.com"},"customer_type":"api","terminal_type":"vscode"}`)
	g, err := normalize.Normalize(raw)
	if err != nil || string(g.Key) != string(f.Key) {
		t.Errorf("the same person in other letter case has key %s, want %s (%v)", g.Key, f.Key, err)
	}
}

// An API key's holder is its principal when it has one, else its creator.
func TestAnthropicKeyHolder(t *testing.T) {
	key := []byte(`{"id":"apikey_1","object":"api_key"}`)
	cases := []struct {
		data, kind, id string
	}{
		{`{"id":"apikey_1","created_by":{"id":"user_c","type":"user"},"principal":{"type":"user_actor","user_id":"user_p"}}`, "user", "user_p"},
		{`{"id":"apikey_1","created_by":{"id":"user_c","type":"user"},"principal":null}`, "user", "user_c"},
		{`{"id":"apikey_1","created_by":null,"principal":{"type":"service_account_actor","service_account_id":"svac_1"}}`, "service_account", "svac_1"},
		{`{"id":"apikey_1","created_by":null,"principal":null}`, "", ""},
	}
	for _, tc := range cases {
		i, err := normalize.IdentityOf(stream.Anthropic, key, []byte(tc.data))
		if err != nil || i.OwnerKind != tc.kind || i.OwnerID != tc.id || i.SubjectKind != "api_key" {
			t.Errorf("IdentityOf(%s) = %+v, %v; want holder %s %s", tc.data, i, err, tc.kind, tc.id)
		}
	}
}
