package normalize

import (
	"slices"
	"strings"
)

// OpenAIUsageEndpoints maps each OpenAI usage endpoint to its primary group
// set: every dimension it can be grouped by, sorted. Totals count only rows
// of the primary group set; rows of another set (read where the vendor
// refuses a dimension) never overlap them.
var OpenAIUsageEndpoints = map[string][]string{
	"completions":               {"api_key_id", "batch", "model", "project_id", "service_tier", "user_id"},
	"embeddings":                {"api_key_id", "model", "project_id", "user_id"},
	"moderations":               {"api_key_id", "model", "project_id", "user_id"},
	"images":                    {"api_key_id", "model", "project_id", "size", "source", "user_id"},
	"audio_speeches":            {"api_key_id", "model", "project_id", "user_id"},
	"audio_transcriptions":      {"api_key_id", "model", "project_id", "user_id"},
	"vector_stores":             {"project_id"},
	"code_interpreter_sessions": {"project_id"},
	"file_search_calls":         {"api_key_id", "project_id", "user_id", "vector_store_id"},
	"web_search_calls":          {"api_key_id", "context_level", "model", "project_id", "user_id"},
}

// IsPrimary reports whether groupSet is the primary group set of an OpenAI
// usage stream ("usage.<endpoint>").
func IsPrimary(stream string, groupSet []string) bool {
	endpoint, ok := strings.CutPrefix(stream, "usage.")
	dims, known := OpenAIUsageEndpoints[endpoint]
	return ok && known && slices.Equal(dims, groupSet)
}
