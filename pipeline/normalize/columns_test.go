package normalize_test

import (
	"testing"
	"time"

	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Usage that is not tokens comes back in its own units, one per endpoint
// (issue 13: TTS characters, transcription seconds, images, vector-store
// bytes, sessions and search calls are not all-zero rows).
func TestOpenAIUnitsOtherThanTokens(t *testing.T) {
	tests := []struct {
		name, row string
		want      normalize.Usage
	}{
		{"images", `{"object":"organization.usage.images.result","images":12,"num_model_requests":3,"size":"1024x1024","source":"image.generation","model":"gpt-image-1"}`,
			normalize.Usage{Model: "gpt-image-1", Images: 12, NumModelRequests: 3}},
		{"audio_speeches", `{"object":"organization.usage.audio_speeches.result","characters":4521,"num_model_requests":7,"model":"tts-1"}`,
			normalize.Usage{Model: "tts-1", Characters: 4521, NumModelRequests: 7}},
		{"audio_transcriptions", `{"object":"organization.usage.audio_transcriptions.result","seconds":1800,"num_model_requests":2,"model":"whisper-1"}`,
			normalize.Usage{Model: "whisper-1", Seconds: 1800, NumModelRequests: 2}},
		{"vector_stores", `{"object":"organization.usage.vector_stores.result","usage_bytes":104857600,"project_id":"proj_1"}`,
			normalize.Usage{ProjectID: "proj_1", Bytes: 104857600}},
		{"code_interpreter_sessions", `{"object":"organization.usage.code_interpreter_sessions.result","num_sessions":4,"project_id":null}`,
			normalize.Usage{Sessions: 4}},
		{"web_search_calls", `{"object":"organization.usage.web_searches.result","num_model_requests":9,"num_requests":11,"context_level":"low"}`,
			normalize.Usage{NumModelRequests: 9, Calls: 11}},
		// Not flat: encoding/json reads it, to the same columns.
		{"nested", `{"characters":5,"num_model_requests":1,"extra":{"a":1}}`, normalize.Usage{Characters: 5, NumModelRequests: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := normalize.UsageColumns(stream.OpenAI, []byte(tc.row))
			if err != nil || u != tc.want {
				t.Errorf("UsageColumns(%s) = %+v, %v; want %+v", tc.row, u, err, tc.want)
			}
		})
	}
}

// Reconciliation tells billed tokens from billed things usage does not
// count in tokens, by each vendor's line items.
func TestBillsTokens(t *testing.T) {
	for _, tc := range []struct {
		vendor, item string
		want         bool
	}{
		{stream.OpenAI, "gpt-6-sol, input", true},
		{stream.OpenAI, "gpt-4o, cached input", true},
		{stream.OpenAI, "gpt-6-sol, output", true},
		{stream.OpenAI, "ft-gpt-4.1-mini, training", false},
		{stream.OpenAI, "vector store storage", false},
		{stream.OpenAI, "web search tool calls", false},
		{stream.Anthropic, "Claude Opus 4.6 Usage - Input Tokens", true},
		{stream.Anthropic, "Claude Sonnet 4.5 Batch Usage - Cache Write (1h)", true},
		{stream.Anthropic, "Claude Haiku 4.5 Usage - Cache Read", true},
		{stream.Anthropic, "Web Search Usage", false},
		{stream.Anthropic, "Code Execution Usage", false},
	} {
		if got := normalize.BillsTokens(tc.vendor, tc.item); got != tc.want {
			t.Errorf("BillsTokens(%s, %q) = %v, want %v", tc.vendor, tc.item, got, tc.want)
		}
	}
}

// An audit event gives its type, time, actor, project and target; a field
// of another shape is left empty rather than stopping the projection.
func TestAuditOf(t *testing.T) {
	for _, tc := range []struct {
		data string
		want normalize.Audit
	}{
		{`{"id":"audit_log-1","type":"api_key.created","effective_at":1722461446,"project":{"id":"proj_abc","name":"Project title"},` +
			`"actor":{"type":"api_key","api_key":{"id":"key_xxx","type":"user","user":{"id":"user-xxx","email":"User@Example.com"}}},` +
			`"api_key.created":{"id":"key_new","data":{"scopes":["api.model.request"]}}}`,
			normalize.Audit{Type: "api_key.created", EffectiveAt: time.Unix(1722461446, 0).UTC(), ActorType: "api_key", ActorID: "key_xxx",
				ActorEmail: "user@example.com", ProjectID: "proj_abc", ProjectName: "Project title", ResourceID: "key_new"}},
		{`{"id":"audit_log-2","type":"login.succeeded","effective_at":1722461000,"actor":{"type":"session","session":{"user":{"id":"user-1","email":"a@b.c"},"ip_address":"203.0.113.7"}},"login.succeeded":{}}`,
			normalize.Audit{Type: "login.succeeded", EffectiveAt: time.Unix(1722461000, 0).UTC(), ActorType: "session", ActorID: "user-1", ActorEmail: "a@b.c"}},
		{`{"id":"audit_log-3","type":7,"effective_at":"soon","actor":null,"project":"p"}`, normalize.Audit{EffectiveAt: time.Unix(0, 0).UTC()}},
	} {
		got, err := normalize.AuditOf(stream.OpenAI, []byte(tc.data))
		if err != nil || got != tc.want {
			t.Errorf("AuditOf(%s) = %+v, %v; want %+v", tc.data, got, err, tc.want)
		}
	}
}
