package clickhouse_test

import (
	"testing"
	"time"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// Issue 13: usage that is not tokens keeps its own units — images, TTS
// characters, transcribed seconds, stored bytes, sessions, search calls —
// under a usage_type dimension; every dimension filters, and rows page.
func TestUsageInEveryUnitFilteredAndPaged(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	c := topictest.New(t)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	bucket := &envelope.Bucket{Start: day.Unix(), End: day.Add(24 * time.Hour).Unix(), Width: "1d", Rows: 1}
	spec := func(name string) stream.Spec { return stream.Must(stream.OpenAI, name) }
	recs := chainFacts(t, "acme", bucket,
		fact{spec: spec("usage.images"), data: `{"images":12,"num_model_requests":3,"size":"1024x1024","source":"image.generation","model":"gpt-image-1","project_id":"p1","user_id":"u1","api_key_id":"k1"}`},
		fact{spec: spec("usage.audio_speeches"), data: `{"characters":4521,"num_model_requests":7,"model":"tts-1","project_id":"p1","user_id":"u1","api_key_id":"k1"}`},
		fact{spec: spec("usage.audio_transcriptions"), data: `{"seconds":1800,"num_model_requests":2,"model":"whisper-1","project_id":"p2","user_id":"u2","api_key_id":"k2"}`},
		fact{spec: spec("usage.vector_stores"), data: `{"usage_bytes":1048576,"project_id":"p2"}`},
		fact{spec: spec("usage.code_interpreter_sessions"), data: `{"num_sessions":4,"project_id":"p1"}`},
		fact{spec: spec("usage.web_search_calls"), data: `{"num_model_requests":9,"num_requests":11,"context_level":"low","model":"gpt-6-sol","project_id":"p1","user_id":"u1","api_key_id":"k1"}`},
		fact{spec: stream.Must(stream.Anthropic, "usage.messages"), data: `{"uncached_input_tokens":100,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},` +
			`"cache_read_input_tokens":0,"output_tokens":10,"server_tool_use":{"web_search_requests":5},"api_key_id":"ak1","workspace_id":null,` +
			`"model":"claude-opus-4-6","service_tier":"standard","context_window":"0-200k"}`})
	c.ProduceEvents(t, recs...)
	defer runSink(t, c, store, clickhouse.SinkConfig{}, clickhouse.SinkDeps{})()
	wait.Until(t, "every fact in the usage table", func() bool { return countUsage(t, cfg, "acme") == uint64(len(recs)) })

	q := clickhouse.UsageQuery{Tenant: "acme", Start: day, End: day.Add(24 * time.Hour), GroupBy: []string{"vendor", "usage_type"}}
	rows, err := store.Usage(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	type units struct{ images, characters, seconds, bytes, sessions, calls, input int64 }
	got := map[string]units{}
	for _, r := range rows {
		got[r.Dims.Get("vendor")+"/"+r.Dims.Get("usage_type")] = units{r.Images, r.Characters, r.Seconds, r.Bytes, r.Sessions, r.Calls, r.InputTokens}
	}
	want := map[string]units{
		"openai/images":                    {images: 12},
		"openai/audio_speeches":            {characters: 4521},
		"openai/audio_transcriptions":      {seconds: 1800},
		"openai/vector_stores":             {bytes: 1048576},
		"openai/code_interpreter_sessions": {sessions: 4},
		"openai/web_search_calls":          {calls: 11},
		"anthropic/messages":               {calls: 5, input: 100},
	}
	if len(got) != len(want) {
		t.Errorf("usage by vendor and usage_type = %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %+v, want %+v", k, got[k], w)
		}
	}

	// Filters: each dimension narrows, values of one dimension widen.
	filtered := []struct {
		filters map[string][]string
		want    int // rows grouped by usage_type
	}{
		{map[string][]string{"project": {"p1"}}, 3 + 1},
		{map[string][]string{"project": {"p1"}, "model": {"tts-1", "gpt-image-1"}}, 2},
		{map[string][]string{"usage_type": {"messages"}}, 1},
		{map[string][]string{"user": {"u2"}}, 1},
		{map[string][]string{"api_key": {"k1", "ak1"}}, 4},
		{map[string][]string{"attribution": {"unmapped"}}, 7},
		{map[string][]string{"model": {"none-such"}}, 0},
	}
	for _, f := range filtered {
		q := q
		q.GroupBy, q.Filters = []string{"usage_type"}, f.filters
		rows, err := store.Usage(t.Context(), q)
		if err != nil || len(rows) != f.want {
			t.Errorf("Usage(filters %v) = %d rows, %v; want %d", f.filters, len(rows), err, f.want)
		}
	}

	// Pages: in order, each row once.
	q.GroupBy = []string{"usage_type"}
	var paged []string
	for off := 0; ; off += 3 {
		q.Offset, q.Limit = off, 3
		page, err := store.Usage(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			paged = append(paged, r.Dims.Get("usage_type"))
		}
		if len(page) < 3 {
			break
		}
	}
	wantOrder := []string{"audio_speeches", "audio_transcriptions", "code_interpreter_sessions", "images", "messages", "vector_stores", "web_search_calls"}
	if len(paged) != len(wantOrder) {
		t.Fatalf("paged usage types = %v, want %v", paged, wantOrder)
	}
	for i := range wantOrder {
		if paged[i] != wantOrder[i] {
			t.Errorf("paged usage types = %v, want %v", paged, wantOrder)
			break
		}
	}
}
